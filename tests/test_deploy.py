"""The deployment files agree with the server: routes, flags, environment variables."""

from __future__ import annotations

from pathlib import Path

import click
import yaml

from modelport.cli import serve
from modelport.server.app import ModelportApp

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


def _docs(path: Path) -> list[dict[str, object]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _serve_envvars() -> set[str]:
    names: set[str] = set()
    for param in serve.params:
        env = getattr(param, "envvar", None)
        if isinstance(env, str):
            names.add(env)
    return names


def _parse(args: list[str]) -> click.Context:
    return serve.make_context("serve", list(args))


def test_kubernetes_probes_and_env() -> None:
    docs = {d["kind"]: d for d in _docs(DEPLOY / "kubernetes" / "deployment.yaml")}
    assert set(docs) == {"Deployment", "Service", "HorizontalPodAutoscaler"}
    container = docs["Deployment"]["spec"]["template"]["spec"]["containers"][0]  # type: ignore[index]
    routes = set(ModelportApp._static)
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["path"] in routes
    assert {e["name"] for e in container["env"]} <= _serve_envvars()
    ctx = _parse(["/models", *container["args"]])
    assert ctx.params["workers"] == 2


def test_kserve_runtime_args_parse() -> None:
    runtime, isvc = _docs(DEPLOY / "kserve" / "servingruntime.yaml")
    assert runtime["kind"] == "ClusterServingRuntime" and isvc["kind"] == "InferenceService"
    args = runtime["spec"]["containers"][0]["args"]  # type: ignore[index]
    ctx = _parse(list(args))
    assert ctx.params["path"] == "/mnt/models" and ctx.params["grpc_port"] == 8081 and ctx.params["host"] == "0.0.0.0"
    formats = {f["name"] for f in runtime["spec"]["supportedModelFormats"]}  # type: ignore[index]
    from modelport.flavors import FLAVORS

    assert formats <= set(FLAVORS)


def test_dockerfile_entrypoint_and_env() -> None:
    text = (DEPLOY / "docker" / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["modelport", "serve"]' in text
    env_line = next(line for line in text.splitlines() if "MODELPORT_MODELS=" in line)
    names = {tok.split("=")[0] for tok in env_line.replace("ENV", "").replace("\\", "").split() if "=" in tok}
    assert {n for n in names if n.startswith("MODELPORT_")} <= _serve_envvars()
    assert "/v2/health/live" in text
