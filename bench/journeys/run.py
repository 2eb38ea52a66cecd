"""Journey runtime benchmark: how fast the runtime moves accounts and people through a 20-node
journey, and how long publishing a 50-node journey takes.

    .venv/bin/python bench/journeys/run.py [--accounts 2000] [--people 20000] [--scale 1] [--reuse]

DATABASE_URL chooses the database (default postgres://postgres@127.0.0.1:5432/quorum_bench_journeys;
its name must contain "bench"). Without --reuse it is dropped and re-created. The data set comes
from cdp's demo generator (generate_demo_data) at --accounts x --scale accounts and
--people x --scale people. Emails go to Django's in-memory backend (the SMTP round trip is not
what is measured); tasks queued on commit go to a filesystem queue nothing consumes: the
benchmark calls the runtime services itself and times them.

  a) enrollment: every account of an "all accounts" audience (and its people) enters the journey;
  b) advance: every enrollment advanced from the start to its first wait (split, actions, email),
     in the batches the runtime queues (ADVANCE_BATCH enrollments an advance);
  c) the rest of the journey through three timer sweeps with the clock moved forward (waits and a
     listen timeout), each followed by the advances the sweep releases;
  d) publish: validation + version + campaign plan of a 50-node journey (journeys.services.journeys).

Prints one table: measure | figure | target | verdict.
"""

import argparse
import datetime as dt
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.ingest.run import print_table, verdict  # noqa: E402
from bench.common import ensure_database  # noqa: E402

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/quorum_bench_journeys"
TARGET_PUBLISH_SECONDS = 2.0


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=2_000)
    parser.add_argument("--people", type=int, default=20_000)
    parser.add_argument("--scale", type=float, default=1.0, help="Multiplies --accounts and --people.")
    parser.add_argument("--reuse", action="store_true", help="Keep the database and its data set if present.")
    parser.add_argument("--seed", type=int, default=42)
    return parser.parse_args()


def configure_environment(var_dir: Path) -> str:
    database_url = os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)
    os.environ.update({
        "DATABASE_URL": database_url,
        "SECRET_KEY": os.environ.get("SECRET_KEY") or secrets.token_urlsafe(50),
        "DEBUG": "0",
        "SECURE_SSL_REDIRECT": "False",
        "QUORUM_VAR_DIR": str(var_dir),
        "DJANGO_SETTINGS_MODULE": "config.settings.base",
        "LOG_LEVEL": "WARNING",
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "CELERY_BROKER_URL": "filesystem://",
        "EMAIL_URL": "memorymail://",
    })  # fmt: skip
    return database_url


def data_sandbox(accounts: int, people: int, seed: int):
    from cdp.demo import DemoSizes, generate_demo_data
    from cdp.models import Organization, Person
    from cdp.services import create_organization

    slug = f"bench-journeys-{accounts}-{people}"
    organization = Organization.objects.filter(slug=slug).first()
    if organization is not None and Person.objects.for_sandbox(organization.sandboxes.get()).exists():
        print(f"Reusing the data set of organization '{slug}'.")
        return organization.sandboxes.get()
    if organization is not None:
        organization.delete()
    organization = create_organization(name=f"Journey benchmark {accounts}/{people}", slug=slug)
    sandbox = organization.sandboxes.get()
    started = time.perf_counter()
    generate_demo_data(sandbox, DemoSizes(accounts=accounts, people=people, events=people), seed=seed, report=lambda line: print(f"  {line}"))
    print(f"Generated {accounts:,} accounts / {people:,} people in {time.perf_counter() - started:,.0f} s.")
    return sandbox


