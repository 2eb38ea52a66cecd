"""Activation: destinations, dataflows and pushing audience membership to them.

The one implementation for pages, API and tasks. A push reads the dataflow's audiences' membership
history (``AudienceMembershipChange``) past the dataflow's per-audience cursors, collapses it per
member (last change wins), hands adds and removes to the destination's pusher
(``connectors.destinations``) and then, in one transaction, records the run and advances the cursors.
A lease on the dataflow row keeps two workers from pushing the same changes; a push that dies before
saving leaves the cursors where they were, and the retry re-sends changes the destination already
has, which it answers as "skipped" (Marketo) or drops by idempotency key (webhook).

Taking an audience out of a dataflow keeps its cursor: the next run removes the people the dataflow
sent as its members and no remaining audience holds, then drops the cursor (``_withdrawals``).
"""

import datetime as dt
import json
import operator
import time
import uuid
from functools import reduce

from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from cdp.choices import AudienceKind, MembershipStatus, Role
from cdp.exceptions import RuleViolation
from cdp.models import Account, Audience, AudienceMember, AudienceMembershipChange, Identity, Person
from cdp.services import get_sandbox_role
from connectors.choices import PairingKind
from connectors.destinations import ADD, REMOVE, Member, PushContext, PushResult, PushStopped, chunked, destination_type
from connectors.models import (
    ActivationOutcome,
    ActivationRun,
    Dataflow,
    DataflowAudience,
    DataflowMode,
    DataflowState,
    DeadLetter,
    Destination,
    DestinationKind,
    DestinationMember,
    MarketoInstance,
    Pairing,
    RunStatus,
    RunTrigger,
)
from connectors.services.pairings import create_pairing

MAX_CHANGES_PER_RUN = 20_000  # a longer backlog continues in a follow-up push
LEASE = dt.timedelta(minutes=20)
# A streaming push whose task was lost (killed worker, broker restarted, retries used up) leaves
# changes unsent; the beat pushes them once the oldest is this old and no run started since.
STRANDED_AFTER = dt.timedelta(minutes=10)
_HIDDEN_FIELDS = {"id", "sandbox", "attributes", "provenance", "parent"}
# Audiences whose unsent changes one query looks for: SQLite nests each OR, up to a depth of 1000.
_AUDIENCES_PER_QUERY = 200
# Ids one query reads: a whole audience (a CSV snapshot, a withdrawal) is more than SQLite and
# PostgreSQL take as parameters of one statement.
_IDS_PER_QUERY = 10_000


# ----------------------------------------------------------------------------------- destinations
def create_destination(
    sandbox, *, by, name: str, kind: str, config: dict, marketo_instance: MarketoInstance | None = None,
    allow_lead_creation: bool = False, secret: str = "", enabled: bool = True,
) -> Destination:  # fmt: skip
    kind = _kind(kind)
    destination = Destination(sandbox=sandbox, name=name.strip(), kind=kind, created_by=by, enabled=enabled)
    _apply_destination_settings(destination, by, config, allow_lead_creation, secret)
    with transaction.atomic():
        _check_name(Destination, sandbox, destination.name, None)
        if destination_type(kind).sends_to_marketo:
            destination.pairing = _destination_pairing(sandbox, marketo_instance, by)
        destination.save()
    return destination


def update_destination(
    destination: Destination, *, by, name: str | None = None, config: dict | None = None,
    allow_lead_creation: bool | None = None, secret: str | None = None, enabled: bool | None = None,
    marketo_instance: MarketoInstance | None = None,
) -> Destination:  # fmt: skip
    """Change settings; giving the Marketo instance again re-pairs a destination that was unpaired. An
    empty ``secret`` keeps the stored one."""
    with transaction.atomic():
        if marketo_instance is not None:
            if not destination_type(destination.kind).sends_to_marketo:
                raise RuleViolation("Only Marketo destinations send to a Marketo instance.", rule="destination_config", field="marketo_instance")
            destination.pairing = _destination_pairing(destination.sandbox, marketo_instance, by)
        if name is not None:
            _check_name(Destination, destination.sandbox, name.strip(), destination.pk)
            destination.name = name.strip()
        if enabled is not None:
            destination.enabled = enabled
        _apply_destination_settings(
            destination,
            by,
            destination.config if config is None else config,
            destination.allow_lead_creation if allow_lead_creation is None else allow_lead_creation,
            secret,
        )
        destination.save()
    return destination


