"""Fixtures for activation tests: audiences driven by ingest, a local webhook receiver."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from cdp.models import Person
from cdp.services.audiences import evaluate_audience, save_audience
from tests.cdp.ingest_helpers import ingest

CTO = {"subject": "person", "condition": {"type": "compare", "field": "jobTitle", "op": "eq", "value": "CTO"}}


class Profiles:
    """People in ``sandbox`` and a "CTOs" audience over them, re-evaluated on demand."""

    def __init__(self, sandbox):
        self.sandbox = sandbox
        self.audience = save_audience(sandbox, name="CTOs", definition=CTO)

    def set(self, *rows, evaluate=True):
        _, rejections = ingest(self.sandbox, "person", list(rows))
        assert not rejections, rejections
        if evaluate:
            evaluate_audience(self.audience)

    def person_id(self, email):
        return Person.objects.for_sandbox(self.sandbox).get(email=email).pk


@pytest.fixture
def profiles(sandbox):
    return Profiles(sandbox)


class Receiver:
    """A local HTTP endpoint answering the queued status codes (then 200) and keeping every request."""

    def __init__(self):
        self.requests, self.statuses, self.seen_batches = [], [], set()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                receiver.requests.append({"headers": dict(self.headers), "body": body, "status": status})
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def delivered(self):
        """Bodies of accepted batches, each batch id once (what a deduplicating receiver keeps)."""
        kept = {}
        for request in self.requests:
            if request["status"] < 300:
                body = json.loads(request["body"])
                kept.setdefault(body["batch_id"], body)
        return list(kept.values())

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(settings):
    settings.QUORUM_WEBHOOK_ALLOW_LOCAL_HTTP = True
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def export_dir(settings, tmp_path):
    settings.QUORUM_EXPORT_DIR = str(tmp_path / "exports")
    return tmp_path / "exports"
