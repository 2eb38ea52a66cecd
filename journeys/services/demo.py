"""The demo workspace: audiences, a buying group setup, journeys and a dataflow on top of the
profiles ``cdp.demo`` generates, so every main page of a fresh quick start has something to show.

    seed_demo_workspace(sandbox, *, if_empty=False, report=None) -> DemoWorkspace

Everything is made through the same services the pages and the API call (never by writing rows
around them), in one transaction: a failure leaves nothing half made. Items are found again by
name, so running again creates only what is missing; with ``if_empty`` a sandbox that already has
a workspace (any audience, journey, solution interest or dataflow) is left alone, which is what
the quick start wants on every start after the first.

The audiences are evaluated and the buying groups built here, synchronously, so the pages show
members and scores at once. What must happen in the worker stays there: the live journey enrolls
its accounts when the ``journey_published`` signal's task runs, and sends its email through the
configured EMAIL_BACKEND as the runtime advances them (only a backend that delivers nothing, such
as the quick start's console backend, gets a live journey: with SMTP it is left validated, so the
generated addresses are never mailed unasked); the dataflow's first CSV export is queued
("run now") for the worker, then runs daily. Work queued on commit also re-evaluates the new
audiences once (save_audience always queues that); it finds nothing to change.

The conditions are written for what ``cdp.demo`` generates (industries, job levels and titles,
web pages, email and webinar events over the last 90 days); ``DEMO_*`` below are the definitions.
"""

import datetime as dt
from dataclasses import dataclass, field
from string import Template

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from cdp.models import Audience, Person
from cdp.services.audience_io import read_definition
from cdp.services.audiences import evaluate_in_full, save_audience
from connectors.models import Dataflow, DataflowMode, Destination, DestinationKind
from connectors.services.activation import create_dataflow, create_destination, run_dataflow_now
from journeys.choices import RoleWeight, StageKind
from journeys.models import BuyingGroupBuild, EmailAsset, Journey, RolesTemplate, SolutionInterest, StagesModel
from journeys.services.buying_groups import (
    ensure_default_roles,
    publish_roles_template,
    publish_stages_model,
    run_build,
    save_roles_template,
    save_solution_interest,
    save_stages_model,
    start_build,
)
from journeys.services.emails import save_email
from journeys.services.journeys import check_journey, create_journey, publish_journey

# Industries the demo company sells to; the generator's commonest, so the audiences are sizeable.
TARGET_INDUSTRIES = '["Software", "IT Services", "Financial Services"]'
SENIOR_LEVELS = '["C-Level", "VP", "Director"]'

