import re

import pytest
from playwright.sync_api import expect

from cdp.choices import Role
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser


def sign_in(page, username, password):
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_user_with_a_sandbox_role_signs_in_and_sees_the_dashboard(page, live_server, make_user, sandbox, screenshot):
    user = make_user(Role.MARKETER, sandbox, username="mona")

    sign_in(page, user.username, PASSWORD)

    expect(page).to_have_url(f"{live_server.url}/")
    expect(page.get_by_role("heading", level=1)).to_have_text(sandbox.title)
    switcher = page.get_by_label("Sandbox")
    expect(switcher).to_be_visible()
    expect(switcher.locator("option:checked")).to_have_text(
        re.compile(rf"^{re.escape(sandbox.organization.name)} / {re.escape(sandbox.title)}")
    )
    expect(page.locator(".topbar-user")).to_contain_text("mona")
    assert screenshot(page, "dashboard").exists()


def test_wrong_password_shows_the_error(page, live_server, make_user, sandbox, screenshot):
    user = make_user(Role.VIEWER, sandbox, username="victor")

    sign_in(page, user.username, "not-the-password")

    expect(page.get_by_role("alert")).to_contain_text("correct username and password")
    expect(page).to_have_url(f"{live_server.url}/login/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Quorum")
    assert screenshot(page, "wrong-password").exists()
