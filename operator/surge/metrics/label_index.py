"""A namespace listing indexed by label, so one policy's selector costs a lookup, not a scan.

Built once per shared LIST (in the worker thread that fetched it); every policy tick in the namespace then
selects from it. Without the index each tick checked the selector against every pod in the namespace: at
1,000 policies and 1,000 pods that was most of the operator's CPU, on the event loop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Generic, TypeVar

from surge.metrics.selector import Selector

T = TypeVar("T")


class LabelIndex(Generic[T]):
    def __init__(self, items: Iterable[T], labels_of: Callable[[T], Mapping[str, str]]) -> None:
        self._items = tuple(items)
        self._labels_of = labels_of
        by_label: dict[tuple[str, str], list[T]] = {}
        for item in self._items:
            for pair in labels_of(item).items():
                by_label.setdefault(pair, []).append(item)
        self._by_label = by_label

    def select(self, selector: Selector) -> list[T]:
        """Items whose labels match, in listing order."""
        candidates: Sequence[T] = self._items
        if selector.equalities:
            # Any pinned label narrows the search; the rarest one narrows it most.
            pinned: list[Sequence[T]] = [self._by_label.get(pair, ()) for pair in selector.equalities]
            candidates = min(pinned, key=len)
        return [item for item in candidates if selector.matches(self._labels_of(item))]
