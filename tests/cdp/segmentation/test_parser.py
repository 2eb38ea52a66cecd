"""The PQL parser: what each construct means, precedence, and errors that point at the problem."""

import datetime as dt
from decimal import Decimal

import pytest

from cdp.segmentation import PQLSyntaxError, PQLValidationError, parse_pql, to_pql
from cdp.segmentation.ast import And, Audience, Between, Compare, Count, InSegment, Not, Occurrence, Occurs, Or

UTC = dt.UTC
CTO = Compare(("jobTitle",), "eq", "CTO")
US = Compare(("country",), "eq", "US")
VP = Compare(("jobLevel",), "eq", "VP")
CLICK = Compare(("type",), "eq", "email.clicked")


def condition(text, subject="person"):
    return parse_pql(text, subject).condition


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('person.jobTitle = "CTO"', CTO),
        ('person.jobTitle == "CTO"', CTO),
        ("person.leadScore != 5", Compare(("leadScore",), "ne", 5)),
        ("person.leadScore < -5", Compare(("leadScore",), "lt", -5)),
        ("person.leadScore <= 5", Compare(("leadScore",), "le", 5)),
        ("person.leadScore > 5", Compare(("leadScore",), "gt", 5)),
        ("person.leadScore >= 5", Compare(("leadScore",), "ge", 5)),
        ('person.country in ["US", "DE"]', Compare(("country",), "in", ("US", "DE"))),
        ('person.country notIn ["US"]', Compare(("country",), "notIn", ("US",))),
        ('person.jobTitle.contains("VP")', Compare(("jobTitle",), "contains", "VP")),
        ('person.jobTitle.contains("vp", false)', Compare(("jobTitle",), "contains", "vp", case_sensitive=False)),
        ('person.jobTitle.startsWith("Dir", true)', Compare(("jobTitle",), "startsWith", "Dir")),
        ('person.email.endsWith(".io")', Compare(("email",), "endsWith", ".io")),
        ('person.jobTitle.like("%ops%")', Compare(("jobTitle",), "like", "%ops%")),
        ('person.jobTitle like "%ops%"', Compare(("jobTitle",), "like", "%ops%")),
        ('person.email.matches("^a.*\\\\.io$")', Compare(("email",), "matches", "^a.*\\.io$")),
        ("person.email.isNull()", Compare(("email",), "isNull")),
        ("person.email.isNotNull()", Compare(("email",), "isNotNull")),
        ("person.attributes.tier.exists()", Compare(("attributes", "tier"), "exists")),
        ("person.account.exists()", Compare(("account",), "exists")),
        ("person.isUnsubscribed = false", Compare(("isUnsubscribed",), "eq", False)),
        ("person.account.annualRevenue >= 1000.50", Compare(("account", "annualRevenue"), "ge", Decimal("1000.50"))),
        ("person.account.annualRevenue >= 1000", Compare(("account", "annualRevenue"), "ge", 1000)),
        ("person.createdAt > 2026-01-31", Compare(("createdAt",), "gt", dt.date(2026, 1, 31))),
        ("person.createdAt > 2026-01-31T09:30:00Z", Compare(("createdAt",), "gt", dt.datetime(2026, 1, 31, 9, 30, tzinfo=UTC))),
        ("person.createdAt > 2026-01-31T09:30:00+02:00", Compare(("createdAt",), "gt", dt.datetime(2026, 1, 31, 7, 30, tzinfo=UTC))),
        ("person.createdAt > 2026-01-31T09:30:00.250Z", Compare(("createdAt",), "gt", dt.datetime(2026, 1, 31, 9, 30, 0, 250000, tzinfo=UTC))),
        ('person.attributes.`Lead Rating` = "A"', Compare(("attributes", "Lead Rating"), "eq", "A")),
        ('person.attributes.in = "x"', Compare(("attributes", "in"), "eq", "x")),
        ('person.jobTitle = "say \\"hi\\"\\n\\u00e9"', Compare(("jobTitle",), "eq", 'say "hi"\né')),
        ("person.createdAt occurs <= 30 days before now", Occurs(("createdAt",), "le", 30, "days", "before")),
        ("person.createdAt occurs > 1 day after now", Occurs(("createdAt",), "gt", 1, "days", "after")),
        ("person.createdAt occurs < 2 hours before now", Occurs(("createdAt",), "lt", 2, "hours", "before")),
        ("person.createdAt occurs >= 1 month before now", Occurs(("createdAt",), "ge", 1, "months", "before")),
        (
            "person.createdAt occurs between 2026-01-01 and 2026-03-31",
            Between(("createdAt",), dt.date(2026, 1, 1), dt.date(2026, 3, 31)),
        ),
        ('inSegment("abc-123")', InSegment("abc-123")),
        ('person.inSegment("abc-123")', InSegment("abc-123")),
        ('person.account.inSegment("key")', InSegment("key", ("account",))),
        ('exists e from xEvent where e.type = "email.clicked"', Count(("xEvent",), CLICK)),
        ('exists e from person.xEvent where e.type = "email.clicked"', Count(("xEvent",), CLICK)),
        ("exists ap from person.accountPersons", Count(("accountPersons",))),
        (
            '(select e from xEvent where e.type = "email.clicked").count() >= 2',
            Count(("xEvent",), CLICK, "ge", 2),
        ),
        ("(select x from xEvent).count() = 0", Count(("xEvent",), None, "eq", 0)),
        (
            '(select e from xEvent where e.type = "email.clicked").last().occurredAt occurs <= 7 days before now',
            Occurrence("last", ("xEvent",), CLICK, Occurs(("occurredAt",), "le", 7, "days", "before")),
        ),
        (
            "(select lm from person.listMembers).first().addedAt < 2026-01-01",
            Occurrence("first", ("listMembers",), None, Compare(("addedAt",), "lt", dt.date(2026, 1, 1))),
        ),
    ],
)
def test_each_construct(text, expected):
    assert condition(text) == expected


