"""Buying groups: the one implementation of their rules, for pages, API, tasks and journeys.

Services other parts of Quorum use (plain values in, model rows or id querysets out):

    buying_group_for(sandbox, account_id, solution_interest_id) -> BuyingGroup | None
    set_stage(group, stage, *, by=None) -> BuyingGroup           stage: Stage, its id or its name
    set_status(group, status, *, by=None) -> BuyingGroup         status: BuyingGroupStatus value
    assign_member(group, person_id, role, *, by=None) -> BuyingGroupMember   role: BuyingGroupRole, id or name
    remove_member(group, person_id, *, by=None) -> bool
    assign_members(group, person_ids, role, *, by=None) -> {person id: RuleViolation}   several at once
    remove_members(group, person_ids, *, by=None) -> int                              several at once
    buying_group_filters(sandbox, subject, condition, *, restrict_to_ids=None) -> QuerySet of ids
        subject "account": condition {"has": bool, "solution_interest_id"?, "status"?, "stage"?}
        subject "person":  condition {"member": bool, "solution_interest_id"?, "role"?}
    accounts_with_buying_group(sandbox, *, solution_interest_id=None, status=None, stage=None) -> QuerySet of account ids
    people_in_buying_groups(sandbox, *, solution_interest_id=None, role=None) -> QuerySet of person ids

``by`` is who acts: a user (their sandbox role is checked: marketer), a label such as
"journey:12", or None for the system. Rule breaches raise ``cdp.exceptions.RuleViolation``.

Configuration: ``ensure_default_roles``, ``create_role``, ``delete_role``, ``save_roles_template``,
``publish_roles_template``, ``save_stages_model``, ``publish_stages_model``,
``save_solution_interest``. Building and keeping current: ``start_build`` / ``run_build`` (the
``build_buying_groups`` task), ``reassign_for_profile_changes``, ``apply_audience_changes``,
``move_members_on_merge``, ``refresh_daily`` (time-window conditions + engagement). Pages and API:
``members_by_role``, ``assignable_people``, ``buying_group_summary``, ``condition_pql``.

``BuyingGroup.updated_at`` moves whenever members, status, stage or completeness change (not for
the daily engagement score): "has the group changed since …" is ``updated_at >= since``.

Assignment: the people related to a group's account (active AccountPerson rows) are matched
against each template role's condition by the one segmentation compiler, restricted to those
people; a person gets the first matching role by weight (heaviest first), unless someone assigned
them by hand (manual members are never touched by automatic assignment). Everything is written
set-wise per chunk of groups.
"""

from collections import defaultdict

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Avg, Count, Max, Q
from django.utils import timezone

from cdp.choices import AudienceKind, MembershipStatus, Role
from cdp.exceptions import RuleViolation
from cdp.models import Account, AccountPerson, Audience, AudienceMember, AudienceMembershipChange, Person
from cdp.segmentation.compiler import compile_audience
from cdp.services.access import require_sandbox_role
from cdp.services.audience_io import DefinitionError, read_definition
from cdp.services.audiences import membership_lookup
from journeys.choices import (
    DEFAULT_ROLES,
    MAX_ROLES,
    AssignedHow,
    BuildStatus,
    BuyingGroupStatus,
    RoleWeight,
    StageKind,
    StagesModelStatus,
    TemplateStatus,
)
from journeys.models import (
    BuyingGroup,
    BuyingGroupBuild,
    BuyingGroupMember,
    BuyingGroupRole,
    BuyingGroupStageChange,
    RolesTemplate,
    SolutionInterest,
    Stage,
    StagesModel,
    StageTransition,
    TemplateRole,
)
from journeys.services.scores import AUTO_STATUSES, refresh_completeness, refresh_engagement

BUILD_CHUNK = 200


# ------------------------------------------------------------------------------------ actors
def _actor(by, sandbox) -> str:
    """The label stored as "who did it"; a user must be a marketer in the sandbox."""
    if by is None:
        return "system"
    if isinstance(by, AbstractBaseUser):
        require_sandbox_role(by, sandbox, Role.MARKETER)
        return f"user:{by.get_username()}"
    return str(by)[:150]


# ------------------------------------------------------------------------------------- roles
def ensure_default_roles(sandbox) -> None:
    """The six default roles exist in every sandbox that uses buying groups (made on first use)."""
    if BuyingGroupRole.objects.for_sandbox(sandbox).filter(is_default=True).count() == len(DEFAULT_ROLES):
        return
    BuyingGroupRole.objects.bulk_create(
        [BuyingGroupRole(sandbox=sandbox, name=name, is_default=True) for name in DEFAULT_ROLES], ignore_conflicts=True
    )


def roles_of(sandbox):
    ensure_default_roles(sandbox)
    return BuyingGroupRole.objects.for_sandbox(sandbox)


@transaction.atomic
def create_role(sandbox, name: str, description: str = "") -> BuyingGroupRole:
    name = (name or "").strip()
    if not name:
        raise RuleViolation("A role needs a name.", rule="role_name_required", field="name")
    ensure_default_roles(sandbox)
    # Lock the sandbox's roles so two concurrent creations cannot both pass the limit.
    existing = list(BuyingGroupRole.objects.for_sandbox(sandbox).select_for_update().values_list("name", flat=True))
    if any(n.lower() == name.lower() for n in existing):
        raise RuleViolation(f'A role named "{name}" already exists.', rule="role_name_taken", field="name")
    if len(existing) >= MAX_ROLES:
        raise RuleViolation(
            f"A sandbox can have at most {MAX_ROLES} buying group roles (the 6 defaults included).",
            rule="role_limit",
            field="name",
        )
    return BuyingGroupRole.objects.create(sandbox=sandbox, name=name, description=description)


