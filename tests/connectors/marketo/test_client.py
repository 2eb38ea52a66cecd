"""The Marketo client against the stateful fake server: paging, tokens, retries, quota, chunking,
bulk export and the shared rate limiter."""

import re
import threading
import time
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest

from connectors.marketo import MarketoClient, MarketoError, MarketoQuotaExceeded, Page
from connectors.marketo.ratelimit import LocalLimiter, RedisLimiter, limiter_for

REDIS_URL = "redis://127.0.0.1:6379/11"
HOUR_AGO = datetime.now(UTC) - timedelta(hours=1)


def make_client(fake, **kwargs) -> MarketoClient:
    return MarketoClient(
        munchkin_id=fake.munchkin_id,
        client_id=fake.client_id,
        client_secret=fake.client_secret,
        rest_base_url=fake.rest_base_url,
        identity_base_url=fake.identity_base_url,
        **kwargs,
    )


def api_calls(fake, path):
    return [r for r in fake.requests if r.path == path]


class FakeClock:
    def __init__(self, start: float):
        self.now = start

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


# ---------------------------------------------------------------------- reading and paging


def test_for_instance_uses_the_instance_urls_and_credentials(marketo_instance, fake_marketo):
    client = MarketoClient.for_instance(marketo_instance)
    assert client.root_url == fake_marketo.base_url
    assert client.identity_url == fake_marketo.identity_base_url
    result = client.test_connection()
    assert result["ok"] and result["munchkin_id"] == fake_marketo.munchkin_id
    assert result["lead_fields"] > 0 and 3500 < result["token_expires_in"] <= 3600


def test_test_connection_reports_bad_credentials(marketo_instance, fake_marketo):
    marketo_instance.client_secret = "wrong"
    with pytest.raises(MarketoError) as caught:
        MarketoClient.for_instance(marketo_instance).test_connection()
    assert caught.value.code == "HTTP 401"
    assert "client ID and secret" in str(caught.value) and "Bad client credentials" in str(caught.value)


def test_default_urls_derive_from_the_munchkin_id():
    client = MarketoClient(munchkin_id="123-abc-456", client_id="c", client_secret="s")
    assert client.root_url == "https://123-ABC-456.mktorest.com"
    assert client.identity_url == "https://123-ABC-456.mktorest.com/identity"


def test_leads_by_filter_follow_next_page_tokens(marketo_client, fake_marketo):
    ids = {fake_marketo.add_lead(email=f"p{i}@acme.test", company="Acme") for i in range(305)}
    fake_marketo.add_lead(email="other@else.test", company="Else")

    leads = marketo_client.get_leads_by_filter("company", ["Acme"], ["email", "company"])

    assert {lead["id"] for lead in leads} == ids
    assert all(lead["company"] == "Acme" for lead in leads)
    pages = api_calls(fake_marketo, "/rest/v1/leads.json")
    assert len(pages) == 2 and "nextPageToken" in pages[1].query


def test_lead_changes_page_until_no_more_and_resume_from_the_stored_token(marketo_client, fake_marketo):
    first = [fake_marketo.add_lead(email=f"c{i}@acme.test") for i in range(301)]
    fake_marketo.update_lead(first[0], firstName="Ada")
    fake_marketo.update_lead(first[1], title="CTO")  # not a watched field

    token = marketo_client.get_paging_token(HOUR_AGO)
    page1 = marketo_client.get_lead_changes(token, ["firstName", "email"])
    page2 = marketo_client.get_lead_changes(page1.next_token, ["firstName", "email"])

    assert isinstance(page1, Page) and len(page1.records) == 300 and page1.more
    assert [r["activityTypeId"] for r in page2.records] == [12, 13] and not page2.more
    change = page2.records[1]
    assert change["leadId"] == first[0] and change["fields"][0]["name"] == "firstName"
    assert change["fields"][0]["newValue"] == "Ada"
    # Nothing new: the same checkpoint answers empty; a later change shows up from it.
    assert marketo_client.get_lead_changes(page2.next_token, ["firstName"]).records == []
    fake_marketo.update_lead(first[2], firstName="Grace")
    later = marketo_client.get_lead_changes(page2.next_token, ["firstName"])
    assert [(r["leadId"], r["fields"][0]["newValue"]) for r in later.records] == [(first[2], "Grace")]


