from django.urls import include, path

app_name = "journeys"

urlpatterns = [
    # Buying groups: dashboard "buying-groups", groups, roles templates, stages models, solution interests.
    path("buying-groups/", include("journeys.views.buying_groups")),
    # Runtime reports: dashboard, per-journey nodes and events, visits CSV (names: reports:…).
    path("reports/", include("journeys.views.reports")),
    # Journeys: list, canvas, campaign plan, email assets (names: journeys, journey-…, emails, email-…).
    path("", include("journeys.views.journeys")),
]
