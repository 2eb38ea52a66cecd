"""Marketo Engage REST API client (see ``client.MarketoClient``)."""

from connectors.marketo.client import MarketoClient, Page
from connectors.marketo.errors import MarketoError, MarketoQuotaExceeded

__all__ = ["MarketoClient", "MarketoError", "MarketoQuotaExceeded", "Page"]