def test_activities_and_deleted_leads(marketo_client, fake_marketo):
    lead = fake_marketo.add_lead(email="a@acme.test")
    gone = fake_marketo.add_lead(email="gone@acme.test", firstName="Gone")
    fake_marketo.add_activity(lead, 1, primary_attribute_value="/pricing", attributes={"Query Parameters": "a=1"})
    fake_marketo.add_activity(lead, 11, primary_attribute_value="Newsletter", primary_attribute_value_id=7)
    fake_marketo.delete_lead(gone)
    token = marketo_client.get_paging_token(HOUR_AGO)

    visits = marketo_client.get_activities(token, [1, 11])
    deleted = marketo_client.get_deleted_leads(token)

    assert [(a["activityTypeId"], a["primaryAttributeValue"]) for a in visits.records] == [
        (1, "/pricing"), (11, "Newsletter")
    ]
    assert visits.records[0]["attributes"] == [{"name": "Query Parameters", "value": "a=1"}]
    assert [r["leadId"] for r in deleted.records] == [gone]
    with pytest.raises(ValueError, match="1 to 10 activity types"):
        marketo_client.get_activities(token, list(range(1, 12)))


def test_naive_datetimes_are_refused(marketo_client):
    with pytest.raises(ValueError, match="aware datetime"):
        marketo_client.get_paging_token(datetime(2026, 1, 1))


def test_lists_members_activity_types_programs(marketo_client, fake_marketo):
    lead = fake_marketo.add_lead(email="m@acme.test", firstName="Mia")
    list_id = fake_marketo.add_list("Webinar invitees")
    fake_marketo.add_to_list(list_id, [lead])
    webinar = fake_marketo.add_program("Q4 webinar", type="webinar")
    for i in range(205):
        fake_marketo.add_program(f"Program {i}")
    fake_marketo.add_program_member(webinar, lead, status="Registered")

    lists = marketo_client.get_lists()
    members = marketo_client.get_list_members(list_id, ["email", "firstName"])
    programs = marketo_client.get_programs()
    program_members = marketo_client.get_program_members(webinar, ["statusName"])

    assert [lst["name"] for lst in lists.records] == ["Webinar invitees"] and not lists.more
    assert members.records == [{"id": lead, "email": "m@acme.test", "firstName": "Mia"}]
    assert len(programs) == 206 and programs[0]["name"] == "Q4 webinar"
    assert len(api_calls(fake_marketo, "/rest/asset/v1/programs.json")) == 2
    assert [(m["leadId"], m["statusName"]) for m in program_members.records] == [(lead, "Registered")]
    assert {t["name"] for t in marketo_client.get_activity_types()} >= {"New Lead", "Change Data Value"}


# ---------------------------------------------------------------------- writing and chunking


def test_list_add_and_remove_in_chunks_of_300_with_per_record_status(marketo_client, fake_marketo):
    ids = [fake_marketo.add_lead(email=f"l{i}@acme.test") for i in range(650)]
    list_id = fake_marketo.add_list("Big list")

    added = marketo_client.add_leads_to_list(list_id, [*ids, 999_999])

    calls = api_calls(fake_marketo, f"/rest/v1/lists/{list_id}/leads.json")
    assert [len(c.json["input"]) for c in calls] == [300, 300, 51]
    assert [r["status"] for r in added].count("added") == 650
    assert added[-1] == {"id": 999_999, "status": "skipped", "reasons": [{"code": "1004", "message": "Lead not found"}]}
    assert fake_marketo.list_members(list_id) == ids

    removed = marketo_client.remove_leads_from_list(list_id, [ids[0], ids[0] + 10_000])
    assert [r["status"] for r in removed] == ["removed", "skipped"]
    assert fake_marketo.list_members(list_id) == ids[1:]


