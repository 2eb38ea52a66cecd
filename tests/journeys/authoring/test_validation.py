"""Validation against the sandbox's data: the start audience, split conditions (parsed by the one
segmentation parser, errors with their JSON path), buying group references, action parameters
(emails, lists, fields, journeys of this sandbox only), and the end date."""

import datetime as dt

import pytest

from cdp.models import Audience, MarketingList
from journeys.services.buying_groups import publish_roles_template, publish_stages_model, save_roles_template, save_solution_interest, save_stages_model
from journeys.services.emails import save_email
from journeys.services.journeys import validate_journey

from .conftest import sample_graph


@pytest.fixture
def interest(sandbox):
    template = publish_roles_template(save_roles_template(sandbox, name="Roles", roles=[{"role": "Decision Maker", "weight": 100, "required": True}]))
    stages = publish_stages_model(
        save_stages_model(
            sandbox, name="Stages",
            stages=[{"name": "Discover", "kind": "entry"}, {"name": "Evaluate"}, {"name": "Purchase", "kind": "success"}],
            transitions=[{"from": "Discover", "to": "Evaluate"}, {"from": "Evaluate", "to": "Purchase"}],
        )
    )  # fmt: skip
    return save_solution_interest(sandbox, name="Analytics", roles_template=template, stages_model=stages)


def errors_of(journey, graph):
    return [(e["node"], e["code"]) for e in validate_journey(journey, graph)]


def with_node(graph, node_id, node):
    graph = {**graph, "nodes": {**graph["nodes"], node_id: node}}
    return graph


def test_the_sample_journey_is_valid(valid_journey):
    assert validate_journey(valid_journey) == []


def test_start_needs_an_account_audience_of_this_sandbox(valid_journey, person_audience, other_sandbox):
    graph = valid_journey.graph
    start = graph["nodes"]["n1"]
    assert ("n1", "start_audience") in errors_of(valid_journey, with_node(graph, "n1", {**start, "audience_id": None}))
    errors = validate_journey(valid_journey, with_node(graph, "n1", {**start, "audience_id": person_audience.pk}))
    assert errors == [{"node": "n1", "code": "start_audience", "path": "$.nodes.n1.audience_id", "message": '"CTOs" is a person audience; the start needs an account audience.'}]
    foreign = Audience.objects.create(sandbox=other_sandbox, name="Theirs", kind="account", definition={"subject": "account", "condition": {"type": "compare", "field": "name", "op": "eq", "value": "x"}})
    assert ("n1", "start_audience") in errors_of(valid_journey, with_node(graph, "n1", {**start, "audience_id": foreign.pk}))


def test_a_condition_that_does_not_parse_is_reported_with_its_json_path(valid_journey):
    graph = valid_journey.graph
    split = graph["nodes"]["n2"]
    bad_rule = {"type": "and", "conditions": [{"type": "compare", "field": "employees", "op": "ge", "value": 10}, {"type": "compare", "field": "nosuchfield", "op": "eq", "value": 1}]}
    bad = {**split, "paths": [{**split["paths"][0], "condition": {"rule": bad_rule, "buying_group": None}}]}
    [error] = validate_journey(valid_journey, with_node(graph, "n2", bad))
    assert (error["node"], error["code"]) == ("n2", "invalid_condition")
    assert error["path"].startswith("$.nodes.n2.paths[0].condition.rule.conditions[1]")
    assert "nosuchfield" in error["message"]


def test_people_split_conditions_read_person_fields(valid_journey):
    graph = valid_journey.graph
    people = {
        "type": "split_people",
        "paths": [{"id": "p1", "condition": {"rule": {"type": "compare", "field": "jobTitle", "op": "eq", "value": "CTO"}, "buying_group": None}, "next": "n5"}],
    }
    graph = with_node(graph, "n2", people)
    del graph["nodes"]["n6"]
    assert validate_journey(valid_journey, graph) == [
        {"node": "n3", "code": "unreachable", "message": "No path from the start leads to this node: connect it or delete it."},
        {"node": "n4", "code": "unreachable", "message": "No path from the start leads to this node: connect it or delete it."},
    ]
    # An account field on a people split doesn't read.
    people["paths"][0]["condition"]["rule"] = {"type": "compare", "field": "industry", "op": "eq", "value": "x"}
    assert ("n2", "invalid_condition") in errors_of(valid_journey, graph)


def test_in_segment_references_must_be_of_this_sandbox(valid_journey, other_sandbox):
    graph = valid_journey.graph
    split = graph["nodes"]["n2"]
    rule = {"type": "inSegment", "audience": "999999"}
    bad = {**split, "paths": [{**split["paths"][0], "condition": {"rule": rule, "buying_group": None}}]}
    assert ("n2", "unknown_audience") in errors_of(valid_journey, with_node(graph, "n2", bad))


