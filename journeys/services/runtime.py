"""The journey runtime: enroll accounts, advance their tokens through the published graph, wake
waits and listen timeouts, and count what happened per node.

State lives only in the database (journeys/models/runtime.py):
- an advance holds a short *lease* on the enrollments it advances (a column, not a transaction),
  so each side effect commits on its own before the tokens move; a crash between the two is
  repaired by the retry, because the side effect's idempotency key makes its second run a no-op;
- the enrollments of one advance move together: the tokens of one version at the same node are
  one set for a split's evaluation, an action's run, the ledger rows and the moves;
- token moves (state + node visits) commit in one transaction, so node counts are exact;
- waits and listen timeouts are a ``wake_at`` the minute sweep claims with
  ``select_for_update(skip_locked=True)``: several sweepers never wake the same token twice.

Graph format: /work/brief/journey_graph.md (journeys/graph.py). Accounts enter through their
account token (``person`` null) and every related person's token. A ``split_people`` ends the
account token: from there on people move along their paths, and an account-level action runs
once for the account when its first person reaches it.
"""

import csv
import datetime as dt
import logging
from collections import defaultdict

from django.db import transaction
from django.db.models import Count, Exists, Max, OuterRef, Q, Subquery
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from cdp.choices import MembershipStatus
from cdp.models import AccountPerson, AudienceMember, AudienceMembershipChange, ExperienceEvent, Person
from cdp.services.audience_io import Echo
from journeys.models import (
    BuyingGroup,
    EmailSend,
    Enrollment,
    EnrollmentState,
    Journey,
    JourneyEntryCursor,
    JourneyEvent,
    JourneyVersion,
    NodeVisit,
    PersonState,
    TokenState,
)
from journeys.graph import predecessors, successors
from journeys.models.journeys import RUNNING_STATES, JourneyState
from journeys.services.actions import AT_MOST_ONCE, run_action

logger = logging.getLogger(__name__)

LEASE = dt.timedelta(minutes=5)
# Ready tokens untouched this long have lost their advance (a broker restart, a worker killed
# before it took the lease): the sweep queues it again.
STALLED_AFTER = dt.timedelta(minutes=10)
MAX_STEPS = 1000  # a validated graph has no cycles; this only stops a corrupt one
SWEEP_BATCH = 500
ENROLL_CHUNK = 1000  # accounts per bulk insert (x their people)
UNIT_SECONDS = {"minutes": 60, "hours": 3600, "days": 86400, "weeks": 7 * 86400}
ADVANCE_BATCH = 50  # enrollments an advance task takes together (bounded: a crash mid-email stalls them until LEASE)


# ------------------------------------------------------------------------------------------- entry
def enroll_new_members(journey: Journey, *, now=None) -> list[int]:
    """Enroll the accounts that entered the journey's audience since the journey's cursor. The
    first call (on publish) enrolls every current member. Returns the new enrollment ids; their
    advance is queued once the transaction commits."""
    now = now or timezone.now()
    if journey.state != JourneyState.LIVE or not journey.current_version_id or not journey.audience_id:
        return []
    with transaction.atomic():
        cursor, first = JourneyEntryCursor.objects.select_for_update().get_or_create(
            journey=journey, defaults={"sandbox_id": journey.sandbox_id}
        )
        history = AudienceMembershipChange.objects.filter(sandbox_id=journey.sandbox_id, audience_id=journey.audience_id)
        if first:
            # Read the history's end before the members: a change in between is read again
            # next time and ignored because the account is already enrolled.
            last = history.aggregate(last=Max("id"))["last"] or 0
            account_ids = AudienceMember.objects.filter(
                audience_id=journey.audience_id, status=MembershipStatus.REALIZED
            ).values_list("member_id", flat=True)
        else:
            changes = list(history.filter(id__gt=cursor.last_change_id).values_list("id", "member_id", "change"))
            last = max((c[0] for c in changes), default=cursor.last_change_id)
            account_ids = [member for _, member, change in changes if change == AudienceMembershipChange.Change.ENTERED]
        account_ids = list(dict.fromkeys(account_ids))
        ids = []
        for start in range(0, len(account_ids), ENROLL_CHUNK):
            ids += enroll_accounts(journey, account_ids[start : start + ENROLL_CHUNK], now=now)
        cursor.last_change_id = last
        cursor.save(update_fields=["last_change_id", "updated_at"])
    return ids


