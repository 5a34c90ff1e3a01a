"""Manifolds whose metric is not the one of the embedding, for the optimizer tests.

Both keep the geometry of their parent (points, tangent spaces, exp, retractions: a constant
rescaling of the metric leaves the geodesics unchanged) and change the metric, so the
Riemannian gradient is not the tangent projection of the Euclidean one.
"""

import pytest
import torch

import manifres


class ScaledSphere(manifres.Sphere):
    """:math:`S^n` with the metric :math:`c\\langle u, v\\rangle`: ``egrad2rgrad = P_x g / c``."""

    def __init__(self, n: int, c: float) -> None:
        super().__init__(n)
        self.c = float(c)

    def _params(self) -> tuple:
        return (self.n, self.c)

    def inner(self, x, u, v):
        return self.c * super().inner(x, u, v)

    def egrad2rgrad(self, x, g):
        return self.proj(x, g) / self.c

    def dist(self, x, y):
        return self.c**0.5 * super().dist(x, y)


class WeightedEuclidean(manifres.Euclidean):
    """:math:`\\mathbb{R}^n` with the metric :math:`u^T D v`, ``D = diag(d)``:
    ``egrad2rgrad = D^{-1} g``."""

    def __init__(self, d: tuple[float, ...]) -> None:
        super().__init__(len(d))
        self.d = tuple(float(w) for w in d)

    def _params(self) -> tuple:
        return (self.d,)

    def _weights(self, like):
        return torch.tensor(self.d, dtype=like.dtype, device=like.device)

    def inner(self, x, u, v):
        return (u * self._weights(u) * v).sum(-1).expand(torch.broadcast_shapes(x.shape, u.shape)[:-1])

    def egrad2rgrad(self, x, g):
        return g / self._weights(g)


@pytest.fixture
def scaled_sphere():
    return ScaledSphere(2, 4.0)


@pytest.fixture
def weighted_euclidean():
    return WeightedEuclidean((1.0, 4.0, 0.25))
