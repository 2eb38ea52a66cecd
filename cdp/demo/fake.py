"""Believable B2B values — companies, people, identifiers — drawn from cdp.demo.words.

Everything is drawn from one ``random.Random`` so a seed reproduces the same data. Nothing here
touches the database: the sandbox generator and the ingestion benchmark both use it.
"""

import bisect
import functools
import itertools
import math
import re
import string
import unicodedata
from dataclasses import dataclass, field
from decimal import Decimal

from . import words

BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
_SFDC_CHECKSUM_CHARS = string.ascii_uppercase + "012345"
_NOT_SLUG = re.compile(r"[^a-z0-9]+")


class Weighted:
    """A weighted choice that is cheap to draw from many times."""

    __slots__ = ("items", "cum", "total")

    def __init__(self, pairs):
        pairs = list(pairs)
        self.items = [item for item, _ in pairs]
        self.cum = list(itertools.accumulate(weight for _, weight in pairs))
        self.total = self.cum[-1]

    def pick(self, rng):
        return self.items[bisect.bisect(self.cum, rng.random() * self.total)]


@functools.lru_cache(maxsize=4096)
def ascii_slug(text: str) -> str:
    """'Müller-Lüdenscheidt' → 'mullerludenscheidt': what a mail server or DNS name can carry."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return _NOT_SLUG.sub("", plain.lower())


def sfdc_id(prefix: str, number: int) -> str:
    """A Salesforce-shaped 18-character id (key prefix + 12 characters + case checksum).

    "Dm" after the key prefix keeps demo ids apart from any real org's ids."""
    body = ""
    while number:
        number, digit = divmod(number, 62)
        body = BASE62[digit] + body
    fifteen = f"{prefix}Dm{body.rjust(10, '0')}"
    if len(fifteen) != 15:
        raise ValueError(f"number too large for a Salesforce id: {number}")
    checksum = ""
    for chunk in range(3):
        bits = 0
        for position, char in enumerate(fifteen[chunk * 5 : chunk * 5 + 5]):
            if char.isupper():
                bits |= 1 << position
        checksum += _SFDC_CHECKSUM_CHARS[bits]
    return fifteen + checksum


def ecid(rng) -> str:
    """An Experience Cloud ID: exactly 38 digits."""
    return str(rng.randrange(10**37, 10**38))


def lognormal_int(rng, median: float, sigma: float, low: int, high: int) -> int:
    return max(low, min(high, int(round(median * math.exp(rng.gauss(0.0, sigma))))))


# ------------------------------------------------------------------------------------ companies
_INDUSTRIES = Weighted((industry, industry["weight"]) for industry in words.INDUSTRIES)
_COUNTRIES = Weighted((country, country["weight"]) for country in words.COUNTRIES)
_COUNTRY_BY_CODE = {country["code"]: country for country in words.COUNTRIES}
_ACCOUNT_TYPES = Weighted(words.ACCOUNT_TYPES)
_TECH_TLDS = Weighted([("io", 40), ("ai", 15), ("co", 20), ("tech", 10), ("net", 15)])
_EMAIL_PATTERNS = Weighted(words.EMAIL_PATTERNS)
_LEGAL_WORDS = {word for c in words.COUNTRIES for legal in c["legal"] for word in legal.split()}


@dataclass
class Company:
    name: str
    domain: str
    brand: str  # the name's slug without the industry word: "bluepeak"
    industry: dict
    sic_code: str
    employees: int
    annual_revenue: Decimal | None
    country: dict
    region: str
    city: str
    email_pattern: str
    attributes: dict = field(default_factory=dict)

    @property
    def website(self) -> str:
        return f"https://www.{self.domain}"


