"""Incremental evaluation equals full evaluation after random changes (issue 4).

A small random sandbox (accounts with parents, people with accounts and events) and a fixed set of
audiences (person and account, attributes, event counts in windows, last occurrence, relations,
parent accounts, inSegment across kinds) evaluated in full. Then random changes go through the real
ingestion services — attribute changes, new events, new relations, account and parent changes,
new people, merges — and after each, ``evaluate_changes`` runs for the ids the store reports
changed (what the profiles_changed receiver does). The stored membership must then equal a fresh
full evaluation of every audience.

Time is fixed (``NOW`` plus a second per change) and events sit between whole hours, so no time
window edge is crossed while an example runs: re-checking windows is the periodic sweep's job,
not the incremental path's.
"""

import datetime as dt

from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cdp.choices import MembershipStatus
from cdp.models import Account, AudienceMember, Person
from cdp.services.audiences import evaluate_changes, evaluate_in_full, save_audience
from tests.cdp.audiences.test_evaluation import compare, person_audience
from tests.cdp.ingest_helpers import ingest

NOW = dt.datetime(2026, 6, 15, 12, 0, tzinfo=dt.UTC)
DOMAINS = ["acme.example", "globex.example", "initech.example"]
LEVELS = ["VP", "Manager", "Director"]
SCORES = [10, 50, 90]
INDUSTRIES = ["Software", "Retail"]
TIERS = ["gold", "silver"]
EVENT_TYPES = ["email.clicked", "web.visit"]
DAYS_AGO = [0, 2, 5, 9, 20, 40]
MAX_PEOPLE = 6

PROPERTY = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,  # the same examples on every run and database
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


# --- audiences -----------------------------------------------------------------------------------
def within_days(days, op="le"):
    return {"type": "occurs", "field": "occurredAt", "op": op, "amount": days, "unit": "days", "direction": "before"}


def count(collection, where, op="ge", value=1):
    return {"type": "count", "collection": collection, "where": where, "op": op, "value": value}


def both(*conditions):
    return {"type": "and", "conditions": list(conditions)}


def either(*conditions):
    return {"type": "or", "conditions": list(conditions)}


def in_segment(audience, field=""):
    return {"type": "inSegment", "audience": str(audience.pk), **({"field": field} if field else {})}


def create_audiences(sandbox) -> dict:
    """name → Audience, saved through the service (each after those it reads)."""
    account_audience = lambda condition: {"subject": "account", "condition": condition}  # noqa: E731
    made = {}

    def save(name, definition):
        made[name] = save_audience(sandbox, name=name, definition=definition)

    save("vp or scored", person_audience(either(compare("jobLevel", "eq", "VP"), compare("leadScore", "ge", 50))))
    clicks = both(compare("type", "eq", "email.clicked"), within_days(7))
    save("2 clicks in 7 days", person_audience(count("xEvent", clicks, "ge", 2)))
    visits = both(compare("type", "eq", "web.visit"), within_days(30))
    save("no visit in 30 days", person_audience({"type": "not", "condition": count("xEvent", visits)}))
    save("last event within 10 days", person_audience({"type": "occurrence", "which": "last", "collection": "xEvent", "test": within_days(10)}))
    save("software family staff", person_audience(
        either(compare("account.industry", "eq", "Software"), compare("account.parent.industry", "eq", "Software"))
    ))
    save("busy colleagues", person_audience(count("account.xEvent", within_days(30), "ge", 3)))
    save("has a VP", account_audience(count("accountPersons", compare("person.jobLevel", "eq", "VP"))))
    save("3 events in 30 days", account_audience(count("xEvent", within_days(30), "ge", 3)))
    save("gold family", account_audience(
        either(compare("attributes.tier", "eq", "gold"), compare("parent.attributes.tier", "eq", "gold"))
    ))
    save("vp or scored at busy accounts", person_audience(
        both(in_segment(made["vp or scored"]), in_segment(made["3 events in 30 days"], "account"))
    ))
    save("has a VP, not gold", account_audience(
        both(in_segment(made["has a VP"]), {"type": "not", "condition": in_segment(made["gold family"])})
    ))
    return made