def delete_role(role: BuyingGroupRole) -> None:
    if role.is_default:
        raise RuleViolation(f'"{role.name}" is a default role and cannot be deleted.', rule="default_role")
    if TemplateRole.objects.filter(role=role).exists() or BuyingGroupMember.objects.filter(role=role).exists():
        raise RuleViolation(
            f'"{role.name}" is used by a roles template or a buying group; remove it there first.', rule="role_in_use"
        )
    role.delete()


def resolve_role(sandbox, role) -> BuyingGroupRole:
    """A role of the sandbox given as a row, an id or a name."""
    if isinstance(role, BuyingGroupRole):
        if role.sandbox_id != sandbox.pk:
            raise RuleViolation("That role belongs to another sandbox.", rule="unknown_role", field="role")
        return role
    roles = roles_of(sandbox)
    found = roles.filter(pk=role).first() if isinstance(role, int) or str(role).isdigit() else None
    found = found or roles.filter(name__iexact=str(role).strip()).first()
    if found is None:
        raise RuleViolation(f'There is no role "{role}" in this sandbox.', rule="unknown_role", field="role")
    return found


# --------------------------------------------------------------------------- roles templates
def read_condition(condition=None, pql=None):
    """A role condition (rule tree or PQL text, subject person) → its canonical rule tree, or None
    when neither is given. Errors say where: a JSON path, or a line and column."""
    if condition in (None, {}, "") and pql in (None, ""):
        return None
    try:
        parsed = read_definition(definition=condition if condition not in ({}, "") else None, pql=pql, kind=AudienceKind.PERSON)
    except DefinitionError as error:  # the message says where: a JSON path, or a line and column
        raise RuleViolation(f"Condition: {error.message}", rule="invalid_condition", field="condition") from None
    if parsed.kind != AudienceKind.PERSON:
        raise RuleViolation("A role condition is about people (subject person).", rule="invalid_condition", field="condition")
    return parsed.tree


def condition_pql(condition) -> str:
    """A stored role condition as PQL text ("" for none)."""
    from cdp.segmentation import from_tree, to_pql

    return to_pql(from_tree(condition)) if condition else ""


@transaction.atomic
def save_roles_template(sandbox, *, name: str, roles: list[dict], description: str = "", template=None) -> RolesTemplate:
    """Create or replace a draft roles template. ``roles``: dicts with ``role`` (row, id or name),
    ``weight`` (20/40/60/80/100), ``condition`` (rule tree) or ``condition_pql``, ``required``
    and ``required_count`` (default 1)."""
    if template is not None and template.status == TemplateStatus.LIVE:
        raise RuleViolation("A live roles template cannot be changed.", rule="template_live")
    name = (name or "").strip()
    if not name:
        raise RuleViolation("A roles template needs a name.", rule="name_required", field="name")
    if RolesTemplate.objects.for_sandbox(sandbox).filter(name=name).exclude(pk=getattr(template, "pk", None)).exists():
        raise RuleViolation(f'A roles template named "{name}" already exists.', rule="name_taken", field="name")
    rows, seen = [], set()
    for index, spec in enumerate(roles or []):
        role = resolve_role(sandbox, spec.get("role"))
        if role.pk in seen:
            raise RuleViolation(f'"{role.name}" appears twice in the template.', rule="duplicate_role", field="roles")
        seen.add(role.pk)
        weight = int(spec.get("weight", RoleWeight.NORMAL))
        if weight not in RoleWeight.values:
            raise RuleViolation(
                f"Role {index + 1} ({role.name}): weight must be one of "
                + ", ".join(f"{w.label} {w.value}" for w in RoleWeight) + ".",
                rule="invalid_weight",
                field="roles",
            )
        required_count = int(spec.get("required_count") or 1)
        if required_count < 1:
            raise RuleViolation(f"Role {index + 1} ({role.name}): required count must be at least 1.", rule="invalid_required_count", field="roles")
        try:
            condition = read_condition(spec.get("condition"), spec.get("condition_pql"))
        except RuleViolation as error:
            raise RuleViolation(f"Role {index + 1} ({role.name}): {error.message}", rule=error.rule, field="roles") from None
        rows.append(TemplateRole(sandbox=sandbox, role=role, weight=weight, condition=condition,
                                 required=bool(spec.get("required")), required_count=required_count))  # fmt: skip
    if template is None:
        template = RolesTemplate(sandbox=sandbox)
    template.name, template.description = name, description
    template.save()
    template.roles.all().delete()
    for row in rows:
        row.template = template
    TemplateRole.objects.bulk_create(rows)
    return template


def publish_roles_template(template: RolesTemplate) -> RolesTemplate:
    """Make a draft live (then it is frozen). A template needs at least one role."""
    if template.status == TemplateStatus.LIVE:
        return template
    if not template.roles.exists():
        raise RuleViolation("Add at least one role before making the template live.", rule="template_empty", field="roles")
    template.status, template.published_at = TemplateStatus.LIVE, timezone.now()
    template.save(update_fields=["status", "published_at", "updated_at"])
    return template


