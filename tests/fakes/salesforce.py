"""A stateful, in-process fake Salesforce org speaking the REST API's shapes.

It holds records of the objects the Salesforce source reads (with Id, SystemModstamp, IsDeleted),
answers a small SOQL subset (``SELECT f, … FROM Obj [WHERE f op v [AND …]] [ORDER BY f]``) through
``query`` / ``queryAll`` with ``nextRecordsUrl`` paging, ``getDeleted``, Bulk API 2.0 query jobs
(UploadComplete → InProgress → JobComplete, or Failed; CSV results paged by ``Sforce-Locator``),
OAuth token issuance (client credentials and JWT bearer) with revocable tokens, error injection
(REQUEST_LIMIT_EXCEEDED, 5xx…) and a request log. Errors are Salesforce's JSON list
``[{"message", "errorCode"}]`` with its HTTP statuses.
"""

import base64
import csv
import datetime as dt
import io
import itertools
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

API_PREFIX = "/services/data/v62.0"
DELETED_LOG_DAYS = 15

FIELDS = {
    "Account": ["Name", "Website", "Industry", "NumberOfEmployees", "AnnualRevenue", "BillingCountry", "BillingState", "Sic", "ParentId"],
    "Contact": ["FirstName", "LastName", "Email", "Title", "Department", "Phone", "MailingCountry", "MailingCity", "LeadSource", "AccountId", "HasOptedOutOfEmail"],
    "Lead": ["FirstName", "LastName", "Email", "Title", "Company", "Website", "Phone", "Country", "City", "LeadSource", "Status", "HasOptedOutOfEmail", "IsConverted", "ConvertedContactId"],
    "Opportunity": ["Name", "StageName", "Amount", "CloseDate", "IsClosed", "IsWon", "AccountId"],
    "OpportunityContactRole": ["OpportunityId", "ContactId", "Role", "IsPrimary"],
    "Campaign": ["Name", "Type", "Status", "IsActive"],
    "CampaignMember": ["CampaignId", "ContactId", "LeadId", "Status", "HasResponded", "CreatedDate"],
}
KEY_PREFIX = {
    "Account": "001", "Contact": "003", "Lead": "00Q", "Opportunity": "006",
    "OpportunityContactRole": "00K", "Campaign": "701", "CampaignMember": "00v",
}
SYSTEM_FIELDS = ["Id", "SystemModstamp", "IsDeleted"]
SOQL_RE = re.compile(
    r"^\s*SELECT\s+(?P<fields>.+?)\s+FROM\s+(?P<object>\w+)"
    r"(?:\s+WHERE\s+(?P<where>.+?))?(?:\s+ORDER\s+BY\s+(?P<order>\w+)(?:\s+ASC)?)?\s*$",
    re.IGNORECASE | re.DOTALL,
)
CONDITION_RE = re.compile(r"^\s*(\w+)\s*(>=|<=|!=|=|>|<)\s*(.+?)\s*$")
OPERATORS = {
    "=": lambda a, b: a == b, "!=": lambda a, b: a != b, ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b, "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
}


class SoqlError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


