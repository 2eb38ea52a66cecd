"""PQL text → AST: the practical subset of Adobe's Profile Query Language that Quorum speaks.

``parse_pql(text, subject)`` returns an ``Audience`` (validated against the catalog) or raises
``PQLSyntaxError`` (line, column, the offending token and a hint) or ``PQLValidationError``
(unknown field, wrong value type, operator not valid for the type — with field and position).
The audience's subject (person | account) is not part of the text: it is the audience's kind.

Conditions start with the subject (``person.`` or ``account.``); inside ``exists``/``select`` they
start with the variable the quantifier introduces. Field names are camelCase
(``person.jobTitle`` → ``job_title``); JSON keys follow ``attributes.`` / ``properties.``
(backquote keys that aren't plain names: ``person.attributes.`Lead Rating```).

==========================  ======================================================================
Form                        Example
==========================  ======================================================================
comparison                  ``person.leadScore >= 50`` (``=``, ``!=``, ``<``, ``<=``, ``>``, ``>=``)
boolean logic               ``a and (b or not c)`` — precedence: ``not`` > ``and`` > ``or``
in / notIn                  ``person.country in ["DE", "FR"]``, ``account.industry notIn ["Retail"]``
text functions              ``.contains("VP")``, ``.startsWith("Dir")``, ``.endsWith(".io")``,
                            ``.like("%ops%")`` (or ``x like "%ops%"``); a second argument ``false``
                            makes them case-insensitive: ``.contains("vp", false)``
regular expression          ``person.email.matches("@(acme|globex)\\.com$")`` (searches the text)
missing values              ``.isNull()``, ``.isNotNull()`` ("" counts as missing);
                            ``.exists()`` on a JSON key (present, even if null) or on a relation
relations (to-one)          ``person.account.industry = "Software"`` (primary, active account),
                            ``account.parent.country = "US"``, ``account.parent.isNull()``
time relative to now        ``o.closeDate occurs <= 30 days after now``,
                            ``e.occurredAt occurs <= 7 days before now``
                            (<, <=, >, >=; minutes, hours, days, weeks, months, years)
time range                  ``person.createdAt occurs between 2026-01-01 and 2026-03-31``
                            (both ends included; a date end includes its whole day)
literals                    ``"text"`` (JSON escapes), ``42``, ``12.50``, ``true``, ``false``,
                            ``2026-01-31``, ``2026-01-31T09:30:00Z``
exists                      ``exists op from person.opportunityPersons where op.role = "Decision Maker"``
count                       ``(select e from xEvent where e.type = "email.clicked"
                            and e.occurredAt occurs <= 30 days before now).count() >= 2``
first / last occurrence     ``(select e from xEvent where e.type = "web.visit").last().occurredAt
                            occurs <= 7 days before now``
other audiences             ``inSegment("<audience id>")``, ``ap.person.inSegment("<id>")``
comments                    ``// to the end of the line``
==========================  ======================================================================

Collections: a person has ``xEvent``, ``accountPersons``, ``opportunityPersons``, ``listMembers``,
``campaignMembers``; an account has ``accountPersons``, ``opportunities`` and ``xEvent`` (the events
of its active people); an opportunity has ``opportunityPersons``. ``cdp.segmentation.catalog``
lists every field. ``xEvent`` alone means the subject's events.

The ``where`` of ``exists`` extends to the end of the enclosing parentheses, as in Adobe's PQL.
"""

import datetime as dt
import json
import re
from decimal import Decimal
from functools import cache
from pathlib import Path

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, VisitError

from .ast import SUBJECTS, Audience, Between, Compare, Count, InSegment, Not, Occurrence, Occurs, Or, And, parse_datetime_text
from .errors import PQLSyntaxError, PQLValidationError, SegmentationError
from .validate import validate

CMP_OPS = {"=": "eq", "==": "eq", "!=": "ne", "<": "lt", "<=": "le", ">": "gt", ">=": "ge"}
STRING_METHODS = ("contains", "startsWith", "endsWith", "like")
METHODS = (*STRING_METHODS, "matches", "isNull", "isNotNull", "exists", "inSegment")
ROOT_COLLECTION = "xEvent"  # may be written without the subject, as in Adobe's PQL