# ------------------------------------------------------------------------------ stages models
@transaction.atomic
def save_stages_model(sandbox, *, name: str, stages: list[dict], transitions: list[dict] = (), description: str = "", stages_model=None) -> StagesModel:
    """Create or replace a draft stages model. ``stages``: [{"name", "kind"}] in order (kind:
    entry / intermediate / success / failure); ``transitions``: [{"from": name, "to": name}]."""
    if stages_model is not None and stages_model.status == StagesModelStatus.PUBLISHED:
        raise RuleViolation("A published stages model cannot be changed.", rule="stages_model_published")
    name = (name or "").strip()
    if not name:
        raise RuleViolation("A stages model needs a name.", rule="name_required", field="name")
    if StagesModel.objects.for_sandbox(sandbox).filter(name=name).exclude(pk=getattr(stages_model, "pk", None)).exists():
        raise RuleViolation(f'A stages model named "{name}" already exists.', rule="name_taken", field="name")
    names, kinds = [], []
    for index, spec in enumerate(stages or []):
        stage_name = str(spec.get("name") or "").strip()
        kind = spec.get("kind") or StageKind.INTERMEDIATE
        if not stage_name:
            raise RuleViolation(f"Stage {index + 1} needs a name.", rule="stage_name_required", field="stages")
        if stage_name.lower() in (n.lower() for n in names):
            raise RuleViolation(f'Two stages are named "{stage_name}".', rule="duplicate_stage", field="stages")
        if kind not in StageKind.values:
            raise RuleViolation(f'Stage "{stage_name}": kind must be one of {", ".join(StageKind.values)}.', rule="invalid_stage_kind", field="stages")
        names.append(stage_name)
        kinds.append(kind)
    if StageKind.ENTRY not in kinds:
        raise RuleViolation("A stages model needs at least one entry stage.", rule="entry_stage_required", field="stages")
    if kinds.count(StageKind.SUCCESS) != 1:
        raise RuleViolation("A stages model needs exactly one success stage.", rule="one_success_stage", field="stages")
    pairs = []
    for spec in transitions or []:
        source, target = str(spec.get("from", "")).strip(), str(spec.get("to", "")).strip()
        for end in (source, target):
            if end not in names:
                raise RuleViolation(f'Transition {source} → {target}: there is no stage "{end}".', rule="unknown_stage", field="transitions")
        if source == target:
            raise RuleViolation(f'Transition {source} → {target}: a stage cannot move to itself.', rule="invalid_transition", field="transitions")
        if kinds[names.index(source)] in (StageKind.SUCCESS, StageKind.FAILURE):
            raise RuleViolation(f'Transition {source} → {target}: "{source}" is a final stage.', rule="invalid_transition", field="transitions")
        if (source, target) not in pairs:
            pairs.append((source, target))
    if stages_model is None:
        stages_model = StagesModel(sandbox=sandbox)
    stages_model.name, stages_model.description = name, description
    stages_model.save()
    stages_model.stages.all().delete()  # cascades to the transitions
    created = Stage.objects.bulk_create(
        [Stage(sandbox=sandbox, stages_model=stages_model, name=n, kind=k, position=i) for i, (n, k) in enumerate(zip(names, kinds))]
    )
    by_name = {stage.name: stage for stage in Stage.objects.filter(stages_model=stages_model)} if created else {}
    StageTransition.objects.bulk_create(
        [StageTransition(sandbox=sandbox, stages_model=stages_model, from_stage=by_name[a], to_stage=by_name[b]) for a, b in pairs]
    )
    return stages_model


def publish_stages_model(stages_model: StagesModel) -> StagesModel:
    if stages_model.status != StagesModelStatus.PUBLISHED:
        stages_model.status, stages_model.published_at = StagesModelStatus.PUBLISHED, timezone.now()
        stages_model.save(update_fields=["status", "published_at", "updated_at"])
    return stages_model


def stages_model_as_dict(stages_model: StagesModel) -> dict:
    stages = list(stages_model.stages.all())
    names = {s.pk: s.name for s in stages}
    return {
        "stages": [{"name": s.name, "kind": s.kind} for s in stages],
        "transitions": [
            {"from": names[t.from_stage_id], "to": names[t.to_stage_id]}
            for t in stages_model.transitions.order_by("from_stage__position", "to_stage__position")
        ],
    }


