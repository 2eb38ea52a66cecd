from django.urls import path

from connectors import views

app_name = "connectors"

urlpatterns = [
    path("sources/", views.SourcesView.as_view(), name="sources"),
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
]
