"""The ``modelport`` command line: serve, predict, inspect, score, bench."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click
import numpy as np

from modelport.core.config import parse_size
from modelport.core.errors import ConfigError, ModelportError
from modelport.core.fastpaths import FAST_PATHS

EPILOG = """\b
Examples:
  modelport serve examples/models                 # every model in a repository
  modelport serve model.onnx --port 9000          # one artifact
  modelport inspect examples/models/wine          # signature, flavor, files
  modelport predict examples/models/wine --input @examples/requests/wine_v1.json
"""


@click.group(epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="modelport")
def main() -> None:
    """Serve scikit-learn, XGBoost, LightGBM, ONNX, MLflow and Spark ML models (KServe V1/V2)."""


def _fail(exc: Exception) -> None:
    click.echo(f"error: {exc}", err=True)
    sys.exit(1)


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _parse_size(value: str) -> int:
    try:
        return parse_size(value)
    except ConfigError as exc:
        raise click.BadParameter(str(exc)) from None


def _token(option: str, env: str, given: str | None, path: str | None) -> str | None:
    """The token from the option, its variable or its file; an empty one is an error, never "no auth"."""
    # click reads an empty variable as unset, which would serve without auth: look at it directly.
    if given is None and env in os.environ and not os.environ[env].strip():
        raise click.UsageError(f"{env} is set but empty; set a token, or unset it to serve without one")
    if given is not None and path is not None:
        raise click.UsageError(f"give {option} or {option}-file, not both")
    if path is not None:
        try:
            given = Path(path).read_text().strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise click.UsageError(f"{option}-file {path}: cannot read it: {exc}") from None
        if not given:
            raise click.UsageError(f"{option}-file {path} is empty; write the token in it")
    elif given is not None and not given.strip():
        raise click.UsageError(f"{option} is empty; give a token, or leave the option out to serve without one")
    return given.strip() if given is not None else None


@main.command()
@click.argument("path", envvar="MODELPORT_MODELS")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    envvar="MODELPORT_HOST",
    help="Address to bind; 0.0.0.0 exposes the server to the network.",
)
@click.option("--port", default=8080, show_default=True, type=int, envvar="MODELPORT_PORT")
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    envvar="MODELPORT_WORKERS",
    help="Worker processes sharing the port.",
)
@click.option(
    "--auth-token",
    envvar="MODELPORT_AUTH_TOKEN",
    default=None,
    help="Require 'Authorization: Bearer TOKEN' on every route but health. Anyone on the host can read a "
    "command line: prefer --auth-token-file or the environment variable.",
)
@click.option(
    "--auth-token-file",
    envvar="MODELPORT_AUTH_TOKEN_FILE",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Read the --auth-token from this file (surrounding whitespace is dropped).",
)
@click.option(
    "--max-body",
    default="32MiB",
    show_default=True,
    envvar="MODELPORT_MAX_BODY",
    help="Largest request body; larger ones get 413.",
)
@click.option(
    "--cors-origin",
    "cors_origins",
    multiple=True,
    envvar="MODELPORT_CORS_ORIGINS",
    help="Allow browser pages on ORIGIN to call the API (repeatable; '*' for any).",
)
@click.option("--ssl-certfile", type=click.Path(exists=True, dir_okay=False), default=None)
@click.option("--ssl-keyfile", type=click.Path(exists=True, dir_okay=False), default=None)
@click.option(
    "--grpc-port",
    type=int,
    default=None,
    envvar="MODELPORT_GRPC_PORT",
    help="Also serve Open Inference Protocol V2 over gRPC on this port (KServe uses 8081).",
)
@click.option("--no-compile", is_flag=True, help="Serve every model with its native runtime.")
@click.option(
    "--reference-path",
    "reference_paths",
    multiple=True,
    type=click.Choice(sorted(FAST_PATHS)),
    help="Answer through this fast path's reference computation instead (repeatable; docs/operations.md).",
)
@click.option(
    "--batching",
    type=click.Choice(["auto", "on", "off"]),
    default="auto",
    show_default=True,
    envvar="MODELPORT_BATCHING",
    help="auto: every model batches concurrent requests (sequential ones skip the queue); on: the same with "
    "--max-batch-size/--max-latency-ms; off: never. A model's [batching] table wins.",
)
@click.option(
    "--max-batch-size",
    default=64,
    show_default=True,
    type=click.IntRange(min=2),
    help="Rows per batched predict (with --batching on).",
)
@click.option(
    "--max-latency-ms",
    default=0.0,
    show_default=True,
    type=float,
    help="How long a request may wait for others (0: only for those already read).",
)
@click.option(
    "--request-timeout",
    default=60.0,
    show_default=True,
    type=click.FloatRange(min=0),
    envvar="MODELPORT_REQUEST_TIMEOUT",
    help="Seconds a request may take before it gets 504 (DEADLINE_EXCEEDED over gRPC); 0: no limit. "
    "A model's [limits] request_timeout wins.",
)
@click.option(
    "--grace-seconds",
    default=10.0,
    show_default=True,
    type=float,
    help="On SIGTERM, how long in-flight requests may take to finish.",
)
@click.option(
    "--poll-seconds",
    default=5.0,
    show_default=True,
    type=click.FloatRange(min=0),
    envvar="MODELPORT_POLL_SECONDS",
    help="How often to check the repository for new, changed or removed versions; 0 turns it off.",
)
@click.option(
    "--admin-token",
    envvar="MODELPORT_ADMIN_TOKEN",
    default=None,
    help="Enable the V2 repository extension (load/unload/index), guarded by 'Authorization: Bearer TOKEN'.",
)
@click.option(
    "--admin-token-file",
    envvar="MODELPORT_ADMIN_TOKEN_FILE",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Read the --admin-token from this file (surrounding whitespace is dropped).",
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
)
@click.option(
    "--log-format",
    default="auto",
    show_default=True,
    envvar="MODELPORT_LOG_FORMAT",
    type=click.Choice(["json", "text", "auto"]),
    help="json: one object per line; text: for people; auto: text on a terminal, json otherwise.",
)
@click.option("--access-log/--no-access-log", default=True, show_default=True, help="Log every request.")
@click.option("--metrics/--no-metrics", default=True, show_default=True, help="Prometheus metrics at /metrics.")
@click.option(
    "--payload-log",
    type=click.Path(file_okay=False),
    default=None,
    envvar="MODELPORT_PAYLOAD_LOG",
    help="Record every inference request and response to Parquet files in DIR (read with 'modelport payloads').",
)
@click.option(
    "--payload-log-max-size",
    default="64MiB",
    show_default=True,
    help="Start a new payload file after this many bytes.",
)
@click.option(
    "--payload-log-max-age",
    default=3600.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Start a new payload file after this many seconds.",
)
@click.option(
    "--drain-seconds",
    default=0.0,
    show_default=True,
    type=click.FloatRange(min=0),
    envvar="MODELPORT_DRAIN_SECONDS",
    help="On SIGTERM, answer readiness 503 but keep serving this long before stopping (load balancer drain).",
)
@click.option(
    "--header-timeout",
    default=10.0,
    show_default=True,
    type=click.FloatRange(min=0.001, max=60),
    envvar="MODELPORT_HEADER_TIMEOUT",
    help="Close a connection whose request line and headers are not complete this many seconds after it opened "
    "or went idle (covers idle keep-alive connections too).",
)
@click.option(
    "--body-timeout",
    default=30.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    envvar="MODELPORT_BODY_TIMEOUT",
    help="Answer 408 when a request body is not complete this many seconds after its first byte was read.",
)
@click.option(
    "--max-connections",
    default=1024,
    show_default=True,
    type=click.IntRange(min=1),
    envvar="MODELPORT_MAX_CONNECTIONS",
    help="Connections served at once across all workers; more wait in the listen backlog.",
)
@click.option(
    "--max-header-size",
    default="64KiB",
    show_default=True,
    envvar="MODELPORT_MAX_HEADER_SIZE",
    help="Largest request line plus headers a connection may send (at least 8KiB).",
)
@click.option(
    "--interface",
    default="rsgi",
    show_default=True,
    type=click.Choice(["rsgi", "asgi"]),
    envvar="MODELPORT_INTERFACE",
    help="How granian calls the app: rsgi (its native interface, faster) or asgi; same routes, features and answers.",
)
def serve(
    path: str,
    host: str,
    port: int,
    workers: int,
    auth_token: str | None,
    auth_token_file: str | None,
    max_body: str,
    cors_origins: tuple[str, ...],
    ssl_certfile: str | None,
    ssl_keyfile: str | None,
    grpc_port: int | None,
    no_compile: bool,
    reference_paths: tuple[str, ...],
    batching: str,
    max_batch_size: int,
    max_latency_ms: float,
    request_timeout: float,
    grace_seconds: float,
    poll_seconds: float,
    admin_token: str | None,
    admin_token_file: str | None,
    log_level: str,
    log_format: str,
    access_log: bool,
    metrics: bool,
    payload_log: str | None,
    payload_log_max_size: str,
    payload_log_max_age: float,
    drain_seconds: float,
    header_timeout: float,
    body_timeout: float,
    max_connections: int,
    max_header_size: str,
    interface: str,
) -> None:
    """Serve a model or a repository of models over KServe V1 and V2 REST.

    PATH is an artifact (model.onnx, model.joblib, an MLflow or Spark ML directory), or a
    repository laid out NAME/[VERSION/]ARTIFACT; local, s3:// or gs://.
    """
    from modelport.observability.logs import configure_logging
    from modelport.process.run import ServeConfig
    from modelport.process.run import serve as run_server

    configure_logging(log_level, log_format)
    auth_token = _token("--auth-token", "MODELPORT_AUTH_TOKEN", auth_token, auth_token_file)
    admin_token = _token("--admin-token", "MODELPORT_ADMIN_TOKEN", admin_token, admin_token_file)
    if bool(ssl_certfile) != bool(ssl_keyfile):
        raise click.UsageError("--ssl-certfile and --ssl-keyfile go together")
    header_bytes = _parse_size(max_header_size)
    if header_bytes < 8192:
        raise click.BadParameter(
            f"{max_header_size} is below the smallest allowed, 8KiB", param_hint="--max-header-size"
        )
    config = ServeConfig(
        root=path,
        host=host,
        port=port,
        workers=workers,
        auth_token=auth_token,
        max_body=_parse_size(max_body),
        cors_origins=list(cors_origins),
        ssl_certfile=ssl_certfile,
        ssl_keyfile=ssl_keyfile,
        compile=False if no_compile else None,
        log_level=log_level,
        grace_seconds=grace_seconds,
        batching=batching,
        max_batch_size=max_batch_size,
        max_latency_ms=max_latency_ms,
        grpc_port=grpc_port,
        log_format=log_format,
        access_log=access_log,
        metrics=metrics,
        payload_log=payload_log,
        payload_log_max_bytes=_parse_size(payload_log_max_size),
        payload_log_max_seconds=payload_log_max_age,
        drain_seconds=drain_seconds,
        poll_seconds=poll_seconds,
        admin_token=admin_token,
        request_timeout=request_timeout or None,
        header_timeout=header_timeout,
        body_timeout=body_timeout,
        max_connections=max_connections,
        max_header_bytes=header_bytes,
        reference_paths=reference_paths,
        interface=interface,
    )
    try:
        run_server(config)
    except ModelportError as exc:
        _fail(exc)


@main.command()
@click.argument("path")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.option("--no-compile", is_flag=True, help="Serve with the model's own runtime (no compiled kernels).")
def inspect(path: str, as_json: bool, no_compile: bool) -> None:
    """Show a model's signature, flavor, runtime and files (like saved_model_cli show)."""
    from modelport.runtimes.loading import describe, load_model, spec_summary

    try:
        model = load_model(path, compile=False if no_compile else None)
    except ModelportError as exc:
        _fail(exc)
    info = describe(model)
    local = Path(path)
    files = []
    if local.exists():
        items = [local] if local.is_file() else sorted(p for p in local.rglob("*") if p.is_file())
        files = [{"path": str(p), "bytes": p.stat().st_size} for p in items]
    info["files"] = files
    if as_json:
        click.echo(json.dumps(info, indent=2, default=_jsonable))
        return
    click.echo(f"model:   {model.name} (version {model.version})")
    click.echo(f"flavor:  {model.flavor}")
    click.echo(f"source:  {model.source}")
    click.echo("inputs:")
    for spec in model.signature.inputs:
        click.echo(f"  {spec_summary(spec)}")
    click.echo("outputs:")
    runtime = model.info.get("runtime", {})
    for spec in model.signature.outputs:
        extra = f"  runtime={runtime[spec.name]}" if spec.name in runtime else ""
        labels = f"  labels={list(spec.labels)}" if spec.labels is not None else ""
        click.echo(f"  {spec_summary(spec)}{extra}{labels}")
    for key, value in model.info.items():
        if key == "runtime":
            continue
        if isinstance(value, list):
            click.echo(f"{key}:")
            for item in value:
                click.echo(f"  {item}")
        else:
            click.echo(f"{key}: {value}")
    if files:
        click.echo("files:")
        for f in files:
            click.echo(f"  {f['path']}  {f['bytes']:,} bytes")