def test_buying_group_conditions(valid_journey, interest):
    graph = valid_journey.graph
    split = graph["nodes"]["n2"]

    def with_group(group):
        return with_node(graph, "n2", {**split, "paths": [{**split["paths"][0], "condition": {"rule": None, "buying_group": group}}]})

    assert errors_of(valid_journey, with_group({"has": True, "solution_interest_id": interest.pk, "status": "full", "stage": "Evaluate"})) == []
    assert ("n2", "unknown_solution_interest") in errors_of(valid_journey, with_group({"has": True, "solution_interest_id": 999999}))
    assert ("n2", "unknown_stage") in errors_of(valid_journey, with_group({"solution_interest_id": interest.pk, "stage": "Negotiate"}))
    assert ("n2", "unknown_status") in errors_of(valid_journey, with_group({"has": True, "status": "sleeping"}))
    assert ("n2", "invalid_condition") in errors_of(valid_journey, with_group({"member": True}))  # people key on an account split


def test_action_parameters_must_exist_in_this_sandbox(valid_journey, interest, other_sandbox):
    graph = valid_journey.graph
    theirs = save_email(other_sandbox, name="Theirs", subject="Hi", body_html="<p>x</p>")

    def with_action(action, **params):
        return with_node(graph, "n3", {"type": "action", "action": action, "params": params, "next": "n4"})

    assert errors_of(valid_journey, with_action("send_email", email_id=theirs.pk)) == [("n3", "unknown_email")]
    assert errors_of(valid_journey, with_action("update_buying_group_stage", solution_interest_id=interest.pk, stage="Evaluate")) == []
    assert errors_of(valid_journey, with_action("update_buying_group_stage", solution_interest_id=interest.pk, stage="Won")) == [("n3", "unknown_stage")]
    assert errors_of(valid_journey, with_action("update_buying_group_status", solution_interest_id=999999, status="full")) == [("n3", "unknown_solution_interest")]
    assert errors_of(valid_journey, with_action("assign_buying_group_member", solution_interest_id=interest.pk, role="Decision Maker")) == []
    assert errors_of(valid_journey, with_action("assign_buying_group_member", solution_interest_id=interest.pk, role="Janitor")) == [("n3", "unknown_role")]
    assert errors_of(valid_journey, with_action("add_to_list", list_id=999999)) == [("n3", "unknown_list")]
    mine = MarketingList.objects.create(sandbox=valid_journey.sandbox, external_id="L1", name="Webinar")
    assert errors_of(valid_journey, with_action("remove_from_list", list_id=mine.pk)) == []
    assert errors_of(valid_journey, with_action("update_person_field", field="shoe_size", value="9")) == [("n3", "unknown_field")]
    assert errors_of(valid_journey, with_action("update_person_field", field="job_title", value="CTO")) == []
    assert errors_of(valid_journey, with_action("update_account_field", field="attributes.tier", value="gold")) == []
    assert errors_of(valid_journey, with_action("add_to_journey", journey_id=valid_journey.pk)) == [("n3", "invalid_param")]
    assert errors_of(valid_journey, with_action("send_email")) == [("n3", "missing_param")]
    assert errors_of(valid_journey, with_action("update_buying_group_stage", stage="Evaluate")) == [("n3", "missing_param")]


def test_listen_references(valid_journey, interest):
    graph = valid_journey.graph
    listen = {"type": "listen", "event": {"type": "buying_group.changed", "solution_interest_id": 999999}, "next": "n5"}
    assert errors_of(valid_journey, with_node(graph, "n4", listen)) == [("n4", "unknown_solution_interest")]
    listen["event"] = {"type": "data.changed", "field": "person.job_title"}
    assert errors_of(valid_journey, with_node(graph, "n4", listen)) == []
    listen["event"] = {"type": "email.clicked", "node": "n3"}
    assert errors_of(valid_journey, with_node(graph, "n4", listen)) == []


def test_waits_beyond_the_journey_end_and_ended_journeys(make_journey, account_audience, email):
    journey = make_journey(graph=sample_graph(account_audience.pk, email.pk), days=2)
    assert [(e["node"], e["code"]) for e in validate_journey(journey)] == [("n4", "wait_beyond_end")]
    journey.start_at, journey.end_at = journey.start_at - dt.timedelta(days=30), journey.start_at - dt.timedelta(days=1)
    assert (None, "journey_ended") in [(e["node"], e["code"]) for e in validate_journey(journey)]
