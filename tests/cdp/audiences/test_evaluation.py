"""Audience evaluation: full and incremental runs, dependency order, state, guardrails."""

import datetime as dt

import pytest

from cdp.choices import EvaluationState, MembershipStatus
from cdp.exceptions import RuleViolation
from cdp.models import Account, Audience, AudienceEvaluation, AudienceMember, Person
from cdp.services import audiences as audience_service
from cdp.services.audiences import audiences_due, evaluate_changes, evaluate_in_full, save_audience
from tests.cdp.ingest_helpers import ingest


def compare(field, op, value=None):
    node = {"type": "compare", "field": field, "op": op}
    if value is not None:
        node["value"] = value
    return node


def person_audience(condition):
    return {"subject": "person", "condition": condition}


CTO = person_audience(compare("jobTitle", "eq", "CTO"))
ACCOUNTS_WITH_A_CTO = {
    "subject": "account",
    "condition": {
        "type": "count",
        "collection": "accountPersons",
        "where": compare("person.jobTitle", "eq", "CTO"),
        "op": "ge",
        "value": 1,
    },
}


def realized(audience):
    return set(
        AudienceMember.objects.filter(audience=audience, status=MembershipStatus.REALIZED).values_list("member_id", flat=True)
    )


def person_ids(sandbox, *emails):
    return {p.pk for p in Person.objects.for_sandbox(sandbox).filter(email__in=emails)}


@pytest.fixture
def live(transactional_db):
    """Real commits, so tasks queued on commit run as they would in production (inline in tests)."""


def test_saving_an_audience_evaluates_it(sandbox, live):
    ingest(sandbox, "person", [{"email": "a@x.io", "job_title": "CTO"}, {"email": "b@x.io", "job_title": "CFO"}])
    audience = save_audience(sandbox, name="CTOs", definition=CTO)
    audience.refresh_from_db()
    assert realized(audience) == person_ids(sandbox, "a@x.io")
    assert (audience.state, audience.size, audience.last_entered) == (EvaluationState.IDLE, 1, 1)
    assert audience.last_full_evaluation_at is not None and audience.last_duration_ms is not None
    assert AudienceEvaluation.objects.get(audience=audience).mode == "full"


def test_ingest_updates_person_and_account_audiences_incrementally(sandbox, live):
    ingest(sandbox, "person", [{"email": "a@acme.com", "job_title": "CFO", "account.domain": "acme.com"}])
    ctos = save_audience(sandbox, name="CTOs", definition=CTO)
    accounts = save_audience(sandbox, name="Accounts with a CTO", definition=ACCOUNTS_WITH_A_CTO)
    assert realized(ctos) == set() and realized(accounts) == set()

    ingest(sandbox, "person", [{"email": "a@acme.com", "job_title": "CTO"}])

    acme = Account.objects.for_sandbox(sandbox).get(domain="acme.com")
    assert realized(ctos) == person_ids(sandbox, "a@acme.com")
    assert realized(accounts) == {acme.pk}  # account audiences too, within the same ingest
    last = AudienceEvaluation.objects.filter(audience=accounts).first()
    assert (last.mode, last.candidates, last.entered) == ("incremental", 1, 1)

    ingest(sandbox, "person", [{"email": "a@acme.com", "job_title": "CEO"}])
    assert realized(ctos) == set() and realized(accounts) == set()
    assert AudienceMember.objects.get(audience=accounts).status == MembershipStatus.EXITED


def test_in_segment_audiences_follow_the_audiences_they_read(sandbox, live):
    ingest(sandbox, "person", [{"email": "a@x.io", "job_title": "CTO", "country": "NO"}])
    ctos = save_audience(sandbox, name="CTOs", definition=CTO)
    nordic_ctos = save_audience(
        sandbox,
        name="Nordic CTOs",
        definition=person_audience(
            {"type": "and", "conditions": [{"type": "inSegment", "audience": str(ctos.pk)}, compare("country", "in", ["NO", "SE"])]}
        ),
    )
    assert nordic_ctos.depends_on.get() == ctos
    assert realized(nordic_ctos) == person_ids(sandbox, "a@x.io")

    ingest(sandbox, "person", [{"email": "a@x.io", "job_title": "Designer"}])
    assert realized(ctos) == set() and realized(nordic_ctos) == set()


def test_dependency_order_for_a_full_run(sandbox):
    ingest(sandbox, "person", [{"email": "a@x.io", "job_title": "CTO"}])
    first = Audience.objects.create(sandbox=sandbox, name="first", definition=CTO)
    second = Audience.objects.create(
        sandbox=sandbox, name="second", definition=person_audience({"type": "inSegment", "audience": str(first.pk)})
    )
    second.depends_on.add(first)
    evaluations = evaluate_in_full(sandbox, [second.pk, first.pk])
    assert [e.audience_id for e in evaluations] == [first.pk, second.pk]
    assert realized(second) == person_ids(sandbox, "a@x.io")


