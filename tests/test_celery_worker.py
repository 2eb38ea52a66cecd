"""Task wiring end to end: a real ``celery worker`` process, a real Redis broker, a real result.

Runs when CELERY_BROKER_URL is a redis:// URL and the test database is one a second process can
open (PostgreSQL, as in CI via .ci/run). Elsewhere it skips with the reason, except under CI=true,
where a skip would hide a broken setup and so fails instead.
"""

import os
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
from django.conf import settings
from django.db import connection

from cdp.tasks import health_check
from config.celery_app import QUEUES
from config.celery_app import app as celery_app

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULT_TIMEOUT_SECONDS = 60

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]


def _cannot_run(reason: str):
    if os.environ.get("CI") == "true":
        pytest.fail(f"The Celery round trip must run in CI, but: {reason}")
    pytest.skip(reason)


def _database_url_for(settings_dict) -> str:
    """A DATABASE_URL naming the database this test process is using (pytest-django's test_<name>)."""
    user = quote(settings_dict.get("USER") or "", safe="")
    password = quote(settings_dict.get("PASSWORD") or "", safe="")
    credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = f":{settings_dict['PORT']}" if settings_dict.get("PORT") else ""
    return f"postgres://{credentials}{host}{port}/{quote(settings_dict['NAME'], safe='')}"


@pytest.fixture
def redis_broker_url():
    url = settings.CELERY_BROKER_URL
    if not url.startswith("redis://"):
        _cannot_run(f"CELERY_BROKER_URL is {url!r}; this test needs a redis:// broker (.ci/run sets one).")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        _cannot_run(f"Redis at {url} does not answer: {exc}")
    return url


@pytest.fixture
def worker_database_url():
    if connection.vendor != "postgresql":
        _cannot_run(
            f"the test database is {connection.vendor} ({connection.settings_dict['NAME']}), which a "
            "worker process cannot share; run with DATABASE_URL=postgres://… (.ci/run does)."
        )
    return _database_url_for(connection.settings_dict)


@pytest.fixture
def not_eager(settings):
    """The suite runs tasks inline; this test must publish them to the broker instead.

    The Celery app reads CELERY_* from Django settings on every access (namespace CELERY), and the
    namespaced setting wins over ``app.conf.task_always_eager``, so the override goes there.
    """
    settings.CELERY_TASK_ALWAYS_EAGER = False
    assert celery_app.conf.task_always_eager is False


@pytest.fixture
def celery_worker_process(redis_broker_url, worker_database_url, not_eager, tmp_path):
    """A ``celery -A config worker`` subprocess on the project's queues; yields its node name."""
    node_name = f"quorum-test-{uuid.uuid4().hex[:8]}@pytest"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": worker_database_url,
        "CELERY_BROKER_URL": redis_broker_url,
        "CELERY_RESULT_BACKEND": celery_app.conf.result_backend,
        "CELERY_TASK_ALWAYS_EAGER": "false",
    }
    log_path = tmp_path / "worker.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "config", "worker",
                "--pool", "solo", "--loglevel", "INFO", "-n", node_name,
                "-Q", ",".join(QUEUES), "--without-gossip", "--without-mingle",
            ],
            cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        yield node_name, process, log_path
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_health_check_round_trip_through_a_real_worker(celery_worker_process):
    node_name, process, log_path = celery_worker_process

    async_result = health_check.apply_async()
    try:
        result = async_result.get(timeout=RESULT_TIMEOUT_SECONDS)
    except Exception as exc:
        state = "exited with code %s" % process.returncode if process.poll() is not None else "still running"
        pytest.fail(
            f"No result from the worker within {RESULT_TIMEOUT_SECONDS}s ({exc!r}); worker {state}. "
            f"Worker log:\n{log_path.read_text(errors='replace')}"
        )

    assert result["ok"] is True
    assert result["worker"] == node_name
    # The worker answered from the very database this test runs on, not a look-alike.
    assert result["database"] == connection.settings_dict["NAME"]
    assert async_result.state == "SUCCESS"
