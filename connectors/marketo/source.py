"""Marketo Engage as a source: historical backfill and incremental sync into the profile store.

Backfill (checkpoint stages, in order)
    leads       bulk export of leads created in each ≤31-day window since the connection's backfill
                start → people (identities: Marketo lead id, email, Salesforce contact/lead id) and
                their accounts (by Salesforce account id or website domain)
    activities  bulk export of the activities of interest, same windows → experience events
    lists       static lists and their members (REST) → marketing lists and list members
    programs    programs (asset API) and their members → campaigns and campaign members
    The checkpoint names the stage, the window, the export job and how many rows of its file are
    stored, so a resumed run re-downloads the file and skips what is already in.

Incremental (cursor = paging tokens, advanced only with the page they belong to)
    lead changes (new leads and data value changes) → the changed leads are read in full and stored;
    activities of interest → events; deleted leads → their Marketo lead id identity is forgotten
    (``forget_identities``: the person stays, marked ``attributes.deleted_in_marketo_at``).

Events carry the activity's marketoGUID as ``external_id`` (prefixed with the Munchkin ID), the same
in the export file and the REST API, so a page stored twice is never counted twice.
Companies, opportunities and contact roles can't be listed by date in Marketo; with CRM sync on they
come from the Salesforce source.
"""

import datetime as dt
import json

from cdp.choices import EventType, IdentityNamespace
from cdp.schema import FieldError
from cdp.services.identities import validate_identity
from connectors.marketo import MarketoClient, MarketoError, MarketoQuotaExceeded
from connectors.marketo.client import _chunks, _iso
from connectors.models import SourceKind, SyncMode
from connectors.services.sources import Chunk, Source, SourceError, SourceQuotaExceeded, Wait, register_source

WINDOW = dt.timedelta(days=31)
CHUNK_ROWS = 500
EXPORT_POLL_SECONDS = 60
# Marketo error "too many jobs in queue": try again later rather than fail.
EXPORT_QUEUE_FULL = "1029"
STAGES = ("leads", "activities", "lists", "programs")

# Marketo lead field → profile store person field.
PERSON_FIELDS = {
    "email": "email",
    "firstName": "first_name",
    "lastName": "last_name",
    "title": "job_title",
    "country": "country",
    "city": "city",
    "phone": "phone",
    "leadScore": "lead_score",
    "leadSource": "lead_source",
    "leadStatus": "lead_status",
    "unsubscribed": "is_unsubscribed",
}
PERSON_IDENTITIES = {"sfdcContactId": IdentityNamespace.SFDC_CONTACT_ID, "sfdcLeadId": IdentityNamespace.SFDC_LEAD_ID}
# Marketo lead (company) field → profile store account field.
ACCOUNT_FIELDS = {
    "company": "name",
    "industry": "industry",
    "numberOfEmployees": "employees",
    "annualRevenue": "annual_revenue",
    "website": "website",
}
LEAD_FIELDS = ["id", *PERSON_FIELDS, *PERSON_IDENTITIES, "sfdcAccountId", *ACCOUNT_FIELDS, "createdAt", "updatedAt"]
READ_ONLY = {"id", "createdAt", "updatedAt"}
NOT_ATTRIBUTES = {"id", "sfdcAccountId", "createdAt", "updatedAt", *PERSON_IDENTITIES, *ACCOUNT_FIELDS}

