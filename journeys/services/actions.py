"""Journey actions, each behind the side-effect ledger (``SideEffect``) so a retry never repeats one.

Idempotency key: version + node + person + account (+ entry number for actions that may run again
when an account re-enters; an email is never sent twice from one node to one person).

Two kinds of action:
- *external, at most once* (send email, sales alert): recorded ``queued`` set-wise, then each is
  marked ``pending`` durably right before its send, and ``done`` (with the EmailSend row) right
  after, in the commit that also marks the next one pending. One found still ``pending`` means a
  worker died mid-send: we can't know whether the message left, so it is logged ("in_doubt") and
  never sent again. A send that raised is marked ``failed`` and tried again by the task's retry.
- *replayable* (profile writes through cdp ingestion, buying group changes, list membership):
  claimed set-wise inside the advance's transaction, which also moves the tokens on: a crash
  rolls both back and the retry does them once.

Profile changes go through cdp's ingestion (``store_records``), so they stream back into the
profile store, are announced with ``profiles_changed`` and re-trigger audiences.
"""

import uuid

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import transaction
from django.utils import timezone

from cdp.choices import PERSON_NAMESPACES, IngestionEntity, Role
from cdp.exceptions import RuleViolation
from cdp.models import Account, Identity, ListMember, MarketingList, Person, SandboxRole
from cdp.services.ingestion.records import Rejection, parse_record
from cdp.services.ingestion.store import store_records
from journeys.models import EmailAsset, EmailSend, Journey, SideEffect, SideEffectStatus
from journeys.models.journeys import RUNNING_STATES
from journeys.services.emails import render_email

DATASET = "journeys"
AT_MOST_ONCE = ("send_email", "sales_alert")
# Re-entry runs these again; an email from a node is sent to a person once, whatever the entry.
ONCE_PER_NODE = ("send_email",)


class Skip(Exception):
    """The action does not apply (no email address, invalid stage transition…): logged, not retried."""


def run_action(enrollment, node_id: str, node: dict, person_tokens, now) -> None:
    """Run a node's action for the people at it (or once for the account)."""
    from journeys.services.runtime import ACCOUNT_ACTIONS

    kind = node["action"]
    params = node.get("params") or {}
    handler = HANDLERS.get(kind)
    if handler is None:
        _log(enrollment, node_id, "action_unknown", f"Unknown action {kind}; nothing done.", now=now)
        return
    context = ActionContext(enrollment, node_id, kind, params, now)
    if kind in ACCOUNT_ACTIONS:
        context.run([None], handler)
    else:
        context.run(sorted({t.person_id for t in person_tokens}), handler)


