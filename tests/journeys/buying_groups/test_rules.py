"""Roles, roles templates, stages models and solution interests: the rules that refuse bad setups."""

import pytest

from cdp.exceptions import RuleViolation
from journeys.choices import DEFAULT_ROLES, StageKind
from journeys.models import BuyingGroupRole, TemplateRole
from journeys.services.buying_groups import (
    create_role,
    delete_role,
    publish_roles_template,
    publish_stages_model,
    roles_of,
    save_roles_template,
    save_solution_interest,
    save_stages_model,
)

from .conftest import EXAMPLE_ROLES, EXAMPLE_STAGES, EXAMPLE_TRANSITIONS, compare, person_rule


def rule_of(call):
    with pytest.raises(RuleViolation) as caught:
        call()
    return caught.value.rule


def test_default_roles_are_made_on_first_use_once_per_sandbox(sandbox, other_sandbox):
    assert sorted(roles_of(sandbox).values_list("name", flat=True)) == sorted(DEFAULT_ROLES)
    roles_of(sandbox)
    assert BuyingGroupRole.objects.for_sandbox(sandbox).count() == 6
    assert BuyingGroupRole.objects.for_sandbox(other_sandbox).count() == 0


def test_custom_roles_up_to_twenty_in_all(sandbox):
    for n in range(14):
        create_role(sandbox, f"Custom {n}")
    assert roles_of(sandbox).count() == 20
    assert rule_of(lambda: create_role(sandbox, "One too many")) == "role_limit"
    assert rule_of(lambda: create_role(sandbox, "champion")) == "role_name_taken"


def test_default_roles_cannot_be_deleted_and_used_roles_neither(sandbox):
    champion = roles_of(sandbox).get(name="Champion")
    assert rule_of(lambda: delete_role(champion)) == "default_role"
    legal = create_role(sandbox, "Legal")
    save_roles_template(sandbox, name="T", roles=[{"role": "Legal"}])
    assert rule_of(lambda: delete_role(legal)) == "role_in_use"


def test_template_roles_are_validated(sandbox):
    template = save_roles_template(sandbox, name="Roles", roles=EXAMPLE_ROLES)
    rows = {r.role.name: r for r in TemplateRole.objects.filter(template=template)}
    assert (rows["Decision Maker"].weight, rows["Decision Maker"].required, rows["Decision Maker"].required_count) == (100, True, 2)
    # PQL text is stored as the canonical rule tree.
    assert rows["Practitioner"].condition == person_rule(compare("jobTitle", "contains", "Engineer"))
    assert (rows["Champion"].condition, rows["Champion"].required_count) == (None, 1)

    assert rule_of(lambda: save_roles_template(sandbox, name="W", roles=[{"role": "Champion", "weight": 50}])) == "invalid_weight"
    assert rule_of(lambda: save_roles_template(sandbox, name="U", roles=[{"role": "Buyer"}])) == "unknown_role"
    assert rule_of(lambda: save_roles_template(sandbox, name="D", roles=[{"role": "Other"}, {"role": "other"}])) == "duplicate_role"
    bad_tree = person_rule(compare("noSuchField", "eq", "x"))
    assert rule_of(lambda: save_roles_template(sandbox, name="C", roles=[{"role": "Other", "condition": bad_tree}])) == "invalid_condition"
    account_rule = {"subject": "account", "condition": compare("industry", "eq", "Software")}
    assert rule_of(lambda: save_roles_template(sandbox, name="A", roles=[{"role": "Other", "condition": account_rule}])) == "invalid_condition"


def test_a_pql_error_says_where(sandbox):
    with pytest.raises(RuleViolation) as caught:
        save_roles_template(sandbox, name="P", roles=[{"role": "Other", "condition_pql": 'jobTitle = "CTO" and'}])
    assert caught.value.rule == "invalid_condition"
    assert "Role 1 (Other)" in caught.value.message and "line 1" in caught.value.message


def test_live_template_is_frozen_and_solution_interest_needs_a_live_one(sandbox):
    template = save_roles_template(sandbox, name="Roles", roles=EXAMPLE_ROLES)
    assert rule_of(lambda: save_solution_interest(sandbox, name="SI", roles_template=template)) == "template_not_live"
    assert rule_of(lambda: publish_roles_template(save_roles_template(sandbox, name="Empty", roles=[]))) == "template_empty"
    publish_roles_template(template)
    assert rule_of(lambda: save_roles_template(sandbox, name="Roles", roles=[], template=template)) == "template_live"
    interest = save_solution_interest(sandbox, name="SI", roles_template=template)
    assert interest.roles_template == template and interest.stages_model is None


@pytest.mark.parametrize(
    "stages, rule",
    [
        ([{"name": "Won", "kind": "success"}], "entry_stage_required"),
        ([{"name": "Start", "kind": "entry"}], "one_success_stage"),
        ([{"name": "Start", "kind": "entry"}, {"name": "Won", "kind": "success"}, {"name": "Won2", "kind": "success"}], "one_success_stage"),
        ([{"name": "Start", "kind": "entry"}, {"name": "start", "kind": "success"}], "duplicate_stage"),
        ([{"name": "Start", "kind": "begin"}], "invalid_stage_kind"),
    ],
)
def test_stages_model_shape_rules(sandbox, stages, rule):
    assert rule_of(lambda: save_stages_model(sandbox, name="M", stages=stages)) == rule


def test_transitions_and_immutability_once_published(sandbox, organization):
    stages = [{"name": "Start", "kind": "entry"}, {"name": "Won", "kind": "success"}]
    assert rule_of(lambda: save_stages_model(sandbox, name="M", stages=stages, transitions=[{"from": "Start", "to": "Nowhere"}])) == "unknown_stage"
    assert rule_of(lambda: save_stages_model(sandbox, name="M", stages=stages, transitions=[{"from": "Won", "to": "Start"}])) == "invalid_transition"
    model = save_stages_model(sandbox, name="M", stages=EXAMPLE_STAGES, transitions=EXAMPLE_TRANSITIONS)
    assert [(s.name, s.kind) for s in model.stages.all()][0] == ("Discover", StageKind.ENTRY)
    assert model.transitions.count() == 4
    template = publish_roles_template(save_roles_template(sandbox, name="R", roles=[{"role": "Other"}]))
    assert rule_of(lambda: save_solution_interest(sandbox, name="S", roles_template=template, stages_model=model)) == "stages_model_not_published"
    publish_stages_model(model)
    assert rule_of(lambda: save_stages_model(sandbox, name="M", stages=stages, stages_model=model)) == "stages_model_published"
    assert save_solution_interest(sandbox, name="S", roles_template=template, stages_model=model).stages_model == model
