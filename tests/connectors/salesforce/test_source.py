"""The Salesforce source against the fake org: backfill of every object, incremental changes and
deletions, token expiry, API limit pause, bulk job failure, crash recovery, sandbox isolation."""

import datetime as dt

import pytest

from cdp.models import Account, Campaign, CampaignMember, Identity, Opportunity, OpportunityPerson, Person
from connectors.models import SyncRejection, SyncState
from connectors.services.pairings import PairingRuleViolation
from connectors.services import sources
from connectors.services.sources import STALE_AFTER, create_source_connection, resume_run
from tests.connectors.factories import SalesforceOrgFactory
from tests.factories import SandboxFactory

pytestmark = pytest.mark.django_db


class Crm:
    """A small org: 4 accounts (one a subsidiary), 5 contacts, 2 leads (one converted into a
    contact), 2 opportunities, 3 contact roles, 2 campaigns, 3 campaign members."""

    def __init__(self, fake):
        add = fake.add
        self.parent = add("Account", Name="Globex", Website="https://www.globex.example", Industry="Energy")
        self.accounts = [self.parent] + [
            add("Account", Name=f"Acme {i}", Website=f"acme{i}.example", NumberOfEmployees=50 * i, ParentId=self.parent if i == 1 else None)
            for i in range(1, 4)
        ]
        self.contacts = [
            add("Contact", FirstName=f"Ann{i}", LastName="Lee", Email=f"ann{i}@acme.example", Title="CTO", AccountId=self.accounts[i % 4])
            for i in range(5)
        ]
        self.lead = add("Lead", LastName="Open", Email="open@lead.example", Company="Acme One", Website="http://www.acme1.example/", Status="Working")
        self.converted = add("Lead", LastName="Lee", Email="ann0@acme.example", Company="Acme", IsConverted=True, ConvertedContactId=self.contacts[0])
        self.opportunities = [
            add("Opportunity", Name="Big deal", StageName="Negotiation", Amount=125000.5, CloseDate="2026-06-30", IsClosed=False, IsWon=False, AccountId=self.accounts[1]),
            add("Opportunity", Name="Won deal", StageName="Closed Won", Amount=9000, CloseDate="2026-01-15", IsClosed=True, IsWon=True, AccountId=self.accounts[2]),
        ]
        self.roles = [
            add("OpportunityContactRole", OpportunityId=self.opportunities[0], ContactId=self.contacts[1], Role="Decision Maker", IsPrimary=True),
            add("OpportunityContactRole", OpportunityId=self.opportunities[0], ContactId=self.contacts[2], Role="Influencer", IsPrimary=False),
            add("OpportunityContactRole", OpportunityId=self.opportunities[1], ContactId=self.contacts[3], Role="Champion", IsPrimary=True),
        ]
        self.campaigns = [add("Campaign", Name="Webinar", Type="Webinar", Status="Completed"), add("Campaign", Name="Trade show", Type="Event")]
        self.members = [
            add("CampaignMember", CampaignId=self.campaigns[0], ContactId=self.contacts[0], Status="Attended", HasResponded=True, CreatedDate="2026-02-01T10:00:00.000+0000"),
            add("CampaignMember", CampaignId=self.campaigns[0], LeadId=self.lead, Status="Registered", HasResponded=False),
            add("CampaignMember", CampaignId=self.campaigns[1], ContactId=self.contacts[4], Status="Visited", HasResponded=True),
        ]


@pytest.fixture
def crm(fake_salesforce):
    return Crm(fake_salesforce)


def _person(sandbox, namespace, value):
    return Person.objects.for_sandbox(sandbox).get(identities__namespace=namespace, identities__value=value)


def _store_summary(sandbox):
    return {
        "accounts": Account.objects.for_sandbox(sandbox).count(),
        "people": Person.objects.for_sandbox(sandbox).count(),
        "opportunities": Opportunity.objects.for_sandbox(sandbox).count(),
        "contact_roles": OpportunityPerson.objects.for_sandbox(sandbox).count(),
        "campaigns": Campaign.objects.for_sandbox(sandbox).count(),
        "campaign_members": CampaignMember.objects.for_sandbox(sandbox).count(),
    }


FULL = {"accounts": 4, "people": 6, "opportunities": 2, "contact_roles": 3, "campaigns": 2, "campaign_members": 3}


def _received(run):
    return {entity: counts["received"] for entity, counts in run.counts.items() if counts.get("received")}


