"""Salesforce as a source: backfill and incremental sync of a CRM org into the profile store.

Objects, in dependency order (accounts before the contacts and opportunities that name them,
opportunities before their contact roles, campaigns before their members):

    Account                 → account: identities CRM account id + Salesforce account id (both the
                              record Id), domain from Website, parent by ParentId
    Contact                 → person: Salesforce contact id, email; AccountId → its account
    Lead                    → person: Salesforce lead id, email, Company (attribute), the account
                              whose domain is its Website; a converted lead also carries its
                              contact id, which merges the two profiles
    Opportunity             → opportunity: stage, amount, close date, closed/won, AccountId
    OpportunityContactRole  → opportunity–person relation: role, primary flag
    Campaign                → campaign (name, type, status)
    CampaignMember          → campaign member (status, responded, added at), by contact or lead id

Backfill: one pass per object over every record with SystemModstamp ≤ the run's start (CRM records
are current state, not history, so the connection's backfill start doesn't apply). The first
REST query page tells the object's size: small objects are read through REST ``query`` pages
(``nextRecordsUrl``), bigger ones (``options["bulk_threshold"]``, default 2,000 records) through a
Bulk API 2.0 query job whose CSV results are read page by page (``Sforce-Locator``,
``options["bulk_page_rows"]`` rows a page, default 2,000). The run parks (``Wait``) while the
job runs, so no worker sleeps. Each stored page carries the checkpoint of the next one (job id +
locator, or nextRecordsUrl). When an object is done its cursor becomes the run's start, so the
incremental sync continues from there.

Incremental: per object, ``queryAll`` for SystemModstamp in (cursor, now − 1 minute] ordered by
SystemModstamp (the minute lets slow transactions commit), then ``getDeleted`` for hard deletes
over the same span (kept within the 15 days Salesforce keeps that log). The cursor moves with the
object's last page, in the same transaction. Re-storing a page (a resumed run, an expired query
locator, a bulk job that vanished) is idempotent: profiles, opportunities and relations are
upserts keyed by their Salesforce ids.

Deletions (records in the recycle bin come from ``queryAll`` with IsDeleted, hard deletes from
``getDeleted``); profiles are never deleted, because other sources and past activity still
describe them:
    Contact / Lead          the Salesforce id identity is forgotten (``forget_identities``: the
                            person stays, marked ``attributes.deleted_in_salesforce_at``)
    Account                 its Salesforce identities (CRM + Salesforce account id) are dropped; the
                            account and its people stay
    Opportunity             the opportunity and its contact roles are deleted
    Campaign                the campaign and its members are deleted
    OpportunityContactRole, CampaignMember   the relation is deleted. These are read from queryAll
                            rows (which name both sides); a relation hard-deleted without passing
                            through the recycle bin is reported by getDeleted with its id only,
                            which the profile store can't map, so getDeleted isn't read for them.

``REQUEST_LIMIT_EXCEEDED`` pauses the run for an hour (the org's limit is a rolling 24 hours), and
so does reaching ``options["api_usage_ceiling"]`` (default 90 %) of the org's daily API requests, as
Salesforce reports them on every answer (``Sforce-Limit-Info``), so a sync never starves the org's
other integrations; a
failed bulk job fails the run with Salesforce's message; resuming continues from the checkpoint.
"""

import datetime as dt

import requests
from django.db import transaction

from cdp.choices import IdentityNamespace
from cdp.models import Campaign, CampaignMember, Identity, Opportunity, OpportunityPerson
from cdp.schema import FieldError
from cdp.services.identities import validate_identity
from cdp.services.audiences import announce_profile_changes
from connectors.models import SourceConnection, SourceKind, SyncMode
from connectors.salesforce.client import (
    BULK_DONE,
    BULK_FAILED_STATES,
    SalesforceClient,
    SalesforceError,
    SalesforceLimitExceeded,
    soql_datetime,
)
from connectors.services.sources import Chunk, Source, SourceError, SourceQuotaExceeded, Wait, register_source

BULK_THRESHOLD = 2000
BULK_PAGE_ROWS = 2000
BULK_POLL_SECONDS = 30
LIMIT_PAUSE = dt.timedelta(hours=1)
# Share of the org's daily API requests a sync may use; the rest is left to the org's other integrations.
API_USAGE_CEILING = 0.9
# Records are read up to a minute ago: a transaction still committing can't slip behind the cursor.
SETTLE = dt.timedelta(minutes=1)
DELETED_LOG_SPAN = dt.timedelta(days=15) - dt.timedelta(minutes=5)

