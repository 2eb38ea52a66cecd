from django.urls import include, path

from cdp.views import admin, pages

app_name = "cdp"

urlpatterns = [
    path("", pages.DashboardView.as_view(), name="dashboard"),
    path("sandbox/switch/", pages.switch_sandbox, name="switch-sandbox"),
    path("no-sandbox/", pages.no_sandbox, name="no-sandbox"),
    # People, accounts and data ingestion (names: profiles, profiles-…).
    path("profiles/", include("cdp.views.profiles")),
    # Audiences: list, builder, audience pages (names: audiences, audiences-…).
    path("audiences/", include("cdp.views.audiences")),
    # Admin: organizations, sandboxes, members and roles, API tokens.
    path("settings/", admin.OrganizationListView.as_view(), name="admin-organizations"),
    path("settings/organizations/new/", admin.OrganizationCreateView.as_view(), name="admin-organization-create"),
    path("settings/organizations/<int:pk>/", admin.OrganizationDetailView.as_view(), name="admin-organization"),
    path(
        "settings/organizations/<int:pk>/rename/",
        admin.OrganizationRenameView.as_view(),
        name="admin-organization-rename",
    ),
    path(
        "settings/organizations/<int:pk>/sandboxes/new/",
        admin.SandboxCreateView.as_view(),
        name="admin-sandbox-create",
    ),
    path(
        "settings/organizations/<int:pk>/members/new/",
        admin.MemberAddView.as_view(),
        name="admin-member-add",
    ),
    path("settings/sandboxes/<int:pk>/edit/", admin.SandboxEditView.as_view(), name="admin-sandbox-edit"),
    path("settings/sandboxes/<int:pk>/reset/", admin.SandboxResetView.as_view(), name="admin-sandbox-reset"),
    path("settings/sandboxes/<int:pk>/delete/", admin.SandboxDeleteView.as_view(), name="admin-sandbox-delete"),
    path("settings/members/<int:pk>/edit/", admin.MemberEditView.as_view(), name="admin-member-edit"),
    path("settings/members/<int:pk>/remove/", admin.MemberRemoveView.as_view(), name="admin-member-remove"),
    path("settings/tokens/", admin.TokenListView.as_view(), name="admin-tokens"),
    path("settings/tokens/<int:pk>/revoke/", admin.TokenRevokeView.as_view(), name="admin-token-revoke"),
]