# ------------------------------------------------------------------------- solution interests
def save_solution_interest(sandbox, *, name: str, roles_template, stages_model=None, description: str = "", solution_interest=None) -> SolutionInterest:
    name = (name or "").strip()
    if not name:
        raise RuleViolation("A solution interest needs a name.", rule="name_required", field="name")
    if roles_template is None or roles_template.sandbox_id != sandbox.pk:
        raise RuleViolation("Choose a roles template of this sandbox.", rule="roles_template_required", field="roles_template")
    if roles_template.status != TemplateStatus.LIVE:
        raise RuleViolation(
            f'The roles template "{roles_template.name}" is a draft: a solution interest uses a live template.',
            rule="template_not_live",
            field="roles_template",
        )
    if stages_model is not None:
        if stages_model.sandbox_id != sandbox.pk:
            raise RuleViolation("Choose a stages model of this sandbox.", rule="unknown_stages_model", field="stages_model")
        if stages_model.status != StagesModelStatus.PUBLISHED:
            raise RuleViolation(
                f'The stages model "{stages_model.name}" is a draft: publish it first.', rule="stages_model_not_published", field="stages_model"
            )
    if solution_interest is not None and solution_interest.buying_groups.exists():
        if solution_interest.stages_model_id != getattr(stages_model, "pk", None):
            raise RuleViolation(
                "The stages model cannot change once buying groups exist for this solution interest.",
                rule="stages_model_in_use",
                field="stages_model",
            )
    if SolutionInterest.objects.for_sandbox(sandbox).filter(name=name).exclude(pk=getattr(solution_interest, "pk", None)).exists():
        raise RuleViolation(f'A solution interest named "{name}" already exists.', rule="name_taken", field="name")
    solution_interest = solution_interest or SolutionInterest(sandbox=sandbox)
    solution_interest.name, solution_interest.description = name, description
    solution_interest.roles_template, solution_interest.stages_model = roles_template, stages_model
    solution_interest.save()
    return solution_interest


# -------------------------------------------------------------------------- one buying group
def buying_group_for(sandbox, account_id, solution_interest_id) -> BuyingGroup | None:
    return (
        BuyingGroup.objects.for_sandbox(sandbox)
        .select_related("stage", "solution_interest")
        .filter(account_id=account_id, solution_interest_id=solution_interest_id)
        .first()
    )


def resolve_stage(group: BuyingGroup, stage) -> Stage:
    model_id = group.solution_interest.stages_model_id
    if model_id is None:
        raise RuleViolation(f'"{group.solution_interest.name}" has no stages model.', rule="no_stages_model", field="stage")
    if isinstance(stage, Stage):
        found = stage if stage.stages_model_id == model_id else None
    elif isinstance(stage, int):
        found = Stage.objects.filter(stages_model_id=model_id, pk=stage).first()
    else:
        found = Stage.objects.filter(stages_model_id=model_id, name__iexact=str(stage).strip()).first()
    if found is None:
        raise RuleViolation(f'There is no stage "{stage}" in this stages model.', rule="unknown_stage", field="stage")
    return found


@transaction.atomic
def set_stage(group: BuyingGroup, stage, *, by=None) -> BuyingGroup:
    """Move the group to ``stage``: an entry stage when it has none yet, otherwise along an allowed
    transition. Moving to the current stage changes nothing."""
    who = _actor(by, group.sandbox)
    group = BuyingGroup.objects.select_for_update().select_related("solution_interest").get(pk=group.pk)
    target = resolve_stage(group, stage)
    if group.stage_id == target.pk:
        return group
    if group.stage_id is None:
        if target.kind != StageKind.ENTRY:
            raise RuleViolation(f'A buying group starts in an entry stage, not "{target.name}".', rule="invalid_transition", field="stage")
    elif not StageTransition.objects.filter(from_stage_id=group.stage_id, to_stage=target).exists():
        raise RuleViolation(
            f'A buying group cannot move from "{group.stage.name}" to "{target.name}".', rule="invalid_transition", field="stage"
        )
    _record_stage(group, target, who)
    return group


def _record_stage(group, target, who, now=None):
    now = now or timezone.now()
    BuyingGroupStageChange.objects.create(
        sandbox_id=group.sandbox_id, group=group, from_stage_id=group.stage_id, to_stage=target, changed_by=who, at=now
    )
    group.stage = target
    group.save(update_fields=["stage", "updated_at"])


def set_status(group: BuyingGroup, status, *, by=None) -> BuyingGroup:
    """Set the status. "in_progress" and "full" follow completeness, so asking for either one
    (re)activates the group with the one its completeness gives."""
    _actor(by, group.sandbox)
    if status not in BuyingGroupStatus.values:
        raise RuleViolation(
            f'Unknown status "{status}": use one of {", ".join(BuyingGroupStatus.values)}.', rule="invalid_status", field="status"
        )
    if status in AUTO_STATUSES:
        BuyingGroup.objects.filter(pk=group.pk).exclude(status__in=AUTO_STATUSES).update(
            status=BuyingGroupStatus.IN_PROGRESS, updated_at=timezone.now()
        )
        refresh_completeness([group.pk])
    else:
        BuyingGroup.objects.filter(pk=group.pk).exclude(status=status).update(status=status, updated_at=timezone.now())
    group.refresh_from_db()
    return group


def _account_people(group: BuyingGroup):
    return AccountPerson.objects.filter(account_id=group.account_id, is_active=True).values("person_id")


def assign_member(group: BuyingGroup, person_id: int, role, *, by=None) -> BuyingGroupMember:
    """Assign a person of the group's account to a role by hand (automatic assignment then leaves
    them alone). A person has one role per group; assigning again changes it."""
    refused = assign_members(group, [person_id], role, by=by)
    if person_id in refused:
        raise refused[person_id]
    return BuyingGroupMember.objects.get(group=group, person_id=person_id)