CRM = IdentityNamespace.CRM_ACCOUNT_ID.value
SFDC_ACCOUNT = IdentityNamespace.SFDC_ACCOUNT_ID.value
SFDC_CONTACT = IdentityNamespace.SFDC_CONTACT_ID.value
SFDC_LEAD = IdentityNamespace.SFDC_LEAD_ID.value


def _account_row(r):
    return {
        f"identity.{CRM}": r["Id"],
        f"identity.{SFDC_ACCOUNT}": r["Id"],
        "name": r.get("Name"),
        "domain": _domain(r.get("Website")),
        "website": r.get("Website"),
        "industry": r.get("Industry"),
        "employees": r.get("NumberOfEmployees"),
        "annual_revenue": r.get("AnnualRevenue"),
        "country": r.get("BillingCountry"),
        "region": r.get("BillingState"),
        "sic_code": r.get("Sic"),
        f"parent.{CRM}": r.get("ParentId"),
        "timestamp": r.get("SystemModstamp"),
    }


def _person_fields(r):
    return {
        "first_name": r.get("FirstName"),
        "last_name": r.get("LastName"),
        "email": r.get("Email"),
        "job_title": r.get("Title"),
        "phone": r.get("Phone"),
        "lead_source": r.get("LeadSource"),
        "is_unsubscribed": r.get("HasOptedOutOfEmail"),
        "timestamp": r.get("SystemModstamp"),
    }


def _contact_row(r):
    return {
        f"identity.{SFDC_CONTACT}": r["Id"],
        **_person_fields(r),
        "department": r.get("Department"),
        "country": r.get("MailingCountry"),
        "city": r.get("MailingCity"),
        f"account.{CRM}": r.get("AccountId"),
    }


def _lead_row(r):
    return {
        f"identity.{SFDC_LEAD}": r["Id"],
        f"identity.{SFDC_CONTACT}": r.get("ConvertedContactId"),
        **_person_fields(r),
        "country": r.get("Country"),
        "city": r.get("City"),
        "lead_status": r.get("Status"),
        "attributes.company": r.get("Company"),
        "attributes.website": r.get("Website"),
        # Lead-to-account matching: a lead whose website is an account's domain belongs to it.
        "account.domain": _domain(r.get("Website")),
        "attributes.is_converted": r.get("IsConverted") in (True, "true"),  # bulk CSV says "true"
    }


def _opportunity_row(r):
    return {
        "external_id": r["Id"],
        "name": r.get("Name"),
        "stage": r.get("StageName"),
        "amount": r.get("Amount"),
        "close_date": r.get("CloseDate"),
        "is_closed": r.get("IsClosed"),
        "is_won": r.get("IsWon"),
        f"account.{CRM}": r.get("AccountId"),
        "timestamp": r.get("SystemModstamp"),
    }


def _contact_role_row(r):
    return {
        "opportunity.external_id": r.get("OpportunityId"),
        f"identity.{SFDC_CONTACT}": r.get("ContactId"),
        "role": r.get("Role"),
        "is_primary": r.get("IsPrimary"),
    }


def _campaign_member_row(r):
    return {
        "campaign.external_id": r.get("CampaignId"),
        f"identity.{SFDC_CONTACT}": r.get("ContactId"),
        f"identity.{SFDC_LEAD}": r.get("LeadId"),
        "status": r.get("Status"),
        "has_responded": r.get("HasResponded"),
        "added_at": r.get("CreatedDate"),
    }


def _domain(website):
    """Website → domain identity, or nothing when the website isn't a usable host name."""
    try:
        return validate_identity(IdentityNamespace.DOMAIN, website) if website else None
    except FieldError:
        return None


class SObject:
    def __init__(
        self, name, entity, fields, to_row=None, *, store=None, forget_namespace=None, delete=None, hard_deletes=True
    ):
        self.name = name
        self.entity = entity  # profile store entity of its rows (None: stored by ``store``)
        self.fields = ["Id", "SystemModstamp", *fields]
        self.to_row = to_row
        self.store = store  # (sandbox, records) -> counts, for objects the profile store has no entity for
        self.forget_namespace = forget_namespace  # deletions forget this person identity
        self.delete = delete  # (sandbox, deleted records) -> (removed count, person ids, account ids)
        self.hard_deletes = hard_deletes  # getDeleted's bare ids are enough to apply a deletion

    def soql(self, *, after=None, upto, include_deleted=False):
        fields = self.fields + (["IsDeleted"] if include_deleted else [])
        where = f"SystemModstamp <= {soql_datetime(upto)}"
        if after is not None:
            where = f"SystemModstamp > {soql_datetime(after)} AND {where}"
        return f"SELECT {', '.join(fields)} FROM {self.name} WHERE {where} ORDER BY SystemModstamp"


