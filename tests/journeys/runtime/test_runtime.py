"""The runtime driven directly through its services (no commits needed): enrollment, splits,
waits across a restarted worker, idempotent side effects, node counts, isolation."""

import datetime as dt

import pytest
from django.core import mail
from django.utils import timezone

from cdp.models import ExperienceEvent, ListMember, MarketingList
from journeys.models import EmailSend, Enrollment, EnrollmentState, NodeVisit, PersonState, SideEffect, SideEffectStatus, TokenState
from journeys.services import runtime
from journeys.services.runtime import advance_enrollment, enroll_accounts, enroll_new_members, node_counts, sweep_timers
from tests.cdp.ingest_helpers import ingest

from .conftest import account, account_audience, compare, email_asset, live_journey, make_people, person

pytestmark = pytest.mark.django_db

PEOPLE = [
    {"email": "ann@acme.com", "first_name": "Ann", "job_title": "CTO", "account.domain": "acme.com"},
    {"email": "bob@acme.com", "first_name": "Bob", "job_title": "Engineer", "account.domain": "acme.com"},
    {"email": "cy@globex.com", "first_name": "Cy", "job_title": "CTO", "account.domain": "globex.com"},
]


@pytest.fixture
def people(sandbox):
    make_people(sandbox, PEOPLE)
    ingest(sandbox, "account", [{"domain": "acme.com", "industry": "Software"}, {"domain": "globex.com", "industry": "Retail"}])


def email_wait_end(email_id):
    return {
        "n1": {"type": "start", "next": "n2"},
        "n2": {"type": "action", "action": "send_email", "params": {"email_id": email_id}, "next": "n3"},
        "n3": {"type": "wait", "duration": {"amount": 3, "unit": "days"}, "next": "n4"},
        "n4": {"type": "end"},
    }


def advance_all(journey, now=None):
    for enrollment_id in Enrollment.objects.filter(journey=journey).values_list("pk", flat=True):
        advance_enrollment(enrollment_id, now=now)


def test_publish_enrolls_every_member_with_its_people(sandbox, people):
    journey = live_journey(sandbox, account_audience(sandbox), {"n1": {"type": "start", "next": "n2"}, "n2": {"type": "end"}})
    ids = enroll_new_members(journey)
    assert len(ids) == 2
    acme = Enrollment.objects.get(journey=journey, account=account(sandbox, "acme.com"))
    tokens = set(PersonState.objects.filter(enrollment=acme).values_list("person_id", flat=True))
    assert tokens == {None, person(sandbox, "ann@acme.com").pk, person(sandbox, "bob@acme.com").pk}
    assert enroll_new_members(journey) == []  # nothing new in the audience: nobody enrolled twice


def test_wait_survives_a_restarted_worker(sandbox, people):
    journey = live_journey(sandbox, account_audience(sandbox), email_wait_end(email_asset(sandbox).pk))
    enroll_new_members(journey)
    advance_all(journey)
    assert len(mail.outbox) == 3
    waiting = PersonState.objects.filter(enrollment__journey=journey, state=TokenState.WAITING, node="n3")
    assert waiting.count() == 5  # 3 people + 2 account tokens
    # A "restart": nothing is kept in memory; a sweep before the end of the wait wakes nobody.
    assert sweep_timers(now=timezone.now() + dt.timedelta(days=2)) == 0
    assert sweep_timers(now=timezone.now() + dt.timedelta(days=3, minutes=1)) == 5
    advance_all(journey)
    assert set(PersonState.objects.filter(enrollment__journey=journey).values_list("state", flat=True)) == {TokenState.FINISHED}
    assert set(Enrollment.objects.filter(journey=journey).values_list("state", flat=True)) == {EnrollmentState.FINISHED}
    assert len(mail.outbox) == 3


def test_the_same_advance_twice_sends_each_email_once(sandbox, people):
    journey = live_journey(sandbox, account_audience(sandbox), email_wait_end(email_asset(sandbox).pk))
    enroll_new_members(journey)
    advance_all(journey)
    # A redelivered task, and even tokens put back on the email node, don't send again.
    PersonState.objects.filter(enrollment__journey=journey).update(node="n2", state=TokenState.READY)
    advance_all(journey)
    assert len(mail.outbox) == 3
    assert EmailSend.objects.filter(journey=journey).count() == 3
    assert SideEffect.objects.filter(kind="send_email", status=SideEffectStatus.DONE).count() == 3


