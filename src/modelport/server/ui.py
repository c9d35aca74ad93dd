"""The web pages: ``/`` to try every model from the browser, ``/docs`` to read the API.

Both pages are self-contained (no CDN): they work on an air-gapped host.
"""

from __future__ import annotations

import html

from modelport.repository import Repository
from modelport.server.http import Response, dumps

__all__ = ["docs_page", "index_page"]

_HTML = ((b"content-type", b"text/html; charset=utf-8"),)

_STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:980px;padding:0 1rem;color:#1d232a}
h1{font-size:1.6rem;margin-bottom:.2rem} h2{font-size:1.2rem;margin:1.6rem 0 .4rem}
code,pre,textarea{font:13px/1.4 ui-monospace,monospace} pre{background:#f4f6f8;padding:.6rem;overflow:auto}
.model{border:1px solid #d6dbe1;border-radius:8px;padding:1rem;margin:1rem 0}
.muted{color:#5b6673} table{border-collapse:collapse} td,th{padding:.15rem .6rem;text-align:left}
textarea{width:100%;min-height:3.2rem} button{padding:.35rem 1rem;margin-top:.4rem;cursor:pointer}
.err{color:#a4161a} .path{font-weight:600} .verb{display:inline-block;width:3.6rem;font-weight:700}
"""

_INDEX_SCRIPT = """
const token = () => document.getElementById('token').value.trim();
async function run(name) {
  const card = document.getElementById('m-' + name);
  const inputs = [];
  for (const ta of card.querySelectorAll('textarea')) {
    let data;
    try { data = JSON.parse(ta.value); } catch (e) { show(name, 'input ' + ta.dataset.name + ': ' + e, true); return; }
    const rows = Array.isArray(data) ? data : [data];
    const inner = JSON.parse(ta.dataset.shape).slice(1).map(d => d < 0 ? (Array.isArray(rows[0]) ? rows[0].length : 1) : d);
    inputs.push({name: ta.dataset.name, datatype: ta.dataset.datatype, shape: [rows.length, ...inner], data: rows.flat(Infinity)});
  }
  const headers = {'content-type': 'application/json'};
  if (token()) headers['authorization'] = 'Bearer ' + token();
  const started = performance.now();
  const r = await fetch('/v2/models/' + encodeURIComponent(name) + '/infer', {method: 'POST', headers, body: JSON.stringify({inputs})});
  const body = await r.json();
  show(name, 'HTTP ' + r.status + ' in ' + (performance.now() - started).toFixed(1) + ' ms\\n' + JSON.stringify(body, null, 2), !r.ok);
}
function show(name, text, bad) { const o = document.getElementById('out-' + name); o.textContent = text; o.className = bad ? 'err' : ''; }
"""


def _sample(datatype: str, shape: tuple[int, ...]) -> str:
    value: object = "text" if datatype == "BYTES" else (False if datatype == "BOOL" else 0)
    for dim in reversed(shape[1:]):
        value = [value] * (dim if dim > 0 else 1)
    return dumps([value]).decode()


def index_page(repository: Repository) -> Response:
    cards = []
    for entry in repository.entries():
        versions = ", ".join(
            f"{v.version} ({v.state.lower()}{': ' + html.escape(v.reason) if v.reason else ''})"
            for v in sorted(entry.versions.values(), key=lambda v: v.version)
        )
        name = html.escape(entry.name)
        try:
            model = repository.get(entry.name)
        except Exception:
            cards.append(f'<div class="model"><h2>{name}</h2><p class="err">versions: {versions}</p></div>')
            continue
        rows = "".join(
            f"<tr><td><code>{html.escape(s.name)}</code></td><td>{s.datatype}</td><td>{list(s.shape)}</td></tr>"
            for s in model.signature.inputs
        )
        outs = ", ".join(
            f"<code>{html.escape(s.name)}</code> {s.datatype}{list(s.shape)}" for s in model.signature.outputs
        )
        fields = "".join(
            f'<label>{html.escape(s.name)} <span class="muted">(a list of rows)</span></label>'
            f'<textarea data-name="{html.escape(s.name)}" data-datatype="{s.datatype}" '
            f"data-shape='{dumps(list(s.shape)).decode()}'>{html.escape(_sample(s.datatype, s.shape))}</textarea>"
            for s in model.signature.inputs
        )
        cards.append(
            f'<div class="model" id="m-{name}"><h2>{name}</h2>'
            f'<p class="muted">flavor {html.escape(model.flavor)} · versions {versions}</p>'
            f"<table><tr><th>input</th><th>datatype</th><th>shape</th></tr>{rows}</table>"
            f"<p>outputs: {outs}</p>{fields}"
            f'<button onclick="run(\'{name}\')">Predict</button><pre id="out-{name}"></pre></div>'
        )
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>modelport</title><style>{_STYLE}</style></head><body>"
        "<h1>modelport</h1><p class='muted'>Try each model: edit the rows and press Predict. "
        "API reference: <a href='/docs'>/docs</a> · <a href='/openapi.json'>/openapi.json</a></p>"
        "<label>Bearer token (if the server asks for one) <input id='token' type='password'></label>"
        f"{''.join(cards) or '<p>No models loaded.</p>'}<script>{_INDEX_SCRIPT}</script></body></html>"
    )
    return Response(200, page.encode(), headers=_HTML)


_DOCS_SCRIPT = """
fetch('/openapi.json').then(r => r.json()).then(spec => {
  const root = document.getElementById('api');
  const refs = spec.components.schemas;
  const resolve = s => s && s.$ref ? refs[s.$ref.split('/').pop()] : s;
  for (const [path, ops] of Object.entries(spec.paths)) {
    for (const [verb, op] of Object.entries(ops)) {
      const d = document.createElement('details');
      const body = op.requestBody ? resolve(op.requestBody.content['application/json'].schema) : null;
      d.innerHTML = '<summary><span class="verb">' + verb.toUpperCase() + '</span><span class="path"></span> <span class="muted"></span></summary>';
      d.querySelector('.path').textContent = path; d.querySelector('.muted').textContent = op.summary || '';
      if (body) { const p = document.createElement('pre'); p.textContent = JSON.stringify(body, null, 2); d.appendChild(p); }
      const codes = document.createElement('p'); codes.className = 'muted';
      codes.textContent = 'responses: ' + Object.keys(op.responses || {}).join(', '); d.appendChild(codes);
      root.appendChild(d);
    }
  }
}).catch(e => { document.getElementById('api').textContent = 'could not load /openapi.json: ' + e; });
"""


def docs_page() -> Response:
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>modelport API</title><style>{_STYLE}</style></head>"
        "<body><h1>modelport API</h1><p class='muted'>From <a href='/openapi.json'>/openapi.json</a>. "
        'Errors are always <code>{"error": "..."}</code>. <a href=\'/\'>Try the models</a>.</p>'
        f"<div id='api'></div><script>{_DOCS_SCRIPT}</script></body></html>"
    )
    return Response(200, page.encode(), headers=_HTML)
