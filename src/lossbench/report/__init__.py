"""Comparison report over a sweep: collect runs → statistics → plots → report.md/.csv/.html (+ W&B table)."""
