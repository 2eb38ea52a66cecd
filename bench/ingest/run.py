"""Ingestion benchmark: batch files and streaming, side by side with a plain PostgreSQL COPY.

    .venv/bin/python bench/ingest/run.py [--rows 200000] [--stream-seconds 20] [--with-accounts]

Against PostgreSQL only (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/quorum_bench). The
database is dropped, re-created and migrated on each run (its name must contain "bench"; pass
--reuse-db to keep it). Measures, on one generated people file (cdp.demo.fake, the generator the
demo-data command uses):

  a) batch file ingestion through the real path (start_file_ingestion → the ingest task, eager)
     into an empty sandbox, then an update pass over the same people with changed values;
  b) the floor: COPY of the same file into a scratch table with the same columns and no index;
  c) streaming: a real gunicorn server (config.wsgi, DEBUG off) and concurrent clients POSTing
     batches of events to /api/sandboxes/{id}/stream/event/ with a Bearer token, for a fixed time.

Prints one table: measure | figure | target | verdict. Loopback only; every loop is bounded.
"""

import argparse
import csv
import datetime as dt
import http.client
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.common import ensure_database  # noqa: E402

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/quorum_bench"
PEOPLE_COLUMNS = [
    "email", "first_name", "last_name", "job_title", "job_level", "department", "country", "city", "phone",
    "lead_score", "lead_source", "lead_status", "is_unsubscribed", "ecid", "marketo_lead_id",
]
TARGET_BATCH_RATE = 50_000
TARGET_COPY_RATIO = 3.0
TARGET_STREAM_RATE = 2_000


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000, help="People in the file (default 200,000).")
    parser.add_argument("--with-accounts", action="store_true", help="Add a company_domain column mapped to account.domain.")
    parser.add_argument("--stream-seconds", type=float, default=20.0, help="How long the streaming clients run.")
    parser.add_argument("--stream-clients", type=int, default=4, help="Concurrent client threads.")
    parser.add_argument("--stream-batch", type=int, default=100, help="Events per request.")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn workers (2–4 on this machine).")
    parser.add_argument("--skip-stream", action="store_true")
    parser.add_argument("--reuse-db", action="store_true", help="Migrate the database but do not drop it first.")
    parser.add_argument("--seed", type=int, default=7)
    return parser.parse_args()


# ------------------------------------------------------------------------------------ set-up
def configure_environment(var_dir: Path) -> dict:
    """The settings both this process and the server run with: production-like, DEBUG off."""
    values = {
        "DATABASE_URL": os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL),
        "SECRET_KEY": os.environ.get("SECRET_KEY") or secrets.token_urlsafe(50),
        "DEBUG": "0",
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "False",
        "QUORUM_VAR_DIR": str(var_dir),
        "DJANGO_SETTINGS_MODULE": "config.settings.base",
        "LOG_LEVEL": "WARNING",
    }
    os.environ.update(values)
    # Only this process runs the file task inline; the server keeps the normal (queued) setting.
    os.environ["CELERY_TASK_ALWAYS_EAGER"] = "1"
    return values


def make_tenant():
    """A fresh organization and sandbox, and a marketer of that sandbox with an API token."""
    from django.contrib.auth import get_user_model

    from cdp.choices import Role
    from cdp.models import Membership, SandboxRole
    from cdp.services import create_organization, issue_api_token

    stamp = dt.datetime.now().strftime("%Y%m%d%H%M%S")
    organization = create_organization(name=f"Benchmark {stamp}", slug=f"bench-{stamp}")
    sandbox = organization.sandboxes.get()
    user = get_user_model().objects.create_user(f"bench-{stamp}", password=secrets.token_urlsafe(16))
    membership = Membership.objects.create(user=user, organization=organization)
    SandboxRole.objects.create(membership=membership, sandbox=sandbox, role=Role.MARKETER)
    _, key = issue_api_token(user=user, name="ingestion benchmark", created_by=user)
    return sandbox, user, key


