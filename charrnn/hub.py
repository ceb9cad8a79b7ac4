"""The Hugging Face Hub: load a model by name (a local directory or a Hub id), publish a checkpoint,
deploy the demo as a Space, the Gradio app or its static edition (`python -m charrnn push` and `deploy-space`).

Everything goes through huggingface_hub, so HF_TOKEN / `hf auth login`, HF_HOME, HF_HUB_OFFLINE and
HF_ENDPOINT behave as in every Hugging Face tool. Failures become one sentence that says what to do:
CheckpointError when loading, HubError when publishing, never a traceback.
"""
from __future__ import annotations

import json
import os
import re
import time
from contextlib import contextmanager
from pathlib import Path

import torch

from . import space
from .card import model_card
from .checkpoint import CARD, CONFIG, WEIGHTS, CheckpointError, checkpoint_dir, load_dir, read_record
from .record import UNFINISHED
from .mixture import is_mixture, load_mixture
from .model import CharRNN

# The Hub keeps a file over 10 MiB out of git (hub-docs: "files larger than 10MB" need LFS, now Xet): its preupload
# answer sends it through Xet or LFS, and the commit holds a pointer.
HUB_LARGE_FILE = 10 * 1024 * 1024
SPACE_TOP_FILES = ("app.py", "requirements.txt", "README.md")  # what the Space runs, installs and shows
SPACE_CODE = ("charrnn/*.py", "charrnn/**/*.py", "ui/*.py", "ui/**/*.py", "ui/*.css",  # the library, the app's views
              "docs/*.png")  # the pictures the README (the Space's page) shows
SPACE_SKIP = ("**/__pycache__/*", "*/.*", ".*", "**/.*/*",  # caches and hidden (editor, notebook) copies
              "ui/web/*")  # the static edition's page (export-web), not the Gradio app's


class HubError(RuntimeError):
    """Publishing failed; the message says why and what to do."""