class CompanyMaker:
    """Companies with unique domains (``taken_domains`` is updated with each new one)."""

    def __init__(self, rng, taken_domains: set):
        self.rng = rng
        self.taken = taken_domains

    def company(self, parent: Company | None = None) -> Company:
        rng = self.rng
        if parent is not None:
            return self._subsidiary(parent)
        industry = _INDUSTRIES.pick(rng)
        country = _COUNTRIES.pick(rng)
        name, brand, suffix = self._name(industry)
        legal = rng.choice(country["legal"])
        if legal and rng.random() < 0.35:
            name = f"{name} {legal}" if legal != "LLP" else name
        domain = self._domain(brand, suffix, industry, country)
        employees = lognormal_int(rng, 60, 1.7, 1, 350_000)
        return self._finish(name, domain, brand, industry, country, employees)

    def _subsidiary(self, parent: Company) -> Company:
        rng = self.rng
        country = _COUNTRIES.pick(rng)
        if country is parent.country:
            country = _COUNTRIES.pick(rng)
        base = parent.name.split(" ")
        while len(base) > 1 and base[-1] in _LEGAL_WORDS:
            base.pop()
        base = " ".join(base)
        if country is parent.country:
            name = f"{base} {rng.choice(['Services', 'Holdings', 'Labs', 'Solutions', 'Group'])}"
        else:
            legal = rng.choice([legal for legal in country["legal"] if legal] or [country["name"]])
            name = f"{base} {country['name'] if rng.random() < 0.5 else legal}"
        domain = self._unique([f"{parent.brand}.{country['tld']}", f"{parent.brand}-{country['code'].lower()}.com",
                               f"{ascii_slug(name)}.{country['tld']}"], parent.brand, country["tld"])
        employees = max(5, int(parent.employees * rng.uniform(0.02, 0.25)))
        return self._finish(name, domain, parent.brand, parent.industry, country, employees)

    def _finish(self, name, domain, brand, industry, country, employees) -> Company:
        rng = self.rng
        sic_code, sic_description = rng.choice(industry["sic"])
        revenue = None
        if rng.random() < 0.9:
            per_employee = industry["revenue_per_employee"] * math.exp(rng.gauss(0.0, 0.45))
            revenue = Decimal(max(50_000, int(round(employees * per_employee, -3))))
        region = rng.choice(list(country["regions"]))
        city = rng.choice(country["regions"][region])
        tier = next(label for label, minimum in words.ACCOUNT_TIERS if employees >= minimum)
        attributes = {
            "sic_description": sic_description,
            "billing_city": city,
            "sales_region": country["sales_region"],
            "tier": tier,
            "account_type": _ACCOUNT_TYPES.pick(rng),
            "founded_year": rng.randint(1905, 2023) if employees > 1000 else rng.randint(1975, 2024),
        }
        if rng.random() < 0.6:
            attributes["tech_stack"] = sorted(rng.sample(words.TECH_STACK, rng.randint(1, 4)))
        pattern = _EMAIL_PATTERNS.pick(rng)
        return Company(name, domain, brand, industry, sic_code, employees, revenue, country, region, city, pattern, attributes)

    def _name(self, industry) -> tuple[str, str, str]:
        """(display name, brand slug, industry word) — e.g. ('Bluepeak Analytics', 'bluepeak', 'Analytics')."""
        rng = self.rng
        suffix = rng.choice(industry["suffixes"])
        form = rng.random()
        if form < 0.45:
            brand = rng.choice(words.NAME_STEMS) + rng.choice(words.NAME_ROOTS)
            return f"{brand} {suffix}", ascii_slug(brand), suffix
        if form < 0.65:
            brand = rng.choice(words.NAME_STEMS)
            return f"{brand} {suffix}", ascii_slug(brand), suffix
        if form < 0.80:
            brand = rng.choice(words.NAME_WORDS)
            return f"{brand} {suffix}", ascii_slug(brand), suffix
        if form < 0.87:
            first, second = rng.sample(words.NAME_WORDS, 2)
            link = rng.choice(words.LINKING_WORDS)
            return f"{first} {link} {second}", ascii_slug(first + second), ""
        brand = rng.choice(words.NAME_STEMS) + rng.choice(words.NAME_ROOTS)
        return brand, ascii_slug(brand), ""

    def _domain(self, brand, suffix, industry, country) -> str:
        rng = self.rng
        if country["code"] != "US" and rng.random() < 0.6:
            tld = country["tld"]
        elif industry["name"] in ("Software", "IT Services") and rng.random() < 0.35:
            tld = _TECH_TLDS.pick(rng)
        elif industry["name"] in ("Nonprofit", "Education") and rng.random() < 0.6:
            tld = "org"
        else:
            tld = "com"
        word = ascii_slug(suffix)
        candidates = [f"{brand}.{tld}", f"{brand}{word}.{tld}", f"{brand}-{word}.{tld}"] if word else [f"{brand}.{tld}"]
        if rng.random() < 0.5:
            candidates.insert(0, candidates.pop(1 % len(candidates)))
        candidates += [f"get{brand}.com", f"{brand}hq.com", f"{brand}{word or 'group'}.com"]
        return self._unique(candidates, brand, tld)

    def _unique(self, candidates, brand, tld) -> str:
        for candidate in candidates:
            if candidate not in self.taken:
                self.taken.add(candidate)
                return candidate
        for number in itertools.count(2):
            candidate = f"{brand}{number}.{tld}"
            if candidate not in self.taken:
                self.taken.add(candidate)
                return candidate