def test_account_audiences_speak_of_accounts():
    assert condition('exists o from account.opportunities where o.isClosed = false and o.amount > 1000', "account") == Count(
        ("opportunities",), And((Compare(("isClosed",), "eq", False), Compare(("amount",), "gt", 1000)))
    )
    nested = '(select ap from account.accountPersons where exists e from ap.person.xEvent where e.type = "email.clicked").count() >= 3'
    assert condition(nested, "account") == Count(("accountPersons",), Count(("person", "xEvent"), CLICK), "ge", 3)
    assert condition('account.parent.name = "Acme"', "account") == Compare(("parent", "name"), "eq", "Acme")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('person.jobTitle = "CTO" or person.country = "US" and person.jobLevel = "VP"', Or((CTO, And((US, VP))))),
        ('person.jobTitle = "CTO" and person.country = "US" or person.jobLevel = "VP"', Or((And((CTO, US)), VP))),
        ('(person.jobTitle = "CTO" or person.country = "US") and person.jobLevel = "VP"', And((Or((CTO, US)), VP))),
        ('not person.jobTitle = "CTO" and person.country = "US"', And((Not(CTO), US))),
        ('not (person.jobTitle = "CTO" and person.country = "US")', Not(And((CTO, US)))),
        ('not not person.jobTitle = "CTO"', Not(Not(CTO))),
        ('person.jobTitle = "CTO" and person.country = "US" and person.jobLevel = "VP"', And((CTO, US, VP))),
        ('person.jobTitle = "CTO" and (person.country = "US" and person.jobLevel = "VP")', And((CTO, And((US, VP))))),
        # A where clause reaches as far as it can; parentheses end it.
        (
            'exists e from xEvent where e.type = "email.clicked" and e.type = "web.visit"',
            Count(("xEvent",), And((CLICK, Compare(("type",), "eq", "web.visit")))),
        ),
        (
            '(exists e from xEvent where e.type = "email.clicked") and person.country = "US"',
            And((Count(("xEvent",), CLICK), US)),
        ),
        ('person.country = "US" and not exists e from xEvent', And((US, Not(Count(("xEvent",)))))),
    ],
)
def test_precedence(text, expected):
    assert condition(text) == expected


def test_layout_and_comments_do_not_matter():
    text = """
        // Engaged CTOs
        person.jobTitle = "CTO"   // the title
        and (select e from xEvent
             where e.type = "email.clicked").count() >= 2
    """
    assert condition(text) == And((CTO, Count(("xEvent",), CLICK, "ge", 2)))


