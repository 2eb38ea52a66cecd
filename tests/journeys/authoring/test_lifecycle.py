"""Journeys' lifecycle: creation rules (dates, audience), editing only while draft/validated,
validate → publish (task) → live → closed → finished / aborted, refusals, duplicate."""

import datetime as dt

import pytest
from django.utils import timezone

from cdp.exceptions import RuleViolation
from journeys.authoring_tasks import finish_ended_journeys_task, publish_journey_task
from journeys.models import Journey, JourneyState, JourneyVersion
from journeys.services import journeys as service

from .conftest import sample_graph


def test_a_new_journey_is_a_draft_starting_from_its_audience(sandbox, account_audience, marketer):
    now = timezone.now()
    journey = service.create_journey(sandbox, name="Welcome", start_at=now, end_at=now + dt.timedelta(days=30), audience_id=account_audience.pk, by=marketer)
    assert journey.state == JourneyState.DRAFT
    assert journey.audience == account_audience and journey.created_by == marketer
    assert journey.graph["nodes"]["n1"] == {"type": "start", "audience_id": account_audience.pk, "next": "n2"}


def test_a_person_audience_is_refused_with_a_clear_error(sandbox, person_audience):
    now = timezone.now()
    with pytest.raises(RuleViolation) as refused:
        service.create_journey(sandbox, name="Welcome", start_at=now, end_at=now + dt.timedelta(days=30), audience_id=person_audience.pk)
    assert refused.value.rule == "journey_account_audience"
    assert "person audience" in refused.value.message and refused.value.field == "audience"


@pytest.mark.parametrize(
    "end, rule",
    [
        (None, "journey_end_required"),
        (dt.timedelta(days=-1), "journey_dates"),
        (dt.timedelta(days=3 * 365 + 1), "journey_too_long"),
    ],
)
def test_end_date_rules(sandbox, end, rule):
    now = timezone.now()
    with pytest.raises(RuleViolation) as refused:
        service.create_journey(sandbox, name="J", start_at=now, end_at=None if end is None else now + end)
    assert refused.value.rule == rule and refused.value.field == "end_at"


def test_exactly_three_years_is_allowed(sandbox):
    now = timezone.now()
    assert service.create_journey(sandbox, name="Long", start_at=now, end_at=now + dt.timedelta(days=3 * 365)).pk


def test_names_are_unique_per_sandbox(make_journey, other_sandbox):
    make_journey(name="Same")
    with pytest.raises(RuleViolation, match="already exists"):
        make_journey(name="Same")
    now = timezone.now()
    assert service.create_journey(other_sandbox, name="Same", start_at=now, end_at=now + dt.timedelta(days=1)).pk


def test_reentry_interval_needs_reentry(make_journey):
    with pytest.raises(RuleViolation, match="re-entry"):
        make_journey(allow_reentry=False, reentry_interval=dt.timedelta(days=3))
    journey = make_journey(allow_reentry=True, reentry_interval=dt.timedelta(days=3))
    assert journey.reentry_interval == dt.timedelta(days=3)


def test_validate_then_publish_then_close_then_finish(valid_journey, marketer):
    assert service.check_journey(valid_journey, by=marketer) == []
    valid_journey.refresh_from_db()
    assert valid_journey.state == JourneyState.VALIDATED

    result = publish_journey_task.delay(valid_journey.pk, marketer.pk).get()
    assert result == {"journey": valid_journey.pk, "published": True, "version": 1}
    valid_journey.refresh_from_db()
    assert valid_journey.state == JourneyState.LIVE and valid_journey.published_at is not None
    version = valid_journey.current_version
    assert (version.number, version.graph, version.published_by) == (1, valid_journey.graph, marketer)
    # A retried publish task finds the version instead of making another.
    assert publish_journey_task.delay(valid_journey.pk, marketer.pk).get()["version"] == 1
    assert JourneyVersion.objects.filter(journey=valid_journey).count() == 1

    service.close_journey(valid_journey, by=marketer)
    valid_journey.refresh_from_db()
    assert valid_journey.state == JourneyState.CLOSED and valid_journey.closed_at
    with pytest.raises(RuleViolation, match="Only a live journey can be closed"):
        service.close_journey(valid_journey)

    Journey.objects.filter(pk=valid_journey.pk).update(end_at=timezone.now() - dt.timedelta(minutes=1))
    assert finish_ended_journeys_task.delay().get() == [valid_journey.pk]
    valid_journey.refresh_from_db()
    assert valid_journey.state == JourneyState.FINISHED and valid_journey.ended_at
    with pytest.raises(RuleViolation):
        service.abort_journey(valid_journey)


