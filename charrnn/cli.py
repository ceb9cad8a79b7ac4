"""The command line, `python -m charrnn COMMAND ...`: every command of the library (train.py trains).

    sample        write text with a model
    score         a checkpoint's loss on the test split, by piece and by line
    dynamic       the test split read as the paper's dynamic model (tuned off the test split; --record)
    krause        the test split read with Krause et al.'s dynamic evaluation (tuned off the test split; --record)
    cache         the test split read with a continuous cache (tuned off the test split; --record)
    combined      the network, its cache and counts, mixed (tuned off the test split; --record)
    mixing        context mixing per binary decision of every reading and text model (tuned off the test split; --record)
    inside        the memory horizon and the units that mean something (off the test split; --record)
    writing       the writing form (int8, bf16 or float32) fastest on this CPU, and its test loss (--record)
    mix           a mixture of checkpoints, its weights fitted on their validation slice, measured and saved
    push          publish a checkpoint as a Hugging Face model repo
    deploy-space  publish the demo as a Hugging Face Space (the Gradio app, or with --static its static edition)
    export-web    the static edition: a site that runs the models in the visitor's browser (ONNX Runtime Web)
    compress      compress a text file with a model (an arithmetic coder driven by its predictions)
    decompress    the text back, exactly
    bench         benchmarks: `bench train`, `bench app`, `bench ddp`, `bench compress`, `bench testtime`,
                  `bench web`

Each command parses its flags, calls the library, and turns the library's errors (ValueError, OSError,
HubError) into one line on stderr and exit status 1.
"""
from __future__ import annotations

import argparse
import os
import shlex
import stat
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import torch

from . import compress as coder
from . import crnz, fast, inside, space, testtime
from .checkpoint import CheckpointError, read_record
from .data import DEFAULT_DATA, check_same_corpus, read_text, resolve_corpus, sha256_of, split
from .distributed import cpu_threads
from .flags import add_flags, given
from .hub import (HubError, deploy_space, deploy_static_space, listing, load, looks_like_repo_id, push,
                  space_upload, static_space_files, write_token)
from .mixture import build, is_mixture
from .presets import PRESETS
from .record import recorded_nats
from .sample import configure_cpu_for_sampling, generate
from .scoring import char_losses, costly_lines, evaluate

LINES_HELP = "also show the N lines whose occurrences cost the most in all, with the cost of the first and the last"


def print_costly_lines(text: str, losses, top: int) -> None:
    """Print costly_lines, each line's share of the text's total loss beside it."""
    if top <= 0:
        return
    losses = torch.as_tensor(losses, dtype=torch.float64)  # once: costly_lines takes it as it is
    total = losses.sum().item()
    print(f"  the {top} costliest lines, in nats (each with its line break):")
    for e in costly_lines(text, losses, top):
        print(f"  {e['nats']:>9,.0f} = {e['count']:>4} x {e['nats'] / e['count']:5.1f} ({100 * e['nats'] / total:4.1f} % "
              f"of the loss; first {e['first']:.1f}, last {e['last']:.1f})  {e['line'][:50]!r}")


def _corpus_flags(p: argparse.ArgumentParser, checkpoint: str, lines: bool = True) -> None:
    p.add_argument("--checkpoint", default=checkpoint, help="checkpoint directory or Hub id USER/NAME")
    p.add_argument("--data", default=DEFAULT_DATA, help="the corpus the model was trained on (path or URL)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for PyTorch (default: PyTorch's)")
    if lines:
        p.add_argument("--lines", type=int, default=0, help=LINES_HELP)


def _model_and_texts(args) -> tuple:
    """The model and the corpus's (train, test) split the command line names; with --record, the corpus must be
    the one the model was trained on, as the figures recorded beside its own are measured on its test split."""
    if args.threads:
        torch.set_num_threads(args.threads)
    model = load(args.checkpoint)
    corpus = resolve_corpus(args.data)
    if getattr(args, "record", False):
        check_same_corpus(corpus, sha256_of(corpus), model.record.get("training") or {}, f"{args.checkpoint} was",
                          "pass --data with that corpus to record, or leave --record out")
    return model, *split(read_text(corpus))


def sample(args) -> None:
    configure_cpu_for_sampling()
    model = load(args.checkpoint)
    sys.stdout.write(args.prompt)
    for ch in generate(model, args.prompt, args.length, args.temperature, args.top_k, args.top_p, args.seed):
        sys.stdout.write(ch)
        sys.stdout.flush()
    sys.stdout.write("\n")


