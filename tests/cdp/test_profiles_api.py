"""Profile store reads through the API: accounts, people, opportunities, events, identity lookup,
and saved field mappings. Lists are paginated with a fixed number of queries; nothing of another
sandbox is ever visible."""

import datetime as dt

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from cdp.choices import Role
from cdp.models import (
    Account,
    AccountPerson,
    Campaign,
    CampaignMember,
    ExperienceEvent,
    FieldMapping,
    Identity,
    ListMember,
    MarketingList,
    Opportunity,
    OpportunityPerson,
    Person,
)
from cdp.services.ingestion import ingest_stream

ECID = "4" * 38
NOW = timezone.now()


def api(sandbox, path):
    return f"/api/sandboxes/{sandbox.pk}/{path}"


def make_account(sandbox, name="Acme", domain="acme.com", **fields):
    account = Account.objects.create(sandbox=sandbox, name=name, domain=domain, **fields)
    Identity.objects.create(sandbox=sandbox, namespace="domain", value=domain, account=account)
    return account


def make_people(sandbox, count, account=None, prefix="p", **fields):
    """``count`` people with an email identity each, related to ``account`` when given."""
    people = Person.objects.bulk_create(
        [
            Person(sandbox=sandbox, first_name=f"First{n}", last_name=f"{prefix.title()}{n:03}", email=f"{prefix}{n}@acme.com", **fields)
            for n in range(count)
        ]
    )
    Identity.objects.bulk_create(
        [Identity(sandbox=sandbox, namespace="email", value=p.email, person=p) for p in people]
    )
    if account is not None:
        AccountPerson.objects.bulk_create(
            [AccountPerson(sandbox=sandbox, account=account, person=p, role="Influencer") for p in people]
        )
    return people


def make_events(sandbox, count, person=None, account=None, type="email.opened", start=None):
    start = start or NOW - dt.timedelta(days=1)
    return ExperienceEvent.objects.bulk_create(
        [
            ExperienceEvent(
                sandbox=sandbox, person=person, account=account, type=type, occurred_at=start - dt.timedelta(minutes=n),
                properties={"n": n},
            )
            for n in range(count)
        ]
    )


def queries_of(client, url, **params):
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, params)
    assert response.status_code == 200, response.content
    return len(captured), response.json()


# ------------------------------------------------------------------------------------------ people
def test_people_list_is_paginated_and_filtered(api_as, viewer, sandbox):
    acme, other = make_account(sandbox), make_account(sandbox, "Globex", "globex.com")
    make_people(sandbox, 3, account=acme, prefix="a", job_level="Director", country="France")
    make_people(sandbox, 2, account=other, prefix="g", job_level="VP", country="Spain")
    client = api_as(viewer)

    everyone = client.get(api(sandbox, "people/"), {"page_size": 2}).json()
    assert everyone["count"] == 5 and len(everyone["results"]) == 2 and everyone["next"]

    def emails(**params):
        return sorted(p["email"] for p in client.get(api(sandbox, "people/"), params).json()["results"])

    assert emails(account=other.pk) == ["g0@acme.com", "g1@acme.com"]
    assert emails(job_level="director") == ["a0@acme.com", "a1@acme.com", "a2@acme.com"]
    assert emails(country="Spain") == ["g0@acme.com", "g1@acme.com"]
    assert emails(email="A1@ACME.COM") == ["a1@acme.com"]
    assert emails(q="g1@") == ["g1@acme.com"]
    assert emails(q="first2 a002") == ["a2@acme.com"]
    accounts = client.get(api(sandbox, "people/"), {"email": "a0@acme.com"}).json()["results"][0]["accounts"]
    assert accounts == [{"id": acme.pk, "name": "Acme", "domain": "acme.com", "role": "Influencer", "is_primary": True, "is_active": True}]


