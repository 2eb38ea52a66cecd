"""Journeys as authored: create and change them, save their graph, validate, publish (freeze a
version and convert it to a campaign plan), close, abort, finish and duplicate.

Lifecycle: draft → validated → live → closed (to new entries) → finished, or aborted from live or
closed. Only drafts and validated journeys are edited (a change makes a validated journey a draft
again); a live journey is duplicated instead. ``validate_journey`` returns every problem as
``{"node", "code", "message"}`` (plus ``path``, a JSON path into the graph, when it helps);
``publish_journey`` refuses with ``JourneyInvalid`` carrying that list.
"""

import datetime as dt
import itertools

from django.db import transaction
from django.dispatch import Signal
from django.utils import timezone

from cdp.choices import AudienceKind, Role
from cdp.exceptions import RuleViolation
from cdp.models import Audience, MarketingList
from cdp.schema import ACCOUNT_FIELDS, PERSON_FIELDS
from cdp.services.access import require_sandbox_role
from cdp.services.audience_io import DefinitionError, read_definition
from journeys import graph as graphs
from journeys.models import EmailAsset, Journey, JourneyState, JourneyVersion
from journeys.models.journeys import EDITABLE_STATES, RUNNING_STATES

MAX_DURATION = dt.timedelta(days=3 * 365)

# Sent once a publish commits (sandbox_id, journey_id, version_id): the runtime enrolls the
# audience's current accounts.
journey_published = Signal()


class JourneyInvalid(RuleViolation):
    """Publishing refused: ``errors`` lists what to fix, node by node."""

    def __init__(self, errors: list[dict]):
        count = len(errors)
        super().__init__(
            f"The journey can't be published: {count} problem{'s' if count != 1 else ''} to fix.",
            rule="journey_invalid",
        )
        self.errors = errors


# --------------------------------------------------------------------------- create / change
def _check_dates(start_at, end_at):
    if start_at is None:
        raise RuleViolation("Give the journey a start date.", rule="journey_dates", field="start_at")
    if end_at is None:
        raise RuleViolation("A journey needs an end date.", rule="journey_end_required", field="end_at")
    if end_at <= start_at:
        raise RuleViolation("The end date must come after the start date.", rule="journey_dates", field="end_at")
    if end_at - start_at > MAX_DURATION:
        raise RuleViolation(
            "A journey runs at most 3 years: move the end date closer to the start.", rule="journey_too_long", field="end_at"
        )


def _account_audience(sandbox, audience_id):
    if audience_id in (None, ""):
        return None
    audience = Audience.objects.for_sandbox(sandbox).filter(pk=audience_id).first()
    if audience is None:
        raise RuleViolation("No such audience in this sandbox.", rule="unknown_audience", field="audience")
    if audience.kind != AudienceKind.ACCOUNT:
        raise RuleViolation(
            f'"{audience.name}" is a person audience; journeys start from an account audience.',
            rule="journey_account_audience",
            field="audience",
        )
    return audience


def _check_reentry(allow_reentry, interval):
    if interval is not None and interval < dt.timedelta(0):
        raise RuleViolation("The re-entry interval can't be negative.", rule="journey_reentry", field="reentry_interval")
    if interval and not allow_reentry:
        raise RuleViolation(
            "A re-entry interval only applies when re-entry is allowed.", rule="journey_reentry", field="reentry_interval"
        )


def _check_name(sandbox, name, journey=None):
    name = (name or "").strip()
    if not name:
        raise RuleViolation("Give the journey a name.", rule="journey_name", field="name")
    taken = Journey.objects.for_sandbox(sandbox).filter(name=name)
    if journey is not None:
        taken = taken.exclude(pk=journey.pk)
    if taken.exists():
        raise RuleViolation(f'A journey named "{name}" already exists here.', rule="journey_name_taken", field="name")
    return name


