"""Marketo static list destination against the fake Marketo server."""

import pytest

from cdp.exceptions import RuleViolation
from cdp.models import Person
from cdp.services.audiences import evaluate_audience, save_audience
from connectors.choices import PairingKind
from connectors.destinations import marketo_list
from connectors.models import ActivationOutcome, Dataflow, Pairing, RunStatus
from connectors.services import activation
from connectors.services.activation import create_dataflow, create_destination, push_dataflow
from connectors.services.pairings import create_pairing
from tests.connectors.factories import MarketoInstanceFactory, same_instance_in
from tests.factories import UserFactory, make_org_admin


def no_sleep(seconds):
    pass


@pytest.fixture
def static_list(fake_marketo):
    return fake_marketo.add_list("Quorum CTOs")


@pytest.fixture
def destination(sandbox, admin_user, marketo_instance, static_list):
    return create_destination(
        sandbox, by=admin_user, name="Marketo CTOs", kind="marketo_static_list", marketo_instance=marketo_instance,
        config={"list_id": static_list},
    )  # fmt: skip


@pytest.fixture
def flow(sandbox, admin_user, destination, profiles):
    return create_dataflow(sandbox, by=admin_user, name="CTOs to Marketo", destination=destination, audiences=[profiles.audience])


def lookups(fake):
    return [c for c in fake.calls("GET", "/rest/v1/leads.json")]


def test_adds_and_removes_reach_the_list_and_unmatched_people_are_reported(flow, profiles, fake_marketo, static_list):
    known = {email: fake_marketo.add_lead(email) for email in ("a@x.io", "b@x.io")}
    profiles.set(
        {"email": "a@x.io", "job_title": "CTO"}, {"email": "b@x.io", "job_title": "CTO"},
        {"email": "stranger@x.io", "job_title": "CTO"},
    )  # fmt: skip
    run = push_dataflow(flow.pk, sleep=no_sleep)
    assert (run.status, run.sent, run.matched, run.unmatched) == (RunStatus.SUCCEEDED, 2, 2, 1)
    assert sorted(fake_marketo.list_members(static_list)) == sorted(known.values())
    [outcome] = ActivationOutcome.objects.filter(run=run)
    assert (outcome.email, outcome.outcome, outcome.member_id) == ("stranger@x.io", "unmatched", profiles.person_id("stranger@x.io"))

    profiles.set({"email": "a@x.io", "job_title": "CEO"})
    run = push_dataflow(flow.pk, sleep=no_sleep)
    assert (run.sent, run.matched) == (1, 1)
    assert fake_marketo.list_members(static_list) == [known["b@x.io"]]
    # A default dataflow never creates a lead: no Sync Leads call at all.
    assert fake_marketo.lead_syncs() == []
    assert flow.destination.allow_lead_creation is False


def test_lookups_go_by_email_in_chunks_of_300(flow, profiles, fake_marketo, static_list):
    rows = [{"email": f"p{i:03}@x.io", "job_title": "CTO"} for i in range(301)]
    for row in rows[::2]:
        fake_marketo.add_lead(row["email"])
    profiles.set(*rows)
    run = push_dataflow(flow.pk, sleep=no_sleep)
    calls = lookups(fake_marketo)
    assert [len(c.params["filterValues"][0].split(",")) for c in calls] == [300, 1]
    assert all(c.params["filterType"] == ["email"] for c in calls)
    assert (run.matched, run.unmatched, run.sent) == (151, 150, 151)
    assert len(fake_marketo.list_members(static_list)) == 151
    assert fake_marketo.lead_syncs() == []


