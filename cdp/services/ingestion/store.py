"""Store a chunk of validated records of any entity. Profiles go through cdp.services.profiles;
this module adds opportunities, contact roles, events and memberships on top of it."""

from django.db import transaction
from django.utils import timezone

from cdp.choices import IngestionEntity
from cdp.models import (
    Campaign,
    CampaignMember,
    ExperienceEvent,
    ListMember,
    MarketingList,
    Opportunity,
    OpportunityPerson,
)
from cdp.schema import OPPORTUNITY_FIELDS
from cdp.services.bulk import existing_values, insert_rows
from cdp.services.ingestion.records import Rejection
from cdp.services.merge_policy import FieldMerger
from cdp.services.profiles import (
    StoreResult,
    lock_sandbox_profiles,
    people_for_records,
    resolve_accounts,
    upsert_accounts,
    upsert_people,
)
from cdp.services.audiences import announce_profile_changes


def store_records(sandbox, entity: str, records, dataset: str, *, locked=False) -> StoreResult:
    """Store records in one transaction, with the changed profiles noted for the audiences and
    announced once it commits.
    ``locked``: the caller already holds lock_sandbox_profiles in its transaction."""
    with transaction.atomic():
        if not locked:
            lock_sandbox_profiles(sandbox)
        result = STORES[entity](sandbox, records, dataset)
        announce_profile_changes(sandbox.pk, result.person_ids, result.account_ids, sender=store_records)
    return result


def _store_people(sandbox, records, dataset):
    result, _ = upsert_people(sandbox, records, dataset)
    return result


def _store_opportunities(sandbox, records, dataset):
    now = timezone.now()
    result = StoreResult()
    merger = FieldMerger(sandbox)
    account_ids = {}
    with_account = [r for r in records if r.refs.get("account")]
    if with_account:
        for record, account_id in zip(with_account, resolve_accounts(sandbox, [r.refs["account"] for r in with_account], dataset), strict=True):
            account_ids[record.row_number] = account_id
    existing = {o.external_id: o for o in Opportunity.objects.filter(sandbox=sandbox, external_id__in={r.external_id for r in records})}
    new, changed = {}, {}
    for record in records:
        opportunity = existing.get(record.external_id) or new.get(record.external_id)
        if opportunity is None:
            opportunity = Opportunity(sandbox=sandbox, external_id=record.external_id, attributes={}, provenance={})
            new[record.external_id] = opportunity
            result.created += 1
        else:
            result.updated += 1
        touched = merger.apply(opportunity, record.fields, record.extra, dataset, (record.timestamp or now).isoformat())
        account_id = account_ids.get(record.row_number)
        if account_id and opportunity.account_id != account_id:
            opportunity.account_id = account_id
            touched = True
        if touched and opportunity.pk:
            changed[opportunity.pk] = opportunity
    Opportunity.objects.bulk_create(list(new.values()))
    for opportunity in changed.values():
        opportunity.updated_at = now
    Opportunity.objects.bulk_update(
        list(changed.values()), list(OPPORTUNITY_FIELDS) + ["account", "attributes", "provenance", "updated_at"]
    )
    result.account_ids |= {o.account_id for o in [*new.values(), *changed.values()] if o.account_id}
    return result


def _store_opportunity_people(sandbox, records, dataset):
    result = StoreResult()
    opportunities = dict(
        Opportunity.objects.filter(sandbox=sandbox, external_id__in={r.refs["opportunity"] for r in records}).values_list(
            "external_id", "id"
        )
    )
    known = []
    for record in records:
        if record.refs["opportunity"] in opportunities:
            known.append(record)
        else:
            result.rejections.append(
                Rejection(record.row_number, f"opportunity.external_id: no opportunity '{record.refs['opportunity']}' in this sandbox; load opportunities first", "opportunity.external_id")
            )
    person_ids = people_for_records(sandbox, known, dataset, result)
    rows = {}
    for record, person_id in zip(known, person_ids, strict=True):
        key = (opportunities[record.refs["opportunity"]], person_id)
        rows[key] = OpportunityPerson(
            sandbox=sandbox,
            opportunity_id=key[0],
            person_id=person_id,
            role=record.fields.get("role", ""),
            is_primary=record.fields.get("is_primary", False),
        )
    OpportunityPerson.objects.bulk_create(
        list(rows.values()),
        update_conflicts=True,
        unique_fields=["opportunity", "person"],
        update_fields=["role", "is_primary"],
    )
    result.updated += len(known)
    result.account_ids |= set(
        Opportunity.objects.filter(pk__in={k[0] for k in rows}, account__isnull=False).values_list("account_id", flat=True)
    )
    return result


