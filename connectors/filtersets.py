"""Filters for connector lists (API). Organization filters take a plain id: the list is already
limited to the caller's organizations, so an unknown or foreign id simply matches nothing."""

import django_filters

from connectors.choices import PairingKind, SalesforceAuthFlow
from connectors.models import MarketoInstance, Pairing, SalesforceOrg


class MarketoInstanceFilterSet(django_filters.FilterSet):
    organization = django_filters.NumberFilter(field_name="organization_id", help_text="Organization id.")
    munchkin_id = django_filters.CharFilter(method="filter_munchkin", help_text="Munchkin ID, any case.")

    class Meta:
        model = MarketoInstance
        fields = ["organization", "munchkin_id"]

    def filter_munchkin(self, queryset, name, value):
        return queryset.filter(munchkin_id=value.strip().upper())


class SalesforceOrgFilterSet(django_filters.FilterSet):
    organization = django_filters.NumberFilter(field_name="organization_id", help_text="Organization id.")
    auth_flow = django_filters.ChoiceFilter(choices=SalesforceAuthFlow.choices)

    class Meta:
        model = SalesforceOrg
        fields = ["organization", "auth_flow"]


class PairingFilterSet(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(choices=PairingKind.choices)
    marketo_instance = django_filters.NumberFilter(field_name="marketo_instance_id")
    salesforce_org = django_filters.NumberFilter(field_name="salesforce_org_id")

    class Meta:
        model = Pairing
        fields = ["kind", "marketo_instance", "salesforce_org"]