def looks_like_repo_id(s: str) -> bool:
    """USER/NAME as the Hub spells ids. Exactly one slash, so ./x, /abs/x and a/b/c stay paths."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if s.count("/") != 1:
        return False
    try:
        validate_repo_id(s)
    except HFValidationError:
        return False
    return True


def _first_line(e: Exception) -> str:
    return next((line for line in str(e).splitlines() if line.strip()), type(e).__name__)


def download_checkpoint(repo_id: str, revision: str | None = None) -> Path:
    """Fetch a model repo's config.json and model.safetensors into the Hub cache; return their directory.

    config.json comes first, so a repo that is not a charrnn checkpoint is refused before any weights
    are fetched; the weights are then fetched at the commit the config came from, so the two match even
    if someone pushes in between. Offline (HF_HUB_OFFLINE=1) a cached copy is used as is.
    """
    import httpx2  # huggingface_hub's HTTP client: its transport errors mean the Hub was not reached
    from huggingface_hub import constants, hf_hub_download
    from huggingface_hub.errors import (EntryNotFoundError, HfHubHTTPError, LocalEntryNotFoundError,
                                        RepositoryNotFoundError, RevisionNotFoundError)

    at = repo_id + (f" (revision {revision})" if revision else "")
    wanted = CONFIG
    try:
        config = Path(hf_hub_download(repo_id, CONFIG, revision=revision, library_name="charrnn"))
        try:
            read_record(config.parent)
        except CheckpointError as e:  # its message names the cache directory; the user knows the repo id
            raise CheckpointError(str(e).replace(str(config.parent), f"the Hub repo {at}")) from None
        wanted = WEIGHTS
        commit = config.parent.name  # the cache keeps each commit's files in snapshots/<commit hash>/
        hf_hub_download(repo_id, WEIGHTS, revision=commit, library_name="charrnn")
    except RepositoryNotFoundError:  # the Hub answers the same for a private repo one may not read
        raise CheckpointError(f"no model repo {repo_id} on the Hub ({constants.ENDPOINT}): check the id; a private or "
                              "gated repo also needs a token that can read it (HF_TOKEN or `hf auth login`)") from None
    except RevisionNotFoundError:
        raise CheckpointError(f"the Hub repo {repo_id} has no revision {revision!r} (a branch, tag or commit)") \
            from None
    except LocalEntryNotFoundError:  # before EntryNotFoundError, which it is too: not cached, Hub not reachable
        if constants.is_offline_mode():
            raise CheckpointError(f"{at} is not in the Hub cache ({constants.HF_HUB_CACHE}) and HF_HUB_OFFLINE is "
                                  "set: unset it to download the model, or pass a local checkpoint directory") from None
        raise CheckpointError(f"cannot reach the Hub at {constants.ENDPOINT} to download {at}, and it is not in the "
                              f"cache ({constants.HF_HUB_CACHE}): check the network (and HF_ENDPOINT), or pass a "
                              "local checkpoint directory") from None
    except EntryNotFoundError:
        raise CheckpointError(f"the Hub repo {at} is not a charrnn checkpoint: it has no {wanted}") from None
    except (HfHubHTTPError, httpx2.TransportError, OSError) as e:  # Hub errors after retries, an unwritable cache
        raise CheckpointError(f"could not download {at} from {constants.ENDPOINT}: {_first_line(e)}") from None
    return config.parent


def load(name: str | os.PathLike, device: str | torch.device = "cpu", revision: str | None = None) -> CharRNN:
    """Load a model from a local checkpoint directory or, if no such directory exists, a Hub id USER/NAME.

    A name that cannot be a Hub id (a name too long for a path, which no id is) never reaches the Hub.
    The model's `origin` says where it came from, as a compressed file names it: {"dir": NAME} (the
    directory's name, never its path: a path says where one machine keeps it) or {"hub": "USER/NAME"}.
    """
    local = checkpoint_dir(Path(name))  # CheckpointError for a name the file system cannot even look up
    if local.exists():
        model = load_mixture(local, device) if is_mixture(read_record(local)) else load_dir(local, device)
        model.origin = {"dir": Path(name).resolve().name}
        return model
    if not looks_like_repo_id(str(name)):
        raise CheckpointError(f"no checkpoint directory {name} (and it is not a Hub id of the form USER/NAME)")
    try:
        path = download_checkpoint(str(name), revision=revision)
    except CheckpointError as e:  # the name may be a mistyped local path as much as a Hub id: say both
        raise CheckpointError(f"no local directory {name}, and {e}") from None
    model = load_dir(path, device)
    model.origin = {"hub": str(name)}
    return model


def _checkpoint_files(path: Path, name: str) -> dict[str, bytes]:
    """Weights, config and a freshly generated card of checkpoint `path`, read so that they belong together.

    Never training_state.pt: the optimizer state is twice the weights and only resumes a run.
    A training run may save over the checkpoint while it is read (save() swaps whole directories), so
    config.json is read again after the weights and the read repeated until both come from one save.
    """
    load(path)  # a checkpoint that does not load is not published; CheckpointError says why
    for _ in range(10):
        try:
            config = (path / CONFIG).read_bytes()
            # A mixture has no weights of its own: its members are published beside it (deploy-space)
            weights = {} if is_mixture(json.loads(config)) else {WEIGHTS: (path / WEIGHTS).read_bytes()}
            if (path / CONFIG).read_bytes() == config:
                return {**weights, CONFIG: config, CARD: model_card(json.loads(config), name).encode()}
        except FileNotFoundError:  # caught between save()'s two renames
            pass
        time.sleep(0.5)
    raise HubError(f"{path} kept changing or lost files while being read; wait for its training run to save and retry")


def write_token(token: str | None = None) -> str:
    """`token`, or the one huggingface_hub finds; HubError saying how to log in if there is none."""
    from huggingface_hub import get_token

    token = token or get_token()  # HF_TOKEN, then the login saved by `hf auth login`
    if not token:
        raise HubError("no Hugging Face token: run `hf auth login` or set HF_TOKEN to a token with write access "
                       "(create one at https://huggingface.co/settings/tokens)")
    return token


@contextmanager
def _hub_errors(doing: str, payment: str = "check the account's plan and billing"):
    """Turn the Hub's refusals of `doing` into a HubError; `payment` says what a plan refusal (HTTP 402) needs."""
    import httpx2
    from huggingface_hub import constants
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    try:
        yield
    except OfflineModeIsEnabled:
        raise HubError(f"{doing} needs the network, but HF_HUB_OFFLINE is set: unset it and retry") from None
    except HfHubHTTPError as e:
        code = e.response.status_code
        if code == 402:
            raise HubError(f"the Hub refused {doing} because of the account's plan (HTTP 402): {payment}") from None
        if code in (401, 403):
            raise HubError(f"the Hub refused {doing} (HTTP {code}): the token is not valid or cannot write to that "
                           "user or organization; run `hf auth login` with a write token, or set HF_TOKEN") from None
        raise HubError(f"the Hub refused {doing}: {_first_line(e)}") from None
    except httpx2.TransportError as e:
        raise HubError(f"cannot reach the Hub at {constants.ENDPOINT} for {doing} ({_first_line(e)}): "
                       "check the network (and HF_ENDPOINT)") from None


