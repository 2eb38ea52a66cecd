"""Audiences: saving definitions (with guardrails), evaluating them in full or for changed ids,
in dependency order, with the state and history on the rows.

One compiler (cdp.segmentation.compiler) turns a definition into a query; this module only
decides *what* to evaluate *when*, and records the outcome. ``inSegment`` reads the stored
membership of the referenced audience, so audiences are evaluated after the ones they use.
"""

import datetime as dt
import logging
import graphlib
import time
import uuid

from django.conf import settings
from django.db import transaction
from django.db.models import Count, DateTimeField, ExpressionWrapper, F, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from cdp.choices import AudienceKind, EvaluationState, MembershipStatus, Role
from cdp.exceptions import RuleViolation
from cdp.models import (
    Account,
    AccountPerson,
    Audience,
    AudienceEvaluation,
    AudienceMember,
    AudienceMembershipChange,
    PendingProfileChange,
)
from cdp.services.access import require_sandbox_role
from cdp.services.bulk import set_local
from cdp.services.membership import apply_membership, apply_membership_to_candidates
from cdp.signals import audience_membership_changed, profiles_changed

logger = logging.getLogger(__name__)

DEFAULT_LIMITS = {"audiences": 4000, "account_audiences": 50}
CANDIDATE_CHUNK = 5000
STUCK_AFTER = dt.timedelta(minutes=30)
PENDING_CHUNK = 5000  # noted changes one incremental pass takes
PENDING_LEASE = dt.timedelta(minutes=10)  # a pass's claim older than this was left by a dead worker
TIME_WINDOW_SWEEP_EVERY = dt.timedelta(minutes=15)


def audience_limits(sandbox) -> dict:
    """Guardrails for the sandbox: the defaults (Adobe's), overridden by settings, then by the
    sandbox's own ``limits``."""
    return {**DEFAULT_LIMITS, **getattr(settings, "AUDIENCE_LIMITS", {}), **(sandbox.limits or {})}


def parse_definition(definition):
    """The AST of a rule tree, or RuleViolation naming the JSON path of what is wrong."""
    from cdp.segmentation.ast import from_tree
    from cdp.segmentation.errors import SegmentationError

    try:
        return from_tree(definition)
    except SegmentationError as error:
        raise RuleViolation(str(error), rule="invalid_definition", field="definition") from None


@transaction.atomic
def save_audience(sandbox, *, name: str, definition, description: str = "", evaluation_interval=None, audience=None, by=None) -> Audience:
    """Create or update an audience; its evaluation is queued once the transaction commits."""
    from cdp.segmentation.ast import uses_relative_time

    if by is not None:
        require_sandbox_role(by, sandbox, Role.MARKETER)
    ast = parse_definition(definition)
    kind = AudienceKind(ast.subject)
    _check_limits(sandbox, kind, audience)
    references = check_references(sandbox, ast)
    if audience is None:
        audience = Audience(sandbox=sandbox, created_by=by if by and by.is_authenticated else None)
    elif audience.kind != kind and AudienceMember.objects.filter(audience=audience).exists():
        raise RuleViolation(
            "An audience with members can't change between person and account; create a new audience.",
            rule="audience_kind_fixed",
            field="definition",
        )
    if Audience.objects.for_sandbox(sandbox).filter(name=name).exclude(pk=audience.pk).exists():
        raise RuleViolation(f"This sandbox already has an audience named '{name}'.", rule="audience_name_taken", field="name")
    audience.name, audience.description, audience.kind = name, description, kind
    audience.definition = ast.to_tree()
    audience.has_time_window = uses_relative_time(ast)
    if evaluation_interval is not None:
        audience.evaluation_interval = evaluation_interval
    audience.state = EvaluationState.QUEUED
    audience.save()
    if audience.pk in {r.pk for r in references} or _reaches(references, audience.pk):
        raise RuleViolation("An audience can't depend on itself, directly or through others.", rule="audience_cycle", field="definition")
    audience.depends_on.set(references)
    audience_id = audience.pk
    transaction.on_commit(lambda: _enqueue_full([audience_id]))
    return audience


def _check_limits(sandbox, kind, audience):
    limits = audience_limits(sandbox)
    others = Audience.objects.for_sandbox(sandbox).exclude(pk=getattr(audience, "pk", None))
    if others.count() >= limits["audiences"]:
        raise RuleViolation(
            f"This sandbox has reached its limit of {limits['audiences']:,} audiences; delete one first.", rule="audience_limit"
        )
    if kind == AudienceKind.ACCOUNT and others.filter(kind=AudienceKind.ACCOUNT).count() >= limits["account_audiences"]:
        raise RuleViolation(
            f"This sandbox has reached its limit of {limits['account_audiences']:,} account audiences.",
            rule="account_audience_limit",
        )


