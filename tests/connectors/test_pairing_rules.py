"""Every cell of the pairing rules table (PRODUCT.md, Tenancy), through the one service."""

import pytest
from django.db import IntegrityError, transaction

from connectors.choices import PairingKind
from connectors.models import MarketoInstance, Pairing
from connectors.services import PairingRuleViolation, create_pairing, delete_instance, delete_pairing, validate_pairing
from tests.connectors.factories import MarketoInstanceFactory, SalesforceOrgFactory, same_instance_in
from tests.factories import OrganizationFactory, SandboxFactory

SOURCE, DESTINATION, JOURNEY = PairingKind.SOURCE, PairingKind.DESTINATION, PairingKind.JOURNEY_SUBSCRIPTION


@pytest.fixture
def org_a(organization):
    return organization


@pytest.fixture
def prod_a(sandbox):
    return sandbox


@pytest.fixture
def dev_a(org_a):
    return SandboxFactory(organization=org_a, name="dev", title="Development")


@pytest.fixture
def org_b(db):
    return OrganizationFactory(name="Globex Secret Division")


@pytest.fixture
def prod_b(org_b):
    return SandboxFactory(organization=org_b, name="prod", title="Production")


def pair(sandbox, kind, instance):
    if isinstance(instance, MarketoInstance):
        return create_pairing(sandbox=sandbox, kind=kind, marketo_instance=instance)
    return create_pairing(sandbox=sandbox, kind=kind, salesforce_org=instance)


def refused(sandbox, kind, instance) -> PairingRuleViolation:
    before = Pairing.objects.count()
    with pytest.raises(PairingRuleViolation) as caught:
        pair(sandbox, kind, instance)
    assert Pairing.objects.count() == before, "a refused pairing must not be written"
    return caught.value


# --- Marketo as a source ----------------------------------------------------------------------


def test_source_many_marketo_instances_to_one_organization_is_allowed(org_a, prod_a, dev_a):
    x, y, z = (MarketoInstanceFactory(organization=org_a) for _ in range(3))
    pair(prod_a, SOURCE, x)
    pair(prod_a, SOURCE, y)
    pair(dev_a, SOURCE, z)
    assert Pairing.objects.filter(kind=SOURCE, sandbox__organization=org_a).count() == 3


def test_source_one_marketo_instance_to_several_organizations_is_refused(org_a, prod_a, org_b, prod_b):
    x = MarketoInstanceFactory(organization=org_a)
    x_in_b = same_instance_in(org_b, x)  # same Munchkin ID, registered separately by B
    pair(prod_a, SOURCE, x)

    violation = refused(prod_b, SOURCE, x_in_b)

    assert violation.rule == "marketo_source_one_organization"
    assert x.munchkin_id in violation.message
    assert "one organization only" in violation.message  # the message names the rule
    assert org_a.name not in violation.message and prod_a.title not in violation.message


def test_source_one_marketo_instance_to_several_organizations_is_refused_whichever_goes_first(
    org_a, prod_a, dev_a, org_b, prod_b
):
    x = MarketoInstanceFactory(organization=org_a)
    pair(prod_b, SOURCE, same_instance_in(org_b, x))
    assert refused(dev_a, SOURCE, x).rule == "marketo_source_one_organization"


def test_source_many_marketo_instances_to_many_organizations_is_refused(org_a, prod_a, org_b, prod_b):
    x, y = MarketoInstanceFactory(organization=org_a), MarketoInstanceFactory(organization=org_a)
    pair(prod_a, SOURCE, x)
    pair(prod_a, SOURCE, y)
    x_in_b, y_in_b = same_instance_in(org_b, x), same_instance_in(org_b, y)

    assert refused(prod_b, SOURCE, x_in_b).rule == "marketo_source_one_organization"
    assert refused(prod_b, SOURCE, y_in_b).rule == "marketo_source_one_organization"
    # B may still source Marketo instances of its own: only the many-to-many mapping is refused.
    pair(prod_b, SOURCE, MarketoInstanceFactory(organization=org_b))


def test_source_one_marketo_instance_to_one_organization_with_several_sandboxes_is_allowed(org_a, prod_a, dev_a):
    x = MarketoInstanceFactory(organization=org_a)
    staging = SandboxFactory(organization=org_a, name="staging")
    for sandbox in (prod_a, dev_a, staging):
        pair(sandbox, SOURCE, x)
    assert Pairing.objects.filter(kind=SOURCE, marketo_instance=x).count() == 3


def test_source_rule_ignores_destination_and_journey_pairings_elsewhere(org_a, prod_a, org_b, prod_b):
    x = MarketoInstanceFactory(organization=org_a)
    x_in_b = same_instance_in(org_b, x)
    pair(prod_b, DESTINATION, x_in_b)
    pair(prod_b, JOURNEY, x_in_b)
    pair(prod_a, SOURCE, x)  # allowed: B only uses the instance as a destination and for journeys


# --- Marketo as a destination -----------------------------------------------------------------


