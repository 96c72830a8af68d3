"""Ordered parallel map over worker processes, with progress."""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import threading
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Iterable, Iterator, TypeVar

import numpy as np

from mtlbench.progress import Advance

Item = TypeVar("Item")
Result = TypeVar("Result")

# Modules whose functions run in worker processes. The fork server imports them when it starts
# (once per process, so the list must be complete then); a worker forked from it starts in
# milliseconds. A function from another module still works, at the cost of importing it per worker.
WORKER_MODULES = ("mtlbench.dataset.writer", "mtlbench.dataset.cache", "mtlbench.evaluation.streaming", "mtlbench.sources.corrupted")


def _worker_context() -> multiprocessing.context.BaseContext:
    """A fork server where the platform has one, else spawn.

    Forking the parent directly could copy a progress-bar thread mid-draw; spawning a fresh
    interpreter per worker re-imports numpy, Pillow and mtlbench each time (about 0.3 s a
    worker). The fork server is a clean single-threaded process that pays the imports once.
    As with any spawned worker, a script that uses workers needs `if __name__ == "__main__":`.
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(WORKER_MODULES))
    return context


def _exit_with_parent(sentinel: int) -> None:
    multiprocessing.connection.wait([sentinel])
    os._exit(1)


def _start_worker() -> None:
    """Worker start-up: die with the parent process, and keep frame-sized buffers in the heap.

    A worker blocked on its task queue would outlive a parent killed outright (kill -9, the OOM
    killer): the queue's pipe stays open in the worker itself. A daemon thread waits on the
    parent's sentinel instead and ends the worker when the parent is gone.
    """
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_with_parent, args=(parent.sentinel,), daemon=True).start()
    keep_frame_buffers()


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """End the workers at once and wait until they are gone: on an error, Ctrl-C or SIGTERM the
    queued items are not wanted, and a worker still writing would race the clean-up of its outputs."""
    # The executor exposes no public way to stop running workers before Python 3.14
    # (terminate_workers); its process table has been there since 3.2.
    processes = list((pool._processes or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()
    for process in processes:
        process.join()


def keep_frame_buffers() -> None:
    """Allocate and free one 16 MiB block, so that frame-sized buffers stay in the heap.

    glibc's malloc serves blocks above a threshold (128 KiB in a fresh process) with mmap and
    unmaps them on free; freeing such a block raises the threshold to its size. Without this a
    fresh worker maps, page-faults and unmaps its megabyte arrays on every frame, which costs it
    about 40% of its speed. Other allocators are unaffected.
    """
    np.empty(16 << 20, dtype=np.uint8)


def ordered_map(
    function: Callable[[Item], Result], items: Iterable[Item], workers: int, advance: Advance
) -> Iterator[Result]:
    """Apply `function` to every item, yielding results in input order.

    With one worker everything runs in this process (simplest to debug and profile).
    """
    if workers <= 1:
        keep_frame_buffers()
        for item in items:
            yield function(item)
            advance()
        return
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=_worker_context(), initializer=_start_worker)
    try:
        for result in pool.map(function, items, chunksize=4):
            yield result
            advance()
    except BaseException:
        _stop_workers(pool)
        raise
    pool.shutdown(wait=True)
