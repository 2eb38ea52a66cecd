"""Errors raised by the Marketo client.

Marketo answers most failures with HTTP 200 and ``{"success": false, "errors": [{code, message}]}``;
the client turns those (and transport failures) into these exceptions.
"""

from datetime import datetime

# Transient conditions Marketo documents as "retry later" (bad gateway, service unavailable,
# rate limit, concurrency, timeout, system error).
RETRYABLE_CODES = frozenset({"502", "604", "606", "608", "615", "713"})
# Access token invalid / expired: fetch a new token and repeat the call once.
TOKEN_CODES = frozenset({"601", "602"})
QUOTA_CODE = "607"


class MarketoError(Exception):
    """A failed Marketo call. ``code`` is Marketo's error code (a string, e.g. "1004"),
    ``HTTP 503`` for an HTTP failure or ``connection`` when the server could not be reached."""

    def __init__(self, code, message: str):
        self.code = str(code)
        self.message = message
        super().__init__(f"Marketo error {self.code}: {message}")


class MarketoQuotaExceeded(MarketoError):
    """The daily API quota (607) is used up: stop now and resume after ``resets_at`` (UTC midnight)."""

    def __init__(self, message: str, *, resets_at: datetime):
        self.resets_at = resets_at
        super().__init__("607", f"{message} Calls resume after {resets_at:%Y-%m-%d %H:%M} UTC.")
