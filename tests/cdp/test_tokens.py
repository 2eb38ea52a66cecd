"""API tokens: issuing (key shown once), Bearer authentication, revocation, and who manages whose."""

import pytest
from rest_framework.test import APIClient

from cdp.choices import Role
from cdp.models import ApiToken, Membership
from cdp.services import issue_api_token
from tests.factories import UserFactory, make_org_admin

pytestmark = pytest.mark.django_db


def error_of(response, status):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"} and body["error"]["message"], body
    return body["error"]


def bearer(key):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


@pytest.fixture
def stranger(make_user, other_sandbox):
    """A marketer of another organization."""
    return make_user(Role.MARKETER, other_sandbox)


def test_issued_key_authenticates_as_its_user(api_as, marketer, sandbox):
    response = api_as(marketer).post("/api/tokens/", {"name": "CRM sync"}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["key"].startswith("qrm_")
    assert body["key"].startswith(body["key_prefix"])
    assert (body["username"], body["created_by"], body["is_active"]) == (marketer.username, marketer.username, True)

    me = bearer(body["key"]).get("/api/me/")
    assert me.status_code == 200
    assert me.json()["user"]["username"] == marketer.username
    assert ApiToken.objects.get(pk=body["id"]).last_used_at is not None
    # The token carries the user's roles, no more: a marketer's token cannot reset the sandbox.
    error_of(bearer(body["key"]).post(f"/api/sandboxes/{sandbox.pk}/reset/", {"confirm": "prod"}, format="json"), 403)


def test_key_is_never_returned_again(api_as, marketer):
    client = api_as(marketer)
    issued = client.post("/api/tokens/", {"name": "once"}, format="json").json()
    key = issued["key"]
    listed = client.get("/api/tokens/")
    retrieved = client.get(f"/api/tokens/{issued['id']}/")
    revoked = client.post(f"/api/tokens/{issued['id']}/revoke/")
    for response in (listed, retrieved, revoked):
        assert response.status_code == 200
        assert key not in response.content.decode()
        assert key[len(issued["key_prefix"]) :] not in response.content.decode()
        assert '"key"' not in response.content.decode()
        assert "key_hash" not in response.content.decode()
    # Nor is it stored: only its hash.
    token = ApiToken.objects.get(pk=issued["id"])
    assert key not in (token.key_hash, token.key_prefix)


def test_revoked_token_stops_authenticating_at_once(api_as, viewer):
    issued = api_as(viewer).post("/api/tokens/", {"name": "short-lived"}, format="json").json()
    client = bearer(issued["key"])
    assert client.get("/api/me/").status_code == 200

    response = APIClient()
    response.force_authenticate(viewer)
    revoked = response.post(f"/api/tokens/{issued['id']}/revoke/")
    assert revoked.status_code == 200
    assert revoked.json()["is_active"] is False and revoked.json()["revoked_at"]

    error = error_of(client.get("/api/me/"), 401)
    assert error["code"] == "authentication_failed"
    assert "revoked" in error["message"]


def test_delete_revokes_and_keeps_the_row(api_as, viewer):
    client = api_as(viewer)
    issued = client.post("/api/tokens/", {"name": "audit me"}, format="json").json()
    assert client.delete(f"/api/tokens/{issued['id']}/").status_code == 204
    kept = client.get(f"/api/tokens/{issued['id']}/")
    assert kept.status_code == 200
    assert kept.json()["is_active"] is False
    error_of(bearer(issued["key"]).get("/api/sandboxes/"), 401)


def test_unknown_and_malformed_keys_get_the_error_body(db):
    assert error_of(bearer("qrm_not-a-real-key").get("/api/me/"), 401)["code"] == "authentication_failed"
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer two parts")
    assert error_of(client.get("/api/me/"), 401)["code"] == "authentication_failed"


def test_token_of_a_deactivated_user_fails(api_as, viewer):
    key = api_as(viewer).post("/api/tokens/", {"name": "x"}, format="json").json()["key"]
    viewer.is_active = False
    viewer.save()
    error_of(bearer(key).get("/api/me/"), 401)


def test_org_admin_issues_a_token_for_a_member_and_sees_it(api_as, admin_user, marketer):
    client = api_as(admin_user)
    response = client.post("/api/tokens/", {"name": "for marketer", "user": marketer.pk}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["user"], body["created_by"]) == (marketer.pk, admin_user.username)
    assert bearer(body["key"]).get("/api/me/").json()["user"]["username"] == marketer.username

    listed = client.get("/api/tokens/", {"user": marketer.pk}).json()["results"]
    assert [t["id"] for t in listed] == [body["id"]]
    # The member sees the token issued for them, too.
    assert [t["id"] for t in api_as(marketer).get("/api/tokens/").json()["results"]] == [body["id"]]


def test_org_admin_revokes_a_members_token(api_as, admin_user, marketer):
    token, key = issue_api_token(user=marketer, name="job", created_by=marketer)
    assert api_as(admin_user).post(f"/api/tokens/{token.pk}/revoke/").status_code == 200
    error_of(bearer(key).get("/api/me/"), 401)


def test_marketer_cannot_manage_other_peoples_tokens(api_as, marketer, viewer, admin_user, stranger):
    admin_token, admin_key = issue_api_token(user=admin_user, name="admin's", created_by=admin_user)
    client = api_as(marketer)
    # A colleague: known, but not theirs to manage.
    assert error_of(client.post("/api/tokens/", {"name": "x", "user": viewer.pk}, format="json"), 403)["code"] == (
        "permission_denied"
    )
    # Someone of another organization reads as unknown.
    assert (
        "user"
        in error_of(client.post("/api/tokens/", {"name": "x", "user": stranger.pk}, format="json"), 400)["fields"]
    )
    assert ApiToken.objects.filter(user__in=[viewer, stranger]).count() == 0

    assert client.get("/api/tokens/").json()["results"] == []
    error_of(client.get(f"/api/tokens/{admin_token.pk}/"), 404)
    error_of(client.post(f"/api/tokens/{admin_token.pk}/revoke/"), 404)
    error_of(client.delete(f"/api/tokens/{admin_token.pk}/"), 404)
    assert bearer(admin_key).get("/api/me/").status_code == 200


def test_admins_do_not_see_tokens_of_other_organizations(api_as, admin_user, stranger, marketer):
    foreign, _ = issue_api_token(user=stranger, name="elsewhere", created_by=stranger)
    own, _ = issue_api_token(user=marketer, name="here", created_by=marketer)
    client = api_as(admin_user)
    assert [t["id"] for t in client.get("/api/tokens/").json()["results"]] == [own.pk]
    error_of(client.get(f"/api/tokens/{foreign.pk}/"), 404)
    error_of(client.post(f"/api/tokens/{foreign.pk}/revoke/"), 404)
    assert "user" in error_of(client.get("/api/tokens/", {"user": stranger.pk}), 400)["fields"]
    foreign.refresh_from_db()
    assert foreign.is_active


def test_removed_member_is_no_longer_the_admins_to_manage(api_as, admin_user, marketer):
    token, _ = issue_api_token(user=marketer, name="job", created_by=admin_user)
    Membership.objects.filter(user=marketer).delete()
    error_of(api_as(admin_user).get(f"/api/tokens/{token.pk}/"), 404)


def test_org_admin_cannot_manage_a_superusers_tokens(api_as, admin_user, organization):
    root = UserFactory(is_superuser=True)
    make_org_admin(root, organization)
    token, _ = issue_api_token(user=root, name="root's", created_by=root)
    client = api_as(admin_user)
    error_of(client.post(f"/api/tokens/{token.pk}/revoke/"), 404)
    error_of(client.post("/api/tokens/", {"name": "x", "user": root.pk}, format="json"), 403)


def test_token_list_filters_by_status(api_as, viewer):
    client = api_as(viewer)
    live = client.post("/api/tokens/", {"name": "live"}, format="json").json()["id"]
    dead = client.post("/api/tokens/", {"name": "dead"}, format="json").json()["id"]
    client.post(f"/api/tokens/{dead}/revoke/")
    assert [t["id"] for t in client.get("/api/tokens/", {"active": "true"}).json()["results"]] == [live]
    assert [t["id"] for t in client.get("/api/tokens/", {"active": "false"}).json()["results"]] == [dead]


def test_token_name_is_required(api_as, viewer):
    assert "name" in error_of(api_as(viewer).post("/api/tokens/", {}, format="json"), 400)["fields"]
