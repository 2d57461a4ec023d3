"""Reading scope lists out of the API's error texts."""

from __future__ import annotations

import re

# "... Missing scopes: api.responses.read, api.responses.write. Check that ..."
# (docs/evidence.md#forum-1374480)
_MISSING_SCOPES = re.compile(r"missing scopes?:\s*([a-z0-9_.*,\s]+?)(?:\.\s|\.$|$)", re.IGNORECASE)


def parse_missing_scopes(message: str) -> tuple[str, ...]:
    """The scopes named by an API error text such as ``Missing scopes: a, b.``."""
    match = _MISSING_SCOPES.search(message)
    if not match:
        return ()
    return tuple(s for s in re.split(r"[\s,]+", match.group(1)) if s)
