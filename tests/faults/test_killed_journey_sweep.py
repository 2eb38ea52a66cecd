"""The journey timer sweep wakes due waits; the worker sending the emails they lead to is SIGKILLed
mid-send. After restart every due enrollment has advanced and no one got an email twice."""

import datetime as dt
import os
import re
import signal
from collections import Counter

import pytest
from django.utils import timezone

from cdp.services.audiences import save_audience
from journeys.models import EmailSend, Enrollment, EnrollmentState, PersonState, SideEffect, TokenState
from journeys.runtime_tasks import enroll_journey_members, sweep_journey_timers
from tests.faults.conftest import wait_for, wait_until_redeliverable
from tests.journeys.runtime.conftest import email_asset, live_journey, make_people

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

ACCOUNTS = ("acme.com", "globex.com", "initech.com")
PEOPLE = [f"{name}@{domain}" for domain in ACCOUNTS for name in ("ann", "bob")]
ALL_ACCOUNTS = {"subject": "account", "condition": {"type": "compare", "field": "name", "op": "isNotNull"}}


def wait_then_email(email_id):
    return {
        "n1": {"type": "start", "next": "n2"},
        "n2": {"type": "wait", "duration": {"amount": 1, "unit": "days"}, "next": "n3"},
        "n3": {"type": "action", "action": "send_email", "params": {"email_id": email_id}, "next": "n4"},
        "n4": {"type": "end"},
    }


def journey_with_due_waits(sandbox, inline_tasks):
    """Three accounts (two people each) enrolled in wait 1 day → send email → end; the day has passed."""
    with inline_tasks():
        people = [{"email": email, "first_name": email.split("@")[0].title(), "account.domain": email.split("@")[1]} for email in PEOPLE]
        make_people(sandbox, people)
        audience = save_audience(sandbox, name="Accounts", definition=ALL_ACCOUNTS)
        journey = live_journey(sandbox, audience, wait_then_email(email_asset(sandbox).pk))
        enroll_journey_members.delay(journey.pk)
    waiting = PersonState.objects.filter(enrollment__journey=journey, state=TokenState.WAITING, node="n2")
    assert Enrollment.objects.filter(journey=journey).count() == len(ACCOUNTS)
    assert waiting.count() == len(ACCOUNTS) + len(PEOPLE)  # each account's token and its people's
    waiting.update(wake_at=timezone.now() - dt.timedelta(seconds=1))
    return journey


def test_sweep_woken_enrollments_killed_mid_send_finish_without_a_second_email(workers, smtp_sink, sandbox, inline_tasks):
    journey = journey_with_due_waits(sandbox, inline_tasks)
    smtp_sink.hold_nth = 3  # the first email of the second account to be advanced
    first = workers.start()

    sweep_journey_timers.delay()
    assert smtp_sink.reached.wait(90), workers.logs()
    first.kill()
    smtp_sink.release.set()  # the message had left: the server accepts it after the sender died

    assert len(smtp_sink.messages) == 3
    # Time passes: the dead worker's lease on its enrollment runs out, and its task comes back.
    leased = Enrollment.objects.filter(journey=journey, lease_until__isnull=False)
    leased.update(lease_until=timezone.now() - dt.timedelta(seconds=1))
    wait_until_redeliverable(workers.redis)
    workers.start()

    enrollments = Enrollment.objects.filter(journey=journey)
    active = enrollments.filter(state=EnrollmentState.ACTIVE)
    wait_for(lambda: not active.exists(), "every enrollment to finish", on_timeout=workers.logs)

    assert set(enrollments.values_list("state", flat=True)) == {EnrollmentState.FINISHED}
    assert not PersonState.objects.filter(enrollment__journey=journey).exclude(state=TokenState.FINISHED).exists()
    # Everyone got the email, nobody twice (counted at the SMTP server).
    assert Counter(smtp_sink.recipients()) == Counter(PEOPLE)
    # The send cut by the kill is "in doubt" (pending): at most once means it was not repeated.
    effects = Counter(SideEffect.objects.filter(kind="send_email").values_list("status", flat=True))
    assert effects == Counter({"done": len(PEOPLE) - 1, "pending": 1})
    assert EmailSend.objects.filter(journey=journey).count() == len(PEOPLE) - 1


def test_prefork_child_killed_mid_send_its_requeued_advance_still_finishes_the_enrollment(
    workers, smtp_sink, sandbox, inline_tasks
):
    """Production's pool: the OOM killer takes the child mid-send; Celery re-queues its task at once
    (reject_on_worker_lost) and a new child runs it while the dead child's lease is still on."""
    journey = journey_with_due_waits(sandbox, inline_tasks)
    smtp_sink.hold_nth = 3
    worker = workers.start(pool="prefork")

    sweep_journey_timers.delay()
    assert smtp_sink.reached.wait(90), workers.logs()
    [child] = worker.children()
    os.kill(child, signal.SIGKILL)
    smtp_sink.release.set()
    wait_for(lambda: "WorkerLostError" in worker.log(), "the main process to see its child die", on_timeout=workers.logs)
    assert worker.alive()

    # The sweep queued one advance for the three accounts (their tokens at the email node move
    # together). The re-queued one ran while the dead child's leases were on: it left them alone.
    done = re.compile(r"advance_enrollments_task\[[\w-]+\] succeeded")
    wait_for(lambda: len(done.findall(worker.log())) == 1, "the re-queued advance", on_timeout=workers.logs)
    enrollments = Enrollment.objects.filter(journey=journey)
    assert enrollments.filter(state=EnrollmentState.ACTIVE).count() == len(ACCOUNTS)
    assert len(smtp_sink.messages) == 3  # nothing sent while the leases were on
    # Later: the lease has run out and the beat's sweep has run.
    enrollments.update(lease_until=timezone.now() - dt.timedelta(seconds=1))
    sweep_journey_timers.delay().get(timeout=60)

    wait_for(lambda: not enrollments.filter(state=EnrollmentState.ACTIVE).exists(), "every enrollment to finish", timeout=20)
    assert Counter(smtp_sink.recipients()) == Counter(PEOPLE)
