"""The journey graph document: the contract between authoring (this module, the canvas, publish)
and the runtime (journeys.services.runtime), stored on Journey.graph / JourneyVersion.graph:

    {"start": "n1",
     "nodes": {"n1": {"type": "start", "audience_id": 12, "next": "n2"},
               "n2": {"type": "split_accounts", "label": "Tier",
                      "paths": [{"id": "p1", "label": "Enterprise",
                                 "condition": {"rule": <rule tree node>|null, "buying_group": {…}|null},
                                 "next": "n3"}],
                      "other": {"next": "n4"}},          # omitted: no "other accounts" path
               "n3": {"type": "split_people", …same shape…},
               "n5": {"type": "merge", "next": "n6"},
               "n6": {"type": "action", "action": "send_email", "params": {"email_id": 3}, "next": "n7"},
               "n7": {"type": "wait", "duration": {"amount": 3, "unit": "days"}, "next": "n8"},
                                                         # or "until": "2027-01-15T09:00:00Z"
               "n8": {"type": "listen", "event": {"type": "email.opened", "node": "n6"},
                      "timeout": {"amount": 5, "unit": "days"}, "next": "n9", "timeout_next": "n10"},
               "n9": {"type": "end"}},
     "layout": {"n1": {"x": 0, "y": 0}}}

Compatible extensions (readers of the contract may ignore them): any node may carry a "label";
nodes are edited through the operations below, which keep the document well-formed.

This module is pure (no database): ``structure_errors`` checks the shape, references,
reachability, cycles and limits; the checks that need the sandbox's data (audiences, emails,
solution interests, stages, conditions' references) are in journeys.services.journeys. The
editing operations (``add_node``, ``add_path``, ``connect``, ``delete_node``, ``delete_path``,
``move_node``, ``update_node``, ``update_path``, ``set_other_path``) return a new document and
raise ``GraphEditError`` when a guardrail refuses.

Durations (waits, listen timeouts) use the units minutes, hours, days and weeks: the fixed-length
units of the segmentation language's UNITS (months and years have no fixed length).

A *slot* names one outgoing edge of a node: "next", "timeout_next", "other" or "path:<path id>".
"""

import copy
import datetime as dt
import heapq
import itertools
from dataclasses import dataclass

from cdp.exceptions import RuleViolation

NODE_TYPES = ("start", "split_accounts", "split_people", "merge", "action", "wait", "listen", "end")
SPLIT_TYPES = ("split_accounts", "split_people")
INSERTABLE_TYPES = ("split_accounts", "split_people", "merge", "action", "wait", "listen", "end")
MAX_PATHS = 25
UNITS = {"minutes": 60, "hours": 3600, "days": 86400, "weeks": 7 * 86400}
LISTEN_EVENTS = ("email.opened", "email.clicked", "form.filled", "data.changed", "buying_group.changed")

# Each action's required parameters, and whether it acts per person or once per account.
ACTIONS = {
    "send_email": {"params": ("email_id",), "acts_on": "people"},
    "update_buying_group_stage": {"params": ("solution_interest_id", "stage"), "acts_on": "account"},
    "update_buying_group_status": {"params": ("solution_interest_id", "status"), "acts_on": "account"},
    "assign_buying_group_member": {"params": ("solution_interest_id", "role"), "acts_on": "people"},
    "remove_buying_group_member": {"params": ("solution_interest_id",), "acts_on": "people"},
    "add_to_list": {"params": ("list_id",), "acts_on": "people"},
    "remove_from_list": {"params": ("list_id",), "acts_on": "people"},
    "update_person_field": {"params": ("field", "value"), "acts_on": "people"},
    "update_account_field": {"params": ("field", "value"), "acts_on": "account"},
    "sales_alert": {"params": ("to",), "acts_on": "account"},
    "interesting_moment": {"params": ("type", "description"), "acts_on": "people"},
    "add_to_journey": {"params": ("journey_id",), "acts_on": "account"},
}
INTERESTING_MOMENT_TYPES = ("email", "web", "milestone")
ACTION_LABELS = {
    "send_email": "Send email",
    "update_buying_group_stage": "Update buying group stage",
    "update_buying_group_status": "Update buying group status",
    "assign_buying_group_member": "Assign buying group member",
    "remove_buying_group_member": "Remove buying group member",
    "add_to_list": "Add to list",
    "remove_from_list": "Remove from list",
    "update_person_field": "Update person field",
    "update_account_field": "Update account field",
    "sales_alert": "Sales alert",
    "interesting_moment": "Interesting moment",
    "add_to_journey": "Add to journey",
}
TYPE_LABELS = {
    "start": "Account audience",
    "split_accounts": "Split paths by accounts",
    "split_people": "Split paths by people",
    "merge": "Merge paths",
    "action": "Action",
    "wait": "Wait",
    "listen": "Listen for an event",
    "end": "End",
}


