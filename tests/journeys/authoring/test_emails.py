"""Email assets: token rendering from a whitelist (never template execution), HTML escaping,
fallbacks, unknown tokens refused on save, the preview for a person, deleting in-use emails."""

import pytest

from cdp.exceptions import RuleViolation
from cdp.models import Account, AccountPerson, Person
from journeys.services.emails import delete_email, preview_email, render_email, save_email, unknown_tokens
from journeys.services.journeys import create_journey

from .conftest import sample_graph


@pytest.fixture
def ada(sandbox):
    account = Account.objects.create(sandbox=sandbox, name="Acme & Sons", domain="acme.io")
    other = Account.objects.create(sandbox=sandbox, name="Side gig")
    person = Person.objects.create(sandbox=sandbox, first_name="Ada", last_name="Lovelace", email="ada@acme.io", job_title="<b>CTO</b>")
    AccountPerson.objects.create(sandbox=sandbox, account=other, person=person, is_primary=False)
    AccountPerson.objects.create(sandbox=sandbox, account=account, person=person, is_primary=True)
    return person


def make(sandbox, **fields):
    values = {"name": "Welcome", "subject": "Hi {{person.first_name}}", "body_html": "<p>x</p>", **fields}
    return save_email(sandbox, **values)


def test_tokens_are_replaced_and_escaped_in_html(sandbox, ada):
    email = make(sandbox, body_html="<p>Hi {{ person.first_name }}, {{person.job_title}} at {{account.name}}</p>")
    rendered = preview_email(email, ada.pk)
    assert rendered.subject == "Hi Ada"
    assert rendered.html == "<p>Hi Ada, &lt;b&gt;CTO&lt;/b&gt; at Acme &amp; Sons</p>"
    assert rendered.text == "Hi Ada, <b>CTO</b> at Acme & Sons"  # derived text: plain values


def test_fallbacks_and_missing_values(sandbox):
    email = make(sandbox, subject='Hello {{person.first_name | default: "there"}}', body_html="<p>{{account.name}}|{{person.city}}</p>", body_text="Dear {{person.last_name|default:\"customer\"}}")
    rendered = render_email(email, Person(first_name="", last_name=""), None)
    assert (rendered.subject, rendered.html, rendered.text) == ("Hello there", "<p>|</p>", "Dear customer")


def test_no_template_execution(sandbox, ada):
    email = make(sandbox, body_html="<p>{% if 1 %}x{% endif %} {{person.first_name}}</p>")
    assert preview_email(email, ada.pk).html == "<p>{% if 1 %}x{% endif %} Ada</p>"
    # A person's value that looks like a token is not expanded again.
    ada.first_name = "{{account.name}}"
    ada.save()
    assert preview_email(email, ada.pk).html == "<p>{% if 1 %}x{% endif %} {{account.name}}</p>"


def test_subject_line_breaks_are_removed(sandbox, ada):
    ada.first_name = "Ada\r\nBcc: evil@example.com"
    ada.save()
    assert preview_email(make(sandbox), ada.pk).subject == "Hi Ada Bcc: evil@example.com"


@pytest.mark.parametrize(
    "text, unknown",
    [
        ("{{person.first_name}} {{account.domain}}", []),
        ("{{person.password}}", ["{{person.password}}"]),
        ("{{ settings.SECRET_KEY }}", ["{{settings.SECRET_KEY}}"]),
        ("{{person.first_name.__class__}}", ["{{person.first_name.__class__}}"]),
        ("{{person.email|upper}}", ["{{person.email|upper}}"]),
    ],
)
def test_unknown_tokens(text, unknown):
    assert unknown_tokens(text) == unknown


def test_saving_refuses_unknown_tokens_naming_the_field(sandbox):
    with pytest.raises(RuleViolation) as refused:
        make(sandbox, body_html="<p>{{person.salary}}</p>")
    assert refused.value.field == "body_html" and "{{person.salary}}" in refused.value.message
    with pytest.raises(RuleViolation, match="subject"):
        make(sandbox, subject="  ")


def test_names_are_unique_and_the_sender_defaults(sandbox, settings):
    settings.DEFAULT_FROM_EMAIL = "journeys@quorum.test"
    email = make(sandbox)
    with pytest.raises(RuleViolation, match="already exists"):
        make(sandbox)
    assert render_email(email).from_email == "journeys@quorum.test"
    email = save_email(sandbox, email=email, name="Welcome", subject="Hi", body_html="<p>x</p>", from_name="Quorum", from_email="hi@acme.io")
    assert render_email(email).from_email == "Quorum <hi@acme.io>"


def test_a_sender_name_over_a_default_address_with_its_own_name_gives_one_well_formed_header(sandbox, settings):
    settings.DEFAULT_FROM_EMAIL = "Quorum <quorum@localhost>"
    email = save_email(sandbox, email=None, name="Welcome", subject="Hi", body_html="<p>x</p>", from_name="Acme")
    assert render_email(email).from_email == "Acme <quorum@localhost>"


def test_preview_only_for_people_of_the_sandbox(sandbox, other_sandbox):
    stranger = Person.objects.create(sandbox=other_sandbox, first_name="Eve", email="eve@x.io")
    with pytest.raises(RuleViolation, match="No such person"):
        preview_email(make(sandbox), stranger.pk)


def test_an_email_in_use_is_not_deleted(sandbox, account_audience):
    import datetime as dt

    from django.utils import timezone

    email = make(sandbox)
    now = timezone.now()
    create_journey(sandbox, name="Uses it", start_at=now, end_at=now + dt.timedelta(days=9), graph=sample_graph(account_audience.pk, email.pk))
    with pytest.raises(RuleViolation, match="Uses it"):
        delete_email(email)
    unused = make(sandbox, name="Unused")
    delete_email(unused)
