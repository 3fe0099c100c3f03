"""Starting, saving and resuming: the run folder's lock, a new run's folder or a checkpoint's state restored,
the per-epoch checkpoint, and the RNG states that make a resume exact."""

from __future__ import annotations

import copy
import datetime
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Literal

import torch

from resdyn import version as provenance
from resdyn.device import peak_memory_bytes
from resdyn.distributed import World
from resdyn.errors import ConfigError, ResdynError
from resdyn.experiment import differences, flatten
from resdyn.runs import Checkpoint, EpochRecord, GradStatsRecord, Resume, RunDir, RunError, TrainState
from resdyn.train.config import Config, dump_config
from resdyn.train.parts import Job, Parts
from resdyn.train.progress import Progress


def on_main(world: World, action: Callable[[], Any]) -> Any:
    """Run ``action`` on rank 0 and give every process its result; an error there is raised everywhere (rather
    than leaving the other processes waiting for rank 0)."""
    result, error = None, None
    if world.is_main:
        try:
            result = action()
        except ResdynError as e:
            error = e
    if world.size == 1:
        if error is not None:
            raise error
        return result
    result, message = world.broadcast((result, None if error is None else str(error)))
    if error is not None:
        raise error
    if message is not None:
        raise RunError(f"rank 0: {message}")
    return result


@contextmanager
def holding(run: RunDir | None, world: World, progress: Progress) -> Iterator[None]:
    """Hold ``run``'s lock on rank 0 for the training (nothing to hold without a folder)."""
    if run is None or not world.is_main:
        yield
        return
    with run.lock() as took_over:
        if took_over:
            progress.message(f"took over the lock of {run.path} left by a training that is gone ({took_over})")
        yield


#: what a run *is*: its model and the data it trains and is scored on. A resume may change how it trains (epochs,
#: learning rate, ...), never these: that would be another run under this one's name.
IDENTITY = ("model.name", "model.options", "data.name", "data.test_part", "data.limit_train", "data.limit_test",
            "data.val_fraction")


def check_same_run(stored: Mapping[str, Any], config: Config, run: RunDir) -> None:
    """Refuse a resume whose ``config`` changes an :data:`IDENTITY` key of ``stored`` (the checkpoint's config),
    naming each difference."""
    new = config.to_dict()
    changes = []
    for key in IDENTITY:
        section, name = key.split(".")
        before, after = stored.get(section, {}).get(name), new.get(section, {}).get(name)
        if key == "model.options":
            before, after = before or {}, after or {}
        if before != after:
            changes.append(f"{key} {before!r} -> {after!r}")
    if changes:
        raise RunError(f"--resume continues the run in {run.path}, which cannot change what it trains: "
                       f"{'; '.join(changes)}. To train that, start a new run (another --out), or fork this one "
                       f"(`cp -r {run.path} NEW`) only to change how it trains")


#: what a folder holds for an experiment: its finished run, a run to resume, or nothing of it yet
Status = Literal["done", "resume", "start"]


def folder_state(run: RunDir, config: Config) -> Status:
    """"done" (a summary), "resume" (a checkpoint, no summary) or "start" (neither: a fresh folder, or one whose
    run never saved an epoch) for the experiment ``config`` in ``run``; a folder holding another experiment's run
    is a ConfigError naming the keys that differ (:func:`resdyn.experiment.differences`)."""
    try:
        finished = run.read_summary() is not None
    except RunError:
        finished = False  # a corrupt summary: resuming a finished run only re-evaluates it and rewrites it
    if not finished and not run.has_checkpoint():
        return "start"
    stored = Config.from_dict(run.current_config(), str(run.file(RunDir.CONFIG))).to_dict()
    wanted = config.to_dict()
    differ = differences(stored, wanted)
    if differ:
        stored, wanted = flatten(stored), flatten(wanted)
        changes = "; ".join(f"{k}: {stored.get(k, '(unset)')!r} there, {wanted.get(k, '(unset)')!r} here"
                            for k in differ)
        raise ConfigError(f"{run.path} holds a run of another config ({changes}); delete that folder to run it "
                          "again, or choose another out")
    return "done" if finished else "resume"


