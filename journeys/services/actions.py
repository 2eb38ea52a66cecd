"""Journey actions, each behind the side-effect ledger (``SideEffect``) so a retry never repeats one.

An action runs for the tokens at its node of every enrollment advanced together (one journey
version): once per person, or once per account for an account action (``ACCOUNT_ACTIONS``). Each
run is a ``Target`` (enrollment, person or None) with its idempotency key: version + node + person
+ account (+ entry number for actions that may run again when an account re-enters; an email is
never sent twice from one node to one person for one account, re-entries included).

Two kinds of action:
- *external, at most once* (send email, sales alert): recorded ``queued`` set-wise, then each is
  marked ``pending`` durably right before its send, and ``done`` (with the EmailSend row) right
  after, in the commit that also marks the next one pending. One found still ``pending`` means a
  worker died mid-send: we can't know whether the message left, so it is logged ("in_doubt") and
  never sent again. A send that raised is marked ``failed`` and tried again by the task's retry.
- *replayable* (profile writes through cdp ingestion, buying group changes, list membership):
  claimed set-wise inside the advance's transaction, which also moves the tokens on: a crash
  rolls both back and the retry does them once. A handler gets every target at once and answers
  {target: Skip} for those it could not do.

Profile changes go through cdp's ingestion (``store_records``), so they stream back into the
profile store, are announced with ``profiles_changed`` and re-trigger audiences.
"""

import time
import uuid
from collections import defaultdict
from typing import NamedTuple

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import transaction
from django.utils import timezone

from cdp.choices import PERSON_NAMESPACES, IngestionEntity, Role
from cdp.exceptions import RuleViolation
from cdp.models import Account, Identity, ListMember, MarketingList, Person, SandboxRole
from cdp.services.ingestion.records import Rejection, parse_record
from cdp.services.ingestion.store import store_records
from journeys.models import EmailAsset, EmailSend, Enrollment, Journey, SideEffect, SideEffectStatus
from journeys.models.journeys import RUNNING_STATES
from journeys.services.emails import render_email

DATASET = "journeys"
AT_MOST_ONCE = ("send_email", "sales_alert")
# Re-entry runs these again; an email from a node is sent to a person once, whatever the entry.
ONCE_PER_NODE = ("send_email",)
# Run once for the account, whichever of its tokens reach the node.
ACCOUNT_ACTIONS = {
    "update_buying_group_stage", "update_buying_group_status", "update_account_field", "sales_alert", "add_to_journey",
}  # fmt: skip


class Skip(Exception):
    """The action does not apply (no email address, invalid stage transition…): logged, not retried."""


class Target(NamedTuple):
    """One run of an action: for a person of an enrollment, or for its account (person_id None)."""

    enrollment: Enrollment
    person_id: int | None

    @property
    def account_id(self) -> int:
        return self.enrollment.account_id


def run_action(node_id: str, node: dict, tokens, enrollment_of, now) -> None:
    """Run a node's action for the tokens at it (enrollments of one journey version, advanced
    together): for each person, or once for each account. ``enrollment_of(token)`` gives a
    token's enrollment."""
    kind = node["action"]
    params = node.get("params") or {}
    enrollments = list({t.enrollment_id: enrollment_of(t) for t in sorted(tokens, key=lambda t: t.enrollment_id)}.values())
    handler = HANDLERS.get(kind)
    if handler is None:
        _log_each([(e, None, f"Unknown action {kind}; nothing done.") for e in enrollments], node_id, "action_unknown", now)
        return
    if kind in ACCOUNT_ACTIONS:
        targets = [Target(e, None) for e in enrollments]
    else:
        people = {(t.enrollment_id, t.person_id): Target(enrollment_of(t), t.person_id) for t in tokens if t.person_id}
        targets = [people[k] for k in sorted(people)]
    ActionContext(enrollments[0], node_id, kind, params, now).run(targets, handler)


