"""An email's text cut at its blocks without parsing it, for render_inline's rebuilds.

A rebuild used to parse and write out the whole 88 KB email to find which blocks (innermost
table rows) changed. Here the blocks are found in the text itself: by reading the row tags
as the parser reads them (comments skipped whole: MJML's Outlook tables live in conditional
comments), or, when the text differs from the last email's only inside one block, by
comparing the two texts from each end. A cut is a claim, never trusted alone: render_inline
keeps a layout only after a parse of the marked text confirms its cut, and inlines a changed
block only after a parse of it in its context confirms it is one row.
"""

from __future__ import annotations

import bisect
import itertools
import re
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Generic, TypeVar

# A random mark per process: no email can hold it, so splitting on it cuts only where put.
MARK = f"nf-block-{secrets.token_hex(16)}"
MARK_HTML = f"<!--{MARK}-->"
# The tags a rebuild reads in the email's text to find the blocks: comments (skipped whole,
# as the parser skips them), table rows and <body>.
_TAGS = re.compile(r"<!--.*?-->|<(/?)(tr|body)\b[^>]*>", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class Source:
    """An email's text cut at its blocks, as a rebuild finds them without parsing it."""

    text: str  # the whole
    skeleton: tuple[str, ...]  # the text around the blocks (one more than the blocks)
    blocks: tuple[str, ...]  # each block's text, from its <tr to its </tr>
    spans: tuple[tuple[int, int], ...]  # where each block is in the text
    body_end: int  # where the text after the <body ...> tag begins

    def marked(self) -> str:
        """The text with a mark before and after every block."""
        parts = [
            p + MARK_HTML + b + MARK_HTML for p, b in zip(self.skeleton, self.blocks, strict=False)
        ]
        return "".join(parts) + self.skeleton[-1]

    def recut(self, text: str) -> Source | None:
        """`text` cut as this one is, if it differs from this one only inside one block (the
        preview's rebuild after one item's text changed): found from each end, no tag read."""
        if text == self.text:
            return self
        head = common_prefix(self.text, text)
        tail = common_suffix(self.text, text, min(len(self.text), len(text)) - head)
        i = bisect.bisect_right(self.spans, (head, len(self.text))) - 1
        if i < 0 or len(self.text) - tail > self.spans[i][1]:
            return None
        start, end = self.spans[i]
        delta = len(text) - len(self.text)
        spans = [*self.spans[:i], (start, end + delta)]
        spans += [(a + delta, b + delta) for a, b in self.spans[i + 1 :]]
        blocks = (*self.blocks[:i], text[start : end + delta], *self.blocks[i + 1 :])
        return Source(text, self.skeleton, blocks, tuple(spans), self.body_end)


def common_prefix(a: str, b: str) -> int:
    """How many characters `a` and `b` share from the start: whole 4 KB chunks compared
    first, then halves of the chunk that differs."""
    n = min(len(a), len(b))
    low = 0
    while low + 4096 <= n and a[low : low + 4096] == b[low : low + 4096]:
        low += 4096
    high = min(n, low + 4096)
    while low < high:  # a[:low] == b[:low], and no more than `high` are shared
        mid = (low + high + 1) // 2
        if a[low:mid] == b[low:mid]:
            low = mid
        else:
            high = mid - 1
    return low


def common_suffix(a: str, b: str, most: int) -> int:
    """How many characters, at most `most`, `a` and `b` share at the end: common_prefix from
    the other end, without reversing either text (two copies of an 88 KB email)."""
    low, high = 0, min(most, len(a), len(b))
    while (
        low + 4096 <= high
        and a[len(a) - low - 4096 : len(a) - low] == b[len(b) - low - 4096 : len(b) - low]
    ):
        low += 4096
    high = min(high, low + 4096)
    while low < high:  # the last `low` are shared, and no more than `high`
        mid = (low + high + 1) // 2
        if a[len(a) - mid : len(a) - low] == b[len(b) - mid : len(b) - low]:
            low = mid
        else:
            high = mid - 1
    return low


def cut_source(source: str) -> Source | None:
    """The blocks' spans, found by reading the tags as the parser reads them (comments skipped
    whole: MJML's Outlook tables live in conditional comments); None if the rows do not nest
    cleanly."""
    spans: list[tuple[int, int]] = []
    rows: list[list[int]] = []  # [start, innermost so far] of each open row
    body_end = None
    for m in _TAGS.finditer(source):
        closing, name = m.group(1), m.group(2)
        if name is None:
            continue
        if name.lower() == "body":
            body_end = m.end() if body_end is None and not closing else body_end
        elif not closing:
            if rows:
                rows[-1][1] = 0
            rows.append([m.start(), 1])
        elif not rows:
            return None
        else:
            start, innermost = rows.pop()
            if innermost:
                spans.append((start, m.end()))
    if rows or body_end is None or (spans and spans[0][0] < body_end):
        return None
    bounds = [0, *(i for span in spans for i in span), len(source)]
    pieces = [source[a:b] for a, b in itertools.pairwise(bounds)]
    return Source(source, tuple(pieces[0::2]), tuple(pieces[1::2]), tuple(spans), body_end)


K = TypeVar("K")
V = TypeVar("V")


class Recent(Generic[K, V]):
    """The layouts of the last few emails, shared by the threads of one renderer: a few,
    because a renderer alternates between the email and its web version (another skeleton).
    A layout is replaced whole, never changed in place, so each thread reads one consistent
    layout. Shared by render_inline (premailer) and render_splice (MJML)."""

    def __init__(self, most: int) -> None:
        self._kept: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()
        self._most = most

    def newest_first(self) -> list[V]:
        with self._lock:
            return list(reversed(self._kept.values()))

    def get(self, key: K) -> V | None:
        with self._lock:
            return self._kept.get(key)

    def keep(self, key: K, value: V) -> None:
        """`value` under `key`, the newest; the oldest dropped past `most`."""
        with self._lock:
            self._kept[key] = value
            self._kept.move_to_end(key)
            while len(self._kept) > self._most:
                self._kept.popitem(last=False)