def enroll_accounts(journey: Journey, account_ids, *, now=None) -> list[int]:
    """Enroll accounts (and their people) at the start node, respecting the journey's dates and
    re-entry settings; accounts already active in the journey are left alone."""
    now = now or timezone.now()
    if not account_ids or journey.current_version_id is None:
        return []
    if not (journey.start_at <= now <= journey.end_at):
        return []
    latest = {
        row["account_id"]: row
        for row in Enrollment.objects.filter(journey=journey, account_id__in=account_ids)
        .values("account_id")
        .annotate(entry=Max("entry_number"), last_entered=Max("entered_at"), active=Count("id", filter=Q(state=EnrollmentState.ACTIVE)))
    }
    new = []
    for account_id in account_ids:
        previous = latest.get(account_id)
        if previous is None:
            new.append((account_id, 1))
        elif previous["active"] or not journey.allow_reentry:
            continue
        elif journey.reentry_interval and previous["last_entered"] + journey.reentry_interval > now:
            continue
        else:
            new.append((account_id, previous["entry"] + 1))
    if not new:
        return []
    graph = journey.current_version.graph
    start = graph["start"]
    with transaction.atomic():
        enrollments = Enrollment.objects.bulk_create(
            [
                Enrollment(sandbox_id=journey.sandbox_id, journey=journey, version_id=journey.current_version_id,
                           account_id=account_id, entry_number=entry, node=start, entered_at=now)
                for account_id, entry in new
            ]  # fmt: skip
        )
        by_account = {e.account_id: e for e in enrollments}
        people = AccountPerson.objects.filter(
            sandbox_id=journey.sandbox_id, account_id__in=by_account, is_active=True
        ).values_list("account_id", "person_id")
        tokens = [PersonState(sandbox_id=journey.sandbox_id, enrollment=e, person_id=None, node=start, entered_node_at=now) for e in enrollments]
        tokens += [
            PersonState(sandbox_id=journey.sandbox_id, enrollment=by_account[a], person_id=p, node=start, entered_node_at=now)
            for a, p in people
        ]
        tokens = PersonState.objects.bulk_create(tokens)
        _open_visits(journey.pk, tokens, start, now)
        JourneyEvent.objects.bulk_create(
            [
                JourneyEvent(sandbox_id=journey.sandbox_id, journey=journey, enrollment=e, node=start, kind="enrolled",
                             message=f"Account {e.account_id} entered (entry {e.entry_number}).", at=now)
                for e in enrollments
            ]  # fmt: skip
        )
        ids = [e.pk for e in enrollments]
        transaction.on_commit(lambda: _queue_advance(ids))
    return ids


def _queue_advance(enrollment_ids):
    """One advance task per ADVANCE_BATCH enrollments: their tokens at the same node move together."""
    from journeys.runtime_tasks import advance_enrollments_task

    ids = list(enrollment_ids)
    for start in range(0, len(ids), ADVANCE_BATCH):
        advance_enrollments_task.delay(ids[start : start + ADVANCE_BATCH])


# ----------------------------------------------------------------------------------------- advance
def advance_enrollment(enrollment_id: int, *, now=None) -> bool:
    """Advance one enrollment; False when another worker holds it (it will finish the work)."""
    return bool(advance_enrollments([enrollment_id], now=now))


def advance_enrollments(enrollment_ids, *, now=None) -> list[int]:
    """Move the ready tokens of these enrollments through the graph until each waits, listens or
    ends. The tokens of one journey version at the same node move together: one split evaluation,
    one action run, set-wise visits, ledger rows and moves. Returns the ids advanced; an
    enrollment another worker holds is left to it."""
    now = now or timezone.now()
    advanced, pending = set(), sorted(set(enrollment_ids))
    while pending:
        claimed = _take_leases(pending)
        if not claimed:
            break
        enrollments = list(Enrollment.objects.filter(pk__in=claimed).select_related("journey", "version", "account", "sandbox").order_by("pk"))
        try:
            _run_ready_tokens(enrollments, now)
        finally:
            Enrollment.objects.filter(pk__in=claimed).update(lease_until=None)
        advanced.update(claimed)
        # A token made ready while we held the lease (an event, a sweep) is ours to run too.
        states = _token_states(claimed)
        pending = [pk for pk in claimed if TokenState.READY in states[pk]]
        _settle([e for e in enrollments if e.pk not in pending], now, states)
    return sorted(advanced)


def advance_in_batch(enrollment_ids) -> None:
    """The advance task's work: the batch together, and if that fails, each enrollment in a task
    of its own (with its own retries), so one enrollment that keeps failing holds no other back.
    Safe because an advance is repeatable: side effects are in the ledger, moves are atomic."""
    from journeys.runtime_tasks import advance_enrollment_task

    ids = sorted(set(enrollment_ids))
    if len(ids) == 1:
        advance_enrollments(ids)
        return
    try:
        advance_enrollments(ids)
    except Exception:
        logger.exception("Advancing enrollments %s together failed; advancing them one by one.", ids)
        for enrollment_id in ids:
            advance_enrollment_task.delay(enrollment_id)


