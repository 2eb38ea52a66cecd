"""Identity values: validation and normalisation, the rule every ingest path applies."""

import re

from cdp.choices import CUSTOM_NAMESPACE_PREFIX, IdentityNamespace
from cdp.schema import EMAIL_RE, FieldError

MAX_IDENTITY_LENGTH = 1024
MAX_IDENTITIES_PER_RECORD = 20
MAX_IDENTITIES_PER_GRAPH = 50
PLACEHOLDER_VALUES = {"null", "anonymous", "invalid"}

_ECID_RE = re.compile(r"^\d{38}$")
_DIGITS_RE = re.compile(r"^\d+$")
_SFDC_ID_RE = re.compile(r"^[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?$")
_DOMAIN_RE = re.compile(r"^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_CUSTOM_CODE_RE = re.compile(r"^[a-z0-9_]{1,50}$")
_STANDARD_NAMESPACES = frozenset(IdentityNamespace.values)


def normalize_domain(raw: str) -> str:
    value = raw.strip().lower()
    value = re.sub(r"^[a-z]+://", "", value)
    value = value.split("/", 1)[0].split(":", 1)[0]
    return value.removeprefix("www.")


def validate_identity(namespace: str, raw) -> str:
    """The normalised identity value, or FieldError saying why it can't identify anyone."""
    if namespace.startswith(CUSTOM_NAMESPACE_PREFIX):
        if not _CUSTOM_CODE_RE.match(namespace.removeprefix(CUSTOM_NAMESPACE_PREFIX)):
            raise FieldError("custom namespaces are written custom:<code> with lowercase letters, digits, _")
    elif namespace not in _STANDARD_NAMESPACES:
        raise FieldError(f"'{namespace}' is not an identity namespace")
    if raw is None or (isinstance(raw, bool)):
        raise FieldError("is empty")
    value = str(raw).strip()
    if not value:
        raise FieldError("is empty")
    if value.lower() in PLACEHOLDER_VALUES:
        raise FieldError(f"'{value}' is a placeholder, not an identity")
    if len(value) > MAX_IDENTITY_LENGTH:
        raise FieldError(f"is {len(value)} characters long; identities are at most {MAX_IDENTITY_LENGTH}")
    if namespace == IdentityNamespace.ECID and not _ECID_RE.match(value):
        raise FieldError(f"'{value[:60]}' is not an ECID (exactly 38 digits)")
    if namespace == IdentityNamespace.EMAIL:
        value = value.lower()
        if not EMAIL_RE.match(value):
            raise FieldError(f"'{value[:60]}' is not an email address")
    if namespace == IdentityNamespace.MARKETO_LEAD_ID and not _DIGITS_RE.match(value):
        raise FieldError(f"'{value[:60]}' is not a Marketo lead id (digits only)")
    if namespace in (IdentityNamespace.SFDC_CONTACT_ID, IdentityNamespace.SFDC_LEAD_ID, IdentityNamespace.SFDC_ACCOUNT_ID):
        if not _SFDC_ID_RE.match(value):
            raise FieldError(f"'{value[:60]}' is not a Salesforce id (15 or 18 letters and digits)")
    if namespace == IdentityNamespace.DOMAIN:
        value = normalize_domain(value)
        if not _DOMAIN_RE.match(value):
            raise FieldError(f"'{value[:60]}' is not a domain name")
    return value
