"""Buying-group actions and conditions, listen wake-ups from ingested events, journeys stopped
while accounts wait, and an email sent but not recorded (at most once)."""

import datetime as dt

import pytest
from django.core import mail
from django.utils import timezone

from cdp.models import ExperienceEvent
from journeys.choices import BuyingGroupStatus
from journeys.models import BuyingGroup, BuyingGroupMember, EmailSend, Enrollment, JourneyEvent, PersonState, SideEffect, SideEffectStatus, TokenState
from journeys.services import runtime
from journeys.services.buying_groups import (
    assign_member,
    publish_roles_template,
    publish_stages_model,
    save_roles_template,
    save_solution_interest,
    save_stages_model,
    set_stage,
)
from journeys.services.runtime import advance_enrollment, enroll_new_members, stop_ended_enrollments, wake_listeners
from tests.cdp.ingest_helpers import ingest
from tests.journeys.buying_groups.conftest import EXAMPLE_ROLES, EXAMPLE_STAGES, EXAMPLE_TRANSITIONS

from .conftest import account, account_audience, email_asset, live_journey, make_people, person

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(sandbox):
    make_people(sandbox, [
        {"email": "ann@acme.com", "first_name": "Ann", "job_title": "Designer", "account.domain": "acme.com"},
        {"email": "cy@globex.com", "first_name": "Cy", "job_title": "Designer", "account.domain": "globex.com"},
    ])  # fmt: skip


@pytest.fixture
def solution_interest(sandbox):
    template = publish_roles_template(save_roles_template(sandbox, name="Roles", roles=EXAMPLE_ROLES))
    stages = publish_stages_model(save_stages_model(sandbox, name="Stages", stages=EXAMPLE_STAGES, transitions=EXAMPLE_TRANSITIONS))
    return save_solution_interest(sandbox, name="Analytics", roles_template=template, stages_model=stages)


def advance_all(journey, now=None):
    for enrollment_id in Enrollment.objects.filter(journey=journey).values_list("pk", flat=True):
        advance_enrollment(enrollment_id, now=now)


def test_buying_group_actions_and_conditions(sandbox, people, solution_interest):
    group = BuyingGroup.objects.create(sandbox=sandbox, account=account(sandbox, "acme.com"), solution_interest=solution_interest)
    set_stage(group, "Discover")
    si = solution_interest.pk

    def action(name, params, next_):
        return {"type": "action", "action": name, "params": {"solution_interest_id": si, **params}, "next": next_}

    nodes = {
        "n1": {"type": "start", "next": "n2"},
        "n2": {"type": "split_accounts", "paths": [
            {"id": "with_group", "condition": {"rule": None, "buying_group": {"has": True, "solution_interest_id": si, "status": "in_progress"}}, "next": "n3"},
        ], "other": {"next": "n9"}},
        "n3": action("update_buying_group_stage", {"stage": "Evaluate"}, "n4"),
        "n4": action("update_buying_group_stage", {"stage": "Discover"}, "n5"),  # not an allowed transition
        "n5": action("assign_buying_group_member", {"role": "Champion"}, "n6"),
        "n6": {"type": "split_people", "paths": [
            {"id": "champions", "condition": {"rule": None, "buying_group": {"member": True, "solution_interest_id": si, "role": "Champion"}}, "next": "n7"},
        ]},
        "n7": {"type": "action", "action": "update_person_field", "params": {"field": "lead_status", "value": "Champion"}, "next": "n8"},
        "n8": action("update_buying_group_status", {"status": "complete"}, "n9"),
        "n9": {"type": "end"},
    }  # fmt: skip
    journey = live_journey(sandbox, account_audience(sandbox), nodes)
    enroll_new_members(journey)
    advance_all(journey)

    group.refresh_from_db()
    assert group.stage.name == "Evaluate" and group.status == BuyingGroupStatus.COMPLETE
    skipped = JourneyEvent.objects.get(journey=journey, kind="action_skipped", node="n4")
    assert "cannot move" in skipped.message
    assert SideEffect.objects.get(node="n4").status == SideEffectStatus.SKIPPED
    member = BuyingGroupMember.objects.get(group=group)
    assert (member.person, member.role.name, member.assigned_by) == (person(sandbox, "ann@acme.com"), "Champion", f"journey:{journey.pk}")
    assert person(sandbox, "ann@acme.com").lead_status == "Champion"
    assert person(sandbox, "cy@globex.com").lead_status == ""  # Globex has no buying group: straight to the end
    assert set(Enrollment.objects.filter(journey=journey).values_list("state", flat=True)) == {"finished"}


def test_form_fill_wakes_a_listening_person(sandbox, people):
    nodes = {
        "n1": {"type": "start", "next": "n2"},
        "n2": {"type": "listen", "event": {"type": "form.filled"}, "next": "n3"},
        "n3": {"type": "action", "action": "update_person_field", "params": {"field": "lead_status", "value": "MQL"}, "next": "n4"},
        "n4": {"type": "end"},
    }
    journey = live_journey(sandbox, account_audience(sandbox), nodes)
    enroll_new_members(journey)
    advance_all(journey)
    ann = person(sandbox, "ann@acme.com")
    assert PersonState.objects.get(person=ann).listen_for == {"type": "form.filled"}
    assert wake_listeners(sandbox.pk, [ann.pk]) == []  # nothing happened yet
    ingest(sandbox, "event", [{"identity.email": "ann@acme.com", "type": "form.filled", "occurred_at": timezone.now().isoformat()}])
    woken = wake_listeners(sandbox.pk, [ann.pk])
    assert woken == [Enrollment.objects.get(journey=journey, account=account(sandbox, "acme.com")).pk]
    advance_all(journey)
    assert person(sandbox, "ann@acme.com").lead_status == "MQL"
    assert PersonState.objects.get(person=person(sandbox, "cy@globex.com")).state == TokenState.WAITING  # no timeout: waits on