def test_people_search_finds_an_exact_identity_value(api_as, viewer, sandbox):
    person = make_people(sandbox, 1)[0]
    Identity.objects.create(sandbox=sandbox, namespace="ecid", value=ECID, person=person)
    Identity.objects.create(sandbox=sandbox, namespace="custom:loyalty", value="L-77", person=person)
    make_people(sandbox, 2, prefix="x")
    client = api_as(viewer)

    def ids(term):
        return [p["id"] for p in client.get(api(sandbox, "people/"), {"q": term}).json()["results"]]

    assert ids(ECID) == [person.pk]
    assert ids(f"ecid:{ECID}") == [person.pk]
    assert ids("custom:loyalty:L-77") == [person.pk]
    assert ids(ECID[:-1]) == []  # an identity matches exactly, not by part


def test_people_list_costs_the_same_queries_for_more_rows(api_as, viewer, sandbox, django_assert_max_num_queries):
    acme = make_account(sandbox)
    make_people(sandbox, 20, account=acme)
    client = api_as(viewer)
    few, body = queries_of(client, api(sandbox, "people/"))
    assert len(body["results"]) == 20

    make_people(sandbox, 25, account=make_account(sandbox, "Globex", "globex.com"), prefix="g")
    with django_assert_max_num_queries(few):
        response = client.get(api(sandbox, "people/"))
    assert len(response.json()["results"]) == 45
    # Sandbox and role (3), count, page, accounts of the page.
    assert few <= 6


def test_person_detail_shows_identities_relations_memberships_merges_and_events(api_as, viewer, sandbox):
    acme = make_account(sandbox)
    ingest_stream(sandbox, "person", [{"email": "ann@acme.com", "first_name": "Ann", "account": {"domain": "acme.com"}}])
    ingest_stream(sandbox, "person", [{"identity": {"ecid": ECID}, "last_name": "Lee", "job_title": "CTO"}])
    ingest_stream(sandbox, "person", [{"email": "ann@acme.com", "identity": {"ecid": ECID}}])  # links the two
    person = Person.objects.get(sandbox=sandbox)
    deal = Opportunity.objects.create(sandbox=sandbox, account=acme, external_id="OPP-1", name="Big deal", stage="Proposal")
    OpportunityPerson.objects.create(sandbox=sandbox, opportunity=deal, person=person, role="Decision Maker", is_primary=True)
    newsletter = MarketingList.objects.create(sandbox=sandbox, external_id="L1", name="Newsletter")
    ListMember.objects.create(sandbox=sandbox, marketing_list=newsletter, person=person, added_at=NOW)
    webinar = Campaign.objects.create(sandbox=sandbox, external_id="C1", name="Webinar")
    CampaignMember.objects.create(sandbox=sandbox, campaign=webinar, person=person, status="Attended", added_at=NOW)
    make_events(sandbox, 25, person=person)

    body = api_as(viewer).get(api(sandbox, f"people/{person.pk}/")).json()

    assert (body["first_name"], body["last_name"], body["job_title"]) == ("Ann", "Lee", "CTO")
    assert {(i["namespace"], i["value"]) for i in body["identities"]} == {("email", "ann@acme.com"), ("ecid", ECID)}
    assert [a["id"] for a in body["accounts"]] == [acme.pk]
    assert body["opportunities"][0] | {"amount": None} == {
        "id": deal.pk, "name": "Big deal", "stage": "Proposal", "amount": None, "is_closed": False, "is_won": False,
        "account": acme.pk, "role": "Decision Maker", "is_primary": True,
    }  # fmt: skip
    assert [m["name"] for m in body["lists"]] == ["Newsletter"]
    assert [(m["name"], m["status"]) for m in body["campaigns"]] == [("Webinar", "Attended")]
    assert len(body["merges"]) == 1
    merge = body["merges"][0]
    assert merge["linking_identities"]
    assert merge["merged_snapshot"]["identities"]
    assert len(body["recent_events"]) == 20
    assert body["recent_events"][0]["occurred_at"] > body["recent_events"][-1]["occurred_at"]


