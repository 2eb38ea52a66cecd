"""A Salesforce REST client for source syncs: OAuth, SOQL query/queryAll, Bulk API 2.0 query
jobs, getDeleted.

Error handling follows the REST API's shapes: errors come as a JSON list
``[{"message": …, "errorCode": …}]``. ``INVALID_SESSION_ID`` (expired or revoked token) fetches a
new token once and repeats the call; ``REQUEST_LIMIT_EXCEEDED`` (the org's rolling 24-hour API
limit) raises ``SalesforceLimitExceeded`` at once: retrying only burns more of the limit, so
callers pause and resume later, as with Marketo's daily quota. 5xx answers and connection errors
are retried with exponential backoff through an injectable ``sleep``.
"""

import base64
import codecs
import csv
import datetime as dt
import json
import re
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from connectors.choices import SalesforceAuthFlow

API_VERSION = "62.0"
# Bulk 2.0 job states: UploadComplete and InProgress are on the way, the other three are final.
BULK_DONE = "JobComplete"
BULK_FAILED_STATES = ("Failed", "Aborted")
JWT_LIFETIME_SECONDS = 180
RETRY_STATUSES = (500, 502, 503, 504)
USAGE_RE = re.compile(r"api-usage=(\d+)/(\d+)")


class SalesforceError(Exception):
    """Salesforce refused a call. ``error_code`` is Salesforce's (e.g. MALFORMED_QUERY)."""

    def __init__(self, error_code: str, message: str, status: int | None = None):
        super().__init__(f"{error_code}: {message}")
        self.error_code = error_code
        self.message = message
        self.status = status


class SalesforceAuthError(SalesforceError):
    """The org refused the credentials (token endpoint error)."""


class SalesforceLimitExceeded(SalesforceError):
    """REQUEST_LIMIT_EXCEEDED: the org's API limit is used up; stop and resume later."""


class SalesforceBulkJobFailed(SalesforceError):
    """A Bulk API 2.0 query job ended Failed or Aborted."""

    def __init__(self, job_id: str, state: str, message: str):
        super().__init__(f"BULK_JOB_{state.upper()}", f"Bulk query job {job_id} {state.lower()}: {message}")
        self.job_id = job_id
        self.state = state


@dataclass
class QueryPage:
    records: list
    next_url: str | None  # nextRecordsUrl, None on the last page
    total_size: int


@dataclass
class BulkPage:
    rows: object  # iterator of dicts (CSV rows), read lazily from the response
    next_locator: str | None  # None when this is the last page