@main.command()
@click.argument("path")
@click.option("--input", "input_", required=True, help="JSON: {input: values} or a V1/V2 request body, or @FILE.")
@click.option("--output", "outputs", multiple=True, help="Only these outputs (repeatable).")
@click.option("--no-compile", is_flag=True, help="Predict with the model's own runtime (no compiled kernels).")
def predict(path: str, input_: str, outputs: tuple[str, ...], no_compile: bool) -> None:
    """Predict once in-process and print the outputs as JSON."""
    from modelport.runtimes.loading import load_model

    text = Path(input_[1:]).read_text() if input_.startswith("@") else input_
    if not input_.startswith("@") and not input_.lstrip().startswith(("{", "[")) and Path(input_).is_file():
        text = Path(input_).read_text()
    try:
        payload = json.loads(text)
    except ValueError as exc:
        _fail(ValueError(f"--input is not JSON: {exc}"))
    try:
        model = load_model(path, compile=False if no_compile else None)
        batch = _payload_to_inputs(model, payload)
        result = model.predict(batch, list(outputs) or None)
    except ModelportError as exc:
        _fail(exc)
    click.echo(json.dumps({k: _jsonable(v) for k, v in result.items()}))


@main.command()
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array with inputs and outputs parsed.")
@click.option("--model", default=None, help="Only this model's requests.")
@click.option("--limit", default=None, type=click.IntRange(min=1), help="Only the newest N requests.")
def payloads(directory: str, as_json: bool, model: str | None, limit: int | None) -> None:
    """Show the requests and responses a server recorded with --payload-log DIR."""
    from modelport.observability.payload_log import iter_rows, read_payloads

    try:
        table = read_payloads(directory, model=model, on_skip=lambda m: click.echo(f"warning: {m}", err=True))
    except ModelportError as exc:
        _fail(exc)
    if limit is not None and table.num_rows > limit:
        table = table.slice(table.num_rows - limit)
    rows = list(iter_rows(table))
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo(f"no payloads recorded in {directory}")
        return
    header = ("time", "id", "model", "version", "status", "latency_ms", "inputs", "outputs")
    cells = [
        [
            str(r["time"]),
            str(r["id"]),
            str(r["model"]),
            "" if r["version"] is None else str(r["version"]),
            str(r["status"]),
            f"{r['latency_ms']:.2f}",
            _clip(r["inputs"]),
            _clip(r["outputs"] if r["outputs"] is not None else r["error"]),
        ]
        for r in rows
    ]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(header)]
    click.echo("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip())
    for c in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(c, widths, strict=True)).rstrip())
    click.echo(f"{len(rows)} requests")


