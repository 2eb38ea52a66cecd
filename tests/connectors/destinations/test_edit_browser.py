"""A marketer edits a dataflow in the browser: the wizard opens filled with its settings, and taking
an audience out removes its people from the (fake) Marketo static list."""

import pytest
from playwright.sync_api import expect

from cdp.choices import Role
from cdp.services.audiences import save_audience
from connectors.models import Dataflow
from connectors.services.activation import create_dataflow, create_destination
from tests.cdp.ingest_helpers import ingest
from tests.connectors.destinations.conftest import CTO
from tests.e2e.test_login import sign_in
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser

ANNS = {"subject": "person", "condition": {"type": "compare", "field": "firstName", "op": "eq", "value": "Ann"}}


def test_marketer_takes_an_audience_out_of_a_dataflow_and_its_people_leave_the_list(
    page, live_server, make_user, admin_user, sandbox, marketo_instance, fake_marketo, screenshot
):
    static_list = fake_marketo.add_list("Quorum")
    cto, ann = fake_marketo.add_lead("cto@acme.io"), fake_marketo.add_lead("ann@acme.io")
    ingest(sandbox, "person", [
        {"email": "cto@acme.io", "job_title": "CTO", "first_name": "Bob"}, {"email": "ann@acme.io", "job_title": "CEO", "first_name": "Ann"},
    ])  # fmt: skip
    ctos, anns = save_audience(sandbox, name="CTOs", definition=CTO), save_audience(sandbox, name="Anns", definition=ANNS)
    destination = create_destination(
        sandbox, by=admin_user, name="Marketo list", kind="marketo_static_list", marketo_instance=marketo_instance,
        config={"list_id": static_list},
    )  # fmt: skip
    mapping = [{"source": "email", "target": "email"}, {"source": "first_name", "target": "firstName"}]
    flow = create_dataflow(sandbox, by=admin_user, name="People to Marketo", destination=destination, audiences=[ctos, anns], mapping=mapping)
    assert sorted(fake_marketo.list_members(static_list)) == sorted([cto, ann])

    sign_in(page, make_user(Role.MARKETER, sandbox, username="mona").username, PASSWORD)
    page.goto(f"/connectors/dataflows/{flow.pk}/")
    page.get_by_role("link", name="Edit").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Edit dataflow: People to Marketo")
    expect(page.get_by_label("CTOs")).to_be_checked()
    page.get_by_label("CTOs").uncheck()
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_label("Marketo list")).to_be_checked()
    expect(page.get_by_label("Marketo list")).to_be_disabled()
    page.get_by_role("button", name="Next").click()
    rows = page.locator("#mapping-table tbody tr")  # the dataflow's own mapping, not the default
    expect(rows).to_have_count(2)
    expect(rows.nth(1).get_by_label("Destination field")).to_have_value("firstName")
    page.get_by_role("button", name="Next").click()
    screenshot(page, "edit-schedule")
    page.get_by_role("button", name="Save changes").click()

    expect(page.get_by_role("heading", level=1)).to_contain_text("People to Marketo")
    expect(page.locator("#runs-table tbody tr").first).to_contain_text("Succeeded")
    assert fake_marketo.list_members(static_list) == [ann]
    assert list(Dataflow.objects.get(pk=flow.pk).audiences.all()) == [anns]