def check_references(sandbox, ast) -> list[Audience]:
    """The audiences ``inSegment`` names, each checked to exist here and to be of the kind its
    place in the definition needs (people where a person is tested, accounts for an account)."""
    from cdp.segmentation.validate import segment_references

    references = segment_references(ast)
    ids = {audience_id for audience_id, _ in references}
    numeric = {int(i) for i in ids if str(i).isdigit()}
    found = {str(a.pk): a for a in Audience.objects.for_sandbox(sandbox).filter(pk__in=numeric)}
    missing = sorted(ids - found.keys())
    if missing:
        raise RuleViolation(
            f"inSegment refers to audience(s) {', '.join(missing)}, which this sandbox does not have.",
            rule="unknown_audience",
            field="definition",
        )
    for audience_id, needed in references:
        audience = found[audience_id]
        if audience.kind != needed:
            raise RuleViolation(
                f'inSegment("{audience_id}") tests {"a person" if needed == "person" else "an account"}, but '
                f"'{audience.name}' is an audience of {'people' if audience.kind == 'person' else 'accounts'}.",
                rule="audience_kind_mismatch",
                field="definition",
            )
    return list(found.values())


def dependencies_of(sandbox) -> dict[int, set[int]]:
    """{audience id: ids of the audiences it reads with inSegment}, for the whole sandbox in one query."""
    graph = {pk: set() for pk in Audience.objects.for_sandbox(sandbox).values_list("pk", flat=True)}
    edges = Audience.depends_on.through.objects.filter(from_audience__sandbox=sandbox)
    for source, target in edges.values_list("from_audience_id", "to_audience_id"):
        graph[source].add(target)
    return graph


def _reaches(start, target_id) -> bool:
    graph = dependencies_of(start[0].sandbox) if start else {}
    seen, frontier = set(), [a.pk for a in start]
    while frontier:
        current = frontier.pop()
        if current == target_id:
            return True
        if current not in seen:
            seen.add(current)
            frontier += graph.get(current, ())
    return False


def in_dependency_order(audiences, graph=None):
    """The audiences sorted so each comes after those it reads with inSegment."""
    if not audiences:
        return []
    graph = graph if graph is not None else dependencies_of(audiences[0].sandbox)
    by_id = {a.pk: a for a in audiences}
    subgraph = {pk: graph.get(pk, set()) & by_id.keys() for pk in by_id}
    return [by_id[pk] for pk in graphlib.TopologicalSorter(subgraph).static_order()]


# ------------------------------------------------------------------------------------ evaluation
def evaluate_audience(audience: Audience, *, candidates=None, now=None) -> AudienceEvaluation:
    """Evaluate one audience, in full or for ``candidates`` (ids whose inputs changed), and record
    the run. Failures are recorded on the audience (state failed, error) and re-raised."""
    now = now or timezone.now()
    started = time.monotonic()
    Audience.objects.filter(pk=audience.pk).update(state=EvaluationState.EVALUATING, evaluation_started_at=now)
    try:
        with transaction.atomic():
            _without_jit()
            run = _Run(audience, candidates, now, started)
            run.evaluate(membership_lookup(audience.sandbox))
            Audience.objects.filter(pk=audience.pk).update(**run.state)
            evaluation = run.evaluation
            evaluation.save()
    except Exception as error:
        _record_failure(audience, _mode(candidates), now, started, candidates, error)
        raise
    return evaluation


def _mode(candidates):
    return AudienceEvaluation.Mode.FULL if candidates is None else AudienceEvaluation.Mode.INCREMENTAL


