"""A mixture of trained models: the weighted mean of their next-character distributions,

    p(c | text) = sum_k w_k p_k(c | text),    w_k >= 0, sum_k w_k = 1,

a model like any other: mixture(idx, state) -> (logits, state), its logits log p (so that softmax gives p
back), its state the tuple of its members' states. Models that err differently average to a better
reader than the best of them, at the cost of running them all.

A mixture is saved as a checkpoint directory that holds no weights: its config.json names each member by
its path relative to the directory and the sha256 of the member's model.safetensors, with its weight. A
member that is missing or whose weights changed since the mixture was built is refused (CheckpointError):
the mixture's weights and recorded losses were measured with those exact members. `charrnn.load` loads it
like any checkpoint, so the app serves it (python app.py --model DIR).

The weights are equal, or fitted on the members' shared validation slice (expectation-maximisation of
its likelihood), never on the test split. A weight is a finite number >= 0 (0 leaves its member out), their sum
finite and positive; a mixture has at most MAX_MEMBERS members. A config.json is checked for all of this, and for
each member's path and sha256, before any member is loaded.
"""
from __future__ import annotations

import math
import os
import re
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from .checkpoint import CONFIG, WEIGHTS, CheckpointError, checkpoint_dir, load_dir, read_record, save
from .data import hold_out, sha256_of
from .kinds import MIXTURE, kind_of
from .scoring import char_losses, evaluate

FIT_ITERATIONS = 200  # EM steps: the weights move by less than 1e-6 long before, for a handful of members
# Every member reads every character: a mixture costs what its members cost together, in time and memory (the
# shipped one has 3). Checked before any member is loaded, so that a record naming thousands is refused at once.
MAX_MEMBERS = 16


def is_mixture(record: dict) -> bool:
    """Whether a record (read_record's, which refuses an unknown kind) describes a mixture."""
    return kind_of(record) == MIXTURE


class Mixture(nn.Module):
    """The mixture of `members` (loaded models with one vocabulary) with `weights` (normalised; None: equal).

    `sources` is what config.json says of each member ({"path", "sha256"}), kept to save the mixture again.
    """

    def __init__(self, members: list, weights: list[float] | None = None, sources: list[dict] | None = None):
        super().__init__()
        if not members:
            raise ValueError("a mixture needs at least one member")
        if len({m.vocab.chars for m in members}) > 1:
            raise ValueError("the members of a mixture must share one vocabulary (models trained on one corpus)")
        if len(members) > MAX_MEMBERS:
            raise ValueError(f"a mixture has at most {MAX_MEMBERS} members; got {len(members):,}")
        weights = normalised([1.0] * len(members) if weights is None else list(weights))
        if len(weights) != len(members):
            raise ValueError(f"a mixture needs one weight per member: got {len(weights)} for {len(members)} members")
        self.members = nn.ModuleList(members)
        self.weights = weights
        # log w_k, (K,); a weight of 0 gives -inf, and that member's probabilities count for nothing
        self.register_buffer("log_weights", torch.tensor(self.weights).log(), persistent=False)
        self.sources = sources or [{} for _ in members]
        self.vocab = members[0].vocab
        self.record: dict = {}

    holds_weights = False  # checkpoint.save writes no model.safetensors: config.json refers to the members'

    @property
    def device(self) -> torch.device:
        return self.members[0].device

    def encode(self, text: str) -> list[int]:
        return self.vocab.encode(text)

    def decode(self, ids) -> str:
        return self.vocab.decode(ids)

    def forward(self, idx: torch.Tensor, state=None):
        """idx (B, T) -> log p (B, T, V), the members' new states."""
        h, state = self.features(idx, state)
        return self.readout(h), state

    def features(self, idx: torch.Tensor, state=None):
        """idx (B, T) -> the members' top-layer outputs side by side (B, T, sum of their H), their new states.
        What a continuous cache compares (testtime.cache)."""
        states = state if state is not None else (None,) * len(self.members)
        outs = [m.features(idx, s) for m, s in zip(self.members, states)]
        return torch.cat([h for h, _ in outs], -1), tuple(s for _, s in outs)

    def readout(self, h: torch.Tensor) -> torch.Tensor:
        """The members' outputs side by side (B, T, sum of H) -> log p (B, T, V) of the mixture."""
        parts = h.split([m.config.hidden_size for m in self.members], -1)
        logp = torch.stack([F.log_softmax(m.readout(x).float(), -1) for m, x in zip(self.members, parts)])  # (K, B, T, V)
        return torch.logsumexp(logp + self.log_weights.to(logp.device)[:, None, None, None], 0)

    def num_params(self) -> int:
        return sum(m.num_params() for m in self.members)

    def config_dict(self) -> dict:
        members = [{**src, "weight": w} for src, w in zip(self.sources, self.weights)]
        return {"kind": MIXTURE, "vocab": self.vocab.chars, "members": members}