# --------------------------------------------------------------------------------- the files
def write_people_files(directory: Path, rows: int, seed: int, with_accounts: bool) -> tuple[Path, Path, list]:
    """The people file, an update file (same people, changed score/status/title) and the ECIDs."""
    from cdp.demo.fake import PersonMaker, person_records

    columns = PEOPLE_COLUMNS + (["company_domain"] if with_accounts else [])
    first, second = directory / "people.csv", directory / "people-update.csv"
    rng = random.Random(seed)
    changes = random.Random(seed + 1)
    titles = PersonMaker(changes)
    ecids = []
    with first.open("w", newline="") as out_first, second.open("w", newline="") as out_second:
        writer_first, writer_second = csv.writer(out_first), csv.writer(out_second)
        writer_first.writerow(columns)
        writer_second.writerow(columns)
        for record in person_records(rng, rows):
            writer_first.writerow([_csv_value(record[c]) for c in columns])
            record["lead_score"] = min(250, record["lead_score"] + changes.randint(1, 40))
            record["lead_status"] = changes.choice(["Nurturing", "Marketing Qualified", "Sales Accepted", "Contacted"])
            if changes.random() < 0.3:
                record["job_title"] = titles.job(500)[0]
            writer_second.writerow([_csv_value(record[c]) for c in columns])
            ecids.append(record["ecid"])
    return first, second, ecids


def _csv_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def mapping_for(with_accounts: bool) -> dict:
    columns = {"identity.ecid": "ecid", "identity.marketo_lead_id": "marketo_lead_id"}
    if with_accounts:
        columns["account.domain"] = "company_domain"
    return columns


# ------------------------------------------------------------------------------ measurements
class MeasureFailed(Exception):
    pass


def measure_file_ingestion(sandbox, user, path: Path, columns: dict, expect: str) -> dict:
    from django.core.files import File

    from cdp.services.ingestion import start_file_ingestion

    cpu_before = cpu_seconds()
    started = time.perf_counter()
    with path.open("rb") as handle:
        batch = start_file_ingestion(
            sandbox, entity="person", uploaded_file=File(handle, name=path.name), user=user, columns=columns
        )
    batch.refresh_from_db()
    seconds = time.perf_counter() - started
    cpu = [after - before for before, after in zip(cpu_before, cpu_seconds(), strict=True)]
    if batch.status != "succeeded":
        raise MeasureFailed(f"status {batch.status}: {batch.error}")
    done = batch.created if expect == "created" else batch.updated
    if batch.rejected or done != batch.rows_done:
        raise MeasureFailed(
            f"File ingestion stored an unexpected result: {batch.created} created, {batch.updated} updated, "
            f"{batch.merged} merged, {batch.rejected} rejected of {batch.rows_done} rows."
        )
    return {"rows": batch.rows_done, "seconds": seconds, "rate": batch.rows_done / seconds, "cpu": cpu}


def cpu_seconds() -> tuple:
    """CPU seconds used so far by this process and by its PostgreSQL backend (read from /proc when
    the server runs on this machine, else NaN). On a shared machine, wall time mostly measures
    the neighbours; CPU time per record is what the ingest path itself costs."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    return time.process_time(), process_cpu([backend])


def process_cpu(pids) -> float:
    """User + system CPU seconds of processes on this machine; NaN if one can't be read."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return float("nan")
    return total


def server_processes(server) -> tuple:
    """gunicorn's master and workers, and the PostgreSQL backends other than this process's."""
    from django.db import connection

    workers = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == server.pid:
                workers.append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND backend_type = 'client backend'"
        )
        backends = [pid for (pid,) in cursor.fetchall()]
    return [server.pid, *workers], backends


