"""Admin pages under /settings/: what each role sees and may do, and isolation between organizations."""

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from cdp.choices import Role
from cdp.models import Account, ApiToken, Membership, Sandbox, SandboxRole
from cdp.services import issue_api_token
from tests.factories import SandboxFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def dev_sandbox(organization):
    return SandboxFactory(organization=organization, name="dev", title="Development")


@pytest.fixture
def other_admin(make_user, other_sandbox):
    return make_user(org_admin_of=other_sandbox.organization)


def org_url(organization):
    return reverse("cdp:admin-organization", args=[organization.pk])


# --- Organizations --------------------------------------------------------------------------


def test_organization_list_shows_own_organizations_with_counts(
    login, viewer, admin_user, organization, sandbox, dev_sandbox, other_sandbox
):
    page = login(viewer).get(reverse("cdp:admin-organizations"))
    assert page.status_code == 200
    html = page.content.decode()
    assert organization.name in html
    assert other_sandbox.organization.name not in html
    organizations = list(page.context["organizations"])
    assert [(o.sandbox_count, o.member_count) for o in organizations] == [(2, 2)]
    # The viewer only sees the names of sandboxes they have a role in.
    assert [sb.name for sb in organizations[0].visible_sandboxes] == ["prod"]
    assert "New organization" not in html


def test_superuser_creates_an_organization_from_the_page(login, organization):
    root = UserFactory(is_superuser=True, is_staff=True)
    client = login(root)
    assert "New organization" in client.get(reverse("cdp:admin-organizations")).content.decode()
    response = client.post(reverse("cdp:admin-organization-create"), {"name": "Globex", "slug": "globex"})
    assert response.status_code == 302
    assert Sandbox.objects.filter(organization__slug="globex", name="prod", type="production").exists()


def test_org_admin_cannot_create_organizations(login, admin_user):
    client = login(admin_user)
    assert client.get(reverse("cdp:admin-organization-create")).status_code == 403
    assert client.post(reverse("cdp:admin-organization-create"), {"name": "X", "slug": "x"}).status_code == 403


def test_viewer_sees_the_organization_without_admin_buttons(
    login, viewer, admin_user, organization, sandbox, dev_sandbox
):
    page = login(viewer).get(org_url(organization))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Your membership" in html
    for admin_only in ("New sandbox", "Add member", "Reset…", "Delete…", "Edit roles", "Rename"):
        assert admin_only not in html, admin_only
    # Only their own sandbox and membership are listed.
    assert [sb.name for sb, _, _ in page.context["sandboxes"]] == ["prod"]
    assert [m.user for m in page.context["memberships"]] == [viewer]
    assert admin_user.username not in html


def test_admin_sees_everything_with_admin_buttons(login, admin_user, viewer, organization, sandbox, dev_sandbox):
    page = login(admin_user).get(org_url(organization))
    html = page.content.decode()
    for button in ("New sandbox", "Add member", "Reset…", "Edit roles", "Rename"):
        assert button in html, button
    assert reverse("cdp:admin-sandbox-delete", args=[dev_sandbox.pk]) in html
    # Production sandboxes offer no delete button.
    assert reverse("cdp:admin-sandbox-delete", args=[sandbox.pk]) not in html
    assert {m.user for m in page.context["memberships"]} == {admin_user, viewer}


def test_admin_filters_members(login, admin_user, viewer, marketer, organization):
    page = login(admin_user).get(org_url(organization), {"role": "marketer"})
    assert [m.user for m in page.context["memberships"]] == [marketer]


