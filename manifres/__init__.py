"""manifres: manifold residual flows in PyTorch.

A residual block computes ``y = x + a F(x)``; on a manifold it becomes the tangent-constrained
step ``x_next = R_x(h P_x F(x))``. manifres provides batched, autograd-safe manifolds
(:class:`Sphere`, :class:`SpecialOrthogonal`, :class:`Euclidean`), residual layers and
integrators (:mod:`manifres.nn`, :mod:`manifres.flows`), graph diffusion layers
(:mod:`manifres.graph`), stability analysis (:mod:`manifres.stability`) and ready-made
experiments built from them (:mod:`manifres.experiments`).

Examples
--------
>>> import torch, manifres
>>> S = manifres.Sphere(2)
>>> x = S.random(4, dtype=torch.float64)
>>> bool(S.is_point(S.exp(x, 0.1 * S.random_tangent(x))).all())
True
"""

from __future__ import annotations

import importlib
import sys
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from . import errors
from ._config import get_validation, set_validation, validation
from .manifolds import Euclidean, Manifold, SpecialOrthogonal, Sphere, so3
from .parameter import ManifoldParameter

# ``so3`` lives in manifres/manifolds/so3.py; ``import manifres.so3`` keeps working
sys.modules[f"{__name__}.so3"] = so3

try:
    __version__ = version("manifres")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

# Subpackages load on first use: `import manifres` stays light (torch-geometric, matplotlib,
# geomstats and pymanopt are imported only by the modules that need them).
_SUBPACKAGES = ("nn", "flows", "optim", "graph", "stability", "interop", "testing", "experiments")


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'manifres' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_SUBPACKAGES))


__all__ = [
    *_SUBPACKAGES,
    "Manifold",
    "Sphere",
    "SpecialOrthogonal",
    "Euclidean",
    "ManifoldParameter",
    "errors",
    "so3",
    "set_validation",
    "get_validation",
    "validation",
    "__version__",
]