def normalised(weights: list) -> list[float]:
    """`weights` divided by their sum; a ValueError unless each is a finite number >= 0 and their sum is finite and
    positive (weights of 1e308 each would sum to infinity and all normalise to 0)."""
    shown = ", ".join(f"{w!r:.24}" for w in weights[:5]) + (", ..." if len(weights) > 5 else "")
    try:  # a JSON integer may be too large for a float; a bool is no weight
        ok = all(isinstance(w, (int, float)) and not isinstance(w, bool) and math.isfinite(w) and w >= 0
                 for w in weights)
    except OverflowError:
        ok = False
    if not ok:
        raise ValueError(f"each weight must be a finite number >= 0 (0 leaves its member out); got {shown}")
    total = sum(weights)
    if not 0 < total < math.inf:
        raise ValueError(f"the weights must have a finite sum above 0; got {shown}, whose sum is {total:g}")
    return [w / total for w in weights]


def fit_weights(members: list, text: str, iterations: int = FIT_ITERATIONS) -> list[float]:
    """The mixture weights that maximise the likelihood of `text` (EM from equal weights).

    Each member reads `text` once; EM then needs only each character's probability under each member:
    w_k <- mean over characters of w_k p_k / sum_j w_j p_j, which never lowers the likelihood.
    """
    logp = -torch.stack([char_losses(m, text).double() for m in members])  # (K, N): log p_k of each character
    log_w = torch.full((len(members), 1), -math.log(len(members)), dtype=torch.float64)
    for _ in range(iterations):
        joint = logp + log_w  # (K, N)
        log_w = (joint - torch.logsumexp(joint, 0)).logsumexp(1, keepdim=True) - math.log(logp.shape[1])
    return log_w.exp().flatten().tolist()


def _named_members(record: dict, config: Path) -> list[tuple[str, str, float]]:
    """(path, sha256, weight) of each member `record` names, each checked, and the weights as a whole, before any
    member is loaded; a CheckpointError naming `config` otherwise."""
    entries = record["model"].get("members")
    if not isinstance(entries, list) or not entries:
        raise CheckpointError(f"{config} is a mixture whose members are no list of members ({entries!r:.40}): build "
                              "it again (python -m charrnn mix)")
    if len(entries) > MAX_MEMBERS:
        raise CheckpointError(f"{config} names {len(entries):,} members; a mixture has at most {MAX_MEMBERS}")
    named = []
    for i, e in enumerate(entries):
        rel, sha, weight = (e.get(k) for k in ("path", "sha256", "weight")) if isinstance(e, dict) else (None,) * 3
        if not (isinstance(rel, str) and rel and "\0" not in rel and "weight" in e and isinstance(sha, str)
                and re.fullmatch("[0-9a-f]{64}", sha)):
            raise CheckpointError(f"{config}: member {i} needs a path (text), a sha256 (64 hexadecimal digits) and a "
                                  f"weight (a number); got {e!r:.100}")
        named.append((rel, sha, weight))
    try:
        normalised([w for _, _, w in named])
    except ValueError as e:
        raise CheckpointError(f"{config} describes no valid mixture: {e}") from None
    return named


