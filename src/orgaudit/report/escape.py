"""The one place that decides what a spreadsheet would read as a formula.

User names, project names and key names come from outside; a value such as
``=HYPERLINK("http://example.com","x")`` must never become a live formula in Excel or
LibreOffice. OWASP's CSV-injection guidance lists the leading characters: ``=``, ``+``,
``-``, ``@``, tab and carriage return.
"""

from __future__ import annotations

import pandas as pd

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def is_formula_like(value: object) -> bool:
    """Whether a spreadsheet would read this value as a formula."""
    return isinstance(value, str) and value.startswith(FORMULA_PREFIXES)


def escape_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Every formula-like text cell of a table made safe for CSV (vectorized per column)."""
    escaped = {}
    for column in frame.columns:
        values = frame[column]
        if values.dtype == object or pd.api.types.is_string_dtype(values):
            text = values.astype("string")
            risky = text.str.startswith(FORMULA_PREFIXES).fillna(False).astype(bool)
            escaped[column] = values.where(~risky, "'" + text)
    return frame.assign(**escaped) if escaped else frame