def test_another_organizations_pages_answer_404(login, admin_user, other_admin, other_sandbox):
    client = login(admin_user)
    foreign_org = other_sandbox.organization
    foreign_membership = Membership.objects.get(user=other_admin)
    assert foreign_org.name not in client.get(reverse("cdp:admin-organizations")).content.decode()
    assert client.get(org_url(foreign_org)).status_code == 404
    for url in (
        reverse("cdp:admin-organization-rename", args=[foreign_org.pk]),
        reverse("cdp:admin-sandbox-create", args=[foreign_org.pk]),
        reverse("cdp:admin-member-add", args=[foreign_org.pk]),
        reverse("cdp:admin-sandbox-edit", args=[other_sandbox.pk]),
        reverse("cdp:admin-sandbox-reset", args=[other_sandbox.pk]),
        reverse("cdp:admin-sandbox-delete", args=[other_sandbox.pk]),
        reverse("cdp:admin-member-edit", args=[foreign_membership.pk]),
        reverse("cdp:admin-member-remove", args=[foreign_membership.pk]),
    ):
        assert client.get(url).status_code == 404, url
        assert client.post(url, {}).status_code == 404, url
    assert Sandbox.objects.filter(pk=other_sandbox.pk).exists()
    assert Membership.objects.filter(pk=foreign_membership.pk).exists()


def test_admin_renames_the_organization(login, admin_user, organization):
    response = login(admin_user).post(
        reverse("cdp:admin-organization-rename", args=[organization.pk]), {"name": "Initech"}
    )
    assert response.status_code == 302
    organization.refresh_from_db()
    assert organization.name == "Initech"


# --- Sandboxes ------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.VIEWER, Role.MARKETER])
def test_viewers_and_marketers_get_403_on_sandbox_admin_posts(
    login, make_user, organization, sandbox, dev_sandbox, role
):
    client = login(make_user(role, sandbox))
    assert (
        client.post(
            reverse("cdp:admin-sandbox-create", args=[organization.pk]),
            {"name": "x", "title": "X", "type": "development"},
        ).status_code
        == 403
    )
    assert client.post(reverse("cdp:admin-sandbox-edit", args=[sandbox.pk]), {"title": "Mine"}).status_code == 403
    assert client.post(reverse("cdp:admin-sandbox-reset", args=[sandbox.pk]), {"confirm": "prod"}).status_code == 403
    assert client.get(reverse("cdp:admin-sandbox-reset", args=[sandbox.pk])).status_code == 403
    assert not Sandbox.objects.filter(name="x").exists()
    sandbox.refresh_from_db()
    assert (sandbox.title, sandbox.last_reset_at) == ("Production", None)


def test_sandbox_in_which_the_user_has_no_role_answers_404(login, viewer, dev_sandbox):
    client = login(viewer)
    assert client.get(reverse("cdp:admin-sandbox-reset", args=[dev_sandbox.pk])).status_code == 404
    assert client.post(reverse("cdp:admin-sandbox-delete", args=[dev_sandbox.pk])).status_code == 404


def test_admin_creates_a_sandbox_and_sees_duplicate_name_errors(login, admin_user, organization, sandbox):
    client = login(admin_user)
    url = reverse("cdp:admin-sandbox-create", args=[organization.pk])
    assert client.get(url).status_code == 200
    response = client.post(url, {"name": "dev-emea", "title": "Dev EMEA", "type": "development"})
    assert response.status_code == 302
    assert organization.sandboxes.filter(name="dev-emea").exists()

    again = client.post(url, {"name": "dev-emea", "title": "Again", "type": "development"})
    assert again.status_code == 200
    assert "already has a sandbox named" in " ".join(again.context["form"].errors["name"])


def test_admin_retitles_a_sandbox(login, admin_user, sandbox):
    response = login(admin_user).post(reverse("cdp:admin-sandbox-edit", args=[sandbox.pk]), {"title": "Live"})
    assert response.status_code == 302
    sandbox.refresh_from_db()
    assert sandbox.title == "Live"


