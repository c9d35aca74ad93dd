// The "try a model" page: a form per model built from /ui/api/models, results drawn from the V2 answer.
'use strict';
const NUMERIC = new Set(['FP16', 'FP32', 'FP64', 'INT8', 'INT16', 'INT32', 'INT64', 'UINT8', 'UINT16', 'UINT32', 'UINT64']);
const LABEL_OUTPUTS = ['predict', 'prediction', 'label', 'predicted_label', 'class', 'classes'];

document.addEventListener('DOMContentLoaded', () => { setupToken(load); load(); });

async function load() {
  const root = document.getElementById('models');
  root.replaceChildren();
  showStatus('loading models...');
  let data;
  try { data = await getJSON('/ui/api/models'); } catch (e) {
    showStatus(e.status === 401 ? 'This server asks for a bearer token: enter it above and press Save. (' + e.message + ')' : 'Could not load the models: ' + e.message, true);
    return;
  }
  showStatus(data.models.length ? '' : 'No models are loaded.');
  data.models.forEach((m, i) => root.append(card(m, i)));
}

function fieldId(ci, ii, fi) { return 'f-' + ci + '-' + ii + '-' + fi; }

function card(m, ci) {
  const versions = m.versions.map(v => v.version + ' (' + v.state.toLowerCase() + (v.reason ? ': ' + v.reason : '') + ')').join(', ');
  const head = el('div', {}, el('h2', {id: 'h-' + ci, text: m.name}),
    el('p', {class: 'muted'}, m.flavor ? 'flavor ' + m.flavor + ' · serving version ' + m.version + ' · ' : '', 'versions ' + versions));
  const box = el('section', {class: 'card', 'aria-labelledby': 'h-' + ci, 'data-model': m.name}, head);
  if (m.error) { box.append(el('p', {class: 'error', text: m.error})); return box; }
  const form = el('form', {novalidate: true});
  // Single-column inputs share one grid; row arrays and tensors get a fieldset each.
  const columns = el('div', {class: 'fields columns'});
  m.inputs.forEach((spec, ii) => {
    if (spec.kind === 'field' || spec.kind === 'text') columns.append(fieldControl(spec, spec.fields[0], fieldId(ci, ii, 0), spec.name));
    else form.append(inputBlock(spec, ci, ii));
  });
  if (columns.children.length) form.prepend(el('fieldset', {}, el('legend', {text: 'inputs'}), columns));
  const rowsBox = el('textarea', {id: 'rows-' + ci, rows: 4, 'aria-describedby': 'rows-help-' + ci,
    placeholder: csvHeader(m) + '\n...'});
  form.append(el('details', {class: 'many'}, el('summary', {text: 'Many rows at once (CSV or JSON)'}),
    el('p', {id: 'rows-help-' + ci, class: 'muted', text: 'CSV with a header row naming the fields (' + csvHeader(m) + '), or a JSON list of rows, each an object from input name to value. When this box is filled it is sent instead of the fields above.'}),
    el('label', {for: 'rows-' + ci, class: 'sr-only', text: 'rows for ' + m.name}), rowsBox));
  const result = el('div', {class: 'result', 'aria-live': 'polite'});
  form.append(el('div', {class: 'actions'},
    el('button', {type: 'submit', class: 'primary', text: 'Predict'}),
    el('button', {type: 'button', text: 'Fill example', onclick: () => fillExample(m, ci, form)}),
    el('button', {type: 'button', text: 'Clear', onclick: () => { form.reset(); result.replaceChildren(); clearErrors(form); }})));
  form.addEventListener('submit', (e) => { e.preventDefault(); predict(m, ci, form, result); });
  box.append(form, result);
  return box;
}

function describeShape(spec) { return spec.datatype + ' [' + spec.shape.join(', ') + ']'; }

