"""The terminal as an output channel: text from data is shown as text, never run as markup or
escape sequences.

Partner files are data we did not write. A partner account named `[link=...]` or holding an ANSI
escape sequence must print as those characters, not restyle or rewrite the user's terminal, so
the CLI's consoles take no markup and drop control characters from every string they render.
doorstep's own styling is passed as styles (`labelled`), never as markup inside text.
"""

from __future__ import annotations

import re
from typing import Any

from rich.console import Console
from rich.text import Text

# C0 controls but tab and line feed, DEL, and C1 controls (CSI, OSC...): they steer a terminal.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """`text` without the control characters a terminal would act on."""
    return _CONTROL.sub("", text)


class SafeConsole(Console):
    """A rich Console that renders every string literally: no markup, no emoji codes, no
    automatic highlighting, no control characters."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("markup", False)
        kwargs.setdefault("emoji", False)
        kwargs.setdefault("highlight", False)
        super().__init__(**kwargs)

    def render_str(self, text: str, **kwargs: Any) -> Text:
        """Render a string as plain text, whatever markup a caller asks for."""
        kwargs["markup"] = False
        kwargs["emoji"] = False
        return super().render_str(printable(text), **kwargs)


def styled(text: str, style: str) -> Text:
    """`text` (printable characters only) in `style`: for table cells that stand out."""
    return Text(printable(text), style=style)


def labelled(label: str, style: str, message: str) -> Text:
    """A line such as "error: ..." whose label is styled and whose message is shown as it is."""
    return Text.assemble((label, style), " ", printable(message))


def plural(n: int, one: str, many: str | None = None) -> str:
    """The word for `n` things: `one` for 1, else `many` (by default `one` + "s")."""
    return one if n == 1 else (many if many is not None else one + "s")


console = SafeConsole()
err = SafeConsole(stderr=True)
