"""Building buying groups over an account audience, assigning members by role conditions, and
keeping both current as profiles and the audience change."""

import pytest

from cdp.exceptions import RuleViolation
from cdp.models import Account, Person, ProfileMerge
from cdp.services.audiences import save_audience
from journeys.choices import AssignedHow, BuildStatus, BuyingGroupStatus
from journeys.models import BuyingGroup, BuyingGroupBuild, BuyingGroupMember, BuyingGroupStageChange
from journeys.services.buying_groups import (
    accounts_with_buying_group,
    assign_member,
    buying_group_filters,
    buying_group_for,
    people_in_buying_groups,
    remove_member,
    set_stage,
    set_status,
    start_build,
)
from tests.cdp.ingest_helpers import ingest

from .conftest import compare

SOFTWARE_ACCOUNTS = {"subject": "account", "condition": compare("industry", "eq", "Software")}


@pytest.fixture
def example(sandbox, solution_interest, django_capture_on_commit_callbacks):
    """acme.com (Software): Alice CTO, Dan CFO, Bob VP Engineering, Carol Engineer, Erin Intern.
    globex.com (Software): Gus CTO. initech.com (Retail): Ian CTO — not in the audience."""
    with django_capture_on_commit_callbacks(execute=True):
        ingest(sandbox, "account", [
            {"domain": "acme.com", "name": "Acme", "industry": "Software"},
            {"domain": "globex.com", "name": "Globex", "industry": "Software"},
            {"domain": "initech.com", "name": "Initech", "industry": "Retail"},
        ])  # fmt: skip
        ingest(sandbox, "person", [
            {"email": "alice@acme.com", "job_title": "CTO", "account.domain": "acme.com"},
            {"email": "dan@acme.com", "job_title": "CFO", "account.domain": "acme.com"},
            {"email": "bob@acme.com", "job_title": "VP Engineering", "account.domain": "acme.com"},
            {"email": "carol@acme.com", "job_title": "Engineer", "account.domain": "acme.com"},
            {"email": "erin@acme.com", "job_title": "Intern", "account.domain": "acme.com"},
            {"email": "gus@globex.com", "job_title": "CTO", "account.domain": "globex.com"},
            {"email": "ian@initech.com", "job_title": "CTO", "account.domain": "initech.com"},
        ])  # fmt: skip
        audience = save_audience(sandbox, name="Software accounts", definition=SOFTWARE_ACCOUNTS)
    with django_capture_on_commit_callbacks(execute=True):
        build = start_build(solution_interest, audience)
    build.refresh_from_db()
    return build


def account(sandbox, domain):
    return Account.objects.for_sandbox(sandbox).get(domain=domain)


def person(sandbox, email):
    return Person.objects.for_sandbox(sandbox).get(email=email)


def roles(group):
    return {m.person.email: m.role.name for m in BuyingGroupMember.objects.filter(group=group).select_related("person", "role")}


def test_build_creates_groups_for_the_audience_accounts_and_assigns_by_weight(sandbox, solution_interest, example):
    assert (example.status, example.total_accounts, example.processed_accounts, example.groups_created) == (BuildStatus.SUCCEEDED, 2, 2, 2)
    assert set(BuyingGroup.objects.for_sandbox(sandbox).values_list("account__domain", flat=True)) == {"acme.com", "globex.com"}
    acme = buying_group_for(sandbox, account(sandbox, "acme.com").pk, solution_interest.pk)
    # Bob matches Influencer (80) and Practitioner (60): the heavier role wins. Erin matches nothing.
    assert roles(acme) == {
        "alice@acme.com": "Decision Maker",
        "dan@acme.com": "Decision Maker",
        "bob@acme.com": "Influencer",
        "carol@acme.com": "Practitioner",
    }
    # Completeness: Decision Maker 2/2 → 1, Influencer 1/1 → 1, Practitioner 1/2 → 0.5; (1 + 1 + 0.5) / 3.
    assert acme.completeness_score == 83.3
    assert acme.status == BuyingGroupStatus.IN_PROGRESS
    # New groups start in the first entry stage, with a history row.
    assert acme.stage.name == "Discover"
    assert list(BuyingGroupStageChange.objects.filter(group=acme).values_list("to_stage__name", "changed_by")) == [("Discover", "system")]
    globex = buying_group_for(sandbox, account(sandbox, "globex.com").pk, solution_interest.pk)
    assert roles(globex) == {"gus@globex.com": "Decision Maker"}
    # Decision Maker 1/2 → 0.5, the others 0: 0.5 / 3.
    assert globex.completeness_score == 16.7


