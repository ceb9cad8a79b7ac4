// The static edition of the demo: the models (python -m charrnn export-web) run here, in the visitor's browser,
// with ONNX Runtime Web on one WebAssembly thread. models.json holds each model's vocabulary and figures, the
// app's input limits and Vocab.normalize's tables, so that nothing is typed twice.

const $ = (id) => document.getElementById(id);

function fatal(html) {
  $('fatal').innerHTML = html;
  $('fatal').hidden = false;
}

// ---------- text: normalisation (charrnn.data.Vocab.normalize) and the play's layout (ui/render.py) ----------

const chars = (s) => Array.from(s);  // code points, as Python counts characters

export function normalize(text, vocab, table) {
  const known = new Set(chars(vocab));
  text = text.normalize(table.form);
  for (const [variant, plain] of table.typographic) {
    if (text.includes(variant) && !known.has(variant) && chars(plain).every((c) => known.has(c))) {
      text = text.split(variant).join(plain);
    }
  }
  const all = chars(text), kept = all.filter((c) => known.has(c));
  const dropped = [...new Set(all.filter((c) => !known.has(c)))].sort();
  return { text: kept.join(''), n: all.length - kept.length, dropped };
}

function droppedNote(dropped, n) {
  const shown = dropped.slice(0, 10).map((c) => `'${c}'`).join(', ') + (dropped.length > 10 ? ', …' : '');
  return `${n} character(s) the model has never seen were left out: ${shown}`;
}

const SPEAKER = /^[A-ZÀ-ÖØ-Þ][A-ZÀ-ÖØ-Þ' \-]*\.$/u;  // a name in capitals and a full stop, alone on its line
const escape = (s) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

// The prompt (muted) and what the model wrote after it, set as a play, speaker lines in bold.
export function play(prompt, written, status = '') {
  const promptLen = chars(prompt).length;
  const out = [];
  let pos = 0;
  for (const line of (prompt + written).split('\n')) {
    const cs = chars(line), cut = promptLen - pos;
    let shown = escape(line);
    if (cut > 0) shown = `<span class="prompt">${escape(cs.slice(0, cut).join(''))}</span>${escape(cs.slice(cut).join(''))}`;
    out.push(SPEAKER.test(line) ? `<b>${shown}</b>` : shown);
    pos += cs.length + 1;
  }
  const statusHtml = status ? `<div class="status">${escape(status)}</div>` : '';
  return `<div class="play">${out.join('\n')}</div>${statusHtml}`;
}

// ---------- sampling (charrnn.sample.next_char_probs) with a seeded generator ----------

// mulberry32: a small seeded generator of uniform numbers in [0, 1); the same seed, the same text in this page.
export function generator(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6D2B79F5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function argmax(row) {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return best;
}

// The sampling distribution of next-character logits (temperature > 0), in float64 as the library computes it.
export function nextCharProbs(logits, temperature, topK, topP) {
  const V = logits.length, top = logits[argmax(logits)];
  let z = Array.from(logits, (l) => (l - top) / temperature);
  if (topK > 0 && topK < V) {
    const kth = [...z].sort((a, b) => b - a)[topK - 1];
    z = z.map((v) => (v < kth ? -Infinity : v));
  }
  const e = z.map(Math.exp), sum = e.reduce((a, b) => a + b, 0);
  let p = e.map((v) => v / sum);
  if (topP < 1) {
    const order = p.map((_, i) => i).sort((a, b) => p[b] - p[a]);
    const kept = new Array(V).fill(0);
    let before = 0;
    order.forEach((i, rank) => {
      if (rank === 0 || before < topP) kept[i] = p[i];
      before += p[i];
    });
    const s = kept.reduce((a, b) => a + b, 0);
    p = kept.map((v) => v / s);
  }
  return p;
}

// session.run resolves in microtasks: a loop of steps never lets the browser paint or handle a click (Stop) unless
// it hands back a task turn now and then.
const breathe = () => new Promise((resolve) => setTimeout(resolve, 0));

function draw(p, rng) {
  let u = rng(), i = 0;
  for (; i < p.length - 1; i++) { u -= p[i]; if (u < 0) return i; }
  return i;
}

// ---------- the models: loaded when first used, with a progress bar ----------

let ort, site;
const loaded = new Map();  // model index -> Promise of {info, session, stoi}

async function fetchBytes(url, onProgress) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  const total = Number(response.headers.get('content-length')) || 0;
  const reader = response.body.getReader(), parts = [];
  let got = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    parts.push(value);
    got += value.length;
    onProgress(total ? got / total : 0);
  }
  const bytes = new Uint8Array(got);
  let at = 0;
  for (const p of parts) { bytes.set(p, at); at += p.length; }
  return bytes;
}