def _commit(repo_id: str, repo_type: str, files: dict[str, bytes], message: str, token: str, **create) -> str:
    """Create the repo if needed, then add exactly `files` (path in repo -> content) in one commit."""
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    with _hub_errors(f"publishing {repo_id}"):
        url = api.create_repo(repo_id, repo_type=repo_type, exist_ok=True, **create)
    _upload(api, repo_id, repo_type, files, message)
    return str(url)


def _upload(api, repo_id: str, repo_type: str, files: dict[str, bytes], message: str) -> None:
    from huggingface_hub import CommitOperationAdd

    with _hub_errors(f"publishing {repo_id}"):
        api.create_commit(repo_id, [CommitOperationAdd(p, b) for p, b in sorted(files.items())],
                          commit_message=message, repo_type=repo_type)


def push(checkpoint_dir, repo_id: str, token: str | None = None, private: bool = False) -> str:
    """Publish a checkpoint as the model repo `repo_id`: its weights, config.json and a card. Returns the URL."""
    path = Path(checkpoint_dir)
    if not looks_like_repo_id(repo_id):
        raise HubError(f"{repo_id!r} is not a Hub id of the form USER/NAME")
    if is_mixture(read_record(path)):
        raise HubError(f"{path} is a mixture: it refers to its members by their paths on this disk, which a model "
                       "repo would not hold; push the members instead")
    files = _checkpoint_files(path, repo_id)  # the card is named after the repo, so its usage snippet is right
    token = write_token(token)
    status = json.loads(files[CONFIG]).get("status", "unknown")
    return _commit(repo_id, "model", files, f"charrnn checkpoint {path.name} ({status})", token, private=private)


def space_files(root=".", hardware: str = space.ZEROGPU) -> dict[str, bytes]:
    """Exactly what the Space needs to run on `hardware`, from project directory `root`: path in repo -> content.

    Chosen by name from the working directory with huggingface_hub's own pattern filter (the one
    upload_folder applies), not `git ls-files`: the checkpoints are build outputs that git need not track,
    and anything not named here (tests, data, runs, caches, resume states) stays home. Each checkpoint is
    read so that its files belong together, with a fresh card. README.md and requirements.txt are the
    project's, with the front matter and the torch that `hardware` needs (charrnn/space.py).
    """
    from huggingface_hub.utils import filter_repo_objects

    root = Path(root)
    missing = [f for f in SPACE_TOP_FILES if not (root / f).is_file()]
    if missing or not (root / "charrnn" / "__init__.py").is_file():
        raise HubError(f"{root.resolve()} is not the project directory: it lacks {', '.join(missing) or 'charrnn/'}")
    files = {f: (root / f).read_bytes() for f in SPACE_TOP_FILES}
    meta = space.front_matter(space_metadata(root), hardware)
    files["README.md"] = space.readme(files["README.md"].decode("utf-8-sig"), meta).encode()
    try:
        files["requirements.txt"] = space.requirements(files["requirements.txt"].decode(), hardware).encode()
    except ValueError as e:
        raise HubError(str(e)) from None
    present = [p.relative_to(root).as_posix() for top in ("charrnn", "ui", "docs") if (root / top).is_dir()
               for p in (root / top).rglob("*") if p.is_file()]
    for rel in sorted(filter_repo_objects(present, allow_patterns=SPACE_CODE, ignore_patterns=SPACE_SKIP)):
        files[rel] = (root / rel).read_bytes()
    # Hidden entries are save()'s temporary and previous copies; a directory without config.json is no checkpoint,
    # and a run still training (committed as it goes, to be resumed) is not served.
    ckpts = sorted(d for d in (root / "checkpoints").glob("*") if d.is_dir() and not d.name.startswith(".")
                   and (d / CONFIG).exists() and read_record(d).get("status") not in UNFINISHED
                   ) if (root / "checkpoints").is_dir() else []
    if not ckpts:
        raise HubError("no checkpoint under checkpoints/: train one first (python train.py --preset lstm)")
    for d in ckpts:
        files.update({f"checkpoints/{d.name}/{n}": b for n, b in _checkpoint_files(d, d.name).items()})
    return files


