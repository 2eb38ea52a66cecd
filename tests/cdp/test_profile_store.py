"""Identity resolution, merging and the merge policy, through the one write path."""

import datetime as dt

import pytest

from cdp.choices import MergePolicy
from cdp.models import (
    Account,
    AccountPerson,
    ExperienceEvent,
    Identity,
    ListMember,
    Opportunity,
    OpportunityPerson,
    Person,
    ProfileMerge,
)
from cdp.services.identities import MAX_IDENTITIES_PER_GRAPH
from cdp.signals import profiles_changed
from tests.cdp.ingest_helpers import ingest

ECID_A = "1" * 38
ECID_B = "2" * 38


def people(sandbox):
    return Person.objects.for_sandbox(sandbox)


def test_records_sharing_an_identity_are_one_profile(sandbox):
    result, rejections = ingest(
        sandbox,
        "person",
        [
            {"email": "ann@acme.com", "first_name": "Ann"},
            {"identity.email": "ANN@acme.com", "identity.ecid": ECID_A, "job_title": "CTO"},
        ],
    )
    assert not rejections
    assert result.created == 1 and result.updated == 1
    ann = people(sandbox).get()
    assert (ann.first_name, ann.job_title, ann.email) == ("Ann", "CTO", "ann@acme.com")
    assert set(ann.identities.values_list("namespace", "value")) == {("email", "ann@acme.com"), ("ecid", ECID_A)}


def test_a_record_linking_two_profiles_merges_them_without_losing_data(sandbox):
    ingest(sandbox, "person", [{"email": "ann@acme.com", "first_name": "Ann", "account.domain": "acme.com"}])
    ingest(sandbox, "person", [{"identity.ecid": ECID_A, "last_name": "Lee", "lead_score": "40"}])
    ann, anon = people(sandbox).order_by("pk")
    ingest(sandbox, "event", [{"type": "web.visit", "occurred_at": "2026-01-02T00:00:00Z", "identity.ecid": ECID_A}])
    ingest(sandbox, "list_member", [{"list.external_id": "L1", "identity.ecid": ECID_A}])
    ingest(sandbox, "list_member", [{"list.external_id": "L1", "identity.email": "ann@acme.com"}])

    result, _ = ingest(sandbox, "person", [{"email": "ann@acme.com", "identity.ecid": ECID_A}])

    assert result.merged == 1
    survivor = people(sandbox).get()
    assert survivor.pk == ann.pk
    assert (survivor.first_name, survivor.last_name, survivor.lead_score) == ("Ann", "Lee", 40)
    assert survivor.identities.count() == 2
    assert ExperienceEvent.objects.filter(person=survivor).count() == 1
    assert ListMember.objects.filter(person=survivor).count() == 1  # both memberships were the same list
    assert AccountPerson.objects.filter(person=survivor).count() == 1
    merge = ProfileMerge.objects.get()
    assert merge.survivor == survivor and merge.merged_person_id == anon.pk
    assert merge.merged_snapshot["last_name"] == "Lee"
    assert ["ecid", ECID_A] in merge.merged_snapshot["identities"]


def test_one_record_can_merge_three_profiles(sandbox):
    ingest(sandbox, "person", [{"email": "a@x.io"}, {"identity.ecid": ECID_A}, {"identity.marketo_lead_id": "7"}])
    assert people(sandbox).count() == 3
    ingest(sandbox, "person", [{"email": "a@x.io", "identity.ecid": ECID_A, "identity.marketo_lead_id": "7"}])
    assert people(sandbox).count() == 1
    assert ProfileMerge.objects.count() == 2


def test_records_in_one_chunk_that_chain_identities_make_one_profile(sandbox):
    result, _ = ingest(
        sandbox,
        "person",
        [{"email": "a@x.io"}, {"email": "a@x.io", "identity.ecid": ECID_A}, {"identity.ecid": ECID_A, "identity.marketo_lead_id": "9"}],
    )
    assert people(sandbox).count() == 1 and result.created == 1
    assert Identity.objects.filter(person=people(sandbox).get()).count() == 3


