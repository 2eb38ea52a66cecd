"""Fixtures for code that talks to Marketo: a running fake server and an instance pointing at it.
Loaded for the whole run from tests/conftest.py, so every test that needs them shares one server.

``fake_marketo`` is one server per test session whose state (data, knobs, request log, tokens) is
reset for every test. Each test also gets its own namespace for the client's shared state (tokens,
rate limits, daily quota), so a quota or token of one test never leaks into another.
"""

import uuid

import pytest

from connectors.marketo import MarketoClient
from connectors.marketo.ratelimit import redis_client
from tests.connectors.factories import MarketoInstanceFactory
from tests.fakes.marketo import FakeMarketo


@pytest.fixture(scope="session")
def _fake_marketo_server():
    fake = FakeMarketo().start()
    yield fake
    fake.stop()


@pytest.fixture
def fake_marketo(_fake_marketo_server, settings):
    prefix = settings.MARKETO_STATE_PREFIX = f"test:marketo:{uuid.uuid4().hex}"
    _fake_marketo_server.reset()
    yield _fake_marketo_server
    _fake_marketo_server.reset()
    if settings.REDIS_URL:  # the shared state of this test's namespace
        redis = redis_client(settings.REDIS_URL)
        keys = list(redis.scan_iter(f"{prefix}*"))
        if keys:
            redis.delete(*keys)


@pytest.fixture
def no_sleep():
    """A ``sleep`` that records the delays instead of waiting."""

    class Sleeper(list):
        def __call__(self, seconds):
            self.append(seconds)

    return Sleeper()


@pytest.fixture
def marketo_instance(organization, fake_marketo):
    """A saved MarketoInstance of ``organization`` whose URLs point at the fake (http is fine here:
    https is only enforced by ``clean()``)."""
    return MarketoInstanceFactory(
        organization=organization,
        name="Marketo (fake)",
        munchkin_id=fake_marketo.munchkin_id,
        client_id=fake_marketo.client_id,
        client_secret=fake_marketo.client_secret,
        rest_base_url=fake_marketo.rest_base_url,
        identity_base_url=fake_marketo.identity_base_url,
    )


@pytest.fixture
def marketo_client(marketo_instance, no_sleep):
    """A client for ``marketo_instance`` that never really sleeps (delays land in ``no_sleep``)."""
    return MarketoClient.for_instance(marketo_instance, sleep=no_sleep)