class ActionContext:
    def __init__(self, enrollment, node_id, kind, params, now):
        self.enrollment, self.node_id, self.kind, self.params, self.now = enrollment, node_id, kind, params, now
        self.sandbox = enrollment.sandbox
        self.account_id = enrollment.account_id
        self._cache = {}

    def cached(self, name, load):
        """What every person of the batch shares (the email asset, the people, the SMTP connection)."""
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

    def key(self, person_id) -> str:
        entry = "" if self.kind in ONCE_PER_NODE else f":e{self.enrollment.entry_number}"
        return f"v{self.enrollment.version_id}:n{self.node_id}:p{person_id or '-'}:a{self.account_id}{entry}"

    def run(self, person_ids, handler):
        if not person_ids:
            return
        self.person_ids = person_ids
        if self.kind in AT_MOST_ONCE:
            try:
                effects = self._queue(person_ids)
                started = bool(effects) and self._start(effects[0])
                for index, effect in enumerate(effects):
                    following = effects[index + 1] if index + 1 < len(effects) else None
                    if started:
                        self.effect = effect
                        started = self._perform(effect, lambda e=effect: handler(self, [e.person_id]), effect.person_id, following)
                    elif following is not None:
                        started = self._start(following)
            finally:
                if "mail_connection" in self._cache:
                    self._cache["mail_connection"].close()
            return
        effects = self._claim_all(person_ids)
        if effects:
            todo = [e.person_id for e in effects]
            self._perform_all(effects, lambda: handler(self, todo))

    # --- claiming
    def _new_effect(self, person_id, status=SideEffectStatus.PENDING):
        return SideEffect(
            sandbox_id=self.enrollment.sandbox_id, key=self.key(person_id), version_id=self.enrollment.version_id,
            node=self.node_id, person_id=person_id, account_id=self.account_id, kind=self.kind, status=status,
        )  # fmt: skip

    def _queue(self, person_ids):
        """At-most-once effects to attempt now: new ones (queued set-wise) and failed ones. One
        still ``pending`` was interrupted mid-send: logged, never repeated."""
        keys = {self.key(p): p for p in person_ids}
        SideEffect.objects.bulk_create([self._new_effect(p, SideEffectStatus.QUEUED) for p in person_ids], ignore_conflicts=True)
        effects = list(SideEffect.objects.filter(key__in=keys).order_by("person_id"))
        for effect in effects:
            if effect.status == SideEffectStatus.PENDING:
                _log(self.enrollment, self.node_id, "in_doubt",
                     f"{self.kind} for person {effect.person_id} was interrupted mid-way; not repeated (at most once).",
                     person_id=effect.person_id, now=self.now)  # fmt: skip
        return [e for e in effects if e.status in (SideEffectStatus.QUEUED, SideEffectStatus.FAILED)]

    def _start(self, effect) -> bool:
        """Mark the effect as being done, durably, right before doing it."""
        started = SideEffect.objects.filter(pk=effect.pk, status=effect.status).update(
            status=SideEffectStatus.PENDING, attempts=effect.attempts + 1, result={}
        )
        effect.status, effect.attempts = SideEffectStatus.PENDING, effect.attempts + 1
        return bool(started)

    def _claim_all(self, person_ids):
        keys = {self.key(p): p for p in person_ids}
        SideEffect.objects.bulk_create([self._new_effect(p) for p in person_ids], ignore_conflicts=True)
        return list(
            SideEffect.objects.filter(key__in=keys).exclude(status__in=(SideEffectStatus.DONE, SideEffectStatus.SKIPPED))
        )

    # --- performing
    def _perform(self, effect, call, person_id, following=None) -> bool:
        """Do a started at-most-once effect and record it. The next effect's start mark commits
        with this one's record (one commit an email); returns whether it was started."""
        self.sent = None
        try:
            with transaction.atomic():
                result = call() or {}
                _finish([effect], SideEffectStatus.DONE, result.get(person_id, {}) if isinstance(result, dict) else {})
                return following is not None and self._start(following)
        except Skip as skip:
            with transaction.atomic():
                _finish([effect], SideEffectStatus.SKIPPED, {"reason": str(skip)})
                _log(self.enrollment, self.node_id, "action_skipped", f"{self.kind}: {skip}", person_id=person_id, now=self.now)
                return following is not None and self._start(following)
        except Exception as error:
            # Sent but not recorded: it stays pending (in doubt), never sent again.
            if self.sent != effect.pk:
                _finish([effect], SideEffectStatus.FAILED, {"error": f"{type(error).__name__}: {error}"[:1000]})
            raise

    def _perform_all(self, effects, call):
        """Replayable effects run inside the advance's transaction: an error rolls them back
        with their claims, and the retry does them again."""
        try:
            results = call() or {}
        except Skip as skip:
            _finish(effects, SideEffectStatus.SKIPPED, {"reason": str(skip)})
            _log(self.enrollment, self.node_id, "action_skipped", f"{self.kind}: {skip}", now=self.now)
            return
        skipped = {p: r for p, r in results.items() if isinstance(r, Skip)}
        _finish([e for e in effects if e.person_id not in skipped], SideEffectStatus.DONE, {})
        for person_id, skip in skipped.items():
            _finish([e for e in effects if e.person_id == person_id], SideEffectStatus.SKIPPED, {"reason": str(skip)})
            _log(self.enrollment, self.node_id, "action_skipped", f"{self.kind}: {skip}", person_id=person_id, now=self.now)

    @property
    def by(self) -> str:
        return f"journey:{self.enrollment.journey_id}"


def _finish(effects, status, result):
    SideEffect.objects.filter(pk__in=[e.pk for e in effects]).update(status=status, result=result, updated_at=timezone.now())


def _log(enrollment, node_id, kind, message, *, person_id=None, now=None):
    from journeys.services.runtime import log

    log(enrollment, kind, message, node=node_id, person_id=person_id, at=now)


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


def _account_identity(sandbox, account_id):
    identity = Identity.objects.filter(sandbox=sandbox, account_id=account_id).order_by("namespace").first()
    if identity is None:
        raise Skip(f"account {account_id} has no identity to write it by")
    return identity.namespace, identity.value


