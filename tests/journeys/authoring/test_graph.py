"""The graph document's structural checks and the guarded editing operations (journeys/graph.py):
pure functions, no database."""

import datetime as dt

import pytest

from journeys import graph as g
from journeys.graph import GraphEditError, structure_errors

START = dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
END = START + dt.timedelta(days=30)


def doc(**nodes):
    return {"start": "n1", "nodes": {"n1": {"type": "start", "audience_id": 1, "next": "n2"}, **nodes}, "layout": {}}


def codes(graph, **kwargs):
    return sorted(((e.node, e.code) for e in structure_errors(graph, **kwargs)), key=str)


def split(kind="split_accounts", paths=(("p1", "n3"),), other=None):
    node = {"type": kind, "paths": [{"id": pid, "label": pid, "condition": {"rule": None, "buying_group": None}, "next": nxt} for pid, nxt in paths]}
    if other:
        node["other"] = {"next": other}
    return node


def test_a_linear_journey_is_valid():
    assert codes(doc(n2={"type": "wait", "duration": {"amount": 2, "unit": "days"}, "next": "n3"}, n3={"type": "end"})) == []


def test_not_a_document():
    assert [e.code for e in structure_errors({"nodes": []})] == ["invalid_graph"]
    assert [e.code for e in structure_errors("nope")] == ["invalid_graph"]


def test_missing_start_and_extra_start():
    graph = doc(n2={"type": "end"})
    graph["start"] = "n9"
    assert (None, "missing_start") in codes(graph)
    assert ("n3", "extra_start") in codes(doc(n2={"type": "end"}, n3={"type": "start", "next": "n2"}))


def test_unknown_node_type():
    assert ("n2", "unknown_node_type") in codes(doc(n2={"type": "teleport"}))


def test_missing_and_unknown_next():
    assert ("n2", "missing_next") in codes(doc(n2={"type": "action", "action": "sales_alert", "params": {"to": "account_owner", "subject": "x"}}, n3={"type": "end"}))
    errors = structure_errors(doc(n2={"type": "merge", "next": "n42"}))
    unknown = [e for e in errors if e.code == "unknown_next"]
    assert unknown[0].node == "n2" and unknown[0].path == "$.nodes.n2.next"


def test_unreachable_nodes_are_named():
    assert ("n3", "unreachable") in codes(doc(n2={"type": "end"}, n3={"type": "end"}))


def test_cycles_are_found():
    graph = doc(
        n2={"type": "wait", "duration": {"amount": 1, "unit": "days"}, "next": "n3"},
        n3={"type": "wait", "duration": {"amount": 1, "unit": "days"}, "next": "n2"},
    )
    found = codes(graph)
    assert any(code == "cycle" for _, code in found)
    assert (None, "no_end") in found


def test_split_path_limit_and_empty_split():
    paths = tuple((f"p{i}", f"e{i}") for i in range(26))
    graph = doc(n2=split(paths=paths), **{f"e{i}": {"type": "end"} for i in range(26)})
    assert ("n2", "too_many_paths") in codes(graph)
    graph = doc(n2=split(paths=paths[:25]), **{f"e{i}": {"type": "end"} for i in range(25)})
    assert codes(graph) == []
    assert ("n2", "no_paths") in codes(doc(n2={"type": "split_people", "paths": [], "other": {"next": "n3"}}, n3={"type": "end"}))


def test_duplicate_path_ids_and_missing_path_next():
    graph = doc(n2=split(paths=(("p1", "n3"), ("p1", None))), n3={"type": "end"})
    found = structure_errors(graph)
    assert {e.code for e in found} >= {"duplicate_path", "missing_next"}
    assert [e.path for e in found if e.code == "missing_next"] == ["$.nodes.n2.paths[1].next"]


def test_merge_needs_two_ways_in():
    assert ("n2", "merge_incoming") in codes(doc(n2={"type": "merge", "next": "n3"}, n3={"type": "end"}))
    merged = doc(n2=split(paths=(("p1", "n3"),), other="n3"), n3={"type": "merge", "next": "n4"}, n4={"type": "end"})
    assert codes(merged) == []