def _clip(value: Any, width: int = 48) -> str:
    text = "" if value is None else json.dumps(value, separators=(",", ":"))
    return text if len(text) <= width else text[: width - 3] + "..."


def _payload_to_inputs(model: Any, payload: Any) -> dict[str, Any]:
    """Accept {name: values}, a V2 body (inputs list), or a V1 body (instances / inputs)."""
    names = model.signature.input_names
    if (
        isinstance(payload, dict)
        and isinstance(payload.get("inputs"), list)
        and payload["inputs"]
        and all(isinstance(t, dict) and "name" in t for t in payload["inputs"])
    ):
        out = {}
        for t in payload["inputs"]:
            arr = np.asarray(t.get("data"), dtype=object if t.get("datatype") == "BYTES" else None)
            out[t["name"]] = arr.reshape(t["shape"]) if "shape" in t else arr
        return out
    if isinstance(payload, dict) and "instances" in payload:
        rows = payload["instances"]
        if rows and isinstance(rows[0], dict):
            return {n: [r.get(n) for r in rows] for n in names}
        return {names[0]: rows} if len(names) == 1 else {n: [r[i] for r in rows] for i, n in enumerate(names)}
    if isinstance(payload, dict) and "inputs" in payload:
        value = payload["inputs"]
        return value if isinstance(value, dict) else {names[0]: value}
    if isinstance(payload, dict):
        return payload
    return {names[0]: payload}


