from .batches import start_file_ingestion, validate_mapping
from .files import run_file_batch, write_rejections_csv
from .streaming import ingest_stream

__all__ = ["ingest_stream", "run_file_batch", "start_file_ingestion", "validate_mapping", "write_rejections_csv"]
