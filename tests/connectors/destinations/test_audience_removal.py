"""Taking an audience out of a dataflow: the people sent only because of it leave the destination on
the next run; people another audience of the dataflow still holds stay."""

import json

import pytest

from cdp.exceptions import RuleViolation
from cdp.services.audiences import evaluate_audience, save_audience
from connectors.destinations import marketo_list
from connectors.models import ActivationRun, Dataflow, RunStatus
from connectors.services.activation import create_dataflow, create_destination, push_dataflow, update_dataflow
from tests.connectors.destinations.conftest import CTO

ANNS = {"subject": "person", "condition": {"type": "compare", "field": "firstName", "op": "eq", "value": "Ann"}}
SECRET = "s3cret-s3cret-s3cret"


def no_sleep(seconds):
    pass


@pytest.fixture
def anns(sandbox):
    return save_audience(sandbox, name="Anns", definition=ANNS)


def set_people(profiles, anns, *rows):
    profiles.set(*rows)
    evaluate_audience(anns)


@pytest.fixture
def static_list(fake_marketo):
    return fake_marketo.add_list("Quorum")


@pytest.fixture
def marketo_flow(sandbox, admin_user, marketo_instance, static_list, profiles, anns):
    destination = create_destination(
        sandbox, by=admin_user, name="Marketo", kind="marketo_static_list", marketo_instance=marketo_instance,
        config={"list_id": static_list},
    )  # fmt: skip
    return create_dataflow(sandbox, by=admin_user, name="To Marketo", destination=destination, audiences=[profiles.audience, anns])


def test_people_sent_only_because_of_a_removed_audience_leave_the_marketo_list(marketo_flow, profiles, anns, fake_marketo, static_list):
    leads = {email: fake_marketo.add_lead(email) for email in ("both@x.io", "cto@x.io", "ann@x.io", "leaving@x.io")}
    set_people(
        profiles, anns,
        {"email": "both@x.io", "job_title": "CTO", "first_name": "Ann"},  # in both audiences
        {"email": "cto@x.io", "job_title": "CTO", "first_name": "Bob"},  # only a CTO
        {"email": "ann@x.io", "job_title": "CEO", "first_name": "Ann"},  # only an Ann
        {"email": "leaving@x.io", "job_title": "CTO", "first_name": "Cy"},  # a CTO, about to leave
        {"email": "late@x.io", "job_title": "CEO", "first_name": "Di"},  # no lead in Marketo
    )  # fmt: skip
    push_dataflow(marketo_flow.pk, sleep=no_sleep)
    assert sorted(fake_marketo.list_members(static_list)) == sorted(leads.values())

    # Changes the dataflow has not sent yet when the CTOs are taken out: one CTO leaves (still in the
    # list), someone without a lead becomes a CTO (never sent).
    set_people(profiles, anns, {"email": "leaving@x.io", "job_title": "CEO"}, {"email": "late@x.io", "job_title": "CTO"})
    update_dataflow(Dataflow.objects.get(pk=marketo_flow.pk), audiences=[anns])
    run = push_dataflow(marketo_flow.pk, sleep=no_sleep)

    assert run.status == RunStatus.SUCCEEDED
    assert sorted(fake_marketo.list_members(static_list)) == sorted([leads["both@x.io"], leads["ann@x.io"]])
    assert (run.sent, run.matched) == (2, 2)  # cto@ and leaving@, by the lead ids stored when added
    assert fake_marketo.lead_syncs() == []
    flow = Dataflow.objects.get(pk=marketo_flow.pk)
    assert set(flow.cursors) == {str(anns.pk)}  # the CTOs' cursor went with the removals
    assert push_dataflow(marketo_flow.pk, sleep=no_sleep) is None  # nothing left: removed once

    # Putting the CTOs back sends their current members again.
    update_dataflow(flow, audiences=[anns, profiles.audience])
    push_dataflow(marketo_flow.pk, sleep=no_sleep)
    assert sorted(fake_marketo.list_members(static_list)) == sorted([leads["both@x.io"], leads["ann@x.io"], leads["cto@x.io"]])


def test_an_audience_taken_out_and_put_back_before_the_next_run_removes_nobody(marketo_flow, profiles, anns, fake_marketo, static_list):
    lead = fake_marketo.add_lead("cto@x.io")
    set_people(profiles, anns, {"email": "cto@x.io", "job_title": "CTO", "first_name": "Bob"})
    push_dataflow(marketo_flow.pk, sleep=no_sleep)
    flow = Dataflow.objects.get(pk=marketo_flow.pk)
    update_dataflow(flow, audiences=[anns])
    update_dataflow(flow, audiences=[anns, profiles.audience])
    assert push_dataflow(marketo_flow.pk, sleep=no_sleep) is None
    assert fake_marketo.list_members(static_list) == [lead]