# ------------------------------------------------------------------- stores and deletions
# The profile store has no campaign entity and no deletion path yet; these stay sandbox-scoped
# and announce what changed like store_records does. They run in the chunk's transaction
# (Chunk.apply) and are idempotent, so a page done again after a crash changes nothing twice;
# their counts travel with the chunk.


def _announce(sandbox, person_ids, account_ids):
    announce_profile_changes(sandbox.pk, person_ids, account_ids, sender=SObject)


def _store_campaigns(sandbox, records) -> dict:
    rows = {r["Id"]: r for r in records}
    with transaction.atomic():
        existing = set(Campaign.objects.for_sandbox(sandbox).filter(external_id__in=rows).values_list("external_id", flat=True))
        Campaign.objects.bulk_create(
            [
                Campaign(sandbox=sandbox, external_id=i, name=(r.get("Name") or i)[:255], type=r.get("Type") or "", status=r.get("Status") or "")
                for i, r in rows.items()
            ],
            update_conflicts=True,
            unique_fields=["sandbox", "external_id"],
            update_fields=["name", "type", "status"],
        )
    return {"received": len(records), "created": len(rows) - len(existing), "updated": len(existing)}


def _delete_account_identities(sandbox, records):
    ids = [r["Id"] for r in records]
    identities = Identity.objects.for_sandbox(sandbox).filter(namespace__in=[CRM, SFDC_ACCOUNT], value__in=ids, account__isnull=False)
    account_ids = set(identities.values_list("account_id", flat=True))
    removed = len({value for value in identities.values_list("value", flat=True)})
    identities.delete()
    return removed, (), account_ids


def _delete_opportunities(sandbox, records):
    opportunities = Opportunity.objects.for_sandbox(sandbox).filter(external_id__in=[r["Id"] for r in records])
    account_ids = set(opportunities.exclude(account=None).values_list("account_id", flat=True))
    person_ids = set(OpportunityPerson.objects.filter(opportunity__in=opportunities).values_list("person_id", flat=True))
    removed = opportunities.count()
    opportunities.delete()
    return removed, person_ids, account_ids


def _delete_campaigns(sandbox, records):
    campaigns = Campaign.objects.for_sandbox(sandbox).filter(external_id__in=[r["Id"] for r in records])
    person_ids = set(CampaignMember.objects.filter(campaign__in=campaigns).values_list("person_id", flat=True))
    removed = campaigns.count()
    campaigns.delete()
    return removed, person_ids, ()


def _people_with(sandbox, namespace, value):
    return Identity.objects.for_sandbox(sandbox).filter(namespace=namespace, value=value, person__isnull=False).values("person_id")


def _relation_deleter(model, parent_field, parent_key, person_keys):
    """Deletes relation rows named by (parent Salesforce id, person Salesforce id) — deleted
    records read through queryAll; ids alone (getDeleted) can't be matched."""

    def delete(sandbox, records):
        removed, person_ids = 0, set()
        for record in records:
            if parent_key not in record:
                continue
            for field, namespace in person_keys:
                if record.get(field):
                    rows = model.objects.for_sandbox(sandbox).filter(
                        **{f"{parent_field}__external_id": record[parent_key]}, person_id__in=_people_with(sandbox, namespace, record[field])
                    )
                    person_ids |= set(rows.values_list("person_id", flat=True))
                    removed += rows.delete()[0]
        return removed, person_ids, ()

    return delete


