from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models

from cdp.choices import MergePolicy, Role, SandboxType

slug_validator = RegexValidator(
    r"^[a-z0-9][a-z0-9-]{0,62}$",
    "Use 1–63 lowercase letters, digits and hyphens, starting with a letter or digit.",
)


class Organization(models.Model):
    """An Experience Platform instance: the tenant that owns sandboxes and external instances."""

    name = models.CharField(max_length=200, unique=True)
    slug = models.CharField(max_length=63, unique=True, validators=[slug_validator])
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Sandbox(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="sandboxes")
    name = models.CharField(
        max_length=63, validators=[slug_validator], help_text="Short identifier, e.g. prod or dev-emea."
    )
    title = models.CharField(max_length=200)
    type = models.CharField(max_length=20, choices=SandboxType.choices, default=SandboxType.DEVELOPMENT)
    created_at = models.DateTimeField(auto_now_add=True)
    last_reset_at = models.DateTimeField(null=True, blank=True)
    merge_policy = models.CharField(max_length=20, choices=MergePolicy.choices, default=MergePolicy.TIMESTAMP)
    dataset_precedence = models.JSONField(
        default=list,
        blank=True,
        help_text="Dataset names, highest priority first, for the dataset-precedence merge policy.",
    )
    limits = models.JSONField(
        default=dict, blank=True, help_text='Guardrail overrides, e.g. {"audiences": 4000, "account_audiences": 50}.'
    )

    class Meta:
        ordering = ["organization__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="sandbox_name_unique_in_org")
        ]

    def __str__(self):
        return f"{self.organization.name} / {self.title}"


class Membership(models.Model):
    """A user's belonging to an organization. Organization admins are admins of every sandbox."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    is_admin = models.BooleanField(
        default=False, help_text="Organization admins manage sandboxes, users, instances and tokens."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["organization__name", "user__username"]
        constraints = [
            models.UniqueConstraint(fields=["user", "organization"], name="membership_unique")
        ]

    def __str__(self):
        return f"{self.user} in {self.organization}"


class SandboxRole(models.Model):
    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="sandbox_roles")
    sandbox = models.ForeignKey(Sandbox, on_delete=models.CASCADE, related_name="roles")
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.VIEWER)

    class Meta:
        ordering = ["sandbox__name"]
        constraints = [
            models.UniqueConstraint(fields=["membership", "sandbox"], name="sandbox_role_unique")
        ]

    def __str__(self):
        return f"{self.membership.user} is {self.role} in {self.sandbox}"
