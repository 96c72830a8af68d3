"""Where a sweep's runs execute: here, N at a time (CPU, or one GPU each), or as a job array through
submitit (SLURM; its local executor runs the same path on this machine, for tests).

Each run is one `python -m mtlbench run-baseline ... --seeds N` process, so one failing or
interrupted run never takes the others down, and a rerun continues it from its checkpoint.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

EXECUTORS = ("local", "slurm", "submitit-local")


@dataclass(frozen=True)
class Job:
    """One seed of one cell: the command that runs it and the file its output goes to."""

    name: str
    arguments: tuple[str, ...]
    log: Path

    def command(self) -> list[str]:
        return [sys.executable, "-m", "mtlbench", "-q", *self.arguments]


@dataclass(frozen=True)
class Outcome:
    job: Job
    status: int


def run_job(job: Job, environment: dict[str, str] | None = None, started: Callable | None = None) -> int:
    """Run one job with its output in its log; returns the exit status. (Also what a submitit job calls.)"""
    job.log.parent.mkdir(parents=True, exist_ok=True)
    with open(job.log, "ab") as log:
        process = subprocess.Popen(job.command(), stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(environment or {})})
        if started:
            started(process)
        return process.wait()


def _slot_environment(slot: int, parallel: int, gpus: int) -> dict[str, str]:
    """Threads split between the parallel runs; with GPUs, run slot i sees GPU i mod gpus only."""
    threads = max(1, (os.cpu_count() or 1) // parallel)
    environment = {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    if gpus:
        environment["CUDA_VISIBLE_DEVICES"] = str(slot % gpus)
    return environment


def run_local(jobs: Sequence[Job], parallel: int, gpus: int, advance: Callable[[Outcome], None]) -> list[Outcome]:
    """Run `jobs` here, `parallel` at a time; on Ctrl-C or SIGTERM every running job gets SIGTERM
    (it keeps its checkpoint) before the interrupt goes on."""
    running: dict[int, subprocess.Popen] = {}
    lock = threading.Lock()
    free_slots = list(range(parallel))

    def one(job: Job) -> Outcome:
        with lock:
            slot = free_slots.pop()
        try:
            def started(process):
                with lock:
                    running[process.pid] = process

            status = run_job(job, _slot_environment(slot, parallel, gpus), started)
        finally:
            with lock:
                free_slots.append(slot)
        outcome = Outcome(job, status)
        advance(outcome)
        return outcome

    pool = ThreadPoolExecutor(max_workers=parallel)
    futures = []
    try:
        futures.extend(pool.submit(one, job) for job in jobs)
        return [future.result() for future in futures]
    except BaseException:
        for future in futures:
            future.cancel()
        with lock:
            for process in running.values():
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
        for process in list(running.values()):
            process.wait()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def run_submitit(jobs: Sequence[Job], folder: Path, cluster: str, parameters: dict, advance: Callable[[Outcome], None]) -> list[Outcome]:
    """Submit `jobs` as one job array through submitit and wait for them. `cluster`: "slurm", or
    "local" (submitit's local executor: the same path, on this machine)."""
    import submitit

    executor = submitit.AutoExecutor(folder=folder, cluster=cluster)
    executor.update_parameters(**parameters)
    submitted = executor.map_array(run_job, list(jobs))
    outcomes = []
    try:
        for job, handle in zip(jobs, submitted):
            try:
                status = handle.result()
            except (submitit.core.utils.UncompletedJobError, submitit.core.utils.FailedJobError):
                status = -1  # killed, timed out or crashed outside the run: its log and submitit's say why
            outcome = Outcome(job, status)
            advance(outcome)
            outcomes.append(outcome)
    except BaseException:
        for handle in submitted:
            handle.cancel(check=False)
        raise
    return outcomes
