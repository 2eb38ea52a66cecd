from django.apps import apps
from django.db import transaction
from django.utils import timezone

from cdp.choices import SandboxType
from cdp.models import Organization, Sandbox, SandboxScopedModel


@transaction.atomic
def create_organization(*, name: str, slug: str) -> Organization:
    """An organization always starts with its production sandbox, as in Experience Platform."""
    organization = Organization.objects.create(name=name, slug=slug)
    Sandbox.objects.create(organization=organization, name="prod", title="Production", type=SandboxType.PRODUCTION)
    return organization


def sandbox_scoped_models():
    return [m for m in apps.get_models() if issubclass(m, SandboxScopedModel)]


@transaction.atomic
def reset_sandbox(sandbox: Sandbox, *, confirmation: str) -> dict[str, int]:
    """Empty a sandbox of all its data; the sandbox, its roles and pairings stay.

    The caller must pass the sandbox's name as typed by the user, so a reset is never an accident.
    Returns the number of rows deleted per model label.
    """
    if confirmation != sandbox.name:
        raise ValueError(f"Type the sandbox name '{sandbox.name}' exactly to confirm the reset.")
    deleted: dict[str, int] = {}
    for model in sandbox_scoped_models():
        if getattr(model, "survives_sandbox_reset", False):
            continue
        _, per_model = model.objects.filter(sandbox=sandbox).delete()
        for label, count in per_model.items():
            deleted[label] = deleted.get(label, 0) + count
    sandbox.last_reset_at = timezone.now()
    sandbox.save(update_fields=["last_reset_at"])
    return deleted


def sandbox_counts(sandbox: Sandbox) -> list[tuple[str, int]]:
    """(label, row count) for each sandbox-scoped model that asks to be shown on the dashboard."""
    counts = []
    for model in sandbox_scoped_models():
        label = getattr(model, "dashboard_label", None)
        if label:
            counts.append((label, model.objects.for_sandbox(sandbox).count()))
    return counts
