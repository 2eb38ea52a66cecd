"""The profile pages (/profiles/…): people and account lists and pages, data ingestion pages and
saved mappings. Query counts stay fixed as rows grow; other sandboxes stay invisible; viewers read."""

import datetime as dt

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
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
    IngestionBatch,
    ListMember,
    MarketingList,
    Opportunity,
    OpportunityPerson,
    Person,
)
from cdp.services.ingestion import ingest_stream
from tests.factories import SandboxFactory

ECID = "7" * 38
NOW = timezone.now()


@pytest.fixture(autouse=True)
def uploads_in_tmp(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def make_account(sandbox, name, domain, **fields):
    account = Account.objects.create(sandbox=sandbox, name=name, domain=domain, **fields)
    Identity.objects.create(sandbox=sandbox, namespace="domain", value=domain, account=account)
    return account


def make_people(sandbox, count, account=None, prefix="p"):
    people = Person.objects.bulk_create(
        [Person(sandbox=sandbox, first_name=f"{prefix.title()}{n}", last_name="Smith", email=f"{prefix}{n}@acme.com") for n in range(count)]
    )
    Identity.objects.bulk_create([Identity(sandbox=sandbox, namespace="email", value=p.email, person=p) for p in people])
    if account is not None:
        AccountPerson.objects.bulk_create([AccountPerson(sandbox=sandbox, account=account, person=p, role="Champion") for p in people])
    return people


def make_events(sandbox, count, person=None, account=None, type="email.clicked"):
    ExperienceEvent.objects.bulk_create(
        [
            ExperienceEvent(sandbox=sandbox, person=person, account=account, type=type,
                            occurred_at=NOW - dt.timedelta(hours=n), properties={"link": f"https://acme.com/{n}"})
            for n in range(count)
        ]
    )  # fmt: skip


def page_queries(client, url):
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured), response


# --------------------------------------------------------------------------------------- people
def test_people_list_is_the_landing_page_and_searches(login, viewer, sandbox):
    acme = make_account(sandbox, "Acme", "acme.com")
    ann = make_people(sandbox, 1, account=acme, prefix="ann")[0]
    Identity.objects.create(sandbox=sandbox, namespace="ecid", value=ECID, person=ann)
    make_people(sandbox, 3, prefix="bob")
    client = login(viewer)

    landing = client.get("/profiles/")
    by_identity = client.get("/profiles/", {"q": ECID})
    by_email = client.get("/profiles/", {"q": "bob1@"})
    nothing = client.get("/profiles/", {"q": "zzz"})

    assert landing.status_code == 200
    assert [p.pk for p in landing.context["page"]] == [p.pk for p in Person.objects.order_by("last_name", "first_name", "id")]
    assert "Accounts" in landing.content.decode() and reverse("cdp:profiles-accounts") in landing.content.decode()
    assert [p.pk for p in by_identity.context["page"]] == [ann.pk]
    assert [p.email for p in by_email.context["page"]] == ["bob1@acme.com"]
    assert "No person matches this search." in nothing.content.decode()


def test_people_list_pages_cost_the_same_queries_for_more_rows(login, viewer, sandbox, django_assert_max_num_queries):
    make_people(sandbox, 20, account=make_account(sandbox, "Acme", "acme.com"))
    client = login(viewer)
    few, response = page_queries(client, "/profiles/")
    assert len(response.context["page"]) == 20

    make_people(sandbox, 40, account=make_account(sandbox, "Globex", "globex.com"), prefix="g")
    with django_assert_max_num_queries(few):
        response = client.get("/profiles/")
    assert len(response.context["page"]) == 50
    assert response.context["page"].paginator.count == 60
    assert "Page 1 of 2" in response.content.decode()
    assert len(client.get(response.context["page"].next_url.replace("?", "/profiles/?")).context["page"]) == 10


