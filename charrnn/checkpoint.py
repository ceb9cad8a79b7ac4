"""Checkpoint IO on the local disk, in the Hugging Face layout: a directory with model.safetensors,
config.json and README.md (the model card). Loading a name that may be a Hub id is charrnn.hub.load.

config.json, the checkpoint's *record*, holds everything needed to rebuild the model (architecture,
sizes, vocabulary) and to judge it (training settings, corpus checksum, history, final losses). Writes
are atomic: a new checkpoint is written beside the old one and swapped in by renames, so a kill at any
moment leaves the previous checkpoint loadable (written here, as no library swaps whole directories).
The weights may be stored as float16, which halves a checkpoint's size. No pickle: weights are
safetensors; the optional resume state (training_state.pt, never shipped) holds only tensors and plain
containers and loads with weights_only.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_model, save_file

from .card import model_card
from .model import CharRNN, ModelConfig

FORMAT_VERSION = 1
WEIGHTS, CONFIG, CARD, STATE = "model.safetensors", "config.json", "README.md", "training_state.pt"


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded; the message says why and what to do."""


def _write(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def save(model: CharRNN, path: str | os.PathLike, record: dict, training_state: dict | None = None,
         dtype: torch.dtype = torch.float32) -> Path:
    """Write `model` with its record to directory `path`, atomically replacing what is there.

    record: the JSON-able record (training settings, history, final losses); the model's own config is
    added here. dtype: storage type of the weights (float16 halves the size; losses of the stored
    weights are the caller's to record).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp, old = path.parent / f".{path.name}.tmp-{os.getpid()}", path.parent / f".{path.name}.old"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    if getattr(model, "holds_weights", True):  # a mixture (charrnn.mixture) refers to its members' files instead
        tensors = {k: v.detach().to("cpu", dtype).contiguous() for k, v in model.state_dict().items()}
        save_file(tensors, tmp / WEIGHTS, metadata={"format": "pt"})
    full = {"charrnn_format": FORMAT_VERSION, "model": model.config_dict(), "dtype": str(dtype).removeprefix("torch."),
            "num_params": model.num_params(), **record}
    _write(tmp / CONFIG, json.dumps(full, indent=1, ensure_ascii=False).encode())
    _write(tmp / CARD, model_card(full, path.name).encode())
    if training_state is not None:
        torch.save(training_state, tmp / STATE)
    # Swap: old checkpoint aside, new one in, old one gone. Between the two renames only `old`
    # exists, and load() falls back to it.
    if path.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(path, old)
    os.replace(tmp, path)
    shutil.rmtree(old, ignore_errors=True)
    return path


def resave(model: CharRNN, path: str | os.PathLike, record: dict) -> None:
    """Save `model` again into `path` with `record`, keeping its storage type and its resume state."""
    state = load_training_state(path) if (Path(path) / STATE).exists() else None
    save(model, path, record, training_state=state, dtype=getattr(torch, model.record.get("dtype", "float32")))


def checkpoint_dir(path: Path) -> Path:
    """`path`, or the copy a save killed between its two renames left aside, if only that holds a checkpoint."""
    if (path / CONFIG).exists():
        return path
    old = path.parent / f".{path.name}.old"
    if (old / CONFIG).exists():  # a save was killed between its two renames
        return old
    return path


def read_record(path: str | os.PathLike) -> dict:
    """The config.json of checkpoint directory `path`, checked to be a charrnn record."""
    path = checkpoint_dir(Path(path))
    try:
        record = json.loads((path / CONFIG).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{path} is not a charrnn checkpoint: it has no {CONFIG}") from None
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path / CONFIG} is not valid JSON ({e})") from None
    if not isinstance(record, dict) or "charrnn_format" not in record or "model" not in record:
        raise CheckpointError(f"{path} is not a charrnn checkpoint (its {CONFIG} has no charrnn model section)")
    if record["charrnn_format"] > FORMAT_VERSION:
        raise CheckpointError(f"{path} was written by a newer charrnn (format {record['charrnn_format']}); upgrade")
    return record


def load_dir(path: str | os.PathLike, device: str | torch.device = "cpu") -> CharRNN:
    """Load a checkpoint directory. Every weight must match the architecture: none missing, none extra."""
    path = checkpoint_dir(Path(path))
    record = read_record(path)
    if "members" in record["model"]:
        raise CheckpointError(f"{path} is a mixture of checkpoints, not one model: load it with charrnn.load")
    try:
        model = CharRNN(ModelConfig(**record["model"]))
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path / CONFIG} describes no valid model: {e}") from None
    if not (path / WEIGHTS).is_file():
        raise CheckpointError(f"{path} has no {WEIGHTS}")
    try:
        load_model(model, path / WEIGHTS, strict=True)  # float16 weights are cast into the float32 model
    except RuntimeError as e:  # missing, unexpected or misshapen weights
        raise CheckpointError(f"{path / WEIGHTS} does not match its {CONFIG}: {' '.join(str(e).split())}") from None
    except Exception as e:  # safetensors raises its own error type for corrupt files
        raise CheckpointError(f"{path / WEIGHTS} is not a readable safetensors file: {e}") from None
    model.record = record  # the record travels with the model: history, losses, command
    return model.to(device).eval()


def load_training_state(path: str | os.PathLike) -> dict:
    try:
        return torch.load(Path(path) / STATE, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path} has no {STATE} to resume from (shipped checkpoints carry none)") from None
