"""Read helpers of the profile store: search, lookup, detail prefetches and activity timelines.

Shared by the REST API and the pages so both read the same way. Every helper takes the sandbox
and stays within it; each returns a queryset (so callers paginate) or a bounded list, and costs a
fixed number of queries whatever the number of rows.
"""

import io
import tempfile

from django.db.models import Count, Prefetch, Q

from cdp.choices import (
    ACCOUNT_NAMESPACES,
    CUSTOM_NAMESPACE_PREFIX,
    PERSON_NAMESPACES,
    EventType,
    IdentityNamespace,
)
from cdp.models import (
    Account,
    AccountPerson,
    CampaignMember,
    ExperienceEvent,
    Identity,
    ListMember,
    Opportunity,
    OpportunityPerson,
    ProfileMerge,
)
from cdp.schema import FieldError
from cdp.services.identities import normalize_domain, validate_identity
from cdp.services.ingestion import write_rejections_csv

EVENT_TYPE_LABELS = dict(EventType.choices)
NAMESPACE_LABELS = dict(IdentityNamespace.choices)


# --------------------------------------------------------------------------------------- search
def identity_candidates(term: str, namespaces) -> list[tuple[str, str]]:
    """(namespace, normalised value) pairs a search term could be, as an identity.

    ``ns:value`` names the namespace (custom ones too: ``custom:crm:123``); otherwise the term is
    tried in each of the entity's standard namespaces where it is a valid value.
    """
    term = term.strip()
    if not term:
        return []
    namespace, sep, value = term.partition(":")
    if sep and value:
        if namespace == "custom":  # custom:<code>:<value>
            code, sep, value = value.partition(":")
            namespace = f"{CUSTOM_NAMESPACE_PREFIX}{code}"
        if sep and (namespace in namespaces or namespace.startswith(CUSTOM_NAMESPACE_PREFIX)):
            try:
                return [(namespace, validate_identity(namespace, value))]
            except FieldError:
                return []
    pairs = []
    for namespace in namespaces:
        try:
            pairs.append((namespace, validate_identity(namespace, term)))
        except FieldError:
            continue
    return pairs


def _identity_holders(sandbox, term: str, namespaces, owner_field: str) -> list[int]:
    """Ids of the people (or accounts) holding the identity ``term``, in one indexed query."""
    pairs = identity_candidates(term, namespaces)
    if not pairs:
        return []
    match = Q()
    for namespace, value in pairs:
        match |= Q(namespace=namespace, value=value)
    identities = Identity.objects.filter(match, **{f"{owner_field}__isnull": False})
    if sandbox is not None:  # uses the (sandbox, namespace, value) unique index
        identities = identities.filter(sandbox=sandbox)
    return list(identities.values_list(owner_field, flat=True)[:100])


def search_people(queryset, term: str, sandbox=None):
    """People holding the term as an identity (an exact ECID, email, lead id…) when some do;
    otherwise people whose name or email contains it (every word of it).

    The identity check is one indexed query; only when it finds nobody does the (slower)
    substring search run, so pasting an identifier stays fast on large sandboxes.
    """
    term = (term or "").strip()
    if not term:
        return queryset
    holders = _identity_holders(sandbox, term, PERSON_NAMESPACES, "person_id")
    if holders:
        return queryset.filter(pk__in=holders)
    text = Q()
    for word in term.split():
        text &= Q(first_name__icontains=word) | Q(last_name__icontains=word) | Q(email__icontains=word)
    return queryset.filter(text)


def search_accounts(queryset, term: str, sandbox=None):
    """Accounts holding the term as an identity (CRM id, domain…) when some do; otherwise
    accounts whose name or domain contains it."""
    term = (term or "").strip()
    if not term:
        return queryset
    holders = _identity_holders(sandbox, term, ACCOUNT_NAMESPACES, "account_id")
    if holders:
        return queryset.filter(pk__in=holders)
    return queryset.filter(Q(name__icontains=term) | Q(domain__icontains=normalize_domain(term) or term))


# --------------------------------------------------------------------------------------- lookup
class LookupRequestError(Exception):
    """The lookup request itself is wrong (unknown namespace, invalid value)."""

    def __init__(self, message, field):
        super().__init__(message)
        self.message, self.field = message, field


def lookup_identity(sandbox, namespace: str, value: str) -> Identity | None:
    """The identity ``namespace:value`` with its owner (person or account) loaded, or None.

    Two queries: the identity joined to its owner, then the owner's identities. The value is
    normalised as on ingest (emails lower-cased, domains stripped of scheme and www).
    """
    namespace = (namespace or "").strip()
    if not namespace:
        raise LookupRequestError("Give the identity namespace, e.g. namespace=email.", "namespace")
    if value is None or not str(value).strip():
        raise LookupRequestError("Give the identity value, e.g. value=ann@example.com.", "value")
    if namespace not in NAMESPACE_LABELS and not namespace.startswith(CUSTOM_NAMESPACE_PREFIX):
        known = ", ".join(NAMESPACE_LABELS)
        raise LookupRequestError(f"'{namespace}' is not an identity namespace; use one of {known} or custom:<code>.", "namespace")
    try:
        normalised = validate_identity(namespace, value)
    except FieldError as error:
        raise LookupRequestError(f"{namespace}: {error}.", "value") from None
    identity = (
        Identity.objects.filter(sandbox=sandbox, namespace=namespace, value=normalised)
        .select_related("person", "account")
        .first()
    )
    if identity is None:
        return None
    owner = identity.person or identity.account
    owner.identity_list = list(
        Identity.objects.filter(sandbox=sandbox, **{"person" if identity.person_id else "account": owner})
        .order_by("namespace", "value")
        .only("namespace", "value", "dataset", "created_at")
    )
    return identity