function showProgress(label, fraction) {
  const box = $('progress');
  box.hidden = fraction === null;
  if (fraction !== null) {
    box.querySelector('progress').value = fraction;
    box.querySelector('span').textContent = label;
  }
}

export function model(i) {
  if (!loaded.has(i)) {
    const info = site.models[i];
    loaded.set(i, (async () => {
      const t0 = performance.now();
      const bytes = await fetchBytes(info.file, (f) =>
        showProgress(`loading ${info.name} (${(info.bytes / 1e6).toFixed(1)} MB)… ${Math.round(100 * f)} %`, f));
      showProgress(`starting ${info.name}…`, 1);
      const session = await ort.InferenceSession.create(bytes, { executionProviders: ['wasm'] });
      showProgress('', null);
      const stoi = new Map(chars(info.vocab).map((c, k) => [c, k]));
      return { info, session, stoi, loadMs: performance.now() - t0 };
    })().catch((e) => { loaded.delete(i); showProgress('', null); throw e; }));
  }
  return loaded.get(i);
}

function zeroState(info) {
  const n = info.num_layers * info.hidden_size;
  return info.state.map(() => new ort.Tensor('float32', new Float32Array(n), [info.num_layers, 1, info.hidden_size]));
}

function feeds(m, ids, state) {
  const f = { idx: new ort.Tensor('int64', BigInt64Array.from(ids, BigInt), [1, ids.length]) };
  m.info.state.forEach((name, k) => { f[name] = state[k]; });
  return f;
}

// One call of the step function on `ids`: the logits after each of them (T rows of V) and the new state. Only
// these are fetched: the layers' outputs at every step (for Inside) are not copied out.
async function step(m, ids, state) {
  const out = await m.session.run(feeds(m, ids, state), ['logits', ...m.info.state.map((name) => `${name}_out`)]);
  const V = chars(m.info.vocab).length, data = out.logits.data;
  const rows = Array.from({ length: ids.length }, (_, t) => data.subarray(t * V, (t + 1) * V));
  return { rows, state: m.info.state.map((name) => out[`${name}_out`]) };
}

// Yield `length` characters that continue `prompt` (already normalised), as charrnn.generate does: the whole
// prompt (or the start character) warms the state in one call, then one call per character.
async function* write(m, prompt, length, { temperature, topK = 0, topP = 1, seed }) {
  const rng = generator(seed), itos = chars(m.info.vocab);
  let { rows, state } = await step(m, chars(prompt || site.start).map((c) => m.stoi.get(c)), zeroState(m.info));
  for (let i = 0; i < length; i++) {
    const last = rows[rows.length - 1];
    const next = temperature === 0 ? argmax(last) : draw(nextCharProbs(last, temperature, topK, topP), rng);
    yield itos[next];
    ({ rows, state } = await step(m, [next], state));
  }
}

// The cost in bits of each character of `text` after the first, read in one call (charrnn.char_losses in bits).
async function textBits(m, text) {
  const ids = chars(text).map((c) => m.stoi.get(c));
  const { rows } = await step(m, ids, zeroState(m.info));
  return ids.slice(1).map((id, t) => {
    const row = rows[t], top = row[argmax(row)];
    let sum = 0;
    for (const l of row) sum += Math.exp(l - top);
    return (Math.log(sum) + top - row[id]) / Math.LN2;
  });
}

// ---------- the request's checks: the app's limits and messages (ui/validate.py) ----------

class InputError extends Error {}