def test_removals_stopped_by_the_quota_are_finished_by_the_next_run(marketo_flow, profiles, anns, fake_marketo, static_list, monkeypatch, settings):
    monkeypatch.setattr(marketo_list, "CHUNK", 1)
    leads = {email: fake_marketo.add_lead(email) for email in ("a@x.io", "b@x.io", "new@x.io")}
    set_people(profiles, anns, {"email": "a@x.io", "job_title": "CTO"}, {"email": "b@x.io", "job_title": "CTO"})
    push_dataflow(marketo_flow.pk, sleep=no_sleep)
    update_dataflow(Dataflow.objects.get(pk=marketo_flow.pk), audiences=[anns])
    set_people(profiles, anns, {"email": "new@x.io", "first_name": "Ann"})

    fake_marketo.quota_after(1)  # the first removal (the token is still valid), then 607
    run = push_dataflow(marketo_flow.pk, sleep=no_sleep)
    assert run.status == RunStatus.STOPPED and run.sent == 1
    assert sorted(fake_marketo.list_members(static_list)) == [leads["b@x.io"]]

    settings.MARKETO_STATE_PREFIX += ":day2"
    # A new day's state: a new token, both removals again (the first answers "skipped"), then 607 at the lookup.
    fake_marketo.quota_after(3)
    run = push_dataflow(marketo_flow.pk, sleep=no_sleep)
    assert run.status == RunStatus.STOPPED and (run.sent, run.skipped) == (1, 1)
    assert fake_marketo.list_members(static_list) == []
    assert set(Dataflow.objects.get(pk=marketo_flow.pk).cursors) == {str(anns.pk)}  # removals done, not repeated

    settings.MARKETO_STATE_PREFIX += ":day3"
    fake_marketo.quota_after(1000)
    run = push_dataflow(marketo_flow.pk, sleep=no_sleep)
    assert run.status == RunStatus.SUCCEEDED and run.sent == 1
    assert fake_marketo.list_members(static_list) == [leads["new@x.io"]]


def test_the_webhook_hears_of_the_removals_with_their_mapped_fields(sandbox, admin_user, profiles, anns, receiver):
    hook = create_destination(sandbox, by=admin_user, name="Hook", kind="webhook", secret=SECRET, config={"url": receiver.url})
    flow = create_dataflow(
        sandbox, by=admin_user, name="To hook", destination=hook, audiences=[profiles.audience, anns],
        mapping=[{"source": "email", "target": "email"}, {"source": "first_name", "target": "firstName"}],
    )  # fmt: skip
    set_people(profiles, anns, {"email": "both@x.io", "job_title": "CTO", "first_name": "Ann"}, {"email": "cto@x.io", "job_title": "CTO", "first_name": "Bob"})
    push_dataflow(flow.pk, sleep=no_sleep)

    update_dataflow(Dataflow.objects.get(pk=flow.pk), audiences=[anns])
    run = push_dataflow(flow.pk, sleep=no_sleep)
    body = json.loads(receiver.requests[-1]["body"])
    assert body["adds"] == []
    assert body["removes"] == [{"id": profiles.person_id("cto@x.io"), "email": "cto@x.io", "firstName": "Bob"}]
    assert (run.status, run.sent, run.changes) == (RunStatus.SUCCEEDED, 1, 0)
    assert ActivationRun.objects.filter(dataflow=flow).count() == 2


def test_a_dataflow_keeps_the_kind_of_its_audiences(sandbox, admin_user, profiles, receiver):
    hook = create_destination(sandbox, by=admin_user, name="Hook", kind="webhook", secret=SECRET, config={"url": receiver.url})
    flow = create_dataflow(sandbox, by=admin_user, name="To hook", destination=hook, audiences=[profiles.audience])
    accounts = save_audience(sandbox, name="Accounts", definition={"subject": "account", "condition": {"type": "compare", "field": "name", "op": "isNotNull"}})
    with pytest.raises(RuleViolation) as error:
        update_dataflow(flow, audiences=[accounts], mapping=[{"source": "name", "target": "name"}])
    assert (error.value.rule, error.value.field) == ("dataflow_audiences", "audiences")
    assert list(Dataflow.objects.get(pk=flow.pk).audiences.all()) == [profiles.audience]


def test_an_audience_feeding_a_dataflow_is_not_deleted_until_its_people_are_removed(marketo_flow, anns, profiles, fake_marketo):
    from cdp.services.audience_io import delete_audience

    with pytest.raises(RuleViolation, match="feeds the dataflows To Marketo") as refused:
        delete_audience(anns)
    assert refused.value.rule == "audience_in_use"
    fake_marketo.add_lead("ann@x.io")
    set_people(profiles, anns, {"email": "ann@x.io", "job_title": "CEO", "first_name": "Ann"})
    push_dataflow(marketo_flow.pk, sleep=no_sleep)  # Ann was sent
    update_dataflow(Dataflow.objects.get(pk=marketo_flow.pk), audiences=[marketo_flow.audiences.exclude(pk=anns.pk).get()])
    with pytest.raises(RuleViolation, match="have yet to remove its people"):
        delete_audience(anns)  # its people's removal reads its history: not before the next run
    push_dataflow(marketo_flow.pk, sleep=no_sleep)
    delete_audience(anns)
