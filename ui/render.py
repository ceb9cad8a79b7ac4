"""Text as the page shows it: the corpus's layout set as a play, and a scored text coloured by its loss.

Both are HTML strings built here, so that a 5,000-character text is a few hundred elements, not one
Gradio component per character.
"""
from __future__ import annotations

import html
import json
import re

# A speaker line, as the corpus writes them: a name in capitals (accents, spaces, apostrophes, hyphens)
# and a full stop, alone on its line.
SPEAKER = re.compile(r"^[A-ZÀ-ÖØ-Þ][A-ZÀ-ÖØ-Þ' \-]*\.$")
# Per-character loss classes, in bits: colour from expected to surprising.
LOSS_CLASSES = [(1.0, "≤ 1 bit"), (3.0, "1–3 bits"), (6.0, "3–6 bits"), (float("inf"), "> 6 bits")]
LOSS_COLORS = ("#b7e4c7", "#ffe066", "#ffb26b", "#ff6b6b")


def play(prompt: str, written: str, status: str = "") -> str:
    """The prompt (muted) and what the model wrote after it, set as a play, with a status line under it."""
    # Split the text at line breaks so that a speaker line begun in the prompt and ended by the model is
    # still set in bold: format the whole, then mark where the prompt ends.
    full = prompt + written
    lines = full.split("\n")
    out, pos = [], 0
    for line in lines:
        shown = html.escape(line)
        cut = len(prompt) - pos  # how many characters of this line the prompt wrote
        if 0 < cut:
            shown = f"<span class='prompt'>{html.escape(line[:cut])}</span>{html.escape(line[cut:])}"
        out.append(f"<b>{shown}</b>" if SPEAKER.match(line) else shown)
        pos += len(line) + 1
    status_html = f"<div class='status'>{html.escape(status)}</div>" if status else ""
    return f"<div class='play'>{chr(10).join(out)}</div>{status_html}"


def loss_class(bits: float) -> int:
    """The index in LOSS_CLASSES of a character that cost `bits`."""
    return next(i for i, (bound, _) in enumerate(LOSS_CLASSES) if bits <= bound)


def scored(text: str, bits: list[float], guesses: list[list[tuple[str, float]]]) -> str:
    """`text` coloured by the loss of each character after the first, in runs of one colour.

    bits[i] and guesses[i] (the model's most likely characters there, with their probabilities) belong to
    text[i + 1]. They travel in the page as JSON, for the hover and tap handler (SCORED_JS) that says what
    the model expected at each character (in a hidden textarea, whose content the browser does not parse
    as HTML); a line break is shown as ↵ so that it has a colour too.
    """
    classes = [-1] + [loss_class(b) for b in bits]  # the first character is only read
    runs, start = [], 0
    for i in range(1, len(text) + 1):
        if i == len(text) or classes[i] != classes[start]:
            piece = "".join("↵\n" if c == "\n" else c for c in text[start:i])
            cls = f"l{classes[start]}" if classes[start] >= 0 else "l-first"
            runs.append(f"<span class='{cls}' data-i='{start}' data-n='{i - start}'>{html.escape(piece)}</span>")
            start = i
    info = json.dumps({"text": text, "bits": [round(b, 2) for b in bits],
                       "guesses": [[[c, round(p, 3)] for c, p in g] for g in guesses]}, ensure_ascii=False)
    legend = "".join(f"<span class='l{i}'>{html.escape(label)}</span>" for i, (_, label) in enumerate(LOSS_CLASSES))
    return (f"<div class='legend'>{legend}</div><div class='hover-info'>Hover over (or tap) a character to see what "
            f"the model expected there.</div><div class='scored'>{''.join(runs)}</div>"
            f"<textarea hidden class='scored-info'>{html.escape(info, quote=False)}</textarea>")


# Runs in the browser once the component is on the page. The text arrives in runs of one colour; the run
# under the pointer is split into one element per character when the pointer enters it (cheap, one run at a
# time), so that hovering or tapping a character can say its cost and what the model expected there.
SCORED_JS = """
const infoOf = (box) => {
  const store = box.querySelector('.scored-info');
  if (store._info === undefined) store._info = JSON.parse(store.value);
  return store._info;
};
const name = (c) => c === '\\n' ? '↵ (new line)' : c === ' ' ? '␣ (space)' : c;
element.addEventListener('mouseover', (ev) => {
  const run = ev.target.closest('.scored > span');
  if (!run || run.dataset.split) return;
  const info = infoOf(run.closest('.scored').parentElement);
  const start = Number(run.dataset.i);
  run.textContent = '';
  Array.from(info.text.slice(start, start + Number(run.dataset.n))).forEach((c, k) => {
    const span = document.createElement('span');
    span.dataset.c = start + k;
    span.textContent = c === '\\n' ? '↵\\n' : c;
    run.appendChild(span);
  });
  run.dataset.split = '1';
});
const show = (ev) => {
  const cell = ev.target.closest('[data-c]');
  if (!cell) return;
  const box = cell.closest('.scored').parentElement;
  const info = infoOf(box), i = Number(cell.dataset.c), out = box.querySelector('.hover-info');
  if (i === 0) { out.textContent = `${name(info.text[0])}: the first character is only read, not predicted.`; return; }
  const guesses = info.guesses[i - 1].map(([c, p]) => `${name(c)} ${Math.round(100 * p)} %`).join(', ');
  out.textContent = `${name(info.text[i])}: ${info.bits[i - 1]} bits. The model expected: ${guesses}.`;
};
element.addEventListener('mousemove', show);
element.addEventListener('click', show);
"""
