"""Email open and click tracking.

A sent email carries a pixel ``/t/o/<token>.gif`` and links rewritten to ``/t/c/<token>`` whose
signed token (django.core.signing) names the send and, for a click, the one URL it may redirect
to: a tampered token or URL is refused, so the endpoint is no open redirect.

An open or click updates the EmailSend and is ingested as an ExperienceEvent (email.opened /
email.clicked) through cdp ingestion, which re-triggers audiences and, through
``profiles_changed``, wakes the journey tokens listening for it.
"""

import hashlib
import re
from urllib.parse import quote
from html import unescape

from django.conf import settings
from django.core import signing
from django.db.models import F
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from cdp.choices import EventType, IngestionEntity
from cdp.services.ingestion.records import Rejection, parse_record
from cdp.services.ingestion.store import store_records
from journeys.models import EmailSend

SALT = "journeys.tracking"
LINK_RE = re.compile(r"""(<a\b[^>]*?\bhref\s*=\s*)(["'])(https?://[^"']+)\2""", re.IGNORECASE)


class BadToken(Exception):
    pass


def public_url(path: str) -> str:
    base = getattr(settings, "QUORUM_PUBLIC_URL", "http://localhost:8000").rstrip("/")
    return f"{base}{path}"


def open_token(effect_id: int) -> str:
    return signing.dumps({"e": effect_id}, salt=SALT, compress=True)


def click_token(effect_id: int, url: str) -> str:
    return signing.dumps({"e": effect_id, "u": url}, salt=SALT, compress=True)


def tracked_html(html: str, effect_id: int) -> str:
    """The HTML with its http(s) links sent through the click endpoint and an open pixel appended."""

    def rewrite(match):
        url = unescape(match.group(3))
        tracked = public_url(reverse("tracking:click", args=[click_token(effect_id, url)])) + "?u=" + quote(url, safe="")
        return f"{match.group(1)}{match.group(2)}{escape(tracked)}{match.group(2)}"

    html = LINK_RE.sub(rewrite, html)
    pixel = f'<img src="{escape(public_url(reverse("tracking:open", args=[open_token(effect_id)])))}" width="1" height="1" alt="" style="display:none">'
    if re.search(r"</body>", html, re.IGNORECASE):
        return re.sub(r"</body>", pixel + "</body>", html, count=1, flags=re.IGNORECASE)
    return html + pixel


def read_token(token: str) -> dict:
    try:
        data = signing.loads(token, salt=SALT)
    except signing.BadSignature:
        raise BadToken("the tracking link is not valid") from None
    if not isinstance(data, dict) or not isinstance(data.get("e"), int):
        raise BadToken("the tracking link is not valid")
    return data


def record_open(token: str, *, now=None) -> EmailSend | None:
    data = read_token(token)
    send = EmailSend.objects.filter(side_effect_id=data["e"]).select_related("sandbox").first()
    if send is None:
        return None
    now = now or timezone.now()
    first = EmailSend.objects.filter(pk=send.pk, opened_at__isnull=True).update(opened_at=now)
    EmailSend.objects.filter(pk=send.pk).update(open_count=F("open_count") + 1)
    if first:
        _ingest_event(send, EventType.EMAIL_OPENED, now, f"quorum:open:{send.pk}", {})
    return send


def record_click(token: str, url: str | None = None, *, now=None) -> tuple[EmailSend | None, str]:
    """The send and the URL to redirect to: the one signed into the token. A ``url`` given
    alongside (the link's ``?u=``) must be that one."""
    data = read_token(token)
    if not isinstance(data.get("u"), str) or (url is not None and data["u"] != url):
        raise BadToken("the link's address does not match its signature")
    url = data["u"]
    send = EmailSend.objects.filter(side_effect_id=data["e"]).select_related("sandbox").first()
    if send is None:
        return None, url
    now = now or timezone.now()
    # A click implies the email was opened (images are often blocked).
    if EmailSend.objects.filter(pk=send.pk, opened_at__isnull=True).update(opened_at=now):
        _ingest_event(send, EventType.EMAIL_OPENED, now, f"quorum:open:{send.pk}", {})
    EmailSend.objects.filter(pk=send.pk, clicked_at__isnull=True).update(clicked_at=now)
    EmailSend.objects.filter(pk=send.pk).update(click_count=F("click_count") + 1)
    url_hash = hashlib.sha256(url.encode()).hexdigest()[:16]
    _ingest_event(send, EventType.EMAIL_CLICKED, now, f"quorum:click:{send.pk}:{url_hash}", {"url": url})
    return send, url


def _ingest_event(send, event_type, now, external_id, properties):
    """One event per first open / per clicked URL: the external id makes a repeat a duplicate."""
    from journeys.services.actions import person_identities

    identity = person_identities(send.sandbox, [send.person_id]).get(send.person_id)
    if identity is None:
        return
    raw = {
        f"identity.{identity[0]}": identity[1], "type": event_type, "occurred_at": now.isoformat(), "external_id": external_id,
        "properties.message_id": send.message_id, "properties.journey_id": send.journey_id, "properties.node": send.node,
        **{f"properties.{k}": v for k, v in properties.items()},
    }  # fmt: skip
    record = parse_record(IngestionEntity.EVENT, 1, raw)
    if not isinstance(record, Rejection):
        store_records(send.sandbox, IngestionEntity.EVENT, [record], "journeys")