@transaction.atomic
def create_journey(
    sandbox, *, name, start_at, end_at, audience_id=None, description="", allow_reentry=False,
    reentry_interval=None, graph=None, by=None,
) -> Journey:  # fmt: skip
    if by is not None:
        require_sandbox_role(by, sandbox, Role.MARKETER)
    _check_dates(start_at, end_at)
    _check_reentry(allow_reentry, reentry_interval)
    audience = _account_audience(sandbox, audience_id)
    journey = Journey(
        sandbox=sandbox, name=_check_name(sandbox, name), description=description or "", start_at=start_at,
        end_at=end_at, allow_reentry=allow_reentry, reentry_interval=reentry_interval if allow_reentry else None,
        created_by=by if by is not None and by.is_authenticated else None,
    )  # fmt: skip
    if graph is not None:
        _check_document(graph)
    graph = graph if graph is not None else graphs.new_graph()
    journey.graph = _with_start_audience(graph, audience.pk) if audience else graph
    journey.audience = _start_audience(sandbox, journey.graph)
    journey.save()
    return journey


def _require_editable(journey):
    if journey.state not in EDITABLE_STATES:
        raise RuleViolation(
            f"This journey is {journey.get_state_display().lower()}: it can't be edited. Duplicate it to make changes.",
            rule="journey_not_editable",
        )


@transaction.atomic
def update_journey(journey, *, by=None, **changes) -> Journey:
    """Change name, description, audience_id, start_at, end_at, allow_reentry, reentry_interval."""
    journey = Journey.objects.select_for_update().get(pk=journey.pk)
    if by is not None:
        require_sandbox_role(by, journey.sandbox, Role.MARKETER)
    _require_editable(journey)
    if "name" in changes:
        journey.name = _check_name(journey.sandbox, changes["name"], journey)
    if "description" in changes:
        journey.description = changes["description"] or ""
    for field in ("start_at", "end_at", "allow_reentry", "reentry_interval"):
        if field in changes:
            setattr(journey, field, changes[field])
    _check_dates(journey.start_at, journey.end_at)
    _check_reentry(journey.allow_reentry, journey.reentry_interval)
    if not journey.allow_reentry:
        journey.reentry_interval = None
    if "audience_id" in changes:
        audience = _account_audience(journey.sandbox, changes["audience_id"])
        journey.audience = audience
        journey.graph = _with_start_audience(journey.graph, audience.pk if audience else None)
    journey.state = JourneyState.DRAFT
    journey.save()
    return journey


def _with_start_audience(graph, audience_id):
    graph = dict(graph)
    nodes = {**graphs.nodes_of(graph)}
    start = graph.get("start")
    if isinstance(nodes.get(start), dict):
        nodes[start] = {**nodes[start], "audience_id": audience_id}
        graph["nodes"] = nodes
    return graph


def _start_audience(sandbox, graph):
    """The journey's audience as the graph's start node names it (when it is a valid one)."""
    start = graphs.nodes_of(graph).get(graph.get("start")) if isinstance(graph, dict) else None
    audience_id = start.get("audience_id") if isinstance(start, dict) else None
    if not isinstance(audience_id, int) or isinstance(audience_id, bool):
        return None
    return Audience.objects.for_sandbox(sandbox).filter(pk=audience_id, kind=AudienceKind.ACCOUNT).first()


@transaction.atomic
def save_graph(journey, graph, *, by=None) -> Journey:
    """Store a new working graph (any shape: validation tells what is wrong; a graph that isn't
    even a document is refused). The start node's audience becomes the journey's audience."""
    journey = Journey.objects.select_for_update().get(pk=journey.pk)
    if by is not None:
        require_sandbox_role(by, journey.sandbox, Role.MARKETER)
    _require_editable(journey)
    _check_document(graph)
    journey.graph = graph
    journey.audience = _start_audience(journey.sandbox, graph)
    journey.state = JourneyState.DRAFT
    journey.save()
    return journey


def _check_document(graph):
    """Any content is stored (validation tells what is wrong) but it must be a graph document."""
    if (
        not isinstance(graph, dict)
        or not isinstance(graph.get("nodes"), dict)
        or not all(isinstance(node, dict) for node in graph["nodes"].values())
    ):
        raise RuleViolation(
            'A graph is a JSON object {"start": …, "nodes": {"<id>": {"type": …}, …}, "layout": {…}}.',
            rule="journey_graph",
            field="graph",
        )


