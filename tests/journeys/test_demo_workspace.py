"""The demo workspace (journeys.services.demo, manage.py seed_demo_workspace) on top of the demo
profiles the quick start generates: made through the real services, with members and scores,
idempotent, and the work it queues (enrollment, the email, the CSV export) runs in the worker."""

import csv
from io import StringIO

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django.urls import reverse

from cdp.choices import AudienceKind, EvaluationState
from cdp.models import AccountPerson, Audience, AudienceMember
from connectors.models import Dataflow, DataflowMode, Destination, DestinationKind
from journeys.choices import BuildStatus, BuyingGroupStatus, TemplateStatus
from journeys.models import (
    BuyingGroup,
    BuyingGroupBuild,
    BuyingGroupMember,
    EmailAsset,
    EmailSend,
    Enrollment,
    Journey,
    JourneyState,
    RolesTemplate,
    SolutionInterest,
    StagesModel,
)
from journeys.services import demo
from journeys.services.journeys import validate_journey

WORKSPACE_MODELS = (
    Audience, RolesTemplate, StagesModel, SolutionInterest, BuyingGroupBuild, BuyingGroup, BuyingGroupMember,
    EmailAsset, Journey, Destination, Dataflow,
)  # fmt: skip


def seed(sandbox, *options):
    out = StringIO()
    call_command(
        "seed_demo_workspace", *options, organization=sandbox.organization.slug, sandbox_name=sandbox.name, stdout=out
    )
    return out.getvalue()


def counts(sandbox) -> dict:
    return {model.__name__: model.objects.filter(sandbox=sandbox).count() for model in WORKSPACE_MODELS}


@pytest.fixture
def demo_sandbox(sandbox):
    """The quick start's profiles: generate_demo_data at its default sizes."""
    call_command("generate_demo_data", sandbox=sandbox.pk, stdout=StringIO())
    return sandbox


def test_every_audience_is_evaluated_and_has_members(demo_sandbox):
    seed(demo_sandbox)

    audiences = {a.name: a for a in Audience.objects.for_sandbox(demo_sandbox)}
    assert set(audiences) == {spec["name"] for spec in demo.DEMO_AUDIENCES}
    assert {a.kind for a in audiences.values()} == {AudienceKind.PERSON, AudienceKind.ACCOUNT}
    for audience in audiences.values():
        assert audience.state == EvaluationState.IDLE and audience.last_full_evaluation_at is not None, audience.name
        assert audience.size > 0, f"{audience.name} has no members in the generated data"
        assert AudienceMember.objects.filter(audience=audience, status="realized").count() == audience.size
    assert any(a.has_time_window for a in audiences.values())  # event windows are swept on a schedule
    # The inSegment audience read the stored membership of the one it names.
    engaged = audiences["Engaged target accounts"]
    decision_makers = audiences["Decision makers at engaged target accounts"]
    assert list(decision_makers.depends_on.all()) == [engaged]
    engaged_people = AccountPerson.objects.filter(account_id__in=engaged.members.values("member_id")).values("person_id")
    assert not decision_makers.members.exclude(member_id__in=engaged_people).exists()


def test_buying_groups_are_built_with_members_and_scores(demo_sandbox):
    seed(demo_sandbox)

    template = RolesTemplate.objects.get(sandbox=demo_sandbox)
    assert template.status == TemplateStatus.LIVE
    assert all(role.condition for role in template.roles.all())
    interest = SolutionInterest.objects.get(sandbox=demo_sandbox)
    assert interest.stages_model.status == "published"
    build = BuyingGroupBuild.objects.get(solution_interest=interest)
    assert build.status == BuildStatus.SUCCEEDED and build.audience.kind == AudienceKind.ACCOUNT

    groups = BuyingGroup.objects.filter(solution_interest=interest)
    assert groups.count() == build.audience.size
    assert not groups.filter(stage__isnull=True).exists()  # every group starts in the entry stage
    assert not groups.filter(completeness_computed_at__isnull=True).exists()
    assert not groups.filter(engagement_computed_at__isnull=True).exists()
    assert groups.filter(engagement_score__gt=0).exists()
    # Both sides of the live journey's split have accounts: some groups are full, some aren't.
    assert groups.filter(status=BuyingGroupStatus.FULL).exists() and groups.filter(status=BuyingGroupStatus.IN_PROGRESS).exists()
    # Each template role's condition matches generated job titles somewhere.
    filled = set(BuyingGroupMember.objects.filter(group__in=groups).values_list("role_id", flat=True))
    assert filled == set(template.roles.values_list("role_id", flat=True))