def score(args) -> None:
    model, _, test = _model_and_texts(args)
    r = evaluate(model, test)
    recorded = recorded_nats(model.record)
    print(f"{args.checkpoint}: test {r['nats']:.4f} nats/char, {r['bpc']:.4f} bits/char over {r['chars']:,} characters"
          + (f" (recorded: {recorded:.4f})" if recorded is not None else ""))
    for i in range(0, len(test), args.pieces or len(test) + 1):
        piece = test[i : i + args.pieces]
        if len(piece) > 1:
            print(f"  characters {i:>7,}+: {evaluate(model, piece)['nats']:.3f} nats/char  {piece[:50]!r}")
    if args.lines > 0:  # per-character losses from one pass (evaluate reads in parallel streams)
        print_costly_lines(test, char_losses(model, test), args.lines)


def read_test_split(method: testtime.Method, args) -> None:
    """A test-time method's command: tune its settings off the test split, read the test split, --record."""
    model, train_text, test_text = _model_and_texts(args)
    if args.record:  # before the long computation: say now that the result could not be recorded
        testtime.check_recordable(args.checkpoint, model.record)
    tune_on, tune_words = testtime.tuning_text(train_text, model.record.get("training", {}))
    settings = method.Settings(**given(args, method.Settings))
    if any(getattr(settings, name) is None for name in method.tuned()):
        print(f"choosing {' and '.join(method.tuned())} on {tune_words}:", flush=True)
    reading, losses = testtime.read(method, model, test_text, tune_on, tune_words, settings,
                                    log=lambda s: print(s, flush=True),
                                    train_text=testtime.trained_on(train_text, model.record.get("training", {})))
    static = recorded_nats(model.record)
    chosen = ", ".join(f"{name} {reading[name]:g}" for name in method.tuned())
    print(f"{args.checkpoint}: test read with {method.label}: {reading['test']['nats']:.4f} nats/char, "
          f"{reading['test']['bpc']:.4f} bits/char ({chosen}; on {tune_words}: {min(reading['tuning'].values()):.4f})"
          + (f"; weights alone {static:.4f}" if static is not None else ""))
    print_costly_lines(test_text, losses, args.lines)
    if args.record:
        testtime.record(model, args.checkpoint, method.key, reading)
        print(f"recorded in {args.checkpoint}/config.json and its model card")


def look_inside(args) -> None:
    """The inside command: the memory horizon and the best unit per feature, printed and (--record) recorded."""
    if args.record:  # before the long computation: say now that the result could not be recorded
        inside.check_recordable(args.checkpoint)
    model, train_text, test_text = _model_and_texts(args)
    result = inside.inside_record(model, train_text, test_text, args.positions, args.max_distance, args.warmup,
                                  log=lambda s: print(s, flush=True))
    h, u = result["horizon"], result.get("units")  # no units: a cell without units to read (the transformer)
    print(f"{args.checkpoint}: dependence on the character k back, relative to k = 1 ({h['positions']} positions):")
    print("  " + "  ".join(f"k={k}: {h['relative'][k - 1]:.3g}" for k in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
                           if k <= h["max_distance"]))
    beyond = f"more than {h['max_distance']}"
    print("  below " + ", ".join(f"{name} at k = {k or beyond}" for name, k in h["below"].items()))
    if u is not None:
        print(f"best unit per feature (chosen on {u['chosen_on']}; AUC on {u['measured_on']}):")
        for name, f in u["features"].items():
            best = f["units"][0] if f["units"] else None
            print(f"  {name:<16} {f['share']:6.1%} of the characters  "
                  + (f"{best['name']:<20} {'+-'[best['sign'] < 0]}  AUC {best['auc']}" if best else "never holds there"))
        print(f"  {u['features_above_bar']} of {len(u['features'])} features have a unit with AUC >= {u['auc_bar']}")
    if args.record:
        command = (f"python -m charrnn inside --checkpoint {args.checkpoint} --data {args.data} --positions "
                   f"{args.positions} --max-distance {args.max_distance} --warmup {args.warmup} --record")
        inside.write_record(model, args.checkpoint, {"command": command, **result})
        print(f"recorded in {args.checkpoint}/config.json (inside) and its model card")


def writing(args) -> None:
    """Time each writing form's one-character step here, evaluate the chosen form on the test split, --record."""
    model, _, test = _model_and_texts(args)
    if args.record:  # before the long computation: say now that the result could not be recorded
        testtime.check_recordable(args.checkpoint, model.record)
    threads, onednn = torch.get_num_threads(), torch.backends.mkldnn.enabled
    configure_cpu_for_sampling()  # the step timed as the app writes: one thread, no oneDNN
    try:
        form, steps = fast.choose_form(model)
    finally:  # process-wide settings: as they were for the evaluation, and for a caller that imported the CLI
        torch.set_num_threads(args.threads or threads)
        torch.backends.mkldnn.enabled = onednn
    form = args.form or form
    load = os.getloadavg()[0]  # other processes slow the steps down: the record says how busy the machine was
    print(f"one-character step on {fast.cpu_name()} (load average {load:.1f}): "
          + ", ".join(f"{f} {us:,.0f} µs" for f, us in steps.items()) + f"; writing form: {form}", flush=True)
    r = evaluate(fast.for_writing(model, form), test)
    static = recorded_nats(model.record)
    print(f"{args.checkpoint}: test in the {form} writing form {r['nats']:.4f} nats/char, {r['bpc']:.4f} bits/char"
          + ("" if static is None else f" (float32 weights: {static:.4f}, change {r['nats'] - static:+.4f})"))
    if args.record:
        testtime.record(model, args.checkpoint, "writing", {"form": form, "test": r, "cpu": fast.cpu_name(),
                                                             "load_average": round(load, 1),
                                                             "step_us": {f: round(us, 1) for f, us in steps.items()}})
        print(f"recorded in {args.checkpoint}/config.json (final.writing)")