def test_the_printer_writes_what_the_parser_reads():
    text = '(exists e from xEvent where e.type = "email.clicked") and not (person.country = "US" or person.jobLevel = "VP")'
    audience = parse_pql(text, "person")
    assert to_pql(audience) == text
    assert to_pql(Audience("person", Or((CTO, And((US, VP)))))) == 'person.jobTitle = "CTO" or (person.country = "US" and person.jobLevel = "VP")'
    assert to_pql(Audience("person", Occurs(("createdAt",), "le", 1, "days"))) == "person.createdAt occurs <= 1 day before now"
    nested = Count(("accountPersons",), Count(("account", "accountPersons"), Compare(("role",), "eq", "CEO")))
    assert to_pql(Audience("person", nested)) == (
        'exists ap from person.accountPersons where exists ap2 from ap.account.accountPersons where ap2.role = "CEO"'
    )


# --- Syntax errors ---------------------------------------------------------------------------------


def syntax_error(text) -> PQLSyntaxError:
    with pytest.raises(PQLSyntaxError) as caught:
        parse_pql(text, "person")
    return caught.value


def test_a_missing_operator_is_named_with_its_place():
    error = syntax_error('person.jobTitle "CTO"')
    assert (error.line, error.column, error.token) == (1, 17, '"CTO"')
    assert "expected a comparison operator" in error.message and "after person.jobTitle at line 1, column 17" in error.message


def test_errors_on_later_lines_have_their_line_and_column():
    error = syntax_error('person.jobTitle = "CTO"\n  and person.country = = "US"')
    assert (error.line, error.column, error.token) == (2, 24, "=")
    assert "expected a value" in error.message


@pytest.mark.parametrize(
    ("text", "line", "column", "words"),
    [
        ('person.jobTitle = "CTO" and', 1, 28, "expected a condition"),
        ('person.jobTitle = "CTO" AND person.country = "US"', 1, 25, "keywords are lowercase"),
        ("person.jobTitle = 'CTO'", 1, 19, "double quotes"),
        ('person.jobTitle = "CTO" && person.country = "US"', 1, 25, "write and"),
        ('(person.jobTitle = "CTO"', 1, 25, "ends too early"),
        ('person.country in ["US" "DE"]', 1, 25, "unexpected '\"DE\"'"),
        ("person.createdAt > 2026-02-30", 1, 20, "2026-02-30 is not a valid date"),
        ("person.createdAt occurs = 3 days before now", 1, 25, "occurs compares with <, <=, > or >="),
        ("person.createdAt occurs <= 1.5 days before now", 1, 28, "whole number"),
        ('person.jobTitle.shout("x")', 1, 1, "unknown function shout()"),
        ("person.jobTitle.contains(5)", 1, 1, "contains() takes a string"),
        ('person.jobTitle.isNull("x")', 1, 1, "isNull() takes no arguments"),
        ("inSegment(5)", 1, 1, "inSegment takes one audience id"),
        ('(select e from xEvent).sum() > 2', 1, 24, "sum() is not a function of select"),
        ('(select e from xEvent).count() >= -1', 1, 35, "whole number"),
        ('(select e from xEvent).last().occurredAt in [2026-01-01]', 1, 31, "compares with =, !="),
        ("", 1, 1, "the condition is empty"),
    ],
)
def test_syntax_errors(text, line, column, words):
    error = syntax_error(text)
    assert (error.line, error.column) == (line, column)
    assert words in error.message
    assert f"line {line}, column {column}" in error.message


# --- Meaning errors --------------------------------------------------------------------------------


def validation_error(text, subject="person") -> PQLValidationError:
    with pytest.raises(PQLValidationError) as caught:
        parse_pql(text, subject)
    return caught.value


