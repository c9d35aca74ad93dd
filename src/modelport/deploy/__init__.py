"""``modelport deploy``: the files each platform needs to run ``modelport serve`` on the user's models.

One module per target (:mod:`.kubernetes`, :mod:`.kserve`, :mod:`.docker`, :mod:`.aws`,
:mod:`.gcp`); :mod:`.models` finds the models and the extras their flavors need without
importing any framework, :mod:`.footprint` measures what a first start really takes, and
:mod:`.precompile` fills the compile cache (``modelport compile``) so an image's first start
needs no framework. Manifests are built as Python data and dumped with YAML, never by
filling in text templates.
"""

from __future__ import annotations

__all__ = ["TARGETS"]

TARGETS = ("k8s", "kserve", "docker", "lambda", "appengine", "cloudrun")
