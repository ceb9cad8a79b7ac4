"""The Hub integration, end to end against a stand-in Hub on 127.0.0.1.

The stand-in serves what huggingface_hub's own code asks for: HEAD/GET /resolve for downloads,
repos/create, validate-yaml, preupload and commit for uploads, and a Space's runtime and hardware requests.
To preupload it answers "regular" (the file travels base64 in the commit) except for a file over 10 MiB, which
the Hub keeps out of git: that one is "lfs", sent through git LFS's batch API and a PUT, and the commit names it
by its sha256. huggingface_hub would send it through Xet when hf_xet is installed, a protocol the stand-in does
not speak, so the processes run with HF_HUB_DISABLE_XET=1; the Hub's other rules (a binary file, a .gitattributes
pattern) are not modelled. The
download and CLI checks run in subprocesses with HF_ENDPOINT, HF_HOME and HF_HUB_OFFLINE set before
huggingface_hub is imported, as a user's shell would, because the library reads them at import time.
"""
from __future__ import annotations

import base64
import hashlib
import json
import math
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import torch
import yaml
from huggingface_hub import ModelCard, SpaceCard, metadata_load
from safetensors.torch import load_file

import charrnn
from charrnn import hub
from charrnn.card import model_card
from charrnn.checkpoint import CheckpointError
from charrnn.model import CharRNN, ModelConfig
from charrnn.training import Run, TrainConfig, train

REPO = Path(__file__).resolve().parent.parent
LINES = [("ALCESTE", "Je veux qu'on soit sincère, et qu'en homme d'honneur on ne lâche aucun mot."),
         ("PHILINTE", "Mais encore, monsieur, faut-il vivre avec le monde tel qu'il est."),
         ("DORINE", "Vous moquez-vous des gens, avec votre colère?")]  # written for this test
TEXT = "".join(f"{who}.\n\n{line}\n\n" for who, line in LINES) * 6
PROBE = "ALCESTE.\n\nMais encore"


# ---------------------------------------------------------------- the stand-in Hub

RESOLVE = re.compile(r"^/(?:(spaces|datasets)/)?([^/]+/[^/]+)/resolve/([^/]+)/(.+)$")
API = re.compile(r"^/api/(model|space|dataset)s/([^/]+/[^/]+)/(preupload|commit)/([^/]+)$")
LFS_BATCH = re.compile(r"^/(?:(spaces|datasets)/)?([^/]+/[^/]+)\.git/info/lfs/objects/batch$")
LFS_PUT = re.compile(r"^/lfs-upload/([0-9a-f]{64})$")
LARGE = 10 * 1024 * 1024  # the Hub takes no file over 10 MiB into git
SPACE_API = re.compile(r"^/api/spaces/([^/]+/[^/]+)/(runtime|hardware)$")
TOKENS = {"hf_test_token": "alice", "t": "alice"}  # the stand-in's valid tokens, each with the one namespace it owns


