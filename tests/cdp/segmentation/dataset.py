"""A small, fixed, deliberately awkward profile store for the compiler tests: accounts with
parents and grandparents, people with several (primary / secondary / inactive) accounts or none,
blank and NULL values, JSON attributes of every type (and strings that look like numbers),
opportunities open and closed around NOW, contact roles, lists, campaigns and events spread
from a year before NOW to just after it. A second sandbox holds look-alike rows that must never
be counted."""

import datetime as dt
import random
from decimal import Decimal

from cdp.models import (
    Account,
    AccountPerson,
    Campaign,
    CampaignMember,
    ExperienceEvent,
    ListMember,
    MarketingList,
    Opportunity,
    OpportunityPerson,
    Person,
)

NOW = dt.datetime(2026, 6, 15, 12, 0, tzinfo=dt.UTC)
TODAY = NOW.date()


def ago(days=0, hours=0, minutes=0):
    return NOW - dt.timedelta(days=days, hours=hours, minutes=minutes)


ACCOUNTS = [
    # key, name, industry, employees, revenue, country, parent key, attributes
    ("acme", "Acme Corp", "Software", 500, Decimal("1000000.50"), "US", None, {"tier": "gold", "score": 90, "vip": True}),
    ("acme-eu", "Acme Europe", "Software", 120, None, "DE", "acme", {"tier": "silver", "score": 40.5}),
    ("globex", "Globex", "Manufacturing", 5000, Decimal("2500000.00"), "US", None, {"tier": "Gold", "region code": "NA"}),
    ("initech", "Initech", "", None, None, "", "globex", {}),
    ("umbrella", "Umbrella", "Pharma", 80, Decimal("99.99"), "FR", "acme-eu", {"score": "90", "tier": ""}),
    ("hooli", "Hooli", "Software", 20, Decimal("0.00"), "US", None, {"tier": None, "vip": False, "5": "five"}),
]

PEOPLE = [
    # key, first, last, email, title, level, department, country, city, score, source, unsubscribed, created days ago, attributes
    ("ann", "Ann", "Lee", "ann@acme.com", "Chief Technology Officer", "C-Level", "Engineering", "US", "Austin", 85, "Web", False, 400, {"tier": "gold", "score": 9, "beta": True}),
    ("bob", "Bob", "Stone", "bob@acme.com", "VP Engineering", "VP", "Engineering", "US", "Austin", 60, "Event", False, 200, {"tier": "silver", "score": 4.5}),
    ("cy", "Cy", "Park", "cy@acme.eu", "Developer", "Individual", "Engineering", "DE", "Berlin", None, "", False, 30, {"score": "9"}),
    ("dee", "Dee", "Ng", "dee@globex.com", "vp of sales", "VP", "Sales", "US", "Chicago", 45, "Web", True, 10, {"tier": "Gold", "note": "50% off"}),
    ("eve", "Eve", "Ray", "eve@globex.com", "", "", "", "", "", 10, "Partner", False, 2, {"beta": False, "tier": None}),
    ("fay", "Fay", "Orr", "fay@initech.com", "Director of Operations", "Director", "Operations", "FR", "Paris", 99, "Web", False, 90, {"region code": "EU"}),
    ("gus", "Gus", "Hale", "gus@umbrella.fr", "CTO", "C-Level", "Engineering", "FR", "Lyon", 70, "Event", False, 365, {}),
    ("hal", "Hal", "Ito", "hal@hooli.com", "Sales Rep", "Individual", "Sales", "US", "Palo Alto", 0, "Web", False, 1, {"tier": "bronze", "score": 0}),
    ("ivy", "Ivy", "Quinn", "ivy@nowhere.org", "Consultant", "Individual", "", "GB", "London", 30, "Referral", False, 45, {"tier": "gold"}),
    ("jon", "Jon", "Wu", "", "VP Marketing", "VP", "Marketing", "US", "Austin", 55, "Web", True, 700, {"5": "five"}),
    ("kim", "Kim", "Ro", "kim@acme.com", "Developer_Advocate", "Individual", "Marketing", "US", "Austin", 20, "Web", False, 15, {"tier": "GOLD"}),
]

RELATIONS = [
    # person, account, role, primary, active
    ("ann", "acme", "Executive", True, True),
    ("bob", "acme", "Engineering", True, True),
    ("bob", "globex", "Advisor", False, True),
    ("cy", "acme-eu", "", True, True),
    ("dee", "globex", "Sales", True, True),
    ("eve", "globex", "", True, False),  # left the company
    ("fay", "initech", "Operations", True, True),
    ("gus", "umbrella", "Executive", True, True),
    ("gus", "acme", "Board", True, True),  # two primary accounts
    ("hal", "hooli", "Sales", False, True),  # an account, but not a primary one
    ("kim", "acme", "Marketing", True, True),
    # ivy and jon have no account
]

OPPORTUNITIES = [
    # key, account, name, stage, amount, close days from today, closed, won, attributes
    ("o1", "acme", "Acme renewal", "Negotiation", Decimal("50000.00"), 20, False, False, {"source": "renewal"}),
    ("o2", "acme", "Acme expansion", "Closed Won", Decimal("120000.00"), -40, True, True, {}),
    ("o3", "globex", "Globex pilot", "Discovery", Decimal("8000.50"), 200, False, False, {"source": "inbound", "priority": 2}),
    ("o4", "initech", "Initech deal", "Closed Lost", None, -5, True, False, {}),
    ("o5", "umbrella", "Umbrella trial", "Proposal", Decimal("15000.00"), None, False, False, {}),
    ("o6", None, "Orphan deal", "Discovery", Decimal("100.00"), 3, False, False, {}),
]

