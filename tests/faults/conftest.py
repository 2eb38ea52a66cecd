"""Fault tests: real Celery workers killed with SIGKILL, a Redis broker restarted, a database
connection terminated under a running request.

Every test here talks to a private ``redis-server`` on port 6390 (started once per session, flushed
for every test, never the machine's shared Redis) and starts ``celery -A config worker``
subprocesses on the test database (tests/faults/worker_settings.py). Workers share the database with
the test, so these tests need PostgreSQL; on SQLite they skip with the reason (under CI=true, where
a skip would hide a broken setup, they fail instead).
"""

import asyncio
import gc
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import psycopg
import pytest
import redis
from aiosmtpd.controller import Controller
from django.db import connection

from config.celery_app import QUEUES
from config.celery_app import app as celery_app
from tests.test_celery_worker import _database_url_for

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
REDIS_SERVER = "/usr/bin/redis-server"
REDIS_PORT = 6390
REDIS_URL = f"redis://127.0.0.1:{REDIS_PORT}/0"
# Short, so a killed worker's task comes back within the test; every task here finishes well within it.
VISIBILITY_TIMEOUT = 4
WAIT_SECONDS = 90


def cannot_run(reason: str):
    if os.environ.get("CI") == "true":
        pytest.fail(f"The fault tests must run in CI, but: {reason}")
    pytest.skip(reason)


def wait_for(condition, what: str, timeout: float = WAIT_SECONDS, interval: float = 0.1, on_timeout=None):
    """Poll ``condition`` until it returns something truthy (and return that)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            detail = on_timeout() if on_timeout else ""
            raise AssertionError(f"Timed out after {timeout:.0f}s waiting for {what}.{detail}")
        time.sleep(interval)


def side_connection() -> psycopg.Connection:
    """A second connection to the test database, outside Django's (to hold locks, terminate backends)."""
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    return psycopg.connect(**params, autocommit=True)


class PrivateRedis:
    """``redis-server --port 6390`` without persistence: a restart loses everything, like a crash."""

    def __init__(self, log_path: Path):
        self.log_path, self.process = log_path, None

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [REDIS_SERVER, "--port", str(REDIS_PORT), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        wait_for(self.answers, f"redis-server on port {REDIS_PORT}", timeout=20, on_timeout=self.log)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=20)
        self.process = None

    def answers(self) -> bool:
        try:
            return bool(self.client().ping())
        except redis.RedisError:
            return False

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=5)

    def log(self) -> str:
        return f"\nredis-server log:\n{self.log_path.read_text(errors='replace')}"


@pytest.fixture(scope="session")
def private_redis(tmp_path_factory):
    if not os.path.exists(REDIS_SERVER):
        cannot_run(f"{REDIS_SERVER} is not installed (apt-get install redis-server).")
    server = PrivateRedis(tmp_path_factory.mktemp("redis") / "redis.log")
    probe = server.client()
    try:
        probe.ping()
    except redis.RedisError:
        pass
    else:
        cannot_run(f"port {REDIS_PORT} is taken by another Redis; the fault tests need it for their own.")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def postgres(transactional_db):
    if connection.vendor != "postgresql":
        cannot_run(
            f"the fault tests need PostgreSQL (workers share the test database, backends get terminated), "
            f"not {connection.vendor}; run with DATABASE_URL=postgres://… (.ci/run does)."
        )


def reset_celery_client() -> None:
    """Forget the broker connections and result backend the app made for earlier settings.

    Celery caches them on first use; these tests point the app at their private Redis (and back).
    """
    celery_app._pool = None
    celery_app.amqp._producer_pool = None
    celery_app._backend_cache = None
    celery_app._local = threading.local()


@pytest.fixture
def broker(postgres, private_redis, settings, monkeypatch):
    """This process publishes to the private Redis (tasks are not run inline)."""
    private_redis.client().flushall()
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = settings.CELERY_RESULT_BACKEND = settings.REDIS_URL = REDIS_URL
    # Celery prefers these environment variables (set in CI) to its configuration.
    monkeypatch.setenv("CELERY_BROKER_URL", REDIS_URL)
    monkeypatch.setenv("CELERY_RESULT_BACKEND", REDIS_URL)
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": VISIBILITY_TIMEOUT}
    reset_celery_client()
    assert celery_app.conf.broker_url == celery_app.conf.result_backend == REDIS_URL
    assert celery_app.conf.task_always_eager is False
    yield private_redis
    # Results the test waited for unsubscribe when collected: let them do it while Redis still runs.
    gc.collect()
    reset_celery_client()