def renew_leases(enrollment_ids) -> None:
    """Extend the leases an advance holds while its emails go out one by one (a batch's sends can
    take longer than LEASE), so the sweep hands none of its enrollments to another worker."""
    Enrollment.objects.filter(pk__in=list(enrollment_ids), lease_until__isnull=False).update(lease_until=timezone.now() + LEASE)


def _take_leases(enrollment_ids) -> list[int]:
    """Lease those of these active enrollments that no live advance holds. Rows another worker
    is leasing right now are skipped, never waited for."""
    wall = timezone.now()  # the lease runs on the wall clock, whatever moment ``now`` tokens move at
    free = Q(lease_until__isnull=True) | Q(lease_until__lt=wall)
    with transaction.atomic():
        ids = list(
            Enrollment.objects.select_for_update(skip_locked=True)
            .filter(free, pk__in=list(enrollment_ids), state=EnrollmentState.ACTIVE)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        Enrollment.objects.filter(free, pk__in=ids).update(lease_until=wall + LEASE)
    return ids


class _Batch:
    """Enrollments of one journey version advanced together, and that version's graph."""

    def __init__(self, enrollments):
        self.enrollments = {e.pk: e for e in enrollments}
        version = enrollments[0].version
        self.journey_id, self.sandbox = version.journey_id, enrollments[0].sandbox
        self.nodes = version.graph["nodes"]
        self.rank = _topological_rank(version.graph)

    def enrollment_of(self, token) -> Enrollment:
        return self.enrollments[token.enrollment_id]


def _run_ready_tokens(enrollments, now):
    stopped = [e for e in enrollments if e.journey.state not in RUNNING_STATES]
    if stopped:
        _stop_enrollments(stopped, now)
    by_version = defaultdict(list)
    for enrollment in enrollments:
        if enrollment.journey.state in RUNNING_STATES:
            by_version[enrollment.version_id].append(enrollment)
    for group in by_version.values():
        _run_batch(_Batch(group), now)


def _run_batch(batch, now):
    steps = 0
    while steps < MAX_STEPS:
        # Database-only steps run in one transaction up to the next external side effect (an
        # email): a crash rolls the whole stretch back and the retry does it again, once.
        with transaction.atomic():
            # Read once a stretch: while we hold the leases only we move these ready tokens, so
            # the stretch follows them in memory; one made ready by someone else meanwhile (an
            # event) is read by the next stretch or the lease's final check.
            ready = list(PersonState.objects.filter(enrollment_id__in=list(batch.enrollments), state=TokenState.READY).order_by("id"))
            while steps < MAX_STEPS:
                group = _next_group(ready, batch.rank)
                if group is None:
                    return
                node_id, tokens = group
                if _is_external(batch.nodes.get(node_id)):
                    break
                _process(batch, node_id, batch.nodes.get(node_id), tokens, now)
                ready = [t for t in ready if t.state == TokenState.READY]
                steps += 1
        if steps < MAX_STEPS:
            _process(batch, node_id, batch.nodes[node_id], tokens, now)
            steps += 1
    ready = PersonState.objects.filter(enrollment_id__in=list(batch.enrollments), state=TokenState.READY)
    _exit_tokens(batch.journey_id, list(ready), now, "too many steps")


def _topological_rank(graph) -> dict[str, int]:
    """Each node's place in a topological order of the graph. The batch runs the earliest node
    holding ready tokens, so tokens reaching a merge by several paths pass it together."""
    nodes = graph["nodes"]
    waiting_for = {node_id: len(edges) for node_id, edges in predecessors(graph).items()}
    free = sorted(node_id for node_id, count in waiting_for.items() if count == 0)
    rank = {}
    while free:
        node_id = free.pop(0)
        rank[node_id] = len(rank)
        for target in successors(graph, node_id):
            if target in waiting_for and target not in rank:
                waiting_for[target] -= 1
                if waiting_for[target] == 0:
                    free.append(target)
    for node_id in sorted(nodes):  # a corrupt graph's cycle: after the rest, by id
        rank.setdefault(node_id, len(rank))
    return rank


def _next_group(ready, rank):
    """(node id, its ready tokens) of the earliest node with ready tokens, or None. A node
    missing from the graph comes first: its tokens leave."""
    if not ready:
        return None
    node = min({t.node for t in ready}, key=lambda n: (rank.get(n, -1), n))
    return node, [t for t in ready if t.node == node]


def _is_external(node) -> bool:
    return bool(node) and node.get("type") == "action" and node.get("action") in AT_MOST_ONCE


def _process(batch, node_id, node, tokens, now):
    if node is None:
        _exit_tokens(batch.journey_id, tokens, now, f"node {node_id} is not in the published graph")
        return
    kind = node["type"]
    if kind in ("start", "merge"):
        move_tokens(batch.journey_id, tokens, node["next"], now, "next")
    elif kind == "end":
        _finish_tokens(tokens, now)
    elif kind == "split_accounts":
        _split_accounts(batch, node, tokens, now)
    elif kind == "split_people":
        _split_people(batch, node, tokens, now)
    elif kind == "action":
        # An email's claim and send commit on their own before the tokens move (journeys.services.actions).
        run_action(node_id, node, tokens, batch.enrollment_of, now)
        move_tokens(batch.journey_id, tokens, node["next"], now, "next")
    elif kind == "wait":
        for arrived, group in _by_arrival(tokens):
            _start_waiting(batch, group, now, wake_at=_wait_until(node, arrived), listen_for=None, due_next=node["next"])
    elif kind == "listen":
        if node["event"].get("type") != "buying_group.changed":
            # People hear emails, forms and their data changes; the account's token stops here.
            _finish_tokens([t for t in tokens if t.person_id is None], now, outcome="people_listen")
            tokens = [t for t in tokens if t.person_id is not None]
        timeout = node.get("timeout")
        for arrived, group in _by_arrival(tokens):
            wake_at = arrived + _duration(timeout) if timeout else None
            _start_waiting(batch, group, now, wake_at=wake_at, listen_for=node["event"], due_next=None)
    else:
        _exit_tokens(batch.journey_id, tokens, now, f"unknown node type {kind}")


def _duration(spec) -> dt.timedelta:
    return dt.timedelta(seconds=int(spec["amount"]) * UNIT_SECONDS[spec["unit"]])


def _wait_until(node, arrived):
    if node.get("until"):
        until = parse_datetime(node["until"])
        return until if until.tzinfo else until.replace(tzinfo=dt.UTC)
    return arrived + _duration(node["duration"])


def _by_arrival(tokens):
    """Tokens grouped by when they reached their node: waits and timeouts count from there."""
    groups = defaultdict(list)
    for token in tokens:
        groups[token.entered_node_at].append(token)
    return groups.items()


def _start_waiting(batch, tokens, now, *, wake_at, listen_for, due_next):
    if due_next and wake_at <= now:
        move_tokens(batch.journey_id, tokens, due_next, now, "waited")
        return
    PersonState.objects.filter(pk__in=[t.pk for t in tokens]).update(
        state=TokenState.WAITING, wake_at=wake_at, listen_for=listen_for
    )
    for token in tokens:
        token.state = TokenState.WAITING


def _split_accounts(batch, node, tokens, now):
    """Each account takes the first path whose condition it meets: one evaluation a path for
    every account of the batch."""
    remaining = tokens
    for path in node.get("paths", []):
        if not remaining:
            return
        accounts = {batch.enrollment_of(t).account_id for t in remaining}
        matched = accounts_matching(batch.sandbox, path.get("condition"), accounts, now=now)
        move_tokens(batch.journey_id, [t for t in remaining if batch.enrollment_of(t).account_id in matched], path["next"], now, path["id"])
        remaining = [t for t in remaining if batch.enrollment_of(t).account_id not in matched]
    _take_other(batch, node, remaining, now)


def _split_people(batch, node, tokens, now):
    """Each person takes the first path whose condition they meet; account tokens end here."""
    _finish_tokens([t for t in tokens if t.person_id is None], now, outcome="people_split")
    remaining = [t for t in tokens if t.person_id is not None]
    for path in node.get("paths", []):
        if not remaining:
            return
        matched = people_matching(batch.sandbox, path.get("condition"), {t.person_id for t in remaining}, now=now)
        move_tokens(batch.journey_id, [t for t in remaining if t.person_id in matched], path["next"], now, path["id"])
        remaining = [t for t in remaining if t.person_id not in matched]
    _take_other(batch, node, remaining, now)


def _take_other(batch, node, tokens, now):
    if not tokens:
        return
    other = node.get("other")
    if other and other.get("next"):
        move_tokens(batch.journey_id, tokens, other["next"], now, "other")
    else:
        _exit_tokens(batch.journey_id, tokens, now, "no path matched", outcome="exited")


def accounts_matching(sandbox, condition, account_ids, *, now) -> set[int]:
    return _matching(sandbox, "account", condition, account_ids, now)


def people_matching(sandbox, condition, person_ids, *, now) -> set[int]:
    return _matching(sandbox, "person", condition, person_ids, now)


def _matching(sandbox, subject, condition, ids, now) -> set[int]:
    """The ids among ``ids`` that meet a split path's condition NOW: the rule through the one
    audience compiler, the buying-group part through the buying-group service."""
    from cdp.segmentation.compiler import compile_audience
    from cdp.services.audiences import membership_lookup, parse_definition

    ids = set(ids)
    condition = condition or {}
    if ids and condition.get("rule"):
        ast = parse_definition({"subject": subject, "condition": condition["rule"]})
        ids &= set(compile_audience(ast, sandbox, restrict_to_ids=ids, now=now, membership_lookup=membership_lookup(sandbox)))
    if ids and condition.get("buying_group"):
        from journeys.services.buying_groups import buying_group_filters

        ids &= set(buying_group_filters(sandbox, subject, condition["buying_group"], restrict_to_ids=ids))
    return ids


# ------------------------------------------------------------------------------------ token moves
def move_tokens(journey_id, tokens, to_node: str, now, outcome: str):
    """Move tokens (of any enrollments of one journey) to ``to_node``, ready to run there,
    closing and opening their node visits in the same transaction."""
    if not tokens:
        return
    ids = [t.pk for t in tokens]
    with transaction.atomic():
        NodeVisit.objects.filter(token_id__in=ids, left_at__isnull=True).update(left_at=now, outcome=outcome)
        PersonState.objects.filter(pk__in=ids).update(
            node=to_node, state=TokenState.READY, entered_node_at=now, wake_at=None, listen_for=None
        )
        _open_visits(journey_id, tokens, to_node, now)
        Enrollment.objects.filter(pk__in={t.enrollment_id for t in tokens}).update(node=to_node)
    for token in tokens:
        token.node, token.state, token.entered_node_at = to_node, TokenState.READY, now


def _open_visits(journey_id, tokens, node, now):
    NodeVisit.objects.bulk_create(
        [
            NodeVisit(sandbox_id=t.sandbox_id, journey_id=journey_id, enrollment_id=t.enrollment_id, token_id=t.pk,
                      person_id=t.person_id, node=node, entered_at=now)
            for t in tokens
        ]  # fmt: skip
    )


def _finish_tokens(tokens, now, outcome="finished"):
    _end_tokens(tokens, now, TokenState.FINISHED, outcome)


def _exit_tokens(journey_id, tokens, now, reason, outcome="exited"):
    """Take tokens (of enrollments of one journey) out, with one logged event per enrollment."""
    by_enrollment = defaultdict(list)
    for token in tokens:
        by_enrollment[token.enrollment_id].append(token)
    JourneyEvent.objects.bulk_create(
        [
            JourneyEvent(sandbox_id=group[0].sandbox_id, journey_id=journey_id, enrollment_id=enrollment_id, node=group[0].node,
                         kind="exited", message=f"{len(group)} token(s) left the journey: {reason}.", at=now)
            for enrollment_id, group in by_enrollment.items()
        ]  # fmt: skip
    )
    _end_tokens(tokens, now, TokenState.EXITED, outcome)


def _end_tokens(tokens, now, state, outcome):
    if not tokens:
        return
    ids = [t.pk for t in tokens]
    with transaction.atomic():
        NodeVisit.objects.filter(token_id__in=ids, left_at__isnull=True).update(left_at=now, outcome=outcome)
        PersonState.objects.filter(pk__in=ids).update(state=state, wake_at=None, listen_for=None)
    for token in tokens:
        token.state = state


def _token_states(enrollment_ids) -> dict[int, set]:
    """{enrollment id: the states of its tokens}."""
    states = {pk: set() for pk in enrollment_ids}
    rows = PersonState.objects.filter(enrollment_id__in=list(enrollment_ids)).order_by().values_list("enrollment_id", "state").distinct()
    for enrollment_id, state in rows:
        states[enrollment_id].add(state)
    return states


def _settle(enrollments, now, states):
    """Finish the enrollments none of whose tokens can move any more (``states``: _token_states)."""
    ending = defaultdict(list)
    for enrollment in enrollments:
        held = states[enrollment.pk]
        if not held & {TokenState.READY, TokenState.WAITING}:
            ending[EnrollmentState.FINISHED if TokenState.FINISHED in held else EnrollmentState.EXITED].append(enrollment)
    for final, group in ending.items():
        with transaction.atomic():
            # Locked, so a concurrent settle of the same enrollment neither ends nor logs it twice.
            still_active = Enrollment.objects.select_for_update().filter(pk__in=[e.pk for e in group], state=EnrollmentState.ACTIVE)
            ended = set(still_active.values_list("pk", flat=True))
            Enrollment.objects.filter(pk__in=ended).update(state=final, ended_at=now)
            log_each([(e, None, f"The account's journey is {final}.") for e in group if e.pk in ended], final, at=now)


def _stop_enrollments(enrollments, now):
    """Take every token of these enrollments out: their journeys were aborted or finished."""
    journey_of = {e.pk: e.journey for e in enrollments}
    tokens = PersonState.objects.filter(enrollment_id__in=list(journey_of), state__in=(TokenState.READY, TokenState.WAITING))
    by_journey = defaultdict(list)
    for token in tokens:
        by_journey[journey_of[token.enrollment_id]].append(token)
    for journey, journey_tokens in by_journey.items():
        _exit_tokens(journey.pk, journey_tokens, now, f"the journey is {journey.state}")
    _settle(enrollments, now, _token_states(list(journey_of)))


def log_each(entries, kind, *, node="", at=None):
    """Record a runtime event for each (enrollment, person id or None, message), in one insert."""
    at = at or timezone.now()
    JourneyEvent.objects.bulk_create(
        [
            JourneyEvent(sandbox_id=e.sandbox_id, journey_id=e.journey_id, enrollment=e, node=node, person_id=person_id,
                         kind=kind, message=message, at=at)
            for e, person_id, message in entries
        ]  # fmt: skip
    )


# ----------------------------------------------------------------------------------- timers/events
def sweep_timers(*, now=None, limit=SWEEP_BATCH) -> int:
    """Wake tokens whose wait ended or whose listen timed out (at most ``limit``); their
    enrollments are advanced once the claim commits. Returns how many tokens woke. Safe to run
    from several beat/worker processes at once."""
    now = now or timezone.now()
    with transaction.atomic():
        due = list(
            PersonState.objects.select_for_update(skip_locked=True)
            .filter(state=TokenState.WAITING, wake_at__lte=now)
            .select_related("enrollment")
            .order_by("wake_at")[:limit]
        )
        # Each version's graph is read once, and the tokens going the same way move together.
        versions = JourneyVersion.objects.filter(sandbox_id__in={t.sandbox_id for t in due}, pk__in={t.enrollment.version_id for t in due})
        graphs = dict(versions.values_list("pk", "graph"))
        moves = defaultdict(list)
        for token in due:
            node = graphs[token.enrollment.version_id]["nodes"][token.node]
            if node["type"] == "listen":
                moves[(token.enrollment.journey_id, node["timeout_next"], "timeout")].append(token)
            else:
                moves[(token.enrollment.journey_id, node["next"], "waited")].append(token)
        for (journey_id, to_node, outcome), tokens in moves.items():
            move_tokens(journey_id, tokens, to_node, now, outcome)
        ids = sorted({t.enrollment_id for t in due})
        transaction.on_commit(lambda: _queue_advance(ids))
    return len(due)


def resume_stalled_enrollments(*, now=None, limit=SWEEP_BATCH) -> list[int]:
    """The minute sweep's safety net for advances lost with their worker: an active enrollment
    whose lease ran out (its worker died holding it; a live advance always clears it) or whose
    ready tokens have waited STALLED_AFTER is advanced again. A needless advance is harmless: the
    lease lets one run, and it finds nothing ready."""
    now = now or timezone.now()
    ready = PersonState.objects.filter(enrollment=OuterRef("pk"), state=TokenState.READY)
    lease_ran_out = Q(lease_until__lt=timezone.now()) & Exists(ready)
    left_waiting = Q(lease_until__isnull=True) & Exists(ready.filter(entered_node_at__lt=now - STALLED_AFTER))
    stalled = Enrollment.objects.filter(state=EnrollmentState.ACTIVE).filter(lease_ran_out | left_waiting)
    ids = list(stalled.order_by("pk").values_list("pk", flat=True)[:limit])
    _queue_advance(ids)
    return ids


def enroll_live_journeys(*, now=None) -> int:
    """The minute sweep's safety net: read every live journey's audience history past its cursor,
    so an audience signal that was missed delays entries but never loses them."""
    total = 0
    for journey in Journey.objects.filter(state=JourneyState.LIVE).select_related("current_version"):
        total += len(enroll_new_members(journey, now=now))
    return total


def waiting_listeners(sandbox_id, person_ids) -> bool:
    listening = PersonState.objects.filter(sandbox_id=sandbox_id, state=TokenState.WAITING, listen_for__isnull=False)
    # Most sandboxes have no listening token: then skip the IN list of a whole ingest chunk's people.
    return listening.exists() and listening.filter(person_id__in=person_ids).exists()


def wake_listeners(sandbox_id: int, person_ids, *, now=None) -> list[int]:
    """Move the listening tokens of these people whose event has happened since they started
    listening; returns the enrollments to advance (queued on commit)."""
    tokens = PersonState.objects.filter(
        sandbox_id=sandbox_id, person_id__in=list(person_ids), state=TokenState.WAITING, listen_for__isnull=False
    )
    return _wake(tokens, now or timezone.now())


def poll_listeners(*, now=None) -> list[int]:
    """Buying group changes announce no signal: the minute sweep checks the tokens listening for one."""
    tokens = PersonState.objects.filter(state=TokenState.WAITING, listen_for__type="buying_group.changed")
    return _wake(tokens, now or timezone.now())


def _wake(tokens, now) -> list[int]:
    """Move the listening tokens among ``tokens`` whose event has happened; returns the
    enrollments to advance (queued on commit)."""
    with transaction.atomic():
        listening = list(tokens.select_for_update(skip_locked=True, of=("self",)).select_related("enrollment"))
        heard = _heard(listening)
        versions = JourneyVersion.objects.filter(sandbox_id__in={t.sandbox_id for t in heard}, pk__in={t.enrollment.version_id for t in heard})
        graphs = dict(versions.values_list("pk", "graph"))
        moves = defaultdict(list)
        for token in heard:
            node = graphs[token.enrollment.version_id]["nodes"][token.node]
            moves[(token.enrollment.journey_id, node["next"])].append(token)
        for (journey_id, to_node), group in moves.items():
            move_tokens(journey_id, group, to_node, now, "event")
        ids = sorted({t.enrollment_id for t in heard})
        transaction.on_commit(lambda: _queue_advance(ids))
    return ids


def stop_ended_enrollments(*, now=None, limit=SWEEP_BATCH) -> int:
    """Take out the accounts still inside aborted or finished journeys (their waits would
    otherwise sit until due)."""
    now = now or timezone.now()
    enrollments = list(
        Enrollment.objects.filter(state=EnrollmentState.ACTIVE).exclude(journey__state__in=RUNNING_STATES).select_related("journey")[:limit]
    )
    if enrollments:
        _stop_enrollments(enrollments, now)
    return len(enrollments)


def _heard(tokens) -> list:
    """The tokens whose event has happened since they started listening."""
    happened = _event_times(tokens)
    return [t for t in tokens if happened.get(t.pk) is not None and happened[t.pk] >= t.entered_node_at]


def _event_times(tokens) -> dict:
    """{token id: when the event it listens for last happened}: one query per event source
    (an email node, a field, a buying group's solution interest, an event type), not per token."""
    groups = defaultdict(list)
    for token in tokens:
        groups[_event_source(token)].append(token)
    times = {}
    for source, group in groups.items():
        kind, people = source[0], {t.person_id for t in group}
        sandboxes = {t.enrollment.sandbox_id for t in group}
        if kind == "email":
            _, version_id, node, column = source
            sends = EmailSend.objects.filter(sandbox_id__in=sandboxes, version_id=version_id, node=node, person_id__in=people)
            last = dict(sends.values("person_id").annotate(at=Max(column)).values_list("person_id", "at"))
            times.update({t.pk: last.get(t.person_id) for t in group})
        elif kind == "data":
            provenance = dict(Person.objects.filter(sandbox_id__in=sandboxes, pk__in=people).values_list("pk", "provenance"))
            for token in group:
                stamp = (provenance.get(token.person_id) or {}).get(source[1])
                times[token.pk] = parse_datetime(stamp[1]) if stamp else None
        elif kind == "buying_group":
            # updated_at moves with every change of members, status, stage or completeness.
            groups_of = BuyingGroup.objects.filter(
                sandbox_id__in=sandboxes, account_id__in={t.enrollment.account_id for t in group}, solution_interest_id=source[1]
            )
            last = dict(groups_of.values("account_id").annotate(at=Max("updated_at")).values_list("account_id", "at"))
            times.update({t.pk: last.get(t.enrollment.account_id) for t in group})
        else:
            since = min(t.entered_node_at for t in group)
            events = ExperienceEvent.objects.filter(sandbox_id__in=sandboxes, person_id__in=people, type=source[1], ingested_at__gte=since)
            last = dict(events.values("person_id").annotate(at=Max("ingested_at")).values_list("person_id", "at"))
            times.update({t.pk: last.get(t.person_id) for t in group})
    return times


def _event_source(token) -> tuple:
    """Where the event a listening token waits for is read from."""
    event = token.listen_for
    kind = event.get("type")
    if kind in ("email.opened", "email.clicked") and event.get("node"):
        return ("email", token.enrollment.version_id, event["node"], "opened_at" if kind == "email.opened" else "clicked_at")
    if kind == "data.changed":
        return ("data", event.get("field", ""))
    if kind == "buying_group.changed":
        return ("buying_group", event.get("solution_interest_id"))
    return ("event", kind)


def move_state_on_merge(sandbox_id: int, survivor_id: int, merged_id: int) -> None:
    """Inside the merge transaction, before the merged person is deleted: their journey tokens,
    visits and email sends become the survivor's (where the survivor has no token of its own in
    that enrollment), so a merge neither loses a journey's history nor restarts it."""
    taken = PersonState.objects.filter(sandbox_id=sandbox_id, person_id=survivor_id).values("enrollment_id")
    tokens = PersonState.objects.filter(sandbox_id=sandbox_id, person_id=merged_id)
    tokens.exclude(enrollment_id__in=taken).update(person_id=survivor_id)
    NodeVisit.objects.filter(sandbox_id=sandbox_id, person_id=merged_id).update(person_id=survivor_id)
    EmailSend.objects.filter(sandbox_id=sandbox_id, person_id=merged_id).update(person_id=survivor_id)


# -------------------------------------------------------------------------------------- reporting
def node_counts(journey: Journey) -> dict:
    """{node_id: {"entered", "current", "exited", "people": {...same}}} for the journey's visits.
    The top-level numbers count accounts (distinct enrollments), ``people`` counts people; both are
    derived from the node visits, which move in the same transaction as the tokens."""
    counts = {}
    rows = (
        NodeVisit.objects.filter(journey=journey)
        .values("node")
        .annotate(
            accounts=Count("enrollment", distinct=True),
            current_accounts=Count("enrollment", filter=Q(left_at__isnull=True), distinct=True),
            exited_accounts=Count("enrollment", filter=Q(left_at__isnull=False), distinct=True),
            people=Count("id", filter=Q(person_id__isnull=False)),
            current_people=Count("id", filter=Q(person_id__isnull=False, left_at__isnull=True)),
            exited_people=Count("id", filter=Q(person_id__isnull=False, left_at__isnull=False)),
        )
    )
    for row in rows:
        counts[row["node"]] = {
            "entered": row["accounts"], "current": row["current_accounts"], "exited": row["exited_accounts"],
            "people": {"entered": row["people"], "current": row["current_people"], "exited": row["exited_people"]},
        }  # fmt: skip
    return counts


def journey_stats(journeys) -> dict:
    """{journey id: {"enrollments": {"active", "finished", "exited", "total"}, "completion": %,
    "emails": {"sent", "opened", "clicked", "open_rate", "click_rate"}}}: two grouped queries."""
    ids = [j.pk for j in journeys]
    stats = {i: {"enrollments": dict.fromkeys(("active", "finished", "exited", "total"), 0), "completion": 0,
                 "emails": {"sent": 0, "opened": 0, "clicked": 0, "open_rate": 0, "click_rate": 0}} for i in ids}  # fmt: skip
    for row in Enrollment.objects.filter(journey_id__in=ids).values("journey_id", "state").annotate(n=Count("id")):
        stats[row["journey_id"]]["enrollments"][row["state"]] = row["n"]
    emails = EmailSend.objects.filter(journey_id__in=ids).values("journey_id").annotate(
        sent=Count("id"), opened=Count("id", filter=Q(opened_at__isnull=False)), clicked=Count("id", filter=Q(clicked_at__isnull=False))
    )
    for row in emails:
        stats[row["journey_id"]]["emails"].update(sent=row["sent"], opened=row["opened"], clicked=row["clicked"])
    for item in stats.values():
        counts = item["enrollments"]
        counts["total"] = counts["active"] + counts["finished"] + counts["exited"]
        done = counts["finished"] + counts["exited"]
        item["completion"] = round(100 * done / counts["total"]) if counts["total"] else 0
        sent = item["emails"]["sent"]
        if sent:
            item["emails"]["open_rate"] = round(100 * item["emails"]["opened"] / sent, 1)
            item["emails"]["click_rate"] = round(100 * item["emails"]["clicked"] / sent, 1)
    return stats


VISIT_COLUMNS = ("enrollment_id", "entry_number", "account_id", "account_name", "person_id", "person_email", "node",
                 "node_type", "entered_at", "left_at", "outcome")  # fmt: skip


def visits_csv(journey):
    """The CSV export, produced row by row so a large journey streams in constant memory."""
    writer = csv.writer(Echo())
    yield writer.writerow(VISIT_COLUMNS)
    for row in visit_rows(journey):
        yield writer.writerow([row[c] for c in VISIT_COLUMNS])


def visit_rows(journey):
    """One row per person (or account token, no person) per node visit, oldest first."""
    graph_of = dict(JourneyVersion.objects.filter(journey=journey).values_list("pk", "graph"))
    email = Person.objects.filter(sandbox_id=journey.sandbox_id, pk=OuterRef("person_id")).values("email")[:1]
    visits = (
        NodeVisit.objects.filter(journey=journey)
        .select_related("enrollment__account")
        .annotate(person_email=Subquery(email))
        .order_by("entered_at", "id")
    )
    for visit in visits.iterator(chunk_size=2000):
        enrollment = visit.enrollment
        node = graph_of.get(enrollment.version_id, {}).get("nodes", {}).get(visit.node, {})
        yield {
            "enrollment_id": enrollment.pk, "entry_number": enrollment.entry_number, "account_id": enrollment.account_id,
            "account_name": str(enrollment.account), "person_id": visit.person_id or "",
            "person_email": visit.person_email or "", "node": visit.node, "node_type": node.get("type", ""),
            "entered_at": visit.entered_at.isoformat(), "left_at": visit.left_at.isoformat() if visit.left_at else "",
            "outcome": visit.outcome,
        }  # fmt: skip
