"""Training: truncated BPTT over parallel streams, evaluation on the whole test split, checkpoints.

No training decision looks at the test split: the learning-rate schedule is fixed in advance and the
last weights are kept; the test loss is only recorded.

Under DDP (several processes, see charrnn.distributed) the run's streams are shared among the ranks, each
carrying its own streams' hidden state, and the gradients are averaged: the same steps as one process
running all the streams. Rank 0 alone evaluates, samples, shows progress and writes the checkpoint.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from . import checkpoint
from .data import SAMPLE_PROMPT, Batches, hold_out
from .distributed import World, deferred_stop
from .flags import check_choices
from .model import CharRNN, map_state, num_streams, select_streams
from .sample import generate
from .scoring import evaluate
from .units import bits


@dataclass
class TrainConfig:
    batch_size: int = 64  # parallel streams; more = better use of the matrix units, fewer updates per epoch
    seq_len: int = 128  # truncated-BPTT length: gradients reach this many characters back
    epochs: int = 10  # passes over the training text (with --resume: the new total)
    optimizer: Literal["adamw", "sgd"] = "adamw"  # AdamW, or plain SGD as in the paper and the course notebook
    lr: float = 2e-3  # peak learning rate
    weight_decay: float = 0.0  # decoupled weight decay (AdamW), or L2 (SGD)
    grad_clip: float = 1.0  # max global gradient norm; 0 = off. Recurrences explode without it
    schedule: Literal["cosine", "constant"] = "cosine"  # cosine: warm up, then decay to lr/10 by the last step;
    #                                                     constant: lr throughout
    warmup_steps: int = 100  # linear warm-up steps of the cosine schedule
    max_chars: int = 0  # train on only the first N characters of the training split; 0 = all of it
    val_chars: int = 0  # hold out the last N of those as validation: not trained on, its loss recorded, so
    #                     settings can be compared without looking at the test split; 0 = none
    eval_every: int = 0  # steps between evaluations and checkpoints; 0 = once per epoch
    sample_length: int = 200  # characters of the sample recorded at each evaluation
    seed: int = 1337  # random seed of the initial weights, dropout and samples: the same seed, the same run
    save_dtype: Literal["float32", "float16"] = "float32"  # storage type of model.safetensors
    dtype: Literal["fp32", "bf16"] = "fp32"  # compute type of the training steps: bf16 runs them under autocast
    #                                          (for GPUs); weights, optimizer and evaluations stay float32
    time_budget: float = 0.0  # seconds of training (evaluations included) after which the run stops, whatever
    #                           the epochs; the cosine schedule ends at whichever comes first; 0 = the epochs alone

    def __post_init__(self):
        check_choices(self)
        if min(self.batch_size, self.seq_len, self.epochs) < 1 or self.lr <= 0 or self.time_budget < 0:
            raise ValueError("batch_size, seq_len and epochs must be >= 1, lr > 0 and time_budget >= 0")


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


@dataclass
class Run:
    """What a training run needs besides the model: its texts, settings and where it saves."""

    train_text: str
    test_text: str
    config: TrainConfig
    out: Path
    info: dict = field(default_factory=dict)  # recorded as-is: command line, corpus checksum, device
    progress: bool = True
    world: World = field(default_factory=World)  # alone, or this process's place among several (DDP)


def lr_at(step: int, total: int, cfg: TrainConfig, elapsed: float = 0.0) -> float:
    """The learning rate of step `step` of `total`, `elapsed` seconds into the run. Under a time budget the
    number of steps is not known in advance, so the decay follows whichever end is nearer: steps or seconds."""
    if cfg.schedule == "constant":
        return cfg.lr
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    t = (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps)
    if cfg.time_budget:
        t = max(t, elapsed / cfg.time_budget)
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))


def make_optimizer(model: CharRNN, cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)


def train_step(model, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, state=None,
               grad_clip: float = 0.0, world: World | None = None,
               dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, object]:
    """One step of truncated BPTT on inputs x (B, T) and targets y (B, T), from recurrent `state`:
    forward, the loss of each character, backward, clipping (0 = off), the optimizer's update.

    Returns the per-character losses (B, T), measured before the update, and the new state, both
    detached. The same step serves training, the training benchmark and the dynamic evaluation.
    world: under DDP (`model` wrapped in DistributedDataParallel), the losses returned are those of every
    rank's streams (world.size·B, T), as one process running them all would return them, and a NaN seen
    by any rank stops every rank (one stopping alone would leave the others waiting in backward).
    dtype: torch.bfloat16 runs the forward pass under autocast; the state carried on stays float32.
    """
    with torch.autocast(x.device.type, torch.bfloat16, enabled=dtype == torch.bfloat16):
        logits, new_state = model(x, state)
    losses = F.cross_entropy(logits.flatten(0, 1).float(), y.flatten(), reduction="none").view_as(y)
    seen = losses.detach() if world is None else world.gather_rows(losses.detach())  # (size·B, T)
    if not torch.isfinite(seen.mean()):
        raise TrainingDiverged(f"the loss became {seen.mean().item()}")
    opt.zero_grad(set_to_none=True)
    losses.mean().backward()  # DDP averages the ranks' gradients: the gradient of seen.mean()
    if grad_clip:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    opt.step()
    return seen, map_state(new_state, lambda s: s.detach().float())


def _sample(model: CharRNN, length: int) -> str:
    return "".join(generate(model, SAMPLE_PROMPT, length, temperature=0.8, seed=0))


def _generators(device: torch.device) -> dict:
    """The states of the random generators dropout draws from: the CPU's, and the GPU's when training on one."""
    states = {"rng": torch.get_rng_state()}
    if device.type == "cuda":
        states["cuda_rng"] = torch.cuda.get_rng_state(device)
    return states


def _restore_generators(states: dict, device: torch.device) -> None:
    torch.set_rng_state(states["rng"])
    if device.type == "cuda" and "cuda_rng" in states:  # a run started on the CPU has none to restore
        torch.cuda.set_rng_state(states["cuda_rng"], device)


def _stored(model: CharRNN, dtype: torch.dtype) -> CharRNN:
    """A copy whose weights went through the storage type, so recorded losses are those of the file."""
    copy_ = copy.deepcopy(model)
    with torch.no_grad():
        for p in copy_.parameters():
            p.copy_(p.to(dtype).float())
    return copy_


def check_continues(step: int, steps_per_epoch: int, epochs: int, record: dict, out: Path) -> None:
    """Refuse to resume a run that stands at `step` with a total of `epochs` that would not train it further:
    the loop would not run, and the record would say "complete" with fewer epochs than were trained."""
    complete = record.get("status") == "complete"
    if step < epochs * steps_per_epoch or (step == epochs * steps_per_epoch and not complete):
        return
    least = step // steps_per_epoch + 1  # the smallest total whose last step lies beyond this one
    stands = f"epoch {round(step / steps_per_epoch, 2):g} of {record.get('training', {}).get('epochs', '?')}"
    if complete and epochs * steps_per_epoch == step:
        raise ValueError(f"{out} is complete at {stands}: to train it further, pass --epochs {least} or more "
                         "(the new total)")
    raise ValueError(f"{out} stands at {stands}; --epochs {epochs} (the new total, not a number of epochs to add) "
                     f"would end it before where it stands: pass --epochs {least} or more"
                     + ("" if complete else ", or leave --epochs out to finish the run as it was set"))


def train(model: CharRNN, run: Run, resume: dict | None = None, record: dict | None = None) -> dict:
    """Train `model` and keep `run.out` holding the latest checkpoint. Returns the saved record.

    resume: a training_state (see checkpoint.load_training_state) and record its config.json. A run can be
    resumed by another number of processes training the same number of streams in all; it trains on the
    same data in the same order, but dropout cannot draw as it would have.
    Ctrl-C saves a checkpoint at the current step and returns; a NaN or infinite loss raises
    TrainingDiverged without touching the last good checkpoint.
    """
    cfg, world = run.config, run.world
    if cfg.time_budget and world.size > 1:  # each rank's clock would end it after a different step
        raise ValueError("a time budget stops one process's run: drop --time-budget, or train in one process")
    device = model.device
    dtype = getattr(torch, cfg.save_dtype)
    compute_dtype = torch.bfloat16 if cfg.dtype == "bf16" else torch.float32
    train_text, val_text = hold_out(run.train_text, cfg.val_chars, cfg.max_chars)
    # The run's streams are cut as one process would cut them; this rank trains its share of them.
    streams, rows = cfg.batch_size * world.size, world.rows(cfg.batch_size)
    batches = Batches(torch.tensor(model.encode(train_text), dtype=torch.long), streams, cfg.seq_len)
    # The train loss in the history is measured like the test loss (eval mode, no dropout) on a fixed
    # slice of training text as long as the test split, so the two are comparable and the gap is honest.
    train_probe = train_text[: len(run.test_text)]
    total_steps = cfg.epochs * len(batches)
    if resume is not None:  # against the record as saved, before this run's settings replace its own
        check_continues(int(resume["step"]), len(batches), cfg.epochs, record or {}, run.out)
    opt = make_optimizer(model, cfg)
    record = dict(record or {})
    how = {"world_size": world.size, "backend": world.backend} if world.size > 1 else {}
    record.update(training={**asdict(cfg), **run.info, **how, "train_chars": len(train_text),
                            "test_chars": len(run.test_text)})
    history = record.setdefault("history", [])
    record.pop("final", None)
    step, elapsed = 0, 0.0
    if resume is not None:
        model.load_state_dict(resume["model"])
        opt.load_state_dict(resume["optimizer"])
        step, elapsed = int(resume["step"]), float(resume["elapsed"])
        saved = resume.get("ranks") or [{k: v for k, v in resume.items() if k in ("rng", "cuda_rng")}]
        if len(saved) == world.size:
            _restore_generators(saved[world.rank], device)
        else:  # each rank draws its own dropout, not one saved for another number of processes
            torch.manual_seed(cfg.seed + world.rank + step)
        # The hidden state every stream had reached, saved on the CPU: (L, streams, H), or the LSTM's pair.
        carried = resume.get("carried")
        saved_streams = None if carried is None else num_streams(carried)
        if saved_streams not in (None, streams):
            raise ValueError(f"the saved run trains {saved_streams} parallel streams in all, this one {streams} "
                             f"({world.size} process(es) x batch size {cfg.batch_size}): continue it with "
                             f"{saved_streams} streams in all")
        carried = map_state(select_streams(carried, rows), lambda s: s.to(device))
    else:
        torch.manual_seed(cfg.seed + world.rank)  # rank r > 0 draws its own dropout masks
        carried = None
    if world.size > 1:  # averages the gradients over the ranks in backward; rank 0's weights to all at the start
        net = DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)
    else:
        net = model

    def save(status: str) -> None:
        record["status"] = status
        # Everything as it was after the last completed step, so a resumed run is the same run: every
        # stream's carried state and every rank's random generators, gathered on rank 0. The periodic save at an
        # epoch's end carries no state (the next step starts every stream afresh): it keeps a transformer's
        # key/value cache (~170 MB for its preset) out of the file that long runs commit as they go.
        afresh = status == "training" and step % len(batches) == 0
        every_stream = None if afresh else map_state(state, lambda s: world.gather_rows(s, dim=1).cpu())
        generators = world.gather_objects(rng)
        if not world.main:
            return
        resume_state = {"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step,
                        "elapsed": elapsed, **generators[0], "carried": every_stream}
        if world.size > 1:
            resume_state["ranks"] = generators
        checkpoint.save(model, run.out, record, resume_state, dtype)

    def log_eval() -> None:
        stored = _stored(model, dtype)
        history.append({
            "epoch": round(step / len(batches), 4), "step": step, "chars": step * streams * cfg.seq_len,
            "time_s": round(elapsed, 2), "lr": lr_at(step - 1, total_steps, cfg, elapsed),
            "train_loss": evaluate(stored, train_probe)["nats"], "test_loss": evaluate(stored, run.test_text)["nats"],
            "train_running_loss": running / max(1, running_n), "sample": _sample(stored, cfg.sample_length),
            **({"val_loss": evaluate(stored, val_text)["nats"]} if val_text else {})})
        h = history[-1]
        val = f" | val {h['val_loss']:.4f}" if val_text else ""
        tqdm.write(f"epoch {h['epoch']:.2f} | train {h['train_loss']:.4f}{val} | test {h['test_loss']:.4f} nats/char "
                   f"| {bits(h['test_loss']):.3f} bpc | {elapsed:.0f} s")

    eval_every = cfg.eval_every or len(batches)

    def finished() -> bool:
        return step >= total_steps or bool(cfg.time_budget) and elapsed >= cfg.time_budget

    running, running_n, state, rng = 0.0, 0, carried, _generators(device)
    # Under a time budget the epochs are only an upper bound: the bar counts steps and shows the seconds left.
    bar = tqdm(total=None if cfg.time_budget else total_steps, initial=step, unit="step", dynamic_ncols=True,
               disable=not (run.progress and world.main))
    wall0 = time.perf_counter() - elapsed  # elapsed counts wall time, evaluations included, across resumes
    shown_at, shown_step = elapsed, step  # when the progress bar's loss and chars/s were last shown
    model.train()
    try:
        with deferred_stop(world):
            while not finished():
                rng = _generators(device)  # dropout draws from them; an interrupted step must not count
                if world.stop_requested():  # a signal under DDP: every rank stops here, after the same step
                    raise KeyboardInterrupt
                i = step % len(batches)
                if i == 0:
                    state = None  # a new epoch starts every stream at its beginning
                x, y = (t[rows].to(device) for t in batches[i])
                for g in opt.param_groups:
                    g["lr"] = lr_at(step, total_steps, cfg, elapsed)
                try:
                    losses, new_state = train_step(net, opt, x, y, state, cfg.grad_clip, world, compute_dtype)
                except TrainingDiverged as e:
                    raise TrainingDiverged(f"{e} at step {step}; the last good checkpoint in {run.out} is kept. "
                                           "Lower --lr or set --grad-clip, then --resume or start again.") from None
                step, state = step + 1, new_state
                elapsed = time.perf_counter() - wall0
                running += losses.mean().item()
                running_n += 1
                bar.update(1)
                if elapsed - shown_at >= 0.5:  # formatting the bar every step would slow one-character steps
                    chars_s = (step - shown_step) * losses.numel() / (elapsed - shown_at)
                    left = {"left": f"{cfg.time_budget - elapsed:.0f} s"} if cfg.time_budget else {}
                    bar.set_postfix(loss=f"{running / running_n:.3f}", chars_s=f"{chars_s:,.0f}", **left)
                    shown_at, shown_step = elapsed, step
                if step % eval_every == 0 or finished():
                    if world.main:
                        log_eval()
                    rng = _generators(device)
                    last = finished()  # judged before the evaluation's time, so that it is the last one
                    elapsed = time.perf_counter() - wall0
                    running, running_n = 0.0, 0
                    if not last:
                        save("training")
    except KeyboardInterrupt:
        bar.close()
        elapsed = time.perf_counter() - wall0
        if world.main:
            tqdm.write(f"interrupted at step {step}/{total_steps}; saving {run.out} (continue with --resume)")
        save("interrupted")
        return record
    bar.close()
    elapsed = time.perf_counter() - wall0
    if world.main:
        stored = _stored(model, dtype)
        splits = (("train", train_text), ("val", val_text), ("test", run.test_text))
        record["final"] = {split: evaluate(stored, text) for split, text in splits if text}
        record["final"]["train_time_s"] = round(elapsed, 1)
        record["final"]["steps"] = step
        # What ended the run: the budget's seconds or the epochs' steps.
        record["final"]["stopped_by"] = "epochs" if step >= total_steps else "time_budget"
    save("complete")
    return record
