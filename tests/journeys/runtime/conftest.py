import datetime as dt
import socket

import pytest
from aiosmtpd.controller import Controller
from django.utils import timezone

from cdp.choices import MembershipStatus
from cdp.models import Account, AudienceMember, Person
from cdp.services.audiences import evaluate_audience, save_audience
from journeys.models import EmailAsset, Journey, JourneyVersion
from journeys.models.journeys import JourneyState
from tests.cdp.ingest_helpers import ingest


@pytest.fixture(autouse=True)
def public_url(settings):
    settings.QUORUM_PUBLIC_URL = "http://testserver"


@pytest.fixture
def live(transactional_db):
    """Real commits, so work queued on commit (advances, wakes) runs as in production, inline."""


class _Collect:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append({"to": list(envelope.rcpt_tos), "data": envelope.content.decode("utf8", "replace")})
        return "250 OK"


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp(settings):
    """A real SMTP server (aiosmtpd) on a free port; Django sends through the SMTP backend."""
    handler = _Collect()
    controller = Controller(handler, hostname="127.0.0.1", port=_free_port())
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", controller.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    yield handler
    controller.stop()


def compare(field, op, value=None):
    node = {"type": "compare", "field": field, "op": op}
    if value is not None:
        node["value"] = value
    return node


ALL_ACCOUNTS = {"subject": "account", "condition": compare("name", "isNotNull")}


def make_people(sandbox, rows):
    """rows: person dicts with an ``account.domain``; accounts get a name from their domain."""
    domains = sorted({r["account.domain"] for r in rows if r.get("account.domain")})
    ingest(sandbox, "account", [{"domain": d, "name": d.split(".")[0].title()} for d in domains])
    ingest(sandbox, "person", rows)


def person(sandbox, email):
    return Person.objects.for_sandbox(sandbox).get(email=email)


def account(sandbox, domain):
    return Account.objects.for_sandbox(sandbox).get(domain=domain)


def account_audience(sandbox, definition=ALL_ACCOUNTS, name="Accounts"):
    audience = save_audience(sandbox, name=name, definition=definition)
    if not AudienceMember.objects.filter(audience=audience).exists():
        evaluate_audience(audience)  # without commits (db fixture) the on-commit evaluation doesn't run
    return audience


def realized(audience):
    return set(AudienceMember.objects.filter(audience=audience, status=MembershipStatus.REALIZED).values_list("member_id", flat=True))


def live_journey(sandbox, audience, nodes, *, name="Journey", start="n1", **fields):
    """A live journey running ``nodes`` (graph contract, journey_graph.md), built directly."""
    now = timezone.now()
    graph = {"start": start, "nodes": nodes, "layout": {}}
    journey = Journey.objects.create(
        sandbox=sandbox, name=name, audience=audience, state=JourneyState.LIVE, graph=graph,
        start_at=fields.pop("start_at", now - dt.timedelta(days=1)), end_at=fields.pop("end_at", now + dt.timedelta(days=365)),
        published_at=now, **fields,
    )  # fmt: skip
    version = JourneyVersion.objects.create(sandbox=sandbox, journey=journey, number=1, graph=graph, published_at=now)
    journey.current_version = version
    journey.save(update_fields=["current_version"])
    return journey


def email_asset(sandbox, name="Welcome"):
    return EmailAsset.objects.create(
        sandbox=sandbox, name=name, subject="Hello {{person.first_name}}",
        body_html='<html><body><p>Hi {{person.first_name}} at {{account.name}}</p><a href="https://example.com/pricing?a=1&amp;b=2">Pricing</a></body></html>',
    )  # fmt: skip
