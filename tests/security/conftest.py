# The fake Marketo server of the connector tests, for the log checks of test_secrets.py.
from tests.connectors.marketo.conftest import _fake_marketo_server, fake_marketo  # noqa: F401
