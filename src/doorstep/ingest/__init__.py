"""ingest: read the workspace tables, validate them against the data contract, load the store."""

from doorstep.ingest.load import ImportReport, TableCounts, import_workspace
from doorstep.ingest.read import ImportFailure
from doorstep.ingest.scaffold import init_workspace

__all__ = ["ImportFailure", "ImportReport", "TableCounts", "import_workspace", "init_workspace"]