def delete_destination(destination: Destination) -> None:
    if destination.dataflows.exists():
        raise RuleViolation(
            "This destination still has dataflows: delete them first.", rule="destination_in_use", field="name"
        )
    destination.delete()


def _kind(kind) -> DestinationKind:
    try:
        return DestinationKind(kind)
    except ValueError:
        choices = ", ".join(DestinationKind.values)
        raise RuleViolation(f"Unknown destination kind “{kind}”; choose one of {choices}.", rule="destination_kind", field="kind") from None


def _apply_destination_settings(destination, by, config, allow_lead_creation, secret) -> None:
    if not isinstance(config, dict):
        raise RuleViolation("The configuration must be a JSON object.", rule="destination_config", field="config")
    kind = destination_type(destination.kind)
    destination.config = kind.validate_config(config)
    kind.apply_options(
        destination, allow_lead_creation=bool(allow_lead_creation), secret=secret or "",
        by_admin=lambda: _is_sandbox_admin(by, destination.sandbox),
    )  # fmt: skip


def _is_sandbox_admin(user, sandbox) -> bool:
    role = get_sandbox_role(user, sandbox)
    return role is not None and role.allows(Role.ADMIN)


def _destination_pairing(sandbox, marketo_instance, by) -> Pairing:
    """The instance's destination pairing in this sandbox, made now (by an admin) if missing."""
    if marketo_instance is None:
        raise RuleViolation("Choose the Marketo instance to send to.", rule="destination_config", field="marketo_instance")
    existing = Pairing.objects.for_sandbox(sandbox).filter(
        kind=PairingKind.DESTINATION, marketo_instance=marketo_instance
    ).first()
    if existing:
        return existing
    if not _is_sandbox_admin(by, sandbox):
        raise RuleViolation(
            f"“{marketo_instance.name}” is not paired with this sandbox as a destination; an admin pairs it.",
            rule="destination_pairing_required",
            field="marketo_instance",
        )
    return create_pairing(sandbox=sandbox, kind=PairingKind.DESTINATION, marketo_instance=marketo_instance, created_by=by)


def _check_name(model, sandbox, name, pk) -> None:
    if not name:
        raise RuleViolation("Give it a name.", rule="name_required", field="name")
    if model.objects.for_sandbox(sandbox).filter(name=name).exclude(pk=pk).exists():
        noun = model._meta.verbose_name
        raise RuleViolation(f"This sandbox already has a {noun} named “{name}”.", rule=f"{model._meta.model_name}_name_unique", field="name")


# ---------------------------------------------------------------------------------------- mapping
def mapping_sources(kind: str) -> list[str]:
    """Profile fields a mapping can read: standard columns, ``identity.<namespace>``, ``attributes.<key>``."""
    from cdp.choices import ACCOUNT_NAMESPACES, PERSON_NAMESPACES

    model, namespaces = (Person, PERSON_NAMESPACES) if kind == AudienceKind.PERSON else (Account, ACCOUNT_NAMESPACES)
    columns = [f.name for f in model._meta.concrete_fields if f.name not in _HIDDEN_FIELDS and not f.name.endswith("_at")]
    return columns + [f"identity.{ns}" for ns in namespaces]


def default_mapping(destination: Destination, kind: str) -> list[dict]:
    return destination_type(destination.kind).default_mapping(kind)