def test_accounts_list_searches_and_counts_people(login, viewer, sandbox, django_assert_max_num_queries):
    acme = make_account(sandbox, "Acme", "acme.com", industry="Software")
    Identity.objects.create(sandbox=sandbox, namespace="crm_account_id", value="CRM-1", account=acme)
    make_people(sandbox, 3, account=acme)
    client = login(viewer)
    few, _ = page_queries(client, "/profiles/accounts/")

    for n in range(25):
        make_people(sandbox, 2, account=make_account(sandbox, f"Co {n}", f"co{n}.com"), prefix=f"c{n}-")
    with django_assert_max_num_queries(few):
        response = client.get("/profiles/accounts/")
    by_crm_id = client.get("/profiles/accounts/", {"q": "CRM-1"})
    by_domain = client.get("/profiles/accounts/", {"q": "co12.com"})

    assert len(response.context["page"]) == 26
    assert {a.name: a.people_count for a in response.context["page"]}["Acme"] == 3
    assert [a.pk for a in by_crm_id.context["page"]] == [acme.pk]
    assert [a.name for a in by_domain.context["page"]] == ["Co 12"]


def test_person_page_shows_identities_relations_memberships_timeline_and_merges(login, viewer, sandbox):
    acme = make_account(sandbox, "Acme", "acme.com")
    ingest_stream(sandbox, "person", [{"email": "ann@acme.com", "first_name": "Ann", "account": {"domain": "acme.com"}}])
    ingest_stream(sandbox, "person", [{"identity": {"ecid": ECID}, "last_name": "Lee", "attributes": {"tier": "gold"}}])
    ingest_stream(sandbox, "person", [{"email": "ann@acme.com", "identity": {"ecid": ECID}}])
    ann = Person.objects.get(sandbox=sandbox)
    deal = Opportunity.objects.create(sandbox=sandbox, account=acme, external_id="OPP-1", name="Platform deal", stage="Negotiation")
    OpportunityPerson.objects.create(sandbox=sandbox, opportunity=deal, person=ann, role="Economic Buyer")
    newsletter = MarketingList.objects.create(sandbox=sandbox, external_id="L1", name="Newsletter")
    ListMember.objects.create(sandbox=sandbox, marketing_list=newsletter, person=ann, added_at=NOW)
    summit = Campaign.objects.create(sandbox=sandbox, external_id="C1", name="Summit 2026")
    CampaignMember.objects.create(sandbox=sandbox, campaign=summit, person=ann, status="Registered", added_at=NOW)
    make_events(sandbox, 30, person=ann)

    response = login(viewer).get(f"/profiles/people/{ann.pk}/")
    html = response.content.decode()

    assert response.status_code == 200
    for text in ("Ann Lee", "ECID", ECID, "ann@acme.com", "Acme", "Platform deal", "Economic Buyer", "Newsletter",
                 "Summit 2026", "Registered", "Email clicked", "link: https://acme.com/0", "Merge history",
                 "linked by", "tier"):  # fmt: skip
        assert text in html, text
    assert len(response.context["events"].object_list) == 25
    older = login(viewer).get(f"/profiles/people/{ann.pk}/", {"events_page": 2})
    assert len(older.context["events"].object_list) == 5
    assert "Audiences" in html


def test_person_page_costs_a_fixed_number_of_queries(login, viewer, sandbox, django_assert_max_num_queries):
    def person_with(rows, prefix):
        person = make_people(sandbox, 1, prefix=prefix)[0]
        for n in range(rows):
            account = make_account(sandbox, f"{prefix} {n}", f"{prefix}{n}.com")
            AccountPerson.objects.create(sandbox=sandbox, account=account, person=person, role="User")
            deal = Opportunity.objects.create(sandbox=sandbox, account=account, external_id=f"{prefix}-{n}", name=f"Deal {n}")
            OpportunityPerson.objects.create(sandbox=sandbox, opportunity=deal, person=person, role="Champion")
            listing = MarketingList.objects.create(sandbox=sandbox, external_id=f"{prefix}-{n}", name=f"List {n}")
            ListMember.objects.create(sandbox=sandbox, marketing_list=listing, person=person, added_at=NOW)
            campaign = Campaign.objects.create(sandbox=sandbox, external_id=f"{prefix}-{n}", name=f"Campaign {n}")
            CampaignMember.objects.create(sandbox=sandbox, campaign=campaign, person=person, added_at=NOW)
            Identity.objects.create(sandbox=sandbox, namespace="custom:crm", value=f"{prefix}-{n}", person=person)
        make_events(sandbox, rows, person=person)
        return person

    client = login(viewer)
    small, _ = page_queries(client, f"/profiles/people/{person_with(1, 'small').pk}/")
    big = person_with(25, "big")
    with django_assert_max_num_queries(small):
        response = client.get(f"/profiles/people/{big.pk}/")
    assert len(response.context["opportunity_relations"]) == 25


