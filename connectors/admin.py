"""Django admin for inspecting connector records. It is read-only (deletion aside): instances are
registered and edited in "Instances & pairings" or the API, where secrets are handled write-only and
the models' validation runs; pairings go through the pairing rules (``connectors.services.pairings``),
which the admin would bypass. Secrets are never shown here."""

from django.contrib import admin
from django.db import models

from connectors.models import MarketoInstance, Pairing, SalesforceOrg


class _ReadOnlyAdmin(admin.ModelAdmin):
    secret_fields: tuple[str, ...] = ()
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def get_queryset(self, request):
        return super().get_queryset(request).defer(*self.secret_fields)

    def get_exclude(self, request, obj=None):
        return self.secret_fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(MarketoInstance)
class MarketoInstanceAdmin(_ReadOnlyAdmin):
    list_display = ["name", "munchkin_id", "organization", "created_at"]
    list_filter = ["organization"]
    list_select_related = ["organization"]
    search_fields = ["name", "munchkin_id"]
    secret_fields = ("client_secret",)


@admin.register(SalesforceOrg)
class SalesforceOrgAdmin(_ReadOnlyAdmin):
    list_display = ["name", "instance_url", "auth_flow", "organization", "created_at"]
    list_filter = ["organization", "auth_flow"]
    list_select_related = ["organization"]
    search_fields = ["name", "instance_url", "org_id"]
    secret_fields = ("client_secret", "private_key")


@admin.register(Pairing)
class PairingAdmin(_ReadOnlyAdmin):
    list_display = ["sandbox", "kind", "marketo_instance", "salesforce_org", "created_by", "created_at"]
    list_filter = ["kind", "sandbox__organization"]
    list_select_related = ["sandbox__organization", "marketo_instance", "salesforce_org", "created_by"]
