from . import destinations, sources, views


def register(router, sandbox_router):
    """Add connectors' viewsets: organization-level to ``router``, sandbox-scoped to ``sandbox_router``."""
    router.register("marketo-instances", views.MarketoInstanceViewSet, basename="marketo-instance")
    router.register("salesforce-orgs", views.SalesforceOrgViewSet, basename="salesforce-org")
    sandbox_router.register("pairings", views.PairingViewSet, basename="pairing")
    destinations.register(router, sandbox_router)
    sources.register(router, sandbox_router)