def validate_mapping(mapping, kind: str) -> list[dict]:
    if not isinstance(mapping, list) or not mapping:
        raise RuleViolation("Map at least one profile field to a destination field.", rule="mapping_invalid", field="mapping")
    known, clean, targets = set(mapping_sources(kind)), [], set()
    for position, item in enumerate(mapping, start=1):
        source = str((item or {}).get("source") or "").strip() if isinstance(item, dict) else ""
        target = str((item or {}).get("target") or "").strip() if isinstance(item, dict) else ""
        if source not in known and not (source.startswith("attributes.") and len(source) > 11):
            raise RuleViolation(
                f"Mapping row {position}: “{source}” is not a {kind} field (use a standard field, identity.<namespace> or attributes.<key>).",
                rule="mapping_invalid",
                field="mapping",
            )
        if not target or len(target) > 100 or target in targets or target == "id":
            raise RuleViolation(
                f"Mapping row {position}: the destination field must be a new, non-empty name (not “id”), at most 100 characters.",
                rule="mapping_invalid",
                field="mapping",
            )
        targets.add(target)
        clean.append({"source": source, "target": target})
    return clean


def _profile_values(sandbox, kind: str, ids, mapping) -> dict[int, tuple[str, dict]]:
    """id → (email, {destination field: value}) for the given people or accounts."""
    model = Person if kind == AudienceKind.PERSON else Account
    owner = "person_id" if kind == AudienceKind.PERSON else "account_id"
    namespaces = {m["source"].split(".", 1)[1] for m in mapping if m["source"].startswith("identity.")}
    rows, identities = {}, {}  # identities: (id, namespace) → value
    for _start, chunk in chunked(list(ids), _IDS_PER_QUERY):
        rows.update((row.pk, row) for row in model.objects.for_sandbox(sandbox).filter(pk__in=chunk))
        if namespaces:
            found = Identity.objects.for_sandbox(sandbox).filter(**{f"{owner}__in": chunk, "namespace__in": namespaces})
            for owner_id, namespace, value in found.order_by("-created_at").values_list(owner, "namespace", "value"):
                identities[(owner_id, namespace)] = value  # oldest wins: the first identity of the profile
    values = {}
    for pk in ids:
        row = rows.get(pk)
        mapped = {}
        for m in mapping:
            source = m["source"]
            if source.startswith("identity."):
                value = identities.get((pk, source.split(".", 1)[1]))
            elif source.startswith("attributes."):
                value = (row.attributes or {}).get(source[11:]) if row else None
            else:
                value = getattr(row, source, None) if row else None
            mapped[m["target"]] = "" if value is None else value if isinstance(value, (str, int, float, bool)) else str(value)
        values[pk] = (getattr(row, "email", "") or "", mapped)
    return values


# --------------------------------------------------------------------------------------- dataflows
def create_dataflow(
    sandbox, *, by, name: str, destination: Destination, audiences, mapping=None,
    mode: str = DataflowMode.STREAMING, batch_time: dt.time | None = None,
) -> Dataflow:  # fmt: skip
    dataflow = Dataflow(sandbox=sandbox, name=name.strip(), destination=destination, created_by=by)
    with transaction.atomic():
        _check_name(Dataflow, sandbox, dataflow.name, None)
        audiences = _apply_dataflow_settings(dataflow, destination, audiences, mapping, mode, batch_time)
        dataflow.save()
        dataflow.audiences.set(audiences, through_defaults={"sandbox": dataflow.sandbox})
    if dataflow.mode == DataflowMode.STREAMING:
        request_push(dataflow, RunTrigger.STREAMING)  # send the audiences' current members now
    return dataflow


def update_dataflow(dataflow: Dataflow, *, name=None, audiences=None, mapping=None, mode=None, batch_time=None) -> Dataflow:
    """Change settings. People sent only because of an audience taken out are removed from the
    destination by the next run (see ``_withdrawals``)."""
    with transaction.atomic():
        if name is not None:
            _check_name(Dataflow, dataflow.sandbox, name.strip(), dataflow.pk)
            dataflow.name = name.strip()
        current = list(dataflow.audiences.all())
        audiences = _apply_dataflow_settings(
            dataflow,
            dataflow.destination,
            current if audiences is None else audiences,
            dataflow.mapping if mapping is None else mapping,
            mode or dataflow.mode,
            batch_time or dataflow.batch_time,
        )
        if current and audiences[0].kind != current[0].kind:
            # The destination holds ids of one kind; mixing people and accounts in it would confuse both.
            raise RuleViolation(
                f"This dataflow sends {current[0].kind} audiences: create another dataflow for {audiences[0].kind} audiences.",
                rule="dataflow_audiences",
                field="audiences",
            )
        # Only the settings: a push running now owns the cursors and the lease.
        dataflow.save(update_fields=["name", "mapping", "mode", "batch_time", "next_batch_at"])
        dataflow.audiences.set(audiences, through_defaults={"sandbox": dataflow.sandbox})
    if dataflow.mode == DataflowMode.STREAMING and dataflow.state == DataflowState.ACTIVE:
        request_push(dataflow, RunTrigger.STREAMING)  # sends an added audience's members, removes a taken-out one's
    return dataflow


