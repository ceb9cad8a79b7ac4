"""A mixture of checkpoints: its distribution, its checkpoint (references, no weights), its refusals."""
import json
import re
import shutil
import subprocess
import sys
import time

import pytest
import torch

import charrnn
from charrnn.checkpoint import CheckpointError, load_dir
from charrnn.cli import main
from charrnn.mixture import Mixture, fit_weights, load_mixture
from charrnn.scoring import char_losses
from charrnn.testtime.cache import CachedModel
from tests.helpers import TINY_TEXT, tiny_model


def _members():
    return [tiny_model("gru", embed_size=4, seed=1), tiny_model("lstm", embed_size=4, seed=2, num_layers=2),
            tiny_model("paper", seed=3)]


def test_the_distribution_is_the_weighted_mean_of_the_members_and_sums_to_one():
    members, w = _members(), [0.5, 0.3, 0.2]
    mixture = Mixture(members, [5, 3, 2]).eval()  # normalised
    idx = torch.tensor([members[0].encode(TINY_TEXT[:40])] * 2)  # (2, 40)
    with torch.no_grad():
        p = mixture(idx)[0].exp()
        want = sum(wk * torch.softmax(m(idx)[0], -1) for wk, m in zip(w, members))
    assert torch.allclose(p.sum(-1), torch.ones(2, 40), atol=1e-6)
    assert torch.allclose(p, want, atol=1e-6)


def test_with_one_member_it_is_that_member_and_its_state_carries_from_call_to_call():
    member = tiny_model("lstm", embed_size=4, num_layers=2)
    mixture = Mixture([member]).eval()
    idx = torch.tensor([member.encode(TINY_TEXT[:60])])
    with torch.no_grad():
        first, state = mixture(idx[:, :25])
        rest, _ = mixture(idx[:, 25:], state)
        alone = torch.log_softmax(member(idx)[0], -1)
    assert torch.allclose(torch.cat([first, rest], 1), alone, atol=1e-5)
    assert char_losses(mixture, TINY_TEXT).mean().item() == pytest.approx(char_losses(member, TINY_TEXT).mean().item(),
                                                                          abs=1e-5)


def test_evaluate_and_generate_read_it_like_any_model():
    members = _members()
    mixture = Mixture(members).eval()
    text = TINY_TEXT * 3
    assert charrnn.evaluate(mixture, text)["nats"] == pytest.approx(char_losses(mixture, text).double().mean().item(),
                                                                    abs=2e-3)  # parallel streams, warmed states
    a = "".join(charrnn.generate(mixture, "ARGAN.\n\n", 50, temperature=1.0, seed=3))
    assert a == "".join(charrnn.generate(mixture, "ARGAN.\n\n", 50, temperature=1.0, seed=3)) and len(a) == 50


def test_a_continuous_cache_reads_the_mixture_as_a_model():
    mixture = Mixture(_members(), [0.2, 0.5, 0.3]).eval()
    assert torch.allclose(char_losses(CachedModel(mixture, 1.0, 0.0), TINY_TEXT), char_losses(mixture, TINY_TEXT),
                          atol=1e-5)  # lam 0: the mixture alone
    assert char_losses(CachedModel(mixture, 1.0, 0.3), TINY_TEXT).mean() < char_losses(mixture, TINY_TEXT).mean()


def test_fitted_weights_maximise_the_likelihood_of_the_text():
    good, bad = tiny_model("gru", embed_size=4, seed=1), tiny_model("gru", embed_size=4, seed=1)
    # "good" has learnt the text a little; "bad" is untrained: the fit should favour "good"
    opt = torch.optim.Adam(good.parameters(), lr=1e-2)
    ids = torch.tensor([good.encode(TINY_TEXT)])
    for _ in range(30):
        charrnn.training.train_step(good, opt, ids[:, :-1], ids[:, 1:])
    w = fit_weights([good.eval(), bad.eval()], TINY_TEXT)
    assert sum(w) == pytest.approx(1.0) and w[0] > 0.8

    def nats(weights):
        return char_losses(Mixture([good, bad], weights), TINY_TEXT).double().mean().item()

    best = nats(w)
    assert all(best <= nats([w[0] + d, w[1] - d]) + 1e-7 for d in (-0.05, 0.01, w[1] - 1e-3) if 0 < w[0] + d < 1)


