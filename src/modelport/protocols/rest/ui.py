"""The web pages: ``/`` to try every model from a form, ``/ui/ops`` to watch the server, ``/docs`` for the API.

The pages are static files (``server/static/``) with no names or data in them, so they are
served without a token and cannot carry script injected through a model's name; everything
model-specific comes from two JSON endpoints that need the bearer token like every other route:

- ``GET /ui/api/models``: per model, the form to show (one field per column or feature, known
  categories, example values from ``modelport.runtimes.input_hints``) and the outputs to draw;
- ``GET /ui/api/ops``: per model and version, state, traffic share, batching, and the last ten
  minutes of requests/s, error rates and latency percentiles (``modelport.observability.activity``).

Nothing is loaded from the internet: charts are hand-drawn SVG.
"""

from __future__ import annotations

import asyncio
import weakref
from importlib import resources
from typing import TYPE_CHECKING, Any

from modelport.core.errors import NotFound
from modelport.protocols.rest.http import Response, dumps
from modelport.runtimes.input_hints import FieldHint, example_rows, model_hints

if TYPE_CHECKING:
    from modelport.core.model import Model
    from modelport.protocols.rest.app import ModelportApp
    from modelport.serving.repository import Repository

__all__ = ["OPEN_PAGES", "docs_page", "index_page", "models_payload", "ops_payload", "route"]

_HTML = ((b"content-type", b"text/html; charset=utf-8"),)
_TYPES = {
    "html": b"text/html; charset=utf-8",
    "js": b"text/javascript; charset=utf-8",
    "css": b"text/css; charset=utf-8",
}
# The pages hold no inline script: a policy that forbids it costs nothing and stops injection cold.
_CSP = (
    b"content-security-policy",
    b"default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
    b"base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
)
_STATIC_PREFIX = "/ui/static/"
OPEN_PAGES = frozenset({"/", "/ui/ops", "/docs"})
"""Pages (and ``/ui/static/*``) anyone may load: they carry no data, the JSON behind them needs the token."""

MAX_FIELDS = 64
"""Row arrays with more features than this are a paste box, not a field per feature."""

_files: dict[str, bytes] = {}


def _static(name: str) -> bytes:
    data = _files.get(name)
    if data is None:
        data = (resources.files("modelport.protocols.rest") / "static" / name).read_bytes()
        _files[name] = data
    return data


def _file_response(name: str) -> Response:
    kind = name.rsplit(".", 1)[-1]
    if "/" in name or kind not in _TYPES:
        raise NotFound(f"no static file '{name}'")
    try:
        body = _static(name)
    except (FileNotFoundError, IsADirectoryError):
        raise NotFound(f"no static file '{name}'") from None
    headers = [(b"content-type", _TYPES[kind]), (b"cache-control", b"no-cache")]
    if kind == "html":
        headers.append(_CSP)
    return Response(200, body, headers=tuple(headers))


def index_page() -> Response:
    return _file_response("index.html")


async def route(app: ModelportApp, path: str) -> Response:
    """``/ui/...``: the ops page, static files and the two JSON endpoints."""
    if path == "/ui/ops":
        return _file_response("ops.html")
    if path.startswith(_STATIC_PREFIX):
        return _file_response(path[len(_STATIC_PREFIX) :])
    if path == "/ui/api/models":
        return Response(200, dumps(await models_payload(app.repository)))
    if path == "/ui/api/ops":
        return Response(200, dumps(ops_payload(app)))
    raise NotFound(f"no route for {path}; the web pages are /, /ui/ops and /docs")


# -- the forms ------------------------------------------------------------------------
_hints_cache: weakref.WeakKeyDictionary[Model, dict[str, Any]] = weakref.WeakKeyDictionary()


def _field(hint: FieldHint | None, label: str) -> dict[str, Any]:
    if hint is None:
        return {"label": label}
    out: dict[str, Any] = {"label": hint.label}
    if hint.categories:
        out["categories"] = hint.categories
    if hint.example is not None:
        out["example"] = hint.example
    return out


