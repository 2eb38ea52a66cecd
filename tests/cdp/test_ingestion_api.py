"""File ingestion through the API: upload → background task (eager in tests) → counts, rejections
and a downloadable error report. Malformed files store their good rows only."""

import csv
import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from cdp.models import ExperienceEvent, FieldMapping, IngestionBatch, Person
from tests.factories import SandboxFactory

EVENT_COLUMNS = {"identity.email": "Email", "type": "Activity", "occurred_at": "When"}
HUGE = 2 * 1024 * 1024


@pytest.fixture(autouse=True)
def uploads_in_tmp(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def batches_url(sandbox, suffix=""):
    return f"/api/sandboxes/{sandbox.pk}/ingestion-batches/{suffix}"


@pytest.fixture
def upload(api_as, marketer, sandbox, django_capture_on_commit_callbacks):
    """Upload ``content`` as ``name`` and run the queued task; returns the API response."""

    def _upload(content: bytes, name="events.csv", client=None, target=None, **fields):
        client = client or api_as(marketer)
        data = {"file": SimpleUploadedFile(name, content), **fields}
        if isinstance(data.get("columns"), dict):
            data["columns"] = json.dumps(data["columns"])
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(batches_url(target or sandbox), data, format="multipart")
        return response

    return _upload


def test_a_csv_upload_with_a_saved_mapping_loads_every_row(upload, api_as, marketer, sandbox):
    mapping = FieldMapping.objects.create(
        sandbox=sandbox, name="CRM people", entity="person",
        columns={"email": "E-mail", "first_name": "First", "job_title": "Title", "identity.ecid": "ECID", "attributes.tier": "Tier"},
    )  # fmt: skip
    content = (
        "E-mail,First,Title,ECID,Tier,Notes\n"
        f"ann@acme.com,Ann,CTO,{'1' * 38},gold,likes golf\n"
        "bob@acme.com,Bob,CFO,,silver,\n"
    ).encode()

    response = upload(content, "people.csv", entity="person", mapping=mapping.pk, dataset="crm")

    assert response.status_code == 201, response.content
    assert response.json()["status"] == "queued"
    batch = api_as(marketer).get(batches_url(sandbox, f"{response.json()['id']}/")).json()
    assert (batch["status"], batch["progress_percent"], batch["created"], batch["rejected"]) == ("succeeded", 100, 2, 0)
    assert batch["accepted"] == 2 and batch["columns"] == mapping.columns and batch["dataset"] == "crm"
    assert batch["created_by"] == marketer.username
    ann = Person.objects.get(sandbox=sandbox, email="ann@acme.com")
    assert (ann.first_name, ann.job_title, ann.attributes) == ("Ann", "CTO", {"tier": "gold", "Notes": "likes golf"})


def test_a_malformed_csv_stores_the_good_rows_and_reports_the_others(upload, api_as, marketer, sandbox):
    content = b"".join(
        [
            b"Email,Activity,When\n",
            b"ann@acme.com,email.opened,2026-11-01T10:00:00Z\n",  # row 1: good
            b"bob@acme.com,email.clicked,31/12/2026\n",  # row 2: bad date
            b"carl@acme.com,email.opened\n",  # row 3: a column short
            b"d\xffn@acme.com,email.opened,2026-11-01T10:00:00Z\n",  # row 4: not UTF-8
            b"eve@acme.com,email.opened," + b"x" * HUGE + b"\n",  # row 5: a 2 MB line
            b"fay@acme.com,web.visit,2026-11-02\n",  # row 6: good
        ]
    )

    response = upload(content, entity="event", columns=EVENT_COLUMNS)

    assert response.status_code == 201
    client = api_as(marketer)
    batch = client.get(batches_url(sandbox, f"{response.json()['id']}/")).json()
    assert (batch["status"], batch["accepted"], batch["rejected"], batch["error"]) == ("succeeded", 2, 4, "")
    rejections = client.get(batches_url(sandbox, f"{batch['id']}/rejections/")).json()["results"]
    reasons = {r["row"]: (r["field"], r["reason"]) for r in rejections}
    assert sorted(reasons) == [2, 3, 4, 5]
    assert reasons[2][0] == "occurred_at" and "31/12/2026" in reasons[2][1]
    assert "2 values but the header has 3 columns" in reasons[3][1]
    assert "not valid UTF-8" in reasons[4][1]
    assert "at most 1,048,576 are read" in reasons[5][1]
    # Only the good rows are stored, and only their people exist.
    assert sorted(ExperienceEvent.objects.filter(sandbox=sandbox).values_list("type", flat=True)) == ["email.opened", "web.visit"]
    assert sorted(Person.objects.filter(sandbox=sandbox).values_list("identities__value", flat=True)) == ["ann@acme.com", "fay@acme.com"]


def test_the_error_report_downloads_as_csv(upload, api_as, marketer, sandbox):
    content = b"Email,Activity,When\nann@acme.com,email.opened,never\nbob@acme.com,,2026-11-01\n"
    batch_id = upload(content, entity="event", columns=EVENT_COLUMNS).json()["id"]

    response = api_as(marketer).get(batches_url(sandbox, f"{batch_id}/report.csv"))

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert f'filename="ingestion-{batch_id}-errors.csv"' in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == ["row", "field", "reason", "record"]
    assert [(r[0], r[1]) for r in rows[1:]] == [("1", "occurred_at"), ("2", "type")]
    assert "never" in rows[1][2] and "ann@acme.com" in rows[1][3]


def test_rejections_are_paginated(upload, api_as, marketer, sandbox):
    content = b"Email,Activity,When\n" + b"".join(b"p%d@acme.com,email.opened,bad\n" % n for n in range(30))
    batch_id = upload(content, entity="event", columns=EVENT_COLUMNS).json()["id"]
    client = api_as(marketer)

    first = client.get(batches_url(sandbox, f"{batch_id}/rejections/"), {"page_size": 20}).json()
    second = client.get(first["next"]).json()

    assert first["count"] == 30
    assert [r["row"] for r in first["results"]] == list(range(1, 21))
    assert [r["row"] for r in second["results"]] == list(range(21, 31))


def test_a_json_lines_file_is_loaded(upload, sandbox):
    lines = [
        {"type": "form.filled", "occurred_at": "2026-11-01T09:00:00Z", "identity": {"email": "ann@acme.com"}, "properties": {"form": "demo"}},
        "not json",
        {"type": "web.visit", "occurred_at": 1793523600000, "identity.email": "ann@acme.com"},
    ]
    content = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines).encode()

    response = upload(content, "events.jsonl", entity="event")

    batch = IngestionBatch.objects.get(pk=response.json()["id"])
    assert (batch.file_format, batch.status, batch.created, batch.rejected) == ("jsonl", "succeeded", 2, 1)
    assert "not valid JSON" in batch.rejections.get().reason
    assert ExperienceEvent.objects.get(type="form.filled").properties == {"form": "demo"}


