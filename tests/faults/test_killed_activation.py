"""A streaming push to a Marketo static list whose worker is SIGKILLed mid-push: after restart the
list holds exactly the audience's members and no lead was created twice."""

import datetime as dt

import pytest
from django.utils import timezone

from cdp.models import AudienceMember
from cdp.services.audiences import save_audience
from connectors.models import ActivationRun, Dataflow, DestinationMember, RunStatus
from connectors.services.activation import create_dataflow, create_destination
from tests.cdp.ingest_helpers import ingest
from tests.faults.conftest import unacked_count, wait_for, wait_until_redeliverable

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

CTO = {"subject": "person", "condition": {"type": "compare", "field": "jobTitle", "op": "eq", "value": "CTO"}}
KNOWN = [f"known{n}@x.io" for n in range(5)]  # already leads in Marketo
NEW = [f"new{n}@x.io" for n in range(3)]  # not in Marketo: the destination may create them


def test_push_killed_mid_push_ends_with_exactly_the_members_and_no_duplicate_creates(
    workers, sandbox, admin_user, marketo_instance, fake_marketo, marketo_hooks, inline_tasks
):
    known_leads = {email: fake_marketo.add_lead(email) for email in KNOWN}
    fake_marketo.add_lead("ceo@x.io")
    static_list = fake_marketo.add_list("Quorum CTOs")
    with inline_tasks():
        audience = save_audience(sandbox, name="CTOs", definition=CTO)
        destination = create_destination(
            sandbox, by=admin_user, name="Marketo CTOs", kind="marketo_static_list", marketo_instance=marketo_instance,
            config={"list_id": static_list}, allow_lead_creation=True,
        )  # fmt: skip
        dataflow = create_dataflow(sandbox, by=admin_user, name="CTOs to Marketo", destination=destination, audiences=[audience])
    list_add = marketo_hooks.hold(rf"/rest/v1/lists/{static_list}/leads\.json")
    first = workers.start()

    # New CTOs arrive: the worker evaluates the audience, which queues the streaming push.
    rows = [{"email": email, "job_title": "CTO"} for email in KNOWN + NEW] + [{"email": "ceo@x.io", "job_title": "CEO"}]
    _, rejections = ingest(sandbox, "person", rows)
    assert not rejections
    assert list_add["reached"].wait(90), workers.logs()
    # Killed while Marketo is adding the leads to the list: Marketo completes the add, the worker
    # never learns it (nor records the run, nor moves the dataflow's cursor).
    first.kill()
    list_add["release"].set()
    wait_for(lambda: len(fake_marketo.list_members(static_list)) == len(KNOWN + NEW), "Marketo to apply the held add")
    assert DestinationMember.objects.filter(dataflow=dataflow).count() == 0
    assert unacked_count(workers.redis) == 1  # the push task, never acknowledged

    # The dead worker's lease on the dataflow runs out; its task comes back to a new worker.
    Dataflow.objects.filter(pk=dataflow.pk).update(lease_expires_at=timezone.now() - dt.timedelta(seconds=1))
    wait_until_redeliverable(workers.redis)
    workers.start()
    succeeded = ActivationRun.objects.filter(dataflow=dataflow, status=RunStatus.SUCCEEDED)
    wait_for(succeeded.exists, "the redelivered push to succeed", on_timeout=workers.logs)

    members = fake_marketo.list_members(static_list)
    created = {lead["email"]: lead["id"] for lead in fake_marketo.leads.values() if lead["email"] in NEW}
    assert sorted(members) == sorted([*known_leads.values(), *created.values()])
    assert len(members) == len(set(members)) == len(KNOWN + NEW)
    # One lead per email in Marketo: the retry matched the leads the killed push had created.
    emails = [lead["email"] for lead in fake_marketo.leads.values()]
    assert sorted(emails) == sorted([*KNOWN, *NEW, "ceo@x.io"])
    creates = [r for call in fake_marketo.lead_syncs() for r in call.response["result"] if r["status"] == "created"]
    assert len(creates) == len(NEW)
    # Quorum's records agree: the dead run is marked, the retry placed every member once.
    runs = list(ActivationRun.objects.filter(dataflow=dataflow).order_by("pk"))
    assert [r.status for r in runs] == [RunStatus.FAILED, RunStatus.SUCCEEDED]
    assert "worker stopped" in runs[0].error
    assert runs[1].matched == len(KNOWN + NEW) and runs[1].created == 0
    realized = set(AudienceMember.objects.filter(audience=audience, status="realized").values_list("member_id", flat=True))
    assert set(DestinationMember.objects.filter(dataflow=dataflow).values_list("member_id", flat=True)) == realized
    assert DestinationMember.objects.filter(dataflow=dataflow).count() == len(KNOWN + NEW)
    dataflow.refresh_from_db()
    assert dataflow.lease_token == ""
    assert unacked_count(workers.redis) == 0
