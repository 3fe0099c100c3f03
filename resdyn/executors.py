"""Where a suite's runs train: one after another here (``local``), several at once on this machine (``pool``: one
per GPU, or CPU cores shared out), or as SLURM jobs through submitit (``slurm``; ``submitit-local`` runs the very
same jobs as local processes, which is how a cluster setup is tested without a cluster).

Every run is a process of its own running ``python -m resdyn train ... --resume-if-present`` into its folder, so
an executor only launches commands and reports how each ended; what a run does with its folder (start, resume,
leave a finished one) is the training's own rule, and a rerun of the same suite picks up where the last left.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from resdyn.errors import ConfigError
from resdyn.runs import MissingPackageError

#: the names ``--executor`` takes
EXECUTORS = ("local", "pool", "slurm", "submitit-local")


@dataclass(frozen=True)
class Task:
    """One run to launch: its name, the command (``argv``), and the folder it trains into."""

    name: str
    argv: list[str]
    folder: Path


@dataclass(frozen=True)
class Ended:
    """How a task ended: its exit status, and its error (the last ``resdyn: error:`` line, else the last line
    of its output) when the status is not 0."""

    task: Task
    returncode: int
    error: str | None = None


class Executor(ABC):
    """Launches tasks and yields each one's :class:`Ended` as it ends; ``on_start(task)`` is called as each
    starts (or is submitted)."""

    @abstractmethod
    def run(self, tasks: Sequence[Task], on_start: Callable[[Task], None]) -> Iterator[Ended]:
        ...


def last_error(returncode: int, stderr: str) -> str | None:
    """The message of a failed ``resdyn`` process: its last ``resdyn: error:`` line, else its last line of its
    own (``resdyn: stopped on SIGTERM ...``), else its last line."""
    if returncode == 0:
        return None
    errors = [line.split("resdyn: error: ", 1)[1] for line in stderr.splitlines() if "resdyn: error: " in line]
    own = [line.split("resdyn: ", 1)[1] for line in stderr.splitlines()
           if "resdyn: " in line and "resdyn: warning: " not in line]
    if errors or own:
        return (errors or own)[-1]
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    return f"the run's process exited with {returncode}: {lines[-1] if lines else 'no output'}"


def run_passing_through(argv: Sequence[str], env: dict[str, str] | None = None, prefix: bytes = b"",
                        keep: int = 1 << 16) -> tuple[int, str]:
    """Run ``argv`` with its stderr copied to ours as it comes (each line after ``prefix`` when one is given,
    else byte for byte, progress bars included); its exit status and the last ``keep`` bytes of its stderr. An
    interrupt (Ctrl-C reaches the child too) waits for the child to stop, then goes on."""
    process = subprocess.Popen(list(argv), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    assert process.stderr is not None
    ours = getattr(sys.stderr, "buffer", None)
    tail, pending = b"", b""
    try:
        while chunk := os.read(process.stderr.fileno(), 4096):
            tail = (tail + chunk)[-keep:]
            if prefix:
                pending += chunk
                *lines, pending = pending.split(b"\n")
                chunk = b"".join(prefix + line + b"\n" for line in lines)
            if ours is not None:
                ours.write(chunk)
            else:
                sys.stderr.write(chunk.decode(errors="replace"))
            sys.stderr.flush()
        return process.wait(), tail.decode(errors="replace")
    except BaseException:
        process.wait()
        raise


class Local(Executor):
    """One task after another, each a child process whose output is passed through."""

    def run(self, tasks: Sequence[Task], on_start: Callable[[Task], None]) -> Iterator[Ended]:
        for task in tasks:
            on_start(task)
            returncode, stderr = run_passing_through(task.argv)
            yield Ended(task, returncode, last_error(returncode, stderr))


@dataclass
class Pool(Executor):
    """Up to ``len(slots)`` tasks at once on this machine, each in the environment of a free slot: one GPU each
    (``CUDA_VISIBLE_DEVICES``), or on a CPU an equal share of the cores (``OMP_NUM_THREADS``). Each output line
    is prefixed with its task's name."""

    slots: list[dict[str, str]] = field(default_factory=list)

    @classmethod
    def for_gpus(cls, gpus: Sequence[str]) -> Pool:
        return cls([{"CUDA_VISIBLE_DEVICES": g} for g in gpus])

    @classmethod
    def for_cpus(cls, workers: int, cores: int | None = None) -> Pool:
        """``workers`` processes sharing the ``cores`` (default: those this process may use) evenly."""
        cores = cores or len(os.sched_getaffinity(0))
        threads = max(1, cores // workers)
        return cls([{"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)} for _ in range(workers)])

    def run(self, tasks: Sequence[Task], on_start: Callable[[Task], None]) -> Iterator[Ended]:
        if not self.slots:
            raise ConfigError("a pool needs at least one slot (--gpus or --workers)")
        free = list(range(len(self.slots)))
        ended: list[tuple[Ended, int]] = []
        done = threading.Condition()

        def launch(task: Task, slot: int) -> None:
            try:
                returncode, stderr = run_passing_through(task.argv, {**os.environ, **self.slots[slot]},
                                                         prefix=f"[{task.name}] ".encode())
                result = Ended(task, returncode, last_error(returncode, stderr))
            except Exception as e:  # noqa: BLE001 - reported as this task's failure
                result = Ended(task, -1, f"{type(e).__name__}: {e}")
            with done:
                ended.append((result, slot))
                done.notify()

        waiting, running = list(tasks), 0
        while waiting or running:
            with done:
                while free and waiting:
                    task, slot = waiting.pop(0), free.pop(0)
                    on_start(task)
                    threading.Thread(target=launch, args=(task, slot), daemon=True).start()
                    running += 1
                while not ended:
                    done.wait()
                result, slot = ended.pop(0)
                free.append(slot)
                running -= 1
            yield result


def _job(argv: list[str], distributed: bool) -> tuple[int, str]:
    """What a SLURM job (or task of one) runs: the training command; with several tasks, each one process of a
    data-parallel run, told its rank through the environment torch.distributed reads."""
    env = dict(os.environ)
    if distributed:
        from submitit.helpers import TorchDistributedEnvironment

        TorchDistributedEnvironment().export(set_cuda_visible_devices=True)
        env = dict(os.environ)
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    sys.stderr.write(done.stderr[-(1 << 16):])
    return done.returncode, done.stderr[-(1 << 16):]


@dataclass
class Slurm(Executor):
    """Each task a SLURM job through submitit (one job array), its logs in ``folder``; ``cluster="local"`` runs
    the same jobs as local processes (submitit's LocalExecutor). ``parameters`` are submitit's
    (``slurm_partition``, ``timeout_min``, ``gpus_per_node``, ``nodes``, ``tasks_per_node``, ...). The job ids are
    kept in ``folder/jobs.tsv`` for ``resdyn compare --status``."""

    folder: Path
    cluster: str = "slurm"
    parameters: dict[str, Any] = field(default_factory=dict)

    def run(self, tasks: Sequence[Task], on_start: Callable[[Task], None]) -> Iterator[Ended]:
        try:
            import submitit
        except ImportError:
            raise MissingPackageError("--executor slurm needs submitit: pip install 'resdyn[cluster]'") from None
        executor = submitit.AutoExecutor(folder=self.folder, cluster=self.cluster)
        executor.update_parameters(**self.parameters)
        tasks_per_job = int(self.parameters.get("tasks_per_node", 1)) * int(self.parameters.get("nodes", 1))
        with executor.batch():
            jobs = [executor.submit(_job, task.argv, tasks_per_job > 1) for task in tasks]
        with open(self.folder / "jobs.tsv", "a") as record:
            for task, job in zip(tasks, jobs, strict=True):
                record.write(f"{task.folder}\t{job.job_id}\n")
                on_start(task)
        for task, job in zip(tasks, jobs, strict=True):
            try:
                results = job.results()  # one per task of the job
            except Exception as e:  # noqa: BLE001 - a job that died (killed, out of time) fails its run only
                yield Ended(task, -1, f"job {job.job_id} failed: {str(e).strip().splitlines()[-1]}")
                continue
            returncode = next((r for r, _ in results if r != 0), 0)
            yield Ended(task, returncode, last_error(returncode, "".join(err for _, err in results)))


def recorded_jobs(folder: Path) -> dict[Path, str]:
    """The last job id submitted for each run folder (``Slurm``'s ``jobs.tsv``)."""
    path = folder / "jobs.tsv"
    if not path.exists():
        return {}
    jobs = {}
    for line in path.read_text().splitlines():
        run, _, job = line.partition("\t")
        jobs[Path(run)] = job
    return jobs
