"""The fields each ingestible entity accepts, their types and how raw values are read.

One description serves validation on ingest, the mapping screen, the API docs and (later) the
audience builder's schema browser.
"""

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.utils.dateparse import parse_date, parse_datetime

from cdp.choices import ACCOUNT_NAMESPACES, CUSTOM_NAMESPACE_PREFIX, PERSON_NAMESPACES, IngestionEntity

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
TRUE_WORDS = {"true", "1", "yes", "y", "t"}
FALSE_WORDS = {"false", "0", "no", "n", "f", ""}


class FieldError(ValueError):
    """A raw value that can't be read as its field's type. The message says what was expected."""


@dataclass(frozen=True)
class FieldSpec:
    name: str
    type: str = "text"  # text | email | int | decimal | bool | date | datetime
    max_length: int = 255
    label: str = ""

    def read(self, raw):
        """The typed value of ``raw``, or None when it is empty. Raises FieldError when unreadable."""
        if raw is None:
            return None
        if isinstance(raw, str):
            raw = raw.strip()
            if raw == "":
                return None
        return _TYPE_READERS[self.type](self, raw)

    def _read_text(self, raw):
        value = str(raw)
        if len(value) > self.max_length:
            raise FieldError(f"is {len(value)} characters long; at most {self.max_length} are allowed")
        return value

    def _read_email(self, raw):
        value = self._read_text(raw).lower()
        if not EMAIL_RE.match(value):
            raise FieldError(f"'{value[:80]}' is not an email address")
        return value

    def _read_int(self, raw):
        if isinstance(raw, bool):
            raise FieldError("expected a whole number, got true/false")
        try:
            value = int(raw) if not isinstance(raw, str) else int(Decimal(raw))
        except (ValueError, InvalidOperation, TypeError):
            raise FieldError(f"expected a whole number, got '{str(raw)[:80]}'") from None
        if abs(value) > 2**31 - 1:
            raise FieldError(f"{value} is out of range")
        return value

    def _read_decimal(self, raw):
        try:
            value = Decimal(str(raw))
        except InvalidOperation:
            raise FieldError(f"expected a number, got '{str(raw)[:80]}'") from None
        if not value.is_finite() or abs(value) >= Decimal(10) ** 16:
            raise FieldError(f"{raw} is out of range")
        return value.quantize(Decimal("0.01"))

    def _read_bool(self, raw):
        if isinstance(raw, bool):
            return raw
        word = str(raw).strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise FieldError(f"expected true or false, got '{str(raw)[:80]}'")

    def _read_date(self, raw):
        value = _safe_parse(parse_date, str(raw)[:10]) if isinstance(raw, str) and len(raw) >= 10 else None
        if value is None:
            raise FieldError(f"expected a date like 2026-01-31, got '{str(raw)[:80]}'")
        return value

    def _read_datetime(self, raw):
        if isinstance(raw, (int, float)) and not isinstance(raw, bool):
            # Epoch milliseconds, as Marketo and most event sources send.
            return dt.datetime.fromtimestamp(raw / 1000, tz=dt.UTC)
        value = _safe_parse(parse_datetime, str(raw))
        if value is None:
            day = _safe_parse(parse_date, str(raw)) if len(str(raw)) == 10 else None
            if day is None:
                raise FieldError(f"expected a date-time like 2026-01-31T09:30:00Z, got '{str(raw)[:80]}'")
            value = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value


# The reader of each type by name: FieldSpec.read runs for every ingested value, and a dict lookup
# costs less than building and resolving a method name each time.
_TYPE_READERS = {
    name.removeprefix("_read_"): reader for name, reader in vars(FieldSpec).items() if name.startswith("_read_")
}


def _safe_parse(parser, text):
    """Django's date parsers raise ValueError for well-formed but impossible dates (2026-02-30)."""
    try:
        return parser(text)
    except ValueError:
        return None


def _fields(*specs):
    return {spec.name: spec for spec in specs}