def mix(args) -> None:
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    if out.is_dir() and any(out.iterdir()):  # saving replaces the directory: only an earlier mixture may go
        try:
            replaceable = is_mixture(read_record(out))
        except CheckpointError:
            replaceable = False
        if not replaceable:
            raise ValueError(f"{out} holds files that are not a mixture, and saving would replace them: choose a new "
                             "or empty directory")
    corpus = resolve_corpus(args.data)
    train_text, test_text = split(read_text(corpus))
    sha256 = sha256_of(corpus)
    for member in args.members:  # the mixture's losses are measured on the split its members were trained on
        check_same_corpus(corpus, sha256, read_record(member).get("training") or {}, f"{member} was",
                          "pass --data with the corpus the members were trained on")
    info = {"command": "python -m charrnn " + shlex.join(args.argv), "corpus": args.data,
            "corpus_sha256": sha256, "device": f"cpu ({cpu_threads()})"}
    build(args.members, args.out, train_text, test_text, fit=not args.equal, info=info)
    print(f"saved the mixture in {args.out}; serve it with python app.py --model {args.out}")


def deploy(args) -> None:
    if args.static:
        return deploy_static(args)
    if args.site or args.models or args.app_url:
        raise ValueError("--site, --models and --app-url describe the static edition: add --static, or leave them out")
    hardware = space.resolve(args.hardware or "zerogpu")
    if args.dry_run:
        import yaml

        files, meta = space_upload(args.space_id, ".", hardware)
        print(f"would upload to the Space {args.space_id} (sdk gradio), hardware {space.describe(hardware)}:\n"
              f"{listing(files)}\n"
              f"front matter of README.md:\n{yaml.safe_dump(meta, sort_keys=False, allow_unicode=True)}"
              f"requirements.txt for the Space:\n{files['requirements.txt'].decode()}", end="")
    else:
        print(deploy_space(args.space_id, hardware=hardware))


def deploy_static(args) -> None:
    """deploy-space --static: the site of --site, or one exported now into a temporary directory, as a static Space."""
    import tempfile

    import yaml

    if args.hardware:
        raise ValueError("--hardware does not apply to a static Space: the visitor's browser runs it, on no hardware "
                         "of the Hub's; leave --hardware out")
    if args.site and args.models:
        raise ValueError("--models picks the models of a site exported now: leave it out with --site (the site "
                         "holds its models), or leave --site out")
    if not looks_like_repo_id(args.space_id):
        raise ValueError(f"{args.space_id!r} is not a Hub id of the form USER/SPACE")
    if not args.dry_run:
        write_token()  # before the export: say now that the upload could not happen
    import app  # the Gradio app's modules: after the checks above, which then answer without importing gradio

    with tempfile.TemporaryDirectory() as tmp:
        site = args.site or _export(args.models or WEB_MODELS, Path(tmp) / "site", args.app_url)[0]
        files, meta = static_space_files(site, app.HERE, args.app_url)
        if args.dry_run:
            print(f"would upload to the Space {args.space_id} (sdk static, no hardware: it runs in the browser):\n"
                  f"{listing(files)}\n"
                  f"front matter of README.md:\n{yaml.safe_dump(meta, sort_keys=False, allow_unicode=True)}", end="")
        else:
            print(deploy_static_space(args.space_id, files))


# The static edition's default set: the story's models whose files weigh 14.8 MB in all (gru-large would add 9 MB).
WEB_MODELS = ["seed", "paper-rnn", "gru", "lstm"]


def _web_models(names: list[str]) -> dict[str, str]:
    """The checkpoints named on the command line by the names the page shows: a shipped one by the app's name."""
    import app  # the shipped models' names and order, as the app shows them

    shipped = {Path(path).name: (label, str(path)) for label, path in app.SHIPPED.items()}
    return dict(shipped.get(name, (name, name)) for name in names)


