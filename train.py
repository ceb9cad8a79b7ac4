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
from dataclasses import dataclass, fields, replace
from pathlib import Path

import torch

from charrnn import checkpoint, distributed
from charrnn.cells import CELLS
from charrnn.data import DEFAULT_DATA, DataError, Vocab, check_same_corpus, read_text, resolve_corpus, sha256_of, split
from charrnn.flags import add_flags, given
from charrnn.model import CharRNN, ModelConfig, with_vocab
from charrnn.presets import PRESETS
from charrnn.record import recorded_nats
from charrnn.training import Run, TrainConfig, TrainingDiverged, train


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Train a character-level RNN language model on a text corpus.")
    p.add_argument("--preset", choices=sorted(PRESETS), default=None,
                   help=f"recipe to start from (default: {DEFAULT_PRESET}): "
                        + "; ".join(f"{k}: {v['about']}" for k, v in PRESETS.items()))
    p.add_argument("--data", default=None, help="corpus: a UTF-8 text file or an http(s) URL (default: with "
                                                f"--resume, the run's own; else {DEFAULT_DATA}, downloaded if missing)")
    p.add_argument("--out", default=None, help="checkpoint directory (default: checkpoints/PRESET)")
    p.add_argument("--resume", action="store_true", help="continue the run saved in --out, history included, on "
                                                         "the corpus it was trained on")
    p.add_argument("--init-from", metavar="CKPT", default=None,
                   help="start a new run (its own optimizer, schedule and history) from this trained model, a "
                        "checkpoint directory or Hub id USER/NAME: its architecture and weights, and its training "
                        f"settings but {', '.join(CORPUS_BOUND)} unless flags give others. Characters of --data "
                        "that its vocabulary lacks are added to it (new input and output rows; the record lists "
                        "them). Needs --out")
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
DEFAULT_PRESET = "paper"
# Settings that belong to the corpus a model was trained on, which --init-from does not take from it.
CORPUS_BOUND = ("max_chars", "val_chars", "eval_every")
# The model settings that own no weights: the only ones --init-from lets a flag change.
NOT_WEIGHTS = ("dropout", "input_dropout")


def check_args(args) -> None:
    """Refuse the combinations of flags that cannot mean one run."""
    if args.init_from is None:
        return
    if args.resume:
        raise ValueError("--resume continues the run saved in --out; --init-from starts a new run from a trained "
                         "model: pass one of them")
    if args.out is None:
        raise ValueError("--init-from needs --out, the directory of the new run's checkpoint")
    if args.preset is not None:
        raise ValueError("--init-from takes the model and its training settings from the checkpoint: leave --preset "
                         "out, and give the training settings to change as flags")
    if shaped := [k for k in given(args, ModelConfig) if k not in NOT_WEIGHTS]:
        raise ValueError(f"--init-from keeps the checkpoint's architecture: leave out --{shaped[0].replace('_', '-')} "
                         f"(of the model settings, only {' and '.join('--' + k.replace('_', '-') for k in NOT_WEIGHTS)} "
                         "may change)")
    if Path(args.out).resolve() == Path(args.init_from).resolve():
        raise ValueError(f"--out {args.out} is the checkpoint --init-from starts from, which the new run would "
                         "replace: choose another --out")


@dataclass
class Inputs:
    """What a run reads from disk (on rank 0 alone under DDP)."""

    data: str  # the corpus as named: --data, or with --resume the run's own
    path: Path  # where it is on disk
    text: str
    sha256: str
    record: dict | None = None  # with --resume: the run's record and resume state
    resume: dict | None = None
    origin: CharRNN | None = None  # with --init-from: the model the run starts from


def read_inputs(args, out: Path) -> Inputs:
    if args.resume:
        record = checkpoint.read_record(out)
        data = args.data or record.get("training", {}).get("corpus") or DEFAULT_DATA
    else:
        check_out(out, args.overwrite)  # before any download or training time is spent
        record, data = None, args.data or DEFAULT_DATA
    path = resolve_corpus(data)
    inputs = Inputs(data, path, read_text(path), sha256_of(path), record)
    if args.resume:  # a run continues on its own text; its losses and splits belong to it
        check_same_corpus(path, inputs.sha256, record.get("training", {}), "this run was", "resume on that file, or "
                          f"leave --data out; to train this model further on other text, start a new run from it: "
                          f"python train.py --init-from {out} --data {data} --out NEW_DIR")
        inputs.resume = checkpoint.load_training_state(out)  # refused unless saved with the weights beside it
    if args.init_from:
        from charrnn.hub import load

        inputs.origin = load(args.init_from)
        if not isinstance(inputs.origin, CharRNN):
            raise ValueError(f"{args.init_from} is a mixture of checkpoints: start from one of its members")
    return inputs