function number(name, raw, lo, hi, { integer = false, aboveLo = false } = {}) {
  const v = Number(raw);
  const allowed = `${name} must be ${integer ? 'an integer' : 'a number'} ` +
    (aboveLo ? `greater than ${lo} and at most ${hi}` : `from ${lo} to ${hi}`);
  if (raw === '' || !Number.isFinite(v) || v < lo || v > hi || (aboveLo && v === lo) || (integer && !Number.isInteger(v))) {
    throw new InputError(`${allowed}; got ${String(raw).slice(0, 40) || 'nothing'}`);
  }
  return v;
}

function promptText(raw) {
  const n = chars(raw).length, max = site.limits.max_prompt_chars;
  if (n > max) throw new InputError(`prompt is ${n.toLocaleString('en')} characters long; at most ${max.toLocaleString('en')} are allowed`);
  return raw;
}

function seedOf(raw) {
  const L = site.limits;
  if (raw === '' || Number(raw) === -1) return crypto.getRandomValues(new Uint32Array(1))[0] >>> 1;
  return number('random seed (or -1 for a new random seed)', raw, 0, L.max_random_seed, { integer: true });
}

function note(id, text, error = false) {
  $(id).textContent = text;
  $(id).classList.toggle('error', error);
}

// ---------- the views ----------

let stopWrite = false, stopCompare = false;

function bestIndex() {
  const vals = site.models.map((m) => m.val_bpc);
  if (vals.every((v) => v === null)) return 0;
  return vals.reduce((best, v, i) => (v !== null && (vals[best] === null || v < vals[best]) ? i : best), 0);
}

async function runWrite() {
  const L = site.limits;
  let m, clean, length, settings;
  try {
    m = await model(Number($('model').value));
    const raw = promptText($('prompt').value);
    length = number('length', $('length').value, 1, L.max_length, { integer: true });
    const temperature = number('temperature', $('temperature').value, 0, L.max_temperature);
    const topK = number('top_k', $('top-k').value, 0, chars(m.info.vocab).length, { integer: true });
    const topP = number('top_p', $('top-p').value, 0, 1, { aboveLo: true });
    settings = { temperature, topK, topP, seed: seedOf($('random-seed').value) };
    const norm = normalize(raw, m.info.vocab, site.normalize);
    clean = norm.text;
    note('write-note', norm.n ? droppedNote(norm.dropped, norm.n) : '');
  } catch (e) {
    note('write-note', e instanceof InputError ? e.message : `could not load the model: ${e.message}`, true);
    return;
  }
  stopWrite = false;
  $('generate').disabled = true;
  $('stop').disabled = false;
  const t0 = performance.now();
  let text = '', lastPaint = 0, done = 'characters';
  try {
    for await (const c of write(m, clean, length, settings)) {
      text += c;
      const now = performance.now();
      if (now - lastPaint > 50) {  // the page follows the text without one repaint per character
        lastPaint = now;
        $('output').innerHTML = play(clean, text, `writing… ${chars(text).length.toLocaleString('en')} of ${length.toLocaleString('en')} characters`);
        await breathe();
      }
      if (stopWrite) { done = 'characters, stopped,'; break; }
    }
  } finally {
    const s = ((performance.now() - t0) / 1000).toFixed(1);
    $('output').innerHTML = play(clean, text, `${chars(text).length.toLocaleString('en')} ${done} in ${s} s`);
    $('generate').disabled = false;
    $('stop').disabled = true;
  }
}

function buildCompareColumns() {
  const best = bestIndex();
  $('compare-output').innerHTML = site.models.map((info, i) => `<div class="column">
    <h3>${escape(info.name)}${i === best ? ' · best' : ''}${info.test_bpc !== null ? `<small>test ${info.test_bpc.toFixed(2)} bits/char</small>` : ''}</h3>
    <div class="text-out" data-i="${i}">${play('', '')}</div></div>`).join('');
}

