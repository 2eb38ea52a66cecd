"""Filters for tenancy lists, shared by the API (django-filter backend) and the admin pages.

Choices that name other objects (organizations, users) only offer what the requesting user can see,
so a filter never confirms that someone else's organization exists.
"""

import django_filters
from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Q
from django_filters.widgets import BooleanWidget

from cdp.choices import Role, SandboxType
from cdp.models import ApiToken, Membership, Organization, Sandbox
from cdp.services import member_organizations, token_owners_manageable_by


def _visible_organizations(request):
    if request is None:
        return Organization.objects.none()
    return member_organizations(request.user)


def _token_owners(request):
    if request is None:
        return get_user_model().objects.none()
    return token_owners_manageable_by(request.user)


# Filter controls sit in a row above a list, so they take their natural width.
INLINE = {"style": "width: auto"}


class _ActiveStatusWidget(BooleanWidget):
    def __init__(self, attrs=None):
        super().__init__({**INLINE, **(attrs or {})})
        self.choices = (("", "Any status"), ("true", "Active"), ("false", "Revoked"))


class OrganizationFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Search", help_text="Part of the name or slug.")

    class Meta:
        model = Organization
        fields = ["q", "slug"]

    def search(self, queryset, name, value):
        return queryset.filter(Q(name__icontains=value) | Q(slug__icontains=value))


class SandboxFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Search", help_text="Part of the name or title.")
    organization = django_filters.ModelChoiceFilter(
        queryset=_visible_organizations, help_text="Only sandboxes of this organization (id)."
    )
    type = django_filters.ChoiceFilter(choices=SandboxType.choices, help_text="production or development.")

    class Meta:
        model = Sandbox
        fields = ["q", "organization", "type"]

    def search(self, queryset, name, value):
        return queryset.filter(Q(name__icontains=value) | Q(title__icontains=value))


class MembershipFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Search", help_text="Part of the username or email.")
    organization = django_filters.ModelChoiceFilter(
        queryset=_visible_organizations, help_text="Only members of this organization (id)."
    )
    is_admin = django_filters.BooleanFilter(help_text="Only organization admins (true) or only others (false).")
    role = django_filters.ChoiceFilter(
        choices=Role.choices,
        field_name="sandbox_roles__role",
        distinct=True,
        empty_label="Any role",
        widget=forms.Select(attrs=INLINE),
        help_text="Has this role in some sandbox.",
    )

    class Meta:
        model = Membership
        fields = ["q", "organization", "is_admin", "role"]

    def search(self, queryset, name, value):
        return queryset.filter(Q(user__username__icontains=value) | Q(user__email__icontains=value))


class ApiTokenFilterSet(django_filters.FilterSet):
    user = django_filters.ModelChoiceFilter(
        queryset=_token_owners,
        empty_label="Any owner",
        widget=forms.Select(attrs=INLINE),
        help_text="Only tokens of this user (id).",
    )
    active = django_filters.BooleanFilter(
        field_name="revoked_at",
        lookup_expr="isnull",
        widget=_ActiveStatusWidget,
        help_text="true: not revoked; false: revoked.",
    )

    class Meta:
        model = ApiToken
        fields = ["user", "active"]
