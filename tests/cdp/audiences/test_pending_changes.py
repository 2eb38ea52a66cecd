"""Noted profile changes: ingest notes them, a pass claims, evaluates and forgets them; changes
that pile up while the worker is behind are evaluated together; nothing noted is ever dropped."""

import datetime as dt

import pytest
from django.utils import timezone

from cdp.models import AudienceEvaluation, PendingProfileChange, Person
from cdp.services import audiences as audience_service
from cdp.services.audiences import (
    evaluate_pending_changes,
    note_profile_changes,
    sandboxes_with_stranded_changes,
    save_audience,
)
from cdp.tasks import evaluate_due_audiences
from tests.cdp.audiences.test_evaluation import CTO, person_ids, realized
from tests.cdp.ingest_helpers import ingest


@pytest.fixture
def live(transactional_db):
    """Real commits, so tasks queued on commit run as they would in production (inline in tests)."""


def pending(sandbox):
    return set(PendingProfileChange.objects.for_sandbox(sandbox).values_list("kind", "profile_id", "claim"))


def make_ctos_audience(sandbox):
    audience = save_audience(sandbox, name="CTOs", definition=CTO)
    AudienceEvaluation.objects.filter(audience=audience).delete()
    return audience


def test_an_ingest_notes_its_changes_and_its_pass_leaves_nothing_pending(sandbox, live):
    audience = make_ctos_audience(sandbox)
    ingest(sandbox, "person", [{"email": "a@x.io", "job_title": "CTO"}, {"email": "b@x.io", "job_title": "CFO"}])
    assert realized(audience) == person_ids(sandbox, "a@x.io")
    assert pending(sandbox) == set()


def test_changes_noted_while_the_worker_is_behind_are_evaluated_in_one_pass(sandbox, live, monkeypatch):
    audience = make_ctos_audience(sandbox)
    monkeypatch.setattr("cdp.tasks.evaluate_pending_changes.delay", lambda sandbox_id: None)  # the worker is behind
    for email in ("a@x.io", "b@x.io", "c@x.io"):
        ingest(sandbox, "person", [{"email": email, "job_title": "CTO"}])
    assert len(pending(sandbox)) == 3 and realized(audience) == set()

    assert evaluate_pending_changes(sandbox) == 3
    assert realized(audience) == person_ids(sandbox, "a@x.io", "b@x.io", "c@x.io")
    assert AudienceEvaluation.objects.filter(audience=audience).count() == 1  # one pass, not three
    assert pending(sandbox) == set() and evaluate_pending_changes(sandbox) == 0


def test_a_profile_changed_again_during_a_pass_stays_pending_for_the_next(sandbox, live, monkeypatch):
    audience = make_ctos_audience(sandbox)
    monkeypatch.setattr("cdp.tasks.evaluate_pending_changes.delay", lambda sandbox_id: None)
    ingest(sandbox, "person", [{"email": "a@x.io", "job_title": "CFO"}])
    person = Person.objects.for_sandbox(sandbox).get()
    evaluate_changes = audience_service.evaluate_changes

    passes = []

    def changed_meanwhile(sandbox_, **kwargs):
        result = evaluate_changes(sandbox_, **kwargs)
        passes.append((kwargs["person_ids"], realized(audience), pending(sandbox)))
        if len(passes) == 1:  # the first pass read the person as a CFO; then an ingest made them CTO
            Person.objects.filter(pk=person.pk).update(job_title="CTO")
            note_profile_changes(sandbox.pk, {person.pk}, set())
        return result

    monkeypatch.setattr(audience_service, "evaluate_changes", changed_meanwhile)
    assert evaluate_pending_changes(sandbox) == 2  # the change noted during the first pass got a second one
    assert [(ids, members) for ids, members, _ in passes] == [({person.pk}, set()), ({person.pk}, {person.pk})]
    assert realized(audience) == {person.pk} and pending(sandbox) == set()