class GraphEditError(RuleViolation):
    """An editing operation the guardrails refuse."""

    def __init__(self, message: str, rule: str = "journey_graph_edit"):
        super().__init__(message, rule=rule, field="graph")


@dataclass(frozen=True)
class GraphError:
    """One thing a marketer must fix. ``node`` is the node id (None for the whole journey),
    ``path`` a JSON path into the document when it helps."""

    node: str | None
    code: str
    message: str
    path: str = ""

    def to_dict(self) -> dict:
        body = {"node": self.node, "code": self.code, "message": self.message}
        if self.path:
            body["path"] = self.path
        return body


# --------------------------------------------------------------------------------- reading
def new_graph(audience_id=None) -> dict:
    """A fresh journey: the start node followed by an end."""
    return {
        "start": "n1",
        "nodes": {"n1": {"type": "start", "audience_id": audience_id, "next": "n2"}, "n2": {"type": "end"}},
        "layout": {},
    }


def nodes_of(graph) -> dict:
    nodes = graph.get("nodes") if isinstance(graph, dict) else None
    return nodes if isinstance(nodes, dict) else {}


def slots(node: dict) -> list[tuple[str, str | None]]:
    """The outgoing edges of a node in their canonical order: (slot, target id or None)."""
    kind = node.get("type")
    if kind in SPLIT_TYPES:
        out = [(f"path:{p.get('id')}", p.get("next")) for p in node.get("paths") or [] if isinstance(p, dict)]
        if isinstance(node.get("other"), dict):
            out.append(("other", node["other"].get("next")))
        return out
    if kind == "end":
        return []
    out = [("next", node.get("next"))]
    if kind == "listen" and (node.get("timeout") is not None or node.get("timeout_next") is not None):
        out.append(("timeout_next", node.get("timeout_next")))
    return out


def successors(graph, node_id) -> list[str]:
    node = nodes_of(graph).get(node_id) or {}
    return [target for _, target in slots(node) if target]


def predecessors(graph) -> dict[str, list[tuple[str, str]]]:
    """For each node id, the (source id, slot) edges that lead to it."""
    incoming = {node_id: [] for node_id in nodes_of(graph)}
    for source, node in nodes_of(graph).items():
        for slot, target in slots(node):
            if target in incoming:
                incoming[target].append((source, slot))
    return incoming


def reachable(graph, start=None, *, blocked=()) -> list[str]:
    """Node ids reachable from ``start`` (default the start node) in canonical (breadth-first,
    slot) order, not walking through ``blocked``."""
    nodes = nodes_of(graph)
    first = graph.get("start") if start is None else start
    if first not in nodes or first in blocked:
        return []
    seen, order, queue = {first}, [first], [first]
    while queue:
        current = queue.pop(0)
        for target in successors(graph, current):
            if target in nodes and target not in seen and target not in blocked:
                seen.add(target)
                order.append(target)
                queue.append(target)
    return order


def node_label(node_id: str, node: dict) -> str:
    """What the canvas and the campaign plan call a node."""
    if node.get("label"):
        return str(node["label"])
    if node.get("type") == "action":
        return ACTION_LABELS.get(node.get("action"), "Action")
    return TYPE_LABELS.get(node.get("type"), node_id)


def duration_seconds(duration) -> int | None:
    """Seconds of a {amount, unit} duration, or None when it can't be read."""
    if not isinstance(duration, dict) or duration.get("unit") not in UNITS:
        return None
    amount = duration.get("amount")
    if isinstance(amount, bool) or not isinstance(amount, int):
        return None
    return amount * UNITS[duration["unit"]]


def parse_instant(value) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        instant = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return instant if instant.tzinfo else instant.replace(tzinfo=dt.UTC)


