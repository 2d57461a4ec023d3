"""The one place that renders outside text for a terminal.

Names of keys, projects, users and service accounts, the server's error messages, query
results: anyone who can name a key writes into orgaudit's output. A terminal obeys the
control characters in what it prints: ``ESC ] 52`` sets the reader's clipboard, ``ESC [ 2J``
clears the screen, OSC 8 plants a hyperlink, a bidi override reorders what is read, and a
newline starts a line that looks like orgaudit's own. Every such character is shown as an
escape (``\\x1b``, ``\\u202e``, ``\\n``), so it is seen, not obeyed.

Two layers: :func:`shown` for each outside value where output is built (it also folds
newlines, which only the value's author can tell from orgaudit's own), and
:class:`SafeConsole`, through which every command prints, which escapes any control
character left in the text it renders while its own styles (colours) still work.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from rich.console import Console, ConsoleOptions, RenderableType
from rich.measure import Measurement
from rich.segment import Segment
from rich.table import Table

# C0 and C1 controls, DEL, and the invisible characters that reorder or split lines:
# Unicode's bidi embeddings, overrides and isolates (the "Trojan Source" characters,
# CVE-2021-42574), marks, and the line and paragraph separators.
_INVISIBLE = "\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
_UNSAFE = re.compile(f"[\x00-\x1f{_INVISIBLE}]")
UNSAFE_BUT_NEWLINE = re.compile(f"[\x00-\x09\x0b-\x1f{_INVISIBLE}]")
_INVISIBLE_RE = re.compile(f"[{_INVISIBLE}]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_UNBOUNDED = 1_000_000  # columns: a table measured at the width it would like


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return _NAMED.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def shown(value: object) -> str:
    """Outside text as it may be printed: every control character escaped, newlines too,
    so one value stays on one line."""
    return _UNSAFE.sub(_escape, str(value))


def lines_text(lines: Iterable[str]) -> str:
    """Lines of output joined: each line's control characters escaped, its newlines too,
    so the only line breaks are the ones between the lines."""
    return "\n".join(map(shown, lines))


def json_text(text: str) -> str:
    """JSON text with the invisible characters JSON leaves raw (DEL, C1, bidi) written as
    ``\\u`` escapes: the same JSON to a parser, inert on a terminal. Outside strings
    JSON holds none of them, so every one replaced is inside a string."""
    return _INVISIBLE_RE.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


def safe_lines(text: str) -> str:
    """Text whose line breaks are orgaudit's own: every other control character escaped."""
    return UNSAFE_BUT_NEWLINE.sub(_escape, text)


class SafeConsole(Console):
    """A rich console that never writes a control character it was given as text.

    Rich turns styles into escape sequences after rendering, so escaping the text of the
    rendered segments keeps orgaudit's colours and removes only what came from the text.
    Segments rich marks as control codes (cursor moves of a live display) are its own.
    """

    def print_table(self, table: Table) -> None:
        """A table with every value whole: on a terminal wrapped to its width (a value
        too long for its column folds onto the next line, never cut to an ellipsis); to a
        pipe or a file at its natural width, so each row stays one line for grep."""
        if self.is_terminal:
            self.print(table)
            return
        natural = Measurement.get(self, self.options.update_width(_UNBOUNDED), table).maximum
        # Markup off, as on every console orgaudit prints through: a name is never read
        # as markup ("[red]" stays as written).
        wide = SafeConsole(
            file=self.file, width=max(natural, self.width), highlight=False, markup=False
        )
        wide.print(table)

    def render(
        self, renderable: RenderableType, options: ConsoleOptions | None = None
    ) -> Iterable[Segment]:
        for segment in super().render(renderable, options):
            if segment.control or not UNSAFE_BUT_NEWLINE.search(segment.text):
                yield segment
            else:
                yield Segment(safe_lines(segment.text), segment.style)
