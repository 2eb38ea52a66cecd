from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from cdp.views.auth import ThrottledLoginView

urlpatterns = [
    path("login/", ThrottledLoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/", include("config.api_router")),
    path("django-admin/", admin.site.urls),
    path("connectors/", include("connectors.urls")),
    path("journeys/", include("journeys.urls")),
    path("t/", include("journeys.tracking_urls")),  # email open/click tracking: short links in emails
    path("", include("cdp.urls")),
]

handler400 = "cdp.api.errors.api_aware_bad_request"
handler404 = "cdp.api.errors.api_aware_not_found"
handler500 = "cdp.api.errors.api_aware_server_error"
