"""Every REST endpoint, in two groups: organization-level resources at /api/…, and sandbox-scoped
resources at /api/sandboxes/<sandbox_id>/…. Apps contribute their viewsets through ``register``
functions so this file stays the one map of the API."""

from django.urls import include, path
from rest_framework.routers import DefaultRouter

from cdp.api.audiences import register as register_audiences
from cdp.api.profiles import register as register_profiles
from cdp.api.urls import register as register_cdp
from connectors.api.urls import register as register_connectors
from journeys.api.urls import register as register_journeys

router = DefaultRouter()
sandbox_router = DefaultRouter()
sandbox_router.include_root_view = False

for register in (register_cdp, register_profiles, register_audiences, register_connectors, register_journeys):
    register(router, sandbox_router)

urlpatterns = [
    path("sandboxes/<int:sandbox_id>/", include(sandbox_router.urls)),
    path("", include(router.urls)),
]
