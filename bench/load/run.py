"""Load test: streaming ingestion and profile lookup under a fixed arrival rate (open loop).

    .venv/bin/python bench/load/run.py [--lookup-rates 200] [--stream-rates 1500] [--seconds 30] [--json FILE]

The rig, all on this machine: PostgreSQL (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/quorum_load;
created if missing and migrated; dropped and re-created only when its schema no longer matches the
migrations), gunicorn (config.wsgi, DEBUG off, --workers N) and one
Celery worker on every queue with Redis DB 6 as broker (CELERY_BROKER_URL), so the audience
evaluations that streamed changes enqueue are consumed as in production. A sandbox with generated
data (cdp.demo, organization ``load-rig-<people>``) is seeded once and reused; each run issues a new
marketer API token.

The load generator is this process: one asyncio loop sends requests at fixed times (t0 + i/rate)
whatever the server's pace, one connection per request (gunicorn's sync workers close it anyway).
Latency is measured from the request's *scheduled* time to the end of the answer, so a stalled
server shows as latency and not as a lower send rate (no coordinated omission). A request that does
not answer within --timeout (or answers an error) counts as an error and ranks as "failed" above every
answer in the percentiles.

  a) profile lookup: GET profiles/lookup/?namespace=…&value=… over identities sampled from the
     sandbox (ECIDs, emails, Marketo ids, domains…), every one present (a 404 is an error);
  b) streaming ingestion: POST stream/event/ with --stream-batch events per request, each with an
     Idempotency-Key and an external_id, at --stream-rates events/s.
     Each step has four live audiences over the events it streams (its own campaign tag); after
     the step, the time until their stored members equal a fresh evaluation is reported.

Each rate (a comma-separated list steps through several) gets a fresh gunicorn, so requests an
overloaded step left queued never leak into the next one.

Each is compared in the same run with the same work done in-process without HTTP (reference): the
lookup service + serializer (and its SQL query count), ingest_stream on the same batch size.

The generator shares the 2 CPUs with the server, the worker and PostgreSQL: the table gives its own
CPU use and the server's, and the load average, next to the figures.
"""

import argparse
import asyncio
import datetime as dt
import json
import math
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode, urlparse

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.ingest.run import free_port, percentile, print_table, verdict  # noqa: E402
from bench.run_all import write_rows_json  # noqa: E402

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/quorum_load"
DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/6"
TARGET_STREAM_RATE = 1_500
TARGET_STREAM_P99 = 0.200
TARGET_LOOKUP_RATE = 200
TARGET_LOOKUP_P99 = 0.050
CLK_TCK = os.sysconf("SC_CLK_TCK")
LATE_SEND = 0.005
WARMUP_RATE = 10.0
EVENT_TYPES = [("web.visit", 40), ("email.opened", 20), ("email.clicked", 8), ("email.delivered", 20),
               ("form.filled", 4), ("interesting_moment", 4), ("score.changed", 4)]  # fmt: skip
# Audiences over the streamed events, as a marketer would have them live while events stream in.
# Each streaming step tags its events (properties.campaign) and gets its own audiences over that tag,
# so what they must contain is exactly what that step streamed.
STREAMING_AUDIENCES = [
    ("person", '(select e from xEvent where e.properties.campaign = "{tag}" and e.type = "web.visit").count() >= 1'),
    ("person", '(select e from xEvent where e.properties.campaign = "{tag}").count() >= 3'),
    ("person", '(select e from xEvent where e.properties.campaign = "{tag}" and e.type = "email.clicked").count() >= 1 '
               'and person.jobLevel in ["VP", "C-Level", "Director"]'),
    ("account", '(select e from xEvent where e.properties.campaign = "{tag}").count() >= 5'),
]
AUDIENCE_PREFIX = "Load stream"
SETTLE_TIMEOUT = 120.0


