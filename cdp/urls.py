from django.urls import path

from cdp.views import pages

app_name = "cdp"

urlpatterns = [
    path("", pages.DashboardView.as_view(), name="dashboard"),
    path("sandbox/switch/", pages.switch_sandbox, name="switch-sandbox"),
    path("no-sandbox/", pages.no_sandbox, name="no-sandbox"),
    path(
        "profiles/",
        pages.AreaPlaceholderView.as_view(
            area="Profiles", description="Unified accounts, people and opportunities, with their identities and activity."
        ),
        name="profiles",
    ),
    path(
        "audiences/",
        pages.AreaPlaceholderView.as_view(
            area="Audiences", description="Person and account audiences kept current as data changes."
        ),
        name="audiences",
    ),
    path(
        "destinations/",
        pages.AreaPlaceholderView.as_view(
            area="Destinations", description="Activate audiences to Marketo Engage, webhooks and file exports."
        ),
        name="destinations",
    ),
    path("settings/", pages.AreaPlaceholderView.as_view(area="Organizations"), name="admin-organizations"),
    path("settings/tokens/", pages.AreaPlaceholderView.as_view(area="API tokens"), name="admin-tokens"),
]