@pytest.mark.parametrize(
    ("subject", "text", "field", "words"),
    [
        ("person", 'person.jobTitel = "CTO"', "person.jobTitel", "did you mean jobTitle?"),
        ("person", 'person.leadScore = "high"', "person.leadScore", "person.leadScore is a whole number"),
        ("person", "person.leadScore = 5.5", "person.leadScore", "give a whole number"),
        ("person", "person.leadScore.contains(\"5\")", "person.leadScore", "contains() does not apply to person.leadScore"),
        ("person", "person.isUnsubscribed > true", "person.isUnsubscribed", "> does not apply"),
        ("person", 'person.jobTitle > "A"', "person.jobTitle", "> does not apply to person.jobTitle (text)"),
        ("person", 'person.jobTitle = ""', "person.jobTitle", "use isNull()"),
        ("person", "person.jobTitle in []", "person.jobTitle", "non-empty list"),
        ("person", "person.jobTitle.exists()", "person.jobTitle", "use person.jobTitle.isNotNull()"),
        ("person", 'person.email.matches("(unclosed")', "person.email", "regular expression is invalid"),
        ("person", 'person.email.matches("(a+)+$")', "person.email", "exponential time"),
        ("person", "person.createdAt occurs between 2026-03-01 and 2026-01-01", "person.createdAt", "earlier"),
        ("person", "person.createdAt occurs between 2026-01-01 and 2026-03-01T00:00:00Z", "person.createdAt", "two dates or two date-times"),
        ("person", "person.createdAt occurs <= 3 fortnights before now", "person.createdAt", 'unknown time unit "fortnights"'),
        ("person", "person.jobTitle occurs <= 3 days before now", "person.jobTitle", "not a date or date-time"),
        ("person", 'person.account = "Acme"', "person.account", "person.account is an account; compare one of its fields"),
        ("person", "person.xEvent.isNull()", "person.xEvent", "is a collection; write exists e from person.xEvent"),
        ("person", "person.attributes.tier > \"b\"", "person.attributes.tier", "compares numbers"),
        ("person", "person.attributes.tier = 2026-01-01", "person.attributes.tier", 'write dates as text'),
        ("person", 'person.attributes.tier in ["a", 1]', "person.attributes.tier", "must all be text, all numbers or all true/false"),
        ("person", "person.attributes = 1", "person.attributes", "attributes is followed by exactly one key"),
        ("person", 'account.name = "Acme"', "account.name", "did you mean person.account.name?"),
        ("person", 'jobTitle = "CTO"', "jobTitle", "conditions here start with person."),
        ("person", 'exists e from xEvent where person.country = "US"', "person.country", "inside this select, conditions start with e."),
        ("person", 'exists e from xEvent where e.tpye = "x"', "e.tpye", "did you mean type?"),
        ("person", "exists person from xEvent", "person", "choose another name than person"),
        ("person", 'exists e from xEvent where exists e from person.listMembers', "e", "choose another name than e"),
        ("person", 'exists o from person.opportunities', "person.opportunities", "did you mean opportunityPersons?"),
        ("person", '(select ap from person.accountPersons).last().createdAt > 2026-01-01', "person.accountPersons", "ordered in time"),
        ("person", '(select e from xEvent).last().type = "x"', "person.xEvent", "after last() test e.occurredAt"),
        ("person", 'exists e from xEvent where e.inSegment("x")', "e", "inSegment applies to a person or an account"),
        ("person", 'exists ap from person.accountPersons where ap.inSegment("x")', "ap", "inSegment applies to a person or an account"),
        ("person", "person.account.parent.opportunities.isNull()", "person.account.parent.opportunities", "is a collection"),
        ("person", "person.createdAt.contains(\"2026\")", "person.createdAt", "contains() does not apply"),
        ("account", 'exists o from account.opportunities where o.closeDate occurs <= 3 hours after now', "o.closeDate", "is a date"),
        ("account", "exists o from account.opportunities where o.closeDate > 2026-01-01T00:00:00Z", "o.closeDate", "give a date like"),
    ],
)
def test_meaning_errors_name_the_field(subject, text, field, words):
    error = validation_error(text, subject)
    assert error.field == field
    assert words in error.message
    assert error.line == 1 and error.column >= 1


def test_meaning_errors_point_at_their_line():
    error = validation_error('person.jobTitle = "CTO"\nand person.leadScore = "high"')
    assert (error.line, error.column) == (2, 5)
    assert "(line 2, column 5)" in error.message


def test_the_subject_is_the_audience_kind():
    with pytest.raises(ValueError):
        parse_pql('person.jobTitle = "CTO"', "opportunity")
    assert parse_pql('account.name = "Acme"', "account").subject == "account"
