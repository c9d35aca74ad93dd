"""The commands the platforms run really serve: started as subprocesses with the environment each platform sets."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import yaml
from click.testing import CliRunner

from modelport.cli import main
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
WINE = json.loads((ROOT / "examples" / "requests" / "wine_v1.json").read_text())
WINE_V2 = json.loads((ROOT / "examples" / "requests" / "wine_v2.json").read_text())
GAE_ENV = {
    "GAE_ENV": "standard",
    "GAE_APPLICATION": "s~demo",
    "GAE_SERVICE": "default",
    "GAE_VERSION": "1",
    "GAE_INSTANCE": "00c61b117c",
    "GAE_RUNTIME": "python311",
    "GAE_MEMORY_MB": "384",
    "GOOGLE_CLOUD_PROJECT": "demo",
}
CLOUD_RUN_ENV = {"K_SERVICE": "modelport", "K_REVISION": "modelport-00001-abc", "K_CONFIGURATION": "modelport"}

pytestmark = pytest.mark.slow


def _bin_dir(tmp: Path) -> Path:
    """A `modelport` executable for this interpreter and source tree, first on PATH (pip's script would be)."""
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    script = bin_dir / "modelport"
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m modelport.cli "$@"\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return bin_dir


def _listening(pid: int, port: int) -> set[str]:
    """Addresses listened on for ``port`` in the process's network namespace (/proc/<pid>/net/tcp and tcp6)."""
    found = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            addr, hex_port = local.split(":")
            if state != "0A" or int(hex_port, 16) != port:  # 0A: LISTEN
                continue
            if table == "tcp":
                found.add(".".join(str(int(addr[i : i + 2], 16)) for i in (6, 4, 2, 0)))
            else:
                found.add("::" if int(addr, 16) == 0 else addr)  # "::" (dual stack) also takes IPv4
    return found


@contextmanager
def started(command: str, env: dict[str, str], cwd: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    """``sh -c COMMAND`` (as App Engine's entrypoint and Docker's shell-form CMD run), until /v2/health/ready is 200."""
    full = {**os.environ, **env, "PYTHONPATH": str(ROOT / "src")}
    log = cwd / f"server-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["sh", "-c", command], cwd=cwd, env=full, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, f"exited {proc.returncode}: {log.read_text()}"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v2/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _check_serves(port: int) -> None:
    base = f"http://127.0.0.1:{port}"
    assert httpx.get(base + "/v2/health/live").status_code == 200
    v1 = httpx.post(base + "/v1/models/wine:predict", json=WINE)
    assert v1.status_code == 200 and len(v1.json()["predictions"]) == len(WINE["instances"])
    v2 = httpx.post(base + "/v2/models/wine/infer", json=WINE_V2)
    assert v2.status_code == 200 and v2.json()["model_name"] == "wine"
    bad = httpx.post(base + "/v2/models/nope/infer", json=WINE_V2)
    assert bad.status_code == 404 and "nope" in bad.json()["error"]


def test_app_engine_entrypoint_serves_on_port_on_all_interfaces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    app_dir = tmp_path / "app"
    result = CliRunner().invoke(
        main, ["deploy", "appengine", "examples/models/wine", "--memory", "300", "-o", str(app_dir)]
    )
    assert result.exit_code == 0, result.output
    app = yaml.safe_load((app_dir / "app.yaml").read_text())
    port = free_port()
    env = {**GAE_ENV, "PORT": str(port), "PATH": f"{_bin_dir(tmp_path)}:{os.environ['PATH']}"}
    with started(app["entrypoint"], env, app_dir, port) as proc:
        assert _listening(proc.pid, port) == {"0.0.0.0"}
        _check_serves(port)


def test_container_command_serves_on_port_with_cloud_run_env(tmp_path: Path) -> None:
    text = (DEPLOY / "cloudrun" / "Dockerfile").read_text()
    command = next(line for line in text.splitlines() if line.startswith("CMD "))[4:]
    health = next(line for line in text.splitlines() if line.startswith("HEALTHCHECK "))
    repo = tmp_path / "models"
    shutil.copytree(ROOT / "examples" / "models" / "wine", repo / "wine")
    port = free_port()
    env = {**CLOUD_RUN_ENV, "PORT": str(port), "MODELPORT_MODELS": str(repo)}
    env["PATH"] = f"{_bin_dir(tmp_path)}:{os.environ['PATH']}"
    with started(command, env, tmp_path, port) as proc:
        assert _listening(proc.pid, port) == {"0.0.0.0"}
        _check_serves(port)
        # Docker's HEALTHCHECK: the python one-liner, with the same PORT, exits 0 while the server is up.
        script = json.loads(health.split(" CMD python -c ", 1)[1])
        assert subprocess.run([sys.executable, "-c", script], env={"PORT": str(port)}, timeout=30).returncode == 0


def test_plain_serve_still_binds_loopback_with_platform_env(tmp_path: Path) -> None:
    """PORT and the GAE_/K_ variables do not move `modelport serve` off 127.0.0.1 or its own port."""
    port, other = free_port(), free_port()
    env = {**GAE_ENV, **CLOUD_RUN_ENV, "PORT": str(other), "MODELPORT_PORT": str(port)}
    env["PATH"] = f"{_bin_dir(tmp_path)}:{os.environ['PATH']}"
    with started(f"exec modelport serve {ROOT / 'examples' / 'models' / 'wine'}", env, tmp_path, port) as proc:
        assert _listening(proc.pid, port) == {"127.0.0.1"}
        assert _listening(proc.pid, other) == set()


def test_compile_fills_the_cache_so_a_fresh_start_imports_no_framework(tmp_path: Path) -> None:
    repo = tmp_path / "models"
    shutil.copytree(ROOT / "examples" / "models" / "breast_cancer", repo / "breast_cancer")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "MODELPORT_COMPILE_CACHE": str(tmp_path / "cache")}
    done = subprocess.run(
        [sys.executable, "-m", "modelport.cli", "compile", str(repo)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "breast_cancer v1 (sklearn): AVAILABLE, served by numpy (compiled)" in done.stdout
    assert "imports no framework" in done.stdout
    assert list((tmp_path / "cache").glob("*.pkl"))
    off = subprocess.run(
        [sys.executable, "-m", "modelport.cli", "compile", str(repo)],
        env={**env, "MODELPORT_COMPILE_CACHE": "off"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert off.returncode == 1 and "compile cache is off" in off.stderr


def test_kserve_runtime_command_serves_the_model_under_the_inference_service_name(tmp_path: Path) -> None:
    """The runtime's shell line, with what KServe fills in (the downloaded model, ``{{.Name}}``) and free ports."""
    runtime = yaml.safe_load_all((DEPLOY / "kserve" / "servingruntime.yaml").read_text()).__next__()
    script = runtime["spec"]["containers"][0]["args"][0]
    mount = tmp_path / "mnt-models"  # what the storage initializer downloaded: one model's files
    shutil.copytree(ROOT / "examples" / "models" / "wine", mount)
    port, grpc_port = free_port(), free_port()
    line = (
        script.replace("/mnt/models", str(mount))
        .replace("{{.Name}}", "wine-isvc")
        .replace("/tmp/models", str(tmp_path / "repo"))
        .replace("--port=8080", f"--port={port}")
        .replace("--grpc-port=8081", f"--grpc-port={grpc_port}")
    )
    env = {"PATH": f"{_bin_dir(tmp_path)}:{os.environ['PATH']}"}
    with started(line, env, tmp_path, port) as proc:
        assert _listening(proc.pid, port) == {"0.0.0.0"}
        assert _listening(proc.pid, grpc_port) & {"0.0.0.0", "::"}  # gRPC may bind one dual-stack socket
        base = f"http://127.0.0.1:{port}"
        v2 = httpx.post(base + "/v2/models/wine-isvc/infer", json=WINE_V2)
        assert v2.status_code == 200 and v2.json()["model_name"] == "wine-isvc"
        assert httpx.post(base + "/v1/models/wine-isvc:predict", json=WINE).status_code == 200


def test_lambda_image_handler_string_resolves() -> None:
    """awslambdaric loads CMD's "module.function" by splitting at the last dot."""
    import importlib

    text = (DEPLOY / "lambda" / "Dockerfile").read_text()
    handler = json.loads(next(line for line in text.splitlines() if line.startswith("CMD "))[4:])[0]
    module, _, function = handler.rpartition(".")
    assert callable(getattr(importlib.import_module(module), function))
