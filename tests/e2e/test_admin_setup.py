"""An admin sets Quorum up in the browser: a superuser creates an organization, a development
sandbox and a member; then registers a Marketo instance, pairs it as the journey subscription of
the production sandbox, and sees the same pairing refused for the development sandbox with the
rule's message, while pairing it there as a source is allowed."""

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from cdp.choices import Role
from cdp.models import Organization, SandboxRole
from connectors.choices import PairingKind
from connectors.models import MarketoInstance, Pairing
from tests.e2e.test_login import sign_in
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser


def switch_to(page, label):
    with page.expect_navigation():
        page.get_by_label("Sandbox").select_option(label=label)


def pair(page, kind, instance_label):
    form = page.locator("#pair-form")
    form.get_by_label("Kind").select_option(kind)
    form.get_by_label("Instance").select_option(label=instance_label)
    form.get_by_role("button", name="Pair").click()


def test_admin_sets_up_organization_sandbox_instance_and_pairings(page, live_server, make_user, sandbox, screenshot):
    root = make_user(username="root", is_superuser=True, is_staff=True)
    sign_in(page, root.username, PASSWORD)

    page.goto("/settings/")
    page.get_by_role("link", name="New organization").click()
    page.get_by_label("Name").fill("Acme Industries")
    page.get_by_label("Slug").fill("acme")
    page.get_by_role("button", name="Create organization").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Acme Industries")
    expect(page.locator(".messages")).to_contain_text("created with its production sandbox")

    page.get_by_role("link", name="New sandbox").click()
    page.get_by_label("Name").fill("dev-emea")
    page.get_by_label("Title").fill("Development EMEA")
    page.get_by_role("button", name="Create sandbox").click()
    sandboxes = page.locator("section.card").first
    expect(sandboxes).to_contain_text("Development EMEA")
    expect(sandboxes).to_contain_text("Production")

    # A marketer of the development sandbox, created with a password.
    page.get_by_role("link", name="Add member").click()
    page.get_by_label("Username").fill("mona")
    page.get_by_label("Email").fill("mona@acme.io")
    page.get_by_label("Password").fill("a-long-secret-pass")
    page.get_by_label("Development EMEA").select_option(Role.MARKETER)
    page.get_by_role("button", name="Add member").click()
    expect(page.get_by_role("row", name="mona")).to_contain_text("dev-emea: Marketer")
    screenshot(page, "organization")

    organization = Organization.objects.get(slug="acme")
    mona = get_user_model().objects.get(username="mona")
    assert SandboxRole.objects.get(membership__user=mona).sandbox.name == "dev-emea"
    assert mona.check_password("a-long-secret-pass")

    # Register the Marketo instance in Acme (the instances page belongs to the current sandbox).
    switch_to(page, "Acme Industries / Production (prod)")
    page.goto("/connectors/instances/")
    expect(page.get_by_text("Register a Marketo instance or a Salesforce org first")).to_be_visible()
    page.get_by_role("link", name="Add Marketo instance").click()
    page.get_by_label("Name").fill("Marketo EMEA")
    page.get_by_label("Munchkin ID").fill("123-abc-456")
    page.get_by_label("Client ID").fill("client-1")
    page.get_by_label("Client secret").fill("s3cret")
    page.get_by_role("button", name="Add Marketo instance").click()
    expect(page.locator("#marketo-instances")).to_contain_text("123-ABC-456")
    instance_label = str(MarketoInstance.objects.get(organization=organization))

    pair(page, PairingKind.JOURNEY_SUBSCRIPTION, instance_label)
    expect(page.locator("#pairings")).to_contain_text("Journey subscription")
    screenshot(page, "paired")

    # The development sandbox may not back its journeys with the same instance: refused, with the rule.
    switch_to(page, "Acme Industries / Development EMEA")
    pair(page, PairingKind.JOURNEY_SUBSCRIPTION, instance_label)
    refusal = page.locator("#pair-form [role=alert]")
    expect(refusal).to_contain_text("Marketo instance 123-ABC-456 already backs the journeys of another sandbox.")
    expect(refusal).to_contain_text("a Marketo instance backs the journeys of one sandbox only")
    expect(page.locator("#pairings")).to_contain_text("Nothing is paired with this sandbox yet.")
    screenshot(page, "refused")

    # As a source it may serve several sandboxes of one organization.
    pair(page, PairingKind.SOURCE, instance_label)
    expect(page.locator("#pairings")).to_contain_text("Source")
    kinds = sorted(Pairing.objects.filter(sandbox__organization=organization).values_list("sandbox__name", "kind"))
    assert kinds == [("dev-emea", PairingKind.SOURCE), ("prod", PairingKind.JOURNEY_SUBSCRIPTION)]
