"""A marketer builds an audience in the browser: picks a field in the schema browser, an operator and
a value, sees the estimate and the PQL text follow, saves, evaluates and sees the members."""

import re

import pytest
from playwright.sync_api import expect

from cdp.choices import Role
from cdp.models import Audience
from tests.cdp.ingest_helpers import ingest
from tests.e2e.test_login import sign_in
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser


@pytest.fixture
def people(sandbox):
    ingest(
        sandbox,
        "person",
        [
            {"email": "ada@acme.io", "first_name": "Ada", "last_name": "Lovelace", "job_title": "CTO", "lead_score": 80},
            {"email": "grace@navy.mil", "first_name": "Grace", "last_name": "Hopper", "job_title": "CTO", "lead_score": 40},
            {"email": "bob@acme.io", "first_name": "Bob", "last_name": "Builder", "job_title": "CFO", "lead_score": 90},
        ],
    )


def test_marketer_builds_saves_evaluates_and_sees_members(page, live_server, make_user, sandbox, people, screenshot):
    user = make_user(Role.MARKETER, sandbox, username="mona")
    sign_in(page, user.username, PASSWORD)

    page.goto("/audiences/")
    page.get_by_role("link", name="New audience").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("New audience")
    page.get_by_label("Name").fill("Hot CTOs")

    # Pick "Job title" in the schema browser: a condition row appears in the rule editor.
    page.locator("#schema-browser").get_by_role("button", name=re.compile(r"^Job title")).click()
    row = page.locator("#rule-editor .rule-row").first
    row.get_by_label("Operator").select_option("eq")
    row.get_by_label("Value").fill("CTO")
    expect(page.locator("#estimate-count")).to_have_text("2")

    # A second condition: lead score at least 50 narrows the estimate.
    page.locator("#schema-browser").get_by_role("button", name=re.compile(r"^Lead score")).click()
    second = page.locator("#rule-editor .rule-row").nth(1)
    second.get_by_label("Operator").select_option("ge")
    second.get_by_label("Value").fill("50")
    expect(page.locator("#estimate-count")).to_have_text("1")

    # The PQL tab shows the same definition as text.
    page.get_by_role("tab", name="PQL").click()
    expect(page.locator("#pql-text")).to_have_value('person.jobTitle = "CTO" and person.leadScore >= 50')
    page.get_by_role("tab", name="Rules").click()
    screenshot(page, "builder")

    page.get_by_role("button", name="Create audience").click()

    expect(page.get_by_role("heading", level=1)).to_contain_text("Hot CTOs")
    expect(page.locator("#audience-size")).to_have_text("1")
    members = page.locator("#members")
    expect(members.get_by_role("link", name="Ada Lovelace")).to_be_visible()
    expect(members).not_to_contain_text("Grace Hopper")

    # Grace's score rises: the change reaches the audience, and a full evaluation agrees.
    ingest(sandbox, "person", [{"email": "grace@navy.mil", "lead_score": 95}])
    page.get_by_role("button", name="Evaluate now").click()
    expect(page.locator(".flash")).to_contain_text("queued for a full evaluation")
    page.reload()
    expect(page.locator("#audience-size")).to_have_text("2")
    expect(page.locator("#members").get_by_role("link", name="Grace Hopper")).to_be_visible()
    expect(page.locator("svg.size-chart")).to_be_visible()
    screenshot(page, "audience")

    audience = Audience.objects.get(name="Hot CTOs")
    assert audience.definition["condition"]["type"] == "and"
    assert audience.size == 2


def test_pql_text_applies_to_the_rules_and_errors_point_at_line_and_column(page, live_server, make_user, sandbox, people, screenshot):
    user = make_user(Role.MARKETER, sandbox, username="pat")
    sign_in(page, user.username, PASSWORD)
    page.goto("/audiences/new/")

    page.get_by_role("tab", name="PQL").click()
    page.locator("#pql-text").fill('person.jobTitle = "CTO" and\nperson.leadScore >')
    page.get_by_role("button", name="Apply to rules").click()
    expect(page.locator("#pql-error")).to_contain_text("line 2, column 19")
    screenshot(page, "pql-error")

    page.locator("#pql-text").fill('person.jobTitle = "CFO"')
    page.get_by_role("button", name="Apply to rules").click()
    expect(page.locator("#rule-editor .rule-row").first.get_by_label("Value")).to_have_value("CFO")
    expect(page.locator("#estimate-count")).to_have_text("1")


def test_first_last_occurrence_and_date_time_values_are_edited_visually(page, live_server, make_user, sandbox, people, screenshot):
    ingest(
        sandbox,
        "event",
        [
            {"identity.email": "ada@acme.io", "type": "web.visit", "occurred_at": "2026-03-02T10:15:00Z"},
            {"identity.email": "bob@acme.io", "type": "web.visit", "occurred_at": "2026-05-20T08:00:00Z"},
        ],
    )
    user = make_user(Role.MARKETER, sandbox, username="otto")
    sign_in(page, user.username, PASSWORD)
    page.goto("/audiences/new/")

    # A last-occurrence condition with a date-time value loads into the visual editor, not as raw JSON.
    page.get_by_role("tab", name="PQL").click()
    page.locator("#pql-text").fill('(select e from xEvent where e.type = "web.visit").last().occurredAt > 2026-04-01T00:00:00Z')
    page.get_by_role("button", name="Apply to rules").click()
    occurrence = page.locator("#rule-editor .rule-count").first
    expect(occurrence.get_by_label("Which")).to_have_value("last")
    expect(occurrence.get_by_label("Value").last).to_have_value("2026-04-01T00:00")
    expect(page.locator("#rule-editor .rule-raw")).to_have_count(0)
    expect(page.locator("#estimate-count")).to_have_text("1")  # Bob visited after April

    # Moving the date-time back includes Ada too; switching to "first" keeps the text form in step.
    occurrence.get_by_label("Value").last.fill("2026-03-01T12:00")
    expect(page.locator("#estimate-count")).to_have_text("2")
    occurrence.get_by_label("Which").select_option("first")
    page.get_by_role("tab", name="PQL").click()
    expect(page.locator("#pql-text")).to_have_value(re.compile(r"\.first\(\)\.occurredAt > 2026-03-01T12:00:00Z"))
    page.get_by_role("tab", name="Rules").click()
    screenshot(page, "builder-occurrence")

    # Built from scratch with the "+ First / last" button: the default is "last … in the last 30 days".
    page.get_by_role("button", name="+ First / last").first.click()
    fresh = page.locator("#rule-editor .rule-count").nth(1)
    expect(fresh.get_by_label("When")).to_have_value("inLast")
