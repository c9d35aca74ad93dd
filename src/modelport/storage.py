"""Local and remote (fsspec) model roots.

Remote artifacts (``s3://``, ``gs://``, ...) are copied into a local cache once and
loaded from there: every framework's loader wants a local file.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["cache_dir", "fetch", "is_remote", "split_uri"]


def is_remote(uri: str | os.PathLike[str]) -> bool:
    text = str(uri)
    return "://" in text and not text.startswith("file://")


def split_uri(uri: str) -> tuple[Any, str]:
    """The fsspec filesystem for ``uri`` and the path inside it."""
    import fsspec

    fs, path = fsspec.core.url_to_fs(uri)
    return fs, path


def cache_dir() -> Path:
    root = os.environ.get("MODELPORT_CACHE") or os.path.join(tempfile.gettempdir(), "modelport-cache")
    Path(root).mkdir(parents=True, exist_ok=True)
    return Path(root)


def fetch(uri: str) -> Path:
    """A local copy of the file or directory at ``uri``; local paths come back as they are."""
    text = str(uri)
    if text.startswith("file://"):
        return Path(text[len("file://") :])
    if not is_remote(text):
        return Path(text)
    from modelport.errors import ModelLoadError

    fs, path = split_uri(text)
    path = path.rstrip("/")
    try:
        exists = fs.exists(path)
    except Exception as exc:  # credentials, endpoint or network problems
        raise ModelLoadError(f"{text}: cannot reach it: {type(exc).__name__}: {exc}") from None
    if not exists:
        raise ModelLoadError(f"{text}: no such file or directory")
    key = hashlib.sha256(text.encode()).hexdigest()[:16]
    target = cache_dir() / key / Path(path).name
    if fs.isdir(path):
        if target.exists():
            import shutil

            shutil.rmtree(target)
        target.mkdir(parents=True, exist_ok=True)
        fs.get(path + "/", str(target) + "/", recursive=True)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        fs.get(path, str(target))
    return target
