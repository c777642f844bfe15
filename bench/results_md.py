"""Rewrites one generated block of bench/RESULTS.md; the hand-written text around it is kept."""

from __future__ import annotations

from pathlib import Path


def write_block(
    md: Path, block: str, *, begin_prefix: str, end: str, heading: str, before: str | None = None
) -> None:
    """Replaces the block between its markers, else puts it under `heading` (creating that section, ahead of
    the section starting with `before` when there is one, else at the end of the file)."""
    text = md.read_text() if md.exists() else "# Benchmark results\n"
    if begin_prefix in text and end in text:
        start = text.index(begin_prefix)
        stop = text.index(end) + len(end)
        text = text[:start] + block + text[stop:]
    elif heading in text:
        at = text.index(heading) + len(heading)
        text = text[:at] + "\n\n" + block + "\n" + text[at:]
    elif before is not None and before in text:
        at = text.index(before)
        text = text[:at] + heading + "\n\n" + block + "\n\n" + text[at:]
    else:
        text = text.rstrip("\n") + "\n\n" + heading + "\n\n" + block + "\n"
    md.write_text(text)
