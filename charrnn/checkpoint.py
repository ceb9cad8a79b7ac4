"""Checkpoint IO in the Hugging Face layout: a directory with model.safetensors, config.json, README.md.

config.json holds everything needed to rebuild the model (architecture, sizes, vocabulary) and to
judge it (training settings, corpus checksum, history, final losses). Writes are atomic: a new
checkpoint is written beside the old one and swapped in by renames, so a kill at any moment leaves
the previous checkpoint loadable. No pickle: weights are safetensors; the optional resume state
(training_state.pt, never shipped) holds only tensors and plain containers and loads with weights_only.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

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


def save(model: CharRNN, path: str | os.PathLike, meta: dict, training_state: dict | None = None,
         dtype: torch.dtype = torch.float32) -> Path:
    """Write `model` with its metadata to directory `path`, atomically replacing what is there.

    meta: the JSON-able record (training settings, history, final losses); the model's own config is
    added here. dtype: storage type of the weights (float16 halves the size; losses of the stored
    weights are the caller's to record).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp, old = path.parent / f".{path.name}.tmp-{os.getpid()}", path.parent / f".{path.name}.old"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    tensors = {k: v.detach().to("cpu", dtype).contiguous() for k, v in model.state_dict().items()}
    save_file(tensors, tmp / WEIGHTS, metadata={"format": "pt"})
    config = {"charrnn_format": FORMAT_VERSION, "model": model.config_dict(), "dtype": str(dtype).removeprefix("torch."),
              "num_params": model.num_params(), **meta}
    _write(tmp / CONFIG, json.dumps(config, indent=1, ensure_ascii=False).encode())
    from .card import model_card  # the card reads the config; imported here to keep the modules one-way

    _write(tmp / CARD, model_card(config, path.name).encode())
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


def record_of(config: dict) -> dict:
    """The part of a config.json that `save` takes as `meta`: all but what save adds from the model itself."""
    return {k: v for k, v in config.items() if k not in ("charrnn_format", "model", "dtype", "num_params")}


def recorded_nats(config: dict, split: str = "test") -> float | None:
    """The final loss (nats/char) a config.json records for `split`; None if the run did not finish or held
    no such split out."""
    return ((config.get("final") or {}).get(split) or {}).get("nats")


def check_recordable(path: str | os.PathLike, config: dict) -> None:
    """Raise ValueError unless a test-time figure (dynamic, cache) can be recorded beside `path`'s losses."""
    if not Path(path).is_dir():
        raise ValueError(f"--record writes into a local checkpoint directory; {path} is none "
                         "(download it first, or leave --record out)")
    if not config.get("final"):
        raise ValueError(f"{path} has no final losses (training did not finish): nothing to record "
                         "beside; finish or resume the run first")


def record_final(model: CharRNN, path: str | os.PathLike, key: str, record: dict) -> None:
    """Save `model` again with `record` as its config.json's final[key] (its card shows it), keeping the rest."""
    meta = model.meta
    kept = record_of(meta)
    kept["final"] = {**kept["final"], key: record}
    state = load_training_state(path) if (Path(path) / STATE).exists() else None
    save(model, path, kept, training_state=state, dtype=getattr(torch, meta.get("dtype", "float32")))


def _checkpoint_dir(path: Path) -> Path:
    if (path / CONFIG).exists():
        return path
    old = path.parent / f".{path.name}.old"
    if (old / CONFIG).exists():  # a save was killed between its two renames
        return old
    return path


def read_config(path: str | os.PathLike) -> dict:
    path = _checkpoint_dir(Path(path))
    try:
        config = json.loads((path / CONFIG).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{path} is not a charrnn checkpoint: it has no {CONFIG}") from None
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path / CONFIG} is not valid JSON ({e})") from None
    if not isinstance(config, dict) or "charrnn_format" not in config or "model" not in config:
        raise CheckpointError(f"{path} is not a charrnn checkpoint (its {CONFIG} has no charrnn model section)")
    if config["charrnn_format"] > FORMAT_VERSION:
        raise CheckpointError(f"{path} was written by a newer charrnn (format {config['charrnn_format']}); upgrade")
    return config


def load_dir(path: str | os.PathLike, device: str | torch.device = "cpu") -> CharRNN:
    """Load a checkpoint directory. Every weight must match the architecture: none missing, none extra."""
    path = _checkpoint_dir(Path(path))
    config = read_config(path)
    try:
        model = CharRNN(ModelConfig(**config["model"]))
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path / CONFIG} describes no valid model: {e}") from None
    try:
        weights = load_file(path / WEIGHTS)
    except FileNotFoundError:
        raise CheckpointError(f"{path} has no {WEIGHTS}") from None
    except Exception as e:  # safetensors raises its own error type for corrupt files
        raise CheckpointError(f"{path / WEIGHTS} is not a readable safetensors file: {e}") from None
    expected = model.state_dict()
    missing, unexpected = sorted(expected.keys() - weights.keys()), sorted(weights.keys() - expected.keys())
    if missing or unexpected:
        raise CheckpointError(f"{path / WEIGHTS} does not match its config: missing {missing}, unexpected {unexpected}")
    bad = [k for k, v in weights.items() if v.shape != expected[k].shape]
    if bad:
        raise CheckpointError(f"{path / WEIGHTS} has weights of the wrong shape for its config: {bad}")
    model.load_state_dict({k: v.float() for k, v in weights.items()}, strict=True)
    model.meta = config  # the record travels with the model: history, losses, command
    return model.to(device).eval()


def load(name: str | os.PathLike, device: str | torch.device = "cpu", revision: str | None = None) -> CharRNN:
    """Load a model from a local checkpoint directory or, if no such directory exists, a Hub id USER/NAME."""
    local = _checkpoint_dir(Path(name))
    if local.exists():
        return load_dir(local, device)
    from .hub import download_checkpoint, looks_like_repo_id  # the Hub only when asked for

    if looks_like_repo_id(str(name)):
        return load_dir(download_checkpoint(str(name), revision=revision), device)
    raise CheckpointError(f"no checkpoint directory {name} (and it is not a Hub id of the form USER/NAME)")


def load_training_state(path: str | os.PathLike) -> dict:
    try:
        return torch.load(Path(path) / STATE, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path} has no {STATE} to resume from (shipped checkpoints carry none)") from None