function inputBlock(spec, ci, ii) {
  const legend = el('legend', {}, spec.name, ' ', el('span', {class: 'muted', text: describeShape(spec)}));
  const set = el('fieldset', {'data-input': spec.name}, legend);
  if (spec.kind === 'tensor') {
    const id = fieldId(ci, ii, 0);
    set.append(el('label', {for: id, class: 'muted', text: 'one row as JSON (a nested list of shape [' + spec.shape.slice(1).join(', ') + '])'}),
      el('textarea', {id, 'data-kind': 'json', rows: 3, placeholder: '[...]'}));
  } else {
    const grid = el('div', {class: 'fields'});
    spec.fields.forEach((f, fi) => grid.append(fieldControl(spec, f, fieldId(ci, ii, fi))));
    set.append(grid);
  }
  set.append(el('div', {class: 'field-error', role: 'alert'}));
  return set;
}

function fieldControl(spec, f, id, input) {
  // ``input`` set: this field is a whole input, so it carries the input's name and its own error slot.
  const wide = spec.kind === 'text' && !f.categories ? ' wide' : '';
  const wrap = el('div', {class: 'field' + wide, 'data-input': input || null}, el('label', {for: id, text: f.label}));
  let control;
  if (f.categories) {
    control = el('select', {id});
    for (const c of f.categories) control.append(el('option', {value: String(c), text: String(c)}));
  } else if (spec.datatype === 'BOOL') {
    control = el('select', {id}, el('option', {value: 'true', text: 'true'}), el('option', {value: 'false', text: 'false'}));
  } else if (spec.kind === 'text') {
    control = el('textarea', {id, rows: 3, placeholder: 'text'});
  } else if (NUMERIC.has(spec.datatype)) {
    // A text box, not type=number: what the user typed reaches the server, whose message is the judge.
    control = el('input', {id, type: 'text', inputmode: 'decimal', autocomplete: 'off',
      placeholder: f.example !== undefined ? 'e.g. ' + f.example : 'number'});
  } else {
    control = el('input', {id, type: 'text', autocomplete: 'off'});
  }
  control.dataset.datatype = spec.datatype;
  control.title = spec.datatype;
  wrap.append(control);
  if (input) wrap.append(el('div', {class: 'field-error', role: 'alert'}));
  return wrap;
}

function csvHeader(m) {
  const names = [];
  for (const spec of m.inputs) {
    if (spec.kind === 'tensor') names.push(spec.name);
    else for (const f of spec.fields) names.push(f.label);
  }
  return names.join(',');
}

function fillExample(m, ci, form) {
  clearErrors(form);
  const row = (m.examples && m.examples[0]) || null;
  m.inputs.forEach((spec, ii) => {
    if (spec.kind === 'tensor') {
      const value = row && row[spec.name] !== undefined ? row[spec.name] : spec.example;
      if (value !== undefined) document.getElementById(fieldId(ci, ii, 0)).value = JSON.stringify(value);
      return;
    }
    const given = row ? row[spec.name] : undefined;
    spec.fields.forEach((f, fi) => {
      let v = f.example;
      if (given !== undefined) v = Array.isArray(given) && spec.fields.length > 1 ? given[fi] : (Array.isArray(given) ? given[0] : given);
      if (v !== undefined && v !== null) document.getElementById(fieldId(ci, ii, fi)).value = String(v);
    });
  });
  if (m.examples && m.examples.length > 1) document.getElementById('rows-' + ci).value = JSON.stringify(m.examples, null, 0);
}

function clearErrors(form) {
  for (const e of form.querySelectorAll('.field-error')) e.replaceChildren();
}

function convert(text, datatype) {
  if (datatype === 'BYTES') return text;
  if (datatype === 'BOOL') return text === 'true' ? true : text === 'false' ? false : text;
  const t = String(text).trim();
  if (t === '') return null;
  if (/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(t)) return Number(t);
  return t;  // not a number: sent as typed, so the server's validation message explains it
}