class ActionContext:
    """What a node's action shares across its targets: the version, node, parameters and caches."""

    def __init__(self, enrollment, node_id, kind, params, now):
        self.node_id, self.kind, self.params, self.now = node_id, kind, params, now
        self.sandbox = enrollment.sandbox
        self.sandbox_id, self.journey_id, self.version_id = enrollment.sandbox_id, enrollment.journey_id, enrollment.version_id
        self.targets = []
        self._cache = {}
        self._leases_renewed_at = time.monotonic()

    def cached(self, name, load):
        """What every target of the batch shares (the email asset, the people, the SMTP connection)."""
        if name not in self._cache:
            self._cache[name] = load()
        return self._cache[name]

    @property
    def mail_connection(self):
        def open_connection():
            connection = get_connection()
            connection.open()
            return connection

        return self.cached("mail_connection", open_connection)

    def key(self, target: Target) -> str:
        enrollment = target.enrollment
        entry = "" if self.kind in ONCE_PER_NODE else f":e{enrollment.entry_number}"
        return f"v{self.version_id}:n{self.node_id}:p{target.person_id or '-'}:a{enrollment.account_id}{entry}"

    def run(self, targets, handler):
        if not targets:
            return
        self.targets = targets
        if self.kind in AT_MOST_ONCE:
            try:
                queued = self._queue(targets)
                started = bool(queued) and self._start(queued[0][1])
                for index, (target, effect) in enumerate(queued):
                    following = queued[index + 1][1] if index + 1 < len(queued) else None
                    if started:
                        self.effect = effect
                        started = self._perform(target, effect, lambda t=target: handler(self, [t]), following)
                    elif following is not None:
                        started = self._start(following)
                    self._keep_leases()
            finally:
                if "mail_connection" in self._cache:
                    self._cache["mail_connection"].close()
            return
        claimed = self._claim_all(targets)
        if claimed:
            self._perform_all(claimed, handler)

    def _keep_leases(self):
        """Renew the advance's leases now and then while at-most-once effects go out one by one."""
        from journeys.services.runtime import LEASE, renew_leases

        if time.monotonic() - self._leases_renewed_at >= LEASE.total_seconds() / 5:
            renew_leases({t.enrollment.pk for t in self.targets})
            self._leases_renewed_at = time.monotonic()

    # --- claiming
    def _new_effect(self, target, status):
        return SideEffect(
            sandbox_id=self.sandbox_id, key=self.key(target), version_id=self.version_id, node=self.node_id,
            person_id=target.person_id, account_id=target.account_id, kind=self.kind, status=status,
        )  # fmt: skip

    def _effects(self, targets, status):
        """(target, its ledger row) in the targets' order, the rows recorded set-wise first (a row
        already there, from an earlier attempt, is kept as it is)."""
        by_key = {self.key(t): t for t in targets}
        SideEffect.objects.bulk_create([self._new_effect(t, status) for t in targets], ignore_conflicts=True)
        rank = {key: index for index, key in enumerate(by_key)}
        effects = sorted(SideEffect.objects.filter(sandbox_id=self.sandbox_id, key__in=list(by_key)), key=lambda e: rank[e.key])
        return [(by_key[e.key], e) for e in effects]

    def _queue(self, targets):
        """At-most-once effects to attempt now: new ones (queued set-wise) and failed ones. One
        still ``pending`` was interrupted mid-send: logged, never repeated."""
        effects = self._effects(targets, SideEffectStatus.QUEUED)
        _log_each(
            [(t.enrollment, t.person_id, f"{self.kind} for person {e.person_id} was interrupted mid-way; not repeated (at most once).")
             for t, e in effects if e.status == SideEffectStatus.PENDING],
            self.node_id, "in_doubt", self.now,
        )  # fmt: skip
        return [(t, e) for t, e in effects if e.status in (SideEffectStatus.QUEUED, SideEffectStatus.FAILED)]

    def _start(self, effect) -> bool:
        """Mark the effect as being done, durably, right before doing it."""
        started = SideEffect.objects.filter(pk=effect.pk, status=effect.status).update(
            status=SideEffectStatus.PENDING, attempts=effect.attempts + 1, result={}
        )
        effect.status, effect.attempts = SideEffectStatus.PENDING, effect.attempts + 1
        return bool(started)

    def _claim_all(self, targets):
        effects = self._effects(targets, SideEffectStatus.PENDING)
        return [(t, e) for t, e in effects if e.status not in (SideEffectStatus.DONE, SideEffectStatus.SKIPPED)]

    # --- performing
    def _perform(self, target, effect, call, following=None) -> bool:
        """Do a started at-most-once effect and record it. The next effect's start mark commits
        with this one's record (one commit an email); returns whether it was started."""
        self.sent = None
        try:
            with transaction.atomic():
                result = call() or {}
                _finish([effect], SideEffectStatus.DONE, result.get(target, {}))
                return following is not None and self._start(following)
        except Skip as skip:
            with transaction.atomic():
                _finish([effect], SideEffectStatus.SKIPPED, {"reason": str(skip)})
                _log_each([(target.enrollment, target.person_id, f"{self.kind}: {skip}")], self.node_id, "action_skipped", self.now)
                return following is not None and self._start(following)
        except Exception as error:
            # Sent but not recorded: it stays pending (in doubt), never sent again.
            if self.sent != effect.pk:
                _finish([effect], SideEffectStatus.FAILED, {"error": f"{type(error).__name__}: {error}"[:1000]})
            raise

    def _perform_all(self, claimed, handler):
        """Replayable effects run inside the advance's transaction: an error rolls them back
        with their claims, and the retry does them again."""
        try:
            results = handler(self, [t for t, _ in claimed]) or {}
        except Skip as skip:
            _finish([e for _, e in claimed], SideEffectStatus.SKIPPED, {"reason": str(skip)})
            enrollments = {t.enrollment.pk: t.enrollment for t, _ in claimed}
            _log_each([(e, None, f"{self.kind}: {skip}") for e in enrollments.values()], self.node_id, "action_skipped", self.now)
            return
        skipped = {t: r for t, r in results.items() if isinstance(r, Skip)}
        _finish([e for t, e in claimed if t not in skipped], SideEffectStatus.DONE, {})
        by_reason = defaultdict(list)
        for target, effect in claimed:
            if target in skipped:
                by_reason[str(skipped[target])].append(effect)
        for reason, effects in by_reason.items():
            _finish(effects, SideEffectStatus.SKIPPED, {"reason": reason})
        _log_each([(t.enrollment, t.person_id, f"{self.kind}: {s}") for t, s in skipped.items()], self.node_id, "action_skipped", self.now)

    @property
    def by(self) -> str:
        return f"journey:{self.journey_id}"


