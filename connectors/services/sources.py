"""Source connections: external systems (Marketo, Salesforce) feeding a sandbox's profile store.

This module is the one implementation of the source rules and of the sync runner; pages, the API
and the Celery tasks (``connectors/tasks.py``) all go through it.

Models (``connectors.models.sources``)
    SourceConnection  sandbox, kind (marketo | salesforce), marketo_instance | salesforce_org, name,
                      enabled, sync_interval_minutes, backfill_since, options (JSON, kind-specific),
                      cursor (JSON, where the incremental sync continues; owned by the source class),
                      last_synced_at, next_sync_at, created_by
    SyncRun           connection, mode (backfill | incremental), state (queued | running | paused |
                      succeeded | failed | cancelled), phase (text for people), progress_done/total,
                      checkpoint (JSON, owned by the source class), counts (JSON, per entity), error,
                      resume_after, attempts, heartbeat_at, started_at, finished_at
    SyncRejection     run, entity, source_ref, field, reason, raw: records that could not be stored

Writing a source kind
    class SalesforceSource(Source):
        kind = SourceKind.SALESFORCE
        dataset = "salesforce"            # the merge-policy dataset everything it stores is tagged with

        def test_connection(self) -> str: ...          # a sentence for people; raise SourceError if it fails
        def steps(self, run) -> Iterator[Chunk | Wait]: ...

    register_source(SalesforceSource)                  # at import time of your module

    and list that module in ``SOURCE_MODULES`` below so the registry is filled.

    ``steps(run)`` is a generator. It reads where to start from ``run.checkpoint`` (and, for
    incremental runs, ``self.connection.cursor``), fetches data and yields:

    Chunk(entity, rows, checkpoint, cursor=None, progress=None, phase="", refs=None, forget=(), apply=None)
        ``rows``: raw dicts in the profile store's key format (``cdp.schema``: "email",
        "identity.marketo_lead_id", "account.domain", "external_id", "properties.x", …); the runner
        parses them with ``cdp.services.ingestion.records.parse_record`` and stores them with
        ``store_records(…, dataset=source.dataset)``. ``refs``: per row, where it came from
        ("lead 12") for the rejection report. ``forget``: identities deleted at the source,
        [(namespace, value)] (see ``forget_identities``). ``apply(sandbox) -> counts``: the source's own
        writes with no profile-store entity (campaigns, deletions), run in the chunk's transaction. A
        chunk may carry no rows (e.g. only "export job 42 created").
        In ONE transaction with the rows, the runner saves ``checkpoint`` as the run's checkpoint,
        ``cursor`` (when not None) as the connection's cursor, the counts, progress (done, total),
        ``phase`` and the heartbeat. So yield the position AFTER the chunk's rows: a killed worker
        resumes from the last stored chunk and nothing is lost or stored twice. Events need a stable
        ``external_id`` (re-storing one is reported as a duplicate, not counted twice).
    Wait(seconds, checkpoint, phase="")
        Nothing to do until later (a bulk export is processing): the run is parked (state queued,
        resume_after = now + seconds) and ``schedule_syncs`` (beat, every minute) picks it up again;
        no worker sleeps.

    Errors: raise ``SourceQuotaExceeded(message, resume_after)`` to pause the run until then (the beat
    resumes it), ``SourceError(message)`` to fail it with a message people can act on. Convert your
    client's exceptions into these inside ``steps``; anything else fails the run as "unexpected" and
    the run can be resumed from its checkpoint (``resume_run``). ``self.now()`` is the clock to use.

Counts (``SyncRun.counts``) are kept per chunk entity: received, created, updated, merged,
rejected (each one also a SyncRejection), duplicates (already stored, not counted twice), deleted.

Runs are claimed with a conditional UPDATE (queued, due paused, or running with a heartbeat older
than STALE_AFTER), and every chunk is written only if the run is still this worker's claim
(``attempts`` is the fencing token), so two workers never both work one run. A run only works
while its instance is paired with the sandbox as a source. A task works on a run for at most
WORK_BUDGET_SECONDS, then hands it over to a fresh task.

Tasks (``connectors/tasks.py``): ``run_sync(run_id)``; ``schedule_incremental_syncs()`` (beat,
every minute) = ``schedule_syncs``.
"""

