"""Signals other parts of Quorum listen to (audiences, buying groups, journeys).

``profiles_changed`` is sent after the ingest transaction commits, with the ids whose inputs
changed, so incremental evaluation only looks at those.
``audience_membership_changed`` is sent after an evaluation that moved members commits.
``people_merged`` is sent inside the merge transaction so listeners move their own rows from the
merged person to the survivor before the merged person is deleted.
``audience_deletion_requested`` is sent before an audience is deleted; a listener whose own objects
still need the audience answers with a sentence saying what and what to do, and the deletion is refused.
"""

from django.dispatch import Signal

profiles_changed = Signal()  # sandbox_id, person_ids: set[int], account_ids: set[int]
people_merged = Signal()  # sandbox_id, survivor_id: int, merged_id: int
# Sent after an evaluation that moved members commits. Listeners (dataflows, buying groups,
# journeys) read what moved from AudienceMembershipChange past their own cursor, so a missed
# signal delays work but never loses it.
audience_membership_changed = Signal()  # sandbox_id, audience_id: int, kind: str, entered: int, exited: int
audience_deletion_requested = Signal()  # audience: Audience; a listener returns a refusal sentence or None
