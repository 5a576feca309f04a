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
from rich.table import Table
from rich.text import Text

# C0 controls but tab and line feed, DEL, and C1 controls (CSI, OSC...): they steer a terminal.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """`text` without the control characters a terminal would act on."""
    return _CONTROL.sub("", text)


def _plain(cell: Any) -> str:
    return cell.plain if isinstance(cell, Text) else str(cell)


def _needed(texts: list[str], wraps: bool) -> int:
    """A column's narrowest width without splitting a number or a word."""
    if wraps:
        return max((len(word) for t in texts for word in t.split()), default=1)
    return max((len(line) for t in texts for line in t.splitlines() or [""]), default=1)


def fold_table(table: Table, width: int) -> list[Table]:
    """`table` as one or more tables no wider than `width`, none of whose cells splits a
    number or a word: columns that do not fit go to a next table, which repeats the first
    column so that each row can still be read by its key."""
    columns = table.columns
    if len(columns) < 3:
        return [table]
    needs = []
    for column in columns:
        texts = [_plain(column.header), *(_plain(c) for c in column.cells)]
        # text that has spaces may wrap between words; numbers and single words never do
        wraps = column.justify != "right" and any(" " in t.strip() for t in texts[1:])
        needs.append((_needed(texts, wraps), wraps))
    cost = [need + 3 for need, _ in needs]  # padding on both sides and a border
    groups: list[list[int]] = [[0]]
    used = 1 + cost[0]
    for i in range(1, len(columns)):
        if used + cost[i] > width and len(groups[-1]) > 1:
            groups.append([0])
            used = 1 + cost[0]
        groups[-1].append(i)
        used += cost[i]
    if len(groups) == 1:
        for column, (need, wraps) in zip(columns, needs, strict=True):
            column.min_width = max(column.min_width or 0, need) if not wraps else need
            column.no_wrap = column.no_wrap or not wraps
        return [table]
    rows = [list(c.cells) for c in columns]
    folded = []
    for n, group in enumerate(groups):
        part = Table(title=table.title if n == 0 else None, title_justify=table.title_justify,
                     caption=table.caption if n == len(groups) - 1 else None,
                     caption_justify=table.caption_justify, box=table.box,
                     show_header=table.show_header)
        for i in group:
            source, (need, wraps) = columns[i], needs[i]
            part.add_column(source.header, justify=source.justify, style=source.style,
                            header_style=source.header_style, no_wrap=not wraps,
                            min_width=need)
        for r in range(table.row_count):
            part.add_row(*(rows[i][r] for i in group))
        folded.append(part)
    return folded


class SafeConsole(Console):
    """A rich Console that renders every string literally (no markup, no emoji codes, no
    automatic highlighting, no control characters) and prints tables that fit its width
    without splitting a number or a word (`fold_table`)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("markup", False)
        kwargs.setdefault("emoji", False)
        kwargs.setdefault("highlight", False)
        super().__init__(**kwargs)

    def print(self, *objects: Any, **kwargs: Any) -> None:
        """Print as rich does, with every table folded to the console's width."""
        unfolded: list[Any] = []
        for item in objects:
            unfolded.extend(fold_table(item, self.width) if isinstance(item, Table) else [item])
        super().print(*unfolded, **kwargs)

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