# ------------------------------------------------------------------------------ validation
def structure_errors(graph, *, start_at=None, end_at=None) -> list[GraphError]:
    """Everything wrong with the document's shape and flow, without looking at the database."""
    if not isinstance(graph, dict) or not isinstance(graph.get("nodes"), dict) or not graph["nodes"]:
        return [GraphError(None, "invalid_graph", 'The journey has no nodes: a graph is {"start": …, "nodes": {…}}.')]
    nodes = graph["nodes"]
    errors = []
    start = graph.get("start")
    if start not in nodes or (nodes[start] or {}).get("type") != "start":
        errors.append(GraphError(None, "missing_start", "The journey needs a start node (its account audience)."))
    starts = [node_id for node_id, node in nodes.items() if isinstance(node, dict) and node.get("type") == "start"]
    if len(starts) > 1:
        errors.append(GraphError(starts[1], "extra_start", "A journey has one start node; remove this one."))

    incoming = predecessors(graph)
    for node_id, node in nodes.items():
        if not isinstance(node, dict) or node.get("type") not in NODE_TYPES:
            errors.append(GraphError(node_id, "unknown_node_type", f"Unknown node type; use one of {', '.join(NODE_TYPES)}."))
            continue
        errors.extend(_node_errors(node_id, node, nodes, incoming))

    if start in nodes:
        order = reachable(graph)
        for node_id in nodes:
            if node_id not in order:
                errors.append(GraphError(node_id, "unreachable", "No path from the start leads to this node: connect it or delete it."))
        cycle = _find_cycle(graph)
        if cycle:
            errors.append(GraphError(cycle, "cycle", "This node leads back to itself: journeys flow one way (use a merge, not a loop)."))
        if not any((nodes.get(n) or {}).get("type") == "end" for n in order):
            errors.append(GraphError(None, "no_end", "No end node can be reached from the start."))
        if not cycle:
            errors.extend(_wait_errors(graph, start_at, end_at))
    return errors


def _node_errors(node_id, node, nodes, incoming) -> list[GraphError]:
    kind = node["type"]
    base = f"$.nodes.{node_id}"
    errors = []

    def error(code, message, path=""):
        errors.append(GraphError(node_id, code, message, path))

    for slot, target, slot_path in _outlets_with_paths(node):
        if not target:
            what = "path" if slot.startswith("path:") or slot == "other" else "node"
            error("missing_next", f"Nothing follows this {what}: add a node or an end.", f"{base}{slot_path}")
        elif target not in nodes:
            error("unknown_next", f'It leads to node "{target}", which does not exist.', f"{base}{slot_path}")
        elif (nodes[target] or {}).get("type") == "start":
            error("next_is_start", "No node may lead back to the start.", f"{base}{slot_path}")

    if kind in SPLIT_TYPES:
        paths = node.get("paths")
        if not isinstance(paths, list) or not paths:
            error("no_paths", "A split needs at least one path.", f"{base}.paths")
            paths = []
        if len(paths) > MAX_PATHS:
            error("too_many_paths", f"A split has at most {MAX_PATHS} paths; this one has {len(paths)}.", f"{base}.paths")
        seen = set()
        for index, split_path in enumerate(paths):
            where = f"{base}.paths[{index}]"
            if not isinstance(split_path, dict) or not split_path.get("id"):
                error("invalid_path", "Each path needs an id.", where)
                continue
            if split_path["id"] in seen:
                error("duplicate_path", f'Two paths have the id "{split_path["id"]}".', where)
            seen.add(split_path["id"])
            condition = split_path.get("condition")
            if condition is not None and not isinstance(condition, dict):
                error("invalid_condition", 'A condition is {"rule": …, "buying_group": …}.', f"{where}.condition")
    elif kind == "merge":
        if len(incoming.get(node_id, [])) < 2:
            error("merge_incoming", "A merge joins two or more paths; fewer than two lead here.")
    elif kind == "action":
        errors.extend(_action_shape_errors(node_id, node, base))
    elif kind == "wait":
        has_duration, has_until = node.get("duration") is not None, node.get("until") is not None
        if has_duration == has_until:
            error("wait_invalid", "A wait has either a duration or an until date.", base)
        elif has_duration:
            seconds = duration_seconds(node["duration"])
            if seconds is None:
                error("wait_invalid", f"A duration is an amount (whole number) and a unit ({', '.join(UNITS)}).", f"{base}.duration")
            elif seconds <= 0:
                error("wait_not_positive", "A wait must last longer than zero.", f"{base}.duration")
        elif parse_instant(node["until"]) is None:
            error("wait_invalid", 'The until date is an ISO date-time such as "2027-01-15T09:00:00Z".', f"{base}.until")
    elif kind == "listen":
        event = node.get("event") if isinstance(node.get("event"), dict) else {}
        if event.get("type") not in LISTEN_EVENTS:
            error("listen_event", f"Listen for one of: {', '.join(LISTEN_EVENTS)}.", f"{base}.event.type")
        elif event["type"] == "data.changed" and not event.get("field"):
            error("listen_event", "Name the field whose change to listen for.", f"{base}.event.field")
        elif event["type"] == "buying_group.changed" and not event.get("solution_interest_id"):
            error("listen_event", "Pick the solution interest whose buying group to watch.", f"{base}.event.solution_interest_id")
        elif event["type"] in ("email.opened", "email.clicked") and event.get("node"):
            target = nodes.get(event["node"]) or {}
            if target.get("type") != "action" or target.get("action") != "send_email":
                error("listen_event", f'Node "{event["node"]}" does not send an email.', f"{base}.event.node")
        if node.get("timeout") is not None:
            seconds = duration_seconds(node["timeout"])
            if seconds is None or seconds <= 0:
                error("listen_timeout", "The timeout is a positive amount and a unit.", f"{base}.timeout")
            if not node.get("timeout_next"):
                error("listen_timeout_path", "A listen with a timeout needs a timeout path.", f"{base}.timeout_next")
        elif node.get("timeout_next"):
            error("listen_timeout_path", "This timeout path is never taken: set a timeout or remove the path.", f"{base}.timeout")
    return errors