def test_rebuilding_changes_nothing_twice(sandbox, solution_interest, example, django_capture_on_commit_callbacks):
    before = list(BuyingGroupMember.objects.order_by("pk").values_list("pk", "group_id", "person_id", "role_id"))
    groups_before = list(BuyingGroup.objects.order_by("pk").values_list("pk", "status", "completeness_score", "updated_at"))
    with django_capture_on_commit_callbacks(execute=True):
        start_build(solution_interest, example.audience)
    assert list(BuyingGroupMember.objects.order_by("pk").values_list("pk", "group_id", "person_id", "role_id")) == before
    # Nothing changed, so nothing says it did (journeys listen to updated_at).
    assert list(BuyingGroup.objects.order_by("pk").values_list("pk", "status", "completeness_score", "updated_at")) == groups_before
    assert BuyingGroup.objects.count() == 2 and BuyingGroupStageChange.objects.count() == 2
    assert BuyingGroupBuild.objects.get().groups_created == 0


def test_title_change_reassigns_only_that_person_and_rescores(sandbox, solution_interest, example, django_capture_on_commit_callbacks):
    acme = buying_group_for(sandbox, account(sandbox, "acme.com").pk, solution_interest.pk)
    with django_capture_on_commit_callbacks(execute=True):
        ingest(sandbox, "person", [{"email": "bob@acme.com", "job_title": "Staff Engineer"}])
    acme.refresh_from_db()
    assert roles(acme)["bob@acme.com"] == "Practitioner"
    # Influencer 0/1 → 0, Practitioner 2/2 → 1, Decision Maker 1: 2 / 3.
    assert acme.completeness_score == 66.7
    with django_capture_on_commit_callbacks(execute=True):
        ingest(sandbox, "person", [{"email": "erin@acme.com", "job_title": "VP Sales"}])
    acme.refresh_from_db()
    assert roles(acme)["erin@acme.com"] == "Influencer"
    assert (acme.completeness_score, acme.status) == (100.0, BuyingGroupStatus.FULL)
    with django_capture_on_commit_callbacks(execute=True):
        ingest(sandbox, "person", [{"email": "erin@acme.com", "job_title": "Intern"}])
    acme.refresh_from_db()
    assert "erin@acme.com" not in roles(acme) and acme.status == BuyingGroupStatus.IN_PROGRESS