// Rows as a list of {input: value-for-this-row}.
function rowsFromForm(m, ci) {
  const row = {};
  m.inputs.forEach((spec, ii) => {
    if (spec.kind === 'tensor') {
      const text = document.getElementById(fieldId(ci, ii, 0)).value.trim();
      try { row[spec.name] = text ? JSON.parse(text) : null; } catch (e) { throw inputError(spec.name, 'input \'' + spec.name + '\' is not valid JSON: ' + e.message); }
      return;
    }
    const values = spec.fields.map((f, fi) => convert(document.getElementById(fieldId(ci, ii, fi)).value, spec.datatype));
    row[spec.name] = spec.kind === 'fields' ? values : values[0];
  });
  return [row];
}

function inputError(name, message) { const e = new Error(message); e.input = name; return e; }

function rowsFromText(m, text) {
  text = text.trim();
  if (text.startsWith('[') || text.startsWith('{')) {
    let rows;
    try { rows = JSON.parse(text); } catch (e) { throw new Error('the rows box is not valid JSON: ' + e.message); }
    return Array.isArray(rows) ? rows : [rows];
  }
  const lines = text.split(/\r?\n/).filter(l => l.trim() !== '');
  if (lines.length < 2) throw new Error('CSV needs a header row and at least one row');
  const header = splitCSV(lines[0]);
  const where = {};
  for (const spec of m.inputs) {
    if (spec.kind === 'tensor') where[spec.name] = [spec, -1];
    else spec.fields.forEach((f, fi) => { where[f.label] = [spec, fi]; });
  }
  for (const h of header) if (!(h in where)) throw new Error('CSV column \'' + h + '\' is not a field of this model; fields: ' + Object.keys(where).join(', '));
  return lines.slice(1).map(line => {
    const cells = splitCSV(line);
    const row = {};
    header.forEach((h, k) => {
      const [spec, fi] = where[h];
      const value = fi < 0 ? JSON.parse(cells[k]) : convert(cells[k] === undefined ? '' : cells[k], spec.datatype);
      if (spec.kind === 'fields') { (row[spec.name] = row[spec.name] || new Array(spec.fields.length).fill(null))[fi] = value; }
      else row[spec.name] = value;
    });
    return row;
  });
}

function splitCSV(line) {
  const out = []; let cur = ''; let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i];
    if (quoted) {
      if (ch === '"' && line[i + 1] === '"') { cur += '"'; i++; } else if (ch === '"') quoted = false; else cur += ch;
    } else if (ch === '"') quoted = true; else if (ch === ',') { out.push(cur.trim()); cur = ''; } else cur += ch;
  }
  out.push(cur.trim());
  return out;
}

function dims(value) {
  const d = [];
  let v = value;
  while (Array.isArray(v)) { d.push(v.length); v = v[0]; }
  return d;
}

function v2Request(m, rows) {
  const inputs = m.inputs.map(spec => {
    const values = rows.map(r => r[spec.name] === undefined ? null : r[spec.name]);
    let shape;
    if (spec.kind === 'tensor' || spec.kind === 'fields') shape = [rows.length, ...dims(values[0])];
    else shape = spec.shape.length === 2 ? [rows.length, 1] : [rows.length];
    return {name: spec.name, datatype: spec.datatype, shape, data: values.flat(Infinity)};
  });
  return {inputs};
}

async function predict(m, ci, form, result) {
  clearErrors(form);
  result.replaceChildren();
  let rows;
  try {
    const text = document.getElementById('rows-' + ci).value;
    rows = text.trim() ? rowsFromText(m, text) : rowsFromForm(m, ci);
  } catch (e) { return showError(form, result, e.message, e.input); }
  const body = v2Request(m, rows);
  const path = '/v2/models/' + encodeURIComponent(m.name) + '/infer';
  const started = performance.now();
  let r, answer;
  try {
    r = await fetch(path, {method: 'POST', headers: authHeaders({'content-type': 'application/json'}), body: JSON.stringify(body)});
    answer = await r.json();
  } catch (e) { return showError(form, result, 'the request failed: ' + e.message); }
  const ms = performance.now() - started;
  const meta = el('p', {class: 'muted latency'}, 'HTTP ' + r.status + ' · ' + ms.toFixed(1) + ' ms round trip' + (answer.model_version ? ' · version ' + answer.model_version : ''));
  result.append(meta);
  if (!r.ok) showError(form, result, answer.error || ('HTTP ' + r.status), null, m);
  else result.append(drawOutputs(m, answer, rows.length));
  result.append(snippets(m, path, body, rows));
}