import datetime as dt
import importlib
import operator
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from functools import reduce
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from cdp.exceptions import RuleViolation
from cdp.models import Identity
from cdp.services.ingestion.records import Rejection, parse_record
from cdp.services.ingestion.store import store_records
from cdp.services.audiences import announce_profile_changes
from connectors.choices import PairingKind
from connectors.models import Pairing, SourceConnection, SourceKind, SyncMode, SyncRejection, SyncRun, SyncState
from connectors.models.sources import ACTIVE_SYNC_STATES
from connectors.services.pairings import create_pairing

# A running run whose worker has not written for this long is considered dead and resumed.
STALE_AFTER = dt.timedelta(minutes=10)
REQUEUE_AFTER = dt.timedelta(minutes=5)
DEFAULT_BACKFILL_DAYS = 90
# A task works on a run for at most this long, then re-queues it (Celery's soft limit is 15 minutes).
WORK_BUDGET_SECONDS = 10 * 60
COUNT_KEYS = ("received", "created", "updated", "merged", "rejected", "duplicates", "deleted")
# Modules that register source kinds when imported.
SOURCE_MODULES = ("connectors.marketo.source", "connectors.salesforce.source")

SOURCE_CONNECTION_DUPLICATE = "source_connection_duplicate"
SYNC_IN_PROGRESS = "sync_in_progress"
SYNC_NOT_RESUMABLE = "sync_not_resumable"
SOURCE_DISABLED = "source_disabled"
SOURCE_NOT_PAIRED = "source_not_paired"


class SourceError(Exception):
    """A sync can't go on; the message says why in words people can act on."""


class SourceQuotaExceeded(SourceError):
    """The source's API quota is used up until ``resume_after``."""

    def __init__(self, message: str, resume_after: dt.datetime):
        super().__init__(message)
        self.resume_after = resume_after


class RunLost(Exception):
    """Another worker claimed (or someone cancelled) the run while this one was working on it."""


@dataclass
class Chunk:
    entity: str | None
    rows: list = field(default_factory=list)
    checkpoint: dict = field(default_factory=dict)
    cursor: dict | None = None
    progress: tuple[int, int] | None = None
    phase: str = ""
    refs: list | None = None
    forget: list = field(default_factory=list)
    # Writes with no profile-store entity (campaigns, deletions), run in the chunk's transaction
    # so they and the cursor move together: apply(sandbox) -> counts to add for ``entity``.
    apply: Callable | None = None


@dataclass
class Wait:
    seconds: int
    checkpoint: dict
    phase: str = ""


class Source:
    """Base of the source kinds; see the module docstring."""

    kind: str = ""
    dataset: str = ""

    def __init__(self, connection: SourceConnection, *, now=None):
        self.connection = connection
        self._now = now

    def now(self) -> dt.datetime:
        return self._now or timezone.now()

    def backfill_start(self) -> dt.datetime:
        return self.connection.backfill_since or (self.now() - dt.timedelta(days=DEFAULT_BACKFILL_DAYS))

    def test_connection(self) -> str:
        raise NotImplementedError

    def steps(self, run: SyncRun) -> Iterator[Chunk | Wait]:
        raise NotImplementedError


SOURCE_KINDS: dict[str, type[Source]] = {}


def register_source(cls: type[Source]) -> type[Source]:
    SOURCE_KINDS[cls.kind] = cls
    return cls


def source_class(kind: str) -> type[Source]:
    if kind not in SOURCE_KINDS:
        for module in SOURCE_MODULES:
            try:
                importlib.import_module(module)
            except ModuleNotFoundError as error:
                if error.name != module:
                    raise
    try:
        return SOURCE_KINDS[kind]
    except KeyError:
        raise SourceError(f"Syncing {kind} sources is not available in this installation.") from None


