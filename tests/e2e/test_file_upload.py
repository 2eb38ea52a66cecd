"""A marketer uploads a CSV of people with their own column names, maps the columns in the upload
form, reads the batch report (accepted, created, the rejected row with its field and reason, the
error report download) and finds the loaded people on the people page."""

import pytest
from playwright.sync_api import expect

from cdp.choices import Role
from cdp.models import IngestionBatch, Person
from tests.e2e.test_login import sign_in
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser

CSV = (
    "Work Email,Given name,Score\n"
    "ada@acme.io,Ada,80\n"
    "grace@navy.mil,Grace,lots\n"
    "bob@acme.io,Bob,35\n"
)


def test_marketer_uploads_a_file_and_reads_its_report(page, live_server, make_user, sandbox, screenshot):
    user = make_user(Role.MARKETER, sandbox, username="mona")
    sign_in(page, user.username, PASSWORD)

    page.goto("/profiles/ingest/")
    page.get_by_role("link", name="Upload a file").first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Upload a file")
    # Choosing the entity redraws the mapping editor (HTMX): fill it in only once it is redrawn.
    page.evaluate("document.addEventListener('htmx:afterSettle', () => { window.editorRedrawn = true; }, {once: true})")
    page.locator("#id_entity").select_option("person")
    page.wait_for_function("window.editorRedrawn === true")
    editor = page.locator("#mapping-editor")
    expect(editor.locator("legend")).to_contain_text("People")
    page.locator("#id_file").set_input_files(
        files=[{"name": "webinar-leads.csv", "mimeType": "text/csv", "buffer": CSV.encode()}]
    )
    page.locator("#id_dataset").fill("webinar")
    editor.get_by_label("email", exact=True).fill("Work Email")
    editor.get_by_label("identity.email", exact=True).fill("Work Email")
    editor.get_by_label("first_name", exact=True).fill("Given name")
    editor.get_by_label("lead_score", exact=True).fill("Score")
    screenshot(page, "upload-form")
    page.get_by_role("button", name="Upload and load").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("webinar-leads.csv")
    progress = page.locator("#batch-progress")
    expect(progress.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "100")
    stats = progress.locator(".stat")
    expect(stats.filter(has_text="Accepted").locator(".stat-value")).to_have_text("2")
    expect(stats.filter(has_text="Created").locator(".stat-value")).to_have_text("2")
    expect(stats.filter(has_text="Rejected").locator(".stat-value")).to_have_text("1")

    # The rejected row is numbered from the first data row and names its field.
    rejected = page.locator("#rejections tbody tr")
    expect(rejected).to_have_count(1)
    expect(rejected.locator("td").nth(0)).to_have_text("2")
    expect(rejected.locator("td").nth(1)).to_have_text("lead_score")
    expect(rejected).to_contain_text("lots")
    screenshot(page, "report")

    with page.expect_download() as download:
        page.get_by_role("link", name="Download error report (CSV)").click()
    report = open(download.value.path(), encoding="utf-8").read()
    assert "lead_score" in report and "grace@navy.mil" in report

    batch = IngestionBatch.objects.get(sandbox=sandbox)
    assert (batch.accepted, batch.rejected, batch.dataset) == (2, 1, "webinar")
    assert sorted(Person.objects.for_sandbox(sandbox).values_list("email", "lead_score")) == [
        ("ada@acme.io", 80), ("bob@acme.io", 35),
    ]  # fmt: skip

    page.goto("/profiles/")
    expect(page.get_by_role("link", name="Ada")).to_be_visible()
    expect(page.locator("main")).not_to_contain_text("grace@navy.mil")
    screenshot(page, "people")

    # The report also reads on a phone: its wide rejections table scrolls in its own box.
    page.set_viewport_size({"width": 390, "height": 800})
    page.goto(f"/profiles/ingest/{batch.pk}/")
    expect(page.locator("#rejections tbody tr")).to_have_count(1)
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
    screenshot(page, "report-narrow")