def test_abort_a_live_journey(valid_journey):
    service.publish_journey(valid_journey)
    service.abort_journey(valid_journey)
    valid_journey.refresh_from_db()
    assert valid_journey.state == JourneyState.ABORTED


def test_drafts_cannot_be_closed_or_aborted(valid_journey):
    with pytest.raises(RuleViolation, match="this one is draft"):
        service.close_journey(valid_journey)
    with pytest.raises(RuleViolation):
        service.abort_journey(valid_journey)


def test_publish_is_refused_with_the_list_of_errors(make_journey, account_audience):
    graph = sample_graph(account_audience.pk, 999999)
    graph["nodes"]["n4"]["duration"] = {"amount": 0, "unit": "days"}
    journey = make_journey(graph=graph)
    with pytest.raises(service.JourneyInvalid) as refused:
        service.request_publish(journey)
    assert [(e["node"], e["code"]) for e in refused.value.errors] == [("n4", "wait_not_positive"), ("n3", "unknown_email")]
    assert refused.value.message == "The journey can't be published: 2 problems to fix."
    # The task refuses the same way (e.g. data changed after it was queued) and changes nothing.
    result = publish_journey_task.delay(journey.pk).get()
    assert result["published"] is False and len(result["errors"]) == 2
    journey.refresh_from_db()
    assert journey.state == JourneyState.DRAFT and journey.current_version is None


def test_a_live_journey_cannot_be_edited(valid_journey):
    service.publish_journey(valid_journey)
    with pytest.raises(RuleViolation, match="Duplicate it") as refused:
        service.save_graph(valid_journey, valid_journey.graph)
    assert refused.value.rule == "journey_not_editable"
    with pytest.raises(RuleViolation, match="Duplicate it"):
        service.update_journey(valid_journey, name="Renamed")
    with pytest.raises(RuleViolation, match="abort it first"):
        service.delete_journey(valid_journey)


def test_editing_a_validated_journey_makes_it_a_draft_again(valid_journey):
    service.check_journey(valid_journey)
    journey = service.save_graph(valid_journey, valid_journey.graph)
    assert journey.state == JourneyState.DRAFT


def test_saving_the_graph_follows_the_start_audience(make_journey, account_audience, email):
    journey = make_journey()
    assert journey.audience is None
    journey = service.save_graph(journey, sample_graph(account_audience.pk, email.pk))
    assert journey.audience == account_audience
    with pytest.raises(RuleViolation, match="JSON object"):
        service.save_graph(journey, ["not", "a", "graph"])


def test_changing_the_audience_rewrites_the_start_node(valid_journey, sandbox):
    from cdp.models import Audience

    other = Audience.objects.create(sandbox=sandbox, name="Retail", kind="account", definition={"subject": "account", "condition": {"type": "compare", "field": "industry", "op": "eq", "value": "Retail"}})
    journey = service.update_journey(valid_journey, audience_id=other.pk)
    assert journey.graph["nodes"]["n1"]["audience_id"] == other.pk and journey.audience == other


def test_duplicate_a_live_journey(valid_journey, marketer, email):
    service.publish_journey(valid_journey)
    valid_journey.refresh_from_db()
    copy = service.duplicate_journey(valid_journey, by=marketer)
    assert (copy.name, copy.state, copy.duplicated_from) == ("Onboarding (copy)", JourneyState.DRAFT, valid_journey)
    assert copy.graph == valid_journey.current_version.graph
    assert copy.graph["nodes"]["n3"]["params"] == {"email_id": email.pk}  # same email asset, by reference
    assert copy.audience == valid_journey.audience and copy.current_version is None
    assert service.duplicate_journey(valid_journey).name == "Onboarding (copy 2)"
    # The copy is editable and publishable on its own.
    assert service.publish_journey(copy).number == 1


def test_viewers_cannot_change_journeys(valid_journey, viewer):
    from django.core.exceptions import PermissionDenied

    with pytest.raises((PermissionDenied, RuleViolation)):
        service.save_graph(valid_journey, valid_journey.graph, by=viewer)