def test_a_mapping_that_names_missing_columns_fails_the_file_with_a_clear_error(upload, sandbox):
    content = b"Mail,Activity,When\nann@acme.com,email.opened,2026-11-01\n"

    response = upload(content, entity="event", columns=EVENT_COLUMNS)

    batch = IngestionBatch.objects.get(pk=response.json()["id"])
    assert batch.status == "failed"
    assert "Email" in batch.error and "Mail, Activity, When" in batch.error
    assert not ExperienceEvent.objects.exists()


@pytest.mark.parametrize(
    "fields, field, rule",
    [
        ({"entity": "lead"}, "entity", None),
        ({"entity": "event", "columns": {"shoe_size": "Shoe"}}, None, "invalid_mapping"),
        ({"entity": "event", "columns": "{not json"}, "columns", None),
        ({"entity": "event", "mapping": 999999}, "mapping", None),
    ],
)
def test_bad_upload_requests_are_refused_with_the_error_body(upload, sandbox, fields, field, rule):
    response = upload(b"Email\nann@acme.com\n", **fields)

    assert response.status_code == 400
    error = response.json()["error"]
    if rule:
        assert error["rule"] == rule
    if field:
        assert field in error["fields"]
    assert not IngestionBatch.objects.exists()


def test_a_mapping_of_another_entity_or_sandbox_is_refused(upload, sandbox):
    people_mapping = FieldMapping.objects.create(sandbox=sandbox, name="People", entity="person", columns={"email": "Email"})
    elsewhere = SandboxFactory(name="elsewhere-2")
    foreign = FieldMapping.objects.create(sandbox=elsewhere, name="Events", entity="event", columns=EVENT_COLUMNS)

    mismatch = upload(b"Email\nann@acme.com\n", entity="event", mapping=people_mapping.pk)
    other_sandbox = upload(b"Email\nann@acme.com\n", entity="event", mapping=foreign.pk)
    both = upload(b"Email\nann@acme.com\n", entity="person", mapping=people_mapping.pk, columns={"email": "Email"})

    assert mismatch.status_code == 400 and mismatch.json()["error"]["rule"] == "mapping_entity_mismatch"
    assert other_sandbox.status_code == 400 and "No field mapping" in other_sandbox.json()["error"]["fields"]["mapping"][0]
    assert both.status_code == 400 and "columns" in both.json()["error"]["fields"]


