"""The beat's safety net for streaming pushes whose task was lost (see test_redis_restart.py for it
working end to end): which dataflows it pushes again, and which it leaves alone."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from cdp.models import AudienceMembershipChange
from cdp.services.audiences import evaluate_audience, save_audience
from connectors.models import ActivationRun, Dataflow, DataflowState
from connectors.services import activation
from connectors.services.activation import STRANDED_AFTER, create_dataflow, create_destination, push_stranded_dataflows
from tests.cdp.ingest_helpers import ingest

pytestmark = [pytest.mark.faults, pytest.mark.django_db]

CTO = {"subject": "person", "condition": {"type": "compare", "field": "jobTitle", "op": "eq", "value": "CTO"}}


@pytest.fixture
def requested(monkeypatch):
    """The pushes asked for (instead of running them)."""
    pushes = []
    monkeypatch.setattr(activation, "request_push", lambda dataflow, trigger: pushes.append((dataflow.pk, str(trigger))))
    return pushes


@pytest.fixture
def flow(sandbox, admin_user, requested):
    audience = save_audience(sandbox, name="CTOs", definition=CTO)
    ingest(sandbox, "person", [{"email": f"cto{n}@x.io", "job_title": "CTO"} for n in range(2)])
    evaluate_audience(audience)
    hook = create_destination(
        sandbox, by=admin_user, name="Hook", kind="webhook", config={"url": "http://localhost:9/hook"}, secret="s" * 16
    )
    dataflow = create_dataflow(sandbox, by=admin_user, name="CTOs to hook", destination=hook, audiences=[audience])
    requested.clear()  # the push create_dataflow asks for: lost, in these tests
    return dataflow


def age_changes(dataflow, by=STRANDED_AFTER + dt.timedelta(seconds=1)):
    changes = AudienceMembershipChange.objects.filter(audience__in=dataflow.audiences.all())
    for change in changes:
        AudienceMembershipChange.objects.filter(pk=change.pk).update(at=change.at - by)


def test_changes_left_unsent_are_pushed_again_once_stranded(flow, requested):
    assert push_stranded_dataflows() == []  # just changed: their own push may still be on its way
    age_changes(flow)

    assert push_stranded_dataflows() == [flow.pk]
    assert requested == [(flow.pk, "streaming")]


def test_a_dataflow_being_pushed_or_pushed_recently_is_left_alone(flow, requested):
    age_changes(flow)
    Dataflow.objects.filter(pk=flow.pk).update(lease_token="abc", lease_expires_at=timezone.now() + dt.timedelta(minutes=1))
    assert push_stranded_dataflows() == []

    Dataflow.objects.filter(pk=flow.pk).update(lease_token="", lease_expires_at=None)
    run = ActivationRun.objects.create(sandbox=flow.sandbox, dataflow=flow, trigger="streaming", started_at=timezone.now())
    assert push_stranded_dataflows() == []

    # A run that started long ago and a lease that ran out (the worker died): pushed again.
    ActivationRun.objects.filter(pk=run.pk).update(started_at=timezone.now() - STRANDED_AFTER - dt.timedelta(minutes=1))
    Dataflow.objects.filter(pk=flow.pk).update(lease_token="abc", lease_expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert push_stranded_dataflows() == [flow.pk]


def test_paused_or_up_to_date_dataflows_are_not_pushed(flow, requested):
    age_changes(flow)
    Dataflow.objects.filter(pk=flow.pk).update(state=DataflowState.PAUSED)
    assert push_stranded_dataflows() == []

    Dataflow.objects.filter(pk=flow.pk).update(state=DataflowState.ACTIVE)
    last = AudienceMembershipChange.objects.filter(audience__in=flow.audiences.all()).latest("pk")
    Dataflow.objects.filter(pk=flow.pk).update(cursors={str(last.audience_id): last.pk})
    assert push_stranded_dataflows() == []
    assert requested == []


def test_an_audience_taken_out_with_its_members_still_in_the_destination_is_pushed(flow, requested, sandbox):
    last = AudienceMembershipChange.objects.filter(audience__in=flow.audiences.all()).latest("pk")
    Dataflow.objects.filter(pk=flow.pk).update(cursors={str(last.audience_id): last.pk})  # its members were sent
    others = save_audience(sandbox, name="CFOs", definition={**CTO, "condition": {**CTO["condition"], "value": "CFO"}})
    activation.update_dataflow(Dataflow.objects.get(pk=flow.pk), audiences=[others])
    requested.clear()  # update_dataflow's own push: lost, here
    assert push_stranded_dataflows() == [flow.pk]


def test_the_sweep_reads_the_same_few_tables_however_many_dataflows_there_are(flow, requested, sandbox, admin_user):
    def sweep_queries():
        age_changes(flow)
        with CaptureQueriesContext(connection) as queries:
            queued = push_stranded_dataflows()
        return queued, len(queries)

    queued, alone = sweep_queries()
    assert queued == [flow.pk]
    for n in range(4):
        audience = save_audience(sandbox, name=f"CTOs {n}", definition=CTO)
        evaluate_audience(audience)
        create_dataflow(sandbox, by=admin_user, name=f"Flow {n}", destination=flow.destination, audiences=[audience, *flow.audiences.all()])
    requested.clear()
    queued, many = sweep_queries()
    assert len(queued) == 5
    assert many == alone
