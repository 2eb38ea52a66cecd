"""Streaming and batch wiring: a profile change reaches the destination through real commits."""

import datetime as dt

import pytest
from django.utils import timezone

from connectors.models import ActivationRun, Dataflow, DataflowMode, DataflowState, RunTrigger
from connectors.services.activation import (
    create_dataflow,
    create_destination,
    next_batch_time,
    run_due_batch_dataflows,
    set_dataflow_state,
)
from tests.cdp.ingest_helpers import ingest
from tests.connectors.destinations.conftest import CTO


@pytest.fixture
def live(transactional_db):
    """Real commits, so tasks queued on commit run as they would in production (inline in tests)."""


def test_an_ingested_change_streams_to_the_marketo_list(live, sandbox, admin_user, marketo_instance, fake_marketo):
    from cdp.services.audiences import save_audience

    static_list = fake_marketo.add_list("Streamed")
    lead = fake_marketo.add_lead("a@x.io")
    audience = save_audience(sandbox, name="CTOs", definition=CTO)
    destination = create_destination(
        sandbox, by=admin_user, name="Marketo", kind="marketo_static_list", marketo_instance=marketo_instance,
        config={"list_id": static_list},
    )  # fmt: skip
    flow = create_dataflow(sandbox, by=admin_user, name="Stream", destination=destination, audiences=[audience])

    ingest(sandbox, "person", [{"email": "a@x.io", "job_title": "CTO"}])
    assert fake_marketo.list_members(static_list) == [lead]
    ingest(sandbox, "person", [{"email": "a@x.io", "job_title": "CEO"}])
    assert fake_marketo.list_members(static_list) == []
    runs = ActivationRun.objects.filter(dataflow=flow).order_by("id")
    assert [(r.trigger, r.sent) for r in runs] == [(RunTrigger.STREAMING, 1), (RunTrigger.STREAMING, 1)]

    # Paused: changes wait; resuming sends them.
    set_dataflow_state(Dataflow.objects.get(pk=flow.pk), DataflowState.PAUSED)
    ingest(sandbox, "person", [{"email": "a@x.io", "job_title": "CTO"}])
    assert fake_marketo.list_members(static_list) == []
    set_dataflow_state(Dataflow.objects.get(pk=flow.pk), DataflowState.ACTIVE)
    assert fake_marketo.list_members(static_list) == [lead]
    assert fake_marketo.lead_syncs() == []


def test_batch_dataflows_run_once_a_day_at_their_time(live, sandbox, admin_user, export_dir):
    from cdp.services.audiences import save_audience

    audience = save_audience(sandbox, name="CTOs", definition=CTO)
    ingest(sandbox, "person", [{"email": "a@x.io", "job_title": "CTO"}])
    destination = create_destination(sandbox, by=admin_user, name="Files", kind="csv_export", config={"directory": "daily"})
    flow = create_dataflow(
        sandbox, by=admin_user, name="Daily", destination=destination, audiences=[audience],
        mode=DataflowMode.BATCH, batch_time=dt.time(3, 30),
    )  # fmt: skip
    assert ActivationRun.objects.count() == 0  # batch dataflows wait for their time
    due_at = flow.next_batch_at
    assert (due_at.hour, due_at.minute) == (3, 30) and due_at > timezone.now()

    assert run_due_batch_dataflows(now=due_at - dt.timedelta(minutes=1)) == []
    assert run_due_batch_dataflows(now=due_at) == [flow.pk]
    assert run_due_batch_dataflows(now=due_at) == []  # claimed: not twice
    [run] = ActivationRun.objects.filter(dataflow=flow)
    assert run.trigger == RunTrigger.SCHEDULE and run.sent == 1
    assert Dataflow.objects.get(pk=flow.pk).next_batch_at == due_at + dt.timedelta(days=1)
    assert len(list((export_dir / "daily").iterdir())) == 1


def test_next_batch_time_is_the_next_occurrence():
    now = dt.datetime(2026, 1, 1, 10, 0, tzinfo=dt.UTC)
    assert next_batch_time(dt.time(11, 0), now) == dt.datetime(2026, 1, 1, 11, 0, tzinfo=dt.UTC)
    assert next_batch_time(dt.time(10, 0), now) == dt.datetime(2026, 1, 2, 10, 0, tzinfo=dt.UTC)


def test_resetting_the_sandbox_removes_dataflows_and_their_history(live, sandbox, admin_user, receiver):
    from cdp.models import Audience
    from cdp.services.audiences import save_audience
    from cdp.services.tenancy import reset_sandbox
    from connectors.models import DeadLetter, Destination

    audience = save_audience(sandbox, name="CTOs", definition=CTO)
    hook = create_destination(sandbox, by=admin_user, name="Hook", kind="webhook", secret="s" * 16, config={"url": receiver.url, "max_attempts": 1})
    flow = create_dataflow(sandbox, by=admin_user, name="F", destination=hook, audiences=[audience])
    receiver.statuses = [500]
    ingest(sandbox, "person", [{"email": "a@x.io", "job_title": "CTO"}])
    assert ActivationRun.objects.filter(dataflow=flow).exists() and DeadLetter.objects.exists()
    reset_sandbox(sandbox, confirmation=sandbox.name, by=admin_user)
    assert not Dataflow.objects.exists() and not Destination.objects.exists() and not Audience.objects.exists()
    assert not ActivationRun.objects.exists() and not DeadLetter.objects.exists()
