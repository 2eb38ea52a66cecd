"""A batch (full) evaluation whose worker is SIGKILLed in the middle of writing an audience's
membership: the task comes back (acks_late), and membership and history equal a clean evaluation."""

from collections import Counter

import pytest

from cdp.choices import EvaluationState, MembershipStatus
from cdp.models import Audience, AudienceEvaluation, AudienceMember, AudienceMembershipChange, Person
from cdp.segmentation.compiler import compile_audience
from cdp.services.audiences import membership_lookup, parse_definition, save_audience
from cdp.tasks import evaluate_audiences_in_full
from tests.cdp.ingest_helpers import ingest
from tests.faults.conftest import side_connection, unacked_count, wait_for, wait_until_redeliverable

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

CTO = {"subject": "person", "condition": {"type": "compare", "field": "jobTitle", "op": "eq", "value": "CTO"}}


def in_berlin(ctos):
    return {
        "subject": "person",
        "condition": {
            "type": "and",
            "conditions": [
                {"type": "inSegment", "audience": str(ctos.pk)},
                {"type": "compare", "field": "city", "op": "eq", "value": "Berlin"},
            ],
        },
    }


def realized(audience) -> set[int]:
    return set(
        AudienceMember.objects.filter(audience=audience, status=MembershipStatus.REALIZED).values_list("member_id", flat=True)
    )


def history(audience) -> Counter:
    return Counter(AudienceMembershipChange.objects.filter(audience=audience).values_list("member_id", "change"))


def fresh_evaluation(audience) -> set[int]:
    lookup = membership_lookup(audience.sandbox)
    query = compile_audience(parse_definition(audience.definition), audience.sandbox, membership_lookup=lookup)
    return set(query)


@pytest.fixture
def holder(postgres):
    """A second connection that holds locks for the test; closed (rolling back) whatever happens."""
    conn = side_connection()
    yield conn
    conn.close()


@pytest.fixture
def monitor(postgres):
    """A third one that watches pg_stat_activity (which a transaction sees frozen at its first look)."""
    conn = side_connection()
    yield conn
    conn.close()


def test_full_evaluation_killed_mid_write_is_redelivered_and_equals_a_fresh_evaluation(
    workers, sandbox, inline_tasks, holder, monitor
):
    rows = [
        {"email": f"p{n}@x.io", "job_title": "CTO" if n < 6 else "CEO", "city": "Berlin" if n % 2 == 0 else "Paris"}
        for n in range(12)
    ]
    with inline_tasks():
        _, rejections = ingest(sandbox, "person", rows)
        assert not rejections
        ctos = save_audience(sandbox, name="CTOs", definition=CTO)
        berlin = save_audience(sandbox, name="CTOs in Berlin", definition=in_berlin(ctos))
    p = {n: Person.objects.for_sandbox(sandbox).get(email=f"p{n}@x.io").pk for n in range(12)}
    assert realized(ctos) == {p[n] for n in range(6)} and realized(berlin) == {p[0], p[2], p[4]}
    # The data changes without notifying anyone (as a batch load would): only the full run sees it.
    Person.objects.filter(pk__in=[p[n] for n in range(3)]).update(job_title="CEO")
    Person.objects.filter(pk__in=[p[n] for n in range(6, 12)]).update(job_title="CTO")
    berlin_before = history(berlin)

    # Another transaction holds an uncommitted row for one of Berlin's newcomers: the worker's insert
    # of the newcomers waits on it, after writing Berlin's exits in the same transaction.
    holder.execute("BEGIN")
    # No foreign-key check for this row (superuser setting): its key-share lock on Berlin's audience
    # row would stop the worker earlier, at the audience row lock, before it wrote anything.
    holder.execute("SET LOCAL session_replication_role = replica")
    holder.execute(
        f"INSERT INTO {AudienceMember._meta.db_table} (sandbox_id, audience_id, member_id, status, realized_at) "
        "VALUES (%s, %s, %s, 'realized', now())",
        [sandbox.pk, berlin.pk, p[6]],
    )
    first = workers.start()
    task = evaluate_audiences_in_full.delay(sandbox.pk, [berlin.pk, ctos.pk])

    def worker_waits_on_the_lock():
        return monitor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND wait_event_type = 'Lock' AND query LIKE %s",
            [f'INSERT INTO "{AudienceMember._meta.db_table}"%'],
        ).fetchone()[0]

    wait_for(worker_waits_on_the_lock, "the worker to block inside Berlin's membership write", on_timeout=workers.logs)
    first.kill()
    holder.execute("ROLLBACK")

    # The CTOs audience (evaluated first, its own transaction) is done; Berlin's write was rolled back.
    assert realized(ctos) == {p[n] for n in range(3, 12)}
    assert realized(berlin) == {p[0], p[2], p[4]} and history(berlin) == berlin_before
    assert unacked_count(workers.redis) == 1

    wait_until_redeliverable(workers.redis)
    workers.start()
    assert task.get(timeout=90) == {"evaluated": 2}  # the same task id, run again by the new worker

    for audience in (ctos, berlin):
        audience.refresh_from_db()
        assert audience.state == EvaluationState.IDLE and audience.last_error == ""
        assert realized(audience) == fresh_evaluation(audience)
    assert realized(berlin) == {p[4], p[6], p[8], p[10]}
    # Every entry and exit recorded exactly once (the setup's entries, then this run's moves).
    assert history(ctos) == Counter(
        {**{(p[n], "entered"): 1 for n in range(12)}, **{(p[n], "exited"): 1 for n in range(3)}}
    )
    assert history(berlin) == Counter(
        {**{(p[n], "entered"): 1 for n in (0, 2, 4, 6, 8, 10)}, (p[0], "exited"): 1, (p[2], "exited"): 1}
    )
    # The killed run left no evaluation record for Berlin; the redelivered one did.
    full_runs = AudienceEvaluation.objects.filter(audience=berlin, mode=AudienceEvaluation.Mode.FULL, error="")
    assert full_runs.count() == 2 and full_runs.latest("pk").entered == 3 and full_runs.latest("pk").exited == 2
    assert Audience.objects.get(pk=ctos.pk).last_entered == 0  # re-run after the kill: nothing left to move
    assert unacked_count(workers.redis) == 0
