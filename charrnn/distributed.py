"""Training on several processes: the process group, each rank's share of the streams, what ranks exchange.

torchrun starts one process per device and tells each its place in the environment (RANK, WORLD_SIZE,
LOCAL_RANK, MASTER_ADDR, ...); `from_env` joins them into one group: gloo between CPU processes, nccl
between GPUs. One process started without torchrun is the World of size 1, whose exchanges are
identities, so that the training loop has one path and single-process training stays what it was.
"""
from __future__ import annotations

import os
import signal
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
import torch.distributed as dist


@dataclass
class World:
    """This process's place among the `size` processes training one model, and what they exchange."""

    rank: int = 0
    size: int = 1
    backend: str | None = None  # "gloo" or "nccl"; None alone
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))  # this rank's model and tensors
    stop_signalled: bool = False  # set by SIGINT or SIGTERM inside `deferred_stop`

    @property
    def main(self) -> bool:
        """Rank 0: the one that writes checkpoints, evaluates, samples and shows progress."""
        return self.rank == 0

    def rows(self, per_rank: int) -> slice:
        """This rank's streams among the size x per_rank of the run: rank r takes r·B ... (r+1)·B - 1."""
        return slice(self.rank * per_rank, (self.rank + 1) * per_rank)

    def gather_rows(self, t: torch.Tensor, dim: int = 0) -> torch.Tensor:
        """Every rank's `t` side by side along `dim`, in rank order: (..., B, ...) -> (..., size·B, ...)."""
        if self.size == 1:
            return t
        parts = [torch.empty_like(t) for _ in range(self.size)]
        dist.all_gather(parts, t.contiguous())
        return torch.cat(parts, dim)

    def gather_objects(self, obj) -> list:
        """Every rank's `obj` (picklable), in rank order."""
        if self.size == 1:
            return [obj]
        out = [None] * self.size
        dist.all_gather_object(out, obj)
        return out

    def from_main(self, fn):
        """fn() run on rank 0 alone, its result (or the error it raised) handed to every rank.

        Files are read once, on rank 0's machine: other machines need neither the corpus nor the
        checkpoint, and every rank fails with the same message when one is bad.
        """
        if self.size == 1:
            return fn()
        box = [None]
        if self.main:
            try:
                box[0] = (fn(), None)
            except Exception as e:  # handed over, raised again below on every rank
                box[0] = (None, e)
        dist.broadcast_object_list(box, src=0)
        result, error = box[0]
        if error is not None:
            raise error
        return result

    def stop_requested(self) -> bool:
        """Whether any rank was signalled to stop: asked by every rank at the same step, so that all stop there."""
        if self.size == 1:
            return self.stop_signalled
        flag = torch.tensor([int(self.stop_signalled)], device=self.device)
        dist.all_reduce(flag, dist.ReduceOp.MAX)
        return bool(flag.item())


@contextmanager
def deferred_stop(world: World):
    """Under DDP, Ctrl-C (SIGINT, which torchrun passes on to every worker) and SIGTERM (a launcher or
    scheduler stopping the job) only set `world.stop_signalled`; the training loop stops at the next
    step every rank agrees on. A KeyboardInterrupt raised mid-step would leave the other ranks waiting
    forever in that step's all-reduce. One process alone keeps Python's own Ctrl-C, and takes SIGTERM as one (a
    session or a scheduler ending the job, `kill`): the run saves what it has, resumable, instead of losing all
    since its last save."""
    if world.size == 1:
        if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
            yield
            return

        def interrupt(signum, frame):
            raise KeyboardInterrupt

        previous = signal.signal(signal.SIGTERM, interrupt)
        try:
            yield
        finally:
            signal.signal(signal.SIGTERM, previous)
        return

    def note(signum, frame):
        world.stop_signalled = True

    previous = {s: signal.signal(s, note) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def cpu_threads() -> str:
    """PyTorch's CPU threads as a run's record names them: "1 CPU thread", "2 CPU threads"."""
    threads = torch.get_num_threads()
    return f"{threads} CPU thread{'s' * (threads > 1)}"


def pick_device(device: str) -> torch.device:
    """"auto" is cuda when a GPU is there, else cpu."""
    return torch.device(device if device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))


def join(rank: int, size: int, init_method: str, device: torch.device) -> World:
    """Join a process group of `size` as `rank`, meeting at `init_method` (env://, tcp://HOST:PORT or
    file://PATH): nccl between GPUs, gloo otherwise."""
    if device.type == "cuda":
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend, init_method=init_method, rank=rank, world_size=size)
    return World(rank, size, backend, device)


def from_env(device: str = "auto") -> World:
    """This process's World: alone, or its place in the group that torchrun started (read from the environment).

    device: cpu, cuda or auto; under torchrun each process on a machine takes the GPU of its LOCAL_RANK.
    """
    dev = pick_device(device)
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size == 1:
        return World(device=dev)
    local_rank = int(os.environ["LOCAL_RANK"])
    if dev.type == "cuda":
        if dev.index is not None:
            raise ValueError(f"--device {device}: under torchrun each process takes the GPU of its local rank; "
                             "pass --device cuda (or auto)")
        if local_rank >= torch.cuda.device_count():
            raise ValueError(f"torchrun started more processes on this machine than it has GPUs "
                             f"({torch.cuda.device_count()}): pass --nproc-per-node {torch.cuda.device_count()} or fewer")
        dev = torch.device("cuda", local_rank)
    return join(int(os.environ["RANK"]), size, "env://", dev)


def leave(world: World) -> None:
    """Leave the process group (nothing to do alone)."""
    if world.size > 1 and dist.is_initialized():
        dist.destroy_process_group()


def streams_per_rank(streams: int, size: int) -> int:
    """Each rank's share of a run's `streams` parallel streams when `size` processes continue it."""
    if streams % size:
        divisors = [str(d) for d in range(1, streams + 1) if streams % d == 0]
        raise ValueError(f"the run trains {streams} parallel streams, which {size} processes cannot share evenly: "
                         f"continue it with {', '.join(divisors)} process(es)")
    return streams // size