def test_timestamp_policy_keeps_the_latest_value_per_field(sandbox):
    ingest(sandbox, "person", [{"email": "a@x.io", "job_title": "VP", "timestamp": "2026-03-01T00:00:00Z"}])
    ingest(sandbox, "person", [{"email": "a@x.io", "job_title": "Intern", "city": "Oslo", "timestamp": "2025-01-01T00:00:00Z"}])
    person = people(sandbox).get()
    assert person.job_title == "VP"  # older record does not overwrite
    assert person.city == "Oslo"  # but fills a field nobody set


def test_dataset_precedence_policy_prefers_the_higher_dataset(sandbox):
    sandbox.merge_policy = MergePolicy.DATASET_PRECEDENCE
    sandbox.dataset_precedence = ["salesforce", "marketo"]
    sandbox.save()
    ingest(sandbox, "person", [{"email": "a@x.io", "job_title": "CFO", "timestamp": "2025-01-01T00:00:00Z"}], dataset="salesforce")
    ingest(sandbox, "person", [{"email": "a@x.io", "job_title": "Analyst", "timestamp": "2026-06-01T00:00:00Z"}], dataset="marketo")
    assert people(sandbox).get().job_title == "CFO"
    ingest(sandbox, "person", [{"email": "a@x.io", "job_title": "CEO", "timestamp": "2026-06-01T00:00:00Z"}], dataset="salesforce")
    assert people(sandbox).get().job_title == "CEO"


def test_merge_follows_the_policy_field_by_field(sandbox):
    ingest(sandbox, "person", [{"email": "a@x.io", "job_title": "Old title", "timestamp": "2024-01-01T00:00:00Z"}])
    ingest(sandbox, "person", [{"identity.ecid": ECID_A, "job_title": "New title", "timestamp": "2026-01-01T00:00:00Z"}])
    ingest(sandbox, "person", [{"email": "a@x.io", "identity.ecid": ECID_A, "timestamp": "2023-01-01T00:00:00Z"}])
    assert people(sandbox).get().job_title == "New title"


def test_identity_graph_is_capped_dropping_the_oldest(sandbox):
    ingest(sandbox, "person", [{"email": "a@x.io"}])
    for start in range(0, 60, 15):
        ids = {f"identity.custom:k{n}": f"v{n}" for n in range(start, start + 15)}
        ingest(sandbox, "person", [{"email": "a@x.io", **ids}])
    person = people(sandbox).get()
    values = set(person.identities.values_list("value", flat=True))
    assert len(values) == MAX_IDENTITIES_PER_GRAPH
    assert "a@x.io" not in values and "v0" not in values and "v59" in values


def test_a_record_with_more_than_20_identities_is_rejected(sandbox):
    ids = {f"identity.custom:k{n}": f"v{n}" for n in range(21)}
    result, rejections = ingest(sandbox, "person", [{"email": "a@x.io", **ids}])
    assert result is None and "at most 20" in rejections[0].reason
    assert not people(sandbox).exists()


def test_accounts_resolve_by_crm_id_before_domain(sandbox):
    ingest(sandbox, "account", [{"identity.crm_account_id": "C-1", "name": "Acme"}])
    ingest(sandbox, "account", [{"domain": "other.com", "name": "Other"}])
    result, _ = ingest(sandbox, "account", [{"identity.crm_account_id": "C-1", "domain": "other.com", "industry": "Retail"}])
    acme = Account.objects.for_sandbox(sandbox).get(name="Acme")
    assert acme.industry == "Retail" and result.updated == 1
    assert Account.objects.for_sandbox(sandbox).get(name="Other").identities.get().value == "other.com"