# Keys name the audiences inside this module; {key} in a definition becomes that audience's id.
# Order matters: an audience comes after the ones it reads with inSegment.
DEMO_AUDIENCES = [
    {
        "key": "engaged_accounts",
        "name": "Engaged target accounts",
        "kind": "account",
        "description": "Target industries with five or more web visits in the last 30 days: the ABM program's accounts.",
        "pql": f"account.industry in {TARGET_INDUSTRIES}\n"
        'and (select e from xEvent where e.type = "web.visit" and e.occurredAt occurs <= 30 days before now).count() >= 5',
    },
    {
        "key": "open_pipeline",
        "name": "Accounts with open pipeline",
        "kind": "account",
        "description": "Accounts with an opportunity that is not closed yet.",
        "pql": "exists o from account.opportunities where o.isClosed = false",
    },
    {
        "key": "marketing_leaders",
        "name": "Marketing leaders",
        "kind": "person",
        "description": "Directors and above in marketing (built in the rule builder).",
        "definition": {
            "subject": "person",
            "condition": {
                "type": "and",
                "conditions": [
                    {"type": "compare", "field": "jobLevel", "op": "in", "value": ["C-Level", "VP", "Director"]},
                    {"type": "compare", "field": "department", "op": "eq", "value": "Marketing"},
                    {"type": "compare", "field": "isUnsubscribed", "op": "eq", "value": False},
                ],
            },
        },
    },
    {
        "key": "high_intent",
        "name": "High-intent visitors (last 14 days)",
        "kind": "person",
        "description": "Visited the pricing, demo or contact-sales page in the last two weeks.",
        "pql": 'exists e from xEvent where e.type = "web.visit"\n'
        'and e.properties.url.matches("/(pricing|demo|contact-sales)$")\n'
        "and e.occurredAt occurs <= 14 days before now",
    },
    {
        "key": "email_clickers",
        "name": "Email clickers (last 30 days)",
        "kind": "person",
        "description": "Clicked a link in an email in the last 30 days.",
        "definition": {
            "subject": "person",
            "condition": {
                "type": "count",
                "collection": "xEvent",
                "where": {
                    "type": "and",
                    "conditions": [
                        {"type": "compare", "field": "type", "op": "eq", "value": "email.clicked"},
                        {"type": "occurs", "field": "occurredAt", "op": "le", "amount": 30, "unit": "days", "direction": "before"},
                    ],
                },
                "op": "ge",
                "value": 1,
            },
        },
    },
    {
        "key": "mqls",
        "name": "Marketing qualified leads",
        "kind": "person",
        "description": "Lead score 100 or more, still subscribed: exported daily to a CSV file.",
        "pql": "person.leadScore >= 100 and person.isUnsubscribed = false",
    },
    {
        "key": "target_decision_makers",
        "name": "Decision makers at engaged target accounts",
        "kind": "person",
        "description": "Directors and above whose account is in “Engaged target accounts”.",
        "pql": f'person.account.inSegment("{{engaged_accounts}}") and person.jobLevel in {SENIOR_LEVELS}',
    },
]

# The buying group setup: role conditions match the generator's job titles and levels
# (cdp/demo/words.py: C_LEVEL_TITLES, DEPARTMENT_TITLES, VP/Director prefixes).
DEMO_ROLES_TEMPLATE = "Data platform buying team"
DEMO_ROLES = [
    {"role": "Decision Maker", "weight": RoleWeight.VITAL, "required": True,
     "condition_pql": 'person.jobTitle in ["Chief Executive Officer", "Founder & CEO", "President", "Chief Technology Officer", '
                      '"Chief Information Officer", "Chief Data Officer", "Chief Marketing Officer"]\n'
                      'or (person.jobLevel = "VP" and person.department in ["IT", "Engineering", "Marketing"])'},
    {"role": "Executive Steering Committee", "weight": RoleWeight.IMPORTANT,
     "condition_pql": 'person.jobLevel in ["C-Level", "VP"] and person.department in ["Finance", "Operations", "Sales", "Legal"]'},
    {"role": "Influencer", "weight": RoleWeight.NORMAL,
     "condition_pql": 'person.jobLevel = "Director" and person.department in ["IT", "Engineering", "Marketing", "Product"]'},
    {"role": "Champion", "weight": RoleWeight.NORMAL,
     "condition_pql": 'person.jobTitle.contains("Marketing Operations") or person.jobTitle.contains("Demand Generation")'},
    {"role": "Practitioner", "weight": RoleWeight.MINOR, "required": True,
     "condition_pql": 'person.jobLevel in ["Manager", "Individual Contributor"] and person.department in ["IT", "Engineering", "Marketing"]'},
]  # fmt: skip
DEMO_STAGES_MODEL = "ABM buying stages"
DEMO_STAGES = [
    {"name": "Awareness", "kind": StageKind.ENTRY},
    {"name": "Consideration", "kind": StageKind.INTERMEDIATE},
    {"name": "Evaluation", "kind": StageKind.INTERMEDIATE},
    {"name": "Purchase", "kind": StageKind.SUCCESS},
    {"name": "No decision", "kind": StageKind.FAILURE},
]
DEMO_TRANSITIONS = [
    {"from": "Awareness", "to": "Consideration"},
    {"from": "Consideration", "to": "Evaluation"},
    {"from": "Evaluation", "to": "Purchase"},
    *({"from": stage, "to": "No decision"} for stage in ("Awareness", "Consideration", "Evaluation")),
]
DEMO_SOLUTION_INTEREST = "Customer data platform"