def _apply_dataflow_settings(dataflow, destination, audiences, mapping, mode, batch_time) -> list[Audience]:
    sandbox = dataflow.sandbox
    if destination is None or destination.sandbox_id != sandbox.pk:
        raise RuleViolation("Choose a destination of this sandbox.", rule="dataflow_destination", field="destination")
    audiences = list(audiences or [])
    if not audiences:
        raise RuleViolation("Choose at least one audience.", rule="dataflow_audiences", field="audiences")
    if any(a.sandbox_id != sandbox.pk for a in audiences):
        raise RuleViolation("Every audience must belong to this sandbox.", rule="dataflow_audiences", field="audiences")
    kinds = {a.kind for a in audiences}
    if len(kinds) > 1:
        raise RuleViolation("A dataflow sends either person audiences or account audiences, not both.", rule="dataflow_audiences", field="audiences")
    kind = kinds.pop()
    try:
        mode = DataflowMode(mode)
    except ValueError:
        raise RuleViolation("Mode is streaming or batch.", rule="dataflow_mode", field="mode") from None
    destination_kind = destination_type(destination.kind)
    destination_kind.check_dataflow(audience_kind=kind, mode=mode)
    dataflow.mapping = validate_mapping(mapping or destination_kind.default_mapping(kind), kind)
    destination_kind.check_mapping(dataflow.mapping)
    changed_schedule = mode != dataflow.mode or (batch_time and batch_time != dataflow.batch_time) or not dataflow.pk
    dataflow.mode = mode
    dataflow.batch_time = batch_time or dataflow.batch_time
    if mode == DataflowMode.BATCH and (changed_schedule or dataflow.next_batch_at is None):
        dataflow.next_batch_at = next_batch_time(dataflow.batch_time, timezone.now())
    elif mode == DataflowMode.STREAMING:
        dataflow.next_batch_at = None
    return audiences


def next_batch_time(at: dt.time, now: dt.datetime) -> dt.datetime:
    candidate = now.astimezone(dt.UTC).replace(hour=at.hour, minute=at.minute, second=0, microsecond=0)
    return candidate if candidate > now else candidate + dt.timedelta(days=1)


def delete_dataflow(dataflow: Dataflow) -> None:
    dataflow.delete()


def set_dataflow_state(dataflow: Dataflow, state: str) -> Dataflow:
    """Pause or resume. Resuming a streaming dataflow sends what changed while it was paused."""
    state = DataflowState(state)
    Dataflow.objects.filter(pk=dataflow.pk).update(state=state)
    dataflow.state = state
    if state == DataflowState.ACTIVE and dataflow.mode == DataflowMode.STREAMING:
        request_push(dataflow, RunTrigger.STREAMING)
    return dataflow


def run_dataflow_now(dataflow: Dataflow) -> None:
    if dataflow.state != DataflowState.ACTIVE:
        raise RuleViolation("This dataflow is paused: resume it to run it.", rule="dataflow_paused", field="state")
    request_push(dataflow, RunTrigger.MANUAL)


def request_push(dataflow: Dataflow, trigger: str) -> None:
    from connectors.activation_tasks import push_dataflow_task

    transaction.on_commit(lambda: push_dataflow_task.delay(dataflow.pk, str(trigger)))


def streaming_dataflows_for(sandbox_id: int, audience_id: int) -> list[int]:
    return list(
        Dataflow.objects.filter(
            sandbox_id=sandbox_id, audiences=audience_id, state=DataflowState.ACTIVE, mode=DataflowMode.STREAMING,
            destination__enabled=True,
        ).values_list("pk", flat=True)
    )  # fmt: skip