def _split_commas(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


@main.command()
@click.argument("model")
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--output", "output", required=True, help="Output file: .parquet, .csv or .jsonl.")
@click.option("--format", "output_format", type=click.Choice(["parquet", "csv", "jsonl"]), help="Output format.")
@click.option("--input-format", type=click.Choice(["parquet", "csv", "jsonl"]), help="Input format (default: ext).")
@click.option("--batch-size", default=10_000, show_default=True, help="Rows per batch (bounds memory).")
@click.option(
    "--workers",
    type=int,
    help="Worker processes (default 1: one process already overlaps reading, predicting and writing on "
    "threads; more pay off only for models whose predict dominates, on more than two cores).",
)
@click.option("--keep", help="Input columns to copy to the output, comma-separated (default: all; '' for none).")
@click.option("--map", "mapping", multiple=True, help="COLUMN=INPUT, COL1,COL2,...=INPUT or *=INPUT (repeatable).")
@click.option("--outputs", help="Model outputs to write, comma-separated (default: all).")
@click.option(
    "--on-error",
    type=click.Choice(["fail", "skip", "null"]),
    default="fail",
    show_default=True,
    help="Rows that fail validation: stop, drop them, or write nulls and an 'error' column.",
)
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: on a terminal).")
@click.option(
    "--force", is_flag=True, help="Overwrite the output if it exists (without it, an existing output is an error)."
)
@click.option("--engine", type=click.Choice(["local", "spark"]), default="local", show_default=True)
@click.option("--master", default="local[*]", show_default=True, help="Spark master (with --engine spark).")
def score(
    model: str,
    inputs: tuple[str, ...],
    output: str,
    output_format: str | None,
    input_format: str | None,
    batch_size: int,
    workers: int | None,
    keep: str | None,
    mapping: tuple[str, ...],
    outputs: str | None,
    on_error: str,
    progress: bool | None,
    force: bool,
    engine: str,
    master: str,
) -> None:
    """Score big files (Parquet, CSV, JSON Lines; files, folders, globs, s3:// gs://) in batches.

    \b
    modelport score models/wine data/*.parquet -o scored.parquet --keep id
    modelport score model.joblib big.csv -o out.jsonl --map '*=input' --keep id --on-error null
    modelport score models/churn s3://bucket/day/ -o s3://bucket/scored.parquet --workers 8

    The output is written under a temporary name beside it and renamed when done; an error,
    SIGTERM or Ctrl-C removes the temporary file.
    """
    from modelport.offline.files import refuse_existing
    from modelport.offline.score import Interrupted, parse_map, score_files, stop_on_signals

    try:
        pairs = parse_map(mapping)
        keep_cols = _split_commas(keep)
        wanted = _split_commas(outputs)
        if not force:
            refuse_existing(output)
        # What both engines take; each adds its own (the Spark master; local workers and progress).
        common: dict[str, Any] = {
            "input_format": input_format,
            "output_format": output_format,
            "batch_size": batch_size,
            "keep": keep_cols,
            "mapping": pairs,
            "outputs": wanted,
            "on_error": on_error,
            "overwrite": force,
        }
        with stop_on_signals():
            if engine == "spark":
                from modelport.offline.dataframes import score_with_spark

                report = score_with_spark(model, list(inputs), output, master=master, **common)
            else:
                report = score_files(model, list(inputs), output, workers=workers, progress=progress, **common)
    except ModelportError as exc:
        _fail(exc)
    except Interrupted as stop:
        click.echo(f"error: {stop}; removed the unfinished output, {output} was not written", err=True)
        sys.exit(128 + stop.signum)
    startup = f", {report.startup:.1f}s of it starting {report.workers} workers" if report.startup else ""
    rate = f", {report.rows_per_second:,.0f} rows/s" if report.seconds else ""
    click.echo(
        f"scored {report.rows_in:,} rows -> {report.rows_out:,} rows in {report.output} "
        f"({report.seconds:.1f}s{startup}{rate})",
        err=True,
    )


