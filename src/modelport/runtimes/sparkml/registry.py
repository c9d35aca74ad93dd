"""Import every stage module so each registers its Spark classes (``stage.register``).

Modules are found with pkgutil, so a new module in ``modelport.runtimes.sparkml`` or
``modelport.runtimes.sparkml.models`` takes part without an edit here.
"""

from __future__ import annotations

import importlib
import pkgutil

from modelport.runtimes.sparkml.stage import STAGES

__all__ = ["load_all", "supported_classes"]

_PACKAGES = ("modelport.runtimes.sparkml", "modelport.runtimes.sparkml.models")
_SKIP = {"modelport.runtimes.sparkml.registry", "modelport.runtimes.sparkml.pipeline"}
_loaded = False


def load_all() -> None:
    """Import the stage modules once."""
    global _loaded
    if _loaded:
        return
    for package_name in _PACKAGES:
        package = importlib.import_module(package_name)
        for info in pkgutil.iter_modules(package.__path__, package_name + "."):
            if info.name not in _SKIP and not info.ispkg:
                importlib.import_module(info.name)
    _loaded = True


def supported_classes() -> list[str]:
    """Every Spark class name the runtime implements."""
    load_all()
    return sorted(STAGES)
