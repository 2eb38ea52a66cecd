"""Destination kinds: one module per kind, each with a ``DestinationType`` subclass that carries
everything the kind does differently (its settings, what dataflows it accepts, its default mapping,
whether it takes changes or full snapshots, and the push itself). The activation service
(``connectors.services.activation``) asks the kind's type and never tests the kind itself.

The service reads what changed, collapses it into ``Member`` rows (one per person, last change wins)
and hands them to ``push``. A pusher that must stop early (Marketo's daily quota) raises
``PushStopped(message, sent_count)``: members before ``sent_count`` were delivered, the rest are left
for the next run.
"""

from dataclasses import dataclass, field
from importlib import import_module

from cdp.choices import AudienceKind
from cdp.exceptions import RuleViolation

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


class DestinationType:
    """The behaviour of one destination kind; a kind overrides what differs from these defaults."""

    description = ""
    # True: each run gets every current member (a whole file) instead of the changes since the cursors.
    snapshot = False
    # True: the destination sends to a Marketo instance, reached through a destination pairing.
    sends_to_marketo = False

    def validate_config(self, config: dict) -> dict:
        """The kind's settings, cleaned; raises ``RuleViolation`` naming the field."""
        raise NotImplementedError

    def apply_options(self, destination, *, allow_lead_creation: bool, secret: str, by_admin) -> None:
        """Set the kind's own options on ``destination``; ``by_admin()`` tells whether a sandbox admin asks."""
        if allow_lead_creation:
            raise RuleViolation("Only Marketo destinations create leads.", rule="destination_config", field="allow_lead_creation")

    def default_mapping(self, audience_kind: str) -> list[dict]:
        if audience_kind == AudienceKind.ACCOUNT:
            return [{"source": "name", "target": "name"}, {"source": "domain", "target": "domain"}]
        return [{"source": "email", "target": "email"}]

    def check_dataflow(self, *, audience_kind: str, mode: str) -> None:
        """Refuse a dataflow this kind can't serve: its audiences' kind or its mode."""

    def check_mapping(self, mapping: list[dict]) -> None:
        """Refuse a (generally valid) mapping this kind can't use."""

    def push(self, destination, dataflow, members: list[Member], result: PushResult, context: PushContext) -> None:
        raise NotImplementedError


_MODULES = {
    "marketo_static_list": "connectors.destinations.marketo_list",
    "webhook": "connectors.destinations.webhook",
    "csv_export": "connectors.destinations.csv_file",
}


def destination_type(kind: str) -> DestinationType:
    """The behaviour of destination ``kind``."""
    return import_module(_MODULES[kind]).DESTINATION_TYPE


def catalog() -> list[dict]:
    """The destination kinds with what they do, for the catalog page and the API."""
    from connectors.models import DestinationKind

    return [
        {"kind": kind.value, "label": kind.label, "description": destination_type(kind.value).description}
        for kind in DestinationKind
    ]


def chunked(items: list, size: int):
    for start in range(0, len(items), size):
        yield start, items[start : start + size]