class _Run:
    """One evaluation of one audience, inside the caller's transaction: the membership written
    under the audience's row lock (one writer per audience), the outcome kept on the instance so
    the caller saves it (evaluate_audience) or saves many at once (evaluate_changes)."""

    def __init__(self, audience, candidates, now, started, ast=None):
        self.audience, self.candidates, self.now, self.started = audience, candidates, now, started
        self.ast = ast
        self.entered, self.exited = set(), set()

    def evaluate(self, lookup):
        from cdp.segmentation.compiler import compile_audience

        audience = self.audience
        ast = self.ast or parse_definition(audience.definition)
        size = Audience.objects.select_for_update().filter(pk=audience.pk).values_list("size", flat=True).first()
        if self.candidates is None:
            matching = compile_audience(ast, audience.sandbox, now=self.now, membership_lookup=lookup)
            entered, exited = apply_membership(audience, matching, now=self.now)
            size = AudienceMember.objects.filter(audience=audience, status=MembershipStatus.REALIZED).count()
        else:
            entered = exited = 0
            for chunk in _chunks(self.candidates):
                matching = compile_audience(ast, audience.sandbox, restrict_to_ids=chunk, now=self.now, membership_lookup=lookup)
                got_in, got_out = apply_membership_to_candidates(audience, matching, now=self.now, candidates=chunk)
                self.entered |= got_in
                self.exited |= got_out
            entered, exited = len(self.entered), len(self.exited)
            # The stored size was counted by the last full run and kept by every run since: no COUNT.
            # Never below zero, should it have drifted (a full run recounts).
            size = max(size + entered - exited, 0)
        self.moved = bool(entered or exited)
        duration = int((time.monotonic() - self.started) * 1000)
        self.state = dict(
            state=EvaluationState.IDLE, evaluation_started_at=self.now, last_evaluated_at=self.now, last_duration_ms=duration,
            last_entered=entered, last_exited=exited, size=size, last_error="", failure_count=0,
        )  # fmt: skip
        if self.candidates is None:
            self.state["last_full_evaluation_at"] = self.now
        self.evaluation = AudienceEvaluation(
            sandbox_id=audience.sandbox_id, audience=audience, mode=_mode(self.candidates), started_at=self.now,
            duration_ms=duration, candidates=None if self.candidates is None else len(self.candidates),
            entered=entered, exited=exited, size=size,
        )  # fmt: skip
        if self.moved:
            _announce_membership_change(audience, entered, exited)


def _without_jit():
    """No PostgreSQL JIT for the rest of this transaction: compiling the evaluation's statements
    (costed above jit_above_cost on large sandboxes) took longer than running them
    (bench/segments: all audiences in full 17.1 s with JIT, 6.9 s without)."""
    set_local("jit", "off")


def _announce_membership_change(audience, entered, exited):
    transaction.on_commit(
        lambda: audience_membership_changed.send(
            sender=evaluate_audience, sandbox_id=audience.sandbox_id, audience_id=audience.pk,
            kind=audience.kind, entered=entered, exited=exited,
        )  # fmt: skip
    )


def _chunks(candidates):
    if candidates is None:
        yield None
        return
    ids = sorted(candidates)
    for start in range(0, len(ids), CANDIDATE_CHUNK):
        yield ids[start : start + CANDIDATE_CHUNK]


def membership_lookup(sandbox):
    def lookup(audience_id):
        return AudienceMember.objects.filter(
            sandbox=sandbox, audience_id=int(audience_id), status=MembershipStatus.REALIZED
        ).values("member_id")

    return lookup


def _record_failure(audience, mode, now, started, candidates, error):
    message = f"{type(error).__name__}: {error}"[:2000]
    Audience.objects.filter(pk=audience.pk).update(
        state=EvaluationState.FAILED, evaluation_started_at=now, last_error=message, failure_count=F("failure_count") + 1
    )
    return AudienceEvaluation.objects.create(
        sandbox_id=audience.sandbox_id, audience=audience, mode=mode, started_at=now,
        duration_ms=int((time.monotonic() - started) * 1000), candidates=None if candidates is None else len(candidates),
        error=message, size=audience.size,
    )  # fmt: skip


