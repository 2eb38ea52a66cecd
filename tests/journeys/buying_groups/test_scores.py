"""Completeness and engagement scores against hand-computed examples."""

import datetime as dt

import pytest

from cdp.models import Account, AccountPerson, ExperienceEvent, Person
from journeys.models import BuyingGroup, BuyingGroupMember
from journeys.services.buying_groups import roles_of
from journeys.services.scores import completeness_of, engagement_points, refresh_engagement
from journeys.tasks import refresh_buying_groups

NOW = dt.datetime(2026, 3, 31, 12, 0, tzinfo=dt.UTC)


def test_completeness_worked_example():
    # Roles 1, 2, 3 required 2, 1, 3 times; assigned 3, 0, 1 → min(3/2,1)=1, 0, 1/3 → (1 + 0 + 1/3) / 3 = 44.4
    assert completeness_of([(1, 2), (2, 1), (3, 3)], {1: 3, 3: 1, 9: 5}) == 44.4
    assert completeness_of([(1, 1)], {1: 1}) == 100.0
    assert completeness_of([], {}) == 100.0


@pytest.fixture
def group(sandbox, solution_interest):
    acme = Account.objects.create(sandbox=sandbox, name="Acme", domain="acme.com")
    group = BuyingGroup.objects.create(sandbox=sandbox, account=acme, solution_interest=solution_interest)
    decision_maker = roles_of(sandbox).get(name="Decision Maker")
    for email in ("alice@acme.com", "dan@acme.com"):
        person = Person.objects.create(sandbox=sandbox, email=email)
        AccountPerson.objects.create(sandbox=sandbox, account=acme, person=person)
        BuyingGroupMember.objects.create(sandbox=sandbox, group=group, person=person, role=decision_maker, assigned_at=NOW)
    return group


def event(sandbox, email, type_, at, n=1):
    person = Person.objects.for_sandbox(sandbox).get(email=email)
    ExperienceEvent.objects.bulk_create([ExperienceEvent(sandbox=sandbox, person=person, type=type_, occurred_at=at) for _ in range(n)])


def test_engagement_worked_example(sandbox, group):
    day1, day2 = NOW - dt.timedelta(days=3), NOW - dt.timedelta(days=2)
    event(sandbox, "alice@acme.com", "email.opened", day1, n=25)  # capped at 20 a day: 20 × 30 = 600
    event(sandbox, "alice@acme.com", "email.opened", day2, n=2)  # another day: 2 × 30 = 60
    event(sandbox, "alice@acme.com", "email.clicked", day1, n=1)  # own activity, own cap: 30
    event(sandbox, "alice@acme.com", "web.visit", day1, n=2)  # 2 × 40 = 80
    event(sandbox, "alice@acme.com", "event.attended", day2)  # 60
    event(sandbox, "dan@acme.com", "form.filled", day1, n=3)  # 3 × 40 = 120
    event(sandbox, "dan@acme.com", "interesting_moment", day2)  # 60
    event(sandbox, "dan@acme.com", "email.sent", day1, n=5)  # not an engagement activity
    event(sandbox, "dan@acme.com", "web.visit", NOW - dt.timedelta(days=31))  # outside the 30 days
    event(sandbox, "dan@acme.com", "web.visit", NOW + dt.timedelta(minutes=1))  # after the run
    outsider = Person.objects.create(sandbox=sandbox, email="eve@else.com")
    ExperienceEvent.objects.create(sandbox=sandbox, person=outsider, type="form.filled", occurred_at=day1)

    alice, dan = (Person.objects.get(email=e).pk for e in ("alice@acme.com", "dan@acme.com"))
    assert engagement_points(sandbox, [alice, dan], now=NOW) == {alice: 830, dan: 180}
    refresh_engagement(sandbox, now=NOW)
    group.refresh_from_db()
    # (830 + 180) / 3000 full-engagement points = 33.67 → 33.7
    assert group.engagement_score == 33.7 and group.engagement_computed_at == NOW


def test_engagement_is_capped_at_100(sandbox, group, settings):
    settings.BUYING_GROUP_FULL_ENGAGEMENT_POINTS = 100
    event(sandbox, "alice@acme.com", "form.filled", NOW - dt.timedelta(hours=1), n=4)  # 160 points
    refresh_engagement(sandbox, now=NOW)
    group.refresh_from_db()
    assert group.engagement_score == 100.0


def test_daily_task_scores_every_sandbox(sandbox, group):
    event(sandbox, "dan@acme.com", "web.visit", dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
    assert refresh_buying_groups.delay().get() == {"rechecked": 0, "scored": 1}
    group.refresh_from_db()
    assert group.engagement_score == round(100 * 40 / 3000, 1)