CONTACT_ROLES = [
    # opportunity, person, role, primary
    ("o1", "ann", "Decision Maker", True),
    ("o1", "bob", "Influencer", False),
    ("o2", "ann", "Decision Maker", False),
    ("o3", "dee", "Champion", True),
    ("o4", "fay", "Decision Maker", True),
    ("o5", "gus", "Executive Sponsor", False),
    ("o6", "ivy", "", False),
]

LISTS = [("l1", "Webinar 2026"), ("l2", "Newsletter")]
LIST_MEMBERS = [("l1", "ann", 10), ("l1", "cy", 100), ("l2", "ann", 400), ("l2", "dee", 3), ("l2", "jon", 1)]
CAMPAIGNS = [("c1", "Spring Launch", "Email", "Active"), ("c2", "Trade Show", "Event", "Completed")]
CAMPAIGN_MEMBERS = [
    # campaign, person, status, responded, added days ago
    ("c1", "ann", "Responded", True, 20),
    ("c1", "bob", "Sent", False, 20),
    ("c2", "bob", "Attended", True, 300),
    ("c2", "fay", "Registered", False, 5),
    ("c1", "kim", "", False, 1),
]

EVENT_TYPES = ["email.clicked", "email.opened", "web.visit", "form.filled"]
EVENT_PROPERTIES = [{}, {"campaign": "spring"}, {"url": "/pricing"}, {"campaign": "Spring", "score": 5}, {"flag": True}, {"score": 2.5, "url": ""}]
# Days before NOW an event may happen: around the usual windows' edges, plus one in the future.
EVENT_DAYS = [0, 0.5, 1, 6.9, 7, 7.1, 13, 29, 30, 31, 45, 89, 95, 200, 366, -1]


def build(sandbox, *, seed=7):
    """Create the dataset in ``sandbox``; returns {key: id} for accounts, people, etc."""
    rng = random.Random(seed)
    ids = {}
    for key, name, industry, employees, revenue, country, _, attributes in ACCOUNTS:
        account = Account.objects.create(
            sandbox=sandbox, name=name, domain=f"{key}.example", industry=industry, employees=employees,
            annual_revenue=revenue, country=country, attributes=attributes,
        )  # fmt: skip
        ids[key] = account.pk
    for key, *_, parent, _attrs in ACCOUNTS:
        if parent:
            Account.objects.filter(pk=ids[key]).update(parent_id=ids[parent])
    for index, (key, first, last, email, title, level, dept, country, city, score, source, unsub, age, attributes) in enumerate(PEOPLE):
        person = Person.objects.create(
            sandbox=sandbox, first_name=first, last_name=last, email=email, job_title=title, job_level=level,
            department=dept, country=country, city=city, lead_score=score, lead_source=source,
            is_unsubscribed=unsub, attributes=attributes,
        )  # fmt: skip
        Person.objects.filter(pk=person.pk).update(created_at=ago(days=age, minutes=index))
        ids[key] = person.pk
    for person, account, role, primary, active in RELATIONS:
        AccountPerson.objects.create(sandbox=sandbox, person_id=ids[person], account_id=ids[account], role=role, is_primary=primary, is_active=active)
    for key, account, name, stage, amount, close_in, closed, won, attributes in OPPORTUNITIES:
        opportunity = Opportunity.objects.create(
            sandbox=sandbox, account_id=ids[account] if account else None, external_id=key, name=name, stage=stage,
            amount=amount, close_date=None if close_in is None else TODAY + dt.timedelta(days=close_in),
            is_closed=closed, is_won=won, attributes=attributes,
        )  # fmt: skip
        ids[key] = opportunity.pk
    for opportunity, person, role, primary in CONTACT_ROLES:
        OpportunityPerson.objects.create(sandbox=sandbox, opportunity_id=ids[opportunity], person_id=ids[person], role=role, is_primary=primary)
    for key, name in LISTS:
        ids[key] = MarketingList.objects.create(sandbox=sandbox, external_id=key, name=name).pk
    for list_key, person, days in LIST_MEMBERS:
        ListMember.objects.create(sandbox=sandbox, marketing_list_id=ids[list_key], person_id=ids[person], added_at=ago(days=days))
    for key, name, kind, status in CAMPAIGNS:
        ids[key] = Campaign.objects.create(sandbox=sandbox, external_id=key, name=name, type=kind, status=status).pk
    for campaign, person, status, responded, days in CAMPAIGN_MEMBERS:
        CampaignMember.objects.create(
            sandbox=sandbox, campaign_id=ids[campaign], person_id=ids[person], status=status, has_responded=responded, added_at=ago(days=days)
        )
    events = []
    for key, *_ in PEOPLE:
        for _ in range(rng.randint(0, 7)):
            events.append(
                ExperienceEvent(
                    sandbox=sandbox, person_id=ids[key], type=rng.choice(EVENT_TYPES),
                    occurred_at=NOW - dt.timedelta(days=rng.choice(EVENT_DAYS), minutes=rng.randint(0, 30)),
                    properties=dict(rng.choice(EVENT_PROPERTIES)),
                )  # fmt: skip
            )
    ExperienceEvent.objects.bulk_create(events)
    return ids


def text_pool():
    """Values worth comparing text fields with: present ones, case variants, absent ones."""
    values = {"gold", "Gold", "GOLD", "silver", "Software", "US", "FR", "VP", "vp", "Austin", "Developer", "Decision Maker",
              "Webinar 2026", "Spring Launch", "Responded", "email.clicked", "web.visit", "form.filled", "spring", "/pricing",
              "Acme Corp", "Acme", "acme", "Negotiation", "Closed Won", "Executive", "Sales", "nobody", "50% off", "Email"}  # fmt: skip
    return sorted(values)
