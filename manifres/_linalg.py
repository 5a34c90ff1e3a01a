r"""Generic Krylov kernels for symmetric operators given by their products only.

* :func:`lanczos`: an extreme eigenvalue of a symmetric operator (plain Lanczos).
* :func:`pcg`: column-wise preconditioned conjugate gradients for a symmetric positive
  (semi-)definite operator.

Both work in the dtype of their inputs (use float64), on the inputs' device, and take the
operator as a callable. They are used by :mod:`manifres.graph` (Laplacian spectra, the
Friedkin-Johnsen equilibrium); the batched, fixed-step kernels of the stability studies live in
:mod:`manifres.stability.krylov`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor

__all__ = ["RitzValue", "lanczos", "pcg"]

MatVec = Callable[[Tensor], Tensor]

#: Largest ``steps * n`` for which :func:`lanczos` keeps its basis (32 MiB of float64).
_KEEP_BASIS = 2**22


class RitzValue(NamedTuple):
    r"""An extreme Ritz value :math:`\theta` of a symmetric operator :math:`A` and its quality.

    Attributes
    ----------
    value : float
        :math:`\theta`, the largest (or smallest) eigenvalue of the Lanczos tridiagonal.
    residual : float
        :math:`|\beta_m s_m|`, the residual norm :math:`\|A y - \theta y\|` of the Ritz vector
        :math:`y` (0 when the Krylov space is invariant): some eigenvalue of :math:`A` lies in
        :math:`[\theta - r, \theta + r]`.
    scale : float
        The largest :math:`|\text{Ritz value}|` (a lower bound of :math:`\|A\|_2`).
    converged : bool
        ``residual <= tol * scale``, or an invariant Krylov space (then every Ritz value is an
        eigenvalue).
    steps : int
        Lanczos steps taken (products with :math:`A`).
    """

    value: float
    residual: float
    scale: float
    converged: bool
    steps: int


def lanczos(
    matvec: MatVec,
    start: Tensor,
    *,
    largest: bool = True,
    tol: float = 1e-8,
    maxiter: int = 200,
    check_every: int = 10,
    stop: Callable[[RitzValue], bool] | None = None,
) -> RitzValue:
    r"""Largest (or smallest) eigenvalue of a symmetric operator by the Lanczos recurrence.

    .. math::

        \beta_{j+1} v_{j+1} = A v_j - \alpha_j v_j - \beta_j v_{j-1}, \qquad
        T_m = \operatorname{tridiag}(\beta, \alpha, \beta) = V_m^T A V_m

    The extreme eigenvalue :math:`\theta` of :math:`T_m` (a Ritz value) is computed every
    ``check_every`` steps; the iteration stops when its residual
    :math:`|\beta_{m+1} s_m| \le` ``tol`` times the largest :math:`|\theta|`, when the Krylov
    space becomes invariant, when ``stop(ritz)`` returns True, or after ``maxiter`` steps.

    Parameters
    ----------
    matvec : callable
        ``v -> A v`` for ``v`` of shape ``(n,)``; :math:`A` must be symmetric.
    start : Tensor, shape (n,)
        Start vector (random, so that it has a component along every eigenvector); its dtype
        (float64 recommended) and device are those of the iteration.
    largest : bool
        The largest Ritz value (else the smallest).
    tol, maxiter, check_every
        Relative residual tolerance, maximal number of steps, and how often :math:`T_m` is
        solved (each solve reads the coefficients: one host-device synchronisation).
    stop : callable, optional
        Called with the current :class:`RitzValue` at each check; return True to stop.

    Returns
    -------
    RitzValue

    Notes
    -----
    Large problems (``maxiter * n`` above :data:`_KEEP_BASIS`) keep no basis and do not
    re-orthogonalise: three vectors of memory; small ones re-orthogonalise fully. Without it
    the basis loses orthogonality once a Ritz value converges, which creates spurious copies
    of converged Ritz values but leaves them accurate: every eigenvalue of :math:`T_m` lies within
    :math:`O(m^{5/2}\varepsilon\|A\|)` of the interval spanned by the spectrum of :math:`A`
    (Paige, 1980), so the largest Ritz value is a lower bound of :math:`\lambda_{\max}` and the
    smallest an upper bound of :math:`\lambda_{\min}`, up to that rounding term. The residual
    test follows Paige's analysis too. To reach an interior eigenvalue (the second smallest,
    above a known null vector :math:`u`), move :math:`u` to the top instead of projecting it
    out: :math:`A + c\,uu^T` with :math:`c \ge \lambda_{\max}`. (Projecting it out keeps the
    null space in the spectrum of the operator, and the loss of orthogonality lets a Ritz value
    reach it.)

    Examples
    --------
    >>> import torch
    >>> A = torch.diag(torch.arange(1.0, 6.0, dtype=torch.float64))
    >>> r = lanczos(lambda v: A @ v, torch.ones(5, dtype=torch.float64))
    >>> round(r.value, 12), r.converged
    (5.0, True)
    """
    n = start.shape[0]
    v = start / torch.linalg.vector_norm(start)
    steps = min(maxiter, n)
    # small problems keep the basis and re-orthogonalise against it (twice): exhausting the
    # Krylov space then ends in a clean breakdown instead of rounding noise
    basis = torch.empty(steps, n, dtype=v.dtype, device=v.device) if steps * n <= _KEEP_BASIS else None
    v_prev = torch.zeros_like(v)
    beta = torch.zeros((), dtype=v.dtype, device=v.device)
    alphas: list[Tensor] = []
    betas: list[Tensor] = []
    ritz = RitzValue(0.0, float("inf"), 0.0, False, 0)
    previous = None
    for j in range(max(steps, 1)):
        w = matvec(v)
        a = torch.dot(w, v)
        w.addcmul_(a, v, value=-1.0).addcmul_(beta, v_prev, value=-1.0)  # in place: no new vectors
        if basis is not None:
            basis[j] = v
            for _ in range(2):
                w.sub_(basis[: j + 1].T @ (basis[: j + 1] @ w))
        b = torch.linalg.vector_norm(w)
        alphas.append(a)
        betas.append(b)
        if (j + 1) % check_every == 0 or j + 1 >= steps:
            T, m, invariant = _tridiagonal(alphas, betas)
            ev = torch.linalg.eigvalsh(T)
            theta = float(ev[-1] if largest else ev[0])
            scale = float(ev.abs().max())
            # the residual needs eigenvectors (eigh, several times the cost of eigvalsh): only
            # once the Ritz value has settled (a converged one moves by far less than tol)
            settled = previous is not None and abs(theta - previous) <= tol * scale
            previous = theta
            last = invariant or j + 1 >= steps
            cheap = RitzValue(theta, float("inf"), scale, False, m)
            if settled or last or (stop is not None and stop(cheap)):
                ritz = _ritz(T, m, invariant, betas, largest, tol)
                if ritz.converged or last or (stop is not None and stop(ritz)):
                    return ritz
        # a breakdown (b = 0) makes the next vectors garbage; _tridiagonal truncates at it
        v_prev, v = v, w.div_(torch.where(b > 0, b, torch.ones_like(b)))
        beta = b
    return ritz


def _tridiagonal(alphas: list[Tensor], betas: list[Tensor]) -> tuple[Tensor, int, bool]:
    """The Lanczos tridiagonal so far (on the CPU), truncated at a breakdown: ``(T, m,
    invariant)``."""
    a = torch.stack(alphas).cpu()
    b = torch.stack(betas).cpu()
    scale_a = float(a.abs().max()) + 2.0 * float(b.abs().max())
    # breakdown: beta below rounding level relative to the operator's size
    tiny = 64.0 * torch.finfo(a.dtype).eps * max(scale_a, torch.finfo(a.dtype).tiny)
    small = (b <= tiny).nonzero()
    m = int(small[0]) + 1 if small.numel() else a.numel()
    T = torch.diag(a[:m]) + torch.diag(b[: m - 1], 1) + torch.diag(b[: m - 1], -1)
    return T, m, bool(small.numel())


def _ritz(T: Tensor, m: int, invariant: bool, betas: list[Tensor], largest: bool, tol: float) -> RitzValue:
    """The extreme Ritz pair of the tridiagonal ``T`` (``m x m``) and its residual."""
    ev, S = torch.linalg.eigh(T)
    i = m - 1 if largest else 0
    resid = 0.0 if invariant else abs(float(betas[m - 1]) * float(S[m - 1, i]))
    scale = float(ev.abs().max())
    converged = invariant or resid <= tol * max(scale, torch.finfo(T.dtype).tiny)
    return RitzValue(float(ev[i]), resid, scale, converged, m)


def pcg(
    op: MatVec,
    b: Tensor,
    pinv: Tensor,
    y: Tensor,
    *,
    rtol: float,
    maxiter: int,
) -> Tensor:
    r"""Column-wise preconditioned conjugate gradients for :math:`A Y = B`.

    .. math:: r_k = B - A Y_k, \quad z_k = P^{-1} r_k, \quad
              Y_{k+1} = Y_k + \frac{r_k^T z_k}{p_k^T A p_k} p_k

    Parameters
    ----------
    op : callable
        ``Y -> A Y`` for ``Y`` of shape ``(n, k)``; :math:`A` symmetric positive
        (semi-)definite.
    b : Tensor, shape (n, k)
        Right-hand sides (one system per column).
    pinv : Tensor, broadcastable to (n, k)
        Diagonal preconditioner :math:`P^{-1}`.
    y : Tensor, shape (n, k)
        Start.
    rtol : float
        Stop when every column's residual is below ``rtol`` times the larger of its
        right-hand side's norm and its first residual's (the second covers ``B = 0``, a
        consistent singular system).
    maxiter : int
        Maximal number of iterations; a ``RuntimeWarning`` if reached.

    Returns
    -------
    Tensor, shape (n, k)

    Examples
    --------
    >>> import torch
    >>> A = torch.tensor([[4.0, 1.0], [1.0, 3.0]], dtype=torch.float64)
    >>> b = torch.tensor([[1.0], [2.0]], dtype=torch.float64)
    >>> y = pcg(lambda v: A @ v, b, 1.0, torch.zeros_like(b), rtol=1e-12, maxiter=10)
    >>> torch.allclose(A @ y, b)
    True
    """
    r = b - op(y)
    z = pinv * r
    p = z.clone()
    rz = (r * z).sum(0)
    scale = torch.maximum(torch.linalg.vector_norm(b, dim=0), torch.linalg.vector_norm(r, dim=0))
    for _ in range(maxiter):
        if bool((torch.linalg.vector_norm(r, dim=0) <= rtol * scale).all()):
            return y
        q = op(p)
        pq = (p * q).sum(0)
        step = torch.where(pq > 0, rz / torch.where(pq > 0, pq, torch.ones_like(pq)), 0.0)
        y = y + step * p
        r = r - step * q
        z = pinv * r
        rz_new = (r * z).sum(0)
        beta = torch.where(rz > 0, rz_new / torch.where(rz > 0, rz, torch.ones_like(rz)), 0.0)
        p = z + beta * p
        rz = rz_new
    warnings.warn(
        f"conjugate gradients did not reach rtol={rtol} in {maxiter} iterations",
        RuntimeWarning,
        stacklevel=3,
    )
    return y