def _ingest(context, entity, rows_by_person) -> dict:
    """Store one record per person through cdp ingestion; {person id: Skip} for rejected ones."""
    parsed, skipped = {}, {}
    for number, (person_id, raw) in enumerate(rows_by_person.items(), start=1):
        record = parse_record(entity, number, raw)
        if isinstance(record, Rejection):
            skipped[person_id] = Skip(record.reason)
        else:
            parsed[person_id] = record
    if parsed:
        result = store_records(context.sandbox, entity, list(parsed.values()), DATASET)
        by_row = {r.row_number: r for r in result.rejections if not r.duplicate}
        for person_id, record in parsed.items():
            if record.row_number in by_row:
                skipped[person_id] = Skip(by_row[record.row_number].reason)
    return skipped


def _person_rows(context, person_ids, make_row) -> dict:
    identities = person_identities(context.sandbox, person_ids)
    rows, skipped = {}, {}
    for person_id in person_ids:
        if person_id not in identities:
            skipped[person_id] = Skip(f"person {person_id} has no identity to write it by")
            continue
        namespace, value = identities[person_id]
        rows[person_id] = {f"identity.{namespace}": value, **make_row(person_id)}
    return rows, skipped


# ----------------------------------------------------------------------------------------- actions
def update_person_field(context, person_ids):
    field, value = context.params["field"], context.params.get("value")
    rows, skipped = _person_rows(context, person_ids, lambda _: {field: value})
    return {**skipped, **_ingest(context, IngestionEntity.PERSON, rows)}


def update_account_field(context, _people):
    namespace, identity = _account_identity(context.sandbox, context.account_id)
    row = {f"identity.{namespace}": identity, context.params["field"]: context.params.get("value")}
    skipped = _ingest(context, IngestionEntity.ACCOUNT, {None: row})
    if skipped:
        raise skipped[None]


def interesting_moment(context, person_ids):
    def row(person_id):
        return {
            "type": "interesting_moment",
            "occurred_at": context.now.isoformat(),
            # The ledger key: a replay of this action stores the event once.
            "external_id": f"quorum:{context.key(person_id)}",
            "properties.moment_type": context.params.get("type", "milestone"),
            "properties.description": context.params.get("description", ""),
            "properties.journey_id": context.enrollment.journey_id,
            "properties.node": context.node_id,
        }

    rows, skipped = _person_rows(context, person_ids, row)
    return {**skipped, **_ingest(context, IngestionEntity.EVENT, rows)}


def _marketo_subscription(sandbox):
    from connectors.choices import PairingKind
    from connectors.models import Pairing

    return Pairing.objects.for_sandbox(sandbox).filter(kind=PairingKind.JOURNEY_SUBSCRIPTION).select_related("marketo_instance").first()


def _marketo_list_change(context, person_ids, pairing, method):
    """The sandbox's journeys run on a Marketo instance: the list id is a Marketo static list."""
    from connectors.marketo import MarketoClient

    lead_ids = dict(
        Identity.objects.filter(sandbox=context.sandbox, person_id__in=person_ids, namespace="marketo_lead_id").values_list("person_id", "value")
    )
    skipped = {p: Skip("the person has no Marketo lead id") for p in person_ids if p not in lead_ids}
    if lead_ids:
        getattr(MarketoClient.for_instance(pairing.marketo_instance), method)(int(context.params["list_id"]), [int(v) for v in lead_ids.values()])
    return skipped


def _cdp_list(context):
    marketing_list = MarketingList.objects.for_sandbox(context.sandbox).filter(pk=context.params.get("list_id")).first()
    if marketing_list is None:
        raise Skip(f"there is no static list {context.params.get('list_id')} in this sandbox")
    return marketing_list


def add_to_list(context, person_ids):
    pairing = _marketo_subscription(context.sandbox)
    if pairing is not None:
        return _marketo_list_change(context, person_ids, pairing, "add_leads_to_list")
    marketing_list = _cdp_list(context)
    rows, skipped = _person_rows(context, person_ids, lambda _: {"list.external_id": marketing_list.external_id})
    return {**skipped, **_ingest(context, IngestionEntity.LIST_MEMBER, rows)}


