"""The ``modelport`` command line: serve, predict, inspect, score, bench."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
import numpy as np

from modelport.errors import ModelportError

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
    text = value.strip().upper()
    units = {
        "K": 1024,
        "KB": 1024,
        "KIB": 1024,
        "M": 1024**2,
        "MB": 1024**2,
        "MIB": 1024**2,
        "G": 1024**3,
        "GB": 1024**3,
        "GIB": 1024**3,
    }
    for suffix in sorted(units, key=len, reverse=True):
        if text.endswith(suffix):
            number = text[: -len(suffix)].strip()
            try:
                return int(float(number) * units[suffix])
            except ValueError:
                break
    try:
        return int(text)
    except ValueError:
        raise click.BadParameter(f"'{value}' is not a size; use bytes or a unit such as 32MiB, 512K") from None


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
    help="Require 'Authorization: Bearer TOKEN' on every route but health.",
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
@click.option("--no-compile", is_flag=True, help="Serve every model with its native runtime.")
@click.option(
    "--batching",
    type=click.Choice(["auto", "on", "off"]),
    default="auto",
    show_default=True,
    envvar="MODELPORT_BATCHING",
    help="auto: batch models whose predict is expensive; on/off for all. A model's [batching] table wins.",
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
    "--grace-seconds",
    default=10.0,
    show_default=True,
    type=float,
    help="On SIGTERM, how long in-flight requests may take to finish.",
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
)
def serve(
    path: str,
    host: str,
    port: int,
    workers: int,
    auth_token: str | None,
    max_body: str,
    cors_origins: tuple[str, ...],
    ssl_certfile: str | None,
    ssl_keyfile: str | None,
    no_compile: bool,
    batching: str,
    max_batch_size: int,
    max_latency_ms: float,
    grace_seconds: float,
    log_level: str,
) -> None:
    """Serve a model or a repository of models over KServe V1 and V2 REST.

    PATH is an artifact (model.onnx, model.joblib, an MLflow or Spark ML directory), or a
    repository laid out NAME/[VERSION/]ARTIFACT; local, s3:// or gs://.
    """
    import logging

    from modelport.server.run import ServeConfig
    from modelport.server.run import serve as run_server

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if bool(ssl_certfile) != bool(ssl_keyfile):
        raise click.UsageError("--ssl-certfile and --ssl-keyfile go together")
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
    )
    try:
        run_server(config)
    except ModelportError as exc:
        _fail(exc)


@main.command()
@click.argument("path")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def inspect(path: str, as_json: bool) -> None:
    """Show a model's signature, flavor, runtime and files (like saved_model_cli show)."""
    from modelport.loading import describe, load_model, spec_summary

    try:
        model = load_model(path)
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
def predict(path: str, input_: str, outputs: tuple[str, ...]) -> None:
    """Predict once in-process and print the outputs as JSON."""
    from modelport.loading import load_model

    text = Path(input_[1:]).read_text() if input_.startswith("@") else input_
    if not input_.startswith("@") and not input_.lstrip().startswith(("{", "[")) and Path(input_).is_file():
        text = Path(input_).read_text()
    try:
        payload = json.loads(text)
    except ValueError as exc:
        _fail(ValueError(f"--input is not JSON: {exc}"))
    try:
        model = load_model(path)
        batch = _payload_to_inputs(model, payload)
        result = model.predict(batch, list(outputs) or None)
    except ModelportError as exc:
        _fail(exc)
    click.echo(json.dumps({k: _jsonable(v) for k, v in result.items()}))


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
@click.option("--workers", type=int, help="Worker processes (default: every core).")
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
    engine: str,
    master: str,
) -> None:
    """Score big files (Parquet, CSV, JSON Lines; files, folders, globs, s3:// gs://) in batches.

    \b
    modelport score models/wine data/*.parquet -o scored.parquet --keep id
    modelport score model.joblib big.csv -o out.jsonl --map '*=input' --keep id --on-error null
    modelport score models/churn s3://bucket/day/ -o s3://bucket/scored.parquet --workers 8
    """
    from modelport.batch.score import parse_map, score_files

    try:
        pairs = parse_map(mapping)
        keep_cols = _split_commas(keep)
        wanted = _split_commas(outputs)
        if engine == "spark":
            from modelport.batch.spark import score_with_spark

            report = score_with_spark(
                model,
                list(inputs),
                output,
                master=master,
                input_format=input_format,
                output_format=output_format,
                batch_size=batch_size,
                keep=keep_cols,
                mapping=pairs,
                outputs=wanted,
                on_error=on_error,  # type: ignore[arg-type]
            )
        else:
            report = score_files(
                model,
                list(inputs),
                output,
                input_format=input_format,
                output_format=output_format,
                batch_size=batch_size,
                workers=workers,
                keep=keep_cols,
                mapping=pairs,
                outputs=wanted,
                on_error=on_error,  # type: ignore[arg-type]
                progress=progress,
            )
    except ModelportError as exc:
        _fail(exc)
    startup = f", {report.startup:.1f}s of it starting {report.workers} workers" if report.startup else ""
    rate = f", {report.rows_per_second:,.0f} rows/s" if report.seconds else ""
    click.echo(
        f"scored {report.rows_in:,} rows -> {report.rows_out:,} rows in {report.output} "
        f"({report.seconds:.1f}s{startup}{rate})",
        err=True,
    )


if __name__ == "__main__":
    main()
