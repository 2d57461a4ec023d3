"""The one place that decides what a spreadsheet would read as a formula (and where a csv
cell's control characters are escaped).

User names, project names and key names come from outside; a value such as
``=HYPERLINK("http://example.com","x")`` must never become a live formula in Excel or
LibreOffice. OWASP's CSV-injection guidance lists the leading characters: ``=``, ``+``,
``-``, ``@``, tab and carriage return.
"""

from __future__ import annotations

import pandas as pd

from orgaudit.render.terminal import UNSAFE_BUT_NEWLINE, safe_lines

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def is_formula_like(value: object) -> bool:
    """Whether a spreadsheet would read this value as a formula."""
    return isinstance(value, str) and value.startswith(FORMULA_PREFIXES)


def csv_text(frame: pd.DataFrame) -> str:
    """A table as CSV that no spreadsheet can read a formula from.

    Formula-like cells are escaped, and lines end in CRLF (RFC 4180): the csv module
    quotes a field holding any character of the line terminator, so a name holding a
    bare carriage return (``"x\r=1"``) is quoted. With LF endings it was written bare,
    and Excel starts a new row at the CR, with ``=1`` in the first cell (found by the
    property tests).
    """
    labels = [safe_lines(label) if isinstance(label, str) else label for label in frame.columns]
    headers = [f"'{label}" if is_formula_like(label) else label for label in labels]
    safe = escape_frame(frame).set_axis(headers, axis=1)  # headers come from outside too
    return safe.to_csv(index=False, lineterminator="\r\n")


def escape_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Every formula-like text cell of a table made safe for CSV (vectorized per column).

    Columns are taken by position: headers come from outside too (project names across
    the access matrix) and need not be strings.
    """
    columns = [_escape_column(frame.iloc[:, position]) for position in range(frame.shape[1])]
    if not columns:
        return frame
    return pd.concat(columns, axis=1).set_axis(frame.columns, axis=1)


def _escape_column(values: pd.Series) -> pd.Series:
    if not (values.dtype == object or pd.api.types.is_string_dtype(values)):
        return values
    text = values.astype("string")
    controlled = text.str.contains(UNSAFE_BUT_NEWLINE).fillna(False).astype(bool)
    if controlled.any():  # shown escaped, as everywhere orgaudit writes outside text
        text = text.where(~controlled, text.map(safe_lines, na_action="ignore"))
        values = values.where(~controlled, text)
    risky = text.str.startswith(FORMULA_PREFIXES).fillna(False).astype(bool)
    return values.where(~risky, "'" + text)