def test_account_page_shows_firmographics_people_opportunities_and_activity(
    login, viewer, sandbox, django_assert_max_num_queries
):
    def account_with(rows, name):
        account = make_account(sandbox, name, f"{name.lower()}.com", industry="Aerospace", employees=12000)
        people = make_people(sandbox, rows, account=account, prefix=name.lower())
        for n in range(rows):
            Opportunity.objects.create(sandbox=sandbox, account=account, external_id=f"{name}-{n}", name=f"{name} deal {n}")
            make_account(sandbox, f"{name} subsidiary {n}", f"sub{n}.{name.lower()}.com", parent=account)
        make_events(sandbox, rows, account=account, type="web.visit")
        make_events(sandbox, rows, person=people[0])
        return account

    client = login(viewer)
    small, _ = page_queries(client, f"/profiles/accounts/{account_with(1, 'Tiny').pk}/")
    big = account_with(30, "Boeing")
    with django_assert_max_num_queries(small):
        response = client.get(f"/profiles/accounts/{big.pk}/")
    html = response.content.decode()

    for text in ("Firmographics", "Aerospace", "12,000", "boeing.com", "Champion", "Boeing deal 0", "Boeing subsidiary 0",
                 "Buying groups", "Audiences", "Web page visit", "Email clicked", "Boeing0 Smith"):  # fmt: skip
        assert text in html, text
    assert len(response.context["people"]) == 25 and response.context["people"].paginator.count == 30
    assert len(response.context["events"].object_list) == 25
    page_two = client.get(f"/profiles/accounts/{big.pk}/", {"people_page": 2})
    assert len(page_two.context["people"]) == 5


def test_profiles_of_another_sandbox_are_404_and_absent(login, make_user, sandbox, organization):
    dev = SandboxFactory(organization=organization, name="dev")
    theirs = make_people(dev, 1, prefix="theirs")[0]
    Identity.objects.create(sandbox=dev, namespace="ecid", value=ECID, person=theirs)
    their_account = make_account(dev, "Theirs", "theirs.com")
    mine = make_people(sandbox, 1, prefix="mine")[0]
    client = login(make_user(Role.VIEWER, sandbox))

    assert client.get(f"/profiles/people/{theirs.pk}/").status_code == 404
    assert client.get(f"/profiles/accounts/{their_account.pk}/").status_code == 404
    assert [p.pk for p in client.get("/profiles/").context["page"]] == [mine.pk]
    assert list(client.get("/profiles/", {"q": ECID}).context["page"]) == []
    assert list(client.get("/profiles/accounts/", {"q": "theirs"}).context["page"]) == []


def test_a_person_of_another_sandbox_is_404_even_for_its_admin_while_in_this_one(login, make_user, sandbox, organization):
    dev = SandboxFactory(organization=organization, name="dev")
    theirs = make_people(dev, 1, prefix="theirs")[0]
    client = login(make_user(org_admin_of=organization))
    client.post(reverse("cdp:switch-sandbox"), {"sandbox": sandbox.pk})

    assert client.get(f"/profiles/people/{theirs.pk}/").status_code == 404
    client.post(reverse("cdp:switch-sandbox"), {"sandbox": dev.pk})
    assert client.get(f"/profiles/people/{theirs.pk}/").status_code == 200


