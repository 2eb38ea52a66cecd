"""REST API for organizations, sandboxes and members: who may do what, and nothing of another
organization is visible or changeable."""

import pytest
from django.contrib.auth import get_user_model

from cdp.choices import Role
from cdp.models import Account, Membership, Organization, Person, Sandbox, SandboxRole
from tests.factories import PASSWORD, SandboxFactory, UserFactory, grant, make_org_admin

pytestmark = pytest.mark.django_db


def error_of(response, status):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}, body
    assert body["error"]["message"], body
    return body["error"]


def results(response):
    assert response.status_code == 200, response.content
    body = response.json()
    assert {"count", "next", "previous", "results"} <= set(body), "lists are paginated"
    return body["results"]


@pytest.fixture
def dev_sandbox(organization):
    return SandboxFactory(organization=organization, name="dev", title="Development")


@pytest.fixture
def other_admin(make_user, other_sandbox):
    """Admin of the other organization, the one ``other_sandbox`` belongs to."""
    return make_user(org_admin_of=other_sandbox.organization)


@pytest.fixture
def superuser(db):
    return UserFactory(is_superuser=True, is_staff=True)


# --- Error body and authentication ---------------------------------------------------------


def test_anonymous_caller_gets_the_error_body(api_client):
    error = error_of(api_client.get("/api/organizations/"), 401)
    assert error["code"] == "not_authenticated"


# --- Organizations --------------------------------------------------------------------------


def test_organization_list_holds_only_the_callers_organizations_with_counts(
    api_as, viewer, sandbox, dev_sandbox, other_sandbox, admin_user
):
    rows = results(api_as(viewer).get("/api/organizations/"))
    assert [row["id"] for row in rows] == [sandbox.organization_id]
    assert rows[0]["sandbox_count"] == 2
    assert rows[0]["member_count"] == 2  # viewer and admin_user
    assert rows[0]["is_admin"] is False

    admin_rows = results(api_as(admin_user).get("/api/organizations/"))
    assert admin_rows[0]["is_admin"] is True


def test_superuser_lists_every_organization(api_as, superuser, sandbox, other_sandbox):
    ids = {row["id"] for row in results(api_as(superuser).get("/api/organizations/"))}
    assert ids == {sandbox.organization_id, other_sandbox.organization_id}


def test_another_organization_answers_404(api_as, admin_user, other_sandbox):
    client = api_as(admin_user)
    url = f"/api/organizations/{other_sandbox.organization_id}/"
    assert error_of(client.get(url), 404)["code"] == "not_found"
    error_of(client.patch(url, {"name": "Hijacked"}, format="json"), 404)
    assert Organization.objects.get(pk=other_sandbox.organization_id).name != "Hijacked"