# ------------------------------------------------------------------------------- list prefetches
def people_for_listing(queryset):
    """People with their accounts loaded in one more query (not one per person)."""
    return queryset.prefetch_related(
        Prefetch(
            "account_relations",
            queryset=AccountPerson.objects.select_related("account").only(
                "id", "person_id", "role", "is_primary", "is_active", "account__id", "account__name", "account__domain"
            ),
        )
    )


def accounts_for_listing(queryset):
    return queryset.select_related("parent")


def people_counts(account_ids) -> dict:
    """{account id: number of related people} for a page of accounts, in one query."""
    if not account_ids:
        return {}
    rows = AccountPerson.objects.filter(account_id__in=account_ids).values("account_id").annotate(n=Count("id"))
    return {row["account_id"]: row["n"] for row in rows}


def opportunities_for_listing(queryset):
    return queryset.select_related("account")


# ---------------------------------------------------------------------------------- detail reads
def person_with_relations(queryset):
    """A person queryset with everything the person page and API detail show, prefetched."""
    return queryset.prefetch_related(
        Prefetch("identities", queryset=Identity.objects.order_by("namespace", "value")),
        Prefetch(
            "account_relations",
            queryset=AccountPerson.objects.select_related("account").order_by("-is_primary", "account__name"),
        ),
        Prefetch(
            "opportunity_relations",
            queryset=OpportunityPerson.objects.select_related("opportunity", "opportunity__account").order_by(
                "-opportunity__close_date", "opportunity_id"
            ),
        ),
        Prefetch("list_memberships", queryset=ListMember.objects.select_related("marketing_list").order_by("-added_at")),
        Prefetch("campaign_memberships", queryset=CampaignMember.objects.select_related("campaign").order_by("-added_at")),
        Prefetch("merges", queryset=ProfileMerge.objects.order_by("-merged_at", "-id")),
    )


def account_with_relations(queryset):
    return queryset.select_related("parent").prefetch_related(
        Prefetch("identities", queryset=Identity.objects.order_by("namespace", "value"))
    )


def account_children(account):
    return Account.objects.filter(sandbox_id=account.sandbox_id, parent=account).order_by("name", "id")


def account_people(account):
    """The account's people with their role on it, primary contacts first."""
    return (
        AccountPerson.objects.filter(sandbox_id=account.sandbox_id, account=account)
        .select_related("person")
        .order_by("-is_primary", "person__last_name", "person__first_name", "person_id")
    )


def account_opportunities(account):
    return Opportunity.objects.filter(sandbox_id=account.sandbox_id, account=account).order_by("is_closed", "-close_date", "id")


def opportunity_contacts(opportunity):
    return (
        OpportunityPerson.objects.filter(sandbox_id=opportunity.sandbox_id, opportunity=opportunity)
        .select_related("person")
        .order_by("-is_primary", "person__last_name", "person_id")
    )


# ------------------------------------------------------------------------------------- timelines
def person_timeline(person):
    """The person's events, newest first (served by the (person, type, occurred_at) index)."""
    return ExperienceEvent.objects.filter(sandbox_id=person.sandbox_id, person=person).order_by("-occurred_at", "-id")


ACCOUNT_TIMELINE_PEOPLE = 5000


def account_timeline(account):
    """Events of the account itself and of its people, newest first, with the person loaded.

    The people's ids are read first and passed as a list: PostgreSQL then combines the account
    and person indexes (milliseconds) where an IN (subquery) makes it scan every event of the
    sandbox. Accounts with more people than ACCOUNT_TIMELINE_PEOPLE use the subquery.
    """
    relations = AccountPerson.objects.filter(account=account).values_list("person_id", flat=True)
    people = list(relations[: ACCOUNT_TIMELINE_PEOPLE + 1])
    if len(people) > ACCOUNT_TIMELINE_PEOPLE:
        people = relations
    return (
        ExperienceEvent.objects.filter(sandbox_id=account.sandbox_id)
        .filter(Q(account=account) | Q(person_id__in=people))
        .select_related("person")
        .order_by("-occurred_at", "-id")
    )


def event_label(event_type: str) -> str:
    return EVENT_TYPE_LABELS.get(event_type, event_type)


def event_summary(properties, limit: int = 160) -> str:
    """A short 'key: value, …' line of an event's properties for timelines."""
    if not isinstance(properties, dict) or not properties:
        return ""
    text = ", ".join(f"{key}: {value}" for key, value in list(properties.items())[:8])
    return text if len(text) <= limit else text[: limit - 1] + "…"


def namespace_label(namespace: str) -> str:
    return NAMESPACE_LABELS.get(namespace, namespace)


# ---------------------------------------------------------------------------------- error report
REPORT_MEMORY_BYTES = 2 * 1024 * 1024


def rejections_report_file(batch):
    """The batch's error report (CSV) as a binary file positioned at its start, for a streamed
    download: kept in memory up to 2 MB, then spooled to disk, whatever the number of rows."""
    buffer = tempfile.SpooledTemporaryFile(max_size=REPORT_MEMORY_BYTES)
    text = io.TextIOWrapper(buffer, encoding="utf-8", newline="")
    write_rejections_csv(batch, text)
    text.flush()
    text.detach()
    buffer.seek(0)
    return buffer


def report_file_name(batch) -> str:
    return f"ingestion-{batch.pk}-errors.csv"