# ------------------------------------------------------------------------------------- ingestion
def test_viewers_see_no_upload_or_edit_buttons_and_get_403_on_forms(login, viewer, sandbox):
    mapping = FieldMapping.objects.create(sandbox=sandbox, name="M", entity="person", columns={"email": "Email"})
    client = login(viewer)

    for url in ("/profiles/", "/profiles/ingest/", "/profiles/ingest/mappings/"):
        html = client.get(url).content.decode()
        assert "Upload a file" not in html and reverse("cdp:profiles-upload") not in html
        assert reverse("cdp:profiles-mapping-edit", args=[mapping.pk]) not in html
    assert client.get("/profiles/ingest/upload/").status_code == 403
    upload = client.post("/profiles/ingest/upload/", {"entity": "person", "file": SimpleUploadedFile("p.csv", b"email\na@b.co\n")})
    assert upload.status_code == 403
    assert client.post("/profiles/ingest/mappings/new/", {"name": "X", "entity": "person"}).status_code == 403
    assert client.post(f"/profiles/ingest/mappings/{mapping.pk}/delete/").status_code == 403
    assert not IngestionBatch.objects.exists() and FieldMapping.objects.count() == 1


def test_the_upload_flow_loads_a_file_and_shows_its_report(login, marketer, sandbox, django_capture_on_commit_callbacks):
    client = login(marketer)
    form = client.get("/profiles/ingest/upload/?entity=event")
    assert form.status_code == 200
    html = form.content.decode()
    assert 'name="map:occurred_at"' in html and 'name="map:identity.email"' in html and "required" in html
    assert 'hx-get="/profiles/ingest/mapping-editor/"' in html

    content = b"Email,Activity,When,Page\nann@acme.com,web.visit,2026-11-01T10:00:00Z,/pricing\nbob@acme.com,web.visit,soon,/\n"
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/profiles/ingest/upload/",
            {
                "entity": "event", "file": SimpleUploadedFile("visits.csv", content), "dataset": "web", "mapping": "",
                "file_format": "", "map:identity.email": "Email", "map:type": "Activity", "map:occurred_at": "When",
                "extra": "properties.page = Page",
            },
        )  # fmt: skip

    batch = IngestionBatch.objects.get(sandbox=sandbox)
    assert response.status_code == 302 and response["Location"] == f"/profiles/ingest/{batch.pk}/"
    assert batch.columns == {"identity.email": "Email", "type": "Activity", "occurred_at": "When", "properties.page": "Page"}
    assert ExperienceEvent.objects.get(sandbox=sandbox).properties == {"page": "/pricing"}

    page = client.get(f"/profiles/ingest/{batch.pk}/")
    html = page.content.decode()
    assert "visits.csv" in html and "Download error report (CSV)" in html
    assert "hx-trigger" not in html  # finished: no polling
    assert [(r.row_number, r.field) for r in page.context["rejections"]] == [(2, "occurred_at")]
    assert "soon" in html

    report = client.get(reverse("cdp:profiles-batch-report", args=[batch.pk]))
    body = b"".join(report.streaming_content).decode()
    assert report["Content-Type"].startswith("text/csv")
    assert body.splitlines()[0] == "row,field,reason,record" and "2,occurred_at" in body


def test_an_upload_with_a_bad_mapping_shows_the_reason_on_the_form(login, marketer, sandbox):
    client = login(marketer)

    response = client.post(
        "/profiles/ingest/upload/",
        {"entity": "person", "file": SimpleUploadedFile("p.csv", b"Email\na@b.co\n"), "dataset": "file", "extra": "shoe_size = Shoe"},
    )

    assert response.status_code == 400
    assert "&#x27;shoe_size&#x27; is not a field of person records" in response.content.decode()
    assert not IngestionBatch.objects.exists()


def test_the_progress_bar_polls_while_running_and_reloads_when_done(login, viewer, sandbox):
    batch = IngestionBatch.objects.create(sandbox=sandbox, entity="person", file_name="big.csv", status="running",
                                          bytes_total=1000, bytes_done=420, created=10, updated=2, merged=1, rejected=3)  # fmt: skip
    client = login(viewer)

    page = client.get(f"/profiles/ingest/{batch.pk}/").content.decode()
    assert 'hx-trigger="every 1s"' in page and "42%" in page and "width: 42%" in page
    assert ">13<" in page  # accepted = created + updated + merged

    poll = client.get(f"/profiles/ingest/{batch.pk}/progress/", HTTP_HX_REQUEST="true")
    assert poll.status_code == 200 and 'hx-trigger="every 1s"' in poll.content.decode()

    IngestionBatch.objects.filter(pk=batch.pk).update(status="succeeded", bytes_done=1000)
    done = client.get(f"/profiles/ingest/{batch.pk}/progress/", HTTP_HX_REQUEST="true")
    assert done["HX-Refresh"] == "true"


