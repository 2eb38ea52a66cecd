"""Publishing converts a graph into a campaign plan: golden examples for every node type, the
canonical order, the segments of split paths, and the stored rows of a published version."""

import datetime as dt

import pytest

from journeys.graph import structure_errors
from journeys.services.campaigns import plan_for
from journeys.services.journeys import publish_journey

ENTERPRISE = {"type": "compare", "field": "employees", "op": "ge", "value": 1000}
ENTRY = {"start_at": "2027-01-01T00:00:00Z", "end_at": "2027-06-30T00:00:00Z", "allow_reentry": True, "reentry_interval_seconds": 2592000}

# Every node type once: start → split accounts (Enterprise → split people → email → wait →
# listen (opened / timeout) ; other → wait until) → merge → end.
GRAPH = {
    "start": "n1",
    "nodes": {
        "n1": {"type": "start", "audience_id": 12, "next": "n2"},
        "n2": {"type": "split_accounts", "label": "Tier", "paths": [
            {"id": "p1", "label": "Enterprise", "condition": {"rule": ENTERPRISE, "buying_group": {"has": True, "solution_interest_id": 4}}, "next": "n3"},
        ], "other": {"next": "n4"}},
        "n3": {"type": "split_people", "label": "Role", "paths": [
            {"id": "p1", "label": "Deciders", "condition": {"rule": None, "buying_group": {"member": True, "solution_interest_id": 4, "role": "Decision Maker"}}, "next": "n5"},
        ]},
        "n4": {"type": "wait", "until": "2027-01-15T09:00:00Z", "next": "n8"},
        "n5": {"type": "action", "action": "send_email", "params": {"email_id": 3}, "next": "n6"},
        "n6": {"type": "wait", "duration": {"amount": 3, "unit": "days"}, "next": "n7"},
        "n7": {"type": "listen", "event": {"type": "email.opened", "node": "n5"}, "timeout": {"amount": 5, "unit": "days"}, "next": "n8", "timeout_next": "n9"},
        "n8": {"type": "merge", "next": "n10"},
        "n9": {"type": "end"},
        "n10": {"type": "end"},
    },
    "layout": {},
}  # fmt: skip


def requested(node):
    return {"triggers": [{"name": "Campaign is Requested", "source": "journey", "node": node}], "filters": [], "filter_logic": "all"}


GOLDEN = {
    "start": {
        "position": 1, "node": "n1", "type": "start", "name": "01 Account audience", "kind": "trigger",
        "smart_list": {
            "triggers": [{"name": "Added to Audience", "audience_id": 12}],
            "filters": [
                {"name": "Member of Audience", "audience_id": 12},
                {"name": "Date Window", "start_at": "2027-01-01T00:00:00Z", "end_at": "2027-06-30T00:00:00Z"},
                {"name": "Journey Re-entry", "allowed": True, "min_interval_seconds": 2592000},
            ],
            "filter_logic": "all",
        },
        "flow": [{"step": "enroll_account", "people": "account_people"}, {"step": "request_campaign", "node": "n2"}],
        "schedule": {"run_once": "on_publish", "for": "current_members"},
    },
    "split_accounts": {
        "position": 2, "node": "n2", "type": "split_accounts", "name": "02 Tier", "kind": "requested",
        "smart_list": requested("n2"),
        "flow": [{
            "step": "choose_path", "subject": "account", "match": "first",
            "choices": [{"path": "p1", "segment": "n2.p1", "node": "n3"}],
            "default": {"path": "other", "node": "n4"},
        }],
        "schedule": {},
    },
    "split_people": {
        "position": 3, "node": "n3", "type": "split_people", "name": "03 Role", "kind": "requested",
        "smart_list": requested("n3"),
        "flow": [{
            "step": "choose_path", "subject": "person", "match": "first",
            "choices": [{"path": "p1", "segment": "n3.p1", "node": "n5"}],
            "default": {"leave_journey": True},
        }],
        "schedule": {},
    },
    "wait_until": {
        "position": 4, "node": "n4", "type": "wait", "name": "04 Wait", "kind": "requested", "smart_list": requested("n4"),
        "flow": [{"step": "wait", "until": "2027-01-15T09:00:00Z"}, {"step": "request_campaign", "node": "n8"}], "schedule": {},
    },
    "action": {
        "position": 5, "node": "n5", "type": "action", "name": "05 Send email", "kind": "requested", "smart_list": requested("n5"),
        "flow": [{"step": "send_email", "acts_on": "people", "params": {"email_id": 3}}, {"step": "request_campaign", "node": "n6"}],
        "schedule": {},
    },
    "merge": {
        "position": 6, "node": "n8", "type": "merge", "name": "06 Merge paths", "kind": "requested", "smart_list": requested("n8"),
        "flow": [{"step": "request_campaign", "node": "n10"}], "schedule": {},
    },
    "wait": {
        "position": 7, "node": "n6", "type": "wait", "name": "07 Wait", "kind": "requested", "smart_list": requested("n6"),
        "flow": [{"step": "wait", "duration": {"amount": 3, "unit": "days"}}, {"step": "request_campaign", "node": "n7"}], "schedule": {},
    },
    "end": {
        "position": 8, "node": "n10", "type": "end", "name": "08 End", "kind": "requested", "smart_list": requested("n10"),
        "flow": [{"step": "end_journey"}], "schedule": {},
    },
    "listen": {
        "position": 9, "node": "n7", "type": "listen", "name": "09 Listen for an event", "kind": "trigger",
        "smart_list": {
            "triggers": [{"name": "Opens Email", "event": "email.opened", "node": "n5"}],
            "filters": [{"name": "Waiting at Node", "node": "n7"}],
            "filter_logic": "all",
        },
        "flow": [{"step": "request_campaign", "node": "n8"}],
        "schedule": {"timeout": {"after": {"amount": 5, "unit": "days"}, "request_campaign": "n9"}},
    },
}  # fmt: skip
GOLDEN_SEGMENTS = [
    {
        "id": "n2.p1", "name": "Tier · Enterprise", "subject": "account", "node": "n2", "path": "p1",
        "definition": {"subject": "account", "condition": ENTERPRISE}, "buying_group": {"has": True, "solution_interest_id": 4},
    },
    {
        "id": "n3.p1", "name": "Role · Deciders", "subject": "person", "node": "n3", "path": "p1",
        "definition": None, "buying_group": {"member": True, "solution_interest_id": 4, "role": "Decision Maker"},
    },
]  # fmt: skip


