"""The benchmark's audiences: each one as a rule tree (what the builder saves, compiled by
cdp.segmentation) and the same audience written by hand as one SQL query for PostgreSQL.

The hand-written queries follow the documented semantics (cdp/segmentation/catalog.py): a
person's ``account`` is a primary, active relation; an account's ``xEvent`` are the events of its
active people; ``inSegment`` reads the stored (realized) membership. Query parameters:
``%(sandbox)s``, ``%(now)s`` and ``%(audience_<key>)s`` (the id of another benchmark audience).
Values are chosen from what ``generate_demo_data`` produces, so every audience selects some rows.
"""

from dataclasses import dataclass

@dataclass(frozen=True)
class BenchAudience:
    key: str
    label: str
    subject: str
    condition: dict  # rule-tree condition; inSegment names other audiences as "@<key>"
    sql: str
    uses: tuple = ()  # keys of the audiences it reads with inSegment

    def definition(self, audience_ids: dict) -> dict:
        return {"subject": self.subject, "condition": _resolve(self.condition, audience_ids)}


def _resolve(node, audience_ids):
    if isinstance(node, dict):
        resolved = {k: _resolve(v, audience_ids) for k, v in node.items()}
        if node.get("type") == "inSegment":
            resolved["audience"] = str(audience_ids[node["audience"].removeprefix("@")])
        return resolved
    if isinstance(node, list):
        return [_resolve(v, audience_ids) for v in node]
    return node


# --- rule-tree shorthands ------------------------------------------------------------------------
def compare(field, op, value=None):
    node = {"type": "compare", "field": field, "op": op}
    if value is not None:
        node["value"] = value
    return node


def all_of(*conditions):
    return {"type": "and", "conditions": list(conditions)}


def any_of(*conditions):
    return {"type": "or", "conditions": list(conditions)}


def negate(condition):
    return {"type": "not", "condition": condition}


def within_days(days, op="le"):
    return {"type": "occurs", "field": "occurredAt", "op": op, "amount": days, "unit": "days", "direction": "before"}


def count(collection, where, op="ge", value=1):
    return {"type": "count", "collection": collection, "where": where, "op": op, "value": value}


def in_segment(key, field=""):
    node = {"type": "inSegment", "audience": f"@{key}"}
    if field:
        node["field"] = field
    return node


def event_types(*types):
    return compare("type", "eq", types[0]) if len(types) == 1 else compare("type", "in", list(types))


def recent(types, days):
    return all_of(event_types(*types), within_days(days))


WINDOW = "e.occurred_at >= %(now)s::timestamptz - interval '{days} days' AND e.occurred_at <= %(now)s::timestamptz"
MEMBERS = "SELECT member_id FROM cdp_audiencemember WHERE audience_id = %(audience_{key})s AND status = 'realized'"
PRIMARY_ACCOUNT = "ap.person_id = p.id AND ap.is_primary AND ap.is_active"