async function runCompare() {
  const L = site.limits;
  let length, temperature, seed;
  try {
    promptText($('compare-prompt').value);
    length = number('length', $('compare-length').value, 1, L.max_compare_length, { integer: true });
    temperature = number('temperature', $('compare-temperature').value, 0, L.max_temperature);
    seed = seedOf($('compare-seed').value);
  } catch (e) {
    note('compare-note', e.message, true);
    return;
  }
  note('compare-note', '');
  $('compare-button').disabled = true;
  $('compare-stop').disabled = false;
  stopCompare = false;
  try {
    const models = [];
    for (let i = 0; i < site.models.length; i++) models.push(await model(i));  // one at a time: one progress bar
    const raw = $('compare-prompt').value, dropped = new Set();
    let most = 0;
    const columns = models.map((m) => {
      const norm = normalize(raw, m.info.vocab, site.normalize);
      norm.dropped.forEach((c) => dropped.add(c));
      most = Math.max(most, norm.n);
      return { m, prompt: norm.text, text: '', writer: write(m, norm.text, length, { temperature, seed }),
               box: document.querySelector(`#compare-output [data-i="${m.info.index}"]`) };
    });
    if (dropped.size) note('compare-note', `${droppedNote([...dropped].sort(), most)} (by some of the models)`);
    let lastPaint = 0;
    for (let k = 0; k < length && !stopCompare; k++) {
      for (const col of columns) col.text += (await col.writer.next()).value;  // all columns grow together
      const now = performance.now();
      if (now - lastPaint > 50 || k === length - 1) {
        lastPaint = now;
        for (const col of columns) col.box.innerHTML = play(col.prompt, col.text);
        await breathe();
      }
    }
    for (const col of columns) col.box.innerHTML = play(col.prompt, col.text);
  } catch (e) {
    note('compare-note', `could not load the models: ${e.message}`, true);
  } finally {
    $('compare-button').disabled = false;
    $('compare-stop').disabled = true;
  }
}

// Your text: each character after the first coloured by its cost in bits (the app's classes, ui/render.py).
function lossClass(b) {
  const k = site.loss_classes.findIndex(([bound]) => bound === null || b <= bound);
  return k < 0 ? site.loss_classes.length - 1 : k;
}

async function runScore() {
  let m, clean;
  try {
    m = await model(Number($('model').value));
    const raw = $('score-text').value, n = chars(raw).length, max = site.limits.max_score_chars;
    if (n > max) throw new InputError(`text is ${n.toLocaleString('en')} characters long; at most ${max.toLocaleString('en')} are allowed`);
    const norm = normalize(raw, m.info.vocab, site.normalize);
    clean = norm.text;
    note('score-note', norm.n ? droppedNote(norm.dropped, norm.n) : '');
    if (chars(clean).length < 2) {
      throw new InputError('text must hold at least two characters the model knows: the first is only read, ' +
                           'each later one is predicted from those before it');
    }
  } catch (e) {
    note('score-note', e instanceof InputError ? e.message : `could not load the model: ${e.message}`, true);
    $('score-summary').textContent = '';
    $('score-output').innerHTML = '';
    return;
  }
  $('score-button').disabled = true;
  try {
    const bits = await textBits(m, clean), cs = chars(clean);
    const bpc = bits.reduce((a, b) => a + b, 0) / bits.length;
    const test = m.info.test_bpc !== null ? ` The model's own test text (Molière's last 10 %) costs it ${m.info.test_bpc.toFixed(2)} bits/char.` : '';
    $('score-summary').innerHTML = `<b>${bpc.toFixed(2)} bits/char</b> over the ${bits.length.toLocaleString('en')} ` +
      `characters after the first (perplexity ${(2 ** bpc).toFixed(1)}).${escape(test)}`;
    const shown = (c) => (c === '\n' ? '↵\n' : c);
    const spans = cs.map((c, i) => (i === 0 ? `<span>${escape(shown(c))}</span>`
      : `<span class="l${lossClass(bits[i - 1])}" title="${bits[i - 1].toFixed(2)} bits">${escape(shown(c))}</span>`));
    const legend = site.loss_classes.map(([, label], k) => `<span class="l${k}">${escape(label)}</span>`).join('');
    $('score-output').innerHTML = `<div class="legend">${legend}</div><div class="scored">${spans.join('')}</div>`;
  } finally {
    $('score-button').disabled = false;
  }
}