def _finish(effects, status, result):
    if effects:
        SideEffect.objects.filter(pk__in=[e.pk for e in effects]).update(status=status, result=result, updated_at=timezone.now())


def _log_each(entries, node_id, kind, now):
    """One runtime event per (enrollment, person id, message), in one insert."""
    from journeys.services.runtime import log_each

    log_each(entries, kind, node=node_id, at=now)


# -------------------------------------------------------------------------------------- identities
def person_identities(sandbox, person_ids) -> dict:
    """{person id: (namespace, value)}: the identity a record uses to name an existing person
    (email first, then the other standard namespaces, then custom ones)."""
    rank = {ns: i for i, ns in enumerate(PERSON_NAMESPACES)}
    best = {}
    for person_id, namespace, value in Identity.objects.filter(sandbox=sandbox, person_id__in=person_ids).values_list(
        "person_id", "namespace", "value"
    ):
        score = rank.get(namespace, len(rank))
        if person_id not in best or score < best[person_id][0]:
            best[person_id] = (score, namespace, value)
    return {p: (ns, v) for p, (_, ns, v) in best.items()}


def account_identities(sandbox, account_ids) -> dict:
    """{account id: (namespace, value)}: the identity a record uses to name an existing account."""
    identities = {}
    rows = Identity.objects.filter(sandbox=sandbox, account_id__in=account_ids).order_by("account_id", "namespace", "pk")
    for account_id, namespace, value in rows.values_list("account_id", "namespace", "value"):
        identities.setdefault(account_id, (namespace, value))
    return identities