def test_leads_are_created_only_when_an_admin_allows_it(sandbox, admin_user, marketer, marketo_instance, static_list, profiles, fake_marketo):
    fake_marketo.add_lead("known@x.io", ecids="")  # seeding the ECID field makes it a known custom field
    # Even with the instance already paired, a marketer can't turn lead creation on.
    create_pairing(sandbox=sandbox, kind=PairingKind.DESTINATION, marketo_instance=marketo_instance)
    with pytest.raises(RuleViolation) as error:
        create_destination(
            sandbox, by=marketer, name="Creating", kind="marketo_static_list", marketo_instance=marketo_instance,
            config={"list_id": static_list}, allow_lead_creation=True,
        )  # fmt: skip
    assert error.value.rule == "lead_creation_admin_only"

    destination = create_destination(
        sandbox, by=admin_user, name="Creating", kind="marketo_static_list", marketo_instance=marketo_instance,
        config={"list_id": static_list}, allow_lead_creation=True,
    )  # fmt: skip
    flow = create_dataflow(sandbox, by=marketer, name="Create", destination=destination, audiences=[profiles.audience])
    profiles.set({"email": "new@x.io", "job_title": "CTO", "identity.ecid": "12345678901234567890123456789012345678"})
    run = push_dataflow(flow.pk, sleep=no_sleep)
    assert (run.created, run.sent, run.unmatched) == (1, 1, 0)
    [sync] = fake_marketo.lead_syncs()
    assert sync.json["action"] == "createOnly"
    assert sync.json["input"] == [{"email": "new@x.io", "ecids": "12345678901234567890123456789012345678"}]
    [created] = [lead for lead in fake_marketo.leads.values() if lead.get("email") == "new@x.io"]
    assert fake_marketo.list_members(static_list) == [created["id"]]
    assert ActivationOutcome.objects.get(run=run).outcome == "created"


def test_a_retried_push_adds_nobody_twice(flow, profiles, fake_marketo, static_list, monkeypatch):
    lead = fake_marketo.add_lead("a@x.io")
    profiles.set({"email": "a@x.io", "job_title": "CTO"})
    real_record = activation._record
    monkeypatch.setattr(activation, "_record", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("killed")))
    with pytest.raises(RuntimeError):
        push_dataflow(flow.pk, sleep=no_sleep)  # pushed, then died before saving the cursor
    assert Dataflow.objects.get(pk=flow.pk).cursors == {}
    monkeypatch.setattr(activation, "_record", real_record)
    run = push_dataflow(flow.pk, sleep=no_sleep)
    assert run.status == RunStatus.SUCCEEDED
    assert fake_marketo.list_members(static_list) == [lead]
    assert push_dataflow(flow.pk, sleep=no_sleep) is None  # nothing left: the cursor moved


def test_the_daily_quota_stops_the_run_cleanly_and_the_next_run_resumes(flow, profiles, fake_marketo, static_list, monkeypatch, settings):
    monkeypatch.setattr(marketo_list, "CHUNK", 2)
    leads = [fake_marketo.add_lead(f"p{i}@x.io") for i in range(5)]
    profiles.set(*({"email": f"p{i}@x.io", "job_title": "CTO"} for i in range(5)))
    fake_marketo.quota_after(3)  # token + lookup + add of the first chunk, then 607
    run = push_dataflow(flow.pk, sleep=no_sleep)
    assert run.status == RunStatus.STOPPED and "607" in run.error
    assert run.sent == 2 and len(fake_marketo.list_members(static_list)) == 2
    # Tomorrow: a new quota.
    settings.MARKETO_STATE_PREFIX += ":tomorrow"
    fake_marketo.quota_after(1000)
    run = push_dataflow(flow.pk, sleep=no_sleep)
    assert run.status == RunStatus.SUCCEEDED and run.sent == 3
    assert sorted(fake_marketo.list_members(static_list)) == sorted(leads)
    assert push_dataflow(flow.pk, sleep=no_sleep) is None


