"""Journey pages: list, new/settings forms (rules shown on the form), the canvas page (editable
draft vs. read-only live with counts), the campaign plan, close/duplicate, email assets with a
preview per person; only the session's sandbox."""

import datetime as dt
import json

import pytest
from django.utils import timezone

from cdp.models import Person
from journeys.models import EmailAsset, Journey, JourneyState
from journeys.services.journeys import publish_journey


def canvas_config(response):
    html = response.content.decode()
    start = html.index('<script id="canvas-config" type="application/json">') + len('<script id="canvas-config" type="application/json">')
    return json.loads(html[start : html.index("</script>", start)])


def form_dates(days=30):
    now = timezone.localtime()
    return {"start_at": now.strftime("%Y-%m-%dT%H:%M"), "end_at": (now + dt.timedelta(days=days)).strftime("%Y-%m-%dT%H:%M")}


def test_list_page(login, viewer, valid_journey):
    response = login(viewer).get("/journeys/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Onboarding" in html and "Software accounts" in html and "Draft" in html
    assert "New journey" not in html  # viewers don't create


def test_create_from_the_form(login, marketer, sandbox, account_audience, person_audience):
    client = login(marketer)
    assert client.get("/journeys/new/").status_code == 200
    refused = client.post("/journeys/new/", {"name": "J", "audience": person_audience.pk, **form_dates()})
    assert refused.status_code == 400 and "person audience" in refused.content.decode()
    too_long = client.post("/journeys/new/", {"name": "J", **form_dates(days=1200)})
    assert too_long.status_code == 400 and "at most 3 years" in too_long.content.decode()
    response = client.post("/journeys/new/", {"name": "J", "audience": account_audience.pk, "allow_reentry": "on", "reentry_days": "14", **form_dates()})
    journey = Journey.objects.get(sandbox=sandbox, name="J")
    assert response.status_code == 302 and response["Location"] == f"/journeys/{journey.pk}/"
    assert journey.reentry_interval == dt.timedelta(days=14) and journey.audience == account_audience


def test_canvas_page_of_a_draft_is_editable(login, marketer, sandbox, valid_journey, email):
    response = login(marketer).get(f"/journeys/{valid_journey.pk}/")
    assert response.status_code == 200
    config = canvas_config(response)
    assert config["editable"] is True and config["graph"] == valid_journey.graph
    assert config["urls"]["edit"] == f"/api/sandboxes/{sandbox.pk}/journeys/{valid_journey.pk}/edit/"
    assert config["catalog"]["emails"] == [{"id": email.pk, "name": "Welcome"}]
    assert "Decision Maker" in config["catalog"]["roles"]
    assert 'id="canvas-publish"' in response.content.decode()


def test_live_journey_is_read_only_with_its_plan(login, marketer, viewer, valid_journey):
    publish_journey(valid_journey)
    response = login(marketer).get(f"/journeys/{valid_journey.pk}/")
    config = canvas_config(response)
    assert config["editable"] is False and config["state"] == "live"
    assert isinstance(config["counts"], dict)
    assert 'id="canvas-publish"' not in response.content.decode()
    plan = login(viewer).get(f"/journeys/{valid_journey.pk}/plan/")
    assert plan.status_code == 200
    html = plan.content.decode()
    assert "01 Account audience" in html and "Size · Enterprise" in html and "send_email" in html


def test_close_and_duplicate_buttons(login, marketer, sandbox, valid_journey):
    publish_journey(valid_journey)
    client = login(marketer)
    client.post(f"/journeys/{valid_journey.pk}/close/")
    valid_journey.refresh_from_db()
    assert valid_journey.state == JourneyState.CLOSED
    response = client.post(f"/journeys/{valid_journey.pk}/close/", follow=True)
    assert "Only a live journey can be closed" in response.content.decode()
    response = client.post(f"/journeys/{valid_journey.pk}/duplicate/")
    copy = Journey.objects.get(sandbox=sandbox, name="Onboarding (copy)")
    assert response["Location"] == f"/journeys/{copy.pk}/" and copy.state == JourneyState.DRAFT


def test_viewers_cannot_post(login, viewer, valid_journey):
    assert login(viewer).post(f"/journeys/{valid_journey.pk}/duplicate/").status_code == 403
    assert login(viewer).get("/journeys/new/").status_code == 403


def test_email_pages_and_preview(login, marketer, sandbox):
    Person.objects.create(sandbox=sandbox, first_name="Ada", email="ada@acme.io")
    client = login(marketer)
    refused = client.post("/journeys/emails/new/", {"name": "Hi", "subject": "Hello {{person.nickname}}", "body_html": "<p>x</p>"})
    assert refused.status_code == 400 and "{{person.nickname}}" in refused.content.decode()
    client.post("/journeys/emails/new/", {"name": "Hi", "subject": "Hello {{person.first_name}}", "body_html": "<p>Dear {{person.first_name}}</p>"})
    email = EmailAsset.objects.get(sandbox=sandbox, name="Hi")
    assert "Hi" in client.get("/journeys/emails/").content.decode()
    page = client.get(f"/journeys/emails/{email.pk}/?preview=ada@acme.io").content.decode()
    assert "Hello Ada" in page and "&lt;p&gt;Dear Ada&lt;/p&gt;" in page  # srcdoc of a sandboxed iframe
    assert "No person with the email address" in client.get(f"/journeys/emails/{email.pk}/?preview=x@y.io").content.decode()


@pytest.mark.parametrize("path", ["/journeys/{pk}/", "/journeys/{pk}/plan/", "/journeys/{pk}/settings/"])
def test_other_sandboxes_journeys_are_404(login, make_user, other_sandbox, valid_journey, path):
    from cdp.choices import Role

    outsider = make_user(Role.ADMIN, other_sandbox)
    assert login(outsider).get(path.format(pk=valid_journey.pk)).status_code == 404