def test_sync_leads_chunks_and_reports_each_record(marketo_client, fake_marketo):
    existing = fake_marketo.add_lead(email="old@acme.test")
    leads = [{"email": f"s{i}@acme.test"} for i in range(300)] + [{"email": "old@acme.test"}]

    results = marketo_client.sync_leads(leads)

    assert [len(c.json["input"]) for c in fake_marketo.lead_syncs()] == [300, 1]
    assert all(c.json["action"] == "createOnly" and c.json["lookupField"] == "email" for c in fake_marketo.lead_syncs())
    assert [r["status"] for r in results[:300]] == ["created"] * 300
    assert results[300]["id"] == existing and results[300]["status"] == "skipped"
    assert results[300]["reasons"][0]["code"] == "1005"
    updated = marketo_client.sync_leads([{"email": "nobody@acme.test"}], action="updateOnly")
    assert updated[0]["status"] == "skipped" and updated[0]["reasons"][0]["code"] == "1004"


def test_long_filters_use_post_with_method_get_and_create_nothing(marketo_client, fake_marketo):
    emails = [f"a-rather-long-mailbox-name-{i:04d}@subsidiary.example.com" for i in range(650)]
    ids = [fake_marketo.add_lead(email=email) for email in emails[::50]]

    leads = marketo_client.get_leads_by_filter("email", emails, ["email"])

    assert sorted(lead["id"] for lead in leads) == ids
    lookups = api_calls(fake_marketo, "/rest/v1/leads.json")
    assert [len(c.params["filterValues"][0].split(",")) for c in lookups] == [300, 300, 50]
    assert [c.http_method for c in lookups] == ["POST", "POST", "GET"]
    assert lookups[0].query == {"_method": ["GET"]} and lookups[0].json is None
    assert fake_marketo.lead_syncs() == []  # no lead was created or updated


def test_oversized_record_is_refused_before_any_call(marketo_client, fake_marketo):
    with pytest.raises(ValueError, match="1 MB"):
        marketo_client.sync_leads([{"email": "big@acme.test", "notes": "x" * 1_100_000}])
    assert fake_marketo.lead_syncs() == []


# ---------------------------------------------------------------------- tokens, errors and retries


def test_token_is_cached_and_refreshed_after_expiry_mid_run(marketo_client, fake_marketo):
    for i in range(3):
        fake_marketo.add_lead(email=f"t{i}@acme.test")
    marketo_client.get_leads_by_filter("email", ["t0@acme.test"], ["email"])
    marketo_client.get_leads_by_filter("email", ["t1@acme.test"], ["email"])
    assert len(fake_marketo.calls(path="/identity/oauth/token")) == 1

    fake_marketo.expire_tokens()
    leads = marketo_client.get_leads_by_filter("email", ["t2@acme.test"], ["email"])

    assert [lead["email"] for lead in leads] == ["t2@acme.test"]
    assert len(fake_marketo.calls(path="/identity/oauth/token")) == 2
    answers = [c.response["errors"] for c in api_calls(fake_marketo, "/rest/v1/leads.json")]
    assert answers[2] == [{"code": "602", "message": "Access token expired"}] and answers[3] == []


def test_token_refreshed_before_it_expires(fake_marketo, no_sleep):
    clock = FakeClock(datetime.now(UTC).timestamp())
    client = make_client(fake_marketo, clock=clock, sleep=no_sleep)
    client.get_activity_types()
    clock.now += 3600 - 59  # under a minute left
    client.get_activity_types()
    assert len(fake_marketo.calls(path="/identity/oauth/token")) == 2
    assert all(c.response["success"] for c in api_calls(fake_marketo, "/rest/v1/activities/types.json"))


def test_token_error_twice_in_a_row_surfaces(marketo_client, fake_marketo):
    fake_marketo.fail_next("601", times=2)
    with pytest.raises(MarketoError) as caught:
        marketo_client.get_activity_types()
    assert caught.value.code == "601"


