"""scikit-learn models saved with skops (``.skops``), the format MLflow 3 writes by default.

Loading a skops file builds objects from a description instead of running pickled code,
and refuses any type outside skops' own trusted set unless the operator names it. modelport
trusts exactly the types the operator declared: for an MLflow model, the
``skops_trusted_types`` its MLmodel records (what the user passed to ``log_model``); for a
plain ``.skops`` file, ``trusted`` under ``[skops]`` in modelport.toml. A file that needs
any other type is refused with a message naming it, before anything is built.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from modelport.core.config import CONFIG_FILE, ModelConfig
from modelport.core.errors import ModelLoadError

__all__ = ["load", "read"]


def read(path: Path, trusted: Sequence[str], how_to_trust: Callable[[list[str]], str]) -> Any:
    """The object in the skops file ``path``, trusting ``trusted`` beyond skops' defaults."""
    try:
        import skops.io as sio
    except ImportError:
        raise ModelLoadError(
            f"{path}: a skops file needs the skops package, which is not installed; "
            "install it with: pip install 'modelport[skops]'"
        ) from None
    try:
        needed = list(sio.get_untrusted_types(file=path))
    except OSError as exc:
        raise ModelLoadError(f"{path}: cannot read the skops file: {exc}") from None
    except Exception as exc:  # zipfile.BadZipFile, JSON errors in its schema
        raise ModelLoadError(
            f"{path}: not a readable skops file ({type(exc).__name__}: {exc}); "
            "expected a file written by skops.io.dump or mlflow.sklearn with serialization_format='skops'"
        ) from None
    refused = [t for t in needed if t not in set(trusted)]
    if refused:
        raise ModelLoadError(
            f"{path}: the skops file needs types that are not trusted: {', '.join(refused)}; {how_to_trust(refused)}"
        )
    try:
        return sio.load(path, trusted=list(trusted))
    except Exception as exc:
        raise ModelLoadError(f"{path}: skops could not load it ({type(exc).__name__}: {exc})") from None


def trusted_types(where: str, value: Any) -> list[str]:
    """A declared trusted-types list, checked: None means none beyond skops' defaults."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ModelLoadError(f"{where}: trusted types must be a list of fully qualified type names, got {value!r}")
    return list(value)


def load(path: Path, config: ModelConfig) -> Any:
    from modelport.runtimes.flavors import sklearn

    if path.is_dir():
        files = sorted(path.glob("*.skops"))
        if len(files) != 1:
            raise ModelLoadError(f"{path}: expected exactly one .skops file in the directory, found {len(files)}")
        path = files[0]
    table = config.extra.get("skops") or {}
    where = config.path or str(path.parent / CONFIG_FILE)
    if not isinstance(table, dict) or set(table) - {"trusted"}:
        raise ModelLoadError(f"{where}: [skops] takes only 'trusted', a list of type names")
    trusted = trusted_types(f"{where}: [skops] trusted", table.get("trusted"))

    def how(refused: list[str]) -> str:
        names = ", ".join(f'"{t}"' for t in [*trusted, *refused])
        return f"if you trust them, list them in {CONFIG_FILE} beside it: [skops] trusted = [{names}]"

    estimator = read(path, trusted, how)
    return sklearn.predictor_for(estimator, config, str(path))