def test_a_crash_after_sending_before_the_state_update_does_not_resend(sandbox, people, monkeypatch):
    journey = live_journey(sandbox, account_audience(sandbox), email_wait_end(email_asset(sandbox).pk))
    enroll_new_members(journey)
    real_move = runtime.move_tokens

    def crash_after_the_email(enrollment, tokens, to_node, now, outcome):
        if to_node == "n3":
            raise RuntimeError("worker killed")
        return real_move(enrollment, tokens, to_node, now, outcome)

    monkeypatch.setattr(runtime, "move_tokens", crash_after_the_email)
    for enrollment_id in Enrollment.objects.filter(journey=journey).values_list("pk", flat=True):
        with pytest.raises(RuntimeError):
            advance_enrollment(enrollment_id)
    assert len(mail.outbox) == 3
    assert PersonState.objects.filter(node="n2", state=TokenState.READY).count() == 5  # the tokens never moved
    monkeypatch.setattr(runtime, "move_tokens", real_move)
    advance_all(journey)  # the retry
    assert len(mail.outbox) == 3
    assert PersonState.objects.filter(node="n3", state=TokenState.WAITING).count() == 5


def test_an_interrupted_send_is_not_repeated(sandbox, people):
    """A claim left pending means the worker died mid-send: at most once, so it is not sent again."""
    journey = live_journey(sandbox, account_audience(sandbox), email_wait_end(email_asset(sandbox).pk))
    enroll_new_members(journey)
    acme = Enrollment.objects.get(journey=journey, account=account(sandbox, "acme.com"))
    ann = person(sandbox, "ann@acme.com")
    SideEffect.objects.create(
        sandbox=sandbox, key=f"v{acme.version_id}:nn2:p{ann.pk}:a{acme.account_id}", version_id=acme.version_id,
        node="n2", person_id=ann.pk, account_id=acme.account_id, kind="send_email", status=SideEffectStatus.PENDING,
    )  # fmt: skip
    advance_all(journey)
    assert sorted(m.to[0] for m in mail.outbox) == ["bob@acme.com", "cy@globex.com"]
    assert acme.events.filter(kind="in_doubt", person_id=ann.pk).exists()


def test_a_failed_send_is_retried(sandbox, people, monkeypatch):
    journey = live_journey(sandbox, account_audience(sandbox), email_wait_end(email_asset(sandbox).pk))
    enroll_new_members(journey)
    from django.core.mail import EmailMultiAlternatives

    real_send = EmailMultiAlternatives.send
    monkeypatch.setattr(EmailMultiAlternatives, "send", lambda self, **kw: (_ for _ in ()).throw(OSError("SMTP down")))
    acme = Enrollment.objects.get(journey=journey, account=account(sandbox, "acme.com"))
    with pytest.raises(OSError):
        advance_enrollment(acme.pk)
    # The first send failed (known not sent); the next person's is queued, not attempted.
    assert list(SideEffect.objects.filter(kind="send_email").order_by("person_id").values_list("status", "attempts")) == [
        (SideEffectStatus.FAILED, 1), (SideEffectStatus.QUEUED, 0)
    ]
    monkeypatch.setattr(EmailMultiAlternatives, "send", real_send)
    advance_enrollment(acme.pk)
    assert sorted(m.to[0] for m in mail.outbox) == ["ann@acme.com", "bob@acme.com"]
    assert SideEffect.objects.filter(kind="send_email", attempts=2, status=SideEffectStatus.DONE).count() == 1


def test_splits_use_the_audience_compiler_now(sandbox, people):
    nodes = {
        "n1": {"type": "start", "next": "n2"},
        "n2": {"type": "split_accounts", "paths": [
            {"id": "software", "condition": {"rule": compare("industry", "eq", "Software"), "buying_group": None}, "next": "n3"},
        ]},  # no "other": accounts matching no path leave
        "n3": {"type": "split_people", "paths": [
            {"id": "ctos", "condition": {"rule": compare("jobTitle", "eq", "CTO")}, "next": "n4"},
        ], "other": {"next": "n5"}},
        "n4": {"type": "action", "action": "update_person_field", "params": {"field": "lead_status", "value": "Executive"}, "next": "n6"},
        "n5": {"type": "action", "action": "interesting_moment", "params": {"type": "milestone", "description": "Not a CTO"}, "next": "n6"},
        "n6": {"type": "end"},
    }  # fmt: skip
    journey = live_journey(sandbox, account_audience(sandbox), nodes)
    enroll_new_members(journey)
    advance_all(journey)
    assert person(sandbox, "ann@acme.com").lead_status == "Executive"
    assert person(sandbox, "bob@acme.com").lead_status == ""
    assert person(sandbox, "cy@globex.com").lead_status == ""  # Globex is Retail: it left at n2
    moment = ExperienceEvent.objects.for_sandbox(sandbox).get(type="interesting_moment")
    assert moment.person == person(sandbox, "bob@acme.com") and moment.properties["description"] == "Not a CTO"
    globex = Enrollment.objects.get(journey=journey, account=account(sandbox, "globex.com"))
    assert globex.state == EnrollmentState.EXITED
    counts = node_counts(journey)
    assert counts["n2"] == {"entered": 2, "current": 0, "exited": 2, "people": {"entered": 3, "current": 0, "exited": 3}}
    assert counts["n4"]["people"]["entered"] == 1 and counts["n5"]["people"]["entered"] == 1
    assert counts["n6"]["people"] == {"entered": 2, "current": 0, "exited": 2}
    assert "n6" in counts and counts["n3"]["entered"] == 1