def test_wait_must_last_and_be_readable():
    assert ("n2", "wait_not_positive") in codes(doc(n2={"type": "wait", "duration": {"amount": 0, "unit": "days"}, "next": "n3"}, n3={"type": "end"}))
    assert ("n2", "wait_invalid") in codes(doc(n2={"type": "wait", "duration": {"amount": 2, "unit": "fortnights"}, "next": "n3"}, n3={"type": "end"}))
    assert ("n2", "wait_invalid") in codes(doc(n2={"type": "wait", "until": "soon", "next": "n3"}, n3={"type": "end"}))
    assert ("n2", "wait_invalid") in codes(doc(n2={"type": "wait", "next": "n3"}, n3={"type": "end"}))


def test_waits_beyond_the_end_date_add_up_along_the_path():
    graph = doc(
        n2={"type": "wait", "duration": {"amount": 3, "unit": "weeks"}, "next": "n3"},
        n3={"type": "wait", "duration": {"amount": 10, "unit": "days"}, "next": "n4"},
        n4={"type": "end"},
    )
    assert codes(graph, start_at=START, end_at=END) == [("n3", "wait_beyond_end")]
    graph["nodes"]["n3"]["duration"] = {"amount": 8, "unit": "days"}
    assert codes(graph, start_at=START, end_at=END) == []
    until = doc(n2={"type": "wait", "until": "2027-03-01T00:00:00Z", "next": "n3"}, n3={"type": "end"})
    assert codes(until, start_at=START, end_at=END) == [("n2", "wait_beyond_end")]


def test_listen_rules():
    base = {"type": "listen", "event": {"type": "email.opened"}, "next": "n3"}
    assert codes(doc(n2=base, n3={"type": "end"})) == []
    no_path = {**base, "timeout": {"amount": 2, "unit": "days"}}
    assert ("n2", "listen_timeout_path") in codes(doc(n2=no_path, n3={"type": "end"}))
    with_path = {**no_path, "timeout_next": "n4"}
    assert codes(doc(n2=with_path, n3={"type": "end"}, n4={"type": "end"})) == []
    path_without_timeout = {**base, "timeout_next": "n4"}
    assert ("n2", "listen_timeout_path") in codes(doc(n2=path_without_timeout, n3={"type": "end"}, n4={"type": "end"}))
    assert ("n2", "listen_event") in codes(doc(n2={**base, "event": {"type": "data.changed"}}, n3={"type": "end"}))
    assert ("n2", "listen_event") in codes(doc(n2={**base, "event": {"type": "email.opened", "node": "n3"}}, n3={"type": "end"}))


def test_action_shape():
    assert ("n2", "unknown_action") in codes(doc(n2={"type": "action", "action": "launch_rocket", "next": "n3"}, n3={"type": "end"}))
    missing = structure_errors(doc(n2={"type": "action", "action": "update_buying_group_stage", "params": {"stage": "Evaluate"}, "next": "n3"}, n3={"type": "end"}))
    assert [(e.code, e.path) for e in missing] == [("missing_param", "$.nodes.n2.params.solution_interest_id")]
    alert = doc(n2={"type": "action", "action": "sales_alert", "params": {"to": "account_owner"}, "next": "n3"}, n3={"type": "end"})
    assert ("n2", "missing_param") in codes(alert)  # no email and no subject


def test_a_person_level_action_before_any_people_split_is_fine():
    graph = doc(n2={"type": "action", "action": "add_to_list", "params": {"list_id": 4}, "next": "n3"}, n3={"type": "end"})
    assert codes(graph) == []


# --------------------------------------------------------------------------------- editing
def test_new_graph_and_add_node_in_between():
    graph = g.new_graph(7)
    graph, wait = g.add_node(graph, "n1", "wait", config={"duration": {"amount": 1, "unit": "days"}})
    assert graph["nodes"]["n1"]["next"] == wait
    assert graph["nodes"][wait]["next"] == "n2"
    assert codes(graph) == []