def run_due_batch_dataflows(now=None) -> list[int]:
    """Enqueue the daily run of every batch dataflow whose time has come; returns their ids."""
    now = now or timezone.now()
    due = Dataflow.objects.filter(state=DataflowState.ACTIVE, mode=DataflowMode.BATCH, next_batch_at__lte=now)
    started = []
    for dataflow in due.only("pk", "next_batch_at", "batch_time"):
        # Moving next_batch_at on the row we read is the claim: a second scheduler tick finds nothing due.
        claimed = Dataflow.objects.filter(pk=dataflow.pk, next_batch_at=dataflow.next_batch_at).update(
            next_batch_at=next_batch_time(dataflow.batch_time, now)
        )
        if claimed:
            request_push(dataflow, RunTrigger.SCHEDULE)
            started.append(dataflow.pk)
    return started


def push_stranded_dataflows(now=None) -> list[int]:
    """Beat safety net: queue a push for every active streaming dataflow with work unsent for
    STRANDED_AFTER, no live lease and no run started meanwhile. Returns their ids."""
    now = now or timezone.now()
    since = now - STRANDED_AFTER
    candidates = (
        Dataflow.objects.filter(state=DataflowState.ACTIVE, mode=DataflowMode.STREAMING, destination__enabled=True)
        .filter(destination__kind__in=[kind for kind in DestinationKind.values if not destination_type(kind).snapshot])
        .filter(Q(lease_token="") | Q(lease_expires_at__lt=now))
        .exclude(runs__started_at__gt=since)
        .only("pk", "sandbox_id", "cursors")
    )
    queued = _with_unsent_changes(list(candidates), changed_before=since)
    for dataflow in queued:
        request_push(dataflow, RunTrigger.STREAMING)
    return [dataflow.pk for dataflow in queued]


# ------------------------------------------------------------------------------------------ pushes
def push_dataflow(dataflow_id: int, *, trigger: str = RunTrigger.STREAMING, sleep=time.sleep) -> ActivationRun | None:
    """Send what changed in the dataflow's audiences since its cursors. Returns the recorded run, or
    None when there was nothing to do (paused, disabled, nothing new, another worker pushing)."""
    token = _claim(dataflow_id)
    if token is None:
        return None  # the holder looks for newer changes after letting go (below), so none is stranded
    try:
        run = _push(dataflow_id, token, trigger, sleep)
    finally:
        Dataflow.objects.filter(pk=dataflow_id, lease_token=token).update(lease_token="", lease_expires_at=None)
    # Checked after the lease is released: a change whose own push found the lease taken is seen here.
    if run is not None and run.status == RunStatus.SUCCEEDED and not destination_type(run.dataflow.destination.kind).snapshot:
        if _with_unsent_changes(list(Dataflow.objects.filter(pk=dataflow_id).only("pk", "sandbox_id", "cursors"))):
            request_push(run.dataflow, RunTrigger.STREAMING)
    return run


