"""CSRF on every form: each POST form in templates/ carries the token, every page address of the
URL conf refuses a POST without it, and the API refuses a session-authenticated write without it.

``Client(enforce_csrf_checks=True)`` makes the test client behave like a browser on another site:
it sends the session cookie but no token.
"""

import re
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.urls.resolvers import RoutePattern

from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

TEMPLATES = Path(settings.BASE_DIR) / "templates"
FORM = re.compile(r"<form\b(?P<attrs>[^>]*)>(?P<body>.*?)</form>", re.S | re.I)
POST = re.compile(r"""method\s*=\s*["']?post""", re.I)
ACTION_URL = re.compile(r"""action\s*=\s*["']\{%\s*url\s+["'](?P<name>[\w:-]+)["']""", re.I)
HTMX_WRITE = re.compile(r"\bhx-(post|put|patch|delete)\b")

# Our own page apps, walked address by address. The API (DRF, regex routes) is covered by
# test_the_api_refuses_session_writes_without_the_token; django-admin is Django's (csrf_protect).
PAGE_PREFIXES = ("", "connectors/", "journeys/", "t/", "login/", "logout/")
# Addresses that legitimately take cross-site requests: none today. Add one only with a reason.
CSRF_EXEMPT = {}


def post_forms():
    for path in sorted(TEMPLATES.rglob("*.html")):
        text = path.read_text()
        for match in FORM.finditer(text):
            if POST.search(match["attrs"]):
                yield path.relative_to(TEMPLATES), match


def test_every_post_form_in_templates_carries_the_csrf_token():
    forms = list(post_forms())
    assert len(forms) > 20, "the template scan finds the forms"
    missing = [f"{path}: <form{m['attrs']}>" for path, m in forms if "{% csrf_token %}" not in m["body"]]
    assert not missing, missing


def test_every_form_action_names_an_address_of_the_url_conf():
    resolver = get_resolver()
    names = set()
    for _path, match in post_forms():
        action = ACTION_URL.search(match["attrs"])
        if action:
            names.add(action["name"])
    assert names
    for name in names:
        namespace, _, url_name = name.rpartition(":")
        lookup = resolver.namespace_dict[namespace][1] if namespace else resolver
        assert url_name in lookup.reverse_dict, f"form action {name} is not in the URL conf"


def test_htmx_writes_send_the_token_from_the_page_body():
    """hx-post and friends take the token from base.html's hx-headers: a template using them is a
    page extending base.html, or a partial (``_name.html``) included by such a page."""
    base = (TEMPLATES / "base.html").read_text()
    assert "hx-headers='{\"X-CSRFToken\": \"{{ csrf_token }}\"}'" in base
    pages = {p: p.read_text() for p in TEMPLATES.rglob("*.html")}
    for path, text in pages.items():
        if not HTMX_WRITE.search(text) or path.name == "base.html":
            continue
        if path.name.startswith("_"):
            includers = [p for p, t in pages.items() if str(path.relative_to(TEMPLATES)) in t]
            assert includers and all("{% extends" in pages[p] for p in includers), path
        else:
            assert "{% extends" in text, path


def _concrete_paths(patterns, prefix=""):
    """Every page address, with ids and slugs filled in (the CSRF check runs before the view)."""
    for entry in patterns:
        if not isinstance(entry.pattern, RoutePattern):
            continue  # regex routes: the API router and django-admin (see PAGE_PREFIXES)
        route = str(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from _concrete_paths(entry.url_patterns, prefix + route)
        elif isinstance(entry, URLPattern):
            def fill(match):
                converter = match["conv"] or "str"
                return {"int": "1", "uuid": str(uuid.uuid4())}.get(converter, "x")

            yield "/" + re.sub(r"<(?:(?P<conv>\w+):)?\w+>", fill, prefix + route)


PAGE_PATHS = sorted(
    {p for p in _concrete_paths(get_resolver().url_patterns) if not p.startswith(("/api/", "/django-admin/"))}
)


@pytest.fixture
def browser_without_token(make_user, sandbox):
    client = Client(enforce_csrf_checks=True)
    user = make_user(org_admin_of=sandbox.organization)
    assert client.login(username=user.username, password=PASSWORD)
    return client


def test_the_walk_covers_the_page_apps():
    assert len(PAGE_PATHS) > 40
    assert {"/login/", "/logout/"} <= set(PAGE_PATHS)
    assert any(p.startswith("/connectors/") for p in PAGE_PATHS) and any(p.startswith("/journeys/") for p in PAGE_PATHS)


@pytest.mark.parametrize("path", PAGE_PATHS)
def test_every_page_address_refuses_a_post_without_the_token(path, browser_without_token):
    response = browser_without_token.post(path, {"name": "cross-site"})
    if path in CSRF_EXEMPT:
        return
    assert response.status_code == 403, (path, response.status_code)
    assert b"CSRF" in response.content


def test_sign_in_itself_needs_the_token(make_user):
    user = make_user()
    client = Client(enforce_csrf_checks=True)
    response = client.post(reverse("login"), {"username": user.username, "password": PASSWORD})
    assert response.status_code == 403
    assert "_auth_user_id" not in client.session


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_the_api_refuses_session_writes_without_the_token(method, browser_without_token, sandbox):
    from cdp.models import Audience

    audience = Audience.objects.create(
        sandbox=sandbox, name="Kept", kind="person",
        definition={"subject": "person", "condition": {"type": "compare", "field": "email", "op": "isNotNull"}},
    )
    url = f"/api/sandboxes/{sandbox.pk}/audiences/" + ("" if method == "post" else f"{audience.pk}/")
    response = getattr(browser_without_token, method)(url, {"name": "x"}, content_type="application/json")
    assert response.status_code == 403, response.content[:300]
    assert "CSRF" in response.json()["error"]["message"]
    assert Audience.objects.get(pk=audience.pk).name == "Kept"
