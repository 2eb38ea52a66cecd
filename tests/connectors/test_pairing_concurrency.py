"""Two simultaneous pairing requests cannot both pass a rule (PostgreSQL row locks).

The first request pairs inside a transaction that stays open; the second must wait for it on a row
lock (we watch PostgreSQL report it waiting), and once the first commits, the second is refused.
Without the locks the second would not wait: it would check the rules before the first pairing is
visible and both would succeed.
"""

import threading
import time

import pytest
from django.db import connection, connections, transaction

from connectors.choices import PairingKind
from connectors.models import Pairing
from connectors.services import PairingRuleViolation, create_pairing
from tests.connectors.factories import MarketoInstanceFactory, same_instance_in
from tests.factories import OrganizationFactory, SandboxFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL (SQLite serializes writers)"),
]

LOCK_WAIT_LIMIT_S = 20


def _waiting_on_lock(backend_pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [backend_pid])
        row = cursor.fetchone()
    return row is not None and row[0] == "Lock"


def race(first_kwargs, second_kwargs):
    """Run create_pairing(first) holding its transaction open, then create_pairing(second) in another
    thread; release the first once the second is seen waiting on a lock. Returns the second's outcome."""
    first_done, release_first = threading.Event(), threading.Event()
    second_pid, outcome = {}, {}

    def first():
        try:
            with transaction.atomic():
                create_pairing(**first_kwargs)
                first_done.set()
                release_first.wait(LOCK_WAIT_LIMIT_S + 5)
        finally:
            connections.close_all()

    def second():
        try:
            with connections["default"].cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                second_pid["pid"] = cursor.fetchone()[0]
            try:
                outcome["pairing"] = create_pairing(**second_kwargs)
            except PairingRuleViolation as violation:
                outcome["violation"] = violation
        finally:
            connections.close_all()

    first_thread = threading.Thread(target=first)
    first_thread.start()
    assert first_done.wait(LOCK_WAIT_LIMIT_S)
    second_thread = threading.Thread(target=second)
    second_thread.start()

    deadline = time.monotonic() + LOCK_WAIT_LIMIT_S
    blocked = False
    while time.monotonic() < deadline and second_thread.is_alive():
        if "pid" in second_pid and _waiting_on_lock(second_pid["pid"]):
            blocked = True
            break
        time.sleep(0.05)
    release_first.set()
    first_thread.join()
    second_thread.join()
    return blocked, outcome


def test_simultaneous_sources_from_two_organizations_are_serialized():
    org_a, org_b = OrganizationFactory(), OrganizationFactory()
    prod_a, prod_b = SandboxFactory(organization=org_a), SandboxFactory(organization=org_b)
    x = MarketoInstanceFactory(organization=org_a)
    x_in_b = same_instance_in(org_b, x)

    blocked, outcome = race(
        {"sandbox": prod_a, "kind": PairingKind.SOURCE, "marketo_instance": x},
        {"sandbox": prod_b, "kind": PairingKind.SOURCE, "marketo_instance": x_in_b},
    )

    assert blocked, "the second request never waited for the first"
    assert outcome["violation"].rule == "marketo_source_one_organization"
    assert Pairing.objects.filter(kind=PairingKind.SOURCE).count() == 1


def test_simultaneous_journey_subscriptions_of_one_instance_are_serialized():
    org = OrganizationFactory()
    prod, dev = SandboxFactory(organization=org), SandboxFactory(organization=org)
    x = MarketoInstanceFactory(organization=org)

    blocked, outcome = race(
        {"sandbox": prod, "kind": PairingKind.JOURNEY_SUBSCRIPTION, "marketo_instance": x},
        {"sandbox": dev, "kind": PairingKind.JOURNEY_SUBSCRIPTION, "marketo_instance": x},
    )

    assert blocked
    assert outcome["violation"].rule == "journey_subscription_one_sandbox_per_instance"
    assert Pairing.objects.count() == 1
