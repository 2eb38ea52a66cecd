import datetime as dt

import pytest
from django.utils import timezone

from cdp.models import Audience
from journeys.services.emails import save_email
from journeys.services.journeys import create_journey

ACCOUNT_RULE = {"subject": "account", "condition": {"type": "compare", "field": "industry", "op": "eq", "value": "Software"}}
PERSON_RULE = {"subject": "person", "condition": {"type": "compare", "field": "jobTitle", "op": "eq", "value": "CTO"}}
ENTERPRISE = {"type": "compare", "field": "employees", "op": "ge", "value": 1000}


@pytest.fixture
def account_audience(sandbox):
    return Audience.objects.create(sandbox=sandbox, name="Software accounts", kind="account", definition=ACCOUNT_RULE)


@pytest.fixture
def person_audience(sandbox):
    return Audience.objects.create(sandbox=sandbox, name="CTOs", kind="person", definition=PERSON_RULE)


@pytest.fixture
def email(sandbox):
    return save_email(sandbox, name="Welcome", subject="Hello {{person.first_name}}", body_html="<p>Hi {{person.first_name}} at {{account.name}}</p>")


def sample_graph(audience_id, email_id):
    """start → split accounts (enterprise | other) → email → wait 3 days → end; other → end."""
    return {
        "start": "n1",
        "nodes": {
            "n1": {"type": "start", "audience_id": audience_id, "next": "n2"},
            "n2": {
                "type": "split_accounts", "label": "Size",
                "paths": [{"id": "p1", "label": "Enterprise", "condition": {"rule": ENTERPRISE, "buying_group": None}, "next": "n3"}],
                "other": {"next": "n6"},
            },
            "n3": {"type": "action", "action": "send_email", "params": {"email_id": email_id}, "next": "n4"},
            "n4": {"type": "wait", "duration": {"amount": 3, "unit": "days"}, "next": "n5"},
            "n5": {"type": "end"},
            "n6": {"type": "end"},
        },
        "layout": {},
    }  # fmt: skip


@pytest.fixture
def make_journey(sandbox):
    def _make(name="Onboarding", graph=None, days=90, **kwargs):
        start = kwargs.pop("start_at", timezone.now())
        return create_journey(sandbox, name=name, start_at=start, end_at=kwargs.pop("end_at", start + dt.timedelta(days=days)), graph=graph, **kwargs)

    return _make


@pytest.fixture
def valid_journey(make_journey, account_audience, email):
    return make_journey(graph=sample_graph(account_audience.pk, email.pk))
