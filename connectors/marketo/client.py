"""Marketo Engage REST client: lead database, static lists, activities, programs and bulk export.

Every call goes through the instance's shared rate limiter (``ratelimit.py``), uses a cached OAuth
token (refreshed when < 60 s remain, and once on 601/602), retries transient errors with exponential
backoff and jitter, and turns ``success: false`` answers into ``MarketoError``. A 607 (daily quota)
raises ``MarketoQuotaExceeded`` at once and blocks every further call of the day.
"""

import codecs
import csv
import hashlib
import json
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode

import requests
from django.conf import settings

from connectors.marketo.errors import QUOTA_CODE, RETRYABLE_CODES, TOKEN_CODES, MarketoError, MarketoQuotaExceeded
from connectors.marketo.ratelimit import BaseLimiter, limiter_for, next_utc_midnight, redis_client, state_prefix

MAX_BATCH = 300  # records per call (leads, list members, sync input)
MAX_PAYLOAD = 1_000_000  # bytes per request body
MAX_URI = 8 * 1024  # longer GET URIs must be sent as POST ?_method=GET
MAX_ACTIVITY_TYPES = 10  # activityTypeIds per Get Lead Activities call
PROGRAMS_PAGE = 200  # maxReturn of the asset API
TOKEN_MARGIN = 60  # refresh the token when fewer seconds remain
EXPORT_ENTITIES = ("leads", "activities")
# Columns of an activity export when the caller names none (the spec requires the list).
ACTIVITY_EXPORT_FIELDS = (
    "marketoGUID", "leadId", "activityDate", "activityTypeId", "campaignId",
    "primaryAttributeValueId", "primaryAttributeValue", "attributes",
)
EXPORT_CHUNK = 16 * 1024  # bytes read at a time from an export file (lost if the read breaks off)


@dataclass(frozen=True)
class Page:
    """One page of a token-paged endpoint. ``next_token`` resumes after this page (store it as the
    checkpoint); ``more`` says whether more records are available now."""

    records: list[dict]
    next_token: str | None
    more: bool


class TokenCache:
    """Access tokens shared by every worker (Redis) or by the threads of this process."""

    _local: dict[str, tuple[str, float]] = {}
    _lock = threading.Lock()

    def __init__(self, key: str, redis_url: str = ""):
        self.key = key
        self.redis = redis_client(redis_url) if redis_url else None

    def get(self) -> tuple[str, float] | None:
        if self.redis is not None:
            raw = self.redis.get(self.key)
            if raw is None:
                return None
            data = json.loads(raw)
            return data["token"], data["expires_at"]
        with self._lock:
            return self._local.get(self.key)

    def set(self, token: str, expires_at: float, now: float) -> None:
        if self.redis is not None:
            ttl = int(expires_at - now)
            if ttl > 0:
                self.redis.set(self.key, json.dumps({"token": token, "expires_at": expires_at}), ex=ttl)
            return
        with self._lock:
            self._local[self.key] = (token, expires_at)

    def discard(self, token: str) -> None:
        """Forget ``token`` unless another worker already replaced it."""
        current = self.get()
        if current is None or current[0] != token:
            return
        if self.redis is not None:
            self.redis.delete(self.key)
        else:
            with self._lock:
                self._local.pop(self.key, None)


