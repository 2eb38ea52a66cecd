"""Run histories (sync runs, activation runs) are shown with only their newest run per owner."""

from django.db.models import Max, Prefetch


def newest_run_prefetch(run_model, owner_field: str, sandbox) -> Prefetch:
    """Prefetch ``runs`` as ``latest_runs``: a list holding only the owner's newest run (or none).
    One grouped query, however long the history: a list page must not load every run ever made."""
    newest = run_model.objects.filter(sandbox=sandbox).values(owner_field).annotate(newest=Max("pk")).values("newest")
    return Prefetch("runs", queryset=run_model.objects.filter(pk__in=newest), to_attr="latest_runs")
