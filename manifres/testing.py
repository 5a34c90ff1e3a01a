"""Assertions that users can reuse to test their own manifolds, fields and layers.

Examples
--------
>>> import torch, manifres
>>> from manifres.testing import assert_on_manifold
>>> S = manifres.Sphere(2)
>>> assert_on_manifold(S, S.random(10, dtype=torch.float64))
"""

from __future__ import annotations

import torch
from torch import Tensor

from .manifolds.base import Manifold

__all__ = ["TOL", "tol", "assert_on_manifold", "assert_tangent", "assert_finite_grad"]

#: Default absolute tolerances of the test-suite, per dtype.
TOL = {torch.float32: 1e-6, torch.float64: 1e-12}


def tol(dtype: torch.dtype, f32: float | None = None, f64: float | None = None) -> float:
    """Tolerance for ``dtype``: ``f32``/``f64`` when given, else :data:`TOL`."""
    if dtype == torch.float32:
        return TOL[dtype] if f32 is None else f32
    return TOL[torch.float64] if f64 is None else f64


def assert_on_manifold(manifold: Manifold, x: Tensor, atol: float | None = None) -> None:
    """Assert every point of ``x`` is finite and on ``manifold`` within ``atol``."""
    ok = manifold.is_point(x, atol=atol)
    if not bool(ok.all()):
        worst = float(manifold._point_residual(x).max())
        raise AssertionError(
            f"{int((~ok).sum())} of {ok.numel()} points are off {manifold!r} (worst residual {worst:.3e})"
        )


def assert_tangent(manifold: Manifold, x: Tensor, v: Tensor, atol: float | None = None) -> None:
    """Assert every ``v`` is finite and tangent at ``x`` within ``atol``."""
    ok = manifold.is_tangent(x, v, atol=atol)
    if not bool(ok.all()):
        worst = float(manifold._tangent_residual(x, v).max())
        raise AssertionError(f"{int((~ok).sum())} vectors are not tangent (worst {worst:.3e})")


def assert_finite_grad(*tensors: Tensor) -> None:
    """Assert that each tensor has a gradient and that it is finite."""
    for i, t in enumerate(tensors):
        if t.grad is None:
            raise AssertionError(f"input {i} has no gradient")
        if not bool(torch.isfinite(t.grad).all()):
            raise AssertionError(f"input {i} has a non-finite gradient: {t.grad}")
