"""Build one row of any sandbox-scoped model, with every required field filled, for tests that walk
every route and need "an object of another sandbox" without a hand-written factory per model.

Required foreign keys are built recursively in the same sandbox; organization-level rows (Marketo
instances, Salesforce orgs) in the sandbox's organization. Values only satisfy the database: the
point is to have a row whose id another sandbox must not reach, not a meaningful record.
"""

import itertools
import uuid
from datetime import timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import models
from django.utils import timezone

from cdp.models import Organization, Person, Sandbox
from connectors.models import MarketoInstance, SalesforceOrg
from tests.connectors.factories import MarketoInstanceFactory, SalesforceOrgFactory
from tests.factories import UserFactory

_counter = itertools.count(1)

# Rows whose check constraints need more than "every required field set".
_EXTRA_FIELDS = {
    "connectors.Pairing": lambda b: {"kind": "destination", "marketo_instance": b.build(MarketoInstance)},
    "connectors.SourceConnection": lambda b: {"kind": "marketo", "marketo_instance": b.build(MarketoInstance)},
    "journeys.Journey": lambda b: {"end_at": timezone.now() + timedelta(days=30)},
    "cdp.Identity": lambda b: {"namespace": "email", "value": "row@example.com", "person": b.build(Person)},
}


def _value(field):
    n = next(_counter)
    if field.choices:
        return field.choices[0][0]
    if isinstance(field, models.EmailField):
        return f"row{n}@example.com"
    if isinstance(field, models.URLField):
        return f"https://row{n}.example.com"
    if isinstance(field, (models.CharField, models.TextField)):
        max_length = field.max_length or 50
        return f"r{n}"[:max_length]
    if isinstance(field, models.BooleanField):
        return False
    if isinstance(field, (models.IntegerField, models.BigIntegerField, models.PositiveIntegerField)):
        return n
    if isinstance(field, models.DecimalField):
        return Decimal("1")
    if isinstance(field, models.FloatField):
        return 1.0
    if isinstance(field, models.DateTimeField):
        return timezone.now()
    if isinstance(field, models.DateField):
        return timezone.now().date()
    if isinstance(field, models.JSONField):
        return {}
    if isinstance(field, models.UUIDField):
        return uuid.uuid4()
    if isinstance(field, models.FileField):
        return f"security/row{n}.csv"
    return f"r{n}"


class RowBuilder:
    """Builds (and remembers) one row per model in ``sandbox``."""

    def __init__(self, sandbox: Sandbox):
        self.sandbox = sandbox
        self.rows = {}

    def build(self, model):
        if model in self.rows:
            return self.rows[model]
        if model is Sandbox:
            return self.sandbox
        if model is Organization:
            return self.sandbox.organization
        if model is get_user_model():
            row = UserFactory()
        elif model is MarketoInstance:
            row = MarketoInstanceFactory(organization=self.sandbox.organization)
        elif model is SalesforceOrg:
            row = SalesforceOrgFactory(organization=self.sandbox.organization)
        else:
            values = _EXTRA_FIELDS.get(model._meta.label, lambda b: {})(self)
            for field in model._meta.concrete_fields:
                if field.primary_key or field.name in values:
                    continue
                if isinstance(field, models.ForeignKey):
                    if not field.null:
                        values[field.name] = self.build(field.related_model)
                elif not (field.null or field.has_default() or getattr(field, "auto_now", False)
                          or getattr(field, "auto_now_add", False)):
                    values[field.name] = _value(field)
            row = model.objects.create(**values)
        self.rows[model] = row
        return row