def evaluate_changes(sandbox, *, person_ids=(), account_ids=(), now=None) -> list[AudienceEvaluation]:
    """Bring every audience of the sandbox up to date for the changed people and accounts, in
    dependency order; membership changes feed the audiences that use them (inSegment).

    One transaction for the pass (each audience's row locked in dependency order, so two passes
    can't deadlock), one savepoint per audience: a failing audience is recorded failed and the
    pass goes on with every audience that doesn't read it (directly or through others). Those
    that do are left as they are. Both get a full evaluation queued, which covers these changes,
    unless the failing audience was failing already (so a broken audience isn't retried on every
    ingest; editing it or "evaluate now" queues it). State updates and evaluation rows are written
    once at the end."""
    now = now or timezone.now()
    person_ids, account_ids = set(person_ids), set(account_ids)
    if not person_ids and not account_ids:
        return []
    candidates = _Candidates(sandbox, person_ids, account_ids)
    graph = dependencies_of(sandbox)
    read_by_others = set().union(*graph.values())
    lookup = membership_lookup(sandbox)
    # broken: audience id -> whether its failure (or that of one it reads) is new in this pass.
    runs, moved, broken = [], {}, {}
    with transaction.atomic():
        _without_jit()
        for audience in in_dependency_order(list(Audience.objects.for_sandbox(sandbox)), graph):
            if graph[audience.pk] & broken.keys():  # it reads an audience that failed in this pass
                broken[audience.pk] = any(broken.get(pk) for pk in graph[audience.pk])
                continue
            started, ids = time.monotonic(), None
            try:
                ast = parse_definition(audience.definition)  # once a pass: for its candidates and its query
                ids = candidates.of(audience, ast)
                for dependency_id in graph[audience.pk]:
                    ids |= _as_kind(sandbox, moved.get(dependency_id, (None, set())), audience.kind)
                if not ids:
                    continue
                run = _Run(audience, ids, now, started, ast)
                with transaction.atomic():
                    run.evaluate(lookup)
            except Exception as error:
                logger.exception("Incremental evaluation of audience %s failed", audience.pk)
                _record_failure(audience, AudienceEvaluation.Mode.INCREMENTAL, now, started, ids, error)
                broken[audience.pk] = audience.state != EvaluationState.FAILED
                continue
            runs.append(run)
            if run.moved and audience.pk in read_by_others:
                moved[audience.pk] = (audience.kind, run.entered | run.exited)
        _save_runs(runs)
        retry_in_full = [pk for pk, fresh in broken.items() if fresh]
        if retry_in_full:
            transaction.on_commit(lambda: _enqueue_full(retry_in_full))
    return [run.evaluation for run in runs]


def announce_profile_changes(sandbox_id, person_ids, account_ids, *, sender) -> None:
    """Every profile writer calls this inside its transaction: the changes are noted for the
    audiences in the same transaction (stored profiles are never left without their re-check,
    whatever happens after the commit), and ``profiles_changed`` is sent once it commits."""
    people, accounts = set(person_ids), set(account_ids)
    if not people and not accounts:
        return
    noted = Audience.objects.filter(sandbox_id=sandbox_id).exists()
    if noted:
        note_profile_changes(sandbox_id, people, accounts)
    transaction.on_commit(
        lambda: profiles_changed.send(sender=sender, sandbox_id=sandbox_id, person_ids=people, account_ids=accounts, noted=noted)
    )


def note_profile_changes(sandbox_id, person_ids, account_ids, *, now=None) -> None:
    """Remember changed profiles until a pass re-checks them. A profile noted again while a pass
    holds it loses that pass's claim, so the pass leaves it pending for the next one."""
    now = now or timezone.now()
    rows = [
        PendingProfileChange(sandbox_id=sandbox_id, kind=kind, profile_id=profile_id, noted_at=now)
        for kind, ids in ((PendingProfileChange.Kind.PERSON, person_ids), (PendingProfileChange.Kind.ACCOUNT, account_ids))
        for profile_id in sorted(ids)
    ]
    PendingProfileChange.objects.bulk_create(
        rows, update_conflicts=True, unique_fields=["sandbox", "kind", "profile_id"], update_fields=["noted_at", "claim", "claimed_at"]
    )


def evaluate_pending_changes(sandbox, *, now=None) -> int:
    """Incremental passes over the sandbox's noted changes until none is left; returns how many
    were evaluated. Each pass claims up to PENDING_CHUNK changes (unclaimed, or claimed by a pass
    whose lease ran out), evaluates them, and forgets the ones it still holds. An audience that
    fails is handled by evaluate_changes (recorded, retried in full); if the pass itself fails (the
    database went away) it releases them and raises, so the task's retry finds them again."""
    evaluated = 0
    pending = PendingProfileChange.objects.for_sandbox(sandbox)
    while True:
        claim = uuid.uuid4()
        with transaction.atomic():
            # SKIP LOCKED: a pass never waits on rows an ingest is noting, so the two can't deadlock.
            claimable = Q(claim__isnull=True) | Q(claimed_at__lt=timezone.now() - PENDING_LEASE)
            ids = list(
                pending.filter(claimable).order_by("pk").select_for_update(skip_locked=True).values_list("pk", flat=True)[:PENDING_CHUNK]
            )
            if not ids:
                return evaluated
            pending.filter(pk__in=ids).update(claim=claim, claimed_at=timezone.now())
        claimed = pending.filter(claim=claim)
        changes = {kind: set() for kind in PendingProfileChange.Kind}
        for kind, profile_id in claimed.values_list("kind", "profile_id"):
            changes[kind].add(profile_id)
        try:
            evaluate_changes(
                sandbox, person_ids=changes[PendingProfileChange.Kind.PERSON],
                account_ids=changes[PendingProfileChange.Kind.ACCOUNT], now=now,
            )
        except Exception:
            _settle_claim(claimed, release=True)
            raise
        _settle_claim(claimed, release=False)
        evaluated += sum(map(len, changes.values()))


