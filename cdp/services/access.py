"""Who may do what, where. The one place roles are interpreted, for pages, API and tasks."""

from django.core.exceptions import PermissionDenied
from django.db.models import Q

from cdp.choices import Role
from cdp.models import Membership, Organization, Sandbox, SandboxRole


def get_sandbox_role(user, sandbox: Sandbox) -> Role | None:
    """The user's role in the sandbox, or None when the user may not see it at all."""
    if not user or not user.is_authenticated or not user.is_active or user.is_superuser:
        return role_from_membership(user, None, None)  # no query needed
    return sandbox_and_role(user, sandbox.pk)[1]


def sandbox_and_role(user, sandbox_id) -> tuple[Sandbox | None, Role | None]:
    """The sandbox and the user's role there (None when the user may not see it), in one query:
    every request asks this. It reads the user's membership of the sandbox's organization (unique)
    and its role in the sandbox (unique) and applies ``role_from_membership``. Plain SQL: compiling
    the equivalent ORM query cost six times the CPU of running it."""
    sandbox_id = int(sandbox_id)
    if not 0 < sandbox_id < 2**63:  # out of the id column's range: no such sandbox (and no SQL error)
        return None, None
    sql = (
        f"SELECT s.*, m.is_admin AS member_is_admin, r.role AS member_role FROM {Sandbox._meta.db_table} s "
        f"LEFT JOIN {Membership._meta.db_table} m ON m.organization_id = s.organization_id AND m.user_id = %s "
        f"LEFT JOIN {SandboxRole._meta.db_table} r ON r.membership_id = m.id AND r.sandbox_id = s.id "
        "WHERE s.id = %s"
    )
    sandbox = next(iter(Sandbox.objects.raw(sql, [user.pk, sandbox_id])), None)
    if sandbox is None:
        return None, None
    return sandbox, role_from_membership(user, sandbox.member_is_admin, sandbox.member_role)


def role_from_membership(user, is_admin: bool | None, role_here: str | None) -> Role | None:
    """The role rules, applied to what was read of the user's membership of the sandbox's
    organization (is_admin None: no membership): superusers and organization admins are admins,
    others have the role given in the sandbox, if any."""
    if not user or not user.is_authenticated or not user.is_active:
        return None
    if user.is_superuser:
        return Role.ADMIN
    if is_admin is None:
        return None
    if is_admin:
        return Role.ADMIN
    return Role(role_here) if role_here else None


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