PERSON_FIELDS = _fields(
    FieldSpec("first_name", max_length=120),
    FieldSpec("last_name", max_length=120),
    FieldSpec("email", "email", 254),
    FieldSpec("job_title"),
    FieldSpec("job_level", max_length=60),
    FieldSpec("department", max_length=120),
    FieldSpec("country", max_length=80),
    FieldSpec("city", max_length=120),
    FieldSpec("phone", max_length=60),
    FieldSpec("lead_score", "int"),
    FieldSpec("lead_source", max_length=120),
    FieldSpec("lead_status", max_length=60),
    FieldSpec("is_unsubscribed", "bool"),
)
ACCOUNT_FIELDS = _fields(
    FieldSpec("name"),
    FieldSpec("domain"),
    FieldSpec("industry", max_length=120),
    FieldSpec("employees", "int"),
    FieldSpec("annual_revenue", "decimal"),
    FieldSpec("country", max_length=80),
    FieldSpec("region", max_length=80),
    FieldSpec("sic_code", max_length=10),
    FieldSpec("website"),
    FieldSpec("owner_email", "email", 254),
)
OPPORTUNITY_FIELDS = _fields(
    FieldSpec("name"),
    FieldSpec("stage", max_length=120),
    FieldSpec("amount", "decimal"),
    FieldSpec("currency", max_length=3),
    FieldSpec("close_date", "date"),
    FieldSpec("is_closed", "bool"),
    FieldSpec("is_won", "bool"),
)
OPPORTUNITY_PERSON_FIELDS = _fields(FieldSpec("role", max_length=120), FieldSpec("is_primary", "bool"))
EVENT_FIELDS = _fields(FieldSpec("type", max_length=64), FieldSpec("occurred_at", "datetime"))
LIST_MEMBER_FIELDS = _fields(FieldSpec("list_name"), FieldSpec("added_at", "datetime"))
CAMPAIGN_MEMBER_FIELDS = _fields(
    FieldSpec("campaign_name"),
    FieldSpec("status", max_length=60),
    FieldSpec("has_responded", "bool"),
    FieldSpec("added_at", "datetime"),
)

ENTITY_FIELDS = {
    IngestionEntity.PERSON: PERSON_FIELDS,
    IngestionEntity.ACCOUNT: ACCOUNT_FIELDS,
    IngestionEntity.OPPORTUNITY: OPPORTUNITY_FIELDS,
    IngestionEntity.OPPORTUNITY_PERSON: OPPORTUNITY_PERSON_FIELDS,
    IngestionEntity.EVENT: EVENT_FIELDS,
    IngestionEntity.LIST_MEMBER: LIST_MEMBER_FIELDS,
    IngestionEntity.CAMPAIGN_MEMBER: CAMPAIGN_MEMBER_FIELDS,
}

# Keys that are not plain fields. "identity.<ns>": an identity of the record's profile;
# "account.<ns>": the account the record belongs to; "<x>.external_id": the record's parent object.
KEY_TARGETS = {
    IngestionEntity.PERSON: ["identity.*", "account.crm_account_id", "account.sfdc_account_id", "account.domain", "timestamp", "attributes.*"],
    IngestionEntity.ACCOUNT: ["identity.*", "parent.crm_account_id", "parent.domain", "timestamp", "attributes.*"],
    IngestionEntity.OPPORTUNITY: ["external_id", "account.crm_account_id", "account.sfdc_account_id", "account.domain", "timestamp", "attributes.*"],
    IngestionEntity.OPPORTUNITY_PERSON: ["opportunity.external_id", "identity.*"],
    IngestionEntity.EVENT: ["identity.*", "account.crm_account_id", "account.domain", "external_id", "properties.*"],
    IngestionEntity.LIST_MEMBER: ["list.external_id", "identity.*"],
    IngestionEntity.CAMPAIGN_MEMBER: ["campaign.external_id", "identity.*"],
}

REQUIRED_TARGETS = {
    IngestionEntity.OPPORTUNITY: ["external_id"],
    IngestionEntity.OPPORTUNITY_PERSON: ["opportunity.external_id"],
    IngestionEntity.EVENT: ["type", "occurred_at"],
    IngestionEntity.LIST_MEMBER: ["list.external_id"],
    IngestionEntity.CAMPAIGN_MEMBER: ["campaign.external_id"],
}


def namespaces_for(entity) -> tuple[str, ...]:
    return ACCOUNT_NAMESPACES if entity == IngestionEntity.ACCOUNT else PERSON_NAMESPACES


def is_known_namespace(entity, namespace: str) -> bool:
    return namespace in namespaces_for(entity) or namespace.startswith(CUSTOM_NAMESPACE_PREFIX)


def target_catalog(entity) -> list[str]:
    """Every mapping target an entity accepts, for mapping screens and errors."""
    targets = list(ENTITY_FIELDS[entity])
    for key in KEY_TARGETS[entity]:
        if key == "identity.*":
            targets += [f"identity.{ns}" for ns in namespaces_for(entity)]
        elif not key.endswith(".*"):
            targets.append(key)
    return targets