def _action_shape_errors(node_id, node, base) -> list[GraphError]:
    action = node.get("action")
    if action not in ACTIONS:
        return [GraphError(node_id, "unknown_action", "Pick what the action does.", f"{base}.action")]
    params = node.get("params") if isinstance(node.get("params"), dict) else {}
    required = ACTIONS[action]["params"]
    if action == "sales_alert" and not params.get("email_id"):
        required = (*required, "subject")
    errors = [
        GraphError(node_id, "missing_param", f'"{ACTION_LABELS[action]}" needs {name.replace("_", " ")}.', f"{base}.params.{name}")
        for name in required
        if params.get(name) in (None, "")
    ]
    if action == "interesting_moment" and params.get("type") not in (None, "", *INTERESTING_MOMENT_TYPES):
        errors.append(GraphError(node_id, "invalid_param", f"The moment's type is one of {', '.join(INTERESTING_MOMENT_TYPES)}.", f"{base}.params.type"))
    if action == "sales_alert" and params.get("to") not in (None, "", "account_owner"):
        errors.append(GraphError(node_id, "invalid_param", 'Sales alerts go to "account_owner".', f"{base}.params.to"))
    return errors


def _outlets_with_paths(node):
    """(slot, target, JSON path suffix) of each outlet, by position (ids may repeat in bad input)."""
    if node.get("type") in SPLIT_TYPES:
        out = [
            (f"path:{p.get('id')}", p.get("next"), f".paths[{index}].next")
            for index, p in enumerate(node.get("paths") or [])
            if isinstance(p, dict)
        ]
        if isinstance(node.get("other"), dict):
            out.append(("other", node["other"].get("next"), ".other.next"))
        return out
    return [(slot, target, f".{slot}") for slot, target in slots(node)]


def _find_cycle(graph) -> str | None:
    """A node on a cycle, or None (iterative depth-first search, canonical order)."""
    nodes = nodes_of(graph)
    state = {}
    for root in sorted(nodes):
        if root in state:
            continue
        stack = [(root, iter(successors(graph, root)))]
        state[root] = "open"
        while stack:
            current, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[current] = "done"
                stack.pop()
            elif child in nodes:
                if state.get(child) == "open":
                    return child
                if child not in state:
                    state[child] = "open"
                    stack.append((child, iter(successors(graph, child))))
    return None