def test_incremental_equals_full_after_changes(sandbox, live):
    ingest(sandbox, "person", [{"email": f"p{n}@x.io", "job_title": "CTO" if n % 2 else "CFO"} for n in range(10)])
    audience = save_audience(sandbox, name="CTOs", definition=CTO)
    ingest(sandbox, "person", [{"email": f"p{n}@x.io", "job_title": "CTO" if n % 3 else "VP"} for n in range(0, 10, 2)])
    incremental = realized(audience)
    evaluate_in_full(sandbox, [audience.pk])
    assert realized(audience) == incremental == set(Person.objects.for_sandbox(sandbox).filter(job_title="CTO").values_list("pk", flat=True))


def test_invalid_definitions_name_the_json_path(sandbox):
    with pytest.raises(RuleViolation) as error:
        save_audience(sandbox, name="Bad", definition=person_audience(compare("favouriteColour", "eq", "red")))
    assert error.value.rule == "invalid_definition" and "favouriteColour" in error.value.message


def test_in_segment_of_another_sandbox_is_refused(sandbox, other_sandbox):
    elsewhere = Audience.objects.create(sandbox=other_sandbox, name="x", definition=CTO)
    with pytest.raises(RuleViolation, match="which this sandbox does not have"):
        save_audience(sandbox, name="Leak", definition=person_audience({"type": "inSegment", "audience": str(elsewhere.pk)}))


def test_guardrails_are_per_sandbox_and_configurable(sandbox, other_sandbox):
    sandbox.limits = {"audiences": 2, "account_audiences": 1}
    sandbox.save()
    save_audience(sandbox, name="one", definition=ACCOUNTS_WITH_A_CTO)
    with pytest.raises(RuleViolation) as error:
        save_audience(sandbox, name="two", definition=ACCOUNTS_WITH_A_CTO)
    assert error.value.rule == "account_audience_limit"
    save_audience(sandbox, name="two", definition=CTO)
    with pytest.raises(RuleViolation, match="limit of 2 audiences"):
        save_audience(sandbox, name="three", definition=CTO)
    save_audience(other_sandbox, name="one", definition=ACCOUNTS_WITH_A_CTO)
    save_audience(other_sandbox, name="two", definition=ACCOUNTS_WITH_A_CTO)


def test_a_failing_evaluation_is_recorded_and_visible(sandbox, monkeypatch):
    audience = Audience.objects.create(sandbox=sandbox, name="CTOs", definition=CTO)

    def broken(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr("cdp.segmentation.compiler.compile_audience", broken)
    with pytest.raises(RuntimeError):
        audience_service.evaluate_audience(audience)
    audience.refresh_from_db()
    assert audience.state == EvaluationState.FAILED and "database went away" in audience.last_error
    assert audience.failure_count == 1
    assert AudienceEvaluation.objects.get(audience=audience).error


def test_due_audiences_include_scheduled_swept_and_stuck_ones(sandbox):
    now = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)
    make = lambda name, **kw: Audience.objects.create(sandbox=sandbox, name=name, definition=CTO, **kw)  # noqa: E731
    make("fresh", state=EvaluationState.IDLE, last_full_evaluation_at=now - dt.timedelta(hours=1))
    daily_due = make("due", state=EvaluationState.IDLE, last_full_evaluation_at=now - dt.timedelta(days=1, minutes=1))
    window = make("window", state=EvaluationState.IDLE, has_time_window=True, last_full_evaluation_at=now - dt.timedelta(minutes=20))
    stuck = make("stuck", state=EvaluationState.EVALUATING, evaluation_started_at=now - dt.timedelta(hours=2))
    make("running", state=EvaluationState.EVALUATING, evaluation_started_at=now - dt.timedelta(minutes=1))
    never = make("never")
    hourly = make("hourly", state=EvaluationState.IDLE, evaluation_interval=dt.timedelta(hours=2),
                  last_full_evaluation_at=now - dt.timedelta(hours=3))
    make("weekly", state=EvaluationState.IDLE, evaluation_interval=dt.timedelta(days=7),
                  last_full_evaluation_at=now - dt.timedelta(days=2))
    due = {pk for _, pk in audiences_due(now)}
    assert due == {daily_due.pk, window.pk, stuck.pk, never.pk, hourly.pk}  # not fresh, running nor weekly


def test_a_merge_moves_audience_membership_to_the_survivor(sandbox, live):
    ecid = "3" * 38
    ingest(sandbox, "person", [{"email": "a@x.io", "job_title": "CTO"}, {"identity.ecid": ecid, "job_title": "CTO"}])
    audience = save_audience(sandbox, name="CTOs", definition=CTO)
    assert len(realized(audience)) == 2
    ingest(sandbox, "person", [{"email": "a@x.io", "identity.ecid": ecid}])
    survivor = Person.objects.for_sandbox(sandbox).get()
    assert realized(audience) == {survivor.pk}
    assert AudienceMember.objects.filter(audience=audience).count() == 1