def test_reset_page_warns_and_needs_the_typed_name(login, admin_user, sandbox, dev_sandbox):
    Account.objects.create(sandbox=sandbox, name="Initech")
    Account.objects.create(sandbox=sandbox, name="Hooli")
    Account.objects.create(sandbox=dev_sandbox, name="Dev only")
    client = login(admin_user)
    url = reverse("cdp:admin-sandbox-reset", args=[sandbox.pk])
    page = client.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert "deletes every piece of data" in html
    # What will go, counted for this sandbox only.
    assert ("Accounts", 2) in page.context["summary"]
    assert "production sandbox" in html
    assert "Type prod to confirm." in html

    wrong = client.post(url, {"confirm": "Production"})
    assert wrong.status_code == 200
    assert "Type the sandbox name 'prod' exactly" in " ".join(wrong.context["form"].errors["confirm"])
    sandbox.refresh_from_db()
    assert sandbox.last_reset_at is None

    right = client.post(url, {"confirm": "prod"}, follow=True)
    assert right.redirect_chain[-1][0] == org_url(sandbox.organization)
    assert "reset: 2 rows deleted" in right.content.decode()
    sandbox.refresh_from_db()
    dev_sandbox.refresh_from_db()
    assert sandbox.last_reset_at is not None
    assert dev_sandbox.last_reset_at is None
    assert not Account.objects.for_sandbox(sandbox).exists()
    assert Account.objects.for_sandbox(dev_sandbox).count() == 1


def test_sandbox_admin_sees_reset_only_for_their_sandbox(login, make_user, organization, sandbox, dev_sandbox):
    user = make_user(Role.ADMIN, dev_sandbox)
    SandboxRole.objects.create(membership=Membership.objects.get(user=user), sandbox=sandbox, role=Role.VIEWER)
    client = login(user)
    html = client.get(org_url(organization)).content.decode()
    assert reverse("cdp:admin-sandbox-reset", args=[dev_sandbox.pk]) in html
    assert reverse("cdp:admin-sandbox-reset", args=[sandbox.pk]) not in html
    assert client.post(reverse("cdp:admin-sandbox-reset", args=[dev_sandbox.pk]), {"confirm": "dev"}).status_code == 302
    # A sandbox admin is not an organization admin: no deleting, no members.
    assert client.post(reverse("cdp:admin-sandbox-delete", args=[dev_sandbox.pk])).status_code == 403


def test_admin_deletes_a_development_sandbox_after_confirming(login, admin_user, dev_sandbox):
    client = login(admin_user)
    url = reverse("cdp:admin-sandbox-delete", args=[dev_sandbox.pk])
    page = client.get(url)
    assert "cannot be undone" in page.content.decode()
    assert client.post(url).status_code == 302
    assert not Sandbox.objects.filter(pk=dev_sandbox.pk).exists()


def test_production_sandbox_delete_is_refused_on_the_page(login, admin_user, sandbox):
    client = login(admin_user)
    url = reverse("cdp:admin-sandbox-delete", args=[sandbox.pk])
    page = client.get(url).content.decode()
    assert "production sandboxes cannot be deleted" in page
    assert "Delete sandbox</button>" not in page
    response = client.post(url, follow=True)
    assert "production sandboxes cannot be deleted" in response.content.decode()
    assert Sandbox.objects.filter(pk=sandbox.pk).exists()


# --- Members --------------------------------------------------------------------------------


def test_admin_adds_an_existing_user_with_roles(login, admin_user, organization, sandbox, dev_sandbox):
    newcomer = UserFactory()
    response = login(admin_user).post(
        reverse("cdp:admin-member-add", args=[organization.pk]),
        {"username": newcomer.username, f"role_{sandbox.pk}": "viewer", f"role_{dev_sandbox.pk}": ""},
    )
    assert response.status_code == 302
    membership = Membership.objects.get(user=newcomer, organization=organization)
    assert list(membership.sandbox_roles.values_list("sandbox__name", "role")) == [("prod", "viewer")]


