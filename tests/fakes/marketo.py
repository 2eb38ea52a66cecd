"""A stateful fake Marketo Engage server for tests (HTTP on 127.0.0.1, random port).

It follows the published REST API (swagger-mapi / swagger-asset / swagger-identity): the identity
token endpoint, leads (get by filter incl. POST ``?_method=GET``, sync, describe), static lists and
their members, paging tokens, lead changes, activities, deleted leads, activity types, programs
(asset API) and program members, and bulk export of leads and activities. Answers use Marketo's
envelope (HTTP 200, ``success``, ``errors[{code, message}]``, ``nextPageToken``/``moreResult``).

Limits are real: 100 calls per 20 s (606), 10 calls in flight (615), the daily quota (607),
≤300 records per call, ≤31-day bulk export windows, 2 export jobs processing and 10 queued.
Knobs inject faults: ``fail_next`` (a Marketo code or an HTTP status), ``quota_after``,
``expire_tokens``, ``latency`` (seconds every call takes), ``gate`` (a ``threading.Event``
admitted calls wait for, to hold calls in flight), ``fail_next_export``, ``cut_next_download``; ``rate_limit``,
``rate_window``, ``max_concurrent``, ``daily_quota`` and ``token_ttl`` can be lowered. Every request is recorded in
``requests`` (see ``calls``) so a test can assert what the client did, e.g.
``fake.lead_syncs() == []`` (no lead was ever created or updated).

Usage::

    fake = FakeMarketo().start()
    lead_id = fake.add_lead(email="ada@example.com", firstName="Ada")
    ...
    fake.stop()
"""

import base64
import csv
import hashlib
import io
import json
import re
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

MAX_BATCH = 300
EXPORT_MAX_DAYS = 31
EXPORT_MAX_PROCESSING = 2
EXPORT_MAX_QUEUED = 10

# Activity type ids as Marketo numbers them.
NEW_LEAD, CHANGE_DATA_VALUE, DELETE_LEAD = 12, 13, 37
ACTIVITY_TYPES = [
    (1, "Visit Webpage", "Webpage ID", "integer", [("Query Parameters", "string"), ("Client IP Address", "string")]),
    (2, "Fill Out Form", "Webform ID", "integer", [("Form Fields", "text"), ("Webpage ID", "integer")]),
    (6, "Send Email", "Mailing ID", "integer", [("Campaign Run ID", "integer")]),
    (7, "Email Delivered", "Mailing ID", "integer", [("Campaign Run ID", "integer")]),
    (10, "Open Email", "Mailing ID", "integer", [("Device", "string")]),
    (11, "Click Email", "Mailing ID", "integer", [("Link", "string")]),
    (NEW_LEAD, "New Lead", "Lead ID", "integer", [("Source Type", "string")]),
    (CHANGE_DATA_VALUE, "Change Data Value", "Attribute Name", "string",
     [("New Value", "string"), ("Old Value", "string"), ("Reason", "string")]),
    (24, "Add to List", "List ID", "integer", [("Source", "string")]),
    (25, "Remove from List", "List ID", "integer", [("Source", "string")]),
    (DELETE_LEAD, "Delete Lead", "Lead ID", "integer", [("Merged", "boolean")]),
    (104, "Change Status in Progression", "Program ID", "integer",
     [("New Status", "string"), ("Old Status", "string")]),
]
LEAD_FIELDS = {  # name -> Marketo data type; seeding an unknown field adds it (a custom field)
    "id": "integer", "email": "email", "firstName": "string", "lastName": "string", "company": "string",
    "title": "string", "phone": "phone", "city": "string", "country": "string", "industry": "string",
    "leadSource": "string", "leadStatus": "string", "unsubscribed": "boolean", "sfdcAccountId": "string",
    "sfdcContactId": "string", "sfdcLeadId": "string", "createdAt": "datetime", "updatedAt": "datetime",
}
READ_ONLY_FIELDS = {"id", "createdAt", "updatedAt"}
DEFAULT_LEAD_FIELDS = ["id", "email", "firstName", "lastName", "updatedAt", "createdAt"]


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


