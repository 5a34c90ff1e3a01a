r"""Spectral tools for the stability of graph diffusion ``x <- x - alpha L x``.

For a symmetric positive semi-definite Laplacian with eigenvalues
:math:`0 = \lambda_1 \le \lambda_2 \le \dots \le \lambda_{\max}`, the step
:math:`I - \alpha L` is non-expansive iff :math:`0 \le \alpha \le 2/\lambda_{\max}`, and it
contracts the disagreement (the complement of the consensus space) at the rate
:math:`\max(|1 - \alpha\lambda_2|, |1 - \alpha\lambda_{\max}|)`.

Methods
-------
* ``"dense"``: ``torch.linalg.eigvalsh`` of the dense Laplacian in float64 (exact to rounding;
  :math:`O(N^2)` memory, :math:`O(N^3)` time). The default for :math:`N \le 512`.
* ``"lanczos"``: thick-restart Lanczos in float64 with full reorthogonalisation (classical
  Gram-Schmidt, repeated when the DGKS criterion asks for it) on a Krylov space of
  ``krylov_dim`` vectors (default 16; a restart keeps the better half of the Ritz vectors),
  using only sparse matrix-vector products (``torch.mv`` on a CSR matrix): memory
  :math:`O(E + N \cdot \texttt{krylov\_dim})`, on the graph's device. :math:`\lambda_2` is
  computed on the complement of the known null vector (:math:`\mathbf 1`, or
  :math:`D^{1/2}\mathbf 1` for ``"sym"``). It stops when the residual
  :math:`\|L y - \theta y\|` of the wanted Ritz pair is below ``tol`` (default
  :math:`10^{-8}`) times the largest Ritz value: some eigenvalue then lies within that
  distance of :math:`\theta` (the extreme one in practice, to far better accuracy, about the
  squared residual over the gap). The default for :math:`N > 512`.

Conventions
-----------
* Everything is computed in float64 from the weights' values (no gradient flows through the
  spectral tools) and returned as a 0-dim tensor in the weights' dtype on their device.
* Eigenvalues with :math:`|\lambda| \le 100\,\varepsilon_{64}\,\lambda_{\max}` are returned as
  exactly 0, so a disconnected graph has :math:`\lambda_2 = 0` and the number of zero
  eigenvalues counts the connected components (isolated nodes included).
* ``"rw"`` has the spectrum of ``"sym"`` (the two are similar matrices).
* The graph must be undirected (validated; or pass ``symmetrize=True``).
* The Lanczos start vector comes from a generator seeded with 0 (pass ``generator`` to change
  it): the same input gives the same output, bit for bit.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any

import torch
from torch import Tensor

from ..errors import GraphError, StabilityError, UnknownChoiceError
from ..manifolds.base import Manifold
from ._pyg import Data
from ._sparse import sparse_csr
from ._validate import check_features, resolve_graph
from .laplacian import LaplacianParts, _check_normalization, _masked_power, _normalize

__all__ = [
    "lambda_max",
    "lambda_2",
    "fiedler_value",
    "max_stable_step",
    "consensus_rate",
    "laplacian_spectrum",
    "DiffusionCertificate",
    "stability_certificate",
    "dirichlet_energy",
]

#: Largest graph for which ``method=None`` picks the dense eigensolver.
DENSE_MAX = 512
_METHODS = ("dense", "lanczos")
_ZERO_C = 100.0
_EPS64 = torch.finfo(torch.float64).eps
#: Relative slack of the stability test ``alpha * lambda_max <= 2``.
STEP_RTOL = 1e-8


# ----------------------------------------------------------------------------- Lanczos
def _lanczos(
    matvec,
    n: int,
    *,
    largest: bool,
    deflate: Tensor | None,
    krylov_dim: int,
    tol: float,
    maxiter: int,
    generator: torch.Generator | None,
    device: torch.device,
) -> tuple[float, float]:
    """Extreme eigenvalue of a symmetric operator by thick-restart Lanczos (float64).

    Returns ``(theta, scale)``: the wanted Ritz value and the largest ``|Ritz value|`` seen.
    """
    dt = torch.float64
    d = 0 if deflate is None else 1
    k = max(1, min(krylov_dim, n - d))
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    # rows of B: the deflated null vector (if any), then the Krylov basis V_0..V_k
    B = torch.zeros(d + k + 1, n, dtype=dt, device=device)
    if d:
        B[0] = deflate
    V = B[d:]

    def orth(w: Tensor, j: int) -> tuple[Tensor, Tensor, float, float]:
        """Classical Gram-Schmidt of ``w`` against ``B[: d + j + 1]``, repeated once when the
        first pass removed more than 1 - 1/sqrt(2) of the norm (the DGKS criterion).
        Returns ``w``, its coefficients on ``V_0..V_j``, its norms before and after."""
        basis = B[: d + j + 1]
        before = float(torch.linalg.vector_norm(w))
        c = basis @ w
        w = torch.addmv(w, basis.T, c, alpha=-1.0)
        after = float(torch.linalg.vector_norm(w))
        if after < 0.7071 * before:
            c2 = basis @ w
            w = torch.addmv(w, basis.T, c2, alpha=-1.0)
            c = c + c2
            after = float(torch.linalg.vector_norm(w))
        return w, c[d:], before, after

    v, _, _, vnorm = orth(torch.randn(n, generator=gen, dtype=dt).to(device), -1)
    torch.div(v, vnorm, out=V[0])
    H = torch.zeros(k + 1, k + 1, dtype=dt)
    p = 0  # number of locked Ritz vectors at the front of V
    scale = 0.0
    theta = 0.0
    for _ in range(maxiter):
        j, beta, broke = p, 0.0, False
        while j < k:
            w, c, wnorm, beta = orth(matvec(V[j]), j)
            c = c.cpu()
            H[: j + 1, j] = c
            H[j, : j + 1] = c
            scale = max(scale, wnorm)
            if beta <= 1e-12 * scale or beta == 0.0:
                broke = True
                j += 1
                break
            H[j + 1, j] = H[j, j + 1] = beta
            torch.div(w, beta, out=V[j + 1])
            j += 1
        m = j
        ritz, S = torch.linalg.eigh(H[:m, :m])
        scale = max(scale, float(ritz.abs().max()))
        idx = m - 1 if largest else 0
        theta = float(ritz[idx])
        resid = 0.0 if broke else abs(beta * float(S[m - 1, idx]))
        if resid <= tol * max(scale, 1e-300):
            return theta, scale
        # thick restart: keep the half of the Ritz vectors nearest the wanted end
        keep = max(1, m // 2)
        sel = torch.arange(m - keep, m) if largest else torch.arange(keep)
        Y = S[:, sel].to(device).T @ V[:m]
        V[:keep] = Y
        V[keep] = V[m]
        H.zero_()
        H[:keep, :keep] = torch.diag(ritz[sel])
        b = beta * S[m - 1, sel]
        H[keep, :keep] = b
        H[:keep, keep] = b
        p = keep
    warnings.warn(
        f"Lanczos did not converge in {maxiter} restarts (residual {resid:.2e}, wanted "
        f"{tol * scale:.2e}); returning the Ritz value {theta:.10g}. Increase maxiter or "
        "krylov_dim, or use method='dense'",
        RuntimeWarning,
        stacklevel=3,
    )
    return theta, scale


# ----------------------------------------------------------------------------- problem
class _Spectrum:
    """A validated symmetric Laplacian in float64 with cached spectral quantities."""

    def __init__(
        self,
        edge_index: Tensor | Data,
        edge_weight: Tensor | None,
        num_nodes: int | None,
        normalization: str | None,
        *,
        symmetrize: bool,
        validate: bool,
        method: str | None,
        tol: float,
        krylov_dim: int,
        maxiter: int,
        generator: torch.Generator | None,
    ) -> None:
        _check_normalization(normalization)
        if method is not None and method not in _METHODS:
            raise UnknownChoiceError(f"unknown method {method!r}; valid: {', '.join(_METHODS)}")
        g = resolve_graph(
            edge_index,
            edge_weight,
            num_nodes,
            validate=validate,
            symmetric=True,
            symmetrize=symmetrize,
        )
        if g.num_nodes == 0:
            raise GraphError("the graph has no nodes; its spectrum is empty")
        self.dtype = g.edge_weight.dtype
        self.device = g.edge_index.device
        self.n = g.num_nodes
        self.normalization = "sym" if normalization == "rw" else normalization
        w = g.edge_weight.detach().to(torch.float64)
        self.parts: LaplacianParts = _normalize(g.edge_index, w, self.n, self.normalization)
        self.method = method or ("dense" if self.n <= DENSE_MAX else "lanczos")
        self.options = dict(tol=tol, krylov_dim=krylov_dim, maxiter=maxiter, generator=generator)
        self._dense: Tensor | None = None
        self._lmax: float | None = None
        self._l2: float | None = None
        self._csr: Tensor | None = None

    def _indices_values(self) -> tuple[Tensor, Tensor]:
        p = self.parts
        ar = torch.arange(self.n, device=self.device)
        idx = torch.cat([p.edge_index, torch.stack([ar, ar])], dim=1)
        return idx, torch.cat([-p.weight, p.diag])

    def spectrum(self) -> Tensor:
        if self._dense is None:
            idx, val = self._indices_values()
            L = torch.zeros(self.n, self.n, dtype=torch.float64, device=self.device)
            L.index_put_((idx[0], idx[1]), val, accumulate=True)
            ev = torch.linalg.eigvalsh(L)
            top = ev[-1].abs()
            self._dense = torch.where(ev.abs() <= _ZERO_C * _EPS64 * top, 0.0, ev)
        return self._dense

    def _matvec(self, v: Tensor) -> Tensor:
        if self._csr is None:
            self._csr = sparse_csr(*self._indices_values(), self.n)
        return torch.mv(self._csr, v)

    def _snap(self, lam: float, scale: float) -> float:
        return 0.0 if abs(lam) <= _ZERO_C * _EPS64 * scale else lam

    def lambda_max(self) -> float:
        if self._lmax is None:
            if self.method == "dense":
                self._lmax = float(self.spectrum()[-1])
            else:
                lam, scale = _lanczos(
                    self._matvec, self.n, largest=True, deflate=None, device=self.device,
                    **self.options,
                )
                self._lmax = self._snap(lam, scale)
        return self._lmax

    def lambda_2(self) -> float:
        if self.n < 2:
            raise GraphError(f"lambda_2 needs at least 2 nodes, the graph has {self.n}")
        if self._l2 is None:
            if self.method == "dense":
                self._l2 = float(self.spectrum()[1])
            else:
                if self.normalization is None:
                    u = torch.ones(self.n, dtype=torch.float64, device=self.device)
                else:
                    u = _masked_power(self.parts.degree, 0.5)
                unorm = torch.linalg.vector_norm(u)
                u = u / unorm if float(unorm) > 0 else None
                lam, scale = _lanczos(
                    self._matvec, self.n, largest=False, deflate=u, device=self.device,
                    **self.options,
                )
                ref = scale if self._lmax is None else max(scale, self._lmax)
                self._l2 = self._snap(lam, ref)
        return self._l2

    def out(self, value: float) -> Tensor:
        return torch.tensor(value, dtype=self.dtype, device=self.device)


def _spectrum(
    edge_index,
    edge_weight,
    num_nodes,
    normalization,
    *,
    symmetrize: bool = False,
    validate: bool = True,
    method: str | None = None,
    tol: float = 1e-8,
    krylov_dim: int = 16,
    maxiter: int = 1000,
    generator: torch.Generator | None = None,
) -> _Spectrum:
    return _Spectrum(
        edge_index,
        edge_weight,
        num_nodes,
        normalization,
        symmetrize=symmetrize,
        validate=validate,
        method=method,
        tol=tol,
        krylov_dim=krylov_dim,
        maxiter=maxiter,
        generator=generator,
    )


# ----------------------------------------------------------------------------- public
def lambda_max(
    edge_index: Tensor | Data,
    edge_weight: Tensor | None = None,
    num_nodes: int | None = None,
    normalization: str | None = None,
    *,
    symmetrize: bool = False,
    method: str | None = None,
    tol: float = 1e-8,
    krylov_dim: int = 16,
    maxiter: int = 1000,
    generator: torch.Generator | None = None,
    validate: bool = True,
) -> Tensor:
    r"""Largest eigenvalue :math:`\lambda_{\max}` of the graph Laplacian.

    .. math:: \lambda_{\max}(L) = \max_{\|v\| = 1} v^T L v

    Parameters
    ----------
    edge_index : Tensor, shape (2, E), integer; or torch_geometric.data.Data
        An undirected graph (see :func:`manifres.graph.laplacian` for the conventions).
    edge_weight : Tensor, shape (E,), optional
    num_nodes : int, optional
    normalization : {None, "sym", "rw"}
    symmetrize : bool
        Use :math:`(A + A^T)/2` instead of requiring an undirected graph.
    method : {None, "dense", "lanczos"}
        ``None``: dense for :math:`N \le 512`, else Lanczos (see the module docstring).
    tol : float
        Lanczos residual tolerance, relative to :math:`\lambda_{\max}`.
    krylov_dim : int
        Lanczos basis size (memory ``krylov_dim * N`` float64 values).
    maxiter : int
        Maximal number of Lanczos restarts (a ``RuntimeWarning`` if reached).
    generator : torch.Generator, optional
        Start vector's generator (default: seeded with 0, reproducible).
    validate : bool
        Value checks of the graph (indices, weights, symmetry).

    Returns
    -------
    Tensor, 0-dim
        In the weights' dtype (torch's default without weights) and device.

    Raises
    ------
    GraphError
        Malformed or directed graph, no nodes.

    Notes
    -----
    For ``"sym"`` and ``"rw"``, :math:`\lambda_{\max} \le 2` with equality iff a connected
    component is bipartite. For the combinatorial Laplacian,
    :math:`\lambda_{\max} \le 2 \max_i d_i`.

    Examples
    --------
    >>> import torch
    >>> path = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
    >>> lambda_max(path)
    tensor(3.)
    >>> lambda_max(path, normalization="sym")
    tensor(2.)
    """
    s = _spectrum(
        edge_index, edge_weight, num_nodes, normalization, symmetrize=symmetrize, method=method,
        tol=tol, krylov_dim=krylov_dim, maxiter=maxiter, generator=generator, validate=validate,
    )
    return s.out(s.lambda_max())


def lambda_2(
    edge_index: Tensor | Data,
    edge_weight: Tensor | None = None,
    num_nodes: int | None = None,
    normalization: str | None = None,
    *,
    symmetrize: bool = False,
    method: str | None = None,
    tol: float = 1e-8,
    krylov_dim: int = 16,
    maxiter: int = 1000,
    generator: torch.Generator | None = None,
    validate: bool = True,
) -> Tensor:
    r"""Fiedler value :math:`\lambda_2`, the second smallest Laplacian eigenvalue.

    .. math:: \lambda_2(L) = \min_{v \perp \ker_0,\ \|v\| = 1} v^T L v

    where :math:`\ker_0` is spanned by :math:`\mathbf 1` (combinatorial) or
    :math:`D^{1/2}\mathbf 1` (normalised). :math:`\lambda_2 > 0` iff the graph is connected.
    Parameters as in :func:`lambda_max`.

    Returns
    -------
    Tensor, 0-dim
        Exactly 0 when the graph is disconnected (isolated nodes included), by the
        :math:`100\,\varepsilon_{64}\lambda_{\max}` rule.

    Raises
    ------
    GraphError
        Fewer than 2 nodes, or a malformed or directed graph.

    Notes
    -----
    Krylov methods converge slowly when :math:`\lambda_2` is tiny compared with
    :math:`\lambda_{\max}` and eigenvalues cluster near it (long paths and rings with
    :math:`10^5` nodes and more): the Lanczos value is then an upper bound of :math:`\lambda_2`
    and a ``RuntimeWarning`` says it did not converge.

    Examples
    --------
    >>> import torch
    >>> ring = torch.tensor([[0, 1, 2, 3, 1, 2, 3, 0], [1, 2, 3, 0, 0, 1, 2, 3]])
    >>> lambda_2(ring)
    tensor(2.)
    >>> lambda_2(ring, num_nodes=5)  # node 4 is isolated
    tensor(0.)
    """
    s = _spectrum(
        edge_index, edge_weight, num_nodes, normalization, symmetrize=symmetrize, method=method,
        tol=tol, krylov_dim=krylov_dim, maxiter=maxiter, generator=generator, validate=validate,
    )
    return s.out(s.lambda_2())


#: Alias of :func:`lambda_2`.
fiedler_value = lambda_2


def max_stable_step(
    edge_index: Tensor | Data,
    edge_weight: Tensor | None = None,
    num_nodes: int | None = None,
    normalization: str | None = None,
    **options: Any,
) -> Tensor:
    r"""Largest step of a non-expansive diffusion step, :math:`2 / \lambda_{\max}`.

    .. math:: \|I - \alpha L\|_2 \le 1 \iff 0 \le \alpha \le 2 / \lambda_{\max}(L)

    Parameters as in :func:`lambda_max` (``options`` are its keyword arguments).

    Returns
    -------
    Tensor, 0-dim
        ``inf`` for a graph without (non-zero) edges, where every step is stable.

    Examples
    --------
    >>> import torch
    >>> max_stable_step(torch.tensor([[0, 1], [1, 0]]))
    tensor(1.)
    """
    s = _spectrum(edge_index, edge_weight, num_nodes, normalization, **options)
    lam = s.lambda_max()
    return s.out(math.inf if lam == 0.0 else 2.0 / lam)


def consensus_rate(
    alpha: float,
    edge_index: Tensor | Data,
    edge_weight: Tensor | None = None,
    num_nodes: int | None = None,
    normalization: str | None = None,
    **options: Any,
) -> Tensor:
    r"""Contraction factor of :math:`I - \alpha L` away from consensus.

    .. math:: \rho = \max(|1 - \alpha\lambda_2|, |1 - \alpha\lambda_{\max}|)

    the spectral radius of :math:`I - \alpha L` on the complement of the consensus space:
    disagreement shrinks like :math:`\rho^k` (for ``"rw"``, in the :math:`D`-weighted norm).
    ``rho < 1`` iff the graph is connected and :math:`0 < \alpha < 2/\lambda_{\max}`.
    Parameters as in :func:`lambda_max` (``options`` are its keyword arguments).

    Returns
    -------
    Tensor, 0-dim

    Examples
    --------
    >>> import torch
    >>> ring = torch.tensor([[0, 1, 2, 3, 1, 2, 3, 0], [1, 2, 3, 0, 0, 1, 2, 3]])
    >>> consensus_rate(0.25, ring)  # eigenvalues 0, 2, 2, 4
    tensor(0.5000)
    """
    s = _spectrum(edge_index, edge_weight, num_nodes, normalization, **options)
    a = float(alpha)
    return s.out(max(abs(1.0 - a * s.lambda_2()), abs(1.0 - a * s.lambda_max())))


def laplacian_spectrum(
    edge_index: Tensor | Data,
    edge_weight: Tensor | None = None,
    num_nodes: int | None = None,
    normalization: str | None = None,
    *,
    symmetrize: bool = False,
    validate: bool = True,
) -> Tensor:
    r"""All Laplacian eigenvalues, ascending (dense float64 eigensolver: small graphs only).

    .. math:: L = U \operatorname{diag}(\lambda_1, \dots, \lambda_N) U^T

    Values with :math:`|\lambda| \le 100\,\varepsilon_{64}\lambda_{\max}` are exactly 0, so
    ``(spectrum == 0).sum()`` counts connected components (isolated nodes included).

    Returns
    -------
    Tensor, shape (N,)

    Examples
    --------
    >>> import torch
    >>> laplacian_spectrum(torch.tensor([[0, 1], [1, 0]]), num_nodes=3)
    tensor([0., 0., 2.])
    """
    s = _spectrum(
        edge_index, edge_weight, num_nodes, normalization, symmetrize=symmetrize,
        validate=validate, method="dense",
    )
    return s.spectrum().to(s.dtype)


@dataclasses.dataclass(frozen=True)
class DiffusionCertificate:
    r"""Stability data of the step :math:`x \leftarrow x - \alpha L x` on one graph.

    Attributes
    ----------
    alpha : float
    normalization : str or None
    num_nodes : int
    lambda_max : float
    max_step : float
        :math:`2 / \lambda_{\max}` (``inf`` without edges).
    stable : bool
        :math:`0 < \alpha` and :math:`\alpha\lambda_{\max} \le 2 (1 + 10^{-8})`: the step is
        non-expansive (norms never grow).
    lambda_2 : float or None
        ``None`` unless computed (``fiedler=True``).
    rate : float or None
        :func:`consensus_rate` (``None`` unless ``fiedler=True``).
    """

    alpha: float
    normalization: str | None
    num_nodes: int
    lambda_max: float
    max_step: float
    stable: bool
    lambda_2: float | None = None
    rate: float | None = None

    def require_stable(self) -> None:
        """Raise :class:`~manifres.errors.StabilityError` unless :attr:`stable`."""
        if not self.stable:
            raise StabilityError(
                f"step alpha = {self.alpha:.6g} is outside the stable range (0, "
                f"{self.max_step:.6g}] = (0, 2 / lambda_max] of this graph (lambda_max = "
                f"{self.lambda_max:.6g}, normalization={self.normalization!r})"
            )


def stability_certificate(
    alpha: float,
    edge_index: Tensor | Data,
    edge_weight: Tensor | None = None,
    num_nodes: int | None = None,
    normalization: str | None = None,
    *,
    fiedler: bool = True,
    **options: Any,
) -> DiffusionCertificate:
    r"""Certificate of stability (and consensus rate) of one diffusion step size.

    .. math:: \text{stable} \iff 0 < \alpha \le 2/\lambda_{\max}, \qquad
              \rho = \max(|1 - \alpha\lambda_2|, |1 - \alpha\lambda_{\max}|)

    Parameters as in :func:`lambda_max`; ``fiedler=False`` skips :math:`\lambda_2` (and the
    rate), which is the expensive part on large graphs with small spectral gaps.

    Returns
    -------
    DiffusionCertificate
        Plain data; call :meth:`DiffusionCertificate.require_stable` to raise.

    Examples
    --------
    >>> import torch
    >>> square = torch.tensor([[0, 1, 2, 3, 1, 2, 3, 0], [1, 2, 3, 0, 0, 1, 2, 3]])
    >>> c = stability_certificate(0.6, square)
    >>> c.stable, round(c.max_step, 12), round(c.rate, 12)
    (False, 0.5, 1.4)
    """
    s = _spectrum(edge_index, edge_weight, num_nodes, normalization, **options)
    a = float(alpha)
    lam = s.lambda_max()
    stable = a > 0 and a * lam <= 2.0 * (1.0 + STEP_RTOL)
    l2 = s.lambda_2() if fiedler and s.n >= 2 else None
    rate = None if l2 is None else max(abs(1.0 - a * l2), abs(1.0 - a * lam))
    return DiffusionCertificate(
        alpha=a,
        normalization=normalization,
        num_nodes=s.n,
        lambda_max=lam,
        max_step=math.inf if lam == 0.0 else 2.0 / lam,
        stable=stable,
        lambda_2=l2,
        rate=rate,
    )


def dirichlet_energy(
    x: Tensor,
    edge_index: Tensor | Data,
    edge_weight: Tensor | None = None,
    normalization: str | None = None,
    *,
    manifold: Manifold | None = None,
    symmetrize: bool = False,
    validate: bool = True,
) -> Tensor:
    r"""Dirichlet energy of node features, :math:`\operatorname{tr}(X^T L X)`.

    .. math::

        E(X) = \frac12 \sum_{k=(i,j)} w_k \Big\| \frac{x_i}{s_i} - \frac{x_j}{s_j} \Big\|^2,
        \qquad s_i = 1 \ (\text{None}), \quad s_i = \sqrt{d_i} \ (\text{"sym"})

    summed over the listed edges (an undirected edge listed in both directions counts once).
    On a manifold (``manifold=...``, combinatorial only):
    :math:`E = \frac12\sum_k w_k\, d(x_i, x_j)^2`.

    Parameters
    ----------
    x : Tensor, shape (N, ...)
        Node features (``(N, *point_shape)`` on a manifold); the node count is ``N``.
    edge_index : Tensor, shape (2, E), integer; or torch_geometric.data.Data
    edge_weight : Tensor, shape (E,), optional
    normalization : {None, "sym"}
        ``"rw"`` is not symmetric and has no energy: :class:`UnknownChoiceError`.
    manifold : Manifold, optional
        Use geodesic distances.
    symmetrize : bool
        Use :math:`(A + A^T)/2`.
    validate : bool
        Value checks of the graph.

    Returns
    -------
    Tensor, 0-dim
        Differentiable in ``x`` and ``edge_weight`` (finite at zero weights and at
        coincident features); isolated nodes contribute 0.

    Raises
    ------
    GraphError, DTypeError, DeviceError, ShapeError, UnknownChoiceError

    Examples
    --------
    >>> import torch
    >>> ei = torch.tensor([[0, 1], [1, 0]])
    >>> dirichlet_energy(torch.tensor([[0.0], [2.0]]), ei)
    tensor(4.)
    """
    if normalization not in (None, "sym"):
        _check_normalization(normalization)
        raise UnknownChoiceError(
            "dirichlet_energy supports normalization None or 'sym'; the random-walk Laplacian "
            "'rw' is not symmetric, so x^T L x is not an energy"
        )
    if manifold is not None and normalization is not None:
        raise UnknownChoiceError("on a manifold the Dirichlet energy uses normalization=None")
    check_features(x)
    if manifold is not None:
        manifold._check(x, names=("x",))
    g = resolve_graph(
        edge_index,
        edge_weight,
        x=x,
        validate=validate,
        symmetric=normalization == "sym",
        symmetrize=symmetrize,
    )
    row, col = g.edge_index
    w = torch.where(row != col, g.edge_weight, torch.zeros_like(g.edge_weight))
    if manifold is not None:
        d = manifold.dist(x[row], x[col])
        return 0.5 * (w * d * d).sum()
    xf = x.reshape(x.shape[0], -1)
    if normalization == "sym":
        p = _normalize(g.edge_index, g.edge_weight, g.num_nodes, "sym")
        s = _masked_power(p.degree, -0.5).unsqueeze(-1)
        xf = xf * s
    diff = xf[row] - xf[col]
    return 0.5 * (w * (diff * diff).sum(-1)).sum()
