"""In a browser: an admin connects the (fake) Marketo instance as a source, tests the connection,
starts a backfill and watches its progress block until the history is in."""

import datetime as dt

import pytest
from playwright.sync_api import expect

from cdp.models import Person
from connectors.models import SyncRun
from connectors.services.sources import run_sync
from tests.e2e.test_login import sign_in
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser


def test_admin_connects_marketo_and_backfills_it(page, live_server, admin_user, sandbox, marketo_instance, fake_marketo, screenshot):
    fake_marketo.add_lead("ada@acme.com", firstName="Ada", at=dt.datetime.now(dt.UTC) - dt.timedelta(days=3))
    sign_in(page, admin_user.username, PASSWORD)

    page.goto("/connectors/sources/")
    expect(page.get_by_text("No source is paired with this sandbox yet.")).to_be_visible()
    page.get_by_label("Instance").select_option(label=str(marketo_instance))
    page.get_by_label("Name").fill("Marketo production")
    page.get_by_role("button", name="Connect").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Marketo production")

    page.get_by_role("button", name="Test connection").click()
    expect(page.get_by_text(f"Connected to Marketo instance {fake_marketo.munchkin_id}")).to_be_visible()

    page.get_by_role("button", name="Start backfill").click()
    progress = page.get_by_role("progressbar")
    expect(progress).to_be_visible()
    screenshot(page, "backfill-started")

    # The export jobs take a while at Marketo: play the beat until the run is done; the page keeps polling.
    run = SyncRun.objects.get()
    for _ in range(30):
        run_sync(run.pk, now=(run.resume_after or dt.datetime.now(dt.UTC)) + dt.timedelta(seconds=1))
        run.refresh_from_db()
        if not run.is_active:
            break
    expect(page.locator(".run-progress").first).to_contain_text("Succeeded")
    expect(progress).to_have_attribute("aria-valuenow", "100")
    assert Person.objects.for_sandbox(sandbox).count() == 1

    page.set_viewport_size({"width": 420, "height": 900})
    page.goto("/connectors/sources/")
    expect(page.get_by_role("link", name="Marketo production")).to_be_visible()
    screenshot(page, "sources-narrow")
