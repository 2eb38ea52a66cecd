from .destinations import (
    ActivationOutcome,
    ActivationRun,
    Dataflow,
    DataflowAudience,
    DataflowMode,
    DataflowState,
    DeadLetter,
    Destination,
    DestinationKind,
    DestinationMember,
    RunStatus,
    RunTrigger,
)
from .instances import MarketoInstance, SalesforceOrg
from .pairings import Pairing
from .sources import SourceConnection, SourceKind, SyncMode, SyncRejection, SyncRun, SyncState

__all__ = [
    "ActivationOutcome",
    "ActivationRun",
    "Dataflow",
    "DataflowAudience",
    "DataflowMode",
    "DataflowState",
    "DeadLetter",
    "Destination",
    "DestinationKind",
    "DestinationMember",
    "RunStatus",
    "RunTrigger",
    "MarketoInstance",
    "Pairing",
    "SalesforceOrg",
    "SourceConnection",
    "SourceKind",
    "SyncMode",
    "SyncRejection",
    "SyncRun",
    "SyncState",
]
