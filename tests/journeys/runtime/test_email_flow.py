"""End to end with real commits and a real SMTP server: audience entry → email with tracking →
open/click endpoints → events in the profile store → listen node wakes; timeouts by the sweep."""

import datetime as dt
import re
from email import message_from_string
from html import unescape

from django.utils import timezone

from cdp.models import ExperienceEvent
from journeys.models import EmailSend, Enrollment, PersonState, TokenState
from journeys.runtime_tasks import enroll_journey_members, sweep_journey_timers
from journeys.services.runtime import node_counts, sweep_timers
from tests.cdp.ingest_helpers import ingest

from .conftest import account, account_audience, compare, email_asset, live_journey, make_people, person

LISTEN = {
    "n1": {"type": "start", "next": "n2"},
    "n2": {"type": "action", "action": "send_email", "params": {"email_id": None}, "next": "n3"},
    "n3": {"type": "listen", "event": {"type": "email.opened", "node": "n2"}, "timeout": {"amount": 5, "unit": "days"},
           "next": "n4", "timeout_next": "n5"},
    "n4": {"type": "action", "action": "update_person_field", "params": {"field": "lead_status", "value": "Engaged"}, "next": "n6"},
    "n5": {"type": "action", "action": "update_person_field", "params": {"field": "lead_status", "value": "Cold"}, "next": "n6"},
    "n6": {"type": "end"},
}  # fmt: skip


def html_part(message):
    parsed = message_from_string(message["data"])
    for part in parsed.walk():
        if part.get_content_type() == "text/html":
            return part.get_payload(decode=True).decode()
    raise AssertionError("no HTML part")


def tracking_links(html):
    pixel = re.search(r'<img src="http://testserver(/t/o/[^"]+)"', html).group(1)
    click = unescape(re.search(r'href="http://testserver(/t/c/[^"]+)"', html).group(1))
    return pixel, click


def listen_journey(sandbox):
    nodes = {**LISTEN, "n2": {**LISTEN["n2"], "params": {"email_id": email_asset(sandbox).pk}}}
    audience = account_audience(sandbox, {"subject": "account", "condition": compare("industry", "eq", "Software")})
    return live_journey(sandbox, audience, nodes)


def test_email_tracking_and_listen_with_timeout(sandbox, live, smtp, client):
    make_people(sandbox, [
        {"email": "ann@acme.com", "first_name": "Ann", "account.domain": "acme.com"},
        {"email": "bob@acme.com", "first_name": "Bob", "account.domain": "acme.com"},
    ])  # fmt: skip
    ingest(sandbox, "account", [{"domain": "acme.com", "industry": "Software"}])
    journey = listen_journey(sandbox)
    enroll_journey_members.delay(journey.pk)  # what publishing does

    assert sorted(m["to"][0] for m in smtp.messages) == ["ann@acme.com", "bob@acme.com"]
    ann_mail = next(m for m in smtp.messages if m["to"] == ["ann@acme.com"])
    assert "Subject: Hello Ann" in ann_mail["data"]
    html = html_part(ann_mail)
    assert "Hi Ann at Acme" in html and 'href="https://example.com' not in html  # every link goes through /t/c/
    pixel, click = tracking_links(html)

    # Ann opens: the pixel records the open and ingests an email.opened event, which wakes her listen node.
    response = client.get(pixel)
    assert response.status_code == 200 and response["Content-Type"] == "image/gif"
    ann = person(sandbox, "ann@acme.com")
    assert ExperienceEvent.objects.filter(person=ann, type="email.opened").count() == 1
    assert person(sandbox, "ann@acme.com").lead_status == "Engaged"
    # Opening again counts, but stores no second event.
    client.get(pixel)
    send = EmailSend.objects.get(person=ann)
    assert send.open_count == 2 and send.opened_at is not None
    assert ExperienceEvent.objects.filter(person=ann, type="email.opened").count() == 1

    # A click redirects to the signed URL only.
    response = client.get(click)
    assert response.status_code == 302 and response["Location"] == "https://example.com/pricing?a=1&b=2"
    assert ExperienceEvent.objects.get(person=ann, type="email.clicked").properties["url"] == "https://example.com/pricing?a=1&b=2"
    token = click.split("/t/c/")[1].split("?")[0]
    assert client.get(f"/t/c/{token}")["Location"] == "https://example.com/pricing?a=1&b=2"  # ?u= is optional
    assert EmailSend.objects.get(person=ann).click_count == 2
    assert client.get(f"/t/c/{token}?u=https://evil.example/").status_code == 400
    assert client.get(f"/t/c/{token[:-2]}xx").status_code == 400

    # Bob never opens: after the timeout (swept later, as by a fresh worker) he takes the timeout path.
    bob = person(sandbox, "bob@acme.com")
    assert PersonState.objects.get(person=bob).state == TokenState.WAITING
    assert sweep_timers(now=timezone.now() + dt.timedelta(days=4)) == 0
    assert sweep_timers(now=timezone.now() + dt.timedelta(days=5, minutes=1)) == 1  # Bob (the account token stopped at the listen)
    assert person(sandbox, "bob@acme.com").lead_status == "Cold"
    assert Enrollment.objects.get(journey=journey).state == "finished"
    assert len(smtp.messages) == 2
    counts = node_counts(journey)
    assert counts["n4"]["people"]["entered"] == 1 and counts["n5"]["people"]["entered"] == 1
    assert counts["n6"]["people"] == {"entered": 2, "current": 0, "exited": 2}