def test_a_failed_pass_releases_its_changes_for_the_retry(sandbox, live, monkeypatch):
    make_ctos_audience(sandbox)
    monkeypatch.setattr("cdp.tasks.evaluate_pending_changes.delay", lambda sandbox_id: None)
    ingest(sandbox, "person", [{"email": "a@x.io", "job_title": "CTO"}])

    def broken(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(audience_service, "evaluate_changes", broken)
    with pytest.raises(RuntimeError):
        evaluate_pending_changes(sandbox)
    assert pending(sandbox) == {("person", Person.objects.for_sandbox(sandbox).get().pk, None)}


def test_a_dead_pass_claim_is_taken_over_after_its_lease_and_the_beat_finds_it(sandbox, other_sandbox, live, monkeypatch):
    audience = make_ctos_audience(sandbox)
    monkeypatch.setattr("cdp.tasks.evaluate_pending_changes.delay", lambda sandbox_id: None)
    ingest(sandbox, "person", [{"email": "a@x.io", "job_title": "CTO"}])
    ingest(other_sandbox, "person", [{"email": "z@x.io", "job_title": "CTO"}])
    now = timezone.now()
    rows = PendingProfileChange.objects.for_sandbox(sandbox)
    rows.update(claim="00000000-0000-0000-0000-000000000001", claimed_at=now - dt.timedelta(minutes=1))
    assert evaluate_pending_changes(sandbox) == 0  # a live pass holds it
    assert sandboxes_with_stranded_changes(now) == []

    rows.update(claimed_at=now - audience_service.PENDING_LEASE - dt.timedelta(seconds=1))
    assert sandboxes_with_stranded_changes(now) == [sandbox.pk]  # the other sandbox has no audience: nothing noted
    queued = []
    monkeypatch.setattr("cdp.tasks.evaluate_pending_changes.delay", queued.append)
    monkeypatch.setattr("cdp.tasks.evaluate_audiences_in_full.delay", lambda *args: None)
    assert evaluate_due_audiences()["stranded_changes"] == 1 and queued == [sandbox.pk]
    assert evaluate_pending_changes(sandbox) == 1
    assert realized(audience) == person_ids(sandbox, "a@x.io")


def test_unclaimed_changes_older_than_a_minute_count_as_stranded(sandbox, db):
    note_profile_changes(sandbox.pk, {1, 2}, {3}, now=timezone.now() - dt.timedelta(minutes=2))
    assert sandboxes_with_stranded_changes() == [sandbox.pk]
    assert {(kind, profile_id) for kind, profile_id, _ in pending(sandbox)} == {("person", 1), ("person", 2), ("account", 3)}


def test_a_failing_audience_holds_back_only_the_audiences_that_read_it(sandbox, live, monkeypatch):
    ctos = make_ctos_audience(sandbox)
    readers = save_audience(sandbox, name="CTO readers", definition={"subject": "person", "condition": {"type": "inSegment", "audience": str(ctos.pk)}})
    others = save_audience(sandbox, name="CFOs", definition={"subject": "person", "condition": {"type": "compare", "field": "jobTitle", "op": "eq", "value": "CFO"}})
    monkeypatch.setattr("cdp.tasks.evaluate_pending_changes.delay", lambda sandbox_id: None)
    ingest(sandbox, "person", [{"email": "a@x.io", "job_title": "CTO"}, {"email": "b@x.io", "job_title": "CFO"}])
    run = audience_service._Run.evaluate

    def broken_for_ctos(self, lookup):
        if self.audience.pk == ctos.pk:
            raise RuntimeError("statement timeout")
        return run(self, lookup)

    monkeypatch.setattr(audience_service._Run, "evaluate", broken_for_ctos)
    queued = []
    monkeypatch.setattr(audience_service, "_enqueue_full", queued.append)
    assert evaluate_pending_changes(sandbox) == 2
    assert pending(sandbox) == set()  # the changes are not retried on every pass
    assert realized(others) == person_ids(sandbox, "b@x.io")  # unaffected audiences are current
    ctos.refresh_from_db()
    assert ctos.state == "failed" and "statement timeout" in ctos.last_error
    assert queued == [[ctos.pk, readers.pk]]  # the failed one and its reader get a full evaluation

    # Still failing on the next change: neither is queued again on every ingest.
    queued.clear()
    ingest(sandbox, "person", [{"email": "c@x.io", "job_title": "CFO"}])
    evaluate_pending_changes(sandbox)
    assert queued == [] and realized(others) == person_ids(sandbox, "b@x.io", "c@x.io")


def test_changes_are_noted_in_the_ingest_transaction_so_they_stand_or_fall_together(sandbox, live, monkeypatch):
    from django.db import OperationalError

    audience = make_ctos_audience(sandbox)
    note = audience_service.note_profile_changes

    def deadlocked(*args, **kwargs):
        raise OperationalError("deadlock detected")

    monkeypatch.setattr(audience_service, "note_profile_changes", deadlocked)
    with pytest.raises(OperationalError):
        ingest(sandbox, "person", [{"email": "a@x.io", "job_title": "CTO"}])
    assert not Person.objects.for_sandbox(sandbox).exists()  # nothing stored: the client's retry stores it

    monkeypatch.setattr(audience_service, "note_profile_changes", note)
    ingest(sandbox, "person", [{"email": "a@x.io", "job_title": "CTO"}])
    assert realized(audience) == person_ids(sandbox, "a@x.io") and pending(sandbox) == set()


def test_noting_and_passes_running_together_never_deadlock_nor_lose_a_change(sandbox, live):
    import threading

    from django.db import connection, connections

    if connection.vendor != "postgresql":
        pytest.skip("row locks: PostgreSQL only")
    audience = make_ctos_audience(sandbox)
    ingest(sandbox, "person", [{"email": f"p{i}@x.io", "job_title": "CFO"} for i in range(60)])
    ids = sorted(Person.objects.for_sandbox(sandbox).values_list("pk", flat=True))
    errors, stop = [], threading.Event()

    def noter(offset):
        try:
            for round_ in range(15):
                chunk = ids[(offset + round_ * 7) % 40 : (offset + round_ * 7) % 40 + 20]
                note_profile_changes(sandbox.pk, set(chunk), set())
        except Exception as error:  # noqa: BLE001 - any error is the finding
            errors.append(error)
        finally:
            connections.close_all()

    def drainer():
        try:
            while not stop.is_set():
                evaluate_pending_changes(sandbox)
        except Exception as error:  # noqa: BLE001
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=noter, args=(n,)) for n in range(3)] + [threading.Thread(target=drainer)]
    for thread in threads:
        thread.start()
    for thread in threads[:3]:
        thread.join(60)
    stop.set()
    threads[3].join(60)
    assert errors == []
    Person.objects.for_sandbox(sandbox).update(job_title="CTO")  # noted below: a change after the race
    note_profile_changes(sandbox.pk, set(ids), set())
    evaluate_pending_changes(sandbox)
    assert realized(audience) == set(ids) and pending(sandbox) == set()
