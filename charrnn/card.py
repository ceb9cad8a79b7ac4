"""The model card (README.md) of a checkpoint, generated from its config.json record.

The same function writes the card saved beside the weights and the one published to the Hub, so the
two never disagree; `name` is the directory name locally and the repo id USER/NAME on the Hub.
"""
from __future__ import annotations

import json

from huggingface_hub import EvalResult, ModelCardData

from .cells import CELLS
from .data import SAMPLE_PROMPT
from .kinds import MIXTURE, kind_of
from .record import SPLIT_NAMES, readings
from .units import bits

LICENSE = "mit"
DATASET = "Molière's dialogues (last 10 % of the characters)"


def card_metadata(record: dict, name: str = "charrnn") -> ModelCardData:
    """The YAML front matter the Hub reads: library, license, tags, language, and the test losses as a
    model-index.

    No `datasets:` entry: on the Hub it must name dataset repos, and the Molière corpus has none;
    `language: fr` and the `moliere` tag say what the model was trained on instead.
    """
    final = record.get("final")
    results = []
    if final:
        metrics = [("bits-per-character", final["test"]["bpc"], "test bpc"), ("loss", final["test"]["nats"], "test nats/char")]
        metrics += [("loss", r["test"]["nats"], f"test nats/char, {r['label']}") for r in readings(record).values()]
        results = [EvalResult(task_type="text-generation", task_name="character-level language modelling",
                              dataset_type="text", dataset_name=DATASET, dataset_split="test", metric_type=kind,
                              metric_value=round(value, 4), metric_name=metric) for kind, value, metric in metrics]
    return ModelCardData(
        library_name="charrnn", license=LICENSE, language=["fr"], pipeline_tag="text-generation",
        tags=["charrnn", "character-level", "language-model", "rnn", ("mixture" if kind_of(record) == MIXTURE else CELLS[record["model"]["cell"]].tag), "pytorch",
              "safetensors", "moliere", "french"],
        model_name=name if results else None, eval_results=results or None)


def fmt_duration(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} min" if h else f"{m} min {s:02d} s"


def inside_section(inside: dict) -> list[str]:
    """The card's short account of the record's "inside" (python -m charrnn inside --record)."""
    h, u = inside["horizon"], inside.get("units")
    at = {name: f"k = {k}" if k else f"no k up to {h['max_distance']}" for name, k in h["below"].items()}
    lines = ["## Inside the model", "",
             f"How far back it looks: the dependence of a prediction on the character k steps back (the norm of the "
             f"gradient of log p(x_t) with respect to the {h['input']} input at t - k, averaged over {h['positions']} "
             f"positions of {h['text']}) falls below 10 % of its value at k = 1 at {at['10%']}, below 1 % at "
             f"{at['1%']}.", ""]
    if u is None:  # a cell without units to read (cells.CELLS)
        return lines + ["Its hidden units are not read: it carries no state from step to step.", "", "```bash",
                        inside["command"], "```", ""]
    lines += [f"Units that mean something: for each feature of play text, the units whose activation alone tells it "
             f"best, by ROC AUC (chosen on {u['chosen_on']}; AUC on {u['measured_on']}). Features with a unit of "
             f"AUC ≥ {u['auc_bar']}: {u['features_above_bar']} of {len(u['features'])}. A unit marked (+) is high "
             "where the feature holds, (−) low.", "",
             "| feature | best unit | AUC |", "|---|---|---|"]
    for f in u["features"].values():
        best = f["units"][0] if f["units"] else None
        unit = f"{best['name']} ({'+' if best['sign'] > 0 else '−'})" if best else "—"
        auc = best["auc"] if best and best["auc"] is not None else "—"  # None: the feature never holds there
        lines.append(f"| {f['about']} | {unit} | {auc} |")
    return lines + ["", "```bash", inside["command"], "```", ""]


def _what(record: dict) -> str:
    """What the model is, in a sentence: its cell and sizes, or a mixture's members."""
    m = record["model"]
    if kind_of(record) == MIXTURE:
        return (f"the mixture of {len(m['members'])} checkpoints' next-character distributions ("
                + ", ".join(f"`{e['path']}` × {e['weight']:.3f}" for e in m["members"])
                + f"; {record.get('num_params', 0):,} parameters in all). It holds no weights: `config.json` names "
                "each member by its path and the sha256 of its weights, and a missing or changed member is refused.")
    return (f"{CELLS[m['cell']].card_name}, hidden size {m['hidden_size']}, {m['num_layers']} layer(s), "
            + (f"embedding size {m['embed_size']}" if m["embed_size"] else "one-hot input")
            + f", {record.get('num_params', 0):,} parameters, weights stored as {record.get('dtype', 'float32')}.")