def test_an_aborted_journey_releases_waiting_accounts(sandbox, people):
    nodes = {
        "n1": {"type": "start", "next": "n2"},
        "n2": {"type": "wait", "duration": {"amount": 2, "unit": "weeks"}, "next": "n3"},
        "n3": {"type": "end"},
    }
    journey = live_journey(sandbox, account_audience(sandbox), nodes)
    enroll_new_members(journey)
    advance_all(journey)
    assert stop_ended_enrollments() == 0
    journey.state = "aborted"
    journey.save(update_fields=["state"])
    assert stop_ended_enrollments() == 2
    assert set(PersonState.objects.filter(enrollment__journey=journey).values_list("state", flat=True)) == {TokenState.EXITED}
    counts = runtime.node_counts(journey)
    assert counts["n2"]["people"] == {"entered": 2, "current": 0, "exited": 2}


def test_an_email_sent_but_not_recorded_is_never_sent_again(sandbox, people, monkeypatch):
    nodes = {
        "n1": {"type": "start", "next": "n2"},
        "n2": {"type": "action", "action": "send_email", "params": {"email_id": email_asset(sandbox).pk}, "next": "n3"},
        "n3": {"type": "end"},
    }
    journey = live_journey(sandbox, account_audience(sandbox), nodes)
    enroll_new_members(journey)
    acme = Enrollment.objects.get(journey=journey, account=account(sandbox, "acme.com"))
    real_create = EmailSend.objects.create

    def database_gone(**kwargs):
        raise ConnectionError("database went away after the SMTP server accepted the message")

    monkeypatch.setattr(EmailSend.objects, "create", database_gone)
    with pytest.raises(ConnectionError):
        advance_enrollment(acme.pk)
    monkeypatch.setattr(EmailSend.objects, "create", real_create)
    assert len(mail.outbox) == 1
    assert SideEffect.objects.get(kind="send_email").status == SideEffectStatus.PENDING  # in doubt
    advance_enrollment(acme.pk)
    assert len(mail.outbox) == 1
    assert JourneyEvent.objects.filter(journey=journey, kind="in_doubt").exists()
    assert Enrollment.objects.get(pk=acme.pk).state == "finished"


def test_the_sweep_wakes_only_due_tokens_once(sandbox, people):
    nodes = {
        "n1": {"type": "start", "next": "n2"},
        "n2": {"type": "wait", "until": (timezone.now() + dt.timedelta(days=10)).isoformat(), "next": "n3"},
        "n3": {"type": "end"},
    }
    journey = live_journey(sandbox, account_audience(sandbox), nodes)
    enroll_new_members(journey)
    advance_all(journey)
    later = timezone.now() + dt.timedelta(days=10, minutes=1)
    assert runtime.sweep_timers(now=later) == 4  # 2 people, 2 account tokens
    assert runtime.sweep_timers(now=later) == 0  # claimed once
    assert not ExperienceEvent.objects.filter(type="email.sent").exists()


def test_a_wait_counts_from_when_the_token_arrived(sandbox, people):
    nodes = {
        "n1": {"type": "start", "next": "n2"},
        "n2": {"type": "wait", "duration": {"amount": 1, "unit": "days"}, "next": "n3"},
        "n3": {"type": "wait", "duration": {"amount": 12, "unit": "hours"}, "next": "n4"},
        "n4": {"type": "end"},
    }
    journey = live_journey(sandbox, account_audience(sandbox), nodes)
    start = timezone.now()
    enroll_new_members(journey, now=start)
    advance_all(journey, now=start)
    woke_at = start + dt.timedelta(days=1, hours=3)  # the sweep ran late (say a worker was down)
    assert runtime.sweep_timers(now=woke_at) == 4
    advance_all(journey, now=woke_at)
    assert set(PersonState.objects.filter(enrollment__journey=journey).values_list("wake_at", flat=True)) == {woke_at + dt.timedelta(hours=12)}
    assert runtime.sweep_timers(now=woke_at + dt.timedelta(hours=11)) == 0
    assert runtime.sweep_timers(now=woke_at + dt.timedelta(hours=12)) == 4


def test_a_buying_group_change_of_any_kind_wakes_its_listeners(sandbox, people, solution_interest):
    acme, globex = account(sandbox, "acme.com"), account(sandbox, "globex.com")
    group = BuyingGroup.objects.create(sandbox=sandbox, account=acme, solution_interest=solution_interest)
    BuyingGroup.objects.create(sandbox=sandbox, account=globex, solution_interest=solution_interest)
    nodes = {
        "n1": {"type": "start", "next": "n2"},
        "n2": {"type": "listen", "event": {"type": "buying_group.changed", "solution_interest_id": solution_interest.pk}, "next": "n3"},
        "n3": {"type": "end"},
    }
    journey = live_journey(sandbox, account_audience(sandbox), nodes)
    enroll_new_members(journey)
    later = timezone.now() + dt.timedelta(seconds=1)  # the groups were saved before the tokens started listening
    advance_all(journey, now=timezone.now() - dt.timedelta(minutes=1))
    BuyingGroup.objects.update(updated_at=timezone.now() - dt.timedelta(minutes=2))
    assert runtime.poll_listeners(now=later) == []

    # A member assigned (no stage move) is a change: Acme's listeners wake, Globex's keep waiting.
    assign_member(group, person(sandbox, "ann@acme.com").pk, "Champion")
    assert runtime.poll_listeners(now=later) == [Enrollment.objects.get(journey=journey, account=acme).pk]
    assert PersonState.objects.filter(enrollment__account=globex, state=TokenState.WAITING).exists()
