"""Turn raw rows (CSV rows, JSON objects) into validated records, or rejections with reasons."""

import datetime as dt
import json
from dataclasses import dataclass, field

from cdp.choices import CUSTOM_NAMESPACE_PREFIX, IdentityNamespace, IngestionEntity
from cdp.schema import ENTITY_FIELDS, REQUIRED_TARGETS, FieldError, FieldSpec, is_known_namespace, namespaces_for
from cdp.services.identities import MAX_IDENTITIES_PER_RECORD, validate_identity

RAW_EXCERPT_LENGTH = 2000
TIMESTAMP_SPEC = FieldSpec("timestamp", "datetime")
EXTERNAL_ID_SPEC = FieldSpec("external_id", max_length=255)
# Keys whose nested objects are flattened: {"identity": {"ecid": "…"}} == {"identity.ecid": "…"}.
NESTED_KEYS = ("identity", "account", "parent", "opportunity", "list", "campaign", "attributes", "properties")
REFERENCE_PREFIXES = ("account", "parent", "opportunity", "list", "campaign")
EXTRA_PREFIX = {IngestionEntity.EVENT: "properties"}


@dataclass
class Record:
    row_number: int
    fields: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)  # attributes (profiles) or properties (events)
    identities: list = field(default_factory=list)  # [(namespace, value)]
    refs: dict = field(default_factory=dict)  # {"account": [(ns, value)], "opportunity": "ext id", …}
    external_id: str | None = None
    timestamp: dt.datetime | None = None


@dataclass
class Rejection:
    row_number: int
    reason: str
    field: str = ""
    raw: str = ""
    duplicate: bool = False  # already stored (a resend): reported, not an error in the data


def flatten(raw: dict) -> dict:
    flat = {}
    for key, value in raw.items():
        if key in NESTED_KEYS and isinstance(value, dict):
            for inner, inner_value in value.items():
                flat[f"{key}.{inner}"] = inner_value
        else:
            flat[key] = value
    return flat


def apply_mapping(raw: dict, columns: dict | None) -> dict:
    """Rename source columns to targets. Without a mapping, the keys already are targets."""
    if not columns:
        return flatten(raw)
    mapped = {target: raw.get(source) for target, source in columns.items() if source in raw}
    mapped_sources = set(columns.values())
    for source, value in raw.items():
        if source not in mapped_sources and source not in mapped:
            mapped[source] = value
    return mapped


def excerpt(raw) -> str:
    text = raw if isinstance(raw, str) else json.dumps(raw, default=str, ensure_ascii=False)
    return text[:RAW_EXCERPT_LENGTH]


def parse_record(entity: str, row_number: int, raw: dict, columns: dict | None = None, *, strict_keys=False):
    """A Record, or a Rejection naming the first problem found.

    ``strict_keys`` refuses unknown keys (the streaming API); files keep unknown columns as
    attributes/properties so nothing the customer sent is lost.
    """
    fields_spec = ENTITY_FIELDS[entity]
    extra_prefix = EXTRA_PREFIX.get(entity, "attributes")
    record = Record(row_number=row_number)
    data = apply_mapping(raw, columns)
    try:
        for key, value in data.items():
            _read_key(entity, record, key, value, fields_spec, extra_prefix, strict_keys)
        for required in REQUIRED_TARGETS.get(entity, ()):
            if _missing(record, required):
                raise _KeyProblem(required, "is required")
        if len(record.identities) > MAX_IDENTITIES_PER_RECORD:
            raise _KeyProblem(
                "identity", f"has {len(record.identities)} identities; a record may carry at most {MAX_IDENTITIES_PER_RECORD}"
            )
        if entity in (IngestionEntity.PERSON, IngestionEntity.ACCOUNT) and not record.identities:
            names = ", ".join(f"identity.{ns}" for ns in namespaces_for(entity))
            raise _KeyProblem("identity", f"the record has no identity; give at least one of {names}")
        if entity not in (IngestionEntity.PERSON, IngestionEntity.ACCOUNT, IngestionEntity.OPPORTUNITY) and not record.identities:
            raise _KeyProblem("identity", "the record names no person; give an identity such as identity.email")
    except _KeyProblem as problem:
        return Rejection(row_number, f"{problem.key}: {problem.message}", problem.key, excerpt(raw))
    return record


class _KeyProblem(Exception):
    def __init__(self, key, message):
        self.key, self.message = key, message


def _missing(record: Record, target: str) -> bool:
    if target == "external_id":
        return not record.external_id
    if "." in target:
        return not record.refs.get(target.split(".", 1)[0])
    return record.fields.get(target) is None


def _read_key(entity, record, key, value, fields_spec, extra_prefix, strict_keys):
    try:
        if key in fields_spec:
            typed = fields_spec[key].read(value)
            if typed is not None:
                record.fields[key] = typed
                _add_implied_identity(entity, record, key, typed)
        elif key.startswith("identity."):
            namespace = key.removeprefix("identity.")
            if not is_known_namespace(entity, namespace):
                raise FieldError(f"'{namespace}' is not an identity namespace for {entity} records")
            if value not in (None, ""):
                _add_identity(record, namespace, validate_identity(namespace, value))
        elif key == "timestamp":
            record.timestamp = TIMESTAMP_SPEC.read(value)
        elif key == "external_id":
            record.external_id = EXTERNAL_ID_SPEC.read(value)
        elif key.split(".", 1)[0] in REFERENCE_PREFIXES and "." in key:
            _read_reference(record, key, value)
        elif key.startswith(f"{extra_prefix}."):
            if value not in (None, ""):
                record.extra[key.removeprefix(f"{extra_prefix}.")] = value
        elif strict_keys:
            raise FieldError(f"unknown field for {entity} records")
        elif value not in (None, ""):
            record.extra[key] = value
    except FieldError as error:
        raise _KeyProblem(key, str(error)) from None


def _add_identity(record, namespace, value):
    if (namespace, value) not in record.identities:
        record.identities.append((namespace, value))


def _add_implied_identity(entity, record, key, typed):
    # A person's email and an account's domain identify them without being mapped twice.
    if entity == IngestionEntity.PERSON and key == "email":
        _add_identity(record, IdentityNamespace.EMAIL.value, typed)
    elif entity == IngestionEntity.ACCOUNT and key == "domain":
        value = validate_identity(IdentityNamespace.DOMAIN.value, typed)
        record.fields["domain"] = value
        _add_identity(record, IdentityNamespace.DOMAIN.value, value)


def _read_reference(record, key, value):
    prefix, name = key.split(".", 1)
    if value in (None, ""):
        return
    if name == "external_id":
        record.refs[prefix] = EXTERNAL_ID_SPEC.read(value)
    elif prefix in ("account", "parent"):
        if name not in ("crm_account_id", "sfdc_account_id", "domain") and not name.startswith(CUSTOM_NAMESPACE_PREFIX):
            raise FieldError("accounts are referenced by crm_account_id, sfdc_account_id or domain")
        record.refs.setdefault(prefix, []).append((name, validate_identity(name, value)))
    else:
        raise FieldError(f"{prefix} is referenced by {prefix}.external_id")
