import datetime as dt

from cdp.choices import MembershipStatus
from cdp.models import Audience, AudienceMember, AudienceMembershipChange, Person
from cdp.services.membership import apply_membership, apply_membership_to_candidates
from tests.cdp.ingest_helpers import ingest

T0 = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)


def at(hours):
    return T0 + dt.timedelta(hours=hours)


def make_people(sandbox, titles):
    ingest(sandbox, "person", [{"email": f"p{n}@x.io", "job_title": t} for n, t in enumerate(titles)])
    return {p.email: p.pk for p in Person.objects.for_sandbox(sandbox)}


def ctos(sandbox):
    return Person.objects.for_sandbox(sandbox).filter(job_title="CTO").values("id")


def members(audience):
    return {
        (m.member_id, m.status)
        for m in AudienceMember.objects.filter(audience=audience)
    }


def history(audience):
    return sorted(AudienceMembershipChange.objects.filter(audience=audience).values_list("member_id", "change", "at"))


def test_full_runs_enter_exit_and_reenter_with_history(sandbox):
    ids = make_people(sandbox, ["CTO", "CTO", "CFO"])
    audience = Audience.objects.create(sandbox=sandbox, name="CTOs", definition={})
    assert apply_membership(audience, ctos(sandbox), now=at(0)) == (2, 0)
    assert members(audience) == {(ids["p0@x.io"], "realized"), (ids["p1@x.io"], "realized")}

    Person.objects.filter(pk=ids["p0@x.io"]).update(job_title="CEO")
    Person.objects.filter(pk=ids["p2@x.io"]).update(job_title="CTO")
    assert apply_membership(audience, ctos(sandbox), now=at(1)) == (1, 1)
    Person.objects.filter(pk=ids["p0@x.io"]).update(job_title="CTO")
    assert apply_membership(audience, ctos(sandbox), now=at(2)) == (1, 0)
    assert apply_membership(audience, ctos(sandbox), now=at(3)) == (0, 0)

    assert members(audience) == {(pk, "realized") for pk in ids.values()}
    p0 = AudienceMember.objects.get(audience=audience, member_id=ids["p0@x.io"])
    assert (p0.realized_at, p0.exited_at) == (at(2), None)
    assert history(audience) == sorted(
        [
            (ids["p0@x.io"], "entered", at(0)),
            (ids["p1@x.io"], "entered", at(0)),
            (ids["p0@x.io"], "exited", at(1)),
            (ids["p2@x.io"], "entered", at(1)),
            (ids["p0@x.io"], "entered", at(2)),
        ]
    )


def test_an_incremental_run_only_touches_its_candidates(sandbox):
    ids = make_people(sandbox, ["CTO", "CTO"])
    audience = Audience.objects.create(sandbox=sandbox, name="CTOs", definition={})
    apply_membership(audience, ctos(sandbox), now=at(0))
    Person.objects.filter(pk__in=ids.values()).update(job_title="CEO")
    # Only p0 changed as far as this run knows: p1 stays until its own change (or a full run) is seen.
    candidates = [ids["p0@x.io"]]
    entered, exited = apply_membership_to_candidates(
        audience, ctos(sandbox).filter(pk__in=candidates), now=at(1), candidates=candidates
    )
    assert (entered, exited) == (set(), {ids["p0@x.io"]})
    assert members(audience) == {(ids["p0@x.io"], MembershipStatus.EXITED), (ids["p1@x.io"], MembershipStatus.REALIZED)}


def test_memberships_of_two_audiences_are_independent(sandbox, other_sandbox):
    make_people(sandbox, ["CTO"])
    first = Audience.objects.create(sandbox=sandbox, name="A", definition={})
    second = Audience.objects.create(sandbox=sandbox, name="B", definition={})
    apply_membership(first, ctos(sandbox), now=at(0))
    assert apply_membership(second, ctos(sandbox).none(), now=at(0)) == (0, 0)
    assert AudienceMember.objects.filter(audience=second).count() == 0
