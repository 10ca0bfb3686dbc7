"""What a process remembers of the work it did last: answers kept by question, the most
recently used first, shared by the threads of a run (lookups, encodings, path searches
repeat from sample to sample)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable, Iterable, Mapping
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Recent(Generic[K, V]):
    """The ``size`` most recently used values by key."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def found(self, keys: Iterable[K]) -> dict[K, V]:
        """The values kept for ``keys`` (those that have one), marked as just used."""
        with self._lock:
            found = {key: self._items[key] for key in keys if key in self._items}
            for key in found:
                self._items.move_to_end(key)
        return found

    def keep(self, items: Mapping[K, V]) -> None:
        """Remember ``items``, forgetting the least recently used beyond ``size``."""
        with self._lock:
            self._items.update(items)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
