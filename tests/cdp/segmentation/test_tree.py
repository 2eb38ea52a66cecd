"""The rule tree the builder edits: its JSON shape, and errors that name the bad node's path."""

import json

import pytest

from cdp.segmentation import (
    PQLValidationError,
    RuleTreeError,
    describe_subject,
    from_tree,
    parse_pql,
    referenced_audiences,
    to_pql,
    uses_relative_time,
    validate,
)
from cdp.segmentation.ast import Audience, Compare

TEXT = (
    '(select e from xEvent where e.type = "email.clicked" and e.occurredAt occurs <= 30 days before now).count() >= 2 '
    'and (person.account.annualRevenue >= 1000.50 or person.createdAt occurs between 2026-01-01 and 2026-01-31) '
    'and not inSegment("aud-7") and person.jobTitle.contains("vp", false) and person.country in ["US", "DE"]'
)
TREE = {
    "subject": "person",
    "condition": {
        "type": "and",
        "conditions": [
            {
                "type": "count",
                "collection": "xEvent",
                "where": {
                    "type": "and",
                    "conditions": [
                        {"type": "compare", "field": "type", "op": "eq", "value": "email.clicked"},
                        {"type": "occurs", "field": "occurredAt", "op": "le", "amount": 30, "unit": "days", "direction": "before"},
                    ],
                },
                "op": "ge",
                "value": 2,
            },
            {
                "type": "or",
                "conditions": [
                    {"type": "compare", "field": "account.annualRevenue", "op": "ge", "value": {"decimal": "1000.50"}},
                    {"type": "between", "field": "createdAt", "from": {"date": "2026-01-01"}, "to": {"date": "2026-01-31"}},
                ],
            },
            {"type": "not", "condition": {"type": "inSegment", "audience": "aud-7"}},
            {"type": "compare", "field": "jobTitle", "op": "contains", "value": "vp", "caseSensitive": False},
            {"type": "compare", "field": "country", "op": "in", "value": ["US", "DE"]},
        ],
    },
}


def test_text_and_tree_are_two_forms_of_one_ast():
    audience = parse_pql(TEXT, "person")
    assert audience.to_tree() == TREE
    assert from_tree(TREE) == audience
    assert to_pql(from_tree(TREE)) == TEXT


def test_more_shapes():
    tree = {
        "subject": "account",
        "condition": {
            "type": "or",
            "conditions": [
                {"type": "occurrence", "which": "last", "collection": "xEvent", "test": {"type": "compare", "field": "occurredAt", "op": "gt", "value": {"datetime": "2026-01-31T09:30:00Z"}}},
                {"type": "inSegment", "audience": "key", "field": "parent"},
                {"type": "compare", "field": "attributes.Lead.Rating", "op": "exists"},
                {"type": "count", "collection": "opportunities", "op": "eq", "value": 0},
            ],
        },
    }
    audience = from_tree(tree)
    assert audience.to_tree() == tree
    assert to_pql(audience) == (
        "(select e from xEvent).last().occurredAt > 2026-01-31T09:30:00Z or account.parent.inSegment(\"key\") "
        "or account.attributes.`Lead.Rating`.exists() or (select o from account.opportunities).count() = 0"
    )


def test_json_numbers_with_a_fraction_are_decimals():
    tree = {"subject": "account", "condition": {"type": "compare", "field": "annualRevenue", "op": "gt", "value": 12.5}}
    assert to_pql(from_tree(tree)) == "account.annualRevenue > 12.5"


def test_what_depends_on_what():
    audience = parse_pql('inSegment("a") and person.account.inSegment("b") and person.createdAt occurs <= 3 days before now', "person")
    assert referenced_audiences(audience) == {"a", "b"}
    assert uses_relative_time(audience)
    assert not uses_relative_time(parse_pql("person.createdAt > 2026-01-01", "person"))


def tree_error(tree) -> RuleTreeError:
    with pytest.raises(PQLValidationError) as caught:
        from_tree(tree)
    return caught.value


def wrap(condition, subject="person"):
    return {"subject": subject, "condition": condition}


CMP = {"type": "compare", "field": "jobTitle", "op": "eq", "value": "CTO"}