def test_the_example_graph_is_well_formed():
    assert structure_errors(GRAPH) == []


@pytest.mark.parametrize("example", sorted(GOLDEN))
def test_golden_campaign_per_node_type(example):
    campaigns = {c["node"]: c for c in plan_for(GRAPH, ENTRY)["campaigns"]}
    assert campaigns[GOLDEN[example]["node"]] == GOLDEN[example]


def test_campaigns_come_in_canonical_order_one_per_node():
    plan = plan_for(GRAPH, ENTRY)
    assert [c["node"] for c in plan["campaigns"]] == ["n1", "n2", "n3", "n4", "n5", "n8", "n6", "n10", "n7", "n9"]
    assert plan["campaigns"][-1]["name"] == "10 End"


def test_golden_segments():
    assert plan_for(GRAPH, ENTRY)["segments"] == GOLDEN_SEGMENTS


def test_every_action_maps_to_a_step_with_who_it_acts_on():
    graph = {
        "start": "n1",
        "nodes": {
            "n1": {"type": "start", "audience_id": 1, "next": "n2"},
            "n2": {"type": "action", "action": "update_buying_group_stage", "params": {"stage": "Evaluate", "solution_interest_id": 4}, "next": "n3"},
            "n3": {"type": "action", "action": "interesting_moment", "params": {"type": "milestone", "description": "Entered"}, "next": "n4"},
            "n4": {"type": "end"},
        },
    }  # fmt: skip
    steps = [c["flow"][0] for c in plan_for(graph, ENTRY)["campaigns"][1:3]]
    assert steps == [
        {"step": "update_buying_group_stage", "acts_on": "account", "params": {"solution_interest_id": 4, "stage": "Evaluate"}},
        {"step": "interesting_moment", "acts_on": "people", "params": {"description": "Entered", "type": "milestone"}},
    ]


def test_the_plan_is_deterministic():
    assert plan_for(GRAPH, ENTRY) == plan_for({**GRAPH, "nodes": dict(reversed(list(GRAPH["nodes"].items())))}, ENTRY)


def test_publishing_stores_the_plan_of_the_frozen_version(valid_journey):
    valid_journey.allow_reentry, valid_journey.reentry_interval = True, dt.timedelta(days=7)
    valid_journey.save()
    version = publish_journey(valid_journey)
    stored = [
        {"position": c.position, "node": c.node_id, "type": c.node_type, "name": c.name, "kind": c.kind,
         "smart_list": c.smart_list, "flow": c.flow, "schedule": c.schedule}
        for c in version.plan.campaigns.order_by("position")
    ]  # fmt: skip
    entry = {
        "start_at": valid_journey.start_at.isoformat().replace("+00:00", "Z"),
        "end_at": valid_journey.end_at.isoformat().replace("+00:00", "Z"),
        "allow_reentry": True,
        "reentry_interval_seconds": 7 * 86400,
    }
    expected = plan_for(version.graph, entry)
    assert stored == expected["campaigns"]
    assert version.plan.segments == expected["segments"]
    assert [c.sandbox_id for c in version.plan.campaigns.all()] == [valid_journey.sandbox_id] * 6
