"""Token outputs on the wire: declared BYTES [-1, -1] and sent as that rectangle, with each row's length.

Spark's token arrays are ragged; V2 tensors are not. Rows are right-padded with "" and the output's
``lengths`` parameter says where each row ends, so a real empty token (Java's split of two spaces)
is never mistaken for padding. JSON, the binary extension and gRPC carry the same rectangle.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from modelport.protocols.rest.binary import rectangular
from modelport.serving.repository import Repository
from tests.server.conftest import make_client

TEXTS = ["Hello  world", "a", "", "The quick brown fox"]


@pytest.fixture(scope="module")
def saved(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[list[str]], list[list[str]]]:
    from pyspark.ml import Pipeline
    from pyspark.ml.feature import RegexTokenizer, StopWordsRemover, Tokenizer

    root = tmp_path_factory.mktemp("wire") / "models"
    df = spark.createDataFrame([(t,) for t in TEXTS], ["text"])
    # Two terminal token outputs: Tokenizer's (Java's split on one whitespace: real empty tokens) and
    # a RegexTokenizer's after stop words are removed.
    model = Pipeline(
        stages=[
            Tokenizer(inputCol="text", outputCol="words"),
            RegexTokenizer(inputCol="text", outputCol="pieces", pattern="\\W+"),
            StopWordsRemover(inputCol="pieces", outputCol="kept"),
        ]
    ).fit(df)
    model.save(str(root / "tokens"))
    rows = model.transform(df).collect()
    return root, [list(r["words"]) for r in rows], [list(r["kept"]) for r in rows]


def _padded(rows: list[list[str]]) -> tuple[list[str], list[int], int]:
    width = max(len(r) for r in rows)
    return [t for r in rows for t in r + [""] * (width - len(r))], [len(r) for r in rows], width


async def test_token_outputs_are_the_declared_rectangle(saved: tuple[Path, list[list[str]], list[list[str]]]) -> None:
    root, words, kept = saved
    assert [""] in words or any("" in w for w in words)  # Spark gives a real empty token here
    repository = Repository(str(root)).load()
    try:
        async with make_client(repository) as client:
            meta = (await client.get("/v2/models/tokens")).json()
            declared = {o["name"]: o for o in meta["outputs"]}
            assert declared["words"]["datatype"] == "BYTES" and declared["words"]["shape"] == [-1, -1]
            body = {
                "inputs": [{"name": "text", "datatype": "BYTES", "shape": [len(TEXTS)], "data": TEXTS}],
                "outputs": [{"name": "words"}, {"name": "kept"}],
            }
            answer = (await client.post("/v2/models/tokens/infer", json=body)).json()
            got = {o["name"]: o for o in answer["outputs"]}
            for name, rows in (("words", words), ("kept", kept)):
                data, lengths, width = _padded(rows)
                assert got[name]["shape"] == [len(TEXTS), width]
                assert got[name]["data"] == data  # strings: exact
                assert got[name]["parameters"]["lengths"] == lengths

            # The binary extension: the same rectangle, length-prefixed, and the lengths in the JSON header.
            body["outputs"] = [{"name": "words", "parameters": {"binary_data": True}}]
            r = await client.post("/v2/models/tokens/infer", json=body)
            head_len = int(r.headers["inference-header-content-length"])
            head = json.loads(r.content[:head_len])
            out = head["outputs"][0]
            data, lengths, width = _padded(words)
            assert out["shape"] == [len(TEXTS), width] and out["parameters"]["lengths"] == lengths
            raw, pos, tokens = r.content[head_len:], 0, []
            while pos < len(raw):
                (n,) = struct.unpack_from("<I", raw, pos)
                tokens.append(raw[pos + 4 : pos + 4 + n].decode())
                pos += 4 + n
            assert tokens == data
    finally:
        repository.close()


def test_rectangular_marks_null_rows_and_leaves_plain_columns() -> None:
    import numpy as np

    ragged = np.empty(3, dtype=object)
    ragged[:] = [["a", ""], None, []]
    arr, lengths = rectangular(ragged)
    assert arr.shape == (3, 2) and arr.tolist() == [["a", ""], ["", ""], ["", ""]]
    assert lengths == [2, -1, 0]
    plain = np.array(["x", "y"], dtype=object)
    assert rectangular(plain)[0] is plain and rectangular(plain)[1] is None
    numbers = np.zeros((2, 3))
    assert rectangular(numbers)[1] is None


def test_grpc_sends_the_same_rectangle(saved: tuple[Path, list[list[str]], list[list[str]]]) -> None:
    # In a fresh interpreter: this process may already hold tritonclient's stubs for the same protobuf
    # package, and protobuf refuses a second registration of it.
    root, words, _ = saved
    script = (
        "import json, sys\n"
        "from modelport.serving.repository import Repository\n"
        "from modelport.protocols.grpc.servicer import encode_response\n"
        "repository = Repository(sys.argv[1]).load()\n"
        "model = repository.get('tokens')\n"
        "result = model.predict({'text': json.loads(sys.argv[2])}, ['words'])\n"
        "out = encode_response(model, result, False, 'id-1').outputs[0]\n"
        "print(json.dumps({'shape': list(out.shape), 'data': [b.decode() for b in out.contents.bytes_contents],\n"
        "                  'lengths': json.loads(out.parameters['lengths'].string_param)}))\n"
        "repository.close()\n"
    )
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p)}
    done = subprocess.run(
        [sys.executable, "-c", script, str(root), json.dumps(TEXTS)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout.strip().splitlines()[-1])
    data, lengths, width = _padded(words)
    assert got == {"shape": [len(TEXTS), width], "data": data, "lengths": lengths}