def test_person_detail_costs_a_fixed_number_of_queries(api_as, viewer, sandbox, django_assert_max_num_queries):
    def person_with(rows, prefix):
        person = make_people(sandbox, 1, prefix=prefix)[0]
        for n in range(rows):
            account = make_account(sandbox, f"{prefix}{n}", f"{prefix}{n}.example.com")
            AccountPerson.objects.create(sandbox=sandbox, account=account, person=person)
            deal = Opportunity.objects.create(sandbox=sandbox, account=account, external_id=f"{prefix}-{n}")
            OpportunityPerson.objects.create(sandbox=sandbox, opportunity=deal, person=person)
            listing = MarketingList.objects.create(sandbox=sandbox, external_id=f"{prefix}-{n}", name=f"L{n}")
            ListMember.objects.create(sandbox=sandbox, marketing_list=listing, person=person, added_at=NOW)
        make_events(sandbox, rows, person=person)
        return person

    client = api_as(viewer)
    small, _ = queries_of(client, api(sandbox, f"people/{person_with(1, 's').pk}/"))
    big = person_with(25, "b")
    with django_assert_max_num_queries(small):
        body = client.get(api(sandbox, f"people/{big.pk}/")).json()
    assert len(body["accounts"]) == len(body["opportunities"]) == len(body["lists"]) == 25


# ---------------------------------------------------------------------------------------- accounts
def test_accounts_list_filters_and_search(api_as, viewer, sandbox):
    acme = make_account(sandbox, "Acme Corp", "acme.com", industry="Software", country="France")
    Identity.objects.create(sandbox=sandbox, namespace="crm_account_id", value="CRM-9", account=acme)
    make_account(sandbox, "Globex", "globex.com", industry="Energy", country="Spain", parent=acme)
    client = api_as(viewer)

    def names(**params):
        return sorted(a["name"] for a in client.get(api(sandbox, "accounts/"), params).json()["results"])

    assert names() == ["Acme Corp", "Globex"]
    assert names(domain="https://www.globex.com/") == ["Globex"]
    assert names(industry="software") == ["Acme Corp"]
    assert names(country="Spain") == ["Globex"]
    assert names(parent=acme.pk) == ["Globex"]
    assert names(q="acme") == ["Acme Corp"]
    assert names(q="CRM-9") == ["Acme Corp"]
    assert names(q="globex.com") == ["Globex"]
    assert client.get(api(sandbox, "accounts/"), {"q": "Globex"}).json()["results"][0]["parent"] == {
        "id": acme.pk, "name": "Acme Corp", "domain": "acme.com"
    }


def test_account_detail_shows_people_with_roles_opportunities_children_and_activity(
    api_as, viewer, sandbox, django_assert_max_num_queries
):
    def account_with(rows, name):
        account = make_account(sandbox, name, f"{name}.com")
        people = make_people(sandbox, rows, account=account, prefix=name)
        for n in range(rows):
            Opportunity.objects.create(sandbox=sandbox, account=account, external_id=f"{name}-{n}", name=f"Deal {n}")
            make_account(sandbox, f"{name}-child-{n}", f"child{n}.{name}.com", parent=account)
        make_events(sandbox, rows, account=account, type="web.visit")
        make_events(sandbox, rows, person=people[0], start=NOW)
        return account

    client = api_as(viewer)
    small, _ = queries_of(client, api(sandbox, f"accounts/{account_with(1, 'small').pk}/"))
    big = account_with(30, "big")
    with django_assert_max_num_queries(small):
        body = client.get(api(sandbox, f"accounts/{big.pk}/")).json()

    assert body["people_count"] == 30 and len(body["people"]) == 30
    assert body["people"][0]["role"] == "Influencer"
    assert len(body["opportunities"]) == 30 and len(body["children"]) == 30
    assert [i["value"] for i in body["identities"]] == ["big.com"]
    # The account's own events and its people's, newest first: the people's are the newest here.
    assert len(body["recent_events"]) == 20
    assert {e["type"] for e in body["recent_events"]} == {"email.opened"}


