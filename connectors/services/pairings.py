"""The pairing rules: which external instance may serve which sandbox, and how.

This module is the one implementation of the rules (PRODUCT.md, Tenancy); pages, the API and
tasks all create and delete pairings through it.

Marketo as a source
    many Marketo instances → one organization ........................ allowed
    one Marketo instance → several organizations ...................... refused
    many Marketo instances → many organizations ....................... refused
    one Marketo instance → one organization with several sandboxes .... allowed
Marketo as a destination
    one organization → many Marketo instances ......................... allowed
    many organizations → one Marketo instance ......................... allowed
Journey subscription
    exactly one sandbox ↔ one Marketo instance (each side at most one)

"One Marketo instance" means one Munchkin ID: two organizations registering the same Munchkin ID
separately hold two rows for the same instance, and the rules see through that.
"""

from dataclasses import dataclass

from django.db import IntegrityError, transaction

from cdp.exceptions import RuleViolation
from cdp.models import Sandbox
from connectors.choices import PairingKind
from connectors.models import MarketoInstance, Pairing, SalesforceOrg


@dataclass(frozen=True)
class Rule:
    id: str
    title: str


ONE_INSTANCE = Rule("pairing_one_instance", "a pairing names exactly one instance, Marketo or Salesforce")
SAME_ORGANIZATION = Rule(
    "instance_same_organization", "a sandbox pairs only with instances registered in its own organization"
)
JOURNEY_SUBSCRIPTION_MARKETO_ONLY = Rule(
    "journey_subscription_marketo_only", "journey subscriptions are for Marketo instances only"
)
NO_DUPLICATE = Rule("pairing_duplicate", "an instance pairs with a sandbox at most once for each kind")
MARKETO_SOURCE_ONE_ORGANIZATION = Rule(
    "marketo_source_one_organization",
    "a Marketo instance is a source for one organization only (several of its sandboxes may share it)",
)
JOURNEY_SUBSCRIPTION_ONE_PER_SANDBOX = Rule(
    "journey_subscription_one_per_sandbox", "a sandbox subscribes to the journeys of one Marketo instance only"
)
JOURNEY_SUBSCRIPTION_ONE_SANDBOX_PER_INSTANCE = Rule(
    "journey_subscription_one_sandbox_per_instance", "a Marketo instance backs the journeys of one sandbox only"
)
INSTANCE_IN_USE = Rule("instance_in_use", "a paired instance can't be deleted; unpair it first")

RULES = [
    ONE_INSTANCE,
    SAME_ORGANIZATION,
    JOURNEY_SUBSCRIPTION_MARKETO_ONLY,
    NO_DUPLICATE,
    MARKETO_SOURCE_ONE_ORGANIZATION,
    JOURNEY_SUBSCRIPTION_ONE_PER_SANDBOX,
    JOURNEY_SUBSCRIPTION_ONE_SANDBOX_PER_INSTANCE,
    INSTANCE_IN_USE,
]


class PairingRuleViolation(RuleViolation):
    """A pairing rule refused the request. ``rule`` is the stable id, ``message`` a sentence for people.

    Messages never name another organization or its sandboxes.
    """

    def __init__(self, rule: Rule, detail: str):
        super().__init__(f"{detail} Pairing rule: {rule.title}.", rule=rule.id)
        self.rule_title = rule.title


