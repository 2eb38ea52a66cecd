"""Open-pixel and click-redirect endpoints of journey emails. Public (mail clients have no
session); the signed token is the only authority. A bad token never reveals anything."""

import base64

from django.http import HttpResponse, HttpResponseBadRequest, HttpResponseRedirect
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from journeys.services.tracking import BadToken, record_click, record_open

PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


@never_cache
@require_GET
def open_pixel(request, token):
    try:
        record_open(token)
    except BadToken:
        pass  # a pixel is always served; an invalid token just records nothing
    return HttpResponse(PIXEL, content_type="image/gif")


@never_cache
@require_GET
def click(request, token):
    try:
        _, url = record_click(token, request.GET.get("u"))
    except BadToken as error:
        return HttpResponseBadRequest(str(error), content_type="text/plain")
    return HttpResponseRedirect(url)
