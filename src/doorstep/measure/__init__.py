"""measure: do EQLs convert better than behaviour-scored leads, and how sure are we."""

from doorstep.measure.attribution import is_holdout
from doorstep.measure.html import write_html
from doorstep.measure.model import Conversion, Report, Verdict
from doorstep.measure.report import build_report, eql_summary, report_json
from doorstep.measure.text import render_text

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