def test_destination_one_organization_to_many_marketo_instances_is_allowed(org_a, prod_a, dev_a):
    instances = [MarketoInstanceFactory(organization=org_a) for _ in range(3)]
    for instance in instances:
        pair(prod_a, DESTINATION, instance)
    pair(dev_a, DESTINATION, instances[0])
    assert Pairing.objects.filter(kind=DESTINATION).count() == 4


def test_destination_many_organizations_to_one_marketo_instance_is_allowed(org_a, prod_a, org_b, prod_b):
    x = MarketoInstanceFactory(organization=org_a)
    org_c = OrganizationFactory()
    prod_c = SandboxFactory(organization=org_c)
    pair(prod_a, SOURCE, x)  # even while it is A's source
    pair(prod_a, DESTINATION, x)
    pair(prod_b, DESTINATION, same_instance_in(org_b, x))
    pair(prod_c, DESTINATION, same_instance_in(org_c, x))
    assert Pairing.objects.filter(kind=DESTINATION, marketo_instance__munchkin_id=x.munchkin_id).count() == 3


# --- Journey subscription ---------------------------------------------------------------------


def test_journey_subscription_one_sandbox_to_one_marketo_instance_is_allowed(org_a, prod_a, dev_a):
    x, y = MarketoInstanceFactory(organization=org_a), MarketoInstanceFactory(organization=org_a)
    pair(prod_a, JOURNEY, x)
    pair(dev_a, JOURNEY, y)
    assert Pairing.objects.filter(kind=JOURNEY).count() == 2


def test_journey_subscription_a_second_instance_for_the_same_sandbox_is_refused(org_a, prod_a):
    x, y = MarketoInstanceFactory(organization=org_a), MarketoInstanceFactory(organization=org_a)
    pair(prod_a, JOURNEY, x)
    violation = refused(prod_a, JOURNEY, y)
    assert violation.rule == "journey_subscription_one_per_sandbox"
    assert "journeys of one Marketo instance only" in violation.message


def test_journey_subscription_an_instance_backing_another_sandbox_is_refused(org_a, prod_a, dev_a):
    x = MarketoInstanceFactory(organization=org_a)
    pair(prod_a, JOURNEY, x)
    violation = refused(dev_a, JOURNEY, x)
    assert violation.rule == "journey_subscription_one_sandbox_per_instance"
    assert "journeys of one sandbox only" in violation.message


def test_journey_subscription_an_instance_backing_a_sandbox_of_another_organization_is_refused(
    org_a, prod_a, org_b, prod_b
):
    x = MarketoInstanceFactory(organization=org_a)
    pair(prod_a, JOURNEY, x)
    violation = refused(prod_b, JOURNEY, same_instance_in(org_b, x))
    assert violation.rule == "journey_subscription_one_sandbox_per_instance"
    assert org_a.name not in violation.message and prod_a.title not in violation.message


def test_journey_subscription_is_free_again_after_unpairing(org_a, prod_a, dev_a):
    x, y = MarketoInstanceFactory(organization=org_a), MarketoInstanceFactory(organization=org_a)
    subscription = pair(prod_a, JOURNEY, x)
    delete_pairing(subscription)
    pair(prod_a, JOURNEY, y)  # the sandbox may subscribe to another instance
    pair(dev_a, JOURNEY, x)  # and the instance may back another sandbox


def test_journey_subscription_and_source_of_the_same_instance_coexist(org_a, prod_a):
    x = MarketoInstanceFactory(organization=org_a)
    pair(prod_a, SOURCE, x)
    pair(prod_a, DESTINATION, x)
    pair(prod_a, JOURNEY, x)
    assert Pairing.objects.for_sandbox(prod_a).count() == 3


# --- Rules every pairing obeys ----------------------------------------------------------------


def test_an_instance_of_another_organization_is_refused(prod_a, org_b):
    foreign = MarketoInstanceFactory(organization=org_b, name="Globex Marketo")
    violation = refused(prod_a, DESTINATION, foreign)
    assert violation.rule == "instance_same_organization"
    assert org_b.name not in violation.message and foreign.name not in violation.message

    foreign_sf = SalesforceOrgFactory(organization=org_b)
    assert refused(prod_a, SOURCE, foreign_sf).rule == "instance_same_organization"


def test_journey_subscription_with_a_salesforce_org_is_refused(org_a, prod_a):
    violation = refused(prod_a, JOURNEY, SalesforceOrgFactory(organization=org_a))
    assert violation.rule == "journey_subscription_marketo_only"


def test_a_duplicate_pairing_is_refused(org_a, prod_a):
    x = MarketoInstanceFactory(organization=org_a)
    sf = SalesforceOrgFactory(organization=org_a)
    pair(prod_a, SOURCE, x)
    pair(prod_a, SOURCE, sf)
    assert refused(prod_a, SOURCE, x).rule == "pairing_duplicate"
    assert refused(prod_a, SOURCE, sf).rule == "pairing_duplicate"


