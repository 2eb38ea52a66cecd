"""Salesforce: the REST / Bulk API 2.0 client and the source that syncs an org into a sandbox."""

from .client import (
    SalesforceAuthError,
    SalesforceBulkJobFailed,
    SalesforceClient,
    SalesforceError,
    SalesforceLimitExceeded,
)

__all__ = [
    "SalesforceAuthError",
    "SalesforceBulkJobFailed",
    "SalesforceClient",
    "SalesforceError",
    "SalesforceLimitExceeded",
]
