"""Batch files: streaming read, clear per-row report, checkpoints and resume."""

import csv
import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from cdp.choices import BatchStatus
from cdp.exceptions import RuleViolation
from cdp.models import IngestionBatch, Person, RejectedRecord
from cdp.services.ingestion import files as file_ingestion
from cdp.services.ingestion import start_file_ingestion, write_rejections_csv
from cdp.services.ingestion.records import RecordReader, Rejection

COLUMNS = {"email": "Email", "first_name": "First name", "lead_score": "Score", "account.domain": "Company domain"}


def upload(sandbox, content: bytes, name="people.csv", entity="person", columns=COLUMNS):
    batch = start_file_ingestion(sandbox, entity=entity, uploaded_file=SimpleUploadedFile(name, content), columns=columns)
    batch.refresh_from_db()
    return batch


def rejections(batch):
    return list(RejectedRecord.objects.filter(batch=batch).values_list("row_number", "reason"))


@pytest.fixture(autouse=True)
def media_in_tmp(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def test_a_clean_csv_is_loaded_and_counted(sandbox, django_capture_on_commit_callbacks):
    content = b"Email,First name,Score,Company domain\na@acme.com,Ann,10,acme.com\nb@acme.com,Bob,,acme.com\n"
    with django_capture_on_commit_callbacks(execute=True):
        batch = upload(sandbox, content)
    batch.refresh_from_db()
    assert (batch.status, batch.created, batch.rejected, batch.rows_done) == (BatchStatus.SUCCEEDED, 2, 0, 2)
    assert batch.bytes_done == batch.bytes_total == len(content)
    assert batch.progress_percent == 100
    assert sorted(Person.objects.for_sandbox(sandbox).values_list("email", "lead_score")) == [("a@acme.com", 10), ("b@acme.com", None)]


def test_a_malformed_file_gives_a_clear_report_and_stores_only_good_rows(sandbox, django_capture_on_commit_callbacks):
    huge = b"x" * (file_ingestion.MAX_LINE_BYTES + 10)
    content = b"".join(
        [
            "\ufeffEmail,First name,Score,Company domain\n".encode(),
            b"good@acme.com,Good,1,acme.com\n",
            b"bad-date@acme.com,Bad,notanumber,acme.com\n",
            b"short@acme.com,Short\n",
            b"latin1@acme.com,Ren\xe9,2,acme.com\n",
            b"huge@acme.com," + huge + b",3,acme.com\n",
            b"\n",
            b'multi@acme.com,"Two\nlines",4,acme.com\n',
            b"not-an-email,X,5,acme.com\n",
        ]
    )
    with django_capture_on_commit_callbacks(execute=True):
        batch = upload(sandbox, content)
    batch.refresh_from_db()
    assert batch.status == BatchStatus.SUCCEEDED
    assert (batch.created, batch.rejected) == (2, 5)
    report = dict(rejections(batch))
    assert "expected a whole number, got 'notanumber'" in report[2]
    assert "row has 2 values but the header has 4 columns" in report[3]
    assert "not valid UTF-8 (byte 0xE9" in report[4]
    assert "bytes long; at most" in report[5]
    assert "not an email address" in report[7]
    assert sorted(Person.objects.for_sandbox(sandbox).values_list("email", flat=True)) == ["good@acme.com", "multi@acme.com"]

    out = io.StringIO()
    write_rejections_csv(batch, out)
    lines = list(csv.reader(io.StringIO(out.getvalue())))
    assert lines[0] == ["row", "field", "reason", "record"] and len(lines) == 6


def test_a_mapping_naming_a_missing_column_fails_the_file_before_storing_anything(sandbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        batch = upload(sandbox, b"Mail,First name\na@x.io,Ann\n")
    batch.refresh_from_db()
    assert batch.status == BatchStatus.FAILED
    assert "Email, Score, Company domain" not in batch.error and "Company domain" in batch.error
    assert "The file's columns: Mail, First name" in batch.error
    assert not Person.objects.for_sandbox(sandbox).exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "The file is empty"), (b"Email,Email\n", "more than once: Email")],
)
def test_unreadable_headers_fail_with_a_reason(sandbox, django_capture_on_commit_callbacks, content, message):
    with django_capture_on_commit_callbacks(execute=True):
        batch = upload(sandbox, content, columns={})
    batch.refresh_from_db()
    assert batch.status == BatchStatus.FAILED and message in batch.error


def test_json_lines_with_bad_lines(sandbox, django_capture_on_commit_callbacks):
    lines = [
        json.dumps({"type": "web.visit", "occurred_at": "2026-01-01T10:00:00Z", "identity": {"email": "a@x.io"}, "properties": {"url": "/"}}),
        '{"type": "web.visit", broken',
        "[1, 2]",
        json.dumps({"type": "web.visit", "occurred_at": "yesterday", "identity": {"email": "a@x.io"}}),
    ]
    with django_capture_on_commit_callbacks(execute=True):
        batch = upload(sandbox, "\n".join(lines).encode(), name="events.jsonl", entity="event", columns={})
    batch.refresh_from_db()
    assert (batch.created, batch.rejected) == (1, 3)
    report = dict(rejections(batch))
    assert "not valid JSON" in report[2] and "must be a JSON object" in report[3] and "date-time" in report[4]


