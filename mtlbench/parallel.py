"""Ordered parallel map over worker processes, with progress."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Iterable, Iterator, TypeVar

from mtlbench.progress import Advance

Item = TypeVar("Item")
Result = TypeVar("Result")


def ordered_map(
    function: Callable[[Item], Result], items: Iterable[Item], workers: int, advance: Advance
) -> Iterator[Result]:
    """Apply `function` to every item, yielding results in input order.

    With one worker everything runs in this process (simplest to debug and profile). Worker
    processes are spawned, not forked, so a progress-bar thread in the parent is never copied.
    """
    if workers <= 1:
        for item in items:
            yield function(item)
            advance()
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        for result in pool.map(function, items, chunksize=4):
            yield result
            advance()