def test_salesforce_orgs_pair_as_source_and_destination(org_a, prod_a, dev_a):
    sf = SalesforceOrgFactory(organization=org_a)
    pair(prod_a, SOURCE, sf)
    pair(dev_a, SOURCE, sf)
    pair(prod_a, DESTINATION, sf)
    assert sf.pairings.count() == 3


def test_a_pairing_names_exactly_one_instance(org_a, prod_a):
    x = MarketoInstanceFactory(organization=org_a)
    sf = SalesforceOrgFactory(organization=org_a)
    with pytest.raises(PairingRuleViolation) as neither:
        create_pairing(sandbox=prod_a, kind=SOURCE)
    with pytest.raises(PairingRuleViolation) as both:
        create_pairing(sandbox=prod_a, kind=SOURCE, marketo_instance=x, salesforce_org=sf)
    assert neither.value.rule == both.value.rule == "pairing_one_instance"
    assert not Pairing.objects.exists()


def test_validate_pairing_checks_without_writing(org_a, prod_a, org_b, prod_b):
    x = MarketoInstanceFactory(organization=org_a)
    validate_pairing(sandbox=prod_a, kind=SOURCE, marketo_instance=x)
    assert not Pairing.objects.exists()
    pair(prod_a, SOURCE, x)
    with pytest.raises(PairingRuleViolation):
        validate_pairing(sandbox=prod_b, kind=SOURCE, marketo_instance=same_instance_in(org_b, x))


def test_munchkin_ids_match_whatever_case_they_were_typed_in(org_a, prod_a, org_b, prod_b):
    x = MarketoInstanceFactory(organization=org_a, munchkin_id="123-abc-456")
    pair(prod_a, SOURCE, x)
    x_in_b = MarketoInstanceFactory(organization=org_b, munchkin_id=" 123-ABC-456 ")
    assert refused(prod_b, SOURCE, x_in_b).rule == "marketo_source_one_organization"


# --- The database backs the rules it can express ----------------------------------------------


def test_database_refuses_a_pairing_with_two_instances_or_none(org_a, prod_a):
    x = MarketoInstanceFactory(organization=org_a)
    sf = SalesforceOrgFactory(organization=org_a)
    with pytest.raises(IntegrityError), transaction.atomic():
        Pairing.objects.create(sandbox=prod_a, kind=SOURCE, marketo_instance=x, salesforce_org=sf)
    with pytest.raises(IntegrityError), transaction.atomic():
        Pairing.objects.create(sandbox=prod_a, kind=SOURCE)


def test_database_refuses_a_second_journey_subscription_for_a_sandbox(org_a, prod_a):
    x, y = MarketoInstanceFactory(organization=org_a), MarketoInstanceFactory(organization=org_a)
    Pairing.objects.create(sandbox=prod_a, kind=JOURNEY, marketo_instance=x)
    with pytest.raises(IntegrityError), transaction.atomic():
        Pairing.objects.create(sandbox=prod_a, kind=JOURNEY, marketo_instance=y)


# --- Instances under pairings -------------------------------------------------------------------


def test_a_paired_instance_cannot_be_deleted_until_unpaired(org_a, prod_a):
    x = MarketoInstanceFactory(organization=org_a)
    pairing = pair(prod_a, SOURCE, x)
    with pytest.raises(PairingRuleViolation) as caught:
        delete_instance(x)
    assert caught.value.rule == "instance_in_use"
    assert MarketoInstance.objects.filter(pk=x.pk).exists()

    delete_pairing(pairing)
    delete_instance(x)
    assert not MarketoInstance.objects.filter(pk=x.pk).exists()


def test_deleting_an_organization_takes_its_instances_and_pairings_along(org_a, prod_a, org_b, prod_b):
    x = MarketoInstanceFactory(organization=org_a)
    sf = SalesforceOrgFactory(organization=org_a)
    pair(prod_a, SOURCE, x)
    pair(prod_a, SOURCE, sf)
    kept = pair(prod_b, DESTINATION, same_instance_in(org_b, x))
    org_a.delete()
    assert list(Pairing.objects.all()) == [kept]


def test_resetting_a_sandbox_keeps_its_pairings(org_a, prod_a):
    from cdp.services import reset_sandbox

    pairing = pair(prod_a, SOURCE, MarketoInstanceFactory(organization=org_a))
    reset_sandbox(prod_a, confirmation=prod_a.name)
    assert Pairing.objects.filter(pk=pairing.pk).exists()


def test_the_munchkin_id_of_a_paired_instance_cannot_change(org_a, prod_a):
    from django.core.exceptions import ValidationError

    x = MarketoInstanceFactory(organization=org_a, munchkin_id="111-AAA-111")
    x.munchkin_id = "222-BBB-222"
    x.full_clean()  # unpaired: fine
    x.munchkin_id = "111-AAA-111"
    pair(prod_a, SOURCE, x)
    x.munchkin_id = "222-bbb-222"
    with pytest.raises(ValidationError) as caught:
        x.full_clean()
    assert "unpair" in caught.value.message_dict["munchkin_id"][0]