def source_for(connection: SourceConnection, *, now=None) -> Source:
    return source_class(connection.kind)(connection, now=now)


# --- Connections -------------------------------------------------------------------------------


def create_source_connection(
    *,
    sandbox,
    name: str,
    marketo_instance=None,
    salesforce_org=None,
    created_by=None,
    enabled: bool = True,
    sync_interval_minutes: int = 15,
    backfill_since: dt.datetime | None = None,
    options: dict | None = None,
) -> SourceConnection:
    """Connect a Marketo instance or Salesforce org to the sandbox as a source.

    The instance must be paired with the sandbox as a source; if it isn't yet, the pairing is
    created here and the pairing rules apply (``PairingRuleViolation`` names the broken rule).
    The first incremental sync runs at once and starts from now; history comes from a backfill.
    """
    kind = SourceKind.MARKETO if marketo_instance is not None else SourceKind.SALESFORCE
    same_instance = {"marketo_instance": marketo_instance} if marketo_instance else {"salesforce_org": salesforce_org}
    with transaction.atomic():
        one_instance = (marketo_instance is None) != (salesforce_org is None)
        if one_instance and SourceConnection.objects.for_sandbox(sandbox).filter(**same_instance).exists():
            raise RuleViolation(
                f"“{(marketo_instance or salesforce_org).name}” already feeds this sandbox through a source connection.",
                rule=SOURCE_CONNECTION_DUPLICATE,
                field="marketo_instance" if marketo_instance else "salesforce_org",
            )
        paired = one_instance and Pairing.objects.for_sandbox(sandbox).filter(kind=PairingKind.SOURCE, **same_instance).exists()
        if not paired:  # create_pairing applies every pairing rule, "exactly one instance" included
            create_pairing(
                sandbox=sandbox,
                kind=PairingKind.SOURCE,
                marketo_instance=marketo_instance,
                salesforce_org=salesforce_org,
                created_by=created_by,
            )
        try:
            with transaction.atomic():
                return SourceConnection.objects.create(
                    sandbox=sandbox,
                    kind=kind,
                    name=name,
                    created_by=created_by,
                    enabled=enabled,
                    sync_interval_minutes=sync_interval_minutes,
                    backfill_since=backfill_since,
                    options=options or {},
                    next_sync_at=timezone.now() if enabled else None,
                    **same_instance,
                )
        except IntegrityError:
            raise RuleViolation(
                "This instance already feeds this sandbox through a source connection.", rule=SOURCE_CONNECTION_DUPLICATE
            ) from None


def update_source_connection(connection: SourceConnection, **changes) -> SourceConnection:
    """Change name, enabled, sync interval, backfill start or options."""
    allowed = {"name", "enabled", "sync_interval_minutes", "backfill_since", "options"}
    unknown = set(changes) - allowed
    if unknown:
        raise ValueError(f"these fields can't be changed: {', '.join(sorted(unknown))}")
    for name, value in changes.items():
        setattr(connection, name, value)
    if connection.enabled and connection.next_sync_at is None:
        connection.next_sync_at = timezone.now()
    connection.save()
    return connection


def delete_source_connection(connection: SourceConnection) -> None:
    """Stop syncing. What was synced stays in the profile store; the source pairing stays too."""
    connection.delete()


def source_pairing_exists() -> Exists:
    """For SourceConnection querysets: the connection's instance is still paired with its sandbox as a source."""
    return Exists(
        Pairing.objects.filter(
            Q(marketo_instance=OuterRef("marketo_instance")) | Q(salesforce_org=OuterRef("salesforce_org")),
            sandbox=OuterRef("sandbox"),
            kind=PairingKind.SOURCE,
        )
    )


def require_source_pairing(connection: SourceConnection) -> None:
    """Data flows only while the instance is paired with the sandbox as a source (PRODUCT.md, Tenancy)."""
    if not SourceConnection.objects.filter(source_pairing_exists(), pk=connection.pk).exists():
        raise SourceError(
            f"“{connection.instance.name}” is no longer paired with this sandbox as a source; pair it again "
            "(Instances & pairings) to sync."
        )


