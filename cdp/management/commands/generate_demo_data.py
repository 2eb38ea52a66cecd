"""Fill a sandbox with realistic B2B demo data (accounts, people, opportunities, lists,
campaigns, experience events). See cdp.demo.generator for what is generated and how."""

from django.core.management.base import BaseCommand, CommandError

from cdp.demo import DemoDataError, DemoSizes, generate_demo_data
from cdp.models import Person, Sandbox

DEFAULT_ORGANIZATION = "acme"
DEFAULT_SANDBOX = "dev"


class Command(BaseCommand):
    help = (
        "Generate a realistic B2B data set into a sandbox (default: organization 'acme', sandbox 'dev'). "
        "Writes rows directly (COPY on PostgreSQL); refuses a sandbox that already has people unless --append. "
        "Example at scale: --accounts 100000 --people 1000000 --events 10000000."
    )

    def add_arguments(self, parser):
        target = parser.add_argument_group("target sandbox")
        target.add_argument("--sandbox", type=int, help="Sandbox id.")
        target.add_argument("--organization", default=None, help=f"Organization slug (default: {DEFAULT_ORGANIZATION}).")
        target.add_argument("--sandbox-name", default=None, help=f"Sandbox name in that organization (default: {DEFAULT_SANDBOX}).")
        sizes = parser.add_argument_group("sizes")
        sizes.add_argument("--accounts", type=int, default=200)
        sizes.add_argument("--people", type=int, default=2_000)
        sizes.add_argument("--events", type=int, default=20_000, help="Experience events over the last 90 days.")
        sizes.add_argument("--opportunities", type=int, default=None, help="Default: 40%% of --accounts.")
        sizes.add_argument("--lists", type=int, default=None, help="Static lists (default: accounts/2000, 5 to 50).")
        sizes.add_argument("--campaigns", type=int, default=None, help="Campaigns (default: accounts/1000, 8 to 100).")
        parser.add_argument("--seed", type=int, default=42, help="Random seed; the same seed gives the same data.")
        existing = parser.add_mutually_exclusive_group()
        existing.add_argument("--append", action="store_true", help="Add a second data set to a sandbox that already has people.")
        existing.add_argument(
            "--if-empty", action="store_true",
            help="Do nothing, successfully, when the sandbox already has people (for scripts such as the quick start).",
        )

    def handle(self, *args, **options):
        sandbox = self._sandbox(options)
        if options["if_empty"] and Person.objects.for_sandbox(sandbox).exists():
            self.stdout.write(f"Sandbox '{sandbox.name}' already has people: no demo data generated.")
            return
        sizes = DemoSizes(
            accounts=options["accounts"],
            people=options["people"],
            events=options["events"],
            opportunities=options["opportunities"],
            lists=options["lists"],
            campaigns=options["campaigns"],
        )
        try:
            counts = generate_demo_data(
                sandbox, sizes, seed=options["seed"], append=options["append"], report=self.stdout.write
            )
        except DemoDataError as error:
            raise CommandError(str(error)) from None
        summary = ", ".join(f"{count:,} {what.replace('_', ' ')}" for what, count in counts.items())
        self.stdout.write(self.style.SUCCESS(f"Sandbox '{sandbox.name}': {summary}."))

    def _sandbox(self, options) -> Sandbox:
        if options["sandbox"] is not None:
            if options["organization"] or options["sandbox_name"]:
                raise CommandError("Give either --sandbox <id> or --organization/--sandbox-name, not both.")
            sandbox = Sandbox.objects.select_related("organization").filter(pk=options["sandbox"]).first()
            if sandbox is None:
                raise CommandError(f"There is no sandbox with id {options['sandbox']}.")
            return sandbox
        slug = options["organization"] or DEFAULT_ORGANIZATION
        name = options["sandbox_name"] or DEFAULT_SANDBOX
        sandbox = Sandbox.objects.select_related("organization").filter(organization__slug=slug, name=name).first()
        if sandbox is None:
            hint = " Run 'manage.py bootstrap_demo' first to create it." if (slug, name) == (DEFAULT_ORGANIZATION, DEFAULT_SANDBOX) else ""
            raise CommandError(f"Organization '{slug}' has no sandbox named '{name}'.{hint}")
        return sandbox