def _describe(model: Model) -> dict[str, Any]:
    """The form for one model version; reading the hints may load a lazily loaded native model."""
    hints = model_hints(model)
    inputs = []
    for spec in model.signature.inputs:
        shape = list(spec.shape)
        given = hints.get(spec.name)
        entry: dict[str, Any] = {"name": spec.name, "datatype": spec.datatype, "shape": shape}
        if len(shape) == 1 or (len(shape) == 2 and shape[1] == 1):
            entry["kind"] = "text" if spec.datatype == "BYTES" and not (given and given[0].categories) else "field"
            entry["fields"] = [_field(given[0] if given else None, spec.name)]
        elif len(shape) == 2 and 0 < shape[1] <= MAX_FIELDS:
            entry["kind"] = "fields"
            entry["fields"] = [
                _field(given[i] if given and i < len(given) else None, f"{spec.name}[{i}]") for i in range(shape[1])
            ]
        else:
            entry["kind"] = "tensor"
            if given and len(given) > 1:
                entry["example"] = [h.example for h in given]
        inputs.append(entry)
    outputs = []
    for spec in model.signature.outputs:
        out: dict[str, Any] = {"name": spec.name, "datatype": spec.datatype, "shape": list(spec.shape)}
        if spec.labels is not None:
            out["labels"] = list(spec.labels)
        if spec.unit is not None:
            out["unit"] = spec.unit
        outputs.append(out)
    return {"inputs": inputs, "outputs": outputs, "examples": example_rows(model.source)[:20]}


async def models_payload(repository: Repository) -> dict[str, Any]:
    """Every model with its versions and the form for the version the route serves by default."""
    models = []
    for entry in repository.entries():
        item: dict[str, Any] = {
            "name": entry.name,
            "versions": [
                {"version": v.version, "state": v.state, "reason": v.reason}
                for v in sorted(entry.versions.values(), key=lambda v: v.version)
            ],
        }
        try:
            model = repository.get(entry.name)
        except Exception as exc:
            item["error"] = getattr(exc, "message", str(exc))
            models.append(item)
            continue
        form = _hints_cache.get(model)
        if form is None:
            form = await asyncio.to_thread(_describe, model)  # may load a native model: never on the loop
            _hints_cache[model] = form
        item.update(flavor=model.flavor, version=model.version, **form)
        models.append(item)
    return {"models": models}


# -- the operations view --------------------------------------------------------------
def ops_payload(app: ModelportApp) -> dict[str, Any]:
    """State, traffic, batching and recent activity per model version."""
    plane = app.plane
    models: dict[str, Any] = {}
    for entry in app.repository.entries():
        shares = entry.route.shares()
        versions = {}
        for v in sorted(entry.versions.values(), key=lambda v: v.version):
            info: dict[str, Any] = {
                "state": v.state,
                "reason": v.reason,
                "traffic": round(shares.get(v.version, 0.0), 4),
                "inflight": v.inflight,
                "load_seconds": round(v.load_seconds, 3),
            }
            if v.model is not None:
                info["flavor"] = v.model.flavor
                info["batching"] = plane.batching_info(v.model)
                info["runtime"] = v.model.info.get("runtime")  # compiled or the framework's own, per output
            versions[str(v.version)] = info
        models[entry.name] = {"versions": versions, "unloaded": entry.unloaded}
    shadows = {f"{name}:{version}": stats.to_dict() for (name, version), stats in plane.shadow_stats.items()}
    activity = app.activity.snapshot()
    return {"ready": app.ready(), "draining": app.draining, "models": models, "shadow": shadows, **activity}


# -- /docs ----------------------------------------------------------------------------
_STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:980px;padding:0 1rem;color:#1d232a}
h1{font-size:1.6rem;margin-bottom:.2rem} pre{background:#f4f6f8;padding:.6rem;overflow:auto;font:13px/1.4 ui-monospace,monospace}
.muted{color:#5b6673} .path{font-weight:600} .verb{display:inline-block;width:3.6rem;font-weight:700}
@media (prefers-color-scheme: dark){body{background:#111418;color:#e4e8ec} pre{background:#1c2127} .muted{color:#9aa5b1}}
"""

_DOCS_SCRIPT = """
fetch('/openapi.json', {headers: sessionStorage.getItem('modelport.token') ? {authorization: 'Bearer ' + sessionStorage.getItem('modelport.token')} : {}}).then(r => r.json()).then(spec => {
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
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><meta name='viewport' content='width=device-width'>"
        f"<title>modelport API</title><style>{_STYLE}</style></head>"
        "<body><h1>modelport API</h1><p class='muted'>From <a href='/openapi.json'>/openapi.json</a>. "
        'Errors are always <code>{"error": "..."}</code>. <a href=\'/\'>Try the models</a> · '
        "<a href='/ui/ops'>Operations</a>.</p>"
        f"<div id='api'></div><script>{_DOCS_SCRIPT}</script></body></html>"
    )
    return Response(200, page.encode(), headers=_HTML)