def test_source_connection(connection: SourceConnection) -> str:
    """A sentence saying the connection works, or SourceError saying why not."""
    return source_for(connection).test_connection()


# --- Runs ----------------------------------------------------------------------------------------


def start_sync(connection: SourceConnection, mode: str, *, requested_by=None) -> SyncRun:
    """Queue a backfill or an incremental sync; refused while one of the same mode is in progress."""
    mode = SyncMode(mode)
    try:
        require_source_pairing(connection)
    except SourceError as error:
        raise RuleViolation(str(error), rule=SOURCE_NOT_PAIRED) from None
    if mode == SyncMode.INCREMENTAL and not connection.enabled:
        raise RuleViolation("This source connection is disabled; enable it to sync.", rule=SOURCE_DISABLED)
    try:
        with transaction.atomic():
            run = SyncRun.objects.create(
                sandbox_id=connection.sandbox_id, connection=connection, mode=mode, requested_by=requested_by
            )
    except IntegrityError:
        raise RuleViolation(
            f"A {mode.label.lower()} of “{connection.name}” is already in progress.", rule=SYNC_IN_PROGRESS
        ) from None
    enqueue_run(run)
    return run


def enqueue_run(run: SyncRun) -> None:
    from connectors.tasks import run_sync

    transaction.on_commit(lambda: run_sync.delay(run.pk))


def resume_run(run: SyncRun) -> SyncRun:
    """Continue a failed or paused run from its checkpoint."""
    resumable = (SyncState.FAILED, SyncState.PAUSED)
    try:
        with transaction.atomic():
            updated = SyncRun.objects.filter(pk=run.pk, state__in=resumable).update(
                state=SyncState.QUEUED, resume_after=None, error="", finished_at=None
            )
    except IntegrityError:
        raise RuleViolation(
            "Another sync of this kind started since; this one can't be resumed.", rule=SYNC_IN_PROGRESS
        ) from None
    if not updated:
        raise RuleViolation("Only a failed or paused sync can be resumed.", rule=SYNC_NOT_RESUMABLE)
    run.refresh_from_db()
    enqueue_run(run)
    return run


def cancel_run(run: SyncRun) -> SyncRun:
    """Stop a run; a worker busy with it stops before its next chunk."""
    SyncRun.objects.filter(pk=run.pk, state__in=ACTIVE_SYNC_STATES).update(
        state=SyncState.CANCELLED, finished_at=timezone.now()
    )
    run.refresh_from_db()
    return run


def claimable_runs(now) -> Q:
    due = Q(resume_after__isnull=True) | Q(resume_after__lte=now)
    return (
        Q(state=SyncState.QUEUED) & due
        | Q(state=SyncState.PAUSED, resume_after__lte=now)
        | Q(state=SyncState.RUNNING, heartbeat_at__lt=now - STALE_AFTER)
    )


def claim_run(run_id: int, *, now=None) -> SyncRun | None:
    """Take the run for this worker, or None if it isn't due or another worker holds it."""
    now = now or timezone.now()
    with transaction.atomic():
        claimed = SyncRun.objects.filter(claimable_runs(now), pk=run_id).update(
            state=SyncState.RUNNING, heartbeat_at=now, resume_after=None, attempts=F("attempts") + 1
        )
        if not claimed:
            return None
        SyncRun.objects.filter(pk=run_id, started_at__isnull=True).update(started_at=now)
    related = ("connection__sandbox", "connection__marketo_instance", "connection__salesforce_org")
    return SyncRun.objects.select_related(*related).get(pk=run_id)


def run_sync(run_id: int, *, now=None) -> SyncRun | None:
    """Claim the run and work on it until it is done, parked, paused or failed."""
    run = claim_run(run_id, now=now)
    if run is None:
        return None
    return execute_run(run, now=now)


