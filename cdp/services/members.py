"""Users in organizations: adding and removing members, their per-sandbox roles, and who may manage
whose API tokens. One implementation for the admin pages and the API."""

from collections.abc import Iterable

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q

from cdp.choices import Role
from cdp.exceptions import RuleViolation
from cdp.models import ApiToken, Membership, Organization, Sandbox, SandboxRole

from .access import accessible_sandboxes, administered_organizations, require_organization_admin
from .tokens import issue_api_token, revoke_api_token

RoleAssignment = tuple[Sandbox, str]


# --- Users ----------------------------------------------------------------------------------


def create_user(*, username: str, email: str, password: str):
    """A new active user; every problem comes back as a ValidationError naming its field."""
    User = get_user_model()
    user = User(username=username, email=email)
    errors: dict[str, list[str]] = {}
    if not email:
        errors["email"] = ["Give an email address for the new user."]
    try:
        user.full_clean(exclude=["password"])
    except ValidationError as exc:
        for field, messages in exc.message_dict.items():
            errors.setdefault(field, []).extend(messages)
    try:
        validate_password(password, user)
    except ValidationError as exc:
        errors["password"] = list(exc.messages)
    if errors:
        raise ValidationError(errors)
    user.set_password(password)
    user.save()
    return user


def find_or_create_user(*, username: str, email: str = "", password: str = ""):
    """The existing user named ``username``, or a new one when a password is given."""
    User = get_user_model()
    existing = User.objects.filter(username=username).first()
    if password:
        if existing is not None:
            raise ValidationError(
                {"username": f"A user named '{username}' already exists; leave the password empty to add them."}
            )
        return create_user(username=username, email=email, password=password)
    if existing is None:
        raise ValidationError(
            {"username": f"No user is named '{username}'. To create one, also give an email and a password."}
        )
    return existing


# --- Memberships and roles --------------------------------------------------------------------


def _check_role_assignments(organization: Organization, roles: Iterable[RoleAssignment]) -> list[RoleAssignment]:
    roles = list(roles)
    seen = set()
    for sandbox, role in roles:
        if sandbox.organization_id != organization.pk:
            raise RuleViolation(
                f"Sandbox '{sandbox.name}' belongs to another organization; roles can only be given in "
                f"sandboxes of '{organization.name}'.",
                rule="role_sandbox_in_organization",
                field="roles",
            )
        if sandbox.pk in seen:
            raise ValidationError({"roles": f"Sandbox '{sandbox.name}' is listed twice; give one role a sandbox."})
        if role not in Role.values:
            raise ValidationError({"roles": f"'{role}' is not a role; use one of {', '.join(Role.values)}."})
        seen.add(sandbox.pk)
    return roles


def _set_roles(membership: Membership, roles: list[RoleAssignment]) -> None:
    """Make the membership's roles exactly ``roles`` (sandboxes not listed lose their role)."""
    wanted = {sandbox.pk: role for sandbox, role in roles}
    membership.sandbox_roles.exclude(sandbox_id__in=wanted).delete()
    for sandbox_id, role in wanted.items():
        SandboxRole.objects.update_or_create(membership=membership, sandbox_id=sandbox_id, defaults={"role": role})


def _refuse_leaving_without_admin(membership: Membership, action: str) -> None:
    if not membership.is_admin:
        return
    others = Membership.objects.filter(organization_id=membership.organization_id, is_admin=True).exclude(
        pk=membership.pk
    )
    if not others.exists():
        raise RuleViolation(
            f"{membership.user.get_username()} is the last admin of '{membership.organization.name}'; "
            f"make another member an admin before you {action}.",
            rule="organization_keeps_an_admin",
            field="is_admin",
        )


@transaction.atomic
def add_member(
    *, organization: Organization, user, is_admin: bool = False, roles: Iterable[RoleAssignment] = (), by
) -> Membership:
    require_organization_admin(by, organization)
    roles = _check_role_assignments(organization, roles)
    if Membership.objects.filter(organization=organization, user=user).exists():
        raise RuleViolation(
            f"{user.get_username()} is already a member of '{organization.name}'; edit their roles instead.",
            rule="member_once_per_organization",
            field="username",
        )
    membership = Membership.objects.create(organization=organization, user=user, is_admin=is_admin)
    _set_roles(membership, roles)
    return membership