def web_loss_classes() -> list:
    """The app's classes of a scored character's cost (ui/render.py), as the static page colours them."""
    from ui.render import LOSS_CLASSES, LOSS_COLORS

    return [[None if bound == float("inf") else bound, label, color]
            for (bound, label), color in zip(LOSS_CLASSES, LOSS_COLORS)]


def web_charts(models: dict) -> dict[str, str]:
    """The app's charts over `models`, drawn now as SVG by its own code: Learning's test bars and loss curves, and
    Inside's memory horizons with their table (Markdown)."""
    from ui.inside import Inside
    from ui.learned import Learned
    from ui.validate import Catalog

    catalog = Catalog(models)
    learned, (horizon, horizon_table) = Learned(catalog), Inside(catalog).all_horizons()
    return {"bars": learned.test_bars(), "curves": learned.loss_curves(), "horizon": horizon,
            "horizon_table": horizon_table}


def web_views(models: dict) -> tuple[dict[str, dict], dict]:
    """What the page shows per model as the app does, made now by the app's own code, Markdown as HTML: Learning's
    key figures and training samples, and the units Inside shades a text by (ui/inside.py, ui/learned.py); and
    what the Inside view needs for every model (its example, input limit, colours and legend)."""
    from markdown_it import MarkdownIt

    from ui import inside as inside_view
    from ui.learned import Learned
    from ui.validate import Catalog

    md = MarkdownIt("commonmark")
    catalog = Catalog(models)
    learned, looking = Learned(catalog), inside_view.Inside(catalog)
    per_model = {}
    for name in models:
        units = looking.recorded_units(name)
        if units:
            units["notes"] = {i: md.renderInline(n) for i, n in units["notes"].items()}
            for f in units["features"]:
                f["note"] = md.renderInline(f["note"])
        per_model[name] = {"key_figures": md.render(learned.key_figures(name)),
                           "samples": [[md.renderInline(caption), play]
                                       for caption, play in learned.training_samples(name)],
                           "units": units}
    page = {"example": inside_view.EXAMPLE, "max_chars": inside_view.MAX_INSIDE_CHARS,
            "positive": inside_view.POSITIVE, "negative": inside_view.NEGATIVE, "legend": inside_view.SHADE_LEGEND}
    return per_model, page


def _export(names: list[str], out: Path, app_url: str | None) -> tuple[Path, list[Path]]:
    """The static site of the models `names` (as --models names them) written into `out`: (out, the files written)."""
    import app
    from ui import limits
    from .web import export_site

    models = {label: load(source) for label, source in _web_models(names).items()}
    return Path(out), export_site(models, out, app.HERE / "ui" / "web", limits.as_dict(), app_url, web_loss_classes(),
                                  web_charts(models), *web_views(models))


def export_web(args) -> None:
    _, written = _export(args.models, args.out, args.app_url)
    sizes = {f: f.stat().st_size for f in written}
    model_bytes = sum(n for f, n in sizes.items() if f.suffix == ".onnx")
    print(f"wrote {len(written)} files ({sum(sizes.values()) / 1e6:.1f} MB; the models {model_bytes / 1e6:.1f} MB) "
          f"to {args.out}\nserve it with any static file server, e.g. "
          f"python -m http.server -d {shlex.quote(str(args.out))} 8000")


def _write_output(path: str, data: bytes) -> None:
    """Write `path` whole or not at all: a failure or a kill leaves no half-written file (nor harms an old one).

    "-" is standard output. A symlink is followed (the file it points to is replaced, not the link); a special
    file (a FIFO, a terminal) is written directly, as no rename can replace it."""
    if path == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    try:
        mode = os.stat(path).st_mode  # through symlinks, /dev/stdout's to a pipe too
    except FileNotFoundError:  # a new file, or a symlink to one
        mode = stat.S_IFREG
    if stat.S_ISDIR(mode):
        raise ValueError(f"{path} is a directory: name the file to write")
    if not stat.S_ISREG(mode):
        with open(path, "wb") as f:
            f.write(data)
        return
    target = Path(os.path.realpath(path))
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def _opened(path: str):
    """`path` open for reading in binary, "-" standard input."""
    if path == "-":
        yield sys.stdin.buffer
    else:
        with open(path, "rb") as f:
            yield f


def _not_the_input(args) -> None:
    """Refuse an output that is the input itself (by a symlink or a hard link too): writing it would lose the input."""
    try:
        same = "-" not in (args.input, args.output) and os.path.samefile(args.input, args.output)
    except OSError:  # the output does not exist yet (or the input does not: reading it says so)
        same = False
    if same:
        raise ValueError(f"{args.output} is the input file {args.input} itself, which writing would destroy: name "
                         "another output file")


def _beside(output: str):
    """Where a command's summary goes: stdout, unless the output went there (-, a pipe, a terminal)."""
    return sys.stdout if output != "-" and os.path.isfile(output) else sys.stderr


