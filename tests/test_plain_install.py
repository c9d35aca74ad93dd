"""A user's install: the built wheel with only the extras the README names, in a clean virtual environment.

Every documented command runs from that environment, outside the source tree: ``serve`` (and a
request), the Python client, ``score``, ``inspect`` and ``bench``. A dependency declared only in
``[dev]`` (httpx was, for the client) fails here. pip reads the package index this machine is
configured with, and its cache.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, free_port

pytestmark = pytest.mark.slow

DEFAULT_EXTRAS = "sklearn"
"""What ``shared/tools/fresh-check`` installs, used while the README names no extras."""


def readme_extras() -> str:
    """The extras of the README's ``pip install 'modelport[...]'`` line."""
    found = re.search(r"pip install ['\"]?modelport\[([a-z0-9_,-]+)\]", (REPO / "README.md").read_text())
    return found.group(1) if found else DEFAULT_EXTRAS


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float = 600) -> str:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, (
        f"{' '.join(cmd)} exited {done.returncode}:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    )
    return done.stdout


def test_the_wheel_with_the_readme_extras_serves_scores_inspects_and_benches(tmp_path: Path) -> None:
    # Build from a copy: a build in the tree would leave build/ and *.egg-info behind.
    source = tmp_path / "source"
    source.mkdir()
    shutil.copytree(REPO / "src", source / "src", ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (REPO / name).exists():
            shutil.copy(REPO / name, source / name)
    env = {
        k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV") and not k.startswith("MODELPORT_")
    }
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    _run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path / "dist"), str(source)],
        tmp_path,
        env,
    )
    wheel = next((tmp_path / "dist").glob("modelport-*.whl"))

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], tmp_path, env)
    py, modelport = str(venv / "bin" / "python"), str(venv / "bin" / "modelport")
    _run([py, "-m", "pip", "install", "-q", f"{wheel}[{readme_extras()}]"], tmp_path, env, timeout=1200)
    work = tmp_path / "work"  # outside the repository: nothing imports the source tree
    work.mkdir()
    where = _run([py, "-c", "import modelport; print(modelport.__file__)"], work, env)
    assert str(venv) in where, where

    # A model made with the environment's own scikit-learn, and a file to score.
    _run(
        [
            py,
            "-c",
            "import joblib, pandas as pd; from pathlib import Path\n"
            "from sklearn.datasets import load_wine\n"
            "from sklearn.linear_model import LogisticRegression\n"
            "from sklearn.pipeline import make_pipeline\n"
            "from sklearn.preprocessing import StandardScaler\n"
            "X, y = load_wine(return_X_y=True)\n"
            "Path('models/wine').mkdir(parents=True)\n"
            "joblib.dump(make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y),"
            " 'models/wine/model.joblib')\n"
            "pd.DataFrame(X[:20], columns=[f'f{i}' for i in range(13)]).to_csv('rows.csv', index=False)\n",
        ],
        work,
        env,
    )

    info = json.loads(_run([modelport, "inspect", "models/wine", "--json"], work, env))
    assert info["signature"]["inputs"][0]["name"] == "input"

    _run(
        [modelport, "score", "models/wine", "rows.csv", "-o", "scored.csv", "--map", "*=input", "--keep", ""], work, env
    )
    scored = (work / "scored.csv").read_text().splitlines()
    assert len(scored) == 21 and "predict" in scored[0]

    port = free_port()
    log = (work / "serve.log").open("wb")
    server = subprocess.Popen(
        [modelport, "serve", "models", "--host", "127.0.0.1", "--port", str(port), "--poll-seconds", "0"],
        cwd=work,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        client_script = (
            "import sys, time\n"
            "from modelport.client import Client\n"
            "from sklearn.datasets import load_wine\n"
            "X, _ = load_wine(return_X_y=True)\n"
            f"client = Client('{url}', retries=0)\n"
            "for _ in range(600):\n"
            "    if client.ready(): break\n"
            "    time.sleep(0.1)\n"
            "out = client.predict('wine', {'input': X[:3]})\n"
            "print(out['predict'].tolist())\n"
        )
        assert _run([py, "-c", client_script], work, env).strip() == "[0, 0, 0]"
        bench = json.loads(
            _run([modelport, "bench", url, "--model", "wine", "-n", "50", "-c", "2", "--json"], work, env)
        )
        assert bench["requests"] == 50 and bench["ok"] == 50, bench
        assert server.poll() is None
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()
    assert server.returncode == 0, (work / "serve.log").read_text()[-3000:]