@pytest.mark.parametrize("code", ["606", "615", "604", "502", "608", "713"])
def test_transient_errors_back_off_then_succeed(marketo_client, fake_marketo, no_sleep, code):
    fake_marketo.fail_next(code, times=2)
    assert marketo_client.get_activity_types()
    assert len(api_calls(fake_marketo, "/rest/v1/activities/types.json")) == 3
    # Exponential with jitter: each delay within [half, full] of base * 2**attempt.
    assert len(no_sleep) == 2 and 1 <= no_sleep[0] <= 2 and 2 <= no_sleep[1] <= 4


def test_http_5xx_and_connection_errors_are_retried(marketo_client, fake_marketo, no_sleep):
    fake_marketo.fail_next(503, times=1)
    fake_marketo.fail_next(500, times=1)
    assert marketo_client.get_activity_types()
    assert [c.status for c in api_calls(fake_marketo, "/rest/v1/activities/types.json")] == [503, 500, 200]

    client = make_client(fake_marketo, sleep=no_sleep, max_attempts=2)
    client.root_url = "http://127.0.0.1:9"  # nothing listens there
    with pytest.raises(MarketoError) as caught:
        client.get_activity_types()
    assert caught.value.code == "connection"


def test_retries_are_bounded_and_surface_code_and_message(marketo_client, fake_marketo, no_sleep):
    fake_marketo.fail_next("604", times=50)
    with pytest.raises(MarketoError) as caught:
        marketo_client.get_activity_types()
    assert caught.value.code == "604" and caught.value.message == "Request timed out"
    assert str(caught.value) == "Marketo error 604: Request timed out"
    assert len(api_calls(fake_marketo, "/rest/v1/activities/types.json")) == marketo_client.max_attempts
    assert len(no_sleep) == marketo_client.max_attempts - 1


def test_business_errors_are_not_retried(marketo_client, fake_marketo, no_sleep):
    with pytest.raises(MarketoError) as caught:
        marketo_client.get_leads_by_filter("email", ["a@acme.test"], ["noSuchField"])
    assert (caught.value.code, caught.value.message) == ("1006", "Field 'noSuchField' not found")
    assert len(api_calls(fake_marketo, "/rest/v1/leads.json")) == 1 and no_sleep == []


def test_an_answer_that_is_not_json_is_a_clear_error(marketo_client, fake_marketo):
    fake_marketo.fail_next(200)  # an HTML page with status 200, as a captive proxy sends
    with pytest.raises(MarketoError) as caught:
        marketo_client.get_lists()
    assert caught.value.code == "invalid_response" and "/rest/v1/lists.json" in caught.value.message


def test_daily_quota_stops_cleanly_and_blocks_the_rest_of_the_day(marketo_instance, fake_marketo, no_sleep):
    clock = FakeClock(datetime(2026, 11, 25, 22, 0, tzinfo=UTC).timestamp())
    client = MarketoClient.for_instance(marketo_instance, sleep=no_sleep, clock=clock)
    fake_marketo.quota_after(1)
    client.get_activity_types()

    with pytest.raises(MarketoQuotaExceeded) as caught:
        client.get_activity_types()
    assert caught.value.code == "607" and caught.value.resets_at == datetime(2026, 11, 26, tzinfo=UTC)
    assert no_sleep == []  # no retry
    made = len(fake_marketo.requests)

    # Every client of this instance (another worker's) now refuses without calling Marketo.
    other = MarketoClient.for_instance(marketo_instance, sleep=no_sleep, clock=clock)
    with pytest.raises(MarketoQuotaExceeded):
        other.get_lists()
    with pytest.raises(MarketoQuotaExceeded):
        client.get_activity_types()
    assert len(fake_marketo.requests) == made

    clock.now += 2 * 3600  # past UTC midnight
    fake_marketo.daily_quota = 50_000
    assert other.get_activity_types()


# ---------------------------------------------------------------------- bulk export

EXPORT_WINDOW = {"createdAt": {"startAt": "2026-11-01T00:00:00Z", "endAt": "2026-11-30T00:00:00Z"}}
NOV = datetime(2026, 11, 10, tzinfo=UTC)