def _wait_errors(graph, start_at, end_at) -> list[GraphError]:
    """Waits that end after the journey's end date, for every account: the earliest an account
    can reach a wait (shortest sum of wait durations from the start) plus its own duration."""
    if start_at is None or end_at is None:
        return []
    nodes = nodes_of(graph)
    earliest = {graph["start"]: start_at}
    queue, counter, errors = [(start_at, 0, graph["start"])], itertools.count(1), []
    while queue:
        at, _, node_id = heapq.heappop(queue)
        if at > earliest.get(node_id, at):
            continue
        node = nodes.get(node_id) or {}
        leaves = at
        if node.get("type") == "wait":
            seconds = duration_seconds(node.get("duration"))
            until = parse_instant(node.get("until"))
            if seconds is not None:
                leaves = at + dt.timedelta(seconds=max(seconds, 0))
            elif until is not None:
                leaves = max(at, until)
            if leaves > end_at:
                errors.append(GraphError(node_id, "wait_beyond_end", "This wait ends after the journey's end date: shorten it or move the end date."))
                continue
        for target in successors(graph, node_id):
            if target in nodes and leaves < earliest.get(target, dt.datetime.max.replace(tzinfo=dt.UTC)):
                earliest[target] = leaves
                heapq.heappush(queue, (leaves, next(counter), target))
    return errors


# -------------------------------------------------------------------------------- editing
def _copy(graph) -> dict:
    graph = copy.deepcopy(graph)
    graph.setdefault("layout", {})
    return graph


def _new_id(nodes, prefix="n") -> str:
    used = {int(k[len(prefix):]) for k in nodes if k.startswith(prefix) and k[len(prefix):].isdigit()}
    return f"{prefix}{max(used, default=0) + 1}"


def _node(graph, node_id) -> dict:
    node = nodes_of(graph).get(node_id)
    if not isinstance(node, dict):
        raise GraphEditError(f'There is no node "{node_id}".')
    return node


def _set_slot(node, slot, target):
    if slot.startswith("path:"):
        for split_path in node.get("paths") or []:
            if split_path.get("id") == slot[5:]:
                split_path["next"] = target
                return
        raise GraphEditError(f'This split has no path "{slot[5:]}".')
    if slot == "other":
        if not isinstance(node.get("other"), dict):
            raise GraphEditError('This split has no "other accounts" path.')
        node["other"]["next"] = target
    elif slot in ("next", "timeout_next"):
        node[slot] = target
    else:
        raise GraphEditError(f'Unknown slot "{slot}": use next, timeout_next, other or path:<id>.')


def _get_slot(node, slot):
    for name, target in slots(node):
        if name == slot:
            return target
    raise GraphEditError(f'This node has no "{slot}" outlet.')


def _end(nodes) -> str:
    end_id = _new_id(nodes)
    nodes[end_id] = {"type": "end"}
    return end_id


def _new_path(node, nodes, label="", condition=None) -> dict:
    ids = {p.get("id") for p in node.get("paths") or []}
    number = next(i for i in itertools.count(1) if f"p{i}" not in ids)
    return {"id": f"p{number}", "label": label or f"Path {number}", "condition": condition or {"rule": None, "buying_group": None}, "next": _end(nodes)}


def add_node(graph, after: str, node_type: str, *, slot: str = "next", config: dict | None = None) -> tuple[dict, str]:
    """Insert a node on the ``slot`` outlet of ``after``: what followed goes on after the new node
    (on its first path for a split, whose "other" path then ends). An end node only goes on an
    outlet that leads to an end (it replaces it)."""
    if node_type not in INSERTABLE_TYPES:
        raise GraphEditError(f"Add one of: {', '.join(INSERTABLE_TYPES)}.")
    graph = _copy(graph)
    nodes = graph["nodes"]
    source = _node(graph, after)
    target = _get_slot(source, slot)
    new_id = _new_id(nodes)
    node = {**(config or {}), "type": node_type}
    if node_type == "end":
        if target and (nodes.get(target) or {}).get("type") != "end":
            raise GraphEditError("An end can only replace an end: delete what follows first.")
        if target:
            return graph, target
        nodes[new_id] = node
    else:
        nodes[new_id] = node
        continuation = target or _end(nodes)
        if node_type in SPLIT_TYPES:
            node.setdefault("label", "")
            first = _new_path(node, nodes)
            del nodes[first["next"]]
            first["next"] = continuation
            node["paths"] = [first]
            node["other"] = {"next": _end(nodes)}
        else:
            node["next"] = continuation
            if node_type == "listen" and node.get("timeout") is not None:
                node["timeout_next"] = _end(nodes)
    _set_slot(source, slot, new_id)
    return graph, new_id