def _iso(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("Marketo needs an aware datetime (with a time zone), got a naive one.")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _chunks(items: list, size: int = MAX_BATCH) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _text_lines(chunks: Iterable[bytes]) -> Iterator[str]:
    """UTF-8 lines (with their line ends, so quoted newlines survive) from a byte stream."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    pending = ""
    for chunk in chunks:
        pending += decoder.decode(chunk)
        lines = pending.splitlines(keepends=True)
        pending = lines.pop() if lines and not lines[-1].endswith("\n") else ""
        yield from lines
    pending += decoder.decode(b"", final=True)
    if pending:
        yield pending


def _transient(error: MarketoError) -> bool:
    return error.code in RETRYABLE_CODES or error.code == "connection" or error.code.startswith("HTTP 5")


def _is_file(response) -> bool:
    return response.status_code in (200, 206) and "json" not in response.headers.get("Content-Type", "")


def _check_entity(entity: str) -> None:
    if entity not in EXPORT_ENTITIES:
        raise ValueError(f"Bulk export entity must be one of {', '.join(EXPORT_ENTITIES)}, got {entity!r}.")


class MarketoClient:
    """One Marketo instance's API. ``sleep``/``clock`` are injectable (tests never really wait);
    ``limiter`` defaults to the instance's shared limiter and ``redis_url`` to ``settings.REDIS_URL``
    (token cache and limits in Redis; process-local without it). Transient errors are retried up to
    ``max_attempts`` calls, waiting ``backoff_base * 2**n`` seconds (capped, with jitter)."""

    def __init__(
        self,
        *,
        munchkin_id: str,
        client_id: str,
        client_secret: str,
        rest_base_url: str = "",
        identity_base_url: str = "",
        limiter: BaseLimiter | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        max_attempts: int = 6,
        backoff_base: float = 2.0,
        backoff_max: float = 60.0,
        timeout: float = 60.0,
        redis_url: str | None = None,
    ):
        self.munchkin_id = munchkin_id.strip().upper()
        self.client_id, self.client_secret = client_id, client_secret
        rest = (rest_base_url or f"https://{self.munchkin_id}.mktorest.com/rest").rstrip("/")
        # The REST endpoint ends in /rest; bulk (/bulk/v1) and asset (/rest/asset/v1) paths hang off the host.
        self.root_url = rest.removesuffix("/rest")
        self.identity_url = (identity_base_url or f"https://{self.munchkin_id}.mktorest.com/identity").rstrip("/")
        self.sleep, self.clock = sleep, clock
        self.max_attempts, self.backoff_base, self.backoff_max = max_attempts, backoff_base, backoff_max
        self.timeout = timeout
        redis_url = getattr(settings, "REDIS_URL", "") if redis_url is None else redis_url
        self.limiter = limiter or limiter_for(self.munchkin_id, redis_url=redis_url, clock=clock, sleep=sleep)
        token_id = hashlib.sha256(f"{self.identity_url}|{client_id}".encode()).hexdigest()[:16]
        self.tokens = TokenCache(f"{state_prefix()}:{self.munchkin_id}:token:{token_id}", redis_url)
        self.session = requests.Session()

    @classmethod
    def for_instance(cls, instance, **kwargs) -> "MarketoClient":
        """A client for a saved ``connectors.models.MarketoInstance``."""
        return cls(
            munchkin_id=instance.munchkin_id,
            client_id=instance.client_id,
            client_secret=instance.client_secret,
            rest_base_url=instance.rest_base_url or instance.default_rest_base_url,
            identity_base_url=instance.identity_base_url or instance.default_identity_base_url,
            **kwargs,
        )

    # ------------------------------------------------------------------ authentication

    def _fetch_token(self) -> tuple[str, float]:
        # The identity endpoint does not count against the API limits, so it bypasses the limiter.
        params = {"grant_type": "client_credentials", "client_id": self.client_id, "client_secret": self.client_secret}
        try:
            response = self.session.get(f"{self.identity_url}/oauth/token", params=params, timeout=self.timeout)
        except requests.RequestException as exc:
            raise MarketoError("connection", f"Could not reach the Marketo identity service: {exc}") from exc
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code != 200 or "access_token" not in body:
            detail = body.get("error_description") or body.get("error") or response.reason
            raise MarketoError(
                f"HTTP {response.status_code}" if response.status_code != 200 else "identity",
                f"Marketo refused the client ID and secret: {detail}.",
            )
        now = self.clock()
        expires_at = now + int(body.get("expires_in", 3600))
        self.tokens.set(body["access_token"], expires_at, now)
        return body["access_token"], expires_at

    def _token(self) -> tuple[str, float]:
        cached = self.tokens.get()
        if cached and cached[1] - self.clock() >= TOKEN_MARGIN:
            return cached
        return self._fetch_token()

    # ------------------------------------------------------------------ transport

    def _backoff(self, attempt: int) -> None:
        delay = min(self.backoff_max, self.backoff_base * 2**attempt)
        self.sleep(delay * (0.5 + random.random() / 2))  # jitter spreads workers apart

    def _send(self, method: str, path: str, *, params=None, json_body=None, form=None, stream=False, headers=None):
        """One HTTP exchange under the limiter; returns the response (or raises on transport failure).
        A file download holds its concurrency slot until the headers arrive, then streams outside it."""
        token, _ = self._token()
        headers = {**(headers or {}), "Authorization": f"Bearer {token}"}
        with self.limiter.call():
            response = self.session.request(
                method,
                f"{self.root_url}{path}",
                params=params,
                json=json_body,
                data=form,
                headers=headers,
                timeout=self.timeout,
                stream=stream,
            )
            if stream and _is_file(response):
                return response, token
            # Read the body inside the slot: the call is in flight until the body has arrived.
            response.content  # noqa: B018
        return response, token

    def _request(self, method: str, path: str, *, params=None, json_body=None, form=None, stream=False, headers=None):
        """A call with retries. Returns the decoded JSON body, or the streaming response for files."""
        self.limiter.check_quota()
        refreshed = False
        attempt = 0
        while True:
            try:
                response, token = self._send(
                    method, path, params=params, json_body=json_body, form=form, stream=stream, headers=headers
                )
            except requests.RequestException as exc:
                error = MarketoError("connection", f"{method} {path} failed: {exc}")
            except MarketoError as exc:  # from the token fetch (or the quota, which is final)
                if not _transient(exc):
                    raise
                error = exc
            else:
                if response.status_code >= 500:
                    error = MarketoError(f"HTTP {response.status_code}", f"{method} {path}: {response.reason}")
                elif stream and _is_file(response):
                    return response
                elif response.status_code != 200:
                    raise MarketoError(
                        f"HTTP {response.status_code}", f"{method} {path}: {response.reason} {response.text[:200]}"
                    )
                else:
                    try:
                        body = response.json()
                    except ValueError as exc:
                        raise MarketoError(
                            "invalid_response", f"{method} {path} answered something that is not JSON: {exc}"
                        ) from exc
                    if body.get("success", True):
                        return body
                    code, message = self._first_error(body)
                    if code == QUOTA_CODE:
                        self.limiter.mark_quota_exhausted()
                        raise MarketoQuotaExceeded(
                            f"Marketo's daily API quota is used up ({message}).",
                            resets_at=next_utc_midnight(self.clock()),
                        )
                    if code in TOKEN_CODES and not refreshed:
                        refreshed = True
                        self.tokens.discard(token)
                        continue
                    error = MarketoError(code, message)
                    if not _transient(error):
                        raise error
            attempt += 1
            if attempt >= self.max_attempts:
                raise error
            self._backoff(attempt - 1)

    @staticmethod
    def _first_error(body: dict) -> tuple[str, str]:
        errors = body.get("errors") or [{"code": "unknown", "message": "success was false without an error"}]
        return str(errors[0].get("code")), errors[0].get("message", "")

    def _get(self, path: str, params: dict | None = None) -> dict:
        """GET, or POST ``?_method=GET`` with a form body when the URI would exceed 8 KB."""
        params = {key: value for key, value in (params or {}).items() if value is not None}
        if len(f"{self.root_url}{path}?{urlencode(params)}") <= MAX_URI:
            return self._request("GET", path, params=params)
        return self._request("POST", path, params={"_method": "GET"}, form=params)

    @staticmethod
    def _page(body: dict) -> Page:
        token = body.get("nextPageToken") or None
        return Page(body.get("result") or [], token, bool(body.get("moreResult", token is not None)))

    # ------------------------------------------------------------------ leads

    def get_leads_by_filter(self, filter_type: str, values: list[str], fields: list[str]) -> list[dict]:
        """Leads whose ``filter_type`` field is one of ``values`` (e.g. email), all pages."""
        leads = []
        for chunk in _chunks(list(dict.fromkeys(str(value) for value in values))):
            next_token = None
            while True:
                body = self._get(
                    "/rest/v1/leads.json",
                    {
                        "filterType": filter_type,
                        "filterValues": ",".join(chunk),
                        "fields": ",".join(fields) if fields else None,
                        "batchSize": MAX_BATCH,
                        "nextPageToken": next_token,
                    },
                )
                leads.extend(body.get("result") or [])
                next_token = body.get("nextPageToken")
                if not next_token:
                    break
        return leads

    def sync_leads(self, leads: list[dict], *, action: str = "createOnly", lookup_field: str = "email") -> list[dict]:
        """Create/update leads; returns one result per input record, in order ({id, status, reasons})."""
        results = []
        for chunk in self._payload_chunks(leads, {"action": action, "lookupField": lookup_field}):
            body = self._request(
                "POST", "/rest/v1/leads.json", json_body={"action": action, "lookupField": lookup_field, "input": chunk}
            )
            results.extend(body.get("result") or [])
        return results

    @staticmethod
    def _payload_chunks(records: list[dict], envelope: dict) -> Iterator[list[dict]]:
        """Chunks of ≤300 records whose JSON body stays under Marketo's 1 MB limit."""
        overhead = len(json.dumps({**envelope, "input": []}).encode())
        chunk, size = [], overhead
        for record in records:
            record_size = len(json.dumps(record).encode()) + 1
            if overhead + record_size > MAX_PAYLOAD:
                raise ValueError(f"A lead record is larger than Marketo's 1 MB request limit: {str(record)[:100]}…")
            if chunk and (len(chunk) >= MAX_BATCH or size + record_size > MAX_PAYLOAD):
                yield chunk
                chunk, size = [], overhead
            chunk.append(record)
            size += record_size
        if chunk:
            yield chunk

    def describe_leads(self) -> list[dict]:
        return self._request("GET", "/rest/v1/leads/describe.json").get("result") or []

    # ------------------------------------------------------------------ static lists

    def _list_operation(self, method: str, list_id: int, lead_ids: list[int]) -> list[dict]:
        results = []
        for chunk in _chunks([int(lead_id) for lead_id in lead_ids]):
            body = self._request(
                method, f"/rest/v1/lists/{int(list_id)}/leads.json", json_body={"input": [{"id": i} for i in chunk]}
            )
            results.extend(body.get("result") or [])
        return results

    def add_leads_to_list(self, list_id: int, lead_ids: list[int]) -> list[dict]:
        """Per lead: {id, status: "added"|"skipped", reasons}."""
        return self._list_operation("POST", list_id, lead_ids)

    def remove_leads_from_list(self, list_id: int, lead_ids: list[int]) -> list[dict]:
        """Per lead: {id, status: "removed"|"skipped", reasons}."""
        return self._list_operation("DELETE", list_id, lead_ids)

    def get_lists(self, next_token: str | None = None) -> Page:
        return self._page(
            self._get("/rest/v1/lists.json", {"batchSize": MAX_BATCH, "nextPageToken": next_token})
        )

    def get_list_members(self, list_id: int, fields: list[str], next_token: str | None = None) -> Page:
        return self._page(
            self._get(
                f"/rest/v1/lists/{int(list_id)}/leads.json",
                {"fields": ",".join(fields) if fields else None, "batchSize": MAX_BATCH, "nextPageToken": next_token},
            )
        )

    # ------------------------------------------------------------------ activities and changes

    def get_paging_token(self, since: datetime) -> str:
        body = self._request("GET", "/rest/v1/activities/pagingtoken.json", params={"sinceDatetime": _iso(since)})
        return body["nextPageToken"]

    def get_lead_changes(self, paging_token: str, fields: list[str]) -> Page:
        if not fields:
            raise ValueError("Lead changes need at least one field to watch.")
        return self._page(
            self._get(
                "/rest/v1/activities/leadchanges.json",
                {"nextPageToken": paging_token, "fields": ",".join(fields), "batchSize": MAX_BATCH},
            )
        )

    def get_activities(self, paging_token: str, activity_type_ids: list[int]) -> Page:
        if not 1 <= len(activity_type_ids) <= MAX_ACTIVITY_TYPES:
            raise ValueError(
                f"Marketo returns 1 to {MAX_ACTIVITY_TYPES} activity types per call, got {len(activity_type_ids)}."
            )
        return self._page(
            self._get(
                "/rest/v1/activities.json",
                {
                    "nextPageToken": paging_token,
                    "activityTypeIds": ",".join(str(int(i)) for i in activity_type_ids),
                    "batchSize": MAX_BATCH,
                },
            )
        )

    def get_deleted_leads(self, paging_token: str) -> Page:
        return self._page(
            self._get("/rest/v1/activities/deletedleads.json", {"nextPageToken": paging_token, "batchSize": MAX_BATCH})
        )

    def get_activity_types(self) -> list[dict]:
        return self._request("GET", "/rest/v1/activities/types.json").get("result") or []

    # ------------------------------------------------------------------ programs

    def get_programs(self, offset: int = 0) -> list[dict]:
        """Every program from ``offset`` on (asset API, pages of 200)."""
        programs = []
        while True:
            body = self._request(
                "GET", "/rest/asset/v1/programs.json", params={"offset": offset, "maxReturn": PROGRAMS_PAGE}
            )
            page = body.get("result") or []
            programs.extend(page)
            if len(page) < PROGRAMS_PAGE:
                return programs
            offset += len(page)

    def get_program_members(
        self,
        program_id: int,
        fields: list[str],
        next_token: str | None = None,
        *,
        filter_type: str = "updatedAt",
        filter_values: Iterable[str] = (),
        start_at: datetime | None = None,
        end_at: datetime | None = None,
    ) -> Page:
        """Members of a program. Marketo needs a filter: by default every member updated between
        ``start_at`` (default 2006-01-01, before Marketo existed) and ``end_at`` (default now)."""
        params = {
            "filterType": filter_type,
            "fields": ",".join(fields) if fields else None,
            "batchSize": MAX_BATCH,
            "nextPageToken": next_token,
        }
        if filter_type == "updatedAt":
            params["startAt"] = _iso(start_at or datetime(2006, 1, 1, tzinfo=UTC))
            params["endAt"] = _iso(end_at or datetime.fromtimestamp(self.clock(), UTC))
        else:
            params["filterValues"] = ",".join(str(value) for value in filter_values)
        return self._page(self._get(f"/rest/v1/programs/{int(program_id)}/members.json", params))

    # ------------------------------------------------------------------ bulk export

    def create_export_job(self, entity: str, fields: list[str] | None, filter: dict) -> str:  # noqa: A002
        """Create a bulk export job; ``filter`` as Marketo defines it (e.g. ``{"createdAt":
        {"startAt": ..., "endAt": ...}}``, at most 31 days). Activities default to all their columns.
        Returns the export id."""
        _check_entity(entity)
        if fields is None and entity == "leads":
            raise ValueError("A leads export needs the list of fields to export.")
        request = {"format": "CSV", "fields": list(fields or ACTIVITY_EXPORT_FIELDS), "filter": filter}
        body = self._request("POST", f"/bulk/v1/{entity}/export/create.json", json_body=request)
        return body["result"][0]["exportId"]

    def _export_call(self, method: str, entity: str, export_id: str, action: str) -> dict:
        _check_entity(entity)
        body = self._request(method, f"/bulk/v1/{entity}/export/{export_id}/{action}.json")
        return body["result"][0]

    def enqueue_export_job(self, entity: str, export_id: str) -> dict:
        return self._export_call("POST", entity, export_id, "enqueue")

    def get_export_status(self, entity: str, export_id: str) -> dict:
        """{exportId, status (Created/Queued/Processing/Completed/Failed/Cancelled), numberOfRecords, …}."""
        return self._export_call("GET", entity, export_id, "status")

    def cancel_export_job(self, entity: str, export_id: str) -> dict:
        return self._export_call("POST", entity, export_id, "cancel")

    def wait_for_export(
        self, entity: str, export_id: str, poll: float = 60, sleep: Callable[[float], None] | None = None
    ) -> dict:
        """Poll until the job is Completed (returns its status); raise MarketoError if it failed or was
        cancelled. Marketo asks for ≥ 60 s between polls."""
        sleep = sleep or self.sleep
        while True:
            status = self.get_export_status(entity, export_id)
            state = status["status"]
            if state == "Completed":
                return status
            if state == "Failed":
                raise MarketoError("export_failed", f"Bulk export {export_id} failed: {status.get('errorMsg', '')}")
            if state in ("Cancelled", "Canceled"):
                raise MarketoError("export_cancelled", f"Bulk export {export_id} was cancelled.")
            sleep(poll)

    def iter_export_file(self, entity: str, export_id: str) -> Iterator[dict]:
        """The rows of a completed export's CSV file, one dict per row, streamed (constant memory).
        A download cut off midway resumes where it stopped (HTTP Range), so no row repeats or goes missing."""
        _check_entity(entity)
        yield from csv.DictReader(_text_lines(self._export_bytes(entity, export_id)))

    def _export_bytes(self, entity: str, export_id: str) -> Iterator[bytes]:
        path = f"/bulk/v1/{entity}/export/{export_id}/file.json"
        received, interruptions = 0, 0
        while True:
            # Byte offsets only mean something on the unencoded file, hence no compression.
            headers = {"Accept-Encoding": "identity"}
            if received:
                headers["Range"] = f"bytes={received}-"
            response = self._request("GET", path, stream=True, headers=headers)
            if isinstance(response, dict):  # JSON with success true instead of a file
                raise MarketoError("export_file", f"Bulk export {export_id} returned no file.")
            # A server that ignores Range sends the whole file again: skip what we already have.
            skip = received if response.status_code == 200 else 0
            try:
                for chunk in response.iter_content(EXPORT_CHUNK):
                    if skip:
                        chunk, skip = chunk[skip:], max(0, skip - len(chunk))
                    received += len(chunk)
                    yield chunk
                return
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
                interruptions += 1
                if interruptions >= self.max_attempts:
                    raise MarketoError(
                        "connection", f"Download of bulk export {export_id} kept breaking off: {exc}"
                    ) from exc
                self._backoff(interruptions - 1)
            finally:
                response.close()

    # ------------------------------------------------------------------ connection test

    def test_connection(self) -> dict:
        """Get a token and make one cheap call: proves the URLs, the credentials and lead read access."""
        cached = self.tokens.get()
        if cached:  # prove the credentials, not just a token cached earlier
            self.tokens.discard(cached[0])
        _, expires_at = self._token()
        fields = self.describe_leads()
        return {
            "ok": True,
            "munchkin_id": self.munchkin_id,
            "token_expires_in": int(expires_at - self.clock()),
            "lead_fields": len(fields),
        }
