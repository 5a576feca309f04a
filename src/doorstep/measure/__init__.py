"""measure: do EQLs convert better than behaviour-scored leads, and how sure are we."""

from doorstep.measure.attribution import is_holdout
from doorstep.measure.html import write_html
from doorstep.measure.report import (
    Conversion,
    Report,
    Verdict,
    build_report,
    eql_summary,
    render_text,
    report_json,
)

__all__ = [
    "Conversion",
    "Report",
    "Verdict",
    "build_report",
    "eql_summary",
    "is_holdout",
    "render_text",
    "report_json",
    "write_html",
]
