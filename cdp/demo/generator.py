"""Fill a sandbox with a realistic B2B data set: accounts (with parents), people, identities,
relations, opportunities and contact roles, static lists, campaigns and members, and 90 days of
experience events.

Rows are written straight into the tables (COPY on PostgreSQL) rather than through the ingest
path, in chunks of one transaction each, so ten million events take minutes and constant memory.
They satisfy every constraint and look like ingested data: identities in the 'demo' dataset,
per-field provenance stamped 'demo', standard fields in columns, the rest in ``attributes``.

What the generator keeps in memory is a few compact arrays per account and per person (a few
tens of bytes a person; about 300 MB of RSS for a million people), never the rows themselves.
Rows written here send no ``profiles_changed`` signal; the sandbox's audiences, if it has any, are
queued for a full evaluation at the end.
"""

import bisect
import datetime as dt
import json
import math
import random
import time
from array import array
from dataclasses import dataclass
from decimal import Decimal
from itertools import accumulate, islice

from django.db import transaction
from django.db.models import Value
from django.db.models.functions import Length, StrIndex, Substr

from cdp.choices import EventType, IdentityNamespace
from cdp.models import (
    Account,
    AccountPerson,
    Campaign,
    CampaignMember,
    ExperienceEvent,
    Identity,
    ListMember,
    MarketingList,
    Opportunity,
    OpportunityPerson,
    Person,
)

from . import words
from .fake import CompanyMaker, PersonMaker, Weighted, ascii_slug, country_by_code, ecid, level_rank, sfdc_id
from .tables import JsonText, TableWriter, analyze, is_postgresql, reserve_ids

DATASET = "demo"
EVENT_WINDOW_DAYS = 90
CHUNK_ROWS = 50_000  # rows of the driving table per transaction
DAY = 86_400.0
# Rough UTC offsets (hours) so activity follows each person's working day.
UTC_OFFSETS = {"US": -6, "CA": -5, "MX": -6, "BR": -3, "GB": 0, "IE": 0, "DE": 1, "FR": 1, "NL": 1, "ES": 1, "IT": 1,
               "SE": 1, "CH": 1, "IN": 5, "SG": 8, "JP": 9, "AU": 10}
HOUR_WEIGHTS = [0.04, 0.03, 0.03, 0.03, 0.04, 0.08, 0.2, 0.45, 0.8, 1.0, 1.0, 0.95,
                0.75, 0.9, 1.0, 0.95, 0.8, 0.6, 0.4, 0.3, 0.25, 0.2, 0.12, 0.06]
WEEKEND_FACTOR = 0.25


class DemoDataError(Exception):
    """The generator refuses to run (e.g. the sandbox already has people and --append wasn't given)."""


