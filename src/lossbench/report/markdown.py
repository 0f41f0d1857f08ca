"""The small Markdown subset the report writes, as HTML: paragraphs, ``- `` bullet lists, ``**bold**``,
``*emphasis*`` and ```code```. Everything else is escaped text, so a page never shows raw Markdown marks
and never interprets run output (error messages, paths) as HTML."""

from __future__ import annotations

import html
import re

_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_EMPHASIS = re.compile(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])")


def inline(text: str) -> str:
    """One line of Markdown as escaped HTML with its code spans, bold and emphasis."""
    pieces = _CODE.split(text)  # odd pieces are code spans: no emphasis inside them
    out = []
    for i, piece in enumerate(pieces):
        escaped = html.escape(piece)
        if i % 2:
            out.append(f"<code>{escaped}</code>")
        else:
            escaped = _BOLD.sub(r"<strong>\1</strong>", escaped)
            out.append(_EMPHASIS.sub(r"<em>\1</em>", escaped))
    return "".join(out)


def blocks(lines: list[str]) -> list[str]:
    """Markdown lines as HTML blocks: consecutive ``- `` lines form a list, other runs of non-blank lines a
    paragraph each."""
    out: list[str] = []
    paragraph: list[str] = []
    items: list[str] = []

    def flush() -> None:
        if paragraph:
            out.append("<p>" + " ".join(inline(line) for line in paragraph) + "</p>")
            paragraph.clear()
        if items:
            out.append("<ul>" + "".join(f"<li>{inline(item)}</li>" for item in items) + "</ul>")
            items.clear()

    for line in lines:
        text = line.strip()
        if text.startswith("- "):
            if paragraph:
                flush()
            items.append(text[2:])
        elif text:
            if items:
                flush()
            paragraph.append(text)
        else:
            flush()
    flush()
    return out
