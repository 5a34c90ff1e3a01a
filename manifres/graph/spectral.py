r"""Spectral tools for the stability of graph diffusion ``x <- x - h L x``.

For a symmetric positive semi-definite Laplacian with eigenvalues
:math:`0 = \lambda_1 \le \lambda_2 \le \dots \le \lambda_{\max}`, the step
:math:`I - hL` is non-expansive iff :math:`0 \le h \le 2/\lambda_{\max}`, and it contracts the
disagreement (the complement of the consensus space) at the rate
:math:`\max(|1 - h\lambda_2|, |1 - h\lambda_{\max}|)`.

Methods
-------
* ``"dense"``: ``torch.linalg.eigvalsh`` of the dense Laplacian in float64 (exact to rounding;
  :math:`O(N^2)` memory, :math:`O(N^3)` time). The default for :math:`N \le` :data:`DENSE_MAX`.
* ``"lanczos"``: the Lanczos recurrence in float64 (:func:`manifres._linalg.lanczos`: three
  vectors of memory, one sparse matrix-vector product per step, on the graph's device), at
  most ``maxiter`` steps (fewer on clustered spectra: after 100 steps, once the proven
  interval of :math:`\lambda_{\max}` is narrower than :math:`10^{-3}\lambda_{\max}`, or
  :math:`\lambda_2` is below :math:`10^{-3}` times the upper bound). :math:`\lambda_2` is the
  smallest eigenvalue of :math:`L + U uu^T`, where :math:`u` is the known null vector
  (:math:`\mathbf 1`, or :math:`D^{1/2}\mathbf 1` for ``"sym"``) and :math:`U \ge
  \lambda_{\max}` (the null vector moves to the top). It has converged when the residual
  :math:`\|L y - \theta y\|` of the Ritz pair is below ``tol`` (default :math:`10^{-8}`) times
  the largest Ritz value: some eigenvalue then lies within that distance of :math:`\theta`
  (the extreme one in practice, to far better accuracy, about the squared residual over the
  gap). The default for :math:`N >` :data:`DENSE_MAX`.

Bounds that hold
----------------
Besides the estimate, every computation keeps an interval that provably contains the
eigenvalue (for the exact Laplacian of the given weights, rounding accounted for):

* :math:`\lambda_{\max} \le 2` under ``"sym"``/``"rw"``, and
  :math:`\lambda_{\max} \le \max_{(i,j) \in E} (d_i + d_j)` for the combinatorial Laplacian
  (Anderson-Morley, which also holds with weights: it is Gershgorin's bound for
  :math:`W^{1/2} B^T B W^{1/2}`, :math:`B` the incidence matrix);
* a Ritz value is a Rayleigh quotient, so the largest one is a lower bound of
  :math:`\lambda_{\max}` and, with the null vector moved to the top, the smallest one an upper
  bound of :math:`\lambda_2` (up to :math:`O(m^{5/2}\varepsilon)` rounding, Paige 1980);
* the dense eigenvalues are exact to :math:`(8N + 32)\,\varepsilon_{64}\|L\|`;
* an isolated node makes the graph disconnected: :math:`\lambda_2 = 0` exactly.

When Lanczos does not converge in ``maxiter`` steps (clustered spectra: rings, grids, long
paths), :func:`lambda_max` returns the bound above (an upper bound that holds; the Ritz value
plus its residual is not one: it bounds the eigenvalue nearest the Ritz value, and the Krylov
space may not have met the top of the spectrum yet), and :func:`lambda_2` its Ritz value (an
upper bound), each with a ``RuntimeWarning`` that gives the interval.
:func:`stability_certificate` decides stability from the proven interval only: it is never
wrong, and says when it cannot decide.

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
from typing import TYPE_CHECKING, Any, NamedTuple

import torch
from torch import Tensor

from .._deprecation import UNSET, renamed_kwargs
from .._linalg import lanczos
from .._validation import check_choice, check_int, check_real
from ..errors import GraphError, StabilityError, UnknownChoiceError
from ..manifolds.base import Manifold
from ._sparse import RowPattern
from ._validate import Graph, check_features, resolve_graph
from .laplacian import LaplacianParts, _check_normalization, _normalize, _root_degree

if TYPE_CHECKING:  # annotations only (torch-geometric loads in graph.diffusion alone)
    from torch_geometric.data import Data

__all__ = [
    "DENSE_MAX",
    "STEP_RTOL",
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

#: Largest graph for which ``method=None`` picks the dense eigensolver (and for which
#: :func:`manifres.stability.diffusion_stability` returns the whole spectrum).
DENSE_MAX = 512
#: Relative slack of the stability test :math:`h\lambda_{\max} \le 2(1 + \text{STEP\_RTOL})`.
STEP_RTOL = 1e-8
_METHODS = ("dense", "lanczos")
#: Lanczos gives up after this many steps on a clustered spectrum: once lambda_max is known to
#: relative accuracy _NARROW from its proven interval, or lambda_2 is below _NARROW times the
#: upper bound (rings, grids and long paths, where convergence takes thousands of steps).
_PATIENCE = 100
_NARROW = 1e-3
_ZERO_C = 100.0
_EPS64 = torch.finfo(torch.float64).eps


class _Bounded(NamedTuple):
    """An eigenvalue estimate with an interval that provably contains the eigenvalue."""

    value: float
    lower: float
    upper: float
    converged: bool


# ----------------------------------------------------------------------------- problem
class _Spectrum:
    """A resolved symmetric Laplacian in float64 with cached spectral quantities."""

    def __init__(
        self,
        g: Graph,
        normalization: str | None,
        *,
        method: str | None = None,
        tol: float = 1e-8,
        maxiter: int = 300,
        generator: torch.Generator | None = None,
    ) -> None:
        if g.num_nodes == 0:
            raise GraphError("the graph has no nodes; its spectrum is empty")
        self.dtype = g.edge_weight.dtype
        self.device = g.edge_index.device
        self.n = g.num_nodes
        self.graph = g
        self.normalization = normalization
        self.sym = "sym" if normalization == "rw" else normalization
        self.w64 = g.edge_weight.detach().to(torch.float64)
        self.parts: LaplacianParts = _normalize(g.edge_index, self.w64, self.n, self.sym)
        self.method = method or ("dense" if self.n <= DENSE_MAX else "lanczos")
        self.tol, self.maxiter, self.generator = tol, maxiter, generator
        self._upper: float | None = None
        self._dense: Tensor | None = None
        self._csr: Tensor | None = None
        self._lmax: _Bounded | None = None
        self._l2: _Bounded | None = None

    # --------------------------------------------------------------- proven bounds
    def upper_bound(self) -> float:
        r"""A bound :math:`\lambda_{\max} \le U` that holds (0 for a graph without edges)."""
        if self._upper is None:
            p = self.parts
            row, col = p.edge_index
            live = (p.weight != 0) & (row != col)
            if self.sym is not None:
                self._upper = 2.0 if bool(live.any()) else 0.0
            elif not bool(live.any()):
                self._upper = 0.0
            else:
                d = p.degree
                ends = d.index_select(0, row) + d.index_select(0, col)
                top = float(torch.where(live, ends, torch.zeros_like(ends)).max())
                # degrees are float64 sums of at most max_i deg_i terms: relative rounding
                count = int(torch.bincount(row, minlength=self.n).max())
                self._upper = top * (1.0 + 2.0 * (count + 2) * _EPS64)
        return self._upper

    def _guard(self, steps: int) -> float:
        """Rounding term of a Ritz value after ``steps`` Lanczos steps (Paige) plus the
        float64 rounding of the Laplacian's entries, relative to the upper bound."""
        return (10.0 * steps**2.5 + 16.0) * _EPS64 * self.upper_bound()

    # --------------------------------------------------------------- dense
    def spectrum(self) -> Tensor:
        if self._dense is None:
            p = self.parts
            n = self.n
            L = torch.zeros(n, n, dtype=torch.float64, device=self.device)
            L.index_put_((p.edge_index[0], p.edge_index[1]), -p.weight, accumulate=True)
            L.diagonal().add_(p.diag)
            ev = torch.linalg.eigvalsh(L)
            top = ev[-1].abs()
            self._dense = torch.where(ev.abs() <= _ZERO_C * _EPS64 * top, 0.0, ev)
        return self._dense

    def _dense_bounded(self, k: int) -> _Bounded:
        ev = float(self.spectrum()[k])
        err = (8.0 * self.n + 32.0) * _EPS64 * self.upper_bound()
        return _Bounded(ev, max(0.0, ev - err), min(self.upper_bound(), ev + err), True)

    # --------------------------------------------------------------- Lanczos
    def _matvec(self, v: Tensor) -> Tensor:
        r""":math:`Lv = \ell \odot v - A_n v` (the CSR holds :math:`A_n` only: no diagonal
        entries to sort in)."""
        if self._csr is None:
            p = self.parts
            self._csr = RowPattern(p.edge_index[0], p.edge_index[1], self.n).matrix(p.weight)
        return torch.addcmul(torch.mv(self._csr, v).neg_(), self.parts.diag, v)

    def _start(self) -> Tensor:
        gen = self.generator if self.generator is not None else torch.Generator().manual_seed(0)
        return torch.randn(self.n, generator=gen, dtype=torch.float64).to(self.device)

    def _snap(self, lam: float, scale: float) -> float:
        return 0.0 if abs(lam) <= _ZERO_C * _EPS64 * scale else lam

    def lambda_max(self) -> _Bounded:
        if self._lmax is None:
            self._lmax = self._compute_lambda_max()
        return self._lmax

    def _compute_lambda_max(self) -> _Bounded:
        upper = self.upper_bound()
        if upper == 0.0:
            return _Bounded(0.0, 0.0, 0.0, True)  # no edge weighs anything: L = 0
        if self.method == "dense":
            return self._dense_bounded(-1)
        tol = self.tol

        def tight(r) -> bool:  # the proven interval is already narrower than tol
            return upper - r.value <= tol * upper

        def stop(r) -> bool:  # or narrow enough, on a clustered spectrum, to stop trying
            return tight(r) or (r.steps >= _PATIENCE and upper - r.value <= _NARROW * upper)

        r = lanczos(
            self._matvec, self._start(), largest=True, tol=tol, maxiter=self.maxiter, stop=stop
        )
        lower = min(max(0.0, r.value - self._guard(r.steps)), upper)
        if r.converged:
            return _Bounded(self._snap(r.value, r.scale), lower, upper, True)
        if tight(r):
            return _Bounded(upper, lower, upper, True)
        return _Bounded(upper, lower, upper, False)

    def lambda_2(self) -> _Bounded:
        if self.n < 2:
            raise GraphError(f"lambda_2 needs at least 2 nodes, the graph has {self.n}")
        if self._l2 is None:
            self._l2 = self._compute_lambda_2()
        return self._l2

    def _compute_lambda_2(self) -> _Bounded:
        if self.method == "dense":
            return self._dense_bounded(1)
        if bool((self.parts.diag == 0).any()) if self.sym else bool((self.parts.degree == 0).any()):
            return _Bounded(0.0, 0.0, 0.0, True)  # an isolated node: disconnected
        if self.sym is None:
            u = torch.ones(self.n, dtype=torch.float64, device=self.device)
        else:
            row, col = self.parts.edge_index
            w = torch.where(row != col, self.w64, torch.zeros_like(self.w64))
            u = _root_degree(w, row, self.n).root
        u = u / torch.linalg.vector_norm(u)
        top = self.upper_bound()

        def shifted(v: Tensor) -> Tensor:  # L + U u u^T: the null vector moves to the top
            return torch.addcmul(self._matvec(v), u, torch.dot(u, v), value=top)

        def stop(r) -> bool:  # tiny against the top: the slow, clustered end of the spectrum
            return r.steps >= _PATIENCE and r.value <= _NARROW * top

        r = lanczos(
            shifted, self._start(), largest=False, tol=self.tol, maxiter=self.maxiter, stop=stop
        )
        ref = max(r.scale, self.lambda_max().value if self._lmax is not None else 0.0)
        value = self._snap(r.value, ref)
        return _Bounded(value, 0.0, value + self._guard(r.steps), r.converged)

    def out(self, value: float) -> Tensor:
        return torch.tensor(value, dtype=self.dtype, device=self.device)