def _push(dataflow_id, token, trigger, sleep) -> ActivationRun | None:
    dataflow = Dataflow.objects.select_related("destination__pairing__marketo_instance", "sandbox").get(pk=dataflow_id)
    destination = dataflow.destination
    audiences = list(dataflow.audiences.all())
    if not destination.enabled or not audiences:
        return None
    kind = audiences[0].kind
    destination_kind = destination_type(destination.kind)
    cursors_from = {str(a.pk): int(dataflow.cursors.get(str(a.pk), 0)) for a in audiences}
    retired = _retired_cursors(dataflow.cursors, [a.pk for a in audiences])
    withdrawals = []
    if destination_kind.snapshot:
        members, cursors_to, changes = _snapshot(dataflow, audiences, kind), _history_ends(audiences), 0
    else:
        members, cursors_to, changes = _changes(dataflow, audiences, kind, cursors_from)
        if not changes and not retired and trigger == RunTrigger.STREAMING:
            return None
        # First, so that a run stopped by the quota after them has done with the taken-out audiences.
        withdrawals = _withdrawals(dataflow, audiences, kind, retired, covered={m.member_id for m in members})
        members = withdrawals + members
    run = ActivationRun.objects.create(
        sandbox_id=dataflow.sandbox_id, dataflow=dataflow, trigger=trigger, started_at=timezone.now(),
        cursors_from=cursors_from, cursors_to=cursors_to, changes=changes,
    )  # fmt: skip
    result, status, error = PushResult(), RunStatus.SUCCEEDED, ""
    batch_key = f"{dataflow.pk}:{json.dumps(cursors_from, sort_keys=True)}:{json.dumps(cursors_to, sort_keys=True)}"
    if retired:
        batch_key += f":{json.dumps(retired, sort_keys=True)}"
    try:
        destination_kind.push(destination, dataflow, members, result, PushContext(batch_key=batch_key, sleep=sleep))
        _record(dataflow, run, token, result, status, error, _cursors_after(dataflow.cursors, cursors_to, retired))
    except PushStopped as stop:
        cursors_to = _resume_points(members[stop.sent_count :], cursors_to)
        withdrawn = retired if stop.sent_count >= len(withdrawals) else {}
        _record(dataflow, run, token, result, RunStatus.STOPPED, stop.message, _cursors_after(dataflow.cursors, cursors_to, withdrawn))
    except Exception as failure:
        # The cursors stay: the next run sends these changes again.
        ActivationRun.objects.filter(pk=run.pk).update(
            status=RunStatus.FAILED, finished_at=timezone.now(), error=f"{type(failure).__name__}: {failure}"[:2000]
        )
        raise
    return run


def _past_cursors(cursors: dict[int, int]) -> Q:
    """Membership changes after each audience's cursor: what a dataflow has not sent yet."""
    return reduce(operator.or_, (Q(audience_id=audience_id, id__gt=cursor) for audience_id, cursor in cursors.items()), Q(pk__in=[]))


def _retired_cursors(cursors: dict, audience_ids) -> dict[int, int]:
    """Cursors of audiences taken out of the dataflow. Such a cursor stays until the run that removes
    the people sent as that audience's members succeeds."""
    current = {str(pk) for pk in audience_ids}
    return {int(pk): int(cursor) for pk, cursor in cursors.items() if pk not in current}


def _cursors_after(saved: dict, cursors_to: dict, withdrawn: dict) -> dict:
    return {pk: cursor for pk, cursor in {**saved, **cursors_to}.items() if int(pk) not in withdrawn}


def _with_unsent_changes(dataflows: list[Dataflow], *, changed_before=None) -> list[Dataflow]:
    """Those of ``dataflows`` with work waiting: membership changes past their cursors (made by
    ``changed_before``, when given) or a taken-out audience whose members are still to be removed.
    A fixed number of queries, whatever the number of dataflows."""
    audience_ids: dict[int, list[int]] = {dataflow.pk: [] for dataflow in dataflows}
    links = DataflowAudience.objects.filter(dataflow__in=[d.pk for d in dataflows]).values_list("dataflow_id", "audience_id")
    for dataflow_id, audience_id in links:
        audience_ids[dataflow_id].append(audience_id)
    lowest: dict[int, int] = {}  # audience → the lowest cursor any of the dataflows has for it
    for dataflow in dataflows:
        for audience_id in audience_ids[dataflow.pk]:
            cursor = int(dataflow.cursors.get(str(audience_id), 0))
            lowest[audience_id] = min(lowest.get(audience_id, cursor), cursor)
    newest: dict[int, int] = {}  # audience → its newest change past that cursor
    audiences = list(lowest.items())
    for start in range(0, len(audiences), _AUDIENCES_PER_QUERY):
        unsent = AudienceMembershipChange.objects.filter(
            _past_cursors(dict(audiences[start : start + _AUDIENCES_PER_QUERY])),
            sandbox_id__in={dataflow.sandbox_id for dataflow in dataflows},
        )
        if changed_before is not None:
            unsent = unsent.filter(at__lte=changed_before)
        newest.update(unsent.order_by().values("audience_id").annotate(newest=Max("id")).values_list("audience_id", "newest"))
    return [
        dataflow
        for dataflow in dataflows
        if _retired_cursors(dataflow.cursors, audience_ids[dataflow.pk])
        or any(newest.get(a, 0) > int(dataflow.cursors.get(str(a), 0)) for a in audience_ids[dataflow.pk])
    ]