def test_destinations_follow_the_pairing_rules(sandbox, admin_user, marketer, organization, marketo_instance, static_list, other_sandbox):
    # A marketer can't pair an instance; an admin's destination pairs it as a destination.
    with pytest.raises(RuleViolation) as error:
        create_destination(sandbox, by=marketer, name="M", kind="marketo_static_list", marketo_instance=marketo_instance, config={"list_id": static_list})
    assert error.value.rule == "destination_pairing_required"
    first = create_destination(sandbox, by=admin_user, name="M", kind="marketo_static_list", marketo_instance=marketo_instance, config={"list_id": static_list})
    assert first.pairing.kind == PairingKind.DESTINATION and first.pairing.sandbox == sandbox
    # A second destination to the same instance reuses the pairing.
    second = create_destination(sandbox, by=admin_user, name="M2", kind="marketo_static_list", marketo_instance=marketo_instance, config={"list_id": static_list})
    assert second.pairing == first.pairing
    # An instance of another organization is refused by the pairing rules.
    foreign = MarketoInstanceFactory(organization=other_sandbox.organization)
    with pytest.raises(RuleViolation) as error:
        create_destination(sandbox, by=admin_user, name="F", kind="marketo_static_list", marketo_instance=foreign, config={"list_id": 1})
    assert error.value.rule == "instance_same_organization"
    # Many organizations → one Marketo instance is allowed for destinations.
    twin = same_instance_in(other_sandbox.organization, marketo_instance)
    other_admin = UserFactory()
    make_org_admin(other_admin, other_sandbox.organization)
    elsewhere = create_destination(other_sandbox, by=other_admin, name="M", kind="marketo_static_list", marketo_instance=twin, config={"list_id": static_list})
    assert elsewhere.pairing.marketo_instance.munchkin_id == marketo_instance.munchkin_id
    # One organization → many Marketo instances.
    another = MarketoInstanceFactory(organization=organization)
    create_destination(sandbox, by=admin_user, name="M3", kind="marketo_static_list", marketo_instance=another, config={"list_id": 7})
    assert Pairing.objects.for_sandbox(sandbox).filter(kind=PairingKind.DESTINATION).count() == 2


def test_marketo_needs_a_list_id_email_mapping_and_person_audiences(sandbox, admin_user, marketo_instance, destination, profiles):
    with pytest.raises(RuleViolation) as error:
        create_destination(sandbox, by=admin_user, name="X", kind="marketo_static_list", marketo_instance=marketo_instance, config={"list_id": "abc"})
    assert error.value.field == "list_id"
    with pytest.raises(RuleViolation) as error:
        create_dataflow(sandbox, by=admin_user, name="F", destination=destination, audiences=[profiles.audience], mapping=[{"source": "first_name", "target": "firstName"}])
    assert error.value.rule == "marketo_mapping_needs_email"
    accounts = save_audience(sandbox, name="All accounts", definition={"subject": "account", "condition": {"type": "compare", "field": "name", "op": "isNotNull"}})
    with pytest.raises(RuleViolation) as error:
        create_dataflow(sandbox, by=admin_user, name="F", destination=destination, audiences=[accounts])
    assert error.value.field == "audiences"


def test_unpairing_stops_the_runs_with_a_message_until_paired_again(flow, profiles, fake_marketo, static_list, marketo_instance, admin_user):
    from connectors.services.pairings import delete_pairing

    lead = fake_marketo.add_lead("a@x.io")
    profiles.set({"email": "a@x.io", "job_title": "CTO"})
    delete_pairing(flow.destination.pairing)
    run = push_dataflow(flow.pk, sleep=no_sleep)
    assert run.status == RunStatus.STOPPED and "no longer paired" in run.error
    assert [c for c in fake_marketo.calls() if c.path.startswith("/rest/")] == []

    activation.update_destination(flow.destination, by=admin_user, marketo_instance=marketo_instance)
    run = push_dataflow(flow.pk, sleep=no_sleep)
    assert run.status == RunStatus.SUCCEEDED and fake_marketo.list_members(static_list) == [lead]


def test_a_removal_uses_the_lead_the_dataflow_added_even_after_an_email_change(flow, profiles, fake_marketo, static_list):
    old_lead = fake_marketo.add_lead("ann@old.io")
    profiles.set({"email": "ann@old.io", "job_title": "CTO"})
    push_dataflow(flow.pk, sleep=no_sleep)
    assert fake_marketo.list_members(static_list) == [old_lead]

    # The profile's email changes as the person leaves the audience (written directly: ingest would
    # resolve ann@new.io to a new person).
    Person.objects.filter(pk=profiles.person_id("ann@old.io")).update(email="ann@new.io", job_title="CEO")
    evaluate_audience(profiles.audience)
    lookups_before = len(lookups(fake_marketo))
    run = push_dataflow(flow.pk, sleep=no_sleep)
    assert (run.sent, run.matched) == (1, 1)
    assert fake_marketo.list_members(static_list) == []
    assert len(lookups(fake_marketo)) == lookups_before  # no lookup needed for it
