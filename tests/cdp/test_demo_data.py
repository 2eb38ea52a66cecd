"""The demo-data generator writes rows directly; these tests check that what it writes is a
consistent sandbox that the rest of Quorum (the ingest path included) treats as ingested data."""

import datetime as dt
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Count, F, Q
from django.utils import timezone

from cdp.choices import EventType, IdentityNamespace
from cdp.models import (
    Account,
    AccountPerson,
    Campaign,
    CampaignMember,
    ExperienceEvent,
    Identity,
    ListMember,
    MarketingList,
    Opportunity,
    OpportunityPerson,
    Person,
)
from cdp.schema import ACCOUNT_FIELDS, PERSON_FIELDS
from cdp.services.identities import validate_identity
from cdp.services.ingestion import ingest_stream
from tests.factories import OrganizationFactory, SandboxFactory

TINY = {"accounts": 6, "people": 45, "events": 400, "opportunities": 5, "lists": 3, "campaigns": 4}


def generate(sandbox, **options):
    out = StringIO()
    call_command("generate_demo_data", sandbox=sandbox.pk, stdout=out, **{**TINY, **options})
    return out.getvalue()


@pytest.fixture
def demo(sandbox):
    generate(sandbox)
    return sandbox


def test_counts_match_the_arguments(demo):
    assert Account.objects.for_sandbox(demo).count() == TINY["accounts"]
    assert Person.objects.for_sandbox(demo).count() == TINY["people"]
    assert ExperienceEvent.objects.for_sandbox(demo).count() == TINY["events"]
    assert Opportunity.objects.for_sandbox(demo).count() == TINY["opportunities"]
    assert MarketingList.objects.for_sandbox(demo).count() == TINY["lists"]
    assert Campaign.objects.for_sandbox(demo).count() == TINY["campaigns"]
    assert AccountPerson.objects.for_sandbox(demo).count() == TINY["people"]


def test_every_person_has_valid_email_ecid_and_marketo_identities(demo):
    people = Person.objects.for_sandbox(demo)
    for namespace in (IdentityNamespace.EMAIL, IdentityNamespace.ECID, IdentityNamespace.MARKETO_LEAD_ID):
        assert people.filter(identities__namespace=namespace).distinct().count() == TINY["people"], namespace
    emails = dict(Identity.objects.for_sandbox(demo).filter(namespace="email").values_list("person_id", "value"))
    assert emails == dict(people.values_list("pk", "email"))
    for namespace, value in Identity.objects.for_sandbox(demo).values_list("namespace", "value"):
        assert validate_identity(namespace, value) == value  # what the ingest path would accept, unchanged
    assert all(len(value) == 38 for value in Identity.objects.for_sandbox(demo).filter(namespace="ecid").values_list("value", flat=True))


def test_every_account_has_domain_and_crm_identities(demo):
    accounts = Account.objects.for_sandbox(demo)
    for namespace in (IdentityNamespace.DOMAIN, IdentityNamespace.CRM_ACCOUNT_ID):
        assert accounts.filter(identities__namespace=namespace).distinct().count() == TINY["accounts"], namespace
    domains = dict(Identity.objects.for_sandbox(demo).filter(namespace="domain").values_list("account_id", "value"))
    assert domains == dict(accounts.values_list("pk", "domain"))
    for owner in accounts.values_list("owner_email", flat=True):
        assert ACCOUNT_FIELDS["owner_email"].read(owner) == owner  # as the ingest path reads it


def test_standard_fields_are_values_the_ingest_path_would_store(demo):
    """Each field, read by its FieldSpec as an ingested value is, comes back unchanged."""
    for model, specs in ((Person, PERSON_FIELDS), (Account, ACCOUNT_FIELDS)):
        for row in model.objects.for_sandbox(demo).values(*specs):
            for name, value in row.items():
                if value not in (None, ""):
                    assert specs[name].read(value) == value, (model.__name__, name, value)


def test_people_work_at_one_account_of_their_email_domain(demo):
    relations = AccountPerson.objects.for_sandbox(demo).select_related("account", "person")
    assert Person.objects.for_sandbox(demo).annotate(n=Count("account_relations")).exclude(n=1).count() == 0
    for relation in relations:
        assert relation.is_primary
        assert relation.person.email.endswith("@" + relation.account.domain)


def test_every_reference_points_at_a_row_of_the_same_sandbox(demo):
    outside = ~Q(sandbox=demo)
    checks = [
        AccountPerson.objects.for_sandbox(demo).filter(Q(account__sandbox=F("sandbox")) & Q(person__sandbox=F("sandbox"))),
        OpportunityPerson.objects.for_sandbox(demo).filter(opportunity__sandbox=F("sandbox"), person__sandbox=F("sandbox")),
        ListMember.objects.for_sandbox(demo).filter(marketing_list__sandbox=F("sandbox"), person__sandbox=F("sandbox")),
        CampaignMember.objects.for_sandbox(demo).filter(campaign__sandbox=F("sandbox"), person__sandbox=F("sandbox")),
        ExperienceEvent.objects.for_sandbox(demo).filter(person__sandbox=F("sandbox"), account__sandbox=F("sandbox")),
        Opportunity.objects.for_sandbox(demo).filter(account__sandbox=F("sandbox")),
    ]
    totals = [
        AccountPerson.objects.for_sandbox(demo).count(),
        OpportunityPerson.objects.for_sandbox(demo).count(),
        ListMember.objects.for_sandbox(demo).count(),
        CampaignMember.objects.for_sandbox(demo).count(),
        TINY["events"],
        TINY["opportunities"],
    ]
    assert [query.count() for query in checks] == totals
    assert not Account.objects.for_sandbox(demo).filter(parent__isnull=False).exclude(parent__sandbox=demo).exists()
    assert not Identity.objects.filter(Q(person__sandbox=demo) | Q(account__sandbox=demo)).filter(outside).exists()
    assert OpportunityPerson.objects.for_sandbox(demo).exists()


