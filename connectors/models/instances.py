"""External systems an organization registers: Marketo Engage instances and Salesforce orgs.

Instances belong to an organization; sandboxes use them through pairings (see ``Pairing`` and
``connectors.services.pairings``). Credentials are encrypted at rest and never shown back.
"""

import re

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator, URLValidator
from django.db import models

from connectors.choices import SalesforceAuthFlow
from connectors.fields import EncryptedTextField

MUNCHKIN_ID_PATTERN = re.compile(r"^[0-9]{3}-[A-Z]{3}-[0-9]{3}$")
https_url_validator = URLValidator(schemes=["https"], message="Enter an https:// URL.")
salesforce_org_id_validator = RegexValidator(
    r"^00D[A-Za-z0-9]{12}([A-Za-z0-9]{3})?$",
    "A Salesforce org ID has 15 or 18 letters and digits and starts with 00D.",
)


def normalize_munchkin_id(value: str) -> str:
    return value.strip().upper() if isinstance(value, str) else value


def validate_munchkin_id(value: str) -> None:
    if not MUNCHKIN_ID_PATTERN.match(normalize_munchkin_id(value) or ""):
        raise ValidationError(
            "A Munchkin ID looks like 123-ABC-456: three digits, three letters, three digits.",
            code="invalid_munchkin_id",
        )


