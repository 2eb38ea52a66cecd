"""Organizations and sandboxes: creating, renaming, deleting and resetting them, and who may.

Each function that changes something takes ``by`` (the user asking) and checks the rule itself, so
the admin pages and the API share one implementation. ``by=None`` is for system callers (quick start,
management commands, tasks) that act on their own authority.
"""

from django.apps import apps
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import BooleanField, Count, Exists, OuterRef, Value
from django.utils import timezone

from cdp.choices import Role, SandboxType
from cdp.exceptions import RuleViolation
from cdp.models import Membership, Organization, Sandbox, SandboxScopedModel

from .access import member_organizations, require_organization_admin, require_sandbox_role


def organizations_overview(user):
    """The user's organizations (all for superusers) with sandbox and member counts, and
    ``caller_is_admin``: whether the user administers each."""
    if not user.is_authenticated:
        return Organization.objects.none()
    if user.is_superuser:
        is_admin = Value(True, output_field=BooleanField())
    else:
        is_admin = Exists(Membership.objects.filter(organization=OuterRef("pk"), user=user, is_admin=True))
    # Counted over a fresh queryset: joining through the caller's membership would skew the counts.
    return (
        Organization.objects.filter(pk__in=member_organizations(user).values("pk"))
        .annotate(
            sandbox_count=Count("sandboxes", distinct=True),
            member_count=Count("memberships", distinct=True),
            caller_is_admin=is_admin,
        )
        .order_by("name")
    )


def can_create_organization(user) -> bool:
    return bool(user and user.is_authenticated and user.is_superuser)


@transaction.atomic
def create_organization(*, name: str, slug: str, by=None) -> Organization:
    """An organization always starts with its production sandbox, as in Experience Platform."""
    if by is not None and not can_create_organization(by):
        raise PermissionDenied("Only superusers can create organizations.")
    organization = Organization.objects.create(name=name, slug=slug)
    Sandbox.objects.create(organization=organization, name="prod", title="Production", type=SandboxType.PRODUCTION)
    return organization


def rename_organization(organization: Organization, *, name: str, by) -> Organization:
    require_organization_admin(by, organization)
    if Organization.objects.exclude(pk=organization.pk).filter(name__iexact=name).exists():
        raise ValidationError({"name": f"Another organization is already named '{name}'."})
    organization.name = name
    organization.save(update_fields=["name"])
    return organization


@transaction.atomic
def create_sandbox(
    *, organization: Organization, name: str, title: str, type: str = SandboxType.DEVELOPMENT, by
) -> Sandbox:
    require_organization_admin(by, organization)
    if organization.sandboxes.filter(name=name).exists():
        raise ValidationError({"name": f"Organization '{organization.name}' already has a sandbox named '{name}'."})
    sandbox = Sandbox(organization=organization, name=name, title=title, type=type)
    sandbox.full_clean()
    sandbox.save()
    return sandbox


def retitle_sandbox(sandbox: Sandbox, *, title: str, by) -> Sandbox:
    require_organization_admin(by, sandbox.organization)
    sandbox.title = title
    sandbox.full_clean(exclude=["organization", "name", "type"], validate_constraints=False)
    sandbox.save(update_fields=["title"])
    return sandbox


def can_delete_sandbox(sandbox: Sandbox) -> bool:
    return sandbox.type != SandboxType.PRODUCTION


@transaction.atomic
def delete_sandbox(sandbox: Sandbox, *, by) -> None:
    """Delete a development sandbox with all its data, roles and pairings."""
    require_organization_admin(by, sandbox.organization)
    if not can_delete_sandbox(sandbox):
        raise RuleViolation(
            f"Sandbox '{sandbox.name}' is a production sandbox; production sandboxes cannot be deleted "
            "(reset it to empty it).",
            rule="production_sandbox_not_deletable",
        )
    sandbox.delete()


def sandbox_scoped_models():
    return [m for m in apps.get_models() if issubclass(m, SandboxScopedModel)]


def _reset_models():
    return [m for m in sandbox_scoped_models() if not getattr(m, "survives_sandbox_reset", False)]


@transaction.atomic
def reset_sandbox(sandbox: Sandbox, *, confirmation: str, by=None) -> dict[str, int]:
    """Empty a sandbox of all its data; the sandbox, its roles and pairings stay.

    The caller must pass the sandbox's name as typed by the user, so a reset is never an accident.
    Resetting needs the admin role in that sandbox. Returns the number of rows deleted per model label.
    """
    if by is not None:
        require_sandbox_role(by, sandbox, Role.ADMIN)
    if (confirmation or "").strip() != sandbox.name:
        raise RuleViolation(
            f"Type the sandbox name '{sandbox.name}' exactly to confirm the reset.",
            rule="reset_needs_typed_confirmation",
            field="confirm",
        )
    deleted: dict[str, int] = {}
    # Every row of every sandbox-scoped model goes, so no cascade needs collecting: one DELETE per
    # table (foreign keys are checked at commit), which stays fast with millions of rows.
    for model in _reset_models():
        count = model.objects.filter(sandbox=sandbox)._raw_delete(model.objects.db)
        if count:
            deleted[model._meta.label] = count
    sandbox.last_reset_at = timezone.now()
    sandbox.save(update_fields=["last_reset_at"])
    return deleted


def sandbox_data_summary(sandbox: Sandbox) -> list[tuple[str, int]]:
    """(what, row count) for every kind of data a reset would delete; shown before confirming."""
    summary = []
    for model in _reset_models():
        count = model.objects.filter(sandbox=sandbox).count()
        if count:
            summary.append((str(model._meta.verbose_name_plural).capitalize(), count))
    return summary


def sandbox_counts(sandbox: Sandbox) -> list[tuple[str, int]]:
    """(label, row count) for each sandbox-scoped model that asks to be shown on the dashboard."""
    counts = []
    for model in sandbox_scoped_models():
        label = getattr(model, "dashboard_label", None)
        if label:
            counts.append((label, model.objects.for_sandbox(sandbox).count()))
    return counts