def test_bulk_export_life_cycle(marketo_client, fake_marketo, no_sleep):
    fake_marketo.add_lead(email="in@acme.test", firstName="In", at=NOV)
    fake_marketo.add_lead(email="out@acme.test", at=datetime(2026, 10, 1, tzinfo=UTC))

    export_id = marketo_client.create_export_job("leads", ["id", "email", "firstName"], EXPORT_WINDOW)
    assert marketo_client.get_export_status("leads", export_id)["status"] == "Created"
    assert marketo_client.enqueue_export_job("leads", export_id)["status"] == "Queued"
    fake_marketo.export_auto_advance = False
    assert marketo_client.get_export_status("leads", export_id)["status"] == "Queued"
    fake_marketo.advance_exports()
    assert marketo_client.get_export_status("leads", export_id)["status"] == "Processing"
    fake_marketo.export_auto_advance = True

    status = marketo_client.wait_for_export("leads", export_id, poll=60)
    assert status["status"] == "Completed" and status["numberOfRecords"] == 1
    assert no_sleep == []  # completed at the first poll
    assert list(marketo_client.iter_export_file("leads", export_id)) == [
        {"id": str(min(fake_marketo.leads)), "email": "in@acme.test", "firstName": "In"}
    ]


def test_wait_for_export_polls_with_the_given_interval(marketo_client, fake_marketo):
    fake_marketo.add_lead(email="a@acme.test", at=NOV)
    export_id = marketo_client.create_export_job("leads", ["email"], EXPORT_WINDOW)
    marketo_client.enqueue_export_job("leads", export_id)
    waits = []
    status = marketo_client.wait_for_export("leads", export_id, poll=90, sleep=waits.append)
    assert status["status"] == "Completed" and waits == [90]  # Queued → Processing → Completed


def test_failed_and_cancelled_exports(marketo_client, fake_marketo, no_sleep):
    fake_marketo.fail_next_export("Export failed: disk full")
    failing = marketo_client.create_export_job("activities", None, EXPORT_WINDOW)
    marketo_client.enqueue_export_job("activities", failing)
    with pytest.raises(MarketoError) as caught:
        marketo_client.wait_for_export("activities", failing)
    assert caught.value.code == "export_failed" and "disk full" in str(caught.value)

    cancelled = marketo_client.create_export_job("activities", None, EXPORT_WINDOW)
    marketo_client.enqueue_export_job("activities", cancelled)
    assert marketo_client.cancel_export_job("activities", cancelled)["status"] == "Cancelled"
    with pytest.raises(MarketoError, match="cancelled"):
        marketo_client.wait_for_export("activities", cancelled)
    with pytest.raises(MarketoError) as caught:
        list(marketo_client.iter_export_file("activities", cancelled))
    assert caught.value.code == "1029" and "not completed" in caught.value.message


def test_export_rules_window_and_queue_limits(marketo_client, fake_marketo):
    too_long = {"createdAt": {"startAt": "2026-09-01T00:00:00Z", "endAt": "2026-10-15T00:00:00Z"}}
    with pytest.raises(MarketoError) as caught:
        marketo_client.create_export_job("leads", ["email"], too_long)
    assert caught.value.code == "1003" and "31 days" in caught.value.message
    with pytest.raises(ValueError, match="leads, activities"):
        marketo_client.create_export_job("opportunities", ["id"], EXPORT_WINDOW)

    fake_marketo.export_auto_advance = False
    jobs = [marketo_client.create_export_job("activities", None, EXPORT_WINDOW) for _ in range(11)]
    for job in jobs[:10]:
        marketo_client.enqueue_export_job("activities", job)
    with pytest.raises(MarketoError) as caught:
        marketo_client.enqueue_export_job("activities", jobs[10])
    assert caught.value.code == "1029" and "queue" in caught.value.message
    fake_marketo.advance_exports()
    fake_marketo.advance_exports()
    states = [marketo_client.get_export_status("activities", job)["status"] for job in jobs]
    assert states.count("Processing") == 2  # never more than two run at once


