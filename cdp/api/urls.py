from . import views


def register(router, sandbox_router):
    """Add cdp's viewsets: organization-level to ``router``, sandbox-scoped to ``sandbox_router``."""
    router.register("organizations", views.OrganizationViewSet, basename="organization")
    router.register("sandboxes", views.SandboxViewSet, basename="sandbox")
    router.register("members", views.MembershipViewSet, basename="membership")
    router.register("tokens", views.ApiTokenViewSet, basename="apitoken")
    router.register("me", views.MeViewSet, basename="me")
