"""Batch file ingestion: stream a CSV or JSON-lines file in chunks, store each chunk set-wise, and
checkpoint after each one so a restarted task resumes where it stopped.

Memory stays constant whatever the file size: rows are read one physical line at a time (a line
longer than MAX_LINE_BYTES is skipped and reported, never loaded whole).
"""

import codecs
import csv
import io
import json
from dataclasses import dataclass

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from cdp.choices import BatchStatus
from cdp.models import IngestionBatch, RejectedRecord
from cdp.services.bulk import set_local
from cdp.services.ingestion.records import RecordReader, Rejection, excerpt
from cdp.services.ingestion.store import store_records

CHUNK_ROWS = 5000
MAX_LINE_BYTES = 1024 * 1024


class FileProblem(Exception):
    """The file as a whole can't be read (no header, mapping names a missing column…)."""


class _LineReader:
    """Decoded lines of a binary file, with the byte offset after each and per-line problems."""

    def __init__(self, stream, start_offset=0):
        self.stream = stream
        self.offset = start_offset
        self.line_number = 0
        self.problems = {}  # physical line number -> reason

    def __iter__(self):
        return self

    def __next__(self):
        raw = self.stream.readline(MAX_LINE_BYTES + 1)
        if not raw:
            raise StopIteration
        self.line_number += 1
        self.offset += len(raw)
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            skipped = len(raw)
            while True:  # skip the rest of the oversized line without holding it
                more = self.stream.readline(MAX_LINE_BYTES)
                self.offset += len(more)
                skipped += len(more)
                if not more or more.endswith(b"\n"):
                    break
            self.problems[self.line_number] = f"line is {skipped:,} bytes long; at most {MAX_LINE_BYTES:,} are read"
            return "\n"
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as error:
            self.problems[self.line_number] = (
                f"not valid UTF-8 (byte 0x{raw[error.start]:02X} at position {error.start + 1}); save the file as UTF-8"
            )
            return raw.decode("utf-8", errors="replace")


def _strip_bom(stream):
    head = stream.read(3)
    if head != codecs.BOM_UTF8:
        stream.seek(0)
        return 0
    return 3


def read_csv_header(stream) -> tuple[list[str], int]:
    """The header's column names and the byte offset where data rows start."""
    start = _strip_bom(stream)
    lines = _LineReader(stream, start)
    try:
        header = next(csv.reader(lines))
    except StopIteration:
        raise FileProblem("The file is empty: expected a header row naming the columns.") from None
    if lines.problems:
        raise FileProblem(f"Header row: {next(iter(lines.problems.values()))}.")
    header = [name.strip() for name in header]
    if not any(header):
        raise FileProblem("The header row is empty: expected the column names on the first line.")
    duplicates = sorted({h for h in header if header.count(h) > 1 and h})
    if duplicates:
        raise FileProblem(f"The header names these columns more than once: {', '.join(duplicates)}.")
    return header, lines.offset


def iter_csv_rows(stream, header, offset, first_row_number):
    """(row number, raw dict or Rejection, byte offset after the row) from ``offset`` on."""
    stream.seek(offset)
    lines = _LineReader(stream, offset)
    reader = csv.reader(lines)
    row_number = first_row_number - 1
    last_line = 0
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            row_number += 1
            yield row_number, Rejection(row_number, f"row is not valid CSV: {error}"), lines.offset
            continue
        row_number += 1
        consumed = range(last_line + 1, lines.line_number + 1)
        last_line = lines.line_number
        problem = next((lines.problems[n] for n in consumed if n in lines.problems), None)
        if problem:
            yield row_number, Rejection(row_number, problem), lines.offset
        elif not any(v.strip() for v in values):
            row_number -= 1  # blank line: not a record
        elif len(values) != len(header):
            yield row_number, Rejection(
                row_number, f"row has {len(values)} values but the header has {len(header)} columns", raw=excerpt(",".join(values))
            ), lines.offset
        else:
            yield row_number, dict(zip(header, values, strict=True)), lines.offset


def iter_jsonl_rows(stream, offset, first_row_number):
    if offset == 0:
        offset = _strip_bom(stream)
    stream.seek(offset)
    lines = _LineReader(stream, offset)
    row_number = first_row_number - 1
    for line in lines:
        if lines.line_number in lines.problems:
            row_number += 1
            yield row_number, Rejection(row_number, lines.problems[lines.line_number]), lines.offset
            continue
        if not line.strip():
            continue
        row_number += 1
        try:
            value = json.loads(line)
        except json.JSONDecodeError as error:
            yield row_number, Rejection(row_number, f"not valid JSON: {error.msg} at column {error.colno}", raw=excerpt(line)), lines.offset
            continue
        if not isinstance(value, dict):
            yield row_number, Rejection(row_number, "each line must be a JSON object", raw=excerpt(line)), lines.offset
            continue
        yield row_number, value, lines.offset


def check_mapping(header, columns: dict) -> None:
    missing = sorted({source for source in columns.values() if source not in header})
    if missing:
        shown = ", ".join(header[:30]) + (" …" if len(header) > 30 else "")
        raise FileProblem(
            f"The mapping uses column(s) {', '.join(missing)}, which the file does not have. The file's columns: {shown}."
        )