def rates(text: str) -> list[float]:
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a comma-separated list of rates, e.g. 100,200") from None
    if not values or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"'{text}': give one or more rates above 0")
    return values


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30.0, help="Measured seconds per scenario (after a warm-up).")
    parser.add_argument("--warmup", type=float, default=3.0, help="Seconds of light load (at most 10 requests/s) on each fresh server before the clock starts.")
    parser.add_argument("--lookup-rates", type=rates, default=[TARGET_LOOKUP_RATE],
                        help="Lookup requests per second; a comma-separated list runs one step per rate.")
    parser.add_argument("--stream-rates", type=rates, default=[TARGET_STREAM_RATE],
                        help="Streamed events per second; a comma-separated list runs one step per rate.")
    parser.add_argument("--stream-batch", type=int, default=50, help="Events per streaming request.")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn sync workers.")
    parser.add_argument("--timeout", type=float, default=10.0, help="Seconds before a request counts as failed.")
    parser.add_argument("--accounts", type=int, default=2_000, help="Seeded accounts (first run of a size only).")
    parser.add_argument("--people", type=int, default=20_000, help="Seeded people.")
    parser.add_argument("--events", type=int, default=100_000, help="Seeded events.")
    parser.add_argument("--skip-lookup", action="store_true")
    parser.add_argument("--skip-stream", action="store_true")
    parser.add_argument("--json", metavar="FILE", help="Also write the table rows and raw figures as JSON to FILE.")
    parser.add_argument("--seed", type=int, default=11)
    return parser.parse_args(argv)


# ------------------------------------------------------------------------------------ the rig
def configure_environment(var_dir: Path) -> dict:
    """Settings shared by this process, the server and the worker: production-like, DEBUG off."""
    broker = os.environ.get("CELERY_BROKER_URL", DEFAULT_BROKER_URL)
    values = {
        "DATABASE_URL": os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL),
        "SECRET_KEY": os.environ.get("SECRET_KEY") or secrets.token_urlsafe(50),
        "DEBUG": "0",
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "False",
        "QUORUM_VAR_DIR": str(var_dir),
        "DJANGO_SETTINGS_MODULE": "config.settings.base",
        "LOG_LEVEL": "WARNING",
        "CELERY_BROKER_URL": broker,
        "CELERY_RESULT_BACKEND": broker,
        "REDIS_URL": broker,
        "CELERY_TASK_ALWAYS_EAGER": "0",
    }
    os.environ.update(values)
    return values


def ensure_database(database_url: str, recreate: bool = False) -> None:
    """Create the rig's database if missing (or drop and create it again when ``recreate``)."""
    import psycopg

    url = urlparse(database_url)
    if not url.scheme.startswith("postgres"):
        sys.exit("The load test runs on PostgreSQL only: set DATABASE_URL to a postgres:// URL.")
    name = url.path.lstrip("/")
    if recreate and not ("load" in name or "bench" in name):
        sys.exit(f"Refusing to drop database '{name}': the load test only drops databases named *load* or *bench*.")
    with psycopg.connect(url._replace(path="/postgres").geturl(), autocommit=True) as connection:
        if recreate:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            connection.execute(f'CREATE DATABASE "{name}"')


def migrate(database_url: str) -> None:
    """Migrate the kept database; when its schema no longer matches the migrations (a migration was
    re-created since the last run), start again from an empty one: the seeded data set is regenerated."""
    from django.core.management import call_command
    from django.db import DatabaseError, connection

    try:
        call_command("migrate", verbosity=0)
    except DatabaseError as error:
        print(f"  the kept database does not match the migrations ({str(error).splitlines()[0]}): re-creating it")
        connection.close()
        ensure_database(database_url, recreate=True)
        call_command("migrate", verbosity=0)


def seeded_sandbox(args):
    """The sandbox holding this size's generated data, generated on the first run only."""
    from cdp.demo import DemoSizes, generate_demo_data
    from cdp.models import Organization, Person
    from cdp.services import create_organization

    slug = f"load-rig-{args.people}"
    organization = Organization.objects.filter(slug=slug).first()
    if organization is not None and Person.objects.for_sandbox(organization.sandboxes.get()).exists():
        return organization.sandboxes.get()
    if organization is not None:  # an interrupted generation
        organization.delete()
    organization = create_organization(name=f"Load rig {args.people:,} people", slug=slug)
    sandbox = organization.sandboxes.get()
    started = time.perf_counter()
    generate_demo_data(sandbox, DemoSizes(accounts=args.accounts, people=args.people, events=args.events), seed=args.seed)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(f"  seeded {slug}: {args.accounts:,} accounts, {args.people:,} people, {args.events:,} events "
          f"in {time.perf_counter() - started:,.0f} s")
    return sandbox


