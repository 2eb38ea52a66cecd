"""Property-based round trips: text → AST → text and tree → AST → tree lose nothing."""

import json

from hypothesis import HealthCheck, given, settings

from cdp.segmentation import from_tree, parse_pql, to_pql, validate

from .strategies import ANY_VALUES, AstStrategies

audiences = AstStrategies(ANY_VALUES).audiences(max_depth=3)
ROUND_TRIP = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def typed(audience) -> str:
    # == alone would equate True with 1 and 1 with Decimal("1.0"); the JSON form tells them apart.
    return json.dumps(audience.to_tree(), sort_keys=True)


@ROUND_TRIP
@given(audiences)
def test_generated_asts_are_valid(audience):
    validate(audience)


@ROUND_TRIP
@given(audiences)
def test_print_then_parse_gives_the_same_ast(audience):
    text = to_pql(audience)
    again = parse_pql(text, audience.subject)
    assert again == audience, text
    assert typed(again) == typed(audience)
    assert to_pql(again) == text


@ROUND_TRIP
@given(audiences)
def test_tree_then_ast_gives_the_same_ast(audience):
    tree = json.loads(json.dumps(audience.to_tree()))  # through real JSON, as the API stores it
    again = from_tree(tree)
    assert again == audience
    assert typed(again) == typed(audience)


@ROUND_TRIP
@given(audiences)
def test_text_to_tree_to_text_is_stable(audience):
    text = to_pql(audience)
    tree = parse_pql(text, audience.subject).to_tree()
    assert to_pql(from_tree(json.loads(json.dumps(tree)))) == text
