"""The journey canvas in a browser: a marketer builds account audience → split by accounts → send
email → wait → end, validates, publishes and sees it live (read-only, with its campaign plan);
paths join at a merge and deleting the split removes them; the canvas works at a narrow width."""

import datetime as dt

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from cdp.choices import Role
from cdp.models import Audience
from journeys.models import Journey, JourneyState
from journeys.services.emails import save_email
from journeys.services.journeys import create_journey
from tests.e2e.test_login import sign_in
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser


def test_marketer_builds_validates_and_publishes_a_journey(page, live_server, make_user, sandbox, screenshot):
    Audience.objects.create(
        sandbox=sandbox, name="Software accounts", kind="account",
        definition={"subject": "account", "condition": {"type": "compare", "field": "industry", "op": "eq", "value": "Software"}},
    )  # fmt: skip
    email = save_email(sandbox, name="Welcome email", subject="Hi {{person.first_name}}", body_html="<p>Welcome</p>")
    user = make_user(Role.MARKETER, sandbox, username="mona")
    sign_in(page, user.username, PASSWORD)

    page.goto("/journeys/")
    page.get_by_role("link", name="New journey").click()
    page.get_by_label("Name").fill("Onboarding")
    page.get_by_role("button", name="Create journey").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Onboarding")
    canvas, panel = page.locator("#journey-canvas"), page.locator("#canvas-panel")

    # Start: pick the account audience.
    canvas.locator(".jc-node[data-node=n1]").click()
    panel.locator("[name=audience_id]").select_option(label="Software accounts")
    panel.get_by_role("button", name="Apply").click()
    expect(canvas.locator(".jc-node[data-node=n1]")).to_contain_text("Software accounts")

    # A split by accounts after the start, with an Enterprise path written in PQL.
    canvas.locator("button.jc-add[data-source=n1][data-slot=next]").click()
    canvas.get_by_role("menuitem", name="Split paths by accounts").click()
    split = canvas.locator(".jc-split_accounts")
    expect(split).to_have_class("jc-node jc-split_accounts is-selected")
    split_id = split.get_attribute("data-node")
    panel.locator("[name=label]").fill("Size")
    panel.locator("[name=path-label]").fill("Enterprise")
    panel.locator("[name=path-pql]").fill("account.employees >= 1000")
    panel.get_by_role("button", name="Apply").click()
    expect(split).to_contain_text("Size")

    # Send the welcome email on the Enterprise path, then wait 3 days (the path's end follows).
    canvas.locator(f"button.jc-add[data-source={split_id}][data-slot='path:p1']").click()
    canvas.get_by_role("menuitem", name="Action").click()
    action = canvas.locator(".jc-action")
    panel.locator("[name=action]").select_option("send_email")
    panel.locator("[name=email_id]").select_option(label="Welcome email")
    panel.get_by_role("button", name="Apply").click()
    expect(action).to_contain_text("Welcome email")
    action_id = action.get_attribute("data-node")
    canvas.locator(f"button.jc-add[data-source={action_id}][data-slot=next]").click()
    canvas.get_by_role("menuitem", name="Wait").click()
    panel.locator("[name=wait-amount]").fill("3")
    panel.locator("[name=wait-unit]").select_option("days")
    panel.get_by_role("button", name="Apply").click()
    expect(canvas.locator(".jc-wait")).to_contain_text("3 days")
    screenshot(page, "canvas")

    page.locator("#canvas-validate").click()
    expect(page.locator("#canvas-status")).to_have_text("Valid: ready to publish")
    expect(page.locator("#journey-state")).to_contain_text("Validated")

    page.locator("#canvas-publish").click()
    expect(page.locator("#journey-state")).to_contain_text("Live")
    expect(page.locator("#canvas-publish")).to_have_count(0)
    expect(canvas.locator(".jc-counts").first).to_be_visible()
    screenshot(page, "live")

    journey = Journey.objects.get(sandbox=sandbox, name="Onboarding")
    assert journey.state == JourneyState.LIVE
    nodes = journey.current_version.graph["nodes"]
    assert nodes["n1"]["audience_id"] == journey.audience_id
    assert nodes[split_id]["paths"][0]["condition"]["rule"] == {"type": "compare", "field": "employees", "op": "ge", "value": 1000}
    assert nodes[action_id]["params"] == {"email_id": email.pk}
    assert [nodes[n]["type"] for n in ("n1", split_id, action_id)] == ["start", "split_accounts", "action"]

    page.get_by_role("link", name="Campaign plan").click()
    expect(page.locator(".plan-table")).to_contain_text("send_email")


