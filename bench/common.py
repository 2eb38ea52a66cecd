"""What the benchmarks share: a scratch PostgreSQL database of their own, dropped and created
again unless the run reuses it. Only databases whose name says "bench" are ever dropped."""

import sys
from urllib.parse import urlparse


def ensure_database(database_url: str, reuse: bool) -> None:
    import psycopg

    url = urlparse(database_url)
    name = url.path.lstrip("/")
    if not url.scheme.startswith("postgres"):
        sys.exit("The benchmarks run on PostgreSQL only: set DATABASE_URL to a postgres:// URL.")
    if "bench" not in name:
        sys.exit(f"Refusing to use database '{name}': the benchmark only drops databases whose name contains 'bench'.")
    maintenance = url._replace(path="/postgres").geturl()
    with psycopg.connect(maintenance, autocommit=True) as connection:
        exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists and not reuse:
            connection.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            exists = None
        if not exists:
            connection.execute(f'CREATE DATABASE "{name}"')
