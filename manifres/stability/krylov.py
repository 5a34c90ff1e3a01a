"""Matrix-free Krylov estimates of singular values and eigenvalues, batched and sync-free.

Both methods take a batch of linear operators through their products only (``matvec`` on
coordinates of shape ``(B, n)``), run a fixed number of steps (no data-dependent control flow,
so no host-device synchronisation), keep full re-orthogonalisation (classical Gram-Schmidt
applied twice) and restart with a random orthogonal vector at a breakdown, so that the zero
matrix, the identity or a nilpotent operator give exact values (0, 1, 0), never NaN.

* :func:`golub_kahan` (Golub-Kahan-Lanczos bidiagonalisation, the stable form of Lanczos on
  :math:`A^T A`): the singular values of the ``m x m`` bidiagonal are Ritz estimates of those of
  ``A``; the largest converge first, and with ``m = n`` they are exact.
* :func:`arnoldi`: the eigenvalues of the ``m x m`` Hessenberg matrix are Ritz estimates of the
  eigenvalues of ``A``; the one of largest modulus estimates the spectral radius.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["golub_kahan", "arnoldi"]

MatVec = Callable[[Tensor], Tensor]

#: Breakdown threshold, in units of eps times the largest coefficient met so far.
_BREAKDOWN = 100.0


def _randn(like: Tensor, generator: torch.Generator | None) -> Tensor:
    out = torch.randn(like.shape, dtype=like.dtype, generator=generator)
    return out.to(like.device)


def _orthogonalise(w: Tensor, basis: Tensor | None) -> tuple[Tensor, Tensor | None]:
    """Remove from ``w`` (B, n) its components along the rows of ``basis`` (B, j, n), twice.

    Returns the cleaned vector and the coefficients (B, j).
    """
    if basis is None:
        return w, None
    h = (basis @ w.unsqueeze(-1)).squeeze(-1)
    w = w - (h.unsqueeze(-1) * basis).sum(1)
    h2 = (basis @ w.unsqueeze(-1)).squeeze(-1)
    w = w - (h2.unsqueeze(-1) * basis).sum(1)
    return w, h + h2


def _next_vector(
    w: Tensor, basis: Tensor | None, scale: Tensor, generator: torch.Generator | None
) -> tuple[Tensor, Tensor, Tensor]:
    """Normalise ``w``; at a breakdown take a random unit vector orthogonal to ``basis``.

    Returns the unit vector, its coefficient (0 at a breakdown) and the updated scale.
    """
    nrm = torch.linalg.vector_norm(w, dim=-1)
    scale = torch.maximum(scale, nrm)
    broken = nrm <= _BREAKDOWN * torch.finfo(w.dtype).eps * scale
    r, _ = _orthogonalise(_randn(w, generator), basis)
    r = r / torch.linalg.vector_norm(r, dim=-1, keepdim=True)
    safe = torch.where(broken, torch.ones_like(nrm), nrm)
    v = torch.where(broken.unsqueeze(-1), r, w / safe.unsqueeze(-1))
    return v, torch.where(broken, torch.zeros_like(nrm), nrm), scale


def golub_kahan(
    matvec: MatVec,
    rmatvec: MatVec,
    v0: Tensor,
    steps: int,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Ritz estimates of the singular values of a batch of square operators ``A``.

    ``steps`` rounds of Golub-Kahan-Lanczos bidiagonalisation,

    .. math:: A V_m = U_m B_m, \qquad A^T U_m = V_m B_m^T + \beta_m v_{m+1} e_m^T,

    and the singular values of the upper bidiagonal :math:`B_m`.

    Parameters
    ----------
    matvec, rmatvec : callable
        ``v -> A v`` and ``u -> A^T u`` on tensors of shape ``(B, n)``.
    v0 : Tensor, shape (B, n)
        Start vectors (any non-zero vectors; normalised here).
    steps : int
        Number of steps ``m``, ``1 <= m <= n``.
    generator : torch.Generator, optional
        CPU generator for the restart vectors.

    Returns
    -------
    Tensor, shape (B, m)
        Ritz singular values, decreasing. The largest is a lower bound of
        :math:`\sigma_{\max}(A)`, the smallest an upper bound of :math:`\sigma_{\min}(A)`
        (interlacing); with ``m = n`` they are the singular values.

    Examples
    --------
    >>> import torch
    >>> a = torch.diag(torch.tensor([3.0, 2.0, 0.0], dtype=torch.float64)).expand(1, 3, 3)
    >>> mv = lambda v: (a @ v.unsqueeze(-1)).squeeze(-1)
    >>> rmv = lambda u: (a.mT @ u.unsqueeze(-1)).squeeze(-1)
    >>> golub_kahan(mv, rmv, torch.ones(1, 3, dtype=torch.float64), 3).round(decimals=12)
    tensor([[3., 2., 0.]], dtype=torch.float64)
    """
    n = v0.shape[-1]
    m = max(1, min(int(steps), n))
    scale = torch.zeros(v0.shape[:1], dtype=v0.dtype, device=v0.device)
    v, _, _ = _next_vector(v0, None, torch.zeros_like(scale), generator)
    vs: list[Tensor] = [v]
    us: list[Tensor] = []
    alphas: list[Tensor] = []
    betas: list[Tensor] = []
    for j in range(m):
        w = matvec(v)
        if j > 0:
            w = w - betas[-1].unsqueeze(-1) * us[-1]
        ubasis = torch.stack(us, 1) if us else None
        w, _ = _orthogonalise(w, ubasis)
        u, alpha, scale = _next_vector(w, ubasis, scale, generator)
        us.append(u)
        alphas.append(alpha)
        if j + 1 == m:
            break
        z = rmatvec(u) - alpha.unsqueeze(-1) * v
        vbasis = torch.stack(vs, 1)
        z, _ = _orthogonalise(z, vbasis)
        v, beta, scale = _next_vector(z, vbasis, scale, generator)
        vs.append(v)
        betas.append(beta)
    bidiag = torch.diag_embed(torch.stack(alphas, -1))
    if betas:
        bidiag = bidiag + torch.diag_embed(torch.stack(betas, -1), offset=1)
    return torch.linalg.svdvals(bidiag)