def test_backfill_stores_every_object(connection, crm, drive, fake_salesforce, sandbox):
    run = drive(drive.start(connection))

    assert run.state == SyncState.SUCCEEDED, run.error
    assert _store_summary(sandbox) == FULL  # the converted lead merged into its contact
    assert _received(run) == {"account": 4, "person": 7, "opportunity": 2, "opportunity_person": 3, "campaign": 2, "campaign_member": 3}
    assert run.counts["account"]["rejected"] == 0 and run.counts["person"]["rejected"] == 0
    assert (run.progress_done, run.progress_total) == (7, 7)

    # Both read paths ran: contacts (5 > threshold 4) through a bulk job read 2 rows a page,
    # the other objects through REST pages of 3.
    assert [job["object"] for job in fake_salesforce.bulk_jobs.values()] == ["Contact"]
    assert len(fake_salesforce.calls("/results")) == 3
    assert fake_salesforce.calls("/query/01g")  # REST paging (accounts: 4 records, pages of 3)

    acme1 = Account.objects.for_sandbox(sandbox).get(identities__namespace="crm_account_id", identities__value=crm.accounts[1])
    assert acme1.name == "Acme 1" and acme1.domain == "acme1.example" and acme1.employees == 50
    assert acme1.parent.name == "Globex" and acme1.parent.domain == "globex.example"
    assert set(acme1.identities.values_list("namespace", flat=True)) == {"crm_account_id", "sfdc_account_id", "domain"}

    ann0 = _person(sandbox, "sfdc_contact_id", crm.contacts[0])
    assert ann0.email == "ann0@acme.example" and ann0.job_title == "CTO"
    assert _person(sandbox, "sfdc_lead_id", crm.converted) == ann0
    assert ann0.account_relations.get().account.name == "Globex"
    lead = _person(sandbox, "sfdc_lead_id", crm.lead)
    assert lead.lead_status == "Working" and lead.attributes["company"] == "Acme One"
    assert lead.account_relations.get().account == acme1  # matched by its website's domain

    big = Opportunity.objects.for_sandbox(sandbox).get(external_id=crm.opportunities[0])
    assert (big.stage, str(big.amount), big.close_date.isoformat(), big.is_closed, big.account) == (
        "Negotiation", "125000.50", "2026-06-30", False, acme1,
    )
    assert Opportunity.objects.for_sandbox(sandbox).get(external_id=crm.opportunities[1]).is_won is True
    primary = OpportunityPerson.objects.for_sandbox(sandbox).get(opportunity=big, is_primary=True)
    assert primary.role == "Decision Maker" and primary.person == _person(sandbox, "sfdc_contact_id", crm.contacts[1])

    webinar = Campaign.objects.for_sandbox(sandbox).get(external_id=crm.campaigns[0])
    assert (webinar.name, webinar.type, webinar.status) == ("Webinar", "Webinar", "Completed")
    attended = CampaignMember.objects.for_sandbox(sandbox).get(campaign=webinar, person=ann0)
    assert attended.status == "Attended" and attended.has_responded and attended.added_at.isoformat().startswith("2026-02-01T10:00")
    assert CampaignMember.objects.for_sandbox(sandbox).get(campaign=webinar, person=lead).status == "Registered"

    connection.refresh_from_db()
    assert set(connection.cursor) == {"Account", "Contact", "Lead", "Opportunity", "OpportunityContactRole", "Campaign", "CampaignMember"}


def test_incremental_picks_up_changes_and_deletions(connection, crm, drive, fake_salesforce, sandbox):
    drive(drive.start(connection))
    fake = fake_salesforce
    fake.now = drive.now  # time goes on after the backfill
    fake.update("Contact", crm.contacts[1], Title="CEO")
    new_contact = fake.add("Contact", LastName="New", Email="new@acme.example", AccountId=crm.accounts[2])
    fake.delete("Contact", crm.contacts[4])  # recycle bin: queryAll
    fake.delete("Lead", crm.lead, hard=True)  # gone for good: getDeleted
    fake.delete("Account", crm.accounts[3], hard=True)
    fake.delete("Opportunity", crm.opportunities[1])
    fake.delete("OpportunityContactRole", crm.roles[1])
    fake.delete("CampaignMember", crm.members[0])
    fake.delete("Campaign", crm.campaigns[1])
    fake.update("Campaign", crm.campaigns[0], Status="Archived")
    drive.now = fake.now + dt.timedelta(minutes=5)

    run = drive(drive.start(connection, "incremental"))

    assert run.state == SyncState.SUCCEEDED, run.error
    assert _person(sandbox, "sfdc_contact_id", crm.contacts[1]).job_title == "CEO"
    assert _person(sandbox, "sfdc_contact_id", new_contact).account_relations.get().account.name == "Acme 2"
    # Deleted contacts and leads lose their Salesforce identity; the person stays, marked.
    assert not Identity.objects.for_sandbox(sandbox).filter(value__in=[crm.contacts[4], crm.lead]).exists()
    gone = Person.objects.for_sandbox(sandbox).get(email="ann4@acme.example")
    assert "deleted_in_salesforce_at" in gone.attributes
    # The deleted account keeps its domain but no longer answers to its Salesforce id.
    acme3 = Account.objects.for_sandbox(sandbox).get(name="Acme 3")
    assert set(acme3.identities.values_list("namespace", flat=True)) == {"domain"}
    assert not Opportunity.objects.for_sandbox(sandbox).filter(external_id=crm.opportunities[1]).exists()
    assert OpportunityPerson.objects.for_sandbox(sandbox).count() == 1  # one role deleted, one went with its opportunity
    assert not Campaign.objects.for_sandbox(sandbox).filter(external_id=crm.campaigns[1]).exists()
    webinar = Campaign.objects.for_sandbox(sandbox).get(external_id=crm.campaigns[0])
    assert webinar.status == "Archived" and webinar.members.count() == 1

    assert _received(run) == {"person": 2, "campaign": 1}
    deleted = {entity: counts.get("deleted", 0) for entity, counts in run.counts.items() if counts.get("deleted")}
    assert deleted == {"person": 2, "account": 1, "opportunity": 1, "opportunity_person": 1, "campaign": 1, "campaign_member": 1}

    # Nothing changed since: the next sync reads nothing and deletes nothing.
    drive.now += dt.timedelta(minutes=5)
    again = drive(drive.start(connection, "incremental"))
    assert again.state == SyncState.SUCCEEDED and _received(again) == {}
    assert not any(c.get("deleted") for c in again.counts.values())


