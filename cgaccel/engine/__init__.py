"""Compute engine RTL: decoupled output-channel columns that skip gated work.

See ``docs/engine.md``. :class:`Engine` is the top; :mod:`.tiling` maps layers onto it and
:mod:`.sim` runs them in the Amaranth simulator.
"""

from .engine import Engine
from .geometry import Geometry, Target

__all__ = ["Engine", "Geometry", "Target"]
