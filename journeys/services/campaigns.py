"""Publishing converts a journey version's graph into a campaign plan, the way Marketo Engage runs
a journey: one campaign per node, each with a smart list (triggers that start it + filters that
must hold, all of them) and a flow (steps, in order), chained by "request campaign" steps; splits
choose a path with the segments the plan defines (a segment = the path's condition, evaluated by
the one audience compiler plus the buying group filters).

``plan_for`` is pure and deterministic (same graph and entry settings, same plan; golden-tested):
campaigns come in the graph's canonical order (breadth-first from the start, paths in order, then
"other", next, timeout path) and are named "<position> <node label>".

Campaign kinds: ``trigger`` campaigns react to an outside event (an account entering the audience,
a listened-for activity); ``requested`` campaigns run when the previous node's flow requests them.
"""

from django.db import transaction

from journeys import graph as graphs
from journeys.models import CampaignPlan, PlannedCampaign

EVENT_TRIGGERS = {
    "email.opened": "Opens Email",
    "email.clicked": "Clicks Link in Email",
    "form.filled": "Fills Out Form",
    "data.changed": "Data Value Changes",
    "buying_group.changed": "Buying Group Changes",
}


def entry_settings(journey) -> dict:
    """Who may enter, when: the start campaign's filters."""
    interval = journey.reentry_interval
    return {
        "start_at": journey.start_at.isoformat().replace("+00:00", "Z"),
        "end_at": journey.end_at.isoformat().replace("+00:00", "Z"),
        "allow_reentry": journey.allow_reentry,
        "reentry_interval_seconds": int(interval.total_seconds()) if journey.allow_reentry and interval else None,
    }


def plan_for(graph: dict, entry: dict) -> dict:
    """``{"campaigns": [...], "segments": [...]}`` for a valid graph."""
    nodes = graph["nodes"]
    campaigns, segments = [], []
    for position, node_id in enumerate(graphs.reachable(graph), start=1):
        node = nodes[node_id]
        campaign = _campaign(node_id, node, entry, segments)
        campaigns.append(
            {
                "position": position,
                "node": node_id,
                "type": node["type"],
                "name": f"{position:02d} {graphs.node_label(node_id, node)}",
                **campaign,
            }
        )
    return {"campaigns": campaigns, "segments": segments}


def _requested(node_id) -> dict:
    return {"triggers": [{"name": "Campaign is Requested", "source": "journey", "node": node_id}], "filters": [], "filter_logic": "all"}


def _request(next_id) -> dict:
    return {"step": "request_campaign", "node": next_id}


def _campaign(node_id, node, entry, segments) -> dict:
    kind = node["type"]
    if kind == "start":
        audience_id = node["audience_id"]
        smart_list = {
            "triggers": [{"name": "Added to Audience", "audience_id": audience_id}],
            "filters": [
                {"name": "Member of Audience", "audience_id": audience_id},
                {"name": "Date Window", "start_at": entry["start_at"], "end_at": entry["end_at"]},
                {
                    "name": "Journey Re-entry",
                    "allowed": entry["allow_reentry"],
                    "min_interval_seconds": entry["reentry_interval_seconds"],
                },
            ],
            "filter_logic": "all",
        }
        flow = [{"step": "enroll_account", "people": "account_people"}, _request(node["next"])]
        return {"kind": "trigger", "smart_list": smart_list, "flow": flow, "schedule": {"run_once": "on_publish", "for": "current_members"}}
    if kind in graphs.SPLIT_TYPES:
        subject = "account" if kind == "split_accounts" else "person"
        choices = []
        for split_path in node["paths"]:
            segment_id = f"{node_id}.{split_path['id']}"
            condition = split_path.get("condition") or {}
            rule = condition.get("rule")
            segments.append(
                {
                    "id": segment_id,
                    "name": f"{graphs.node_label(node_id, node)} · {split_path.get('label') or split_path['id']}",
                    "subject": subject,
                    "node": node_id,
                    "path": split_path["id"],
                    "definition": {"subject": subject, "condition": rule} if rule is not None else None,
                    "buying_group": condition.get("buying_group"),
                }
            )
            choices.append({"path": split_path["id"], "segment": segment_id, "node": split_path["next"]})
        other = node.get("other")
        default = {"path": "other", "node": other["next"]} if isinstance(other, dict) else {"leave_journey": True}
        flow = [{"step": "choose_path", "subject": subject, "match": "first", "choices": choices, "default": default}]
        return {"kind": "requested", "smart_list": _requested(node_id), "flow": flow, "schedule": {}}
    if kind == "merge":
        return {"kind": "requested", "smart_list": _requested(node_id), "flow": [_request(node["next"])], "schedule": {}}
    if kind == "action":
        action = node["action"]
        step = {"step": action, "acts_on": graphs.ACTIONS[action]["acts_on"], "params": dict(sorted(node.get("params", {}).items()))}
        return {"kind": "requested", "smart_list": _requested(node_id), "flow": [step, _request(node["next"])], "schedule": {}}
    if kind == "wait":
        step = {"step": "wait", "duration": node["duration"]} if node.get("duration") is not None else {"step": "wait", "until": node["until"]}
        return {"kind": "requested", "smart_list": _requested(node_id), "flow": [step, _request(node["next"])], "schedule": {}}
    if kind == "listen":
        event = node["event"]
        trigger = {"name": EVENT_TRIGGERS[event["type"]], "event": event["type"]}
        trigger.update({key: event[key] for key in ("node", "field", "solution_interest_id") if event.get(key) is not None})
        smart_list = {
            "triggers": [trigger],
            "filters": [{"name": "Waiting at Node", "node": node_id}],
            "filter_logic": "all",
        }
        schedule = {}
        if node.get("timeout") is not None:
            schedule = {"timeout": {"after": node["timeout"], "request_campaign": node["timeout_next"]}}
        return {"kind": "trigger", "smart_list": smart_list, "flow": [_request(node["next"])], "schedule": schedule}
    # end
    return {"kind": "requested", "smart_list": _requested(node_id), "flow": [{"step": "end_journey"}], "schedule": {}}


@transaction.atomic
def build_campaign_plan(version) -> CampaignPlan:
    """Store the plan of a published version (once: a retried publish finds it)."""
    existing = CampaignPlan.objects.filter(version=version).first()
    if existing is not None:
        return existing
    plan = plan_for(version.graph, entry_settings(version.journey))
    row = CampaignPlan.objects.create(sandbox=version.sandbox, version=version, segments=plan["segments"])
    PlannedCampaign.objects.bulk_create(
        PlannedCampaign(
            sandbox=version.sandbox, plan=row, position=c["position"], node_id=c["node"], node_type=c["type"],
            name=c["name"], kind=c["kind"], smart_list=c["smart_list"], flow=c["flow"], schedule=c["schedule"],
        )  # fmt: skip
        for c in plan["campaigns"]
    )
    return row


def plan_of(version) -> dict | None:
    """The stored plan of a version as plain data (what the API and the plan page show)."""
    row = CampaignPlan.objects.filter(version=version).first()
    if row is None:
        return None
    campaigns = [
        {
            "position": c.position, "node": c.node_id, "type": c.node_type, "name": c.name, "kind": c.kind,
            "smart_list": c.smart_list, "flow": c.flow, "schedule": c.schedule,
        }  # fmt: skip
        for c in row.campaigns.order_by("position")
    ]
    return {"version": version.number, "published_at": version.published_at, "campaigns": campaigns, "segments": row.segments}