def test_admin_creates_a_user_from_the_page(login, admin_user, organization, sandbox, client):
    page = login(admin_user).get(reverse("cdp:admin-member-add", args=[organization.pk]))
    assert "Sandbox roles" in page.content.decode()
    response = client.post(
        reverse("cdp:admin-member-add", args=[organization.pk]),
        {"username": "fresh", "email": "fresh@example.com", "password": "a-long-enough-passphrase", "is_admin": "on"},
    )
    assert response.status_code == 302
    assert Membership.objects.get(user__username="fresh").is_admin


def test_member_form_shows_service_errors_on_the_field(login, admin_user, organization, viewer):
    client = login(admin_user)
    url = reverse("cdp:admin-member-add", args=[organization.pk])
    unknown = client.post(url, {"username": "ghost"})
    assert "No user is named 'ghost'" in " ".join(unknown.context["form"].errors["username"])
    twice = client.post(url, {"username": viewer.username})
    assert "already a member" in " ".join(twice.context["form"].errors["username"])
    weak = client.post(url, {"username": "weakling", "email": "w@example.com", "password": "123"})
    assert weak.context["form"].errors["password"]
    assert not get_user_model().objects.filter(username__in=["ghost", "weakling"]).exists()


def test_admin_edits_roles_and_removes_a_member(login, admin_user, viewer, sandbox, dev_sandbox):
    membership = Membership.objects.get(user=viewer)
    client = login(admin_user)
    edit = reverse("cdp:admin-member-edit", args=[membership.pk])
    assert client.get(edit).context["form"][f"role_{sandbox.pk}"].value() == "viewer"
    response = client.post(edit, {f"role_{sandbox.pk}": "", f"role_{dev_sandbox.pk}": "marketer"})
    assert response.status_code == 302
    assert list(membership.sandbox_roles.values_list("sandbox__name", "role")) == [("dev", "marketer")]

    remove = reverse("cdp:admin-member-remove", args=[membership.pk])
    assert viewer.username in client.get(remove).content.decode()
    assert client.post(remove).status_code == 302
    assert not Membership.objects.filter(pk=membership.pk).exists()


def test_last_admin_demotion_is_refused_on_the_form(login, admin_user, organization):
    membership = Membership.objects.get(user=admin_user)
    response = login(admin_user).post(reverse("cdp:admin-member-edit", args=[membership.pk]), {})
    assert response.status_code == 200
    assert "last admin" in " ".join(response.context["form"].errors["is_admin"])
    membership.refresh_from_db()
    assert membership.is_admin


def test_admin_who_leaves_lands_on_the_organization_list(login, admin_user, make_user, organization):
    make_user(org_admin_of=organization)
    own = Membership.objects.get(user=admin_user)
    response = login(admin_user).post(reverse("cdp:admin-member-remove", args=[own.pk]))
    assert response["Location"] == reverse("cdp:admin-organizations")
    assert not Membership.objects.filter(pk=own.pk).exists()


@pytest.mark.parametrize("role", [Role.VIEWER, Role.MARKETER, Role.ADMIN])
def test_non_admins_get_403_on_member_pages(login, make_user, organization, sandbox, viewer, role):
    user = make_user(role, sandbox)
    client = login(user)
    target = Membership.objects.get(user=viewer)
    own = Membership.objects.get(user=user)
    assert client.get(reverse("cdp:admin-member-add", args=[organization.pk])).status_code == 403
    assert (
        client.post(
            reverse("cdp:admin-member-add", args=[organization.pk]),
            {"username": "x", "email": "x@example.com", "password": "a-long-enough-passphrase"},
        ).status_code
        == 403
    )
    # Someone else's membership is not even visible to them; their own is, but not theirs to change.
    assert client.post(reverse("cdp:admin-member-remove", args=[target.pk])).status_code == 404
    assert client.post(reverse("cdp:admin-member-edit", args=[own.pk]), {"is_admin": "on"}).status_code == 403
    assert client.post(reverse("cdp:admin-member-remove", args=[own.pk])).status_code == 403
    assert not get_user_model().objects.filter(username="x").exists()
    assert Membership.objects.filter(pk=target.pk).exists()
    own.refresh_from_db()
    assert own.is_admin is False