def issue_marketer_token(sandbox) -> str:
    from django.contrib.auth import get_user_model

    from cdp.choices import Role
    from cdp.models import Membership, SandboxRole
    from cdp.services import issue_api_token

    username = f"load-{uuid.uuid4().hex[:12]}"
    user = get_user_model().objects.create_user(username, password=secrets.token_urlsafe(16))
    membership = Membership.objects.create(user=user, organization=sandbox.organization)
    SandboxRole.objects.create(membership=membership, sandbox=sandbox, role=Role.MARKETER)
    return issue_api_token(user=user, name="load test", created_by=user)[1]


def start_process(command, environment, log_path: Path) -> subprocess.Popen:
    with open(log_path, "wb") as log:
        return subprocess.Popen(command, cwd=ROOT, env={**os.environ, **environment}, stdout=log, stderr=subprocess.STDOUT)


def start_server(environment, workers: int, port: int, var_dir: Path) -> subprocess.Popen:
    gunicorn = Path(sys.executable).with_name("gunicorn")
    server = start_process([str(gunicorn), "config.wsgi", "--workers", str(workers), "--bind", f"127.0.0.1:{port}",
                            "--timeout", "60", "--log-level", "warning"], environment, var_dir / "gunicorn.log")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {server.returncode}: {(var_dir / 'gunicorn.log').read_text()[-2000:]}")
        try:
            asyncio.run(http_get_status(port, "/api/"))
            return server
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("gunicorn did not answer within 60 s")


def start_worker(environment, var_dir: Path) -> subprocess.Popen:
    from config.celery_app import QUEUES

    return start_process([sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "prefork", "--concurrency", "1",
                          "--loglevel", "WARNING", "-n", f"load-{os.getpid()}@%h", "-Q", ",".join(QUEUES),
                          "--without-gossip", "--without-mingle"], environment, var_dir / "worker.log")  # fmt: skip


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def cpu_seconds(pid: int) -> float:
    """User + system CPU of one process so far (0 once it has gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def tree_cpu_seconds(pid: int) -> float:
    """CPU of a process and its live descendants (gunicorn workers, celery children)."""
    total, pending = 0.0, [pid]
    while pending:
        current = pending.pop()
        total += cpu_seconds(current)
        try:
            for task in Path(f"/proc/{current}/task").iterdir():
                pending.extend(int(child) for child in (task / "children").read_text().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def database_cpu_seconds(database_url: str) -> dict[int, float]:
    """{backend pid: CPU so far} of the PostgreSQL processes serving the rig's database."""
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as connection:
        pids = connection.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return {pid: cpu_seconds(pid) for (pid,) in pids}