def memberships(audiences) -> dict:
    return {
        name: set(
            AudienceMember.objects.filter(audience=audience, status=MembershipStatus.REALIZED).values_list("member_id", flat=True)
        )
        for name, audience in audiences.items()
    }


# --- the random sandbox and changes ------------------------------------------------------------
def email(index):
    return f"p{index}@people.example"


def ecid(index):
    return f"{index + 1:038d}"


accounts = st.lists(
    st.fixed_dictionaries({"industry": st.sampled_from(INDUSTRIES), "tier": st.sampled_from(TIERS), "parent": st.sampled_from([True, False])}),
    min_size=len(DOMAINS), max_size=len(DOMAINS),
)
events = st.lists(st.tuples(st.sampled_from(EVENT_TYPES), st.sampled_from(DAYS_AGO)), max_size=3)
people = st.lists(
    st.fixed_dictionaries({
        "level": st.sampled_from(LEVELS), "score": st.sampled_from(SCORES),
        "account": st.sampled_from([*range(len(DOMAINS)), None]), "events": events,
    }),
    min_size=2, max_size=MAX_PEOPLE - 1,
)
person_index = st.integers(0, MAX_PEOPLE - 1)
account_index = st.integers(0, len(DOMAINS) - 1)
changes = st.lists(
    st.one_of(
        st.tuples(st.just("attributes"), person_index, st.sampled_from(LEVELS), st.sampled_from(SCORES)),
        st.tuples(st.just("event"), person_index, st.sampled_from(EVENT_TYPES), st.sampled_from(DAYS_AGO)),
        st.tuples(st.just("relation"), person_index, account_index),
        st.tuples(st.just("account"), account_index, st.sampled_from(INDUSTRIES), st.sampled_from(TIERS)),
        st.tuples(st.just("parent"), account_index, account_index),
        st.tuples(st.just("new person"), st.sampled_from(LEVELS), account_index),
        st.tuples(st.just("merge"), person_index, person_index),
    ),
    min_size=1, max_size=6,
)


class World:
    """Writes the random sandbox and its changes through the ingestion services."""

    def __init__(self, sandbox):
        self.sandbox, self.people, self.events_sent = sandbox, 0, 0

    def store(self, entity, row):
        result, rejections = ingest(self.sandbox, entity, [row])
        assert not rejections, rejections
        return result

    def account_row(self, index, industry, tier, parent=None):
        row = {"domain": DOMAINS[index], "name": DOMAINS[index], "industry": industry, "attributes.tier": tier}
        if parent is not None:
            row["parent.domain"] = DOMAINS[parent]
        return row

    def person_row(self, index, level, score=None, account=None):
        row = {"email": email(index), "identity.ecid": ecid(index), "job_level": level}
        if score is not None:
            row["lead_score"] = score
        if account is not None:
            row["account.domain"] = DOMAINS[account]
        return row

    def event_row(self, index, event_type, days_ago):
        self.events_sent += 1
        # Half past the hour: never on a window's edge, which is a whole number of days from NOW.
        occurred = NOW - dt.timedelta(days=days_ago, minutes=30)
        return {"type": event_type, "occurred_at": occurred.isoformat(), "identity.email": email(index),
                "external_id": f"event-{self.events_sent}"}

    def build(self, accounts, people):
        for index, account in enumerate(accounts):
            parent = index - 1 if account["parent"] and index else None
            self.store("account", self.account_row(index, account["industry"], account["tier"], parent))
        for person in people:
            self.store("person", self.person_row(self.people, person["level"], person["score"], person["account"]))
            for event_type, days_ago in person["events"]:
                self.store("event", self.event_row(self.people, event_type, days_ago))
            self.people += 1

    def change(self, change):
        """Apply one change; returns the store's result (its changed ids), or None if not applicable."""
        kind, *args = change
        if kind == "new person":
            level, account = args
            self.people += 1
            return self.store("person", self.person_row(self.people - 1, level, account=account))
        if kind == "account":
            index, industry, tier = args
            return self.store("account", self.account_row(index, industry, tier))
        if kind == "parent":
            child, parent = sorted(args, reverse=True)  # parents have lower indexes: no cycles
            if child == parent:
                return None
            return self.store("account", {"domain": DOMAINS[child], "parent.domain": DOMAINS[parent]})
        person = args[0] % self.people
        if kind == "attributes":
            return self.store("person", self.person_row(person, args[1], args[2]))
        if kind == "event":
            return self.store("event", self.event_row(person, *args[1:]))
        if kind == "relation":
            return self.store("person", {"email": email(person), "account.domain": DOMAINS[args[1]]})
        other = args[1] % self.people
        if kind == "merge" and other != person:
            # One record carrying both people's identities: they become one profile.
            return self.store("person", {"email": email(person), "identity.ecid": ecid(other)})
        return None