def test_export_file_streams_rows_with_quoting_and_unicode(marketo_client, fake_marketo):
    for i in range(1500):  # a ~100 KB file: several network chunks
        fake_marketo.add_lead(email=f"r{i}@acme.test", company=f"Zoë, \"Ltd\"\nline {i}", at=NOV)
    export_id = marketo_client.create_export_job("leads", ["email", "company"], EXPORT_WINDOW)
    marketo_client.enqueue_export_job("leads", export_id)
    marketo_client.wait_for_export("leads", export_id)

    rows = marketo_client.iter_export_file("leads", export_id)
    first = next(rows)  # a generator: rows come as the file arrives
    assert first == {"email": "r0@acme.test", "company": 'Zoë, "Ltd"\nline 0'}
    rest = list(rows)
    assert len(rest) == 1499 and rest[-1]["company"].endswith("line 1499")


@pytest.mark.parametrize("ignore_range", [False, True])
def test_export_download_cut_off_midway_resumes_without_repeating_rows(marketo_client, fake_marketo, ignore_range):
    for i in range(1200):
        fake_marketo.add_lead(email=f"r{i}@acme.test", company=f"Ünïcode, \"quoted\"\nrow {i}", at=NOV)
    export_id = marketo_client.create_export_job("leads", ["email", "company"], EXPORT_WINDOW)
    marketo_client.enqueue_export_job("leads", export_id)
    marketo_client.wait_for_export("leads", export_id)
    fake_marketo.ignore_range = ignore_range
    fake_marketo.cut_next_download(after_bytes=20_001)  # mid-row, mid-character maybe
    fake_marketo.cut_next_download(after_bytes=15_000)

    rows = list(marketo_client.iter_export_file("leads", export_id))

    assert [row["email"] for row in rows] == [f"r{i}@acme.test" for i in range(1200)]
    assert rows[777]["company"] == 'Ünïcode, "quoted"\nrow 777'
    downloads = fake_marketo.calls("GET", f"/bulk/v1/leads/export/{export_id}/file.json")
    ranges = [d.headers.get("Range") for d in downloads]
    assert ranges[0] is None and all(re.fullmatch(r"bytes=[1-9]\d*-", r) for r in ranges[1:])
    assert [d.status for d in downloads] == ([200, 200, 200] if ignore_range else [200, 206, 206])


def test_activity_export_has_marketo_columns(marketo_client, fake_marketo):
    lead = fake_marketo.add_lead(email="a@acme.test", at=NOV)
    fake_marketo.add_activity(lead, 2, primary_attribute_value="Contact us", attributes={"Webpage ID": 4}, at=NOV)
    export_id = marketo_client.create_export_job(
        "activities", None, {**EXPORT_WINDOW, "activityTypeIds": [2]}
    )
    marketo_client.enqueue_export_job("activities", export_id)
    marketo_client.wait_for_export("activities", export_id)
    [row] = list(marketo_client.iter_export_file("activities", export_id))
    assert row["leadId"] == str(lead) and row["activityTypeId"] == "2"
    assert row["primaryAttributeValue"] == "Contact us" and row["attributes"] == '{"Webpage ID": 4}'


# ---------------------------------------------------------------------- limits against the real fake counters


def test_client_limiter_keeps_under_the_server_rate_limit(fake_marketo, settings):
    fake_marketo.rate_limit, fake_marketo.rate_window = 3, 0.3
    client = make_client(fake_marketo, limiter=LocalLimiter(fake_marketo.munchkin_id, rate=3, window=0.3))
    for _ in range(7):
        client.get_activity_types()
    answers = [c.response["errors"] for c in api_calls(fake_marketo, "/rest/v1/activities/types.json")]
    assert answers == [[]] * 7  # never a 606


def test_server_rate_limit_is_counted_and_backed_off(fake_marketo, no_sleep):
    fake_marketo.rate_limit = 3
    client = make_client(fake_marketo, sleep=no_sleep, max_attempts=2)
    for _ in range(3):
        client.get_activity_types()
    with pytest.raises(MarketoError) as caught:
        client.get_activity_types()
    assert caught.value.code == "606" and len(no_sleep) == 1


