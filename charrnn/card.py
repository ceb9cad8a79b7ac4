"""The model card (README.md) of a checkpoint, generated from its config.json record.

The same function writes the card saved beside the weights and the one published to the Hub, so the
two never disagree; `name` is the directory name locally and the repo id USER/NAME on the Hub.
"""
from __future__ import annotations

import yaml

from .scoring import LN2

CELL_NAMES = {
    "paper": "simple (Elman) RNN with sigmoid state, Mikolov et al. (2010)",
    "rnn": "Elman RNN with tanh state",
    "gru": "GRU",
    "lstm": "LSTM",
}
CELL_TAGS = {"paper": "mikolov-2010", "rnn": "elman-rnn", "gru": "gru", "lstm": "lstm"}  # "paper" says nothing as a tag
LICENSE = "mit"
SPLIT_NAMES = {"train": "train", "val": "validation", "test": "test"}  # in the order tables and plots show them
# The test-time readings a checkpoint may record beside its static losses (final[key]), as tables name them.
TEST_TIME = {"dynamic": "dynamic evaluation", "cache": "continuous cache"}


def card_metadata(config: dict, name: str = "charrnn") -> dict:
    """The YAML front matter the Hub reads: library, license, tags, language, metrics.

    No `datasets:` entry: on the Hub it must name dataset repos, and the Molière corpus has none;
    `language: fr` and the `moliere` tag say what the model was trained on instead.
    """
    meta = {
        "library_name": "charrnn",
        "license": LICENSE,
        "language": ["fr"],
        "tags": ["charrnn", "character-level", "language-model", "rnn", CELL_TAGS[config["model"]["cell"]],
                 "pytorch", "safetensors", "moliere", "french"],
        "pipeline_tag": "text-generation",
    }
    final = config.get("final")
    if final:
        meta["model-index"] = [{
            "name": name,
            "results": [{
                "task": {"type": "text-generation", "name": "character-level language modelling"},
                "dataset": {"type": "text", "name": "Molière's dialogues (last 10 % of the characters)",
                            "split": "test"},
                "metrics": [{"type": "bits-per-character", "value": round(final["test"]["bpc"], 4), "name": "test bpc"},
                            {"type": "loss", "value": round(final["test"]["nats"], 4), "name": "test nats/char"}]
                + [{"type": "loss", "value": round(final[key]["test"]["nats"], 4), "name": f"test nats/char, {words}"}
                   for key, words in TEST_TIME.items() if key in final],
            }],
        }]
    return meta


def fmt_duration(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} min" if h else f"{m} min {s:02d} s"


def model_card(config: dict, name: str) -> str:
    m = config["model"]
    training = config.get("training", {})
    history = config.get("history", [])
    final = config.get("final")
    lines = ["---", yaml.safe_dump(card_metadata(config, name), sort_keys=False, allow_unicode=True).strip(), "---", "",
             f"# charrnn · {name}", "",
             f"A character-level language model of Molière's dialogues: {CELL_NAMES[m['cell']]}, "
             f"hidden size {m['hidden_size']}, {m['num_layers']} layer(s), "
             + (f"embedding size {m['embed_size']}" if m["embed_size"] else "one-hot input")
             + f", {config.get('num_params', 0):,} parameters, weights stored as {config.get('dtype', 'float32')}. "
             f"Its vocabulary is {len(m['vocab'])} characters.",
             ""]
    if final:
        lines += ["## Losses of the stored weights", "",
                  "Average cross-entropy per character; bits/char = nats/char ÷ ln 2, perplexity = 2^bits.", "",
                  "| split | nats/char | bits/char | perplexity |", "|---|---|---|---|"]
        for split in SPLIT_NAMES:
            if split in final:
                r = final[split]
                lines.append(f"| {SPLIT_NAMES[split]} | {r['nats']:.4f} | {r['bpc']:.4f} | {2 ** r['bpc']:.2f} |")
        lines.append("")
        if "dynamic" in final:
            d = final["dynamic"]
            lines += [f"Read as the paper's *dynamic model* (Mikolov et al. 2010), which keeps learning "
                      f"from the test text as it reads it, the test loss is **{d['test']['nats']:.4f}** nats/char "
                      f"({d['test']['bpc']:.4f} bits/char): one SGD step at learning rate {d['lr']:g} after scoring "
                      f"each {d['seq_len']} characters, the rate chosen on {d['tuned_on']}. The table's figures are "
                      "the static ones, of the stored weights as they are.", ""]
        if "cache" in final:
            c = final["cache"]
            lines += [f"With a *continuous cache* (Grave et al. 2017), which changes no weight but mixes into each "
                      f"prediction what followed the model's most similar states of the last {c['window']:,} "
                      f"characters, the test loss is **{c['test']['nats']:.4f}** nats/char ({c['test']['bpc']:.4f} "
                      f"bits/char): theta {c['theta']:g}, lambda {c['lam']:g}, both chosen on {c['tuned_on']}.", ""]
        if "val" in final:
            lines += [f"The validation text is the last {training.get('val_chars', 0):,} characters of the training "
                      "split, held out: the model never trained on it.", ""]
        if "train_time_s" in final:
            lines += [f"Trained in {fmt_duration(final['train_time_s'])}.", ""]
    else:
        lines += [f"Training did not finish (status: {config.get('status', 'unknown')}): this checkpoint has no "
                  "final losses yet; the history below ends at its last evaluation.", ""]
    if history:
        splits = [s for s in SPLIT_NAMES if f"{s}_loss" in history[-1]]
        lines += ["## Training history", "",
                  "Losses measured at each evaluation; the train loss is on a slice of training text as long as "
                  "the test split, in evaluation mode, so the columns compare.", "",
                  "| epoch | characters seen | " + " | ".join(f"{SPLIT_NAMES[s]} nats/char | {SPLIT_NAMES[s]} bits/char"
                                                             for s in splits) + " | time |",
                  "|---|---|" + "---|---|" * len(splits) + "---|"]
        for h in history:
            losses = " | ".join(f"{h[f'{s}_loss']:.4f} | {h[f'{s}_loss'] / LN2:.4f}" for s in splits)
            lines.append(f"| {h['epoch']:.2f} | {h['chars']:,} | {losses} | {fmt_duration(h['time_s'])} |")
        lines.append("")
        if history[-1].get("sample"):
            lines += [f"A sample at epoch {history[-1]['epoch']:.2f}:", "", "```text", history[-1]["sample"], "```", ""]
    if training.get("command"):
        lines += ["## How it was trained", "", "```bash", training["command"], *training.get("resumed_with", []), "```",
                  *(["", "The run was stopped (Ctrl-C) and continued with the `--resume` command(s) after the first."]
                    if training.get("resumed_with") else []), "",
                  f"Corpus sha256 `{training.get('corpus_sha256', '?')}`; first 90 % of the characters train, "
                  "last 10 % test. Device: " + str(training.get("device", "?")) + ".", ""]
    lines += ["## Use", "",
              "With the `charrnn` package (the project this model was trained with) importable:", "",
              "```python", "import charrnn", "",
              f'model = charrnn.load("{name}")  # a local directory or a Hub id USER/NAME',
              'print("".join(charrnn.generate(model, "HARPAGON.\\n\\n", 300, temperature=0.8, seed=0)))',
              "```", "",
              "`config.json` holds everything needed to rebuild the model (architecture, sizes, vocabulary) and "
              "`model.safetensors` the weights, so no pickle is ever loaded.", ""]
    return "\n".join(lines)
