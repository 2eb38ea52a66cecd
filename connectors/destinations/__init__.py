"""Destination pushers: one module per destination kind.

Each module offers ``DESCRIPTION`` (for the catalog), ``validate_config(config) -> dict`` (raises
``RuleViolation`` naming the field) and ``push(destination, dataflow, members, result, context)``. The activation
service (``connectors.services.activation``) reads what changed, collapses it into ``Member`` rows
(one per person, last change wins, sorted by first change id) and hands them to the pusher. A pusher
that must stop early (Marketo's daily quota) raises ``PushStopped(message, sent_count)``: members
before ``sent_count`` were delivered, the rest are left for the next run.
"""

from dataclasses import dataclass, field
from importlib import import_module

ADD = "add"
REMOVE = "remove"


@dataclass
class Member:
    member_id: int
    action: str  # add | remove
    values: dict  # mapped fields: destination field → value
    email: str = ""
    # First membership change of this member in the run, per audience: where a resumed run restarts.
    first_change_ids: dict = field(default_factory=dict)
    # Ids the destination gave this member when it was added (see DestinationMember).
    external_ids: list = field(default_factory=list)


@dataclass
class Outcome:
    member_id: int
    email: str
    action: str
    outcome: str  # unmatched | failed | created
    detail: str = ""


@dataclass
class PushResult:
    sent: int = 0
    matched: int = 0
    unmatched: int = 0
    failed: int = 0
    skipped: int = 0
    created: int = 0
    file: str = ""
    outcomes: list = field(default_factory=list)
    dead_letters: list = field(default_factory=list)  # (batch_id, payload, attempts, error)
    placed: list = field(default_factory=list)  # (member_id, external id) now in the destination
    withdrawn: list = field(default_factory=list)  # member ids taken out of it

    def record(self, member: Member, outcome: str, detail: str = "") -> None:
        self.outcomes.append(Outcome(member.member_id, member.email, member.action, outcome, detail[:500]))


@dataclass
class PushContext:
    batch_key: str  # stable for the changes a run covers: a retried run sends the same batch ids
    sleep: object  # time.sleep, replaced in tests


class PushStopped(Exception):
    """The destination refused to go on (e.g. Marketo's daily quota); members[sent_count:] were not sent."""

    def __init__(self, message: str, sent_count: int):
        super().__init__(message)
        self.message = message
        self.sent_count = sent_count


_MODULES = {
    "marketo_static_list": "connectors.destinations.marketo_list",
    "webhook": "connectors.destinations.webhook",
    "csv_export": "connectors.destinations.csv_file",
}


def pusher_for(kind: str):
    """The module implementing destination ``kind``."""
    return import_module(_MODULES[kind])


def catalog() -> list[dict]:
    """The destination kinds with what they do, for the catalog page and the API."""
    from connectors.models import DestinationKind

    return [
        {"kind": kind.value, "label": kind.label, "description": pusher_for(kind.value).DESCRIPTION}
        for kind in DestinationKind
    ]


def chunked(items: list, size: int):
    for start in range(0, len(items), size):
        yield start, items[start : start + size]