def test_the_canvas_works_at_a_narrow_width(page, live_server, make_user, sandbox):
    now = timezone.now()
    journey = create_journey(sandbox, name="Narrow", start_at=now, end_at=now + dt.timedelta(days=30))
    user = make_user(Role.MARKETER, sandbox, username="nina")
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, user.username, PASSWORD)
    page.goto(f"/journeys/{journey.pk}/")

    # The panel goes under the canvas; adding and configuring a node still works.
    page.locator("button.jc-add[data-source=n1][data-slot=next]").click()
    page.get_by_role("menuitem", name="Wait").click()
    panel, canvas = page.locator("#canvas-panel"), page.locator(".jc-scroll")
    expect(panel.get_by_role("heading")).to_contain_text("Wait")
    assert panel.bounding_box()["y"] >= canvas.bounding_box()["y"] + canvas.bounding_box()["height"]
    panel.locator("[name=wait-amount]").fill("2")
    panel.get_by_role("button", name="Apply").click()
    expect(page.locator(".jc-wait")).to_contain_text("2 days")
    page.locator("#canvas-save").click()
    expect(page.locator("#canvas-status")).to_have_text("Saved")
    journey.refresh_from_db()
    assert [n["type"] for n in journey.graph["nodes"].values()] == ["start", "end", "wait"]


def test_paths_join_at_a_merge_and_deleting_the_split_removes_them(page, live_server, make_user, sandbox):
    now = timezone.now()
    journey = create_journey(sandbox, name="Merging", start_at=now, end_at=now + dt.timedelta(days=30))
    user = make_user(Role.MARKETER, sandbox, username="max")
    sign_in(page, user.username, PASSWORD)
    page.goto(f"/journeys/{journey.pk}/")
    canvas, panel = page.locator("#journey-canvas"), page.locator("#canvas-panel")

    canvas.locator("button.jc-add[data-source=n1][data-slot=next]").click()
    canvas.get_by_role("menuitem", name="Split paths by people").click()
    split_id = canvas.locator(".jc-split_people").get_attribute("data-node")
    canvas.locator(f"button.jc-add[data-source={split_id}][data-slot='path:p1']").click()
    canvas.get_by_role("menuitem", name="Merge paths").click()
    merge_id = canvas.locator(".jc-merge").get_attribute("data-node")

    # The "other people" path ends (its end comes first: the split's outlets are drawn before the
    # merge's): join it to the merge from the end's settings.
    ends = canvas.locator(".jc-end")
    expect(ends).to_have_count(2)
    ends.first.click()
    panel.locator("[name=merge]").select_option(merge_id)
    panel.get_by_role("button", name="Apply").click()
    expect(canvas.locator(".jc-end")).to_have_count(1)
    page.locator("#canvas-validate").click()
    errors = page.locator("#canvas-errors")
    expect(errors).to_contain_text("Pick the account audience")
    expect(errors.locator("li[data-code=merge_incoming]")).to_have_count(0)

    page.once("dialog", lambda dialog: dialog.accept())
    canvas.locator(f".jc-node[data-node={split_id}]").click()
    panel.get_by_role("button", name="Delete node").click()
    expect(canvas.locator(".jc-node")).to_have_count(2)
    page.locator("#canvas-save").click()
    expect(page.locator("#canvas-status")).to_have_text("Saved")
    journey.refresh_from_db()
    assert sorted(n["type"] for n in journey.graph["nodes"].values()) == ["end", "start"]