def test_node_counts_show_who_is_where(sandbox, people):
    journey = live_journey(sandbox, account_audience(sandbox), email_wait_end(email_asset(sandbox).pk))
    enroll_new_members(journey)
    advance_all(journey)
    counts = node_counts(journey)
    assert counts["n3"] == {"entered": 2, "current": 2, "exited": 0, "people": {"entered": 3, "current": 3, "exited": 0}}
    assert counts["n1"]["exited"] == 2 and "n4" not in counts
    assert NodeVisit.objects.filter(journey=journey).count() == 15  # 5 tokens x n1, n2, n3


def test_actions_write_through_cdp_ingestion(sandbox, people):
    marketing_list = MarketingList.objects.create(sandbox=sandbox, external_id="webinar", name="Webinar")
    nodes = {
        "n1": {"type": "start", "next": "n2"},
        "n2": {"type": "action", "action": "add_to_list", "params": {"list_id": marketing_list.pk}, "next": "n3"},
        "n3": {"type": "action", "action": "update_account_field", "params": {"field": "region", "value": "EMEA"}, "next": "n4"},
        "n4": {"type": "action", "action": "remove_from_list", "params": {"list_id": marketing_list.pk}, "next": "n5"},
        "n5": {"type": "end"},
    }
    journey = live_journey(sandbox, account_audience(sandbox), nodes)
    enroll_new_members(journey)
    advance_all(journey)
    assert account(sandbox, "acme.com").region == "EMEA" and account(sandbox, "globex.com").region == "EMEA"
    assert not ListMember.objects.filter(marketing_list=marketing_list).exists()
    assert ExperienceEvent.objects.for_sandbox(sandbox).filter(type="list.removed").count() == 3
    # Account-level actions ran once per account, people actions once per person.
    assert SideEffect.objects.filter(kind="update_account_field", person_id__isnull=True).count() == 2
    assert SideEffect.objects.filter(kind="add_to_list").count() == 3


def test_sales_alert_goes_to_the_account_owner_once(sandbox, people):
    ingest(sandbox, "account", [{"domain": "acme.com", "owner_email": "rep@ourco.com"}])
    nodes = {
        "n1": {"type": "start", "next": "n2"},
        "n2": {"type": "action", "action": "sales_alert", "params": {"subject": "Hot account", "to": "account_owner"}, "next": "n3"},
        "n3": {"type": "end"},
    }
    journey = live_journey(sandbox, account_audience(sandbox, {"subject": "account", "condition": compare("domain", "eq", "acme.com")}), nodes)
    enroll_new_members(journey)
    advance_all(journey)
    advance_all(journey)
    assert [(m.subject, m.to) for m in mail.outbox] == [("Hot account", ["rep@ourco.com"])]


def test_re_entry_follows_the_journey_settings(sandbox, people):
    nodes = {"n1": {"type": "start", "next": "n2"}, "n2": {"type": "end"}}
    acme = account(sandbox, "acme.com")
    once = live_journey(sandbox, account_audience(sandbox), nodes, name="Once")
    again = live_journey(sandbox, None, nodes, name="Again", allow_reentry=True, reentry_interval=dt.timedelta(days=7))
    for journey in (once, again):
        assert enroll_accounts(journey, [acme.pk])
        advance_all(journey)
    later = timezone.now() + dt.timedelta(days=1)
    assert enroll_accounts(once, [acme.pk], now=later) == []
    assert enroll_accounts(again, [acme.pk], now=later) == []  # within the minimum interval
    assert enroll_accounts(again, [acme.pk], now=timezone.now() + dt.timedelta(days=8))
    assert list(Enrollment.objects.filter(journey=again).values_list("entry_number", flat=True).order_by("entry_number")) == [1, 2]


