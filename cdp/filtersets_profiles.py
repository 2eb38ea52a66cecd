"""Filters for the profile store's lists, shared by the REST API and the profile pages.

Querysets arrive already scoped to one sandbox; filters that name other rows take plain ids, so an
id from another sandbox simply matches nothing. ``sandbox`` (optional keyword) lets the identity
part of a search use the (sandbox, namespace, value) index.
"""

import django_filters
from django import forms

from cdp.choices import BatchStatus, IngestionEntity
from cdp.models import Account, ExperienceEvent, FieldMapping, IngestionBatch, Opportunity, Person, RejectedRecord
from cdp.services.identities import normalize_domain
from cdp.services.profile_queries import search_accounts, search_people


class _SandboxAwareFilterSet(django_filters.FilterSet):
    def __init__(self, *args, sandbox=None, **kwargs):
        self.sandbox = sandbox
        super().__init__(*args, **kwargs)


def _search_input(placeholder):
    return forms.TextInput(attrs={"type": "search", "placeholder": placeholder})


def _text_input(placeholder):
    return forms.TextInput(attrs={"placeholder": placeholder})


class PersonFilterSet(_SandboxAwareFilterSet):
    q = django_filters.CharFilter(
        method="search",
        label="Search",
        help_text="Part of the name or email, or an exact identity value (ECID, Marketo or Salesforce id…); "
        "`namespace:value` names the namespace.",
        widget=_search_input("Name, email or identity"),
    )
    email = django_filters.CharFilter(
        method="filter_email", help_text="Exact email address (case-insensitive).", widget=_text_input("Email")
    )
    job_level = django_filters.CharFilter(lookup_expr="iexact", help_text="Exact job level.", widget=_text_input("Job level"))
    department = django_filters.CharFilter(lookup_expr="iexact", help_text="Exact department.", widget=_text_input("Department"))
    country = django_filters.CharFilter(lookup_expr="iexact", help_text="Exact country.", widget=_text_input("Country"))
    account = django_filters.NumberFilter(
        field_name="account_relations__account_id", help_text="Only people related to this account (id)."
    )
    is_unsubscribed = django_filters.BooleanFilter(help_text="true: unsubscribed people only; false: the others.")

    class Meta:
        model = Person
        fields = ["q", "email", "job_level", "department", "country", "account", "is_unsubscribed"]

    def search(self, queryset, name, value: str):
        return search_people(queryset, value, self.sandbox)

    def filter_email(self, queryset, name, value: str):
        return queryset.filter(email=value.strip().lower())


class AccountFilterSet(_SandboxAwareFilterSet):
    q = django_filters.CharFilter(
        method="search",
        label="Search",
        help_text="Part of the name or domain, or an exact identity value (CRM or Salesforce account id, domain).",
        widget=_search_input("Name, domain or identity"),
    )
    domain = django_filters.CharFilter(
        method="filter_domain", help_text="Exact domain, e.g. acme.com.", widget=_text_input("Domain")
    )
    industry = django_filters.CharFilter(lookup_expr="iexact", help_text="Exact industry.", widget=_text_input("Industry"))
    country = django_filters.CharFilter(lookup_expr="iexact", help_text="Exact country.", widget=_text_input("Country"))
    parent = django_filters.NumberFilter(field_name="parent_id", help_text="Only child accounts of this account (id).")

    class Meta:
        model = Account
        fields = ["q", "domain", "industry", "country", "parent"]

    def search(self, queryset, name, value: str):
        return search_accounts(queryset, value, self.sandbox)

    def filter_domain(self, queryset, name, value: str):
        return queryset.filter(domain=normalize_domain(value))


class OpportunityFilterSet(_SandboxAwareFilterSet):
    q = django_filters.CharFilter(field_name="name", lookup_expr="icontains", label="Search", help_text="Part of the name.")
    account = django_filters.NumberFilter(field_name="account_id", help_text="Only opportunities of this account (id).")
    person = django_filters.NumberFilter(
        field_name="person_relations__person_id", help_text="Only opportunities where this person (id) has a contact role."
    )
    stage = django_filters.CharFilter(lookup_expr="iexact", help_text="Exact stage name.")
    external_id = django_filters.CharFilter(help_text="The source system's opportunity id.")
    is_closed = django_filters.BooleanFilter()
    is_won = django_filters.BooleanFilter()
    close_date = django_filters.DateFromToRangeFilter(help_text="close_date_after / close_date_before (YYYY-MM-DD).")

    class Meta:
        model = Opportunity
        fields = ["q", "account", "person", "stage", "external_id", "is_closed", "is_won", "close_date"]


class EventFilterSet(_SandboxAwareFilterSet):
    person = django_filters.NumberFilter(field_name="person_id", help_text="Only events of this person (id).")
    account = django_filters.NumberFilter(field_name="account_id", help_text="Only events recorded on this account (id).")
    type = django_filters.CharFilter(help_text="Exact event type, e.g. email.opened.")
    occurred_at = django_filters.IsoDateTimeFromToRangeFilter(
        help_text="occurred_at_after / occurred_at_before: ISO 8601 date-times, e.g. 2026-11-01T00:00:00Z."
    )
    external_id = django_filters.CharFilter(help_text="The source's event id.")

    class Meta:
        model = ExperienceEvent
        fields = ["person", "account", "type", "occurred_at", "external_id"]


class FieldMappingFilterSet(_SandboxAwareFilterSet):
    entity = django_filters.ChoiceFilter(choices=IngestionEntity.choices, help_text="Only mappings for this entity.")

    class Meta:
        model = FieldMapping
        fields = ["entity"]


class IngestionBatchFilterSet(_SandboxAwareFilterSet):
    kind = django_filters.ChoiceFilter(
        choices=IngestionBatch.Kind.choices, empty_label="Files and streaming", help_text="file or stream."
    )
    entity = django_filters.ChoiceFilter(choices=IngestionEntity.choices, empty_label="Any entity")
    status = django_filters.ChoiceFilter(choices=BatchStatus.choices, empty_label="Any status")

    class Meta:
        model = IngestionBatch
        fields = ["kind", "entity", "status"]


class RejectedRecordFilterSet(_SandboxAwareFilterSet):
    field = django_filters.CharFilter(help_text="Only rejections of this field.")

    class Meta:
        model = RejectedRecord
        fields = ["field"]