def _store_events(sandbox, records, dataset):
    result = StoreResult()
    person_ids = people_for_records(sandbox, records, dataset, result)
    with_account = [r for r in records if r.refs.get("account")]
    account_of = {}
    if with_account:
        resolved = resolve_accounts(sandbox, [r.refs["account"] for r in with_account], dataset)
        account_of = {r.row_number: a for r, a in zip(with_account, resolved, strict=True)}
    external_ids = {r.external_id for r in records if r.external_id}
    stored = existing_values(ExperienceEvent, sandbox, "external_id", external_ids)
    events = []
    for record, person_id in zip(records, person_ids, strict=True):
        if record.external_id:
            if record.external_id in stored:
                result.rejections.append(
                    Rejection(record.row_number, f"external_id: event '{record.external_id}' is already stored; not counted twice", "external_id", duplicate=True)
                )
                continue
            stored.add(record.external_id)
        events.append(
            ExperienceEvent(
                sandbox=sandbox,
                person_id=person_id,
                account_id=account_of.get(record.row_number),
                type=record.fields["type"],
                occurred_at=record.fields["occurred_at"],
                properties=record.extra,
                external_id=record.external_id,
                dataset=dataset,
            )
        )
    insert_rows(ExperienceEvent, events)
    result.created += len(events)
    result.account_ids |= {a for a in account_of.values() if a}
    return result


def _store_memberships(container_model, member_model, ref, container_field, name_field, update_fields):
    """A store for list or campaign members: ``ref`` is the record's reference to the container."""

    def store(sandbox, records, dataset):
        result = StoreResult()
        containers = {}
        for record in records:
            external_id = record.refs[ref]
            containers.setdefault(external_id, record.fields.get(name_field) or external_id)
        existing = dict(
            container_model.objects.filter(sandbox=sandbox, external_id__in=containers).values_list("external_id", "id")
        )
        created = [container_model(sandbox=sandbox, external_id=e, name=n) for e, n in containers.items() if e not in existing]
        container_model.objects.bulk_create(created)
        existing.update({c.external_id: c.pk for c in created})
        person_ids = people_for_records(sandbox, records, dataset, result)
        now = timezone.now()
        rows = {}
        for record, person_id in zip(records, person_ids, strict=True):
            values = {f: record.fields[f] for f in update_fields if f in record.fields}
            rows[(existing[record.refs[ref]], person_id)] = member_model(
                sandbox=sandbox,
                person_id=person_id,
                added_at=record.fields.get("added_at") or now,
                **{container_field: existing[record.refs[ref]]},
                **values,
            )
        member_model.objects.bulk_create(
            list(rows.values()),
            update_conflicts=bool(update_fields),
            ignore_conflicts=not update_fields,
            unique_fields=[container_field.removesuffix("_id"), "person"] if update_fields else None,
            update_fields=list(update_fields) or None,
        )
        result.updated += len(records)
        return result

    return store


STORES = {
    IngestionEntity.PERSON: _store_people,
    IngestionEntity.ACCOUNT: upsert_accounts,
    IngestionEntity.OPPORTUNITY: _store_opportunities,
    IngestionEntity.OPPORTUNITY_PERSON: _store_opportunity_people,
    IngestionEntity.EVENT: _store_events,
    IngestionEntity.LIST_MEMBER: _store_memberships(MarketingList, ListMember, "list", "marketing_list_id", "list_name", ()),
    IngestionEntity.CAMPAIGN_MEMBER: _store_memberships(
        Campaign, CampaignMember, "campaign", "campaign_id", "campaign_name", ("status", "has_responded")
    ),
}