# $site is the organization's website (string.Template: the {{…}} tokens stay as they are).
DEMO_EMAIL = {
    "name": "ABM – Executive briefing invitation",
    "subject": '{{person.first_name | default: "Hello"}}, a data platform briefing for {{account.name}}',
    "body_html": (
        '<p>Hi {{person.first_name | default: "there"}},</p>\n'
        "<p>Teams like yours at {{account.name}} are bringing their customer data together to find "
        "the accounts that are ready to buy. Could we show you how, in a 30-minute briefing?</p>\n"
        '<p><a href="$site/demo">Book a briefing</a></p>\n'
        "<p>Best regards,<br>The marketing team</p>"
    ),
}
DEMO_LIVE_JOURNEY = "ABM – Engaged target accounts"
DEMO_DRAFT_JOURNEY = "Open pipeline – executive follow-up"
JOURNEY_DAYS = 180
# Backends that keep messages (console, memory, files) or drop them: the live journey is only
# published when the email it sends can't reach anyone.
NON_DELIVERING_EMAIL_BACKENDS = tuple(
    f"django.core.mail.backends.{name}.EmailBackend" for name in ("console", "locmem", "filebased", "dummy")
)

DEMO_DESTINATION = {"name": "Demo CSV exports", "kind": DestinationKind.CSV_EXPORT, "config": {"directory": "demo"}}
DEMO_DATAFLOW = "Marketing qualified leads → CSV"
DEMO_DATAFLOW_MAPPING = [
    {"source": "email", "target": "email"},
    {"source": "first_name", "target": "first_name"},
    {"source": "last_name", "target": "last_name"},
    {"source": "job_title", "target": "job_title"},
    {"source": "lead_score", "target": "lead_score"},
]


class DemoWorkspaceError(Exception):
    """The workspace can't be seeded here (no demo profiles yet)."""


@dataclass
class DemoWorkspace:
    """What a run did: ``created`` and ``kept`` (already there) as "<kind> “<name>”" lines."""

    created: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    skipped: bool = False


def has_workspace(sandbox) -> bool:
    """Whether the sandbox already has something a marketer made (or this seeding did)."""
    return any(
        model.objects.for_sandbox(sandbox).exists() for model in (Audience, Journey, SolutionInterest, Dataflow)
    )


def seed_demo_workspace(sandbox, *, if_empty: bool = False, report=None) -> DemoWorkspace:
    """Create the demo workspace's missing items in ``sandbox`` (see the module docstring)."""
    outcome = DemoWorkspace()
    if if_empty and has_workspace(sandbox):
        outcome.skipped = True
        return outcome
    if not Person.objects.for_sandbox(sandbox).exists():
        raise DemoWorkspaceError(
            f"Sandbox '{sandbox.name}' has no people: generate the demo profiles first (manage.py generate_demo_data)."
        )
    with transaction.atomic():
        _Seeder(sandbox, outcome, report or (lambda message: None)).run()
    return outcome


