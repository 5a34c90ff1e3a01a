"""Manifolds as batched tensor operations (manifold axes last), and :mod:`manifres.so3`."""

from . import so3
from .base import Manifold
from .euclidean import Euclidean
from .son import SpecialOrthogonal
from .sphere import Sphere

__all__ = ["Manifold", "Sphere", "SpecialOrthogonal", "Euclidean", "so3"]