def test_dates_bound_the_entries(sandbox, people):
    nodes = {"n1": {"type": "start", "next": "n2"}, "n2": {"type": "end"}}
    now = timezone.now()
    journey = live_journey(sandbox, account_audience(sandbox), nodes, start_at=now + dt.timedelta(days=1), end_at=now + dt.timedelta(days=30))
    assert enroll_accounts(journey, [account(sandbox, "acme.com").pk], now=now) == []
    assert enroll_accounts(journey, [account(sandbox, "acme.com").pk], now=now + dt.timedelta(days=31)) == []


def test_an_aborted_journey_moves_no_one_further(sandbox, people):
    journey = live_journey(sandbox, account_audience(sandbox), email_wait_end(email_asset(sandbox).pk))
    enroll_new_members(journey)
    journey.state = "aborted"
    journey.save(update_fields=["state"])
    advance_all(journey)
    assert mail.outbox == []
    assert set(Enrollment.objects.filter(journey=journey).values_list("state", flat=True)) == {EnrollmentState.EXITED}


def test_journeys_of_another_sandbox_are_untouched(sandbox, other_sandbox, people):
    make_people(other_sandbox, [{"email": "zed@initech.com", "account.domain": "initech.com"}])
    mine = live_journey(sandbox, account_audience(sandbox), email_wait_end(email_asset(sandbox).pk))
    theirs = live_journey(other_sandbox, account_audience(other_sandbox), email_wait_end(email_asset(other_sandbox).pk))
    enroll_new_members(mine)
    advance_all(mine)
    assert not Enrollment.objects.filter(journey=theirs).exists()
    assert set(Enrollment.objects.filter(journey=mine).values_list("account__sandbox", flat=True)) == {sandbox.pk}
    assert {m.to[0] for m in mail.outbox} == {"ann@acme.com", "bob@acme.com", "cy@globex.com"}
    # An email of another sandbox can't be sent from this one's journey: the action is skipped.
    stolen = live_journey(sandbox, account_audience(sandbox, name="Again"), email_wait_end(email_asset(other_sandbox, "Theirs").pk), name="Stolen")
    enroll_new_members(stolen)
    advance_all(stolen)
    assert len(mail.outbox) == 3
    assert SideEffect.objects.filter(version=stolen.current_version, status=SideEffectStatus.SKIPPED).count() == 3


def test_a_merge_keeps_the_merged_persons_journey(sandbox):
    ecid = "1" * 38
    ingest(sandbox, "person", [{"email": "robert@home.example", "identity.ecid": ecid}])  # older: the survivor
    make_people(sandbox, PEOPLE)
    survivor, bob = person(sandbox, "robert@home.example"), person(sandbox, "bob@acme.com")
    journey = live_journey(sandbox, account_audience(sandbox), email_wait_end(email_asset(sandbox).pk))
    enroll_new_members(journey)
    advance_all(journey)
    # A record links Bob's email to the older profile's ECID: Bob is merged into it.
    ingest(sandbox, "person", [{"identity.email": "bob@acme.com", "identity.ecid": ecid}])
    assert not type(bob).objects.filter(pk=bob.pk).exists()
    token = PersonState.objects.get(enrollment__journey=journey, person=survivor)
    assert (token.node, token.state) == ("n3", TokenState.WAITING)
    assert EmailSend.objects.get(journey=journey, person=survivor).to_email == "bob@acme.com"
    assert NodeVisit.objects.filter(journey=journey, person_id=survivor.pk).count() == 3


def test_the_sweep_resumes_enrollments_whose_advance_was_lost(sandbox, people):
    journey = live_journey(sandbox, account_audience(sandbox), email_wait_end(email_asset(sandbox).pk))
    enroll_new_members(journey)  # the advances queued on commit never ran: lost with their worker
    acme, globex = (Enrollment.objects.get(journey=journey, account=account(sandbox, d)) for d in ("acme.com", "globex.com"))
    Enrollment.objects.filter(pk=acme.pk).update(lease_until=timezone.now() - dt.timedelta(seconds=1))  # died holding it

    # A lease that ran out is resumed at once; ready tokens without a lease only once they have waited.
    assert runtime.resume_stalled_enrollments() == [acme.pk]
    assert len(mail.outbox) == 2 and PersonState.objects.filter(enrollment=acme, state=TokenState.WAITING).count() == 3
    assert runtime.resume_stalled_enrollments() == []
    assert runtime.resume_stalled_enrollments(now=timezone.now() + runtime.STALLED_AFTER + dt.timedelta(minutes=1)) == [globex.pk]
    assert len(mail.outbox) == 3
    assert not PersonState.objects.filter(enrollment__journey=journey, state=TokenState.READY).exists()
