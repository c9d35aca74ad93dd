"""``load_model``: from a path or URI to a ready :class:`~modelport.core.model.Model`."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from modelport.core import fastpaths
from modelport.core.config import ModelConfig, merge, read_config
from modelport.core.errors import ConfigError, ModelLoadError
from modelport.core.model import Model, Predictor, predict_outputs
from modelport.core.signature import Batch, Signature, TensorSpec
from modelport.core.storage import fetch, is_remote
from modelport.runtimes.flavors import detect, load_predictor

__all__ = ["load_model"]

log = logging.getLogger("modelport.loading")


class _Renamed:
    """A predictor whose signature was overridden in modelport.toml.

    Inputs and outputs are matched to the flavor's own by position, so an override can
    rename tensors as well as fix their datatype, shape or labels.
    """

    def __init__(self, inner: Predictor, signature: Signature) -> None:
        self.inner = inner
        self.signature = signature
        self.info = dict(getattr(inner, "info", {}) or {})
        own = inner.signature
        self._in = {new.name: old.name for new, old in zip(signature.inputs, own.inputs, strict=True)}
        self._out = {old.name: new.name for new, old in zip(signature.outputs, own.outputs, strict=True)}
        self._back = {new: old for old, new in self._out.items()}

    selects_outputs = True

    def predict(self, batch: Batch, outputs: Sequence[str] | None = None) -> Batch:
        own = None if outputs is None else [self._back.get(o, o) for o in outputs]
        result = predict_outputs(self.inner, {self._in[k]: v for k, v in batch.items()}, own)
        return {self._out.get(k, k): v for k, v in result.items()}


def _override(predictor: Predictor, config: ModelConfig, where: str) -> Predictor:
    if config.inputs_override is None and config.outputs_override is None:
        return predictor
    own = predictor.signature
    inputs = config.inputs_override or own.inputs
    outputs = config.outputs_override or own.outputs
    for kind, new, old in (("inputs", inputs, own.inputs), ("outputs", outputs, own.outputs)):
        if len(new) != len(old):
            raise ConfigError(
                f"{where}: signature.{kind} lists {len(new)} tensors but the model has {len(old)} "
                f"({', '.join(s.name for s in old)})"
            )
    return _Renamed(predictor, Signature(tuple(inputs), tuple(outputs)))


_GENERIC = {"model", "models", "saved_model", "artifact"}


def _default_name(path: Path) -> str:
    """``wine/model.joblib`` and ``wine/1/`` are both called ``wine``."""
    path = path if path.is_absolute() else path.resolve()
    name = path.name if path.is_dir() else path.stem
    while (name.isdigit() or name in _GENERIC) and path.parent != path and path.parent.name:
        path = path.parent
        name = path.name
    return name or "model"


def load_model(
    path_or_uri: str | os.PathLike[str],
    *,
    name: str | None = None,
    version: int | None = None,
    compile: bool | None = None,
    config: ModelConfig | None = None,
) -> Model:
    """Load one model artifact (a file or a directory, local or ``s3://``/``gs://``).

    ::

        model = modelport.load_model("examples/models/wine/model.joblib")
        model.signature            # inputs and outputs with V2 datatypes
        model.predict({"input": X})

    Loading a pickle or joblib file runs code from that file: load only artifacts you trust.
    """
    uri = str(path_or_uri)
    local = fetch(uri)
    if not local.exists():
        raise ModelLoadError(f"{uri}: no such file or directory")
    own = read_config(local if local.is_dir() else local.parent)
    cfg = merge(config, own) if config is not None else own
    if cfg.flavor:
        flavor, artifact = cfg.flavor, local
    else:
        flavor, artifact = detect(local)
    if compile is not None:
        cfg = ModelConfig(**{**cfg.__dict__, "compile": compile})
    if cfg.compile is not False and fastpaths.enabled("compiled"):
        from modelport.runtimes.compile import load_compiled

        predictor = load_compiled(flavor, artifact, cfg, lambda: load_predictor(flavor, artifact, cfg))
    else:
        predictor = load_predictor(flavor, artifact, cfg)
    predictor = _override(predictor, cfg, cfg.path or str(local))
    model_name = name or cfg.name or _default_name(Path(uri.split("://", 1)[1]) if is_remote(uri) else local)
    log.debug("loaded %s as %s from %s", model_name, flavor, artifact)
    return Model(
        model_name,
        version if version is not None else 1,
        predictor,
        flavor=flavor,
        source=uri,
        outputs=cfg.outputs,
        close=getattr(predictor, "close", None),
        batching=cfg.batching,
    )


def describe(model: Model) -> dict[str, Any]:
    """What ``modelport inspect`` prints: identity, flavor, signature and flavor details."""
    return {
        "name": model.name,
        "version": model.version,
        "flavor": model.flavor,
        "source": model.source,
        "signature": model.signature.to_dict(),
        "info": model.info,
    }


def spec_summary(spec: TensorSpec) -> str:
    shape = ", ".join(str(d) for d in spec.shape)
    return f"{spec.name}: {spec.datatype}[{shape}]"