class StandInHub(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.repos: dict[tuple[str, str], dict] = {}  # (repo type, id) -> {"created": payload, "commits": [...]}
        self.log: list[tuple[str, str, str | None]] = []  # (method, path, authorization) of every request
        # (repo type, id) -> the status its creation gets (402: payment); ("hardware", id): its hardware requests
        self.refuse: dict[tuple[str, str], int] = {}
        self.lfs: dict[str, bytes] = {}  # sha256 -> content: the large files uploaded

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def create(self, kind: str, repo_id: str, payload: dict | None = None) -> None:
        # A new repo on the Hub starts with one commit holding .gitattributes.
        self.repos[kind, repo_id] = {"created": payload or {}, "commits": []}
        if kind == "space":  # the Hub's default hardware, unless the creation asked for another
            self.repos[kind, repo_id]["hardware"] = (payload or {}).get("hardware", "cpu-basic")
        gitattributes = b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"
        self.commit(kind, repo_id, {".gitattributes": gitattributes}, "initial")

    def commit(self, kind: str, repo_id: str, added: dict[str, bytes], summary: str) -> str:
        commits = self.repos[kind, repo_id]["commits"]
        tree = {**(commits[-1]["tree"] if commits else {}), **added}
        oid = hashlib.sha1(f"{repo_id} {len(commits)} {sorted(added)}".encode()).hexdigest()
        commits.append({"oid": oid, "tree": tree, "added": added, "summary": summary})
        return oid


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the Hub; every answer carries Content-Length
    timeout = 10  # a stalled client cannot hold a server thread past the test

    def log_message(self, *args):
        pass

    def _send(self, code: int, body: bytes = b"", headers: dict | None = None, head: bool = False) -> None:
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _json(self, code: int, obj, headers: dict | None = None) -> None:
        self._send(code, json.dumps(obj).encode(), {"Content-Type": "application/json", **(headers or {})})

    def do_HEAD(self):
        self._resolve(head=True)

    def do_GET(self):
        m = SPACE_API.match(urlsplit(self.path).path)
        if m and m[2] == "runtime":
            self.server.log.append((self.command, self.path, self.headers.get("authorization")))
            if ("space", m[1]) not in self.server.repos:
                return self._json(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
            hardware = self.server.repos["space", m[1]]["hardware"]
            return self._json(200, {"stage": "RUNNING", "hardware": {"current": hardware, "requested": hardware}})
        self._resolve(head=False)

    def _resolve(self, head: bool) -> None:
        self.server.log.append((self.command, self.path, self.headers.get("authorization")))
        m = RESOLVE.match(urlsplit(self.path).path)
        if not m:
            return self._send(404, head=head)
        repo = self.server.repos.get(({"spaces": "space", "datasets": "dataset"}.get(m[1], "model"), m[2]))
        revision, filename = unquote(m[3]), unquote(m[4])
        if repo is None:  # hf_raise_for_status maps this header to RepositoryNotFoundError
            return self._send(404, b"Repository not found", {"X-Error-Code": "RepoNotFound"}, head)
        if repo["created"].get("visibility") == "private" and self._user() != m[2].split("/")[0]:  # others: not found
            return self._send(401, b"Repository not found", {"X-Error-Code": "RepoNotFound"}, head)
        commits = repo["commits"]
        commit = commits[-1] if revision == "main" else next((c for c in commits if c["oid"] == revision), None)
        if commit is None:
            return self._send(404, b"Invalid rev id", {"X-Error-Code": "RevisionNotFound"}, head)
        if filename not in commit["tree"]:
            headers = {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": commit["oid"]}
            return self._send(404, b"Entry not found", headers, head)
        body = commit["tree"][filename]
        etag = hashlib.sha1(b"blob %d\0" % len(body) + body).hexdigest()  # git's blob id, the Hub's ETag for such files
        self._send(200, body, {"ETag": f'"{etag}"', "X-Repo-Commit": commit["oid"]}, head)

    def _user(self) -> str | None:
        return TOKENS.get((self.headers.get("authorization") or "").removeprefix("Bearer "))

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
            return self.rfile.read(int(self.headers.get("Content-Length", 0)))
        parts = []
        while size := int(self.rfile.readline().split(b";")[0], 16):
            parts.append(self.rfile.read(size))
            self.rfile.readline()
        self.rfile.readline()
        return b"".join(parts)

    def do_PUT(self):
        """A large file's content, to the URL the LFS batch answer gave (the Hub's storage; no token needed)."""
        self.server.log.append((self.command, self.path, self.headers.get("authorization")))
        body, m = self._body(), LFS_PUT.match(urlsplit(self.path).path)
        if not m or hashlib.sha256(body).hexdigest() != m[1]:
            return self._json(400, {"error": "the content does not have the sha256 it was announced with"})
        self.server.lfs[m[1]] = body
        return self._send(200)

    def do_POST(self):
        self.server.log.append((self.command, self.path, self.headers.get("authorization")))
        body = self._body()
        path = urlsplit(self.path).path
        user = self._user()
        if user is None:
            return self._json(401, {"error": "Invalid credentials in Authorization header"})
        m = LFS_BATCH.match(path)
        if m:  # git LFS's batch API: where to PUT each object the stand-in does not hold yet
            objects = [{"oid": o["oid"], "size": o["size"]} | ({} if o["oid"] in self.server.lfs else
                       {"actions": {"upload": {"href": f"{self.server.url}/lfs-upload/{o['oid']}"}}})
                       for o in json.loads(body)["objects"]]
            return self._json(200, {"transfer": "basic", "objects": objects})
        if path == "/api/repos/create":
            p = json.loads(body)
            kind, repo_id = p.get("type") or "model", f"{p['organization']}/{p['name']}"
            url = self.server.url + ("" if kind == "model" else f"/{kind}s") + f"/{repo_id}"
            if p["organization"] != user:
                return self._json(403, {"error": f"You don't have the rights to create a {kind} under {p['organization']}"})
            if (kind, repo_id) in self.server.refuse:
                return self._json(self.server.refuse[kind, repo_id], {"error": "Payment required"})
            if (kind, repo_id) in self.server.repos:
                return self._json(409, {"error": "You already created this repo", "url": url})
            self.server.create(kind, repo_id, p)
            return self._json(200, {"url": url})
        if path == "/api/validate-yaml":
            return self._json(200, {"errors": [], "warnings": []})
        m = SPACE_API.match(path)
        if m and m[2] == "hardware":
            if ("space", m[1]) not in self.server.repos:
                return self._json(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
            if ("hardware", m[1]) in self.server.refuse:
                return self._json(self.server.refuse["hardware", m[1]], {"error": "Payment required"})
            space = self.server.repos["space", m[1]]
            space["hardware"] = json.loads(body)["flavor"]
            return self._json(200, {"stage": "RUNNING", "hardware": {"current": space["hardware"],
                                                                    "requested": space["hardware"]}})
        m = API.match(path)
        if not m:
            return self._send(404)
        if (m[1], m[2]) not in self.server.repos:
            return self._json(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
        if m[3] == "preupload":
            files = json.loads(body)["files"]
            return self._json(200, {"files": [{"path": f["path"], "shouldIgnore": False,
                                               "uploadMode": "lfs" if f["size"] > LARGE else "regular"}
                                              for f in files]})
        items = [json.loads(line) for line in body.splitlines() if line.strip()]
        added = {}
        for item in items[1:]:
            value = item["value"]
            if item["key"] == "lfsFile" and value["oid"] in self.server.lfs:
                added[value["path"]] = self.server.lfs[value["oid"]]
            elif item["key"] == "file" and len(content := base64.b64decode(value["content"])) <= LARGE:
                added[value["path"]] = content
            else:  # as the Hub: a large file in git, or a pointer to content never uploaded
                return self._json(400, {"error": f"the stand-in refuses {item['key']} {value['path']}"})
        oid = self.server.commit(m[1], m[2], added, items[0]["value"]["summary"])
        return self._json(200, {"commitUrl": f"{self.server.url}/{m[2]}/commit/{oid}", "commitOid": oid})


@pytest.fixture
def stand_in():
    server = StandInHub()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


def hub_env(home: Path, endpoint: str, **extra: str) -> dict:
    """A user's environment pointed at the stand-in: own HF_HOME (no cache, no saved login), no proxy."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HF_", "HUGGINGFACE_")) and "proxy" not in k.lower()}
    env.update(HF_ENDPOINT=endpoint, HF_HOME=str(home), HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_DISABLE_XET="1",
               HF_HUB_DISABLE_PROGRESS_BARS="1", NO_PROXY="127.0.0.1", OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]), **extra)
    return env


def run_py(args: list[str], env: dict, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


# What `charrnn.load(name, revision=...)` gives in a fresh process: logits on PROBE, or the error message.
LOAD = """
import json, sys, torch
from safetensors.torch import save_file
import charrnn
out = []
for i, (name, revision) in enumerate(json.loads(sys.argv[1])):
    try:
        model = charrnn.load(name, revision=revision)
    except charrnn.CheckpointError as e:
        out.append(str(e))
        continue
    with torch.inference_mode():
        logits, _ = model(torch.tensor([model.encode(sys.argv[3])]))
    save_file({"logits": logits.contiguous()}, f"{sys.argv[2]}/{i}.safetensors")
    out.append(None)
print(json.dumps(out))
"""


def load_in_subprocess(tmp: Path, env: dict, requests: list[tuple[str, str | None]]) -> list:
    """[(name, revision)] -> for each, the logits tensor or the CheckpointError message."""
    tmp.mkdir(parents=True, exist_ok=True)
    r = run_py(["-c", LOAD, json.dumps(requests), str(tmp), PROBE], env)
    assert r.returncode == 0, r.stderr
    return [e if e is not None else load_file(tmp / f"{i}.safetensors")["logits"]
            for i, e in enumerate(json.loads(r.stdout.splitlines()[-1]))]


# ---------------------------------------------------------------- tiny checkpoints

def trained(out: Path, cell: str = "lstm", seed: int = 0) -> Path:
    """Train a tiny model for two short epochs with the library's trainer; its checkpoint is `out`."""
    model = CharRNN(ModelConfig(vocab="".join(sorted(set(TEXT))), cell=cell, hidden_size=12, embed_size=6))
    cut = int(len(TEXT) * 0.9)
    cfg = TrainConfig(batch_size=2, seq_len=16, epochs=2, lr=1e-2, warmup_steps=1, sample_length=20, seed=seed)
    info = {"command": f"python train.py --cell {cell} --hidden-size 12 --seed {seed}", "corpus_sha256": "0" * 64,
            "device": "cpu"}
    train(model, Run(TEXT[:cut], TEXT[cut:], cfg, out, info, progress=False))
    return out


def logits_of(model: CharRNN) -> torch.Tensor:
    with torch.inference_mode():
        return model(torch.tensor([model.encode(PROBE)]))[0]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """Two different tiny checkpoints: a (an LSTM) and b (the paper's RNN), each with its resume state."""
    root = tmp_path_factory.mktemp("ckpt")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: more threads only wait on each other, badly on a busy machine
    try:
        return trained(root / "a", "lstm", 0), trained(root / "b", "paper", 1)
    finally:
        torch.set_num_threads(threads)


@pytest.fixture
def project(tmp_path, checkpoints):
    """A copy of the project as deploy-space sees it, with everything that must stay home beside it."""
    root = tmp_path / "project"
    for package in ("charrnn", "ui"):
        shutil.copytree(REPO / package, root / package, ignore=shutil.ignore_patterns("__pycache__", "node_modules"))
    for f in ("README.md", "requirements.txt"):
        shutil.copy(REPO / f, root / f)
    (root / "app.py").write_text("import charrnn\n")
    (root / "charrnn" / "extra").mkdir()
    (root / "charrnn" / "extra" / "helper.py").write_text("")
    shutil.copytree(checkpoints[0], root / "checkpoints" / "lstm")
    assert (root / "checkpoints" / "lstm" / "training_state.pt").exists()
    (root / "docs").mkdir()
    (root / "docs" / "app-write-desktop.png").write_bytes(b"\x89PNG picture the README shows")
    decoys = ["docs/notes.md", "charrnn/__pycache__/hub.cpython-311.pyc", "charrnn/.ipynb_checkpoints/hub-checkpoint.py",
              "charrnn/notes.txt", "checkpoints/.lstm.old/config.json", "checkpoints/.lstm.tmp-7/model.safetensors",
              "checkpoints/empty/notes.txt", "tests/test_model.py", "data/moliere.txt", "runs/lstm.log",
              ".git/HEAD", ".gradio/flagged.csv", "train.py", "requirements-dev.txt", "secrets.env"]
    for d in decoys:
        (root / d).parent.mkdir(parents=True, exist_ok=True)
        (root / d).write_text("not for the Space")
    expected = ({"app.py", "requirements.txt", "README.md", "charrnn/extra/helper.py", "docs/app-write-desktop.png"}
                | {p.relative_to(REPO).as_posix() for package in ("charrnn", "ui") for p in (REPO / package).rglob("*.py")
                   if "__pycache__" not in p.parts} | {"ui/style.css"}
                | {f"checkpoints/lstm/{n}" for n in ("model.safetensors", "config.json", "README.md")})
    return root, expected


# ---------------------------------------------------------------- in-process checks

def test_repo_ids_and_paths_are_told_apart():
    assert hub.looks_like_repo_id("alice/tiny-lstm") and hub.looks_like_repo_id("Org_1/model.v2")
    for s in ("lstm", "./lstm/x", "/abs/x", "checkpoints/lstm/old", "alice/bad--name", "alice/x y", "alice/", "é/x"):
        assert not hub.looks_like_repo_id(s), s


def test_a_local_directory_wins_over_a_hub_id(tmp_path, monkeypatch, checkpoints):
    shutil.copytree(checkpoints[0], tmp_path / "alice" / "tiny")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(hub, "download_checkpoint", lambda *a, **k: pytest.fail("the Hub was asked"))
    assert torch.equal(logits_of(charrnn.load("alice/tiny")), logits_of(charrnn.load(checkpoints[0])))


def test_a_name_that_cannot_be_a_hub_id_never_reaches_the_hub(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(hub, "download_checkpoint", lambda *a, **k: pytest.fail("the Hub was asked"))
    with pytest.raises(CheckpointError, match="cannot look for a checkpoint at a+\\.\\.\\.: File name too long"):
        charrnn.load("a" * 300)  # too long for a file name
    for name in ("alice/" + "b" * 150, "alice/" + "b" * 300):  # too long for a Hub id (96 characters)
        with pytest.raises(CheckpointError, match="no checkpoint directory alice/b+ \\(and it is not a Hub id"):
            charrnn.load(name)


def test_a_mistyped_local_path_that_looks_like_a_hub_id_says_both(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    def not_on_the_hub(repo_id, revision=None):
        raise CheckpointError(f"no model repo {repo_id} on the Hub (https://hub.example)")

    monkeypatch.setattr(hub, "download_checkpoint", not_on_the_hub)
    with pytest.raises(CheckpointError) as e:
        charrnn.load("checkpoints/lstmm")
    assert str(e.value) == "no local directory checkpoints/lstmm, and no model repo checkpoints/lstmm on the Hub " \
                           "(https://hub.example)"


def test_the_model_card_round_trips_through_huggingface_hub(checkpoints, tmp_path):
    config = json.loads((checkpoints[0] / "config.json").read_text())
    path = tmp_path / "README.md"
    path.write_text(model_card(config, "alice/tiny"), encoding="utf-8")
    card = ModelCard.load(path)
    assert metadata_load(path) == card.data.to_dict()
    assert (card.data.library_name, card.data.license, card.data.language) == ("charrnn", "mit", ["fr"])
    assert card.data.pipeline_tag == "text-generation" and card.data.datasets is None  # no dataset repo to name
    assert {"lstm", "moliere", "character-level"} <= set(card.data.tags)
    final = config["final"]
    assert card.data.model_name == "alice/tiny"
    metrics = {r.metric_type: r.metric_value for r in card.data.eval_results}
    assert metrics == {"bits-per-character": round(final["test"]["bpc"], 4), "loss": round(final["test"]["nats"], 4)}
    text = card.text
    assert f"| test | {final['test']['nats']:.4f} | {final['test']['bpc']:.4f} |" in text
    for h in config["history"]:  # one row per evaluation, in nats and bits
        train, test = h["train_loss"], h["test_loss"]
        assert (f"| {h['epoch']:.2f} | {h['chars']:,} | {train:.4f} | {train / math.log(2):.4f} "
                f"| {test:.4f} | {test / math.log(2):.4f} |") in text
    assert len(config["history"]) == 2
    assert "```bash\npython train.py --cell lstm --hidden-size 12 --seed 0\n```" in text
    assert 'model = charrnn.load("alice/tiny")' in text


def test_the_space_readme_configures_a_gradio_space():
    meta = metadata_load(REPO / "README.md")
    data = SpaceCard.load(REPO / "README.md").data
    assert (data.sdk, data.app_file, data.license) == ("gradio", "app.py", meta["license"])
    assert len(meta["short_description"]) <= 60 and meta["title"]  # the Hub's limit on short_description
    pin = re.search(r"^gradio==(\S+)$", (REPO / "requirements.txt").read_text(), re.MULTILINE)[1]
    assert str(data.sdk_version) == pin
    assert hub.space_metadata(REPO) == meta


def test_space_metadata_refuses_a_readme_the_space_could_not_run(project):
    root, _ = project
    readme = (root / "README.md").read_text()
    (root / "README.md").write_text(readme.replace("sdk: gradio", "sdk: docker"))
    with pytest.raises(hub.HubError, match="sdk: gradio"):
        hub.space_metadata(root)
    (root / "README.md").write_text(re.sub(r"sdk_version: \S+", "sdk_version: 1.0.0", readme))
    with pytest.raises(hub.HubError, match="requirements.txt pins gradio=="):
        hub.space_metadata(root)


def test_the_space_gets_exactly_what_it_needs(project):
    root, expected = project
    files = hub.space_files(root, "cpu-basic")
    assert set(files) == expected
    assert files["charrnn/hub.py"] == (REPO / "charrnn" / "hub.py").read_bytes()
    assert files["checkpoints/lstm/model.safetensors"] == (root / "checkpoints/lstm/model.safetensors").read_bytes()
    assert b"# charrnn \xc2\xb7 lstm" in files["checkpoints/lstm/README.md"]
    # A CPU Space installs PyTorch's CPU-only build; everything else as pinned locally.
    local, space = (root / "requirements.txt").read_text(), files["requirements.txt"].decode()
    assert "--extra-index-url https://download.pytorch.org/whl/cpu\n" in space and "\ntorch==2.13.0+cpu\n" in space
    assert space.split("--extra-index-url https://download.pytorch.org/whl/cpu\n")[1] == local.replace(
        "torch==2.13.0\n", "torch==2.13.0+cpu\n")
    # A ZeroGPU Space: a torch that ZeroGPU runs (the CUDA build, from PyPI) and `spaces`, the rest as pinned locally.
    zero = hub.space_files(root, "zero-a10g")["requirements.txt"].decode()
    assert "download.pytorch.org" not in zero and "+cpu" not in zero
    assert [line for line in zero.splitlines() if not line.startswith("#")] == [
        line.replace("torch==2.13.0", "torch==2.11.0") for line in local.splitlines() if not line.startswith("#")
    ] + ["spaces==0.51.3"]
    # A paid GPU: the local pin, whose PyPI wheel is the CUDA build.
    gpu = hub.space_files(root, "t4-small")["requirements.txt"].decode()
    assert "\ntorch==2.13.0\n" in gpu and "download.pytorch.org" not in gpu and "spaces" not in gpu
    shutil.rmtree(root / "checkpoints" / "lstm")
    with pytest.raises(hub.HubError, match="no checkpoint"):
        hub.space_files(root)


def test_a_run_still_training_is_not_put_on_the_space(project, tiny_checkpoints):
    """Long runs are committed as they go (to be resumed in a later session): the Space gets finished ones only."""
    root, expected = project
    shutil.copytree(tiny_checkpoints["unfinished"], root / "checkpoints" / "running")
    assert charrnn.checkpoint.read_record(root / "checkpoints" / "running")["status"] == "training"
    assert set(hub.space_files(root, "cpu-basic")) == expected


def test_push_without_a_token_says_how_to_log_in(checkpoints, monkeypatch):
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    with pytest.raises(hub.HubError, match=r"hf auth login.*HF_TOKEN"):
        hub.push(checkpoints[0], "alice/tiny")


# ---------------------------------------------------------------- end to end against the stand-in

def test_push_uploads_weights_config_and_card_then_loads_by_id(stand_in, checkpoints, tmp_path):
    a, b = checkpoints
    stand_in.create("model", "alice/tiny")
    earlier = {n: (a / n).read_bytes() for n in ("config.json", "model.safetensors")}
    first = stand_in.commit("model", "alice/tiny", earlier, "an earlier version")
    env = hub_env(tmp_path / "hf", stand_in.url, HF_TOKEN="hf_test_token")
    r = run_py(["-m", "charrnn", "push", str(b), "alice/tiny", "--private"], env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"{stand_in.url}/alice/tiny"
    assert stand_in.repos["model", "alice/tiny"]["created"] == {}  # it existed: --private changes nothing then
    pushed = stand_in.repos["model", "alice/tiny"]["commits"][-1]
    assert set(pushed["added"]) == {"model.safetensors", "config.json", "README.md"}  # never training_state.pt
    assert pushed["added"]["model.safetensors"] == (b / "model.safetensors").read_bytes()
    assert pushed["added"]["config.json"] == (b / "config.json").read_bytes()
    (tmp_path / "README.md").write_bytes(pushed["added"]["README.md"])
    card = ModelCard.load(tmp_path / "README.md")
    assert card.data.library_name == "charrnn" and "mikolov-2010" in card.data.tags
    assert 'charrnn.load("alice/tiny")' in card.text
    assert all(auth == "Bearer hf_test_token" for method, _, auth in stand_in.log if method == "POST")

    # A fresh process loads it by id, at the latest commit and at the earlier one, and reports bad ids.
    stand_in.create("model", "alice/notes")  # a repo with no config.json
    stand_in.create("model", "alice/other")
    stand_in.commit("model", "alice/other", {"config.json": b'{"architectures": ["Bert"]}'}, "not ours")
    got = load_in_subprocess(tmp_path / "online", env, [("alice/tiny", None), ("alice/tiny", first),
                                                        ("alice/nobody", None), ("alice/tiny", "v9"),
                                                        ("alice/notes", None), ("alice/other", None)])
    assert torch.equal(got[0], logits_of(charrnn.load(b)))
    assert torch.equal(got[1], logits_of(charrnn.load(a)))
    # Each says that no local directory has that name as well as what the Hub said: it may be a mistyped path.
    assert got[2].startswith("no local directory alice/nobody, and no model repo alice/nobody on the Hub")
    assert "HF_TOKEN" in got[2]
    assert got[3] == ("no local directory alice/tiny, and the Hub repo alice/tiny has no revision 'v9' (a branch, tag "
                      "or commit)")
    assert got[4] == ("no local directory alice/notes, and the Hub repo alice/notes is not a charrnn checkpoint: it "
                      "has no config.json")
    assert got[5].startswith("no local directory alice/other, and the Hub repo alice/other is not a charrnn checkpoint")

    # Offline, the same cache answers without a single request.
    before = len(stand_in.log)
    got = load_in_subprocess(tmp_path / "offline", {**env, "HF_HUB_OFFLINE": "1"},
                             [("alice/tiny", None), ("alice/tiny", first)])
    assert torch.equal(got[0], logits_of(charrnn.load(b))) and torch.equal(got[1], logits_of(charrnn.load(a)))
    assert len(stand_in.log) == before


def test_load_asks_for_the_config_first_then_the_weights_at_its_commit_and_downloads_once(stand_in, checkpoints,
                                                                                              tmp_path):
    """The order of the requests: config.json at the asked revision, then model.safetensors at the commit the config
    came from (never at "main", which a push could move in between); a repo that is not a checkpoint costs no
    weights; the second load, online, asks for nothing but the current commit."""
    a, _ = checkpoints
    stand_in.create("model", "alice/tiny")
    oid = stand_in.commit("model", "alice/tiny", {n: (a / n).read_bytes() for n in ("config.json", "model.safetensors")},
                          "a checkpoint")
    stand_in.create("model", "alice/other")
    stand_in.commit("model", "alice/other", {"config.json": b'{"architectures": ["Bert"]}',
                                             "model.safetensors": b"not for charrnn"}, "not ours")
    env = hub_env(tmp_path / "hf", stand_in.url)
    got = load_in_subprocess(tmp_path / "first", env, [("alice/tiny", None), ("alice/other", None)])
    assert torch.equal(got[0], logits_of(charrnn.load(a))) and "not a charrnn checkpoint" in got[1]
    asked = [(method, path) for method, path, _ in stand_in.log]
    files = [path.rsplit("/resolve/", 1)[1] for _, path in asked]
    assert files.index(f"{oid}/model.safetensors") > files.index("main/config.json")
    assert set(files) == {"main/config.json", f"{oid}/model.safetensors"}  # the weights at the config's commit only
    assert [path for method, path in asked if method == "GET"] == ["/alice/tiny/resolve/main/config.json",
                                                                   f"/alice/tiny/resolve/{oid}/model.safetensors",
                                                                   "/alice/other/resolve/main/config.json"]
    del stand_in.log[:]
    got = load_in_subprocess(tmp_path / "second", env, [("alice/tiny", None)])
    assert torch.equal(got[0], logits_of(charrnn.load(a)))
    assert [(method, path) for method, path, _ in stand_in.log] == [("HEAD", "/alice/tiny/resolve/main/config.json")]


def test_a_private_repo_is_created_private_and_read_only_with_a_token(stand_in, checkpoints, tmp_path):
    a, _ = checkpoints
    env = hub_env(tmp_path / "hf", stand_in.url, HF_TOKEN="hf_test_token")
    r = run_py(["-m", "charrnn", "push", str(a), "alice/secret", "--private"], env)
    assert r.returncode == 0, r.stderr
    assert stand_in.repos["model", "alice/secret"]["created"]["visibility"] == "private"
    del stand_in.log[:]
    (got,) = load_in_subprocess(tmp_path / "owner", env, [("alice/secret", None)])
    assert torch.equal(got, logits_of(charrnn.load(a)))
    assert {auth for _, _, auth in stand_in.log} == {"Bearer hf_test_token"}  # every request carried the token
    anonymous = {k: v for k, v in env.items() if k != "HF_TOKEN"} | {"HF_HOME": str(tmp_path / "hf2")}
    (got,) = load_in_subprocess(tmp_path / "anonymous", anonymous, [("alice/secret", None)])
    assert "no model repo alice/secret on the Hub" in got and "private or gated repo also needs a token" in got


@pytest.mark.parametrize("token, target, code, message", [
    ("hf_expired", "alice/tiny", 401, "the Hub refused publishing alice/tiny (HTTP 401): the token is not valid or "
                                      "cannot write to that user or organization; run `hf auth login` with a write "
                                      "token, or set HF_TOKEN"),
    ("hf_test_token", "bob/tiny", 403, "the Hub refused publishing bob/tiny (HTTP 403): the token is not valid or "
                                       "cannot write to that user or organization"),
    ("hf_test_token", "space alice/demo", 402, "the Hub refused creating the Space alice/demo on ZeroGPU (zero-a10g) "
                                               "because of the account's plan (HTTP 402): a free account may host 2 "
                                               "ZeroGPU Spaces at most, once its email is verified and it is older "
                                               "than 30 days (a PRO plan allows 10); nothing was uploaded"),
    ("hf_test_token", "space alice/demo --hardware cpu-basic", 402,
     "the Hub refused creating the Space alice/demo on cpu-basic because of the account's plan (HTTP 402): a Gradio "
     "Space on cpu-basic needs a PRO plan (Team or Enterprise for an organization), or, on a free account, ZeroGPU: "
     "--hardware zerogpu (2 Spaces at most, verified account older than 30 days); nothing was uploaded"),
])
def test_the_hub_s_refusals_are_one_sentence_that_says_what_to_do(stand_in, checkpoints, project, tmp_path, token,
                                                                   target, code, message):
    """A bad token (401), a namespace the token may not write to (403), a Space the account's plan does not allow
    (402, on ZeroGPU and on CPU hardware)."""
    root, _ = project
    if target.startswith("space "):
        stand_in.refuse["space", target.split()[1]] = code
        args = ["deploy-space", *target.split()[1:]]
    else:
        args = ["push", str(checkpoints[0]), target]
    r = run_py(["-m", "charrnn", *args], hub_env(tmp_path / "hf", stand_in.url, HF_TOKEN=token), cwd=root)
    assert r.returncode == 1 and r.stderr.startswith(f"error: {message}") and r.stderr.count("\n") == 1, r.stderr
    assert any(method == "POST" for method, _, _ in stand_in.log)  # the Hub was asked, and said no
    assert stand_in.repos == {}  # nothing was created


def test_train_py_push_to_hub_publishes_the_finished_checkpoint(stand_in, tmp_path):
    data = tmp_path / "text.txt"
    data.write_text(TEXT, encoding="utf-8")
    args = ["train.py", "--preset", "paper", "--data", str(data), "--hidden-size", "8", "--batch-size", "4",
            "--seq-len", "16", "--epochs", "1", "--push-to-hub", "alice/trained"]
    env = hub_env(tmp_path / "hf", stand_in.url, HF_TOKEN="hf_test_token")
    r = run_py([*args, "--out", str(tmp_path / "ck")], env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1] == f"{stand_in.url}/alice/trained"
    pushed = stand_in.repos["model", "alice/trained"]["commits"][-1]["added"]
    assert set(pushed) == {"model.safetensors", "config.json", "README.md"}
    assert all(pushed[n] == (tmp_path / "ck" / n).read_bytes() for n in ("model.safetensors", "config.json"))
    assert json.loads(pushed["config.json"])["status"] == "complete"
    # Without a token the run is not lost: it is saved, and the error says so.
    r = run_py([*args, "--out", str(tmp_path / "ck2")], {k: v for k, v in env.items() if k != "HF_TOKEN"})
    assert r.returncode == 1
    assert r.stderr.splitlines()[-1].startswith(f"error: the checkpoint is saved in {tmp_path / 'ck2'}, but publishing "
                                                "it failed: no Hugging Face token")
    assert charrnn.load(tmp_path / "ck2").record["status"] == "complete"


def test_offline_with_an_empty_cache_says_so(stand_in, tmp_path):
    env = hub_env(tmp_path / "hf", stand_in.url, HF_HUB_OFFLINE="1")
    (got,) = load_in_subprocess(tmp_path / "out", env, [("alice/tiny", None)])
    assert got.startswith(f"no local directory alice/tiny, and alice/tiny is not in the Hub cache "
                          f"({tmp_path / 'hf' / 'hub'}) and HF_HUB_OFFLINE is set")
    assert stand_in.log == []


def test_no_network_says_so(tmp_path):
    # A port held bound but not listening: connections to it are refused, and no other process can take it meanwhile.
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{held.getsockname()[1]}"
        # huggingface_hub retries a failed connection with growing sleeps; the test skips the waiting.
        env = hub_env(tmp_path / "hf", url)
        script = "import time; time.sleep = lambda s: None\n" + LOAD
        r = run_py(["-c", script, json.dumps([("alice/tiny", None)]), str(tmp_path), PROBE], env)
    (got,) = json.loads(r.stdout.splitlines()[-1])
    assert got.startswith(f"no local directory alice/tiny, and cannot reach the Hub at {url} to download alice/tiny, "
                          "and it is not in the cache")


ZEROGPU_REQUIREMENTS = ["torch==2.11.0", "gradio==6.31.0", "huggingface_hub==2.4.0", "safetensors==0.8.0", "tqdm>=4.66",
                        "spaces==0.51.3"]
CPU_REQUIREMENTS = ["--extra-index-url https://download.pytorch.org/whl/cpu", "torch==2.13.0+cpu", "gradio==6.31.0",
                    "huggingface_hub==2.4.0", "safetensors==0.8.0", "tqdm>=4.66"]
HARDWARE = [([], "zero-a10g", "ZeroGPU (zero-a10g)", "3.12.12", ZEROGPU_REQUIREMENTS),  # the default
            (["--hardware", "zerogpu"], "zero-a10g", "ZeroGPU (zero-a10g)", "3.12.12", ZEROGPU_REQUIREMENTS),
            (["--hardware", "cpu-basic"], "cpu-basic", "cpu-basic", "3.11", CPU_REQUIREMENTS),
            (["--hardware", "cpu-upgrade"], "cpu-upgrade", "cpu-upgrade", "3.11", CPU_REQUIREMENTS)]


def pins(requirements: str) -> list[str]:
    return [line for line in requirements.splitlines() if line and not line.startswith("#")]


@pytest.mark.parametrize("flags, hardware, shown, python, requirements", HARDWARE)
def test_deploy_space_dry_run_shows_the_hardware_files_front_matter_and_requirements(stand_in, project, tmp_path, flags,
                                                                                     hardware, shown, python,
                                                                                     requirements):
    root, expected = project
    r = run_py(["-m", "charrnn", "deploy-space", "alice/demo", *flags, "--dry-run"],
               hub_env(tmp_path / "hf", stand_in.url), cwd=root)
    assert r.returncode == 0, r.stderr
    header, *files = r.stdout.split("front matter")[0].splitlines()
    assert header == f"would upload to the Space alice/demo (sdk gradio), hardware {shown}:"
    assert {line.split()[2] for line in files[:-1]} == expected  # size, "B", path; then the total
    front, reqs = r.stdout.split("front matter of README.md:\n")[1].split("requirements.txt for the Space:\n")
    meta = yaml.safe_load(front)
    assert meta == {**metadata_load(root / "README.md"), "python_version": python}  # the project's, and the Python
    assert pins(reqs) == requirements
    assert reqs == hub.space_files(root, hardware)["requirements.txt"].decode()
    assert stand_in.log == []  # a dry run neither needs a token nor talks to the Hub


def test_deploy_space_refuses_an_unknown_hardware_and_lists_the_hub_s_names(stand_in, project, tmp_path):
    root, _ = project
    r = run_py(["-m", "charrnn", "deploy-space", "alice/demo", "--hardware", "zero-gpu"],
               hub_env(tmp_path / "hf", stand_in.url, HF_TOKEN="t"), cwd=root)
    assert r.returncode == 2 and "argument --hardware: invalid choice: 'zero-gpu'" in r.stderr, r.stderr
    choices = r.stderr.split("choose from ")[1].replace("'", "")
    assert choices.startswith("zerogpu, cpu-basic, cpu-upgrade, zero-a10g, t4-small")
    assert stand_in.log == []


@pytest.mark.parametrize("flags, hardware, shown, python, requirements", HARDWARE[1:3])
def test_deploy_space_uploads_exactly_the_app_on_its_hardware(stand_in, project, tmp_path, flags, hardware, shown,
                                                              python, requirements):
    root, expected = project
    env = hub_env(tmp_path / "hf", stand_in.url, HF_TOKEN="t")
    r = run_py(["-m", "charrnn", "deploy-space", "alice/demo", *flags], env, cwd=root)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"{stand_in.url}/spaces/alice/demo"
    space = stand_in.repos["space", "alice/demo"]
    assert (space["created"]["type"], space["created"]["sdk"], space["created"]["hardware"]) == ("space", "gradio",
                                                                                                 hardware)
    assert space["hardware"] == hardware and not any(path.endswith("/hardware") for _, path, _ in stand_in.log)
    assert ("model", "alice/demo") not in stand_in.repos
    (deploy,) = space["commits"][1:]
    assert set(deploy["added"]) == expected
    readme, local = deploy["added"]["README.md"].decode(), (root / "README.md").read_text()
    assert readme.split("\n---\n", 1)[1] == local.split("\n---\n", 1)[1]  # the page as written
    (tmp_path / "space-readme.md").write_text(readme)
    assert metadata_load(tmp_path / "space-readme.md") == {**metadata_load(root / "README.md"),
                                                           "python_version": python}
    assert pins(deploy["added"]["requirements.txt"].decode()) == requirements


def test_an_existing_space_is_switched_to_the_hardware_asked_for_before_the_upload(stand_in, project, tmp_path):
    root, expected = project
    env = hub_env(tmp_path / "hf", stand_in.url, HF_TOKEN="t")
    stand_in.create("space", "alice/demo", {"type": "space", "sdk": "gradio"})  # made on cpu-basic, the Hub's default
    r = run_py(["-m", "charrnn", "deploy-space", "alice/demo"], env, cwd=root)
    assert r.returncode == 0, r.stderr
    space = stand_in.repos["space", "alice/demo"]
    assert space["hardware"] == "zero-a10g" and len(space["commits"]) == 2
    asked = [(method, urlsplit(path).path) for method, path, _ in stand_in.log]
    switch = asked.index(("POST", "/api/spaces/alice/demo/hardware"))
    assert switch < asked.index(("POST", "/api/spaces/alice/demo/commit/main"))
    # Deployed again on the hardware it has: no request; then to CPU hardware the account's plan does not allow.
    del stand_in.log[:]
    assert run_py(["-m", "charrnn", "deploy-space", "alice/demo"], env, cwd=root).returncode == 0
    assert ("GET", "/api/spaces/alice/demo/runtime") in [(m, urlsplit(p).path) for m, p, _ in stand_in.log]
    assert not any(path.endswith("/hardware") for _, path, _ in stand_in.log) and len(space["commits"]) == 3
    stand_in.refuse["hardware", "alice/demo"] = 402
    r = run_py(["-m", "charrnn", "deploy-space", "alice/demo", "--hardware", "cpu-upgrade"], env, cwd=root)
    assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
    assert r.stderr.startswith("error: the Hub refused switching the Space alice/demo to cpu-upgrade because of the "
                               "account's plan (HTTP 402): a Gradio Space on cpu-upgrade needs a PRO plan")
    assert space["hardware"] == "zero-a10g" and len(space["commits"]) == 3  # nothing uploaded, nothing switched


def test_deploy_space_without_a_token_says_how_to_log_in(stand_in, project, tmp_path):
    root, _ = project
    r = run_py(["-m", "charrnn", "deploy-space", "alice/demo"], hub_env(tmp_path / "hf", stand_in.url), cwd=root)
    assert r.returncode == 1
    assert r.stderr.startswith("error: no Hugging Face token: run `hf auth login` or set HF_TOKEN")
    assert "Traceback" not in r.stderr and stand_in.log == []


# ---------------------------------------------------------------- the static edition as a static Space

RUNTIME = REPO / "ui" / "web" / "node_modules" / "onnxruntime-web" / "dist"
needs_runtime = pytest.mark.skipif(not (RUNTIME / "ort-wasm-simd-threaded.wasm").exists(),
                                   reason="onnxruntime-web is not installed: run `npm ci` in ui/web")


@pytest.fixture(scope="module")
def static_site(checkpoints, tmp_path_factory):
    """export-web's site of the two tiny checkpoints, with the real runtime (its .wasm is over 10 MiB)."""
    pytest.importorskip("onnx", reason="onnx is not installed (pip install -r requirements-dev.txt)")
    from charrnn.cli import main

    out = tmp_path_factory.mktemp("static") / "site"
    main(["export-web", str(out), "--models", *map(str, checkpoints)])
    return out


def site_files(site: Path) -> dict[str, bytes]:
    return {p.relative_to(site).as_posix(): p.read_bytes() for p in site.rglob("*") if p.is_file()}


@needs_runtime
def test_deploy_space_static_dry_run_shows_the_front_matter_and_every_file_with_its_size(stand_in, checkpoints,
                                                                                        static_site, tmp_path):
    """Without --site the site is exported now, into a temporary directory; nothing is uploaded, no token needed."""
    r = run_py(["-m", "charrnn", "deploy-space", "alice/web", "--static", "--models", *map(str, checkpoints),
                "--dry-run"], hub_env(tmp_path / "hf", stand_in.url))
    assert r.returncode == 0, r.stderr
    listed, front = r.stdout.split("front matter of README.md:\n")
    header, *lines, total = listed.splitlines()
    assert header == "would upload to the Space alice/web (sdk static, no hardware: it runs in the browser):"
    sizes = {line.split()[2]: int(line.split()[0].replace(",", "")) for line in lines}
    exported = site_files(static_site)
    assert set(sizes) == set(exported) | {"README.md"}
    assert all(sizes[p] == len(b) for p, b in exported.items() if not p.endswith(".onnx"))  # the same export
    wasm = next(line for line in lines if line.endswith("ort-wasm-simd-threaded.wasm  <- over 10 MiB: stored "
                                                         "through Xet (or LFS), as the Hub requires"))
    assert int(wasm.split()[0].replace(",", "")) == (RUNTIME / "ort-wasm-simd-threaded.wasm").stat().st_size
    assert total.split()[2:] == ["in", str(len(sizes)), "files"]
    local = metadata_load(REPO / "README.md")
    assert yaml.safe_load(front) == {"title": f"{local['title']} (in your browser)", "emoji": local["emoji"],
                                     "colorFrom": local["colorFrom"], "colorTo": local["colorTo"], "sdk": "static",
                                     "app_file": "index.html", "license": local["license"],
                                     "short_description": local["short_description"]}
    assert stand_in.log == [] and not list((tmp_path / "hf").glob("**/*.onnx"))


@needs_runtime
def test_deploy_space_static_uploads_the_site_its_large_runtime_through_lfs(stand_in, static_site, tmp_path):
    env = hub_env(tmp_path / "hf", stand_in.url, HF_TOKEN="t")
    app_url = "https://huggingface.co/spaces/alice/demo"
    r = run_py(["-m", "charrnn", "deploy-space", "alice/web", "--static", "--site", str(static_site),
                "--app-url", app_url], env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"{stand_in.url}/spaces/alice/web"
    space = stand_in.repos["space", "alice/web"]
    assert (space["created"]["type"], space["created"]["sdk"]) == ("space", "static")
    assert "hardware" not in space["created"]
    (deploy,) = space["commits"][1:]
    exported = site_files(static_site)
    assert set(deploy["added"]) == set(exported) | {"README.md"}
    assert all(deploy["added"][p] == b for p, b in exported.items() if p != "models.json")
    sent = json.loads(deploy["added"]["models.json"])  # the page links the full app
    assert sent == {**json.loads(exported["models.json"]), "app_url": app_url}
    # The runtime's .wasm (14.8 MB) went as the Hub wants a file over 10 MiB: out of git, by its sha256.
    wasm = exported["ort-wasm-simd-threaded.wasm"]
    assert len(wasm) > 10 * 1024 * 1024 and stand_in.lfs == {hashlib.sha256(wasm).hexdigest(): wasm}
    asked = [(method, urlsplit(path).path) for method, path, _ in stand_in.log]
    assert ("POST", "/spaces/alice/web.git/info/lfs/objects/batch") in asked
    assert ("PUT", f"/lfs-upload/{hashlib.sha256(wasm).hexdigest()}") in asked
    (tmp_path / "README.md").write_bytes(deploy["added"]["README.md"])
    card = SpaceCard.load(tmp_path / "README.md")
    assert (card.data.sdk, card.data.app_file) == ("static", "index.html")
    assert app_url in card.text
    assert all(m["name"] in card.text for m in sent["models"])


@pytest.mark.parametrize("flags, message", [
    (["--site", "{tmp}"], "--site, --models and --app-url describe the static edition: add --static, or leave them "
                          "out"),
    (["--static", "--hardware", "cpu-basic"],
     "--hardware does not apply to a static Space: the visitor's browser runs it, on no hardware of the Hub's; leave "
     "--hardware out"),
    (["--static", "--site", "{tmp}"],
     "{tmp} holds no exported site (no models.json and index.html): write one with python -m charrnn export-web {tmp}, "
     "or leave --site out to export one now"),
    (["--static", "--site", "{tmp}", "--models", "lstm"],
     "--models picks the models of a site exported now: leave it out with --site (the site holds its models), or "
     "leave --site out"),
])
def test_deploy_space_static_refuses_what_does_not_apply_in_one_line(stand_in, tmp_path, flags, message):
    env = hub_env(tmp_path / "hf", stand_in.url, HF_TOKEN="t")
    r = run_py(["-m", "charrnn", "deploy-space", "alice/web", *(f.format(tmp=tmp_path) for f in flags)], env)
    assert r.returncode == 1 and r.stderr == f"error: {message.format(tmp=tmp_path)}\n", r.stderr
    assert stand_in.log == []