def test_opportunities_are_coherent(demo):
    for opportunity in Opportunity.objects.for_sandbox(demo).prefetch_related("person_relations__person__account_relations"):
        assert opportunity.is_won <= opportunity.is_closed
        assert opportunity.stage in ("Closed Won", "Closed Lost") if opportunity.is_closed else True
        roles = list(opportunity.person_relations.all())
        assert sum(role.is_primary for role in roles) == (1 if roles else 0)
        for role in roles:  # contact roles are people of the opportunity's account
            assert opportunity.account_id in [r.account_id for r in role.person.account_relations.all()]


def test_events_are_typed_and_within_the_last_90_days(demo):
    now = timezone.now()
    events = ExperienceEvent.objects.for_sandbox(demo)
    assert not events.filter(occurred_at__gt=now).exists()
    assert not events.filter(occurred_at__lt=now - dt.timedelta(days=91)).exists()
    assert set(events.values_list("type", flat=True)) <= set(EventType.values)
    assert events.filter(type=EventType.EMAIL_SENT).exists() and events.filter(type=EventType.WEB_VISIT).exists()
    assert not events.filter(person__isnull=True).exists()


def test_refuses_a_sandbox_with_people_unless_append(demo):
    with pytest.raises(CommandError, match="already has 45 people"):
        generate(demo)
    assert Person.objects.for_sandbox(demo).count() == TINY["people"]

    generate(demo, append=True)
    assert Person.objects.for_sandbox(demo).count() == 2 * TINY["people"]
    assert Account.objects.for_sandbox(demo).count() == 2 * TINY["accounts"]
    # The second data set is disjoint: every person still has exactly one identity of each kind.
    per_person = Identity.objects.for_sandbox(demo).filter(person__isnull=False).values("person_id").annotate(n=Count("id"))
    assert {row["n"] for row in per_person} == {3}


def test_if_empty_skips_a_populated_sandbox_successfully(demo):
    out = generate(demo, if_empty=True)
    assert "already has people" in out
    assert Person.objects.for_sandbox(demo).count() == TINY["people"]


def test_queues_a_full_evaluation_of_existing_audiences(sandbox, django_capture_on_commit_callbacks):
    from cdp.models import Audience, AudienceMember
    from cdp.services.audiences import save_audience

    with django_capture_on_commit_callbacks(execute=True):
        audience = save_audience(
            sandbox,
            name="Executives",
            definition={"subject": "person", "condition": {"type": "compare", "field": "jobLevel", "op": "eq", "value": "C-Level"}},
        )
    assert not AudienceMember.objects.filter(audience=audience).exists()
    with django_capture_on_commit_callbacks(execute=True):
        generate(sandbox)
    executives = set(Person.objects.for_sandbox(sandbox).filter(job_level="C-Level").values_list("pk", flat=True))
    assert executives  # 45 people: a few executives at least (small companies have more of them)
    assert set(AudienceMember.objects.filter(audience=audience).values_list("member_id", flat=True)) == executives
    assert Audience.objects.get(pk=audience.pk).last_full_evaluation_at is not None


def test_leaves_other_sandboxes_alone(demo, other_sandbox):
    assert not Person.objects.for_sandbox(other_sandbox).exists()
    generate(other_sandbox)  # the same seed in another sandbox: allowed, identities are per sandbox
    assert Person.objects.for_sandbox(other_sandbox).count() == TINY["people"]
    assert sorted(Account.objects.for_sandbox(other_sandbox).values_list("name", flat=True)) == sorted(
        Account.objects.for_sandbox(demo).values_list("name", flat=True)
    )


def test_the_ingest_path_resolves_demo_people_by_their_identities(demo):
    person = Person.objects.for_sandbox(demo).order_by("pk").first()
    ecid = person.identities.get(namespace="ecid").value
    body, status = ingest_stream(demo, "person", [{"identity": {"ecid": ecid}, "job_title": "Chief Data Officer"}])
    assert status == 200 and body["created"] == 0
    person.refresh_from_db()
    assert person.job_title == "Chief Data Officer"
    assert Person.objects.for_sandbox(demo).count() == TINY["people"]


def test_finds_the_sandbox_by_organization_and_name(db):
    organization = OrganizationFactory(slug="acme")
    sandbox = SandboxFactory(organization=organization, name="dev")
    call_command("generate_demo_data", stdout=StringIO(), **TINY)  # defaults: acme / dev
    assert Person.objects.for_sandbox(sandbox).count() == TINY["people"]
    with pytest.raises(CommandError, match="has no sandbox named 'nope'"):
        call_command("generate_demo_data", organization="acme", sandbox_name="nope", stdout=StringIO())
    with pytest.raises(CommandError, match="no sandbox with id"):
        call_command("generate_demo_data", sandbox=987654, stdout=StringIO())


def test_rejects_impossible_sizes(sandbox):
    with pytest.raises(CommandError, match="need people"):
        call_command("generate_demo_data", sandbox=sandbox.pk, accounts=3, people=0, events=10, stdout=StringIO())
    with pytest.raises(CommandError, match="must be 0 or more"):
        call_command("generate_demo_data", sandbox=sandbox.pk, accounts=-1, stdout=StringIO())
    assert not Account.objects.for_sandbox(sandbox).exists()