def readme_metadata(root=".") -> dict:
    """The front matter of the project's README.md ({} if it has none)."""
    import yaml
    from huggingface_hub import metadata_load

    try:
        return metadata_load(Path(root) / "README.md") or {}
    except (yaml.YAMLError, ValueError) as e:
        raise HubError(f"README.md's front matter is not a YAML mapping: {_first_line(e)}") from None


def space_metadata(root=".") -> dict:
    """The README's front matter, which configures the Space; refused if the Space could not start."""
    meta = readme_metadata(root)
    if meta.get("sdk") != "gradio":
        raise HubError(f"README.md's front matter must say `sdk: gradio` (it says {meta.get('sdk')!r})")
    if meta.get("app_file", "app.py") != "app.py":
        raise HubError(f"README.md's front matter names app_file {meta['app_file']!r}, but app.py is what is uploaded")
    # The Space installs gradio==sdk_version, then requirements.txt: two different pins cannot both hold.
    pin = re.search(r"^gradio==(\S+)", (Path(root) / "requirements.txt").read_text(), re.MULTILINE)
    if pin and str(meta.get("sdk_version")) != pin.group(1):
        raise HubError(f"README.md says sdk_version {meta.get('sdk_version')} but requirements.txt pins "
                       f"gradio=={pin.group(1)}: make them agree")
    return meta


def space_upload(space_id: str, root=".", hardware: str = space.ZEROGPU) -> tuple[dict[str, bytes], dict]:
    """What deploy_space would upload to `space_id` on `hardware` from project directory `root`: its files and
    the front matter of its README."""
    if not looks_like_repo_id(space_id):
        raise HubError(f"{space_id!r} is not a Hub id of the form USER/SPACE")
    files = space_files(root, hardware)
    return files, space.front_matter(space_metadata(root), hardware)


def _plan_needed(hardware: str) -> str:
    """What allows an account to host a Gradio Space on `hardware` (hub-docs spaces-overview.md, spaces-zerogpu.md)."""
    if hardware == space.ZEROGPU:
        return ("a free account may host 2 ZeroGPU Spaces at most, once its email is verified and it is older than "
                "30 days (a PRO plan allows 10); nothing was uploaded")
    return (f"a Gradio Space on {hardware} needs a PRO plan (Team or Enterprise for an organization), or, on a free "
            "account, ZeroGPU: --hardware zerogpu (2 Spaces at most, verified account older than 30 days); nothing "
            "was uploaded")