def test_people_opportunities_and_contact_roles_link_up(sandbox):
    ingest(sandbox, "account", [{"identity.crm_account_id": "C-1", "name": "Acme", "domain": "acme.com"}])
    ingest(sandbox, "person", [{"email": "a@acme.com", "account.crm_account_id": "C-1"}])
    ingest(sandbox, "opportunity", [{"external_id": "O-1", "name": "Big deal", "amount": "1200.50", "account.domain": "acme.com", "close_date": "2026-12-31"}])
    result, _ = ingest(sandbox, "opportunity_person", [{"opportunity.external_id": "O-1", "identity.email": "a@acme.com", "role": "Decision Maker", "is_primary": "yes"}])
    opportunity = Opportunity.objects.for_sandbox(sandbox).get()
    assert opportunity.account.name == "Acme" and str(opportunity.amount) == "1200.50"
    role = OpportunityPerson.objects.get()
    assert (role.role, role.is_primary, role.person.email) == ("Decision Maker", True, "a@acme.com")
    assert AccountPerson.objects.get().account == opportunity.account
    missing, _ = ingest(sandbox, "opportunity_person", [{"opportunity.external_id": "O-404", "identity.email": "a@acme.com"}])
    assert "no opportunity 'O-404'" in missing.rejections[0].reason


def test_events_with_an_external_id_are_stored_once(sandbox):
    row = {"type": "email.clicked", "occurred_at": "2026-02-01T10:00:00+01:00", "identity.email": "a@x.io", "external_id": "ev-1", "properties.url": "https://x.io"}
    first, _ = ingest(sandbox, "event", [row, row])
    again, _ = ingest(sandbox, "event", [row])
    event = ExperienceEvent.objects.for_sandbox(sandbox).get()
    assert first.created == 1 and again.created == 0 and again.rejections[0].duplicate
    assert event.occurred_at == dt.datetime(2026, 2, 1, 9, 0, tzinfo=dt.UTC)
    assert event.properties == {"url": "https://x.io"}


def test_profiles_changed_is_announced_after_commit(sandbox, django_capture_on_commit_callbacks):
    seen = []

    def listener(sender, sandbox_id, person_ids, account_ids, **kwargs):
        seen.append((sandbox_id, person_ids, account_ids))

    profiles_changed.connect(listener)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            ingest(sandbox, "person", [{"email": "a@x.io", "account.domain": "x.io"}])
    finally:
        profiles_changed.disconnect(listener)
    person = people(sandbox).get()
    assert seen == [(sandbox.pk, {person.pk}, {person.account_relations.get().account_id})]


def test_profiles_never_resolve_across_sandboxes(sandbox, other_sandbox):
    ingest(sandbox, "person", [{"email": "a@x.io", "first_name": "Here"}])
    ingest(other_sandbox, "person", [{"email": "a@x.io", "first_name": "There"}])
    assert people(sandbox).get().first_name == "Here"
    assert people(other_sandbox).get().first_name == "There"
    assert Identity.objects.filter(value="a@x.io").count() == 2


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"first_name": "No identity"}, "no identity"),
        ({"email": "a@x.io", "lead_score": "high"}, "whole number"),
        ({"email": "a@x.io", "identity.domain": "x.io"}, "not an identity namespace for person"),
        ({"email": "a@x.io", "job_title": "x" * 300}, "at most 255"),
    ],
)
def test_invalid_person_records_are_rejected_with_the_field_and_reason(sandbox, row, message):
    _, rejections = ingest(sandbox, "person", [row])
    assert message in rejections[0].reason


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"occurred_at": "2026-01-01", "identity.email": "a@x.io"}, "type: is required"),
        ({"type": "web.visit", "occurred_at": "31/12/2026", "identity.email": "a@x.io"}, "date-time"),
        ({"type": "web.visit", "occurred_at": "2026-01-01T00:00:00Z"}, "names no person"),
    ],
)
def test_invalid_events_are_rejected(sandbox, row, message):
    _, rejections = ingest(sandbox, "event", [row])
    assert message in rejections[0].reason


