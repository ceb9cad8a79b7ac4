"""The model card (README.md) of a checkpoint, generated from its config.json record."""
from __future__ import annotations

import yaml

CELL_NAMES = {
    "paper": "simple (Elman) RNN with sigmoid state, Mikolov et al. (2010)",
    "rnn": "Elman RNN with tanh state",
    "gru": "GRU",
    "lstm": "LSTM",
}
LICENSE = "mit"


def card_metadata(config: dict) -> dict:
    """The YAML front matter the Hub reads: library, license, tags, language, metrics."""
    meta = {
        "library_name": "charrnn",
        "license": LICENSE,
        "language": ["fr"],
        "tags": ["character-level", "language-model", "rnn", config["model"]["cell"], "pytorch", "moliere"],
        "pipeline_tag": "text-generation",
    }
    final = config.get("final")
    if final:
        meta["model-index"] = [{
            "name": config.get("name", "charrnn"),
            "results": [{
                "task": {"type": "text-generation", "name": "character-level language modelling"},
                "dataset": {"type": "text", "name": "Molière's dialogues (last 10 % of the characters)"},
                "metrics": [{"type": "bits-per-character", "value": round(final["test"]["bpc"], 4), "name": "test bpc"},
                            {"type": "loss", "value": round(final["test"]["nats"], 4), "name": "test nats/char"}],
            }],
        }]
    return meta


def _fmt_time(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} min" if h else f"{m} min {s:02d} s"


def model_card(config: dict, name: str) -> str:
    m = config["model"]
    training = config.get("training", {})
    history = config.get("history", [])
    final = config.get("final")
    lines = ["---", yaml.safe_dump(card_metadata(config), sort_keys=False, allow_unicode=True).strip(), "---", "",
             f"# charrnn · {name}", "",
             f"A character-level language model of Molière's dialogues: {CELL_NAMES[m['cell']]}, "
             f"hidden size {m['hidden_size']}, {m['num_layers']} layer(s), "
             + (f"embedding size {m['embed_size']}" if m["embed_size"] else "one-hot input")
             + f", {config.get('num_params', 0):,} parameters, weights stored as {config.get('dtype', 'float32')}.",
             ""]
    if final:
        lines += ["## Losses of the stored weights", "",
                  "| split | nats/char | bits/char | perplexity |", "|---|---|---|---|"]
        for split in ("train", "test"):
            r = final[split]
            lines.append(f"| {split} | {r['nats']:.4f} | {r['bpc']:.4f} | {2 ** r['bpc']:.2f} |")
        lines.append("")
    else:
        lines += ["Training did not finish: this checkpoint has no final losses yet.", ""]
    if history:
        lines += ["## Training history", "", "| epoch | characters seen | train nats/char | test nats/char | time |",
                  "|---|---|---|---|---|"]
        for h in history:
            lines.append(f"| {h['epoch']:.2f} | {h['chars']:,} | {h['train_loss']:.4f} | {h['test_loss']:.4f} "
                         f"| {_fmt_time(h['time_s'])} |")
        lines.append("")
    if training.get("command"):
        lines += ["## How it was trained", "", "```bash", training["command"], "```", "",
                  f"Corpus sha256 `{training.get('corpus_sha256', '?')}`; first 90 % of the characters train, "
                  "last 10 % test. Device: " + str(training.get("device", "?")) + ".", ""]
    lines += ["## Use", "", "```python", "import charrnn", "",
              f'model = charrnn.load("{name}")  # a local directory or a Hub id USER/NAME',
              'print("".join(charrnn.generate(model, "HARPAGON.\\n\\n", 300, temperature=0.8, seed=0)))',
              "```", ""]
    return "\n".join(lines)