def _spectrum(
    edge_index: Tensor | Data,
    edge_weight: Tensor | None,
    num_nodes: int | None,
    normalization: str | None,
    *,
    symmetrize: bool = False,
    validate: bool = True,
    method: str | None = None,
    tol: float = 1e-8,
    maxiter: int = 300,
    generator: torch.Generator | None = None,
    krylov_dim: int | None = None,
) -> _Spectrum:
    """Resolve and check a graph once, and return its :class:`_Spectrum`."""
    _check_normalization(normalization)
    if method is not None:
        check_choice(method, _METHODS, "method", "manifres.graph")
    tol = check_real(tol, "tol", "manifres.graph", minimum=0.0, strict_min=True)
    maxiter = check_int(maxiter, "maxiter", "manifres.graph", minimum=1)
    if krylov_dim is not None:
        warnings.warn(
            "manifres.graph: krylov_dim is deprecated and ignored (the Lanczos recurrence keeps "
            "no basis; maxiter bounds its steps); it will be removed in manifres 0.3",
            DeprecationWarning,
            stacklevel=3,
        )
    g = resolve_graph(
        edge_index, edge_weight, num_nodes, validate=validate, symmetric=True, symmetrize=symmetrize
    )
    return _Spectrum(g, normalization, method=method, tol=tol, maxiter=maxiter, generator=generator)