def sf_datetime(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def parse_sf_datetime(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("+0000", "+00:00"))


def _literal(text: str):
    if text.startswith("'") and text.endswith("'"):
        return text[1:-1]
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    if re.match(r"^\d{4}-\d{2}-\d{2}T", text):
        return parse_sf_datetime(text)
    try:
        return float(text)
    except ValueError:
        raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{text}'") from None


class FakeSalesforce:
    def __init__(self, *, page_size=2000, client_id="consumer-key", client_secret="consumer-secret", jwt_public_key=None):
        self.page_size = page_size
        self.client_id = client_id
        self.client_secret = client_secret
        self.jwt_public_key = jwt_public_key  # a cryptography RSA public key, for the JWT bearer flow
        self.now = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
        self.records = {name: {} for name in FIELDS}
        self.deleted_log = []  # (object, id, deleted at)
        self.tokens = set()
        self.token_requests = []  # the form of every token request
        self.requests = []  # (method, path, query dict)
        self.injections = []  # [path fragment, status, code, message, times left]
        self.bulk_jobs = {}
        self.failing_bulk_objects = {}  # object -> error message
        self.bulk_polls_to_complete = 2
        self.api_usage, self.api_limit = 0, 15000  # daily API requests, reported in Sforce-Limit-Info
        self._query_results = {}
        self._ids = itertools.count(1)
        self._lock = threading.RLock()
        self._server = None

    # ------------------------------------------------------------------- state helpers
    def tick(self, seconds=1):
        self.now += dt.timedelta(seconds=seconds)

    def add(self, sobject, **fields) -> str:
        with self._lock:
            unknown = set(fields) - set(FIELDS[sobject])
            assert not unknown, f"{sobject} has no fields {unknown}"
            self.tick()
            record_id = f"{KEY_PREFIX[sobject]}{next(self._ids):012d}AAA"
            record = {field: None for field in FIELDS[sobject]}
            record.update(fields, Id=record_id, IsDeleted=False, SystemModstamp=self.now)
            self.records[sobject][record_id] = record
            return record_id

    def update(self, sobject, record_id, **fields):
        with self._lock:
            self.tick()
            self.records[sobject][record_id].update(fields, SystemModstamp=self.now)

    def delete(self, sobject, record_id, *, hard=False):
        """Soft delete (recycle bin: queryAll still returns it) or hard delete (gone; getDeleted only)."""
        with self._lock:
            self.tick()
            if hard:
                self.records[sobject].pop(record_id)
            else:
                self.records[sobject][record_id].update(IsDeleted=True, SystemModstamp=self.now)
            self.deleted_log.append((sobject, record_id, self.now))

    def expire_tokens(self):
        self.tokens.clear()

    def inject(self, path_fragment, *, status, code, message="injected", times=1):
        """The next ``times`` calls whose path contains ``path_fragment`` fail with this error."""
        self.injections.append([path_fragment, status, code, message, times])

    def calls(self, fragment):
        return [r for r in self.requests if fragment in r[1]]

    # ------------------------------------------------------------------------- server
    @property
    def url(self):
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self):
        fake = self

        class Handler(_Handler):
            server_fake = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        self._server.shutdown()
        self._server.server_close()

    # ------------------------------------------------------------------------ routing
    def handle(self, method, path, query, headers, body):
        with self._lock:
            self.requests.append((method, path, query))
            for injection in self.injections:
                if injection[0] in path and injection[4] > 0:
                    injection[4] -= 1
                    return injection[1], {"Content-Type": "application/json"}, [{"message": injection[3], "errorCode": injection[2]}]
            if path == "/services/oauth2/token" and method == "POST":
                return self._token(parse_qs(body.decode()))
            auth = headers.get("Authorization", "")
            if not auth.startswith("Bearer ") or auth[7:] not in self.tokens:
                return 401, {}, [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
            if not path.startswith(API_PREFIX):
                return 404, {}, [{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}]
            route = path[len(API_PREFIX):]
            self.api_usage += 1
            usage = {"Sforce-Limit-Info": f"api-usage={self.api_usage}/{self.api_limit}"}
            try:
                status, headers, payload = self._route(method, route, query, body)
            except SoqlError as error:
                status, headers, payload = 400, {}, [{"message": str(error), "errorCode": error.code}]
            return status, {**usage, **headers}, payload

    def _route(self, method, route, query, body):
        if route in ("/query/", "/query", "/queryAll/", "/queryAll") and method == "GET":
            return self._query(query["q"][0], include_deleted=route.startswith("/queryAll"))
        if match := re.fullmatch(r"/query(All)?/([\w]+)-(\d+)", route):
            return self._query_more(match.group(2), int(match.group(3)))
        if match := re.fullmatch(r"/sobjects/(\w+)/deleted/?", route):
            return self._get_deleted(match.group(1), query)
        if route.rstrip("/") == "/limits":
            return 200, {}, {"DailyApiRequests": {"Max": self.api_limit, "Remaining": self.api_limit - self.api_usage}}
        if route == "/jobs/query" and method == "POST":
            return self._create_job(json.loads(body))
        if match := re.fullmatch(r"/jobs/query/(\w+)", route):
            return self._job_status(match.group(1), method, body)
        if match := re.fullmatch(r"/jobs/query/(\w+)/results", route):
            return self._job_results(match.group(1), query)
        return 404, {}, [{"message": f"Could not find a match for URL {route}", "errorCode": "NOT_FOUND"}]

    # -------------------------------------------------------------------------- OAuth
    def _token(self, form):
        self.token_requests.append(form)
        grant = form.get("grant_type", [""])[0]
        if grant == "client_credentials":
            ok = form.get("client_id", [""])[0] == self.client_id and form.get("client_secret", [""])[0] == self.client_secret
        elif grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            ok = self._jwt_ok(form.get("assertion", [""])[0])
        else:
            return 400, {}, {"error": "unsupported_grant_type", "error_description": "grant type not supported"}
        if not ok:
            return 400, {}, {"error": "invalid_client", "error_description": "invalid client credentials"}
        token = f"00Dfake!{next(self._ids)}"
        self.tokens.add(token)
        return 200, {}, {
            "access_token": token, "instance_url": self.url, "id": f"{self.url}/id/00Dfake/005fake",
            "token_type": "Bearer", "issued_at": str(int(self.now.timestamp() * 1000)), "signature": "fake",
        }

    def _jwt_ok(self, assertion):
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        try:
            header, payload, signature = assertion.split(".")
            claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            self.jwt_public_key.verify(
                base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)),
                f"{header}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256(),
            )
        except (ValueError, InvalidSignature, AttributeError):
            return False
        return claims.get("iss") == self.client_id and bool(claims.get("sub"))

    # --------------------------------------------------------------------------- SOQL
    def _select(self, soql, include_deleted):
        match = SOQL_RE.match(soql)
        if not match:
            raise SoqlError("MALFORMED_QUERY", f"unexpected query: {soql[:100]}")
        sobject = match.group("object")
        if sobject not in FIELDS:
            raise SoqlError("INVALID_TYPE", f"sObject type '{sobject}' is not supported.")
        fields = [f.strip() for f in match.group("fields").split(",")]
        known = set(FIELDS[sobject]) | set(SYSTEM_FIELDS)
        for name in fields + ([match.group("order")] if match.group("order") else []):
            if name not in known:
                raise SoqlError("INVALID_FIELD", f"No such column '{name}' on entity '{sobject}'.")
        conditions = []
        if match.group("where"):
            for part in re.split(r"\s+AND\s+", match.group("where"), flags=re.IGNORECASE):
                condition = CONDITION_RE.match(part)
                if not condition or condition.group(1) not in known:
                    raise SoqlError("MALFORMED_QUERY", f"can't read condition '{part}'")
                conditions.append((condition.group(1), OPERATORS[condition.group(2)], _literal(condition.group(3))))
        rows = [
            r for r in self.records[sobject].values()
            if (include_deleted or not r["IsDeleted"]) and all(r[f] is not None and op(r[f], v) for f, op, v in conditions)
        ]
        rows.sort(key=lambda r: (r[match.group("order")], r["Id"]) if match.group("order") else r["Id"])
        return sobject, fields, [{f: r[f] for f in fields} for r in rows]

    @staticmethod
    def _json_value(value):
        return sf_datetime(value) if isinstance(value, dt.datetime) else value

    def _page(self, sobject, locator, rows, offset):
        chunk = rows[offset : offset + self.page_size]
        done = offset + self.page_size >= len(rows)
        body = {
            "totalSize": len(rows),
            "done": done,
            "records": [
                {"attributes": {"type": sobject, "url": f"{API_PREFIX}/sobjects/{sobject}/{r.get('Id', '')}"},
                 **{k: self._json_value(v) for k, v in r.items()}}
                for r in chunk
            ],
        }
        if not done:
            body["nextRecordsUrl"] = f"{API_PREFIX}/query/{locator}-{offset + self.page_size}"
        return 200, {}, body

    def _query(self, soql, include_deleted):
        sobject, _, rows = self._select(soql, include_deleted)
        locator = f"01gFAKE{next(self._ids):08d}"
        self._query_results[locator] = (sobject, rows)
        return self._page(sobject, locator, rows, 0)

    def _query_more(self, locator, offset):
        if locator not in self._query_results:
            return 400, {}, [{"message": "invalid query locator", "errorCode": "INVALID_QUERY_LOCATOR"}]
        sobject, rows = self._query_results[locator]
        return self._page(sobject, locator, rows, offset)

    def _get_deleted(self, sobject, query):
        if sobject not in FIELDS:
            return 404, {}, [{"message": f"The requested resource does not exist: {sobject}", "errorCode": "NOT_FOUND"}]
        start, end = parse_sf_datetime(query["start"][0]), parse_sf_datetime(query["end"][0])
        earliest = self.now - dt.timedelta(days=DELETED_LOG_DAYS)
        if start < earliest:
            return 400, {}, [{"message": "startDate is before earliestDateAvailable", "errorCode": "INVALID_REPLICATION_DATE"}]
        if end <= start:
            return 400, {}, [{"message": "endDate must be after startDate", "errorCode": "INVALID_REPLICATION_DATE"}]
        latest = min(end, self.now)
        deleted = [
            {"id": record_id, "deletedDate": sf_datetime(at)}
            for name, record_id, at in self.deleted_log
            if name == sobject and start <= at <= latest
        ]
        return 200, {}, {"deletedRecords": deleted, "earliestDateAvailable": sf_datetime(earliest), "latestDateCovered": sf_datetime(latest)}

    # ------------------------------------------------------------------------ Bulk 2.0
    def _create_job(self, body):
        if body.get("operation") not in ("query", "queryAll"):
            return 400, {}, [{"message": "operation must be query or queryAll", "errorCode": "INVALIDJOB"}]
        job_id = f"750FAKE{next(self._ids):08d}"
        sobject, fields, rows = self._select(body["query"], body["operation"] == "queryAll")
        self.bulk_jobs[job_id] = {
            "id": job_id, "operation": body["operation"], "object": sobject, "state": "UploadComplete",
            "contentType": "CSV", "apiVersion": 62.0, "lineEnding": "LF", "columnDelimiter": "COMMA",
            "polls": 0, "fields": fields, "rows": rows,
        }
        return 200, {}, self._job_view(job_id)

    def _job_view(self, job_id):
        return {k: v for k, v in self.bulk_jobs[job_id].items() if k not in ("polls", "fields", "rows")}

    def _job_status(self, job_id, method, body):
        job = self.bulk_jobs.get(job_id)
        if job is None:
            return 404, {}, [{"message": f"Job {job_id} not found", "errorCode": "NOT_FOUND"}]
        if method == "PATCH":
            job["state"] = json.loads(body)["state"]
        elif job["state"] in ("UploadComplete", "InProgress"):
            job["polls"] += 1
            job["state"] = "InProgress"
            if job["polls"] >= self.bulk_polls_to_complete:
                if job["object"] in self.failing_bulk_objects:
                    job["state"] = "Failed"
                    job["errorMessage"] = self.failing_bulk_objects[job["object"]]
                else:
                    job["state"] = "JobComplete"
                    job["numberRecordsProcessed"] = len(job["rows"])
        return 200, {}, self._job_view(job_id)

    def _job_results(self, job_id, query):
        job = self.bulk_jobs.get(job_id)
        if job is None:
            return 404, {}, [{"message": f"Job {job_id} not found", "errorCode": "NOT_FOUND"}]
        if job["state"] != "JobComplete":
            return 400, {}, [{"message": f"Job {job_id} is {job['state']}", "errorCode": "INVALIDJOBSTATE"}]
        offset = int(query.get("locator", ["0"])[0] or 0)
        limit = int(query.get("maxRecords", [str(self.page_size)])[0])
        chunk = job["rows"][offset : offset + limit]
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(job["fields"])
        for row in chunk:
            writer.writerow(["" if row[f] is None else _csv_value(row[f]) for f in job["fields"]])
        more = offset + limit < len(job["rows"])
        headers = {"Content-Type": "text/csv", "Sforce-NumberOfRecords": str(len(chunk)), "Sforce-Locator": str(offset + limit) if more else "null"}
        return 200, headers, out.getvalue().encode()


def _csv_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return sf_datetime(value)
    return value


class _Handler(BaseHTTPRequestHandler):
    server_fake: FakeSalesforce

    def log_message(self, *args):
        pass

    def _serve(self, method):
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        status, headers, payload = self.server_fake.handle(method, parts.path, parse_qs(parts.query), self.headers, body)
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        headers = {"Content-Type": "application/json;charset=UTF-8", **headers}
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self._serve("GET")

    def do_POST(self):
        self._serve("POST")

    def do_PATCH(self):
        self._serve("PATCH")