def _settle_claim(claimed, *, release: bool) -> None:
    """Forget (or, after a failure, release) the claimed changes, except those an ingest is
    noting again right now (SKIP LOCKED): that ingest releases them itself, so they stay pending;
    and a pass that waited for them while the ingest waited for another of its rows would deadlock."""
    with transaction.atomic():
        ids = list(claimed.select_for_update(skip_locked=True).values_list("pk", flat=True))
        rows = PendingProfileChange.objects.filter(pk__in=ids)
        if release:
            rows.update(claim=None, claimed_at=None)
        else:
            rows.delete()


def sandboxes_with_stranded_changes(now=None) -> list[int]:
    """Sandboxes whose noted changes no pass has taken for a minute (a lost task message) or whose
    pass died holding them (lease ran out)."""
    now = now or timezone.now()
    stranded = Q(claim__isnull=True, noted_at__lt=now - dt.timedelta(minutes=1)) | Q(claimed_at__lt=now - PENDING_LEASE)
    return list(PendingProfileChange.objects.filter(stranded).order_by().values_list("sandbox_id", flat=True).distinct())


def _save_runs(runs):
    """The outcome of many incremental runs in three statements: what they share in one UPDATE,
    what differs per audience in one bulk UPDATE (few fields: its cost grows with rows × fields),
    the evaluation rows in one INSERT."""
    if not runs:
        return
    own = ("last_duration_ms", "last_entered", "last_exited", "size")
    shared = {name: value for name, value in runs[0].state.items() if name not in own}
    Audience.objects.filter(pk__in=[run.audience.pk for run in runs]).update(**shared)
    Audience.objects.bulk_update([Audience(pk=run.audience.pk, **{name: run.state[name] for name in own}) for run in runs], own)
    AudienceEvaluation.objects.bulk_create([run.evaluation for run in runs])


class _Candidates:
    """The ids an audience must re-check when these people and accounts changed.

    Narrow (what an audience reading its subject and the subject's own relations needs): the
    changed people and the people of changed accounts; the changed accounts and the accounts of
    changed people. Wide, for audiences that read linked profiles (reads_linked_profiles): the
    accounts also include their descendants (conditions through ``parent``) and the people are all
    the people of those accounts (conditions on a person's account's people and events)."""

    def __init__(self, sandbox, person_ids, account_ids):
        self.sandbox, self.person_ids, self.account_ids = sandbox, person_ids, account_ids
        self._sets = {}

    def of(self, audience, ast) -> set:
        wide = reads_linked_profiles(ast)
        key = (audience.kind, wide)
        if key not in self._sets:
            self._sets[key] = self._build(audience.kind, wide)
        return set(self._sets[key])

    def _build(self, kind, wide) -> set:
        if kind == AudienceKind.ACCOUNT or wide:
            accounts = self.account_ids | self._related(self.person_ids, "person_id", "account_id")
            if wide:
                accounts = _with_descendants(self.sandbox, accounts)
            if kind == AudienceKind.ACCOUNT:
                return accounts
        else:
            accounts = self.account_ids
        return self.person_ids | self._related(accounts, "account_id", "person_id")

    def _related(self, ids, by, wanted) -> set:
        if not ids:
            return set()
        relations = AccountPerson.objects.filter(sandbox=self.sandbox, **{f"{by}__in": ids})
        return set(relations.values_list(wanted, flat=True))


def reads_linked_profiles(ast) -> bool:
    """Whether an audience reads profiles beyond its subject and the subject's own relations: a
    parent account (at any depth), or the people, events or opportunities of a person's account."""
    from cdp.segmentation.ast import Between, Compare, Count, Occurrence, Occurs, walk
    from cdp.segmentation.catalog import ENTITIES

    for node in walk(ast):
        if isinstance(node, Compare | Occurs | Between):
            path = node.field
        elif isinstance(node, Count | Occurrence):
            path = node.collection
        else:
            continue
        if "parent" in path or (path[:1] == ("account",) and len(path) > 1 and path[1] in ENTITIES["account"].collections):
            return True
    return False