def execute_run(run: SyncRun, *, now=None) -> SyncRun:
    started = time.monotonic()
    source = Source(run.connection, now=now)  # the clock, until the real source is built
    try:
        require_source_pairing(run.connection)
        source = source_for(run.connection, now=now)
        for step in source.steps(run):
            if isinstance(step, Wait):
                _save(run, source, state=SyncState.QUEUED, checkpoint=step.checkpoint, phase=step.phase,
                      resume_after=source.now() + dt.timedelta(seconds=step.seconds))
                return run
            _store_chunk(run, source, step)
            if time.monotonic() - started > WORK_BUDGET_SECONDS:
                # Hand over before Celery's time limit: the run continues in a fresh task.
                _save(run, source, state=SyncState.QUEUED)
                enqueue_run(run)
                return run
    except RunLost:
        return run
    except SourceQuotaExceeded as error:
        _save(run, source, state=SyncState.PAUSED, error=str(error), resume_after=error.resume_after)
        return run
    except SourceError as error:
        _finish(run, source, SyncState.FAILED, str(error))
        return run
    except Exception as error:
        _finish(run, source, SyncState.FAILED, f"Stopped by an unexpected error ({type(error).__name__}: {error}); "
                "resume it to continue from where it stopped.")
        raise
    _finish(run, source, SyncState.SUCCEEDED, "")
    return run


def _save(run, source, *, counts=None, progress=None, **values) -> None:
    """Write the run's state if it is still ours; raise RunLost otherwise."""
    values["heartbeat_at"] = source.now()
    if progress is not None:
        values["progress_done"], values["progress_total"] = progress
    if counts is not None:
        values["counts"] = counts
    updated = SyncRun.objects.filter(pk=run.pk, state=SyncState.RUNNING, attempts=run.attempts).update(**values)
    if not updated:
        raise RunLost(run.pk)
    for name, value in values.items():
        setattr(run, name, value)


def _store_chunk(run, source, chunk: Chunk) -> None:
    records, rejections = [], []
    for index, raw in enumerate(chunk.rows):
        item = parse_record(chunk.entity, index, raw)
        (rejections if isinstance(item, Rejection) else records).append(item)
    counts = {entity: dict(values) for entity, values in run.counts.items()}
    with transaction.atomic():
        if records:
            result = store_records(run.connection.sandbox, chunk.entity, records, source.dataset)
            rejections += result.rejections
        if chunk.rows:
            kept = [r for r in rejections if not r.duplicate]
            SyncRejection.objects.bulk_create(
                [
                    SyncRejection(
                        sandbox_id=run.sandbox_id,
                        run=run,
                        entity=chunk.entity,
                        source_ref=chunk.refs[r.row_number] if chunk.refs else "",
                        field=r.field,
                        reason=r.reason,
                        raw=r.raw,
                    )
                    for r in kept
                ]
            )
            add_counts(counts, chunk.entity, received=len(chunk.rows), rejected=len(kept),
                        duplicates=len(rejections) - len(kept),
                        **({"created": result.created, "updated": result.updated, "merged": result.merged} if records else {}))
        if chunk.forget:
            forgotten = forget_identities(run.connection.sandbox, chunk.forget, dataset=source.dataset)
            add_counts(counts, chunk.entity or "person", deleted=forgotten)
        if chunk.apply is not None:
            add_counts(counts, chunk.entity or "other", **chunk.apply(run.connection.sandbox))
        _save(run, source, counts=counts, progress=chunk.progress, checkpoint=chunk.checkpoint,
              **({"phase": chunk.phase} if chunk.phase else {}))
        if chunk.cursor is not None:
            SourceConnection.objects.filter(pk=run.connection_id).update(cursor=chunk.cursor)
            run.connection.cursor = chunk.cursor


def add_counts(counts: dict, entity: str, **added) -> None:
    entity_counts = counts.setdefault(entity, dict.fromkeys(COUNT_KEYS, 0))
    for key, value in added.items():
        entity_counts[key] = entity_counts.get(key, 0) + value


