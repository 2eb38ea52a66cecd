"""Add the demo workspace (audiences, buying groups, journeys, a CSV dataflow) to a sandbox that
has demo profiles. See journeys.services.demo for what is made and how."""

import time

from django.core.management.base import BaseCommand, CommandError

from cdp.exceptions import RuleViolation
from cdp.models import Sandbox
from journeys.services.demo import DemoWorkspaceError, seed_demo_workspace

DEFAULT_ORGANIZATION = "acme"
DEFAULT_SANDBOX = "dev"


class Command(BaseCommand):
    help = (
        "Create the demo workspace in a sandbox with demo profiles (default: organization 'acme', sandbox 'dev'): "
        "audiences, a buying group setup with built groups, a live and a draft journey, a CSV destination and "
        "dataflow. Running again creates only what is missing."
    )

    def add_arguments(self, parser):
        parser.add_argument("--organization", default=DEFAULT_ORGANIZATION, help=f"Organization slug (default: {DEFAULT_ORGANIZATION}).")
        parser.add_argument("--sandbox-name", default=DEFAULT_SANDBOX, help=f"Sandbox name in that organization (default: {DEFAULT_SANDBOX}).")
        parser.add_argument(
            "--if-empty", action="store_true",
            help="Do nothing, successfully, when the sandbox already has audiences, journeys, solution interests or "
            "dataflows (for scripts such as the quick start, so deleted demo items stay deleted).",
        )  # fmt: skip

    def handle(self, *args, organization, sandbox_name, if_empty, **options):
        sandbox = Sandbox.objects.select_related("organization").filter(organization__slug=organization, name=sandbox_name).first()
        if sandbox is None:
            raise CommandError(f"Organization '{organization}' has no sandbox named '{sandbox_name}'.")
        started = time.monotonic()
        try:
            outcome = seed_demo_workspace(sandbox, if_empty=if_empty, report=self.stdout.write)
        except DemoWorkspaceError as error:
            raise CommandError(str(error)) from None
        except RuleViolation as error:  # a service refused (e.g. a limit reached): nothing was saved
            raise CommandError(f"{error.message} Nothing was created.") from None
        if outcome.skipped:
            self.stdout.write(f"Sandbox '{sandbox.name}' already has a workspace: no demo workspace added.")
            return
        elapsed = time.monotonic() - started
        if outcome.created:
            kept = f" ({len(outcome.kept)} already there)" if outcome.kept else ""
            self.stdout.write(self.style.SUCCESS(
                f"Sandbox '{sandbox.name}': demo workspace ready, {len(outcome.created)} items created{kept} in {elapsed:,.1f} s."
            ))  # fmt: skip
        else:
            self.stdout.write(f"Sandbox '{sandbox.name}' already has every demo workspace item: nothing created.")