def validate_pairing(
    *,
    sandbox: Sandbox,
    kind: str,
    marketo_instance: MarketoInstance | None = None,
    salesforce_org: SalesforceOrg | None = None,
) -> None:
    """Raise ``PairingRuleViolation`` if the pairing breaks a rule. Reads the current state without
    locking: ``create_pairing`` re-checks under locks before writing."""
    kind = PairingKind(kind)
    if (marketo_instance is None) == (salesforce_org is None):
        raise PairingRuleViolation(ONE_INSTANCE, "Choose either a Marketo instance or a Salesforce org.")
    instance = marketo_instance or salesforce_org
    if instance.organization_id != sandbox.organization_id:
        # Not even the instance's name: it may belong to an organization the caller can't see.
        raise PairingRuleViolation(SAME_ORGANIZATION, "This instance is not registered in the organization of this sandbox.")
    if kind == PairingKind.JOURNEY_SUBSCRIPTION and marketo_instance is None:
        raise PairingRuleViolation(
            JOURNEY_SUBSCRIPTION_MARKETO_ONLY, "A Salesforce org can't back the journeys of a sandbox."
        )

    same_instance = {"marketo_instance": marketo_instance} if marketo_instance else {"salesforce_org": salesforce_org}
    if Pairing.objects.for_sandbox(sandbox).filter(kind=kind, **same_instance).exists():
        raise PairingRuleViolation(
            NO_DUPLICATE, f"“{instance.name}” is already a {kind.label.lower()} of this sandbox."
        )

    if marketo_instance is None:
        return
    munchkin_id = marketo_instance.munchkin_id
    # Every pairing of this Munchkin ID, whichever organization registered it.
    same_munchkin = Pairing.objects.filter(marketo_instance__munchkin_id=munchkin_id)

    if kind == PairingKind.SOURCE:
        feeds_another_organization = (
            same_munchkin.filter(kind=PairingKind.SOURCE)
            .exclude(sandbox__organization_id=sandbox.organization_id)
            .exists()
        )
        if feeds_another_organization:
            raise PairingRuleViolation(
                MARKETO_SOURCE_ONE_ORGANIZATION,
                f"Marketo instance {munchkin_id} is already a source for another organization.",
            )

    if kind == PairingKind.JOURNEY_SUBSCRIPTION:
        if Pairing.objects.for_sandbox(sandbox).filter(kind=PairingKind.JOURNEY_SUBSCRIPTION).exists():
            raise PairingRuleViolation(
                JOURNEY_SUBSCRIPTION_ONE_PER_SANDBOX,
                "This sandbox already has a journey subscription; unpair it before subscribing to another "
                "Marketo instance.",
            )
        if same_munchkin.filter(kind=PairingKind.JOURNEY_SUBSCRIPTION).exclude(sandbox=sandbox).exists():
            raise PairingRuleViolation(
                JOURNEY_SUBSCRIPTION_ONE_SANDBOX_PER_INSTANCE,
                f"Marketo instance {munchkin_id} already backs the journeys of another sandbox.",
            )


def _lock_rows(sandbox, marketo_instance, salesforce_org):
    """Serialize pairing creations that could race past a rule.

    Locks, always in this order: every instance row sharing the Munchkin ID (in any organization,
    by primary key), or the Salesforce org row; then the sandbox row. Two requests pairing the same
    Munchkin ID, or pairing anything into the same sandbox, therefore run one after the other, and
    the second sees what the first wrote. (On SQLite, IMMEDIATE transactions already serialize writers.)
    """
    if marketo_instance is not None:
        list(
            MarketoInstance.objects.select_for_update()
            .filter(munchkin_id=marketo_instance.munchkin_id)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
    if salesforce_org is not None:
        list(SalesforceOrg.objects.select_for_update().filter(pk=salesforce_org.pk).values_list("pk", flat=True))
    list(Sandbox.objects.select_for_update().filter(pk=sandbox.pk).values_list("pk", flat=True))


def create_pairing(
    *,
    sandbox: Sandbox,
    kind: str,
    marketo_instance: MarketoInstance | None = None,
    salesforce_org: SalesforceOrg | None = None,
    created_by=None,
) -> Pairing:
    """Pair an instance with a sandbox, or raise ``PairingRuleViolation`` naming the rule it breaks."""
    with transaction.atomic():
        if (marketo_instance is None) != (salesforce_org is None):
            _lock_rows(sandbox, marketo_instance, salesforce_org)
        validate_pairing(
            sandbox=sandbox, kind=kind, marketo_instance=marketo_instance, salesforce_org=salesforce_org
        )
        try:
            with transaction.atomic():
                return Pairing.objects.create(
                    sandbox=sandbox,
                    kind=kind,
                    marketo_instance=marketo_instance,
                    salesforce_org=salesforce_org,
                    created_by=created_by,
                )
        except IntegrityError:
            # Only reachable if a writer bypassed this service; report it as the rule it breaks.
            validate_pairing(
                sandbox=sandbox, kind=kind, marketo_instance=marketo_instance, salesforce_org=salesforce_org
            )
            raise


def delete_pairing(pairing: Pairing) -> None:
    """Unpair. Removing a pairing never breaks a rule, so it is always allowed."""
    with transaction.atomic():
        Pairing.objects.filter(pk=pairing.pk).delete()


def delete_instance(instance: MarketoInstance | SalesforceOrg) -> None:
    """Delete a Marketo instance or Salesforce org that no sandbox uses any more."""
    with transaction.atomic():
        # Same lock create_pairing takes, so a pairing can't appear between the check and the delete.
        list(type(instance).objects.select_for_update().filter(pk=instance.pk).values_list("pk", flat=True))
        in_use = instance.pairings.count()
        if in_use:
            raise PairingRuleViolation(
                INSTANCE_IN_USE,
                f"“{instance.name}” is still paired ({in_use} pairing{'s' if in_use != 1 else ''} in this "
                "organization's sandboxes).",
            )
        instance.delete()