TERMINAL_WORDS = {
    "CMP": "a comparison operator",
    "_IN": "in",
    "_NOTIN": "notIn",
    "_LIKE": "like",
    "_OCCURS": "occurs",
    "_BETWEEN": "between",
    "DIRECTION": "before or after",
    "_NOW": "now",
    "_AND": "and",
    "_OR": "or",
    "_NOT": "not",
    "_EXISTS": "exists",
    "_SELECT": "select",
    "_FROM": "from",
    "_WHERE": "where",
    "_LPAR": "(",
    "_RPAR": ")",
    "_LSQB": "[",
    "_RSQB": "]",
    "_DOT": ".",
    "_COMMA": ",",
    "NAME": "a name",
    "QUOTED_NAME": "a `quoted` name",
    "STRING": "a string",
    "NUMBER": "a number",
    "DATE": "a date",
    "DATETIME": "a date-time",
    "TRUE": "true",
    "FALSE": "false",
    "$END": "the end of the text",
}
TEST_TERMINALS = {"CMP", "_IN", "_NOTIN", "_LIKE", "_OCCURS"}
VALUE_TERMINALS = {"STRING", "NUMBER", "DATE", "DATETIME", "TRUE", "FALSE"}
CHAIN_AT_END = re.compile(r"(?:[A-Za-z_][A-Za-z0-9_]*|`[^`]*`)(?:\.(?:[A-Za-z_][A-Za-z0-9_]*|`[^`]*`))*$")


@cache
def _lark() -> Lark:
    grammar = (Path(__file__).with_name("pql.lark")).read_text()
    return Lark(grammar, parser="lalr", propagate_positions=True, maybe_placeholders=True)


def parse_pql(text: str, subject: str) -> Audience:
    """The validated Audience the PQL ``text`` describes, for an audience of ``subject``."""
    if subject not in SUBJECTS:
        raise ValueError(f'subject is "person" or "account", not {subject!r}')
    if not text or not text.strip():
        example = 'person.jobTitle = "CTO"' if subject == "person" else 'account.industry = "Software"'
        raise PQLSyntaxError(f"the condition is empty at line 1, column 1: write one, e.g. {example}", line=1, column=1)
    try:
        tree = _lark().parse(text)
    except UnexpectedInput as error:
        raise _syntax_error(text, error) from None
    try:
        condition = _Build().transform(tree)
    except VisitError as error:
        if isinstance(error.orig_exc, SegmentationError):
            raise error.orig_exc from None
        raise
    audience = Audience(subject, _Binder(subject).bind(condition, [subject]))
    validate(audience)
    return audience


# --- From parse tree to AST (paths still start with the subject or a variable) -----------------


class Chain(tuple):
    """A dotted name as written, with the position of its first segment."""

    pos: tuple = (1, 1)


def _pos(item) -> tuple:
    if isinstance(item, Token):
        return (item.line, item.column)
    return (item.line, item.column)


def _syntax(message, pos, token=""):
    return PQLSyntaxError(f"{message} at line {pos[0]}, column {pos[1]}", line=pos[0], column=pos[1], token=token)


class _Build(Transformer):
    # Literals ------------------------------------------------------------------------------
    def literal(self, children):
        (token,) = children
        return _read_literal(token)

    def list(self, children):
        return tuple(c for c in children if c is not None)

    def args(self, children):
        return tuple(children)

    def segment(self, children):
        (token,) = children
        name = token.value[1:-1] if token.type == "QUOTED_NAME" else token.value
        return (name, (token.line, token.column))

    def chain(self, children):
        chain = Chain(name for name, _ in children)
        chain.pos = children[0][1]
        return chain

    # Tests (what follows a chain) ----------------------------------------------------------
    def test_compare(self, children):
        op, value = children
        return ("compare", CMP_OPS[op.value], value)

    def test_in(self, children):
        return ("compare", "in", children[0])

    def test_not_in(self, children):
        return ("compare", "notIn", children[0])

    def test_like(self, children):
        return ("compare", "like", json.loads(children[0].value))

    def test_occurs(self, children):
        op, amount, unit, direction = children
        if op.value in ("=", "==", "!="):
            raise _syntax("occurs compares with <, <=, > or >=", _pos(op), op.value)
        return ("occurs", CMP_OPS[op.value], _whole(amount), unit.value, direction.value)

    def test_between(self, children):
        start, end = children
        return ("between", start, end)

    # Conditions ----------------------------------------------------------------------------
    @v_args(meta=True)
    def comparison(self, meta, children):
        chain, test = children
        return _leaf(tuple(chain), test, chain.pos)

    @v_args(meta=True)
    def call(self, meta, children):
        chain, args = children
        return _call(chain, args or ())

    def negation(self, children):
        return Not(children[0])

    def and_expr(self, children):
        return And(tuple(children))

    def or_expr(self, children):
        return Or(tuple(children))

    @v_args(meta=True)
    def exists(self, meta, children):
        var, chain, where = children
        return Count(tuple(chain), where, "ge", 1, var=var.value, pos=chain.pos)

    def selection(self, children):
        var, chain, where = children
        return var.value, chain, where

    @v_args(meta=True)
    def count(self, meta, children):
        (var, chain, where), function, op, number = children
        if function.value != "count":
            raise _syntax(f"{function.value}() is not a function of select; use count(), first() or last()", _pos(function), function.value)
        value = _whole(number)
        return Count(tuple(chain), where, CMP_OPS[op.value], value, var=var, pos=chain.pos)

    @v_args(meta=True)
    def occurrence(self, meta, children):
        (var, chain, where), function, (field_name, field_pos), test = children
        if function.value not in ("first", "last"):
            raise _syntax(f"{function.value}() is not a function of select; use count(), first() or last()", _pos(function), function.value)
        if test[0] == "compare" and test[1] in ("in", "notIn", "like"):
            raise _syntax(f"{function.value}().{field_name} compares with =, !=, <, <=, >, >=, occurs or between", field_pos, field_name)
        return Occurrence(function.value, tuple(chain), where, _leaf((field_name,), test, field_pos), var=var, pos=chain.pos)