def _started_from(training: dict) -> list[str]:
    """The card's lines on the model a run started from (train.py --init-from), if any."""
    origin = training.get("init_from")
    if not isinstance(origin, dict):
        return []
    added = origin.get("added_chars") or ""
    return [f"Started from the trained model `{origin.get('checkpoint')}` (weights sha256 "
            f"`{origin.get('weights_sha256')}`, trained on a corpus with sha256 `{origin.get('corpus_sha256')}`), with "
            + (f"{len(added)} character(s) added to its vocabulary: {json.dumps(added, ensure_ascii=False)}."
               if added else "its vocabulary unchanged."), ""]


def model_card(record: dict, name: str) -> str:
    m = record["model"]
    training = record.get("training", {})
    history = record.get("history", [])
    final = record.get("final")
    lines = ["---", card_metadata(record, name).to_yaml().strip(), "---", "",
             f"# charrnn · {name}", "", f"A character-level language model of Molière's dialogues: {_what(record)} "
             f"Its vocabulary is {len(m['vocab'])} characters.", ""]
    if final:
        lines += ["## Losses of the stored weights", "",
                  "Average cross-entropy per character; bits/char = nats/char ÷ ln 2, perplexity = 2^bits.", "",
                  "| split | nats/char | bits/char | perplexity |", "|---|---|---|---|"]
        for split in SPLIT_NAMES:
            if split in final:
                r = final[split]
                lines.append(f"| {SPLIT_NAMES[split]} | {r['nats']:.4f} | {r['bpc']:.4f} | {2 ** r['bpc']:.2f} |")
        lines.append("")
        if readings(record):
            lines += ["The test split read with a test-time method instead of the weights alone:", "",
                      "| method | test nats/char | test bits/char |", "|---|---|---|"]
            lines += [f"| {r['label']} | {r['test']['nats']:.4f} | {r['test']['bpc']:.4f} |"
                      for r in readings(record).values()]
            lines += ["", *[f"- *{r['label']}*: {r['about']}." for r in readings(record).values()], ""]
        if "val" in final:
            lines += [f"The validation text is the last {training.get('val_chars', 0):,} characters of the training "
                      "split, held out: the model never trained on it.", ""]
        if "train_time_s" in final:
            lines += [f"Trained in {fmt_duration(final['train_time_s'])}.", ""]
    else:
        lines += [f"Training did not finish (status: {record.get('status', 'unknown')}): this checkpoint has no "
                  "final losses yet; the history below ends at its last evaluation.", ""]
    if record.get("inside"):
        lines += inside_section(record["inside"])
    if history:
        splits = [s for s in SPLIT_NAMES if f"{s}_loss" in history[-1]]
        lines += ["## Training history", "",
                  "Losses measured at each evaluation; the train loss is on a slice of training text as long as "
                  "the test split, in evaluation mode, so the columns compare.", "",
                  "| epoch | characters seen | " + " | ".join(f"{SPLIT_NAMES[s]} nats/char | {SPLIT_NAMES[s]} bits/char"
                                                             for s in splits) + " | time |",
                  "|---|---|" + "---|---|" * len(splits) + "---|"]
        for h in history:
            losses = " | ".join(f"{h[f'{s}_loss']:.4f} | {bits(h[f'{s}_loss']):.4f}" for s in splits)
            lines.append(f"| {h['epoch']:.2f} | {h['chars']:,} | {losses} | {fmt_duration(h['time_s'])} |")
        lines.append("")
        if history[-1].get("sample"):
            lines += [f"A sample at epoch {history[-1]['epoch']:.2f}:", "", "```text", history[-1]["sample"], "```", ""]
    if training.get("command"):
        lines += ["## How it was trained", "", "```bash", training["command"], *training.get("resumed_with", []), "```",
                  *(["", "The run was stopped (Ctrl-C) and continued with the `--resume` command(s) after the first."]
                    if training.get("resumed_with") else []), "",
                  f"Corpus sha256 `{training.get('corpus_sha256', '?')}`; first 90 % of the characters train, "
                  "last 10 % test. Device: " + str(training.get("device", "?")) + ".", "", *_started_from(training)]
    lines += ["## Use", "",
              "With the `charrnn` package (the project this model was trained with) importable:", "",
              "```python", "import charrnn", "",
              f'model = charrnn.load("{name}")  # a local directory or a Hub id USER/NAME',
              f'print("".join(charrnn.generate(model, {json.dumps(SAMPLE_PROMPT)}, 300, temperature=0.8, seed=0)))',
              "```", "",
              ("`config.json` names the member checkpoints, which must sit at those paths beside it."
               if kind_of(record) == MIXTURE else "`config.json` holds everything needed to rebuild the model (architecture, "
               "sizes, vocabulary) and `model.safetensors` the weights, so no pickle is ever loaded."), ""]
    return "\n".join(lines)
