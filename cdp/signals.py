"""Signals other parts of Quorum listen to (audiences, buying groups, journeys).

``profiles_changed`` is sent after the ingest transaction commits, with the ids whose inputs
changed, so incremental evaluation only looks at those.
``people_merged`` is sent inside the merge transaction so listeners move their own rows from the
merged person to the survivor before the merged person is deleted.
"""

from django.dispatch import Signal

profiles_changed = Signal()  # sandbox_id, person_ids: set[int], account_ids: set[int]
people_merged = Signal()  # sandbox_id, survivor_id: int, merged_id: int