def edit_graph(journey, operation: str, graph=None, **arguments) -> dict:
    """Apply one guarded editing operation of journeys.graph to ``graph`` (default the journey's
    working graph) and return the new document, without saving it (the canvas saves)."""
    operations = {
        "add_node": graphs.add_node, "add_path": graphs.add_path, "connect": graphs.connect,
        "delete_node": graphs.delete_node, "delete_path": graphs.delete_path, "move_node": graphs.move_node,
        "update_node": graphs.update_node, "update_path": graphs.update_path, "set_other_path": graphs.set_other_path,
    }  # fmt: skip
    _require_editable(journey)
    if operation not in operations:
        raise RuleViolation(f"Unknown operation; use one of {', '.join(operations)}.", rule="journey_graph_edit", field="op")
    graph = journey.graph if graph is None else graph
    _check_document(graph)
    try:
        result = operations[operation](graph, **arguments)
    except TypeError as error:
        raise RuleViolation(f"Wrong arguments for {operation}: {error}", rule="journey_graph_edit", field="args") from None
    return result[0] if isinstance(result, tuple) else result


# ------------------------------------------------------------------------------- validation
def validate_journey(journey, graph=None) -> list[dict]:
    """Every problem that stops ``journey`` (with ``graph``, default its working graph) from
    being published, as ``{"node", "code", "message"[, "path"]}``; empty when it is valid."""
    graph = journey.graph if graph is None else graph
    errors = graphs.structure_errors(graph, start_at=journey.start_at, end_at=journey.end_at)
    if not any(e.code == "invalid_graph" for e in errors):
        errors.extend(_reference_errors(journey, graph))
    if journey.end_at and journey.end_at <= timezone.now():
        errors.append(graphs.GraphError(None, "journey_ended", "The end date has passed: move it to the future."))
    return [e.to_dict() for e in errors]


@transaction.atomic
def check_journey(journey, *, by=None) -> list[dict]:
    """The "validate" action: a valid draft becomes validated; an invalid one stays (or goes
    back to) draft. Returns the errors."""
    journey = Journey.objects.select_for_update().get(pk=journey.pk)
    if by is not None:
        require_sandbox_role(by, journey.sandbox, Role.MARKETER)
    _require_editable(journey)
    errors = validate_journey(journey)
    journey.state = JourneyState.DRAFT if errors else JourneyState.VALIDATED
    journey.save(update_fields=["state", "updated_at"])
    return errors


class _References:
    """The sandbox's objects a graph may name, loaded once per validation."""

    def __init__(self, sandbox):
        from journeys.choices import DEFAULT_ROLES
        from journeys.models import BuyingGroupRole, SolutionInterest, Stage

        self.sandbox = sandbox
        self.audiences = {a.pk: a for a in Audience.objects.for_sandbox(sandbox)}
        self.emails = set(EmailAsset.objects.for_sandbox(sandbox).values_list("pk", flat=True))
        self.lists = set(MarketingList.objects.for_sandbox(sandbox).values_list("pk", flat=True))
        self.journeys = set(Journey.objects.for_sandbox(sandbox).values_list("pk", flat=True))
        self.interests = {
            si.pk: si.stages_model_id for si in SolutionInterest.objects.for_sandbox(sandbox).only("pk", "stages_model_id")
        }
        self.stages = {}
        for model_id, name in Stage.objects.for_sandbox(sandbox).values_list("stages_model_id", "name"):
            self.stages.setdefault(model_id, set()).add(name)
        # The default roles exist in every sandbox, even before their rows are seeded.
        self.roles = set(DEFAULT_ROLES) | set(BuyingGroupRole.objects.for_sandbox(sandbox).values_list("name", flat=True))
        self._marketo_lists = None

    @property
    def marketo_lists(self) -> bool:
        """A journey-subscription pairing lets list actions name Marketo static list ids."""
        if self._marketo_lists is None:
            from connectors.choices import PairingKind
            from connectors.models import Pairing

            self._marketo_lists = Pairing.objects.filter(sandbox=self.sandbox, kind=PairingKind.JOURNEY_SUBSCRIPTION).exists()
        return self._marketo_lists


