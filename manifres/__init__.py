"""manifres: manifold residual flows in PyTorch.

A residual block computes ``y = x + a F(x)``; on a manifold it becomes the tangent-constrained
step ``x_next = R_x(h P_x F(x))``. manifres provides batched, autograd-safe manifolds
(:class:`Sphere`, :class:`SpecialOrthogonal`, :class:`Euclidean`), residual layers and
integrators (:mod:`manifres.nn`, :mod:`manifres.flows`), graph diffusion layers
(:mod:`manifres.graph`) and stability studies (:mod:`manifres.stability`).

Examples
--------
>>> import torch, manifres
>>> S = manifres.Sphere(2)
>>> x = S.random(4, dtype=torch.float64)
>>> bool(S.is_point(S.exp(x, 0.1 * S.random_tangent(x))).all())
True
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from . import errors
from ._config import get_validation, set_validation, validation
from .manifolds import Euclidean, Manifold, Sphere

try:
    __version__ = version("manifres")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

__all__ = [
    "Manifold",
    "Sphere",
    "Euclidean",
    "errors",
    "set_validation",
    "get_validation",
    "validation",
    "__version__",
]