def _step_argument(owner: str, step: Any, edge_index: Any, options: dict) -> float:
    """The checked step, also from its deprecated keyword ``alpha`` (taken out of ``options``)."""
    old = {"alpha": options.pop("alpha")} if "alpha" in options else {}
    step = renamed_kwargs(owner, old, {"alpha": ("step", step)}).get("step", step)
    if step is UNSET or edge_index is UNSET:
        raise TypeError(f"{owner}() needs a step and an edge_index (or Data)")
    return check_real(step, "step", owner)


def _warn_unconverged(what: str, b: _Bounded, s: _Spectrum) -> None:
    if not b.converged:
        warnings.warn(
            f"Lanczos did not converge in maxiter={s.maxiter} steps: returning {b.value:.10g}, "
            f"an upper bound of {what}; the interval [{b.lower:.10g}, {b.upper:.10g}] holds. "
            "Increase maxiter, or use method='dense' on small graphs",
            RuntimeWarning,
            stacklevel=3,
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
    maxiter: int = 300,
    generator: torch.Generator | None = None,
    validate: bool = True,
    krylov_dim: int | None = None,
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
    maxiter : int
        Maximal number of Lanczos steps (sparse products); a ``RuntimeWarning`` if reached
        before convergence, and the value is then an upper bound (module docstring).
    generator : torch.Generator, optional
        Start vector's generator (default: seeded with 0, reproducible).
    validate : bool
        Value checks of the graph (indices, weights, symmetry).
    krylov_dim : int, optional
        Deprecated and ignored.

    Returns
    -------
    Tensor, 0-dim
        In the weights' dtype (torch's default without weights) and device.

    Raises
    ------
    GraphError
        Malformed or directed graph, no nodes.
    ParameterError, UnknownChoiceError
        Bad ``tol``/``maxiter``, unknown ``method`` or ``normalization``.

    Notes
    -----
    For ``"sym"`` and ``"rw"``, :math:`\lambda_{\max} \le 2` with equality iff a connected
    component is bipartite. For the combinatorial Laplacian,
    :math:`\lambda_{\max} \le \max_{(i,j)} (d_i + d_j) \le 2 \max_i d_i`.

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
        tol=tol, maxiter=maxiter, generator=generator, validate=validate, krylov_dim=krylov_dim,
    )
    b = s.lambda_max()
    _warn_unconverged("lambda_max", b, s)
    return s.out(b.value)