def measure_copy_floor(path: Path, with_accounts: bool) -> dict:
    """COPY the same file into a scratch table with the same columns and no index."""
    from django.db import connection

    types = {"lead_score": "integer", "is_unsubscribed": "boolean"}
    columns = PEOPLE_COLUMNS + (["company_domain"] if with_accounts else [])
    definition = ", ".join(f"{name} {types.get(name, 'text')}" for name in columns)
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_people_copy")
        cursor.execute(f"CREATE TABLE bench_people_copy ({definition})")
    started = time.perf_counter()
    with connection.cursor() as cursor, path.open("rb") as handle:
        with cursor.cursor.copy("COPY bench_people_copy FROM STDIN WITH (FORMAT csv, HEADER true)") as copy:
            while block := handle.read(1 << 20):
                copy.write(block)
        cursor.execute("SELECT count(*) FROM bench_people_copy")
        rows = cursor.fetchone()[0]
    seconds = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE bench_people_copy")
    return {"rows": rows, "seconds": seconds, "rate": rows / seconds}


def measure_storage_floor(path: Path, sandbox, with_accounts: bool) -> dict:
    """The least any ingest path must do: the file's rows written straight into the real people and
    identity tables (their indexes, unique and foreign keys; ECID, email and Marketo id per person)
    by PostgreSQL alone — no validation, no resolution, no merge policy, no Python per row.

    The file is first COPYed into a temporary table (untimed); then one statement inserts the people
    and their identities with the deferred foreign-key checks made immediate, so they are inside
    the timing, and everything is rolled back. It runs before the ingestion passes, into the same
    empty sandbox. The second round repeats it on copies of the two tables without foreign keys:
    what dropping them would buy."""
    from django.db import connection, transaction

    types = {"lead_score": "integer", "is_unsubscribed": "boolean"}
    columns = PEOPLE_COLUMNS + (["company_domain"] if with_accounts else [])
    definition = ", ".join(f"{name} {types.get(name, 'text')}" for name in columns)
    person_columns = [c for c in PEOPLE_COLUMNS if c not in ("ecid", "marketo_lead_id")]
    provenance = json.dumps({c: ["file", dt.datetime.now(dt.UTC).isoformat()] for c in person_columns})
    results = {}
    for foreign_keys in (True, False):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"CREATE TEMP TABLE bench_staging (n bigserial, {definition}) ON COMMIT DROP")
            with path.open("rb") as handle, cursor.cursor.copy(
                f"COPY bench_staging ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv, HEADER true)"
            ) as copy:
                while block := handle.read(1 << 20):
                    copy.write(block)
            people, identities = "cdp_person", "cdp_identity"
            if not foreign_keys:  # same columns, defaults, indexes and checks, logged; no foreign keys
                cursor.execute("CREATE TABLE bench_person (LIKE cdp_person INCLUDING ALL)")
                cursor.execute("CREATE TABLE bench_identity (LIKE cdp_identity INCLUDING ALL)")
                people, identities = "bench_person", "bench_identity"
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            values = ", ".join(c if c in types else f"coalesce({c}, '')" for c in person_columns)
            started = time.perf_counter()
            cursor.execute(
                "WITH staged AS (SELECT nextval(pg_get_serial_sequence('cdp_person', 'id')) AS id, * FROM bench_staging), "
                f"people AS (INSERT INTO {people} (id, sandbox_id, {', '.join(person_columns)}, attributes, provenance, "
                f"created_at, updated_at) SELECT id, %s, {values}, '{{}}'::jsonb, %s::jsonb, now(), now() FROM staged) "
                f"INSERT INTO {identities} (sandbox_id, namespace, value, person_id, dataset, created_at, last_seen_at) "
                "SELECT %s, k.namespace, k.value, s.id, 'file', now(), now() FROM staged s CROSS JOIN LATERAL "
                "(VALUES ('email', s.email), ('ecid', s.ecid), ('marketo_lead_id', s.marketo_lead_id)) AS k(namespace, value)",
                [sandbox.pk, provenance, sandbox.pk],
            )
            rows = cursor.rowcount // 3
            results[foreign_keys] = time.perf_counter() - started
            transaction.set_rollback(True)
    return {"rows": rows, "seconds": results[True], "rate": rows / results[True], "rate_without_fk": rows / results[False]}


