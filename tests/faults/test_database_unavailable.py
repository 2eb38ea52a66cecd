"""A lost database connection answers a clear 503 (JSON under /api/, a short page elsewhere, both
with Retry-After), and the next request works again."""

import json
import urllib.error
import urllib.request

import pytest
from django.core.signals import request_started
from django.db import InterfaceError, OperationalError, connection
from django.test import Client
from django.urls import reverse

from cdp.api.audiences import AudienceViewSet
from cdp.choices import Role
from tests.faults.conftest import side_connection, wait_for

pytestmark = [pytest.mark.faults]


@pytest.fixture
def logged_in(db, make_user, sandbox):
    user = make_user(Role.MARKETER, sandbox)
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


def audiences_url(sandbox):
    return f"/api/sandboxes/{sandbox.pk}/audiences/"


def assert_unavailable_page(response):
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response["Content-Type"].startswith("text/html")
    assert "briefly unavailable" in response.content.decode()


def test_api_answers_503_json_when_the_view_loses_the_database(logged_in, sandbox, monkeypatch):
    def lost(self):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(AudienceViewSet, "get_queryset", lost)

    response = logged_in.get(audiences_url(sandbox))

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json()["error"]["code"] == "database_unavailable"
    assert "retry" in response.json()["error"]["message"].lower()


def test_page_answers_503_when_a_middleware_loses_the_database(logged_in, monkeypatch):
    def lost(user):
        raise InterfaceError("connection already closed")

    # The sandbox switcher runs the first query of every page, before any view.
    monkeypatch.setattr("cdp.middleware.accessible_sandboxes", lost)

    assert_unavailable_page(logged_in.get(reverse("cdp:dashboard")))


def test_other_errors_stay_500(logged_in, sandbox, monkeypatch):
    def broken(self):
        raise ValueError("a bug, not an outage")

    monkeypatch.setattr(AudienceViewSet, "get_queryset", broken)

    assert logged_in.get(audiences_url(sandbox)).status_code == 500


class Severing:
    """On the next request the live server handles, terminates that request's database connection
    after Django checked it (CONN_HEALTH_CHECKS) and before the first query: a database restart or
    failover at the worst moment."""

    def __init__(self):
        self.armed = False
        self.killed = []

    def __call__(self, sender, **kwargs):
        if not self.armed:
            return
        self.armed = False
        connection.ensure_connection()
        pid = connection.connection.info.backend_pid
        with side_connection() as side:
            side.execute("SELECT pg_terminate_backend(%s)", [pid])
            gone = "SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = %s)"
            wait_for(lambda: side.execute(gone, [pid]).fetchone()[0], f"backend {pid} to end", timeout=20)
        self.killed.append(pid)


@pytest.fixture
def severing(postgres):
    hook = Severing()
    # Connected after Django's own request_started receiver (close_old_connections): runs after it.
    request_started.connect(hook, dispatch_uid="tests.faults.severing")
    yield hook
    request_started.disconnect(dispatch_uid="tests.faults.severing")


def fetch(url, session_key):
    request = urllib.request.Request(url, headers={"Cookie": f"sessionid={session_key}", "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_live_server_answers_503_once_when_postgres_drops_the_connection_then_recovers(
    severing, live_server, logged_in, sandbox, settings
):
    assert settings.DATABASES["default"]["CONN_HEALTH_CHECKS"] is True
    session_key = logged_in.cookies[settings.SESSION_COOKIE_NAME].value
    api = live_server.url + audiences_url(sandbox)
    page = live_server.url + reverse("cdp:dashboard")
    assert fetch(api, session_key)[0] == 200

    severing.armed = True
    status, headers, body = fetch(api, session_key)
    assert (status, headers["Retry-After"]) == (503, "5")
    assert json.loads(body)["error"]["code"] == "database_unavailable"
    status, _, body = fetch(api, session_key)  # the retry gets a fresh connection
    assert status == 200 and "results" in json.loads(body)

    severing.armed = True
    status, headers, body = fetch(page, session_key)
    assert (status, headers["Retry-After"]) == (503, "5") and b"briefly unavailable" in body
    assert fetch(page, session_key)[0] == 200
    assert len(severing.killed) == 2