@transaction.atomic
def assign_members(group: BuyingGroup, person_ids, role, *, by=None) -> dict[int, RuleViolation]:
    """``assign_member`` for several people at once, set-wise; {person id: RuleViolation} for
    those who can't be members (the others are assigned)."""
    who = _actor(by, group.sandbox)
    role = resolve_role(group.sandbox, role)
    person_ids = list(dict.fromkeys(person_ids))
    known = set(Person.objects.filter(sandbox_id=group.sandbox_id, pk__in=person_ids).values_list("pk", flat=True))
    related = set(_account_people(group).filter(person_id__in=person_ids).values_list("person_id", flat=True))
    refused = {}
    for person_id in person_ids:
        if person_id not in known:
            refused[person_id] = RuleViolation(f"There is no person {person_id} in this sandbox.", rule="unknown_person", field="person")
        elif person_id not in related:
            refused[person_id] = RuleViolation(
                "Only people related to the group's account can be members.", rule="person_not_in_account", field="person"
            )
    accepted = [p for p in person_ids if p not in refused]
    if not accepted:
        return refused
    now = timezone.now()
    assignment = {"role": role, "assigned_how": AssignedHow.MANUAL, "assigned_by": who, "assigned_at": now}
    # One upsert: a member that automatic assignment adds meanwhile still gets the manual role.
    BuyingGroupMember.objects.bulk_create(
        [BuyingGroupMember(sandbox_id=group.sandbox_id, group=group, person_id=p, **assignment) for p in accepted],
        update_conflicts=True,
        unique_fields=["group", "person"],
        update_fields=["role", "assigned_how", "assigned_by", "assigned_at"],
    )
    BuyingGroup.objects.filter(pk=group.pk).update(updated_at=now)
    refresh_completeness([group.pk])
    return refused


def remove_member(group: BuyingGroup, person_id: int, *, by=None) -> bool:
    """Remove a member. Automatic assignment may add them back if they still match a role."""
    return bool(remove_members(group, [person_id], by=by))


@transaction.atomic
def remove_members(group: BuyingGroup, person_ids, *, by=None) -> int:
    """``remove_member`` for several people at once; returns how many were members."""
    _actor(by, group.sandbox)
    deleted, _ = BuyingGroupMember.objects.filter(group=group, person_id__in=list(person_ids)).delete()
    if deleted:
        BuyingGroup.objects.filter(pk=group.pk).update(updated_at=timezone.now())
        refresh_completeness([group.pk])
    return deleted


def members_by_role(group: BuyingGroup) -> list[dict]:
    """The group's members grouped by the template's roles (heaviest first), then any other role."""
    template_roles = list(TemplateRole.objects.filter(template_id=group.solution_interest.roles_template_id).select_related("role"))
    members = defaultdict(list)
    for member in group.members.select_related("person", "role").order_by("person__last_name", "person__first_name"):
        members[member.role_id].append(member)
    sections = []
    for template_role in template_roles:
        people = members.pop(template_role.role_id, [])
        sections.append({"role": template_role.role, "template_role": template_role, "members": people})
    for role_members in members.values():
        sections.append({"role": role_members[0].role, "template_role": None, "members": role_members})
    return sections


def assignable_people(group: BuyingGroup):
    """People of the group's account who are not members yet (for the "assign" picker)."""
    return (
        Person.objects.filter(sandbox_id=group.sandbox_id, pk__in=_account_people(group))
        .exclude(pk__in=group.members.values("person_id"))
        .order_by("last_name", "first_name", "pk")
    )


# ------------------------------------------------------------------------------ assignment
def assign_automatically(solution_interest: SolutionInterest, group_ids, *, person_ids=None, now=None) -> None:
    """Re-assign the automatic members of these groups of one solution interest, set-wise; only
    ``person_ids`` when given (the incremental path). Manual members stay as they are."""
    now = now or timezone.now()
    groups = dict(BuyingGroup.objects.filter(pk__in=list(group_ids), solution_interest=solution_interest).values_list("pk", "account_id"))
    if not groups:
        return
    sandbox = solution_interest.sandbox
    relations = AccountPerson.objects.filter(sandbox=sandbox, account_id__in=set(groups.values()), is_active=True)
    if person_ids is not None:
        relations = relations.filter(person_id__in=list(person_ids))
    people_of_account = defaultdict(set)
    for account_id, person_id in relations.values_list("account_id", "person_id"):
        people_of_account[account_id].add(person_id)
    candidates = set().union(*people_of_account.values()) if people_of_account else set()

    # The role each candidate gets: the heaviest template role whose condition matches.
    role_of_person = {}
    lookup = membership_lookup(sandbox)
    template_roles = TemplateRole.objects.filter(template_id=solution_interest.roles_template_id, condition__isnull=False)
    for template_role in template_roles.order_by("-weight", "id"):
        remaining = candidates - role_of_person.keys()
        if not remaining:
            break
        matched = compile_audience(template_role.condition, sandbox, restrict_to_ids=sorted(remaining), now=now, membership_lookup=lookup)
        for person_id in matched:
            role_of_person[person_id] = template_role.role_id

    existing = BuyingGroupMember.objects.filter(group_id__in=list(groups))
    if person_ids is not None:
        existing = existing.filter(person_id__in=list(person_ids))
    current = {(m["group_id"], m["person_id"]): m for m in existing.values("id", "group_id", "person_id", "role_id", "assigned_how")}
    wanted = {}
    for group_id, account_id in groups.items():
        for person_id in people_of_account.get(account_id, ()):
            if person_id in role_of_person:
                wanted[(group_id, person_id)] = role_of_person[person_id]

    # ``changed``: groups whose members move, so their updated_at says something changed.
    stale, moves, new, changed = [], defaultdict(list), [], set()
    for key, member in current.items():
        if member["assigned_how"] == AssignedHow.MANUAL:
            continue
        role_id = wanted.get(key)
        if role_id is None:
            stale.append(member["id"])
        elif role_id != member["role_id"]:
            moves[role_id].append(member["id"])
        else:
            continue
        changed.add(key[0])
    for key, role_id in wanted.items():
        if key not in current:
            new.append(BuyingGroupMember(sandbox=sandbox, group_id=key[0], person_id=key[1], role_id=role_id,
                                         assigned_how=AssignedHow.AUTO, assigned_by="auto", assigned_at=now))  # fmt: skip
            changed.add(key[0])
    with transaction.atomic():
        BuyingGroup.objects.filter(pk__in=changed).update(updated_at=now)
        BuyingGroupMember.objects.filter(pk__in=stale).delete()
        for role_id, ids in moves.items():
            BuyingGroupMember.objects.filter(pk__in=ids).update(role_id=role_id, assigned_at=now)
        # A concurrent run may have added the same member: the unique constraint keeps one.
        BuyingGroupMember.objects.bulk_create(new, ignore_conflicts=True)
        refresh_completeness(groups.keys(), now=now)