class ApiError(Exception):
    """A Marketo error answer (HTTP 200, success false)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = str(code), message


def encode_token(*parts) -> str:
    return base64.b32encode(json.dumps(parts).encode()).decode().rstrip("=")


def decode_token(token: str) -> list:
    try:
        return json.loads(base64.b32decode(token + "=" * (-len(token) % 8)))
    except ValueError as exc:
        raise ApiError("1003", f"Invalid paging token '{token}'") from exc


@dataclass
class FakeRequest:
    method: str  # the operation's method: POST ?_method=GET is recorded as GET (see ``http_method``)
    path: str
    query: dict[str, list[str]]
    form: dict[str, list[str]]
    json: object
    http_method: str
    headers: dict[str, str] = field(default_factory=dict)
    # What the fake answered: HTTP status, content type and the decoded JSON body (None for files).
    status: int | None = None
    content_type: str | None = None
    response: object = None

    @property
    def params(self) -> dict[str, list[str]]:
        """Query and form parameters together, without the ``_method`` override."""
        merged = {**self.query, **self.form}
        merged.pop("_method", None)
        return merged


class FakeMarketo:
    def __init__(self, munchkin_id="123-ABC-456", client_id="fake-client-id", client_secret="fake-client-secret"):
        self.munchkin_id, self.client_id, self.client_secret = munchkin_id, client_id, client_secret
        self.lock = threading.RLock()
        self._server = None
        self.reset()

    # ------------------------------------------------------------------ life cycle

    def start(self) -> "FakeMarketo":
        fake = self

        class Handler(_Handler):
            pass

        Handler.fake = fake
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="fake-marketo", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def rest_base_url(self) -> str:
        return f"{self.base_url}/rest"

    @property
    def identity_base_url(self) -> str:
        return f"{self.base_url}/identity"

    def reset(self) -> None:
        """Forget all data, knobs and the request log (tokens too)."""
        with self.lock:
            self.requests: list[FakeRequest] = []
            self.leads: dict[int, dict] = {}
            self.lead_fields = dict(LEAD_FIELDS)
            self.lists: dict[int, dict] = {}
            self.programs: dict[int, dict] = {}
            self.program_members: dict[int, dict[int, dict]] = {}
            self.events: list[dict] = []  # activities, kept ordered by (activityDate, id)
            self.exports: dict[str, dict] = {}
            self.tokens: dict[str, float] = {}
            self.token_ttl = 3600
            self.rate_limit, self.rate_window, self.max_concurrent = 100, 20.0, 10
            self.daily_quota = 50_000
            self.calls_today = 0
            self.latency = 0.0
            self.gate: threading.Event | None = None
            self.export_auto_advance = True
            self._window: deque[float] = deque()
            self._in_flight = 0
            self._faults: list[dict] = []
            self._fail_next_export: str | None = None
            self._cut_downloads: list[int] = []
            self.ignore_range = False
            self._ids = {"lead": 1000, "list": 100, "program": 1000, "event": 5000}

    def _next_id(self, kind: str) -> int:
        self._ids[kind] += 1
        return self._ids[kind]

    # ------------------------------------------------------------------ knobs

    def fail_next(self, code, times: int = 1, *, path: str | None = None, message: str | None = None) -> None:
        """The next ``times`` API calls (to ``path`` if given) fail: a str is a Marketo error code
        (e.g. "606", "604", "1003"), an int an HTTP status (e.g. 503)."""
        with self.lock:
            self._faults.append({"code": code, "times": times, "path": path, "message": message})

    def quota_after(self, calls: int) -> None:
        """Answer 607 once ``calls`` more API calls have been made today."""
        with self.lock:
            self.daily_quota = self.calls_today + calls

    def expire_tokens(self) -> None:
        """Every issued token expires now: the next call answers 602."""
        with self.lock:
            self.tokens = {token: 0.0 for token in self.tokens}

    def fail_next_export(self, message: str = "Export failed: internal error") -> None:
        """The next export job created fails instead of completing."""
        with self.lock:
            self._fail_next_export = message

    def cut_next_download(self, after_bytes: int) -> None:
        """The next export file download breaks off (connection dropped) after ``after_bytes``."""
        with self.lock:
            self._cut_downloads.append(after_bytes)

    def advance_exports(self) -> None:
        """Move every queued/processing export job one step (as time passing would)."""
        with self.lock:
            for job in list(self.exports.values()):
                self._advance(job)

    # ------------------------------------------------------------------ request log

    def in_flight(self) -> int:
        with self.lock:
            return self._in_flight

    def calls(self, method: str | None = None, path: str | None = None) -> list[FakeRequest]:
        """Recorded API requests (identity calls included), filtered by operation method and exact path."""
        with self.lock:
            return [
                r for r in self.requests
                if (method is None or r.method == method) and (path is None or r.path == path)
            ]

    def lead_syncs(self) -> list[FakeRequest]:
        """Sync Leads calls (POST /rest/v1/leads.json that is not a ``_method=GET`` lookup)."""
        return self.calls("POST", "/rest/v1/leads.json")

    # ------------------------------------------------------------------ seed helpers

    def _record_event(self, lead_id: int, type_id: int, at: float, primary: str = "", primary_id=None,
                      attributes: dict | None = None, fields: list | None = None, campaign_id=None) -> dict:
        event_id = self._next_id("event")
        event = {
            "id": event_id,
            "marketoGUID": str(event_id),
            "leadId": lead_id,
            "activityDate": iso(at),
            "activityTypeId": type_id,
            "primaryAttributeValue": str(primary),
            "attributes": [{"name": name, "value": value} for name, value in (attributes or {}).items()],
            "_at": at,
        }
        if primary_id is not None:
            event["primaryAttributeValueId"] = int(primary_id)
        if campaign_id is not None:
            event["campaignId"] = int(campaign_id)
        if fields is not None:
            event["fields"] = fields
        self.events.append(event)
        self.events.sort(key=lambda e: (e["_at"], e["id"]))
        return event

    def _check_fields(self, names) -> None:
        unknown = [name for name in names if name not in self.lead_fields]
        if unknown:
            raise ApiError("1006", f"Field '{unknown[0]}' not found")

    def _create_lead(self, values: dict, at: float) -> int:
        lead_id = self._next_id("lead")
        for name in values:
            self.lead_fields.setdefault(name, "string")
        self.leads[lead_id] = {**values, "id": lead_id, "createdAt": iso(at), "updatedAt": iso(at)}
        self._record_event(lead_id, NEW_LEAD, at, primary=str(lead_id), primary_id=lead_id,
                           attributes={"Source Type": "Web service API"})
        return lead_id

    def _update_lead(self, lead_id: int, values: dict, at: float) -> None:
        lead = self.leads[lead_id]
        for name, value in values.items():
            if name in READ_ONLY_FIELDS or lead.get(name) == value:
                continue
            self.lead_fields.setdefault(name, "string")
            old = lead.get(name)
            lead[name] = value
            change = {"id": list(self.lead_fields).index(name) + 1, "name": name,
                      "newValue": None if value is None else str(value)}
            if old is not None:
                change["oldValue"] = str(old)
            self._record_event(lead_id, CHANGE_DATA_VALUE, at, primary=name, primary_id=change["id"],
                               attributes={"New Value": change["newValue"], "Old Value": change.get("oldValue"),
                                           "Reason": "Web service API"},
                               fields=[change])
        lead["updatedAt"] = iso(at)

    def add_lead(self, email: str | None = None, *, at: datetime | None = None, **fields) -> int:
        """Create a lead (records a New Lead activity); returns its id."""
        with self.lock:
            values = {"email": email, **fields} if email is not None else fields
            return self._create_lead(values, _ts(at))

    def update_lead(self, lead_id: int, *, at: datetime | None = None, **fields) -> None:
        """Change fields of a lead (records one Change Data Value activity per changed field)."""
        with self.lock:
            self._update_lead(lead_id, fields, _ts(at))

    def delete_lead(self, lead_id: int, *, at: datetime | None = None) -> None:
        with self.lock:
            lead = self.leads.pop(lead_id)
            for members in [lst["members"] for lst in self.lists.values()]:
                if lead_id in members:
                    members.remove(lead_id)
            name = " ".join(filter(None, [lead.get("firstName"), lead.get("lastName")])) or str(lead_id)
            self._record_event(lead_id, DELETE_LEAD, _ts(at), primary=name, primary_id=lead_id,
                               attributes={"Merged": False})

    def add_activity(self, lead_id: int, activity_type_id: int, *, primary_attribute_value: str = "",
                     primary_attribute_value_id: int | None = None, attributes: dict | None = None,
                     campaign_id: int | None = None, at: datetime | None = None) -> int:
        """Record an activity of a lead; returns its id."""
        with self.lock:
            event = self._record_event(lead_id, activity_type_id, _ts(at), primary=primary_attribute_value,
                                       primary_id=primary_attribute_value_id, attributes=attributes,
                                       campaign_id=campaign_id)
            return event["id"]

    def add_list(self, name: str, *, program_name: str | None = None, description: str = "") -> int:
        with self.lock:
            list_id = self._next_id("list")
            now = iso(time.time())
            self.lists[list_id] = {"id": list_id, "name": name, "description": description,
                                   "programName": program_name or f"{name} program", "workspaceName": "Default",
                                   "createdAt": now, "updatedAt": now, "members": []}
            return list_id

    def list_members(self, list_id: int) -> list[int]:
        with self.lock:
            return list(self.lists[list_id]["members"])

    def add_to_list(self, list_id: int, lead_ids: list[int]) -> None:
        with self.lock:
            members = self.lists[list_id]["members"]
            members.extend(i for i in lead_ids if i not in members)

    def add_program(self, name: str, *, type: str = "program", channel: str = "Webinar",  # noqa: A002
                    status: str = "unlocked") -> int:
        with self.lock:
            program_id = self._next_id("program")
            now = iso(time.time())
            self.programs[program_id] = {
                "id": program_id, "name": name, "description": "", "createdAt": now, "updatedAt": now,
                "url": f"https://app-xx.marketo.com/#PG{program_id}A1", "type": type, "channel": channel,
                "folder": {"id": 1, "type": "Folder"}, "status": status, "workspace": "Default",
            }
            self.program_members[program_id] = {}
            return program_id

    def add_program_member(self, program_id: int, lead_id: int, *, status: str = "Member",
                           reached_success: bool = False, at: datetime | None = None) -> None:
        with self.lock:
            when = iso(_ts(at))
            self.program_members[program_id][lead_id] = {
                "leadId": lead_id, "programId": program_id, "reachedSuccess": reached_success,
                "acquiredBy": False, "membershipDate": when, "statusName": status, "updatedAt": when,
            }

    # ------------------------------------------------------------------ HTTP entry point

    def handle(self, request: FakeRequest):
        """Answer one request: ``(status, content_type, body, headers, cut_after)``; ``cut_after``
        (bytes) makes the server drop the connection midway. The answer is logged with the request."""
        with self.lock:
            self.requests.append(request)
        status, content_type, data = self._answer(request)
        headers, cut_after = {}, None
        if content_type == "text/csv":
            status, data, headers = self._byte_range(request, data)
            with self.lock:
                if self._cut_downloads:
                    cut_after = self._cut_downloads.pop(0)
        request.status, request.content_type = status, content_type
        request.response = json.loads(data) if content_type == "application/json" else None
        return status, content_type, data, headers, cut_after

    def _byte_range(self, request, data: bytes):
        """HTTP Range (``bytes=N-``) on export files, as the spec's file endpoints allow (unless
        ``ignore_range`` is set: then, like some proxies, the whole file comes back)."""
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", request.headers.get("Range", ""))
        if not match or self.ignore_range:
            return 200, data, {}
        start = int(match.group(1))
        end = min(int(match.group(2)) if match.group(2) else len(data) - 1, len(data) - 1)
        return 206, data[start : end + 1], {"Content-Range": f"bytes {start}-{end}/{len(data)}"}

    def _answer(self, request: FakeRequest):
        if request.path == "/identity/oauth/token":
            return self._identity(request)
        try:
            with self.lock:
                self._admit(request)
            try:
                if self.latency:
                    time.sleep(self.latency)
                if self.gate is not None:
                    self.gate.wait(timeout=10)
                with self.lock:
                    result = self._dispatch(request)
            finally:
                with self.lock:
                    self._in_flight -= 1
        except ApiError as error:
            return 200, "application/json", self._envelope(request, error=error)
        except _HttpError as error:
            return error.status, "text/html", f"<html><body>{error.status} Error</body></html>".encode()
        if isinstance(result, bytes):
            return 200, "text/csv", result
        return 200, "application/json", self._envelope(request, **result)

    def _envelope(self, request, *, result=None, error: ApiError | None = None, **extra) -> bytes:
        asset = request.path.startswith("/rest/asset/")
        body = {"requestId": f"{uuid.uuid4().hex[:4]}#{uuid.uuid4().hex[:11]}", "success": error is None,
                "errors": [], "warnings": [], "result": result if result is not None else []}
        if error is not None:
            body["errors"] = [{"code": error.code, "message": error.message}]
        if asset and not body["result"] and error is None:
            body["warnings"] = ["No assets found for the given search criteria."]
        body.update(extra)
        return json.dumps(body).encode()

    def _identity(self, request):
        params = {k: v[0] for k, v in request.params.items()}
        if (params.get("grant_type") != "client_credentials" or params.get("client_id") != self.client_id
                or params.get("client_secret") != self.client_secret):
            body = {"error": "unauthorized", "error_description": "Bad client credentials"}
            return 401, "application/json", json.dumps(body).encode()
        now = time.time()
        with self.lock:
            # Like Marketo: while a token is valid, the same token comes back with its remaining life.
            live = [(exp, tok) for tok, exp in self.tokens.items() if exp > now]
            if live:
                expires_at, token = max(live)
            else:
                token, expires_at = f"{uuid.uuid4()}:ab", now + self.token_ttl
                self.tokens[token] = expires_at
        body = {"access_token": token, "token_type": "bearer", "expires_in": max(0, int(expires_at - now)),
                "scope": "quorum-api@example.com"}
        return 200, "application/json", json.dumps(body).encode()

    def _admit(self, request) -> None:
        """Authentication, limits and injected faults, in Marketo's order. Takes a concurrency slot."""
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ").strip() or (request.query.get("access_token") or [""])[0]
        if not token:
            raise ApiError("600", "Access token missing")
        if token not in self.tokens:
            raise ApiError("601", "Access token invalid")
        now = time.time()
        if self.tokens[token] <= now:
            raise ApiError("602", "Access token expired")
        if self.calls_today >= self.daily_quota:
            raise ApiError("607", "Daily quota reached")
        while self._window and self._window[0] <= now - self.rate_window:
            self._window.popleft()
        if len(self._window) >= self.rate_limit:
            raise ApiError("606", f"Max rate limit '{self.rate_limit}' exceeded with in '{int(self.rate_window)}' secs")
        if self._in_flight >= self.max_concurrent:
            raise ApiError("615", f"Concurrent access limit '{self.max_concurrent}' reached")
        self._window.append(now)
        self.calls_today += 1
        for fault in self._faults:
            if fault["path"] is None or fault["path"] == request.path:
                fault["times"] -= 1
                if fault["times"] <= 0:
                    self._faults.remove(fault)
                if isinstance(fault["code"], int):
                    raise _HttpError(fault["code"])
                raise ApiError(fault["code"], fault["message"] or _FAULT_MESSAGES.get(fault["code"], "Injected error"))
        self._in_flight += 1

    def _dispatch(self, request):
        for method, pattern, name in _ROUTES:
            match = pattern.fullmatch(request.path)
            if match and method == request.method:
                return getattr(self, name)(request, *match.groups())
        raise _HttpError(404)

    # ------------------------------------------------------------------ parameter helpers

    @staticmethod
    def _param(request, name, default=None):
        values = request.params.get(name)
        return values[0] if values else default

    @classmethod
    def _list_param(cls, request, name) -> list[str]:
        # Marketo takes comma-separated lists (and repeated parameters).
        return [v.strip() for raw in request.params.get(name, []) for v in raw.split(",") if v.strip()]

    @classmethod
    def _batch_size(cls, request) -> int:
        size = int(cls._param(request, "batchSize", MAX_BATCH))
        if not 1 <= size <= MAX_BATCH:
            raise ApiError("1003", f"Invalid batchSize '{size}', must be between 1 and {MAX_BATCH}")
        return size

    def _lead_view(self, lead: dict, fields: list[str]) -> dict:
        return {"id": lead["id"], **{name: lead.get(name) for name in fields if name != "id"}}

    def _offset_page(self, request, items: list, *, with_more: bool = True) -> dict:
        token = self._param(request, "nextPageToken")
        offset = decode_token(token)[1] if token else 0
        size = self._batch_size(request)
        page = items[offset : offset + size]
        more = offset + size < len(items)
        answer = {"result": page}
        if more:
            answer["nextPageToken"] = encode_token("offset", offset + size)
        if with_more:
            answer["moreResult"] = more
        return answer

    # ------------------------------------------------------------------ leads

    def get_leads(self, request):
        filter_type = self._param(request, "filterType")
        values = self._list_param(request, "filterValues")
        if not filter_type or not values:
            raise ApiError("1003", "filterType and filterValues are required")
        if len(values) > MAX_BATCH:
            raise ApiError("1003", f"Too many values in filterValues, max {MAX_BATCH}")
        fields = self._list_param(request, "fields") or DEFAULT_LEAD_FIELDS
        self._check_fields([filter_type, *fields])
        wanted = set(values)
        matches = [lead for lead in self.leads.values() if str(lead.get(filter_type)) in wanted]
        answer = self._offset_page(request, [self._lead_view(lead, fields) for lead in matches], with_more=False)
        return answer

    def sync_leads(self, request):
        body = request.json or {}
        records = body.get("input") or []
        action = body.get("action", "createOrUpdate")
        lookup = body.get("lookupField", "email")
        if action not in ("createOnly", "updateOnly", "createOrUpdate", "createDuplicate"):
            raise ApiError("1003", f"Invalid action '{action}'")
        if not records:
            raise ApiError("1003", "input is required")
        if len(records) > MAX_BATCH:
            raise ApiError("1003", f"Too many records in input, max {MAX_BATCH}")
        self._check_fields([lookup, *{name for record in records for name in record}])
        now, results = time.time(), []
        for record in records:
            key = record.get(lookup)
            if key in (None, ""):
                results.append({"status": "skipped", "reasons": [
                    {"code": "1003", "message": f"Value for required field '{lookup}' not specified"}]})
                continue
            existing = next((lead for lead in self.leads.values() if lead.get(lookup) == key), None)
            values = {name: value for name, value in record.items() if name not in READ_ONLY_FIELDS}
            if existing is not None and action != "createDuplicate":
                if action == "createOnly":
                    results.append({"id": existing["id"], "status": "skipped",
                                    "reasons": [{"code": "1005", "message": "Lead already exists"}]})
                else:
                    self._update_lead(existing["id"], values, now)
                    results.append({"id": existing["id"], "status": "updated"})
            elif action == "updateOnly":
                results.append({"status": "skipped", "reasons": [{"code": "1004", "message": "Lead not found"}]})
            else:
                results.append({"id": self._create_lead(values, now), "status": "created"})
        for seq, result in enumerate(results):
            result["seq"] = seq
        return {"result": results}

    def describe_leads(self, request):
        return {"result": [
            {"id": number, "displayName": name[0].upper() + name[1:], "dataType": data_type,
             **({"length": 255} if data_type in ("string", "email", "phone") else {}),
             "rest": {"name": name, "readOnly": name in READ_ONLY_FIELDS},
             "soap": {"name": name[0].upper() + name[1:], "readOnly": name in READ_ONLY_FIELDS}}
            for number, (name, data_type) in enumerate(self.lead_fields.items(), start=1)
        ]}

    # ------------------------------------------------------------------ static lists

    def _static_list(self, list_id) -> dict:
        static_list = self.lists.get(int(list_id))
        if static_list is None:
            raise ApiError("1013", f"Static list '{list_id}' not found")
        return static_list

    def get_lists(self, request):
        ids = {int(i) for i in self._list_param(request, "id")}
        names = set(self._list_param(request, "name"))
        lists = [
            {k: v for k, v in lst.items() if k != "members"}
            for lst in self.lists.values()
            if (not ids or lst["id"] in ids) and (not names or lst["name"] in names)
        ]
        return self._offset_page(request, lists, with_more=False)

    def get_list_members(self, request, list_id):
        members = self._static_list(list_id)["members"]
        fields = self._list_param(request, "fields") or DEFAULT_LEAD_FIELDS
        self._check_fields(fields)
        return self._offset_page(request, [self._lead_view(self.leads[i], fields) for i in members], with_more=False)

    def _list_operation_ids(self, request) -> list[int]:
        ids = [int(record["id"]) for record in (request.json or {}).get("input", [])]
        ids += [int(i) for i in self._list_param(request, "id")]
        if not ids:
            raise ApiError("1003", "input is required")
        if len(ids) > MAX_BATCH:
            raise ApiError("1003", f"Too many ids in input, max {MAX_BATCH}")
        return ids

    def add_list_members(self, request, list_id):
        members = self._static_list(list_id)["members"]
        results = []
        for lead_id in self._list_operation_ids(request):
            if lead_id not in self.leads:
                results.append({"id": lead_id, "status": "skipped",
                                "reasons": [{"code": "1004", "message": "Lead not found"}]})
                continue
            if lead_id not in members:
                members.append(lead_id)
                self._record_event(lead_id, 24, time.time(), primary=str(list_id), primary_id=int(list_id),
                                   attributes={"Source": "Web service API"})
            results.append({"id": lead_id, "status": "added"})
        return {"result": results}

    def remove_list_members(self, request, list_id):
        members = self._static_list(list_id)["members"]
        results = []
        for lead_id in self._list_operation_ids(request):
            if lead_id not in self.leads:
                results.append({"id": lead_id, "status": "skipped",
                                "reasons": [{"code": "1004", "message": "Lead not found"}]})
            elif lead_id not in members:
                results.append({"id": lead_id, "status": "skipped",
                                "reasons": [{"code": "1015", "message": "Lead not in list"}]})
            else:
                members.remove(lead_id)
                self._record_event(lead_id, 25, time.time(), primary=str(list_id), primary_id=int(list_id),
                                   attributes={"Source": "Web service API"})
                results.append({"id": lead_id, "status": "removed"})
        return {"result": results}

    # ------------------------------------------------------------------ activities

    def paging_token(self, request):
        since = self._param(request, "sinceDatetime")
        if not since:
            raise ApiError("1003", "sinceDatetime is required")
        try:
            ts = parse_iso(since)
        except ValueError as exc:
            raise ApiError("1003", f"Invalid sinceDatetime '{since}'") from exc
        return {"nextPageToken": encode_token("at", ts, -1)}

    def _event_page(self, request, keep) -> dict:
        """Events after the token's position that ``keep(event)`` maps to a record (or None)."""
        token = self._param(request, "nextPageToken")
        if not token:
            raise ApiError("1003", "nextPageToken is required")
        kind, *cursor = decode_token(token)
        if kind != "at":
            raise ApiError("1003", f"Invalid paging token '{token}'")
        size = self._batch_size(request)
        after = [e for e in self.events if (e["_at"], e["id"]) > tuple(cursor)]
        records, last = [], tuple(cursor)
        for event in after:
            if len(records) == size:
                break
            last = (event["_at"], event["id"])
            record = keep(event)
            if record is not None:
                records.append(record)
        more = any(keep(e) is not None for e in after if (e["_at"], e["id"]) > last)
        return {"result": records, "nextPageToken": encode_token("at", *last), "moreResult": more}

    @staticmethod
    def _public(event) -> dict:
        return {k: v for k, v in event.items() if not k.startswith("_") and k != "fields"}

    def lead_changes(self, request):
        fields = set(self._list_param(request, "fields"))
        if not fields:
            raise ApiError("1003", "fields is required")
        self._check_fields(fields)

        def keep(event):
            if event["activityTypeId"] == NEW_LEAD:
                return {**self._public(event), "fields": []}
            if event["activityTypeId"] == CHANGE_DATA_VALUE:
                changed = [f for f in event["fields"] if f["name"] in fields]
                return {**self._public(event), "fields": changed} if changed else None
            return None

        return self._event_page(request, keep)

    def activities(self, request):
        type_ids = {int(i) for i in self._list_param(request, "activityTypeIds")}
        if not type_ids:
            raise ApiError("1003", "activityTypeIds is required")
        if len(type_ids) > 10:
            raise ApiError("1003", "Too many activityTypeIds, max 10")
        return self._event_page(request, lambda e: self._public(e) if e["activityTypeId"] in type_ids else None)

    def deleted_leads(self, request):
        return self._event_page(request, lambda e: self._public(e) if e["activityTypeId"] == DELETE_LEAD else None)

    def activity_types(self, request):
        return {"result": [
            {"id": type_id, "name": name, "description": f"User {name.lower()}",
             "primaryAttribute": {"name": primary, "dataType": primary_type},
             "attributes": [{"name": attr, "dataType": data_type} for attr, data_type in attributes]}
            for type_id, name, primary, primary_type, attributes in ACTIVITY_TYPES
        ]}

    # ------------------------------------------------------------------ programs

    def get_programs(self, request):
        offset = int(self._param(request, "offset", 0))
        max_return = int(self._param(request, "maxReturn", 20))
        if not 1 <= max_return <= 200:
            raise ApiError("709", f"maxReturn must be between 1 and 200, got {max_return}")
        return {"result": list(self.programs.values())[offset : offset + max_return]}

    def get_program_members(self, request, program_id):
        if int(program_id) not in self.programs:
            raise ApiError("1013", f"Program '{program_id}' not found")
        filter_type = self._param(request, "filterType")
        if not filter_type:
            raise ApiError("1003", "filterType is required")
        members = list(self.program_members[int(program_id)].values())
        if filter_type == "updatedAt":
            start, end = self._param(request, "startAt"), self._param(request, "endAt")
            if not start or not end:
                raise ApiError("1003", "startAt and endAt are required with filterType updatedAt")
            members = [m for m in members if parse_iso(start) <= parse_iso(m["updatedAt"]) <= parse_iso(end)]
        else:
            values = set(self._list_param(request, "filterValues"))
            if not values:
                raise ApiError("1003", "filterValues is required")
            members = [m for m in members if str(m.get(filter_type)) in values]
        fields = self._list_param(request, "fields")
        required = ("leadId", "reachedSuccess", "programId", "acquiredBy", "membershipDate")
        records = [
            {"seq": seq, **{k: m[k] for k in required}, **{f: m.get(f) for f in fields if f not in required}}
            for seq, m in enumerate(members)
        ]
        return self._offset_page(request, records)

    # ------------------------------------------------------------------ bulk export

    def _job(self, entity, export_id) -> dict:
        job = self.exports.get(export_id)
        if job is None or job["entity"] != entity:
            raise ApiError("1029", f"Export job '{export_id}' not found")
        return job

    @staticmethod
    def _job_view(job) -> dict:
        return {k: v for k, v in job.items() if not k.startswith("_") and k != "entity" and v is not None}

    @staticmethod
    def _date_range(name: str, window) -> tuple[float, float]:
        if not isinstance(window, dict) or "startAt" not in window or "endAt" not in window:
            raise ApiError("1003", f"{name} filter needs startAt and endAt")
        try:
            start, end = parse_iso(window["startAt"]), parse_iso(window["endAt"])
        except (TypeError, ValueError) as exc:
            raise ApiError("1003", f"Invalid {name} date in filter") from exc
        if end < start:
            raise ApiError("1003", f"{name}.endAt is before {name}.startAt")
        if end - start > EXPORT_MAX_DAYS * 86400:
            raise ApiError("1003", f"Date range for {name} filter exceeds {EXPORT_MAX_DAYS} days")
        return start, end

    def create_export(self, request, entity):
        body = request.json or {}
        filters, fields = body.get("filter"), body.get("fields")
        if not isinstance(filters, dict) or not filters:
            raise ApiError("1003", "filter is required")
        if not fields:
            raise ApiError("1003", "fields is required")
        if entity == "leads":
            self._check_fields(fields)
            allowed = {"createdAt", "updatedAt", "staticListId", "staticListName", "smartListId", "smartListName"}
            unknown = set(filters) - allowed
            if unknown:
                raise ApiError("1003", f"Invalid filter type '{sorted(unknown)[0]}'")
        elif "createdAt" not in filters:
            raise ApiError("1003", "createdAt filter is required for activities")
        for name in ("createdAt", "updatedAt"):
            if name in filters:
                self._date_range(name, filters[name])
        export_id = str(uuid.uuid4())
        job = {"exportId": export_id, "format": body.get("format", "CSV"), "status": "Created",
               "createdAt": iso(time.time()), "queuedAt": None, "startedAt": None, "finishedAt": None,
               "numberOfRecords": None, "fileSize": None, "fileChecksum": None, "errorMsg": None,
               "entity": entity, "_fields": fields, "_filter": filters, "_fail": self._fail_next_export,
               "_file": None}
        self._fail_next_export = None
        self.exports[export_id] = job
        return {"result": [self._job_view(job)]}

    def enqueue_export(self, request, entity, export_id):
        job = self._job(entity, export_id)
        if job["status"] != "Created":
            raise ApiError("1029", f"Export job '{export_id}' is already {job['status'].lower()}")
        if sum(j["status"] == "Queued" for j in self.exports.values()) >= EXPORT_MAX_QUEUED:
            raise ApiError("1029", f"Too many jobs ({EXPORT_MAX_QUEUED}) in queue")
        job.update(status="Queued", queuedAt=iso(time.time()))
        return {"result": [self._job_view(job)]}

    def export_status(self, request, entity, export_id):
        job = self._job(entity, export_id)
        if self.export_auto_advance:
            self._advance(job)
        return {"result": [self._job_view(job)]}

    def cancel_export(self, request, entity, export_id):
        job = self._job(entity, export_id)
        if job["status"] in ("Completed", "Failed"):
            raise ApiError("1029", f"Export job '{export_id}' is already {job['status'].lower()}")
        job["status"] = "Cancelled"
        return {"result": [self._job_view(job)]}

    def _advance(self, job) -> None:
        now = iso(time.time())
        if job["status"] == "Processing":
            if job["_fail"]:
                job.update(status="Failed", finishedAt=now, errorMsg=job["_fail"])
                return
            data = self._export_file(job)
            job.update(status="Completed", finishedAt=now, _file=data, fileSize=len(data),
                       fileChecksum=hashlib.sha256(data).hexdigest(), numberOfRecords=job["_rows"])
        elif job["status"] == "Queued":
            processing = sum(j["status"] == "Processing" for j in self.exports.values())
            queued_before = [j for j in self.exports.values() if j["status"] == "Queued"]
            if processing < EXPORT_MAX_PROCESSING and queued_before[0] is job:
                job.update(status="Processing", startedAt=now)

    def _export_file(self, job) -> bytes:
        filters = job["_filter"]
        if job["entity"] == "leads":
            fields = job["_fields"]
            rows = list(self.leads.values())
            for name in ("createdAt", "updatedAt"):
                if name in filters:
                    start, end = self._date_range(name, filters[name])
                    rows = [r for r in rows if start <= parse_iso(r[name]) <= end]
            if "staticListId" in filters:
                members = self.lists.get(int(filters["staticListId"]), {}).get("members", [])
                rows = [r for r in rows if r["id"] in members]
            if "staticListName" in filters:
                members = [i for lst in self.lists.values() if lst["name"] == filters["staticListName"]
                           for i in lst["members"]]
                rows = [r for r in rows if r["id"] in members]
            records = [{name: row.get(name) for name in fields} for row in rows]
        else:
            fields = job["_fields"]
            start, end = self._date_range("createdAt", filters["createdAt"])
            type_ids = set(filters.get("activityTypeIds") or [])
            records = [
                {**self._public(e), "attributes": json.dumps({a["name"]: a["value"] for a in e["attributes"]})}
                for e in self.events
                if start <= e["_at"] <= end and (not type_ids or e["activityTypeId"] in type_ids)
            ]
            records = [{name: record.get(name) for name in fields} for record in records]
        job["_rows"] = len(records)
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: ("" if v is None else v) for k, v in r.items()} for r in records)
        return out.getvalue().encode()

    def export_file(self, request, entity, export_id):
        job = self._job(entity, export_id)
        if job["status"] != "Completed":
            raise ApiError("1029", f"Export job '{export_id}' is not completed (status {job['status']})")
        return job["_file"]


