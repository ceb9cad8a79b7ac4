"""What a Hugging Face Space of the demo runs on: its hardware, and the Python and PyTorch that hardware needs; or,
for the static edition, the visitor's browser (`sdk: static`).

The one place the Space's versions are written: `deploy-space` (hub.py) writes them into the Space's README
front matter and requirements.txt, and CI (.ci/run) installs the same requirements for its second run, so
the torch a ZeroGPU Space pins is a torch the tests ran on.
"""
from __future__ import annotations

import re

import yaml

ZEROGPU = "zero-a10g"  # huggingface_hub's name for ZeroGPU (SpaceHardware.ZERO_A10G), whatever GPU backs it now
ALIASES = {"zerogpu": ZEROGPU}
# ZeroGPU runs only these (hub-docs, spaces-zerogpu.md): PyTorch 2.8.0, 2.9.1, 2.10.0 or 2.11.0 and Python
# 3.10.13 or 3.12.12; the newest of each.
ZEROGPU_TORCH = "2.11.0"
ZEROGPU_PYTHON = "3.12.12"
SPACES = "0.51.3"  # the `spaces` package: @spaces.GPU asks ZeroGPU for a GPU, and is inert elsewhere
# Elsewhere the Space runs the Python the project is developed and tested on (the Hub's default is 3.10).
PYTHON = "3.11"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
CPU = ("cpu-basic", "cpu-upgrade")


def hardware_names() -> list[str]:
    """What --hardware accepts: huggingface_hub's SpaceHardware values, and the aliases."""
    from huggingface_hub import SpaceHardware

    return [*ALIASES, *(h.value for h in SpaceHardware)]


def resolve(hardware: str) -> str:
    """The Hub's name for `hardware` (zerogpu -> zero-a10g); ValueError for a name the Hub does not know."""
    name = ALIASES.get(hardware, hardware)
    if name not in hardware_names():
        raise ValueError(f"unknown Space hardware {hardware!r}: choose one of {', '.join(hardware_names())}")
    return name


def describe(hardware: str) -> str:
    return "ZeroGPU (zero-a10g)" if hardware == ZEROGPU else hardware


def python_version(hardware: str) -> str:
    return ZEROGPU_PYTHON if hardware == ZEROGPU else PYTHON


def requirements(local: str, hardware: str) -> str:
    """The Space's requirements.txt from the project's (`local`): the same pins, with the torch `hardware` needs.

    ZeroGPU: the torch it supports (the CUDA build from PyPI) and `spaces`. CPU hardware: PyTorch's CPU-only
    build (`+cpu`) of the local pin from PyTorch's own index, so that the Space does not download the CUDA
    libraries (several GB). Other GPUs: the local pin from PyPI, a CUDA build.
    """
    pin = re.search(r"^torch==(\S+)$", local, re.MULTILINE)
    if not pin:
        raise ValueError("requirements.txt pins no torch==VERSION: the Space's torch replaces that line")
    version = pin.group(1).split("+")[0]
    by = "# Written by `python -m charrnn deploy-space`"
    if hardware == ZEROGPU:
        body = local.replace(pin.group(0), f"torch=={ZEROGPU_TORCH}")
        return (f"{by} for ZeroGPU: a torch that ZeroGPU supports, and `spaces`.\n"
                f"{body.rstrip(chr(10))}\nspaces=={SPACES}\n")
    if hardware in CPU:
        body = local.replace(pin.group(0), f"torch=={version}+cpu")
        return f"{by}: PyTorch's CPU-only build for a CPU Space.\n--extra-index-url {TORCH_CPU_INDEX}\n{body}"
    return f"{by}: PyTorch's CUDA build for a GPU Space.\n{local}"


def front_matter(meta: dict, hardware: str) -> dict:
    """The Space's README front matter: the project README's (title, emoji, sdk, sdk_version, ...), with the
    Python that `hardware` runs."""
    return {**meta, "python_version": python_version(hardware)}


def readme(text: str, meta: dict) -> str:
    """README `text` with its front matter replaced by `meta`."""
    from huggingface_hub.repocard import REGEX_YAML_BLOCK

    match = REGEX_YAML_BLOCK.search(text)
    body = text[match.end():] if match else text
    return f"---\n{yaml.safe_dump(meta, sort_keys=False, allow_unicode=True)}---\n{body}"


# What a static Space keeps of the project README's front matter, in this order; it has no SDK version, Python or
# hardware (the visitor's browser runs it).
STATIC_KEYS = ("title", "emoji", "colorFrom", "colorTo", "sdk", "app_file", "license", "short_description")


def static_front_matter(meta: dict) -> dict:
    """A static Space's front matter from the project README's (`meta`): its title (marked as the in-browser
    edition), emoji, colours, licence and description, with `sdk: static` serving index.html."""
    meta = {**meta, "sdk": "static", "app_file": "index.html"}
    if "title" in meta:
        meta["title"] = f"{meta['title']} (in your browser)"
    return {k: meta[k] for k in STATIC_KEYS if k in meta}


def static_readme(meta: dict, models: list[str], app_url: str | None) -> str:
    """The static Space's README: its front matter `meta`, what it is, the full app's link if there is one."""
    full = f"\n\nThe full app also shows what one prediction leans on and reads with test-time methods: {app_url}" \
        if app_url else ""
    return (f"---\n{yaml.safe_dump(meta, sort_keys=False, allow_unicode=True)}---\n\n"
            f"# {meta.get('title', 'charrnn')}\n\n"
            "The static edition of charrnn: character-level networks trained on Molière's plays "
            f"({', '.join(models)}) write, compare and score text in your own browser, with ONNX Runtime Web. Nothing "
            f"you type leaves the page, and the Space needs no GPU.{full}\n\n"
            "Written by `python -m charrnn export-web` and published by "
            "`python -m charrnn deploy-space USER/SPACE --static`.\n")