def test_incremental_that_failed_between_changes_and_deletions_resumes_with_the_deletions(
    connection, crm, drive, fake_salesforce, sandbox
):
    drive(drive.start(connection))
    fake_salesforce.now = drive.now
    fake_salesforce.update("Lead", crm.lead, Status="Nurture")
    fake_salesforce.delete("Lead", crm.converted, hard=True)
    fake_salesforce.inject("/sobjects/Lead/deleted", status=500, code="UNKNOWN_EXCEPTION", message="An unexpected error occurred", times=5)
    drive.now = fake_salesforce.now + dt.timedelta(minutes=5)

    run = drive(drive.start(connection, "incremental"))
    assert run.state == SyncState.FAILED and "UNKNOWN_EXCEPTION" in run.error
    assert _person(sandbox, "sfdc_lead_id", crm.lead).lead_status == "Nurture"  # the changes were stored

    run = drive(resume_run(run))
    assert run.state == SyncState.SUCCEEDED, run.error
    assert not Identity.objects.for_sandbox(sandbox).filter(value=crm.converted).exists()
    assert run.counts["person"]["received"] == 1 and run.counts["person"]["deleted"] == 1


def test_expired_query_locator_and_bulk_job_are_read_again_without_duplicates(connection, crm, drive, fake_salesforce, sandbox):
    fake_salesforce.inject("/query/01g", status=400, code="INVALID_QUERY_LOCATOR", message="invalid query locator")
    fake_salesforce.inject("/jobs/query/750", status=404, code="NOT_FOUND", message="Job not found")
    run = drive(drive.start(connection))

    assert run.state == SyncState.SUCCEEDED, run.error
    assert _store_summary(sandbox) == FULL
    assert len(fake_salesforce.bulk_jobs) == 2  # the contacts' job was created again
    assert run.counts["account"]["received"] == 7  # the first page of 3 was read twice…
    assert run.counts["account"]["created"] == 4  # …and stored once


def test_token_expiry_mid_run_renews_the_session(connection, crm, drive, fake_salesforce, sandbox):
    fake_salesforce.inject("/results", status=401, code="INVALID_SESSION_ID", message="Session expired or invalid")
    run = drive(drive.start(connection))
    assert run.state == SyncState.SUCCEEDED, run.error
    assert _store_summary(sandbox) == FULL
    assert len(fake_salesforce.token_requests) >= 2


def test_request_limit_pauses_the_run_and_it_resumes_later(connection, crm, drive, fake_salesforce, sandbox):
    fake_salesforce.inject("/jobs/query", status=403, code="REQUEST_LIMIT_EXCEEDED", message="TotalRequests Limit exceeded.")
    run = drive.start(connection)
    paused_at = drive.now
    run = drive(run)
    assert run.state == SyncState.PAUSED
    assert "TotalRequests Limit exceeded" in run.error
    assert run.resume_after == paused_at + dt.timedelta(hours=1)
    assert Account.objects.for_sandbox(sandbox).count() == 4  # what was read before stays

    from connectors.services.sources import run_sync

    assert run_sync(run.pk, now=paused_at + dt.timedelta(minutes=30)) is None  # not yet
    drive.now = run.resume_after + dt.timedelta(seconds=1)
    run = drive(run)
    assert run.state == SyncState.SUCCEEDED, run.error
    assert _store_summary(sandbox) == FULL
    assert _received(run)["account"] == 4 and _received(run)["person"] == 7