def test_only_superusers_create_organizations_which_start_with_a_production_sandbox(api_as, superuser, admin_user):
    error = error_of(
        api_as(admin_user).post("/api/organizations/", {"name": "Acme", "slug": "acme"}, format="json"), 403
    )
    assert error["code"] == "permission_denied"
    assert not Organization.objects.filter(slug="acme").exists()

    response = api_as(superuser).post("/api/organizations/", {"name": "Acme", "slug": "acme"}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["sandbox_count"] == 1
    organization = Organization.objects.get(slug="acme")
    assert list(organization.sandboxes.values_list("name", "type")) == [("prod", "production")]


def test_organization_create_validation_names_the_field(api_as, superuser, organization):
    response = api_as(superuser).post("/api/organizations/", {"name": "New", "slug": organization.slug}, format="json")
    error = error_of(response, 400)
    assert error["code"] == "validation_error"
    assert "slug" in error["fields"]

    error = error_of(
        api_as(superuser).post("/api/organizations/", {"name": "Bad", "slug": "Not A Slug"}, format="json"), 400
    )
    assert "slug" in error["fields"]


def test_org_admin_renames_organization_marketer_cannot(api_as, admin_user, marketer, organization):
    url = f"/api/organizations/{organization.pk}/"
    error_of(api_as(marketer).patch(url, {"name": "Renamed by marketer"}, format="json"), 403)
    response = api_as(admin_user).patch(url, {"name": "Renamed"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["name"] == "Renamed"
    organization.refresh_from_db()
    assert organization.name == "Renamed"


def test_organization_cannot_be_deleted_through_the_api(api_as, superuser, organization):
    assert api_as(superuser).delete(f"/api/organizations/{organization.pk}/").status_code == 405
    assert Organization.objects.filter(pk=organization.pk).exists()


# --- Sandboxes ------------------------------------------------------------------------------


def test_sandbox_list_holds_sandboxes_with_a_role_and_the_role(api_as, viewer, sandbox, dev_sandbox, other_sandbox):
    rows = results(api_as(viewer).get("/api/sandboxes/"))
    assert [(row["id"], row["role"]) for row in rows] == [(sandbox.pk, "viewer")]


def test_org_admin_sees_every_sandbox_of_the_organization_as_admin(
    api_as, admin_user, sandbox, dev_sandbox, other_sandbox
):
    rows = results(api_as(admin_user).get("/api/sandboxes/"))
    assert {row["id"]: row["role"] for row in rows} == {sandbox.pk: "admin", dev_sandbox.pk: "admin"}


def test_sandbox_list_filters_by_type_and_organization(api_as, admin_user, sandbox, dev_sandbox, organization):
    client = api_as(admin_user)
    assert [r["id"] for r in results(client.get("/api/sandboxes/", {"type": "development"}))] == [dev_sandbox.pk]
    assert len(results(client.get("/api/sandboxes/", {"organization": organization.pk}))) == 2


def test_filtering_by_another_organization_reveals_nothing(api_as, admin_user, other_sandbox):
    client = api_as(admin_user)
    foreign = client.get("/api/sandboxes/", {"organization": other_sandbox.organization_id})
    missing = client.get("/api/sandboxes/", {"organization": 987654})
    assert error_of(foreign, 400)["fields"].keys() == {"organization"}
    # Same answer as for an id that does not exist: the other organization's existence stays hidden.
    assert foreign.json()["error"]["fields"]["organization"] == [
        m.replace("987654", str(other_sandbox.organization_id))
        for m in missing.json()["error"]["fields"]["organization"]
    ]


def test_another_organizations_sandbox_answers_404_for_every_method(api_as, admin_user, other_sandbox):
    client = api_as(admin_user)
    url = f"/api/sandboxes/{other_sandbox.pk}/"
    error_of(client.get(url), 404)
    error_of(client.patch(url, {"title": "x"}, format="json"), 404)
    error_of(client.delete(url), 404)
    error_of(client.post(f"{url}reset/", {"confirm": other_sandbox.name}, format="json"), 404)
    assert Sandbox.objects.get(pk=other_sandbox.pk).last_reset_at is None


def test_org_admin_creates_a_development_sandbox(api_as, admin_user, organization, sandbox):
    response = api_as(admin_user).post(
        "/api/sandboxes/", {"organization": organization.pk, "name": "dev-emea", "title": "Dev EMEA"}, format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["name"], body["type"], body["organization"], body["role"]) == (
        "dev-emea",
        "development",
        organization.pk,
        "admin",
    )


@pytest.mark.parametrize("role", [Role.VIEWER, Role.MARKETER, Role.ADMIN])
def test_sandbox_role_holders_cannot_create_sandboxes(api_as, make_user, sandbox, organization, role):
    user = make_user(role, sandbox)
    response = api_as(user).post(
        "/api/sandboxes/", {"organization": organization.pk, "name": "sneaky", "title": "Sneaky"}, format="json"
    )
    assert error_of(response, 403)["code"] == "permission_denied"
    assert not Sandbox.objects.filter(name="sneaky").exists()


def test_sandbox_create_errors_name_the_field(api_as, admin_user, organization, sandbox, other_sandbox):
    client = api_as(admin_user)
    duplicate = client.post(
        "/api/sandboxes/", {"organization": organization.pk, "name": "prod", "title": "Again"}, format="json"
    )
    assert "already has a sandbox named 'prod'" in error_of(duplicate, 400)["fields"]["name"][0]
    bad_name = client.post(
        "/api/sandboxes/", {"organization": organization.pk, "name": "Bad Name!", "title": "x"}, format="json"
    )
    assert "name" in error_of(bad_name, 400)["fields"]
    foreign = client.post(
        "/api/sandboxes/", {"organization": other_sandbox.organization_id, "name": "mine", "title": "x"}, format="json"
    )
    assert "organization" in error_of(foreign, 400)["fields"]
    assert not other_sandbox.organization.sandboxes.filter(name="mine").exists()


def test_sandbox_title_changes_by_org_admin_only(api_as, admin_user, viewer, marketer, sandbox):
    url = f"/api/sandboxes/{sandbox.pk}/"
    error_of(api_as(viewer).patch(url, {"title": "Viewer title"}, format="json"), 403)
    error_of(api_as(marketer).patch(url, {"title": "Marketer title"}, format="json"), 403)
    response = api_as(admin_user).patch(url, {"title": "Live", "name": "ignored"}, format="json")
    assert response.status_code == 200, response.content
    sandbox.refresh_from_db()
    assert (sandbox.title, sandbox.name) == ("Live", "prod")


def test_org_admin_deletes_a_development_sandbox(api_as, admin_user, dev_sandbox):
    assert api_as(admin_user).delete(f"/api/sandboxes/{dev_sandbox.pk}/").status_code == 204
    assert not Sandbox.objects.filter(pk=dev_sandbox.pk).exists()


def test_production_sandbox_cannot_be_deleted(api_as, admin_user, sandbox):
    error = error_of(api_as(admin_user).delete(f"/api/sandboxes/{sandbox.pk}/"), 400)
    assert error["code"] == "rule_violation"
    assert error["rule"] == "production_sandbox_not_deletable"
    assert "production" in error["message"]
    assert Sandbox.objects.filter(pk=sandbox.pk).exists()


def test_marketer_cannot_delete_a_sandbox(api_as, make_user, dev_sandbox):
    marketer = make_user(Role.MARKETER, dev_sandbox)
    error_of(api_as(marketer).delete(f"/api/sandboxes/{dev_sandbox.pk}/"), 403)
    assert Sandbox.objects.filter(pk=dev_sandbox.pk).exists()


# --- Sandbox reset --------------------------------------------------------------------------


def test_reset_with_the_wrong_confirmation_is_refused_naming_the_field(api_as, admin_user, sandbox):
    client = api_as(admin_user)
    error = error_of(client.post(f"/api/sandboxes/{sandbox.pk}/reset/", {"confirm": "production"}, format="json"), 400)
    assert error["rule"] == "reset_needs_typed_confirmation"
    assert "prod" in error["fields"]["confirm"][0]
    missing = error_of(client.post(f"/api/sandboxes/{sandbox.pk}/reset/", {}, format="json"), 400)
    assert "confirm" in missing["fields"]
    sandbox.refresh_from_db()
    assert sandbox.last_reset_at is None


def test_reset_answers_deleted_counts_and_touches_no_other_sandbox(
    api_as, admin_user, viewer, sandbox, dev_sandbox, other_sandbox
):
    response = api_as(admin_user).post(f"/api/sandboxes/{sandbox.pk}/reset/", {"confirm": "prod"}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["sandbox"] == sandbox.pk
    assert isinstance(body["deleted"], dict)
    assert all(isinstance(count, int) for count in body["deleted"].values())
    sandbox.refresh_from_db()
    assert sandbox.last_reset_at is not None
    assert body["last_reset_at"]
    # The sandbox and its members' roles stay; other sandboxes are not reset.
    assert SandboxRole.objects.filter(sandbox=sandbox, membership__user=viewer, role="viewer").exists()
    for other in (dev_sandbox, other_sandbox):
        other.refresh_from_db()
        assert other.last_reset_at is None


def test_reset_deletes_this_sandboxs_data_only(api_as, admin_user, sandbox, dev_sandbox, other_sandbox):
    for target in (sandbox, dev_sandbox, other_sandbox):
        Account.objects.create(sandbox=target, name=f"Account in {target.name}")
    Person.objects.create(sandbox=sandbox, email="ada@example.com")
    Person.objects.create(sandbox=sandbox, email="bob@example.com")

    response = api_as(admin_user).post(f"/api/sandboxes/{sandbox.pk}/reset/", {"confirm": "prod"}, format="json")
    assert response.status_code == 200, response.content
    deleted = response.json()["deleted"]
    assert deleted["cdp.Account"] == 1
    assert deleted["cdp.Person"] == 2
    assert not Account.objects.for_sandbox(sandbox).exists()
    assert not Person.objects.for_sandbox(sandbox).exists()
    assert Account.objects.for_sandbox(dev_sandbox).count() == 1
    assert Account.objects.for_sandbox(other_sandbox).count() == 1


@pytest.mark.parametrize("role", [Role.VIEWER, Role.MARKETER])
def test_viewers_and_marketers_cannot_reset(api_as, make_user, sandbox, role):
    user = make_user(role, sandbox)
    error_of(api_as(user).post(f"/api/sandboxes/{sandbox.pk}/reset/", {"confirm": "prod"}, format="json"), 403)
    sandbox.refresh_from_db()
    assert sandbox.last_reset_at is None


def test_a_sandbox_admin_may_reset_their_sandbox_only(api_as, make_user, sandbox, dev_sandbox):
    sandbox_admin = make_user(Role.ADMIN, dev_sandbox)
    grant(sandbox_admin, sandbox, Role.MARKETER)
    client = api_as(sandbox_admin)
    assert client.post(f"/api/sandboxes/{dev_sandbox.pk}/reset/", {"confirm": "dev"}, format="json").status_code == 200
    error_of(client.post(f"/api/sandboxes/{sandbox.pk}/reset/", {"confirm": "prod"}, format="json"), 403)


# --- Members --------------------------------------------------------------------------------


def test_admin_lists_members_of_administered_organizations_only(
    api_as, admin_user, viewer, marketer, other_sandbox, make_user
):
    stranger = make_user(Role.VIEWER, other_sandbox)
    rows = results(api_as(admin_user).get("/api/members/"))
    usernames = {row["user"]["username"] for row in rows}
    assert usernames == {admin_user.username, viewer.username, marketer.username}
    assert stranger.username not in usernames
    viewer_row = next(r for r in rows if r["user"]["username"] == viewer.username)
    assert viewer_row["roles"] == [
        {"sandbox": viewer_row["roles"][0]["sandbox"], "sandbox_name": "prod", "role": "viewer"}
    ]


def test_members_filter_by_organization_and_admin_flag(
    api_as, superuser, admin_user, viewer, organization, other_admin
):
    client = api_as(superuser)
    rows = results(client.get("/api/members/", {"organization": organization.pk}))
    assert {r["user"]["username"] for r in rows} == {admin_user.username, viewer.username}
    rows = results(client.get("/api/members/", {"is_admin": "true"}))
    assert {r["user"]["username"] for r in rows} == {admin_user.username, other_admin.username}


def test_a_member_sees_their_own_membership_only(api_as, marketer, viewer, admin_user):
    client = api_as(marketer)
    rows = results(client.get("/api/members/"))
    assert [r["user"]["username"] for r in rows] == [marketer.username]
    own = Membership.objects.get(user=marketer)
    assert client.get(f"/api/members/{own.pk}/").status_code == 200
    error_of(client.get(f"/api/members/{Membership.objects.get(user=viewer).pk}/"), 404)


def test_admin_adds_an_existing_user_with_roles(api_as, admin_user, organization, sandbox, dev_sandbox):
    newcomer = UserFactory()
    response = api_as(admin_user).post(
        "/api/members/",
        {
            "organization": organization.pk,
            "username": newcomer.username,
            "roles": [{"sandbox": sandbox.pk, "role": "viewer"}, {"sandbox": dev_sandbox.pk, "role": "marketer"}],
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["user"]["username"] == newcomer.username
    assert body["is_admin"] is False
    assert {(r["sandbox_name"], r["role"]) for r in body["roles"]} == {("prod", "viewer"), ("dev", "marketer")}
    assert "password" not in body


def test_admin_creates_a_user_who_can_then_sign_in(api_as, admin_user, organization, sandbox, client):
    response = api_as(admin_user).post(
        "/api/members/",
        {
            "organization": organization.pk,
            "username": "new.analyst",
            "email": "analyst@example.com",
            "password": "a-long-enough-passphrase",
            "roles": [{"sandbox": sandbox.pk, "role": "viewer"}],
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    assert client.login(username="new.analyst", password="a-long-enough-passphrase")


def test_member_create_errors_name_the_field_and_create_nothing(api_as, admin_user, organization, sandbox):
    client = api_as(admin_user)
    User = get_user_model()
    unknown = client.post("/api/members/", {"organization": organization.pk, "username": "ghost"}, format="json")
    assert "No user is named 'ghost'" in error_of(unknown, 400)["fields"]["username"][0]
    weak = client.post(
        "/api/members/",
        {"organization": organization.pk, "username": "weak", "email": "w@example.com", "password": "123"},
        format="json",
    )
    assert "password" in error_of(weak, 400)["fields"]
    bad_role = client.post(
        "/api/members/",
        {
            "organization": organization.pk,
            "username": "x",
            "password": "a-long-enough-passphrase",
            "email": "x@example.com",
            "roles": [{"sandbox": sandbox.pk, "role": "owner"}],
        },
        format="json",
    )
    assert "roles" in error_of(bad_role, 400)["fields"]
    assert not User.objects.filter(username__in=["ghost", "weak", "x"]).exists()


def test_adding_someone_twice_is_a_rule_violation(api_as, admin_user, organization, viewer):
    error = error_of(
        api_as(admin_user).post(
            "/api/members/", {"organization": organization.pk, "username": viewer.username}, format="json"
        ),
        400,
    )
    assert error["rule"] == "member_once_per_organization"


def test_role_sandboxes_must_belong_to_the_membership_organization(api_as, admin_user, organization, other_sandbox):
    # The caller administers both organizations, so the foreign sandbox is visible, and the rule speaks.
    make_org_admin(admin_user, other_sandbox.organization)
    response = api_as(admin_user).post(
        "/api/members/",
        {
            "organization": organization.pk,
            "username": "crossover",
            "email": "c@example.com",
            "password": "a-long-enough-passphrase",
            "roles": [{"sandbox": other_sandbox.pk, "role": "viewer"}],
        },
        format="json",
    )
    error = error_of(response, 400)
    assert error["rule"] == "role_sandbox_in_organization"
    assert "belongs to another organization" in error["fields"]["roles"][0]
    # Nothing half-done: the user account was not created either.
    assert not get_user_model().objects.filter(username="crossover").exists()


def test_role_in_an_invisible_sandbox_reads_as_unknown(api_as, admin_user, organization, other_sandbox):
    newcomer = UserFactory()
    response = api_as(admin_user).post(
        "/api/members/",
        {
            "organization": organization.pk,
            "username": newcomer.username,
            "roles": [{"sandbox": other_sandbox.pk, "role": "viewer"}],
        },
        format="json",
    )
    error = error_of(response, 400)
    assert "roles" in error["fields"]
    assert other_sandbox.name not in str(error)
    assert not Membership.objects.filter(user=newcomer).exists()


@pytest.mark.parametrize("role", [Role.VIEWER, Role.MARKETER, Role.ADMIN])
def test_non_admins_cannot_add_members(api_as, make_user, sandbox, organization, role):
    user = make_user(role, sandbox)
    response = api_as(user).post(
        "/api/members/",
        {
            "organization": organization.pk,
            "username": "pal",
            "email": "p@example.com",
            "password": "a-long-enough-passphrase",
        },
        format="json",
    )
    assert error_of(response, 403)["code"] == "permission_denied"
    assert not get_user_model().objects.filter(username="pal").exists()


def test_admin_replaces_roles_and_sets_admin_flag(api_as, admin_user, viewer, sandbox, dev_sandbox):
    membership = Membership.objects.get(user=viewer)
    client = api_as(admin_user)
    response = client.patch(
        f"/api/members/{membership.pk}/", {"roles": [{"sandbox": dev_sandbox.pk, "role": "marketer"}]}, format="json"
    )
    assert response.status_code == 200, response.content
    assert [(r["sandbox_name"], r["role"]) for r in response.json()["roles"]] == [("dev", "marketer")]
    assert not SandboxRole.objects.filter(membership=membership, sandbox=sandbox).exists()

    response = client.patch(f"/api/members/{membership.pk}/", {"is_admin": True}, format="json")
    assert response.json()["is_admin"] is True
    assert response.json()["roles"] == [{"sandbox": dev_sandbox.pk, "sandbox_name": "dev", "role": "marketer"}]


def test_members_cannot_change_their_own_roles(api_as, marketer, sandbox):
    membership = Membership.objects.get(user=marketer)
    error_of(api_as(marketer).patch(f"/api/members/{membership.pk}/", {"is_admin": True}, format="json"), 403)
    error_of(api_as(marketer).delete(f"/api/members/{membership.pk}/"), 403)
    membership.refresh_from_db()
    assert membership.is_admin is False


def test_the_last_admin_cannot_be_demoted_or_removed(api_as, admin_user, organization):
    membership = Membership.objects.get(user=admin_user, organization=organization)
    client = api_as(admin_user)
    error = error_of(client.patch(f"/api/members/{membership.pk}/", {"is_admin": False}, format="json"), 400)
    assert error["rule"] == "organization_keeps_an_admin"
    assert error_of(client.delete(f"/api/members/{membership.pk}/"), 400)["rule"] == "organization_keeps_an_admin"

    second = UserFactory()
    make_org_admin(second, organization)
    assert client.delete(f"/api/members/{membership.pk}/").status_code == 204


def test_removing_a_member_ends_their_access_but_keeps_the_account(api_as, admin_user, viewer, sandbox):
    membership = Membership.objects.get(user=viewer)
    assert api_as(admin_user).delete(f"/api/members/{membership.pk}/").status_code == 204
    assert get_user_model().objects.filter(pk=viewer.pk).exists()
    assert not SandboxRole.objects.filter(membership__user=viewer).exists()
    assert results(api_as(viewer).get("/api/sandboxes/")) == []
    error_of(api_as(viewer).get(f"/api/sandboxes/{sandbox.pk}/"), 404)


def test_admin_of_one_organization_cannot_touch_another_organizations_members(
    api_as, admin_user, other_admin, other_sandbox
):
    foreign = Membership.objects.get(user=other_admin)
    client = api_as(admin_user)
    error_of(client.get(f"/api/members/{foreign.pk}/"), 404)
    error_of(client.patch(f"/api/members/{foreign.pk}/", {"is_admin": False}, format="json"), 404)
    error_of(client.delete(f"/api/members/{foreign.pk}/"), 404)
    post = client.post(
        "/api/members/", {"organization": other_sandbox.organization_id, "username": admin_user.username}, format="json"
    )
    assert "organization" in error_of(post, 400)["fields"]
    assert Membership.objects.filter(pk=foreign.pk, is_admin=True).exists()


# --- Who am I -------------------------------------------------------------------------------


def test_me_describes_the_caller(api_as, make_user, sandbox, dev_sandbox, other_sandbox):
    user = make_user(Role.MARKETER, sandbox)
    make_org_admin(user, other_sandbox.organization)
    response = api_as(user).get("/api/me/")
    assert response.status_code == 200
    body = response.json()
    assert body["user"]["username"] == user.username
    assert {(o["id"], o["is_admin"]) for o in body["organizations"]} == {
        (sandbox.organization_id, False),
        (other_sandbox.organization_id, True),
    }
    assert {(s["id"], s["role"]) for s in body["sandboxes"]} == {(sandbox.pk, "marketer"), (other_sandbox.pk, "admin")}
    assert dev_sandbox.pk not in {s["id"] for s in body["sandboxes"]}


def test_session_login_works_for_the_api(client, viewer):
    assert client.login(username=viewer.username, password=PASSWORD)
    assert client.get("/api/me/").json()["user"]["username"] == viewer.username