def test_adding_a_split_keeps_the_rest_on_its_first_path():
    graph, wait = g.add_node(g.new_graph(7), "n1", "wait", config={"duration": {"amount": 1, "unit": "days"}})
    graph, split_id = g.add_node(graph, "n1", "split_accounts")
    node = graph["nodes"][split_id]
    assert node["paths"][0]["next"] == wait
    assert graph["nodes"][node["other"]["next"]] == {"type": "end"}
    graph, path_id = g.add_path(graph, split_id, label="SMB")
    assert path_id == "p2" and graph["nodes"][graph["nodes"][split_id]["paths"][1]["next"]]["type"] == "end"
    assert codes(graph) == []


def test_add_path_limit():
    graph, split_id = g.add_node(g.new_graph(7), "n1", "split_people")
    for _ in range(24):
        graph, _ = g.add_path(graph, split_id)
    with pytest.raises(GraphEditError, match="at most 25"):
        g.add_path(graph, split_id)


def test_an_end_only_replaces_an_end():
    graph, wait = g.add_node(g.new_graph(7), "n1", "wait", config={"duration": {"amount": 1, "unit": "days"}})
    with pytest.raises(GraphEditError):
        g.add_node(graph, "n1", "end")
    same, end_id = g.add_node(graph, wait, "end")
    assert end_id == "n2" and same["nodes"] == graph["nodes"]
    with pytest.raises(GraphEditError):
        g.add_node(graph, "n1", "start")


def test_delete_node_reconnects_and_guards():
    graph, wait = g.add_node(g.new_graph(7), "n1", "wait", config={"duration": {"amount": 1, "unit": "days"}})
    assert g.delete_node(graph, wait)["nodes"]["n1"]["next"] == "n2"
    with pytest.raises(GraphEditError, match="start"):
        g.delete_node(graph, "n1")
    with pytest.raises(GraphEditError, match="end"):
        g.delete_node(graph, "n2")


def _split_with_merge():
    """n1 → split(p1 → email, p2 → wait) → merge → end."""
    graph, split_id = g.add_node(g.new_graph(7), "n1", "split_accounts")
    graph = g.set_other_path(graph, split_id, False)
    graph, email = g.add_node(graph, split_id, "action", slot="path:p1", config={"action": "send_email", "params": {"email_id": 1}})
    graph, merge = g.add_node(graph, email, "merge")
    graph, _ = g.add_path(graph, split_id)
    graph, wait = g.add_node(graph, split_id, "wait", slot="path:p2", config={"duration": {"amount": 1, "unit": "days"}})
    graph = g.connect(graph, wait, "next", merge)
    return graph, split_id, email, wait, merge


def test_connect_to_a_merge_prunes_the_old_end():
    graph, split_id, email, wait, merge = _split_with_merge()
    assert codes(graph) == []
    assert {n["type"] for n in graph["nodes"].values()} == {"start", "split_accounts", "action", "wait", "merge", "end"}
    assert len([n for n in graph["nodes"].values() if n["type"] == "end"]) == 1


def test_connect_guardrails():
    graph, split_id, email, wait, merge = _split_with_merge()
    with pytest.raises(GraphEditError, match="loop"):
        g.connect(graph, merge, "next", split_id)
    with pytest.raises(GraphEditError, match="merge"):
        g.connect(graph, wait, "next", email)
    with pytest.raises(GraphEditError, match="start"):
        g.connect(graph, wait, "next", "n1")


def test_deleting_a_split_removes_its_paths_up_to_the_merge():
    graph, split_id, email, wait, merge = _split_with_merge()
    with pytest.raises(GraphEditError, match="join"):
        g.delete_node(graph, merge)
    after = g.delete_node(graph, split_id)
    end = graph["nodes"][merge]["next"]
    assert after["nodes"]["n1"]["next"] == end
    assert set(after["nodes"]) == {"n1", end}
    assert codes(after) == []