def test_a_crashed_run_resumes_at_its_checkpoint_without_duplicates(sandbox, monkeypatch):
    monkeypatch.setattr(file_ingestion, "CHUNK_ROWS", 3)
    rows = "".join(f"p{n}@x.io,P{n},{n},x.io\n" for n in range(10))
    content = ("Email,First name,Score,Company domain\n" + rows).encode()
    batch = start_file_ingestion(sandbox, entity="person", uploaded_file=SimpleUploadedFile("p.csv", content), columns=COLUMNS)

    real_store = file_ingestion.store_records
    calls = {"n": 0}

    def store_then_crash(*args, **kwargs):  # the worker dies while storing the third chunk
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("worker killed")
        return real_store(*args, **kwargs)

    monkeypatch.setattr(file_ingestion, "store_records", store_then_crash)
    with pytest.raises(RuntimeError):
        file_ingestion.run_file_batch(batch)
    batch.refresh_from_db()
    assert batch.rows_done == 6 and Person.objects.for_sandbox(sandbox).count() == 6

    monkeypatch.setattr(file_ingestion, "store_records", real_store)
    batch.status = BatchStatus.RUNNING
    batch = file_ingestion.run_file_batch(batch)
    assert batch.status == BatchStatus.SUCCEEDED
    assert (batch.created, batch.updated, batch.rows_done) == (10, 0, 10)
    assert Person.objects.for_sandbox(sandbox).count() == 10


def test_mapping_targets_are_checked_when_the_upload_starts(sandbox):
    with pytest.raises(RuleViolation, match="'favourite_colour' is not a field of person records"):
        upload(sandbox, b"a\n1\n", columns={"favourite_colour": "a"})
    assert not IngestionBatch.objects.exists()


def test_oversized_files_are_refused(sandbox, settings):
    settings.INGEST_MAX_FILE_BYTES = 10
    with pytest.raises(RuleViolation, match="files of at most 10 bytes"):
        upload(sandbox, b"Email\n" + b"a@x.io\n" * 5, columns={})


def test_an_error_while_reading_leaves_the_batch_at_the_last_stored_chunk(sandbox, monkeypatch):
    monkeypatch.setattr(file_ingestion, "CHUNK_ROWS", 3)
    rows = "".join(f"p{n}@x.io,P{n},{n},x.io\n" for n in range(10))
    content = ("Email,First name,Score,Company domain\n" + rows).encode()
    batch = start_file_ingestion(sandbox, entity="person", uploaded_file=SimpleUploadedFile("p.csv", content), columns=COLUMNS)
    real_read = RecordReader.read

    def read_until_row_8(self, row_number, raw):
        if row_number == 8:
            raise OSError("the file store went away")
        return real_read(self, row_number, raw)

    monkeypatch.setattr(RecordReader, "read", read_until_row_8)
    with pytest.raises(OSError, match="the file store went away"):
        file_ingestion.run_file_batch(batch)
    batch.refresh_from_db()
    assert (batch.status, batch.rows_done) == (BatchStatus.RUNNING, 6)  # left at its checkpoint for the retry
    assert Person.objects.for_sandbox(sandbox).count() == 6


MAPPED = {"identity.email": "Mail", "lead_score": "Score", "first_name": "Mail"}


def test_a_mapped_file_reads_targets_in_mapping_order_then_the_other_columns(sandbox, django_capture_on_commit_callbacks):
    """One source may feed two targets; a column named like a target and left unmapped is read as
    that target; other columns are kept as attributes; the first problem in that order is reported."""
    content = (
        "Mail,Score,email,Extra\n"
        "Ann@X.io,5,ann.work@x.io,hi\n"
        "bob@x.io,many,not-an-email,\n"
    ).encode()
    with django_capture_on_commit_callbacks(execute=True):
        batch = upload(sandbox, content, columns=MAPPED)
    batch.refresh_from_db()
    assert (batch.created, batch.rejected) == (1, 1)
    assert rejections(batch) == [(2, "lead_score: expected a whole number, got 'many'")]
    person = Person.objects.for_sandbox(sandbox).get()
    assert (person.first_name, person.email, person.lead_score, person.attributes) == ("Ann@X.io", "ann.work@x.io", 5, {"Extra": "hi"})
    assert sorted(person.identities.values_list("value", flat=True)) == ["ann.work@x.io", "ann@x.io"]


TRICKY_ROWS = [
    ["a@x.io", "1", "1" * 38, "x"],
    ["", "", "", ""],
    ["  A@X.IO ", " 7 ", "null", "é"],
    ["null", "2.0", "2" * 38, " "],
    ["x" * 300, "1e3", "3" * 38, "y"],
    ["b@x.io", "", "4" * 38, ""],
    ["c@x.io", "maybe", "", "w"],
    [None, None, None, None],
]


@pytest.mark.parametrize(
    ("columns", "keys"),
    [
        ({"identity.email": "Mail", "lead_score": "Score", "identity.ecid": "Id", "first_name": "Mail"}, ["Mail", "Score", "Id", "Extra"]),
        ({}, ["email", "lead_score", "identity.ecid", "note"]),
    ],
)
def test_rows_read_through_one_plan_read_as_each_row_read_alone(columns, keys):
    rows = [dict(zip(keys, values, strict=True)) for values in TRICKY_ROWS]
    read_alone = [RecordReader("person", columns).read(n, row) for n, row in enumerate(rows)]
    shared = RecordReader("person", columns)
    assert [shared.read(n, row) for n, row in enumerate(rows)] == read_alone
    assert [isinstance(item, Rejection) for item in read_alone] == [False, True, True, True, True, False, True, True]
