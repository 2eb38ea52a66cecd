from django.urls import path

from cdp.views.pages import AreaPlaceholderView

app_name = "connectors"

urlpatterns = [
    path(
        "sources/",
        AreaPlaceholderView.as_view(
            area="Sources", description="Marketo Engage, Salesforce and file sources feeding this sandbox."
        ),
        name="sources",
    ),
    path("instances/", AreaPlaceholderView.as_view(area="Instances"), name="instances"),
]
