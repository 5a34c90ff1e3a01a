"""Guarded Taylor helpers for removable singularities, in terms of ``t2 = theta**2``.

Each helper evaluates an even function ``f(theta)`` from ``t2`` with the *double-where* rule:
where ``t2`` is below a per-dtype threshold the input of the exact branch is replaced by a safe
value (so that its gradient is finite), the exact formula is evaluated on that, and the Taylor
polynomial is selected. Working in ``t2`` keeps every gradient finite at ``theta = 0``
(``sqrt`` is never differentiated at zero).

Thresholds (``theta`` below which the series is used) and series order:

=========  =========  ===================================================
dtype      threshold  series order (relative truncation error there)
=========  =========  ===================================================
float32    0.5        theta**8  (about 3e-11)
float64    0.1        theta**8  (about 3e-17)
=========  =========  ===================================================

At those thresholds the exact branches' own rounding error (the gradient of ``sin t / t`` loses
``3 eps / t**2`` to cancellation) is below 2e-6 (float32) and 1e-13 (float64), so the two
branches agree there to better than the tolerances the tests use.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

__all__ = [
    "series_threshold",
    "safe_sqrt",
    "safe_norm",
    "sinc",
    "cos_sq",
    "one_minus_cos_over_sq",
    "rodrigues_coefficients",
    "theta_over_sin",
    "atan_over_x",
    "eps",
]

_THRESHOLD = {torch.float32: 0.5, torch.float64: 0.1}


def series_threshold(dtype: torch.dtype) -> float:
    """Return the ``theta`` below which the Taylor branch is used for ``dtype``."""
    return _THRESHOLD.get(dtype, 0.1)


def eps(dtype: torch.dtype) -> float:
    """Machine epsilon of ``dtype``."""
    return torch.finfo(dtype).eps


def _poly(t2: Tensor, coeffs: Sequence[float]) -> Tensor:
    """Horner evaluation of ``sum_k coeffs[k] * t2**k``."""
    out = torch.full_like(t2, coeffs[-1])
    for c in reversed(coeffs[:-1]):
        out = out * t2 + c
    return out


def _even(t2: Tensor, exact: Callable[[Tensor], Tensor], coeffs: Sequence[float]) -> Tensor:
    thr = series_threshold(t2.dtype)
    small = t2 < thr * thr
    safe = torch.where(small, torch.ones_like(t2), t2)
    return torch.where(small, _poly(t2, coeffs), exact(safe))


def safe_sqrt(t2: Tensor) -> Tensor:
    """``sqrt(t2)`` for ``t2 >= 0`` with a zero (not NaN) gradient at ``t2 = 0``; NaN propagates."""
    nz = t2 != 0
    return torch.where(nz, torch.sqrt(torch.where(nz, t2, torch.ones_like(t2))), torch.zeros_like(t2))


def safe_norm(v: Tensor, dim: int | tuple[int, ...] = -1, keepdim: bool = False) -> Tensor:
    """Euclidean norm over ``dim`` with zero gradient at the zero vector.

    Computed as ``sqrt(sum(v * v))``, which on short axes is much faster than
    ``torch.linalg.vector_norm``.
    """
    return safe_sqrt((v * v).sum(dim=dim, keepdim=keepdim))


def scaled_norm(v: Tensor, dim: int | tuple[int, ...] = -1, keepdim: bool = False) -> Tensor:
    r"""Euclidean norm that neither overflows nor underflows: :math:`m\,\|v/m\|`,
    :math:`m = \max_i |v_i|` (treated as a constant: the norm is homogeneous, so its gradient
    :math:`v/\|v\|` is unchanged). Zero with a zero gradient at the zero vector; NaN if ``v``
    holds an infinity or a NaN.

    Examples
    --------
    >>> import torch
    >>> scaled_norm(torch.tensor([3e-30, 4e-30])), scaled_norm(torch.tensor([3e30, 4e30]))
    (tensor(5.0000e-30), tensor(5.0000e+30))
    """
    m = v.detach().abs().amax(dim=dim, keepdim=True)
    m = torch.where(m > 0, m, torch.ones_like(m))
    n = safe_norm(v / m, dim=dim, keepdim=True) * m
    return n if keepdim else n.squeeze(dim)


_SINC = [1.0, -1 / 6, 1 / 120, -1 / 5040, 1 / 362880]
_COS = [1.0, -1 / 2, 1 / 24, -1 / 720, 1 / 40320]
_OMC = [1 / 2, -1 / 24, 1 / 720, -1 / 40320, 1 / 3628800]
# theta / sin(theta) = 1 + t2/6 + 7 t2^2/360 + 31 t2^3/15120 + 127 t2^4/604800
_TOS = [1.0, 1 / 6, 7 / 360, 31 / 15120, 127 / 604800]
# atan(t)/t = sum_k (-1)^k t^(2k) / (2k + 1); 12 terms keep the truncation below 3e-10 (relative)
# at the float32 switch t = 0.5 and far below float64 rounding at t = 0.1.
_ATAN = [(-1.0) ** k / (2 * k + 1) for k in range(12)]


def sinc(t2: Tensor) -> Tensor:
    """``sin(theta) / theta`` from ``t2 = theta**2``; 1 at 0.

    Examples
    --------
    >>> import torch
    >>> sinc(torch.tensor([0.0, 0.25], dtype=torch.float64))
    tensor([1.0000, 0.9589], dtype=torch.float64)
    """

    def exact(s: Tensor) -> Tensor:
        t = torch.sqrt(s)
        return torch.sin(t) / t

    return _even(t2, exact, _SINC)


def cos_sq(t2: Tensor) -> Tensor:
    """``cos(theta)`` from ``t2 = theta**2`` with a finite gradient at 0."""
    return _even(t2, lambda s: torch.cos(torch.sqrt(s)), _COS)


def one_minus_cos_over_sq(t2: Tensor) -> Tensor:
    """``(1 - cos(theta)) / theta**2`` from ``t2``; 1/2 at 0, no cancellation anywhere.

    Uses ``1 - cos t = 2 sin(t/2)**2`` in the exact branch.
    """

    def exact(s: Tensor) -> Tensor:
        h = torch.sin(0.5 * torch.sqrt(s))
        return 2.0 * h * h / s

    return _even(t2, exact, _OMC)


def theta_over_sin(t2: Tensor) -> Tensor:
    """``theta / sin(theta)`` from ``t2``, valid for ``0 <= theta < pi``; 1 at 0."""

    def exact(s: Tensor) -> Tensor:
        t = torch.sqrt(s)
        return t / torch.sin(t)

    return _even(t2, exact, _TOS)


def rodrigues_coefficients(t2: Tensor) -> tuple[Tensor, Tensor]:
    """``sin t / t`` and ``(1 - cos t) / t**2`` from ``t2 = t**2`` in one guarded pass.

    The pair of Rodrigues' formula :math:`\\exp(W) = I + \frac{\\sin t}{t} W + \frac{1 - \\cos
    t}{t^2} W^2`. Half-angle forms (``sin t = 2 sin(t/2) cos(t/2)``, ``1 - cos t =
    2 sin(t/2)**2``) keep the exact branch free of cancellation.

    Examples
    --------
    >>> s, h = rodrigues_coefficients(torch.tensor([0.0, 1.0], dtype=torch.float64))
    >>> s, h
    (tensor([1.0000, 0.8415], dtype=torch.float64), tensor([0.5000, 0.4597], dtype=torch.float64))
    """
    thr = series_threshold(t2.dtype)
    small = t2 < thr * thr
    safe = torch.where(small, torch.ones_like(t2), t2)
    t = torch.sqrt(safe)
    sh, ch = torch.sin(0.5 * t), torch.cos(0.5 * t)
    return (
        torch.where(small, _poly(t2, _SINC), 2.0 * sh * ch / t),
        torch.where(small, _poly(t2, _OMC), 2.0 * sh * sh / safe),
    )


def atan_over_x(t2: Tensor) -> Tensor:
    """``atan(t) / t`` from ``t2 = t**2``; 1 at 0.

    Examples
    --------
    >>> atan_over_x(torch.tensor([0.0, 1.0], dtype=torch.float64))
    tensor([1.0000, 0.7854], dtype=torch.float64)
    """

    def exact(s: Tensor) -> Tensor:
        t = torch.sqrt(s)
        return torch.atan(t) / t

    return _even(t2, exact, _ATAN)
