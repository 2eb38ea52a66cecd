from django.conf import settings
from django.db import models
from django.db.models import Q

from cdp.models import SandboxScopedModel
from connectors.choices import PairingKind


class Pairing(SandboxScopedModel):
    """An external instance put to work for a sandbox, as a source, a destination or the Marketo
    instance behind its journeys. Create and delete pairings through
    ``connectors.services.pairings``: that is where the pairing rules are enforced."""

    # Pairings are configuration, not data: resetting the sandbox keeps them.
    survives_sandbox_reset = True

    kind = models.CharField(max_length=30, choices=PairingKind.choices)
    # RESTRICT, not PROTECT: an instance can't be deleted while paired, but deleting the whole
    # organization (sandboxes and pairings with it) still works.
    marketo_instance = models.ForeignKey(
        "connectors.MarketoInstance", null=True, blank=True, on_delete=models.RESTRICT, related_name="pairings"
    )
    salesforce_org = models.ForeignKey(
        "connectors.SalesforceOrg", null=True, blank=True, on_delete=models.RESTRICT, related_name="pairings"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["kind", "created_at"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(marketo_instance__isnull=False, salesforce_org__isnull=True)
                    | Q(marketo_instance__isnull=True, salesforce_org__isnull=False)
                ),
                name="pairing_exactly_one_instance",
                violation_error_message="A pairing names exactly one instance: a Marketo instance or a Salesforce org.",
            ),
            models.UniqueConstraint(
                fields=["kind", "sandbox", "marketo_instance"], name="pairing_marketo_unique"
            ),
            models.UniqueConstraint(fields=["kind", "sandbox", "salesforce_org"], name="pairing_salesforce_unique"),
            # The database backs the service's "one journey subscription per sandbox" rule.
            models.UniqueConstraint(
                fields=["sandbox"],
                condition=Q(kind=PairingKind.JOURNEY_SUBSCRIPTION),
                name="pairing_one_journey_subscription_per_sandbox",
            ),
        ]

    def __str__(self):
        return f"{self.instance} → {self.get_kind_display().lower()} of sandbox {self.sandbox_id}"

    @property
    def instance(self):
        return self.marketo_instance or self.salesforce_org

    @property
    def system(self) -> str:
        return "Marketo Engage" if self.marketo_instance_id else "Salesforce"
