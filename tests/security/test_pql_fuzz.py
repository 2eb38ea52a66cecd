"""The PQL parser under hostile text: whatever it is given, it answers an audience or a
``SegmentationError`` (syntax or validation error with a position) — never another exception.

Three sources of text: anything at all (unicode, control characters, huge numbers), text shaped by
the PQL grammar itself (hypothesis builds it from ``pql.lark`` with real field names, so it gets
past the syntax and exercises the binder and validator), and valid queries with random edits.
Whatever parses must print back to PQL that parses to the same audience, and compile to SQL that
runs on both databases.
"""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.lark import from_lark

from cdp.segmentation.compiler import compile_audience
from cdp.segmentation.errors import SegmentationError
from cdp.segmentation.parser import _lark, parse_pql
from cdp.segmentation.printer import to_pql
from cdp.services.audiences import membership_lookup

FUZZ = settings(derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck))

NAMES = [
    "person", "account", "e", "op", "ap", "o", "xEvent", "accountPersons", "opportunityPersons",
    "opportunities", "listMembers", "campaignMembers", "jobTitle", "email", "country", "leadScore",
    "industry", "domain", "occurredAt", "createdAt", "type", "role", "attributes", "properties", "parent",
    "closeDate", "amount", "count", "first", "last", "contains", "startsWith", "endsWith", "like",
    "matches", "isNull", "isNotNull", "exists", "inSegment", "days", "hours", "months", "isPrimary",
]
VALID = [
    'person.jobTitle = "CTO"',
    'person.country in ["DE", "FR"] and not person.email.endsWith(".io")',
    '(select e from xEvent where e.type = "email.clicked" and e.occurredAt occurs <= 30 days before now).count() >= 2',
    'exists op from person.opportunityPersons where op.role = "Decision Maker"',
    'person.createdAt occurs between 2026-01-01 and 2026-03-31 // comment',
    'person.attributes.`Lead Rating` = "A" or person.leadScore > 10',
    'person.email.matches("@(acme|globex)\\\\.com$") and person.account.industry = "Software"',
]


def parse_or_refuse(text, subject):
    """The audience, or None when refused the documented way."""
    try:
        return parse_pql(text, subject)
    except SegmentationError as error:
        assert str(error), "a refusal says what is wrong"
        return None


def assert_round_trip(audience):
    printed = to_pql(audience)
    assert parse_pql(printed, audience.subject) == audience, printed


@settings(FUZZ, max_examples=150)
@given(text=st.text(max_size=200), subject=st.sampled_from(["person", "account"]))
def test_any_text_is_parsed_or_refused_with_a_parse_error(text, subject):
    audience = parse_or_refuse(text, subject)
    if audience is not None:
        assert_round_trip(audience)


GRAMMAR_TEXT = from_lark(
    _lark(),
    explicit={
        "NAME": st.sampled_from(NAMES),
        "QUOTED_NAME": st.sampled_from(["`Lead Rating`", "`x.y`", "`ünï`"]),
        "STRING": st.sampled_from(['""', '"CTO"', '"a\\"b"', '"\\u0000"', '"%_%"', '"(a"', '"email.clicked"']),
        "NUMBER": st.sampled_from(["0", "-1", "2", "10.5", "99999999999999999999999", "1.0000000000000000001"]),
        "DATE": st.sampled_from(["2026-01-31", "2026-02-30", "0000-00-00", "9999-12-31"]),
        "DATETIME": st.sampled_from(["2026-01-31T09:30:00Z", "2026-13-01T25:61:00+99:00", "2026-01-31T09:30"]),
        "COMMENT": st.just("// c"),
    },
)


@settings(FUZZ, max_examples=150)
@given(text=GRAMMAR_TEXT, subject=st.sampled_from(["person", "account"]))
def test_grammar_shaped_text_is_parsed_or_refused(text, subject):
    audience = parse_or_refuse(text, subject)
    if audience is not None:
        assert_round_trip(audience)


@st.composite
def edited_queries(draw):
    text = draw(st.sampled_from(VALID))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        if draw(st.booleans()) and at < len(text):
            text = text[:at] + text[at + draw(st.integers(1, 5)):]
        else:
            text = text[:at] + draw(st.sampled_from(list('()[]."`\\,=<>! \n') + ["and", "or", "not", "\x00", "é"])) + text[at:]
    return text


@settings(FUZZ, max_examples=150)
@given(text=edited_queries())
def test_edited_valid_queries_are_parsed_or_refused(text):
    audience = parse_or_refuse(text, "person")
    if audience is not None:
        assert_round_trip(audience)


def test_the_valid_examples_parse():
    """Guards the fuzzing: the seeds of the edits are themselves valid."""
    for text in VALID:
        assert parse_pql(text, "person").subject == "person"


@pytest.mark.django_db
@settings(FUZZ, max_examples=40)
@given(text=st.one_of(GRAMMAR_TEXT, edited_queries()), subject=st.sampled_from(["person", "account"]))
def test_whatever_parses_compiles_and_runs(text, subject, sandbox):
    audience = parse_or_refuse(text, subject)
    if audience is None:
        return
    query = compile_audience(audience, sandbox, membership_lookup=membership_lookup(sandbox))
    assert list(query) == []  # an empty sandbox: the point is that the SQL runs on this database