def test_concurrent_calls_beyond_the_server_limit_get_615_and_retry(fake_marketo):
    fake_marketo.max_concurrent = 2
    client = make_client(fake_marketo, backoff_base=0.01, max_attempts=50,
                         limiter=LocalLimiter(fake_marketo.munchkin_id, concurrency=10))
    client.get_activity_types()  # token first, so the threads race on API calls only

    def saw_615():
        return any(e["code"] == "615" for c in api_calls(fake_marketo, "/rest/v1/activities/types.json")
                   for e in (c.response or {}).get("errors", []))

    with calls_held_in_flight(fake_marketo, client.get_activity_types, 3) as in_flight:
        wait_until(lambda: in_flight() == 2 and saw_615())
    assert saw_615()


def test_client_limiter_keeps_under_the_server_concurrency_limit(fake_marketo):
    fake_marketo.max_concurrent = 2
    client = make_client(fake_marketo, limiter=LocalLimiter(fake_marketo.munchkin_id, concurrency=2))
    client.get_activity_types()

    with calls_held_in_flight(fake_marketo, client.get_activity_types, 3) as in_flight:
        wait_until(lambda: in_flight() == 2)
    answers = [c.response["errors"] for c in api_calls(fake_marketo, "/rest/v1/activities/types.json")]
    assert answers == [[]] * 4  # the third call waited for a slot instead of drawing a 615


def wait_until(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the fake never reached the expected state"
        time.sleep(0.01)


@contextmanager
def calls_held_in_flight(fake, call, count):
    """Run ``call`` in ``count`` threads while the fake holds admitted calls; release them on exit
    and check that every call succeeded."""
    fake.gate = threading.Event()
    errors = []

    def work():
        try:
            call()
        except Exception as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(count)]
    for thread in threads:
        thread.start()
    try:
        yield fake.in_flight
    finally:
        fake.gate.set()
        for thread in threads:
            thread.join()
        fake.gate = None
    assert errors == []


# ---------------------------------------------------------------------- limiter semantics, local and Redis


@pytest.fixture(params=["local", "redis"])
def make_limiter(request, fake_marketo):
    made = []

    def make(clock, **kwargs):
        kwargs = {"clock": clock, "sleep": clock.sleep, **kwargs}
        if request.param == "local":
            limiter = LocalLimiter("111-AAA-111", **kwargs)
        else:
            limiter = RedisLimiter("111-AAA-111", redis_url=REDIS_URL, **kwargs)
            made.append(limiter)
        return limiter

    if request.param == "redis":
        import redis

        try:
            redis.Redis.from_url(REDIS_URL).ping()
        except redis.ConnectionError:
            pytest.skip(f"Redis is not reachable at {REDIS_URL}")
    yield make
    for limiter in made:
        limiter.clear()


def test_limiter_sliding_window(make_limiter):
    clock = FakeClock(1_700_000_000.0)
    limiter = make_limiter(clock, rate=3, window=20)
    starts = []
    for _ in range(5):
        limiter.release(limiter.acquire())
        starts.append(clock.now - 1_700_000_000.0)
        clock.now += 1
    # Calls 4 and 5 wait until the first and second leave the 20 s window.
    assert starts == [0, 1, 2, 20, 21]


def test_limiter_concurrency_slots(make_limiter):
    clock = FakeClock(1_700_000_000.0)
    limiter = make_limiter(clock, concurrency=2)
    held = [limiter.acquire(), limiter.acquire()]
    waited = []

    def sleep(seconds):  # another worker finishes while we wait
        waited.append(seconds)
        limiter.release(held.pop())

    limiter.sleep = sleep
    third = limiter.acquire()
    assert len(waited) == 1 and third not in held


