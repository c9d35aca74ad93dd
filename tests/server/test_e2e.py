"""A real ``modelport serve`` subprocess, reached over a socket by plain HTTP clients."""

from __future__ import annotations

import http.client
import json
import os
import ssl
from pathlib import Path

import httpx
import numpy as np
import pytest
from sklearn.datasets import load_wine

from tests.serving import run_server

pytestmark = pytest.mark.slow

ROWS = load_wine(return_X_y=True)[0][:2].tolist()


def test_tf_serving_style_client(repo_dir: Path) -> None:
    """The request a TF Serving user sends with http.client, byte for byte."""
    with run_server(repo_dir / "wine") as server:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        body = json.dumps({"signature_name": "serving_default", "instances": ROWS})
        conn.request("POST", "/v1/models/wine:predict", body=body, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        assert resp.status == 200
        predictions = json.loads(resp.read())["predictions"]
        assert len(predictions) == 2 and {"predict", "predict_proba"} == set(predictions[0])
        # keep-alive: a second request on the same connection
        conn.request("GET", "/v1/models/wine")
        resp = conn.getresponse()
        assert json.loads(resp.read())["model_version_status"][0]["state"] == "AVAILABLE"
        conn.close()


def test_repository_over_socket_with_two_workers(repo_dir: Path) -> None:
    with run_server(repo_dir, "--workers", "2") as server:
        with httpx.Client(base_url=server.url, timeout=10) as c:
            for _ in range(20):
                r = c.post(
                    "/v2/models/wine/infer",
                    json={"inputs": [{"name": "input", "shape": [2, 13], "datatype": "FP64", "data": ROWS}]},
                )
                assert r.status_code == 200
            bad = c.post("/v2/models/wine/infer", content=b"{", headers={"content-type": "application/json"})
            assert bad.status_code == 400 and "not valid JSON" in bad.json()["error"]
            assert c.get("/openapi.json").json()["openapi"].startswith("3.")
            assert "modelport" in c.get("/").text


def test_tls_with_generated_certificate(repo_dir: Path, tmp_path: Path) -> None:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "server.pem"))
    cert.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    context = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
    args = ("--ssl-certfile", str(tmp_path / "server.pem"), "--ssl-keyfile", str(tmp_path / "key.pem"))
    with run_server(repo_dir / "wine", *args, scheme="https", verify=context) as server:
        r = httpx.post(server.url + "/v1/models/wine:predict", json={"instances": ROWS}, verify=context, timeout=10)
        assert r.status_code == 200 and len(r.json()["predictions"]) == 2
        with pytest.raises(httpx.ConnectError):  # a client that does not trust the CA refuses
            httpx.get(server.url + "/v2/health/live", timeout=10)


def test_auth_token_from_environment(repo_dir: Path) -> None:
    with run_server(repo_dir / "wine", env={"MODELPORT_AUTH_TOKEN": "tok"}) as server:
        assert httpx.get(server.url + "/v2/models/wine").status_code == 401
        ok = httpx.get(server.url + "/v2/models/wine", headers={"Authorization": "Bearer tok"})
        assert ok.status_code == 200 and ok.json()["name"] == "wine"


def test_auth_token_from_a_file(repo_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "token").write_text("from-file\n")  # the newline an editor adds is not part of the token
    (tmp_path / "admin").write_text("adm")
    args = ("--auth-token-file", str(tmp_path / "token"))
    with run_server(repo_dir / "wine", *args, env={"MODELPORT_ADMIN_TOKEN_FILE": str(tmp_path / "admin")}) as server:
        assert httpx.get(server.url + "/v2/models/wine").status_code == 401
        ok = httpx.get(server.url + "/v2/models/wine", headers={"Authorization": "Bearer from-file"})
        assert ok.status_code == 200
        index = httpx.post(server.url + "/v2/repository/index", headers={"Authorization": "Bearer adm"})
        assert index.status_code == 200
        assert "from-file" not in " ".join(server.process.args)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        ((), {"MODELPORT_AUTH_TOKEN": ""}, "MODELPORT_AUTH_TOKEN is set but empty; set a token, or unset it"),
        ((), {"MODELPORT_ADMIN_TOKEN": ""}, "MODELPORT_ADMIN_TOKEN is set but empty"),
        ((), {"MODELPORT_ADMIN_TOKEN": " "}, "--admin-token is empty"),
        (("--auth-token", ""), {}, "--auth-token is empty; give a token, or leave the option out"),
        (("--auth-token", "a", "--auth-token-file", "{empty}"), {}, "give --auth-token or --auth-token-file, not both"),
        (("--auth-token-file", "{empty}"), {}, "--auth-token-file {empty} is empty; write the token in it"),
        (("--admin-token-file", "{empty}"), {}, "--admin-token-file {empty} is empty"),
    ],
)
def test_an_empty_token_is_an_error_at_start(
    repo_dir: Path, tmp_path: Path, args: tuple[str, ...], env: dict[str, str], message: str
) -> None:
    """An empty token used to turn auth off without a word."""
    import subprocess
    import sys

    empty = tmp_path / "empty"
    empty.write_text("\n")
    cmd = [sys.executable, "-m", "modelport.cli", "serve", str(repo_dir / "wine"), "--port", "1"]
    cmd += [a.replace("{empty}", str(empty)) for a in args]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MODELPORT_") or k == "MODELPORT_COMPILE_CACHE"}
    src = str(Path(__file__).resolve().parents[2] / "src")
    clean["PYTHONPATH"] = os.pathsep.join(p for p in (src, clean.get("PYTHONPATH")) if p)
    done = subprocess.run(cmd, env={**clean, **env}, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert message.replace("{empty}", str(empty)) in done.stderr


def test_tritonclient_http(repo_dir: Path) -> None:
    """NVIDIA's own V2 HTTP client talks to modelport unchanged."""
    httpclient = pytest.importorskip("tritonclient.http")
    with run_server(repo_dir) as server:
        client = httpclient.InferenceServerClient(url=f"127.0.0.1:{server.port}")
        assert client.is_server_live() and client.is_model_ready("wine")
        meta = client.get_model_metadata("wine")
        assert meta["inputs"][0]["name"] == "input"
        x = np.asarray(ROWS, dtype=np.float64)
        inp = httpclient.InferInput("input", list(x.shape), "FP64")
        inp.set_data_from_numpy(x, binary_data=False)
        out = httpclient.InferRequestedOutput("predict_proba", binary_data=False)
        result = client.infer("wine", [inp], outputs=[out])
        assert result.as_numpy("predict_proba").shape == (2, 3)
        with pytest.raises(Exception, match="unknown model 'nope'"):
            client.infer("nope", [inp])
        client.close()
