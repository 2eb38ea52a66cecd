"""Buying group scores.

Completeness (0–100): for each *required* role of the group's roles template,
``min(members with that role / required count, 1)``; the average of those, times 100. A template
without required roles has nothing missing: 100.

Engagement (0–100), computed daily over the 30 days before the run:
- each member's experience events are mapped to an activity (``ACTIVITY_OF_EVENT``) worth
  ``ACTIVITY_POINTS`` (event attendance and interesting moment 60; form fill, link click and page
  view 40; email open and email click 30);
- per person, day (UTC) and activity at most ``DAILY_CAP`` (20) occurrences count;
- raw points = the sum over all members; score = ``min(100, 100 × raw / FULL_ENGAGEMENT_POINTS)``,
  rounded to one decimal. ``FULL_ENGAGEMENT_POINTS`` (3,000 by default, setting
  ``BUYING_GROUP_FULL_ENGAGEMENT_POINTS``) is the engagement that counts as full: on average
  100 points a day over the 30 days, e.g. one email open, one email click and one page view a day.
  A fixed scale (not one relative to the other groups) keeps a group's score comparable across days.
"""

import datetime as dt
from collections import defaultdict

from django.conf import settings
from django.db.models import Count
from django.db.models.functions import TruncDate
from django.utils import timezone

from cdp.choices import EventType
from cdp.models import ExperienceEvent
from journeys.choices import BuyingGroupStatus
from journeys.models import BuyingGroup, BuyingGroupMember, TemplateRole

LOOK_BACK = dt.timedelta(days=30)
DAILY_CAP = 20
DEFAULT_FULL_ENGAGEMENT_POINTS = 3000

ACTIVITY_POINTS = {
    "event_attendance": 60,
    "interesting_moment": 60,
    "form_fill": 40,
    "link_click": 40,
    "page_view": 40,
    "email_open": 30,
    "email_click": 30,
}
# Link clicks on web pages arrive as custom events from web tracking (the cdp has no standard type).
ACTIVITY_OF_EVENT = {
    EventType.EVENT_ATTENDED: "event_attendance",
    EventType.INTERESTING_MOMENT: "interesting_moment",
    EventType.FORM_FILLED: "form_fill",
    "custom.link_click": "link_click",
    EventType.WEB_VISIT: "page_view",
    EventType.EMAIL_OPENED: "email_open",
    EventType.EMAIL_CLICKED: "email_click",
}
AUTO_STATUSES = (BuyingGroupStatus.IN_PROGRESS, BuyingGroupStatus.FULL)


def full_engagement_points() -> int:
    return getattr(settings, "BUYING_GROUP_FULL_ENGAGEMENT_POINTS", DEFAULT_FULL_ENGAGEMENT_POINTS)


def completeness_of(required: list[tuple[int, int]], assigned: dict[int, int]) -> float:
    """``required``: (role id, required count) pairs; ``assigned``: members per role id."""
    if not required:
        return 100.0
    filled = sum(min(assigned.get(role_id, 0) / count, 1) for role_id, count in required)
    return round(100 * filled / len(required), 1)


def refresh_completeness(group_ids, *, now=None) -> None:
    """Recompute completeness (and the in progress / full status that follows it) of these groups."""
    now = now or timezone.now()
    groups = list(BuyingGroup.objects.filter(pk__in=list(group_ids)).select_related("solution_interest"))
    if not groups:
        return
    template_ids = {g.solution_interest.roles_template_id for g in groups}
    required = defaultdict(list)
    for template_id, role_id, count in TemplateRole.objects.filter(template_id__in=template_ids, required=True).values_list(
        "template_id", "role_id", "required_count"
    ):
        required[template_id].append((role_id, max(count, 1)))
    assigned = defaultdict(dict)
    for row in BuyingGroupMember.objects.filter(group__in=groups).values("group_id", "role_id").annotate(n=Count("id")):
        assigned[row["group_id"]][row["role_id"]] = row["n"]
    for group in groups:
        before = (group.completeness_score, group.status)
        group.completeness_score = completeness_of(required[group.solution_interest.roles_template_id], assigned[group.pk])
        group.completeness_computed_at = now
        if group.status in AUTO_STATUSES:
            group.status = BuyingGroupStatus.FULL if group.completeness_score >= 100 else BuyingGroupStatus.IN_PROGRESS
        # updated_at tells journeys listening for "buying group changed" that something did.
        if (group.completeness_score, group.status) != before:
            group.updated_at = now
    BuyingGroup.objects.bulk_update(groups, ["completeness_score", "completeness_computed_at", "status", "updated_at"])


def engagement_points(sandbox, person_ids, *, now=None) -> dict[int, int]:
    """Raw engagement points per person over the look-back window (capped per day and activity)."""
    now = now or timezone.now()
    rows = (
        ExperienceEvent.objects.filter(
            sandbox=sandbox,
            person_id__in=person_ids,
            type__in=list(ACTIVITY_OF_EVENT),
            occurred_at__gte=now - LOOK_BACK,
            occurred_at__lt=now,
        )
        .annotate(day=TruncDate("occurred_at", tzinfo=dt.UTC))
        .values("person_id", "type", "day")
        .annotate(n=Count("id"))
        .order_by()
    )
    # Open and click are separate activities but both email; the cap is per activity.
    counts = defaultdict(int)
    for row in rows:
        counts[(row["person_id"], ACTIVITY_OF_EVENT[row["type"]], row["day"])] += row["n"]
    points = defaultdict(int)
    for (person_id, activity, _day), n in counts.items():
        points[person_id] += ACTIVITY_POINTS[activity] * min(n, DAILY_CAP)
    return points


def engagement_of(raw_points: int) -> float:
    return round(min(100.0, 100 * raw_points / full_engagement_points()), 1)


def refresh_engagement(sandbox, *, group_ids=None, now=None, chunk=500) -> int:
    """Recompute the engagement score of the sandbox's groups (or of ``group_ids``); returns how many."""
    now = now or timezone.now()
    groups = BuyingGroup.objects.for_sandbox(sandbox).order_by("pk")
    if group_ids is not None:
        groups = groups.filter(pk__in=list(group_ids))
    ids = list(groups.values_list("pk", flat=True))
    for start in range(0, len(ids), chunk):
        batch = ids[start : start + chunk]
        members = defaultdict(list)
        for group_id, person_id in BuyingGroupMember.objects.filter(group_id__in=batch).values_list("group_id", "person_id"):
            members[group_id].append(person_id)
        points = engagement_points(sandbox, {p for people in members.values() for p in people}, now=now)
        updated = [
            BuyingGroup(pk=group_id, engagement_score=engagement_of(sum(points.get(p, 0) for p in members.get(group_id, ()))),
                        engagement_computed_at=now)
            for group_id in batch
        ]  # fmt: skip
        BuyingGroup.objects.bulk_update(updated, ["engagement_score", "engagement_computed_at"])
    return len(ids)
