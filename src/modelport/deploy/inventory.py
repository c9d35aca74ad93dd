"""What a deployment must carry for a set of models: their names, flavors and the extras those need.

Found the way ``modelport serve`` walks a repository (:class:`~modelport.serving.repository.Repository`'s
discovery and :func:`~modelport.runtimes.flavors.detect`), reading files only: no framework is imported,
so ``modelport deploy`` runs where the models' frameworks are not installed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from modelport.core.config import read_config
from modelport.core.errors import ConfigError, ModelLoadError
from modelport.runtimes.flavors import detect

__all__ = ["EXTRAS", "FoundModel", "extras_for", "find_models"]

# The pyproject extra each flavor's runtime needs (sparkml runs on numpy and scipy alone).
EXTRAS: dict[str, str | None] = {
    "sklearn": "sklearn",
    "onnx": "onnx",
    "xgboost": "xgboost",
    "lightgbm": "lightgbm",
    "sparkml": None,
}
# MLflow flavors as modelport's mlflow loader picks them (flavors/mlflow.py SUPPORTED), to our flavors.
_MLFLOW = {"sklearn": "sklearn", "xgboost": "xgboost", "lightgbm": "lightgbm", "onnx": "onnx", "spark": "sparkml"}


@dataclass(frozen=True)
class FoundModel:
    """One model version as serve would load it."""

    name: str
    version: int
    path: Path
    flavor: str
    runtime: str  # the flavor whose framework runs it (an MLflow directory's native flavor)


def _mlflow_runtime(path: Path) -> str:
    import yaml

    directory = path.parent if path.is_file() else path
    try:
        data = yaml.safe_load((directory / "MLmodel").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ModelLoadError(f"{directory / 'MLmodel'}: not readable: {exc}") from None
    flavors = data.get("flavors") if isinstance(data, dict) else None
    for name in _MLFLOW:
        if isinstance(flavors, dict) and name in flavors:
            return _MLFLOW[name]
    raise ModelLoadError(
        f"{directory / 'MLmodel'}: no flavor modelport serves; supported MLflow flavors: {', '.join(_MLFLOW)}"
    )


def find_models(root: str | Path) -> list[FoundModel]:
    """Every model version under ``root`` (an artifact or a repository), with its flavor."""
    from modelport.serving.repository import Repository

    path = Path(root)
    if not path.exists():
        raise ModelLoadError(f"{root}: no such file or directory")
    # The same walk serve does; it reads directory listings and modelport.toml, never a model.
    found = Repository(str(path))._discover(path)
    out: list[FoundModel] = []
    for name, (_, config, versions) in sorted(found.items()):
        for version, vpath in sorted(versions.items()):
            own = read_config(vpath) if vpath.is_dir() else config
            flavor = own.flavor or config.flavor
            if not flavor:
                flavor, _ = detect(vpath)
            if flavor not in EXTRAS and flavor != "mlflow":
                raise ConfigError(f"{vpath}: unknown flavor '{flavor}'; supported: {', '.join([*EXTRAS, 'mlflow'])}")
            runtime = _mlflow_runtime(vpath) if flavor == "mlflow" else flavor
            out.append(FoundModel(name, version, vpath, flavor, runtime))
    return out


def extras_for(models: list[FoundModel]) -> list[str]:
    """The modelport extras these models need, and no more (sorted)."""
    return sorted({e for m in models if (e := EXTRAS[m.runtime]) is not None})


def extras_for_uri(uri: str) -> list[str]:
    """The storage extra a remote model URI needs (s3fs, gcsfs)."""
    if uri.startswith("s3://"):
        return ["s3"]
    if uri.startswith(("gs://", "gcs://")):
        return ["gcs"]
    return []
