"""Reports: one self-contained HTML file that shows every decision, every agent and every risk."""

from reinforcetrade.reports.generator import ReportGenerator
from reinforcetrade.reports.payload import build_report_data

__all__ = ["ReportGenerator", "build_report_data"]
