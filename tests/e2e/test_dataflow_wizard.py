"""A marketer creates a dataflow in the wizard (audience → destination → mapping → schedule) and
sees its first run: the audience's CTO reaches the static list of the (fake) Marketo instance."""

import pytest
from playwright.sync_api import expect

from cdp.choices import Role
from cdp.services.audiences import save_audience
from connectors.models import Dataflow
from connectors.services.activation import create_destination
from tests.cdp.ingest_helpers import ingest
from tests.connectors.destinations.conftest import CTO
from tests.e2e.test_login import sign_in
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser


def test_marketer_creates_a_dataflow_and_sees_its_first_run(page, live_server, make_user, admin_user, sandbox, marketo_instance, fake_marketo, screenshot):
    static_list = fake_marketo.add_list("CTOs from Quorum")
    lead = fake_marketo.add_lead("ada@acme.io")
    ingest(sandbox, "person", [
        {"email": "ada@acme.io", "job_title": "CTO"}, {"email": "new@acme.io", "job_title": "CTO"},
        {"email": "bob@acme.io", "job_title": "CFO"},
    ])  # fmt: skip
    save_audience(sandbox, name="CTOs", definition=CTO)
    create_destination(
        sandbox, by=admin_user, name="Marketo CTO list", kind="marketo_static_list", marketo_instance=marketo_instance,
        config={"list_id": static_list},
    )  # fmt: skip
    user = make_user(Role.MARKETER, sandbox, username="mona")
    sign_in(page, user.username, PASSWORD)

    page.goto("/connectors/destinations/")
    page.get_by_role("link", name="New dataflow").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("New dataflow")

    # Step 1 refuses to move on without an audience.
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_text("Choose at least one audience.")).to_be_visible()
    page.get_by_label("CTOs").check()
    page.get_by_role("button", name="Next").click()

    page.get_by_label("Marketo CTO list").check()
    page.get_by_role("button", name="Next").click()

    # Step 3: the Marketo default mapping, email and ECID.
    rows = page.locator("#mapping-table tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0).get_by_label("Profile field")).to_have_value("email")
    expect(rows.nth(1).get_by_label("Destination field")).to_have_value("ecids")
    page.get_by_role("button", name="Next").click()

    expect(page.get_by_label("Streaming")).to_be_checked()
    page.get_by_label("Dataflow name").fill("CTOs to Marketo")
    screenshot(page, "schedule")
    page.get_by_role("button", name="Create dataflow").click()

    expect(page.get_by_role("heading", level=1)).to_contain_text("CTOs to Marketo")
    runs = page.locator("#runs-table tbody tr")
    expect(runs).to_have_count(1)
    expect(runs.first).to_contain_text("Succeeded")
    # One CTO matched and sent; the other has no Marketo lead: unmatched, listed below, never created.
    cells = runs.first.locator("td")
    expect(cells.nth(4)).to_have_text("1")
    expect(cells.nth(6)).to_have_text("1")
    expect(page.get_by_text("new@acme.io")).to_be_visible()
    screenshot(page, "first-run")
    assert fake_marketo.list_members(static_list) == [lead]
    assert fake_marketo.lead_syncs() == []
    assert Dataflow.objects.get(sandbox=sandbox).name == "CTOs to Marketo"


def test_the_destinations_page_fits_a_narrow_screen(page, live_server, make_user, sandbox, screenshot):
    save_audience(sandbox, name="CTOs", definition=CTO)
    user = make_user(Role.MARKETER, sandbox, username="nina")
    sign_in(page, user.username, PASSWORD)
    page.set_viewport_size({"width": 390, "height": 800})
    page.goto("/connectors/destinations/")
    expect(page.get_by_role("heading", name="Catalog")).to_be_visible()
    screenshot(page, "narrow")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390 + 1