class _Seeder:
    def __init__(self, sandbox, outcome, report):
        self.sandbox, self.outcome, self.report = sandbox, outcome, report
        self.now = timezone.now()

    def run(self):
        audiences = self._audiences()
        interest = self._buying_groups(audiences["engaged_accounts"])
        email = self._email()
        self._live_journey(audiences["engaged_accounts"], interest, email)
        self._draft_journey(audiences["open_pipeline"], email)
        self._dataflow(audiences["mqls"])

    def _existing(self, what, model, name):
        """The sandbox's ``model`` row named ``name``, noted as kept; None when it must be made."""
        existing = model.objects.for_sandbox(self.sandbox).filter(name=name).first()
        if existing is not None:
            self.outcome.kept.append(f"{what} “{name}”")
        return existing

    def _made(self, what, name, item):
        self.outcome.created.append(f"{what} “{name}”")
        self.report(f"  created {what} “{name}”")
        return item

    # --------------------------------------------------------------------------- audiences
    def _audiences(self) -> dict:
        by_key, new_ids = {}, []
        for spec in DEMO_AUDIENCES:
            name = spec["name"]
            audience = self._existing("audience", Audience, name)
            if audience is None:
                definition = self._definition(spec, by_key)
                audience = self._made("audience", name, save_audience(self.sandbox, name=name, definition=definition, description=spec["description"]))
            if audience.last_full_evaluation_at is None:
                new_ids.append(audience.pk)
            by_key[spec["key"]] = audience
        # Evaluated here, in dependency order, so the pages show members and sizes at once.
        for evaluation in evaluate_in_full(self.sandbox, new_ids, now=self.now):
            self.report(f"  evaluated “{evaluation.audience.name}”: {evaluation.size:,} members ({evaluation.duration_ms:,} ms)")
        for audience in by_key.values():
            audience.refresh_from_db()
        return by_key

    @staticmethod
    def _definition(spec, by_key) -> dict:
        ids = {key: audience.pk for key, audience in by_key.items()}
        if "definition" in spec:
            return spec["definition"]
        return read_definition(pql=spec["pql"].format(**ids), kind=spec["kind"]).tree

    # ---------------------------------------------------------------------- buying groups
    def _buying_groups(self, account_audience) -> SolutionInterest:
        sandbox = self.sandbox
        ensure_default_roles(sandbox)
        template = self._existing("roles template", RolesTemplate, DEMO_ROLES_TEMPLATE)
        if template is None:
            template = save_roles_template(
                sandbox, name=DEMO_ROLES_TEMPLATE, roles=DEMO_ROLES,
                description="Who takes part in buying a data platform, matched on job title, level and department.",
            )  # fmt: skip
            template = self._made("roles template", template.name, publish_roles_template(template))
        stages = self._existing("stages model", StagesModel, DEMO_STAGES_MODEL)
        if stages is None:
            stages = save_stages_model(sandbox, name=DEMO_STAGES_MODEL, stages=DEMO_STAGES, transitions=DEMO_TRANSITIONS)
            stages = self._made("stages model", stages.name, publish_stages_model(stages))
        interest = self._existing("solution interest", SolutionInterest, DEMO_SOLUTION_INTEREST)
        if interest is None:
            interest = save_solution_interest(
                sandbox, name=DEMO_SOLUTION_INTEREST, roles_template=template, stages_model=stages,
                description="Accounts evaluating a customer data platform.",
            )  # fmt: skip
            self._made("solution interest", interest.name, interest)
        groups = f"{interest.name} × {account_audience.name}"
        if BuyingGroupBuild.objects.filter(solution_interest=interest, audience=account_audience).exists():
            self.outcome.kept.append(f"buying groups “{groups}”")  # built, or being built by the worker
            return interest
        # Built here rather than in the worker so the groups and their scores show at once; the
        # task start_build queues then finds the build succeeded and skips it.
        build = run_build(start_build(interest, account_audience))
        self._made("buying groups", groups, build)
        self.report(f"  built {build.groups_created:,} buying groups over {build.processed_accounts:,} accounts")
        return interest

    # ---------------------------------------------------------------------------- journeys
    def _email(self) -> EmailAsset:
        name = DEMO_EMAIL["name"]
        email = self._existing("email", EmailAsset, name)
        if email is None:
            # The sender is the organization, at the domain the generator gives it (account owners
            # are <name>@<slug>.example); an explicit address keeps the From header a single mailbox.
            organization = self.sandbox.organization
            sender = {"from_name": organization.name, "from_email": f"marketing@{organization.slug}.example"}
            body_html = Template(DEMO_EMAIL["body_html"]).substitute(site=f"https://www.{organization.slug}.example")
            email = self._made("email", name, save_email(self.sandbox, **{**DEMO_EMAIL, "body_html": body_html}, **sender))
        return email

    def _live_journey(self, audience, interest, email):
        """Start → split on the buying group: a full group gets the briefing email, waits three
        days and moves to Consideration; the others get an interesting moment recorded."""
        if self._existing("journey", Journey, DEMO_LIVE_JOURNEY) is not None:
            return
        full_group = {"has": True, "solution_interest_id": interest.pk, "status": "full"}
        graph = {
            "start": "n1",
            "nodes": {
                "n1": {"type": "start", "audience_id": audience.pk, "next": "n2"},
                "n2": {
                    "type": "split_accounts", "label": "Buying group",
                    "paths": [{"id": "p1", "label": "Full buying group", "condition": {"rule": None, "buying_group": full_group}, "next": "n3"}],
                    "other": {"next": "n6"},
                },
                "n3": {"type": "action", "action": "send_email", "label": "Briefing invitation", "params": {"email_id": email.pk}, "next": "n4"},
                "n4": {"type": "wait", "duration": {"amount": 3, "unit": "days"}, "next": "n5"},
                "n5": {"type": "action", "action": "update_buying_group_stage",
                       "params": {"solution_interest_id": interest.pk, "stage": "Consideration"}, "next": "n7"},
                "n6": {"type": "action", "action": "interesting_moment",
                       "params": {"type": "milestone", "description": "Entered the ABM program; buying group still forming"}, "next": "n7"},
                "n7": {"type": "end"},
            },
            "layout": {},
        }  # fmt: skip
        journey = create_journey(
            self.sandbox, name=DEMO_LIVE_JOURNEY, start_at=self.now, end_at=self.now + dt.timedelta(days=JOURNEY_DAYS),
            description="Engaged target accounts: a briefing invitation where the buying group is complete.", graph=graph,
        )  # fmt: skip
        if settings.EMAIL_BACKEND not in NON_DELIVERING_EMAIL_BACKENDS:
            # The generated people have plausible addresses at plausible domains: never mail them
            # for real unasked. The journey is checked (validated), ready to publish by hand.
            check_journey(journey)
            self._made("validated journey", journey.name, journey)
            self.report(f"  not published: {settings.EMAIL_BACKEND} delivers email; publish it in the console if you mean to")
            return
        # Enrollment and the email itself happen in the worker (journey_published → runtime).
        publish_journey(journey)
        self._made("live journey", journey.name, journey)
        self.report(f"  its email goes out through {settings.EMAIL_BACKEND} when the worker advances the accounts")

    def _draft_journey(self, audience, email):
        """A draft to open on the canvas: wait a week, then the same email."""
        if self._existing("journey", Journey, DEMO_DRAFT_JOURNEY) is not None:
            return
        graph = {
            "start": "n1",
            "nodes": {
                "n1": {"type": "start", "audience_id": audience.pk, "next": "n2"},
                "n2": {"type": "wait", "duration": {"amount": 1, "unit": "weeks"}, "next": "n3"},
                "n3": {"type": "action", "action": "send_email", "params": {"email_id": email.pk}, "next": "n4"},
                "n4": {"type": "end"},
            },
            "layout": {},
        }
        journey = create_journey(
            self.sandbox, name=DEMO_DRAFT_JOURNEY, start_at=self.now, end_at=self.now + dt.timedelta(days=JOURNEY_DAYS),
            description="A draft: follow up with accounts in the pipeline a week after they enter.", graph=graph,
        )  # fmt: skip
        self._made("draft journey", journey.name, journey)

    # --------------------------------------------------------------------------- activation
    def _dataflow(self, audience):
        spec = DEMO_DESTINATION
        destination = self._existing("destination", Destination, spec["name"])
        if destination is None:
            destination = self._made("destination", spec["name"], create_destination(self.sandbox, by=None, **spec))
        if self._existing("dataflow", Dataflow, DEMO_DATAFLOW) is not None:
            return
        dataflow = create_dataflow(
            self.sandbox, by=None, name=DEMO_DATAFLOW, destination=destination, audiences=[audience],
            mapping=DEMO_DATAFLOW_MAPPING, mode=DataflowMode.BATCH,
        )  # fmt: skip
        run_dataflow_now(dataflow)  # the first export, by the worker; then daily
        self._made("dataflow", dataflow.name, dataflow)
