"""Name -> constructor tables, so every method, architecture and encoder is chosen by name."""

from __future__ import annotations

from typing import Callable, Generic, TypeVar

Factory = TypeVar("Factory", bound=Callable)


class Registry(Generic[Factory]):
    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Factory] = {}

    def register(self, name: str) -> Callable[[Factory], Factory]:
        def add(factory: Factory) -> Factory:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = factory
            return factory

        return add

    def get(self, name: str) -> Factory:
        if name not in self._entries:
            raise KeyError(f"unknown {self.kind} {name!r}; known: {', '.join(sorted(self._entries))}")
        return self._entries[name]

    def names(self) -> list[str]:
        return sorted(self._entries)
