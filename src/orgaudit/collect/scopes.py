"""Reading scope lists out of the API's error texts."""

from __future__ import annotations

import re

# "... Missing scopes: api.responses.read, api.responses.write. Check that ..."
# (docs/evidence.md#forum-1374480)
_LABEL = re.compile(r"missing scopes?:", re.IGNORECASE)
# The list runs while the characters could be part of it, and ends at a full stop that
# ends the sentence. Found without a lazy pattern: one over a long run of spaces
# backtracked quadratically (32,000 spaces took 15 s).
_LIST = re.compile(r"[a-z0-9_.*,\s]*", re.IGNORECASE)
_SENTENCE_END = re.compile(r"\.(?:\s|$)")


def parse_missing_scopes(message: str) -> tuple[str, ...]:
    """The scopes named by an API error text such as ``Missing scopes: a, b.``."""
    label = _LABEL.search(message)
    if not label:
        return ()
    listed = _LIST.match(message, label.end())
    assert listed is not None  # the pattern matches the empty string
    text = listed.group()
    end = _SENTENCE_END.search(text)
    if end:
        text = text[: end.start()]
    return tuple(s for s in re.split(r"[\s,]+", text) if s)
