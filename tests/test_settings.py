"""Settings come from the environment: each case runs in a fresh process with its own variables."""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
# Variables that would leak the test run's own configuration into the process under test
# (tests/browser.py sets DJANGO_ALLOW_ASYNC_UNSAFE for Playwright, which --deploy rejects).
CONTROLLED = (
    "DEBUG",
    "SECRET_KEY",
    "DJANGO_SETTINGS_MODULE",
    "ALLOWED_HOSTS",
    "QUORUM_VAR_DIR",
    "DJANGO_ALLOW_ASYNC_UNSAFE",
)


def run(args, tmp_path, **variables):
    env = {k: v for k, v in os.environ.items() if k not in CONTROLLED}
    env.update(DJANGO_SETTINGS_MODULE="config.settings.base", QUORUM_VAR_DIR=str(tmp_path))
    for name, value in variables.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return subprocess.run(
        [sys.executable, *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_deploy_check_is_clean_with_production_settings(tmp_path):
    result = run(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        tmp_path,
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="quorum.example.com",
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_deploy_check_reports_an_insecure_secret_key(tmp_path):
    """The check above could not fail if --deploy checked nothing; a weak key must be reported."""
    result = run(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        tmp_path,
        SECRET_KEY="too-short",
        ALLOWED_HOSTS="quorum.example.com",
    )

    assert result.returncode != 0
    assert "security.W009" in result.stderr


def test_missing_secret_key_with_debug_off_is_refused_clearly(tmp_path):
    result = run(["manage.py", "check"], tmp_path, SECRET_KEY=None, DEBUG=None)

    assert result.returncode != 0
    assert "ImproperlyConfigured: SECRET_KEY must be set when DEBUG is off." in result.stderr


SQLITE_PRAGMAS = """
import json, django
django.setup()
from django.db import connection
with connection.cursor() as cursor:
    values = {}
    for pragma in ("journal_mode", "busy_timeout"):
        cursor.execute(f"PRAGMA {pragma}")
        values[pragma] = cursor.fetchone()[0]
print(json.dumps({"name": str(connection.settings_dict["NAME"]), **values}))
"""


@pytest.mark.parametrize("debug", ["1", None], ids=["debug", "production"])
def test_default_database_is_sqlite_in_wal_mode_with_a_busy_timeout(tmp_path, debug):
    result = run(
        ["-c", SQLITE_PRAGMAS], tmp_path, DATABASE_URL=None, DEBUG=debug, SECRET_KEY=secrets.token_urlsafe(50)
    )

    assert result.returncode == 0, result.stderr
    database = json.loads(result.stdout.strip().splitlines()[-1])
    assert database["name"] == str(tmp_path / "quorum.sqlite3")
    assert database["journal_mode"] == "wal"
    assert database["busy_timeout"] == 20000
