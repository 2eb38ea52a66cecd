"""Oversized and overcrowded requests are refused early, with a message naming the limit, and
nothing of them is stored; repeated failed sign-ins are throttled."""

import json

import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from cdp.choices import Role
from cdp.models import IngestionBatch, Person
from cdp.views.auth import MAX_FAILED_LOGINS
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def small_limits(settings, tmp_path):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2_000
    settings.INGEST_MAX_FILE_BYTES = 5_000
    settings.MEDIA_ROOT = tmp_path


def error_of(response, status):
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"] == "application/json"
    return response.json()["error"]


# --- Request bodies ------------------------------------------------------------------------


def test_an_api_body_over_the_limit_is_refused_before_parsing(api_as, marketer, sandbox):
    records = [{"email": f"p{i}@example.com"} for i in range(100)]
    response = api_as(marketer).post(f"/api/sandboxes/{sandbox.pk}/stream/person/", records, format="json")
    error = error_of(response, 413)
    assert error["code"] == "request_too_large"
    assert "at most 2,000 bytes" in error["message"]
    assert not Person.objects.exists()


def test_a_body_within_the_limit_is_accepted(api_as, marketer, sandbox):
    response = api_as(marketer).post(
        f"/api/sandboxes/{sandbox.pk}/stream/person/", [{"email": "ann@example.com"}], format="json"
    )
    assert response.status_code == 200, response.content
    assert Person.objects.count() == 1


def test_more_streamed_records_than_a_call_allows_are_refused(api_as, marketer, sandbox, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
    records = [{"email": f"p{i}@example.com"} for i in range(1001)]
    response = api_as(marketer).post(f"/api/sandboxes/{sandbox.pk}/stream/person/", records, format="json")
    assert response.status_code == 400, response.content[:300]
    assert "at most 1000 records" in response.json()["error"]["message"]
    assert not Person.objects.exists()


def test_a_form_post_over_the_limit_names_the_limit(client):
    response = client.post(reverse("login"), {"username": "x" * 3_000, "password": "y"})
    assert response.status_code == 413
    assert "2,000 bytes" in response.content.decode()


def test_a_urlencoded_form_over_the_limit_is_refused_before_reading(client):
    body = "username=" + "x" * 3_000 + "&password=y"
    response = client.post(reverse("login"), body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 413
    assert "at most 2,000 bytes" in response.content.decode()


def test_too_many_fields_are_refused_with_the_limit(client, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 10
    response = client.post(reverse("login"), {f"f{i}": "1" for i in range(20)})
    assert response.status_code == 400
    assert "more than 10 fields" in response.content.decode()


def test_too_many_fields_in_an_api_call_answer_the_error_body(api_as, marketer, sandbox, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 10
    data = {"entity": "person", "file": SimpleUploadedFile("p.csv", b"Email\n"), **{f"f{i}": "1" for i in range(20)}}
    response = api_as(marketer).post(f"/api/sandboxes/{sandbox.pk}/ingestion-batches/", data, format="multipart")
    assert error_of(response, 400)["code"] == "too_many_fields"


# --- File uploads ---------------------------------------------------------------------------


def csv_of(size: int) -> bytes:
    rows = b"Email\n"
    while len(rows) < size:
        rows += f"p{len(rows)}@example.com\n".encode()
    return rows


def test_an_api_upload_over_the_file_limit_names_it(api_as, marketer, sandbox):
    upload = SimpleUploadedFile("people.csv", csv_of(5_500), content_type="text/csv")
    response = api_as(marketer).post(
        f"/api/sandboxes/{sandbox.pk}/ingestion-batches/", {"file": upload, "entity": "person"}, format="multipart"
    )
    error = error_of(response, 400)
    assert error["rule"] == "file_too_large"
    assert "at most 5,000 bytes" in error["message"] and error["fields"]["file"]
    assert not IngestionBatch.objects.exists()


def test_an_upload_far_over_the_limit_is_refused_before_it_is_received(api_as, marketer, sandbox):
    upload = SimpleUploadedFile("people.csv", csv_of(12_000), content_type="text/csv")
    response = api_as(marketer).post(
        f"/api/sandboxes/{sandbox.pk}/ingestion-batches/", {"file": upload, "entity": "person"}, format="multipart"
    )
    error = error_of(response, 413)
    assert "at most 7,000 bytes" in error["message"] and "Split the file" in error["message"]
    assert not IngestionBatch.objects.exists()


def test_the_upload_page_shows_the_file_limit_on_the_form(login, make_user, sandbox):
    client = login(make_user(Role.MARKETER, sandbox))
    upload = SimpleUploadedFile("people.csv", csv_of(5_500), content_type="text/csv")
    response = client.post(reverse("cdp:profiles-upload"), {"file": upload, "entity": "person", "dataset": "file"})
    assert response.status_code == 400
    assert "at most 5,000 bytes" in response.content.decode()
    assert not IngestionBatch.objects.exists()


# --- Sign-in throttling ---------------------------------------------------------------------


@pytest.fixture
def fresh_cache():
    cache.clear()
    yield
    cache.clear()


def test_repeated_failed_sign_ins_are_throttled_even_with_the_right_password(client, make_user, fresh_cache):
    user = make_user()
    for _ in range(MAX_FAILED_LOGINS):
        response = client.post(reverse("login"), {"username": user.username, "password": "wrong"})
        assert response.status_code == 200  # the form again, with its error
    locked = client.post(reverse("login"), {"username": user.username, "password": PASSWORD})
    assert locked.status_code == 429
    assert "Too many failed sign-in attempts" in locked.content.decode()
    assert "_auth_user_id" not in client.session


def test_the_throttle_is_per_address(client, make_user, fresh_cache):
    user = make_user()
    for _ in range(MAX_FAILED_LOGINS):
        client.post(reverse("login"), {"username": user.username, "password": "wrong"}, REMOTE_ADDR="10.0.0.1")
    other = client.post(reverse("login"), {"username": user.username, "password": PASSWORD}, REMOTE_ADDR="10.0.0.2")
    assert other.status_code == 302
    assert client.session["_auth_user_id"] == str(user.pk)


def test_a_few_failures_do_not_lock_anyone_out(client, make_user, fresh_cache):
    user = make_user()
    for _ in range(MAX_FAILED_LOGINS - 1):
        client.post(reverse("login"), {"username": user.username, "password": "wrong"})
    assert client.post(reverse("login"), {"username": user.username, "password": PASSWORD}).status_code == 302


def test_the_api_body_limit_does_not_depend_on_the_content_type(api_as, marketer, sandbox):
    body = json.dumps({"name": "x" * 3_000})
    response = api_as(marketer).post(f"/api/sandboxes/{sandbox.pk}/audiences/", body, content_type="text/plain")
    assert error_of(response, 413)["code"] == "request_too_large"