@dataclass
class DemoSizes:
    accounts: int = 200
    people: int = 2_000
    events: int = 20_000
    opportunities: int | None = None  # None: derived from accounts
    lists: int | None = None
    campaigns: int | None = None

    def resolved(self) -> "DemoSizes":
        accounts = self.accounts
        return DemoSizes(
            accounts=accounts,
            people=self.people,
            events=self.events,
            opportunities=self.opportunities if self.opportunities is not None else (accounts * 2) // 5,
            lists=self.lists if self.lists is not None else max(5, min(50, accounts // 2_000)),
            campaigns=self.campaigns if self.campaigns is not None else max(8, min(100, accounts // 1_000)),
        )

    def check(self) -> None:
        for name in ("accounts", "people", "events", "opportunities", "lists", "campaigns"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise DemoDataError(f"--{name} must be 0 or more, not {value}.")
        if self.people and not self.accounts:
            raise DemoDataError("People work at accounts: give --accounts 1 or more when --people is above 0.")
        if (self.events or self.opportunities) and not self.people:
            raise DemoDataError("Events and opportunities need people: give --people 1 or more.")


def generate_demo_data(sandbox, sizes: DemoSizes, *, seed: int = 42, append: bool = False, report=None) -> dict:
    """Generate the data set into ``sandbox``. Returns {what: rows written}.

    Refuses a sandbox that already has people unless ``append``: a second run adds a second,
    disjoint data set (new domains, ids and ECIDs) rather than duplicating the first.
    """
    sizes = sizes.resolved()
    sizes.check()
    existing_people = Person.objects.for_sandbox(sandbox).count()
    if existing_people and not append:
        raise DemoDataError(
            f"Sandbox '{sandbox.name}' already has {existing_people:,} people. Use --append to add another data set "
            "next to them, or reset the sandbox first."
        )
    return _Generator(sandbox, sizes, seed, existing_people, report or (lambda message: None)).run()


def _stamp_json(when: dt.datetime) -> str:
    return f'["{DATASET}","{when.isoformat()}"]'


_PROVENANCE_SHAPES: dict = {}
# Event type values as plain strings (enum member access is slow in a loop of millions).
_EMAIL_SENT = EventType.EMAIL_SENT.value
_EMAIL_DELIVERED = EventType.EMAIL_DELIVERED.value
_EMAIL_OPENED = EventType.EMAIL_OPENED.value
_EMAIL_CLICKED = EventType.EMAIL_CLICKED.value
_EMAIL_BOUNCED = EventType.EMAIL_BOUNCED.value
_EMAIL_UNSUBSCRIBED = EventType.EMAIL_UNSUBSCRIBED.value
_WEB_VISIT = EventType.WEB_VISIT.value
_FORM_FILLED = EventType.FORM_FILLED.value
_INTERESTING_MOMENT = EventType.INTERESTING_MOMENT.value
_SCORE_CHANGED = EventType.SCORE_CHANGED.value
_LIST_ADDED = EventType.LIST_ADDED.value
_OPPORTUNITY_ADDED = EventType.OPPORTUNITY_ADDED.value
_LEAD_CREATED = EventType.LEAD_CREATED.value
_LEAD_CONVERTED = EventType.LEAD_CONVERTED.value
_EVENT_ATTENDED = EventType.EVENT_ATTENDED.value


def _provenance(values: dict, extra: dict, stamp: str) -> JsonText:
    """Per-field provenance as the ingest path writes it: every non-empty field and attribute."""
    shape = (tuple(name for name, value in values.items() if value is not None and value != ""), tuple(extra))
    parts = _PROVENANCE_SHAPES.get(shape)
    if parts is None:  # one JSON skeleton per set of keys; only the stamp varies
        names = [*shape[0], *(f"attributes.{key}" for key in shape[1])]
        if not names:
            return JsonText("{}")
        parts = _PROVENANCE_SHAPES[shape] = [
            ("{" if i == 0 else ",") + json.dumps(name) + ":" for i, name in enumerate(names)
        ] + ["}"]
    return JsonText(stamp.join(parts))


class _Generator:
    def __init__(self, sandbox, sizes: DemoSizes, seed, existing_people: int, report):
        self.sandbox = sandbox
        self.sandbox_id = sandbox.pk
        self.sizes = sizes
        self.report = report
        # Appending draws from a different stream, so a second run with the same seed gets new names and ECIDs.
        self.rng = random.Random(f"{seed}" if not existing_people else f"{seed}/{existing_people}")
        self.now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        self.now_ts = self.now.timestamp()
        self.counts = {}
        self.started = time.monotonic()
        self.org_domain = f"{sandbox.organization.slug}.example"

    # ------------------------------------------------------------------------------ plumbing
    def run(self) -> dict:
        backend = "PostgreSQL COPY" if is_postgresql() else "bulk inserts"
        s = self.sizes
        self.report(
            f"Generating into sandbox '{self.sandbox.name}' (id {self.sandbox_id}) with {backend}: {s.accounts:,} accounts, "
            f"{s.people:,} people, {s.opportunities:,} opportunities, {s.lists:,} lists, {s.campaigns:,} campaigns, "
            f"{s.events:,} events."
        )
        self._accounts()
        self._people()
        self._lists()
        self._campaigns()
        self._opportunities()
        self._events()
        self._step("analyze", lambda: analyze([Account, Person, Identity, AccountPerson, Opportunity, OpportunityPerson,
                                               ListMember, CampaignMember, ExperienceEvent]))
        self._refresh_audiences()
        self.report(f"Done in {time.monotonic() - self.started:,.1f} s.")
        return self.counts

    def _refresh_audiences(self):
        """Rows written here send no profiles_changed signal: queue a full evaluation instead."""
        from cdp.models import Audience
        from cdp.tasks import evaluate_audiences_in_full

        audience_ids = list(Audience.objects.for_sandbox(self.sandbox).values_list("pk", flat=True))
        if audience_ids:
            transaction.on_commit(lambda: evaluate_audiences_in_full.delay(self.sandbox_id, audience_ids))
            self.report(f"  queued a full evaluation of the sandbox's {len(audience_ids)} audiences")

    def _step(self, label, work):
        started = time.monotonic()
        work()
        self.report(f"  {label}: {time.monotonic() - started:,.1f} s")

    def _progress(self, label, done, total, started):
        elapsed = max(time.monotonic() - started, 1e-6)
        self.report(f"  {label}: {done:,} / {total:,} ({done / elapsed:,.0f}/s, {elapsed:,.1f} s)")

    def _add(self, what, count):
        self.counts[what] = self.counts.get(what, 0) + count

    def _datetime(self, timestamp: float) -> dt.datetime:
        return dt.datetime.fromtimestamp(timestamp, dt.UTC)

    def _working_time(self, low: float, high: float, offset: int) -> float:
        """A timestamp in [low, high], more likely during the working day in the person's time zone."""
        rng = self.rng
        span = max(high - low, 1.0)
        candidate = low + rng.random() * span
        for _ in range(6):
            local = candidate + offset * 3600
            hour = int(local // 3600) % 24
            weekday = (int(local // DAY) + 3) % 7  # 1970-01-01 was a Thursday
            weight = HOUR_WEIGHTS[hour] * (WEEKEND_FACTOR if weekday >= 5 else 1.0)
            if rng.random() < weight:
                break
            candidate = low + rng.random() * span
        return candidate

    # ------------------------------------------------------------------------------ accounts
    def _taken_domains(self) -> set:
        """Domains already used in the sandbox (as account domains or in email addresses)."""
        identities = Identity.objects.for_sandbox(self.sandbox)
        taken = set(identities.filter(namespace=IdentityNamespace.DOMAIN).values_list("value", flat=True))
        emails = identities.filter(namespace=IdentityNamespace.EMAIL).annotate(
            email_domain=Substr("value", StrIndex("value", Value("@")) + 1)
        )
        taken.update(emails.values_list("email_domain", flat=True).distinct())
        return taken

    def _accounts(self):
        count = self.sizes.accounts
        started = time.monotonic()
        rng = self.rng
        maker = CompanyMaker(rng, self._taken_domains())
        self.account_start = start = reserve_ids(Account, count)
        # Compact per-account facts the later steps need.
        self.account_employees = array("l")
        self.account_facts = []  # (name, domain, email pattern, country code, city) per account
        reps = [PersonMaker(rng).name("US") for _ in range(max(3, min(40, count // 2_500 + 3)))]
        owners = [f"{ascii_slug(first)}.{ascii_slug(last)}@{self.org_domain}" for first, last in reps]
        parents = []  # (Company, account index): candidates for subsidiaries
        account_writer = TableWriter(Account, [
            "id", "sandbox_id", "parent_id", "name", "domain", "industry", "employees", "annual_revenue", "country",
            "region", "sic_code", "website", "owner_email", "attributes", "provenance", "created_at", "updated_at",
        ])
        identity_writer = TableWriter(Identity, IDENTITY_COLUMNS)
        index = 0
        while index < count:
            end = min(count, index + CHUNK_ROWS)
            account_rows, identity_rows = [], []
            for i in range(index, end):
                parent_index = None
                if parents and rng.random() < 0.05:
                    parent, parent_index = rng.choice(parents)
                    company = maker.company(parent)
                else:
                    company = maker.company()
                    if company.employees >= 500:
                        if len(parents) < 5_000:
                            parents.append((company, i))
                        else:
                            parents[rng.randrange(len(parents))] = (company, i)
                pk = start + i
                created = self.now_ts - rng.uniform(30, 1_095) * DAY
                updated = created + rng.random() * (self.now_ts - created)
                created_at, updated_at = self._datetime(created), self._datetime(updated)
                values = {
                    "name": company.name, "domain": company.domain, "industry": company.industry["name"],
                    "employees": company.employees, "annual_revenue": company.annual_revenue,
                    "country": company.country["name"], "region": company.region, "sic_code": company.sic_code,
                    "website": company.website, "owner_email": rng.choice(owners),
                }
                provenance = _provenance(values, company.attributes, _stamp_json(updated_at))
                account_rows.append((
                    pk, self.sandbox_id, None if parent_index is None else start + parent_index, *values.values(),
                    company.attributes, provenance, created_at, updated_at,
                ))
                identity_rows.append(self._identity(IdentityNamespace.DOMAIN, company.domain, None, pk, created_at, updated_at))
                identity_rows.append(
                    self._identity(IdentityNamespace.CRM_ACCOUNT_ID, sfdc_id("001", pk), None, pk, created_at, updated_at)
                )
                self.account_employees.append(company.employees)
                self.account_facts.append(
                    (company.name, company.domain, company.email_pattern, company.country["code"], company.city)
                )
            with transaction.atomic():
                self._add("accounts", account_writer.insert(account_rows))
                self._add("identities", identity_writer.insert(identity_rows))
            index = end
            self._progress("accounts", index, count, started)

    def _identity(self, namespace, value, person_id, account_id, created_at, seen_at):
        return (self.sandbox_id, namespace.value, value, person_id, account_id, DATASET, created_at, seen_at)

    # -------------------------------------------------------------------------------- people
    def _people_per_account(self) -> array:
        """How many people each account gets: proportional to sqrt(employees), summing exactly
        to the requested total (systematic rounding)."""
        total = self.sizes.people
        weights = [math.sqrt(e) for e in self.account_employees]
        weight_sum = sum(weights) or 1.0
        counts = array("l")
        offset = self.rng.random()
        cumulative, previous = 0.0, 0
        for weight in weights:
            cumulative += weight * total / weight_sum
            current = min(total, int(cumulative + offset))
            counts.append(current - previous)
            previous = current
        if counts:
            counts[-1] += total - previous
        return counts

    def _people(self):
        total = self.sizes.people
        started = time.monotonic()
        rng = self.rng
        maker = PersonMaker(rng)
        self.person_start = start = reserve_ids(Person, total)
        self.lead_id_start = self._next_marketo_lead_id()
        per_account = self._people_per_account()
        self.account_first_person = array("l")
        # Per person: account index, created (epoch s), cumulative activity weight, level rank, UTC offset.
        self.person_account = array("l")
        self.person_created = array("d")
        self.person_activity = array("d")
        self.person_level = array("b")
        self.person_offset = array("b")
        self.person_unsubscribed = bytearray()
        activity_total = 0.0
        person_writer = TableWriter(Person, [
            "id", "sandbox_id", "first_name", "last_name", "email", "job_title", "job_level", "department", "country",
            "city", "phone", "lead_score", "lead_source", "lead_status", "is_unsubscribed", "attributes", "provenance",
            "created_at", "updated_at",
        ])
        identity_writer = TableWriter(Identity, IDENTITY_COLUMNS)
        relation_writer = TableWriter(AccountPerson, [
            "sandbox_id", "account_id", "person_id", "role", "is_primary", "is_active", "created_at",
        ])
        person_index = 0
        rows = {"people": [], "identities": [], "relations": []}
        for account_index, people_here in enumerate(per_account):
            self.account_first_person.append(person_index)
            if not people_here:
                continue
            name, domain, pattern, country_code, city = self.account_facts[account_index]
            company = _CompanyView(domain, pattern, country_code, city, self.account_employees[account_index])
            taken_locals = set()
            for _ in range(people_here):
                pk = start + person_index
                activity = math.exp(rng.gauss(0.0, 1.0))
                values = maker.person(company, taken_locals, activity)
                # Lead ages: many recent, a long tail back three years.
                created = self.now_ts - (rng.random() ** 1.6) * 1_095 * DAY
                updated = created + rng.random() * (self.now_ts - created)
                created_at, updated_at = self._datetime(created), self._datetime(updated)
                fields = values.fields()
                rows["people"].append((
                    pk, self.sandbox_id, *fields.values(), values.attributes,
                    _provenance(fields, values.attributes, _stamp_json(updated_at)), created_at, updated_at,
                ))
                rows["identities"] += [
                    self._identity(IdentityNamespace.EMAIL, values.email, pk, None, created_at, updated_at),
                    self._identity(IdentityNamespace.ECID, ecid(rng), pk, None, created_at, updated_at),
                    self._identity(
                        IdentityNamespace.MARKETO_LEAD_ID, str(self.lead_id_start + person_index), pk, None, created_at, updated_at
                    ),
                ]
                rows["relations"].append((self.sandbox_id, self.account_start + account_index, pk, "", True, True, created_at))
                level = level_rank(values.job_level)
                engagement = activity * (0.5 if level == 0 else 1.0) * (0.3 if values.is_unsubscribed else 1.0)
                activity_total += engagement
                self.person_account.append(account_index)
                self.person_created.append(created)
                self.person_activity.append(activity_total)
                self.person_level.append(level)
                self.person_offset.append(UTC_OFFSETS.get(values.country_code, 0))
                self.person_unsubscribed.append(values.is_unsubscribed)
                person_index += 1
                if len(rows["people"]) >= CHUNK_ROWS:
                    self._write_people(rows, person_writer, identity_writer, relation_writer)
                    self._progress("people", person_index, total, started)
        if rows["people"]:
            self._write_people(rows, person_writer, identity_writer, relation_writer)
            self._progress("people", person_index, total, started)

    def _write_people(self, rows, person_writer, identity_writer, relation_writer):
        with transaction.atomic():
            self._add("people", person_writer.insert(rows["people"]))
            self._add("identities", identity_writer.insert(rows["identities"]))
            self._add("account_people", relation_writer.insert(rows["relations"]))
        for key in rows:
            rows[key] = []

    def _next_marketo_lead_id(self) -> int:
        """Marketo lead ids continue after the highest one in the sandbox (numeric order)."""
        highest = (
            Identity.objects.for_sandbox(self.sandbox)
            .filter(namespace=IdentityNamespace.MARKETO_LEAD_ID)
            .annotate(length=Length("value"))
            .order_by("-length", "-value")
            .values_list("value", flat=True)
            .first()
        )
        return max(1_000_001, int(highest) + 1) if highest else 1_000_001

    def _people_of(self, account_index) -> range:
        first = self.account_first_person[account_index]
        following = account_index + 1
        last = self.account_first_person[following] if following < len(self.account_first_person) else len(self.person_account)
        return range(first, last)

    def _sample_people(self, size: int) -> list:
        """Person indexes, in order (rows in key order load faster)."""
        return sorted(self.rng.sample(range(len(self.person_account)), min(size, len(self.person_account))))

    # --------------------------------------------------------------------- lists and campaigns
    def _member_count(self) -> int:
        """List/campaign sizes: log-uniform between 0.1 % and 5 % of people (at least a few)."""
        people = len(self.person_account)
        share = math.exp(self.rng.uniform(math.log(0.001), math.log(0.05)))
        return max(min(people, 3), int(people * share))

    def _free_external_ids(self, model, count, make):
        """Reserved primary keys and external ids derived from them, avoiding ids already in the sandbox."""
        taken = set(model.objects.for_sandbox(self.sandbox).values_list("external_id", flat=True))
        start = reserve_ids(model, count)
        external_ids = []
        for pk in range(start, start + count):
            candidate = make(pk)
            external_ids.append(candidate if candidate not in taken else f"{candidate}-demo")
        return start, external_ids

    def _theme_values(self, quarter_offset=0):
        rng = self.rng
        day = self.now - dt.timedelta(days=rng.randint(0, 400))
        return {
            "topic": rng.choice(words.TOPICS), "event": f"{rng.choice(words.TRADE_SHOWS)} {day.year}",
            "region": rng.choice(["North America", "EMEA", "APAC", "LATAM"]), "tier": rng.randint(1, 3),
            "city": rng.choice(words.ROADSHOW_CITIES), "quarter": f"Q{(day.month - 1) // 3 + 1} {day.year}",
            "persona": rng.choice(sorted(set(words.PERSONAS.values()))), "year": day.year,
        }

    def _lists(self):
        count = self.sizes.lists
        started = time.monotonic()
        rng = self.rng
        start, external_ids = self._free_external_ids(MarketingList, count, lambda pk: str(1_000 + pk))
        self.lists = []
        list_rows = []
        names = set()
        for i in range(count):
            name = rng.choice(words.LIST_THEMES).format(**self._theme_values())
            for _ in range(5):
                if name not in names:
                    break
                name = rng.choice(words.LIST_THEMES).format(**self._theme_values())
            base, number = name, 1
            while name in names:
                number += 1
                name = f"{base} {number}"
            names.add(name)
            created = self._datetime(self.now_ts - rng.uniform(5, 400) * DAY)
            list_rows.append((start + i, self.sandbox_id, external_ids[i], name, created))
            self.lists.append((start + i, external_ids[i], name, created.timestamp()))
        with transaction.atomic():
            self._add("lists", TableWriter(MarketingList, ["id", "sandbox_id", "external_id", "name", "created_at"]).insert(list_rows))
        writer = TableWriter(ListMember, ["sandbox_id", "marketing_list_id", "person_id", "added_at"])
        for list_id, _, _, created in self.lists:
            members = self._sample_people(self._member_count())
            rows = (
                (self.sandbox_id, list_id, self.person_start + p,
                 self._datetime(max(created, self.person_created[p]) + rng.random() * (self.now_ts - max(created, self.person_created[p]))))
                for p in members
            )
            with transaction.atomic():
                self._add("list_members", writer.insert(rows))
        self.report(f"  lists: {count:,} with {self.counts.get('list_members', 0):,} members ({time.monotonic() - started:,.1f} s)")

    def _campaigns(self):
        count = self.sizes.campaigns
        started = time.monotonic()
        rng = self.rng
        types = Weighted((t, weight) for t, weight, _ in words.CAMPAIGN_TYPES)
        statuses = {t: s for t, _, s in words.CAMPAIGN_TYPES}
        run_statuses = Weighted(words.CAMPAIGN_STATUSES)
        start, external_ids = self._free_external_ids(Campaign, count, lambda pk: sfdc_id("701", pk))
        self.campaigns = []
        rows = []
        for i in range(count):
            kind = types.pick(rng)
            theme = self._theme_values()
            status = run_statuses.pick(rng)
            launched = self.now_ts - rng.uniform(0, 150) * DAY if status != "Planned" else self.now_ts
            label = theme["event"] if kind == "Trade Show" else theme["topic"]
            when = self._datetime(launched)
            name = f"{when.year} Q{(when.month - 1) // 3 + 1} {kind} – {label}"
            rows.append((start + i, self.sandbox_id, external_ids[i], name, kind, status, self._datetime(launched - 14 * DAY)))
            self.campaigns.append((start + i, external_ids[i], name, kind, status, launched))
        with transaction.atomic():
            self._add("campaigns", TableWriter(Campaign, ["id", "sandbox_id", "external_id", "name", "type", "status", "created_at"]).insert(rows))
        writer = TableWriter(CampaignMember, ["sandbox_id", "campaign_id", "person_id", "status", "has_responded", "added_at"])
        for campaign_id, _, _, kind, status, launched in self.campaigns:
            if status == "Planned":
                continue
            member_statuses = statuses[kind]
            members = self._sample_people(self._member_count())

            def member_rows(members=members, member_statuses=member_statuses, launched=launched):
                for p in members:
                    member_status = rng.choice(member_statuses)
                    low = max(launched - 14 * DAY, self.person_created[p])
                    added = low + rng.random() * max(0.0, min(self.now_ts, launched + 30 * DAY) - low)
                    yield (self.sandbox_id, campaign_id, self.person_start + p, member_status,
                           member_status in words.RESPONDED_STATUSES, self._datetime(min(added, self.now_ts)))

            with transaction.atomic():
                self._add("campaign_members", writer.insert(member_rows()))
        self.report(
            f"  campaigns: {count:,} with {self.counts.get('campaign_members', 0):,} members ({time.monotonic() - started:,.1f} s)"
        )

    # ------------------------------------------------------------------------- opportunities
    def _opportunities(self):
        count = self.sizes.opportunities
        started = time.monotonic()
        rng = self.rng
        self.contact_person = array("l")  # contact roles, for "added to opportunity" events
        self.contact_opportunity = array("l")
        if not count:
            return
        staffed = [a for a in range(len(self.account_employees)) if len(self._people_of(a))]
        chooser = list(accumulate(self.account_employees[a] ** 0.4 for a in staffed))
        stages = Weighted((stage, stage[4]) for stage in words.OPPORTUNITY_STAGES)
        kinds = Weighted(words.OPPORTUNITY_TYPES)
        sources = Weighted(words.LEAD_SOURCES)
        role_choice = {level: Weighted(pairs) for level, pairs in words.CONTACT_ROLES.items()}
        levels = [level for level, _ in words.JOB_LEVELS]
        team_sizes = Weighted([(1, 35), (2, 30), (3, 20), (4, 15)])
        start = reserve_ids(Opportunity, count)
        opportunity_writer = TableWriter(Opportunity, [
            "id", "sandbox_id", "account_id", "external_id", "name", "stage", "amount", "currency", "close_date",
            "is_closed", "is_won", "attributes", "provenance", "created_at", "updated_at",
        ])
        role_writer = TableWriter(OpportunityPerson, ["sandbox_id", "opportunity_id", "person_id", "role", "is_primary", "created_at"])
        index = 0
        while index < count:
            end = min(count, index + CHUNK_ROWS)
            opportunity_rows, role_rows = [], []
            for i in range(index, end):
                pk = start + i
                account_index = staffed[bisect.bisect(chooser, rng.random() * chooser[-1])]
                account_name = self.account_facts[account_index][0]
                stage, probability, is_closed, is_won, _ = stages.pick(rng)
                kind = kinds.pick(rng)
                employees = self.account_employees[account_index]
                amount = Decimal(max(1_000, int(round(9_000 * employees**0.35 * math.exp(rng.gauss(0, 0.6)), -2))))
                if is_closed:
                    close = self.now - dt.timedelta(days=rng.randint(0, 540))
                else:
                    close = self.now + dt.timedelta(days=rng.randint(-20, 200))
                created = min(self.now_ts - 3600, (close - dt.timedelta(days=rng.randint(20, 270))).timestamp())
                created_at = self._datetime(created)
                updated_at = self._datetime(created + rng.random() * (self.now_ts - created))
                values = {
                    "name": f"{account_name} – {rng.choice(words.PRODUCTS)} ({kind})", "stage": stage, "amount": amount,
                    "currency": "USD", "close_date": close.date(), "is_closed": is_closed, "is_won": is_won,
                }
                attributes = {"type": kind, "probability": probability, "lead_source": sources.pick(rng),
                              "forecast_category": "Closed" if is_closed else ("Commit" if probability >= 75 else "Pipeline")}
                if is_closed and not is_won:
                    attributes["loss_reason"] = rng.choice(words.LOSS_REASONS)
                opportunity_rows.append((
                    pk, self.sandbox_id, self.account_start + account_index, sfdc_id("006", pk), *values.values(),
                    attributes, _provenance(values, attributes, _stamp_json(updated_at)), created_at, updated_at,
                ))
                people = self._people_of(account_index)
                candidates = rng.sample(people, min(len(people), 10))
                candidates.sort(key=lambda p: self.person_level[p] + rng.random() * 2)
                for position, p in enumerate(candidates[: team_sizes.pick(rng)]):
                    role = role_choice[levels[self.person_level[p]]].pick(rng)
                    role_rows.append((self.sandbox_id, pk, self.person_start + p, role, position == 0, created_at))
                    self.contact_person.append(p)
                    self.contact_opportunity.append(pk)
            with transaction.atomic():
                self._add("opportunities", opportunity_writer.insert(opportunity_rows))
                self._add("opportunity_people", role_writer.insert(role_rows))
            index = end
            self._progress("opportunities", index, count, started)

    # -------------------------------------------------------------------------------- events
    def _events(self):
        total = self.sizes.events
        if not total:
            return
        started = time.monotonic()
        writer = TableWriter(ExperienceEvent, [
            "sandbox_id", "person_id", "account_id", "type", "occurred_at", "properties", "external_id", "dataset", "ingested_at",
        ])
        events = _EventStream(self)
        stream = events.rows()
        done = 0
        report_every = max(CHUNK_ROWS, total // 20)
        next_report = report_every
        while done < total:
            with transaction.atomic():
                written = writer.insert(islice(stream, min(CHUNK_ROWS * 2, total - done)))
            done += written
            self._add("events", written)
            if done >= next_report or done >= total:
                self._progress("events", done, total, started)
                next_report += report_every


class _CompanyView:
    """The few company facts a person needs (the full Company isn't kept per account)."""

    __slots__ = ("domain", "email_pattern", "country", "city", "employees")

    def __init__(self, domain, email_pattern, country_code, city, employees):
        self.domain, self.email_pattern, self.city, self.employees = domain, email_pattern, city, employees
        self.country = country_by_code(country_code)


IDENTITY_COLUMNS = ["sandbox_id", "namespace", "value", "person_id", "account_id", "dataset", "created_at", "last_seen_at"]


def _json_text(value) -> JsonText:
    return JsonText(json.dumps(value, ensure_ascii=False, separators=(",", ":")))


class _EventStream:
    """Experience events in believable episodes: an email's sent → delivered → opened → clicked,
    a web session of a few pages that may end in a form fill, an interesting moment and a score
    change, webinar attendance, list adds, lead lifecycle and opportunity changes.

    Properties repeated across millions of events are serialised once (JsonText)."""

    def __init__(self, generator: _Generator):
        g = self.g = generator
        rng = self.rng = g.rng
        self.window_start = g.now_ts - EVENT_WINDOW_DAYS * DAY
        self.activity = g.person_activity
        self.activity_total = g.person_activity[-1] if len(g.person_activity) else 0.0
        self.episodes = Weighted([
            ("email", 58), ("web", 30), ("attended", 3), ("list", 2.4), ("score", 3), ("lead_created", 1.4),
            ("converted", 1), ("opportunity", 1.2),
        ])
        self.referrers = Weighted(words.REFERRERS)
        self.devices = Weighted(words.DEVICES)
        self.forms = Weighted((form, form[2]) for form in words.FORMS)
        self.bounces = Weighted(words.BOUNCE_REASONS)
        self.site = f"https://www.{g.org_domain}"
        self._emails()
        self._webinars()
        self.list_props = [
            _json_text({"list_id": external_id, "list_name": name}) for _, external_id, name, _ in g.lists
        ] or [_json_text({"list_name": "Newsletter Subscribers"})]
        self.score_props = [
            _json_text({"change": change, "reason": reason})
            for change, reason in [(5, "Visited web page"), (10, "Opened email"), (-5, "Inactivity decay"), (-10, "Inactivity decay"),
                                   (15, "Attended webinar"), (20, "Visited pricing page"), (3, "Clicked link in email")]
        ]
        self.lead_created_props = [_json_text({"lead_source": source}) for source, _ in words.LEAD_SOURCES]
        self.converted_props = _json_text({"converted_to": "Contact", "lead_status": "Converted"})
        self.pricing_moment = _json_text({"moment_type": "Web", "description": "Visited the pricing page"})
        self.page_cache, self.form_props, self.moment_props = {}, {}, {}

    def _emails(self):
        """Email assets: (campaign id, name, subject, send time) of the campaigns that send emails."""
        g, rng = self.g, self.rng
        assets = []
        for _, external_id, name, kind, status, launched in g.campaigns:
            if status == "Planned" or kind not in ("Email", "Nurture", "Webinar", "Field Event"):
                continue
            topic = name.split(" – ", 1)[-1]
            for step in range(rng.randint(1, 4)):
                send = launched + step * rng.uniform(3, 14) * DAY
                if not self.window_start <= send <= g.now_ts - 3600:
                    continue
                subject = rng.choice(words.EMAIL_SUBJECTS).format(topic=topic, company=g.sandbox.organization.name)
                assets.append((external_id, f"{name} – Email {step + 1}", subject, send))
        if not assets:  # no email campaigns: a monthly newsletter keeps the inbox realistic
            for month in range(3):
                send = g.now_ts - (month * 30 + rng.uniform(1, 25)) * DAY
                assets.append(("", f"Monthly newsletter {month + 1}", "Monthly digest: what's new", send))
        self.email_assets = []
        for campaign_id, email_name, subject, send in assets:
            base = {"campaign_id": campaign_id, "email_name": email_name} if campaign_id else {"email_name": email_name}
            self.email_assets.append({
                "send": send,
                "sent": _json_text({**base, "subject": subject}),
                "plain": _json_text(base),
                "clicks": [_json_text({**base, "link": label, "url": f"{self.site}{path}"})
                           for label, (path, _) in zip(words.LINK_LABELS, rng.sample(words.WEB_PAGES, len(words.LINK_LABELS)), strict=True)],
                "bounces": {reason: _json_text({**base, "reason": reason}) for reason, _ in words.BOUNCE_REASONS},
            })

    def _webinars(self):
        self.webinars = []
        for _, external_id, name, kind, status, launched in self.g.campaigns:
            if kind in ("Webinar", "Field Event", "Trade Show") and status != "Planned":
                self.webinars.append((
                    launched,
                    _json_text({"campaign_id": external_id, "campaign_name": name, "attendance": "Attended"}),
                    _json_text({"moment_type": "Milestone", "description": f"Attended: {name}"}),
                ))

    def _page_props(self, path, title, referrer, device, session) -> JsonText:
        key = (path, referrer, device)
        head = self.page_cache.get(key)
        if head is None:
            props = {"url": f"{self.site}{path}", "title": title, "device": device}
            if referrer:
                props["referrer"] = referrer
            head = self.page_cache[key] = json.dumps(props, separators=(",", ":"))[:-1] + ',"session_id":"'
        return JsonText(f'{head}{session}"}}')

    def rows(self):
        """Exactly ``sizes.events`` rows, person by person (so the table and its indexes fill in
        key order, which PostgreSQL loads several times faster than random order). Each person's
        share follows their activity weight (heavy-tailed: a few people are very active)."""
        g, rng = self.g, self.rng
        sandbox_id, person_start, account_start = g.sandbox_id, g.person_start, g.account_start
        now = g.now_ts
        to_datetime = g._datetime
        activity = self.activity
        person_account, person_created, person_offset = g.person_account, g.person_created, g.person_offset
        pick_episode = self.episodes.pick
        handlers = {name: getattr(self, f"_{name}") for name in self.episodes.items}
        opportunities_of = {}
        for person, opportunity in zip(g.contact_person, g.contact_opportunity, strict=True):
            opportunities_of.setdefault(person, []).append(opportunity)
        total = g.sizes.events
        people = len(person_account)
        scale = total / self.activity_total
        shift = rng.random()
        emitted_before = 0
        for p in range(people):
            upto = total if p == people - 1 else min(total, int(activity[p] * scale + shift))
            budget, emitted_before = upto - emitted_before, upto
            if budget <= 0:
                continue
            person_id, account_id = person_start + p, account_start + person_account[p]
            low = max(self.window_start, person_created[p])
            offset = person_offset[p]
            opportunities = opportunities_of.get(p)
            emitted = empty_episodes = 0
            while emitted < budget:
                episode = pick_episode(rng)
                if empty_episodes >= 20:  # everything drawn lies in the future (a brand-new lead)
                    episode = "score"
                before = emitted
                for kind, when, props in handlers[episode](p, low, now, offset, opportunities):
                    if when > now:  # the rest of the episode hasn't happened yet
                        break
                    ingested = min(now, when + rng.expovariate(1 / 20.0))
                    yield (sandbox_id, person_id, account_id, kind, to_datetime(when), props, None, DATASET, to_datetime(ingested))
                    emitted += 1
                    if emitted == budget:
                        break
                empty_episodes = empty_episodes + 1 if emitted == before else 0

    # Episodes yield (type, timestamp, properties).
    def _email(self, p, low, now, offset, opportunities):
        rng = self.rng
        asset = rng.choice(self.email_assets)
        if asset["send"] < low:  # the person wasn't in the database yet: another email
            asset = rng.choice(self.email_assets)
        sent = max(asset["send"], low) + rng.random() * 1800
        yield _EMAIL_SENT, sent, asset["sent"]
        if rng.random() < 0.03:
            yield _EMAIL_BOUNCED, sent + rng.uniform(1, 120), asset["bounces"][self.bounces.pick(rng)]
            return
        delivered = sent + rng.uniform(1, 90)
        yield _EMAIL_DELIVERED, delivered, asset["plain"]
        if rng.random() < 0.27:
            opened = delivered + rng.expovariate(1 / 14_400)
            yield _EMAIL_OPENED, opened, asset["plain"]
            if rng.random() < 0.28:
                yield _EMAIL_CLICKED, opened + rng.uniform(3, 300), rng.choice(asset["clicks"])
            elif rng.random() < 0.006:
                yield _EMAIL_UNSUBSCRIBED, opened + rng.uniform(3, 120), asset["plain"]

    def _web(self, p, low, now, offset, opportunities):
        rng = self.rng
        when = self.g._working_time(low, now - 600, offset)
        device, referrer = self.devices.pick(rng), self.referrers.pick(rng)
        if referrer == "email":
            referrer = ""
        session = f"{rng.getrandbits(48):012x}"
        pages = 1
        while pages < 8 and rng.random() < 0.55:
            pages += 1
        high_intent = False
        path = "/"
        for page in range(pages):
            path, title = rng.choice(words.WEB_PAGES)
            high_intent |= path in words.HIGH_INTENT_PATHS
            yield _WEB_VISIT, when, self._page_props(path, title, referrer if page == 0 else "", device, session)
            when += rng.uniform(8, 240)
        if rng.random() < (0.15 if high_intent else 0.04):
            form_name, form_path, _ = self.forms.pick(rng)
            if form_name not in self.form_props:
                self.form_props[form_name] = _json_text({"form_name": form_name, "url": f"{self.site}{form_path}"})
                self.moment_props[form_name] = _json_text({"moment_type": "Web", "description": f"Filled out form: {form_name}"})
            yield _FORM_FILLED, when, self.form_props[form_name]
            if rng.random() < 0.6:
                yield _INTERESTING_MOMENT, when + 1, self.moment_props[form_name]
            yield _SCORE_CHANGED, when + 2, self.score_props[0]
        elif high_intent and rng.random() < 0.2:
            yield _INTERESTING_MOMENT, when, self.pricing_moment
            yield _SCORE_CHANGED, when + 1, self.score_props[5]

    def _attended(self, p, low, now, offset, opportunities):
        rng = self.rng
        if not self.webinars:
            yield from self._score(p, low, now, offset, opportunities)
            return
        launched, attended, moment = rng.choice(self.webinars)
        when = max(low, min(launched + rng.uniform(0, 7) * DAY, now - 3600))
        yield _EVENT_ATTENDED, when, attended
        if rng.random() < 0.7:
            yield _INTERESTING_MOMENT, when + 60, moment
            yield _SCORE_CHANGED, when + 61, self.score_props[4]

    def _list(self, p, low, now, offset, opportunities):
        yield _LIST_ADDED, self.g._working_time(low, now, offset), self.rng.choice(self.list_props)

    def _score(self, p, low, now, offset, opportunities):
        when = self.g._working_time(low, now, offset)
        yield _SCORE_CHANGED, min(when, now), self.rng.choice(self.score_props[2:4])

    def _lead_created(self, p, low, now, offset, opportunities):
        created = self.g.person_created[p]
        if created >= self.window_start:
            yield _LEAD_CREATED, created, self.rng.choice(self.lead_created_props)
        else:
            yield from self._score(p, low, now, offset, opportunities)

    def _converted(self, p, low, now, offset, opportunities):
        yield _LEAD_CONVERTED, self.g._working_time(low, now, offset), self.converted_props

    def _opportunity(self, p, low, now, offset, opportunities):
        if not opportunities:  # only people in an opportunity's contact roles are added to one
            yield from self._score(p, low, now, offset, opportunities)
            return
        opportunity_id = sfdc_id("006", self.rng.choice(opportunities))
        yield _OPPORTUNITY_ADDED, self.g._working_time(low, now, offset), _json_text({"opportunity_id": opportunity_id})
