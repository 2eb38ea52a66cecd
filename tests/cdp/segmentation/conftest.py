import pytest
from django.db import transaction

from cdp.segmentation import compile_audience, parse_pql
from tests.factories import SandboxFactory

from . import dataset
from .reference import Reference

# Stored memberships of other audiences, by the dataset's keys (inSegment reads them).
MEMBERSHIPS = {"vip-people": {"ann", "dee", "jon"}, "key-accounts": {"acme", "globex"}}


class Store:
    """The dataset in a sandbox, with helpers to run an audience both ways and name the results."""

    def __init__(self, sandbox, ids, other_sandbox):
        self.sandbox, self.ids, self.other_sandbox = sandbox, ids, other_sandbox
        self.names = {("person", ids[row[0]]): row[0] for row in dataset.PEOPLE}
        self.names.update({("account", ids[row[0]]): row[0] for row in dataset.ACCOUNTS})
        self.memberships = {audience: {ids[k] for k in keys} for audience, keys in MEMBERSHIPS.items()}
        self.reference = Reference(sandbox, now=dataset.NOW, memberships=self.memberships)

    def lookup(self, audience_id):
        return self.memberships[audience_id]

    def compiled(self, audience, **kwargs) -> set:
        kwargs.setdefault("now", dataset.NOW)
        kwargs.setdefault("membership_lookup", self.lookup)
        return set(compile_audience(audience, self.sandbox, **kwargs))

    def keys(self, subject, ids) -> set:
        return {self.names[subject, pk] for pk in ids}

    def both(self, text, subject="person") -> set:
        """The members by the compiler, asserted equal to the reference's; as dataset keys."""
        audience = parse_pql(text, subject)
        compiled = self.compiled(audience)
        expected = self.reference.members(audience)
        assert self.keys(subject, compiled) == self.keys(subject, expected), text
        return self.keys(subject, compiled)


@pytest.fixture(scope="module")
def shared_store(django_db_setup, django_db_blocker):
    """The dataset, built once per module inside a transaction rolled back at its end (each
    test runs in a savepoint within it, as with TestCase.setUpTestData)."""
    with django_db_blocker.unblock():
        outer = transaction.atomic()
        outer.__enter__()
        try:
            sandbox, other_sandbox = SandboxFactory(name="segments"), SandboxFactory(name="elsewhere")
            dataset.build(other_sandbox, seed=11)  # look-alike rows that must never be counted
            yield Store(sandbox, dataset.build(sandbox), other_sandbox)
        finally:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)


@pytest.fixture
def store(shared_store, db):
    return shared_store