def _as_id(value):
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _reference_errors(journey, graph) -> list:
    refs = _References(journey.sandbox)
    errors = []
    for node_id, node in graphs.nodes_of(graph).items():
        if not isinstance(node, dict):
            continue
        base = f"$.nodes.{node_id}"

        def error(code, message, path="", node_id=node_id):
            errors.append(graphs.GraphError(node_id, code, message, path))

        kind = node.get("type")
        if kind == "start":
            audience = refs.audiences.get(_as_id(node.get("audience_id")))
            if node.get("audience_id") in (None, ""):
                error("start_audience", "Pick the account audience whose accounts enter the journey.", f"{base}.audience_id")
            elif audience is None:
                error("start_audience", "The start's audience does not exist in this sandbox.", f"{base}.audience_id")
            elif audience.kind != AudienceKind.ACCOUNT:
                error("start_audience", f'"{audience.name}" is a person audience; the start needs an account audience.', f"{base}.audience_id")
        elif kind in graphs.SPLIT_TYPES:
            subject = "account" if kind == "split_accounts" else "person"
            for index, split_path in enumerate(node.get("paths") or []):
                if isinstance(split_path, dict) and isinstance(split_path.get("condition"), dict):
                    for problem in _condition_errors(refs, split_path["condition"], subject, f"{base}.paths[{index}].condition"):
                        error(*problem)
        elif kind == "action":
            for problem in _action_errors(refs, node, base, journey):
                error(*problem)
        elif kind == "listen":
            event = node.get("event") if isinstance(node.get("event"), dict) else {}
            if event.get("type") == "buying_group.changed" and event.get("solution_interest_id"):
                if _as_id(event["solution_interest_id"]) not in refs.interests:
                    error("unknown_solution_interest", "No such solution interest in this sandbox.", f"{base}.event.solution_interest_id")
            if event.get("type") == "data.changed" and event.get("field") and not _known_field(event["field"], ("person", "account")):
                error("unknown_field", f'Unknown field "{event["field"]}".', f"{base}.event.field")
    return errors


def _known_field(name, subjects) -> bool:
    """person/account standard fields (bare, or as person.x / account.x) and attributes.<name>."""
    if not isinstance(name, str) or not name:
        return False
    scope, _, rest = name.partition(".")
    if rest and scope in subjects:
        name = rest
        subjects = (scope,)
    if name.startswith("attributes.") and len(name) > len("attributes."):
        return True
    fields = {"person": PERSON_FIELDS, "account": ACCOUNT_FIELDS}
    return any(name in fields[s] for s in subjects)


def _condition_errors(refs, condition, subject, where):
    rule = condition.get("rule")
    if rule is not None:
        try:
            parsed = read_definition(definition={"subject": subject, "condition": rule})
        except DefinitionError as problem:
            json_path = problem.location.get("json_path", "")
            path = f"{where}.rule{json_path[len('$.condition'):]}" if json_path.startswith("$.condition") else f"{where}.rule"
            yield "invalid_condition", f"The condition doesn't read: {problem.message}", path
        else:
            from cdp.segmentation import referenced_audiences

            missing = sorted(a for a in referenced_audiences(parsed.ast) if _as_id(a) not in refs.audiences)
            if missing:
                yield "unknown_audience", f"The condition refers to audience(s) {', '.join(missing)}, which this sandbox does not have.", f"{where}.rule"
    group = condition.get("buying_group")
    if group is None:
        return
    if not isinstance(group, dict):
        yield "invalid_condition", "A buying group condition is an object.", f"{where}.buying_group"
        return
    flag = "has" if subject == "account" else "member"
    allowed = {"account": {"has", "solution_interest_id", "status", "stage"}, "person": {"member", "solution_interest_id", "role"}}[subject]
    unknown = sorted(set(group) - allowed)
    if unknown:
        yield "invalid_condition", f"Unknown buying group condition key(s): {', '.join(unknown)} (use {', '.join(sorted(allowed))}).", f"{where}.buying_group"
    if flag in group and not isinstance(group[flag], bool):
        yield "invalid_condition", f'"{flag}" is true or false.', f"{where}.buying_group.{flag}"
    yield from _buying_group_errors(refs, group, f"{where}.buying_group")


