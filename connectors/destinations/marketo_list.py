"""Marketo Engage static list: adds and removes audience members as list members.

People are matched to existing leads by email (Get Leads by filter, ≤300 values a call) and added or
removed by lead id. Leads are created (Sync Leads, createOnly) only when the destination allows it;
otherwise unmatched people are reported on the run and Sync Leads is never called. Adding a lead that
is already a member answers "skipped", so a repeated push changes nothing twice.
"""

from cdp.choices import AudienceKind
from cdp.exceptions import RuleViolation

from . import ADD, REMOVE, DestinationType, PushResult, PushStopped, chunked

CHUNK = 300  # Marketo's limit of ids and filter values a call


class MarketoStaticList(DestinationType):
    description = (
        "Adds audience members to a static list of a paired Marketo instance, matching existing leads by email, "
        "and removes them when they leave. Unmatched people are reported; no lead is created unless an admin allows it."
    )
    sends_to_marketo = True

    def validate_config(self, config: dict) -> dict:
        list_id = config.get("list_id")
        try:
            list_id = int(list_id)
        except (TypeError, ValueError):
            list_id = 0
        if list_id <= 0:
            raise RuleViolation(
                "Give the id of the Marketo static list (a positive number, shown in the list's URL in Marketo).",
                rule="destination_config",
                field="list_id",
            )
        return {"list_id": list_id}

    def apply_options(self, destination, *, allow_lead_creation, secret, by_admin) -> None:
        if allow_lead_creation and not destination.allow_lead_creation and not by_admin():
            raise RuleViolation(
                "Only an admin of this sandbox can allow creating Marketo leads.",
                rule="lead_creation_admin_only",
                field="allow_lead_creation",
            )
        destination.allow_lead_creation = bool(allow_lead_creation)

    def default_mapping(self, audience_kind) -> list[dict]:
        return [{"source": "email", "target": "email"}, {"source": "identity.ecid", "target": "ecids"}]

    def check_dataflow(self, *, audience_kind, mode) -> None:
        if audience_kind != AudienceKind.PERSON:
            raise RuleViolation("A Marketo static list holds people: choose person audiences.", rule="dataflow_audiences", field="audiences")

    def check_mapping(self, mapping) -> None:
        if not any(m["source"] == "email" and m["target"] == "email" for m in mapping):
            raise RuleViolation(
                "A Marketo dataflow maps the profile's email to the lead's email: people are matched by it.",
                rule="marketo_mapping_needs_email",
                field="mapping",
            )

    def push(self, destination, dataflow, members, result: PushResult, context) -> None:
        from connectors.marketo import MarketoClient, MarketoError, MarketoQuotaExceeded

        if destination.pairing is None:
            raise PushStopped("The Marketo instance is no longer paired with this sandbox as a destination: an admin pairs it again.", 0)
        client = MarketoClient.for_instance(destination.pairing.marketo_instance, sleep=context.sleep)
        list_id = destination.config["list_id"]
        for start, chunk in chunked(members, CHUNK):
            # Counted only once the whole chunk is through: a stopped chunk is sent again next run.
            partial = PushResult()
            try:
                _push_chunk(client, list_id, destination.allow_lead_creation, chunk, partial)
            except MarketoQuotaExceeded as error:
                raise PushStopped(f"{error} The rest is sent on the next run.", start) from error
            except MarketoError as error:
                raise PushStopped(f"Marketo refused the push: {error}", start) from error
            _merge(result, partial)


DESTINATION_TYPE = MarketoStaticList()


def _merge(result: PushResult, partial: PushResult) -> None:
    for name in ("sent", "matched", "unmatched", "failed", "skipped", "created"):
        setattr(result, name, getattr(result, name) + getattr(partial, name))
    result.outcomes.extend(partial.outcomes)
    result.placed.extend(partial.placed)
    result.withdrawn.extend(partial.withdrawn)


def _push_chunk(client, list_id, allow_lead_creation, members, result: PushResult) -> None:
    # Removals of people this dataflow added use the lead ids it stored then; the rest go by email,
    # sent as stored and matched back without case, as Marketo compares emails.
    emails = sorted({m.email for m in members if m.email and not (m.action == REMOVE and m.external_ids)})
    lead_ids_by_email: dict[str, list[int]] = {}
    if emails:
        for lead in client.get_leads_by_filter("email", emails, ["id", "email"]):
            lead_ids_by_email.setdefault((lead.get("email") or "").lower(), []).append(int(lead["id"]))

    to_add, to_remove, to_create = {}, {}, []
    for member in members:
        if member.action == REMOVE and member.external_ids:
            lead_ids = member.external_ids
        else:
            lead_ids = lead_ids_by_email.get(member.email.lower(), []) if member.email else []
        if lead_ids:
            result.matched += 1
            for lead_id in lead_ids:
                (to_add if member.action == ADD else to_remove)[lead_id] = member
        elif member.action == REMOVE:
            result.skipped += 1  # not in Marketo, so not in the list either
        elif not member.email:
            result.unmatched += 1
            result.record(member, "unmatched", "No email on the profile: Marketo leads are matched by email.")
        elif allow_lead_creation:
            to_create.append(member)
        else:
            result.unmatched += 1
            result.record(member, "unmatched", "No Marketo lead has this email.")

    if to_create:
        leads = [{k: v for k, v in m.values.items() if v not in ("", None)} for m in to_create]
        records = client.sync_leads(leads, action="createOnly", lookup_field="email")
        for member, record in zip(to_create, records):
            if record.get("status") in ("created", "updated") and record.get("id"):
                result.created += 1
                result.record(member, "created", f"Lead {record['id']} created.")
                to_add[int(record["id"])] = member
            else:
                result.failed += 1
                result.record(member, "failed", f"Marketo didn't create the lead: {_reasons(record)}")

    for lead_ids, call, done in ((to_add, client.add_leads_to_list, "added"), (to_remove, client.remove_leads_from_list, "removed")):
        if not lead_ids:
            continue
        for record in call(list_id, sorted(lead_ids)):
            status, member = record.get("status"), lead_ids[int(record["id"])]
            if status == done:
                result.sent += 1
            elif status == "skipped" and not _lead_missing(record):
                result.skipped += 1  # already (or not) a member: nothing to change
            else:
                result.failed += 1
                result.record(member, "failed", f"Lead {record['id']}: {_reasons(record)}")
                continue
            if done == "added":
                result.placed.append((member.member_id, int(record["id"])))
    result.withdrawn.extend(m.member_id for m in members if m.action == REMOVE)


def _reasons(record: dict) -> str:
    reasons = record.get("reasons") or []
    return "; ".join(f"{r.get('code')} {r.get('message')}" for r in reasons) or str(record.get("status"))


def _lead_missing(record: dict) -> bool:
    return any(str(r.get("code")) == "1004" for r in record.get("reasons") or [])
