def register(router, sandbox_router):
    """Add connectors' viewsets: organization-level to ``router``, sandbox-scoped to ``sandbox_router``."""
