"""One error body for every API failure:

    {"error": {"code": "validation_error", "message": "…", "fields": {"name": ["…"]}}}

``fields`` appears for validation errors; ``rule`` names a business rule that refused the request.
"""

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpResponse, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response

from cdp.exceptions import RuleViolation

__all__ = ["RuleViolation", "api_exception_handler", "error_response"]


def error_response(request, status: int, code: str, message: str, *, html=None) -> HttpResponse:
    """A refusal answered outside DRF (middleware, Django's error handlers): the API's error body
    under /api/, else ``html`` (a page) or the message as plain text."""
    if request.path.startswith("/api/"):
        return JsonResponse({"error": {"code": code, "message": message}}, status=status)
    if html is not None:
        return HttpResponse(html, status=status, content_type="text/html; charset=utf-8")
    return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")


def _first_message(detail):
    if isinstance(detail, list) and detail:
        return _first_message(detail[0])
    if isinstance(detail, dict) and detail:
        key, value = next(iter(detail.items()))
        message = _first_message(value)
        return message if key == "non_field_errors" else f"{key}: {message}"
    return str(detail)


def api_exception_handler(exc, context):
    # Imported here: rest_framework.views loads the API settings, which import our authentication.
    from rest_framework.views import exception_handler

    if isinstance(exc, RuleViolation):
        body = {"code": "rule_violation", "rule": exc.rule, "message": exc.message}
        if exc.field:
            body["fields"] = {exc.field: [exc.message]}
        return Response({"error": body}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or None)

    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        fields = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        body = {"code": "validation_error", "message": _first_message(exc.detail), "fields": fields}
    else:
        codes = exc.get_codes() if hasattr(exc, "get_codes") else "error"
        body = {"code": codes if isinstance(codes, str) else "error", "message": _first_message(exc.detail)}
    kept = {k: v for k, v in response.headers.items() if k in ("WWW-Authenticate", "Allow", "Retry-After")}
    return Response({"error": body}, status=response.status_code, headers=kept)


def api_aware_not_found(request, exception):
    """``handler404``: an address under /api/ that matches no route answers with the API's error
    body (JSON), not the HTML page meant for browsers."""
    from django.views.defaults import page_not_found

    if request.path.startswith("/api/"):
        return error_response(request, 404, "not_found", f"No API endpoint or object at {request.path}.")
    return page_not_found(request, exception)


def api_aware_server_error(request):
    """``handler500``: the same for an unexpected failure (the details go to the log only)."""
    from django.views.defaults import server_error

    if request.path.startswith("/api/"):
        return error_response(request, 500, "server_error", "The server failed to answer; the error is logged.")
    return server_error(request)


def api_aware_bad_request(request, exception):
    """``handler400``: a body over Django's own limits (form fields, field count) says which limit;
    under /api/ every refusal is the API's error body."""
    from django.conf import settings
    from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
    from django.views.defaults import bad_request

    if isinstance(exception, RequestDataTooBig):
        status, code = 413, "request_too_large"
        message = f"The form data is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE:,} bytes, the most accepted."
    elif isinstance(exception, TooManyFieldsSent):
        status, code = 400, "too_many_fields"
        message = f"The request has more than {settings.DATA_UPLOAD_MAX_NUMBER_FIELDS:,} fields, the most accepted."
    elif isinstance(exception, TooManyFilesSent):
        status, code = 400, "too_many_files"
        message = f"The request has more than {settings.DATA_UPLOAD_MAX_NUMBER_FILES:,} files, the most accepted."
    elif request.path.startswith("/api/"):
        status, code, message = 400, "bad_request", "The request is malformed."
    else:
        return bad_request(request, exception)
    return error_response(request, status, code, message)