function showError(form, result, message, input, m) {
  // The server's text, verbatim, beside the input it names (and at the top of the result).
  let name = input;
  if (!name && m) {
    for (const spec of m.inputs) if (message.includes('\'' + spec.name + '\'')) { name = spec.name; break; }
  }
  if (name) {
    for (const set of form.querySelectorAll('[data-input]')) {
      if (set.dataset.input === name) set.querySelector('.field-error').replaceChildren(el('p', {class: 'error', text: message}));
    }
  }
  result.append(el('p', {class: 'error', role: 'alert', text: message}));
}

function reshape(out) {
  const rows = out.shape[0];
  const width = out.shape.slice(1).reduce((a, b) => a * b, 1);
  const data = out.data;
  const list = [];
  for (let i = 0; i < rows; i++) list.push(out.shape.length === 1 ? data[i] : data.slice(i * width, (i + 1) * width));
  return list;
}

function drawOutputs(m, answer, n) {
  const specs = Object.fromEntries(m.outputs.map(o => [o.name, o]));
  const outs = answer.outputs || [];
  const wrap = el('div', {});
  // Class probabilities: an output whose signature names the classes, or one called *prob* (classes by index).
  const labelsOf = o => (specs[o.name] && specs[o.name].labels && o.shape.length === 2 && o.shape[1] === specs[o.name].labels.length)
    ? specs[o.name].labels : (/prob/i.test(o.name) && o.shape.length === 2 && o.shape[1] > 1 ? [...Array(o.shape[1]).keys()].map(String) : null);
  const prob = outs.find(o => /prob/i.test(o.name) && labelsOf(o)) || outs.find(o => labelsOf(o));
  const labelOut = outs.find(o => LABEL_OUTPUTS.includes(o.name) && o.shape.length === 1);
  if (n === 1) {
    if (labelOut) {
      let shown = labelOut.data[0];
      if (prob && typeof shown === 'number' && Number.isInteger(shown) && labelsOf(prob)[shown] !== undefined && String(labelsOf(prob)[shown]) !== String(shown)) shown = shown + ' (' + labelsOf(prob)[shown] + ')';
      const unit = specs[labelOut.name] && specs[labelOut.name].unit ? ' ' + specs[labelOut.name].unit : '';
      wrap.append(el('p', {class: 'predicted', 'data-output': labelOut.name, 'data-value': String(labelOut.data[0])}, el('span', {class: 'muted', text: labelOut.name + ': '}), fmt(shown), unit));
    }
    if (prob) wrap.append(bars(prob, labelsOf(prob), labelOut));
    for (const o of outs) {
      if (o === prob || o === labelOut) continue;
      const unit = specs[o.name] && specs[o.name].unit ? ' ' + specs[o.name].unit : '';
      if (o.shape.length === 1) wrap.append(el('p', {class: 'value-out', 'data-output': o.name}, el('span', {class: 'muted', text: o.name + ': '}), el('strong', {text: fmt(o.data[0])}), unit));
      else wrap.append(el('details', {}, el('summary', {text: o.name + ' ' + o.datatype + ' [' + o.shape.join(', ') + ']'}), el('pre', {text: JSON.stringify(o.data)})));
    }
  } else {
    wrap.append(table(outs, prob ? labelsOf(prob) : null, prob, n, specs));
  }
  wrap.append(el('details', {}, el('summary', {text: 'Response JSON'}), el('pre', {text: JSON.stringify(answer, null, 2)})));
  return wrap;
}