@main.command()
@click.argument("url")
@click.option("-n", "--requests", type=int, default=None, help="Requests to send (default 1000 unless --duration).")
@click.option("-c", "--concurrency", type=int, default=None, help="Connections (closed loop); with --rate, the cap.")
@click.option("--rate", type=float, default=None, help="Open loop: this many requests per second.")
@click.option("--duration", type=float, default=None, help="Stop after this many seconds.")
@click.option("--body", default=None, help="Request body: JSON text or @FILE.")
@click.option("--model", default=None, help="Generate the body from GET /v2/models/MODEL metadata.")
@click.option("--rows", type=int, default=1, show_default=True, help="Rows in a generated body.")
@click.option(
    "--mode",
    type=click.Choice(["v1", "v2", "raw"]),
    default=None,
    help="Route and body: v2 infer, v1 :predict, or raw (URL and body as given). Default v2 with --model.",
)
@click.option("-X", "--method", default=None, help="HTTP method (default POST with a body, GET without).")
@click.option("-H", "--header", "headers", multiple=True, help="Extra header 'Name: value' (repeatable).")
@click.option("--warmup", type=int, default=0, show_default=True, help="Uncounted requests sent first.")
@click.option("--timeout", type=float, default=30.0, show_default=True, help="Seconds before a request fails.")
@click.option("--sweep", default=None, help="Concurrency levels to run in turn, e.g. 1,2,4,8,16.")
@click.option("--compare", "compare_url", default=None, help="A second URL, run in alternating rounds.")
@click.option("--rounds", type=int, default=6, show_default=True, help="Rounds for --compare.")
@click.option("--plot", "plot_path", default=None, help="Write a latency histogram + CDF PNG here.")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def bench(**options: Any) -> None:
    """Measure response times of any HTTP endpoint (latency percentiles, req/s, errors by status).

    \b
    modelport bench http://127.0.0.1:8080 --model wine -c 8 -n 5000
    modelport bench http://127.0.0.1:8080/v2/models/wine/infer --body @req.json --rate 200 --duration 30
    modelport bench http://127.0.0.1:8080 --model wine --sweep 1,2,4,8,16,32 --plot sweep.png
    modelport bench http://127.0.0.1:8080 --model wine --compare http://127.0.0.1:9090 --json
    """
    from modelport import bench as b

    try:
        result_json = _bench(b, **options)
    except ModelportError as exc:
        _fail(exc)
    if options["as_json"]:
        click.echo(json.dumps(result_json, indent=2))


