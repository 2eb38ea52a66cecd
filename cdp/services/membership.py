"""Audience membership, written set-wise: the diff between the stored members and the ids that
match now is applied with a few INSERT … SELECT and UPDATE statements, never row by row. An
incremental run (few candidate ids) diffs in Python and writes only what moved, in bulk.

Every entry and exit is appended to AudienceMembershipChange in the same statement set, so the
history and the membership can't disagree.
"""

from django.core.exceptions import EmptyResultSet
from django.db import connection, transaction
from django.db.models import CharField, DateTimeField, IntegerField, Value

from cdp.choices import MembershipStatus
from cdp.models import AudienceMember, AudienceMembershipChange

ENTERED = AudienceMembershipChange.Change.ENTERED
EXITED = AudienceMembershipChange.Change.EXITED


def insert_from_select(model, columns: list[str], values_queryset) -> int:
    """INSERT INTO model (columns) <the queryset's SELECT>; returns the number of rows inserted."""
    try:
        select_sql, params = values_queryset.query.sql_with_params()
    except EmptyResultSet:  # e.g. a condition that can match nothing: nothing to insert
        return 0
    names = ", ".join(connection.ops.quote_name(model._meta.get_field(c).column) for c in columns)
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {connection.ops.quote_name(model._meta.db_table)} ({names}) {select_sql}", params)
        return cursor.rowcount


def _history_rows(members_queryset, audience, change, now):
    return members_queryset.annotate(
        _sandbox=Value(audience.sandbox_id, output_field=IntegerField()),
        _audience=Value(audience.pk, output_field=IntegerField()),
        _change=Value(change, output_field=CharField()),
        _at=Value(now, output_field=DateTimeField()),
    ).values_list("_sandbox", "_audience", "member_id", "_change", "_at")


def apply_membership(audience, matching_ids, *, now) -> tuple[int, int]:
    """Make the audience's realized members equal ``matching_ids`` (a queryset of ids) everywhere
    (a full run; incremental runs use apply_membership_to_candidates). Returns (entered, exited)."""
    history_columns = ["sandbox", "audience", "member_id", "change", "at"]
    members = AudienceMember.objects.filter(audience=audience)
    with transaction.atomic():
        leaving = members.filter(status=MembershipStatus.REALIZED).exclude(member_id__in=matching_ids)
        insert_from_select(AudienceMembershipChange, history_columns, _history_rows(leaving, audience, EXITED, now))
        exited = leaving.update(status=MembershipStatus.EXITED, exited_at=now)

        returning = members.filter(status=MembershipStatus.EXITED, member_id__in=matching_ids)
        insert_from_select(AudienceMembershipChange, history_columns, _history_rows(returning, audience, ENTERED, now))
        entered = returning.update(status=MembershipStatus.REALIZED, realized_at=now, exited_at=None)

        newcomers = matching_ids.exclude(pk__in=AudienceMember.objects.filter(audience=audience).values("member_id"))
        entered += insert_from_select(
            AudienceMember,
            ["sandbox", "audience", "member_id", "status", "realized_at"],
            newcomers.annotate(
                _sandbox=Value(audience.sandbox_id, output_field=IntegerField()),
                _audience=Value(audience.pk, output_field=IntegerField()),
                _status=Value(MembershipStatus.REALIZED.value, output_field=CharField()),
                _at=Value(now, output_field=DateTimeField()),
            ).values_list("_sandbox", "_audience", "pk", "_status", "_at"),
        )
        # The newcomers' history rows: members realized at exactly this run's time with no row yet.
        fresh = AudienceMember.objects.filter(audience=audience, realized_at=now, status=MembershipStatus.REALIZED).exclude(
            member_id__in=AudienceMembershipChange.objects.filter(audience=audience, at=now).values("member_id")
        )
        insert_from_select(AudienceMembershipChange, history_columns, _history_rows(fresh, audience, ENTERED, now))
    return entered, exited


def apply_membership_to_candidates(audience, matching_ids, *, now, candidates) -> tuple[set, set]:
    """The incremental form of apply_membership: the ids are few, so the matching ids and the
    candidates' stored states are read once and the diff is computed here; a run where nothing
    moved costs two SELECTs and writes nothing. Returns the ids that (entered, exited)."""
    matching, candidates = set(matching_ids.values_list("pk", flat=True)), set(candidates)
    members = AudienceMember.objects.filter(audience=audience)
    stored = dict(members.filter(member_id__in=candidates | matching).values_list("member_id", "status"))
    leaving = {i for i in candidates - matching if stored.get(i) == MembershipStatus.REALIZED}
    returning = {i for i in matching if stored.get(i) == MembershipStatus.EXITED}
    newcomers = matching - stored.keys()
    if not (leaving or returning or newcomers):
        return set(), set()
    entered = returning | newcomers

    def history(ids, change):
        return [
            AudienceMembershipChange(sandbox_id=audience.sandbox_id, audience=audience, member_id=i, change=change, at=now)
            for i in sorted(ids)
        ]

    with transaction.atomic(savepoint=False):  # the caller's savepoint, if any, isolates the run
        if leaving:
            members.filter(member_id__in=leaving).update(status=MembershipStatus.EXITED, exited_at=now)
        if returning:
            members.filter(member_id__in=returning).update(status=MembershipStatus.REALIZED, realized_at=now, exited_at=None)
        AudienceMember.objects.bulk_create(
            AudienceMember(
                sandbox_id=audience.sandbox_id, audience=audience, member_id=i, status=MembershipStatus.REALIZED, realized_at=now
            )
            for i in sorted(newcomers)
        )
        AudienceMembershipChange.objects.bulk_create(history(leaving, EXITED) + history(entered, ENTERED))
    return entered, leaving