def deploy_space(space_id: str, root=".", token: str | None = None, hardware: str = space.ZEROGPU) -> str:
    """Create the Gradio Space `space_id` on `hardware` if needed, switch an existing one to it, then upload
    exactly space_files(root, hardware). Returns the URL.

    An existing Space keeps its hardware when files are uploaded again, so its runtime is read and the
    hardware requested when it differs. Both happen before the upload: a refusal leaves the Space as it was.
    """
    from huggingface_hub import HfApi

    hardware = space.resolve(hardware)
    files, _ = space_upload(space_id, root, hardware)
    api = HfApi(token=write_token(token))
    on = space.describe(hardware)
    with _hub_errors(f"creating the Space {space_id} on {on}", payment=_plan_needed(hardware)):
        url = api.create_repo(space_id, repo_type="space", space_sdk="gradio", space_hardware=hardware,
                              exist_ok=True)
    with _hub_errors(f"reading the hardware of the Space {space_id}"):
        runtime = api.get_space_runtime(space_id)
    if (runtime.requested_hardware or runtime.hardware) != hardware:
        with _hub_errors(f"switching the Space {space_id} to {on}", payment=_plan_needed(hardware)):
            api.request_space_hardware(space_id, hardware)
    _upload(api, space_id, "space", files, f"Deploy the charrnn demo ({on})")
    return str(url)


def static_space_files(site, root=".", app_url: str | None = None) -> tuple[dict[str, bytes], dict]:
    """What deploy_static_space uploads: every file of the site that export-web wrote into `site` (its models.json
    linking the full app at `app_url`, if given) and a README.md whose front matter, returned too, makes the Space a
    static one, named after the project README's in directory `root`."""
    from .web import SITE_JSON, site_json

    site = Path(site)
    if not (site / SITE_JSON).is_file() or not (site / "index.html").is_file():
        raise HubError(f"{site} holds no exported site (no {SITE_JSON} and index.html): write one with "
                       f"python -m charrnn export-web {site}, or leave --site out to export one now")
    exported = json.loads((site / SITE_JSON).read_text(encoding="utf-8"))
    files = {p.relative_to(site).as_posix(): p.read_bytes() for p in sorted(site.rglob("*"))
             if p.is_file() and not any(part.startswith(".") for part in p.relative_to(site).parts)}
    if app_url:  # the page links the full app from its models.json
        files[SITE_JSON] = site_json({**exported, "app_url": app_url})
    meta = space.static_front_matter(readme_metadata(root))
    names = [m["name"] for m in exported["models"]]
    files["README.md"] = space.static_readme(meta, names, app_url or exported.get("app_url")).encode()
    return files, meta


def deploy_static_space(space_id: str, files: dict[str, bytes], token: str | None = None) -> str:
    """Create the static Space `space_id` if needed and upload `files` (static_space_files) in one commit. Returns
    the URL.

    Files the Hub wants out of git (over 10 MiB, like the runtime's .wasm, or binary, like the models) are not
    special here: the Hub's preupload answer marks them "lfs", and huggingface_hub sends their content through
    Xet (hf_xet installed) or git LFS and commits a pointer, as upload_folder does."""
    from huggingface_hub import HfApi

    if not looks_like_repo_id(space_id):
        raise HubError(f"{space_id!r} is not a Hub id of the form USER/SPACE")
    api = HfApi(token=write_token(token))
    with _hub_errors(f"creating the static Space {space_id}"):
        url = api.create_repo(space_id, repo_type="space", space_sdk="static", exist_ok=True)
    _upload(api, space_id, "space", files, "Deploy the charrnn static edition (the models run in the browser)")
    return str(url)


def listing(files: dict[str, bytes]) -> str:
    """One line per file; a checkpoint's config.json line says whether its training finished, a large file's that the
    Hub stores it outside git."""
    def note(path: str, content: bytes) -> str:
        if len(content) > HUB_LARGE_FILE:
            return "  <- over 10 MiB: stored through Xet (or LFS), as the Hub requires"
        if not (path.startswith("checkpoints/") and path.endswith(CONFIG)):
            return ""
        status = json.loads(content).get("status", "unknown")
        return "" if status == "complete" else f"  <- training not finished (status: {status})"

    total = sum(len(b) for b in files.values())
    return "\n".join([f"  {len(b):>12,} B  {p}{note(p, b)}" for p, b in sorted(files.items())]
                     + [f"  {total:>12,} B  in {len(files)} files"])