def start_or_resume(config: Config, parts: Parts, job: Job) -> TrainState:
    """A new run (config.toml written, when there is a folder), or the job's checkpoint restored into ``parts``
    (the resume and its overrides recorded in the folder); rank 0 writes the folder."""
    world, run, checkpoint = parts.world, job.run, job.checkpoint
    version = provenance.loaded_version()
    if checkpoint is None:
        if run is not None:
            on_main(world, lambda: run.create(dump_config(config), overwrite=job.overwrite))
        return TrainState(versions=[version], world_size=world.size)
    assert run is not None, "a checkpoint is resumed into its run folder"

    state = checkpoint.state
    # Every state loads before the folder changes: a checkpoint that does not fit leaves the run as it was.
    try:
        parts.model.load_state_dict(checkpoint.model)
        parts.optimizer.load_state_dict(checkpoint.optimizer)
        if parts.ema is not None:
            parts.ema.load_state_dict(checkpoint.ema)
        if parts.swa is not None:
            parts.swa.load_state_dict(checkpoint.swa)
    except (RuntimeError, ValueError, KeyError) as e:
        raise RunError(f"the checkpoint of {run.path} does not fit the model and optimiser this resume builds "
                       f"({str(e).splitlines()[0]}); resume with the settings the run was trained with") from None

    def reopen() -> tuple[list[EpochRecord], list[GradStatsRecord]]:
        kept = run.read_metrics()
        if len([r for r in kept if r.epoch <= state.epoch]) < state.epoch:
            job.progress.warn(
                f"{run.file(RunDir.METRICS)} holds {len(kept)} of the {state.epoch} epoch(s) the checkpoint has "
                "trained (the file was cut or deleted): the run goes on, but its curves and per-epoch figures "
                "lack the missing epochs")
        run.reopen(state.epoch, state.step)
        started = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
        run.add_resume(Resume(state.epoch, job.command, [list(o) for o in job.overrides], config.to_dict(), started))
        return run.read_metrics(), run.read_gradstats()

    job.records, job.grad_stats = on_main(world, reopen) or ([], [])
    if state.world_size == world.size:
        set_rng_state(checkpoint.rng, parts.device, world)
    else:
        # The data order depends only on (seed, epoch), so the run goes on as it would have; only the model's own
        # random draws (stochastic depth, noise) differ from an uninterrupted run, as they would anyway.
        torch.manual_seed(rank_seed(config.train.seed, world.rank, state.epoch))
        job.progress.message(f"resuming with {world.size} process(es) a run last trained with {state.world_size}")
    state.versions = state.versions if state.versions[-1] == version else [*state.versions, version]
    state.world_size = world.size
    inside = f", batch {state.epoch_batches} of epoch {state.epoch + 1}" if state.epoch_batches else ""
    job.progress.message(f"resuming {run.path} after epoch {state.epoch}{inside}")
    return state


def save_epoch(config: Config, parts: Parts, state: TrainState, record: EpochRecord, job: Job,
               grad_stats: Sequence[GradStatsRecord] = ()) -> None:
    """Keep the epoch: its record and gradient statistics, the best validation weights when validation improved
    (best.pt, or in memory without a folder), and the checkpoint (rank 0 writes the folder)."""
    job.records.append(record)
    job.grad_stats += grad_stats
    improved = config.train.early_stop_patience is not None and state.early_stop.best_epoch == state.epoch
    run = job.run
    if run is None:
        if improved:
            job.best = ({k: v.detach().clone() for k, v in parts.scored.state_dict().items()}, state.epoch)
        return
    rng = rng_state(parts.device, parts.world)
    if not parts.world.is_main:
        return
    if improved:
        run.save_best(parts.scored.state_dict(), state.epoch)
    # Metrics first, then the checkpoint: a kill in between leaves a metrics line that resume drops.
    if grad_stats:
        run.append_gradstats(grad_stats)
    run.append_metrics(record)
    _save_checkpoint(config, parts, state, job, rng)


def save_partial(config: Config, parts: Parts, state: TrainState, job: Job,
                 grad_stats: Sequence[GradStatsRecord] = ()) -> None:
    """Keep a moment inside an epoch (``state.epoch_batches`` and the running sums set): the gradient statistics of
    its steps so far and the checkpoint, with no metrics line (the epoch has none yet); rank 0 writes them."""
    assert job.run is not None, "a moment inside an epoch is kept only in a run folder"
    job.grad_stats += grad_stats
    rng = rng_state(parts.device, parts.world)
    if parts.world.is_main:
        if grad_stats:
            job.run.append_gradstats(grad_stats)
        _save_checkpoint(config, parts, state, job, rng)


def _save_checkpoint(config: Config, parts: Parts, state: TrainState, job: Job, rng: dict[str, torch.Tensor]) -> None:
    """The checkpoint (rank 0, a run folder): the state with the training's peak memory so far, weights,
    optimiser, averages, RNG states and config; the last resume's overrides now describe the weights."""
    run = job.run
    assert run is not None
    state.note_peak_memory(*peak_memory_bytes(parts.device, job.memory))
    run.save_checkpoint(Checkpoint(
        copy.deepcopy(state), parts.model.state_dict(), parts.optimizer.state_dict(),
        parts.ema.state_dict() if parts.ema is not None else None,
        parts.swa.state_dict() if parts.swa is not None else None, rng, config.to_dict(),
    ))
    run.mark_resume_applied()


def rank_seed(seed: int, rank: int, epoch: int) -> int:
    """The seed of rank ``rank``'s own random draws from ``epoch`` on (the data order is seeded apart)."""
    return (seed * 1_000_003 + rank) * 1_000_003 + epoch


def rng_state(device: torch.device, world: World) -> dict[str, torch.Tensor]:
    """Every process's generator states: ``torch`` and ``cuda`` for rank 0, ``torch:R`` and ``cuda:R`` for rank R."""
    own = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        own["cuda"] = torch.cuda.get_rng_state(device)
    merged: dict[str, torch.Tensor] = {}
    for rank, states in enumerate(world.gather(own)):
        merged.update({key if rank == 0 else f"{key}:{rank}": value for key, value in states.items()})
    return merged


def set_rng_state(state: dict[str, torch.Tensor], device: torch.device, world: World) -> None:
    """This process's generator states from :func:`rng_state`'s table."""
    suffix = "" if world.rank == 0 else f":{world.rank}"
    torch.set_rng_state(state[f"torch{suffix}"])
    if device.type == "cuda" and f"cuda{suffix}" in state:
        torch.cuda.set_rng_state(state[f"cuda{suffix}"], device)
