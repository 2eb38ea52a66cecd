"""CSV export: each run writes the audience's full current membership to
``<QUORUM_EXPORT_DIR>/<directory>/<dataflow>-<timestamp>.csv``, atomically (temporary file + rename),
so a reader never sees half a file.
"""

import csv
import os
import tempfile
from pathlib import Path

from django.conf import settings
from django.utils import timezone
from django.utils.text import slugify

from cdp.exceptions import RuleViolation
from connectors.models import DataflowMode

from . import DestinationType, PushResult


def export_root() -> Path:
    return Path(getattr(settings, "QUORUM_EXPORT_DIR", None) or settings.VAR_DIR / "exports").resolve()


class CsvExport(DestinationType):
    description = "Writes the audience's current members to a CSV file in a directory of the server's export folder, once a day or on demand."
    snapshot = True  # a file holds the whole membership, so each run gets every current member

    def validate_config(self, config: dict) -> dict:
        directory = str(config.get("directory") or "").strip().rstrip("/") or "."
        root = export_root()
        if Path(directory).is_absolute() or not (root / directory).resolve().is_relative_to(root):
            raise RuleViolation(
                f"The directory must stay inside the export folder ({root}); give a relative path such as 'marketing/weekly'.",
                rule="export_directory_outside_root",
                field="directory",
            )
        return {"directory": directory}

    def check_dataflow(self, *, audience_kind, mode) -> None:
        if mode != DataflowMode.BATCH:
            raise RuleViolation("A CSV export writes whole files: use batch mode.", rule="dataflow_mode", field="mode")

    def push(self, destination, dataflow, members, result: PushResult, context) -> None:
        directory = (export_root() / destination.config["directory"]).resolve()
        directory.mkdir(parents=True, exist_ok=True)
        columns = ["id"] + [m["target"] for m in dataflow.mapping]
        name = f"{slugify(dataflow.name) or 'dataflow'}-{dataflow.pk}-{timezone.now():%Y%m%dT%H%M%S%f}.csv"
        handle, temporary = tempfile.mkstemp(prefix=".tmp-", suffix=".csv", dir=directory)
        try:
            with os.fdopen(handle, "w", newline="", encoding="utf-8") as out:
                writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore")
                writer.writeheader()
                for member in members:
                    writer.writerow({"id": member.member_id, **member.values})
            os.replace(temporary, directory / name)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        result.sent = len(members)
        result.file = str(Path(destination.config["directory"]) / name)


DESTINATION_TYPE = CsvExport()
