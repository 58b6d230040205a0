"""The report layer: tables, rankings, statistics, figures and an HTML/Markdown/LaTeX/CSV report
of a result root (reads only the results table and run folders)."""

from lnmbench.report.build import ReportOptions, ReportResult, build_report

__all__ = ["ReportOptions", "ReportResult", "build_report"]