def lambda_2(
    edge_index: Tensor | Data,
    edge_weight: Tensor | None = None,
    num_nodes: int | None = None,
    normalization: str | None = None,
    *,
    symmetrize: bool = False,
    method: str | None = None,
    tol: float = 1e-8,
    maxiter: int = 300,
    generator: torch.Generator | None = None,
    validate: bool = True,
    krylov_dim: int | None = None,
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
    :math:`\lambda_{\max}` and eigenvalues cluster near it (long paths, rings and grids with
    :math:`10^4` nodes and more): the Lanczos value is then an upper bound of
    :math:`\lambda_2` and a ``RuntimeWarning`` says it did not converge.

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
        tol=tol, maxiter=maxiter, generator=generator, validate=validate, krylov_dim=krylov_dim,
    )
    b = s.lambda_2()
    _warn_unconverged("lambda_2", b, s)
    return s.out(b.value)


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

    .. math:: \|I - hL\|_2 \le 1 \iff 0 \le h \le 2 / \lambda_{\max}(L)

    Parameters as in :func:`lambda_max` (``options`` are its keyword arguments).

    Returns
    -------
    Tensor, 0-dim
        ``inf`` for a graph without (non-zero) edges, where every step is stable. When
        Lanczos does not converge, two over the upper bound that :func:`lambda_max` returns
        then (a smaller step, proven stable), with its warning.

    Examples
    --------
    >>> import torch
    >>> max_stable_step(torch.tensor([[0, 1], [1, 0]]))
    tensor(1.)
    """
    s = _spectrum(edge_index, edge_weight, num_nodes, normalization, **options)
    b = s.lambda_max()
    _warn_unconverged("lambda_max", b, s)
    return s.out(math.inf if b.value == 0.0 else 2.0 / b.value)


def consensus_rate(
    step: float = UNSET,
    edge_index: Tensor | Data = UNSET,
    edge_weight: Tensor | None = None,
    num_nodes: int | None = None,
    normalization: str | None = None,
    **options: Any,
) -> Tensor:
    r"""Contraction factor of :math:`I - hL` away from consensus.

    .. math:: \rho = \max(|1 - h\lambda_2|, |1 - h\lambda_{\max}|)

    the spectral radius of :math:`I - hL` on the complement of the consensus space:
    disagreement shrinks like :math:`\rho^k` (for ``"rw"``, in the :math:`D`-weighted norm).
    ``rho < 1`` iff the graph is connected and :math:`0 < h < 2/\lambda_{\max}`.
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
    a = _step_argument("consensus_rate", step, edge_index, options)
    s = _spectrum(edge_index, edge_weight, num_nodes, normalization, **options)
    lmax, l2 = s.lambda_max(), s.lambda_2()
    _warn_unconverged("lambda_max", lmax, s)
    _warn_unconverged("lambda_2", l2, s)
    return s.out(max(abs(1.0 - a * l2.value), abs(1.0 - a * lmax.value)))


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