def test_members_with_other_vocabularies_or_bad_weights_are_refused():
    with pytest.raises(ValueError, match="one vocabulary"):
        Mixture([tiny_model(), tiny_model(text="abc")])
    with pytest.raises(ValueError, match="each weight must be a finite number >= 0"):
        Mixture(_members(), [1.0, -1.0, 1.0])
    with pytest.raises(ValueError, match="one weight per member"):
        Mixture(_members(), [1.0, 1.0])


@pytest.mark.parametrize("weights,message", [
    ([1e308] * 3, "a finite sum above 0; got 1e+308, 1e+308, 1e+308, whose sum is inf"),  # each would normalise to 0
    ([0, 0, 0], "whose sum is 0"),
    ([float("nan"), 1, 1], "finite number >= 0"), ([float("inf"), 1, 1], "finite number >= 0"),
    ([10**400, 1, 1], "finite number >= 0"), (["nan", 1, 1], "finite number >= 0"), ([True, 1, 1], "finite number")])
def test_weights_are_finite_numbers_with_a_finite_positive_sum(weights, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        Mixture(_members(), weights)


def test_a_zero_weight_leaves_its_member_out():
    members = _members()
    assert torch.allclose(char_losses(Mixture(members, [0, 1e308, 0]), TINY_TEXT),
                          char_losses(Mixture(members[1:2]), TINY_TEXT), atol=1e-6)


@pytest.fixture
def mixed(tiny_checkpoints, corpus_file, tmp_path):
    """Two tiny LSTMs trained alike (the second a copy with perturbed weights) mixed by the CLI in tmp/mixture."""
    root = tmp_path / "checkpoints"
    a = shutil.copytree(tiny_checkpoints["lstm"], root / "a")
    other = charrnn.load(a)
    with torch.no_grad():
        for p in other.parameters():
            p.add_(0.05 * torch.randn_like(p))
    b = charrnn.save(other, root / "b", charrnn.record.caller_fields(other.record))
    main(["mix", str(a), str(b), "--out", str(root / "mixture"), "--data", str(corpus_file)])
    shutil.copy(root / "mixture" / "config.json", root / "config.json.bak")
    return root


def test_the_mixture_checkpoint_refers_to_its_members_and_loads_like_any(mixed, tiny_text):
    path = mixed / "mixture"
    assert sorted(f.name for f in path.iterdir()) == ["README.md", "config.json"]  # no weights of its own
    record = json.loads((path / "config.json").read_text())
    members = record["model"]["members"]
    assert [m["path"] for m in members] == ["../a", "../b"] and sum(m["weight"] for m in members) == pytest.approx(1)
    assert record["training"]["command"].startswith("python -m charrnn mix") and "validation" in record["training"]["weights"]
    model = charrnn.load(path)
    assert isinstance(model, Mixture) and model.num_params() == 2 * load_dir(mixed / "a").num_params()
    _, test = charrnn.data.split(tiny_text)
    assert charrnn.evaluate(model, test)["nats"] == pytest.approx(record["final"]["test"]["nats"], abs=1e-6)
    assert set(record["final"]) == {"train", "val", "test"}
    assert "mixture of 2 checkpoints" in (path / "README.md").read_text()
    with pytest.raises(CheckpointError, match="load it with charrnn.load"):
        load_dir(path)


def test_a_missing_or_changed_member_is_refused_and_says_what_to_do(mixed):
    (mixed / "b" / "model.safetensors").write_bytes((mixed / "a" / "model.safetensors").read_bytes())
    with pytest.raises(CheckpointError, match=r"other weights in \.\./b .*build the mixture again"):
        load_mixture(mixed / "mixture")
    shutil.rmtree(mixed / "a")
    with pytest.raises(CheckpointError, match=r"refers to the checkpoint \.\./a .* which is missing"):
        charrnn.load(mixed / "mixture")


def _rewrite(mixture_dir, change) -> None:
    record = json.loads((mixture_dir / "config.json").read_text())
    change(record["model"])
    (mixture_dir / "config.json").write_text(json.dumps(record))


def _member(i):
    return lambda model: model["members"][i]


MALFORMED = {  # what is changed in the record's model section -> what the refusal says
    "weights of 1e308": (lambda m: [e.update(weight=1e308) for e in m["members"]], "a finite sum above 0"),
    "a weight 'nan' as text": (lambda m: m["members"][0].update(weight="nan"), "(0 leaves its member out); got 'nan'"),
    "a weight NaN": (lambda m: m["members"][0].update(weight=float("nan")), "(0 leaves its member out); got nan"),
    "a weight too large for a float": (lambda m: m["members"][0].update(weight=10**400), "finite number >= 0"),
    "a negative weight": (lambda m: m["members"][0].update(weight=-1), "finite number >= 0"),
    "a path that is an int": (lambda m: m["members"][0].update(path=3), "member 0 needs a path (text)"),
    "a path that is a list": (lambda m: m["members"][1].update(path=["..", "a"]), "member 1 needs a path (text)"),
    "a path that is null": (lambda m: m["members"][0].update(path=None), "member 0 needs a path (text)"),
    "an empty path": (lambda m: m["members"][0].update(path=""), "member 0 needs a path (text)"),
    "a path with a NUL": (lambda m: m["members"][0].update(path="../a\0"), "member 0 needs a path (text)"),
    "a sha256 that is an int": (lambda m: m["members"][0].update(sha256=12), "a sha256 (64 hexadecimal digits)"),
    "no weight": (lambda m: m["members"][0].pop("weight"), "and a weight (a number)"),
    "a member that is text": (lambda m: m["members"].__setitem__(0, "../a"), "member 0 needs a path"),
    "members null": (lambda m: m.update(members=None), "whose members are no list of members (None)"),
    "members 5": (lambda m: m.update(members=5), "whose members are no list of members (5)"),
    "no members": (lambda m: m.update(members=[]), "whose members are no list of members ([])"),
    "10,000 members": (lambda m: m.update(members=[{"path": f"../m{i}", "sha256": "0" * 64, "weight": 1}
                                                   for i in range(10_000)]), "names 10,000 members; a mixture has at most 16"),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_a_malformed_mixture_record_is_refused_saying_what_is_wrong(mixed, case):
    change, message = MALFORMED[case]
    _rewrite(mixed / "mixture", change)
    with pytest.raises(CheckpointError, match=re.escape(message)):
        charrnn.load(mixed / "mixture")


def test_a_symlink_loop_among_the_members_is_refused(mixed):
    (mixed / "loop1").symlink_to(mixed / "loop2")
    (mixed / "loop2").symlink_to(mixed / "loop1")
    _rewrite(mixed / "mixture", lambda m: m["members"][1].update(path="../loop1"))
    with pytest.raises(CheckpointError, match=r"refers to the checkpoint '\.\./loop1', which cannot be read"):
        charrnn.load(mixed / "mixture")


def test_the_command_line_refuses_a_malformed_mixture_in_one_line(mixed):
    """As a user meets it: one line on stderr, exit status 1, no traceback, for the record's types and its size."""
    for change in (MALFORMED["members 5"][0], MALFORMED["a path that is a list"][0], MALFORMED["10,000 members"][0]):
        _rewrite(mixed / "mixture", change)
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "charrnn", "sample", "--checkpoint", str(mixed / "mixture"),
                               "--length", "5"], capture_output=True, text=True, timeout=120)
        assert done.returncode == 1 and "Traceback" not in done.stderr and len(done.stderr.splitlines()) == 1
        assert "mixture" in done.stderr and time.monotonic() - started < 30
        shutil.copy(mixed / "config.json.bak", mixed / "mixture" / "config.json")


def test_mix_refuses_more_members_than_a_mixture_holds(mixed, corpus_file):
    with pytest.raises(SystemExit, match="at most 16 members; got 17"):
        main(["mix", *[str(mixed / "a")] * 17, "--out", str(mixed / "many"), "--data", str(corpus_file)])


def test_a_test_time_reading_records_into_a_mixture_without_writing_weights(mixed, corpus_file):
    main(["cache", "--checkpoint", str(mixed / "mixture"), "--data", str(corpus_file), "--theta", "1", "--lam", "0.2",
          "--window", "300", "--record"])
    assert sorted(f.name for f in (mixed / "mixture").iterdir()) == ["README.md", "config.json"]
    model = charrnn.load(mixed / "mixture")
    assert model.record["final"]["cache"]["lam"] == 0.2 and CachedModel.from_record(model).lam == 0.2


def test_mix_refuses_to_replace_a_checkpoint_that_is_not_a_mixture(mixed, corpus_file):
    with pytest.raises(SystemExit, match="not a mixture"):
        main(["mix", str(mixed / "a"), "--out", str(mixed / "b"), "--data", str(corpus_file)])
