"""The gait stage: from poses to steps, gait features and a score per pass.

* :mod:`gaitlive.gait.events` - the dataclasses the stage emits (the contract with the
  publisher, overlay, ``analyze`` and reports); importing it is cheap.
* :mod:`gaitlive.gait.kernels` - numba kernels (skeleton, angles, foot contact);
  :mod:`gaitlive.gait.reference` - the same maths in numpy.
* :mod:`gaitlive.gait.features` - pass features from a pass history.
* :mod:`gaitlive.gait.stage` - :class:`GaitStage`, the online stage.

``GaitStage`` is imported lazily (``from gaitlive.gait import GaitStage``) so that
importing :mod:`gaitlive.gait.events` never loads numba.
"""

from __future__ import annotations

from typing import Any

__all__ = ["GaitStage"]


def __getattr__(name: str) -> Any:
    if name == "GaitStage":
        from gaitlive.gait.stage import GaitStage

        return GaitStage
    raise AttributeError(f"module 'gaitlive.gait' has no attribute {name!r}")