def twenty_node_graph(audience_id, email_id, list_id) -> dict:
    def action(name, params, next_):
        return {"type": "action", "action": name, "params": params, "next": next_}

    def compare(field, op, value):
        return {"type": "compare", "field": field, "op": op, "value": value}

    nodes = {
        "n1": {"type": "start", "audience_id": audience_id, "next": "n2"},
        "n2": {"type": "split_accounts", "label": "Size", "paths": [
            {"id": "big", "label": "Large", "condition": {"rule": compare("employees", "ge", 500), "buying_group": None}, "next": "n3"},
        ], "other": {"next": "n4"}},
        "n3": action("update_account_field", {"field": "region", "value": "Enterprise"}, "n5"),
        "n4": action("interesting_moment", {"type": "milestone", "description": "Small account entered"}, "n5"),
        "n5": {"type": "merge", "next": "n6"},
        "n6": action("send_email", {"email_id": email_id}, "n7"),
        "n7": {"type": "wait", "duration": {"amount": 1, "unit": "days"}, "next": "n8"},
        "n8": {"type": "split_people", "label": "Seniority", "paths": [
            {"id": "senior", "label": "Senior", "condition": {"rule": compare("jobLevel", "in", ["C-Level", "VP", "Director"])}, "next": "n9"},
        ], "other": {"next": "n10"}},
        "n9": action("update_person_field", {"field": "lead_status", "value": "Engaged"}, "n11"),
        "n10": action("add_to_list", {"list_id": list_id}, "n11"),
        "n11": {"type": "merge", "next": "n12"},
        "n12": {"type": "listen", "event": {"type": "email.opened", "node": "n6"}, "timeout": {"amount": 2, "unit": "days"},
                "next": "n13", "timeout_next": "n14"},
        "n13": action("interesting_moment", {"type": "email", "description": "Opened the welcome email"}, "n15"),
        "n14": action("update_person_field", {"field": "lead_score", "value": 5}, "n15"),
        "n15": {"type": "merge", "next": "n16"},
        "n16": {"type": "wait", "duration": {"amount": 1, "unit": "days"}, "next": "n17"},
        "n17": action("update_person_field", {"field": "lead_source", "value": "Journey"}, "n18"),
        "n18": action("send_email", {"email_id": email_id}, "n19"),
        "n19": {"type": "wait", "duration": {"amount": 1, "unit": "hours"}, "next": "n20"},
        "n20": {"type": "end"},
    }  # fmt: skip
    return {"start": "n1", "nodes": nodes, "layout": {}}


def fifty_node_graph(audience_id, email_id) -> dict:
    nodes = {
        "n1": {"type": "start", "audience_id": audience_id, "next": "n2"},
        "n2": {"type": "split_accounts", "label": "Industry", "paths": [
            {"id": "p1", "label": "Software", "condition": {"rule": {"type": "compare", "field": "industry", "op": "eq", "value": "Software"},
                                                            "buying_group": None}, "next": "n3"},
        ], "other": {"next": "n4"}},
        "n3": {"type": "action", "action": "update_account_field", "params": {"field": "region", "value": "Tech"}, "next": "n5"},
        "n4": {"type": "action", "action": "update_account_field", "params": {"field": "region", "value": "Other"}, "next": "n5"},
        "n5": {"type": "merge", "next": "n6"},
    }  # fmt: skip
    for number in range(6, 50):
        next_ = f"n{number + 1}"
        if number % 2 == 0:
            nodes[f"n{number}"] = {"type": "action", "action": "send_email", "params": {"email_id": email_id}, "next": next_}
        else:
            nodes[f"n{number}"] = {"type": "wait", "duration": {"amount": 1, "unit": "days"}, "next": next_}
    nodes["n50"] = {"type": "end"}
    return {"start": "n1", "nodes": nodes, "layout": {}}


def setup_journey(sandbox):
    from django.utils import timezone

    from cdp.models import MarketingList
    from cdp.services.audiences import evaluate_audience, save_audience
    from journeys.models import EmailAsset, Journey, JourneyVersion
    from journeys.models.journeys import JourneyState

    Journey.objects.for_sandbox(sandbox).delete()
    audience = save_audience(sandbox, name=f"All accounts {time.time_ns()}", definition={
        "subject": "account", "condition": {"type": "compare", "field": "name", "op": "isNotNull"}})  # fmt: skip
    evaluate_audience(audience)
    email, _ = EmailAsset.objects.get_or_create(
        sandbox=sandbox, name="Bench welcome",
        defaults={"subject": "Hello {{person.first_name}}", "body_html": '<p>Hi {{person.first_name}}</p><a href="https://example.com/">More</a>'},
    )  # fmt: skip
    marketing_list, _ = MarketingList.objects.get_or_create(sandbox=sandbox, external_id="bench-journey", defaults={"name": "Bench journey"})
    now = timezone.now()
    graph = twenty_node_graph(audience.pk, email.pk, marketing_list.pk)
    journey = Journey.objects.create(
        sandbox=sandbox, name="Bench 20 nodes", audience=audience, state=JourneyState.LIVE, graph=graph,
        start_at=now - dt.timedelta(days=1), end_at=now + dt.timedelta(days=365), published_at=now,
    )  # fmt: skip
    journey.current_version = JourneyVersion.objects.create(sandbox=sandbox, journey=journey, number=1, graph=graph, published_at=now)
    journey.save(update_fields=["current_version"])
    return journey, audience, email


def timed(function, *args, **kwargs):
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return time.perf_counter() - started, result


def advance_all(ids, now):
    """The advances the runtime queues (journeys.services.runtime._queue_advance): one per
    ADVANCE_BATCH enrollments, run here in turn."""
    from journeys.services.runtime import ADVANCE_BATCH, advance_enrollments

    for start in range(0, len(ids), ADVANCE_BATCH):
        advance_enrollments(ids[start : start + ADVANCE_BATCH], now=now)


