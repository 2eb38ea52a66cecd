"""The sandbox's merge policy, applied field by field. One rule for ingest updates and merges.

Each profile keeps ``provenance[field] = [dataset, iso timestamp]`` for the value it holds.
Timestamp-ordered: the value with the later timestamp wins. Dataset precedence: the dataset
ranked higher in the sandbox's list wins; within one dataset, the later timestamp wins.
"""

from cdp.choices import MergePolicy


class FieldMerger:
    def __init__(self, sandbox):
        self.by_precedence = sandbox.merge_policy == MergePolicy.DATASET_PRECEDENCE
        ranking = sandbox.dataset_precedence or []
        self.rank = {name: index for index, name in enumerate(ranking)}
        self.unranked = len(ranking)

    def wins(self, incoming: list, current: list | None) -> bool:
        """Does a value with provenance ``incoming`` replace one with provenance ``current``?"""
        if current is None:
            return True
        if self.by_precedence:
            incoming_rank = self.rank.get(incoming[0], self.unranked)
            current_rank = self.rank.get(current[0], self.unranked)
            if incoming_rank != current_rank:
                return incoming_rank < current_rank
        return incoming[1] >= current[1]

    def apply(self, profile, fields: dict, extra: dict, dataset: str, timestamp: str) -> bool:
        """Write the winning values of one record onto ``profile``. Returns whether anything changed."""
        provenance = profile.provenance
        stamp = [dataset, timestamp]
        changed = False
        for name, value in fields.items():
            if self.wins(stamp, provenance.get(name)):
                if getattr(profile, name) != value:
                    setattr(profile, name, value)
                    changed = True
                provenance[name] = stamp
        for key, value in extra.items():
            prov_key = f"attributes.{key}"
            if self.wins(stamp, provenance.get(prov_key)):
                if profile.attributes.get(key) != value:
                    profile.attributes[key] = value
                    changed = True
                provenance[prov_key] = stamp
        return changed

    def absorb(self, survivor, merged, field_names) -> None:
        """Fold the merged profile's values into the survivor, each field by the policy."""
        for name in field_names:
            theirs = merged.provenance.get(name)
            value = getattr(merged, name)
            if theirs is not None and value not in (None, "") and self.wins(theirs, survivor.provenance.get(name)):
                setattr(survivor, name, value)
                survivor.provenance[name] = theirs
            elif getattr(survivor, name) in (None, "") and value not in (None, ""):
                setattr(survivor, name, value)
        for key, value in merged.attributes.items():
            prov_key = f"attributes.{key}"
            theirs = merged.provenance.get(prov_key)
            if key not in survivor.attributes or (theirs and self.wins(theirs, survivor.provenance.get(prov_key))):
                survivor.attributes[key] = value
                if theirs:
                    survivor.provenance[prov_key] = theirs
