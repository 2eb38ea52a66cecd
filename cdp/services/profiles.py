"""Resolve records to profiles and store them set-wise: the one write path of the profile store.

Every ingest path (file, streaming API, Marketo and Salesforce syncs, journey actions) ends here.
A chunk of records is resolved with a handful of queries (all identities of the chunk at once),
grouped into identity graphs in memory (union-find), merged where a record links two profiles,
and written with bulk statements. Callers hold ``lock_sandbox_profiles`` for the transaction so
two writers can't both create the same new profile.
"""

import datetime as dt
import json
import operator
from collections import defaultdict
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.db.models import Count, Q
from django.forms.models import model_to_dict
from django.utils import timezone

from cdp.choices import ACCOUNT_NAMESPACES
from cdp.models import (
    Account,
    AccountPerson,
    CampaignMember,
    ExperienceEvent,
    Identity,
    ListMember,
    OpportunityPerson,
    Person,
    ProfileMerge,
)
from cdp.schema import ACCOUNT_FIELDS, PERSON_FIELDS
from cdp.services.bulk import insert_rows, insert_values, update_rows, update_values
from cdp.services.identities import MAX_IDENTITIES_PER_GRAPH
from cdp.services.ingestion.records import Record
from cdp.services.merge_policy import FieldMerger
from cdp.signals import people_merged

PERSON_FIELD_NAMES = list(PERSON_FIELDS)
PERSON_COLUMNS = [*PERSON_FIELD_NAMES, "attributes", "provenance"]
_PERSON_ROW = operator.attrgetter(*PERSON_COLUMNS)  # a person's values in PERSON_COLUMNS order
_PERSON_DEFAULTS = tuple(Person._meta.get_field(name).get_default() for name in PERSON_FIELD_NAMES)
ACCOUNT_FIELD_NAMES = list(ACCOUNT_FIELDS)
# Relations that hold at most one row per (other side, person): moved on merge without duplicates.
PERSON_RELATIONS = (
    (AccountPerson, "account_id"),
    (OpportunityPerson, "opportunity_id"),
    (ListMember, "marketing_list_id"),
    (CampaignMember, "campaign_id"),
)


@dataclass
class StoreResult:
    created: int = 0
    updated: int = 0
    merged: int = 0
    rejections: list = field(default_factory=list)
    person_ids: set = field(default_factory=set)
    account_ids: set = field(default_factory=set)

    def add(self, other: "StoreResult"):
        self.created += other.created
        self.updated += other.updated
        self.merged += other.merged
        self.rejections += other.rejections
        self.person_ids |= other.person_ids
        self.account_ids |= other.account_ids


