def register(router, sandbox_router):
    """Add cdp's viewsets: organization-level to ``router``, sandbox-scoped to ``sandbox_router``."""
