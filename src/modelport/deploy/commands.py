"""The ``modelport deploy`` command group: one subcommand per target, sharing the options that describe the server."""

from __future__ import annotations

import functools
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from modelport.core.errors import ConfigError, ModelportError

if TYPE_CHECKING:  # `modelport serve` imports this module: keep it to click
    from modelport.deploy.plan import Plan

__all__ = ["deploy"]


def _server_options(f: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.argument("models", required=False, type=click.Path(exists=True)),
        click.option(
            "--model-uri", help="Where the server reads the models (s3://, gs://, a path); default: baked in."
        ),
        click.option("--name", default="modelport", show_default=True, help="Name of the service / deployment."),
        click.option("--image", default="modelport:latest", show_default=True, help="Container image."),
        click.option("--port", default=8080, show_default=True, type=int, help="HTTP port (V1, V2 REST, metrics)."),
        click.option("--grpc-port", default=None, type=int, help="Also serve V2 gRPC on this port."),
        click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1)),
        click.option("--drain-seconds", default=5.0, show_default=True, type=click.FloatRange(min=0)),
        click.option("--grace-seconds", default=20.0, show_default=True, type=click.FloatRange(min=0)),
        click.option("--auth-token-secret", default=None, help="Secret holding the bearer token (never a literal)."),
        click.option("--cpu", default=None, help="CPU request / limit, e.g. 500m or 1."),
        click.option("--memory", "memory_mb", default=None, type=click.IntRange(min=64), help="Memory in MiB."),
        click.option(
            "--measure/--no-measure", default=True, show_default=True, help="Start the models to size memory."
        ),
        click.option("--python", "python_version", default=None, help="Python of the image/runtime (default: this)."),
        click.option("-o", "--output", type=click.Path(file_okay=False), default=None, help="Write files here."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _plan(
    models: str | None,
    model_uri: str | None,
    baked_path: str,
    name: str,
    image: str,
    port: int,
    grpc_port: int | None,
    workers: int,
    drain_seconds: float,
    grace_seconds: float,
    auth_token_secret: str | None,
    cpu: str | None,
    memory_mb: int | None,
    measure: bool,
    python_version: str | None,
    **_: Any,
) -> Plan:
    from modelport.deploy.inventory import extras_for, extras_for_uri, find_models
    from modelport.deploy.plan import Plan

    found = find_models(models) if models else []
    uri = model_uri or baked_path
    plan = Plan(
        name=name,
        image=image,
        model_uri=uri,
        port=port,
        grpc_port=grpc_port,
        workers=workers,
        drain_seconds=drain_seconds,
        grace_seconds=grace_seconds,
        auth_token_secret=auth_token_secret,
        cpu=cpu,
        memory_mb=memory_mb,
        models=found,
        extras=sorted({*extras_for(found), *extras_for_uri(uri)}),
    )
    if python_version:
        plan.python = python_version
    if models and memory_mb is None and measure:
        from modelport.deploy.footprint import measure as measure_models

        click.echo(f"measuring a first start of {models} ...", err=True)
        plan.footprint = measure_models(models, workers=workers)
        click.echo(plan.footprint.describe(), err=True)
    return plan


def _emit(files: dict[str, str], output: str | None, lines: list[str] | None = None) -> None:
    from modelport.deploy.plan import write_files

    if output is None:
        for i, (name, text) in enumerate(files.items()):
            if len(files) > 1:
                click.echo(("" if i == 0 else "\n") + f"# ==> {name} <==")
            click.echo(text, nl=False)
    else:
        for path in write_files(files, Path(output)):
            click.echo(f"wrote {path}", err=True)
    for line in lines or []:
        click.echo(line, err=True)


def _context_relative(path: str) -> str:
    rel = os.path.relpath(Path(path).resolve(), Path.cwd())
    if rel.startswith(".."):
        raise ConfigError(f"{path} is outside the build context {Path.cwd()}; run from a directory that holds it")
    return rel


def _copy_to(plan: Plan, models: str | None) -> str:
    """Where MODELS land in the image: a repository at the served root, a single model in <root>/<name>/,
    so the server (given the root) keeps the model's name."""
    names = {m.name for m in plan.models}
    if models is not None and len(names) == 1 and all(m.path == Path(models) for m in plan.models):
        return f"{plan.model_uri}/{next(iter(names))}/"
    return plan.model_uri


def _guarded(f: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(f)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return f(*args, **kwargs)
        except ModelportError as exc:
            raise click.ClickException(exc.message) from None

    return run


@click.group()
def deploy() -> None:
    """Write what a platform needs to serve MODELS: Kubernetes, KServe, Docker, AWS Lambda, App Engine, Cloud Run.

    MODELS (a local artifact or repository) decides which extras the image installs and, unless
    --memory is given, is started once to measure the memory a first start takes.
    """


@deploy.command("k8s")
@_server_options
@click.option("--namespace", default=None)
@click.option("--replicas", default=2, show_default=True, type=click.IntRange(min=1))
@click.option("--min-replicas", default=None, type=click.IntRange(min=1), help="HPA floor (default: --replicas).")
@click.option("--max-replicas", default=10, show_default=True, type=click.IntRange(min=1))
@click.option("--target-cpu", default=70, show_default=True, type=click.IntRange(1, 100), help="HPA CPU %.")
@_guarded
def k8s(
    namespace: str | None, replicas: int, min_replicas: int | None, max_replicas: int, target_cpu: int, **kw: Any
) -> None:
    """Deployment, Service, HorizontalPodAutoscaler and PodDisruptionBudget."""
    from modelport.deploy import kubernetes

    plan = _plan(baked_path="/models", **kw)
    opts = kubernetes.K8sOptions(namespace, replicas, min_replicas, max_replicas, target_cpu)
    _emit(kubernetes.render(plan, opts), kw["output"])


@deploy.command("kserve")
@_server_options
@click.option("--namespace", default=None)
@click.option("--runtime-name", default="kserve-modelport", show_default=True)
@click.option(
    "--cluster/--namespaced", default=True, show_default=True, help="ClusterServingRuntime or ServingRuntime."
)
@click.option("--storage-uri", default="s3://my-bucket/models", show_default=True, help="Bucket holding <model>/.")
@click.option("--protocol", type=click.Choice(["v1", "v2", "grpc-v2"]), default="v2", show_default=True)
@click.option("--canary-percent", type=click.IntRange(0, 100), default=None, help="canaryTrafficPercent for a rollout.")
@click.option("--min-replicas", default=1, show_default=True, type=click.IntRange(min=0))
@click.option("--max-replicas", default=3, show_default=True, type=click.IntRange(min=1))
@_guarded
def kserve(
    namespace: str | None,
    runtime_name: str,
    cluster: bool,
    storage_uri: str,
    protocol: str,
    canary_percent: int | None,
    min_replicas: int,
    max_replicas: int,
    **kw: Any,
) -> None:
    """A (Cluster)ServingRuntime for the flavors served and an InferenceService per model."""
    from modelport.deploy import kserve as ks

    plan = _plan(baked_path="/mnt/models", **kw)
    opts = ks.KServeOptions(
        runtime_name, cluster, namespace, canary_percent, protocol, storage_uri, min_replicas, max_replicas
    )
    _emit(ks.render(plan, opts), kw["output"])


@deploy.command("docker")
@_server_options
@click.option("--bake/--mount", default=True, show_default=True, help="Copy MODELS into the image, or mount them.")
@click.option("--source", default=None, help="Build modelport from this source tree instead of the package index.")
@_guarded
def docker(bake: bool, source: str | None, **kw: Any) -> None:
    """A multi-stage Dockerfile whose build fills the compile cache; prints the build, run and push lines."""
    from modelport.deploy import docker as dk

    plan = _plan(baked_path="/models", **kw)
    models = kw["models"]
    opts = dk.DockerOptions(
        bake=bake and models is not None and kw["model_uri"] is None,
        models_dir=_context_relative(models) if models else None,
        source=_context_relative(source) if source else None,
        copy_to=_copy_to(plan, models),
    )
    out = kw["output"]
    path = str(Path(out) / "Dockerfile") if out else "Dockerfile"
    _emit({"Dockerfile": dk.dockerfile(plan, opts)}, out, dk.commands(plan, opts, path))


@deploy.command("lambda")
@_server_options
@click.option("--source", default=None, help="Build modelport from this source tree instead of the package index.")
@click.option("--timeout", default=30, show_default=True, type=click.IntRange(1, 900))
@click.option("--arch", type=click.Choice(["x86_64", "arm64"]), default="x86_64", show_default=True)
@click.option(
    "--api",
    "apis",
    multiple=True,
    type=click.Choice(["http", "rest", "url"]),
    help="HTTP API (v2), REST API (v1), function URL (repeatable; default all three).",
)
@_guarded
def aws_lambda(source: str | None, timeout: int, arch: str, apis: tuple[str, ...], **kw: Any) -> None:
    """A container-image Dockerfile (awslambdaric) and a SAM template for modelport.aws_lambda.handler."""
    from modelport.deploy import aws

    if not kw["models"]:
        raise click.UsageError("deploy lambda bakes the models into the image: give MODELS")
    plan = _plan(baked_path="/var/task/models", **kw)
    opts = aws.LambdaOptions(
        _context_relative(kw["models"]),
        _copy_to(plan, kw["models"]),
        _context_relative(source) if source else None,
        timeout,
        arch,
        apis or ("http", "rest", "url"),
    )
    _emit(aws.render(plan, opts), kw["output"], ["sam build && sam deploy --guided"])


@deploy.command("appengine")
@_server_options
@click.option("--min-instances", default=0, show_default=True, type=click.IntRange(min=0))
@click.option("--max-instances", default=10, show_default=True, type=click.IntRange(min=1))
@click.option("--flex", is_flag=True, help="App Engine flexible with the Docker image instead of standard.")
@click.option("--source", default=None, help="(--flex) Build modelport from this source tree.")
@_guarded
def appengine(min_instances: int, max_instances: int, flex: bool, source: str | None, **kw: Any) -> None:
    """app.yaml, requirements.txt and .gcloudignore for App Engine standard (or --flex with a Dockerfile).

    The app directory (-o) gets a copy of MODELS under models/ unless --model-uri names a bucket.
    """
    from modelport.deploy import docker as dk
    from modelport.deploy import gcp

    out = kw["output"]
    if out is None:
        raise click.UsageError("deploy appengine writes an app directory: give -o DIR")
    models = kw["models"]
    if models is None and kw["model_uri"] is None:
        raise click.UsageError("give MODELS (copied into the app) or --model-uri gs://...")
    plan = _plan(baked_path="models" if not flex else "/models", **kw)
    dockerfile = None
    if flex:
        opts = dk.DockerOptions(
            bake=models is not None and kw["model_uri"] is None,
            models_dir="models",
            source=source,
            copy_to="/models",  # the app directory holds models/<name>/ already
        )
        dockerfile = dk.dockerfile(plan, opts)
    files = gcp.appengine_files(
        plan, min_instances=min_instances, max_instances=max_instances, flex=flex, dockerfile=dockerfile
    )
    if models is not None and kw["model_uri"] is None:
        if (Path(out) / "models").exists():
            shutil.rmtree(Path(out) / "models")
        # A single model goes to models/<name>/, so the served repository keeps its name.
        single = _copy_to(plan, models) != plan.model_uri
        target = Path(out) / "models" / (plan.models[0].name if single else "")
        src = Path(models)
        if src.is_dir():
            shutil.copytree(src, target, ignore=shutil.ignore_patterns("__pycache__", ".*"))
        else:
            target.mkdir(parents=True)
            shutil.copy2(src, target / src.name)
    _emit(files, out, [f"cd {out} && gcloud app deploy app.yaml"])


@deploy.command("cloudrun")
@_server_options
@click.option("--concurrency", default=80, show_default=True, type=click.IntRange(1, 1000))
@click.option("--min-instances", default=0, show_default=True, type=click.IntRange(min=0))
@click.option("--max-instances", default=10, show_default=True, type=click.IntRange(min=1))
@click.option("--region", default="us-central1", show_default=True)
@click.option("--source", default=None, help="Build modelport from this source tree instead of the package index.")
@_guarded
def cloudrun(
    concurrency: int, min_instances: int, max_instances: int, region: str, source: str | None, **kw: Any
) -> None:
    """A Cloud Run service YAML (Knative Service) and the image's Dockerfile; prints build and deploy lines."""
    from modelport.deploy import docker as dk
    from modelport.deploy import gcp
    from modelport.deploy.plan import dump_yaml

    plan = _plan(baked_path="/models", **kw)
    models = kw["models"]
    opts = dk.DockerOptions(
        bake=models is not None and kw["model_uri"] is None,
        models_dir=_context_relative(models) if models else None,
        source=_context_relative(source) if source else None,
        copy_to=_copy_to(plan, models),
    )
    service = gcp.cloudrun_service(
        plan, concurrency=concurrency, min_instances=min_instances, max_instances=max_instances
    )
    header = (
        "Generated by `modelport deploy cloudrun`: regenerate rather than edit.\n"
        f"{plan.footprint_note()}.\n"
        f"Deploy: gcloud run services replace service.yaml --region {region}"
    )
    out = kw["output"]
    path = str(Path(out) / "Dockerfile") if out else "Dockerfile"
    files = {"service.yaml": dump_yaml([service], header), "Dockerfile": dk.dockerfile(plan, opts)}
    _emit(files, out, gcp.cloudrun_commands(plan, region, path))
