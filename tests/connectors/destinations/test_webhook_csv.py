"""Webhook and CSV destinations: signed batches, retries, dead letters, idempotent re-runs, files."""

import csv
import hashlib
import hmac
import json

import pytest

from cdp.exceptions import RuleViolation
from connectors.models import ActivationRun, DataflowMode, DeadLetter, RunStatus
from connectors.services import activation
from connectors.services.activation import create_dataflow, create_destination, push_dataflow, resend_dead_letter

SECRET = "s3cret-s3cret-s3cret"


def no_sleep(seconds):
    pass


@pytest.fixture
def webhook(sandbox, admin_user, receiver):
    return create_destination(
        sandbox, by=admin_user, name="Hook", kind="webhook", secret=SECRET,
        config={"url": receiver.url, "batch_size": 2, "max_attempts": 3},
    )  # fmt: skip


@pytest.fixture
def flow(sandbox, admin_user, webhook, profiles):
    return create_dataflow(
        sandbox, by=admin_user, name="CTOs to hook", destination=webhook, audiences=[profiles.audience],
        mapping=[{"source": "email", "target": "email"}, {"source": "first_name", "target": "firstName"}],
    )  # fmt: skip


def test_batches_are_signed_and_carry_adds_and_removes(flow, profiles, receiver):
    profiles.set({"email": "a@x.io", "job_title": "CTO", "first_name": "Ann"}, {"email": "b@x.io", "job_title": "CTO"})
    run = push_dataflow(flow.pk, sleep=no_sleep)
    assert (run.status, run.sent, run.changes) == (RunStatus.SUCCEEDED, 2, 2)
    [request] = receiver.requests
    headers = request["headers"]
    expected = hmac.new(SECRET.encode(), headers["X-Quorum-Timestamp"].encode() + b"." + request["body"], hashlib.sha256)
    assert headers["X-Quorum-Signature"] == f"sha256={expected.hexdigest()}"
    body = json.loads(request["body"])
    assert headers["Idempotency-Key"] == body["batch_id"]
    assert body["dataflow"] == flow.pk and body["removes"] == [] and body["sent_at"]
    assert sorted(a["email"] for a in body["adds"]) == ["a@x.io", "b@x.io"]
    assert {"id": profiles.person_id("a@x.io"), "email": "a@x.io", "firstName": "Ann"} in body["adds"]

    profiles.set({"email": "a@x.io", "job_title": "CEO"})
    run = push_dataflow(flow.pk, sleep=no_sleep)
    body = json.loads(receiver.requests[-1]["body"])
    assert body["adds"] == [] and [r["email"] for r in body["removes"]] == ["a@x.io"]
    # Nothing new: no run, no request.
    assert push_dataflow(flow.pk, sleep=no_sleep) is None
    assert len(receiver.requests) == 2


def test_a_change_and_its_undo_collapse_to_the_last_state(flow, profiles, receiver):
    profiles.set({"email": "a@x.io", "job_title": "CTO"})
    profiles.set({"email": "a@x.io", "job_title": "CEO"})
    profiles.set({"email": "a@x.io", "job_title": "CTO"})
    push_dataflow(flow.pk, sleep=no_sleep)
    [body] = receiver.delivered()
    assert [a["email"] for a in body["adds"]] == ["a@x.io"] and body["removes"] == []


def test_5xx_is_retried_then_delivered(flow, profiles, receiver):
    profiles.set({"email": "a@x.io", "job_title": "CTO"})
    receiver.statuses = [503, 500]
    sleeps = []
    run = push_dataflow(flow.pk, sleep=sleeps.append)
    assert run.sent == 1 and run.failed == 0
    assert len(receiver.requests) == 3 and len(sleeps) == 2
    assert len({r["headers"]["Idempotency-Key"] for r in receiver.requests}) == 1
    assert not DeadLetter.objects.exists()


