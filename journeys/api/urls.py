"""Journeys' REST endpoints. Each module adds its viewsets here (one line each)."""

from . import buying_groups
from . import journeys as authoring
from . import runtime


def register(router, sandbox_router):
    """Add journeys' viewsets: organization-level to ``router``, sandbox-scoped to ``sandbox_router``."""
    sandbox_router.register("buying-group-roles", buying_groups.BuyingGroupRoleViewSet, basename="buying-group-role")
    sandbox_router.register("roles-templates", buying_groups.RolesTemplateViewSet, basename="roles-template")
    sandbox_router.register("stages-models", buying_groups.StagesModelViewSet, basename="stages-model")
    sandbox_router.register("solution-interests", buying_groups.SolutionInterestViewSet, basename="solution-interest")
    sandbox_router.register("buying-group-builds", buying_groups.BuyingGroupBuildViewSet, basename="buying-group-build")
    sandbox_router.register("buying-groups", buying_groups.BuyingGroupViewSet, basename="buying-group")
    runtime.register(router, sandbox_router)
    authoring.register(router, sandbox_router)