def _claim(dataflow_id: int) -> str | None:
    now, token = timezone.now(), uuid.uuid4().hex
    claimed = (
        Dataflow.objects.filter(pk=dataflow_id, state=DataflowState.ACTIVE)
        .filter(Q(lease_token="") | Q(lease_expires_at__lt=now))
        .update(lease_token=token, lease_expires_at=now + LEASE)
    )
    if not claimed:
        return None
    # A run still "running" now belongs to a worker that died while holding the lease.
    ActivationRun.objects.filter(dataflow_id=dataflow_id, status=RunStatus.RUNNING).update(
        status=RunStatus.FAILED, finished_at=now, error="The worker stopped during this run; the next run re-sent its changes."
    )
    return token


def _changes(dataflow, audiences, kind, cursors_from) -> tuple[list[Member], dict, int]:
    rows = list(
        AudienceMembershipChange.objects.for_sandbox(dataflow.sandbox)
        .filter(_past_cursors({a.pk: cursors_from[str(a.pk)] for a in audiences}))
        .order_by("id").values_list("id", "audience_id", "member_id", "change")[:MAX_CHANGES_PER_RUN]
    )  # fmt: skip
    cursors_to = dict(cursors_from)
    last: dict[int, dict[int, str]] = {}  # member → audience → last change
    first: dict[int, dict[str, int]] = {}  # member → audience → first change id
    for change_id, audience_id, member_id, change in rows:
        cursors_to[str(audience_id)] = change_id
        last.setdefault(member_id, {})[audience_id] = change
        first.setdefault(member_id, {}).setdefault(str(audience_id), change_id)
    entered = {m for m, changes in last.items() if AudienceMembershipChange.Change.ENTERED in changes.values()}
    leaving = set(last) - entered
    if leaving:
        # Someone who left one audience but is still in another of the dataflow stays.
        leaving -= set(_held_by(audiences).filter(member_id__in=leaving).values_list("member_id", flat=True))
    ids = sorted(entered | leaving, key=lambda m: min(first[m].values()))
    values = _profile_values(dataflow.sandbox, kind, ids, dataflow.mapping)
    placed = _placed(dataflow, leaving)
    members = [
        Member(m, ADD if m in entered else REMOVE, values[m][1], values[m][0], first[m], placed.get(m, []))
        for m in ids
    ]  # fmt: skip
    return members, cursors_to, len(rows)


def _withdrawals(dataflow, audiences, kind, retired: dict[int, int], covered: set[int]) -> list[Member]:
    """Removals of the people the dataflow sent as members of audiences since taken out of it
    (their last change it delivered there, up to the kept cursor, is an entry), unless an audience
    the dataflow still has holds them. ``covered``: people this run's changes already send."""
    if not retired:
        return []
    history = AudienceMembershipChange.objects.for_sandbox(dataflow.sandbox)
    delivered = history.filter(reduce(operator.or_, (Q(audience_id=pk, id__lte=cursor) for pk, cursor in retired.items())))
    last_delivered = delivered.order_by().values("audience_id", "member_id").annotate(last=Max("id")).values("last")
    sent = history.filter(pk__in=last_delivered, change=AudienceMembershipChange.Change.ENTERED)
    ids = sorted(set(sent.exclude(member_id__in=_held_by(audiences)).values_list("member_id", flat=True)) - covered)
    values = _profile_values(dataflow.sandbox, kind, ids, dataflow.mapping)
    placed = _placed(dataflow, ids)
    return [Member(m, REMOVE, values[m][1], values[m][0], {}, placed.get(m, [])) for m in ids]


def _held_by(audiences):
    """Ids of the people (or accounts) the audiences hold now."""
    return AudienceMember.objects.filter(audience__in=audiences, status=MembershipStatus.REALIZED).values("member_id")


