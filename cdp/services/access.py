"""Who may do what, where. The one place roles are interpreted, for pages, API and tasks."""

from django.core.exceptions import PermissionDenied
from django.db.models import OuterRef, Q, Subquery

from cdp.choices import Role
from cdp.models import Membership, Organization, Sandbox, SandboxRole


def get_sandbox_role(user, sandbox: Sandbox) -> Role | None:
    """The user's role in the sandbox, or None when the user may not see it at all."""
    if not user or not user.is_authenticated or not user.is_active:
        return None
    if user.is_superuser:
        return Role.ADMIN
    # One query without joins: every API request asks this.
    role_here = SandboxRole.objects.filter(membership=OuterRef("pk"), sandbox=sandbox).order_by().values("role")[:1]
    membership = (
        Membership.objects.filter(user=user, organization_id=sandbox.organization_id)
        .annotate(role_here=Subquery(role_here))
        .order_by()
        .values("is_admin", "role_here")
        .first()
    )
    if membership is None:
        return None
    if membership["is_admin"]:
        return Role.ADMIN
    return Role(membership["role_here"]) if membership["role_here"] else None


def require_sandbox_role(user, sandbox: Sandbox, required: Role) -> Role:
    role = get_sandbox_role(user, sandbox)
    if role is None or not role.allows(required):
        raise PermissionDenied(f"This needs the {Role(required).label.lower()} role in sandbox '{sandbox.name}'.")
    return role


def accessible_sandboxes(user):
    """Sandboxes the user can see: all for superusers, every sandbox of an administered
    organization, and the ones with an explicit role."""
    if not user.is_authenticated:
        return Sandbox.objects.none()
    qs = Sandbox.objects.select_related("organization")
    if user.is_superuser:
        return qs
    administered = Q(organization__memberships__user=user, organization__memberships__is_admin=True)
    with_role = Q(roles__membership__user=user)
    return qs.filter(administered | with_role).distinct()


def is_organization_admin(user, organization: Organization) -> bool:
    if not user.is_authenticated:
        return False
    if user.is_superuser:
        return True
    return Membership.objects.filter(user=user, organization=organization, is_admin=True).exists()


def require_organization_admin(user, organization: Organization) -> None:
    if not is_organization_admin(user, organization):
        raise PermissionDenied(f"This needs an admin of organization '{organization.name}'.")


def administered_organizations(user):
    if not user.is_authenticated:
        return Organization.objects.none()
    if user.is_superuser:
        return Organization.objects.all()
    return Organization.objects.filter(memberships__user=user, memberships__is_admin=True)


def member_organizations(user):
    if not user.is_authenticated:
        return Organization.objects.none()
    if user.is_superuser:
        return Organization.objects.all()
    return Organization.objects.filter(memberships__user=user)