@transaction.atomic
def add_member_by_username(
    *,
    organization: Organization,
    username: str,
    email: str = "",
    password: str = "",
    is_admin: bool = False,
    roles: Iterable[RoleAssignment] = (),
    by,
) -> Membership:
    """Add the user named ``username``, creating the account first when a password is given.
    Nothing is created when any part is refused."""
    require_organization_admin(by, organization)
    roles = _check_role_assignments(organization, roles)
    user = find_or_create_user(username=username, email=email, password=password)
    return add_member(organization=organization, user=user, is_admin=is_admin, roles=roles, by=by)


@transaction.atomic
def update_member(
    membership: Membership, *, is_admin: bool | None = None, roles: Iterable[RoleAssignment] | None = None, by
) -> Membership:
    """Change a member's admin flag and/or replace their sandbox roles (None leaves it as is)."""
    require_organization_admin(by, membership.organization)
    if roles is not None:
        roles = _check_role_assignments(membership.organization, roles)
    if is_admin is not None and is_admin != membership.is_admin:
        if not is_admin:
            _refuse_leaving_without_admin(membership, "remove their admin rights")
        membership.is_admin = is_admin
        membership.save(update_fields=["is_admin"])
    if roles is not None:
        _set_roles(membership, roles)
    return membership


@transaction.atomic
def remove_member(membership: Membership, *, by) -> None:
    """Take the user out of the organization, with all their roles in its sandboxes."""
    require_organization_admin(by, membership.organization)
    _refuse_leaving_without_admin(membership, "remove them")
    membership.delete()


def memberships_visible_to(user):
    """Memberships of the organizations the user administers, plus the user's own."""
    if not user.is_authenticated:
        return Membership.objects.none()
    qs = Membership.objects.select_related("user", "organization")
    if user.is_superuser:
        return qs
    return qs.filter(Q(organization__in=administered_organizations(user)) | Q(user=user)).distinct()


def sandbox_roles_of(user) -> dict[int, Role]:
    """{sandbox id: the user's role} for every sandbox the user can see, in two queries."""
    sandboxes = list(accessible_sandboxes(user))
    if user.is_superuser:
        return {s.pk: Role.ADMIN for s in sandboxes}
    admin_orgs = set(administered_organizations(user).values_list("pk", flat=True))
    explicit = dict(SandboxRole.objects.filter(membership__user=user).values_list("sandbox_id", "role"))
    return {s.pk: Role.ADMIN if s.organization_id in admin_orgs else Role(explicit[s.pk]) for s in sandboxes}


# --- API tokens -----------------------------------------------------------------------------


def can_manage_tokens_of(by, user) -> bool:
    """Anyone manages their own tokens; organization admins manage those of their members.
    A superuser's tokens are managed only by superusers."""
    if not by.is_authenticated:
        return False
    if by.is_superuser or by.pk == user.pk:
        return True
    if user.is_superuser:
        return False
    return Membership.objects.filter(user=user, organization__in=administered_organizations(by)).exists()


def token_owners_manageable_by(by):
    """Users whose tokens ``by`` may see, issue and revoke (``by`` first among them)."""
    User = get_user_model()
    if by.is_superuser:
        return User.objects.filter(is_active=True)
    return User.objects.filter(
        Q(pk=by.pk) | Q(memberships__organization__in=administered_organizations(by), is_superuser=False),
        is_active=True,
    ).distinct()


def tokens_visible_to(user):
    if not user.is_authenticated:
        return ApiToken.objects.none()
    qs = ApiToken.objects.select_related("user", "created_by")
    if user.is_superuser:
        return qs
    owners = token_owners_manageable_by(user).values("pk")
    return qs.filter(user__in=owners)


def issue_api_token_for(*, user, name: str, by) -> tuple[ApiToken, str]:
    if not can_manage_tokens_of(by, user):
        raise PermissionDenied(
            f"Issuing a token for {user.get_username()} needs an admin of an organization they belong to."
        )
    if not user.is_active:
        raise ValidationError({"user": f"{user.get_username()} is inactive; an inactive user's token would not work."})
    return issue_api_token(user=user, name=name, created_by=by)


def revoke_api_token_as(token: ApiToken, *, by) -> ApiToken:
    if not can_manage_tokens_of(by, token.user):
        raise PermissionDenied(
            f"Revoking {token.user.get_username()}'s token needs an admin of an organization they belong to."
        )
    return revoke_api_token(token)


def fellow_members(user):
    """The user and everyone who shares an organization with them (whom they may name, e.g. as a
    token owner, without learning about users elsewhere)."""
    User = get_user_model()
    if not user.is_authenticated:
        return User.objects.none()
    if user.is_superuser:
        return User.objects.all()
    return User.objects.filter(Q(pk=user.pk) | Q(memberships__organization__memberships__user=user)).distinct()
