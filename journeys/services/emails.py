"""Email assets and their personalisation.

    save_email(sandbox, *, name, subject, body_html="", body_text="", from_name="", from_email="", email=None, by=None) -> EmailAsset
    render_email(email, person=None, account=None) -> RenderedEmail(subject, html, text, from_email)
    preview_email(email, person_id) -> RenderedEmail   (the person's primary account fills {{account.…}})
    primary_account(person) -> Account | None

Tokens are ``{{person.<field>}}`` and ``{{account.<field>}}`` from a small whitelist, with an
optional fallback: ``{{person.first_name | default: "there"}}``. Rendering is a substitution, never
template execution: the body can't run code or reach other data. Values are HTML-escaped in the
HTML body and have line breaks removed in the subject (no header injection). Saving refuses a
token outside the whitelist; one that slips in (an older asset) renders as its fallback or empty.
"""

import re
from dataclasses import dataclass
from email.utils import parseaddr

from django.conf import settings
from django.db import transaction
from django.utils.html import escape, strip_tags

from cdp.choices import Role
from cdp.exceptions import RuleViolation
from cdp.models import Account, AccountPerson, Person
from cdp.services.access import require_sandbox_role
from journeys.models import EmailAsset

PERSON_TOKENS = ("first_name", "last_name", "email", "job_title", "job_level", "department", "country", "city", "phone")
ACCOUNT_TOKENS = ("name", "domain", "industry", "country", "region", "website")
ALLOWED = {"person": PERSON_TOKENS, "account": ACCOUNT_TOKENS}
# Anything between double braces is a token attempt; TOKEN reads the allowed shape.
ANY_TOKEN = re.compile(r"\{\{(.*?)\}\}", re.S)
TOKEN = re.compile(r'^\s*(person|account)\.([a-z_]+)\s*(?:\|\s*default\s*:\s*"([^"{}]*)"\s*)?$')


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    html: str
    text: str
    from_email: str


def _read_token(inner: str):
    """(scope, field, fallback) of an allowed token, or None."""
    match = TOKEN.match(inner)
    if not match or match.group(2) not in ALLOWED[match.group(1)]:
        return None
    return match.group(1), match.group(2), match.group(3) or ""


def unknown_tokens(text: str) -> list[str]:
    """The tokens of ``text`` that aren't allowed, as written."""
    return [f"{{{{{inner.strip()}}}}}" for inner in ANY_TOKEN.findall(text or "") if _read_token(inner) is None]


@transaction.atomic
def save_email(
    sandbox, *, name, subject, body_html="", body_text="", from_name="", from_email="", email=None, by=None
) -> EmailAsset:
    if by is not None:
        require_sandbox_role(by, sandbox, Role.MARKETER)
    name = (name or "").strip()
    if not name:
        raise RuleViolation("Give the email a name.", rule="email_name", field="name")
    if not (subject or "").strip():
        raise RuleViolation("Give the email a subject.", rule="email_subject", field="subject")
    if not (body_html or "").strip() and not (body_text or "").strip():
        raise RuleViolation("Write the email's body (HTML or text).", rule="email_body", field="body_html")
    for field, text in (("subject", subject), ("body_html", body_html), ("body_text", body_text)):
        unknown = unknown_tokens(text)
        if unknown:
            allowed = ", ".join([f"person.{f}" for f in PERSON_TOKENS] + [f"account.{f}" for f in ACCOUNT_TOKENS])
            raise RuleViolation(
                f"Unknown token(s) {', '.join(unknown)}. Tokens are {{{{person.<field>}}}} or {{{{account.<field>}}}} "
                f'with an optional | default: "…"; fields: {allowed}.',
                rule="email_unknown_token",
                field=field,
            )
    taken = EmailAsset.objects.for_sandbox(sandbox).filter(name=name)
    if email is not None:
        taken = taken.exclude(pk=email.pk)
    if taken.exists():
        raise RuleViolation(f'An email named "{name}" already exists here.', rule="email_name_taken", field="name")
    if email is None:
        email = EmailAsset(sandbox=sandbox, created_by=by if by is not None and by.is_authenticated else None)
    email.name, email.subject, email.from_name, email.from_email = name, subject.strip(), from_name or "", from_email or ""
    email.body_html, email.body_text = body_html or "", body_text or ""
    email.save()
    return email


def _substitute(text: str, person, account, quote) -> str:
    objects = {"person": person, "account": account}

    def value(match):
        token = _read_token(match.group(1))
        if token is None:
            return ""
        scope, field, fallback = token
        found = getattr(objects[scope], field, None) if objects[scope] is not None else None
        return quote(str(found) if found not in (None, "") else fallback)

    return ANY_TOKEN.sub(value, text or "")


def render_email(email: EmailAsset, person=None, account=None) -> RenderedEmail:
    """The email for ``person`` (and ``account``): tokens replaced, values escaped for HTML."""
    html = _substitute(email.body_html, person, account, escape)
    text = _substitute(email.body_text, person, account, str) if email.body_text else _text_of(html)
    subject = " ".join(_substitute(email.subject, person, account, str).split())
    # DEFAULT_FROM_EMAIL may carry its own display name ("Quorum <quorum@localhost>"): keep only its address.
    sender = email.from_email or parseaddr(settings.DEFAULT_FROM_EMAIL)[1]
    from_email = f"{email.from_name} <{sender}>" if email.from_name else (email.from_email or settings.DEFAULT_FROM_EMAIL)
    return RenderedEmail(subject=subject, html=html, text=text, from_email=from_email)


def _text_of(html: str) -> str:
    # Block ends become line breaks, then the tags go and entities are decoded.
    from html import unescape

    spaced = re.sub(r"(?i)<br\s*/?>|</(p|div|h[1-6]|li|tr)>", "\n", html)
    return "\n".join(line.strip() for line in unescape(strip_tags(spaced)).splitlines()).strip()


def primary_account(person) -> Account | None:
    relation = (
        AccountPerson.objects.filter(person=person, is_active=True, account__sandbox_id=person.sandbox_id)
        .select_related("account")
        .order_by("-is_primary", "id")
        .first()
    )
    return relation.account if relation else None


def preview_email(email: EmailAsset, person_id) -> RenderedEmail:
    """The email as ``person_id`` (a person of the email's sandbox) would get it."""
    person = Person.objects.for_sandbox(email.sandbox).filter(pk=person_id).first() if str(person_id).isdigit() else None
    if person is None:
        raise RuleViolation("No such person in this sandbox.", rule="unknown_person", field="person_id")
    return render_email(email, person, primary_account(person))


def find_person(sandbox, email_address: str) -> Person | None:
    """The person with this email address (the preview's person picker)."""
    address = (email_address or "").strip().lower()
    return Person.objects.for_sandbox(sandbox).filter(email__iexact=address).order_by("id").first() if address else None


@transaction.atomic
def delete_email(email: EmailAsset, *, by=None) -> None:
    """Delete an email no journey uses."""
    from journeys.services.journeys import journeys_using_email

    if by is not None:
        require_sandbox_role(by, email.sandbox, Role.MARKETER)
    users = journeys_using_email(email.sandbox, email.pk)
    if users:
        raise RuleViolation(f"Journeys use this email: {', '.join(users)}. Remove it from them first.", rule="email_in_use")
    email.delete()
