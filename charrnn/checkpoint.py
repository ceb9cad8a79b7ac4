"""Checkpoint IO on the local disk, in the Hugging Face layout: a directory with model.safetensors,
config.json and README.md (the model card). Loading a name that may be a Hub id is charrnn.hub.load.

config.json, the checkpoint's *record*, holds everything needed to rebuild the model (architecture,
sizes, vocabulary) and to judge it (training settings, corpus checksum, history, final losses). Writes
are atomic: a new checkpoint is written beside the old one and swapped in by renames, so a kill at any
moment leaves the previous checkpoint loadable (written here, as no library swaps whole directories).
The weights may be stored as float16, which halves a checkpoint's size. No pickle: weights are
safetensors; the optional resume state (training_state.pt, never shipped) holds only tensors and plain
containers and loads with weights_only.

Loading trusts nothing it reads: config.json is checked to be a charrnn record, its model sizes against
the weights' safetensors header before any tensor is allocated, the weights against the sha256 the
record holds, and their values to be finite. Whatever is wrong ends in one CheckpointError naming the file.
"""
from __future__ import annotations

import glob
import json
import os
import shutil
import typing
from contextlib import contextmanager
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_model, save_file

from .card import model_card
from .data import sha256_of
from .kinds import MIXTURE, kind_of
from .model import CharRNN, ModelConfig
from .record import caller_fields, problem

try:
    import fcntl
except ImportError:  # Windows: saves are not locked, and stale temporary directories stay
    fcntl = None