def _ingest(context, entity, rows_by_target) -> dict:
    """Store one record per target through cdp ingestion (one call for them all); {target: Skip}
    for rejected ones."""
    parsed, skipped = {}, {}
    for number, (target, raw) in enumerate(rows_by_target.items(), start=1):
        record = parse_record(entity, number, raw)
        if isinstance(record, Rejection):
            skipped[target] = Skip(record.reason)
        else:
            parsed[target] = record
    if parsed:
        result = store_records(context.sandbox, entity, list(parsed.values()), DATASET)
        by_row = {r.row_number: r for r in result.rejections if not r.duplicate}
        for target, record in parsed.items():
            if record.row_number in by_row:
                skipped[target] = Skip(by_row[record.row_number].reason)
    return skipped


def _identified_rows(targets, identities, profile_of, kind, make_row) -> tuple[dict, dict]:
    """({target: record naming its profile by identity + make_row(target)}, {target: Skip} for
    profiles with no identity to write by). ``profile_of(target)`` is the person or account id."""
    rows, skipped = {}, {}
    for target in targets:
        profile_id = profile_of(target)
        if profile_id not in identities:
            skipped[target] = Skip(f"{kind} {profile_id} has no identity to write it by")
            continue
        namespace, value = identities[profile_id]
        rows[target] = {f"identity.{namespace}": value, **make_row(target)}
    return rows, skipped


def _person_rows(context, targets, make_row) -> tuple[dict, dict]:
    identities = person_identities(context.sandbox, {t.person_id for t in targets})
    return _identified_rows(targets, identities, lambda t: t.person_id, "person", make_row)


# ----------------------------------------------------------------------------------------- actions
def update_person_field(context, targets):
    field, value = context.params["field"], context.params.get("value")
    rows, skipped = _person_rows(context, targets, lambda _: {field: value})
    return {**skipped, **_ingest(context, IngestionEntity.PERSON, rows)}


def update_account_field(context, targets):
    identities = account_identities(context.sandbox, {t.account_id for t in targets})
    field, value = context.params["field"], context.params.get("value")
    rows, skipped = _identified_rows(targets, identities, lambda t: t.account_id, "account", lambda _: {field: value})
    return {**skipped, **_ingest(context, IngestionEntity.ACCOUNT, rows)}


def interesting_moment(context, targets):
    def row(target):
        return {
            "type": "interesting_moment",
            "occurred_at": context.now.isoformat(),
            # The ledger key: a replay of this action stores the event once.
            "external_id": f"quorum:{context.key(target)}",
            "properties.moment_type": context.params.get("type", "milestone"),
            "properties.description": context.params.get("description", ""),
            "properties.journey_id": context.journey_id,
            "properties.node": context.node_id,
        }

    rows, skipped = _person_rows(context, targets, row)
    return {**skipped, **_ingest(context, IngestionEntity.EVENT, rows)}


def _marketo_subscription(sandbox):
    from connectors.choices import PairingKind
    from connectors.models import Pairing

    return Pairing.objects.for_sandbox(sandbox).filter(kind=PairingKind.JOURNEY_SUBSCRIPTION).select_related("marketo_instance").first()


def _marketo_list_change(context, targets, pairing, method):
    """The sandbox's journeys run on a Marketo instance: the list id is a Marketo static list."""
    from connectors.marketo import MarketoClient

    lead_ids = dict(
        Identity.objects.filter(
            sandbox=context.sandbox, person_id__in={t.person_id for t in targets}, namespace="marketo_lead_id"
        ).values_list("person_id", "value")
    )
    skipped = {t: Skip("the person has no Marketo lead id") for t in targets if t.person_id not in lead_ids}
    if lead_ids:
        leads = sorted({int(v) for v in lead_ids.values()})
        getattr(MarketoClient.for_instance(pairing.marketo_instance), method)(int(context.params["list_id"]), leads)
    return skipped