function bars(prob, labels, labelOut) {
  const values = prob.data.slice(0, labels.length);
  const order = values.map((v, i) => i).sort((a, b) => values[b] - values[a]);
  const top = order[0];
  const max = Math.max(...values.map(Math.abs), 1e-12);
  const grid = el('div', {class: 'bars', role: 'list', 'aria-label': prob.name + ' by class'});
  for (const i of order) {
    const hit = i === top ? ' hit' : '';
    const pct = Math.max(0, values[i]) / max * 100;
    grid.append(
      el('span', {class: 'label' + hit, role: 'listitem', 'data-label': String(labels[i]), 'data-value': String(values[i]), text: String(labels[i])}),
      barOf(hit, pct),
      el('span', {class: 'value', text: fmt(values[i])}));
  }
  return el('div', {}, el('p', {class: 'muted', text: prob.name + (labelOut ? '' : ' (the highest is highlighted)')}), grid);
}

function barOf(hit, pct) {
  const bar = el('div', {class: 'bar' + hit, 'aria-hidden': 'true'});
  bar.style.width = pct.toFixed(2) + '%';  // CSSOM, not a style attribute: allowed by the page's CSP
  return bar;
}

function table(outs, probLabels, prob, n, specs) {
  const head = el('tr', {}, el('th', {scope: 'col', text: 'row'}));
  const cols = [];
  for (const o of outs) {
    if (o === prob) { head.append(el('th', {scope: 'col', text: o.name + ' (top)'})); cols.push(['top', o]); }
    else if (o.shape.length === 1) { head.append(el('th', {scope: 'col', text: o.name + (specs[o.name] && specs[o.name].unit ? ' (' + specs[o.name].unit + ')' : '')})); cols.push(['one', o]); }
    else { head.append(el('th', {scope: 'col', text: o.name})); cols.push(['many', o]); }
  }
  const body = el('tbody', {});
  const shaped = cols.map(([kind, o]) => [kind, o, reshape(o)]);
  for (let i = 0; i < n; i++) {
    const tr = el('tr', {}, el('td', {class: 'num', text: String(i)}));
    for (const [kind, o, rows] of shaped) {
      if (kind === 'top') {
        const labels = probLabels; const v = rows[i];
        const k = v.indexOf(Math.max(...v));
        tr.append(el('td', {text: labels[k] + ' · ' + fmt(v[k])}));
      } else if (kind === 'one') tr.append(el('td', {class: typeof rows[i] === 'number' ? 'num' : '', text: fmt(rows[i])}));
      else tr.append(el('td', {text: JSON.stringify(rows[i]).slice(0, 120)}));
    }
    body.append(tr);
  }
  return el('div', {class: 'scroll'}, el('table', {class: 'grid'}, el('thead', {}, head), body));
}

function shellQuote(s) { return '\'' + s.replace(/'/g, '\'\\\'\'') + '\''; }

function snippets(m, path, body, rows) {
  const url = location.origin + path;
  const auth = token() ? ' -H "authorization: Bearer $MODELPORT_TOKEN"' : '';
  const curl = 'curl -s -X POST ' + shellQuote(url) + ' -H \'content-type: application/json\'' + auth + ' -d ' + shellQuote(JSON.stringify(body));
  const columns = {};
  for (const spec of m.inputs) columns[spec.name] = rows.map(r => r[spec.name]);
  const py = ['from modelport.client import Client', '',
    'with Client(' + JSON.stringify(location.origin) + (token() ? ', headers={"authorization": "Bearer " + TOKEN}' : '') + ') as client:',
    '    out = client.predict(' + JSON.stringify(m.name) + ', ' + JSON.stringify(columns).replace(/\bnull\b/g, 'None').replace(/\btrue\b/g, 'True').replace(/\bfalse\b/g, 'False') + ')',
    'print(out)'].join('\n');
  return el('details', {class: 'snippets'}, el('summary', {text: 'This request as curl and Python'}),
    copyable('curl', curl), copyable('Python', py));
}

function copyable(title, text) {
  const pre = el('pre', {text});
  const button = el('button', {type: 'button', text: 'Copy ' + title, onclick: async () => {
    try { await navigator.clipboard.writeText(text); button.textContent = 'Copied'; } catch (e) { button.textContent = 'Select and copy by hand'; }
    setTimeout(() => { button.textContent = 'Copy ' + title; }, 1500);
  }});
  return el('div', {}, button, pre);
}