# Marketo's standard activity type ids → experience event types.
ACTIVITY_EVENT_TYPES = {
    1: EventType.WEB_VISIT,
    2: EventType.FORM_FILLED,
    3: "custom.marketo.link_clicked",
    6: EventType.EMAIL_SENT,
    7: EventType.EMAIL_DELIVERED,
    8: EventType.EMAIL_BOUNCED,
    9: EventType.EMAIL_UNSUBSCRIBED,
    10: EventType.EMAIL_OPENED,
    11: EventType.EMAIL_CLICKED,
    12: EventType.LEAD_CREATED,
    21: EventType.LEAD_CONVERTED,
    22: EventType.SCORE_CHANGED,
    24: EventType.LIST_ADDED,
    25: EventType.LIST_REMOVED,
    27: EventType.EMAIL_BOUNCED,
    34: EventType.OPPORTUNITY_ADDED,
    35: EventType.OPPORTUNITY_REMOVED,
    46: EventType.INTERESTING_MOMENT,
}
ADD_TO_LIST = 24
ACTIVITY_GROUP_SIZE = 10  # Marketo's limit of activity types per Get Lead Activities call
# leadId, reachedSuccess and membershipDate always come; statusName is the progression status.
PROGRAM_MEMBER_FIELDS = ["statusName"]
PROGRAM_MEMBER_VALUES = {"statusName": "status", "reachedSuccess": "has_responded", "membershipDate": "added_at"}


def _value(raw):
    """Export files write ``null`` for empty values."""
    if raw is None or (isinstance(raw, str) and raw.strip().lower() in ("", "null")):
        return None
    return raw


def _identity_or_none(namespace: str, raw):
    try:
        return validate_identity(namespace, raw) if _value(raw) is not None else None
    except FieldError:
        return None


def _goes_on(page, token: str) -> bool:
    """More pages follow; a page that neither moves the token nor brings records ends the loop."""
    return page.more and bool(page.records or (page.next_token and page.next_token != token))


