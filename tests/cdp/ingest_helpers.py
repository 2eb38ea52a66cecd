from cdp.services.ingestion.records import Rejection, parse_record
from cdp.services.ingestion.store import store_records


def ingest(sandbox, entity, rows, dataset="test"):
    """Parse and store rows the way every ingest path does; returns (result, rejections)."""
    parsed = [parse_record(entity, i + 1, row) for i, row in enumerate(rows)]
    rejections = [p for p in parsed if isinstance(p, Rejection)]
    records = [p for p in parsed if not isinstance(p, Rejection)]
    result = store_records(sandbox, entity, records, dataset) if records else None
    return result, rejections