def _bench(
    b: Any,
    url: str,
    requests: int | None,
    concurrency: int | None,
    rate: float | None,
    duration: float | None,
    body: str | None,
    model: str | None,
    rows: int,
    mode: str | None,
    method: str | None,
    headers: tuple[str, ...],
    warmup: int,
    timeout: float,
    sweep: str | None,
    compare_url: str | None,
    rounds: int,
    plot_path: str | None,
    as_json: bool,
) -> Any:
    from modelport.core.errors import ConfigError

    mode = mode or ("v2" if model else "raw")
    pairs = []
    for h in headers:
        name, sep, value = h.partition(":")
        if not sep or not name.strip():
            raise ConfigError(f"bench: header '{h}' is not 'Name: value'")
        pairs.append((name.strip(), value.strip()))
    if sweep and (rate is not None or compare_url):
        raise ConfigError("bench: --sweep runs closed-loop levels; it cannot be combined with --rate or --compare")

    def target_for(u: str) -> Any:
        payload: bytes | None = None
        if body is not None:
            payload = Path(body[1:]).read_bytes() if body.startswith("@") else body.encode()
        elif model is not None:
            if mode == "raw":
                raise ConfigError("bench: --model generates a v1 or v2 body; use --mode v1 or v2, or give --body")
            payload = json.dumps(b.body_from_metadata(b.fetch_metadata(u, model), rows, mode)).encode()
        return b.make_target(b.endpoint_url(u, model, mode), payload, method, pairs)

    if body is not None and body.startswith("@") and not Path(body[1:]).is_file():
        raise ConfigError(f"bench: --body file '{body[1:]}' does not exist")
    target = target_for(url)
    common: dict[str, Any] = {"warmup": warmup, "timeout": timeout, "progress": not as_json}
    if sweep:
        try:
            levels = [int(x) for x in sweep.split(",") if x.strip()]
        except ValueError as exc:
            raise ConfigError(f"bench: --sweep '{sweep}' is not a comma-separated list of integers") from exc
        if not levels or min(levels) < 1:
            raise ConfigError(f"bench: --sweep '{sweep}' needs concurrency levels of at least 1")
        results = b.sweep(target, levels, requests=requests, duration=duration, **common)
        if plot_path:
            b.plot_results(plot_path, results, [f"c={r.concurrency}" for r in results], sweep_results=True)
        if as_json:
            return {"sweep": [r.summary() for r in results]}
        click.echo(f"{target.label}  sweep over concurrency {levels}")
        click.echo(b.format_sweep(results))
        return None
    c = concurrency if concurrency is not None else (100 if rate is not None else 1)
    if compare_url:
        other = target_for(compare_url)
        ra, rb = b.compare(target, other, rounds, requests, duration, concurrency=c, rate=rate, **common)
        if plot_path:
            b.plot_results(plot_path, [ra, rb], ["A " + target.url, "B " + other.url])
        if as_json:
            return {"a": ra.summary(), "b": rb.summary(), "ratios_b_over_a": b.ratios(ra, rb)}
        click.echo(b.format_compare(ra, rb))
        return None
    result = b.run(target, requests, c, rate, duration, **common)
    if plot_path:
        b.plot_results(plot_path, [result])
    if as_json:
        return result.summary()
    click.echo(b.format_result(result))
    return None


