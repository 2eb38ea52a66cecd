from django.urls import path

from connectors import views, views_destinations, views_sources

app_name = "connectors"

urlpatterns = [
    path("sources/", views_sources.SourceListView.as_view(), name="sources"),
    path("sources/<int:pk>/", views_sources.SourceDetailView.as_view(), name="source-detail"),
    path(
        "sources/<int:pk>/<str:action>/", views_sources.SourceActionView.as_view(), name="source-action"
    ),
    path("sources/runs/<int:pk>/", views_sources.RunDetailView.as_view(), name="source-run"),
    path("sources/runs/<int:pk>/progress/", views_sources.RunProgressView.as_view(), name="source-run-progress"),
    path("sources/runs/<int:pk>/<str:action>/", views_sources.RunActionView.as_view(), name="source-run-action"),
    path("instances/", views.InstancesView.as_view(), name="instances"),
    path("instances/marketo/new/", views.MarketoInstanceFormView.as_view(), name="marketo-create"),
    path("instances/marketo/<int:pk>/edit/", views.MarketoInstanceFormView.as_view(), name="marketo-edit"),
    path("instances/marketo/<int:pk>/delete/", views.MarketoInstanceDeleteView.as_view(), name="marketo-delete"),
    path("instances/salesforce/new/", views.SalesforceOrgFormView.as_view(), name="salesforce-create"),
    path("instances/salesforce/<int:pk>/edit/", views.SalesforceOrgFormView.as_view(), name="salesforce-edit"),
    path(
        "instances/salesforce/<int:pk>/delete/", views.SalesforceOrgDeleteView.as_view(), name="salesforce-delete"
    ),
    path("pairings/", views.PairingCreateView.as_view(), name="pairing-create"),
    path("pairings/<int:pk>/delete/", views.PairingDeleteView.as_view(), name="pairing-delete"),
    # Activation: destinations, dataflows and their runs.
    path("destinations/", views_destinations.DestinationsView.as_view(), name="destinations"),
    path("destinations/new/<str:kind>/", views_destinations.DestinationCreateView.as_view(), name="destination-create"),
    path("destinations/<int:pk>/edit/", views_destinations.DestinationEditView.as_view(), name="destination-edit"),
    path("destinations/<int:pk>/delete/", views_destinations.DestinationDeleteView.as_view(), name="destination-delete"),
    path("dataflows/new/", views_destinations.DataflowWizardView.as_view(), name="dataflow-create"),
    path("dataflows/<int:pk>/", views_destinations.DataflowDetailView.as_view(), name="dataflow"),
    path("dataflows/<int:pk>/edit/", views_destinations.DataflowEditView.as_view(), name="dataflow-edit"),
    path(
        "dataflows/<int:pk>/dead-letters/<int:letter_pk>/resend/",
        views_destinations.DeadLetterResendView.as_view(),
        name="dead-letter-resend",
    ),
    path("dataflows/<int:pk>/<str:action>/", views_destinations.DataflowActionView.as_view(), name="dataflow-action"),
]