def country_by_code(code: str) -> dict:
    return _COUNTRY_BY_CODE[code]


# ---------------------------------------------------------------------------------------- people
_LEVELS = [level for level, _ in words.JOB_LEVELS]
_LEVEL_WEIGHTS = dict(words.JOB_LEVELS)
# Small companies have proportionally more executives.
_LEVELS_SMALL = Weighted((level, weight * {"C-Level": 3.0, "VP": 0.6}.get(level, 1.0)) for level, weight in words.JOB_LEVELS)
_LEVELS_LARGE = Weighted(words.JOB_LEVELS)
_DEPARTMENTS = Weighted(words.DEPARTMENTS)
_VP = Weighted(words.VP_PREFIXES)
_DIRECTOR = Weighted(words.DIRECTOR_PREFIXES)
_MANAGER = Weighted(words.MANAGER_FORMS)
_IC_SENIORITY = Weighted(words.IC_SENIORITY)
_LEAD_SOURCES = Weighted(words.LEAD_SOURCES)
_LEAD_STATUS = [(minimum, Weighted(pairs)) for minimum, pairs in words.LEAD_STATUS_BY_SCORE]
_NAME_POOLS = {code: Weighted(c["names"]) for code, c in _COUNTRY_BY_CODE.items()}
_C_LEVEL = words.C_LEVEL_TITLES


def level_rank(level: str) -> int:
    """0 for C-Level … 4 for individual contributors."""
    return _LEVELS.index(level)


@dataclass
class PersonValues:
    first_name: str
    last_name: str
    email: str
    job_title: str
    job_level: str
    department: str
    country: str
    country_code: str
    city: str
    phone: str
    lead_score: int
    lead_source: str
    lead_status: str
    is_unsubscribed: bool
    attributes: dict

    def fields(self) -> dict:
        """The Person model's standard fields (what an ingested record would carry)."""
        return {
            "first_name": self.first_name,
            "last_name": self.last_name,
            "email": self.email,
            "job_title": self.job_title,
            "job_level": self.job_level,
            "department": self.department,
            "country": self.country,
            "city": self.city,
            "phone": self.phone,
            "lead_score": self.lead_score,
            "lead_source": self.lead_source,
            "lead_status": self.lead_status,
            "is_unsubscribed": self.is_unsubscribed,
        }