def _placed(dataflow, member_ids) -> dict[int, list[int]]:
    """member → the ids the destination gave it when this dataflow added it (a removal uses them)."""
    placed: dict[int, list[int]] = {}
    for _start, chunk in chunked(list(member_ids), _IDS_PER_QUERY):
        stored = DestinationMember.objects.filter(dataflow=dataflow, member_id__in=chunk)
        for member_id, external_id in stored.values_list("member_id", "external_id"):
            placed.setdefault(member_id, []).append(external_id)
    return placed


def _snapshot(dataflow, audiences, kind) -> list[Member]:
    ids = sorted(set(_held_by(audiences).values_list("member_id", flat=True)))
    values = _profile_values(dataflow.sandbox, kind, ids, dataflow.mapping)
    return [Member(m, ADD, values[m][1], values[m][0]) for m in ids]


def _history_ends(audiences) -> dict:
    ends = AudienceMembershipChange.objects.filter(audience__in=audiences).values("audience_id").annotate(last=Max("id"))
    found = {str(row["audience_id"]): row["last"] for row in ends}
    return {str(a.pk): found.get(str(a.pk), 0) for a in audiences}


def _resume_points(unsent: list[Member], cursors_to: dict) -> dict:
    """Cursors that stop just before the first change of any member not yet sent."""
    resume = dict(cursors_to)
    for member in unsent:
        for audience_id, first_id in member.first_change_ids.items():
            resume[audience_id] = min(resume[audience_id], first_id - 1)
    return resume


def _record(dataflow, run, token, result: PushResult, status, error, cursors) -> None:
    with transaction.atomic():
        # Lock the row: the cursor moves only while this worker still holds the lease.
        holds_lease = Dataflow.objects.select_for_update().filter(pk=dataflow.pk, lease_token=token).exists()
        ActivationOutcome.objects.bulk_create(
            ActivationOutcome(
                sandbox_id=dataflow.sandbox_id, run=run, member_id=o.member_id, email=o.email, action=o.action,
                outcome=o.outcome, detail=o.detail,
            )
            for o in result.outcomes
        )  # fmt: skip
        DeadLetter.objects.bulk_create(
            [
                DeadLetter(
                    sandbox_id=dataflow.sandbox_id, dataflow=dataflow, run=run, batch_id=batch_id, payload=payload,
                    attempts=attempts, last_error=last_error[:2000],
                )
                for batch_id, payload, attempts, last_error in result.dead_letters
            ],
            ignore_conflicts=True,
        )  # fmt: skip
        if result.withdrawn:
            DestinationMember.objects.filter(dataflow=dataflow, member_id__in=result.withdrawn).delete()
        DestinationMember.objects.bulk_create(
            [
                DestinationMember(sandbox_id=dataflow.sandbox_id, dataflow=dataflow, member_id=member_id, external_id=external_id)
                for member_id, external_id in result.placed
            ],
            ignore_conflicts=True,
        )
        if not holds_lease:
            status, error = RunStatus.FAILED, "Another worker took this dataflow over; its cursor was left to that worker."
        ActivationRun.objects.filter(pk=run.pk).update(
            status=status, finished_at=timezone.now(), sent=result.sent, matched=result.matched,
            unmatched=result.unmatched, failed=result.failed, skipped=result.skipped, created=result.created,
            file=result.file, error=error[:2000], cursors_to=cursors,
        )  # fmt: skip
        if holds_lease:
            Dataflow.objects.filter(pk=dataflow.pk).update(cursors=cursors)
    run.refresh_from_db()


def resend_dead_letter(dead_letter: DeadLetter, *, sleep=time.sleep) -> bool:
    """Send a dead-lettered webhook batch again (same batch id); True when delivered."""
    from connectors.destinations.webhook import deliver

    if dead_letter.status == DeadLetter.Status.RESENT:
        raise RuleViolation("This batch was already re-sent.", rule="dead_letter_resent", field="status")
    destination = dead_letter.dataflow.destination
    delivered, attempts, error = deliver(destination, dead_letter.payload, sleep=sleep)
    updates = {"attempts": dead_letter.attempts + attempts, "last_error": error[:2000]}
    if delivered:
        updates.update(status=DeadLetter.Status.RESENT, resent_at=timezone.now())
    DeadLetter.objects.filter(pk=dead_letter.pk).update(**updates)
    dead_letter.refresh_from_db()
    return delivered
