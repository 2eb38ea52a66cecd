"""With a journey subscription, list actions act on the Marketo instance's static lists (the
real client against the fake Marketo server)."""

import pytest

from connectors.choices import PairingKind
from connectors.services.pairings import create_pairing
from journeys.models import Enrollment, SideEffect, SideEffectStatus
from journeys.services.runtime import advance_enrollment, enroll_new_members
from tests.cdp.ingest_helpers import ingest

from .conftest import account_audience, live_journey, make_people, person

pytestmark = pytest.mark.django_db


def test_list_actions_go_to_the_subscribed_marketo_instance(sandbox, fake_marketo, marketo_instance):
    create_pairing(sandbox=sandbox, kind=PairingKind.JOURNEY_SUBSCRIPTION, marketo_instance=marketo_instance)
    lead_id = fake_marketo.add_lead(email="ann@acme.com", firstName="Ann")
    list_id = fake_marketo.add_list("Journey list")
    make_people(sandbox, [
        {"email": "ann@acme.com", "account.domain": "acme.com"},
        {"email": "bob@acme.com", "account.domain": "acme.com"},  # no Marketo lead id: skipped, reported
    ])  # fmt: skip
    ingest(sandbox, "person", [{"email": "ann@acme.com", "identity.marketo_lead_id": str(lead_id)}])
    nodes = {
        "n1": {"type": "start", "next": "n2"},
        "n2": {"type": "action", "action": "add_to_list", "params": {"list_id": list_id}, "next": "n3"},
        "n3": {"type": "end"},
    }
    journey = live_journey(sandbox, account_audience(sandbox), nodes)
    for enrollment_id in enroll_new_members(journey):
        advance_enrollment(enrollment_id)
    assert fake_marketo.list_members(list_id) == [lead_id]
    statuses = dict(SideEffect.objects.filter(kind="add_to_list").values_list("person_id", "status"))
    assert statuses == {person(sandbox, "ann@acme.com").pk: SideEffectStatus.DONE, person(sandbox, "bob@acme.com").pk: SideEffectStatus.SKIPPED}
    assert Enrollment.objects.get(journey=journey).state == "finished"