def _buying_group_errors(refs, params, where):
    from journeys.choices import BuyingGroupStatus

    interest_id = _as_id(params.get("solution_interest_id"))
    if params.get("solution_interest_id") is not None and interest_id not in refs.interests:
        yield "unknown_solution_interest", "No such solution interest in this sandbox.", f"{where}.solution_interest_id"
        return
    if params.get("status") not in (None, "") and params["status"] not in BuyingGroupStatus.values:
        yield "unknown_status", f"A buying group status is one of {', '.join(BuyingGroupStatus.values)}.", f"{where}.status"
    if params.get("stage") not in (None, ""):
        if interest_id is None:
            yield "missing_param", "A stage belongs to a solution interest: pick one.", f"{where}.solution_interest_id"
        elif refs.interests[interest_id] is None:
            yield "unknown_stage", "This solution interest has no stages model.", f"{where}.stage"
        elif params["stage"] not in refs.stages.get(refs.interests[interest_id], set()):
            yield "unknown_stage", f'"{params["stage"]}" is not a stage of this solution interest\'s stages model.', f"{where}.stage"
    if params.get("role") not in (None, "") and params["role"] not in refs.roles:
        yield "unknown_role", f'"{params["role"]}" is not a buying group role of this sandbox.', f"{where}.role"


def _action_errors(refs, node, base, journey):
    action = node.get("action")
    params = node.get("params") if isinstance(node.get("params"), dict) else {}
    where = f"{base}.params"
    if action == "send_email" or (action == "sales_alert" and params.get("email_id")):
        if params.get("email_id") not in (None, "") and _as_id(params["email_id"]) not in refs.emails:
            yield "unknown_email", "This email does not exist in this sandbox.", f"{where}.email_id"
    group_actions = ("update_buying_group_stage", "update_buying_group_status", "assign_buying_group_member", "remove_buying_group_member")
    if action in group_actions and params.get("solution_interest_id") is not None:  # missing: the shape check says so
        yield from _buying_group_errors(refs, params, where)
    if action in ("add_to_list", "remove_from_list") and params.get("list_id") not in (None, ""):
        if _as_id(params["list_id"]) not in refs.lists and not refs.marketo_lists:
            yield "unknown_list", "No such static list in this sandbox.", f"{where}.list_id"
    if action in ("update_person_field", "update_account_field") and params.get("field"):
        subject = "person" if action == "update_person_field" else "account"
        if not _known_field(params["field"], (subject,)):
            yield "unknown_field", f'Unknown {subject} field "{params["field"]}".', f"{where}.field"
    if action == "add_to_journey" and params.get("journey_id") not in (None, ""):
        target = _as_id(params["journey_id"])
        if target not in refs.journeys:
            yield "unknown_journey", "No such journey in this sandbox.", f"{where}.journey_id"
        elif target == journey.pk:
            yield "invalid_param", "A journey can't add accounts to itself.", f"{where}.journey_id"


# --------------------------------------------------------------------------------- lifecycle
def request_publish(journey, *, by=None) -> Journey:
    """Check the journey now (refusing with the errors) and queue the publish task."""
    from journeys.authoring_tasks import publish_journey_task

    if by is not None:
        require_sandbox_role(by, journey.sandbox, Role.MARKETER)
    _require_editable(journey)
    errors = validate_journey(journey)
    if errors:
        raise JourneyInvalid(errors)
    user_id = by.pk if by is not None and by.is_authenticated else None
    transaction.on_commit(lambda: publish_journey_task.delay(journey.pk, user_id))
    return journey


@transaction.atomic
def publish_journey(journey, *, by=None) -> JourneyVersion:
    """Freeze the working graph as the next version, convert it to its campaign plan and set the
    journey live. Idempotent: publishing a journey that is already live returns its version."""
    from journeys.services.campaigns import build_campaign_plan

    journey = Journey.objects.select_for_update().get(pk=journey.pk)
    if journey.state in RUNNING_STATES and journey.current_version_id:
        return journey.current_version
    _require_editable(journey)
    errors = validate_journey(journey)
    if errors:
        raise JourneyInvalid(errors)
    now = timezone.now()
    number = (journey.versions.order_by("-number").values_list("number", flat=True).first() or 0) + 1
    version = JourneyVersion.objects.create(
        sandbox=journey.sandbox, journey=journey, number=number, graph=journey.graph, published_at=now,
        published_by=by if by is not None and by.is_authenticated else None,
    )  # fmt: skip
    build_campaign_plan(version)
    journey.current_version = version
    journey.audience = _start_audience(journey.sandbox, journey.graph)
    journey.state = JourneyState.LIVE
    journey.published_at = now
    journey.save()
    transaction.on_commit(
        lambda: journey_published.send(Journey, sandbox_id=journey.sandbox_id, journey_id=journey.pk, version_id=version.pk)
    )
    return version


