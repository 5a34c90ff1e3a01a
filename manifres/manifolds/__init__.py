"""Manifolds as batched tensor operations (manifold axes last)."""

from .base import Manifold
from .euclidean import Euclidean
from .son import SpecialOrthogonal
from .sphere import Sphere

__all__ = ["Manifold", "Sphere", "SpecialOrthogonal", "Euclidean"]