def _cdp_list(context):
    marketing_list = MarketingList.objects.for_sandbox(context.sandbox).filter(pk=context.params.get("list_id")).first()
    if marketing_list is None:
        raise Skip(f"there is no static list {context.params.get('list_id')} in this sandbox")
    return marketing_list


def add_to_list(context, targets):
    pairing = _marketo_subscription(context.sandbox)
    if pairing is not None:
        return _marketo_list_change(context, targets, pairing, "add_leads_to_list")
    marketing_list = _cdp_list(context)
    rows, skipped = _person_rows(context, targets, lambda _: {"list.external_id": marketing_list.external_id})
    return {**skipped, **_ingest(context, IngestionEntity.LIST_MEMBER, rows)}


def remove_from_list(context, targets):
    pairing = _marketo_subscription(context.sandbox)
    if pairing is not None:
        return _marketo_list_change(context, targets, pairing, "remove_leads_from_list")
    marketing_list = _cdp_list(context)
    # cdp ingestion has no "remove member" record: delete the rows, then store a list.removed event
    # per person, which announces the change to audiences like any ingest.
    people = {t.person_id for t in targets}
    ListMember.objects.filter(sandbox=context.sandbox, marketing_list=marketing_list, person_id__in=people).delete()

    def row(target):
        return {
            "type": "list.removed", "occurred_at": context.now.isoformat(),
            "external_id": f"quorum:{context.key(target)}", "properties.list_id": marketing_list.external_id,
        }  # fmt: skip

    rows, skipped = _person_rows(context, targets, row)
    return {**skipped, **_ingest(context, IngestionEntity.EVENT, rows)}


def _per_group(context, targets, change) -> dict:
    """Run ``change(group, targets of its account)`` for each account's buying group of the
    action's solution interest; {target: Skip} for accounts without one or a rule it breaks."""
    from journeys.services.buying_groups import buying_group_for

    interest = context.params.get("solution_interest_id")
    by_account = defaultdict(list)
    for target in targets:
        by_account[target.account_id].append(target)
    skipped = {}
    for account_id, account_targets in by_account.items():
        group = buying_group_for(context.sandbox, account_id, interest)
        if group is None:
            skip = Skip(f"account {account_id} has no buying group for solution interest {interest}")
            skipped.update(dict.fromkeys(account_targets, skip))
            continue
        try:
            skipped.update(change(group, account_targets) or {})
        except RuleViolation as violation:
            skipped.update(dict.fromkeys(account_targets, Skip(violation.message)))
    return skipped


def update_buying_group_stage(context, targets):
    from journeys.services.buying_groups import set_stage

    def change(group, _targets):
        set_stage(group, context.params["stage"], by=context.by)

    return _per_group(context, targets, change)


def update_buying_group_status(context, targets):
    from journeys.services.buying_groups import set_status

    def change(group, _targets):
        set_status(group, context.params["status"], by=context.by)

    return _per_group(context, targets, change)


def assign_buying_group_member(context, targets):
    from journeys.services.buying_groups import assign_members

    def assign(group, group_targets):
        refused = assign_members(group, [t.person_id for t in group_targets], context.params["role"], by=context.by)
        return {t: Skip(refused[t.person_id].message) for t in group_targets if t.person_id in refused}

    return _per_group(context, targets, assign)


def remove_buying_group_member(context, targets):
    from journeys.services.buying_groups import remove_members

    def remove(group, group_targets):
        remove_members(group, [t.person_id for t in group_targets], by=context.by)

    return _per_group(context, targets, remove)


def add_to_journey(context, targets):
    from journeys.services.runtime import enroll_accounts

    target = Journey.objects.for_sandbox(context.sandbox).filter(pk=context.params.get("journey_id")).first()
    if target is None or target.state not in RUNNING_STATES or target.pk == context.journey_id:
        raise Skip(f"journey {context.params.get('journey_id')} is not a live journey of this sandbox")
    enroll_accounts(target, sorted({t.account_id for t in targets}), now=context.now)