# ----------------------------------------------------------------------------- certificate
@dataclasses.dataclass(frozen=True)
class DiffusionCertificate:
    r"""Stability data of the step :math:`x \leftarrow x - hL x` on one graph.

    The verdict :attr:`stable` is decided from bounds that hold (module docstring), so it is
    never wrong: ``True`` only when :math:`h\,U \le 2(1 + \text{STEP\_RTOL})` for a proven
    upper bound :math:`U \ge \lambda_{\max}`, ``False`` only when :math:`h\,\ell > 2(1 +
    \text{STEP\_RTOL})` for a proven lower bound :math:`\ell \le \lambda_{\max}` (or
    :math:`h \le 0`), and ``None`` when the interval :math:`[\ell, U]` straddles
    :math:`2/h` (:attr:`reason` says so and what would decide it).

    Attributes
    ----------
    step : float
        :math:`h` (deprecated alias: ``alpha``).
    normalization : str or None
    num_nodes : int
    lambda_max : float
        The estimate of :func:`lambda_max` (exact to rounding when :attr:`converged`).
    lambda_max_bounds : (float, float)
        :math:`(\ell, U)`: :math:`\ell \le \lambda_{\max} \le U`, proven.
    max_step : float
        :math:`2 / \lambda_{\max}` of the estimate (``inf`` without edges).
    safe_step : float
        :math:`2 / U`: every step in :math:`(0, 2/U]` is proven stable.
    stable : bool or None
        ``True``: proven non-expansive (norms never grow by more than the slack); ``False``:
        proven unstable; ``None``: undecided.
    reason : str
        Why :attr:`stable` has its value.
    converged : bool
        Whether every eigenvalue computed here converged (else the estimates are bounds).
    lambda_2 : float or None
        ``None`` unless computed (``fiedler=True``); an upper bound when not converged.
    rate : float or None
        :func:`consensus_rate` from the estimates (``None`` unless ``fiedler=True``).
    """

    step: float
    normalization: str | None
    num_nodes: int
    lambda_max: float
    lambda_max_bounds: tuple[float, float]
    max_step: float
    safe_step: float
    stable: bool | None
    reason: str
    converged: bool
    lambda_2: float | None = None
    rate: float | None = None

    @property
    def alpha(self) -> float:
        """Deprecated alias of :attr:`step`."""
        warnings.warn(
            "DiffusionCertificate: 'alpha' is deprecated and will be removed in manifres 0.3; "
            "use 'step'",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.step

    def require_stable(self, owner: str | None = None) -> None:
        """Raise :class:`~manifres.errors.StabilityError` unless :attr:`stable` is True
        (proven unstable, or undecided); ``owner`` prefixes the message."""
        if self.stable is True:
            return
        prefix = f"{owner}: " if owner else ""
        raise StabilityError(f"{prefix}{self.reason}")


def _decide(h: float, s: _Spectrum, bounds: tuple[float, float] | None) -> tuple[bool | None, str]:
    """The stability verdict of step ``h`` from proven bounds ``(lower, upper)`` of
    lambda_max (``None``: only the cheap upper bound is known yet)."""
    limit = 2.0 * (1.0 + STEP_RTOL)
    norm = f"normalization={s.normalization!r}"
    upper = s.upper_bound() if bounds is None else bounds[1]
    if not h > 0:
        return False, f"the step must be positive, got step = {h:.6g}"
    if h * upper <= limit:
        return True, (
            f"step = {h:.6g} <= 2 / {upper:.6g}, and lambda_max <= {upper:.6g} is proven "
            f"({norm}): the step is non-expansive"
        )
    if bounds is None:
        return None, "undecided"
    lower = bounds[0]
    if h * lower > limit:
        return False, (
            f"step = {h:.6g} is outside the stable range (0, 2 / lambda_max]: lambda_max >= "
            f"{lower:.6g} is proven ({norm}), so step * lambda_max >= {h * lower:.6g} > 2; "
            f"every step <= {2.0 / upper:.6g} is proven stable"
        )
    return None, (
        f"cannot decide whether step = {h:.6g} is stable ({norm}): lambda_max lies in "
        f"[{lower:.10g}, {upper:.10g}] and 2 / step = {2.0 / h:.10g} is inside. Every step <= "
        f"{2.0 / upper:.6g} is proven stable; method='dense' (small graphs) or a larger "
        "maxiter can narrow the interval"
    )


def _certify(h: float, s: _Spectrum, *, fiedler: bool) -> DiffusionCertificate:
    """The one implementation of the stability test (certificate, layers, studies)."""
    b = s.lambda_max()
    stable, reason = _decide(h, s, (b.lower, b.upper))
    l2 = s.lambda_2() if fiedler and s.n >= 2 else None
    rate = None if l2 is None else max(abs(1.0 - h * l2.value), abs(1.0 - h * b.value))
    return DiffusionCertificate(
        step=h,
        normalization=s.normalization,
        num_nodes=s.n,
        lambda_max=b.value,
        lambda_max_bounds=(b.lower, b.upper),
        max_step=math.inf if b.value == 0.0 else 2.0 / b.value,
        safe_step=math.inf if b.upper == 0.0 else 2.0 / b.upper,
        stable=stable,
        reason=reason,
        converged=b.converged and (l2 is None or l2.converged),
        lambda_2=None if l2 is None else l2.value,
        rate=rate,
    )


def _require_stable_step(h: float, s: _Spectrum, owner: str) -> None:
    """Raise StabilityError unless step ``h`` is proven stable; the cheap bound first."""
    if _decide(h, s, None)[0] is True:
        return
    _certify(h, s, fiedler=False).require_stable(owner)


def stability_certificate(
    step: float = UNSET,
    edge_index: Tensor | Data = UNSET,
    edge_weight: Tensor | None = None,
    num_nodes: int | None = None,
    normalization: str | None = None,
    *,
    fiedler: bool = True,
    **options: Any,
) -> DiffusionCertificate:
    r"""Certificate of stability (and consensus rate) of one diffusion step size.

    .. math:: \text{stable} \iff 0 < h \le 2/\lambda_{\max}, \qquad
              \rho = \max(|1 - h\lambda_2|, |1 - h\lambda_{\max}|)

    Parameters as in :func:`lambda_max`; ``fiedler=False`` skips :math:`\lambda_2` (and the
    rate), which is the expensive part on large graphs with small spectral gaps. No warning is
    raised: the certificate records whether the eigensolver converged.

    Returns
    -------
    DiffusionCertificate
        Plain data; :attr:`~DiffusionCertificate.stable` is ``True``, ``False`` or ``None``
        (undecided); call :meth:`DiffusionCertificate.require_stable` to raise unless it is
        ``True``.

    Examples
    --------
    >>> import torch
    >>> square = torch.tensor([[0, 1, 2, 3, 1, 2, 3, 0], [1, 2, 3, 0, 0, 1, 2, 3]])
    >>> c = stability_certificate(0.6, square)
    >>> c.stable, round(c.max_step, 12), round(c.rate, 12)
    (False, 0.5, 1.4)
    """
    h = _step_argument("stability_certificate", step, edge_index, options)
    s = _spectrum(edge_index, edge_weight, num_nodes, normalization, **options)
    return _certify(h, s, fiedler=fiedler)


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
        d = manifold.dist(x.index_select(0, row), x.index_select(0, col))
        return 0.5 * (w * d * d).sum()
    xf = x.flatten(1) if x.dim() > 1 else x.unsqueeze(-1)
    if normalization == "sym":
        rd = _root_degree(w, row, g.num_nodes)
        xf = xf / rd.root.unsqueeze(-1)  # isolated nodes: root 1 (and no edge)
    diff = xf.index_select(0, row) - xf.index_select(0, col)
    return 0.5 * (w * (diff * diff).sum(-1)).sum()
