"""Where attribution gets its paths: a workspace's journeys, or a ChannelAttribution path file.

A path file is validated against the ``paths`` contract (``docs/data-formats.md``) with the
same row-and-column errors as an import. ChannelAttribution's own column names
(``total_conversions``, ``total_null``, ``total_conversion_value``) are recognised, so its
example files load as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mixwise.attribution.data import PathSet
from mixwise.store.ingest import ImportReport, Issue, _Issues, parse_frame, read_source
from mixwise.store.schemas import get_kind

CHANNEL_ATTRIBUTION_NAMES = {
    "total_conversions": "conversions",
    "total_null": "nulls",
    "total_conversion_value": "value",
}


class PathFileError(ValueError):
    """A path file that cannot be used; ``report`` lists every problem by row and column."""

    def __init__(self, report: ImportReport) -> None:
        super().__init__("\n".join([report.summary(), *report.lines()]))
        self.report = report


def load_paths(
    data: Any, *, mapping: Mapping[str, str] | None = None, max_errors: int = 100
) -> PathSet:
    """Read and validate a path file or frame; raise :class:`PathFileError` on any problem."""
    kind = get_kind("paths")
    try:
        raw, name = read_source(data)
    except (ValueError, FileNotFoundError, TypeError) as exc:
        report = ImportReport("paths", str(data), errors=[Issue(str(exc))], error_count=1)
        raise PathFileError(report) from exc
    columns = {str(c).strip().lower(): c for c in raw.columns}
    auto = {
        target: columns[alias]
        for alias, target in CHANNEL_ATTRIBUTION_NAMES.items()
        if alias in columns and target not in columns
    }
    report = ImportReport("paths", name, rows_read=len(raw))
    frame, issues, ignored = parse_frame(
        raw, kind, mapping={**auto, **(mapping or {})}, max_errors=max_errors
    )
    report.ignored_columns = ignored
    header_ok = not any(e.row is None for e in issues.items)
    if header_ok and "path" in frame.columns:
        _check_path_strings(frame["path"].tolist(), issues)
    if not issues.count and len(frame) == 0:
        issues.add(Issue("the file has no paths"))
    if issues.count:
        report.errors = sorted(issues.items, key=lambda e: (e.row or 0, e.column or ""))
        report.error_count = issues.count
        report.rejected = len(issues.rows)
        raise PathFileError(report)
    value = frame["value"].astype("float64").fillna(0.0).to_numpy()
    return PathSet.from_paths(
        frame["path"].tolist(),
        frame["conversions"].astype("float64").to_numpy(),
        frame["nulls"].astype("float64").to_numpy(),
        value,
    )


def _check_path_strings(paths: list[str], issues: _Issues) -> None:
    for i, path in enumerate(paths):
        if path is None:
            continue  # reported as a missing value already
        parts = [p.strip() for p in str(path).split(">")]
        if any(not p for p in parts):
            issues.add(
                Issue(
                    f"expected channels joined by ' > ' (like 'social > search'), got "
                    f"{path!r}: a channel is empty",
                    i + 1,
                    "path",
                    str(path),
                )
            )


__all__ = ["CHANNEL_ATTRIBUTION_NAMES", "PathFileError", "load_paths"]