// The app's Markdown table of the horizons (ui/inside.py) as HTML; a line that is no table row, as a paragraph.
function markdownTable(md) {
  const rows = md.split('\n').filter((l) => l.startsWith('|') && !/^\|[-| ]+\|$/.test(l));
  if (!rows.length) return md ? `<p>${escape(md).replace(/`([^`]*)`/g, '<code>$1</code>')}</p>` : '';
  const cells = (l, tag) => l.slice(1, -1).split('|').map((c) => `<${tag}>${escape(c.trim())}</${tag}>`).join('');
  return `<div class="table"><table><tr>${cells(rows[0], 'th')}</tr>${rows.slice(1).map((l) => `<tr>${cells(l, 'td')}</tr>`).join('')}</table></div>`;
}

// ---------- Learning: the chosen model's key figures and what it wrote as it learned (ui/learned.py) ----------

function showChosen() {
  const info = site.models[Number($('model').value)], n = (info.samples || []).length;
  $('key-figures').innerHTML = info.key_figures || '';  // HTML made at export time from the app's own Markdown
  $('epoch').max = Math.max(n, 2);
  $('epoch').value = Math.max(n, 1);
  $('epoch-label').hidden = n < 2;  // a slider needs two positions
  showSample();
}

function showSample() {
  const info = site.models[Number($('model').value)], k = Number($('epoch').value);
  const samples = info.samples || [], [caption, play] = samples[k - 1] || ['', ''];
  $('epoch-shown').textContent = `${k} of ${samples.length}`;
  $('sample-caption').innerHTML = caption;
  $('sample').innerHTML = play;
}

// ---------- Inside: a text shaded by one hidden unit, as the app's Inside view (ui/inside.py) ----------

class CellState extends Error {}

function unitName(units, index) {  // charrnn.inside.unit_name: "layer 2 cell 137", layers from 1
  const [layer, kind] = units.groups[Math.floor(index / units.hidden_size)];
  return `layer ${layer + 1} ${kind} ${index % units.hidden_size}`;
}

// The activation in [-1, 1] of unit number `index` after each character of `text` (known characters only): the
// graph's output of that unit's layer, read from the zero state in one call.
export async function unitActivations(m, text, index) {
  const units = m.info.units, H = units.hidden_size;
  const [layer, kind] = units.groups[Math.floor(index / H)];
  if (kind === 'cell') throw new CellState(unitName(units, index));
  const ids = chars(text).map((c) => m.stoi.get(c)), name = m.info.layers[layer];
  const data = (await m.session.run(feeds(m, ids, zeroState(m.info)), [name]))[name].data;  // (1, T, H)
  return ids.map((_, t) => data[t * H + (index % H)]);
}

// A background for a value in [-1, 1]: red for positive, purple for negative, as strong as |value| (ui/inside.shade).
function shade(v) {
  const [r, g, b] = v >= 0 ? site.inside.positive : site.inside.negative;
  return `background: rgba(${r}, ${g}, ${b}, ${Math.abs(v).toFixed(3)})`;
}

function shadedHtml(text, values) {  // ui/inside.shaded: one element per character, a line break marked
  const cells = chars(text).map((c, i) => `<span data-c="${i}" style="${shade(values[i])}">${escape(c === '\n' ? '↵\n' : c)}</span>`);
  return `<div class="shaded">${cells.join('')}</div>`;
}

function fullApp(text) {
  return site.app_url ? `<a href="${escape(site.app_url)}">${escape(text)}</a>` : escape(text);
}

// The unit box's choices for the model chosen above: its recorded features (the first one this page can shade
// chosen), then a unit by its number.
function unitOptions() {
  const units = site.models[Number($('model').value)].units;
  const features = units ? units.features : [];
  $('unit').innerHTML = features.map((f) => `<option value="${escape(f.name)}">${escape(f.label)}</option>`).join('') +
    '<option value="#">a unit by its number</option>';
  const shadeable = features.find((f) => units.groups[Math.floor(f.unit / units.hidden_size)][1] !== 'cell');
  $('unit').value = shadeable ? shadeable.name : (features[0] || { name: '#' }).name;
  if (units) $('unit-number').max = units.groups.length * units.hidden_size - 1;
  unitNumberShown();
}

function unitNumberShown() {
  $('unit-number-label').hidden = $('unit').value !== '#';
}

// The unit the box names (a feature's best unit, or a number) and the app's note on it (HTML).
function chosenUnit(units) {
  const feature = units.features.find((f) => f.name === $('unit').value);
  if (feature) return { index: feature.unit, note: feature.note, others: feature.others };
  const index = number('unit', $('unit-number').value, 0, units.groups.length * units.hidden_size - 1, { integer: true });
  const note = units.notes[index] ?? `<strong>Unit ${index}</strong> (${escape(unitName(units, index))}), ${escape(units.unnamed)}.`;
  return { index, note, others: [] };
}

async function runUnits() {
  let m, clean, unit, dropped = '';
  $('unit-shaded').innerHTML = '';
  $('unit-note').innerHTML = '';
  try {
    m = await model(Number($('model').value));
    if (!m.info.units) throw new InputError(`the Inside view's units do not apply to ${m.info.name}`);
    const raw = $('inside-text').value, n = chars(raw).length, max = site.inside.max_chars;
    if (n > max) throw new InputError(`text is ${n.toLocaleString('en')} characters long; at most ${max.toLocaleString('en')} are allowed`);
    const norm = normalize(raw, m.info.vocab, site.normalize);
    clean = norm.text;
    if (!clean) throw new InputError('text must hold at least one character the model knows');
    unit = chosenUnit(m.info.units);
    if (norm.n) dropped = ` Note: ${escape(droppedNote(norm.dropped, norm.n))}.`;
    note('unit-error', '');
  } catch (e) {
    note('unit-error', e instanceof InputError ? e.message : `could not load the model: ${e.message}`, true);
    return;
  }
  $('unit-button').disabled = true;
  try {
    const acts = await unitActivations(m, clean, unit.index);
    $('unit-shaded').innerHTML = shadedHtml(clean, acts);
    $('unit-note').innerHTML = `${unit.note} ${escape(site.inside.legend)}${dropped}`;
  } catch (e) {
    if (!(e instanceof CellState)) throw e;
    // ONNX's LSTM node gives its cell state c after the last step only: no value per character to shade by.
    const others = unit.others.filter(([i]) => m.info.units.groups[Math.floor(i / m.info.units.hidden_size)][1] !== 'cell')
      .map(([i, name, auc]) => `<button class="link" data-unit="${i}">unit ${i}</button> (${escape(name)}, AUC ${auc})`);
    $('unit-note').innerHTML = `${unit.note} <b>This unit is an LSTM cell state, which this edition cannot shade a ` +
      `text by:</b> its models give the cell state after the last character only (ONNX's LSTM node), not after ` +
      `each one. The ${fullApp('full app')} shades by it.` +
      (others.length ? ` The record's other units for this feature that this page can shade: ${others.join(', ')}.` : '');
  } finally {
    $('unit-button').disabled = false;
  }
}

