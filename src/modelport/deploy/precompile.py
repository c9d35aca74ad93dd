"""``modelport compile``: fill the compile cache for models, as an image build does.

Loads every model version under each root the way ``modelport serve`` does (so kernels that
pass the agreement check are written to ``$MODELPORT_COMPILE_CACHE``), then starts a fresh
interpreter that loads them again and reports which frameworks it imported: a first start
that finds the cache imports none.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass

__all__ = ["Compiled", "check_fresh_start", "compile_models"]


@dataclass(frozen=True)
class Compiled:
    model: str
    version: int
    flavor: str
    state: str
    runtime: str  # what serves its outputs: "numpy (compiled)", the native runtime, or the failure


def compile_models(root: str) -> list[Compiled]:
    """Load ``root`` as serve does (compile on) and say what serves each version."""
    from modelport.serving.repository import Repository

    repo = Repository(root, compile=None).load()
    out = []
    try:
        for entry in repo.entries():
            for v in sorted(entry.versions.values(), key=lambda v: v.version):
                if v.model is None:
                    out.append(Compiled(entry.name, v.version, "-", v.state, v.reason))
                    continue
                runtime = v.model.info.get("runtime", {})
                kinds = sorted(set(runtime.values())) if isinstance(runtime, dict) and runtime else [v.model.flavor]
                out.append(Compiled(entry.name, v.version, v.model.flavor, v.state, ", ".join(map(str, kinds))))
    finally:
        repo.close()
    return out


_PROBE = """
import json, sys
from modelport.serving.repository import Repository
from modelport.process.run import frameworks_loaded
repo = Repository(sys.argv[1]).load()
print(json.dumps({"frameworks": frameworks_loaded(), "ready": repo.ready()}))
repo.close()
"""


def check_fresh_start(root: str) -> list[str]:
    """The frameworks a fresh interpreter imports to load ``root`` now (none when the cache serves it all)."""
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, root], capture_output=True, text=True, timeout=600, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"loading {root} in a fresh interpreter failed:\n{proc.stderr[-2000:]}")
    result: list[str] = json.loads(proc.stdout.strip().splitlines()[-1])["frameworks"]
    return result
