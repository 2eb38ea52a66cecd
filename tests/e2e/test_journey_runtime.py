"""A marketer builds account audience → split by accounts → send email → wait → end on the canvas,
publishes it, and watches the node counts on the journey map move as the runtime works: publishing
enrolls the audience's accounts (the large one takes the email and waits, the small one takes the
"other accounts" path straight to its end), and the timer sweep three days later lets the waiting
account through to its end."""

import datetime as dt

import pytest
from django.core import mail
from django.utils import timezone
from playwright.sync_api import expect

from cdp.choices import Role
from cdp.services.audiences import save_audience
from journeys.models import EmailSend, Enrollment, Journey
from journeys.services.emails import save_email
from journeys.services.runtime import node_counts, sweep_timers
from tests.cdp.ingest_helpers import ingest
from tests.e2e.test_login import sign_in
from tests.factories import PASSWORD
from tests.journeys.runtime.conftest import make_people

pytestmark = pytest.mark.browser


@pytest.fixture(autouse=True)
def public_url(settings):
    settings.QUORUM_PUBLIC_URL = "http://testserver"  # tracking links in the emails sent


def counts_of(canvas, node_id):
    return canvas.locator(f".jc-node[data-node={node_id}] .jc-counts")


def add_node(canvas, source, slot, kind, css):
    """Add a node after ``source``; returns its id once it is selected (its settings in the panel)."""
    canvas.locator(f"button.jc-add[data-source={source}][data-slot='{slot}']").click()
    canvas.get_by_role("menuitem", name=kind).click()
    node = canvas.locator(f".jc-node.{css}.is-selected")
    expect(node).to_have_count(1)
    return node.get_attribute("data-node")


def test_published_journey_map_shows_node_counts_moving(page, live_server, make_user, sandbox, screenshot):
    make_people(sandbox, [
        {"email": "ann@acme.com", "first_name": "Ann", "account.domain": "acme.com"},
        {"email": "bob@acme.com", "first_name": "Bob", "account.domain": "acme.com"},
        {"email": "cy@tiny.io", "first_name": "Cy", "account.domain": "tiny.io"},
    ])  # fmt: skip
    ingest(sandbox, "account", [
        {"domain": "acme.com", "industry": "Software", "employees": 1500},
        {"domain": "tiny.io", "industry": "Software", "employees": 40},
    ])  # fmt: skip
    save_audience(sandbox, name="Software accounts", definition={
        "subject": "account", "condition": {"type": "compare", "field": "industry", "op": "eq", "value": "Software"},
    })  # fmt: skip
    save_email(sandbox, name="Welcome email", subject="Hi {{person.first_name}}", body_html="<p>Welcome</p>")
    user = make_user(Role.MARKETER, sandbox, username="mona")
    sign_in(page, user.username, PASSWORD)

    page.goto("/journeys/new/")
    page.get_by_label("Name").fill("Enterprise welcome")
    page.get_by_role("button", name="Create journey").click()
    canvas, panel = page.locator("#journey-canvas"), page.locator("#canvas-panel")
    apply = panel.get_by_role("button", name="Apply")

    canvas.locator(".jc-node[data-node=n1]").click()
    panel.locator("[name=audience_id]").select_option(label="Software accounts")
    apply.click()
    expect(canvas.locator(".jc-node[data-node=n1]")).to_contain_text("Software accounts")
    split_id = add_node(canvas, "n1", "next", "Split paths by accounts", "jc-split_accounts")
    panel.locator("[name=label]").fill("Size")
    panel.locator("[name=path-label]").fill("Enterprise")
    panel.locator("[name=path-pql]").fill("account.employees >= 1000")
    apply.click()
    expect(canvas.locator(f".jc-node[data-node={split_id}]")).to_contain_text("Size")
    action_id = add_node(canvas, split_id, "path:p1", "Action", "jc-action")
    panel.locator("[name=action]").select_option("send_email")
    panel.locator("[name=email_id]").select_option(label="Welcome email")
    apply.click()
    expect(canvas.locator(f".jc-node[data-node={action_id}]")).to_contain_text("Welcome email")
    wait_id = add_node(canvas, action_id, "next", "Wait", "jc-wait")
    panel.locator("[name=wait-amount]").fill("3")
    panel.locator("[name=wait-unit]").select_option("days")
    apply.click()
    expect(canvas.locator(".jc-wait")).to_contain_text("3 days")

    page.locator("#canvas-validate").click()
    expect(page.locator("#canvas-errors")).to_have_text("")
    expect(page.locator("#canvas-status")).to_have_text("Valid: ready to publish")
    page.locator("#canvas-publish").click()
    expect(page.locator("#journey-state")).to_contain_text("Live")

    # Publishing enrolled both Software accounts (on commit; Celery runs eagerly in tests).
    journey = Journey.objects.get(sandbox=sandbox, name="Enterprise welcome")
    nodes = journey.current_version.graph["nodes"]
    end_id, other_end_id = nodes[wait_id]["next"], nodes[split_id]["other"]["next"]
    assert Enrollment.objects.filter(journey=journey).count() == 2
    page.reload()
    # Counts read: accounts entered · in the node now · exited.
    expect(counts_of(canvas, "n1")).to_have_text("2 · 0 · 2")
    expect(counts_of(canvas, split_id)).to_have_text("2 · 0 · 2")
    expect(counts_of(canvas, action_id)).to_have_text("1 · 0 · 1")
    expect(counts_of(canvas, wait_id)).to_have_text("1 · 1 · 0")
    expect(counts_of(canvas, end_id)).to_have_text("0 · 0 · 0")
    expect(counts_of(canvas, other_end_id)).to_have_text("1 · 0 · 1")
    screenshot(page, "map-waiting")
    assert sorted(message.to[0] for message in mail.outbox) == ["ann@acme.com", "bob@acme.com"]
    assert EmailSend.objects.filter(sandbox=sandbox).count() == 2

    # Nothing is due yet; three days on, the sweep moves the waiting account to its end.
    assert sweep_timers(now=timezone.now() + dt.timedelta(days=2)) == 0
    assert sweep_timers(now=timezone.now() + dt.timedelta(days=3, minutes=1)) >= 1
    page.reload()
    expect(counts_of(canvas, wait_id)).to_have_text("1 · 0 · 1")
    expect(counts_of(canvas, end_id)).to_have_text("1 · 0 · 1")
    screenshot(page, "map-finished")
    assert node_counts(journey)[end_id]["entered"] == 1
    assert len(mail.outbox) == 2  # the sweep sent nothing again