function shadeByNumber(index) {
  $('unit').value = '#';
  $('unit-number').value = index;
  unitNumberShown();
  runUnits();
}

function openTab(name) {
  for (const t of ['write', 'compare', 'learned', 'score', 'inside']) {
    $(`tab-${t}`).setAttribute('aria-selected', String(t === name));
    $(t).hidden = t !== name;
  }
}

async function start() {
  try {
    site = await (await fetch('models.json')).json();
    ort = await import('./ort.wasm.min.mjs');
  } catch (e) {
    fatal(`<b>The page could not load its files</b> (${escape(String(e.message || e))}): serve the whole directory that
      <code>python -m charrnn export-web</code> wrote.`);
    return;
  }
  ort.env.wasm.wasmPaths = new URL('./', import.meta.url).href;  // the runtime's files are here: no other host
  ort.env.wasm.numThreads = 1;  // a step is too small to gain from threads, which would need cross-origin isolation
  site.models.forEach((m, i) => { m.index = i; });
  if (site.app_url) $('full-app').innerHTML = `The <a href="${escape(site.app_url)}">full app</a> also shows what one prediction leans on and the characters a model expected in your text.`;
  for (const e of document.querySelectorAll('.full-app-link')) e.innerHTML = fullApp(e.textContent);
  const best = bestIndex();
  $('model').innerHTML = site.models.map((m, i) =>
    `<option value="${i}"${i === best ? ' selected' : ''}>${escape(m.name)}${i === best ? ' · best' : ''}</option>`).join('');
  for (const id of ['prompt', 'compare-prompt']) $(id).value = site.sample_prompt;
  for (const id of ['length', 'compare-length']) {
    $(id).max = id === 'length' ? site.limits.max_length : site.limits.max_compare_length;
  }
  for (const id of ['temperature', 'compare-temperature']) $(id).max = site.limits.max_temperature;
  $('random-seed').max = $('compare-seed').max = site.limits.max_random_seed;
  const topK = () => { $('top-k').max = chars(site.models[Number($('model').value)].vocab).length; };
  topK();
  $('model').addEventListener('change', topK);
  buildCompareColumns();
  $('tab-write').addEventListener('click', () => openTab('write'));
  $('tab-compare').addEventListener('click', () => openTab('compare'));
  $('generate').addEventListener('click', runWrite);
  $('stop').addEventListener('click', () => { stopWrite = true; });
  $('compare-button').addEventListener('click', runCompare);
  $('tab-score').addEventListener('click', () => openTab('score'));
  $('tab-learned').addEventListener('click', () => openTab('learned'));
  $('test-bars').innerHTML = site.charts.bars || '';  // SVG drawn at export time by the app's ui/charts.py
  $('loss-curves').innerHTML = site.charts.curves || '';
  $('tab-inside').addEventListener('click', () => openTab('inside'));
  $('inside-text').value = site.inside.example || '';
  unitOptions();
  $('model').addEventListener('change', unitOptions);
  $('unit').addEventListener('change', unitNumberShown);
  $('unit-button').addEventListener('click', runUnits);
  $('unit-note').addEventListener('click', (ev) => {
    const b = ev.target.closest('button[data-unit]');
    if (b) shadeByNumber(Number(b.dataset.unit));
  });
  showChosen();
  $('model').addEventListener('change', showChosen);
  $('epoch').addEventListener('input', showSample);
  $('horizon-chart').innerHTML = site.charts.horizon || '';
  $('horizon-table').innerHTML = markdownTable(site.charts.horizon_table || '');
  $('score-button').addEventListener('click', runScore);
  const colours = document.createElement('style');  // the classes' colours, as the export names them
  colours.textContent = site.loss_classes.map(([, , colour], k) => `.l${k} { background: ${colour}; }`).join('\n');
  document.head.appendChild(colours);
  $('compare-stop').addEventListener('click', () => { stopCompare = true; });
  $('site').hidden = false;
  // For the browser tests (tests/test_web_browser.py): the page's own computations, on the page's own models.
  window.charrnnPage = {
    ready: true,
    bits: async (i, text) => textBits(await model(i), text),
    write: async (i, prompt, length, settings) => {
      let out = '';
      for await (const c of write(await model(i), prompt, length, settings)) out += c;
      return out;
    },
    loadMs: async (i) => (await model(i)).loadMs,
    // python -m charrnn bench web: the first character and the whole text of one writing, timed in the page.
    timed: async (i, prompt, length, settings) => {
      const m = await model(i), t0 = performance.now();
      let first = null, n = 0;
      for await (const c of write(m, prompt, length, settings)) {
        if (first === null) first = performance.now() - t0;
        n += c.length;
      }
      return { firstMs: first, totalMs: performance.now() - t0, n };
    },
    normalize: (i, text) => normalize(text, site.models[i].vocab, site.normalize),
    units: async (i, text, index) => unitActivations(await model(i), text, index),
    probs: (logits, temperature, topK, topP) => nextCharProbs(logits, temperature, topK, topP),
  };
}

start();
