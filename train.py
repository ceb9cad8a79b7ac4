"""Train a charrnn model and write its checkpoint. `python train.py --help` lists every flag.

    python train.py --preset paper --data ../shared/data/moliere.txt
    torchrun --standalone --nproc-per-node 2 train.py --preset paper --batch-size 16   # DDP, 2 processes
"""
from __future__ import annotations

import argparse
import os
import shlex
import socket
import sys
from dataclasses import fields
from pathlib import Path

import torch

from charrnn import checkpoint, distributed
from charrnn.cells import CELLS
from charrnn.data import DEFAULT_DATA, DataError, Vocab, read_text, resolve_corpus, sha256_of, split
from charrnn.flags import add_flags, given
from charrnn.model import CharRNN, ModelConfig
from charrnn.presets import PRESETS
from charrnn.record import recorded_nats
from charrnn.training import Run, TrainConfig, TrainingDiverged, train


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Train a character-level RNN language model on a text corpus.")
    p.add_argument("--preset", choices=sorted(PRESETS), default="paper",
                   help="recipe to start from (default: paper): "
                        + "; ".join(f"{k}: {v['about']}" for k, v in PRESETS.items()))
    p.add_argument("--data", default=DEFAULT_DATA, help="corpus: a UTF-8 text file or an http(s) URL (default: "
                                                        f"{DEFAULT_DATA}, downloaded if missing)")
    p.add_argument("--out", default=None, help="checkpoint directory (default: checkpoints/PRESET)")
    p.add_argument("--resume", action="store_true", help="continue the run saved in --out, history included")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the checkpoint already in --out (without it, train.py refuses to)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N, or auto (default: cuda when available); "
                                                    "under torchrun each process takes the GPU of its local rank")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for PyTorch (default: PyTorch's)")
    p.add_argument("--push-to-hub", metavar="USER/NAME", default=None,
                   help="after training, upload the checkpoint to this Hugging Face model repo")
    add_flags(p.add_argument_group("model (default: the preset's, else the one shown)"), ModelConfig,
              skip=("vocab",), choices={"cell": list(CELLS)})
    add_flags(p.add_argument_group("training (default: the preset's, else the one shown)"), TrainConfig)
    return p


def check_out(out: Path, overwrite: bool) -> None:
    """Refuse an --out whose contents a new run would destroy.

    Each save replaces the whole directory, so a fresh run into a checkpoint (a shipped one, or a
    finished run typed again) would delete it at its first evaluation, and a run into any other
    non-empty directory would delete that directory's files.
    """
    if out.is_file():
        raise ValueError(f"--out {out} is a file: give a directory for the checkpoint")
    try:
        record = checkpoint.read_record(out)  # also finds one left aside by a save killed mid-swap
    except checkpoint.CheckpointError:
        if out.is_dir() and any(out.iterdir()):
            raise ValueError(f"--out {out} holds files that are not a charrnn checkpoint, and training would "
                             "replace them: choose a new or empty directory") from None
        return
    if not overwrite:
        test = recorded_nats(record)
        what = f"a trained model (test {test:.4f} nats/char)" if test is not None else "an unfinished run"
        raise ValueError(f"{out} already holds {what}: pass --resume to continue it, --overwrite to replace "
                         "it, or choose another --out")


ADDED_LATER = ("dtype", "time_budget")  # TrainConfig settings that records written before they existed lack


def read_inputs(args, out: Path) -> tuple[Path, str, str, dict | None, dict | None]:
    """What the run reads from disk (on rank 0 alone under DDP): the corpus's path, text and checksum, and
    with --resume the run's record and resume state."""
    if not args.resume:
        check_out(out, args.overwrite)  # before any download or training time is spent
    path = resolve_corpus(args.data)
    text = read_text(path)
    if not args.resume:
        return path, text, sha256_of(path), None, None
    # The resume state is refused unless it was saved with the weights beside it.
    return path, text, sha256_of(path), checkpoint.read_record(out), checkpoint.load_training_state(out)


def command_line(argv: list[str], world: distributed.World) -> str:
    """The command that started this process: python train.py ..., or torchrun's (its rendezvous options
    aside, which name machines of the moment)."""
    if world.size == 1:
        return "python train.py " + shlex.join(argv)
    nodes, per_node = os.environ.get("GROUP_WORLD_SIZE", "1"), os.environ.get("LOCAL_WORLD_SIZE", "?")
    where = "--standalone" if nodes == "1" else f"--nnodes {nodes}"
    return f"torchrun {where} --nproc-per-node {per_node} train.py " + shlex.join(argv)


def describe(world: distributed.World) -> str:
    """The device(s) of the run, for its record: e.g. "cpu (2 CPU threads)", "2 processes x cpu (1 CPU thread each)
    on 1 machine(s), gloo"."""
    dev = world.device
    what = distributed.cpu_threads() if dev.type == "cpu" else torch.cuda.get_device_name(dev)
    if world.size == 1:
        return f"{dev} ({what})"
    machines = len(set(world.gather_objects(socket.gethostname())))
    return f"{world.size} processes x {dev.type} ({what} each) on {machines} machine(s), {world.backend}"


def main(argv=None) -> None:
    args = parser().parse_args(argv)
    out = Path(args.out or f"checkpoints/{args.preset}")
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        world = distributed.from_env(args.device)  # alone, or one of the processes torchrun started
    except ValueError as e:
        sys.exit(f"error: {e}")
    try:
        record = run(args, out, world, argv)
    except (DataError, ValueError, TrainingDiverged, OSError) as e:
        sys.exit(f"error: {e}" if world.main else 1)  # every rank stops; rank 0 says why
    finally:
        distributed.leave(world)
    if "final" in record and world.main:
        f = record["final"]
        val = f" / validation {f['val']['nats']:.4f}" if "val" in f else ""
        print(f"done: train {f['train']['nats']:.4f}{val} / test {f['test']['nats']:.4f} nats/char "
              f"({f['test']['bpc']:.3f} bits/char) in {f['train_time_s']:.0f} s"
              + (f", {f['steps']:,} steps (the time budget ended it)" if f.get("stopped_by") == "time_budget" else "")
              + f" -> {out}")
        if args.push_to_hub:
            from charrnn.hub import HubError, push

            try:
                print(push(out, args.push_to_hub))
            except (HubError, ValueError) as e:
                sys.exit(f"error: the checkpoint is saved in {out}, but publishing it failed: {e}")


def run(args, out: Path, world: distributed.World, argv) -> dict:
    """Build the model and the run the command line describes, train it, and return the saved record."""
    path, text, corpus_sha256, record, resume = world.from_main(lambda: read_inputs(args, out))
    train_text, test_text = split(text)
    preset = PRESETS[args.preset]
    if args.resume:
        model_cfg = checkpoint.model_config(record, out)
        training = record.get("training") or {}
        missing = [f.name for f in fields(TrainConfig) if f.name not in training and f.name not in ADDED_LATER]
        if missing:
            raise checkpoint.CheckpointError(f"{out}'s config.json has no training setting {missing[0]!r} to resume "
                                             "with")
        # Settings a record made before they existed lacks keep their defaults.
        saved = {f.name: training[f.name] for f in fields(TrainConfig) if f.name in training}
        # The run's streams in all, shared among this run's processes (it may have had another number).
        saved["batch_size"] = distributed.streams_per_rank(
            saved["batch_size"] * record["training"].get("world_size", 1), world.size)
        train_cfg = TrainConfig(**{**saved, **({"epochs": args.epochs} if args.epochs else {})})
    else:
        model_cfg = ModelConfig(vocab=Vocab.from_text(text).chars, **{**preset["model"], **given(args, ModelConfig)})
        train_cfg = TrainConfig(**{**preset["train"], **given(args, TrainConfig)})
    torch.manual_seed(train_cfg.seed)  # the initial weights too: the same --seed, the same run
    model = CharRNN(model_cfg).to(world.device)
    command = command_line(sys.argv[1:] if argv is None else argv, world)
    info = {"command": command, "corpus": str(args.data), "corpus_sha256": corpus_sha256, "device": describe(world)}
    if record is not None:  # a resumed run keeps the command that started it and lists each resume
        info["command"] = record["training"]["command"]
        info["resumed_with"] = record["training"].get("resumed_with", []) + [command]
    if world.main:
        print(f"corpus {path}: {len(text):,} characters, vocabulary {model_cfg.vocab_size}, "
              f"train {len(train_text):,}, test {len(test_text):,}")
        print(f"model {model_cfg.cell}: {model.num_params():,} parameters; writing {out}"
              + (f" ({world.size} processes, {world.backend})" if world.size > 1 else ""))
    return train(model, Run(train_text, test_text, train_cfg, out, info, world=world), resume, record)


if __name__ == "__main__":
    main()