# ---------------------------------------------------------------------------------- builds
def start_build(solution_interest: SolutionInterest, audience: Audience, *, by=None) -> BuyingGroupBuild:
    """Queue (re)building the solution interest's groups over an account audience's accounts."""
    if by is not None:
        require_sandbox_role(by, solution_interest.sandbox, Role.MARKETER)
    if audience.sandbox_id != solution_interest.sandbox_id:
        raise RuleViolation("Choose an audience of this sandbox.", rule="unknown_audience", field="audience")
    if audience.kind != AudienceKind.ACCOUNT:
        raise RuleViolation(
            f'"{audience.name}" is a person audience: buying groups are built over an account audience.',
            rule="account_audience_required",
            field="audience",
        )
    from journeys.tasks import build_buying_groups

    with transaction.atomic():
        build, _ = BuyingGroupBuild.objects.select_for_update().get_or_create(
            solution_interest=solution_interest,
            audience=audience,
            defaults={"sandbox_id": solution_interest.sandbox_id, "created_by": by if by and by.is_authenticated else None},
        )
        if build.status != BuildStatus.RUNNING:
            build.status, build.checkpoint_account_id, build.processed_accounts, build.groups_created = BuildStatus.QUEUED, 0, 0, 0
            build.error = ""
            build.save()
        transaction.on_commit(lambda: build_buying_groups.delay(solution_interest.pk, audience.pk))
    return build


def run_build(build: BuyingGroupBuild, *, now=None) -> BuyingGroupBuild:
    """Create and fill the groups, chunk by chunk of accounts in id order. Each chunk commits with
    the checkpoint, so a crashed run resumes where it stopped; re-running changes nothing twice."""
    now = now or timezone.now()
    solution_interest = build.solution_interest
    realized = AudienceMember.objects.filter(audience=build.audience, status=MembershipStatus.REALIZED)
    if build.status != BuildStatus.RUNNING:
        # Membership changes after this point are applied by apply_audience_changes.
        cursor = AudienceMembershipChange.objects.filter(audience=build.audience).aggregate(m=Max("id"))["m"] or 0
        BuyingGroupBuild.objects.filter(pk=build.pk).update(
            status=BuildStatus.RUNNING, started_at=now, finished_at=None, membership_cursor=cursor,
            total_accounts=realized.count(), error="",
        )  # fmt: skip
        build.refresh_from_db()
    accounts = Account.objects.filter(sandbox_id=build.sandbox_id, pk__in=realized.values("member_id")).order_by("pk")
    while True:
        chunk = list(accounts.filter(pk__gt=build.checkpoint_account_id).values_list("pk", flat=True)[:BUILD_CHUNK])
        if not chunk:
            break
        with transaction.atomic():
            created = _activate_groups(solution_interest, chunk, now=now)
            BuyingGroupBuild.objects.filter(pk=build.pk).update(checkpoint_account_id=chunk[-1])
            build.checkpoint_account_id = chunk[-1]
            build.processed_accounts += len(chunk)
            build.groups_created += created
            BuyingGroupBuild.objects.filter(pk=build.pk).update(
                processed_accounts=build.processed_accounts, groups_created=build.groups_created
            )
    # Groups of accounts in none of the solution interest's audiences stay, inactive.
    BuyingGroup.objects.filter(solution_interest=solution_interest).exclude(account_id__in=_source_accounts(solution_interest)).exclude(
        status=BuyingGroupStatus.INACTIVE
    ).update(status=BuyingGroupStatus.INACTIVE, updated_at=now)
    refresh_engagement(build.sandbox, group_ids=BuyingGroup.objects.filter(solution_interest=solution_interest).values_list("pk", flat=True), now=now)
    build.status, build.finished_at = BuildStatus.SUCCEEDED, timezone.now()
    BuyingGroupBuild.objects.filter(pk=build.pk).update(status=build.status, finished_at=build.finished_at)
    return build


def fail_build(build_id: int, error: str) -> None:
    BuyingGroupBuild.objects.filter(pk=build_id).update(status=BuildStatus.FAILED, error=error[:2000], finished_at=timezone.now())


