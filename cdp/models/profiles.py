"""The B2B profile store: accounts, people, their relations, opportunities, lists, campaigns,
experience events and the identities that tie records to profiles.

Standard fields are real columns (the segmentation compiler and indexes rely on them); any other
source or custom field lives in ``attributes``. ``provenance`` records, per field, which dataset
wrote the current value and the record's timestamp, so the sandbox's merge policy can decide
whether a later record overwrites it.
"""

from django.db import models
from django.db.models import Q

from .base import SandboxScopedModel


def sandbox_key_covered_by_indexes():
    """The sandbox foreign key of a table whose composite indexes all start with sandbox: its own
    single-column index would only slow every insert down."""
    return models.ForeignKey("cdp.Sandbox", on_delete=models.CASCADE, related_name="+", db_index=False)


class ProfileBase(SandboxScopedModel):
    attributes = models.JSONField(default=dict, blank=True)
    provenance = models.JSONField(default=dict, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class Account(ProfileBase):
    dashboard_label = "Accounts"

    sandbox = sandbox_key_covered_by_indexes()
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children")
    name = models.CharField(max_length=255, blank=True)
    domain = models.CharField(max_length=255, blank=True)
    industry = models.CharField(max_length=120, blank=True)
    employees = models.IntegerField(null=True, blank=True)
    annual_revenue = models.DecimalField(max_digits=18, decimal_places=2, null=True, blank=True)
    country = models.CharField(max_length=80, blank=True)
    region = models.CharField(max_length=80, blank=True)
    sic_code = models.CharField(max_length=10, blank=True)
    website = models.CharField(max_length=255, blank=True)
    owner_email = models.CharField(max_length=254, blank=True, help_text="Account owner, for sales alerts.")

    class Meta:
        ordering = ["name", "id"]
        indexes = [
            models.Index(fields=["sandbox", "name"]),
            models.Index(fields=["sandbox", "domain"]),
            models.Index(fields=["sandbox", "industry"]),
            models.Index(fields=["sandbox", "country"]),
        ]

    def __str__(self):
        return self.name or self.domain or f"Account {self.pk}"


class Person(ProfileBase):
    dashboard_label = "People"

    sandbox = sandbox_key_covered_by_indexes()
    first_name = models.CharField(max_length=120, blank=True)
    last_name = models.CharField(max_length=120, blank=True)
    email = models.CharField(max_length=254, blank=True)
    job_title = models.CharField(max_length=255, blank=True)
    job_level = models.CharField(max_length=60, blank=True)
    department = models.CharField(max_length=120, blank=True)
    country = models.CharField(max_length=80, blank=True)
    city = models.CharField(max_length=120, blank=True)
    phone = models.CharField(max_length=60, blank=True)
    lead_score = models.IntegerField(null=True, blank=True)
    lead_source = models.CharField(max_length=120, blank=True)
    lead_status = models.CharField(max_length=60, blank=True)
    is_unsubscribed = models.BooleanField(default=False)

    class Meta:
        verbose_name_plural = "people"
        ordering = ["last_name", "first_name", "id"]
        indexes = [
            models.Index(fields=["sandbox", "last_name", "first_name"]),
            models.Index(fields=["sandbox", "email"]),
            models.Index(fields=["sandbox", "job_level"]),
            models.Index(fields=["sandbox", "country"]),
        ]

    def __str__(self):
        full = f"{self.first_name} {self.last_name}".strip()
        return full or self.email or f"Person {self.pk}"


class Identity(SandboxScopedModel):
    """One identity value in a namespace, bound to exactly one person or one account."""

    sandbox = sandbox_key_covered_by_indexes()
    namespace = models.CharField(max_length=64)
    value = models.CharField(max_length=1024)
    person = models.ForeignKey(Person, null=True, blank=True, on_delete=models.CASCADE, related_name="identities")
    account = models.ForeignKey(Account, null=True, blank=True, on_delete=models.CASCADE, related_name="identities")
    dataset = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "identities"
        ordering = ["namespace", "value"]
        constraints = [
            models.UniqueConstraint(fields=["sandbox", "namespace", "value"], name="identity_unique_in_sandbox"),
            models.CheckConstraint(
                condition=Q(person__isnull=False, account__isnull=True) | Q(person__isnull=True, account__isnull=False),
                name="identity_has_one_owner",
            ),
        ]

    def __str__(self):
        return f"{self.namespace}:{self.value}"


class ProfileMerge(SandboxScopedModel):
    """A record of two people merged into one because a record linked their identities."""

    survivor = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="merges")
    merged_person_id = models.BigIntegerField(db_index=True)
    merged_snapshot = models.JSONField(help_text="The merged person's fields and identities at merge time.")
    linking_identities = models.JSONField(default=list)
    dataset = models.CharField(max_length=64, blank=True)
    merged_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-merged_at"]


