"""Weyl's bound for residual maps: every singular value of ``I + W`` lies in ``[1 - e, 1 + e]``."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from .._validation import check_floating
from ..errors import ShapeError
from ..manifolds.base import Manifold
from .jacobian import jacobian_spectrum
from .results import WeylBand

__all__ = ["weyl_band", "WEYL_TOL_FACTOR"]

#: The rounding allowance of the check is ``WEYL_TOL_FACTOR * n * eps`` relative to ``1 + e``.
WEYL_TOL_FACTOR = 10.0


def _band(e: Tensor, smin: Tensor, smax: Tensor, n: int) -> WeylBand:
    tol = WEYL_TOL_FACTOR * n * torch.finfo(e.dtype).eps
    slack = tol * (1.0 + e)
    lower, upper = 1.0 - e, 1.0 + e
    holds = (smin >= lower - slack) & (smax <= upper + slack)
    return WeylBand(epsilon=e, lower=lower, upper=upper, sigma_min=smin, sigma_max=smax, holds=holds, tol=tol)


def weyl_band(
    W: Tensor | Callable[[Tensor], Tensor],
    x: Tensor | None = None,
    *,
    method: str = "dense",
    manifold: Manifold | None = None,
    steps: int = 64,
) -> WeylBand:
    r"""The Weyl band of a residual matrix, or of a residual block's Jacobian at ``x``.

    By Weyl's inequality for singular values, :math:`|\sigma_i(I + W) - 1| \le \|W\|_2`, so

    .. math:: 1 - e \;\le\; \sigma_{\min}(I + W) \;\le\; \sigma_{\max}(I + W) \;\le\; 1 + e,
              \qquad e = \|W\|_2 ,

    and a stack of ``L`` such maps amplifies by at most :math:`(1 + e)^L` and shrinks by at
    least :math:`(1 - e)^L`. For a block, :math:`W = J - I` is the residual part of its
    Jacobian at ``x`` (in tangent coordinates for a manifold block), so the bound holds for any
    block: the flag checks the numerics, and shows how tight the band is.

    Parameters
    ----------
    W : Tensor, shape (..., n, n), or callable
        A batch of residual matrices, or a block (module or function) whose Jacobian at ``x``
        is analysed by :func:`jacobian_spectrum`.
    x : Tensor, optional
        Points for a block (required then, not allowed for a matrix).
    method, manifold, steps
        Passed to :func:`jacobian_spectrum` for a block. With ``method="matrix_free"`` the
        measured values are Ritz estimates, which lie inside the true range.

    Returns
    -------
    WeylBand
        With the batch shape of ``W`` (or of ``x``).

    Raises
    ------
    ShapeError
        If ``W`` is not a batch of square matrices, if ``x`` is missing for a block or given for
        a matrix, or as :func:`jacobian_spectrum`.
    DTypeError
        For integer or half-precision input.

    Notes
    -----
    The check allows rounding: it passes when
    :math:`\sigma_{\min} \ge 1 - e - t(1 + e)` and :math:`\sigma_{\max} \le 1 + e + t(1 + e)`
    with :math:`t = 10\, n\, \varepsilon` (``n`` the matrix size, :math:`\varepsilon` the
    machine epsilon of the dtype). Values come from ``torch.linalg.svdvals``.

    Examples
    --------
    >>> import torch
    >>> band = weyl_band(torch.tensor([[0.0, 0.5], [0.0, 0.0]], dtype=torch.float64))
    >>> [round(float(v), 4) for v in (band.epsilon, band.sigma_min, band.sigma_max)]
    [0.5, 0.7808, 1.2808]
    >>> band.all_hold
    True
    """
    if isinstance(W, Tensor):
        if x is not None:
            raise ShapeError("weyl_band: x is only used with a block; pass W alone for a matrix")
        check_floating(W, names=("W",))
        if W.dim() < 2 or W.shape[-1] != W.shape[-2]:
            raise ShapeError(f"weyl_band: W must have shape (..., n, n), got {tuple(W.shape)}")
        n = W.shape[-1]
        w = W.detach()
        e = torch.linalg.matrix_norm(w, ord=2)
        sv = torch.linalg.svdvals(w + torch.eye(n, dtype=w.dtype, device=w.device))
        return _band(e, sv[..., -1], sv[..., 0], n)
    if x is None:
        raise ShapeError("weyl_band: a block needs the points x at which to linearise it")
    spec = jacobian_spectrum(W, x, method=method, manifold=manifold, steps=steps)
    return _band(spec.residual_norm, spec.sigma_min, spec.sigma_max, spec.dim)