def run_file_batch(batch: IngestionBatch) -> IngestionBatch:
    """Process (or resume) a file batch to the end. Each chunk commits with its checkpoint."""
    IngestionBatch.objects.filter(pk=batch.pk).update(status=BatchStatus.RUNNING)
    IngestionBatch.objects.filter(pk=batch.pk, started_at__isnull=True).update(started_at=timezone.now())
    batch.refresh_from_db()
    try:
        with batch.file.open("rb") as raw_stream:
            stream = io.BufferedReader(raw_stream) if not hasattr(raw_stream, "peek") else raw_stream
            if batch.file_format == IngestionBatch.FileFormat.CSV:
                header, data_offset = read_csv_header(stream)
                check_mapping(header, batch.columns or {})
                rows = iter_csv_rows(stream, header, max(batch.bytes_done, data_offset), batch.rows_done + 1)
            else:
                rows = iter_jsonl_rows(stream, batch.bytes_done, batch.rows_done + 1)
            _process_chunks(batch, rows)
    except FileProblem as problem:
        _finish(batch, BatchStatus.FAILED, str(problem))
    # Any other error propagates with the batch left running at its checkpoint: the task retries
    # transient errors and marks the batch failed (fail_file_batch) when it gives up.
    else:
        _finish(batch, BatchStatus.SUCCEEDED, "")
    batch.refresh_from_db()
    return batch


@dataclass
class _ParsedChunk:
    records: list
    rejections: list
    rows_done: int  # the row number of the chunk's last row: the checkpoint stored with it
    bytes_done: int  # the file offset after that row


def _process_chunks(batch, rows):
    for chunk in _parse_chunks(batch.entity, batch.columns, rows):
        _store_chunk(batch, chunk)


def _parse_chunks(entity, columns, rows):
    """The file's rows parsed, CHUNK_ROWS rows (records and rejections together) at a time."""
    reader = RecordReader(entity, columns)  # one reading plan for the file's header
    records, rejections, count = [], [], 0
    row_number = offset = None
    for row_number, raw, offset in rows:
        if isinstance(raw, Rejection):
            rejections.append(raw)
        else:
            item = reader.read(row_number, raw)
            (rejections if isinstance(item, Rejection) else records).append(item)
        count += 1
        if count >= CHUNK_ROWS:
            yield _ParsedChunk(records, rejections, row_number, offset)
            records, rejections, count = [], [], 0
    if count:
        yield _ParsedChunk(records, rejections, row_number, offset)


def _store_chunk(batch, chunk: _ParsedChunk):
    rejections = list(chunk.rejections)
    with transaction.atomic():
        _commit_without_flush_wait()
        result = store_records(batch.sandbox, batch.entity, chunk.records, batch.dataset) if chunk.records else None
        if result:
            rejections += result.rejections
        RejectedRecord.objects.bulk_create(
            [
                RejectedRecord(sandbox_id=batch.sandbox_id, batch=batch, row_number=r.row_number, field=r.field, reason=r.reason, raw=r.raw)
                for r in rejections
            ]
        )
        IngestionBatch.objects.filter(pk=batch.pk).update(
            rows_done=chunk.rows_done,
            bytes_done=chunk.bytes_done,
            created=F("created") + (result.created if result else 0),
            updated=F("updated") + (result.updated if result else 0),
            merged=F("merged") + (result.merged if result else 0),
            rejected=F("rejected") + len(rejections),
        )
    batch.rows_done, batch.bytes_done = chunk.rows_done, chunk.bytes_done


def _commit_without_flush_wait() -> None:
    """Don't wait for this chunk's WAL flush at commit (PostgreSQL, this transaction only).

    Safe here: the chunk's rows and its checkpoint (rows_done/bytes_done) commit together, and
    the batch is reported finished only by _finish's ordinary (flushed) commit, which flushes
    every chunk's WAL before it. A database crash can lose only chunks committed just before it,
    together with their checkpoint, so the resumed batch reads them again from the file: no
    record is lost or stored twice, and nothing is corrupted (unlike fsync=off)."""
    set_local("synchronous_commit", "off")


def fail_file_batch(batch_id: int, error: str) -> None:
    IngestionBatch.objects.filter(pk=batch_id).update(
        status=BatchStatus.FAILED, error=f"Stopped by an unexpected error: {error}", finished_at=timezone.now()
    )


def _finish(batch, status, error):
    IngestionBatch.objects.filter(pk=batch.pk).update(status=status, error=error, finished_at=timezone.now())


def write_rejections_csv(batch, out) -> None:
    """The downloadable error report: one line per rejected record."""
    writer = csv.writer(out)
    writer.writerow(["row", "field", "reason", "record"])
    for row in RejectedRecord.objects.filter(batch=batch).order_by("row_number", "id").values_list(
        "row_number", "field", "reason", "raw"
    ).iterator(chunk_size=2000):
        writer.writerow(row)