def _whole(token) -> int:
    if "." in token.value or token.value.startswith("-"):
        raise _syntax(f"expected a whole number of at least 0, got {token.value}", _pos(token), token.value)
    return int(token.value)


def _read_literal(token):
    kind, text = token.type, token.value
    if kind == "STRING":
        return json.loads(text)
    if kind == "NUMBER":
        return Decimal(text) if "." in text else int(text)
    if kind in ("TRUE", "FALSE"):
        return kind == "TRUE"
    try:
        return dt.date.fromisoformat(text) if kind == "DATE" else parse_datetime_text(text)
    except ValueError:
        what = "date" if kind == "DATE" else "date-time"
        raise _syntax(f"{text} is not a valid {what}", _pos(token), text) from None


def _leaf(field, test, pos):
    kind, *rest = test
    if kind == "compare":
        op, value = rest
        return Compare(field, op, value, pos=pos)
    if kind == "occurs":
        op, amount, unit, direction = rest
        return Occurs(field, op, amount, unit, direction, pos=pos)
    start, end = rest
    return Between(field, start, end, pos=pos)


def _call(chain, args):
    method, base = chain[-1], tuple(chain[:-1])
    pos = chain.pos
    if method not in METHODS:
        hint = f"; use one of {', '.join(METHODS)}"
        raise _syntax(f"unknown function {method}(){hint}", pos, method)
    if method == "inSegment":
        if len(args) != 1 or not isinstance(args[0], str):
            raise _syntax('inSegment takes one audience id in double quotes: inSegment("…")', pos, method)
        return InSegment(args[0], base, pos=pos)
    if not base:
        raise _syntax(f"{method}() applies to a field, e.g. person.jobTitle.{method}(…)", pos, method)
    if method in ("isNull", "isNotNull", "exists"):
        if args:
            raise _syntax(f"{method}() takes no arguments", pos, method)
        return Compare(base, method, pos=pos)
    if method == "matches":
        if len(args) != 1 or not isinstance(args[0], str):
            raise _syntax('matches() takes one regular expression in double quotes', pos, method)
        return Compare(base, "matches", args[0], pos=pos)
    if not 1 <= len(args) <= 2 or not isinstance(args[0], str) or (len(args) == 2 and not isinstance(args[1], bool)):
        raise _syntax(f'{method}() takes a string and, optionally, false for case-insensitive: {method}("x", false)', pos, method)
    return Compare(base, method, args[0], case_sensitive=args[1] if len(args) == 2 else True, pos=pos)


# --- Scopes: strip the subject / variable from paths --------------------------------------------