def _transition(journey, allowed, state, stamp, by, message):
    with transaction.atomic():
        journey = Journey.objects.select_for_update().get(pk=journey.pk)
        if by is not None:
            require_sandbox_role(by, journey.sandbox, Role.MARKETER)
        if journey.state not in allowed:
            raise RuleViolation(message.format(state=journey.get_state_display().lower()), rule="journey_state")
        journey.state = state
        setattr(journey, stamp, timezone.now())
        journey.save()
    return journey


def close_journey(journey, *, by=None) -> Journey:
    """No new accounts enter; those inside carry on to the end."""
    return _transition(journey, (JourneyState.LIVE,), JourneyState.CLOSED, "closed_at", by, "Only a live journey can be closed; this one is {state}.")


def abort_journey(journey, *, by=None) -> Journey:
    """Stop at once: accounts inside go no further."""
    return _transition(journey, RUNNING_STATES, JourneyState.ABORTED, "ended_at", by, "Only a live or closed journey can be aborted; this one is {state}.")


def finish_journey(journey) -> Journey:
    """Its end date has passed (or everyone has left a closed journey): it is done."""
    return _transition(journey, RUNNING_STATES, JourneyState.FINISHED, "ended_at", None, "Only a live or closed journey can finish; this one is {state}.")


def finish_ended_journeys(now=None) -> list[int]:
    """Finish every running journey whose end date has passed (a periodic task calls it)."""
    now = now or timezone.now()
    ids = list(Journey.objects.filter(state__in=RUNNING_STATES, end_at__lte=now).values_list("pk", flat=True))
    for journey in Journey.objects.filter(pk__in=ids):
        finish_journey(journey)
    return ids


@transaction.atomic
def duplicate_journey(journey, *, name=None, by=None) -> Journey:
    """A new draft with the same settings and the graph it runs (the live version's when there
    is one); emails are the same assets, referenced by id."""
    journey = Journey.objects.select_related("current_version").get(pk=journey.pk)
    if by is not None:
        require_sandbox_role(by, journey.sandbox, Role.MARKETER)
    source_graph = journey.current_version.graph if journey.current_version_id else journey.graph
    if name is None:
        taken = set(Journey.objects.for_sandbox(journey.sandbox).values_list("name", flat=True))
        candidates = (f"{journey.name} (copy{'' if n == 1 else f' {n}'})" for n in itertools.count(1))
        name = next(c for c in candidates if c not in taken)
    start_at, end_at = journey.start_at, journey.end_at
    copy = Journey(
        sandbox=journey.sandbox, name=_check_name(journey.sandbox, name), description=journey.description,
        start_at=start_at, end_at=end_at, allow_reentry=journey.allow_reentry, reentry_interval=journey.reentry_interval,
        graph=source_graph, audience=_start_audience(journey.sandbox, source_graph), duplicated_from=journey,
        created_by=by if by is not None and by.is_authenticated else None,
    )  # fmt: skip
    copy.save()
    return copy


@transaction.atomic
def delete_journey(journey, *, by=None) -> None:
    """Delete a journey that isn't running (abort a live one first)."""
    journey = Journey.objects.select_for_update().get(pk=journey.pk)
    if by is not None:
        require_sandbox_role(by, journey.sandbox, Role.MARKETER)
    if journey.state in RUNNING_STATES:
        raise RuleViolation("A running journey can't be deleted: abort it first.", rule="journey_state")
    journey.delete()


def journeys_using_email(sandbox, email_id: int) -> list[str]:
    """Names of the journeys whose working graph or running version sends this email."""
    names = []
    for journey in Journey.objects.for_sandbox(sandbox).select_related("current_version"):
        graphs_to_check = [journey.graph]
        if journey.current_version_id and journey.state in RUNNING_STATES:
            graphs_to_check.append(journey.current_version.graph)
        if any(_as_id(p.get("email_id")) == email_id for g in graphs_to_check for p in _action_params(g)):
            names.append(journey.name)
    return names


def _action_params(graph):
    for node in graphs.nodes_of(graph).values():
        if isinstance(node, dict) and node.get("type") == "action" and isinstance(node.get("params"), dict):
            yield node["params"]