class Worker:
    def __init__(self, name: str, process: subprocess.Popen, log_path: Path):
        self.name, self.process, self.log_path = name, process, log_path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def children(self) -> list[int]:
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in path.read_text().split()] if path.exists() else []

    def kill(self) -> None:
        """SIGKILL: no warm shutdown, no acknowledgement, no cleanup."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)


class Workers:
    """Starts ``celery -A config worker`` processes on the test database and the private Redis."""

    def __init__(self, tmp_path: Path, redis_server: PrivateRedis):
        self.tmp_path, self.redis, self.started = tmp_path, redis_server, []
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.faults.worker_settings",
            "DATABASE_URL": _database_url_for(connection.settings_dict),
            "CELERY_BROKER_URL": REDIS_URL,
            "CELERY_RESULT_BACKEND": REDIS_URL,
            "REDIS_URL": REDIS_URL,
            "QUORUM_FAULTS_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT),
        }

    def start(self, pool: str = "solo") -> Worker:
        """``pool="prefork"`` runs one child process (see ``Worker.children``), as production does."""
        name = f"faults-{uuid.uuid4().hex[:6]}@pytest"
        log_path = self.tmp_path / f"{name.split('@')[0]}.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [
                    sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", pool, "--concurrency", "1",
                    "--loglevel", "INFO", "-n", name, "-Q", ",".join(QUEUES),
                    "--without-gossip", "--without-mingle", "--without-heartbeat",
                ],
                cwd=REPO_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        worker = Worker(name, process, log_path)
        self.started.append(worker)
        wait_for(
            lambda: "ready." in worker.log() or not worker.alive(), f"worker {name} to start", on_timeout=lambda: worker.log()
        )
        assert worker.alive(), f"worker {name} exited:\n{worker.log()}"
        return worker

    def logs(self) -> str:
        return "".join(f"\n--- {w.name} ---\n{w.log()[-6000:]}" for w in self.started)

    def stop_all(self) -> None:
        # The test is over and Redis is flushed before the next one: no need for a warm shutdown.
        for worker in self.started:
            if worker.alive():
                worker.kill()


@pytest.fixture
def workers(broker, tmp_path):
    pool = Workers(tmp_path, broker)
    yield pool
    pool.stop_all()


def wait_until_redeliverable(private_redis) -> None:
    """Wait until every unacknowledged message is older than the visibility timeout, so the next
    worker to start takes it back (kombu restores such messages when a consumer starts)."""
    client = private_redis.client()

    def old_enough():
        newest = client.zrevrange("unacked_index", 0, 0, withscores=True)
        return not newest or time.time() - newest[0][1] > VISIBILITY_TIMEOUT + 0.5

    wait_for(old_enough, "the killed worker's task to become redeliverable", timeout=VISIBILITY_TIMEOUT + 10)


def unacked_count(private_redis) -> int:
    return private_redis.client().zcard("unacked_index")


@pytest.fixture
def inline_tasks(settings):
    """``with inline_tasks():`` runs tasks in this process (for setting data up before the workers)."""

    class Inline:
        def __enter__(self):
            settings.CELERY_TASK_ALWAYS_EAGER = True

        def __exit__(self, *exc):
            settings.CELERY_TASK_ALWAYS_EAGER = False

    return Inline


class MarketoHooks:
    """Wraps the fake Marketo's request handling (it runs in this process) to stand still or act at
    a chosen request: ``hold`` keeps the n-th matching request waiting (the worker is then stuck in
    that call, a known point to kill it at) until ``release``; ``after`` runs a function once a
    matching request was answered."""

    def __init__(self, fake, monkeypatch):
        self.lock, self.holds, self.afters = threading.Lock(), [], []
        original = fake.handle

        def handle(request):
            for hold in self.holds:
                if re.fullmatch(hold["path"], request.path):
                    with self.lock:
                        hold["seen"] += 1
                        mine = hold["seen"] == hold["nth"]
                    if mine:
                        hold["reached"].set()
                        hold["release"].wait(WAIT_SECONDS)
            answer = original(request)
            for path, action in self.afters:
                if re.fullmatch(path, request.path):
                    action()
            return answer

        monkeypatch.setattr(fake, "handle", handle)

    def hold(self, path: str, nth: int = 1) -> dict:
        hold = {"path": path, "nth": nth, "seen": 0, "reached": threading.Event(), "release": threading.Event()}
        self.holds.append(hold)
        return hold

    def after(self, path: str, action) -> None:
        self.afters.append((path, action))

    def release_all(self) -> None:
        for hold in self.holds:
            hold["release"].set()


@pytest.fixture
def marketo_hooks(fake_marketo, monkeypatch):
    hooks = MarketoHooks(fake_marketo, monkeypatch)
    yield hooks
    hooks.release_all()


class SmtpSink:
    """An SMTP server (aiosmtpd) that keeps every message it accepts and can hold the n-th one
    in the middle of its DATA exchange (the sending worker is then stuck in ``send``)."""

    def __init__(self, hold_nth=None):
        self.messages, self.hold_nth = [], hold_nth
        self.reached, self.release = threading.Event(), threading.Event()

    async def handle_DATA(self, server, session, envelope):
        self.messages.append({"to": list(envelope.rcpt_tos), "data": envelope.content.decode("utf8", "replace")})
        if len(self.messages) == self.hold_nth:
            self.reached.set()
            while not self.release.is_set():
                await asyncio.sleep(0.05)
        return "250 OK"

    def recipients(self) -> list[str]:
        return sorted(address for message in self.messages for address in message["to"])


@pytest.fixture
def smtp_sink(workers):
    """Workers started after this send their emails here."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sink = SmtpSink()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    workers.env["QUORUM_FAULTS_SMTP_PORT"] = str(port)
    yield sink
    sink.release.set()
    controller.stop()
