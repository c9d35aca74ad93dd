"""The committed gRPC stubs are what the .proto generates (no drift)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PROTO = "modelport/protocols/grpc/proto/grpc_predict_v2.proto"


def test_stubs_match_the_proto(tmp_path: Path) -> None:
    pytest.importorskip("grpc_tools")
    (tmp_path / "modelport/protocols/grpc/proto").mkdir(parents=True)
    shutil.copy(SRC / PROTO, tmp_path / PROTO)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            "-I.",
            "--python_out=.",
            "--grpc_python_out=.",
            "--pyi_out=.",
            PROTO,
        ],
        cwd=tmp_path,
        check=True,
    )
    for name in ("grpc_predict_v2_pb2.py", "grpc_predict_v2_pb2_grpc.py", "grpc_predict_v2_pb2.pyi"):
        fresh = (tmp_path / "modelport/protocols/grpc/proto" / name).read_text()
        committed = (SRC / "modelport/protocols/grpc/proto" / name).read_text()
        assert fresh == committed, f"{name} is stale: run `make grpc-gen`"