def add_path(graph, split_id: str, *, label: str = "", condition: dict | None = None) -> tuple[dict, str]:
    """A new path on a split (before "other accounts"), ending until something is added to it."""
    graph = _copy(graph)
    node = _node(graph, split_id)
    if node.get("type") not in SPLIT_TYPES:
        raise GraphEditError("Paths belong to splits.")
    if len(node.get("paths") or []) >= MAX_PATHS:
        raise GraphEditError(f"A split has at most {MAX_PATHS} paths.", rule="journey_split_paths")
    split_path = _new_path(node, graph["nodes"], label, condition)
    node.setdefault("paths", []).append(split_path)
    return graph, split_path["id"]


def set_other_path(graph, split_id: str, enabled: bool) -> dict:
    """Turn the "other accounts/people" path on (ending) or off (removing its branch)."""
    graph = _copy(graph)
    node = _node(graph, split_id)
    if node.get("type") not in SPLIT_TYPES:
        raise GraphEditError("Only splits have an other path.")
    if enabled and not isinstance(node.get("other"), dict):
        node["other"] = {"next": _end(graph["nodes"])}
    elif not enabled and isinstance(node.get("other"), dict):
        target = node.pop("other").get("next")
        _prune(graph, [target])
    return graph


def connect(graph, source_id: str, slot: str, target_id: str) -> dict:
    """Point an outlet at an existing node (typically a path's end at a merge). Nodes that only
    the old outlet reached are removed. Refused when it would loop, or when the target is not a
    merge but already has a way in (paths join through merges)."""
    graph = _copy(graph)
    source, target = _node(graph, source_id), _node(graph, target_id)
    if target.get("type") == "start":
        raise GraphEditError("Nothing can lead back to the start.")
    if source_id == target_id or source_id in reachable(graph, target_id):
        raise GraphEditError("That would make a loop: journeys flow one way.", rule="journey_cycle")
    incoming = predecessors(graph)[target_id]
    if target.get("type") != "merge" and incoming:
        raise GraphEditError("Join paths through a merge node: add a merge, then connect the paths to it.")
    old = _get_slot(source, slot)
    _set_slot(source, slot, target_id)
    if old and old != target_id:
        _prune(graph, [old])
    return graph


def _prune(graph, roots):
    """Remove the nodes (from ``roots`` on) that the start no longer reaches."""
    keep = set(reachable(graph))
    doomed = set()
    for root in roots:
        if root in graph["nodes"] and root not in keep:
            doomed.update(n for n in reachable(graph, root) if n not in keep)
    for node_id in doomed:
        graph["nodes"].pop(node_id, None)
        graph.get("layout", {}).pop(node_id, None)
    _retarget_listens(graph, doomed)


def _retarget_listens(graph, removed):
    # A listen for opens of an email node that is gone listens to any email of the journey.
    for node in graph["nodes"].values():
        event = node.get("event") if node.get("type") == "listen" else None
        if isinstance(event, dict) and event.get("node") in removed:
            event.pop("node")


def delete_node(graph, node_id: str) -> dict:
    """Delete a node; what led to it goes on to what followed it. Guardrails: the start can't go;
    an end goes only where it isn't needed (a merge with more than two ways in keeps its end);
    deleting a split removes its paths' nodes up to the merge where they meet (or their ends);
    deleting a listen removes its timeout path; a merge goes once at most one path leads to it."""
    graph = _copy(graph)
    nodes = graph["nodes"]
    node = _node(graph, node_id)
    kind = node.get("type")
    incoming = predecessors(graph)[node_id]
    if kind == "start":
        raise GraphEditError("The start can't be deleted: change its audience instead.")
    if kind == "end":
        raise GraphEditError("Every path finishes with an end: delete the node before it instead.")
    if kind == "merge" and len(incoming) > 1:
        raise GraphEditError("Paths still join here: delete or reconnect them first.")

    if kind in SPLIT_TYPES:
        continuation = _split_continuation(graph, node_id)
    else:
        continuation = node.get("next")
    for source, slot in incoming:
        _set_slot(nodes[source], slot, continuation)
    del nodes[node_id]
    graph["layout"].pop(node_id, None)
    roots = [target for _, target in slots(node) if target]
    _prune(graph, roots)
    _retarget_listens(graph, {node_id})
    if continuation not in nodes:  # the continuation was pruned with the branches
        end_id = _end(nodes)
        for source, slot in incoming:
            _set_slot(nodes[source], slot, end_id)
    return graph


