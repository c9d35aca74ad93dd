"""Local and remote (fsspec) model roots.

Remote artifacts (``s3://``, ``gs://``, ...) are copied into a local cache once and
loaded from there: every framework's loader wants a local file.
"""

from __future__ import annotations

import hashlib
import os
import shutil
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
    from modelport.core.errors import ModelLoadError

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
    target.parent.mkdir(parents=True, exist_ok=True)
    # Download beside the target and swap it in only when complete: a backend that fails
    # mid-download leaves the previous copy (what the server is serving from) as it was.
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.download-"))
    try:
        if fs.isdir(path):
            fs.get(path + "/", str(staging) + "/", recursive=True)
            _swap(staging, target)
        else:
            fs.get(path, str(staging / target.name))
            os.replace(staging / target.name, target)
    except Exception as exc:
        raise ModelLoadError(f"{text}: the download failed: {type(exc).__name__}: {exc}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _swap(new: Path, target: Path) -> None:
    """Put the directory ``new`` at ``target``, replacing what is there with two renames."""
    old = new.parent / f"{new.name}.old"
    if target.exists():
        os.rename(target, old)
    try:
        os.rename(new, target)
    except OSError:
        if old.exists():
            os.rename(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)
