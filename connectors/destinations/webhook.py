"""Webhook: signed JSON batches of adds and removes POSTed to a URL.

Body: ``{"dataflow", "batch_id", "sent_at", "adds": [...], "removes": [...]}``. Headers:
``X-Quorum-Timestamp`` (Unix seconds), ``X-Quorum-Signature: sha256=<hex>`` = HMAC-SHA256 of
``"<timestamp>.<body>"`` with the destination's secret, and ``Idempotency-Key`` = the batch id, which
stays the same when a run is retried so receivers can drop a batch they already have.
5xx answers, 408/429 and network errors are retried with backoff; a batch that fails every attempt
(or gets another 4xx) goes to the dead-letter table, from where it can be re-sent.
"""

import hashlib
import hmac
import json
import random
import time
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.utils import timezone

from cdp.exceptions import RuleViolation

from . import ADD, DestinationType, PushResult, chunked

LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}
RETRYABLE_STATUS = {408, 429}
MIN_SECRET_LENGTH = 16


class Webhook(DestinationType):
    description = (
        "POSTs signed JSON batches of the people who enter and leave the audience to your HTTPS endpoint "
        "(HMAC-SHA256 signature, idempotency key, retries, dead letters)."
    )

    def validate_config(self, config: dict) -> dict:
        url = str(config.get("url") or "").strip()
        parts = urlsplit(url)
        local_http = parts.scheme == "http" and parts.hostname in LOCAL_HOSTS and _local_http_allowed()
        if not parts.hostname or (parts.scheme != "https" and not local_http):
            raise RuleViolation(
                "The webhook URL must be an https:// URL (http only for localhost while developing).",
                rule="webhook_https_only",
                field="url",
            )
        return {
            "url": url,
            "batch_size": _bounded(config, "batch_size", 100, 1, 1000),
            "max_attempts": _bounded(config, "max_attempts", 5, 1, 10),
            "timeout_seconds": _bounded(config, "timeout_seconds", 10, 1, 60),
        }

    def apply_options(self, destination, *, allow_lead_creation, secret, by_admin) -> None:
        super().apply_options(destination, allow_lead_creation=allow_lead_creation, secret=secret, by_admin=by_admin)
        # An empty secret keeps the stored one: it is never shown back, so forms and PATCHes leave it out.
        if secret:
            if len(secret) < MIN_SECRET_LENGTH:
                raise RuleViolation(f"The signing secret needs at least {MIN_SECRET_LENGTH} characters.", rule="webhook_secret", field="secret")
            destination.secret = secret
        elif not destination.secret:
            raise RuleViolation(f"A webhook needs a signing secret ({MIN_SECRET_LENGTH} characters or more).", rule="webhook_secret", field="secret")

    def push(self, destination, dataflow, members, result: PushResult, context) -> None:
        config = destination.config
        for index, (_start, chunk) in enumerate(chunked(members, config["batch_size"])):
            batch_id = batch_id_for(context.batch_key, index)
            payload = {
                "dataflow": dataflow.pk,
                "batch_id": batch_id,
                "adds": [{"id": m.member_id, **m.values} for m in chunk if m.action == ADD],
                "removes": [{"id": m.member_id, **m.values} for m in chunk if m.action != ADD],
            }
            delivered, attempts, error = deliver(destination, payload, sleep=context.sleep)
            if delivered:
                result.sent += len(chunk)
            else:
                result.failed += len(chunk)
                result.dead_letters.append((batch_id, payload, attempts, error))


DESTINATION_TYPE = Webhook()


def _local_http_allowed() -> bool:
    return getattr(settings, "QUORUM_WEBHOOK_ALLOW_LOCAL_HTTP", settings.DEBUG)


def _bounded(config, name, default, low, high) -> int:
    value = config.get(name, default)
    if value in (None, ""):
        return default
    try:
        value = int(value)
    except (TypeError, ValueError):
        value = low - 1
    if not low <= value <= high:
        raise RuleViolation(f"{name.replace('_', ' ').capitalize()} must be a whole number from {low} to {high}.", rule="destination_config", field=name)
    return value


def batch_id_for(batch_key: str, index: int) -> str:
    return hashlib.sha256(f"{batch_key}:{index}".encode()).hexdigest()[:32]


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def deliver(destination, payload: dict, *, sleep=time.sleep) -> tuple[bool, int, str]:
    """POST one batch, retrying transient failures. Returns (delivered, attempts, last error)."""
    config = destination.config
    error = ""
    for attempt in range(1, config["max_attempts"] + 1):
        body = json.dumps({**payload, "sent_at": timezone.now().isoformat()}, separators=(",", ":")).encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Quorum-Webhook/1",
            "Idempotency-Key": payload["batch_id"],
            "X-Quorum-Timestamp": timestamp,
            "X-Quorum-Signature": sign(destination.secret, timestamp, body),
        }
        try:
            response = requests.post(config["url"], data=body, headers=headers, timeout=config["timeout_seconds"])
        except requests.RequestException as exc:
            error, retryable = f"{type(exc).__name__}: {exc}", True
        else:
            if 200 <= response.status_code < 300:
                return True, attempt, ""
            error = f"HTTP {response.status_code}: {response.text[:300]}"
            retryable = response.status_code >= 500 or response.status_code in RETRYABLE_STATUS
        if not retryable:
            return False, attempt, error
        if attempt < config["max_attempts"]:
            # Exponential backoff with jitter, capped so a run never stalls for long.
            sleep(min(2**attempt, 60) * (0.5 + random.random() / 2))
    return False, config["max_attempts"], error
