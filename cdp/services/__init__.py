from .access import (
    accessible_sandboxes,
    administered_organizations,
    member_organizations,
    get_sandbox_role,
    is_organization_admin,
    require_organization_admin,
    require_sandbox_role,
)
from .tenancy import create_organization, reset_sandbox, sandbox_counts
from .tokens import authenticate_api_token, issue_api_token, revoke_api_token

__all__ = [
    "accessible_sandboxes",
    "administered_organizations",
    "authenticate_api_token",
    "create_organization",
    "get_sandbox_role",
    "is_organization_admin",
    "member_organizations",
    "issue_api_token",
    "require_organization_admin",
    "require_sandbox_role",
    "reset_sandbox",
    "revoke_api_token",
    "sandbox_counts",
]