def test_new_person_of_the_account_joins_the_group(sandbox, solution_interest, example, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        ingest(sandbox, "person", [{"email": "hal@globex.com", "job_title": "CFO", "account.domain": "globex.com"}])
    globex = buying_group_for(sandbox, account(sandbox, "globex.com").pk, solution_interest.pk)
    assert roles(globex) == {"gus@globex.com": "Decision Maker", "hal@globex.com": "Decision Maker"}


def test_audience_exit_makes_the_group_inactive_and_entry_brings_groups(sandbox, solution_interest, example, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        ingest(sandbox, "account", [{"domain": "globex.com", "industry": "Retail"}, {"domain": "initech.com", "industry": "Software"}])
    globex = buying_group_for(sandbox, account(sandbox, "globex.com").pk, solution_interest.pk)
    assert globex.status == BuyingGroupStatus.INACTIVE
    assert roles(globex) == {"gus@globex.com": "Decision Maker"}  # kept, never deleted
    initech = buying_group_for(sandbox, account(sandbox, "initech.com").pk, solution_interest.pk)
    assert initech.status == BuyingGroupStatus.IN_PROGRESS and roles(initech) == {"ian@initech.com": "Decision Maker"}
    # Back in the audience: active again.
    with django_capture_on_commit_callbacks(execute=True):
        ingest(sandbox, "account", [{"domain": "globex.com", "industry": "Software"}])
    globex.refresh_from_db()
    assert globex.status == BuyingGroupStatus.IN_PROGRESS


def test_manual_assignment_wins_over_automatic(sandbox, solution_interest, example, marketer, django_capture_on_commit_callbacks):
    acme = buying_group_for(sandbox, account(sandbox, "acme.com").pk, solution_interest.pk)
    erin, carol = person(sandbox, "erin@acme.com"), person(sandbox, "carol@acme.com")
    member = assign_member(acme, erin.pk, "Champion", by=marketer)
    assert (member.assigned_how, member.assigned_by) == (AssignedHow.MANUAL, f"user:{marketer.username}")
    assign_member(acme, carol.pk, "Influencer", by="journey:7")
    with django_capture_on_commit_callbacks(execute=True):
        ingest(sandbox, "person", [{"email": "carol@acme.com", "job_title": "Senior Engineer"}])
    assert roles(acme)["carol@acme.com"] == "Influencer"
    assert remove_member(acme, erin.pk) is True and remove_member(acme, erin.pk) is False
    outsider = person(sandbox, "gus@globex.com")
    with pytest.raises(RuleViolation) as caught:
        assign_member(acme, outsider.pk, "Champion")
    assert caught.value.rule == "person_not_in_account"


def test_viewer_cannot_change_a_group(sandbox, solution_interest, example, viewer):
    acme = buying_group_for(sandbox, account(sandbox, "acme.com").pk, solution_interest.pk)
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        set_stage(acme, "Evaluate", by=viewer)


def test_stage_transitions_follow_the_model(sandbox, solution_interest, example):
    acme = buying_group_for(sandbox, account(sandbox, "acme.com").pk, solution_interest.pk)
    with pytest.raises(RuleViolation) as caught:
        set_stage(acme, "Purchase")
    assert caught.value.rule == "invalid_transition"
    set_stage(acme, "Evaluate", by="journey:3")
    set_stage(acme, "Purchase")
    with pytest.raises(RuleViolation):
        set_stage(acme, "Lost")  # success is final
    history = list(BuyingGroupStageChange.objects.filter(group=acme).order_by("at", "id").values_list("from_stage__name", "to_stage__name", "changed_by"))
    assert history == [(None, "Discover", "system"), ("Discover", "Evaluate", "journey:3"), ("Evaluate", "Purchase", "system")]
    with pytest.raises(RuleViolation) as caught:
        set_stage(acme, "Nope")
    assert caught.value.rule == "unknown_stage"


def test_status_and_filters_for_journey_splits(sandbox, solution_interest, example):
    acme_id, globex_id = account(sandbox, "acme.com").pk, account(sandbox, "globex.com").pk
    acme = buying_group_for(sandbox, acme_id, solution_interest.pk)
    assert set_status(acme, BuyingGroupStatus.COMPLETE).status == BuyingGroupStatus.COMPLETE
    with pytest.raises(RuleViolation):
        set_status(acme, "finished")
    set_stage(acme, "Evaluate")
    assert set(accounts_with_buying_group(sandbox, solution_interest_id=solution_interest.pk)) == {acme_id, globex_id}
    assert set(accounts_with_buying_group(sandbox, status="complete")) == {acme_id}
    assert set(accounts_with_buying_group(sandbox, stage="evaluate")) == {acme_id}
    initech_id = account(sandbox, "initech.com").pk
    no_group = buying_group_filters(sandbox, "account", {"has": False, "solution_interest_id": solution_interest.pk}, restrict_to_ids=[acme_id, initech_id])
    assert set(no_group) == {initech_id}
    deciders = people_in_buying_groups(sandbox, solution_interest_id=solution_interest.pk, role="Decision Maker")
    assert set(deciders) == {person(sandbox, e).pk for e in ("alice@acme.com", "dan@acme.com", "gus@globex.com")}
    bob = person(sandbox, "bob@acme.com").pk
    assert set(buying_group_filters(sandbox, "person", {"member": True, "role": "Influencer"}, restrict_to_ids=[bob])) == {bob}
    assert set(buying_group_filters(sandbox, "person", {"member": False}, restrict_to_ids=[bob])) == set()
    # In progress / full follow completeness: asking for either reactivates with the right one.
    assert set_status(acme, BuyingGroupStatus.FULL).status == BuyingGroupStatus.IN_PROGRESS


def test_build_needs_an_account_audience_of_the_sandbox(sandbox, other_sandbox, solution_interest):
    people = save_audience(sandbox, name="CTOs", definition={"subject": "person", "condition": compare("jobTitle", "eq", "CTO")})
    with pytest.raises(RuleViolation) as caught:
        start_build(solution_interest, people)
    assert caught.value.rule == "account_audience_required"
    foreign = save_audience(other_sandbox, name="Theirs", definition=SOFTWARE_ACCOUNTS)
    with pytest.raises(RuleViolation):
        start_build(solution_interest, foreign)


def test_groups_stay_in_their_sandbox(sandbox, other_sandbox, solution_interest, example, make_solution_interest):
    assert buying_group_for(other_sandbox, account(sandbox, "acme.com").pk, solution_interest.pk) is None
    assert list(accounts_with_buying_group(other_sandbox)) == []
    assert list(people_in_buying_groups(other_sandbox)) == []


def test_time_window_conditions_are_rechecked_daily(sandbox, make_solution_interest):
    from datetime import UTC, datetime, timedelta

    from cdp.models import AccountPerson, ExperienceEvent
    from journeys.services.buying_groups import assign_automatically, refresh_daily

    clicked_this_week = {"subject": "person", "condition": {
        "type": "count", "collection": "xEvent", "op": "ge", "value": 1,
        "where": {"type": "and", "conditions": [
            compare("type", "eq", "email.clicked"),
            {"type": "occurs", "field": "occurredAt", "op": "le", "amount": 7, "unit": "days", "direction": "before"},
        ]},
    }}  # fmt: skip
    interest = make_solution_interest(sandbox, name="Clicks", roles=[{"role": "Influencer", "weight": 80, "condition": clicked_this_week}])
    acme = Account.objects.create(sandbox=sandbox, name="Acme")
    alice = Person.objects.create(sandbox=sandbox, email="alice@acme.com")
    AccountPerson.objects.create(sandbox=sandbox, account=acme, person=alice)
    clicked_at = datetime(2026, 3, 1, 9, tzinfo=UTC)
    ExperienceEvent.objects.create(sandbox=sandbox, person=alice, type="email.clicked", occurred_at=clicked_at)
    group = BuyingGroup.objects.create(sandbox=sandbox, account=acme, solution_interest=interest)
    assign_automatically(interest, [group.pk], now=clicked_at + timedelta(days=1))
    assert roles(group) == {"alice@acme.com": "Influencer"}
    assert refresh_daily(sandbox, now=clicked_at + timedelta(days=10)) == {"rechecked": 1, "scored": 1}
    assert roles(group) == {}


def test_a_merged_persons_membership_moves_to_the_survivor(sandbox, solution_interest, example, django_capture_on_commit_callbacks):
    acme = buying_group_for(sandbox, account(sandbox, "acme.com").pk, solution_interest.pk)
    with django_capture_on_commit_callbacks(execute=True):
        ingest(sandbox, "person", [{"identity.ecid": "1" * 38, "job_title": "CFO", "account.domain": "acme.com"}])
    assert BuyingGroupMember.objects.filter(group=acme).count() == 5  # the new CFO is a Decision Maker
    with django_capture_on_commit_callbacks(execute=True):
        ingest(sandbox, "person", [{"email": "alice@acme.com", "identity.ecid": "1" * 38}])
    assert ProfileMerge.objects.for_sandbox(sandbox).count() == 1
    survivor = Person.objects.for_sandbox(sandbox).get(identities__value="1" * 38)
    assert BuyingGroupMember.objects.filter(group=acme).count() == 4
    assert BuyingGroupMember.objects.filter(group=acme, person=survivor).count() == 1


def test_resetting_the_sandbox_removes_its_buying_groups(sandbox, solution_interest, example):
    from cdp.services.tenancy import reset_sandbox

    reset_sandbox(sandbox, confirmation=sandbox.name)
    assert not BuyingGroup.objects.for_sandbox(sandbox).exists()
    assert not BuyingGroupMember.objects.for_sandbox(sandbox).exists()


def test_a_crashed_build_resumes_from_its_checkpoint(sandbox, solution_interest, example):
    from journeys.tasks import build_buying_groups

    acme, globex = account(sandbox, "acme.com"), account(sandbox, "globex.com")
    first, second = sorted([acme, globex], key=lambda a: a.pk)
    # As if the worker died after the first chunk: the second account's group was never made.
    BuyingGroup.objects.filter(account=second).delete()
    untouched = BuyingGroup.objects.get(account=first).updated_at
    BuyingGroupBuild.objects.filter(pk=example.pk).update(status=BuildStatus.RUNNING, checkpoint_account_id=first.pk, processed_accounts=1, groups_created=1)
    assert build_buying_groups.delay(solution_interest.pk, example.audience_id).get() == {"status": "succeeded", "accounts": 2, "created": 2}
    assert BuyingGroup.objects.filter(account=second, solution_interest=solution_interest).exists()
    assert BuyingGroup.objects.get(account=first).updated_at == untouched


def test_a_group_stays_active_while_its_account_is_in_any_source_audience(sandbox, solution_interest, example, django_capture_on_commit_callbacks):
    acme_domain = {"subject": "account", "condition": compare("domain", "eq", "acme.com")}
    with django_capture_on_commit_callbacks(execute=True):
        by_domain = save_audience(sandbox, name="Acme only", definition=acme_domain)
    with django_capture_on_commit_callbacks(execute=True):
        start_build(solution_interest, by_domain)
    with django_capture_on_commit_callbacks(execute=True):
        ingest(sandbox, "account", [{"domain": "acme.com", "industry": "Retail"}, {"domain": "globex.com", "industry": "Retail"}])
    statuses = dict(BuyingGroup.objects.values_list("account__domain", "status"))
    assert statuses == {"acme.com": BuyingGroupStatus.IN_PROGRESS, "globex.com": BuyingGroupStatus.INACTIVE}


def test_the_stages_model_is_fixed_once_groups_exist(sandbox, solution_interest, example):
    from journeys.services.buying_groups import save_solution_interest

    with pytest.raises(RuleViolation) as caught:
        save_solution_interest(sandbox, name=solution_interest.name, roles_template=solution_interest.roles_template, solution_interest=solution_interest)
    assert caught.value.rule == "stages_model_in_use"
    renamed = save_solution_interest(sandbox, name="Renamed", roles_template=solution_interest.roles_template,
                                     stages_model=solution_interest.stages_model, solution_interest=solution_interest)  # fmt: skip
    assert renamed.name == "Renamed"