def _activate_groups(solution_interest, account_ids, *, now) -> int:
    """Make sure these accounts have an active group (new ones start in the first entry stage),
    then assign their members. Returns how many groups were created."""
    existing = set(BuyingGroup.objects.filter(solution_interest=solution_interest, account_id__in=account_ids).values_list("account_id", flat=True))
    fresh = [
        BuyingGroup(sandbox_id=solution_interest.sandbox_id, solution_interest=solution_interest, account_id=account_id)
        for account_id in account_ids
        if account_id not in existing
    ]
    BuyingGroup.objects.bulk_create(fresh, ignore_conflicts=True)
    groups = BuyingGroup.objects.filter(solution_interest=solution_interest, account_id__in=account_ids)
    groups.filter(status=BuyingGroupStatus.INACTIVE).update(status=BuyingGroupStatus.IN_PROGRESS, updated_at=now)
    entry = _first_entry_stage(solution_interest)
    if entry is not None:
        for group in groups.filter(stage__isnull=True):
            _record_stage(group, entry, "system", now)
    assign_automatically(solution_interest, list(groups.values_list("pk", flat=True)), now=now)
    return len(fresh)


def _source_accounts(solution_interest):
    """Ids of the accounts now in any audience the solution interest's groups are built over."""
    audiences = BuyingGroupBuild.objects.filter(solution_interest=solution_interest).values("audience_id")
    return AudienceMember.objects.filter(audience_id__in=audiences, status=MembershipStatus.REALIZED).values("member_id")


def _first_entry_stage(solution_interest):
    if solution_interest.stages_model_id is None:
        return None
    return Stage.objects.filter(stages_model_id=solution_interest.stages_model_id, kind=StageKind.ENTRY).order_by("position").first()


# ------------------------------------------------------------------------- keeping current
def reassign_for_profile_changes(sandbox, *, person_ids=(), account_ids=(), now=None) -> int:
    """Profiles changed: re-assign the changed people (in their accounts' groups and in groups
    they are members of) and everyone in the changed accounts' groups. Returns groups touched."""
    person_ids, account_ids = set(person_ids), set(account_ids)
    groups = BuyingGroup.objects.for_sandbox(sandbox)
    touched = 0
    if account_ids:
        by_interest = defaultdict(list)
        for group_id, interest_id in groups.filter(account_id__in=account_ids).values_list("pk", "solution_interest_id"):
            by_interest[interest_id].append(group_id)
        for interest in SolutionInterest.objects.filter(pk__in=by_interest).select_related("sandbox"):
            assign_automatically(interest, by_interest[interest.pk], now=now)
            touched += len(by_interest[interest.pk])
    if person_ids:
        related = AccountPerson.objects.filter(sandbox=sandbox, person_id__in=person_ids).values("account_id")
        member_of = BuyingGroupMember.objects.filter(sandbox=sandbox, person_id__in=person_ids).values("group_id")
        by_interest = defaultdict(list)
        for group_id, interest_id in (
            groups.filter(Q(account_id__in=related) | Q(pk__in=member_of)).exclude(account_id__in=account_ids).values_list("pk", "solution_interest_id")
        ):
            by_interest[interest_id].append(group_id)
        for interest in SolutionInterest.objects.filter(pk__in=by_interest).select_related("sandbox"):
            assign_automatically(interest, by_interest[interest.pk], person_ids=person_ids, now=now)
            touched += len(by_interest[interest.pk])
    return touched


def apply_audience_changes(build: BuyingGroupBuild, *, now=None) -> dict:
    """Apply the source audience's membership changes past the build's cursor: accounts that
    entered get (or get back) an active group, accounts that exited make theirs inactive."""
    now = now or timezone.now()
    with transaction.atomic():
        build = BuyingGroupBuild.objects.select_for_update().select_related("solution_interest__sandbox").get(pk=build.pk)
        if build.status not in (BuildStatus.RUNNING, BuildStatus.SUCCEEDED):
            return {"entered": 0, "exited": 0}
        latest = {}
        for change_id, member_id, change in (
            AudienceMembershipChange.objects.filter(audience_id=build.audience_id, pk__gt=build.membership_cursor)
            .order_by("pk")
            .values_list("pk", "member_id", "change")
        ):
            latest[member_id] = change
            build.membership_cursor = change_id
        entered = sorted(m for m, c in latest.items() if c == AudienceMembershipChange.Change.ENTERED)
        exited = [m for m, c in latest.items() if c == AudienceMembershipChange.Change.EXITED]
        entered = list(Account.objects.filter(sandbox_id=build.sandbox_id, pk__in=entered).values_list("pk", flat=True))
        for start in range(0, len(entered), BUILD_CHUNK):
            _activate_groups(build.solution_interest, entered[start : start + BUILD_CHUNK], now=now)
        BuyingGroup.objects.filter(solution_interest_id=build.solution_interest_id, account_id__in=exited).exclude(
            account_id__in=_source_accounts(build.solution_interest)
        ).update(status=BuyingGroupStatus.INACTIVE, updated_at=now)
        BuyingGroupBuild.objects.filter(pk=build.pk).update(membership_cursor=build.membership_cursor)
    return {"entered": len(entered), "exited": len(exited)}