def test_sync_stops_at_its_share_of_the_daily_api_requests(connection, crm, drive, fake_salesforce, sandbox):
    fake_salesforce.api_usage = 13_495  # the ceiling is 90 % of 15,000 = 13,500
    run = drive(drive.start(connection))
    assert run.state == SyncState.PAUSED
    assert "of the org's 15,000 daily API requests are used; this sync stops at 90%" in run.error
    # A worker's fresh client learns the usage from its first answer: at most one request past it.
    assert 13_500 <= fake_salesforce.api_usage <= 13_501

    fake_salesforce.api_usage = 0  # a day later
    drive.now = run.resume_after + dt.timedelta(seconds=1)
    run = drive(run)
    assert run.state == SyncState.SUCCEEDED, run.error
    assert _store_summary(sandbox) == FULL


def test_bulk_job_failure_fails_the_run_and_resume_queries_again(connection, crm, drive, fake_salesforce, sandbox):
    fake_salesforce.failing_bulk_objects["Contact"] = "InternalServerError: query timed out"
    run = drive(drive.start(connection))
    assert run.state == SyncState.FAILED
    assert "bulk query of Contact" in run.error and "query timed out" in run.error

    del fake_salesforce.failing_bulk_objects["Contact"]
    run = drive(resume_run(run))
    assert run.state == SyncState.SUCCEEDED, run.error
    assert len(fake_salesforce.bulk_jobs) == 2
    assert _store_summary(sandbox) == FULL
    assert _received(run)["person"] == 7


class WorkerKilled(BaseException):
    """The worker process dies: nothing catches it, nothing records it."""


def test_killed_run_resumes_with_exact_counts(connection, crm, drive, monkeypatch, sandbox):
    real_store, calls = sources.store_records, []

    def dies_on_the_fourth_page(*args, **kwargs):
        calls.append(args[1])
        if len(calls) == 4:  # the second page of the contacts' bulk results
            raise WorkerKilled()
        return real_store(*args, **kwargs)

    monkeypatch.setattr(sources, "store_records", dies_on_the_fourth_page)
    run = drive.start(connection)
    with pytest.raises(WorkerKilled):
        drive(run)
    run.refresh_from_db()
    assert run.state == SyncState.RUNNING
    assert 0 < Person.objects.for_sandbox(sandbox).count() < 6

    monkeypatch.setattr(sources, "store_records", real_store)
    drive.now = run.heartbeat_at + STALE_AFTER + dt.timedelta(seconds=1)
    run = drive(run)

    assert run.state == SyncState.SUCCEEDED, run.error
    assert run.attempts >= 2  # picked up again by another worker
    assert _store_summary(sandbox) == FULL
    assert _received(run) == {"account": 4, "person": 7, "opportunity": 2, "opportunity_person": 3, "campaign": 2, "campaign_member": 3}


def test_rejected_records_are_reported_with_their_salesforce_id(connection, fake_salesforce, drive, sandbox):
    bad = fake_salesforce.add("Contact", LastName="Broken", Email="not-an-email")
    fake_salesforce.add("Contact", LastName="Fine", Email="fine@acme.example")
    run = drive(drive.start(connection))
    assert run.state == SyncState.SUCCEEDED
    assert run.counts["person"]["received"] == 2 and run.counts["person"]["rejected"] == 1
    rejection = SyncRejection.objects.for_sandbox(sandbox).get(run=run)
    assert rejection.source_ref == f"Contact {bad}" and rejection.field == "email"


def test_sandboxes_are_isolated(connection, crm, drive, fake_salesforce, organization, salesforce_org, sandbox):
    development = SandboxFactory(organization=organization, name="dev")
    other = create_source_connection(sandbox=development, name="Salesforce into dev", salesforce_org=salesforce_org)
    drive(drive.start(connection))
    assert _store_summary(development) == dict.fromkeys(FULL, 0)

    drive(drive.start(other))
    assert _store_summary(development) == FULL
    fake_salesforce.now = drive.now
    fake_salesforce.delete("Opportunity", crm.opportunities[0])
    drive.now = fake_salesforce.now + dt.timedelta(minutes=5)
    drive(drive.start(connection, "incremental"))
    assert Opportunity.objects.for_sandbox(sandbox).count() == 1
    assert Opportunity.objects.for_sandbox(development).count() == 2


def test_a_salesforce_org_of_another_organization_is_refused(sandbox, other_sandbox):
    foreign = SalesforceOrgFactory(organization=other_sandbox.organization)
    with pytest.raises(PairingRuleViolation) as raised:
        create_source_connection(sandbox=sandbox, name="Not ours", salesforce_org=foreign)
    assert raised.value.rule == "instance_same_organization"


def test_test_connection(connection, fake_salesforce):
    assert sources.test_source_connection(connection).startswith(f"Connected to {fake_salesforce.url}.")