def test_limiter_slot_of_a_killed_worker_expires(make_limiter):
    clock = FakeClock(1_700_000_000.0)
    limiter = make_limiter(clock, concurrency=1, slot_ttl=30)
    limiter.acquire()  # never released: the worker died
    limiter.acquire()
    assert clock.now - 1_700_000_000.0 >= 30


def test_limiter_daily_quota_and_607_block(make_limiter):
    clock = FakeClock(datetime(2026, 11, 25, 23, 0, tzinfo=UTC).timestamp())
    limiter = make_limiter(clock, daily_quota=3)
    shared = make_limiter(clock, daily_quota=3)  # another worker, same instance
    for _ in range(3):
        limiter.release(limiter.acquire())
    assert shared.calls_today() == 3
    with pytest.raises(MarketoQuotaExceeded) as caught:
        shared.acquire()
    assert caught.value.resets_at == datetime(2026, 11, 26, tzinfo=UTC)

    clock.now += 3600  # a new UTC day
    limiter.release(limiter.acquire())
    limiter.mark_quota_exhausted()  # Marketo said 607 before our own count ran out
    with pytest.raises(MarketoQuotaExceeded):
        shared.acquire()
    with pytest.raises(MarketoQuotaExceeded):
        shared.check_quota()
    clock.now += 24 * 3600
    shared.check_quota()
    shared.release(shared.acquire())


def test_limiter_for_picks_redis_when_configured(settings, fake_marketo):
    settings.REDIS_URL = ""
    assert isinstance(limiter_for("111-AAA-111"), LocalLimiter)
    settings.REDIS_URL = REDIS_URL
    assert isinstance(limiter_for("111-AAA-111"), RedisLimiter)


def test_token_shared_through_redis(fake_marketo, settings):
    import redis

    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.ConnectionError:
        pytest.skip(f"Redis is not reachable at {REDIS_URL}")
    settings.REDIS_URL = REDIS_URL
    first, second = make_client(fake_marketo), make_client(fake_marketo)  # two workers
    first.get_activity_types()
    second.get_activity_types()
    assert len(fake_marketo.calls(path="/identity/oauth/token")) == 1
    assert isinstance(first.limiter, RedisLimiter) and second.limiter.calls_today() == 2


# ---------------------------------------------------------------------- the fake enforces Marketo's rules


def test_fake_refuses_what_marketo_refuses(fake_marketo, marketo_client):
    import requests

    marketo_client.get_activity_types()  # a token
    token, _ = marketo_client.tokens.get()
    base, auth = fake_marketo.base_url, {"Authorization": f"Bearer {token}"}
    list_id = fake_marketo.add_list("L")

    def error(response):
        assert response.status_code == 200 and response.json()["success"] is False
        return response.json()["errors"][0]["code"]

    too_many = {"input": [{"id": i} for i in range(301)]}
    assert error(requests.post(f"{base}/rest/v1/lists/{list_id}/leads.json", json=too_many, headers=auth)) == "1003"
    assert error(requests.post(f"{base}/rest/v1/leads.json", json={"input": [{"email": "x"}] * 301},
                               headers=auth)) == "1003"
    assert error(requests.get(f"{base}/rest/v1/leads.json", params={"filterType": "email",
                              "filterValues": ",".join(f"{i}@x.io" for i in range(301))}, headers=auth)) == "1003"
    assert error(requests.get(f"{base}/rest/v1/activities/types.json")) == "600"  # no token
    types_url = f"{base}/rest/v1/activities/types.json"
    assert error(requests.get(types_url, headers={"Authorization": "Bearer nope"})) == "601"
    bad_token = {"nextPageToken": "!!", "activityTypeIds": "1"}
    assert error(requests.get(f"{base}/rest/v1/activities.json", params=bad_token, headers=auth)) == "1003"
    assert requests.get(f"{base}/rest/v1/nothing.json", headers=auth).status_code == 404
    refused = requests.get(f"{base}/identity/oauth/token", params={"grant_type": "client_credentials",
                           "client_id": fake_marketo.client_id, "client_secret": "wrong"})
    assert refused.status_code == 401 and refused.json()["error"] == "unauthorized"