class PersonMaker:
    def __init__(self, rng):
        self.rng = rng

    def name(self, country_code: str) -> tuple[str, str]:
        rng = self.rng
        pool = _NAME_POOLS[country_code].pick(rng)
        return rng.choice(words.FIRST_NAMES[pool]), rng.choice(words.LAST_NAMES[pool])

    def job(self, employees: int) -> tuple[str, str, str]:
        """(job title, job level, department)."""
        rng = self.rng
        level = (_LEVELS_SMALL if employees < 50 else _LEVELS_LARGE).pick(rng)
        if level == "C-Level":
            title, department = rng.choice(_C_LEVEL)
            return title, level, department
        department = _DEPARTMENTS.pick(rng)
        titles = words.DEPARTMENT_TITLES[department]
        if level == "VP":
            area = titles["areas"][0] if rng.random() < 0.6 else rng.choice(titles["areas"])
            return f"{_VP.pick(rng)} {area}", level, department
        if level == "Director":
            return f"{_DIRECTOR.pick(rng)} {rng.choice(titles['areas'])}", level, department
        if level == "Manager":
            return _MANAGER.pick(rng).format(area=rng.choice(titles["areas"])), level, department
        title = rng.choice(titles["ic"])
        seniority = _IC_SENIORITY.pick(rng)
        if seniority and not title.startswith(("Senior", "Staff", "Lead", "Principal")) and "Manager" not in title:
            title = seniority + title
        return title, level, department

    def phone(self, country: dict) -> str:
        rng = self.rng
        template = country["phone"]
        return template.format(
            area=rng.choice(country.get("areas", ["555"])),
            d2=f"{rng.randrange(100):02d}",
            d3=f"{rng.randrange(1000):03d}",
            d4=f"{rng.randrange(10000):04d}",
            d7=f"{rng.randrange(10**7):07d}",
        )

    def email_local(self, pattern: str, first: str, last: str, taken: set) -> str:
        first_slug, last_slug = ascii_slug(first) or "info", ascii_slug(last) or "contact"
        local = pattern.format(first=first_slug, last=last_slug, f=first_slug[0], l=last_slug[0])
        candidate, number = local, 1
        while candidate in taken:
            number += 1
            candidate = f"{local}{number}"
        taken.add(candidate)
        return candidate

    def person(self, company: Company, taken_locals: set, activity: float) -> PersonValues:
        """A person working at ``company``; ``activity`` (median 1) drives their lead score."""
        rng = self.rng
        country = company.country if rng.random() < 0.88 else _COUNTRIES.pick(rng)
        first, last = self.name(country["code"])
        title, level, department = self.job(company.employees)
        if country is company.country and rng.random() < 0.7:
            city = company.city
        else:
            region = rng.choice(list(country["regions"]))
            city = rng.choice(country["regions"][region])
        local = self.email_local(company.email_pattern, first, last, taken_locals)
        score = int(max(0, min(250, 22 * activity + rng.gauss(0, 8))))
        status = next(pick for minimum, pick in _LEAD_STATUS if score >= minimum).pick(rng)
        unsubscribed = rng.random() < 0.03
        return PersonValues(
            first_name=first,
            last_name=last,
            email=f"{local}@{company.domain}",
            job_title=title,
            job_level=level,
            department=department,
            country=country["name"],
            country_code=country["code"],
            city=city if rng.random() < 0.9 else "",
            phone=self.phone(country) if rng.random() < 0.6 else "",
            lead_score=score,
            lead_source=_LEAD_SOURCES.pick(rng),
            lead_status=status,
            is_unsubscribed=unsubscribed,
            attributes={
                "persona": words.PERSONAS[level],
                "language": words.LANGUAGES.get(country["code"], "en"),
                "email_opt_in": (not unsubscribed) and rng.random() < 0.85,
            },
        )


def person_records(rng, count: int, *, people_per_company: int = 10, first_lead_id: int = 1_000_001):
    """Flat person records as a CSV export or an API client would carry them: the standard
    fields, an ECID, a Marketo lead id and the company's domain. Used by the ingestion benchmark."""
    companies = CompanyMaker(rng, set())
    people = PersonMaker(rng)
    company, taken_locals = None, set()
    for index in range(count):
        if index % people_per_company == 0:
            company, taken_locals = companies.company(), set()
        values = people.person(company, taken_locals, math.exp(rng.gauss(0.0, 1.0)))
        yield {
            **values.fields(),
            "ecid": ecid(rng),
            "marketo_lead_id": str(first_lead_id + index),
            "company_domain": company.domain,
        }
