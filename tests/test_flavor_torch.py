"""PyTorch programs (TorchScript and torch.export) built from scikit-learn's digits, against torch's own answer."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

import modelport
from modelport.core.errors import ModelLoadError
from tests.surfaces import check_every_surface
from tests.tolerance import assert_close

X, Y = load_digits(return_X_y=True)
X32 = (X / 16.0).astype(np.float32)
ROWS = X32[::90]

SIGNATURE_TOML = """
[signature]
inputs = [{name = "pixels", datatype = "FP32", shape = [-1, 64]}]
outputs = [{name = "probabilities", datatype = "FP32", shape = [-1, 10]}, {name = "digit", datatype = "INT64"}]
"""


class Digits(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.hidden = torch.nn.Linear(64, 32)
        self.out = torch.nn.Linear(32, 10)

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        p = torch.softmax(self.out(torch.relu(self.hidden(pixels))), dim=1)
        return p, p.argmax(dim=1)


@pytest.fixture(scope="module")
def net() -> Digits:
    torch.manual_seed(0)
    model = Digits()
    optimiser = torch.optim.Adam(model.parameters(), lr=0.01)
    x, y = torch.from_numpy(X32), torch.from_numpy(Y)
    for _ in range(60):
        optimiser.zero_grad()
        loss = torch.nn.functional.cross_entropy(model.out(torch.relu(model.hidden(x))), y)
        loss.backward()
        optimiser.step()
    return model.eval()


def _eager(net: Digits, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with torch.no_grad():
        p, d = net(torch.from_numpy(rows))
    return p.numpy(), d.numpy()


def _export(net: Digits, path: Path) -> None:
    batch = torch.export.Dim("batch")
    program = torch.export.export(net, (torch.from_numpy(X32[:4]),), dynamic_shapes={"pixels": {0: batch}})
    torch.export.save(program, path)


@pytest.mark.slow
def test_exported_program_on_every_surface(net: Digits, tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (root / "digits").mkdir(parents=True)
    _export(net, root / "digits" / "model.pt2")
    model = modelport.load_model(root / "digits")
    assert model.flavor == "torch"
    # Names, dtypes and the dynamic batch dimension come from the program itself.
    assert model.signature.to_dict() == {
        "inputs": [{"name": "pixels", "datatype": "FP32", "shape": [-1, 64]}],
        "outputs": [
            {"name": "softmax", "datatype": "FP32", "shape": [-1, 10]},
            {"name": "argmax", "datatype": "INT64", "shape": [-1]},
        ],
    }
    assert model.info["program"] == "torch.export" and model.info["intra_op_threads"] == 1
    assert model.predictor.fork_safe is False  # type: ignore[attr-defined]
    p, d = _eager(net, ROWS)
    assert len(set(d.tolist())) > 3  # a trained net: the rows get different digits
    check_every_surface(root, "digits", {"pixels": ROWS}, {"softmax": p, "argmax": d}, tmp_path)


def test_torchscript_with_signature_from_modelport_toml(net: Digits, tmp_path: Path) -> None:
    torch.jit.save(torch.jit.script(net), tmp_path / "model.pt")
    with pytest.raises(
        ModelLoadError,
        match=r"model\.pt: a TorchScript program does not record its inputs' names, dtypes and shapes; "
        r"give them under \[signature\] in modelport\.toml",
    ):
        modelport.load_model(tmp_path)
    (tmp_path / "modelport.toml").write_text(SIGNATURE_TOML)
    model = modelport.load_model(tmp_path)
    assert model.signature.output_names == ["probabilities", "digit"]
    assert model.info["program"] == "TorchScript"
    got = model.predict({"pixels": ROWS.tolist()})
    p, d = _eager(net, ROWS)
    assert_close(got["probabilities"], p, what="TorchScript vs eager probabilities")
    assert_close(got["digit"], d, what="TorchScript vs eager digit")


async def test_bad_requests_are_400s(net: Digits, tmp_path: Path) -> None:
    from modelport.serving.repository import Repository
    from tests.server.conftest import make_client

    (tmp_path / "digits").mkdir()
    _export(net, tmp_path / "digits" / "model.pt2")
    async with make_client(Repository(str(tmp_path)).load()) as client:
        body = {"inputs": [{"name": "pixels", "shape": [1, 10], "datatype": "FP32", "data": [0.0] * 10}]}
        r = await client.post("/v2/models/digits/infer", json=body)
        assert r.status_code == 400
        assert r.json() == {
            "error": "model 'digits': input 'pixels' has shape [1, 10], expected [-1, 64] (-1 = any size)"
        }
        body = {"inputs": [{"name": "pixels", "shape": [1, 64], "datatype": "BYTES", "data": ["x"] * 64}]}
        r = await client.post("/v2/models/digits/infer", json=body)
        assert r.status_code == 400
        assert r.json() == {"error": "model 'digits': input 'pixels' must have datatype FP32, got BYTES"}


def test_pickled_module_and_corrupt_program_are_refused(net: Digits, tmp_path: Path) -> None:
    torch.save(net.state_dict(), tmp_path / "weights.pt")
    with pytest.raises(
        ModelLoadError,
        match=r"weights\.pt: not a TorchScript archive \(RuntimeError: .*\); modelport serves programs saved with "
        r"torch\.jit\.save\(torch\.jit\.script\(model\)\) or torch\.export\.save, not torch\.save pickles",
    ):
        modelport.load_model(tmp_path / "weights.pt")
    (tmp_path / "broken.pt2").write_bytes(b"not a zip")
    with pytest.raises(ModelLoadError, match=r"broken\.pt2: not a loadable torch\.export program"):
        modelport.load_model(tmp_path / "broken.pt2")


def test_thread_count_per_process(net: Digits, tmp_path: Path) -> None:
    _export(net, tmp_path / "model.pt2")
    code = (
        "import modelport, torch\n"
        f"m = modelport.load_model({str(tmp_path / 'model.pt2')!r})\n"
        "print(m.info['intra_op_threads'], torch.get_num_threads())\n"
    )
    env = {**os.environ, "MODELPORT_TORCH_THREADS": "2"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    assert out.split() == ["2", "2"]
    env["MODELPORT_TORCH_THREADS"] = "many"
    failed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert failed.returncode != 0
    assert "MODELPORT_TORCH_THREADS='many' is not a whole number of threads" in failed.stderr


@pytest.mark.slow
def test_workers_for_a_torch_model_start_as_fresh_interpreters(net: Digits, tmp_path: Path) -> None:
    """torch's thread pools do not survive fork: two workers load the program themselves and both answer."""
    import httpx

    from tests.serving import run_server

    (tmp_path / "models" / "digits").mkdir(parents=True)
    _export(net, tmp_path / "models" / "digits" / "model.pt2")
    env = {"MODELPORT_COMPILE_CACHE": str(tmp_path / "cache")}
    body = {
        "inputs": [{"name": "pixels", "datatype": "FP32", "shape": list(ROWS.shape), "data": ROWS.ravel().tolist()}]
    }
    p, d = _eager(net, ROWS)
    with run_server(tmp_path / "models", "--workers", "2", env=env, log_dir=tmp_path, timeout=120) as server:
        answers = [httpx.post(server.url + "/v2/models/digits/infer", json=body, timeout=30) for _ in range(6)]
        log = server.log()
    assert "workers start as fresh interpreters and load the repository themselves: the loaded models use " in log
    assert "torch" in log, log
    assert "forking" not in log, log
    for answer in answers:
        assert answer.status_code == 200, answer.text
        got = {o["name"]: np.asarray(o["data"], dtype=np.float32).reshape(o["shape"]) for o in answer.json()["outputs"]}
        assert_close(got["softmax"], p, what="a fresh worker's probabilities")
        assert_close(got["argmax"].astype(np.int64), d, what="a fresh worker's digits")
