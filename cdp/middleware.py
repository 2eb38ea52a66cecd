import logging
import sys

from django.conf import settings
from django.core.signals import got_request_exception
from django.db import InterfaceError, OperationalError
from django.dispatch import receiver
from django.http import HttpResponse

from cdp.api.errors import error_response
from cdp.services import accessible_sandboxes, get_sandbox_role

logger = logging.getLogger(__name__)

SESSION_KEY = "current_sandbox_id"
# Errors of a database that went away (dropped connection, restart, failover) or is briefly
# unable to serve (lock timeout, deadlock victim): retrying the request is the right answer to all.
DATABASE_UNAVAILABLE_ERRORS = (OperationalError, InterfaceError)
RETRY_AFTER_SECONDS = 5
DATABASE_UNAVAILABLE_MESSAGE = "The database is unavailable at the moment. Nothing was lost; retry in a few seconds."
# No template: base.html's context processors would query the database that just failed.
DATABASE_UNAVAILABLE_PAGE = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Quorum is briefly unavailable</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 36rem; margin: 4rem auto; padding: 0 1rem">
<h1>Quorum is briefly unavailable</h1><p>{DATABASE_UNAVAILABLE_MESSAGE}</p>
<p><a href="">Try again</a></p></body></html>
"""


def database_unavailable_response(request) -> HttpResponse:
    """503 with Retry-After: the API's error body under /api/, a short page elsewhere."""
    response = error_response(request, 503, "database_unavailable", DATABASE_UNAVAILABLE_MESSAGE, html=DATABASE_UNAVAILABLE_PAGE)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


class DatabaseUnavailableMiddleware:
    """A lost database connection answers 503 + Retry-After instead of a bare 500.

    Errors raised by a view arrive in ``process_exception``. Errors raised by an inner middleware
    (the session and user are loaded lazily, often first by CurrentSandboxMiddleware) have already
    become a 500 response when they reach us, so ``got_request_exception`` marks the request and the
    500 is replaced here. Django closes the broken connection at the end of the request, and the
    next request connects afresh (CONN_HEALTH_CHECKS also replaces one that died while idle).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if response.status_code == 500 and getattr(request, "_database_unavailable", False):
            return database_unavailable_response(request)
        return response

    def process_exception(self, request, exception):
        if isinstance(exception, DATABASE_UNAVAILABLE_ERRORS):
            logger.warning("%s %s answered 503: %s", request.method, request.path, exception, exc_info=exception)
            return database_unavailable_response(request)
        return None


@receiver(got_request_exception, dispatch_uid="cdp.middleware.note_database_unavailable")
def note_database_unavailable(sender, request=None, **kwargs):
    if request is not None and isinstance(sys.exc_info()[1], DATABASE_UNAVAILABLE_ERRORS):
        request._database_unavailable = True


class CurrentSandboxMiddleware:
    """Sets ``request.sandbox`` and ``request.sandbox_role`` for browser sessions.

    The sandbox is the one chosen in the header switcher (kept in the session), falling back to the
    user's first accessible sandbox. The API does not use this: it names the sandbox in the URL.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.sandbox = None
        request.sandbox_role = None
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and not request.path.startswith("/api/"):
            sandboxes = accessible_sandboxes(user)
            chosen = request.session.get(SESSION_KEY)
            sandbox = (sandboxes.filter(pk=chosen).first() if chosen else None) or sandboxes.first()
            if sandbox is not None:
                request.sandbox = sandbox
                request.sandbox_role = get_sandbox_role(user, sandbox)
                request.session[SESSION_KEY] = sandbox.pk
        return self.get_response(request)


class RequestSizeLimitMiddleware:
    """Refuses a request body larger than the configured limits with 413 and a message naming the
    limit, before anything reads it.

    Django enforces ``DATA_UPLOAD_MAX_MEMORY_SIZE`` only when ``request.body`` or ``request.POST``
    is read; DRF's parsers read the stream directly, so without this an API body of any size would
    be parsed into memory. File uploads (multipart) may be as large as ``INGEST_MAX_FILE_BYTES`` plus
    the form's other fields; the ingestion service then checks the file itself.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is not None and request.content_type == "multipart/form-data":
            limit += settings.INGEST_MAX_FILE_BYTES
        if limit is not None and length > limit:
            return request_too_large_response(request, length, limit)
        return self.get_response(request)


def request_too_large_response(request, length: int, limit: int) -> HttpResponse:
    message = f"The request body is {length:,} bytes; at most {limit:,} bytes are accepted."
    if request.content_type == "multipart/form-data":
        message += " Split the file into smaller ones."
    return error_response(request, 413, "request_too_large", message)