def test_batch_list_shows_files_and_streaming_logs(login, viewer, sandbox, django_assert_max_num_queries):
    ingest_stream(sandbox, "person", [{"email": "bad"}, {"email": "ok@acme.com"}])
    for n in range(25):
        IngestionBatch.objects.create(sandbox=sandbox, entity="person", file_name=f"file-{n}.csv", status="succeeded", created=n)
    other = SandboxFactory(name="elsewhere-3")
    IngestionBatch.objects.create(sandbox=other, entity="person", file_name="secret.csv")
    client = login(viewer)

    with django_assert_max_num_queries(20):
        response = client.get("/profiles/ingest/")
    streams = client.get("/profiles/ingest/", {"kind": "stream"})

    html = response.content.decode()
    assert "file-24.csv" in html and "Streaming person" in html and "secret.csv" not in html
    assert [b.kind for b in streams.context["page"]] == ["stream"]
    assert client.get(f"/profiles/ingest/{IngestionBatch.objects.get(file_name='secret.csv').pk}/").status_code == 404


# -------------------------------------------------------------------------------------- mappings
def test_marketers_create_edit_and_delete_mappings(login, marketer, sandbox):
    client = login(marketer)
    assert client.get("/profiles/ingest/mapping-editor/", {"entity": "opportunity"}).content.decode().count('name="map:') > 5

    created = client.post(
        "/profiles/ingest/mappings/new/",
        {"name": "Salesforce opportunities", "entity": "opportunity", "map:external_id": "Id", "map:name": "Name", "map:amount": "Amount"},
    )
    mapping = FieldMapping.objects.get(sandbox=sandbox)
    assert created.status_code == 302
    assert (mapping.entity, mapping.columns) == ("opportunity", {"external_id": "Id", "name": "Name", "amount": "Amount"})

    edit_form = client.get(f"/profiles/ingest/mappings/{mapping.pk}/edit/").content.decode()
    assert 'value="Amount"' in edit_form
    client.post(
        f"/profiles/ingest/mappings/{mapping.pk}/edit/",
        {"name": "SFDC opportunities", "entity": "opportunity", "map:external_id": "Id", "extra": "attributes.region = Region"},
    )
    mapping.refresh_from_db()
    assert (mapping.name, mapping.columns) == ("SFDC opportunities", {"external_id": "Id", "attributes.region": "Region"})
    assert "attributes.region = Region" in client.get(f"/profiles/ingest/mappings/{mapping.pk}/edit/").content.decode()

    listing = client.get("/profiles/ingest/mappings/").content.decode()
    assert "SFDC opportunities" in listing and reverse("cdp:profiles-mapping-delete", args=[mapping.pk]) in listing
    assert client.post(f"/profiles/ingest/mappings/{mapping.pk}/delete/").status_code == 302
    assert not FieldMapping.objects.exists()


def test_mapping_form_errors_are_shown(login, marketer, sandbox):
    FieldMapping.objects.create(sandbox=sandbox, name="Taken", entity="person", columns={})
    client = login(marketer)

    duplicate = client.post("/profiles/ingest/mappings/new/", {"name": "Taken", "entity": "person", "map:email": "Email"})
    bad_line = client.post("/profiles/ingest/mappings/new/", {"name": "New", "entity": "person", "extra": "no equals sign"})

    assert duplicate.status_code == 400 and "already exists" in duplicate.content.decode()
    assert bad_line.status_code == 400 and "Line 1: write it as target = column" in bad_line.content.decode()
    assert FieldMapping.objects.count() == 1


def test_mappings_of_another_sandbox_are_404(login, marketer, sandbox):
    theirs = FieldMapping.objects.create(sandbox=SandboxFactory(name="elsewhere-4"), name="T", entity="person", columns={})
    client = login(marketer)

    assert client.get(f"/profiles/ingest/mappings/{theirs.pk}/edit/").status_code == 404
    assert client.post(f"/profiles/ingest/mappings/{theirs.pk}/delete/").status_code == 404
    assert FieldMapping.objects.filter(pk=theirs.pk).exists()
