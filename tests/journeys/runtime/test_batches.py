"""Enrollments advanced together: the tokens of one journey version at the same node are one set
(one split evaluation, one action run, set-wise moves), so an advance's queries don't grow with
its enrollments; a batch that fails is split so one enrollment can't hold the others back."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from cdp.models import ExperienceEvent, ListMember, MarketingList
from journeys.models import BuyingGroup, BuyingGroupMember, Enrollment, EnrollmentState, NodeVisit, PersonState, SideEffect, TokenState
from journeys.services import runtime
from journeys.services.buying_groups import assign_members, remove_members
from tests.cdp.ingest_helpers import ingest
from tests.journeys.buying_groups.conftest import EXAMPLE_ROLES, EXAMPLE_STAGES, EXAMPLE_TRANSITIONS

from .conftest import account, account_audience, compare, live_journey, make_people, person

pytestmark = pytest.mark.django_db

DOMAINS = {"acme.com": "Software", "globex.com": "Retail", "initech.com": "Software", "umbrella.com": "Retail"}


@pytest.fixture
def people(sandbox):
    rows = [
        {"email": f"{name}@{domain}", "first_name": name.title(), "job_title": title, "account.domain": domain}
        for domain in DOMAINS
        for name, title in (("ann", "CTO"), ("bob", "Engineer"))
    ]
    make_people(sandbox, rows)
    ingest(sandbox, "account", [{"domain": d, "industry": industry} for d, industry in DOMAINS.items()])


def graph(list_id):
    return {
        "n1": {"type": "start", "next": "n2"},
        "n2": {"type": "split_accounts", "paths": [
            {"id": "software", "condition": {"rule": compare("industry", "eq", "Software"), "buying_group": None}, "next": "n3"},
        ], "other": {"next": "n4"}},
        "n3": {"type": "action", "action": "update_account_field", "params": {"field": "region", "value": "Tech"}, "next": "n5"},
        "n4": {"type": "action", "action": "interesting_moment", "params": {"description": "Not software"}, "next": "n5"},
        "n5": {"type": "merge", "next": "n6"},
        "n6": {"type": "split_people", "paths": [
            {"id": "ctos", "condition": {"rule": compare("jobTitle", "eq", "CTO")}, "next": "n7"},
        ], "other": {"next": "n8"}},
        "n7": {"type": "action", "action": "update_person_field", "params": {"field": "lead_status", "value": "Executive"}, "next": "n9"},
        "n8": {"type": "action", "action": "add_to_list", "params": {"list_id": list_id}, "next": "n9"},
        "n9": {"type": "merge", "next": "n10"},
        "n10": {"type": "end"},
    }  # fmt: skip


def journey_of(sandbox, domains, name):
    audience = account_audience(sandbox, {"subject": "account", "condition": compare("domain", "in", list(domains))}, name=name)
    marketing_list, _ = MarketingList.objects.get_or_create(sandbox=sandbox, external_id="batch", defaults={"name": "Batch"})
    journey = live_journey(sandbox, audience, graph(marketing_list.pk), name=name)
    return journey, runtime.enroll_new_members(journey)


def test_enrollments_advanced_together_take_their_paths_and_each_side_effect_once(sandbox, people):
    journey, ids = journey_of(sandbox, DOMAINS, "All four")
    assert runtime.advance_enrollments(ids) == sorted(ids)

    assert {account(sandbox, d).region for d in DOMAINS if DOMAINS[d] == "Software"} == {"Tech"}
    assert {account(sandbox, d).region for d in DOMAINS if DOMAINS[d] == "Retail"} == {""}
    assert {person(sandbox, f"ann@{d}").lead_status for d in DOMAINS} == {"Executive"}
    assert {person(sandbox, f"bob@{d}").lead_status for d in DOMAINS} == {""}
    assert ListMember.objects.filter(marketing_list__external_id="batch").count() == len(DOMAINS)  # the four Bobs
    moments = ExperienceEvent.objects.for_sandbox(sandbox).filter(type="interesting_moment")
    assert sorted(m.person.email for m in moments) == sorted(f"{n}@{d}" for d in DOMAINS if DOMAINS[d] == "Retail" for n in ("ann", "bob"))
    assert SideEffect.objects.filter(kind="update_account_field").count() == 2
    assert set(Enrollment.objects.filter(pk__in=ids).values_list("state", flat=True)) == {EnrollmentState.FINISHED}
    counts = runtime.node_counts(journey)
    assert counts["n2"] == {"entered": 4, "current": 0, "exited": 4, "people": {"entered": 8, "current": 0, "exited": 8}}
    # Tokens reaching a merge by two paths pass it together: one visit each, no more.
    assert counts["n9"]["people"] == {"entered": 8, "current": 0, "exited": 8}
    assert NodeVisit.objects.filter(journey=journey, node="n9").count() == 8

    # A second advance of the same enrollments (a redelivered task) finds nothing to do.
    assert runtime.advance_enrollments(ids) == []
    assert SideEffect.objects.filter(kind="update_account_field").count() == 2


def test_an_advance_reads_and_writes_set_wise_however_many_enrollments_it_takes(sandbox, people):
    def queries_to_advance(domains, name):
        _, ids = journey_of(sandbox, domains, name)
        with CaptureQueriesContext(connection) as queries:
            runtime.advance_enrollments(ids)
        assert set(Enrollment.objects.filter(pk__in=ids).values_list("state", flat=True)) == {EnrollmentState.FINISHED}
        return len(queries)

    two = queries_to_advance(["acme.com", "globex.com"], "Two")
    four = queries_to_advance(list(DOMAINS), "Four")
    assert four == two


def test_a_batch_that_fails_is_advanced_one_enrollment_at_a_time(sandbox, people, monkeypatch):
    from journeys import runtime_tasks

    _, ids = journey_of(sandbox, ["acme.com", "globex.com"], "Two")
    globex = Enrollment.objects.get(pk__in=ids, account=account(sandbox, "globex.com"))
    real_move = runtime.move_tokens

    def globex_breaks(journey_id, tokens, to_node, now, outcome):
        if any(t.enrollment_id == globex.pk for t in tokens):
            raise RuntimeError("a bug that only Globex's data triggers")
        return real_move(journey_id, tokens, to_node, now, outcome)

    monkeypatch.setattr(runtime, "move_tokens", globex_breaks)
    queued = []
    monkeypatch.setattr(runtime_tasks.advance_enrollment_task, "delay", queued.append)
    runtime.advance_in_batch(ids)  # doesn't raise: each enrollment gets a task (and retries) of its own
    assert sorted(queued) == sorted(ids)
    assert not Enrollment.objects.filter(pk__in=ids, lease_until__isnull=False).exists()
    acme = next(pk for pk in ids if pk != globex.pk)
    assert runtime.advance_enrollment(acme)
    assert Enrollment.objects.get(pk=acme).state == EnrollmentState.FINISHED
    with pytest.raises(RuntimeError):
        runtime.advance_enrollment(globex.pk)
    assert PersonState.objects.filter(enrollment=globex, node="n1", state=TokenState.READY).count() == 3


def test_people_are_assigned_to_and_removed_from_a_group_set_wise(sandbox, people):
    from journeys.services.buying_groups import (
        publish_roles_template,
        publish_stages_model,
        save_roles_template,
        save_solution_interest,
        save_stages_model,
    )

    template = publish_roles_template(save_roles_template(sandbox, name="Roles", roles=EXAMPLE_ROLES))
    stages = publish_stages_model(save_stages_model(sandbox, name="Stages", stages=EXAMPLE_STAGES, transitions=EXAMPLE_TRANSITIONS))
    interest = save_solution_interest(sandbox, name="Analytics", roles_template=template, stages_model=stages)
    group = BuyingGroup.objects.create(sandbox=sandbox, account=account(sandbox, "acme.com"), solution_interest=interest)
    ann, bob, outsider = (person(sandbox, e) for e in ("ann@acme.com", "bob@acme.com", "ann@globex.com"))

    refused = assign_members(group, [ann.pk, bob.pk, outsider.pk], "Champion", by="journey:1")
    assert set(refused) == {outsider.pk} and refused[outsider.pk].rule == "person_not_in_account"
    members = BuyingGroupMember.objects.filter(group=group)
    assert {(m.person_id, m.role.name, m.assigned_by) for m in members} == {(ann.pk, "Champion", "journey:1"), (bob.pk, "Champion", "journey:1")}
    assert assign_members(group, [ann.pk], "Decision Maker") == {}  # again: the role changes
    assert members.get(person=ann).role.name == "Decision Maker"

    assert remove_members(group, [ann.pk, bob.pk, outsider.pk]) == 2
    assert not BuyingGroupMember.objects.filter(group=group).exists()


def test_listeners_are_woken_set_wise(sandbox, people):
    from django.utils import timezone

    nodes = {
        "n1": {"type": "start", "next": "n2"},
        "n2": {"type": "listen", "event": {"type": "form.filled"}, "next": "n3"},
        "n3": {"type": "end"},
    }
    journey = live_journey(sandbox, account_audience(sandbox), nodes)
    runtime.advance_enrollments(runtime.enroll_new_members(journey))
    everyone = [person(sandbox, f"{n}@{d}").pk for d in DOMAINS for n in ("ann", "bob")]
    filled = ["ann@acme.com", "ann@initech.com", "bob@globex.com"]
    ingest(sandbox, "event", [{"identity.email": e, "type": "form.filled", "occurred_at": timezone.now().isoformat()} for e in filled])

    def wake(person_ids):
        with CaptureQueriesContext(connection) as queries:
            woken = runtime.wake_listeners(sandbox.pk, person_ids)
        return woken, len(queries)

    woken, one = wake([person(sandbox, "ann@acme.com").pk])
    assert woken == [Enrollment.objects.get(journey=journey, account=account(sandbox, "acme.com")).pk]
    woken, all_of_them = wake(everyone)  # two more heard, five still listening
    assert len(woken) == 2 and all_of_them == one
    assert PersonState.objects.filter(enrollment__journey=journey, node="n3").count() == len(filled)
    assert PersonState.objects.filter(enrollment__journey=journey, node="n2", state=TokenState.WAITING).count() == 5


def test_the_audience_of_a_running_journey_is_not_deleted(sandbox):
    from cdp.exceptions import RuleViolation
    from cdp.services.audience_io import delete_audience
    from journeys.models.journeys import JourneyState
    from tests.journeys.runtime.conftest import account_audience, live_journey

    audience = account_audience(sandbox)
    journey = live_journey(sandbox, audience, {"n1": {"type": "end"}}, name="Welcome")
    with pytest.raises(RuleViolation, match="drives the running journeys Welcome"):
        delete_audience(audience)
    journey.state = JourneyState.FINISHED
    journey.save(update_fields=["state"])
    delete_audience(audience)


def test_a_batch_keeps_its_leases_while_its_emails_go_out_one_by_one(sandbox, people, monkeypatch):
    import datetime as dt

    from django.utils import timezone

    from journeys.services import actions

    _, ids = journey_of(sandbox, DOMAINS, "Leases")
    held, free = ids[0], ids[1]
    soon = timezone.now() + dt.timedelta(seconds=5)
    Enrollment.objects.filter(pk=held).update(lease_until=soon)
    runtime.renew_leases([held, free])
    leases = dict(Enrollment.objects.filter(pk__in=[held, free]).values_list("pk", "lease_until"))
    assert leases[held] > soon + dt.timedelta(minutes=4) and leases[free] is None  # only a held lease is renewed

    renewed, clock = [], iter([0, 30, 61, 61, 90])  # monotonic seconds: a fifth of the lease is 60
    monkeypatch.setattr(runtime, "renew_leases", lambda enrollment_ids: renewed.append(set(enrollment_ids)))
    monkeypatch.setattr(actions.time, "monotonic", lambda: next(clock))
    context = actions.ActionContext(Enrollment.objects.get(pk=held), "n1", "send_email", {}, timezone.now())  # clock 0
    context.targets = [actions.Target(Enrollment.objects.get(pk=pk), None) for pk in (held, free)]
    context._keep_leases()  # 30 s in: not yet
    context._keep_leases()  # 61 s in: renewed (and the clock reset at 61)
    context._keep_leases()  # 90 s in: not yet
    assert renewed == [{held, free}]