def _progress(total: int | None):
    """A progress bar of characters coded, gone once done (a text takes minutes: a few hundred characters/s)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="char", unit_scale=True, dynamic_ncols=True, leave=False)


def compress(args) -> None:
    _not_the_input(args)
    with _opened(args.input) as f:
        raw = coder.read_text(f, args.max_chars)
    model = load(args.checkpoint)
    t = time.perf_counter()
    with _progress(None) as bar:
        data = coder.compress_text(model, raw, args.adapt, progress=bar.update, max_chars=args.max_chars)
    seconds = time.perf_counter() - t
    _write_output(args.output, data)
    chars = coder.read_header(data, args.max_chars)[0].chars
    print(f"{args.input}: {chars:,} characters ({len(raw):,} bytes) -> {args.output}: {len(data):,} bytes, "
          f"{8 * len(data) / max(chars, 1):.4f} bits/char ({args.checkpoint}, adapt {args.adapt}; {seconds:.1f} s)",
          file=_beside(args.output))


def decompress(args) -> None:
    _not_the_input(args)
    with _opened(args.input) as f:  # the header is checked before the rest is read, the rest read no further
        header, payload = crnz.read(f, args.max_chars)
    checkpoint = args.checkpoint or coder.find_checkpoint(header)  # never a Hub id out of the file
    model = load(checkpoint)
    with _progress(header.chars) as bar:
        text = coder.decode(model, header, payload, progress=bar.update)
    _write_output(args.output, text.encode("utf-8"))
    print(f"{args.input} -> {args.output}: {header.chars:,} characters, checked against the file's sha256 "
          f"({checkpoint}, adapt {header.adapt})", file=_beside(args.output))


def _int_list(text: str) -> tuple[int, ...]:
    """A comma-separated list of integers, e.g. "4,64" (argparse reports a ValueError as an invalid value)."""
    return tuple(int(s) for s in text.split(","))


def bench_train(args) -> None:
    from .bench.train import bench_sweep, bench_training

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.sequence_lengths:
        bench_sweep(list(args.sequence_lengths), list(args.batch_sizes or (1, 4, 64)), args.steps, args.record)
    else:
        bench_training(args.steps, args.presets, args.batch_sizes)


def bench_quick(args) -> None:
    from .bench.quick import run

    run(args.data, args.seconds, args.nanogpt, args.threads)


def bench_ddp(args) -> None:
    from .bench.ddp import bench_ddp as run

    run(args.preset, args.steps, args.rounds)

def bench_testtime(args) -> None:
    from .bench.testtime import bench_testtime

    if args.threads:
        torch.set_num_threads(args.threads)
    bench_testtime(args.checkpoint, args.data, args.chars)


def bench_app(args) -> None:
    from .bench.app import run

    run(args.reps, args.length, args.rate_length, args.clients, args.screenshots)


def bench_web(args) -> None:
    from .bench.web import bench_web

    checkpoints = _web_models(args.models)
    if args.site is None:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            export_web(argparse.Namespace(out=tmp, models=args.models, app_url=None))
            bench_web(Path(tmp), checkpoints, args.reps, args.length, args.data, args.chars)
    else:
        bench_web(Path(args.site), checkpoints, args.reps, args.length, args.data, args.chars)


def bench_compress(args) -> None:
    from .bench.compress import run

    checkpoints = args.models or sorted(str(p.parent) for p in Path("checkpoints").glob("*/config.json"))
    run(checkpoints, args.modes, args.data, tools=not args.no_tools)


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """Every flag's default in its help, but where it is None or False (nothing to show)."""

    def _get_help_string(self, action):
        return action.help if action.default in (None, False) else super()._get_help_string(action)