# --- API tokens -----------------------------------------------------------------------------


def test_issued_key_is_shown_once(login, marketer):
    client = login(marketer)
    url = reverse("cdp:admin-tokens")
    page = client.get(url)
    assert page.status_code == 200
    # Only their own tokens to manage: no owner to choose.
    assert page.context["form"].fields["user"].widget.is_hidden

    response = client.post(url, {"name": "Zapier", "user": marketer.pk})
    assert response.status_code == 200
    key = response.context["issued_key"]
    html = response.content.decode()
    assert f'<div class="secret-once" id="issued-key">{key}</div>' in html
    assert "shown only this once" in html
    assert response["Cache-Control"] == "no-store"
    token = ApiToken.objects.get(user=marketer)
    assert token.name == "Zapier"

    again = client.get(url).content.decode()
    assert key not in again
    assert token.key_prefix in again


def test_tokens_page_lists_own_and_administered_users_tokens(login, admin_user, marketer, other_sandbox, make_user):
    stranger = make_user(Role.VIEWER, other_sandbox)
    issue_api_token(user=marketer, name="marketer job", created_by=marketer)
    issue_api_token(user=stranger, name="stranger job", created_by=stranger)
    html = login(admin_user).get(reverse("cdp:admin-tokens")).content.decode()
    assert "marketer job" in html
    assert "stranger job" not in html


def test_admin_issues_a_token_for_a_member(login, admin_user, marketer, other_sandbox, make_user):
    stranger = make_user(Role.VIEWER, other_sandbox)
    client = login(admin_user)
    form = client.get(reverse("cdp:admin-tokens")).context["form"]
    assert set(form.fields["user"].queryset) == {admin_user, marketer}
    response = client.post(reverse("cdp:admin-tokens"), {"name": "for them", "user": marketer.pk})
    assert response.context["issued_token"].user == marketer
    refused = client.post(reverse("cdp:admin-tokens"), {"name": "no", "user": stranger.pk})
    assert "user" in refused.context["form"].errors
    assert not ApiToken.objects.filter(user=stranger).exists()


def test_marketer_cannot_issue_for_a_colleague(login, marketer, viewer):
    response = login(marketer).post(reverse("cdp:admin-tokens"), {"name": "for viewer", "user": viewer.pk})
    assert "user" in response.context["form"].errors
    assert not ApiToken.objects.filter(user=viewer).exists()


def test_revoke_inline_with_htmx_and_without(login, marketer):
    first, _ = issue_api_token(user=marketer, name="first", created_by=marketer)
    second, _ = issue_api_token(user=marketer, name="second", created_by=marketer)
    client = login(marketer)

    row = client.post(reverse("cdp:admin-token-revoke", args=[first.pk]), HTTP_HX_REQUEST="true")
    assert row.status_code == 200
    html = row.content.decode()
    assert html.strip().startswith(f'<tr id="token-{first.pk}">')
    assert "Revoked" in html and "hx-post" not in html

    plain = client.post(reverse("cdp:admin-token-revoke", args=[second.pk]))
    assert plain.status_code == 302
    first.refresh_from_db()
    second.refresh_from_db()
    assert not first.is_active and not second.is_active


def test_revoking_someone_elses_token_answers_404(login, marketer, admin_user):
    token, _ = issue_api_token(user=admin_user, name="admin's", created_by=admin_user)
    assert login(marketer).post(reverse("cdp:admin-token-revoke", args=[token.pk])).status_code == 404
    token.refresh_from_db()
    assert token.is_active


def test_anonymous_visitors_are_sent_to_login(client, organization):
    for url in (reverse("cdp:admin-organizations"), org_url(organization), reverse("cdp:admin-tokens")):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))