def soql_datetime(value: dt.datetime) -> str:
    """A SOQL / REST datetime literal, in UTC (naive values are taken as UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def jwt_assertion(*, client_id: str, username: str, audience: str, private_key_pem: str, now: float) -> str:
    """An RS256-signed JWT for the OAuth 2.0 JWT bearer flow (signed with ``cryptography``)."""
    header = _b64url(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
    claims = {"iss": client_id, "sub": username, "aud": audience, "exp": int(now) + JWT_LIFETIME_SECONDS}
    payload = _b64url(json.dumps(claims).encode())
    try:
        key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    except (ValueError, TypeError) as error:
        raise SalesforceAuthError("invalid_private_key", f"the private key can't be read as an unencrypted PEM key ({error})") from None
    signature = key.sign(f"{header}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{header}.{payload}.{_b64url(signature)}"


def jwt_audience(instance_url: str) -> str:
    """Sandboxes sign in at test.salesforce.com, production orgs at login.salesforce.com."""
    host = urlsplit(instance_url).hostname or ""
    return "https://test.salesforce.com" if ".sandbox." in host else "https://login.salesforce.com"


class SalesforceClient:
    def __init__(
        self,
        *,
        instance_url: str,
        client_id: str,
        client_secret: str = "",
        auth_flow: str = SalesforceAuthFlow.CLIENT_CREDENTIALS,
        username: str = "",
        private_key: str = "",
        api_version: str = API_VERSION,
        session: requests.Session | None = None,
        sleep=time.sleep,
        clock=time.time,
        max_attempts: int = 5,
        backoff_seconds: float = 1.0,
        timeout: float = 60,
        usage_ceiling: float | None = None,
    ):
        self.instance_url = instance_url.rstrip("/")
        self.client_id = client_id
        self.client_secret = client_secret
        self.auth_flow = auth_flow
        self.username = username
        self.private_key = private_key
        self.api_version = api_version
        self.session = session or requests.Session()
        self.sleep = sleep
        self.clock = clock
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self.timeout = timeout
        self.usage_ceiling = usage_ceiling  # share of the daily API requests this client may use up to
        self.api_usage: tuple[int, int] | None = None  # (used, allowed) from the last answer
        self.access_token: str | None = None
        # The token response names the URL to call the API at; it may differ from the login URL.
        self.api_url = self.instance_url

    @classmethod
    def for_org(cls, org, **kwargs) -> "SalesforceClient":
        return cls(
            instance_url=org.instance_url,
            client_id=org.client_id,
            client_secret=org.client_secret or "",
            auth_flow=org.auth_flow,
            username=org.username,
            private_key=org.private_key or "",
            **kwargs,
        )

    @property
    def data_path(self) -> str:
        return f"/services/data/v{self.api_version}"

    # ------------------------------------------------------------------------------ auth
    def authenticate(self) -> str:
        if self.auth_flow == SalesforceAuthFlow.JWT_BEARER:
            assertion = jwt_assertion(
                client_id=self.client_id,
                username=self.username,
                audience=jwt_audience(self.instance_url),
                private_key_pem=self.private_key,
                now=self.clock(),
            )
            form = {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion}
        else:
            form = {
                "grant_type": "client_credentials",
                "client_id": self.client_id,
                "client_secret": self.client_secret,
            }
        response = self._send("POST", f"{self.instance_url}/services/oauth2/token", data=form)
        if response.status_code != 200:
            body = _json_or_none(response) or {}
            raise SalesforceAuthError(
                body.get("error", f"HTTP_{response.status_code}"),
                body.get("error_description", response.text[:300]),
                response.status_code,
            )
        body = response.json()
        self.access_token = body["access_token"]
        self.api_url = body.get("instance_url", self.instance_url).rstrip("/")
        return self.access_token

    # --------------------------------------------------------------------------- transport
    def _send(self, method, url, **kwargs) -> requests.Response:
        """One HTTP call with retries for 5xx answers and connection errors."""
        for attempt in range(1, self.max_attempts + 1):
            try:
                response = self.session.request(method, url, timeout=self.timeout, **kwargs)
            except (requests.ConnectionError, requests.Timeout):
                if attempt == self.max_attempts:
                    raise
            else:
                if response.status_code not in RETRY_STATUSES or attempt == self.max_attempts:
                    return response
                response.close()
            self.sleep(self.backoff_seconds * 2 ** (attempt - 1))
        raise AssertionError("unreachable")

    def request(self, method: str, path_or_url: str, *, stream=False, **kwargs) -> requests.Response:
        """An authenticated API call; ``path_or_url`` is a path such as nextRecordsUrl or a full URL."""
        self._check_usage_ceiling()
        if self.access_token is None:
            self.authenticate()
        extra_headers = kwargs.pop("headers", {})
        for renewed in (False, True):
            url = path_or_url if path_or_url.startswith("http") else f"{self.api_url}{path_or_url}"
            headers = {"Authorization": f"Bearer {self.access_token}", **extra_headers}
            response = self._send(method, url, headers=headers, stream=stream, **kwargs)
            self._note_usage(response)
            if response.status_code < 400:
                return response
            error = _error_of(response)
            if error.error_code == "INVALID_SESSION_ID" and not renewed:
                self.authenticate()
                continue
            raise error
        raise AssertionError("unreachable")

    def _note_usage(self, response) -> None:
        """Every API answer says how much of the org's daily allowance is used (Sforce-Limit-Info)."""
        match = USAGE_RE.search(response.headers.get("Sforce-Limit-Info", ""))
        if match:
            self.api_usage = (int(match.group(1)), int(match.group(2)))

    def _check_usage_ceiling(self) -> None:
        """Stop before the org's daily API requests run out: the org's other integrations share them."""
        if self.usage_ceiling is None or self.api_usage is None:
            return
        used, allowed = self.api_usage
        if allowed and used >= self.usage_ceiling * allowed:
            raise SalesforceLimitExceeded(
                "API_USAGE_CEILING",
                f"{used:,} of the org's {allowed:,} daily API requests are used; this sync stops at "
                f"{self.usage_ceiling:.0%} to leave the rest to other integrations",
            )

    # ------------------------------------------------------------------------------- REST
    def query_page(self, soql: str | None = None, *, include_deleted=False, next_url: str | None = None) -> QueryPage:
        """One page of a SOQL query (``queryAll`` with ``include_deleted``: soft-deleted rows too,
        with IsDeleted true). Pass ``next_url`` (a page's nextRecordsUrl) for the following page."""
        if next_url:
            body = self.request("GET", next_url).json()
        else:
            endpoint = "queryAll" if include_deleted else "query"
            body = self.request("GET", f"{self.data_path}/{endpoint}/", params={"q": soql}).json()
        return QueryPage(
            records=body["records"],
            next_url=None if body.get("done", True) else body.get("nextRecordsUrl"),
            total_size=body.get("totalSize", 0),
        )

    def query(self, soql: str, *, include_deleted=False):
        """Every record of a query, page after page."""
        page = self.query_page(soql, include_deleted=include_deleted)
        yield from page.records
        while page.next_url:
            page = self.query_page(next_url=page.next_url)
            yield from page.records

    def get_deleted(self, sobject: str, start, end) -> dict:
        """Ids deleted between ``start`` and ``end`` (datetimes): ``{"deletedRecords": [{"id",
        "deletedDate"}], "earliestDateAvailable", "latestDateCovered"}``. Salesforce keeps this log
        for about 15 days; callers keep windows inside that."""
        params = {"start": soql_datetime(start), "end": soql_datetime(end)}
        return self.request("GET", f"{self.data_path}/sobjects/{sobject}/deleted/", params=params).json()

    def limits(self) -> dict:
        return self.request("GET", f"{self.data_path}/limits/").json()

    def test_connection(self) -> dict:
        """Sign in and read the API limits: what the "test connection" button shows."""
        self.authenticate()
        daily = self.limits().get("DailyApiRequests", {})
        return {"ok": True, "instance_url": self.api_url, "daily_api_requests": daily}

    # ---------------------------------------------------------------------------- Bulk 2.0
    def create_bulk_query(self, soql: str, *, include_deleted=False) -> str:
        body = {
            "operation": "queryAll" if include_deleted else "query",
            "query": soql,
            "contentType": "CSV",
            "columnDelimiter": "COMMA",
            "lineEnding": "LF",
        }
        return self.request("POST", f"{self.data_path}/jobs/query", json=body).json()["id"]

    def bulk_job(self, job_id: str) -> dict:
        return self.request("GET", f"{self.data_path}/jobs/query/{job_id}").json()

    def wait_for_bulk_job(self, job_id: str, *, poll_seconds: float = 10, max_polls: int = 360) -> dict:
        """Poll until the job is JobComplete; raise SalesforceBulkJobFailed if it failed or was aborted."""
        for _ in range(max_polls):
            job = self.bulk_job(job_id)
            if job["state"] == BULK_DONE:
                return job
            if job["state"] in BULK_FAILED_STATES:
                raise SalesforceBulkJobFailed(job_id, job["state"], job.get("errorMessage") or "no reason given")
            self.sleep(poll_seconds)
        raise SalesforceBulkJobFailed(job_id, "TimedOut", f"still {job['state']} after {max_polls} polls")

    def bulk_results(self, job_id: str, *, locator: str | None = None, max_records: int = 10000) -> BulkPage:
        """One page of a finished job's CSV results, streamed: rows are parsed as they arrive, so
        memory stays constant whatever the page size. Empty CSV cells read as None."""
        params = {"maxRecords": max_records}
        if locator:
            params["locator"] = locator
        response = self.request("GET", f"{self.data_path}/jobs/query/{job_id}/results", params=params, stream=True)
        next_locator = response.headers.get("Sforce-Locator")
        if next_locator in (None, "", "null"):
            next_locator = None

        def rows():
            try:
                for row in csv.DictReader(_text_lines(response)):
                    yield {key: (value if value != "" else None) for key, value in row.items()}
            finally:
                response.close()

        return BulkPage(rows=rows(), next_locator=next_locator)

    def abort_bulk_job(self, job_id: str) -> None:
        self.request("PATCH", f"{self.data_path}/jobs/query/{job_id}", json={"state": "Aborted"})


def _text_lines(response):
    """The body's lines, newline kept (so csv reads quoted multi-line cells), decoded as UTF-8
    chunk by chunk: only one chunk is ever in memory."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    pending = ""
    for chunk in response.iter_content(chunk_size=64 * 1024):
        pending += decoder.decode(chunk)
        *lines, pending = pending.split("\n")  # jobs are created with lineEnding LF
        for line in lines:
            yield line + "\n"
    pending += decoder.decode(b"", final=True)
    if pending:
        yield pending


def _json_or_none(response):
    try:
        return response.json()
    except ValueError:
        return None


def _error_of(response) -> SalesforceError:
    body = _json_or_none(response)
    first = body[0] if isinstance(body, list) and body and isinstance(body[0], dict) else body if isinstance(body, dict) else {}
    code = first.get("errorCode") or f"HTTP_{response.status_code}"
    message = first.get("message") or response.text[:300]
    response.close()
    if code == "REQUEST_LIMIT_EXCEEDED":
        return SalesforceLimitExceeded(code, message, response.status_code)
    return SalesforceError(code, message, response.status_code)