def test_reset_empties_every_profile_table_of_that_sandbox_only(sandbox, other_sandbox):
    from django.apps import apps

    from cdp.services import reset_sandbox

    for target in (sandbox, other_sandbox):
        ingest(target, "person", [{"email": "a@x.io", "account.domain": "x.io"}, {"identity.ecid": ECID_A}])
        ingest(target, "person", [{"email": "a@x.io", "identity.ecid": ECID_A}])  # a merge
        ingest(target, "opportunity", [{"external_id": "O-1", "account.domain": "x.io"}])
        ingest(target, "opportunity_person", [{"opportunity.external_id": "O-1", "identity.email": "a@x.io"}])
        ingest(target, "event", [{"type": "web.visit", "occurred_at": "2026-01-01T00:00:00Z", "identity.email": "a@x.io"}])
        ingest(target, "campaign_member", [{"campaign.external_id": "C-1", "identity.email": "a@x.io", "status": "Sent"}])
    models = [apps.get_model("cdp", name) for name in ("Person", "Account", "Identity", "ProfileMerge", "AccountPerson", "Opportunity", "OpportunityPerson", "ExperienceEvent", "Campaign", "CampaignMember")]
    before = {m: m.objects.filter(sandbox=other_sandbox).count() for m in models}
    assert all(before.values())

    deleted = reset_sandbox(sandbox, confirmation=sandbox.name)

    assert deleted["cdp.Person"] == 1 and deleted["cdp.Identity"] == 3
    assert all(not m.objects.filter(sandbox=sandbox).exists() for m in models)
    assert {m: m.objects.filter(sandbox=other_sandbox).count() for m in models} == before


def test_an_account_first_seen_by_domain_gains_its_crm_id(sandbox):
    ingest(sandbox, "person", [{"email": "a@acme.com", "account.domain": "acme.com"}])
    ingest(sandbox, "person", [{"email": "b@acme.com", "account.domain": "acme.com", "account.crm_account_id": "C-9"}])
    ingest(sandbox, "person", [{"email": "c@acme.com", "account.crm_account_id": "C-9"}])
    account = Account.objects.for_sandbox(sandbox).get()
    assert set(account.identities.values_list("namespace", "value")) == {("domain", "acme.com"), ("crm_account_id", "C-9")}
    assert account.person_relations.count() == 3


def test_a_person_first_seen_in_an_event_gets_the_email_field_from_the_identity(sandbox):
    ingest(sandbox, "event", [{"type": "web.visit", "occurred_at": "2026-01-01T00:00:00Z", "identity.email": "new@x.io"}])
    ingest(sandbox, "person", [{"identity.ecid": ECID_A}])
    ingest(sandbox, "event", [{"type": "web.visit", "occurred_at": "2026-01-01T00:00:00Z", "identity.ecid": ECID_A, "identity.email": "other@x.io"}])
    assert sorted(people(sandbox).values_list("email", flat=True)) == ["", "new@x.io"]


def test_bulk_updates_of_many_profiles_write_only_the_given_fields(sandbox):
    from cdp.services.bulk import update_rows

    ingest(sandbox, "person", [{"email": f"p{n}@x.io", "first_name": "Old"} for n in range(250)])
    people_rows = list(people(sandbox))
    for person in people_rows:
        person.lead_score, person.first_name = 7, "Changed in memory only"
    update_rows(Person, people_rows, ["lead_score"])
    update_rows(Person, people_rows[:10], ["lead_score", "job_title"])  # another field list in the same transaction
    assert set(people(sandbox).values_list("lead_score", "first_name")) == {(7, "Old")}


@pytest.mark.parametrize("value", ["2026-02-30", "2026-13-01", "2026-02-30T10:00:00Z"])
def test_impossible_dates_reject_the_row_not_the_chunk(sandbox, value):
    result, rejections = ingest(
        sandbox,
        "event",
        [
            {"type": "web.visit", "occurred_at": value, "identity.email": "a@x.io"},
            {"type": "web.visit", "occurred_at": "2026-02-28", "identity.email": "a@x.io"},
        ],
    )
    assert result.created == 1 and "date-time" in rejections[0].reason


