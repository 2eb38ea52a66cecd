from .base import SandboxQuerySet, SandboxScopedModel
from .tenancy import Membership, Organization, Sandbox, SandboxRole
from .tokens import ApiToken

__all__ = [
    "ApiToken",
    "Membership",
    "Organization",
    "Sandbox",
    "SandboxQuerySet",
    "SandboxRole",
    "SandboxScopedModel",
]