OBJECTS = [
    SObject(
        "Account",
        "account",
        ["Name", "Website", "Industry", "NumberOfEmployees", "AnnualRevenue", "BillingCountry", "BillingState", "Sic",
         "ParentId"],
        _account_row,
        delete=_delete_account_identities,
    ),
    SObject(
        "Contact",
        "person",
        ["FirstName", "LastName", "Email", "Title", "Department", "Phone", "MailingCountry", "MailingCity",
         "LeadSource", "AccountId", "HasOptedOutOfEmail"],
        _contact_row,
        forget_namespace=SFDC_CONTACT,
    ),
    SObject(
        "Lead",
        "person",
        ["FirstName", "LastName", "Email", "Title", "Company", "Website", "Phone", "Country", "City", "LeadSource",
         "Status", "HasOptedOutOfEmail", "IsConverted", "ConvertedContactId"],
        _lead_row,
        forget_namespace=SFDC_LEAD,
    ),
    SObject(
        "Opportunity",
        "opportunity",
        ["Name", "StageName", "Amount", "CloseDate", "IsClosed", "IsWon", "AccountId"],
        _opportunity_row,
        delete=_delete_opportunities,
    ),
    SObject(
        "OpportunityContactRole",
        "opportunity_person",
        ["OpportunityId", "ContactId", "Role", "IsPrimary"],
        _contact_role_row,
        hard_deletes=False,
        delete=_relation_deleter(OpportunityPerson, "opportunity", "OpportunityId", [("ContactId", SFDC_CONTACT)]),
    ),
    SObject("Campaign", "campaign", ["Name", "Type", "Status"], store=_store_campaigns, delete=_delete_campaigns),
    SObject(
        "CampaignMember",
        "campaign_member",
        ["CampaignId", "ContactId", "LeadId", "Status", "HasResponded", "CreatedDate"],
        _campaign_member_row,
        hard_deletes=False,
        delete=_relation_deleter(
            CampaignMember, "campaign", "CampaignId", [("ContactId", SFDC_CONTACT), ("LeadId", SFDC_LEAD)]
        ),
    ),
]


def _clean(record: dict) -> dict:
    """A REST record without its ``attributes`` envelope."""
    return {k: v for k, v in record.items() if k != "attributes"}


def _is_deleted(record) -> bool:
    return record.get("IsDeleted") in (True, "true")


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat()