def _with_descendants(sandbox, account_ids) -> set:
    """The accounts and all accounts below them (parent links; safe with cycles)."""
    found, frontier = set(account_ids), set(account_ids)
    while frontier:
        frontier = set(Account.objects.filter(sandbox=sandbox, parent_id__in=frontier).values_list("pk", flat=True)) - found
        found |= frontier
    return found


def _as_kind(sandbox, moved, kind) -> set:
    source_kind, ids = moved
    if not ids or source_kind == kind:
        return set(ids)
    if kind == AudienceKind.ACCOUNT:
        return set(AccountPerson.objects.filter(sandbox=sandbox, person_id__in=ids).values_list("account_id", flat=True))
    return set(AccountPerson.objects.filter(sandbox=sandbox, account_id__in=ids).values_list("person_id", flat=True))


def evaluate_in_full(sandbox, audience_ids, *, now=None) -> list[AudienceEvaluation]:
    """Full evaluations of some audiences of a sandbox, each after the audiences it reads."""
    now = now or timezone.now()
    audiences = Audience.objects.for_sandbox(sandbox).filter(pk__in=audience_ids)
    return [evaluate_audience(a, now=now) for a in in_dependency_order(list(audiences))]


def audiences_due(now=None) -> list[tuple[int, int]]:
    """(sandbox id, audience id) of audiences whose batch evaluation is due, whose time windows
    need the periodic sweep, or whose evaluation was left 'evaluating' by a worker that died."""
    now = now or timezone.now()
    next_batch = ExpressionWrapper(F("last_full_evaluation_at") + F("evaluation_interval"), output_field=DateTimeField())
    stuck = Q(state=EvaluationState.EVALUATING, evaluation_started_at__lt=now - STUCK_AFTER)
    due = ~Q(state=EvaluationState.EVALUATING) & (
        Q(last_full_evaluation_at__isnull=True)
        | Q(next_batch__lte=now)
        | Q(has_time_window=True, last_full_evaluation_at__lte=now - TIME_WINDOW_SWEEP_EVERY)
    )
    audiences = Audience.objects.annotate(next_batch=next_batch).filter(stuck | due)
    return list(audiences.values_list("sandbox_id", "pk"))


def queue_full_evaluation(audience: Audience) -> None:
    """Evaluate now (page and API): shown as queued at once, run after the transaction commits."""
    Audience.objects.filter(pk=audience.pk).exclude(state=EvaluationState.EVALUATING).update(state=EvaluationState.QUEUED)
    transaction.on_commit(lambda: _enqueue_full([audience.pk]))


def _enqueue_full(audience_ids):
    from cdp.tasks import evaluate_audiences_in_full

    sandbox_ids = Audience.objects.filter(pk__in=audience_ids).values_list("sandbox_id", flat=True).distinct()
    for sandbox_id in sandbox_ids:
        evaluate_audiences_in_full.delay(sandbox_id, list(audience_ids))


def move_memberships_on_merge(sandbox_id, survivor_id, merged_id):
    """People merged: the merged person's memberships become the survivor's (no duplicates)."""
    person_audiences = Audience.objects.filter(sandbox_id=sandbox_id, kind=AudienceKind.PERSON)
    held = AudienceMember.objects.filter(audience__in=person_audiences, member_id=survivor_id).values("audience_id")
    duplicates = AudienceMember.objects.filter(audience__in=person_audiences, member_id=merged_id, audience_id__in=held)
    # Incremental runs add their delta to the stored size instead of counting: recount here.
    shrunk = list(duplicates.filter(status=MembershipStatus.REALIZED).values_list("audience_id", flat=True))
    duplicates.delete()
    if shrunk:
        realized = AudienceMember.objects.filter(audience=OuterRef("pk"), status=MembershipStatus.REALIZED)
        count = realized.order_by().values("audience").annotate(n=Count("pk")).values("n")
        Audience.objects.filter(pk__in=shrunk).update(size=Coalesce(Subquery(count), 0))
    AudienceMember.objects.filter(audience__in=person_audiences, member_id=merged_id).update(member_id=survivor_id)
    AudienceMembershipChange.objects.filter(audience__in=person_audiences, member_id=merged_id).update(member_id=survivor_id)