def _split_continuation(graph, split_id) -> str:
    """Where the flow resumes once a split is deleted: the nearest merge all its paths reach (past
    it when only the split's paths feed it), else a new end."""
    nodes, targets = nodes_of(graph), successors(graph, split_id)
    common = set.intersection(*(set(reachable(graph, t)) for t in targets)) if targets else set()
    join = next((n for n in reachable(graph, targets[0]) if n in common and nodes[n].get("type") == "merge"), None) if targets else None
    if join is None:
        return _end(graph["nodes"])
    if join in reachable(graph, blocked={split_id}):
        return join  # other paths lead there too: keep the merge
    return nodes[join].get("next") or _end(graph["nodes"])


def delete_path(graph, split_id: str, path_id: str) -> dict:
    """Remove a split's path and the nodes only it reached. A split keeps at least one path."""
    graph = _copy(graph)
    node = _node(graph, split_id)
    paths = node.get("paths") or []
    kept = [p for p in paths if p.get("id") != path_id]
    if len(kept) == len(paths):
        raise GraphEditError(f'This split has no path "{path_id}".')
    if not kept:
        raise GraphEditError("A split keeps at least one path: delete the split instead.")
    removed = next(p for p in paths if p.get("id") == path_id)
    node["paths"] = kept
    _prune(graph, [removed.get("next")])
    return graph


def move_node(graph, node_id: str, direction: str) -> dict:
    """Swap a one-way-in, one-way-out node (action, wait) with its neighbour of the same kind
    above ("up") or below ("down"), so marketers can reorder steps of a path."""
    if direction not in ("up", "down"):
        raise GraphEditError('Move "up" or "down".')
    graph = _copy(graph)
    nodes = graph["nodes"]
    incoming = predecessors(graph)
    if direction == "down":
        upper, lower = node_id, _node(graph, node_id).get("next")
    else:
        sources = incoming.get(node_id) or []
        upper, lower = (sources[0][0] if len(sources) == 1 else None), node_id
    movable = ("action", "wait")
    if not upper or not lower or any((nodes.get(n) or {}).get("type") not in movable for n in (upper, lower)):
        raise GraphEditError("Only actions and waits next to each other on one path can swap places.")
    if len(incoming[lower]) != 1 or len(incoming[upper]) != 1:
        raise GraphEditError("Only actions and waits next to each other on one path can swap places.")
    (source, slot), after = incoming[upper][0], nodes[lower].get("next")
    _set_slot(nodes[source], slot, lower)
    nodes[lower]["next"] = upper
    nodes[upper]["next"] = after
    return graph


def update_node(graph, node_id: str, config: dict) -> dict:
    """Change a node's settings (not its type or connections)."""
    graph = _copy(graph)
    node = _node(graph, node_id)
    fixed = {"type", "next", "timeout_next", "paths", "other"}
    for key, value in config.items():
        if key not in fixed:
            node[key] = value
    if node.get("type") == "listen" and node.get("timeout") is not None and not node.get("timeout_next"):
        node["timeout_next"] = _end(graph["nodes"])
    if node.get("type") == "listen" and node.get("timeout") is None and node.get("timeout_next"):
        target = node.pop("timeout_next")
        _prune(graph, [target])
    return graph


def update_path(graph, split_id: str, path_id: str, *, label=None, condition=None) -> dict:
    """Change a split path's label and/or condition."""
    graph = _copy(graph)
    node = _node(graph, split_id)
    split_path = next((p for p in node.get("paths") or [] if p.get("id") == path_id), None)
    if split_path is None:
        raise GraphEditError(f'This split has no path "{path_id}".')
    if label is not None:
        split_path["label"] = label
    if condition is not None:
        split_path["condition"] = condition
    return graph