def lock_sandbox_profiles(sandbox) -> None:
    """Serialise profile writers of one sandbox for the current transaction.

    PostgreSQL: a transaction-scoped advisory lock. SQLite: writers are already serialised
    (transactions begin IMMEDIATE).
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [7_301, sandbox.pk])


def _stamp(record, now) -> str:
    return (record.timestamp or now).isoformat()


def identity_owners(sandbox, keys, owner_field: str) -> dict:
    """{(namespace, value): owner id} for the keys that exist; False for a key bound to the other
    kind of profile. PostgreSQL: one round trip for the whole chunk, probing the unique
    (sandbox, namespace, value) index per key; elsewhere one query per namespace."""
    if not keys:
        return {}
    if connection.vendor == "postgresql":
        # The keys go as two JSON arrays of text, namespaces and values, zipped by ROWS FROM (the
        # driver quotes text-array elements one by one in Python; pairs cost the server more to
        # take apart). LATERAL … LIMIT 1 keeps it one unique-index probe per key whatever the
        # statistics say: a plain join, planned before the table was analysed, hashed the
        # sandbox's whole index.
        keys = list(keys)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT k.namespace, k.value, i.owner FROM ROWS FROM "
                "(json_array_elements_text(%s::json), json_array_elements_text(%s::json)) AS k(namespace, value) "
                f"CROSS JOIN LATERAL (SELECT {owner_field} AS owner FROM {Identity._meta.db_table} "
                "WHERE sandbox_id = %s AND namespace = k.namespace AND value = k.value LIMIT 1) AS i",
                [json.dumps([namespace for namespace, _ in keys]), json.dumps([value for _, value in keys]), sandbox.pk],
            )
            rows = cursor.fetchall()
    else:
        by_namespace = defaultdict(list)
        for namespace, value in keys:
            by_namespace[namespace].append(value)
        rows = []
        for namespace, values in by_namespace.items():
            for start in range(0, len(values), 5000):
                rows += Identity.objects.filter(
                    sandbox=sandbox, namespace=namespace, value__in=values[start : start + 5000]
                ).values_list("namespace", "value", owner_field)
    return {(namespace, value): owner if owner is not None else False for namespace, value, owner in rows}


class _UnionFind:
    def __init__(self):
        self.parent = {}

    def find(self, node):
        parent = self.parent
        up = parent.setdefault(node, node)
        if up == node:
            return node
        root = up
        while parent[root] != root:
            root = parent[root]
        while node != root:  # path compression, iteratively: graphs of one big merge are deep
            up = parent[node]
            parent[node] = root
            node = up
        return root

    def union(self, a, b):
        root_a, root_b = self.find(a), self.find(b)
        if root_a != root_b:
            self.parent[root_b] = root_a


class _PersonValues:
    """A person being written by upsert_people. The merge policy reads and sets its fields like a
    model's; it is loaded and written as plain value tuples, because a model instance per row
    cost more than the database work."""

    def __init__(self, pk=None, values=None):
        self.pk = pk
        if values is None:
            values = (*_PERSON_DEFAULTS, {}, {})
        self.__dict__.update(zip(PERSON_COLUMNS, values, strict=True))

    def row(self) -> tuple:
        return _PERSON_ROW(self)


class _JsonDecoder:
    """Decodes the JSON objects of loaded profiles, each distinct text once: the people one chunk
    wrote share one provenance text, and most have empty attributes. Each profile gets its own
    top-level dict; the values under it (provenance's [dataset, timestamp] pairs, attribute
    values) are only ever replaced by the merge policy, never changed in place, so they can be
    shared."""

    def __init__(self):
        self.decoded = {}

    def __call__(self, text: str) -> dict:
        value = self.decoded.get(text)
        if value is None:
            value = self.decoded[text] = json.loads(text)
        return dict(value)


def _load_people(sandbox, person_ids) -> dict:
    people, person_ids = {}, list(person_ids)
    if connection.vendor == "postgresql" and person_ids:
        # One query with an array parameter; the ORM's per-value converters cost more than the
        # query. Django has the driver return jsonb as text: the last two columns are decoded here.
        # The ids come from this sandbox's identities; a condition on sandbox_id would only tempt
        # the planner (before the table is analysed) into scanning the sandbox's whole index.
        columns = ", ".join(Person._meta.get_field(name).column for name in PERSON_COLUMNS)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT id, {columns} FROM {Person._meta.db_table} WHERE id = ANY(%s)", [person_ids])
            decode = _JsonDecoder()
            rows = [(*row[:-2], decode(row[-2]), decode(row[-1])) for row in cursor.fetchall()]
    else:
        rows = []
        for start in range(0, len(person_ids), 5000):
            rows += Person.objects.filter(sandbox=sandbox, pk__in=person_ids[start : start + 5000]).values_list("pk", *PERSON_COLUMNS)
    for pk, *values in rows:
        people[pk] = _PersonValues(pk, values)
    return people


# --------------------------------------------------------------------------------------- people
def upsert_people(sandbox, records, dataset: str, *, now=None, email_from_identity=False) -> tuple[StoreResult, list]:
    """Create, update and merge people from records. Returns the result and, per record, its
    person id (same order as ``records``). ``email_from_identity`` gives a person created from
    identities alone (an event's sender, a list member) its email field from its email identity."""
    now = now or timezone.now()
    result = StoreResult()
    merger = FieldMerger(sandbox)
    keys = {key for record in records for key in record.identities}
    owners = identity_owners(sandbox, keys, "person_id")
    components, component_of = _group_records(records, owners)

    # Merge first: a record that links profiles makes them one before its values are applied.
    target_of_component = [None] * len(components)
    for number, component in enumerate(components):
        persons = sorted(component.persons)
        if len(persons) > 1:
            linking = sorted({k for i in component.records for k in records[i].identities if owners.get(k)})
            merge_people(sandbox, persons[0], persons[1:], linking, dataset)
            result.merged += len(component.records)
        if persons:
            target_of_component[number] = persons[0]

    # Only people that receive values need loading; identity-only records (events) just need ids.
    with_values = {
        target
        for target, component in zip(target_of_component, components, strict=True)
        if target is not None and any(records[i].fields or records[i].extra for i in component.records)
    }
    existing = _load_people(sandbox, with_values)
    new_people, changed_people, person_of_component = [], [], []
    for component, person_id in zip(components, target_of_component, strict=True):
        if person_id is None:
            person = _PersonValues()
        else:
            person = existing.get(person_id) or _PersonValues(person_id)
        ordered = component.records
        if len(ordered) > 1:
            ordered = sorted(ordered, key=lambda i: (records[i].timestamp or now, i))
        changed = False
        for i in ordered:
            changed |= merger.apply(person, records[i].fields, records[i].extra, dataset, _stamp(records[i], now))
        person_of_component.append(person)
        if person_id is None:
            if email_from_identity and not person.email:
                email = next((v for i in ordered for ns, v in records[i].identities if ns == "email"), None)
                if email:
                    merger.apply(person, {"email": email}, {}, dataset, _stamp(records[ordered[0]], now))
            new_people.append(person)
            result.created += 1
            result.updated += len(ordered) - 1
        else:
            if len(component.persons) <= 1:
                result.updated += len(ordered)
            if changed:
                changed_people.append(person)

    new_ids = insert_values(
        Person, ["sandbox", "created_at", "updated_at", *PERSON_COLUMNS], [(sandbox.pk, now, now, *p.row()) for p in new_people]
    )
    for person, new_id in zip(new_people, new_ids, strict=True):
        person.pk = new_id
    update_values(Person, [*PERSON_COLUMNS, "updated_at"], [(p.pk, *p.row(), now) for p in changed_people])

    new_identities, may_exceed_cap = [], set()
    for component, person, target in zip(components, person_of_component, target_of_component, strict=True):
        seen = set()
        for i in component.records:
            for key in records[i].identities:
                if key not in owners and key not in seen:
                    seen.add(key)
                    new_identities.append((sandbox.pk, key[0], key[1], person.pk, dataset))
        if seen and (target is not None or len(seen) > MAX_IDENTITIES_PER_GRAPH):
            may_exceed_cap.add(person.pk)
    insert_values(Identity, ["sandbox", "namespace", "value", "person", "dataset"], new_identities)

    person_ids = [person_of_component[number].pk for number in component_of]
    enforce_identity_cap(sandbox, may_exceed_cap)
    result.person_ids |= {person.pk for person in person_of_component}

    account_refs = [(person_ids[i], r.refs["account"]) for i, r in enumerate(records) if r.refs.get("account")]
    if account_refs:
        account_ids = resolve_accounts(sandbox, [refs for _, refs in account_refs], dataset)
        AccountPerson.objects.bulk_create(
            [
                AccountPerson(sandbox=sandbox, person_id=pid, account_id=aid)
                for (pid, _), aid in zip(account_refs, account_ids, strict=True)
            ],
            ignore_conflicts=True,
        )
        result.account_ids |= set(account_ids)
    return result, person_ids


@dataclass
class _Component:
    records: list  # indexes into the chunk's records, in chunk order
    persons: set  # stored people the records' identities belong to


def _group_records(records, owners) -> tuple[list, list]:
    """The chunk's identity graphs: records that share an identity, directly or through a stored
    person, form one component. Returns the components in order of their first record, and each
    record's component number.

    Most records of a file share nothing: their keys appear in no other record and lead to at most
    one stored person no other record reaches. Each is a component of its own, without the
    union-find that the linked rest goes through."""
    key_uses = {}
    for record in records:
        for key in record.identities:
            key_uses[key] = key_uses.get(key, 0) + 1
    persons_of, first_record_of_person, linked = [], {}, set()
    for index, record in enumerate(records):
        persons = set()
        for key in record.identities:
            if key_uses[key] > 1:
                linked.add(index)
            owner = owners.get(key)
            if owner:  # False: an account's identity, which links no person
                persons.add(owner)
        for person in persons:
            first = first_record_of_person.setdefault(person, index)
            if first != index:
                linked.update((first, index))
        if len(persons) > 1:
            linked.add(index)
        persons_of.append(persons)

    graphs = _UnionFind()
    for index in sorted(linked):
        graphs.find(("r", index))
        for key in records[index].identities:
            graphs.union(("r", index), ("k", key))
            owner = owners.get(key)
            if owner:
                graphs.union(("k", key), ("p", owner))

    components, component_of, number_of_root = [], [], {}
    for index in range(len(records)):
        if index in linked:
            root = graphs.find(("r", index))
            number = number_of_root.get(root)
            if number is None:
                number = number_of_root[root] = len(components)
                components.append(_Component([], set()))
        else:
            number = len(components)
            components.append(_Component([], persons_of[index]))
        components[number].records.append(index)
        component_of.append(number)
    for key, owner in owners.items():
        if owner and ("k", key) in graphs.parent:
            components[number_of_root[graphs.find(("k", key))]].persons.add(owner)
    return components, component_of


def enforce_identity_cap(sandbox, person_ids) -> None:
    """Keep at most MAX_IDENTITIES_PER_GRAPH identities per person, dropping the oldest."""
    if not person_ids:
        return
    over = (
        Identity.objects.filter(sandbox=sandbox, person_id__in=person_ids)
        .values("person_id")
        .annotate(n=Count("id"))
        .filter(n__gt=MAX_IDENTITIES_PER_GRAPH)
    )
    for row in over:
        oldest = Identity.objects.filter(sandbox=sandbox, person_id=row["person_id"]).order_by("created_at", "id")
        drop = list(oldest.values_list("id", flat=True)[: row["n"] - MAX_IDENTITIES_PER_GRAPH])
        Identity.objects.filter(id__in=drop).delete()


@transaction.atomic
def merge_people(sandbox, survivor_id: int, merged_ids, linking_identities, dataset: str) -> Person:
    """Merge people into the survivor: identities, events, relations and memberships move over,
    field values follow the merge policy, and each merge is recorded with a snapshot."""
    merger = FieldMerger(sandbox)
    survivor = Person.objects.select_for_update().get(sandbox=sandbox, pk=survivor_id)
    for merged in Person.objects.filter(sandbox=sandbox, pk__in=merged_ids).order_by("pk"):
        identities = list(Identity.objects.filter(person=merged).values_list("namespace", "value"))
        snapshot = model_to_dict(merged, fields=PERSON_FIELD_NAMES + ["attributes"])
        snapshot.update(id=merged.pk, identities=[list(i) for i in identities], created_at=merged.created_at.isoformat())
        merger.absorb(survivor, merged, PERSON_FIELD_NAMES)

        Identity.objects.filter(person=merged).update(person=survivor)
        ExperienceEvent.objects.filter(person=merged).update(person=survivor)
        for model, other_side in PERSON_RELATIONS:
            already = model.objects.filter(person=survivor).values_list(other_side, flat=True)
            model.objects.filter(person=merged, **{f"{other_side}__in": already}).delete()
            model.objects.filter(person=merged).update(person=survivor)
        ProfileMerge.objects.filter(survivor=merged).update(survivor=survivor)
        people_merged.send(sender=Person, sandbox_id=sandbox.pk, survivor_id=survivor.pk, merged_id=merged.pk)
        ProfileMerge.objects.create(
            sandbox=sandbox,
            survivor=survivor,
            merged_person_id=merged.pk,
            merged_snapshot=_json_safe(snapshot),
            linking_identities=[list(k) for k in linking_identities],
            dataset=dataset,
        )
        merged.delete()
    survivor.save()
    enforce_identity_cap(sandbox, [survivor.pk])
    return survivor


def _json_safe(data: dict) -> dict:
    return {k: (str(v) if isinstance(v, (dt.date, dt.datetime)) or type(v).__name__ == "Decimal" else v) for k, v in data.items()}


# ------------------------------------------------------------------------------------- accounts
def resolve_accounts(sandbox, ref_lists, dataset: str, *, create_missing=True) -> list:
    """Account ids for lists of account references, by CRM id first, then Salesforce id, then
    domain. Unknown accounts are created; references no account holds yet become identities of
    the account they resolved to (so an account first seen by domain gains its CRM id later)."""
    keys = {key for refs in ref_lists for key in refs}
    owners = identity_owners(sandbox, keys, "account_id")
    claimed = {}  # unowned key -> the account (new Account or existing id) it now identifies
    result, to_create = [], []
    for refs in ref_lists:
        account = _first_owner(refs, owners) or next((claimed[k] for k in _in_precedence(refs) if k in claimed), None)
        if account is None:
            if not create_missing:
                result.append(None)
                continue
            domain = next((v for ns, v in refs if ns == "domain"), "")
            account = Account(sandbox=sandbox, domain=domain, attributes={}, provenance={})
            to_create.append(account)
        for key in refs:
            if key not in owners:
                claimed.setdefault(key, account)
        result.append(account)
    insert_rows(Account, to_create)
    insert_values(
        Identity,
        ["sandbox", "namespace", "value", "account", "dataset"],
        [(sandbox.pk, k[0], k[1], _account_id(a), dataset) for k, a in claimed.items()],
    )
    return [_account_id(item) for item in result]


def _account_id(account) -> int:
    return account.pk if isinstance(account, Account) else account


def _in_precedence(refs):
    order = {ns: i for i, ns in enumerate(ACCOUNT_NAMESPACES)}
    return sorted(refs, key=lambda key: order.get(key[0], len(order)))


def _first_owner(refs, owners):
    for key in _in_precedence(refs):
        owner = owners.get(key)
        if owner:
            return owner
    return None


def upsert_accounts(sandbox, records, dataset: str, *, now=None) -> StoreResult:
    now = now or timezone.now()
    result = StoreResult()
    merger = FieldMerger(sandbox)
    account_ids = resolve_accounts(sandbox, [r.identities for r in records], dataset)
    parent_refs = [r.refs["parent"] for r in records if r.refs.get("parent")]
    parent_ids = iter(resolve_accounts(sandbox, parent_refs, dataset)) if parent_refs else iter(())
    accounts = Account.objects.in_bulk(set(account_ids))
    fresh = {a.pk for a in accounts.values() if not a.provenance}
    changed = {}
    for record, account_id in zip(records, account_ids, strict=True):
        account = accounts[account_id]
        if merger.apply(account, record.fields, record.extra, dataset, _stamp(record, now)):
            changed[account_id] = account
        if record.refs.get("parent"):
            parent_id = next(parent_ids)
            if parent_id != account_id and account.parent_id != parent_id:
                account.parent_id = parent_id
                changed[account_id] = account
        if account_id in fresh:
            result.created += 1
            fresh.discard(account_id)
        else:
            result.updated += 1
    for account in changed.values():
        account.updated_at = now
    update_rows(Account, list(changed.values()), ACCOUNT_FIELD_NAMES + ["parent", "attributes", "provenance", "updated_at"])
    result.account_ids |= set(account_ids)
    return result


def people_for_records(sandbox, records, dataset: str, result: StoreResult) -> list:
    """Person ids for records that name a person by identity (events, memberships, contact
    roles). A person seen for the first time gets a profile, as in any identity graph."""
    identity_only = [Record(row_number=r.row_number, identities=r.identities, timestamp=r.timestamp) for r in records]
    sub_result, person_ids = upsert_people(sandbox, identity_only, dataset, email_from_identity=True)
    result.person_ids |= sub_result.person_ids
    return person_ids


def search_identity_filter(term: str) -> Q:
    """Matches people or accounts holding an identity equal to ``term`` (any namespace)."""
    return Q(identities__value=term.strip().lower()) | Q(identities__value=term.strip())
