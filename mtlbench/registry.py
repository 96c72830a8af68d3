"""The one registry type: every named, pluggable thing (builders, exporters, corruptions, encoders,
architectures, weighting methods, ...) is looked up by name in a `Registry`.

Implementations register themselves with a decorator in their own module. A registry knows which
modules hold its entries and imports them on the first lookup, so a package can be imported
without pulling in every implementation, and no implementation module is imported by its
registry's module (which would make an import circle). An unknown name is the package's one-line
input error, listing the valid names.
"""

from __future__ import annotations

import importlib
from typing import Callable, Generic, Iterator, Sequence, TypeVar

from mtlbench.errors import InputError

Entry = TypeVar("Entry")


class Registry(Generic[Entry]):
    def __init__(self, kind: str, modules: Sequence[str] = ()):
        """`kind` names an entry in messages ("builder"); `modules` register the entries when imported."""
        self.kind = kind
        self._modules = tuple(modules)
        self._loaded = not self._modules
        self._entries: dict[str, Entry] = {}

    def register(self, name: str) -> Callable[[Entry], Entry]:
        """Decorator adding the decorated object under `name`."""

        def add(entry: Entry) -> Entry:
            self.add(name, entry)
            return entry

        return add

    def add(self, name: str, entry: Entry) -> None:
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = entry

    def _load(self) -> None:
        if not self._loaded:
            # Set first: the modules import this registry and register into it while we import them.
            self._loaded = True
            for module in self._modules:
                importlib.import_module(module)

    def get(self, name: str, where: str | None = None) -> Entry:
        """The entry called `name`; an unknown name is an InputError naming `where` (default: the kind)."""
        self._load()
        if not isinstance(name, str) or name not in self._entries:
            raise InputError(where or self.kind, f"unknown {self.kind} {name!r} (known: {', '.join(self.names())})")
        return self._entries[name]

    def names(self) -> tuple[str, ...]:
        self._load()
        return tuple(sorted(self._entries))

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