def test_deleting_a_split_without_merge_leaves_an_end():
    graph, split_id = g.add_node(g.new_graph(7), "n1", "split_people")
    graph, email = g.add_node(graph, split_id, "action", slot="path:p1", config={"action": "send_email", "params": {"email_id": 1}})
    after = g.delete_node(graph, split_id)
    assert after["nodes"][after["nodes"]["n1"]["next"]]["type"] == "end"
    assert email not in after["nodes"] and len(after["nodes"]) == 2


def test_delete_path_and_listen_timeout_branch():
    graph, split_id, email, wait, merge = _split_with_merge()
    after = g.delete_path(graph, split_id, "p2")
    assert wait not in after["nodes"]
    assert (merge, "merge_incoming") in codes(after)  # the merge now joins nothing
    with pytest.raises(GraphEditError, match="at least one path"):
        g.delete_path(after, split_id, "p1")

    graph, listen = g.add_node(g.new_graph(7), "n1", "listen", config={"event": {"type": "email.opened"}, "timeout": {"amount": 1, "unit": "days"}})
    timeout_end = graph["nodes"][listen]["timeout_next"]
    assert codes(graph) == []
    after = g.delete_node(graph, listen)
    assert timeout_end not in after["nodes"] and after["nodes"]["n1"]["next"] == "n2"
    cleared = g.update_node(graph, listen, {"timeout": None})
    assert "timeout_next" not in cleared["nodes"][listen] and timeout_end not in cleared["nodes"]


def test_move_swaps_neighbouring_steps():
    graph, wait = g.add_node(g.new_graph(7), "n1", "wait", config={"duration": {"amount": 1, "unit": "days"}})
    graph, email = g.add_node(graph, wait, "action", config={"action": "send_email", "params": {"email_id": 1}})
    moved = g.move_node(graph, email, "up")
    assert [moved["nodes"]["n1"]["next"], moved["nodes"][email]["next"], moved["nodes"][wait]["next"]] == [email, wait, "n2"]
    assert g.move_node(moved, email, "down") == {**graph, "layout": {}}
    with pytest.raises(GraphEditError):
        g.move_node(graph, wait, "up")  # the start is above it


def test_update_path_and_node_keep_connections():
    graph, split_id = g.add_node(g.new_graph(7), "n1", "split_accounts")
    condition = {"rule": {"type": "compare", "field": "industry", "op": "eq", "value": "Retail"}, "buying_group": None}
    graph = g.update_path(graph, split_id, "p1", label="Retail", condition=condition)
    graph = g.update_node(graph, split_id, {"label": "Industry", "paths": [], "type": "end"})
    node = graph["nodes"][split_id]
    assert node["label"] == "Industry" and node["type"] == "split_accounts"
    assert node["paths"][0]["label"] == "Retail" and node["paths"][0]["condition"] == condition


def test_deleting_an_outer_split_removes_a_nested_split_too():
    """split A (p1 → split B (p1 → email, p2 → wait) → merge M1 → wait; p2 → email) → merge M2 → end."""
    graph, outer, email, wait, inner_merge = _split_with_merge()
    graph, after_inner = g.add_node(graph, inner_merge, "wait", config={"duration": {"amount": 2, "unit": "days"}})
    graph, outer_split = g.add_node(graph, "n1", "split_accounts")
    graph = g.set_other_path(graph, outer_split, False)
    graph, outer_merge = g.add_node(graph, after_inner, "merge")
    graph, _ = g.add_path(graph, outer_split)
    graph, other_email = g.add_node(graph, outer_split, "action", slot="path:p2", config={"action": "send_email", "params": {"email_id": 2}})
    graph = g.connect(graph, other_email, "next", outer_merge)
    assert codes(graph) == []

    after = g.delete_node(graph, outer_split)
    end = graph["nodes"][outer_merge]["next"]
    assert after["nodes"]["n1"]["next"] == end and set(after["nodes"]) == {"n1", end}

    inner_deleted = g.delete_node(graph, outer)  # the inner split: its paths meet at M1, which goes too
    assert inner_deleted["nodes"][outer_split]["paths"][0]["next"] == after_inner
    assert codes(inner_deleted) == []
