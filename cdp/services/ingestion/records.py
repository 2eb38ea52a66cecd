"""Turn raw rows (CSV rows, JSON objects) into validated records, or rejections with reasons.

The work that depends only on a row's keys — which target each key feeds and how its value is
read — is done once per set of keys (a file's header), not once per row: a ``RecordReader`` keeps
one plan per set of keys, and each key's reader is built once per (entity, key). Every ingest path
reads through it, so files, the streaming API, syncs and journeys apply the same rules.
"""

import datetime as dt
import functools
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
# Plans kept per reader: a file has one set of keys; JSON records may vary, but not endlessly.
MAX_PLANS_PER_READER = 256


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
    return reader_for(entity, columns, strict_keys=strict_keys).read(row_number, raw)


def reader_for(entity: str, columns: dict | None = None, *, strict_keys=False) -> "RecordReader":
    """The shared reader of an entity under a mapping (its plans serve every later call)."""
    return _shared_reader(entity, tuple(columns.items()) if columns else (), strict_keys)


@functools.lru_cache(maxsize=64)
def _shared_reader(entity, column_items, strict_keys):
    return RecordReader(entity, dict(column_items), strict_keys=strict_keys)


class RecordReader:
    """Reads raw rows of one entity under one mapping into Records or Rejections.

    Rows with the same keys share a plan: (source key, target, the target's reader) in the order
    ``apply_mapping`` gives, so the first problem reported is the same as key-by-key reading."""

    def __init__(self, entity: str, columns: dict | None = None, *, strict_keys=False):
        self.entity = entity
        self.fields_spec = ENTITY_FIELDS[entity]  # an unknown entity fails here, not row by row
        self.columns = dict(columns or {})
        self.strict_keys = strict_keys
        self.required = REQUIRED_TARGETS.get(entity, ())
        self._plans = {}

    def read(self, row_number: int, raw: dict):
        data = raw if self.columns else flatten(raw)
        keys = tuple(data)
        plan = self._plans.get(keys) or self._plan(data, keys)
        record = Record(row_number=row_number)
        try:
            for source, target, read in plan:
                try:
                    read(record, data[source])
                except FieldError as error:
                    raise _KeyProblem(target, str(error)) from None
            self._check(record)
        except _KeyProblem as problem:
            return Rejection(row_number, f"{problem.key}: {problem.message}", problem.key, excerpt(raw))
        return record

    def _plan(self, data, keys) -> tuple:
        # The mapping applied to the keys themselves gives {target: source key} in reading order.
        targets = apply_mapping({key: key for key in keys}, self.columns) if self.columns else {key: key for key in keys}
        plan = tuple((source, target, _key_reader(self.entity, target, self.strict_keys)) for target, source in targets.items())
        if len(self._plans) >= MAX_PLANS_PER_READER:
            self._plans.clear()
        self._plans[keys] = plan
        return plan

    def _check(self, record) -> None:
        entity = self.entity
        for required in self.required:
            if _missing(record, required):
                raise _KeyProblem(required, "is required")
        if len(record.identities) > MAX_IDENTITIES_PER_RECORD:
            raise _KeyProblem(
                "identity", f"has {len(record.identities)} identities; a record may carry at most {MAX_IDENTITIES_PER_RECORD}"
            )
        if record.identities:
            return
        if entity in (IngestionEntity.PERSON, IngestionEntity.ACCOUNT):
            names = ", ".join(f"identity.{ns}" for ns in namespaces_for(entity))
            raise _KeyProblem("identity", f"the record has no identity; give at least one of {names}")
        if entity != IngestionEntity.OPPORTUNITY:
            raise _KeyProblem("identity", "the record names no person; give an identity such as identity.email")


class _KeyProblem(Exception):
    def __init__(self, key, message):
        self.key, self.message = key, message


def _missing(record: Record, target: str) -> bool:
    if target == "external_id":
        return not record.external_id
    if "." in target:
        return not record.refs.get(target.split(".", 1)[0])
    return record.fields.get(target) is None


@functools.lru_cache(maxsize=4096)
def _key_reader(entity: str, key: str, strict_keys: bool):
    """How a value of ``key`` is read into a record: a function (record, value) that stores it or
    raises FieldError. The key's kind is worked out here, once, not for every value."""
    fields_spec = ENTITY_FIELDS[entity]
    extra_prefix = EXTRA_PREFIX.get(entity, "attributes")
    if key in fields_spec:
        return _field_reader(entity, key, fields_spec[key].read)
    if key.startswith("identity."):
        namespace = key.removeprefix("identity.")
        if not is_known_namespace(entity, namespace):
            return _refuse(f"'{namespace}' is not an identity namespace for {entity} records")

        def read_identity(record, value):
            if value not in (None, ""):
                _add_identity(record, namespace, validate_identity(namespace, value))

        return read_identity
    if key == "timestamp":

        def read_timestamp(record, value):
            record.timestamp = TIMESTAMP_SPEC.read(value)

        return read_timestamp
    if key == "external_id":

        def read_external_id(record, value):
            record.external_id = EXTERNAL_ID_SPEC.read(value)

        return read_external_id
    if key.split(".", 1)[0] in REFERENCE_PREFIXES and "." in key:
        return functools.partial(_read_reference, key=key)
    if key.startswith(f"{extra_prefix}."):
        return _extra_reader(key.removeprefix(f"{extra_prefix}."))
    if strict_keys:
        return _refuse(f"unknown field for {entity} records")
    return _extra_reader(key)


def _field_reader(entity, key, read):
    # A person's email and an account's domain identify them without being mapped twice.
    if entity == IngestionEntity.PERSON and key == "email":

        def read_email(record, value):
            typed = read(value)
            if typed is not None:
                record.fields[key] = typed
                _add_identity(record, IdentityNamespace.EMAIL.value, typed)

        return read_email
    if entity == IngestionEntity.ACCOUNT and key == "domain":

        def read_domain(record, value):
            typed = read(value)
            if typed is not None:
                domain = validate_identity(IdentityNamespace.DOMAIN.value, typed)
                record.fields[key] = domain
                _add_identity(record, IdentityNamespace.DOMAIN.value, domain)

        return read_domain

    def read_field(record, value):
        typed = read(value)
        if typed is not None:
            record.fields[key] = typed

    return read_field


def _extra_reader(name):
    def read_extra(record, value):
        if value not in (None, ""):
            record.extra[name] = value

    return read_extra


def _refuse(message):
    def refuse(record, value):
        raise FieldError(message)

    return refuse


def _add_identity(record, namespace, value):
    if (namespace, value) not in record.identities:
        record.identities.append((namespace, value))


def _read_reference(record, value, *, key):
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