FORMAT_VERSION = 1
WEIGHTS, CONFIG, CARD, STATE = "model.safetensors", "config.json", "README.md", "training_state.pt"
FLOAT_DTYPES = ("F16", "BF16", "F32", "F64")  # safetensors' names of the types weights may be stored as
MAX_CONFIG_BYTES = 64 * 2**20  # a record is ~15 KB; its history would need ~100,000 evaluations to reach this


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded; the message says why and what to do."""


def _write(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _non_finite(tensors: dict[str, torch.Tensor]) -> list[str]:
    return [k for k, t in tensors.items() if t.is_floating_point() and not torch.isfinite(t).all()]


def save(model: CharRNN, path: str | os.PathLike, record: dict, training_state: dict | None = None,
         dtype: torch.dtype = torch.float32) -> Path:
    """Write `model` with its record to directory `path`, atomically replacing what is there.

    record: the JSON-able record (training settings, history, final losses); the model's own config and
    the sha256 of the weights file are added here. dtype: storage type of the weights (float16 halves the
    size; losses of the stored weights are the caller's to record). training_state is saved with that
    sha256, which ties it to these weights (see load_training_state).
    """
    path = Path(path)
    holds_weights = getattr(model, "holds_weights", True)  # a mixture (charrnn.mixture) names its members' files
    tensors = {k: v.detach().to("cpu", dtype).contiguous() for k, v in model.state_dict().items()} if holds_weights else {}
    bad = _non_finite(tensors)
    if bad:  # a checkpoint that load() refuses must never replace a good one
        raise ValueError(f"not saving {path}: weights {', '.join(bad[:3])} hold NaN or infinite values (as "
                         f"{str(dtype).removeprefix('torch.')}); the checkpoint already there, if any, is kept")
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_saves(path)
    tmp, old = path.parent / f".{path.name}.tmp-{os.getpid()}", path.parent / f".{path.name}.old"
    shutil.rmtree(tmp, ignore_errors=True)  # this process's own, from a save interrupted earlier
    tmp.mkdir()
    with _locked(tmp):
        sha = None
        if holds_weights:
            save_file(tensors, tmp / WEIGHTS, metadata={"format": "pt"})
            sha = sha256_of(tmp / WEIGHTS)
        full = {"charrnn_format": FORMAT_VERSION, "model": model.config_dict(),
                "dtype": str(dtype).removeprefix("torch."), "num_params": model.num_params(),
                **({"weights_sha256": sha} if sha else {}), **caller_fields(record)}
        _write(tmp / CONFIG, json.dumps(full, indent=1, ensure_ascii=False).encode())
        _write(tmp / CARD, model_card(full, path.name).encode())
        if training_state is not None:
            torch.save({**training_state, "weights_sha256": sha}, tmp / STATE)
        # Swap: old checkpoint aside, new one in, old one gone. Between the two renames only `old`
        # exists, and load() and load_training_state() fall back to it.
        if path.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    return path


@contextmanager
def _locked(directory: Path):
    """Hold an exclusive lock on `directory` while a save writes it: the mark of a live save. The kernel
    drops the lock when the process dies, even by kill -9. POSIX only; elsewhere nothing is locked."""
    if fcntl is None:
        yield
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, run by another user
        return True
    return True


def _remove_stale_saves(path: Path) -> None:
    """Remove the .NAME.tmp-PID directories that saves of `path` killed while writing left beside it.

    One is stale when its process is gone and no one holds its lock: a live save, of this process or any
    other (even one whose pid means nothing here, in another container), is never touched. POSIX only.
    """
    if fcntl is None:
        return
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.tmp-*"):
        pid = tmp.name.rpartition("-")[2]
        if not pid.isdigit() or int(pid) == os.getpid() or _alive(int(pid)):
            continue
        try:
            fd = os.open(tmp, os.O_RDONLY)
        except OSError:  # removed meanwhile
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            shutil.rmtree(tmp, ignore_errors=True)
        except BlockingIOError:  # a live save holds it
            pass
        finally:
            os.close(fd)


def resave(model: CharRNN, path: str | os.PathLike, record: dict) -> None:
    """Save `model` again into `path` with `record`, keeping its storage type and its resume state."""
    state = load_training_state(path) if (checkpoint_dir(Path(path)) / STATE).exists() else None
    save(model, path, record, training_state=state, dtype=getattr(torch, model.record.get("dtype", "float32")))


def checkpoint_dir(path: Path) -> Path:
    """`path`, or the copy a save killed between its two renames left aside, if only that holds a checkpoint."""
    old = path.parent / f".{path.name}.old"
    try:
        if (path / CONFIG).exists():
            return path
        if (old / CONFIG).exists():  # a save was killed between its two renames
            return old
    except OSError as e:  # a name too long for the file system, a directory one may not read
        shown = str(path) if len(str(path)) <= 100 else str(path)[:100] + "..."
        raise CheckpointError(f"cannot look for a checkpoint at {shown}: {e.strerror}") from None
    return path


def read_record(path: str | os.PathLike) -> dict:
    """The config.json of checkpoint directory `path`, checked to be a charrnn record."""
    path = checkpoint_dir(Path(path))
    config = path / CONFIG
    try:
        with open(config, "rb") as f:
            data = f.read(MAX_CONFIG_BYTES + 1)  # never all of a huge file
        if len(data) > MAX_CONFIG_BYTES:
            raise CheckpointError(f"{config} is larger than {MAX_CONFIG_BYTES // 2**20} MiB: no charrnn record is")
        record = json.loads(data.decode("utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{path} is not a charrnn checkpoint: it has no {CONFIG}") from None
    except IsADirectoryError:
        raise CheckpointError(f"{config} is a directory, not a JSON file: {path} is no charrnn checkpoint") from None
    except UnicodeDecodeError as e:
        raise CheckpointError(f"{config} is not UTF-8 text (byte {e.start}), so it is no JSON file") from None
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{config} is not valid JSON ({e})") from None
    except RecursionError:
        raise CheckpointError(f"{config} nests its JSON too deeply to be a charrnn record") from None
    except OSError as e:
        raise CheckpointError(f"cannot read {config}: {e.strerror}") from None
    if not isinstance(record, dict) or "charrnn_format" not in record or "model" not in record:
        raise CheckpointError(f"{path} is not a charrnn checkpoint (its {CONFIG} has no charrnn model section)")
    version = record["charrnn_format"]
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise CheckpointError(f"{config} has charrnn_format {version!r:.40}, which is no format version: charrnn "
                              f"writes the integer {FORMAT_VERSION}")
    if version > FORMAT_VERSION:
        raise CheckpointError(f"{path} was written by a newer charrnn (format {version}); upgrade")
    if wrong := problem(record):
        raise CheckpointError(f"{config} {wrong}")
    try:
        kind_of(record)
    except ValueError as e:
        raise CheckpointError(f"{config} cannot be read: {e}") from None
    return record


def model_config(record: dict, path: str | os.PathLike) -> ModelConfig:
    """The ModelConfig of the record of checkpoint `path`, each field of the type the dataclass declares."""
    config = checkpoint_dir(Path(path)) / CONFIG
    model = record["model"]
    try:
        if not isinstance(model, dict):
            raise TypeError(f"its model section is a {type(model).__name__}, not a mapping")
        for name, kind in typing.get_type_hints(ModelConfig).items():
            if name not in model:
                continue
            v, choices = model[name], typing.get_args(kind)
            if typing.get_origin(kind) is typing.Literal:
                if not isinstance(v, str) or v not in choices:
                    raise TypeError(f"{name} must be one of {', '.join(map(repr, choices))}, not {v!r:.40}")
            elif isinstance(v, bool) or not isinstance(v, (int, float) if kind is float else kind):
                raise TypeError(f"{name} must be of type {kind.__name__}, not {v!r:.40}")
        return ModelConfig(**{k: v for k, v in model.items() if k != "kind"})
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{config} describes no valid model: {e}") from None


def _header(weights: Path) -> dict[str, tuple[str, list[int]]]:
    """Each tensor of a safetensors file: name -> (type, shape), from its header alone (nothing allocated)."""
    try:
        with safe_open(weights, framework="pt") as f:
            return {k: (f.get_slice(k).get_dtype(), f.get_slice(k).get_shape()) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{weights} is not a readable safetensors file: {' '.join(str(e).split())}") from None


def _check_sizes(config: ModelConfig, header: dict, weights: Path) -> None:
    """The model `config` describes against the weights' header, before the model is built.

    First bounds that need no knowledge of the cells: each layer has a weight in the file, and each size is
    a dimension of one, so a config far bigger than its weights (num_layers 100000) is refused before any
    module exists. Then the exact names and shapes, of the model built on the meta device (no memory).
    """
    largest = max((d for _, shape in header.values() for d in shape), default=0)
    too_big = [f"{k} {getattr(config, k):,} (no tensor has a dimension above {largest:,})"
               for k in ("hidden_size", "embed_size") if getattr(config, k) > largest]
    if config.num_layers > len(header):
        too_big.append(f"num_layers {config.num_layers:,} (the file holds {len(header)} tensors)")
    if too_big:
        raise CheckpointError(f"{weights.parent / CONFIG} describes a model bigger than its weights in {weights}: "
                              + "; ".join(too_big))
    with torch.device("meta"):
        expected = {k: list(v.shape) for k, v in CharRNN(config).state_dict().items()}
    problems = []
    if missing := sorted(expected.keys() - header.keys()):
        problems.append(f"missing weights {', '.join(missing)}")
    if unexpected := sorted(header.keys() - expected.keys()):
        problems.append(f"unexpected weights {', '.join(unexpected)}")
    problems += [f"{k} has shape {header[k][1]} where the config implies {expected[k]}"
                 for k in sorted(expected.keys() & header.keys()) if header[k][1] != expected[k]]
    problems += [f"{k} is stored as {t}, not as floating point" for k, (t, _) in sorted(header.items())
                 if t not in FLOAT_DTYPES]
    if problems:
        raise CheckpointError(f"{weights} does not match its {CONFIG}: " + "; ".join(problems))


def load_dir(path: str | os.PathLike, device: str | torch.device = "cpu") -> CharRNN:
    """Load a checkpoint directory. Every weight must match the architecture: none missing, none extra,
    and the weights file must be the one the record's sha256 names, with finite values."""
    path = checkpoint_dir(Path(path))
    record = read_record(path)
    if kind_of(record) == MIXTURE:
        raise CheckpointError(f"{path} is a mixture of checkpoints, not one model: load it with charrnn.load")
    weights = path / WEIGHTS
    if not weights.is_file():
        raise CheckpointError(f"{path} has no {WEIGHTS}" + (" (it is a directory)" if weights.is_dir() else ""))
    sha = record.get("weights_sha256")  # checkpoints saved before it was recorded have none
    if sha is not None and (actual := sha256_of(weights)) != sha:
        raise CheckpointError(f"{weights} is not the file its {CONFIG} was saved with (sha256 {actual}, recorded "
                              f"{sha}): it was damaged or changed since; copy or download the checkpoint again")
    header = _header(weights)
    config = model_config(record, path)
    _check_sizes(config, header, weights)
    model = CharRNN(config)
    try:
        load_model(model, weights, strict=True)  # float16 weights are cast into the float32 model
    except (RuntimeError, SafetensorError, OSError) as e:
        raise CheckpointError(f"{weights} is not a readable safetensors file: {' '.join(str(e).split())}") from None
    if bad := _non_finite(model.state_dict()):
        raise CheckpointError(f"{weights} holds NaN or infinite values (in {', '.join(bad[:3])}): the model would "
                              "write garbage; train it again or load an earlier copy")
    model.record = record  # the record travels with the model: history, losses, command
    return model.to(device).eval()


def load_training_state(path: str | os.PathLike) -> dict:
    """The resume state of checkpoint `path` (or of the copy a save killed between its renames left aside),
    refused unless it was saved with the weights beside it: one copied from another run, or from another
    save of this one, would resume a run that never was."""
    path = checkpoint_dir(Path(path))
    file = path / STATE
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path} has no {STATE} to resume from (shipped checkpoints carry none)") from None
    except Exception as e:  # torch.load raises a dozen types for a damaged or foreign file
        raise CheckpointError(f"{file} cannot be read ({type(e).__name__}: {' '.join(str(e).split())[:300]}): it is "
                              "damaged (truncated by a full disk or a copy cut short?) or no charrnn resume state. "
                              "The weights beside it still load; to train again, start with --overwrite") from None
    recorded = read_record(path).get("weights_sha256")
    if not isinstance(state, dict) or state.get("weights_sha256") != recorded:
        raise CheckpointError(f"{file} was not saved with the weights beside it (copied from another run, or from "
                              "another save of this one?): resuming from it would mix two runs. Copy a checkpoint "
                              "directory whole, or start again with --overwrite")
    return state