class _Binder:
    """Rewrites paths relative to their scope: ``person.jobTitle`` → ``("jobTitle",)`` at the top,
    ``e.type`` → ``("type",)`` inside ``exists e from …``; refuses names from another scope."""

    def __init__(self, subject):
        self.subject = subject

    def bind(self, node, scopes):
        if isinstance(node, And | Or):
            return type(node)(tuple(self.bind(c, scopes) for c in node.conditions), pos=node.pos)
        if isinstance(node, Not):
            return Not(self.bind(node.condition, scopes), pos=node.pos)
        if isinstance(node, Compare):
            return Compare(self.strip(node.field, scopes, node.pos), node.op, node.value, node.case_sensitive, pos=node.pos)
        if isinstance(node, Occurs):
            return Occurs(self.strip(node.field, scopes, node.pos), node.op, node.amount, node.unit, node.direction, pos=node.pos)
        if isinstance(node, Between):
            return Between(self.strip(node.field, scopes, node.pos), node.start, node.end, pos=node.pos)
        if isinstance(node, InSegment):
            # inSegment() and person.inSegment() both mean the scope itself.
            path = self.strip(node.path, scopes, node.pos) if node.path and node.path != (scopes[-1],) else ()
            return InSegment(node.audience_id, path, pos=node.pos)
        if isinstance(node, Count):
            collection, inner = self.quantifier(node, scopes)
            where = None if node.where is None else self.bind(node.where, inner)
            return Count(collection, where, node.op, node.value, var=node.var, pos=node.pos)
        if isinstance(node, Occurrence):
            collection, inner = self.quantifier(node, scopes)
            where = None if node.where is None else self.bind(node.where, inner)
            return Occurrence(node.which, collection, where, node.test, var=node.var, pos=node.pos)
        raise TypeError(node)

    def quantifier(self, node, scopes):
        if node.var in scopes or node.var in SUBJECTS or node.var == ROOT_COLLECTION:
            raise PQLValidationError(
                f"choose another name than {node.var} for the variable (line {node.pos[0]}, column {node.pos[1]}): it is already taken",
                field=node.var, line=node.pos[0], column=node.pos[1],
            )  # fmt: skip
        if len(scopes) == 1 and node.collection == (ROOT_COLLECTION,):
            collection = node.collection
        else:
            collection = self.strip(node.collection, scopes, node.pos)
        return collection, [*scopes, node.var]

    def strip(self, chain, scopes, pos):
        current = scopes[-1]
        if chain and chain[0] == current:
            if len(chain) == 1:
                raise self.error(f"{current} alone is not a condition; name a field, e.g. {current}.…", chain, pos)
            return tuple(chain[1:])
        text = ".".join(chain)
        if chain and chain[0] in scopes[:-1]:
            raise self.error(f"inside this select, conditions start with {current}. ({chain[0]} belongs outside it)", chain, pos)
        if len(scopes) == 1 and chain and chain[0] in SUBJECTS:
            hint = f" (did you mean person.{text}?)" if self.subject == "person" and chain[0] == "account" else ""
            kind = "a person" if self.subject == "person" else "an account"
            raise self.error(f"this is {kind} audience: conditions start with {self.subject}.{hint}", chain, pos)
        raise self.error(f"conditions here start with {current}. (e.g. {current}.{text})", chain, pos)

    def error(self, message, chain, pos):
        text = ".".join(chain)
        return PQLValidationError(f"{text}: {message} (line {pos[0]}, column {pos[1]})", field=text, line=pos[0], column=pos[1])


# --- Syntax errors a person can act on -----------------------------------------------------------


def _end_position(text: str) -> tuple:
    lines = text.split("\n")
    return len(lines), len(lines[-1]) + 1


def _describe_expected(expected) -> str:
    words = sorted({TERMINAL_WORDS.get(name, name.lower()) for name in expected if not name.startswith("__")})
    return ", ".join(words[:-1]) + f" or {words[-1]}" if len(words) > 1 else "".join(words)


def _syntax_error(text: str, error: UnexpectedInput) -> PQLSyntaxError:
    if isinstance(error, UnexpectedCharacters):
        char = text[error.pos_in_stream] if error.pos_in_stream < len(text) else ""
        hints = {
            "'": "strings are written in double quotes",
            "&": "write and",
            "|": "write or",
            "!": "write not, or != to compare",
        }
        hint = hints.get(char, "")
        message = f"unexpected character '{char}' at line {error.line}, column {error.column}" + (f": {hint}" if hint else "")
        return PQLSyntaxError(message, line=error.line, column=error.column, token=char)
    expected = set(getattr(error, "expected", ()) or ())
    token = getattr(error, "token", None)
    at_end = isinstance(error, UnexpectedEOF) or token is None or token.type == "$END"
    if at_end:
        line, column = _end_position(text)
        shown = ""
    else:
        line, column, shown = token.line, token.column, token.value
    before = text[: token.start_pos] if not at_end and token.start_pos is not None else text
    chain = CHAIN_AT_END.search(before.rstrip())
    where = f"at line {line}, column {column}"
    if expected & TEST_TERMINALS and chain and chain.group(0) != "":
        message = (
            "expected a comparison operator (=, !=, <, <=, >, >=, in, notIn, like, occurs) or a function "
            f"such as .contains(…) after {chain.group(0)} {where}"
        )
    elif expected and expected <= VALUE_TERMINALS | {"_LSQB"}:
        message = f"expected a value (a string in double quotes, a number, a date, true or false) {where}"
    elif {"NAME", "_NOT", "_EXISTS"} <= expected:
        message = f"expected a condition (e.g. a field comparison, not …, exists …) {where}"
    elif at_end:
        message = f"the condition ends too early: expected {_describe_expected(expected)} {where}"
    else:
        message = f"unexpected '{shown}' {where}; expected {_describe_expected(expected)}"
    if not at_end and shown in ("AND", "OR", "NOT", "And", "Or", "Not"):
        message += f" (keywords are lowercase: {shown.lower()})"
    return PQLSyntaxError(message, line=line, column=column, token=shown, expected=tuple(sorted(expected)))