@pytest.mark.django_db(transaction=True)
def test_concurrent_streams_of_one_event_store_it_once(sandbox):
    """Events of known people skip the sandbox writer lock; a race on the same event id falls
    back to the serialised path instead of failing."""
    import threading

    from django.db import connection

    from cdp.services.ingestion import ingest_stream

    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL (SQLite serialises them)")
    ingest(sandbox, "person", [{"email": "a@x.io"}])
    event = {"type": "web.visit", "occurred_at": "2026-01-01T00:00:00Z", "identity": {"email": "a@x.io"}, "external_id": "e-1"}
    answers, start = [], threading.Barrier(4)

    def post():
        start.wait()
        try:
            answers.append(ingest_stream(sandbox, "event", [event]))
        finally:
            connection.close()

    threads = [threading.Thread(target=post) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(answers) == 4
    assert sum(body["accepted"] for body, _ in answers) == 1
    assert ExperienceEvent.objects.filter(sandbox=sandbox, external_id="e-1").count() == 1


def test_records_reaching_one_stored_person_by_different_identities_update_it_together(sandbox):
    ingest(sandbox, "person", [{"email": "ann@x.io", "identity.ecid": ECID_A, "first_name": "Ann"}])
    result, _ = ingest(
        sandbox,
        "person",
        [{"email": "ann@x.io", "job_title": "CTO"}, {"email": "bob@x.io"}, {"identity.ecid": ECID_A, "last_name": "Lee"}],
    )
    assert (result.created, result.updated, result.merged) == (1, 2, 0)
    assert sorted(people(sandbox).values_list("email", "first_name", "last_name", "job_title")) == [
        ("ann@x.io", "Ann", "Lee", "CTO"),
        ("bob@x.io", "", "", ""),
    ]


def test_an_identity_held_by_an_account_links_no_person_but_still_joins_records_sharing_it(sandbox):
    ingest(sandbox, "account", [{"domain": "acme.com", "identity.custom:ref": "k1"}])
    result, _ = ingest(
        sandbox,
        "person",
        [
            {"email": "a@x.io", "identity.custom:ref": "k1"},
            {"email": "b@x.io"},
            {"identity.ecid": ECID_A, "identity.custom:ref": "k1"},
        ],
    )
    assert (result.created, result.updated, result.merged) == (2, 1, 0)
    joined = people(sandbox).get(email="a@x.io")
    assert set(joined.identities.values_list("namespace", "value")) == {("email", "a@x.io"), ("ecid", ECID_A)}
    assert Identity.objects.get(sandbox=sandbox, value="k1").account_id is not None


def test_bulk_writes_store_values_and_json_exactly(sandbox):
    """Enough rows for PostgreSQL's COPY paths (insert and update); the ORM's elsewhere."""
    from django.utils import timezone

    from cdp.services.bulk import insert_values, update_values

    now = timezone.now()
    attributes = {"nested": {"list": [1, "é", None, True]}, "quote": 'a "b"\\c\n', "empty": {}}
    ids = insert_values(
        Person,
        ["sandbox", "first_name", "lead_score", "is_unsubscribed", "attributes", "provenance", "created_at", "updated_at"],
        [(sandbox.pk, f"Zoë\t{n}", None if n % 2 else n, n % 3 == 0, attributes, {}, now, now) for n in range(250)],
    )
    stored = {p.pk: p for p in people(sandbox)}
    assert set(stored) == set(ids)
    first = stored[ids[0]]
    assert (first.first_name, first.lead_score, first.is_unsubscribed, first.attributes) == ("Zoë\t0", 0, True, attributes)
    assert (stored[ids[1]].lead_score, stored[ids[1]].is_unsubscribed) == (None, False)
    update_values(Person, ["last_name", "provenance"], [(pk, "Ñ", {"last_name": ["file", now.isoformat()]}) for pk in ids])
    provenance = {"last_name": ["file", now.isoformat()]}
    assert all((p.last_name, p.first_name, p.provenance) == ("Ñ", stored[p.pk].first_name, provenance) for p in people(sandbox))