def test_failed_batches_go_to_dead_letters_and_can_be_resent(flow, profiles, receiver):
    profiles.set(*({"email": f"p{i}@x.io", "job_title": "CTO"} for i in range(3)))  # two batches of ≤2
    receiver.statuses = [500, 500, 500]  # the first batch fails all 3 attempts, the second goes through
    run = push_dataflow(flow.pk, sleep=no_sleep)
    assert (run.sent, run.failed, run.status) == (1, 2, RunStatus.SUCCEEDED)
    [letter] = DeadLetter.objects.for_sandbox(flow.sandbox)
    assert letter.attempts == 3 and "HTTP 500" in letter.last_error and len(letter.payload["adds"]) == 2
    # The cursor moved past the dead-lettered batch: the next run sends nothing again.
    assert push_dataflow(flow.pk, sleep=no_sleep) is None

    assert resend_dead_letter(letter, sleep=no_sleep)
    letter.refresh_from_db()
    assert letter.status == DeadLetter.Status.RESENT
    assert receiver.requests[-1]["headers"]["Idempotency-Key"] == letter.batch_id
    assert sorted(a["email"] for b in receiver.delivered() for a in b["adds"]) == ["p0@x.io", "p1@x.io", "p2@x.io"]
    with pytest.raises(RuleViolation):
        resend_dead_letter(letter, sleep=no_sleep)


def test_a_4xx_is_not_retried(flow, profiles, receiver):
    profiles.set({"email": "a@x.io", "job_title": "CTO"})
    receiver.statuses = [400]
    run = push_dataflow(flow.pk, sleep=no_sleep)
    assert run.failed == 1 and len(receiver.requests) == 1
    assert DeadLetter.objects.get().attempts == 1


def test_a_crash_before_the_cursor_is_saved_resends_the_same_batch_id(flow, profiles, receiver, monkeypatch):
    profiles.set({"email": "a@x.io", "job_title": "CTO"})
    real_record = activation._record

    def crash(*args, **kwargs):
        raise RuntimeError("worker killed")

    monkeypatch.setattr(activation, "_record", crash)
    with pytest.raises(RuntimeError):
        push_dataflow(flow.pk, sleep=no_sleep)
    assert ActivationRun.objects.get().status == RunStatus.FAILED
    monkeypatch.setattr(activation, "_record", real_record)
    run = push_dataflow(flow.pk, sleep=no_sleep)
    assert run.status == RunStatus.SUCCEEDED
    first, second = (json.loads(r["body"]) for r in receiver.requests)
    assert first["batch_id"] == second["batch_id"]  # the receiver drops the repeat
    assert len(receiver.delivered()) == 1
    assert push_dataflow(flow.pk, sleep=no_sleep) is None


def test_a_dataflow_leased_by_another_worker_is_left_alone(flow, profiles, receiver):
    profiles.set({"email": "a@x.io", "job_title": "CTO"})
    token = activation._claim(flow.pk)
    assert token and push_dataflow(flow.pk, sleep=no_sleep) is None
    assert receiver.requests == []


def test_webhook_config_is_checked(sandbox, admin_user, settings):
    settings.QUORUM_WEBHOOK_ALLOW_LOCAL_HTTP = False
    make = lambda **kw: create_destination(sandbox, by=admin_user, name="H", kind="webhook", **kw)  # noqa: E731
    with pytest.raises(RuleViolation) as error:
        make(config={"url": "http://127.0.0.1:9/x"}, secret=SECRET)
    assert error.value.field == "url"
    with pytest.raises(RuleViolation) as error:
        make(config={"url": "http://example.com/x"}, secret=SECRET)
    assert error.value.rule == "webhook_https_only"
    with pytest.raises(RuleViolation) as error:
        make(config={"url": "https://example.com/x"})
    assert error.value.field == "secret"
    with pytest.raises(RuleViolation) as error:
        make(config={"url": "https://example.com/x", "batch_size": 5000}, secret=SECRET)
    assert error.value.field == "batch_size"
    destination = make(config={"url": "https://example.com/x"}, secret=SECRET)
    assert destination.config == {"url": "https://example.com/x", "batch_size": 100, "max_attempts": 5, "timeout_seconds": 10}
    assert destination.secret == SECRET  # decrypted in Python, encrypted in the table