def sweep_and_advance(now):
    """Every due timer woken (in batches, as the beat task does), then the released enrollments advanced."""
    from journeys.models import PersonState, TokenState
    from journeys.services.runtime import sweep_timers

    due = set(PersonState.objects.filter(state=TokenState.WAITING, wake_at__lte=now).values_list("enrollment_id", flat=True))
    woken = 0
    while True:
        count = sweep_timers(now=now)
        woken += count
        if count == 0:
            break
    advance_all(sorted(due), now)
    return woken


def measure_publish(sandbox, audience, email):
    from django.utils import timezone

    from journeys.models import Journey
    from journeys.services.journeys import publish_journey

    now = timezone.now()
    journey = Journey.objects.create(
        sandbox=sandbox, name="Bench 50 nodes", audience=audience, graph=fifty_node_graph(audience.pk, email.pk),
        start_at=now, end_at=now + dt.timedelta(days=700),
    )  # fmt: skip
    seconds, version = timed(publish_journey, journey)
    return seconds, len(version.graph["nodes"])


def main():
    args = parse_args()
    var_dir = Path(tempfile.mkdtemp(prefix="quorum-bench-journeys-"))
    database_url = configure_environment(var_dir)
    ensure_database(database_url, args.reuse)

    import django

    django.setup()
    from django.core import mail
    from django.core.management import call_command
    from django.utils import timezone

    from journeys.models import NodeVisit, PersonState, SideEffect
    from journeys.services.runtime import enroll_new_members

    call_command("migrate", verbosity=0)
    accounts, people = int(args.accounts * args.scale), int(args.people * args.scale)
    sandbox = data_sandbox(accounts, people, args.seed)
    journey, audience, email = setup_journey(sandbox)
    mail.outbox = []

    now = timezone.now()
    enroll_seconds, ids = timed(enroll_new_members, journey, now=now)
    enrolled_people = PersonState.objects.filter(enrollment__journey=journey, person__isnull=False).count()
    print(f"  enrolled {len(ids):,} accounts / {enrolled_people:,} people in {enroll_seconds:,.2f} s")
    first_seconds, _ = timed(advance_all, ids, now)
    print(f"  first leg (n1→n7) in {first_seconds:,.2f} s; {len(mail.outbox):,} emails")
    legs = []
    for days in (1, 3, 4.1, 5):
        seconds, woken = timed(sweep_and_advance, now + dt.timedelta(days=days))
        legs.append((days, seconds, woken))
        print(f"  sweep at +{days} d: {woken:,} tokens woken, {seconds:,.2f} s")
    total = first_seconds + sum(s for _, s, _ in legs)
    visits = NodeVisit.objects.filter(journey=journey).count()
    finished = PersonState.objects.filter(enrollment__journey=journey, state="finished").count()
    publish_seconds, publish_nodes = measure_publish(sandbox, audience, email)

    people_rate = enrolled_people / total if total else 0
    rows = [
        ("measure", "figure", "target", "verdict"),
        ("data set", f"{len(ids):,} accounts, {enrolled_people:,} people", "—", "—"),
        ("enrollment (accounts + people)", f"{enroll_seconds:,.2f} s ({(len(ids) + enrolled_people) / max(enroll_seconds, 1e-9):,.0f} tokens/s)", "—", "—"),
        ("first leg: split, 2 actions, email, wait", f"{first_seconds:,.2f} s ({enrolled_people / max(first_seconds, 1e-9):,.0f} people/s)", "—", "—"),
        *[(f"sweep at +{d} d and advances", f"{s:,.2f} s ({w:,} tokens woken)", "—", "—") for d, s, w in legs],
        ("whole 20-node journey: accounts/s", f"{len(ids) / max(total, 1e-9):,.1f}", "—", "—"),
        ("whole 20-node journey: people/s", f"{people_rate:,.1f}", "—", "—"),
        ("node visits / side effects / emails", f"{visits:,} / {SideEffect.objects.filter(version=journey.current_version).count():,} / {len(mail.outbox):,}", "—", "—"),
        ("tokens finished", f"{finished:,} of {enrolled_people + len(ids):,}", "—", "—"),
        (f"publish a {publish_nodes}-node journey", f"{publish_seconds * 1000:,.0f} ms", f"≤ {TARGET_PUBLISH_SECONDS:.0f} s", verdict(publish_seconds <= TARGET_PUBLISH_SECONDS)),
    ]  # fmt: skip
    print()
    print_table(rows)


if __name__ == "__main__":
    main()