def load_mixture(path: str | os.PathLike, device: str | torch.device = "cpu") -> Mixture:
    """Load the mixture saved in directory `path`: each member from its path, checked against its sha256."""
    path = checkpoint_dir(Path(path))
    record = read_record(path)
    if not is_mixture(record):
        raise CheckpointError(f"{path} is no mixture (its {CONFIG} has no model of kind {MIXTURE!r})")
    named = _named_members(record, path / CONFIG)
    members, sources = [], []
    for rel, sha, _ in named:
        try:
            where = (path / rel).resolve()
            found = sha256_of(where / WEIGHTS) if (where / WEIGHTS).is_file() else None
        except (OSError, RuntimeError) as e:  # RuntimeError: a symlink loop (Python 3.11)
            raise CheckpointError(f"the mixture {path} refers to the checkpoint {rel!r:.100}, which cannot be read "
                                  f"({e}): put it back, or build the mixture again (python -m charrnn mix)") from None
        if found is None:
            raise CheckpointError(f"the mixture {path} refers to the checkpoint {rel} ({where}), which is missing: "
                                  "put it back, or build the mixture again (python -m charrnn mix)")
        if found != sha:
            raise CheckpointError(f"the mixture {path} was built with other weights in {rel} ({where / WEIGHTS} has "
                                  f"sha256 {found[:12]}..., the mixture expects {sha[:12]}...): its weights and losses "
                                  "no longer hold; restore that checkpoint or build the mixture again (python -m "
                                  "charrnn mix)")
        members.append(load_dir(where, device))
        sources.append({"path": rel, "sha256": sha})
    try:
        mixture = Mixture(members, [w for _, _, w in named], sources)
    except ValueError as e:
        raise CheckpointError(f"{path / CONFIG} describes no valid mixture: {e}") from None
    mixture.record = record
    return mixture.to(device).eval()


def build(member_dirs: list[str | os.PathLike], out: str | os.PathLike, train_text: str, test_text: str, fit: bool,
          info: dict, log=print) -> dict:
    """Mix the checkpoints `member_dirs`, measure the mixture and save it in `out`; returns its record.

    The members must hold out the same validation slice (the same val_chars and max_chars): the weights are
    fitted on it (fit) or equal, and its loss recorded; then train and test losses like a trained model's.
    """
    out = Path(out)
    if len(member_dirs) > MAX_MEMBERS:
        raise ValueError(f"a mixture has at most {MAX_MEMBERS} members; got {len(member_dirs):,}")
    records = [read_record(d) for d in member_dirs]
    held = {(r.get("training", {}).get("val_chars", 0), r.get("training", {}).get("max_chars", 0)) for r in records}
    if len(held) != 1:
        raise ValueError("the members hold out different validation slices: mix models trained on the same split")
    val_chars, max_chars = held.pop()
    trained_on, val_text = hold_out(train_text, val_chars, max_chars)
    if fit and not val_text:
        raise ValueError("the members hold no validation slice out to fit the weights on: pass --equal")
    members = [load_dir(d) for d in member_dirs]
    sources = [{"path": os.path.relpath(Path(d).resolve(), out.resolve()), "sha256": sha256_of(Path(d) / WEIGHTS)}
               for d in member_dirs]
    weights = fit_weights(members, val_text) if fit else None
    mixture = Mixture(members, weights, sources).eval()
    log("weights: " + ", ".join(f"{s['path']} {w:.4f}" for s, w in zip(sources, mixture.weights))
        + (f" (fitted on the validation slice, {len(val_text):,} characters)" if fit else " (equal)"))
    final = {}
    for split, text in (("val", val_text), ("test", test_text), ("train", trained_on)):
        if text:
            final[split] = evaluate(mixture, text)
            log(f"  {split}: {final[split]['nats']:.4f} nats/char")
    record = {"training": {"val_chars": val_chars, "max_chars": max_chars, "train_chars": len(trained_on),
                          "test_chars": len(test_text), "weights": "fitted on the validation slice" if fit else "equal",
                          **info},
              "status": "complete", "final": {s: final[s] for s in ("train", "val", "test") if s in final}}
    save(mixture, out, record)
    return record