AUDIENCES = [
    BenchAudience(
        "senior_us", "VPs and C-level in the US", "person",
        all_of(compare("jobLevel", "in", ["VP", "C-Level"]), compare("country", "eq", "United States")),
        """SELECT p.id FROM cdp_person p
           WHERE p.sandbox_id = %(sandbox)s AND p.job_level IN ('VP', 'C-Level') AND p.country = 'United States'""",
    ),
    BenchAudience(
        "scored_sponsors", "Executive sponsors scoring ≥ 60 (JSON attribute)", "person",
        all_of(compare("leadScore", "ge", 60), compare("attributes.persona", "eq", "Executive Sponsor")),
        """SELECT p.id FROM cdp_person p
           WHERE p.sandbox_id = %(sandbox)s AND p.lead_score >= 60 AND p.attributes ->> 'persona' = 'Executive Sponsor'""",
    ),
    BenchAudience(
        "marketing_titles", "Title contains 'marketing' (any case), subscribed", "person",
        all_of({**compare("jobTitle", "contains", "marketing"), "caseSensitive": False}, compare("isUnsubscribed", "eq", False)),
        """SELECT p.id FROM cdp_person p
           WHERE p.sandbox_id = %(sandbox)s AND lower(p.job_title) LIKE '%%marketing%%' AND NOT p.is_unsubscribed""",
    ),
    BenchAudience(
        "clickers_30d", "≥ 2 email clicks in the last 30 days", "person",
        count("xEvent", recent(["email.clicked"], 30), "ge", 2),
        f"""SELECT e.person_id FROM cdp_experienceevent e
            WHERE e.sandbox_id = %(sandbox)s AND e.type = 'email.clicked' AND {WINDOW.format(days=30)}
            GROUP BY e.person_id HAVING count(*) >= 2""",
    ),
    BenchAudience(
        "visitors_not_openers", "Visited in 7 days, opened no email in 30", "person",
        all_of(count("xEvent", recent(["web.visit"], 7)), negate(count("xEvent", recent(["email.opened"], 30)))),
        f"""SELECT p.id FROM cdp_person p
            WHERE p.sandbox_id = %(sandbox)s
              AND EXISTS (SELECT 1 FROM cdp_experienceevent e WHERE e.person_id = p.id AND e.type = 'web.visit'
                          AND {WINDOW.format(days=7)})
              AND NOT EXISTS (SELECT 1 FROM cdp_experienceevent e WHERE e.person_id = p.id AND e.type = 'email.opened'
                              AND {WINDOW.format(days=30)})""",
    ),
    BenchAudience(
        "new_engaged", "First event in the last 14 days", "person",
        {"type": "occurrence", "which": "first", "collection": "xEvent", "test": within_days(14)},
        """SELECT e.person_id FROM cdp_experienceevent e WHERE e.sandbox_id = %(sandbox)s AND e.person_id IS NOT NULL
           GROUP BY e.person_id
           HAVING min(e.occurred_at) >= %(now)s::timestamptz - interval '14 days' AND min(e.occurred_at) <= %(now)s::timestamptz""",
    ),
    BenchAudience(
        "lapsed_openers", "Last email open more than 30 days ago", "person",
        {"type": "occurrence", "which": "last", "collection": "xEvent", "where": event_types("email.opened"),
         "test": within_days(30, "gt")},
        """SELECT e.person_id FROM cdp_experienceevent e WHERE e.sandbox_id = %(sandbox)s AND e.type = 'email.opened'
           GROUP BY e.person_id HAVING max(e.occurred_at) < %(now)s::timestamptz - interval '30 days'""",
    ),
    BenchAudience(
        "advisory_board", "On the static list 'Customer Advisory Board 2026'", "person",
        count("listMembers", compare("list.name", "eq", "Customer Advisory Board 2026")),
        """SELECT p.id FROM cdp_person p WHERE p.sandbox_id = %(sandbox)s AND EXISTS (
               SELECT 1 FROM cdp_listmember lm JOIN cdp_marketinglist l ON l.id = lm.marketing_list_id
               WHERE lm.person_id = p.id AND l.name = 'Customer Advisory Board 2026')""",
    ),
    BenchAudience(
        "webinar_responders", "Responded to a webinar campaign", "person",
        count("campaignMembers", all_of(compare("hasResponded", "eq", True), compare("campaign.type", "eq", "Webinar"))),
        """SELECT p.id FROM cdp_person p WHERE p.sandbox_id = %(sandbox)s AND EXISTS (
               SELECT 1 FROM cdp_campaignmember cm JOIN cdp_campaign c ON c.id = cm.campaign_id
               WHERE cm.person_id = p.id AND cm.has_responded AND c.type = 'Webinar')""",
    ),
    BenchAudience(
        "software_midsize_staff", "Works at a Software account with ≥ 200 employees", "person",
        all_of(compare("account.industry", "eq", "Software"), compare("account.employees", "ge", 200)),
        # Each condition on its own through the primary accounts (catalog semantics): two EXISTS.
        f"""SELECT p.id FROM cdp_person p WHERE p.sandbox_id = %(sandbox)s
              AND EXISTS (SELECT 1 FROM cdp_accountperson ap JOIN cdp_account a ON a.id = ap.account_id
                          WHERE {PRIMARY_ACCOUNT} AND a.industry = 'Software')
              AND EXISTS (SELECT 1 FROM cdp_accountperson ap JOIN cdp_account a ON a.id = ap.account_id
                          WHERE {PRIMARY_ACCOUNT} AND a.employees >= 200)""",
    ),
    BenchAudience(
        "senior_committee", "Accounts with ≥ 3 active directors or above", "account",
        count("accountPersons", all_of(compare("person.jobLevel", "in", ["Director", "VP", "C-Level"]),
                                       compare("isActive", "eq", True)), "ge", 3),
        """SELECT ap.account_id FROM cdp_accountperson ap JOIN cdp_person p ON p.id = ap.person_id
           WHERE ap.sandbox_id = %(sandbox)s AND ap.is_active AND p.job_level IN ('Director', 'VP', 'C-Level')
           GROUP BY ap.account_id HAVING count(*) >= 3""",
    ),
    BenchAudience(
        "open_pipeline", "Has an open opportunity of ≥ 50,000", "account",
        count("opportunities", all_of(compare("isClosed", "eq", False), compare("amount", "ge", {"decimal": "50000.00"}))),
        """SELECT a.id FROM cdp_account a WHERE a.sandbox_id = %(sandbox)s AND EXISTS (
               SELECT 1 FROM cdp_opportunity o WHERE o.account_id = a.id AND NOT o.is_closed AND o.amount >= 50000)""",
    ),
    BenchAudience(
        "software_or_midmarket_parent", "Parent account is Software or tier Mid-Market", "account",
        any_of(compare("parent.industry", "eq", "Software"), compare("parent.attributes.tier", "eq", "Mid-Market")),
        """SELECT a.id FROM cdp_account a JOIN cdp_account pa ON pa.id = a.parent_id
           WHERE a.sandbox_id = %(sandbox)s AND (pa.industry = 'Software' OR pa.attributes ->> 'tier' = 'Mid-Market')""",
    ),
    BenchAudience(
        "active_accounts_30d", "Accounts with ≥ 10 visits or form fills in 30 days", "account",
        count("xEvent", recent(["web.visit", "form.filled"], 30), "ge", 10),
        f"""SELECT ap.account_id FROM cdp_experienceevent e
            JOIN cdp_accountperson ap ON ap.person_id = e.person_id AND ap.is_active
            WHERE e.sandbox_id = %(sandbox)s AND e.type IN ('web.visit', 'form.filled') AND {WINDOW.format(days=30)}
            GROUP BY ap.account_id HAVING count(*) >= 10""",
    ),
    BenchAudience(
        "clickers_with_pipeline", "inSegment: clickers whose account has open pipeline", "person",
        all_of(in_segment("clickers_30d"), in_segment("open_pipeline", "account")),
        f"""SELECT p.id FROM cdp_person p
            WHERE p.sandbox_id = %(sandbox)s AND p.id IN ({MEMBERS.format(key="clickers_30d")})
              AND EXISTS (SELECT 1 FROM cdp_accountperson ap WHERE {PRIMARY_ACCOUNT}
                          AND ap.account_id IN ({MEMBERS.format(key="open_pipeline")}))""",
        uses=("clickers_30d", "open_pipeline"),
    ),
    BenchAudience(
        "committee_no_pipeline", "inSegment chain: senior committee without open pipeline", "account",
        all_of(in_segment("senior_committee"), negate(in_segment("open_pipeline"))),
        f"""SELECT a.id FROM cdp_account a
            WHERE a.sandbox_id = %(sandbox)s AND a.id IN ({MEMBERS.format(key="senior_committee")})
              AND a.id NOT IN ({MEMBERS.format(key="open_pipeline")})""",
        uses=("senior_committee", "open_pipeline"),
    ),
]
