"""Fixtures for source sync tests: the fake Marketo (from tests/connectors/marketo), a source
connection on it, and ``drive`` to run a sync to its end the way workers and the beat would."""

import datetime as dt

import pytest

from connectors.models import SyncRun, SyncState
from connectors.services.sources import create_source_connection, run_sync, start_sync

START = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def days_ago(n):
    return START - dt.timedelta(days=n)


@pytest.fixture
def history(fake_marketo):
    """Leads and activities spread over three 31-day windows, a static list and a program."""
    fake = fake_marketo
    ada = fake.add_lead("ada@acme.com", firstName="Ada", lastName="Lovelace", company="Acme", sfdcAccountId="001000000000001AAA",
                        sfdcContactId="003000000000001AAA", at=days_ago(70))
    bob = fake.add_lead("bob@globex.com", firstName="Bob", title="CTO", company="Globex", website="https://www.globex.com/about",
                        at=days_ago(40))
    cy = fake.add_lead("cy@initech.com", firstName="Cy", at=days_ago(5))
    fake.add_activity(ada, 1, primary_attribute_value="/pricing", attributes={"Query Parameters": "a=1"}, at=days_ago(69))
    fake.add_activity(bob, 10, primary_attribute_value="Newsletter", at=days_ago(39))
    fake.add_activity(bob, 11, primary_attribute_value="Newsletter", attributes={"Link": "https://x.io"}, at=days_ago(39))
    fake.add_activity(cy, 2, primary_attribute_value="Contact us", at=days_ago(4))
    webinar_list = fake.add_list("Webinar attendees")
    fake.add_to_list(webinar_list, [ada, bob])
    program = fake.add_program("Spring webinar")
    fake.add_program_member(program, cy, status="Attended", reached_success=True, at=days_ago(3))
    return {"ada": ada, "bob": bob, "cy": cy, "list": webinar_list, "program": program}


@pytest.fixture
def connection(sandbox, marketo_instance, admin_user):
    return create_source_connection(
        sandbox=sandbox,
        name="Marketo production",
        marketo_instance=marketo_instance,
        created_by=admin_user,
        backfill_since=START - dt.timedelta(days=75),
    )


class Driver:
    """Runs a sync like workers and the beat would: each pass claims the run and works until it is
    parked (bulk export not ready), paused or finished; the clock then moves past ``resume_after``."""

    def __init__(self):
        self.now = START

    def start(self, connection, mode="backfill") -> SyncRun:
        return start_sync(connection, mode)

    def __call__(self, run: SyncRun, *, passes: int = 100) -> SyncRun:
        for _ in range(passes):
            run_sync(run.pk, now=self.now)
            run.refresh_from_db()
            if run.state != SyncState.QUEUED:
                return run
            self.now = max(self.now, run.resume_after or self.now) + dt.timedelta(seconds=1)
        raise AssertionError(f"run still {run.state} after {passes} passes: {run.phase}")


@pytest.fixture
def drive():
    return Driver()