@PROPERTY
@given(accounts=accounts, people=people, changes=changes)
def test_incremental_evaluation_equals_full_evaluation_after_random_changes(sandbox, accounts, people, changes):
    with transaction.atomic():  # each example starts from an empty sandbox
        world = World(sandbox)
        world.build(accounts, people)
        audiences = create_audiences(sandbox)
        ids = [a.pk for a in audiences.values()]
        evaluate_in_full(sandbox, ids, now=NOW)

        now = NOW
        for change in changes:
            result = world.change(change)
            if result is not None:
                now += dt.timedelta(seconds=1)
                evaluate_changes(sandbox, person_ids=result.person_ids, account_ids=result.account_ids, now=now)
        incremental = memberships(audiences)

        evaluate_in_full(sandbox, ids, now=now)
        full = memberships(audiences)
        transaction.set_rollback(True)

    differences = {
        name: {"missing": sorted(full[name] - incremental[name]), "extra": sorted(incremental[name] - full[name])}
        for name in audiences
        if full[name] != incremental[name]
    }
    assert not differences, f"incremental membership differs from a full evaluation after {changes}: {differences}"


def test_changes_reach_child_accounts_and_colleagues(sandbox):
    """Cases the property test found: a condition through ``parent`` must be re-checked for the
    changed account's children (and their people), and one through ``account.xEvent`` for the
    changed person's colleagues."""
    world = World(sandbox)
    world.build(
        [{"industry": "Retail", "tier": "silver", "parent": False}, {"industry": "Retail", "tier": "silver", "parent": True}],
        [{"level": "Manager", "score": 10, "account": 1, "events": []}, {"level": "Manager", "score": 10, "account": 1, "events": []}],
    )
    audiences = create_audiences(sandbox)
    evaluate_in_full(sandbox, [a.pk for a in audiences.values()], now=NOW)
    child = Account.objects.for_sandbox(sandbox).get(domain=DOMAINS[1])
    first, second = (Person.objects.for_sandbox(sandbox).get(email=email(i)).pk for i in (0, 1))

    for change in [("account", 0, "Software", "gold")] + [("event", 0, "web.visit", 2)] * 3:
        result = world.change(change)
        evaluate_changes(sandbox, person_ids=result.person_ids, account_ids=result.account_ids, now=NOW)

    stored = memberships(audiences)
    assert child.pk in stored["gold family"]  # its parent turned gold
    assert {first, second} <= stored["software family staff"]  # their account's parent is Software now
    assert second in stored["busy colleagues"]  # the first person's events count for the account
    evaluate_in_full(sandbox, [a.pk for a in audiences.values()], now=NOW)
    assert memberships(audiences) == stored
