r"""Validated graph Laplacians as sparse tensors.

Conventions (the same in every function of :mod:`manifres.graph`)
------------------------------------------------------------------
* **Edges are matrix entries.** Column ``k`` of ``edge_index`` is ``(i, j)`` and sets
  :math:`A_{ij} = w_k`: node ``i`` hears node ``j``. This is the convention of
  ``torch.sparse_coo_tensor(edge_index, w)`` and of ``torch_geometric.utils.get_laplacian``. For
  an undirected graph (both directions listed with equal weights) the order does not matter.
* **Degrees** are row sums :math:`d_i = \sum_j A_{ij}` (self-loops excluded, see below).
* **Normalisations**:

  =============  ==========================================================================
  ``None``       combinatorial :math:`L = D - A`
  ``"sym"``      :math:`L = I - D^{-1/2} A D^{-1/2}` (needs an undirected graph)
  ``"rw"``       random walk :math:`L = I - D^{-1} A` (directed graphs allowed: row-stochastic)
  =============  ==========================================================================

* **Isolated nodes** (degree 0, including nodes whose edges all weigh 0) get :math:`L_{ii} = 0`
  under every normalisation (the Chung / SciPy convention; torch-geometric uses 1 under
  ``"sym"``): their row and column of ``L`` are zero, so diffusion leaves them exactly
  unchanged and they add an exact eigenvalue 0 (one per component). :math:`D^{-1/2}` is masked
  with the double-where rule, so gradients with respect to zero weights are finite (zero).
* **Self-loops** are removed (their weight is masked to 0, with a zero gradient): a self-loop
  cancels in :math:`D - A` anyway, and removing it keeps the normalised Laplacians' diagonal
  at exactly 1. Self-trust belongs in the step size (``x - h L x``), not in ``A``.
* **Duplicate edges** are summed.
* **Directed graphs**: ``"sym"`` and the spectral tools need a symmetric ``A``; with validation
  on, a directed graph raises :class:`~manifres.errors.GraphError` naming an unmatched edge.
  ``symmetrize=True`` replaces ``A`` by :math:`(A + A^T)/2` instead (an undirected graph is
  left unchanged). ``None`` and ``"rw"`` accept directed graphs (rows still sum to zero).
* **Bad values** (``validate=True``, the default of the functions here): negative, NaN or
  infinite weights and node indices outside ``[0, num_nodes)`` raise
  :class:`~manifres.errors.GraphError` naming the edge (one host-device synchronisation). With
  ``validate=False`` no value is checked: under ``"sym"``/``"rw"`` a node whose degree is
  negative, NaN, or cancels to 0 through negative weights gets NaN in its row (and, for
  ``"sym"``, its column) of ``L``, never a finite wrong value; a NaN weight makes its row NaN.
  Zero weights are valid (a node whose edges all weigh 0 is isolated).
* **Symmetry test** (where an undirected graph is needed): a sort-free screen (one
  gather-scatter of a fixed random vector through :math:`A` and :math:`A^T`, float64,
  relative tolerance :math:`16\varepsilon + 64\varepsilon_{64}`), confirmed entry by entry
  (:math:`|A_{ij} - A_{ji}| > 16\varepsilon(|A_{ij}| + |A_{ji}|)`) before an error is raised.
* **Node count**: ``num_nodes`` (or a ``Data`` object's ``num_nodes``) is used as given;
  when omitted it is ``max(edge_index) + 1``, so trailing isolated nodes must be declared.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, NamedTuple

import torch
from torch import Tensor

from ..errors import UnknownChoiceError
from ._sparse import sparse_coo, sparse_csr
from ._validate import resolve_graph

if TYPE_CHECKING:  # annotations only (torch-geometric loads in graph.diffusion alone)
    from torch_geometric.data import Data

__all__ = ["NORMALIZATIONS", "LaplacianParts", "laplacian_parts", "laplacian"]

#: Valid values of ``normalization``.
NORMALIZATIONS = (None, "sym", "rw")


def _check_normalization(normalization: str | None) -> None:
    """Raise :class:`UnknownChoiceError` unless ``normalization`` is one of :data:`NORMALIZATIONS`."""
    if normalization not in NORMALIZATIONS:
        raise UnknownChoiceError(
            f"unknown normalization {normalization!r}; valid values: None (combinatorial D - A), "
            "'sym' (I - D^-1/2 A D^-1/2), 'rw' (I - D^-1 A)"
        )


class LaplacianParts(NamedTuple):
    r"""A Laplacian :math:`L = \operatorname{diag}(\ell) - A_n` split into its parts.

    Attributes
    ----------
    edge_index : Tensor, shape (2, E)
        The edges, as given (int64).
    weight : Tensor, shape (E,)
        Off-diagonal weights :math:`(A_n)_{ij}` per edge (0 for self-loops).
    diag : Tensor, shape (N,)
        :math:`\ell_i = L_{ii}`: the degree (combinatorial) or 1 (normalised; 0 if isolated).
    degree : Tensor, shape (N,)
        Weighted degree without self-loops.
    num_nodes : int
    """

    edge_index: Tensor
    weight: Tensor
    diag: Tensor
    degree: Tensor
    num_nodes: int


def _masked_power(deg: Tensor, power: float, isolated: Tensor | None = None) -> Tensor:
    """``deg ** power`` where ``deg > 0``; 0 at isolated nodes (zero gradient); NaN elsewhere.

    ``isolated`` marks the nodes whose edges all weigh 0 (default: ``deg == 0``); a node with
    ``deg <= 0`` that is not isolated (negative weights) gets NaN, never a finite value.
    """
    pos = deg > 0
    iso = deg == 0 if isolated is None else isolated
    safe = torch.where(pos, deg, torch.ones_like(deg))
    out = torch.where(pos, safe.pow(power), torch.zeros_like(deg))
    return torch.where(pos | iso, out, torch.full_like(deg, math.nan))


def _indicator(deg: Tensor, isolated: Tensor) -> Tensor:
    """1 where ``deg > 0``, 0 at isolated nodes, NaN elsewhere (negative or NaN degrees)."""
    one = torch.where(deg > 0, torch.ones_like(deg), torch.zeros_like(deg))
    return torch.where((deg > 0) | isolated, one, torch.full_like(deg, math.nan))


def _degree(w: Tensor, row: Tensor, n: int) -> Tensor:
    """Row sums of ``w``, accumulated in float64 (correctly rounded for float32 weights; a
    degree above the dtype's largest value is ``inf``, its true rounding)."""
    acc = torch.zeros(n, dtype=torch.float64, device=w.device)
    return acc.index_add_(0, row, w.to(torch.float64)).to(w.dtype)


class _RootDegree(NamedTuple):
    r"""``root`` = :math:`\sqrt{d}` where ``d > 0``, 1 at isolated nodes, NaN elsewhere (a
    negative or NaN degree); ``degree`` = :math:`d`; ``isolated``: every edge weighs 0."""

    root: Tensor
    degree: Tensor
    isolated: Tensor


def _root_degree(w: Tensor, row: Tensor, n: int) -> _RootDegree:
    r"""Square roots of the degrees that neither overflow nor underflow, for any finite weights.

    Each row is scaled by its largest :math:`|w|`, :math:`m_i`: the scaled degree
    :math:`	ilde d_i = \sum_j w_{ij}/m_i` lies in :math:`[1, \deg_i]` (no overflow, and terms
    below :math:`m_i` times the smallest normal number are negligible), accumulated in float64;
    then :math:`\sqrt{d_i} = \sqrt{m_i}\sqrt{	ilde d_i}`, which lies between the square roots
    of the dtype's smallest and largest values times :math:`\sqrt{\deg_i}`: representable. The
    scale is a constant factor of the exact formulas, so gradients are exact.
    """
    top = torch.zeros(n, dtype=w.dtype, device=w.device)
    top = top.scatter_reduce_(0, row, w.detach().abs(), "amax")
    iso = top == 0
    m = torch.where(top > 0, top, torch.ones_like(top)).to(torch.float64)
    scaled = torch.zeros(n, dtype=torch.float64, device=w.device)
    scaled = scaled.index_add_(0, row, w.to(torch.float64) / m.index_select(0, row))
    pos = scaled > 0
    safe = torch.where(pos, scaled, torch.ones_like(scaled))
    root = torch.where(pos | iso, (m.sqrt() * safe.sqrt()), torch.full_like(safe, math.nan))
    return _RootDegree(root.to(w.dtype), (m * scaled).to(w.dtype), iso)


def _normalize(
    edge_index: Tensor, edge_weight: Tensor, num_nodes: int, normalization: str | None
) -> LaplacianParts:
    """Split the Laplacian of an already resolved graph into :class:`LaplacianParts`.

    Normalised weights are computed as ``(w / sqrt(d_i)) / sqrt(d_j)`` (``"sym"``) and
    ``(w / sqrt(d_i)) / sqrt(d_i)`` (``"rw"``) from :func:`_root_degree`: each quotient is at
    most ``sqrt(w)`` (as ``d_i >= w``), so nothing overflows, and a quotient that underflows is
    below ``sqrt(tiny)`` times the other factor: the result is correct to rounding for every
    finite weight (subnormal, huge, or a mixture of both).
    """
    row, col = edge_index
    w = torch.where(row != col, edge_weight, torch.zeros_like(edge_weight))
    if normalization is None:
        deg = _degree(w, row, num_nodes)
        return LaplacianParts(edge_index, w, deg, deg, num_nodes)
    # isolated: every edge weighs exactly 0 (a degree that cancels to 0 through negative
    # weights is not isolated: it gets NaN)
    rd = _root_degree(w, row, num_nodes)
    r = rd.root
    a = w / r.index_select(0, row) / r.index_select(0, col if normalization == "sym" else row)
    return LaplacianParts(edge_index, a, _indicator(rd.degree, rd.isolated), rd.degree, num_nodes)


def laplacian_parts(
    edge_index: Tensor | Data,
    edge_weight: Tensor | None = None,
    num_nodes: int | None = None,
    normalization: str | None = None,
    *,
    symmetrize: bool = False,
    dtype: torch.dtype | None = None,
    validate: bool = True,
) -> LaplacianParts:
    r"""The parts :math:`L = \operatorname{diag}(\ell) - A_n` of a validated Laplacian.

    .. math::

        (A_n)_{ij} = \begin{cases} w_{ij} & \text{None} \\
        w_{ij} / \sqrt{d_i d_j} & \text{"sym"} \\ w_{ij} / d_i & \text{"rw"} \end{cases},
        \qquad \ell_i = \begin{cases} d_i & \text{None} \\
        [d_i > 0] & \text{"sym", "rw"} \end{cases}

    Useful to build custom message-passing layers: ``(L x)_i = ell_i x_i - sum_j (A_n)_ij x_j``.
    Arguments, conventions and errors as in :func:`laplacian`.

    Returns
    -------
    LaplacianParts

    Examples
    --------
    >>> import torch
    >>> p = laplacian_parts(torch.tensor([[0, 1], [1, 0]]), num_nodes=3, normalization="sym")
    >>> p.weight, p.diag
    (tensor([1., 1.]), tensor([1., 1., 0.]))
    """
    _check_normalization(normalization)
    g = resolve_graph(
        edge_index,
        edge_weight,
        num_nodes,
        dtype=dtype,
        validate=validate,
        symmetric=normalization == "sym",
        symmetrize=symmetrize,
    )
    return _normalize(g.edge_index, g.edge_weight, g.num_nodes, normalization)


def laplacian(
    edge_index: Tensor | Data,
    edge_weight: Tensor | None = None,
    num_nodes: int | None = None,
    normalization: str | None = None,
    *,
    symmetrize: bool = False,
    dtype: torch.dtype | None = None,
    layout: torch.layout = torch.sparse_coo,
    validate: bool = True,
) -> Tensor:
    r"""Graph Laplacian as a sparse ``(N, N)`` tensor.

    .. math::

        L = D - A, \qquad L_{\mathrm{sym}} = I - D^{-1/2} A D^{-1/2}, \qquad
        L_{\mathrm{rw}} = I - D^{-1} A

    with the conventions of this module (isolated nodes: :math:`L_{ii} = 0`; self-loops
    removed; duplicates summed; see the module docstring).

    Parameters
    ----------
    edge_index : Tensor, shape (2, E), integer; or torch_geometric.data.Data
        Edges ``(i, j)`` meaning :math:`A_{ij} = w`. From a ``Data`` object: its
        ``edge_index``, its ``edge_weight`` (or 1-D ``edge_attr``) and its ``num_nodes``.
    edge_weight : Tensor, shape (E,), optional
        Non-negative weights (default: ones). Zero is valid. Integer weights are cast to
        ``dtype``.
    num_nodes : int, optional
        Number of nodes ``N`` (default ``max(edge_index) + 1``).
    normalization : {None, "sym", "rw"}
        See the module docstring.
    symmetrize : bool
        Use :math:`(A + A^T)/2` (accepts directed graphs under ``"sym"``).
    dtype : torch.dtype, optional
        Output dtype when ``edge_weight`` is absent or integer (default: torch's default).
    layout : torch.sparse_coo or torch.sparse_csr
        Sparse layout of the result (COO is coalesced).
    validate : bool
        Value checks (indices, weights, symmetry for ``"sym"``); one host-device sync.

    Returns
    -------
    Tensor, sparse, shape (N, N)
        Differentiable with respect to ``edge_weight`` (finite gradients at zero weights).
        Explicit zeros (isolated nodes' diagonal) may be stored.

    Raises
    ------
    GraphError
        Malformed ``edge_index`` (float dtype, shape ``(E, 2)``, negative or out-of-range
        index), negative or non-finite weight, directed graph under ``"sym"``.
    DTypeError, DeviceError
        Weights of another float dtype than ``dtype``; tensors on different devices.
    UnknownChoiceError
        Unknown ``normalization``.

    Notes
    -----
    Only sparse operations (scatter, gather, coalesce): memory :math:`O(N + E)`. A ring of
    :math:`10^7` nodes builds in a few seconds on two CPU cores.

    Examples
    --------
    >>> import torch
    >>> ei = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
    >>> laplacian(ei).to_dense()
    tensor([[ 1., -1.,  0.],
            [-1.,  2., -1.],
            [ 0., -1.,  1.]])
    >>> laplacian(ei, num_nodes=4, normalization="rw").to_dense()[:, 1]
    tensor([-1.,  1., -1.,  0.])
    """
    if layout not in (torch.sparse_coo, torch.sparse_csr):
        raise UnknownChoiceError(
            f"unknown layout {layout}; valid values: torch.sparse_coo, torch.sparse_csr"
        )
    p = laplacian_parts(
        edge_index,
        edge_weight,
        num_nodes,
        normalization,
        symmetrize=symmetrize,
        dtype=dtype,
        validate=validate,
    )
    n = p.num_nodes
    ar = torch.arange(n, device=p.edge_index.device)
    indices = torch.cat([p.edge_index, torch.stack([ar, ar])], dim=1)
    values = torch.cat([-p.weight, p.diag])
    if layout == torch.sparse_csr:
        return sparse_csr(indices, values, n)
    return sparse_coo(indices, values, n)