# ------------------------------------------------------------------------------------------- email
def send_email(context, targets):
    from journeys.services.tracking import tracked_html

    [target] = targets
    asset = context.cached("asset", lambda: EmailAsset.objects.for_sandbox(context.sandbox).filter(pk=context.params.get("email_id")).first())
    if asset is None:
        raise Skip(f"there is no email {context.params.get('email_id')} in this sandbox")
    people = context.cached("people", lambda: Person.objects.for_sandbox(context.sandbox).in_bulk({t.person_id for t in context.targets}))
    person = people.get(target.person_id)
    if person is None or not person.email:
        raise Skip("the person has no email address")
    if person.is_unsubscribed:
        raise Skip("the person is unsubscribed")
    effect = context.effect
    rendered = render_email(asset, person=person, account=target.enrollment.account)
    message_id = f"<quorum.{effect.pk}.{uuid.uuid4().hex[:12]}@{_mail_domain()}>"
    message = EmailMultiAlternatives(
        subject=rendered.subject, body=rendered.text, from_email=rendered.from_email, to=[person.email],
        headers={"Message-ID": message_id}, connection=context.mail_connection,
    )
    if rendered.html:
        message.attach_alternative(tracked_html(rendered.html, effect.pk), "text/html")
    message.send()
    context.sent = effect.pk
    EmailSend.objects.create(
        sandbox_id=context.sandbox_id, journey_id=context.journey_id, version_id=context.version_id,
        side_effect=effect, email_asset=asset, node=context.node_id, person=person, account_id=target.account_id,
        message_id=message_id, to_email=person.email, sent_at=timezone.now(),
    )  # fmt: skip
    return {target: {"message_id": message_id}}


def _mail_domain() -> str:
    sender = settings.DEFAULT_FROM_EMAIL.rsplit("@", 1)
    return sender[1].strip(" >") if len(sender) == 2 else "quorum.local"


def sales_alert(context, targets):
    [target] = targets
    account = Account.objects.for_sandbox(context.sandbox).get(pk=target.account_id)
    recipients = [account.owner_email] if account.owner_email else context.cached("admins", lambda: _sandbox_admin_emails(context.sandbox))
    if not recipients:
        raise Skip("the account has no owner email and the sandbox no admin with an email address")
    if context.params.get("email_id"):
        asset = context.cached("asset", lambda: EmailAsset.objects.for_sandbox(context.sandbox).filter(pk=context.params["email_id"]).first())
        if asset is None:
            raise Skip(f"there is no email {context.params['email_id']} in this sandbox")
        rendered = render_email(asset, person=None, account=account)
        subject, html, text = rendered.subject, rendered.html, rendered.text
    else:
        subject = context.params.get("subject") or f"Sales alert: {account}"
        html, text = "", context.params.get("body") or f"{account} reached step {context.node_id} of a journey."
    message = EmailMultiAlternatives(subject=subject, body=text, from_email=settings.DEFAULT_FROM_EMAIL, to=recipients)
    if html:
        message.attach_alternative(html, "text/html")
    message.send()
    context.sent = context.effect.pk
    return {target: {"to": recipients}}


def _sandbox_admin_emails(sandbox) -> list[str]:
    from django.db.models import Q

    roles = SandboxRole.objects.filter(sandbox=sandbox).filter(
        Q(role=Role.ADMIN) | Q(membership__is_admin=True)
    ).values_list("membership__user__email", flat=True)
    org_admins = sandbox.organization.memberships.filter(is_admin=True).values_list("user__email", flat=True)
    return sorted({e for e in [*roles, *org_admins] if e})


HANDLERS = {
    "send_email": send_email,
    "sales_alert": sales_alert,
    "update_person_field": update_person_field,
    "update_account_field": update_account_field,
    "interesting_moment": interesting_moment,
    "add_to_list": add_to_list,
    "remove_from_list": remove_from_list,
    "update_buying_group_stage": update_buying_group_stage,
    "update_buying_group_status": update_buying_group_status,
    "assign_buying_group_member": assign_buying_group_member,
    "remove_buying_group_member": remove_buying_group_member,
    "add_to_journey": add_to_journey,
}