def refresh_daily(sandbox, *, now=None) -> dict:
    """The daily pass: conditions with time windows ("clicked in the last 30 days") are re-checked
    for every group of their solution interests, then every group's engagement is recomputed."""
    from cdp.segmentation.ast import from_tree, uses_relative_time

    now = now or timezone.now()
    rechecked = 0
    for interest in SolutionInterest.objects.for_sandbox(sandbox).select_related("sandbox"):
        conditions = TemplateRole.objects.filter(template_id=interest.roles_template_id, condition__isnull=False).values_list("condition", flat=True)
        if not any(uses_relative_time(from_tree(condition)) for condition in conditions):
            continue
        ids = list(BuyingGroup.objects.filter(solution_interest=interest).order_by("pk").values_list("pk", flat=True))
        for start in range(0, len(ids), BUILD_CHUNK):
            assign_automatically(interest, ids[start : start + BUILD_CHUNK], now=now)
        rechecked += len(ids)
    return {"rechecked": rechecked, "scored": refresh_engagement(sandbox, now=now)}


def move_members_on_merge(sandbox_id, survivor_id, merged_id) -> None:
    """People merged: the merged person's memberships become the survivor's (one per group)."""
    held = BuyingGroupMember.objects.filter(sandbox_id=sandbox_id, person_id=survivor_id).values("group_id")
    BuyingGroupMember.objects.filter(sandbox_id=sandbox_id, person_id=merged_id, group_id__in=held).delete()
    BuyingGroupMember.objects.filter(sandbox_id=sandbox_id, person_id=merged_id).update(person_id=survivor_id)


# --------------------------------------------------------------------------------- filters
def accounts_with_buying_group(sandbox, *, solution_interest_id=None, status=None, stage=None):
    """Ids of the sandbox's accounts that have a buying group (of this solution interest, in this
    status, in the stage with this name, when given)."""
    groups = BuyingGroup.objects.for_sandbox(sandbox)
    if solution_interest_id is not None:
        groups = groups.filter(solution_interest_id=solution_interest_id)
    if status:
        groups = groups.filter(status=status)
    if stage:
        groups = groups.filter(stage__name__iexact=stage) if isinstance(stage, str) else groups.filter(stage_id=getattr(stage, "pk", stage))
    return groups.order_by().values_list("account_id", flat=True)


def people_in_buying_groups(sandbox, *, solution_interest_id=None, role=None):
    """Ids of the people who are members of a buying group (of this solution interest, with this
    role — a name, id or row — when given)."""
    members = BuyingGroupMember.objects.for_sandbox(sandbox)
    if solution_interest_id is not None:
        members = members.filter(group__solution_interest_id=solution_interest_id)
    if role:
        members = members.filter(role=resolve_role(sandbox, role))
    return members.order_by().values_list("person_id", flat=True)


def buying_group_filters(sandbox, subject: str, condition: dict, *, restrict_to_ids=None):
    """The ids (accounts or people, by ``subject``) meeting a journey split's buying group
    condition, among ``restrict_to_ids`` when given."""
    condition = condition or {}
    if subject == AudienceKind.ACCOUNT:
        matching = accounts_with_buying_group(
            sandbox, solution_interest_id=condition.get("solution_interest_id"), status=condition.get("status"), stage=condition.get("stage")
        )
        wanted, model = condition.get("has", True), Account
    elif subject == AudienceKind.PERSON:
        matching = people_in_buying_groups(sandbox, solution_interest_id=condition.get("solution_interest_id"), role=condition.get("role"))
        wanted, model = condition.get("member", True), Person
    else:
        raise RuleViolation(f'Unknown subject "{subject}": use account or person.', rule="invalid_subject", field="subject")
    if condition.get("status") and condition["status"] not in BuyingGroupStatus.values:
        raise RuleViolation(f'Unknown buying group status "{condition["status"]}".', rule="invalid_status", field="status")
    subjects = model.objects.filter(sandbox=sandbox)
    if restrict_to_ids is not None:
        subjects = subjects.filter(pk__in=restrict_to_ids)
    subjects = subjects.filter(pk__in=matching) if wanted else subjects.exclude(pk__in=matching)
    return subjects.order_by().values_list("pk", flat=True)


# ------------------------------------------------------------------------------- dashboard
def buying_group_summary(sandbox, *, solution_interest_id=None) -> dict:
    """Counts by status and by stage, and the average scores: the dashboard and its API."""
    groups = BuyingGroup.objects.for_sandbox(sandbox)
    if solution_interest_id:
        groups = groups.filter(solution_interest_id=solution_interest_id)
    by_status = dict(groups.order_by().values_list("status").annotate(n=Count("id")))
    by_stage = (
        groups.order_by().values("solution_interest__name", "stage__name", "stage__position")
        .annotate(n=Count("id"))
        .order_by("solution_interest__name", "stage__position")
    )
    averages = groups.aggregate(completeness=Avg("completeness_score"), engagement=Avg("engagement_score"))
    total = sum(by_status.values())
    return {
        "total": total,
        "by_status": [
            {"status": s.value, "label": s.label, "count": by_status.get(s.value, 0),
             "percent": round(100 * by_status.get(s.value, 0) / total) if total else 0}
            for s in BuyingGroupStatus
        ],  # fmt: skip
        "by_stage": [
            {"solution_interest": row["solution_interest__name"], "stage": row["stage__name"], "count": row["n"],
             "percent": round(100 * row["n"] / total) if total else 0}
            for row in by_stage
        ],  # fmt: skip
        "average_completeness": round(averages["completeness"] or 0, 1),
        "average_engagement": round(averages["engagement"] or 0, 1),
    }