def _finish(run, source, state, error: str) -> None:
    now = source.now()
    try:
        with transaction.atomic():
            values = {"state": state, "error": error, "finished_at": now}
            if state == SyncState.SUCCEEDED:
                values["phase"] = "Done"
                if run.progress_total:
                    values["progress_done"] = run.progress_total
            _save(run, source, **values)
            if state == SyncState.SUCCEEDED:
                connection = run.connection
                connection.last_synced_at = now
                if run.mode == SyncMode.INCREMENTAL:
                    connection.next_sync_at = now + dt.timedelta(minutes=connection.sync_interval_minutes)
                SourceConnection.objects.filter(pk=connection.pk).update(
                    last_synced_at=connection.last_synced_at, next_sync_at=connection.next_sync_at
                )
    except RunLost:
        pass


def forget_identities(sandbox, identities, *, dataset: str) -> int:
    """Records deleted at the source: drop their source identity so nothing new attaches to it.

    The person stays (other sources and its past activities still describe it) and is marked with
    ``attributes.deleted_in_<dataset>_at``, so audiences can exclude it. Returns how many identities
    were removed; unknown ones are ignored (created and deleted between two syncs).
    """
    identities = list(identities)
    if not identities:
        return 0
    by_namespace = defaultdict(set)
    for namespace, value in identities:
        by_namespace[namespace].add(str(value))
    # One IN list per namespace: a page of deletions would pass SQLite's limit as one OR per identity.
    match = reduce(operator.or_, (Q(namespace=namespace, value__in=values) for namespace, values in by_namespace.items()))
    held = list(Identity.objects.for_sandbox(sandbox).filter(match, person__isnull=False).values_list("pk", "namespace", "value", "person_id"))
    if not held:
        return 0
    stamp = timezone.now().isoformat()
    marks = [
        parse_record("person", index, {f"identity.{namespace}": value, f"attributes.deleted_in_{dataset}_at": stamp})
        for index, (_, namespace, value, _) in enumerate(held)
    ]
    store_records(sandbox, "person", [m for m in marks if not isinstance(m, Rejection)], dataset)
    Identity.objects.for_sandbox(sandbox).filter(pk__in=[pk for pk, *_ in held]).delete()
    announce_profile_changes(sandbox.pk, {person_id for *_, person_id in held}, set(), sender=forget_identities)
    return len(held)


def schedule_syncs(*, now=None) -> list[int]:
    """Beat, every minute: queue due incremental syncs and pick up parked, paused and stale runs.
    Returns the ids of the runs handed to workers."""
    now = now or timezone.now()
    active = SyncRun.objects.filter(connection=OuterRef("pk"), mode=SyncMode.INCREMENTAL, state__in=ACTIVE_SYNC_STATES)
    due = SourceConnection.objects.filter(~Exists(active), source_pairing_exists(), enabled=True, next_sync_at__lte=now)
    created = []
    for connection in due:
        try:
            with transaction.atomic():
                run = SyncRun.objects.create(sandbox_id=connection.sandbox_id, connection=connection, mode=SyncMode.INCREMENTAL)
                created.append(run.pk)
                SourceConnection.objects.filter(pk=connection.pk).update(
                    next_sync_at=now + dt.timedelta(minutes=connection.sync_interval_minutes)
                )
        except IntegrityError:
            continue  # another beat (or a person) queued it meanwhile
    # A queued run's task is normally in the broker already; re-send it only if nobody took it for a while.
    just_queued = Q(state=SyncState.QUEUED, resume_after__isnull=True, last_touched__gt=now - REQUEUE_AFTER)
    run_ids = created + list(
        SyncRun.objects.annotate(last_touched=Coalesce("heartbeat_at", "created_at"))
        .filter(claimable_runs(now))
        .exclude(just_queued)
        .exclude(pk__in=created)
        .values_list("pk", flat=True)
    )
    from connectors.tasks import run_sync as run_sync_task

    for run_id in run_ids:
        transaction.on_commit(lambda run_id=run_id: run_sync_task.delay(run_id))
    return run_ids