def test_opportunities_list_and_detail(api_as, viewer, sandbox):
    acme = make_account(sandbox)
    ann = make_people(sandbox, 1)[0]
    won = Opportunity.objects.create(sandbox=sandbox, account=acme, external_id="W", name="Won", is_closed=True, is_won=True)
    Opportunity.objects.create(sandbox=sandbox, account=acme, external_id="O", name="Open")
    OpportunityPerson.objects.create(sandbox=sandbox, opportunity=won, person=ann, role="Champion", is_primary=True)
    client = api_as(viewer)

    closed = client.get(api(sandbox, "opportunities/"), {"is_won": "true"}).json()["results"]
    by_person = client.get(api(sandbox, "opportunities/"), {"person": ann.pk}).json()["results"]
    detail = client.get(api(sandbox, f"opportunities/{won.pk}/")).json()

    assert [o["name"] for o in closed] == [o["name"] for o in by_person] == ["Won"]
    assert closed[0]["account"]["id"] == acme.pk
    assert [(c["id"], c["role"], c["is_primary"]) for c in detail["contacts"]] == [(ann.pk, "Champion", True)]


# ------------------------------------------------------------------------------------------ events
def test_events_are_filtered_by_person_account_type_and_time(api_as, viewer, sandbox):
    acme = make_account(sandbox)
    ann, bob = make_people(sandbox, 2)
    ExperienceEvent.objects.bulk_create(
        [
            ExperienceEvent(sandbox=sandbox, person=ann, type="email.opened", occurred_at=dt.datetime(2026, 11, 1, 10, tzinfo=dt.UTC)),
            ExperienceEvent(sandbox=sandbox, person=ann, type="email.clicked", occurred_at=dt.datetime(2026, 11, 2, 10, tzinfo=dt.UTC)),
            ExperienceEvent(sandbox=sandbox, person=bob, type="email.opened", occurred_at=dt.datetime(2026, 10, 1, 10, tzinfo=dt.UTC)),
            ExperienceEvent(sandbox=sandbox, account=acme, type="web.visit", occurred_at=dt.datetime(2026, 11, 3, 10, tzinfo=dt.UTC)),
        ]
    )
    client = api_as(viewer)

    def types(**params):
        return [e["type"] for e in client.get(api(sandbox, "events/"), params).json()["results"]]

    assert types() == ["web.visit", "email.clicked", "email.opened", "email.opened"]  # newest first
    assert types(person=ann.pk) == ["email.clicked", "email.opened"]
    assert types(account=acme.pk) == ["web.visit"]
    assert types(type="email.opened") == ["email.opened", "email.opened"]
    assert types(occurred_at_after="2026-11-01T00:00:00Z", occurred_at_before="2026-11-02T23:00:00Z") == [
        "email.clicked",
        "email.opened",
    ]
    bad = client.get(api(sandbox, "events/"), {"occurred_at_after": "last tuesday"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "validation_error"


# ------------------------------------------------------------------------------------------ lookup
def test_lookup_finds_the_person_holding_an_identity(api_as, viewer, sandbox, django_assert_max_num_queries):
    acme = make_account(sandbox)
    ann = make_people(sandbox, 1, account=acme)[0]
    Identity.objects.create(sandbox=sandbox, namespace="ecid", value=ECID, person=ann)
    client = api_as(viewer)

    # Sandbox and role (3) + the lookup itself (identity with owner, identities, accounts).
    with django_assert_max_num_queries(6):
        response = client.get(api(sandbox, "profiles/lookup/"), {"namespace": "email", "value": " P0@ACME.com "})

    assert response.status_code == 200
    body = response.json()
    assert body["profile_type"] == "person" and body["account"] is None
    assert body["matched"]["value"] == "p0@acme.com"
    assert body["person"]["id"] == ann.pk
    assert {i["namespace"] for i in body["person"]["identities"]} == {"email", "ecid"}
    assert body["person"]["accounts"] == [{"id": acme.pk, "name": "Acme", "domain": "acme.com"}]


def test_lookup_finds_an_account_by_domain(api_as, viewer, sandbox):
    acme = make_account(sandbox)

    response = api_as(viewer).get(api(sandbox, "profiles/lookup/"), {"namespace": "domain", "value": "https://www.Acme.com/about"})

    assert response.status_code == 200
    assert response.json()["profile_type"] == "account"
    assert response.json()["account"]["id"] == acme.pk
    assert response.json()["person"] is None


def test_lookup_answers_404_or_400_with_the_error_body(api_as, viewer, sandbox):
    client = api_as(viewer)

    missing = client.get(api(sandbox, "profiles/lookup/"), {"namespace": "email", "value": "nobody@acme.com"})
    bad_namespace = client.get(api(sandbox, "profiles/lookup/"), {"namespace": "phone", "value": "123"})
    bad_value = client.get(api(sandbox, "profiles/lookup/"), {"namespace": "ecid", "value": "123"})
    no_value = client.get(api(sandbox, "profiles/lookup/"), {"namespace": "email"})

    assert missing.status_code == 404
    assert missing.json()["error"] == {"code": "not_found", "message": "No profile in this sandbox holds the identity email:nobody@acme.com."}
    assert bad_namespace.status_code == 400 and "namespace" in bad_namespace.json()["error"]["fields"]
    assert bad_value.status_code == 400 and "38 digits" in bad_value.json()["error"]["message"]
    assert no_value.status_code == 400 and "value" in no_value.json()["error"]["fields"]


# --------------------------------------------------------------------------------------- isolation
def test_another_sandbox_profiles_are_invisible(api_as, make_user, sandbox, organization):
    from tests.factories import SandboxFactory

    dev = SandboxFactory(organization=organization, name="dev")
    mine = make_people(sandbox, 1, prefix="mine")[0]
    theirs = make_people(dev, 1, prefix="theirs")[0]
    Identity.objects.create(sandbox=dev, namespace="ecid", value=ECID, person=theirs)
    their_account = make_account(dev, "Theirs", "theirs.com")
    make_events(dev, 2, person=theirs)
    user = make_user(Role.MARKETER, sandbox)  # no role in dev
    client = api_as(user)

    assert [p["id"] for p in client.get(api(sandbox, "people/")).json()["results"]] == [mine.pk]
    assert client.get(api(sandbox, f"people/{theirs.pk}/")).status_code == 404
    assert client.get(api(sandbox, f"accounts/{their_account.pk}/")).status_code == 404
    assert client.get(api(sandbox, "people/"), {"q": ECID}).json()["count"] == 0
    assert client.get(api(sandbox, "events/"), {"person": theirs.pk}).json()["count"] == 0
    assert client.get(api(sandbox, "profiles/lookup/"), {"namespace": "ecid", "value": ECID}).status_code == 404
    assert client.get(api(sandbox, "profiles/lookup/"), {"namespace": "domain", "value": "theirs.com"}).status_code == 404
    # Without a role in dev, dev itself does not exist for this user.
    assert client.get(api(dev, "people/")).status_code == 404
    assert client.get(api(dev, f"people/{theirs.pk}/")).status_code == 404


def test_profile_endpoints_are_read_only(api_as, marketer, sandbox):
    person = make_people(sandbox, 1)[0]
    client = api_as(marketer)

    assert client.post(api(sandbox, "people/"), {"email": "x@y.co"}, format="json").status_code == 405
    assert client.patch(api(sandbox, f"people/{person.pk}/"), {"email": "x@y.co"}, format="json").status_code == 405
    assert client.delete(api(sandbox, f"people/{person.pk}/")).status_code == 405
    assert client.get(api(sandbox, "profiles/")).status_code == 404  # only profiles/lookup/ exists


def test_anonymous_callers_are_refused(api_client, sandbox):
    assert api_client.get(api(sandbox, "people/")).status_code in (401, 403)


# ---------------------------------------------------------------------------------------- mappings
def test_marketers_manage_field_mappings(api_as, marketer, sandbox):
    client = api_as(marketer)
    columns = {"email": "Email Address", "identity.ecid": "ECID", "attributes.segment": "Segment"}

    created = client.post(api(sandbox, "mappings/"), {"name": "CRM export", "entity": "person", "columns": columns}, format="json")
    assert created.status_code == 201, created.content
    mapping_id = created.json()["id"]
    assert created.json()["columns"] == columns

    changed = client.patch(api(sandbox, f"mappings/{mapping_id}/"), {"columns": {"email": "E-mail"}}, format="json")
    assert changed.status_code == 200 and changed.json()["columns"] == {"email": "E-mail"}
    assert client.get(api(sandbox, "mappings/"), {"entity": "person"}).json()["count"] == 1
    assert client.get(api(sandbox, "mappings/"), {"entity": "event"}).json()["count"] == 0
    assert client.delete(api(sandbox, f"mappings/{mapping_id}/")).status_code == 204
    assert not FieldMapping.objects.exists()


def test_a_mapping_naming_an_unknown_field_is_refused(api_as, marketer, sandbox):
    client = api_as(marketer)

    unknown = client.post(api(sandbox, "mappings/"), {"name": "M", "entity": "person", "columns": {"shoe_size": "Shoe"}}, format="json")
    wrong_entity = client.post(api(sandbox, "mappings/"), {"name": "M", "entity": "event", "columns": {"job_title": "Title"}}, format="json")
    not_an_object = client.post(api(sandbox, "mappings/"), {"name": "M", "entity": "person", "columns": ["email"]}, format="json")

    assert unknown.status_code == 400
    assert unknown.json()["error"]["rule"] == "invalid_mapping"
    assert "'shoe_size' is not a field of person records" in unknown.json()["error"]["message"]
    assert wrong_entity.status_code == 400 and wrong_entity.json()["error"]["rule"] == "invalid_mapping"
    assert not_an_object.status_code == 400
    assert not FieldMapping.objects.exists()


def test_mapping_names_are_unique_per_sandbox(api_as, marketer, sandbox):
    client = api_as(marketer)
    body = {"name": "CRM", "entity": "person", "columns": {"email": "Email"}}
    client.post(api(sandbox, "mappings/"), body, format="json")

    again = client.post(api(sandbox, "mappings/"), body, format="json")

    assert again.status_code == 400
    assert "already exists" in again.json()["error"]["fields"]["name"][0]


def test_mapping_targets_list_the_entity_fields(api_as, viewer, sandbox):
    client = api_as(viewer)

    body = client.get(api(sandbox, "mappings/targets/"), {"entity": "event"}).json()
    unknown = client.get(api(sandbox, "mappings/targets/"), {"entity": "lead"})

    assert {"type", "occurred_at", "identity.email", "external_id"} <= set(body["targets"])
    assert body["wildcards"] == ["properties.*"]
    assert body["required"] == ["type", "occurred_at"]
    assert unknown.status_code == 400 and unknown.json()["error"]["rule"] == "unknown_entity"


def test_viewers_read_mappings_but_cannot_change_them(api_as, viewer, sandbox):
    mapping = FieldMapping.objects.create(sandbox=sandbox, name="M", entity="person", columns={"email": "Email"})
    client = api_as(viewer)

    assert client.get(api(sandbox, "mappings/")).json()["count"] == 1
    assert client.post(api(sandbox, "mappings/"), {"name": "N", "entity": "person", "columns": {}}, format="json").status_code == 403
    assert client.delete(api(sandbox, f"mappings/{mapping.pk}/")).status_code == 403


def test_the_schema_documents_the_profile_endpoints(api_as, viewer):
    response = api_as(viewer).get("/api/schema/", HTTP_ACCEPT="application/json")

    paths = response.json()["paths"]
    for path in (
        "/api/sandboxes/{sandbox_id}/people/",
        "/api/sandboxes/{sandbox_id}/accounts/{id}/",
        "/api/sandboxes/{sandbox_id}/profiles/lookup/",
        "/api/sandboxes/{sandbox_id}/stream/{entity}/",
        "/api/sandboxes/{sandbox_id}/ingestion-batches/{id}/rejections/",
    ):
        assert path in paths
    assert set(paths["/api/sandboxes/{sandbox_id}/people/"]) == {"get"}
    assert set(paths["/api/sandboxes/{sandbox_id}/stream/{entity}/"]) == {"post"}