@main.command("compile")
@click.argument("paths", nargs=-1, required=True)
@click.option("--check/--no-check", default=True, show_default=True, help="Then load again in a fresh interpreter.")
def compile_(paths: tuple[str, ...], check: bool) -> None:
    """Fill the compile cache ($MODELPORT_COMPILE_CACHE) for models, so the next start imports no framework.

    \b
    MODELPORT_COMPILE_CACHE=/opt/modelport/compiled modelport compile /models   # in an image build
    """
    from modelport.deploy.precompile import check_fresh_start, compile_models
    from modelport.observability.logs import configure_logging
    from modelport.runtimes.compile.cache import cache_dir

    configure_logging("warning", "text")
    directory = cache_dir()
    if directory is None:
        _fail(ValueError("the compile cache is off (MODELPORT_COMPILE_CACHE); nothing to fill"))
    failed = False
    for path in paths:
        try:
            results = compile_models(path)
        except ModelportError as exc:
            _fail(exc)
        for r in results:
            failed = failed or r.state != "AVAILABLE"
            click.echo(f"{r.model} v{r.version} ({r.flavor}): {r.state}, served by {r.runtime}")
        if check:
            loaded = check_fresh_start(path)
            what = ", ".join(loaded) if loaded else "no framework"
            click.echo(f"{path}: a fresh start with the cache in {directory} imports {what}")
    if failed:
        sys.exit(1)


class _LazyGroup(click.Group):
    """``modelport deploy``: its subcommands (and their ~100 options) are built only when asked for,
    so ``modelport serve`` does not pay for them at every start."""

    def _group(self) -> click.Group:
        from modelport.deploy.commands import deploy

        return deploy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return self._group().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return self._group().get_command(ctx, cmd_name)


main.add_command(
    _LazyGroup(
        "deploy",
        help="Write what a platform needs to serve MODELS: Kubernetes, KServe, Docker, AWS Lambda, App Engine, "
        "Cloud Run.\n\nMODELS (a local artifact or repository) decides which extras the image installs and, unless "
        "--memory is given, is started once to measure the memory a first start takes. See docs/DEPLOY.md.",
        short_help="Write Kubernetes, KServe, Docker, Lambda, App Engine or Cloud Run files for your models.",
    )
)


if __name__ == "__main__":
    main()