def arnoldi(
    matvec: MatVec,
    v0: Tensor,
    steps: int,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Ritz estimates of the eigenvalues of a batch of square operators ``A``.

    ``steps`` rounds of the Arnoldi process :math:`A Q_m = Q_m H_m + h_{m+1,m} q_{m+1} e_m^T`
    and the eigenvalues of the upper Hessenberg :math:`H_m`.

    Parameters
    ----------
    matvec : callable
        ``v -> A v`` on tensors of shape ``(B, n)``.
    v0 : Tensor, shape (B, n)
        Start vectors.
    steps : int
        Number of steps ``m``, ``1 <= m <= n``.
    generator : torch.Generator, optional
        CPU generator for the restart vectors.

    Returns
    -------
    Tensor, shape (B, m), complex
        Ritz values sorted by decreasing modulus (with ``m = n``: the eigenvalues, up to the
        conditioning of the eigenproblem).

    Examples
    --------
    >>> import torch
    >>> a = torch.tensor([[[0.0, 1.0], [0.0, 0.0]]], dtype=torch.float64)  # nilpotent
    >>> mv = lambda v: (a @ v.unsqueeze(-1)).squeeze(-1)
    >>> arnoldi(mv, torch.ones(1, 2, dtype=torch.float64), 2).abs().max() < 1e-7
    tensor(True)
    """
    n = v0.shape[-1]
    m = max(1, min(int(steps), n))
    b = v0.shape[0]
    scale = torch.zeros(v0.shape[:1], dtype=v0.dtype, device=v0.device)
    q, _, _ = _next_vector(v0, None, torch.zeros_like(scale), generator)
    qs: list[Tensor] = [q]
    cols: list[Tensor] = []
    for j in range(m):
        basis = torch.stack(qs, 1)
        w, h = _orthogonalise(matvec(q), basis)
        col = torch.zeros(b, m, dtype=v0.dtype, device=v0.device)
        col[:, : j + 1] = h
        if j + 1 < m:
            q, hnext, scale = _next_vector(w, basis, torch.maximum(scale, h.abs().amax(-1)), generator)
            col[:, j + 1] = hnext
            qs.append(q)
        cols.append(col)
    hess = torch.stack(cols, -1)
    ritz = torch.linalg.eigvals(hess)
    order = ritz.abs().argsort(dim=-1, descending=True)
    return ritz.gather(-1, order)