def analyze() -> None:
    """What autovacuum does after a load; this machine's PostgreSQL runs with autovacuum off.
    Untimed: the next measure starts with statistics, as it would in production."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


# --------------------------------------------------------------------------------- streaming
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(environment: dict, workers: int, port: int, log_path: Path) -> subprocess.Popen:
    env = {**os.environ, **environment}
    env.pop("CELERY_TASK_ALWAYS_EAGER", None)
    gunicorn = Path(sys.executable).with_name("gunicorn")
    command = [str(gunicorn), "config.wsgi", "--workers", str(workers), "--bind", f"127.0.0.1:{port}",
               "--timeout", "60", "--log-level", "warning"]
    log = log_path.open("wb")
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise MeasureFailed(f"gunicorn exited with {server.returncode}; see {log_path}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return server
        except OSError:
            time.sleep(0.2)
    stop_server(server)
    raise MeasureFailed("gunicorn did not start listening within 60 s")


def stop_server(server: subprocess.Popen) -> None:
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)


class StreamClient(threading.Thread):
    """POSTs batches of events until the deadline; records latencies and accepted counts."""

    types = [("web.visit", 40), ("email.opened", 20), ("email.clicked", 8), ("email.delivered", 20), ("form.filled", 4),
             ("interesting_moment", 4), ("score.changed", 4)]

    def __init__(self, number, port, path, key, ecids, batch, deadline):
        super().__init__(daemon=True)
        self.number, self.port, self.path, self.key, self.ecids = number, port, path, key, ecids
        self.batch, self.deadline = batch, deadline
        self.rng = random.Random(number)
        self.latencies, self.accepted, self.failures, self.requests = [], 0, [], 0
        kinds, weights = zip(*self.types, strict=True)
        self.kinds, self.weights = kinds, weights

    def body(self) -> bytes:
        rng, now = self.rng, dt.datetime.now(dt.UTC)
        kinds = rng.choices(self.kinds, self.weights, k=self.batch)
        records = [
            {
                "type": kind,
                "occurred_at": (now - dt.timedelta(seconds=rng.randint(0, 600))).isoformat(),
                "identity": {"ecid": rng.choice(self.ecids)},
                "external_id": uuid.uuid4().hex,
                "properties": {"url": f"https://www.acme.example/p/{rng.randint(1, 50)}", "campaign": "Bench"},
            }
            for kind in kinds
        ]
        return json.dumps({"records": records}).encode()

    def post(self, body: bytes):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            connection.request("POST", self.path, body, {
                "Authorization": f"Bearer {self.key}", "Content-Type": "application/json",
                "Idempotency-Key": uuid.uuid4().hex,
            })
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def run(self):
        while time.monotonic() < self.deadline:
            body = self.body()
            started = time.perf_counter()
            try:
                status, answer = self.post(body)
            except OSError as error:
                self.failures.append(str(error))
                time.sleep(0.05)
                continue
            self.latencies.append(time.perf_counter() - started)
            self.requests += 1
            if status in (200, 207):
                result = json.loads(answer)
                self.accepted += result["accepted"]
                if result["rejected"]:
                    self.failures.append(f"HTTP {status}: {len(result['rejected'])} rejected, first: {result['rejected'][0]}")
            else:
                self.failures.append(f"HTTP {status}: {answer[:300]!r}")


def measure_streaming(environment, sandbox, key, ecids, args, var_dir: Path) -> dict:
    from cdp.models import ExperienceEvent

    port = free_port()
    server = start_server(environment, args.workers, port, var_dir / "gunicorn.log")
    path = f"/api/sandboxes/{sandbox.pk}/stream/event/"
    try:
        # Warm-up: every worker imports the app and opens its connection before the clock starts.
        warm = StreamClient(99, port, path, key, ecids, 10, time.monotonic() + 3)
        warm.run()
        if warm.failures and not warm.accepted:
            raise MeasureFailed(f"the endpoint refused the warm-up requests: {warm.failures[0]}")
        before = ExperienceEvent.objects.for_sandbox(sandbox).count()
        # The workers keep their database connections (CONN_MAX_AGE), so these are the backends.
        app_pids, backend_pids = server_processes(server)
        cpu_before = process_cpu(app_pids), process_cpu(backend_pids)
        started = time.monotonic()
        deadline = started + args.stream_seconds
        clients = [StreamClient(n, port, path, key, ecids, args.stream_batch, deadline) for n in range(args.stream_clients)]
        for client in clients:
            client.start()
        for client in clients:
            client.join(timeout=args.stream_seconds + 120)
        elapsed = time.monotonic() - started
        cpu = [process_cpu(app_pids) - cpu_before[0], process_cpu(backend_pids) - cpu_before[1]]
        stored = ExperienceEvent.objects.for_sandbox(sandbox).count() - before
    finally:
        stop_server(server)
    latencies = sorted(latency for client in clients for latency in client.latencies)
    failures = [failure for client in clients for failure in client.failures]
    accepted = sum(client.accepted for client in clients)
    return {
        "accepted": accepted,
        "stored": stored,
        "seconds": elapsed,
        "rate": accepted / elapsed,
        "requests": len(latencies),
        "p50": percentile(latencies, 0.50),
        "p99": percentile(latencies, 0.99),
        "failures": failures,
        "cpu": cpu,
    }


def percentile(ordered, fraction):
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


# ------------------------------------------------------------------------------------ report
def attempt(label, measure, *args):
    """Run one measurement; a failure is reported in the table instead of ending the run."""
    try:
        result = measure(*args)
    except Exception as error:  # noqa: BLE001 - the benchmark reports whatever broke and goes on
        message = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
        print(f"  {label}: FAILED ({message})")
        return {"error": message}
    if "rows" in result:
        print(f"  {label}: {result['rows']:,} records in {result['seconds']:,.2f} s")
    if "cpu" in result and "rows" in result:
        print(f"  {label}: CPU {result['cpu'][0]:,.2f} s in this process, {result['cpu'][1]:,.2f} s in PostgreSQL")
    return result


def rate_row(label, result, unit, target):
    if "error" in result:
        return (label, f"failed: {result['error'][:70]}", f"≥ {target:,}/s" if target else "—", "FAILED")
    if target is None:
        return (label, f"{result['rate']:,.0f} {unit}", "—", "reference")
    return (label, f"{result['rate']:,.0f} {unit}", f"≥ {target:,}/s", verdict(result["rate"] >= target))


def verdict(ok: bool) -> str:
    return "meets" if ok else "MISSES"


def print_table(rows):
    widths = [max(len(str(row[i])) for row in rows) for i in range(4)]
    line = "+".join("-" * (w + 2) for w in widths)
    for index, row in enumerate(rows):
        print(" | ".join(str(cell).ljust(widths[i]) for i, cell in enumerate(row)))
        if index == 0:
            print(line)


def main():
    args = parse_args()
    var_dir = Path(tempfile.mkdtemp(prefix="quorum-bench-"))
    environment = configure_environment(var_dir)
    ensure_database(environment["DATABASE_URL"], args.reuse_db)

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    sandbox, user, key = make_tenant()
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        server_version = cursor.fetchone()[0]
    print(f"Quorum ingestion benchmark: {args.rows:,} people{' with account references' if args.with_accounts else ''}, "
          f"PostgreSQL {server_version}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start")

    try:
        started = time.perf_counter()
        people, update, ecids = write_people_files(var_dir, args.rows, args.seed, args.with_accounts)
        print(f"  generated {people.stat().st_size / 1e6:,.1f} MB of CSV in {time.perf_counter() - started:,.1f} s")
        columns = mapping_for(args.with_accounts)

        storage = attempt("storage floor", measure_storage_floor, people, sandbox, args.with_accounts)
        created = attempt("file ingestion, new people", measure_file_ingestion, sandbox, user, people, columns, "created")
        analyze()
        updated = attempt("file ingestion, update pass", measure_file_ingestion, sandbox, user, update, columns, "updated")
        analyze()
        floor = attempt("COPY floor", measure_copy_floor, people, args.with_accounts)
        stream = None
        if not args.skip_stream:
            stream = attempt("streaming", measure_streaming, environment, sandbox, key, ecids, args, var_dir)
            if "error" not in stream:
                print(f"  streaming: {stream['accepted']:,} events in {stream['requests']:,} requests over {stream['seconds']:,.1f} s")
                if stream["failures"]:
                    print(f"  streaming failures: {len(stream['failures'])}, first: {stream['failures'][0]}")

        rows = [("measure", "figure", "target", "verdict")]
        for label, result in (("new people", created), ("update pass", updated)):
            rows.append(rate_row(f"batch file ingestion, {label}", result, "records/s", TARGET_BATCH_RATE))
        for label, result in (("new people", created), ("update pass", updated)):
            if "error" not in result:
                per_10k = [seconds * 10_000 / result["rows"] for seconds in result["cpu"]]
                rows.append((f"CPU per 10,000 records, {label} (app + PostgreSQL)",
                             f"{per_10k[0]:,.2f} + {per_10k[1]:,.2f} s", "—", "reference"))
        rows.append(rate_row("COPY into scratch table (floor)", floor, "records/s", None))
        rows.append(rate_row("rows straight into people + identity tables, SQL only", storage, "records/s", None))
        if "error" not in storage:
            rows.append(("  the same without foreign keys", f"{storage['rate_without_fk']:,.0f} records/s", "—", "reference"))
        for label, result in (("new people", created), ("update pass", updated)):
            if "error" in result or "error" in floor:
                rows.append((f"ingestion / COPY time, {label}", "n/a", f"≤ {TARGET_COPY_RATIO:g}×", "FAILED"))
                continue
            ratio = result["seconds"] / floor["seconds"]
            rows.append((f"ingestion / COPY time, {label}", f"{ratio:,.1f}×", f"≤ {TARGET_COPY_RATIO:g}×",
                         verdict(ratio <= TARGET_COPY_RATIO)))
        if stream is None:
            rows.append(("streaming", "skipped (--skip-stream)", f"≥ {TARGET_STREAM_RATE:,}/s", "—"))
        else:
            label = f"streaming events ({args.stream_clients} clients × {args.stream_batch}/request, {args.workers} workers)"
            rows.append(rate_row(label, stream, "events/s", TARGET_STREAM_RATE))
            if "error" not in stream:
                per_1k = [seconds * 1000 / max(stream["accepted"], 1) for seconds in stream["cpu"]]
                rows.append(("server CPU per 1,000 events (gunicorn + PostgreSQL)",
                             f"{per_1k[0]:,.2f} + {per_1k[1]:,.2f} s", "—", "reference"))
                rows.append(("streaming request latency p50 / p99",
                             f"{stream['p50'] * 1000:,.0f} / {stream['p99'] * 1000:,.0f} ms", "—", "reference"))
                consistent = stream["stored"] == stream["accepted"] and not stream["failures"]
                rows.append(("streamed events stored = accepted, no failures",
                             f"{stream['stored']:,} / {stream['accepted']:,}, {len(stream['failures'])} failed", "equal, 0",
                             verdict(consistent)))
        print()
        print_table(rows)
        print(f"\nload average at end: {os.getloadavg()[0]:.1f}")
    finally:
        connection.close()
        shutil.rmtree(var_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