def _ts(at: datetime | None) -> float:
    return time.time() if at is None else at.timestamp()


_FAULT_MESSAGES = {
    "502": "Bad Gateway", "601": "Access token invalid", "602": "Access token expired",
    "604": "Request timed out", "606": "Max rate limit '100' exceeded with in '20' secs",
    "607": "Daily quota reached", "608": "API Temporarily Unavailable",
    "615": "Concurrent access limit reached", "713": "Transient Error",
}

_ROUTES = [(method, re.compile(pattern), name) for method, pattern, name in [
    ("GET", r"/rest/v1/leads\.json", "get_leads"),
    ("POST", r"/rest/v1/leads\.json", "sync_leads"),
    ("GET", r"/rest/v1/leads/describe\.json", "describe_leads"),
    ("GET", r"/rest/v1/lists\.json", "get_lists"),
    ("GET", r"/rest/v1/lists/(\d+)/leads\.json", "get_list_members"),
    ("POST", r"/rest/v1/lists/(\d+)/leads\.json", "add_list_members"),
    ("DELETE", r"/rest/v1/lists/(\d+)/leads\.json", "remove_list_members"),
    ("GET", r"/rest/v1/activities/pagingtoken\.json", "paging_token"),
    ("GET", r"/rest/v1/activities/leadchanges\.json", "lead_changes"),
    ("GET", r"/rest/v1/activities\.json", "activities"),
    ("GET", r"/rest/v1/activities/deletedleads\.json", "deleted_leads"),
    ("GET", r"/rest/v1/activities/types\.json", "activity_types"),
    ("GET", r"/rest/asset/v1/programs\.json", "get_programs"),
    ("GET", r"/rest/v1/programs/(\d+)/members\.json", "get_program_members"),
    ("POST", r"/bulk/v1/(leads|activities)/export/create\.json", "create_export"),
    ("POST", r"/bulk/v1/(leads|activities)/export/([\w-]+)/enqueue\.json", "enqueue_export"),
    ("GET", r"/bulk/v1/(leads|activities)/export/([\w-]+)/status\.json", "export_status"),
    ("POST", r"/bulk/v1/(leads|activities)/export/([\w-]+)/cancel\.json", "cancel_export"),
    ("GET", r"/bulk/v1/(leads|activities)/export/([\w-]+)/file\.json", "export_file"),
]]


