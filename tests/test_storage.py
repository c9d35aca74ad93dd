"""Remote roots through fsspec, against a real S3-compatible server (moto) on loopback."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_wine

import modelport
from modelport.core.errors import ModelLoadError
from modelport.serving.repository import Repository
from tests.conftest import free_port
from tests.helpers import build_repository

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    moto_server = pytest.importorskip("moto.server")
    port = free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    mp = pytest.MonkeyPatch()
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "MODELPORT_CACHE": str(tmp_path_factory.mktemp("cache")),
    }.items():
        mp.setenv(key, value)
    import fsspec.config
    import s3fs

    # fsspec reads FSSPEC_* variables once, at import; set its live config so every s3://
    # filesystem made from here on talks to the loopback server, never to AWS.
    mp.setitem(fsspec.config.conf, "s3", {"endpoint_url": endpoint})
    s3fs.S3FileSystem.clear_instance_cache()

    fs = s3fs.S3FileSystem(endpoint_url=endpoint)
    fs.mkdir("models-bucket")
    local = build_repository(tmp_path_factory.mktemp("repo"))
    fs.put(str(local) + "/", "models-bucket/repo/", recursive=True)
    yield "s3://models-bucket/repo"
    mp.undo()
    s3fs.S3FileSystem.clear_instance_cache()
    server.stop()


def test_load_single_artifact_from_s3(s3: str) -> None:
    model = modelport.load_model(f"{s3}/wine/model.joblib")
    assert model.name == "wine"
    out = model.predict({"input": load_wine(return_X_y=True)[0][:2]})
    assert out["predict_proba"].shape == (2, 3)


def test_repository_from_s3(s3: str) -> None:
    repo = Repository(s3).load()
    assert {"wine", "diabetes", "wine_frame"} <= set(repo.names())
    assert sorted(repo.entry("diabetes").versions) == [1, 2]
    model = repo.get("diabetes")
    assert model.version == 2
    assert np.isfinite(model.predict({"input": np.zeros((1, 10))})["predict"]).all()


def test_missing_remote_artifact(s3: str) -> None:
    with pytest.raises(ModelLoadError, match="no such file or directory"):
        modelport.load_model(f"{s3}/nothing-here/model.joblib")


def test_file_uri_is_local(tmp_path: Path) -> None:
    root = build_repository(tmp_path / "r")
    assert modelport.load_model(f"file://{root}/wine/model.joblib").name == "wine"


def test_a_download_cut_mid_way_keeps_the_previous_copy(s3: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import fsspec.config
    import s3fs

    from modelport.core.storage import fetch
    from tests.cutting_proxy import CuttingProxy

    fs = s3fs.S3FileSystem()
    fs.pipe("models-bucket/cut/blob.bin", os.urandom(128 * 1024))
    before = fetch("s3://models-bucket/cut")
    assert (before / "blob.bin").stat().st_size == 128 * 1024
    fs.pipe("models-bucket/cut/blob.bin", b"new " * 32 * 1024)
    moto_port = int(fsspec.config.conf["s3"]["endpoint_url"].rsplit(":", 1)[1])
    with CuttingProxy(moto_port, needle=b"/models-bucket/cut/blob.bin") as proxy:
        proxy.armed.set()
        monkeypatch.setitem(fsspec.config.conf, "s3", {"endpoint_url": f"http://127.0.0.1:{proxy.port}"})
        s3fs.S3FileSystem.clear_instance_cache()
        with pytest.raises(ModelLoadError) as err:
            fetch("s3://models-bucket/cut")
        assert proxy.cuts >= 1
    s3fs.S3FileSystem.clear_instance_cache()
    assert err.value.message.startswith("s3://models-bucket/cut: the download failed: ")
    assert (before / "blob.bin").read_bytes() != b"new " * 32 * 1024  # the copy it had, whole
    assert (before / "blob.bin").stat().st_size == 128 * 1024
    assert sorted(p.name for p in before.parent.iterdir()) == ["cut"]  # no staging folder left
