"""Pickling frozen, slotted dataclasses that cross to and from worker processes, quickly.

`dataclass(frozen=True, slots=True)` pickles an object by asking `dataclasses.fields` for
its fields on every object, which costs more than the rest of pickling a small record.
`quick_pickle` keeps the same state (the field values in order) with the names looked up
once per class.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

T = TypeVar("T")


def quick_pickle(cls: type[T]) -> type[T]:
    """Give a frozen, slotted dataclass a `__getstate__`/`__setstate__` over its field names,
    found once; apply it above `@dataclass`."""
    names = tuple(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]
    assign = object.__setattr__

    def getstate(self: T) -> tuple[Any, ...]:
        return tuple([getattr(self, name) for name in names])

    def setstate(self: T, state: tuple[Any, ...]) -> None:
        for name, value in zip(names, state, strict=True):
            assign(self, name, value)

    setattr(cls, "__getstate__", getstate)  # noqa: B010
    setattr(cls, "__setstate__", setstate)  # noqa: B010
    return cls