def _parse_iso(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


@register_source
class MarketoSource(Source):
    kind = SourceKind.MARKETO
    dataset = "marketo"

    def __init__(self, connection, *, now=None):
        super().__init__(connection, now=now)
        self.instance = connection.marketo_instance
        self.munchkin_id = self.instance.munchkin_id
        self._client = None
        self._lead_fields = None

    @property
    def client(self) -> MarketoClient:
        if self._client is None:
            self._client = self.make_client()
        return self._client

    def make_client(self) -> MarketoClient:
        return MarketoClient.for_instance(self.instance)

    @property
    def lead_fields(self) -> list[str]:
        """The fields to read: ours and the connection's extra ones, as far as this instance has them
        (asking for a field an instance lacks fails the whole call)."""
        if self._lead_fields is None:
            available = {field["rest"]["name"] for field in self.client.describe_leads() if field.get("rest")}
            wanted = [*LEAD_FIELDS, *self.connection.options.get("extra_lead_fields", [])]
            self._lead_fields = [name for name in dict.fromkeys(wanted) if name in available]
        return self._lead_fields

    @property
    def activity_type_ids(self) -> list[int]:
        configured = self.connection.options.get("activity_type_ids")
        return sorted(int(i) for i in configured) if configured else sorted(ACTIVITY_EVENT_TYPES)

    def test_connection(self) -> str:
        try:
            info = self.client.test_connection()
        except MarketoError as error:
            raise SourceError(f"Marketo instance {self.munchkin_id} can't be reached: {error}") from error
        return f"Connected to Marketo instance {info['munchkin_id']}: {info['lead_fields']} lead fields readable."

    def steps(self, run):
        # The runner saves each chunk before the generator goes on, so run.checkpoint is the stored position.
        self.run = run
        try:
            if run.mode == SyncMode.BACKFILL:
                yield from self._backfill(run)
            else:
                yield from self._incremental(run)
        except MarketoQuotaExceeded as error:
            raise SourceQuotaExceeded(str(error), error.resets_at) from error
        except MarketoError as error:
            raise SourceError(f"Marketo instance {self.munchkin_id}: {error}") from error

    # ------------------------------------------------------------------ rows

    def _external_id(self, kind: str, value) -> str:
        return f"marketo:{self.munchkin_id}:{kind}:{value}"

    def lead_rows(self, leads: list[dict]) -> tuple[list, list, list]:
        """People rows (with refs) and their accounts' rows, deduplicated by account identity."""
        people, refs, accounts = [], [], {}
        for lead in leads:
            row = {"identity.marketo_lead_id": _value(lead.get("id")), "timestamp": _value(lead.get("updatedAt"))}
            for name, target in PERSON_FIELDS.items():
                if _value(lead.get(name)) is not None:
                    row[target] = lead[name]
            for name, namespace in PERSON_IDENTITIES.items():
                value = _identity_or_none(namespace, lead.get(name))
                if value:
                    row[f"identity.{namespace}"] = value
                elif _value(lead.get(name)) is not None:
                    row[f"attributes.{name}"] = lead[name]  # kept, but not as an identity it can't be
            for name, raw in lead.items():
                if name not in NOT_ATTRIBUTES and name not in PERSON_FIELDS and _value(raw) is not None:
                    row[f"attributes.{name}"] = raw
            account_key = self._account_ref(lead)
            if account_key:
                row[f"account.{account_key[0]}"] = account_key[1]
                account = accounts.setdefault(account_key, {f"identity.{account_key[0]}": account_key[1]})
                domain = _identity_or_none(IdentityNamespace.DOMAIN, lead.get("website"))
                if domain:
                    account["domain"] = domain
                for name, target in ACCOUNT_FIELDS.items():
                    if _value(lead.get(name)) is not None:
                        account[target] = lead[name]
                account["timestamp"] = row["timestamp"]
            people.append(row)
            refs.append(f"lead {lead.get('id')}")
        return people, refs, list(accounts.values())

    @staticmethod
    def _account_ref(lead: dict):
        sfdc_account = _identity_or_none(IdentityNamespace.SFDC_ACCOUNT_ID, lead.get("sfdcAccountId"))
        if sfdc_account:
            return (IdentityNamespace.SFDC_ACCOUNT_ID.value, sfdc_account)
        domain = _identity_or_none(IdentityNamespace.DOMAIN, lead.get("website"))
        return (IdentityNamespace.DOMAIN.value, domain) if domain else None

    def activity_rows(self, activities: list[dict]) -> tuple[list, list]:
        rows, refs = [], []
        for activity in activities:
            type_id = int(activity["activityTypeId"])
            guid = _value(activity.get("marketoGUID")) or activity.get("id")
            row = {
                "type": ACTIVITY_EVENT_TYPES.get(type_id, f"custom.marketo.activity_{type_id}"),
                "occurred_at": activity.get("activityDate"),
                "external_id": self._external_id("activity", guid),
                "identity.marketo_lead_id": _value(activity.get("leadId")),
                "properties.marketo_activity_type_id": type_id,
            }
            for name in ("primaryAttributeValueId", "primaryAttributeValue", "campaignId"):
                if _value(activity.get(name)) is not None:
                    row[f"properties.{name}"] = activity[name]
            attributes = activity.get("attributes")
            if isinstance(attributes, str) and _value(attributes):  # export files hold them as JSON text
                try:
                    attributes = json.loads(attributes)
                except ValueError:
                    attributes = {"attributes": attributes}
            if isinstance(attributes, list):  # the REST API: [{"name": …, "value": …}]
                attributes = {a.get("name"): a.get("value") for a in attributes if isinstance(a, dict)}
            for name, value in (attributes or {}).items():
                if _value(value) is not None:
                    row[f"properties.{name}"] = value
            rows.append(row)
            refs.append(f"activity {guid}")
        return rows, refs

    def list_addition_rows(self, activities: list[dict]) -> list[dict]:
        """"Add to List" activities as list members, so lists stay current between backfills.
        (Removals are events only: the profile store has no membership removal yet.)"""
        return [
            {
                "list.external_id": self._external_id("list", activity["primaryAttributeValueId"]),
                "list_name": activity.get("primaryAttributeValue") or f"List {activity['primaryAttributeValueId']}",
                "identity.marketo_lead_id": activity.get("leadId"),
                "added_at": activity.get("activityDate"),
            }
            for activity in activities
            if int(activity["activityTypeId"]) == ADD_TO_LIST and _value(activity.get("primaryAttributeValueId")) is not None
        ]

    def _lead_chunks(self, leads: list[dict], checkpoint: dict, **chunk_args):
        """Accounts first (same checkpoint: re-storing them is harmless), then the people."""
        people, refs, accounts = self.lead_rows(leads)
        if accounts:
            previous = {key: value for key, value in chunk_args.items() if key == "progress"}
            yield Chunk("account", accounts, checkpoint=self.run.checkpoint, **previous)
        yield Chunk("person", people, checkpoint=checkpoint, refs=refs, **chunk_args)

    # ------------------------------------------------------------------ backfill

    def _backfill(self, run):
        checkpoint = dict(run.checkpoint)
        if not checkpoint:
            checkpoint = {
                "since": _iso(self.backfill_start()),
                "until": _iso(self.now()),
                "stage": STAGES[0],
                "window": 0,
            }
            yield Chunk(None, checkpoint=checkpoint, progress=(0, self._total(checkpoint)), phase="Starting the backfill")
        while checkpoint["stage"] in STAGES:
            stage = checkpoint["stage"]
            if stage in ("leads", "activities"):
                for step in self._export_stage(stage, checkpoint):
                    yield step
                    if isinstance(step, Wait):
                        return
                    checkpoint = step.checkpoint
            elif stage == "lists":
                for step in self._lists_stage(checkpoint):
                    yield step
                    checkpoint = step.checkpoint
            else:
                for step in self._programs_stage(checkpoint):
                    yield step
                    checkpoint = step.checkpoint

    def _windows(self, checkpoint) -> list[tuple[dt.datetime, dt.datetime]]:
        """≤31-day windows; Marketo's endAt is inclusive, so each ends a second before the next starts."""
        start, until = _parse_iso(checkpoint["since"]), _parse_iso(checkpoint["until"])
        windows = []
        while start < until:
            following = min(start + WINDOW, until)
            windows.append((start, following if following == until else following - dt.timedelta(seconds=1)))
            start = following
        return windows

    def _total(self, checkpoint) -> int:
        return 2 * len(self._windows(checkpoint)) + 2

    def _done(self, checkpoint) -> int:
        index = STAGES.index(checkpoint["stage"]) if checkpoint["stage"] in STAGES else len(STAGES)
        windows = len(self._windows(checkpoint))
        done = {0: 0, 1: windows, 2: 2 * windows, 3: 2 * windows + 1, 4: 2 * windows + 2}[index]
        return done + (checkpoint.get("window", 0) if index < 2 else 0)

    def _progress(self, checkpoint) -> tuple[int, int]:
        return self._done(checkpoint), self._total(checkpoint)

    def _next_stage(self, checkpoint) -> dict:
        following = STAGES.index(checkpoint["stage"]) + 1
        return {
            "since": checkpoint["since"],
            "until": checkpoint["until"],
            "stage": STAGES[following] if following < len(STAGES) else "done",
            "window": 0,
        }

    def _export_stage(self, entity: str, checkpoint: dict):
        windows = self._windows(checkpoint)
        while checkpoint["window"] < len(windows):
            start, end = windows[checkpoint["window"]]
            label = f"{entity.capitalize()} created {start:%Y-%m-%d} → {end:%Y-%m-%d}"
            export_id = checkpoint.get("export_id")
            if not export_id:
                export_filter = {"createdAt": {"startAt": _iso(start), "endAt": _iso(end)}}
                if entity == "activities":
                    export_filter["activityTypeIds"] = self.activity_type_ids
                fields = self.lead_fields if entity == "leads" else None
                export_id = self.client.create_export_job(entity, fields, export_filter)
                checkpoint = {**checkpoint, "export_id": export_id, "enqueued": False, "rows_done": 0}
                yield Chunk(None, checkpoint=checkpoint, phase=f"{label}: export job {export_id} created")
            if not checkpoint.get("enqueued"):
                try:
                    self.client.enqueue_export_job(entity, export_id)
                except MarketoError as error:
                    if error.code != EXPORT_QUEUE_FULL:
                        raise
                    yield Wait(5 * EXPORT_POLL_SECONDS, checkpoint, phase=f"{label}: Marketo's export queue is full")
                    return
                checkpoint = {**checkpoint, "enqueued": True}
                yield Chunk(None, checkpoint=checkpoint, phase=f"{label}: export queued at Marketo")
            status = self.client.get_export_status(entity, export_id)
            state = status.get("status")
            if state in ("Failed", "Cancelled", "Canceled"):
                # Forget the job first, so resuming the run exports this window again.
                retry = {key: value for key, value in checkpoint.items() if key not in ("export_id", "enqueued", "rows_done")}
                yield Chunk(None, checkpoint=retry, phase=f"{label}: export {state.lower()}")
                reason = status.get("errorMsg") or "no reason given"
                raise SourceError(
                    f"Marketo's bulk export of {label.lower()} (job {export_id}) {state.lower()}: {reason}. "
                    "Resume the backfill to export this window again."
                )
            if state != "Completed":
                yield Wait(EXPORT_POLL_SECONDS, checkpoint, phase=f"{label}: Marketo is preparing the export ({state})")
                return
            yield from self._export_rows(entity, export_id, checkpoint, label)
            checkpoint = self.run.checkpoint
        yield Chunk(None, checkpoint=self._next_stage(checkpoint), progress=self._progress(self._next_stage(checkpoint)))

    def _export_rows(self, entity, export_id, checkpoint, label):
        skip, batch = checkpoint.get("rows_done", 0), []
        done = skip
        phase = f"{label}: storing"

        def chunks(rows, next_checkpoint, **extra):
            if entity == "leads":
                return self._lead_chunks(rows, next_checkpoint, phase=phase, **extra)
            events, refs = self.activity_rows(rows)
            return iter([Chunk("event", events, checkpoint=next_checkpoint, refs=refs, phase=phase, **extra)])

        for index, row in enumerate(self.client.iter_export_file(entity, export_id)):
            if index < skip:
                continue
            batch.append(row)
            if len(batch) >= CHUNK_ROWS:
                done += len(batch)
                next_checkpoint = {**checkpoint, "rows_done": done}
                yield from chunks(batch, next_checkpoint)
                batch = []
        following = {
            "since": checkpoint["since"],
            "until": checkpoint["until"],
            "stage": checkpoint["stage"],
            "window": checkpoint["window"] + 1,
        }
        yield from chunks(batch, following, progress=self._progress(following))

    def _lists_stage(self, checkpoint):
        if "lists" not in checkpoint:
            lists, token = [], None
            while True:
                page = self.client.get_lists(token)
                lists += [[item["id"], item.get("name") or f"List {item['id']}"] for item in page.records]
                token = page.next_token
                if not page.more or not token:
                    break
            checkpoint = {**checkpoint, "lists": lists, "index": 0, "token": None}
            yield Chunk(None, checkpoint=checkpoint, phase=f"Static lists: {len(lists)} found")
        while checkpoint["index"] < len(checkpoint["lists"]):
            list_id, name = checkpoint["lists"][checkpoint["index"]]
            page = self.client.get_list_members(list_id, ["id"], checkpoint["token"])
            rows = [
                {"list.external_id": self._external_id("list", list_id), "list_name": name, "identity.marketo_lead_id": m.get("id")}
                for m in page.records
            ]
            more = page.more and page.next_token
            checkpoint = {**checkpoint, "token": page.next_token if more else None, "index": checkpoint["index"] + (0 if more else 1)}
            yield Chunk("list_member", rows, checkpoint=checkpoint, refs=[f"list {list_id} lead {m.get('id')}" for m in page.records],
                        phase=f"Static list “{name}”")
        following = self._next_stage(checkpoint)
        yield Chunk(None, checkpoint=following, progress=self._progress(following))

    def _programs_stage(self, checkpoint):
        if "programs" not in checkpoint:
            programs = [[p["id"], p.get("name") or f"Program {p['id']}"] for p in self.client.get_programs()]
            checkpoint = {**checkpoint, "programs": programs, "index": 0, "token": None}
            yield Chunk(None, checkpoint=checkpoint, phase=f"Programs: {len(programs)} found")
        while checkpoint["index"] < len(checkpoint["programs"]):
            program_id, name = checkpoint["programs"][checkpoint["index"]]
            page = self.client.get_program_members(program_id, PROGRAM_MEMBER_FIELDS, checkpoint["token"])
            rows = []
            for member in page.records:
                row = {
                    "campaign.external_id": self._external_id("program", program_id),
                    "campaign_name": name,
                    "identity.marketo_lead_id": _value(member.get("leadId")),
                }
                for source, target in PROGRAM_MEMBER_VALUES.items():
                    if _value(member.get(source)) is not None:
                        row[target] = member[source]
                rows.append(row)
            more = page.more and page.next_token
            checkpoint = {**checkpoint, "token": page.next_token if more else None, "index": checkpoint["index"] + (0 if more else 1)}
            yield Chunk("campaign_member", rows, checkpoint=checkpoint,
                        refs=[f"program {program_id} lead {m.get('leadId')}" for m in page.records], phase=f"Program “{name}”")
        following = self._next_stage(checkpoint)
        yield Chunk(None, checkpoint=following, progress=self._progress(following))

    # ------------------------------------------------------------------ incremental

    def _activity_groups(self) -> list[list[int]]:
        return list(_chunks(self.activity_type_ids, ACTIVITY_GROUP_SIZE))

    def _incremental(self, run):
        cursor = dict(self.connection.cursor)
        groups = self._activity_groups()
        group_keys = [",".join(map(str, group)) for group in groups]
        missing = [key for key in ("lead_changes", "deleted") if not cursor.get(key)]
        activities = dict(cursor.get("activities") or {})
        missing_groups = [key for key in group_keys if not activities.get(key)]
        if missing or missing_groups:
            # First sync (or new activity types): start from when the connection was made; the backfill covers before.
            token = self.client.get_paging_token(self.connection.created_at)
            cursor.update({key: token for key in missing})
            activities.update({key: token for key in missing_groups})
            cursor["activities"] = activities
            yield Chunk(None, checkpoint=run.checkpoint, cursor=cursor, phase="Paging tokens created")

        phase = "Lead changes"
        while True:
            page = self.client.get_lead_changes(cursor["lead_changes"], [f for f in self.lead_fields if f not in READ_ONLY])
            lead_ids = sorted({str(change["leadId"]) for change in page.records if change.get("leadId")})
            leads = self.client.get_leads_by_filter("id", lead_ids, self.lead_fields) if lead_ids else []
            token, cursor = cursor["lead_changes"], {**cursor, "lead_changes": page.next_token or cursor["lead_changes"]}
            for chunk in self._lead_chunks(leads, run.checkpoint, phase=phase):
                if chunk.entity == "person":
                    chunk.cursor = cursor
                yield chunk
            if not _goes_on(page, token):
                break

        for group, key in zip(groups, group_keys, strict=True):
            while True:
                token = cursor["activities"][key]
                page = self.client.get_activities(token, group)
                additions = self.list_addition_rows(page.records)
                if additions:  # same position as before: re-adding a member is harmless
                    yield Chunk("list_member", additions, checkpoint=run.checkpoint, phase="Static list additions")
                rows, refs = self.activity_rows(page.records)
                cursor = {**cursor, "activities": {**cursor["activities"], key: page.next_token or token}}
                yield Chunk("event", rows, checkpoint=run.checkpoint, cursor=cursor, refs=refs, phase="Activities")
                if not _goes_on(page, token):
                    break

        while True:
            page = self.client.get_deleted_leads(cursor["deleted"])
            forget = [(IdentityNamespace.MARKETO_LEAD_ID.value, str(r["leadId"])) for r in page.records if r.get("leadId")]
            token, cursor = cursor["deleted"], {**cursor, "deleted": page.next_token or cursor["deleted"]}
            yield Chunk("person", checkpoint=run.checkpoint, cursor=cursor, forget=forget, phase="Deleted leads")
            if not _goes_on(page, token):
                break
