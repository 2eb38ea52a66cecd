"""The broker restarts (Redis without persistence: everything in it is lost) under a running worker."""

import datetime as dt

import pytest
from django.db.models import F

from cdp.choices import MembershipStatus
from cdp.models import AudienceMember, AudienceMembershipChange
from cdp.services.audiences import save_audience
from cdp.tasks import health_check
from connectors.activation_tasks import push_stranded_dataflows_task
from connectors.models import ActivationRun, RunStatus
from connectors.services.activation import STRANDED_AFTER, create_dataflow, create_destination
from tests.cdp.ingest_helpers import ingest
from tests.faults.conftest import wait_for

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

CTO = {"subject": "person", "condition": {"type": "compare", "field": "jobTitle", "op": "eq", "value": "CTO"}}


def test_worker_reconnects_after_a_redis_restart_and_tasks_sent_afterwards_complete(workers, sandbox, inline_tasks):
    with inline_tasks():
        ingest(sandbox, "person", [{"email": f"p{n}@x.io", "job_title": "CTO" if n % 2 else "CEO"} for n in range(10)])
    worker = workers.start()
    assert health_check.apply_async().get(timeout=60)["worker"] == worker.name

    workers.redis.stop()  # SIGKILL: queues, results and the worker's connections are gone
    workers.redis.start()
    assert worker.alive()

    # Sent after the restart: the worker must have reconnected to take them.
    results = [health_check.apply_async() for _ in range(3)]
    audience = save_audience(sandbox, name="CTOs", definition=CTO)  # queues its evaluation on commit

    answers = [r.get(timeout=90) for r in results]
    assert [a["worker"] for a in answers] == [worker.name] * 3
    realized = AudienceMember.objects.filter(audience=audience, status=MembershipStatus.REALIZED)
    wait_for(lambda: realized.count() == 5, "the audience evaluated by the reconnected worker", on_timeout=workers.logs)
    assert realized.count() == 5
    assert worker.alive()


def test_a_push_lost_with_the_broker_is_sent_by_the_beat_safety_net(
    workers, sandbox, admin_user, marketo_instance, fake_marketo, inline_tasks
):
    emails = [f"cto{n}@x.io" for n in range(3)]
    leads = [fake_marketo.add_lead(email) for email in emails]
    static_list = fake_marketo.add_list("Quorum CTOs")
    with inline_tasks():
        audience = save_audience(sandbox, name="CTOs", definition=CTO)
        ingest(sandbox, "person", [{"email": email, "job_title": "CTO"} for email in emails])
        destination = create_destination(
            sandbox, by=admin_user, name="Marketo CTOs", kind="marketo_static_list", marketo_instance=marketo_instance,
            config={"list_id": static_list},
        )  # fmt: skip
    assert AudienceMember.objects.filter(audience=audience).count() == 3
    # A new dataflow queues the push of the audience's members; Redis dies before a worker takes it.
    dataflow = create_dataflow(sandbox, by=admin_user, name="CTOs to Marketo", destination=destination, audiences=[audience])
    assert workers.redis.client().llen("connectors") == 1
    workers.redis.stop()
    workers.redis.start()
    worker = workers.start()
    assert health_check.apply_async().get(timeout=60)["worker"] == worker.name
    assert fake_marketo.list_members(static_list) == [] and not ActivationRun.objects.exists()

    # Nothing announces these changes again; once they are STRANDED_AFTER old, the beat pushes them.
    AudienceMembershipChange.objects.filter(audience=audience).update(at=F("at") - STRANDED_AFTER - dt.timedelta(seconds=1))
    assert push_stranded_dataflows_task.delay().get(timeout=60) == {"queued": [dataflow.pk]}
    run = wait_for(
        lambda: ActivationRun.objects.filter(dataflow=dataflow, status=RunStatus.SUCCEEDED).first(),
        "the safety net's push", on_timeout=workers.logs,
    )  # fmt: skip
    assert (run.sent, run.matched) == (3, 3)
    members = fake_marketo.list_members(static_list)
    assert sorted(members) == sorted(leads) and len(members) == len(set(members))
    # Sent: a second look finds nothing stranded.
    assert push_stranded_dataflows_task.delay().get(timeout=60) == {"queued": []}