def parser() -> argparse.ArgumentParser:
    fmt = _Help
    p = argparse.ArgumentParser(prog="python -m charrnn", formatter_class=fmt, description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    c = sub.add_parser("sample", formatter_class=fmt, help="write text with a model")
    c.add_argument("--checkpoint", default="checkpoints/lstm", help="checkpoint directory or Hub id USER/NAME")
    c.add_argument("--prompt", default="", help="text to continue (default: start of a line)")
    c.add_argument("--length", type=int, default=500, help="characters to generate")
    c.add_argument("--temperature", type=float, default=0.8, help="0 = greedy, 1 = the model's distribution")
    c.add_argument("--top-k", type=int, default=0, help="sample among the k most likely characters (0 = all)")
    c.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass (1 = off)")
    c.add_argument("--seed", type=int, default=None, help="random seed for reproducible text")
    c.set_defaults(run=sample)

    c = sub.add_parser("score", formatter_class=fmt, help="a checkpoint's loss on the test split (last 10 %%)")
    _corpus_flags(c, "checkpoints/lstm")
    c.add_argument("--pieces", type=int, default=0, help="also show the loss of consecutive pieces of this many "
                                                          "characters, to see where the test text is hard")
    c.set_defaults(run=score)

    for method in testtime.METHODS.values():
        c = sub.add_parser(method.key, formatter_class=fmt, help=f"the test loss with {method.label}",
                           description=f"The test loss of a checkpoint with {method.label}: {method.prose}. "
                                       "Settings left out are chosen on the checkpoint's validation slice (or the end "
                                       "of its training split), never on the test split.")
        _corpus_flags(c, "checkpoints/gru-large")
        c.add_argument("--record", action="store_true", help=f"write the result into the checkpoint's config.json "
                                                             f"(final.{method.key}) and model card")
        add_flags(c.add_argument_group(f"{method.label} settings"), method.Settings)
        c.set_defaults(run=lambda args, method=method: read_test_split(method, args))

    c = sub.add_parser("inside", formatter_class=fmt, help="the memory horizon and the units that mean something",
                       description="How far back a model's predictions look (the gradient of log p(x_t) with respect "
                                   "to the input k characters back, averaged over positions of the validation slice "
                                   "or the end of the training split) and, for each feature of play text, the hidden "
                                   "units whose activation alone tells it best (ROC AUC, on text the model did not "
                                   "train on).")
    c.add_argument("--checkpoint", default="checkpoints/gru-large", help="checkpoint directory or Hub id USER/NAME")
    c.add_argument("--data", default=DEFAULT_DATA, help="the corpus the model was trained on (path or URL)")
    c.add_argument("--threads", type=int, default=None, help="CPU threads for PyTorch (default: PyTorch's)")
    c.add_argument("--positions", type=int, default=256, help="positions the memory horizon is averaged over")
    c.add_argument("--max-distance", type=int, default=inside.horizon.MAX_DISTANCE,
                   help="distances measured: 1 to this")
    c.add_argument("--warmup", type=int, default=inside.horizon.WARMUP,
                   help="characters read before each position's window, to warm its state up")
    c.add_argument("--record", action="store_true", help="write the result into the checkpoint's config.json "
                                                         "(inside) and model card")
    c.set_defaults(run=look_inside)

    c = sub.add_parser("writing", formatter_class=fmt, help="the writing form (charrnn.fast) that is fastest on this "
                                                            "CPU, and its test loss",
                       description="Times a one-character step of a checkpoint in each writing form (int8, bf16, "
                                   "float32; see charrnn/fast.py) on this CPU, evaluates the fastest (or --form) on "
                                   "the test split, and with --record writes both into its config.json "
                                   "(final.writing), whence charrnn.for_writing takes the form.")
    _corpus_flags(c, "checkpoints/lstm", lines=False)
    c.add_argument("--form", choices=fast.FORMS, help="this form instead of the fastest")
    c.add_argument("--record", action="store_true", help="write the form and its test loss into the checkpoint's "
                                                         "config.json (final.writing)")
    c.set_defaults(run=writing)

    c = sub.add_parser("mix", formatter_class=fmt, help="a mixture of checkpoints (their weighted mean distribution), "
                                                        "measured and saved as a checkpoint that refers to them")
    c.add_argument("members", nargs="+", help="checkpoint directories trained on the same split")
    c.add_argument("--out", required=True, help="directory of the mixture's checkpoint (no weights: a few kB)")
    c.add_argument("--data", default=DEFAULT_DATA, help="the corpus the members were trained on (path or URL)")
    c.add_argument("--equal", action="store_true", help="equal weights (default: fitted on the members' shared "
                                                        "validation slice, never the test split)")
    c.add_argument("--threads", type=int, default=None, help="CPU threads for PyTorch (default: PyTorch's)")
    c.set_defaults(run=mix)

    c = sub.add_parser("push", formatter_class=fmt, help="upload a checkpoint as a Hugging Face model repo "
                                                         "(weights, config.json, model card)")
    c.add_argument("checkpoint", help="checkpoint directory, e.g. checkpoints/lstm")
    c.add_argument("repo_id", metavar="USER/NAME", help="model repo to create or update")
    c.add_argument("--private", action="store_true", help="create the repo private (an existing repo keeps its "
                                                          "visibility)")
    c.set_defaults(run=lambda args: print(push(args.checkpoint, args.repo_id, private=args.private)))

    c = sub.add_parser("deploy-space", formatter_class=fmt, help="upload the demo (run from the project directory) "
                                                                 "as a Gradio Space, or its static edition (--static)")
    c.add_argument("space_id", metavar="USER/SPACE", help="Space to create or update")
    c.add_argument("--hardware", choices=space.hardware_names(), default=None, metavar="HARDWARE",
                   help="what the Gradio Space runs on: zerogpu (zero-a10g, the default and the free way: 2 Spaces on "
                        "a free account), cpu-basic, cpu-upgrade (a PRO plan), or a GPU; an existing Space is switched "
                        "to it. Choices: %(choices)s")
    c.add_argument("--dry-run", action="store_true", help="show the hardware, the files with their sizes, the front "
                                                          "matter and the requirements; contact nobody")
    static = c.add_argument_group("the static edition (export-web's site: the models run in the visitor's browser, on "
                                  "no hardware, with no GPU quota)")
    static.add_argument("--static", action="store_true", help="publish the static edition as a static Space "
                                                              "(sdk: static)")
    static.add_argument("--site", metavar="DIR", help="a site export-web wrote (default: export --models into a "
                                                      "temporary directory)")
    static.add_argument("--models", nargs="+", metavar="NAME", help="as export-web's (default: "
                                                                    f"{' '.join(WEB_MODELS)})")
    static.add_argument("--app-url", metavar="URL", help="the full (Gradio) app, linked from the page and the README")
    c.set_defaults(run=deploy)

    c = sub.add_parser("export-web", formatter_class=fmt, help="write the static edition of the demo: the models "
                                                               "run in the visitor's browser (ONNX Runtime Web)",
                       description="Write a static site (any static file server serves it; no request leaves it) "
                                   "that runs the models in the browser: each model as an ONNX step function with "
                                   "its vocabulary and record's figures, the page (ui/web) and the runtime's files "
                                   "(`npm ci` in ui/web first).")
    c.add_argument("out", metavar="OUT", help="the directory to write (new, empty, or an earlier export)")
    c.add_argument("--models", nargs="+", metavar="NAME", default=WEB_MODELS,
                   help="shipped checkpoints by name (seed, paper-rnn, gru, lstm, gru-large), or checkpoint "
                        "directories or Hub ids, in the order the page shows them")
    c.add_argument("--app-url", metavar="URL", help="the full (Gradio) app, which the page links to")
    c.set_defaults(run=export_web)

    max_chars = dict(type=int, default=crnz.MAX_CHARS, help="the most characters a text may have (the coder takes "
                     "a network step per character: hours for millions)")
    c = sub.add_parser("compress", formatter_class=fmt, help="compress a text file with a model",
                       description="Compress a UTF-8 text file with an arithmetic coder driven by a model's "
                                   "predictions: it costs what its loss says. Characters outside the vocabulary are "
                                   "kept exactly. Decompressing needs the same checkpoint (and torch version).")
    c.add_argument("input", metavar="IN", help="the text file (UTF-8); - for standard input")
    c.add_argument("output", metavar="OUT", help="the compressed file to write; - for standard output")
    c.add_argument("--checkpoint", default="checkpoints/gru-large", help="checkpoint directory or Hub id USER/NAME")
    c.add_argument("--adapt", choices=coder.ADAPT, default="none",
                   help="none: the stored weights; dynamic or cache: the test-time method with the settings the "
                        "checkpoint recorded, repeated by the decoder")
    c.add_argument("--max-chars", **max_chars)
    c.set_defaults(run=compress)
    c = sub.add_parser("decompress", formatter_class=fmt, help="the text of a file written by compress, exactly")
    c.add_argument("input", metavar="IN", help="the compressed file; - for standard input")
    c.add_argument("output", metavar="OUT", help="the text file to write; - for standard output")
    c.add_argument("--checkpoint", default=None, help="the checkpoint it was compressed with, a directory or Hub id "
                                                      "(checked against the file's weights sha256; default: the "
                                                      "directory the file names, looked for here, never on the Hub)")
    c.add_argument("--max-chars", **max_chars)
    c.set_defaults(run=decompress)

    bench = sub.add_parser("bench", formatter_class=fmt, help="benchmarks (they print figures, assert nothing)")
    kinds = bench.add_subparsers(dest="kind", required=True, metavar="KIND")
    c = kinds.add_parser("train", formatter_class=fmt, help="training speed of the presets against the course "
                                                            "notebook's loop and a matrix multiply")
    c.add_argument("--steps", type=int, default=20, help="timed training steps per model")
    c.add_argument("--threads", type=int, default=None, help="CPU threads (default: PyTorch's)")
    c.add_argument("--presets", type=lambda s: s.split(","), default=None, metavar="NAMES",
                   help="comma-separated presets to time instead of the README's table, e.g. gru,mingru")
    c.add_argument("--batch-sizes", type=_int_list, default=(), metavar="SIZES",
                   help="comma-separated batch sizes to time each model at besides its own, e.g. 4 (with "
                        "--sequence-lengths: the batch sizes of the sweep, default 1,4,64)")
    c.add_argument("--sequence-lengths", type=_int_list, default=(), metavar="LENGTHS",
                   help="the cost of a step against the sequence length instead: the GRU, minGRU and a transformer "
                        "of the same size at each length, e.g. 64,128,256,512,1024")
    c.add_argument("--record", default=None, metavar="JSON",
                   help="with --sequence-lengths: write the figures there (the app draws checkpoints/train-cost.json)")
    c.set_defaults(run=bench_train)
    c = kinds.add_parser("quick", formatter_class=fmt, help="the quick preset trained for a wall-clock budget and "
                                                            "scored on the held-out tenth; with --nanogpt, nanoGPT's "
                                                            "CPU recipe on the same split in the same run")
    c.add_argument("--data", type=Path, required=True, help="a UTF-8 text file (e.g. Tiny Shakespeare)")
    c.add_argument("--seconds", type=float, default=0.0, help="the quick preset's training budget (default: nanoGPT's "
                                                             "training time with --nanogpt, else the preset's)")
    c.add_argument("--nanogpt", type=Path, metavar="DIR", default=None, help="a checkout of karpathy/nanoGPT")
    c.add_argument("--threads", type=int, default=torch.get_num_threads(), help="CPU threads for both")
    c.set_defaults(run=bench_quick)
    c = kinds.add_parser("testtime", formatter_class=fmt, help="what each recorded test-time method costs to read "
                                                               "(chars/s), beside its recorded test loss")
    c.add_argument("--checkpoint", default="checkpoints/gru-large", help="checkpoint directory or Hub id USER/NAME")
    c.add_argument("--data", default=DEFAULT_DATA, help="the corpus the model was trained on (path or URL)")
    c.add_argument("--chars", type=int, default=5_000, help="characters of the test split each reading is timed on")
    c.add_argument("--threads", type=int, default=None, help="CPU threads (default: PyTorch's)")
    c.set_defaults(run=bench_testtime)
    c = kinds.add_parser("app", formatter_class=fmt, help="the app's latency, throughput, start time and memory")
    c.add_argument("--reps", type=int, default=5, help="generations whose first-character time is the median")
    c.add_argument("--length", type=int, default=500, help="characters each concurrent client asks for")
    c.add_argument("--rate-length", type=int, default=2000, help="characters of the generation timed for chars/s")
    c.add_argument("--clients", type=int, default=8, help="simultaneous clients")
    c.add_argument("--screenshots", type=Path, metavar="DIR", help="also save screenshots of the app's views here")
    c.set_defaults(run=bench_app)
    c = kinds.add_parser("ddp", formatter_class=fmt, help="training speed of 1 process x 2 threads against 2 DDP "
                                                          "processes x 1 thread, same global batch, and the share "
                                                          "of a step spent exchanging")
    c.add_argument("--preset", choices=sorted(PRESETS), default="paper", help="the model and global batch to train")
    c.add_argument("--steps", type=int, default=20, help="timed training steps of each way, each round")
    c.add_argument("--rounds", type=int, default=2, help="times the two ways are alternated (the machine may be busy)")
    c.set_defaults(run=bench_ddp)
    c = kinds.add_parser("web", formatter_class=fmt, help="the static edition in headless Chromium: load time, first "
                                                          "character, characters/s and bytes per model, and its bits "
                                                          "against the library's")
    c.add_argument("--site", metavar="DIR", help="an exported site (default: export --models into a temporary one)")
    c.add_argument("--models", nargs="+", metavar="NAME", default=WEB_MODELS, help="as export-web's")
    c.add_argument("--reps", type=int, default=3, help="runs per model; the best is shown")
    c.add_argument("--length", type=int, default=2000, help="characters of the writing timed for chars/s")
    c.add_argument("--data", default=DEFAULT_DATA, help="the corpus: the exactness check reads its test split")
    c.add_argument("--chars", type=int, default=2000, help="characters of the test split the exactness check reads")
    c.set_defaults(run=bench_web)
    c = kinds.add_parser("compress", formatter_class=fmt, help="the models as compressors of the test split, beside "
                                                               "xz, zstd, bzip2 and zpaq")
    c.add_argument("--data", default=DEFAULT_DATA, help="the corpus the models were trained on (path or URL)")
    c.add_argument("--models", nargs="+", metavar="DIR", help="checkpoints to run (default: every one in checkpoints/)")
    c.add_argument("--modes", nargs="+", choices=(*coder.ADAPT, "best"), default=["none", "best"],
                   help="none: static; best: the recorded adaptive mode with the lowest loss on the tuning text")
    c.add_argument("--no-tools", action="store_true", help="leave out xz, zstd, bzip2 and zpaq")
    c.set_defaults(run=bench_compress)
    return p


def main(argv=None) -> None:
    args = parser().parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else list(argv)  # what a record says the command was
    try:
        args.run(args)
    except (ValueError, OSError, HubError) as e:  # DataError and CheckpointError are ValueErrors
        sys.exit(f"error: {e}")