def test_journeys_and_dataflow_are_made_without_sending_anything(demo_sandbox):
    output = seed(demo_sandbox)

    live = Journey.objects.get(sandbox=demo_sandbox, name=demo.DEMO_LIVE_JOURNEY)
    assert live.state == JourneyState.LIVE and live.current_version is not None
    assert live.audience.name == "Engaged target accounts"
    node_types = {node["type"] for node in live.current_version.graph["nodes"].values()}
    assert {"split_accounts", "action", "wait"} <= node_types
    assert live.current_version.plan.campaigns.exists()  # converted to its campaign plan
    draft = Journey.objects.get(sandbox=demo_sandbox, name=demo.DEMO_DRAFT_JOURNEY)
    assert draft.state == JourneyState.DRAFT and validate_journey(draft) == []

    destination = Destination.objects.get(sandbox=demo_sandbox)
    assert destination.kind == DestinationKind.CSV_EXPORT
    dataflow = Dataflow.objects.get(sandbox=demo_sandbox)
    assert dataflow.destination == destination and dataflow.mode == DataflowMode.BATCH
    assert [a.name for a in dataflow.audiences.all()] == ["Marketing qualified leads"]

    # Enrolling and sending is the worker's job: nothing went out while seeding.
    assert not Enrollment.objects.filter(journey=live).exists()
    assert mail.outbox == [] and not EmailSend.objects.exists()
    assert "locmem.EmailBackend" in output  # says which backend the journey's email will use


def test_running_again_creates_nothing_twice(demo_sandbox):
    first = seed(demo_sandbox)
    made = counts(demo_sandbox)
    assert "16 items created" in first

    again = seed(demo_sandbox)
    assert counts(demo_sandbox) == made
    assert "nothing created" in again

    # A deleted item comes back alone; with --if-empty a sandbox with a workspace is left as it is.
    Dataflow.objects.filter(sandbox=demo_sandbox).delete()
    assert "no demo workspace added" in seed(demo_sandbox, "--if-empty")
    assert not Dataflow.objects.filter(sandbox=demo_sandbox).exists()
    repaired = seed(demo_sandbox)
    assert "1 items created" in repaired and counts(demo_sandbox) == made


def test_if_empty_seeds_a_sandbox_without_a_workspace(demo_sandbox):
    assert "demo workspace ready" in seed(demo_sandbox, "--if-empty")
    assert Journey.objects.filter(sandbox=demo_sandbox).count() == 2


def test_refuses_a_sandbox_without_profiles(sandbox):
    with pytest.raises(CommandError, match="generate_demo_data"):
        seed(sandbox)
    assert counts(sandbox) == dict.fromkeys(counts(sandbox), 0)


def test_pages_show_the_workspace(demo_sandbox, admin_user, login):
    seed(demo_sandbox)
    client = login(admin_user)
    interest = SolutionInterest.objects.get(sandbox=demo_sandbox)
    pages = {
        reverse("cdp:audiences"): [spec["name"] for spec in demo.DEMO_AUDIENCES],
        reverse("journeys:buying-groups"): [demo.DEMO_SOLUTION_INTEREST],
        # With a filter: unfiltered, the list shows none (GroupListView, reported separately).
        f'{reverse("journeys:buying-group-list")}?solution_interest={interest.pk}': list(
            BuyingGroup.objects.filter(solution_interest=interest).order_by("account__name").values_list("account__name", flat=True)[:3]
        ),
        reverse("journeys:journeys"): [demo.DEMO_LIVE_JOURNEY, demo.DEMO_DRAFT_JOURNEY],
        reverse("connectors:destinations"): [demo.DEMO_DESTINATION["name"], demo.DEMO_DATAFLOW],
    }
    for url, names in pages.items():
        response = client.get(url)
        assert response.status_code == 200, url
        page = response.content.decode()
        for name in names:
            assert name.replace("&", "&amp;") in page, f"{name} is not on {url}"


def test_the_worker_enrolls_sends_the_email_and_exports(transactional_db, sandbox, settings, tmp_path):
    """Real commits: what seeding queues runs as the worker would (eager tasks in the tests)."""
    settings.QUORUM_EXPORT_DIR = str(tmp_path)
    call_command("generate_demo_data", sandbox=sandbox.pk, stdout=StringIO())
    seed(sandbox)

    live = Journey.objects.get(sandbox=sandbox, name=demo.DEMO_LIVE_JOURNEY)
    assert Enrollment.objects.filter(journey=live).count() == live.audience.size
    full_accounts = set(
        BuyingGroup.objects.filter(sandbox=sandbox, status=BuyingGroupStatus.FULL).values_list("account_id", flat=True)
    )
    sent_to = set(EmailSend.objects.filter(sandbox=sandbox).values_list("person_id", flat=True))
    reachable = set(
        AccountPerson.objects.filter(account_id__in=full_accounts, is_active=True, person__is_unsubscribed=False)
        .exclude(person__email="")
        .values_list("person_id", flat=True)
    )
    assert sent_to and sent_to <= reachable  # only people of accounts on the "full buying group" path
    assert len(mail.outbox) == len(sent_to)
    message = mail.outbox[0]
    assert message.from_email == f"{sandbox.organization.name} <marketing@{sandbox.organization.slug}.example>"
    assert "{{" not in message.subject and "{{" not in message.body

    files = list((tmp_path / "demo").glob("*.csv"))
    assert len(files) == 1
    with files[0].open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    mqls = Audience.objects.get(sandbox=sandbox, name="Marketing qualified leads")
    assert len(rows) == mqls.size and {"email", "lead_score"} <= set(rows[0])


def test_with_a_delivering_email_backend_the_journey_waits_to_be_published(demo_sandbox, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    output = seed(demo_sandbox)

    journey = Journey.objects.get(sandbox=demo_sandbox, name=demo.DEMO_LIVE_JOURNEY)
    assert journey.state == JourneyState.VALIDATED and journey.current_version is None
    assert "not published" in output and "smtp.EmailBackend" in output