def remove_from_list(context, person_ids):
    pairing = _marketo_subscription(context.sandbox)
    if pairing is not None:
        return _marketo_list_change(context, person_ids, pairing, "remove_leads_from_list")
    marketing_list = _cdp_list(context)
    # cdp ingestion has no "remove member" record: delete the rows, then store a list.removed event
    # per person, which announces the change to audiences like any ingest.
    ListMember.objects.filter(sandbox=context.sandbox, marketing_list=marketing_list, person_id__in=person_ids).delete()

    def row(person_id):
        return {
            "type": "list.removed", "occurred_at": context.now.isoformat(),
            "external_id": f"quorum:{context.key(person_id)}", "properties.list_id": marketing_list.external_id,
        }  # fmt: skip

    rows, skipped = _person_rows(context, person_ids, row)
    return {**skipped, **_ingest(context, IngestionEntity.EVENT, rows)}


def _group(context):
    from journeys.services.buying_groups import buying_group_for

    group = buying_group_for(context.sandbox, context.account_id, context.params.get("solution_interest_id"))
    if group is None:
        raise Skip(f"account {context.account_id} has no buying group for solution interest {context.params.get('solution_interest_id')}")
    return group


def _buying_group_call(call):
    try:
        call()
    except RuleViolation as violation:
        raise Skip(violation.message) from None


def update_buying_group_stage(context, _people):
    from journeys.services.buying_groups import set_stage

    group = _group(context)
    _buying_group_call(lambda: set_stage(group, context.params["stage"], by=context.by))


def update_buying_group_status(context, _people):
    from journeys.services.buying_groups import set_status

    group = _group(context)
    _buying_group_call(lambda: set_status(group, context.params["status"], by=context.by))


def assign_buying_group_member(context, person_ids):
    from journeys.services.buying_groups import assign_member

    group = _group(context)
    skipped = {}
    for person_id in person_ids:
        try:
            assign_member(group, person_id, context.params["role"], by=context.by)
        except RuleViolation as violation:
            skipped[person_id] = Skip(violation.message)
    return skipped


def remove_buying_group_member(context, person_ids):
    from journeys.services.buying_groups import remove_member

    group = _group(context)
    for person_id in person_ids:
        remove_member(group, person_id, by=context.by)
    return {}


def add_to_journey(context, _people):
    from journeys.services.runtime import enroll_accounts

    target = Journey.objects.for_sandbox(context.sandbox).filter(pk=context.params.get("journey_id")).first()
    if target is None or target.state not in RUNNING_STATES or target.pk == context.enrollment.journey_id:
        raise Skip(f"journey {context.params.get('journey_id')} is not a live journey of this sandbox")
    enroll_accounts(target, [context.account_id], now=context.now)


# ------------------------------------------------------------------------------------------- email
def send_email(context, person_ids):
    from journeys.services.tracking import tracked_html

    asset = context.cached("asset", lambda: EmailAsset.objects.for_sandbox(context.sandbox).filter(pk=context.params.get("email_id")).first())
    if asset is None:
        raise Skip(f"there is no email {context.params.get('email_id')} in this sandbox")
    people = context.cached("people", lambda: Person.objects.for_sandbox(context.sandbox).in_bulk(context.person_ids))
    person = people.get(person_ids[0])
    if person is None or not person.email:
        raise Skip("the person has no email address")
    if person.is_unsubscribed:
        raise Skip("the person is unsubscribed")
    effect = context.effect
    rendered = render_email(asset, person=person, account=context.enrollment.account)
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
        sandbox_id=context.enrollment.sandbox_id, journey_id=context.enrollment.journey_id, version_id=context.enrollment.version_id,
        side_effect=effect, email_asset=asset, node=context.node_id, person=person, account_id=context.account_id,
        message_id=message_id, to_email=person.email, sent_at=timezone.now(),
    )  # fmt: skip
    return {person.pk: {"message_id": message_id}}


def _mail_domain() -> str:
    sender = settings.DEFAULT_FROM_EMAIL.rsplit("@", 1)
    return sender[1].strip(" >") if len(sender) == 2 else "quorum.local"


def sales_alert(context, _people):
    account = Account.objects.for_sandbox(context.sandbox).get(pk=context.account_id)
    recipients = [account.owner_email] if account.owner_email else _sandbox_admin_emails(context.sandbox)
    if not recipients:
        raise Skip("the account has no owner email and the sandbox no admin with an email address")
    if context.params.get("email_id"):
        asset = EmailAsset.objects.for_sandbox(context.sandbox).filter(pk=context.params["email_id"]).first()
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
    return {None: {"to": recipients}}


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