def saved_settings(training: dict, world: distributed.World) -> dict:
    """The TrainConfig settings a record's training section holds, its batch size shared among this run's
    processes (the recorded run may have had another number)."""
    saved = {f.name: training[f.name] for f in fields(TrainConfig) if f.name in training}
    if "batch_size" in saved:  # the streams in all, shared among this run's processes
        saved["batch_size"] = distributed.streams_per_rank(saved["batch_size"] * training.get("world_size", 1),
                                                           world.size)
    return saved


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
    out = Path(args.out or f"checkpoints/{args.preset or DEFAULT_PRESET}")
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
    check_args(args)
    inputs = world.from_main(lambda: read_inputs(args, out))
    path, text, record = inputs.path, inputs.text, inputs.record
    train_text, test_text = split(text)
    preset = PRESETS[args.preset or DEFAULT_PRESET]
    info = {"corpus": inputs.data, "corpus_sha256": inputs.sha256, "device": describe(world)}
    if args.resume:
        model_cfg = checkpoint.model_config(record, out)
        training = record.get("training") or {}
        missing = [f.name for f in fields(TrainConfig) if f.name not in training and f.name not in ADDED_LATER]
        if missing:
            raise checkpoint.CheckpointError(f"{out}'s config.json has no training setting {missing[0]!r} to resume "
                                             "with")
        # Settings a record made before they existed lacks keep their defaults; --epochs sets the new total.
        epochs = given(args, TrainConfig).get("epochs")
        train_cfg = TrainConfig(**{**saved_settings(training, world), **({"epochs": epochs} if epochs else {})})
        info.update({k: training[k] for k in ("corpus", "init_from") if k in training})  # the run's own
    elif args.init_from:
        origin = inputs.origin
        vocab = "".join(sorted(set(origin.config.vocab) | set(text)))
        model_cfg = replace(origin.config, vocab=vocab, **given(args, ModelConfig))
        saved = saved_settings(origin.record.get("training") or {}, world)
        train_cfg = TrainConfig(**{**{k: v for k, v in saved.items() if k not in CORPUS_BOUND},
                                   **given(args, TrainConfig)})
        origin_training = origin.record.get("training") or {}
        info["init_from"] = {"checkpoint": str(args.init_from), "weights_sha256": origin.record.get("weights_sha256"),
                             "corpus": origin_training.get("corpus"), "corpus_sha256": origin_training.get("corpus_sha256"),
                             "added_chars": "".join(c for c in vocab if c not in origin.config.vocab)}
    else:
        model_cfg = ModelConfig(vocab=Vocab.from_text(text).chars, **{**preset["model"], **given(args, ModelConfig)})
        train_cfg = TrainConfig(**{**preset["train"], **given(args, TrainConfig)})
    torch.manual_seed(train_cfg.seed)  # the initial weights too: the same --seed, the same run
    # From --init-from: its weights, the added characters' input rows initialised as the architecture does.
    model = (with_vocab(inputs.origin, model_cfg) if args.init_from else CharRNN(model_cfg)).to(world.device)
    command = command_line(sys.argv[1:] if argv is None else argv, world)
    info["command"] = command
    if record is not None:  # a resumed run keeps the command that started it and lists each resume
        info["command"] = record["training"]["command"]
        info["resumed_with"] = record["training"].get("resumed_with", []) + [command]
    if world.main:
        print(f"corpus {path}: {len(text):,} characters, vocabulary {model_cfg.vocab_size}, "
              f"train {len(train_text):,}, test {len(test_text):,}")
        if args.init_from:
            added = info["init_from"]["added_chars"]
            print(f"starting from {args.init_from}: " + (f"{len(added)} character(s) added to its vocabulary, "
                                                         f"{added!r}" if added else "no character added"))
        print(f"model {model_cfg.cell}: {model.num_params():,} parameters; writing {out}"
              + (f" ({world.size} processes, {world.backend})" if world.size > 1 else ""))
    return train(model, Run(train_text, test_text, train_cfg, out, info, world=world), inputs.resume, record)


if __name__ == "__main__":
    main()
