from django.urls import path

from cdp.views.pages import AreaPlaceholderView

app_name = "journeys"

urlpatterns = [
    path(
        "buying-groups/",
        AreaPlaceholderView.as_view(
            area="Buying groups",
            description="Roles templates, solution interests and the buying groups built for your accounts.",
        ),
        name="buying-groups",
    ),
    path(
        "",
        AreaPlaceholderView.as_view(
            area="Journeys", description="Account journeys driven by buying groups, from canvas to campaigns."
        ),
        name="journeys",
    ),
]