def _parse(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00").replace("+0000", "+00:00"))


@register_source
class SalesforceSource(Source):
    kind = SourceKind.SALESFORCE
    dataset = "salesforce"

    def __init__(self, connection, *, now=None):
        super().__init__(connection, now=now)
        self.org = connection.salesforce_org
        self._client = None

    @property
    def client(self) -> SalesforceClient:
        if self._client is None:
            self._client = self.make_client()
        return self._client

    def make_client(self, **kwargs) -> SalesforceClient:
        return SalesforceClient.for_org(self.org, usage_ceiling=self.usage_ceiling, **kwargs)

    @property
    def usage_ceiling(self) -> float:
        return float(self.connection.options.get("api_usage_ceiling", API_USAGE_CEILING))

    @property
    def bulk_threshold(self) -> int:
        return int(self.connection.options.get("bulk_threshold", BULK_THRESHOLD))

    @property
    def bulk_page_rows(self) -> int:
        return int(self.connection.options.get("bulk_page_rows", BULK_PAGE_ROWS))

    def test_connection(self) -> str:
        try:
            info = self.client.test_connection()
        except (SalesforceError, requests.RequestException) as error:
            raise SourceError(f"Salesforce org “{self.org.name}” can't be reached: {error}") from error
        daily = info.get("daily_api_requests") or {}
        left = f" {daily['Remaining']:,} of {daily['Max']:,} daily API requests left." if "Remaining" in daily else ""
        return f"Connected to {info['instance_url']}.{left}"

    def steps(self, run):
        # The runner sets run.checkpoint to each chunk's checkpoint once it is stored: the loops
        # over objects below follow it (an object whose bulk job expired is read again).
        try:
            if run.mode == SyncMode.BACKFILL:
                yield from self._backfill(run)
            else:
                yield from self._incremental(run)
        except SalesforceLimitExceeded as error:
            reason = error.message if error.error_code == "API_USAGE_CEILING" else (
                f"Salesforce's API request limit is used up ({error.message})"
            )
            raise SourceQuotaExceeded(f"{reason}; the sync continues later.", self.now() + LIMIT_PAUSE) from error
        except SalesforceError as error:
            raise SourceError(f"Salesforce refused a request: {error}") from error
        except requests.RequestException as error:
            raise SourceError(f"Salesforce could not be reached: {error}") from error

    # ------------------------------------------------------------------------ helpers
    def _progress(self, index):
        return (index, len(OBJECTS))

    def _cursor_with(self, name, **values) -> dict:
        """The connection's cursor with this object's entry updated; modstamps never move back
        (a backfill finishing after an incremental sync must not rewind it)."""
        stored = SourceConnection.objects.filter(pk=self.connection.pk).values_list("cursor", flat=True).first() or {}
        entry = dict(stored.get(name, {}))
        for key, value in values.items():
            if key not in entry or _parse(entry[key]) < _parse(value):
                entry[key] = value
        return {**stored, name: entry}

    def _page(self, run, sobject, records, checkpoint, *, cursor=None, phase="", progress=None):
        """The chunk storing one page of records: live records become rows (or go through the
        object's own store), deleted ones go through its deletion rule — all in the chunk's
        transaction, so a page stored again after a crash changes and counts nothing twice."""
        records = [_clean(r) for r in records]
        live = [r for r in records if not _is_deleted(r)]
        deleted = [r for r in records if _is_deleted(r)]
        forget = [(sobject.forget_namespace, r["Id"]) for r in deleted] if sobject.forget_namespace else []
        own_store = live if sobject.store is not None else []
        own_delete = deleted if sobject.delete else []

        def apply(sandbox) -> dict:
            counts = dict(sobject.store(sandbox, own_store)) if own_store else {}
            if own_delete:
                removed, person_ids, account_ids = sobject.delete(sandbox, own_delete)
                _announce(sandbox, person_ids, account_ids)
                counts["deleted"] = counts.get("deleted", 0) + removed
            return counts

        rows = [] if own_store else live
        return Chunk(
            sobject.entity if (records or forget) else None,
            rows=[sobject.to_row(r) for r in rows],
            refs=[f"{sobject.name} {r['Id']}" for r in rows],
            forget=forget,
            apply=apply if (own_store or own_delete) else None,
            checkpoint=checkpoint,
            cursor=cursor,
            phase=phase,
            progress=progress,
        )

    # ----------------------------------------------------------------------- backfill
    def _backfill(self, run):
        if "upto" not in run.checkpoint:
            checkpoint = {"upto": _iso(self.now()), "object": 0}
            yield Chunk(None, checkpoint=checkpoint, progress=self._progress(0), phase="Starting the backfill")
        upto = _parse(run.checkpoint["upto"])
        while run.checkpoint["object"] < len(OBJECTS):
            index = run.checkpoint["object"]
            sobject = OBJECTS[index]
            yield from self._backfill_object(run, index, sobject, upto)

    def _backfill_object(self, run, index, sobject, upto):
        cp = run.checkpoint
        label = f"{sobject.name}"
        done = {"upto": cp["upto"], "object": index + 1}
        if "job" in cp:
            yield from self._bulk_results(run, index, sobject, cp, done, label)
            return
        if cp.get("next_url"):
            page = self._query_or_restart(cp["next_url"])
        else:
            page = self.client.query_page(sobject.soql(upto=upto))
            # A big object is read again through Bulk API 2.0, a small one continues with this page.
            if page.total_size > self.bulk_threshold:
                job_id = self.client.create_bulk_query(sobject.soql(upto=upto))
                checkpoint = {**cp, "job": job_id}
                yield Chunk(None, checkpoint=checkpoint, phase=f"{label}: bulk query job {job_id} created ({page.total_size:,} records)")
                yield from self._bulk_results(run, index, sobject, checkpoint, done, label)
                return
        while True:
            if page is None:  # the query locator expired: read the object again from the start
                page = self.client.query_page(sobject.soql(upto=upto))
            last = page.next_url is None
            checkpoint = done if last else {**cp, "next_url": page.next_url}
            yield self._page(run, sobject, page.records, checkpoint, phase=f"{label}: {page.total_size:,} records",
                             **(self._backfilled(index, sobject, cp) if last else {}))
            if last:
                return
            page = self._query_or_restart(page.next_url)

    def _query_or_restart(self, next_url):
        try:
            return self.client.query_page(next_url=next_url)
        except SalesforceError as error:
            if error.error_code == "INVALID_QUERY_LOCATOR":
                return None
            raise

    def _backfilled(self, index, sobject, cp) -> dict:
        """Chunk arguments of an object's last backfill page: its cursor starts where the backfill read up to."""
        cursor = self._cursor_with(sobject.name, modstamp=cp["upto"], deleted_through=cp["upto"])
        return {"cursor": cursor, "progress": self._progress(index + 1)}

    def _bulk_results(self, run, index, sobject, cp, done, label):
        job_id = cp["job"]
        if not cp.get("ready"):
            try:
                job = self.client.bulk_job(job_id)
            except SalesforceError as error:
                if error.error_code != "NOT_FOUND":
                    raise
                # The job expired (results are kept 7 days): query the object again.
                restart = {k: v for k, v in cp.items() if k not in ("job", "ready", "locator")}
                yield Chunk(None, checkpoint=restart, phase=f"{label}: bulk job {job_id} expired; starting again")
                return
            if job["state"] in BULK_FAILED_STATES:
                # Forget the job first, so resuming the run queries the object again.
                restart = {k: v for k, v in cp.items() if k not in ("job", "ready", "locator")}
                yield Chunk(None, checkpoint=restart, phase=f"{label}: bulk query job {job_id} {job['state'].lower()}")
                raise SourceError(
                    f"The Salesforce bulk query of {sobject.name} (job {job_id}) {job['state'].lower()}: "
                    f"{job.get('errorMessage') or 'no reason given'}. Resume the run to try again."
                )
            if job["state"] != BULK_DONE:
                yield Wait(BULK_POLL_SECONDS, cp, phase=f"{label}: Salesforce is running bulk query job {job_id} ({job['state']})")
                return
            cp = {**cp, "ready": True}
        locator = cp.get("locator")
        while True:
            page = self.client.bulk_results(job_id, locator=locator, max_records=self.bulk_page_rows)
            last = page.next_locator is None
            checkpoint = done if last else {**cp, "locator": page.next_locator}
            yield self._page(run, sobject, list(page.rows), checkpoint, phase=f"{label}: bulk results",
                             **(self._backfilled(index, sobject, cp) if last else {}))
            if last:
                return
            locator = page.next_locator

    # -------------------------------------------------------------------- incremental
    def _incremental(self, run):
        if "upto" not in run.checkpoint:
            checkpoint = {"upto": _iso(self.now() - SETTLE), "object": 0}
            yield Chunk(None, checkpoint=checkpoint, progress=self._progress(0), phase="Starting the sync")
        upto = _parse(run.checkpoint["upto"])
        while run.checkpoint["object"] < len(OBJECTS):
            index = run.checkpoint["object"]
            sobject = OBJECTS[index]
            yield from self._incremental_object(run, index, sobject, upto)

    def _incremental_object(self, run, index, sobject, upto):
        cp = run.checkpoint
        done = {"upto": cp["upto"], "object": index + 1}
        entry = (run.connection.cursor or {}).get(sobject.name)
        if not cp.get("deletions") and (not entry or _parse(entry["modstamp"]) >= upto):
            # Never synced (history comes from a backfill) or already past this run: start here.
            cursor = self._cursor_with(sobject.name, modstamp=cp["upto"], deleted_through=cp["upto"])
            yield Chunk(None, checkpoint=done, cursor=cursor, progress=self._progress(index + 1))
            return
        soql = sobject.soql(after=_parse(entry["modstamp"]), upto=upto, include_deleted=True)
        if not cp.get("deletions"):
            next_url = cp.get("next_url")
            # No page to continue from, or its query locator expired: (re)start the query.
            page = (self._query_or_restart(next_url) if next_url else None) or self.client.query_page(
                soql, include_deleted=True
            )
            while True:
                last = page.next_url is None
                checkpoint = {**done, "object": index, "deletions": True} if last else {**cp, "next_url": page.next_url}
                cursor = self._cursor_with(sobject.name, modstamp=cp["upto"]) if last else None
                yield self._page(run, sobject, page.records, checkpoint, cursor=cursor, phase=f"{sobject.name}: changes")
                cp = checkpoint
                if last:
                    break
                page = self._query_or_restart(page.next_url) or self.client.query_page(soql, include_deleted=True)
        yield self._hard_deletions(run, index, sobject, entry, upto, done)

    def _hard_deletions(self, run, index, sobject, entry, upto, done):
        """Records deleted past the recycle bin since the last sync, from getDeleted."""
        if not sobject.hard_deletes:
            return Chunk(None, checkpoint=done, cursor=self._cursor_with(sobject.name, deleted_through=_iso(upto)),
                         progress=self._progress(index + 1))
        start = max(_parse(entry.get("deleted_through") or entry["modstamp"]), self.now() - DELETED_LOG_SPAN)
        cursor_values = {"deleted_through": _iso(upto)}
        deleted = []
        if start < upto:
            result = self.client.get_deleted(sobject.name, start, upto)
            deleted = [{"Id": d["id"], "IsDeleted": True} for d in result.get("deletedRecords", [])]
            if result.get("latestDateCovered"):
                cursor_values["deleted_through"] = _iso(min(_parse(result["latestDateCovered"]), upto))
        return self._page(
            run, sobject, deleted, done, cursor=self._cursor_with(sobject.name, **cursor_values),
            phase=f"{sobject.name}: deletions", progress=self._progress(index + 1),
        )