def test_accounts_entering_the_audience_later_are_enrolled(sandbox, live, smtp):
    make_people(sandbox, [{"email": "ann@acme.com", "first_name": "Ann", "account.domain": "acme.com"}])
    ingest(sandbox, "account", [{"domain": "acme.com", "industry": "Software"}])
    journey = listen_journey(sandbox)
    enroll_journey_members.delay(journey.pk)
    assert len(smtp.messages) == 1

    # A new Software account arrives: the audience gains it, the journey enrolls it and emails its people.
    make_people(sandbox, [{"email": "cy@initech.com", "first_name": "Cy", "account.domain": "initech.com"}])
    ingest(sandbox, "account", [{"domain": "initech.com", "industry": "Software"}])
    assert Enrollment.objects.filter(journey=journey, account=account(sandbox, "initech.com")).exists()
    assert sorted(m["to"][0] for m in smtp.messages) == ["ann@acme.com", "cy@initech.com"]
    # The beat sweep finds nothing more to do and enrolls nobody twice.
    sweep_journey_timers.delay()
    assert Enrollment.objects.filter(journey=journey).count() == 2 and len(smtp.messages) == 2


def test_bad_tracking_tokens_record_nothing(db, client):
    assert client.get("/t/o/not-a-token.gif").status_code == 200  # a pixel is always served
    assert client.get("/t/c/not-a-token?u=https://evil.example/").status_code == 400
    assert not ExperienceEvent.objects.exists()


def test_publishing_enrolls_the_audience(sandbox, live, smtp):
    from journeys.services.journeys import create_journey, publish_journey

    make_people(sandbox, [{"email": "ann@acme.com", "first_name": "Ann", "account.domain": "acme.com"}])
    audience = account_audience(sandbox)
    email = email_asset(sandbox)
    graph = {"start": "n1", "nodes": {
        "n1": {"type": "start", "audience_id": audience.pk, "next": "n2"},
        "n2": {"type": "action", "action": "send_email", "params": {"email_id": email.pk}, "next": "n3"},
        "n3": {"type": "end"},
    }, "layout": {}}  # fmt: skip
    now = timezone.now()
    journey = create_journey(sandbox, name="Welcome", start_at=now - dt.timedelta(hours=1), end_at=now + dt.timedelta(days=90), graph=graph)
    publish_journey(journey)
    assert [m["to"] for m in smtp.messages] == [["ann@acme.com"]]
    assert node_counts(journey)["n3"]["people"] == {"entered": 1, "current": 0, "exited": 1}