class AccountPerson(SandboxScopedModel):
    # Both keys are covered by (account, person) and (person, account).
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="person_relations", db_index=False)
    person = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="account_relations", db_index=False)
    role = models.CharField(max_length=120, blank=True)
    is_primary = models.BooleanField(default=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "person"], name="account_person_unique")]
        indexes = [models.Index(fields=["person", "account"])]


class Opportunity(ProfileBase):
    dashboard_label = "Opportunities"

    account = models.ForeignKey(Account, null=True, blank=True, on_delete=models.SET_NULL, related_name="opportunities")
    external_id = models.CharField(max_length=255, help_text="The source system's opportunity id.")
    name = models.CharField(max_length=255, blank=True)
    stage = models.CharField(max_length=120, blank=True)
    amount = models.DecimalField(max_digits=18, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    close_date = models.DateField(null=True, blank=True)
    is_closed = models.BooleanField(default=False)
    is_won = models.BooleanField(default=False)

    class Meta:
        verbose_name_plural = "opportunities"
        ordering = ["-close_date", "id"]
        constraints = [
            models.UniqueConstraint(fields=["sandbox", "external_id"], name="opportunity_external_id_unique")
        ]
        indexes = [models.Index(fields=["account", "is_closed"])]

    def __str__(self):
        return self.name or self.external_id


class OpportunityPerson(SandboxScopedModel):
    opportunity = models.ForeignKey(Opportunity, on_delete=models.CASCADE, related_name="person_relations", db_index=False)
    person = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="opportunity_relations", db_index=False)
    role = models.CharField(max_length=120, blank=True, help_text="Contact role, e.g. Decision Maker.")
    is_primary = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["opportunity", "person"], name="opportunity_person_unique")
        ]
        indexes = [models.Index(fields=["person", "opportunity"])]


class MarketingList(SandboxScopedModel):
    """A static list (Marketo static list or one made here)."""

    dashboard_label = "Static lists"

    external_id = models.CharField(max_length=255)
    name = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["sandbox", "external_id"], name="list_external_id_unique")]

    def __str__(self):
        return self.name


class ListMember(SandboxScopedModel):
    marketing_list = models.ForeignKey(MarketingList, on_delete=models.CASCADE, related_name="members", db_index=False)
    person = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="list_memberships", db_index=False)
    added_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["marketing_list", "person"], name="list_member_unique")]
        indexes = [models.Index(fields=["person", "marketing_list"])]


class Campaign(SandboxScopedModel):
    external_id = models.CharField(max_length=255)
    name = models.CharField(max_length=255)
    type = models.CharField(max_length=120, blank=True)
    status = models.CharField(max_length=60, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["sandbox", "external_id"], name="campaign_external_id_unique")
        ]

    def __str__(self):
        return self.name


class CampaignMember(SandboxScopedModel):
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="members", db_index=False)
    person = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="campaign_memberships", db_index=False)
    status = models.CharField(max_length=60, blank=True)
    has_responded = models.BooleanField(default=False)
    added_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "person"], name="campaign_member_unique")]
        indexes = [models.Index(fields=["person", "campaign"])]


class ExperienceEvent(SandboxScopedModel):
    """A time-stamped thing a person (or an account) did or had happen to them."""

    dashboard_label = "Events"

    # Every key is the first column of a composite index below.
    sandbox = sandbox_key_covered_by_indexes()
    person = models.ForeignKey(Person, null=True, blank=True, on_delete=models.CASCADE, related_name="events", db_index=False)
    account = models.ForeignKey(Account, null=True, blank=True, on_delete=models.CASCADE, related_name="events", db_index=False)
    type = models.CharField(max_length=64)
    occurred_at = models.DateTimeField()
    properties = models.JSONField(default=dict, blank=True)
    external_id = models.CharField(
        max_length=255, null=True, blank=True, help_text="The source's event id; a resent event is stored once."
    )
    dataset = models.CharField(max_length=64, blank=True)
    ingested_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["sandbox", "external_id"], name="event_external_id_unique"),
        ]
        indexes = [
            # The sandbox's newest-first event list and time-window scans.
            models.Index(fields=["sandbox", "-occurred_at"], name="event_sandbox_recent_idx"),
            models.Index(fields=["person", "type", "occurred_at"]),
            models.Index(fields=["account", "occurred_at"]),
            models.Index(fields=["sandbox", "type", "occurred_at"]),
        ]

    def __str__(self):
        return f"{self.type} at {self.occurred_at:%Y-%m-%d %H:%M}"