class MunchkinIdField(models.CharField):
    """A Marketo Munchkin ID, always stored in upper case (123-ABC-456)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("max_length", 11)
        super().__init__(*args, **kwargs)

    def to_python(self, value):
        return normalize_munchkin_id(super().to_python(value))

    def get_prep_value(self, value):
        return normalize_munchkin_id(super().get_prep_value(value))

    def pre_save(self, model_instance, add):
        value = normalize_munchkin_id(getattr(model_instance, self.attname))
        setattr(model_instance, self.attname, value)
        return value


def _strip_trailing_slash(url: str) -> str:
    return url.rstrip("/") if url else url


class MarketoInstance(models.Model):
    organization = models.ForeignKey(
        "cdp.Organization", on_delete=models.CASCADE, related_name="marketo_instances"
    )
    name = models.CharField(max_length=200, help_text="How people here call it, e.g. 'Marketo EMEA'.")
    munchkin_id = MunchkinIdField(
        "Munchkin ID",
        validators=[validate_munchkin_id],
        help_text="Admin → Integration → Munchkin in Marketo, e.g. 123-ABC-456.",
    )
    client_id = models.CharField(
        "client ID", max_length=200, help_text="From the LaunchPoint API service (Admin → LaunchPoint)."
    )
    client_secret = EncryptedTextField("client secret", help_text="Stored encrypted; never shown again.")
    rest_base_url = models.URLField(
        "REST base URL",
        max_length=300,
        blank=True,
        validators=[https_url_validator],
        help_text="Leave blank for https://<munchkin-id>.mktorest.com/rest.",
    )
    identity_base_url = models.URLField(
        "identity base URL",
        max_length=300,
        blank=True,
        validators=[https_url_validator],
        help_text="Leave blank for https://<munchkin-id>.mktorest.com/identity.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "munchkin_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "munchkin_id"],
                name="marketo_munchkin_unique_in_org",
                violation_error_message="This organization already has a Marketo instance with this Munchkin ID.",
            )
        ]

    def __str__(self):
        return f"{self.name} ({self.munchkin_id})"

    @property
    def default_rest_base_url(self) -> str:
        return f"https://{self.munchkin_id}.mktorest.com/rest"

    @property
    def default_identity_base_url(self) -> str:
        return f"https://{self.munchkin_id}.mktorest.com/identity"

    def fill_default_urls(self) -> None:
        """Base URLs default to the ones Marketo derives from the Munchkin ID."""
        self.munchkin_id = normalize_munchkin_id(self.munchkin_id)
        if self.munchkin_id and MUNCHKIN_ID_PATTERN.match(self.munchkin_id):
            self.rest_base_url = _strip_trailing_slash(self.rest_base_url) or self.default_rest_base_url
            self.identity_base_url = _strip_trailing_slash(self.identity_base_url) or self.default_identity_base_url

    def clean(self):
        self.munchkin_id = normalize_munchkin_id(self.munchkin_id)
        stored = MarketoInstance.objects.only("munchkin_id").filter(pk=self.pk).first() if self.pk else None
        munchkin_changed = stored is not None and stored.munchkin_id != self.munchkin_id
        if munchkin_changed:
            # URLs that were the old Munchkin ID's defaults follow the new one.
            if self.rest_base_url == stored.default_rest_base_url:
                self.rest_base_url = ""
            if self.identity_base_url == stored.default_identity_base_url:
                self.identity_base_url = ""
        self.fill_default_urls()

        errors = {}
        if self.organization_id and self.munchkin_id:
            duplicate = MarketoInstance.objects.filter(
                organization_id=self.organization_id, munchkin_id=self.munchkin_id
            ).exclude(pk=self.pk)
            if duplicate.exists():
                errors["munchkin_id"] = (
                    f"This organization already has a Marketo instance with Munchkin ID {self.munchkin_id}."
                )
        # Pairing rules are checked against the Munchkin ID; changing it under a pairing would sidestep them.
        if munchkin_changed and self.pairings.exists():
            errors["munchkin_id"] = "The Munchkin ID of a paired instance can't change: unpair it from every sandbox first."
        if errors:
            raise ValidationError(errors)

    def save(self, *args, **kwargs):
        self.fill_default_urls()
        super().save(*args, **kwargs)


class SalesforceOrg(models.Model):
    organization = models.ForeignKey(
        "cdp.Organization", on_delete=models.CASCADE, related_name="salesforce_orgs"
    )
    name = models.CharField(max_length=200, help_text="How people here call it, e.g. 'Salesforce production'.")
    instance_url = models.URLField(
        "instance URL",
        max_length=300,
        validators=[https_url_validator],
        help_text="Your My Domain URL, e.g. https://acme.my.salesforce.com.",
    )
    org_id = models.CharField(
        "org ID",
        max_length=18,
        blank=True,
        validators=[salesforce_org_id_validator],
        help_text="Optional: Setup → Company Information, 15 or 18 characters starting with 00D.",
    )
    auth_flow = models.CharField(
        "authentication",
        max_length=30,
        choices=SalesforceAuthFlow.choices,
        default=SalesforceAuthFlow.CLIENT_CREDENTIALS,
    )
    client_id = models.CharField(
        "consumer key", max_length=300, help_text="The connected app's consumer key (client ID)."
    )
    client_secret = EncryptedTextField(
        "consumer secret",
        blank=True,
        help_text="Needed for client credentials. Stored encrypted; never shown again.",
    )
    username = models.CharField(
        max_length=200, blank=True, help_text="The integration user the JWT bearer flow signs in as."
    )
    private_key = EncryptedTextField(
        "private key",
        blank=True,
        help_text="PEM private key of the connected app's certificate, for JWT bearer. Stored encrypted.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "Salesforce org"
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "instance_url"],
                name="salesforce_instance_url_unique_in_org",
                violation_error_message="This organization already has a Salesforce org with this instance URL.",
            )
        ]

    def __str__(self):
        return self.name

    def clean(self):
        self.instance_url = _strip_trailing_slash(self.instance_url)
        errors = {}
        if self.organization_id and self.instance_url:
            duplicate = SalesforceOrg.objects.filter(
                organization_id=self.organization_id, instance_url=self.instance_url
            ).exclude(pk=self.pk)
            if duplicate.exists():
                errors["instance_url"] = "This organization already has a Salesforce org with this instance URL."
        if self.auth_flow == SalesforceAuthFlow.CLIENT_CREDENTIALS and not self.client_secret:
            errors["client_secret"] = "The client credentials flow needs the consumer secret."
        if self.auth_flow == SalesforceAuthFlow.JWT_BEARER:
            if not self.username:
                errors["username"] = "The JWT bearer flow needs the username of the integration user."
            if not self.private_key:
                errors["private_key"] = "The JWT bearer flow needs the private key of the connected app."
        if errors:
            raise ValidationError(errors)

    def save(self, *args, **kwargs):
        self.instance_url = _strip_trailing_slash(self.instance_url)
        super().save(*args, **kwargs)