def test_csv_export_writes_the_full_membership_atomically(sandbox, admin_user, profiles, export_dir):
    destination = create_destination(sandbox, by=admin_user, name="Files", kind="csv_export", config={"directory": "weekly/ctos"})
    flow = create_dataflow(
        sandbox, by=admin_user, name="CTO file", destination=destination, audiences=[profiles.audience],
        mode=DataflowMode.BATCH, mapping=[{"source": "email", "target": "Email"}, {"source": "job_title", "target": "Title"}],
    )  # fmt: skip
    profiles.set({"email": "a@x.io", "job_title": "CTO"}, {"email": "b@x.io", "job_title": "CTO"})
    profiles.set({"email": "b@x.io", "job_title": "CFO"})
    run = push_dataflow(flow.pk, trigger="manual")
    assert run.sent == 1 and run.file.startswith("weekly/ctos/cto-file-")
    files = list((export_dir / "weekly" / "ctos").iterdir())
    assert [f.name for f in files] == [run.file.rsplit("/", 1)[1]]  # no temporary file left behind
    with open(files[0], newline="") as handle:
        assert list(csv.DictReader(handle)) == [{"id": str(profiles.person_id("a@x.io")), "Email": "a@x.io", "Title": "CTO"}]


def test_csv_directory_must_stay_in_the_export_root(sandbox, admin_user, export_dir):
    for directory in ("../outside", "/etc", "a/../../b"):
        with pytest.raises(RuleViolation) as error:
            create_destination(sandbox, by=admin_user, name="Files", kind="csv_export", config={"directory": directory})
        assert error.value.rule == "export_directory_outside_root"


def test_a_change_that_arrives_during_a_push_is_pushed_after_it(flow, profiles, receiver, monkeypatch):
    from connectors.destinations import webhook

    profiles.set({"email": "a@x.io", "job_title": "CTO"})
    requested, real_push = [], webhook.Webhook.push

    def push_while_a_change_arrives(*args, **kwargs):
        real_push(*args, **kwargs)
        if not requested:
            profiles.set({"email": "b@x.io", "job_title": "CTO"})
            assert push_dataflow(flow.pk, sleep=no_sleep) is None  # its own push finds the lease taken

    monkeypatch.setattr(webhook.Webhook, "push", push_while_a_change_arrives)
    monkeypatch.setattr(activation, "request_push", lambda dataflow, trigger: requested.append(dataflow.pk))
    push_dataflow(flow.pk, sleep=no_sleep)
    assert requested == [flow.pk]  # the holder saw the newer change once it let go
    run = push_dataflow(flow.pk, sleep=no_sleep)
    assert [a["email"] for a in json.loads(receiver.requests[-1]["body"])["adds"]] == ["b@x.io"] and run.sent == 1


def test_an_expired_lease_of_a_dead_worker_is_taken_over(flow, profiles, receiver):
    import datetime as dt

    from django.utils import timezone

    from connectors.models import Dataflow

    profiles.set({"email": "a@x.io", "job_title": "CTO"})
    assert activation._claim(flow.pk)  # a worker took the dataflow…
    stale = ActivationRun.objects.create(sandbox=flow.sandbox, dataflow=flow, trigger="streaming", started_at=timezone.now())
    assert push_dataflow(flow.pk, sleep=no_sleep) is None  # …and holds it
    Dataflow.objects.filter(pk=flow.pk).update(lease_expires_at=timezone.now() - dt.timedelta(seconds=1))  # …then died
    run = push_dataflow(flow.pk, sleep=no_sleep)
    assert run.status == RunStatus.SUCCEEDED and run.sent == 1
    stale.refresh_from_db()
    assert stale.status == RunStatus.FAILED and "worker stopped" in stale.error
    assert Dataflow.objects.get(pk=flow.pk).lease_token == ""
