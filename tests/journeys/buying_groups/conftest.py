import pytest

from journeys.services.buying_groups import publish_roles_template, publish_stages_model, save_roles_template, save_solution_interest, save_stages_model


def compare(field, op, value=None):
    node = {"type": "compare", "field": field, "op": op}
    if value is not None:
        node["value"] = value
    return node


def person_rule(condition):
    return {"subject": "person", "condition": condition}


# The worked example: Decision Makers are CTOs and CFOs (Vital, 2 required), Influencers are VPs
# (Important, 1 required), Practitioners have "Engineer" in their title (Normal, 2 required);
# Champion has no condition and is not required.
EXAMPLE_ROLES = [
    {"role": "Decision Maker", "weight": 100, "condition": person_rule(compare("jobTitle", "in", ["CTO", "CFO"])), "required": True, "required_count": 2},
    {"role": "Influencer", "weight": 80, "condition": person_rule(compare("jobTitle", "startsWith", "VP")), "required": True},
    {"role": "Practitioner", "weight": 60, "condition_pql": 'person.jobTitle.contains("Engineer")', "required": True, "required_count": 2},
    {"role": "Champion", "weight": 40},
]
EXAMPLE_STAGES = [
    {"name": "Discover", "kind": "entry"},
    {"name": "Evaluate", "kind": "intermediate"},
    {"name": "Purchase", "kind": "success"},
    {"name": "Lost", "kind": "failure"},
]
EXAMPLE_TRANSITIONS = [
    {"from": "Discover", "to": "Evaluate"},
    {"from": "Evaluate", "to": "Purchase"},
    {"from": "Evaluate", "to": "Lost"},
    {"from": "Discover", "to": "Lost"},
]


@pytest.fixture
def make_solution_interest():
    def _make(sandbox, name="Analytics", roles=None, with_stages=True):
        template = publish_roles_template(save_roles_template(sandbox, name=f"{name} roles", roles=roles or EXAMPLE_ROLES))
        stages = None
        if with_stages:
            stages = publish_stages_model(
                save_stages_model(sandbox, name=f"{name} stages", stages=EXAMPLE_STAGES, transitions=EXAMPLE_TRANSITIONS)
            )
        return save_solution_interest(sandbox, name=name, roles_template=template, stages_model=stages)

    return _make


@pytest.fixture
def solution_interest(sandbox, make_solution_interest):
    return make_solution_interest(sandbox)