class _HttpError(Exception):
    def __init__(self, status: int):
        super().__init__(status)
        self.status = status


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake: FakeMarketo

    def _serve(self):
        url = urlsplit(self.path)
        query = parse_qs(url.query, keep_blank_values=True)
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        content_type = self.headers.get("Content-Type", "")
        form, body = {}, None
        if raw and "application/x-www-form-urlencoded" in content_type:
            form = parse_qs(raw.decode(), keep_blank_values=True)
        elif raw:
            try:
                body = json.loads(raw)
            except ValueError:
                self._reply(400, "text/plain", b"Malformed JSON body")
                return
        method = self.command
        if method == "POST" and query.get("_method") == ["GET"]:
            method = "GET"
        request = FakeRequest(method=method, path=url.path, query=query, form=form, json=body,
                              http_method=self.command, headers=dict(self.headers))
        self._reply(*self.fake.handle(request))

    def _reply(self, status, content_type, data: bytes, headers=None, cut_after=None):
        self.send_response(status)
        self.send_header("Content-Type", f"{content_type}; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        view = memoryview(data)[:cut_after]
        for start in range(0, len(view), 64 * 1024):  # files go out in chunks, as a real download
            self.wfile.write(view[start : start + 64 * 1024])
        if cut_after is not None:
            self.wfile.flush()
            self.close_connection = True

    do_GET = do_POST = do_DELETE = _serve

    def log_message(self, format, *args):  # noqa: A002
        """Quiet: the request log is ``FakeMarketo.requests``."""