@pytest.mark.parametrize(
    ("tree", "path", "words"),
    [
        ([], "$", "an audience definition is an object"),
        ({"subject": "person"}, "$", 'missing "condition"'),
        ({"subject": "lead", "condition": CMP}, "$.subject", 'subject is "person" or "account"'),
        ({"subject": "person", "condition": CMP, "name": "x"}, "$", "unknown key name"),
        (wrap({"field": "jobTitle"}), "$.condition", 'missing "type"'),
        (wrap({"type": "xor", "conditions": []}), "$.condition.type", 'unknown node type "xor"'),
        (wrap({"type": "and", "conditions": [CMP]}), "$.condition.conditions", "at least two conditions"),
        (wrap({"type": "and", "conditions": [CMP, "x"]}), "$.condition.conditions[1]", "expected a condition object"),
        (wrap({"type": "and", "conditions": [CMP, {**CMP, "op": "equals"}]}), "$.condition.conditions[1].op", 'unknown operator "equals"'),
        (wrap({**CMP, "feild": "x"}), "$.condition", "unknown key feild"),
        (wrap({**CMP, "value": ["CTO"]}), "$.condition.value", "only allowed with in / notIn"),
        (wrap({**CMP, "op": "in", "value": "CTO"}), "$.condition.value", "in takes a list"),
        (wrap({**CMP, "op": "isNull"}), "$.condition.value", "isNull takes no value"),
        (wrap({**CMP, "caseSensitive": False}), "$.condition.caseSensitive", "caseSensitive applies to"),
        (wrap({"type": "compare", "field": "createdAt", "op": "gt", "value": {"date": "2026-02-30"}}), "$.condition.value", '"2026-02-30" is not a date'),
        (wrap({"type": "compare", "field": "createdAt", "op": "gt", "value": {"when": "2026-02-01"}}), "$.condition.value", 'unknown value tag "when"'),
        (wrap({"type": "compare", "field": "createdAt", "op": "in", "value": [{"date": "2026-01-01"}, {"date": 5}]}), "$.condition.value[1]", "written as a string"),
        (wrap({"type": "not", "condition": {**CMP, "field": "jobTitel"}}), "$.condition.condition.field", "did you mean jobTitle?"),
        (wrap({"type": "count", "collection": "xEvent", "where": {"type": "compare", "field": "type", "op": "eq", "value": 5}}), "$.condition.where.value", "is text"),
        (wrap({"type": "count", "collection": "xEvent", "op": "ge", "value": "2"}), "$.condition.value", '"value" must be a whole number'),
        (wrap({"type": "count", "collection": "events"}), "$.condition.collection", "did you mean"),
        (wrap({"type": "occurs", "field": "createdAt", "op": "le", "amount": 3, "unit": "days", "direction": "ago"}), "$.condition.direction", '"before" or "after"'),
        (wrap({"type": "occurs", "field": "createdAt", "op": "le", "amount": -3, "unit": "days"}), "$.condition.amount", "whole number from 0"),
        (wrap({"type": "occurrence", "which": "last", "collection": "xEvent", "test": CMP}), "$.condition.test", "after last() test e.occurredAt"),
        (wrap({"type": "occurrence", "which": "latest", "collection": "xEvent", "test": {"type": "compare", "field": "occurredAt", "op": "gt", "value": {"date": "2026-01-01"}}}), "$.condition.which", '"first" or "last"'),
        (wrap({"type": "inSegment", "audience": ""}), "$.condition.audience", "inSegment takes an audience id"),
        (wrap({"type": "compare", "field": "attributes.", "op": "exists"}, "account"), "$.condition.field", "can't be a key"),
        (wrap({"type": "compare", "field": "attributes", "op": "exists"}, "account"), "$.condition.field", "attributes is followed by exactly one key"),
        (wrap({"type": "compare", "field": "account..name", "op": "eq", "value": "x"}), "$.condition.field", "is not a field path"),
    ],
)
def test_tree_errors_name_the_json_path(tree, path, words):
    error = tree_error(tree)
    assert error.json_path == path
    assert words in error.message
    assert error.to_dict()["json_path"] == path


def test_asts_built_in_code_are_validated_too():
    with pytest.raises(PQLValidationError, match="one value, not a list") as caught:
        validate(Audience("person", Compare(("jobTitle",), "eq", ("a", "b"))))
    assert caught.value.json_path == "$.condition.value"


def test_the_schema_browser_lists_fields_types_and_operators():
    schema = describe_subject("person")
    person = schema["entities"]["person"]
    job_title = next(f for f in person["fields"] if f["name"] == "jobTitle")
    assert job_title["type"] == "text" and "contains" in job_title["ops"]
    assert {c["name"] for c in person["collections"]} == {"xEvent", "accountPersons", "opportunityPersons", "listMembers", "campaignMembers"}
    assert json.dumps(schema)  # plain data, ready for the API