def test_a_file_over_the_size_limit_is_refused(upload, settings):
    settings.INGEST_MAX_FILE_BYTES = 10

    response = upload(b"Email\nann@acme.com\n", entity="person")

    assert response.status_code == 400
    assert response.json()["error"]["rule"] == "file_too_large"


def test_a_viewer_reads_batches_but_cannot_upload(upload, api_as, viewer, sandbox):
    response = upload(b"Email\nann@acme.com\n", client=api_as(viewer), entity="person")

    assert response.status_code == 403
    assert not IngestionBatch.objects.exists()
    assert api_as(viewer).get(batches_url(sandbox)).status_code == 200


def test_batches_of_another_sandbox_are_invisible(upload, api_as, make_user, marketer, organization, sandbox):
    dev = SandboxFactory(organization=organization, name="dev")
    admin = make_user(org_admin_of=organization)
    theirs = upload(b"Email,Activity,When\nx@y.co,a,never\n", client=api_as(admin), target=dev, entity="event", columns=EVENT_COLUMNS)
    client = api_as(marketer)  # a role in prod only

    assert theirs.status_code == 201
    assert client.get(batches_url(sandbox)).json()["count"] == 0
    for suffix in ("", "rejections/", "report.csv"):
        assert client.get(batches_url(sandbox, f"{theirs.json()['id']}/{suffix}")).status_code == 404


def test_batches_cannot_be_changed_or_deleted(upload, api_as, marketer, sandbox):
    batch_id = upload(b"Email\nann@acme.com\n", entity="person").json()["id"]
    client = api_as(marketer)

    assert client.delete(batches_url(sandbox, f"{batch_id}/")).status_code == 405
    assert client.patch(batches_url(sandbox, f"{batch_id}/"), {"status": "queued"}).status_code == 405


def test_batch_list_filters_files_and_streams(upload, api_as, marketer, sandbox):
    from cdp.services.ingestion import ingest_stream

    upload(b"Email\nann@acme.com\n", entity="person")
    ingest_stream(sandbox, "person", [{"email": "bad"}])
    client = api_as(marketer)

    kinds = [b["kind"] for b in client.get(batches_url(sandbox)).json()["results"]]
    streams = client.get(batches_url(sandbox), {"kind": "stream"}).json()["results"]

    assert sorted(kinds) == ["file", "stream"]
    assert [(b["kind"], b["rejected"]) for b in streams] == [("stream", 1)]