# ------------------------------------------------------------------------------ load generator
async def http_get_status(port: int, path: str) -> int:
    status, _ = await exchange(port, f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
    return status


async def exchange(port: int, request: bytes) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        answer = await reader.read(-1)  # Connection: close → the server ends the stream
    finally:
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def http_request(method: str, path: str, key: str, body: bytes = b"", extra: dict | None = None) -> bytes:
    headers = {"Host": "127.0.0.1", "Authorization": f"Bearer {key}", "Connection": "close", **(extra or {})}
    if body:
        headers.update({"Content-Type": "application/json", "Content-Length": str(len(body))})
    lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return f"{method} {path} HTTP/1.1\r\n{lines}\r\n".encode() + body


class OpenLoop:
    """Sends ``make_request(i)`` at t0 + i/rate for ``seconds``; records latency from the scheduled time."""

    def __init__(self, port, rate, seconds, timeout, make_request, check_answer):
        self.port, self.rate, self.seconds, self.timeout = port, rate, seconds, timeout
        self.make_request, self.check_answer = make_request, check_answer
        self.latencies, self.errors, self.late_sends, self.units = [], [], [], 0

    async def one(self, scheduled: float, request: bytes):
        try:
            status, body = await asyncio.wait_for(exchange(self.port, request), self.timeout)
        except (OSError, TimeoutError, asyncio.TimeoutError, ValueError, IndexError) as error:
            self.errors.append(f"{type(error).__name__}: {error}"[:200])
            return
        problem, units = self.check_answer(status, body)
        if problem:
            self.errors.append(problem)
            return
        self.latencies.append(time.perf_counter() - scheduled)
        self.units += units

    async def run(self):
        loop_tasks, start = set(), time.perf_counter()
        total = int(self.rate * self.seconds)
        for index in range(total):
            scheduled = start + index / self.rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -LATE_SEND:  # the generator itself could not keep up (counted in the latency anyway)
                self.late_sends.append(-delay)
            task = asyncio.create_task(self.one(scheduled, self.make_request(index)))
            loop_tasks.add(task)
            task.add_done_callback(loop_tasks.discard)
        await asyncio.gather(*loop_tasks)
        self.elapsed = max(time.perf_counter() - start, self.seconds)


def run_scenario(name, environment, var_dir, worker, rate, args, make_request, check_answer, after=None) -> dict:
    """On a fresh server: a light warm-up, then the measured run, with the CPU used by
    the generator, the server and the worker over it. ``after(end)``, when given, runs once the
    load has stopped (``end``: perf_counter at the last answer) and its result is kept as "after"."""
    port = free_port()
    server = start_server(environment, args.workers, port, var_dir)
    try:
        # Warm-up at a rate any worker keeps up with: it loads the code and opens the connections
        # without leaving a backlog that the measured run would start behind.
        asyncio.run(OpenLoop(port, min(rate, WARMUP_RATE), args.warmup, args.timeout, make_request, check_answer).run())
        load = OpenLoop(port, rate, args.seconds, args.timeout, make_request, check_answer)
        database = environment["DATABASE_URL"]
        cpu = (time.process_time(), tree_cpu_seconds(server.pid), tree_cpu_seconds(worker.pid), database_cpu_seconds(database),
               time.perf_counter())
        asyncio.run(load.run())
        end = time.perf_counter()
        wall = end - cpu[4]
        server_cpu = tree_cpu_seconds(server.pid) - cpu[1]
        # Backends opened during the run count from 0: at most a warm-up's worth too much.
        postgres_cpu = sum(used - cpu[3].get(pid, 0.0) for pid, used in database_cpu_seconds(database).items())
    finally:
        stop(server)
    ordered = sorted(load.latencies)
    sent = len(ordered) + len(load.errors)
    # A failed request (timeout, error status) ranks above every answer: percentiles over all sent.
    ranked = ordered + [math.inf] * len(load.errors)
    result = {
        "scenario": name,
        "offered_per_s": rate,
        "requests": sent,
        "ok": len(ordered),
        "errors": len(load.errors),
        "first_error": load.errors[0] if load.errors else "",
        "seconds": load.elapsed,
        "achieved_per_s": len(ordered) / load.elapsed,
        "units_per_s": load.units / load.elapsed,
        "p50": percentile(ranked, 0.50),
        "p99": percentile(ranked, 0.99),
        "max": ordered[-1] if ordered else float("nan"),
        "generator_late_sends": len(load.late_sends),
        "generator_cpu": (time.process_time() - cpu[0]) / wall,
        "server_cpu": server_cpu / wall,
        "server_cpu_ms_per_ok_request": server_cpu * 1000 / len(ordered) if ordered else float("nan"),
        "postgres_cpu": postgres_cpu / wall,
        "postgres_cpu_ms_per_ok_request": postgres_cpu * 1000 / len(ordered) if ordered else float("nan"),
        "worker_cpu": (tree_cpu_seconds(worker.pid) - cpu[2]) / wall,
        "loadavg": os.getloadavg()[0],
        "after": after(end) if after else None,
    }
    print(f"  {name}: {result['ok']:,} ok, {result['errors']:,} errors, {result['achieved_per_s']:,.1f} req/s, "
          f"p50 {result['p50'] * 1000:,.1f} ms, p99 {result['p99'] * 1000:,.1f} ms, max {result['max'] * 1000:,.0f} ms"
          + (f"; first error: {result['first_error']}" if load.errors else ""))
    return result


# ------------------------------------------------------------------------------------ scenarios
def sample_identities(sandbox, count: int, seed: int) -> list[tuple[str, str]]:
    from cdp.models import Identity

    pairs = list(Identity.objects.for_sandbox(sandbox).order_by("id").values_list("namespace", "value"))
    random.Random(seed).shuffle(pairs)
    return pairs[:count]


def lookup_scenario(sandbox, key, identities):
    paths = [f"/api/sandboxes/{sandbox.pk}/profiles/lookup/?{urlencode({'namespace': n, 'value': v})}" for n, v in identities]
    requests = [http_request("GET", path, key) for path in paths]

    def make_request(index):
        return requests[index % len(requests)]

    def check_answer(status, body):
        return (None, 1) if status == 200 else (f"HTTP {status}: {body[:200]!r}", 0)

    return make_request, check_answer


def event_records(rng, ecids, count, tag="Load"):
    kinds, weights = zip(*EVENT_TYPES, strict=True)
    now = dt.datetime.now(dt.UTC)
    return [
        {
            "type": kind,
            "occurred_at": (now - dt.timedelta(seconds=rng.randint(0, 600))).isoformat(),
            "identity": {"ecid": rng.choice(ecids)},
            "external_id": uuid.uuid4().hex,
            "properties": {"url": f"https://www.acme.example/p/{rng.randint(1, 50)}", "campaign": tag},
        }
        for kind in rng.choices(kinds, weights, k=count)
    ]


def stream_scenario(sandbox, key, ecids, batch, seed, tag):
    rng, path = random.Random(seed), f"/api/sandboxes/{sandbox.pk}/stream/event/"

    def make_request(index):
        body = json.dumps({"records": event_records(rng, ecids, batch, tag)}).encode()
        return http_request("POST", path, key, body, {"Idempotency-Key": uuid.uuid4().hex})

    def check_answer(status, body):
        if status != 200:
            return f"HTTP {status}: {body[:200]!r}", 0
        return None, json.loads(body)["accepted"]

    return make_request, check_answer


def create_streaming_audiences(sandbox, tag: str) -> list:
    """The step's live audiences (evaluated in full by the worker once created, while still empty)."""
    from cdp.segmentation import parse_pql
    from cdp.services.audiences import save_audience

    return [
        save_audience(sandbox, name=f"{AUDIENCE_PREFIX} {tag} #{number}", definition=parse_pql(pql.format(tag=tag), kind).to_tree())
        for number, (kind, pql) in enumerate(STREAMING_AUDIENCES, start=1)
    ]


def delete_streaming_audiences(sandbox) -> None:
    from cdp.models import Audience

    Audience.objects.for_sandbox(sandbox).filter(name__startswith=AUDIENCE_PREFIX).delete()


def wait_until_audiences_current(sandbox, audiences, started: float) -> dict:
    """Seconds from ``started`` (the last answer) until every audience's stored members equal a fresh
    evaluation of its definition, as the worker's incremental evaluations catch up."""
    from django.db import connection

    from cdp.models import AudienceMember
    from cdp.segmentation import preview_count
    from cdp.services.audiences import membership_lookup, parse_definition

    expected = {a.pk: preview_count(parse_definition(a.definition), sandbox, membership_lookup=membership_lookup(sandbox))
                for a in audiences}
    stored = {}
    while time.perf_counter() - started < SETTLE_TIMEOUT:
        stored = {a.pk: AudienceMember.objects.filter(audience=a, status="realized").count() for a in audiences}
        if stored == expected:
            break
        time.sleep(0.1)
    connection.close()
    return {"settled": stored == expected, "seconds": time.perf_counter() - started,
            "members": sum(expected.values()), "stored": sum(stored.values()), "audiences": len(audiences)}


def in_process_lookup(sandbox, identities, runs: int = 200) -> dict:
    """The lookup's own work without HTTP: the service and serializers, timed; and the SQL queries
    one API request makes (through Django's test client, same middleware and authentication)."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from cdp.api.profiles import lookup_answer
    from cdp.services.profile_queries import lookup_identity

    timings = []
    for namespace, value in identities[:runs]:
        started = time.perf_counter()
        lookup_answer(lookup_identity(sandbox, namespace, value))  # the serialisation is part of the measured work
        timings.append(time.perf_counter() - started)
    key = issue_marketer_token(sandbox)
    client = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Bearer {key}")
    namespace, value = identities[0]
    path = f"/api/sandboxes/{sandbox.pk}/profiles/lookup/"
    client.get(path, {"namespace": namespace, "value": value})  # first use writes the token's last_used_at
    with CaptureQueriesContext(connection) as queries:
        answer = client.get(path, {"namespace": namespace, "value": value})
    if answer.status_code != 200:
        raise RuntimeError(f"in-process lookup answered {answer.status_code}: {answer.content[:200]!r}")
    ordered = sorted(timings)
    return {"p50": percentile(ordered, 0.5), "p99": percentile(ordered, 0.99), "queries": len(queries),
            "sql": [query["sql"][:160] for query in queries.captured_queries]}


def in_process_stream(sandbox, ecids, batch: int, seed: int, seconds: float = 5.0) -> dict:
    """ingest_stream called directly with the same batches, one after another, for ``seconds``."""
    from cdp.services.ingestion import ingest_stream

    rng, accepted, timings, deadline = random.Random(seed + 1), 0, [], time.perf_counter() + seconds
    started = time.perf_counter()
    while time.perf_counter() < deadline:
        records = event_records(rng, ecids, batch)
        began = time.perf_counter()
        body, _ = ingest_stream(sandbox, "event", records, idempotency_key=uuid.uuid4().hex)
        timings.append(time.perf_counter() - began)
        accepted += body["accepted"]
    ordered = sorted(timings)
    return {"events_per_s": accepted / (time.perf_counter() - started), "p50": percentile(ordered, 0.5),
            "p99": percentile(ordered, 0.99)}


# ------------------------------------------------------------------------------------ report
def ms(seconds: float) -> str:
    if math.isinf(seconds):
        return "failed"
    return f"{seconds * 1000:,.0f} ms" if seconds >= 0.0995 else f"{seconds * 1000:,.1f} ms"


def cpu_note(result) -> str:
    return (f"CPU: generator {result['generator_cpu']:.0%}, gunicorn {result['server_cpu']:.0%}, "
            f"PostgreSQL {result['postgres_cpu']:.0%}, worker {result['worker_cpu']:.0%} of one core; per answered "
            f"request gunicorn {result['server_cpu_ms_per_ok_request']:,.1f} ms + PostgreSQL "
            f"{result['postgres_cpu_ms_per_ok_request']:,.1f} ms; load average {result['loadavg']:.1f}"
            + (f"; generator behind schedule on {result['generator_late_sends']:,} sends" if result["generator_late_sends"] else ""))


def kept_up(achieved: float, offered: float) -> bool:
    """The server absorbed the offered rate (2 % slack for the run's ramp-down)."""
    return achieved >= 0.98 * offered


def step_verdict(ok: bool, offered: float, target: float) -> str:
    """A step below the target rate shows capacity; only a step at the target rate is judged."""
    return verdict(ok) if offered >= target else "reference"


def table_rows(args, lookups, lookup_ref, streams, stream_ref) -> list[dict]:
    rows = []
    for lookup in lookups:
        offered = lookup["offered_per_s"]
        rate_ok = kept_up(lookup["achieved_per_s"], offered) and not lookup["errors"]
        rows += [
            {"measure": f"profile lookup, {offered:g} req/s offered ({args.workers} workers)",
             "figure": f"{lookup['achieved_per_s']:,.1f} req/s, {lookup['errors']} errors",
             "target": f"{TARGET_LOOKUP_RATE} req/s, 0 errors", "verdict": step_verdict(rate_ok, offered, TARGET_LOOKUP_RATE)},
            {"measure": f"  latency p50 / p99 at {offered:g} req/s", "figure": f"{ms(lookup['p50'])} / {ms(lookup['p99'])}",
             "target": f"p99 < {TARGET_LOOKUP_P99 * 1000:.0f} ms",
             "reference": f"in-process (no HTTP) {ms(lookup_ref['p50'])} / {ms(lookup_ref['p99'])}; "
                          f"{lookup_ref['queries']} SQL queries per request",
             "verdict": step_verdict(rate_ok and lookup["p99"] < TARGET_LOOKUP_P99, offered, TARGET_LOOKUP_RATE)},
            {"measure": f"  CPU and load at {offered:g} req/s", "figure": cpu_note(lookup), "target": "—", "verdict": "reference"},
        ]
    for stream in streams:
        offered = stream["offered_per_s"] * args.stream_batch
        rate_ok = kept_up(stream["units_per_s"], offered) and not stream["errors"]
        rows += [
            {"measure": f"streaming ingestion, {offered:,.0f} events/s offered ({args.stream_batch}/request, "
                        f"{args.workers} workers)",
             "figure": f"{stream['units_per_s']:,.0f} events/s, {stream['errors']} errors",
             "target": f"≥ {TARGET_STREAM_RATE:,} events/s",
             "reference": f"ingest_stream in-process, one caller: {stream_ref['events_per_s']:,.0f} events/s",
             "verdict": step_verdict(rate_ok, offered, TARGET_STREAM_RATE)},
            {"measure": f"  request latency p50 / p99 at {offered:,.0f} events/s",
             "figure": f"{ms(stream['p50'])} / {ms(stream['p99'])}", "target": f"p99 < {TARGET_STREAM_P99 * 1000:.0f} ms",
             "reference": f"in-process {ms(stream_ref['p50'])} / {ms(stream_ref['p99'])}",
             "verdict": step_verdict(rate_ok and stream["p99"] < TARGET_STREAM_P99, offered, TARGET_STREAM_RATE)},
            {"measure": f"  CPU and load at {offered:,.0f} events/s", "figure": cpu_note(stream), "target": "—",
             "verdict": "reference"},
        ]
        settled = stream["after"]
        rows.append(
            {"measure": f"  {settled['audiences']} live audiences over the streamed events: current after the last answer",
             "figure": (f"{settled['seconds']:,.1f} s ({settled['members']:,} members)" if settled["settled"] else
                        f"not within {SETTLE_TIMEOUT:g} s ({settled['stored']:,} of {settled['members']:,} members)"),
             "target": "—", "reference": "incremental evaluation target (issue 4): p99 < 2 s",
             "verdict": "reference" if settled["settled"] else "FAILED"})
    return rows


def main(argv=None):
    args = parse_args(argv)
    var_dir = Path(tempfile.mkdtemp(prefix="quorum-load-"))
    environment = configure_environment(var_dir)
    ensure_database(environment["DATABASE_URL"])

    import django

    django.setup()
    from django.db import connection

    from cdp.models import Identity

    migrate(environment["DATABASE_URL"])
    print(f"Quorum load test: {os.cpu_count()} CPUs, load average {' '.join(f'{v:.1f}' for v in os.getloadavg())} at start")
    sandbox = seeded_sandbox(args)
    identities = sample_identities(sandbox, 5_000, args.seed)
    ecids = list(Identity.objects.for_sandbox(sandbox).filter(namespace="ecid").values_list("value", flat=True)[:5_000])
    key = issue_marketer_token(sandbox)
    lookup_ref = in_process_lookup(sandbox, identities)
    stream_ref = None if args.skip_stream else in_process_stream(sandbox, ecids, args.stream_batch, args.seed)
    connection.close()  # the server and worker have their own; keep none idle in a transaction here

    worker = start_worker(environment, var_dir)
    lookups, streams = [], []
    try:
        if not args.skip_lookup:
            make_request, check = lookup_scenario(sandbox, key, identities)
            for rate in args.lookup_rates:
                lookups.append(run_scenario("profile lookup", environment, var_dir, worker, rate, args, make_request, check))
        for step, rate in enumerate([] if args.skip_stream else args.stream_rates):
            tag = f"load-{uuid.uuid4().hex[:8]}-{step}"
            audiences = create_streaming_audiences(sandbox, tag)
            make_request, check = stream_scenario(sandbox, key, ecids, args.stream_batch, args.seed + step, tag)
            streams.append(run_scenario("streaming ingestion", environment, var_dir, worker, rate / args.stream_batch,
                                        args, make_request, check,
                                        after=lambda end, audiences=audiences: wait_until_audiences_current(sandbox, audiences, end)))
    finally:
        stop(worker)
        delete_streaming_audiences(sandbox)
    rows = table_rows(args, lookups, lookup_ref, streams, stream_ref)
    print()
    print_table([("measure", "figure", "target", "verdict")]
                + [(row["measure"], row["figure"] + (f"  [{row['reference']}]" if row.get("reference") else ""),
                    row["target"], row["verdict"]) for row in rows])
    print(f"\nload average at end: {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    if args.json:
        write_rows_json(args.json, "load", rows, lookups=lookups, lookup_reference=lookup_ref, streams=streams,
                        stream_reference=stream_ref)
    for log in ("gunicorn.log", "worker.log"):
        text = (var_dir / log).read_text(errors="replace").strip()
        if "Traceback" in text:
            print(f"\n{log} (last lines):\n{text[-1500:]}")
    shutil.rmtree(var_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
