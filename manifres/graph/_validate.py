"""Graph input resolution and validation shared by every function of :mod:`manifres.graph`.

One entry point, :func:`resolve_graph`, turns what a user passes (an ``edge_index`` tensor or a
torch-geometric ``Data`` object, optional weights, an optional node count and optional node
features) into a :class:`Graph` with an ``int64`` ``edge_index`` of shape ``(2, E)``, floating
weights of shape ``(E,)`` and an ``int`` node count, or raises a named error.

Two kinds of checks:

* metadata checks (always on, no host-device synchronisation): types, dtypes, shapes, devices,
  ``num_nodes`` against the rows of the features;
* value checks (``validate=True``): node indices in ``[0, num_nodes)``, weights finite and
  non-negative, and (where a symmetric operator is needed) an undirected graph. They read
  tensor values (one synchronisation on GPUs, more only to name the offending edge).
"""

from __future__ import annotations

import operator
import warnings
from typing import TYPE_CHECKING, NamedTuple

import torch
from torch import Tensor

from .._validation import SUPPORTED_DTYPES
from ..errors import DeviceError, DTypeError, GraphError, ShapeError
from ._pyg import is_data

if TYPE_CHECKING:  # annotations only (torch-geometric loads in graph.diffusion alone)
    from torch_geometric.data import Data

__all__ = ["Graph", "resolve_graph", "check_features"]


class Graph(NamedTuple):
    """A graph: ``edge_index`` (2, E), ``edge_weight`` (E,) or ``None`` (ones), ``num_nodes``.

    Returned by :func:`resolve_graph` (``edge_index`` int64 and checked, ``edge_weight`` always
    a tensor) and by the named graphs of :mod:`manifres.graph.datasets` (both directions of
    every undirected edge, and a ``name``).
    """

    edge_index: Tensor
    edge_weight: Tensor | None
    num_nodes: int
    name: str | None = None


def _data_weight(graph: Data) -> Tensor | None:
    """``edge_weight``, else a 1-D or ``(E, 1)`` ``edge_attr``, of a ``Data`` object."""
    w = graph.get("edge_weight", None)
    if w is not None:
        return w
    attr = graph.get("edge_attr", None)
    if not isinstance(attr, Tensor):
        return None
    if attr.dim() == 2 and attr.shape[1] == 1:
        return attr[:, 0]
    if attr.dim() != 1:
        raise GraphError(
            f"the Data object's edge_attr has shape {tuple(attr.shape)}: a weight is read from "
            "edge_weight, or from a 1-D or (E, 1) edge_attr. Pass edge_weight= explicitly (for "
            "instance one column of edge_attr)"
        )
    return attr


def _data_num_nodes(graph: Data) -> int | None:
    """The node count a ``Data`` object declares (``num_nodes``, or the rows of ``x`` and the
    like), or ``None`` when torch-geometric would only infer ``max(edge_index) + 1``."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        n = graph.num_nodes
    return None if caught else n


def _unpack(graph: Tensor | Data, edge_weight: Tensor | None, num_nodes: int | None):
    """``(edge_index, edge_weight, num_nodes, declared)`` from a tensor or a ``Data`` object.

    From ``Data``: its ``edge_index``, its weight (:func:`_data_weight`, unless ``edge_weight``
    is given) and its node count (unless ``num_nodes`` is given); ``declared`` is the node
    count the ``Data`` object itself declares (``None`` for a tensor, or when it declares
    none).
    """
    if isinstance(graph, Tensor):
        return graph, edge_weight, num_nodes, None
    if not is_data(graph):
        raise GraphError(
            "expected an edge_index tensor of shape (2, E) or a torch_geometric.data.Data, got "
            f"{type(graph).__name__}"
        )
    if graph.edge_index is None:
        raise GraphError("the Data object has no edge_index")
    if edge_weight is None:
        edge_weight = _data_weight(graph)
    declared = _data_num_nodes(graph)
    if num_nodes is None:
        # without a declared count, max(edge_index) + 1 (the documented inference)
        num_nodes = declared
    return graph.edge_index, edge_weight, num_nodes, declared


def check_features(x: Tensor, name: str = "x") -> None:
    """Raise unless ``x`` is a float32/float64 tensor with a node axis first."""
    if not isinstance(x, Tensor):
        raise DTypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dtype not in SUPPORTED_DTYPES:
        raise DTypeError(
            f"{name} has dtype {x.dtype}; manifres.graph supports torch.float32 and torch.float64"
        )
    if x.dim() < 1:
        raise ShapeError(f"{name} must have shape (N, ...) with nodes first, got a 0-dim tensor")


def _check_edge_index(edge_index: Tensor) -> Tensor:
    if not isinstance(edge_index, Tensor):
        raise GraphError(f"edge_index must be a torch.Tensor, got {type(edge_index).__name__}")
    if edge_index.is_floating_point() or edge_index.is_complex() or edge_index.dtype == torch.bool:
        raise GraphError(
            f"edge_index has dtype {edge_index.dtype}; node indices must be integers "
            "(use edge_index.long())"
        )
    if edge_index.dim() != 2 or edge_index.shape[0] != 2:
        shape = tuple(edge_index.shape)
        hint = ""
        if edge_index.dim() == 2 and edge_index.shape[1] == 2:
            hint = " (it looks like (E, 2): pass edge_index.t())"
        raise GraphError(f"edge_index must have shape (2, E), got {shape}{hint}")
    return edge_index.long()


def _weight_dtype(
    edge_weight: Tensor | None, x: Tensor | None, dtype: torch.dtype | None
) -> torch.dtype:
    if x is not None:
        if dtype is not None and dtype != x.dtype:
            raise DTypeError(f"dtype={dtype} differs from the features' dtype {x.dtype}")
        return x.dtype
    if dtype is not None:
        if dtype not in SUPPORTED_DTYPES:
            raise DTypeError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
        return dtype
    if edge_weight is not None and edge_weight.is_floating_point():
        return edge_weight.dtype
    return torch.get_default_dtype()


def _check_weight(edge_weight: Tensor | None, num_edges: int, target: torch.dtype, like: Tensor):
    if edge_weight is None:
        return torch.ones(num_edges, dtype=target, device=like.device)
    if not isinstance(edge_weight, Tensor):
        raise GraphError(f"edge_weight must be a torch.Tensor, got {type(edge_weight).__name__}")
    if tuple(edge_weight.shape) != (num_edges,):
        raise GraphError(
            f"edge_weight must have shape (E,) = ({num_edges},), got {tuple(edge_weight.shape)}"
        )
    if edge_weight.is_complex():
        raise DTypeError(f"edge_weight has complex dtype {edge_weight.dtype}")
    if edge_weight.is_floating_point():
        if edge_weight.dtype not in SUPPORTED_DTYPES:
            raise DTypeError(
                f"edge_weight has dtype {edge_weight.dtype}; use torch.float32 or torch.float64"
            )
        if edge_weight.dtype != target:
            raise DTypeError(
                f"edge_weight has dtype {edge_weight.dtype} but the features (or dtype=) are "
                f"{target}; convert one of them (manifres never promotes silently)"
            )
        return edge_weight
    # integer and boolean weights are exact small counts: cast to the working dtype
    return edge_weight.to(target)


def _check_devices(**tensors: Tensor | None) -> None:
    items = [(n, t) for n, t in tensors.items() if t is not None]
    first_name, first = items[0]
    for name, t in items[1:]:
        if t.device != first.device:
            raise DeviceError(f"{first_name} is on {first.device} but {name} is on {t.device}")


def _resolve_num_nodes(num_nodes, x: Tensor | None, edge_index: Tensor) -> int:
    if num_nodes is not None:
        if isinstance(num_nodes, bool):
            raise GraphError(f"num_nodes must be an integer, got {num_nodes!r}")
        try:
            num_nodes = operator.index(num_nodes)
        except TypeError:
            if isinstance(num_nodes, Tensor) and num_nodes.numel() == 1:
                num_nodes = int(num_nodes)
            else:
                raise GraphError(f"num_nodes must be an integer, got {num_nodes!r}") from None
        if num_nodes < 0:
            raise GraphError(f"num_nodes must be >= 0, got {num_nodes}")
    if x is not None:
        rows = x.shape[0]
        if num_nodes is not None and num_nodes != rows:
            raise GraphError(
                f"num_nodes={num_nodes} but the features have {rows} rows (one per node); "
                "they must agree (no node is dropped or invented)"
            )
        return rows
    if num_nodes is not None:
        return num_nodes
    if edge_index.shape[1] == 0:
        return 0
    return int(edge_index.max()) + 1


def _edge_str(edge_index: Tensor, k: int) -> str:
    return f"edge {k} = ({int(edge_index[0, k])}, {int(edge_index[1, k])})"


def _check_values(edge_index: Tensor, edge_weight: Tensor, num_nodes: int) -> None:
    """Value checks with one synchronisation; a second one only to name the offending edge."""
    if edge_index.shape[1] == 0:
        return
    w = edge_weight.detach()
    finite = torch.isfinite(w)
    stats = torch.stack(
        [
            edge_index.min(),
            edge_index.max(),
            (~finite).any().long(),
            (w < 0).any().long(),
        ]
    ).tolist()
    lo, hi, nonfinite, negative = stats
    if lo < 0:
        k = int((edge_index < 0).any(0).nonzero()[0])
        raise GraphError(f"edge_index has a negative node index at {_edge_str(edge_index, k)}")
    if hi >= num_nodes:
        k = int((edge_index >= num_nodes).any(0).nonzero()[0])
        raise GraphError(
            f"edge_index refers to node {int(edge_index[:, k].max())} at "
            f"{_edge_str(edge_index, k)}, but the graph has {num_nodes} nodes (indices 0.."
            f"{num_nodes - 1}); pass num_nodes, or features with one row per node"
        )
    if nonfinite:
        k = int((~finite).nonzero()[0])
        raise GraphError(
            f"edge weight {float(w[k])} at {_edge_str(edge_index, k)} is not finite; "
            "edge weights must be finite"
        )
    if negative:
        k = int((w < 0).nonzero()[0])
        raise GraphError(
            f"negative edge weight {float(w[k])} at {_edge_str(edge_index, k)}; Laplacian "
            "weights must be >= 0 (zero is allowed)"
        )


def _check_symmetric(edge_index: Tensor, edge_weight: Tensor, num_nodes: int) -> None:
    """Raise unless the weighted adjacency ``A[i, j] = sum of w over edges (i, j)`` is symmetric.

    A sort-free screen in float64: with a fixed random vector ``v`` (entries in [1, 2], seeded),
    every node must satisfy ``|(A v - A^T v)_i| <= (16 eps + 64 eps_64) (|A| v + |A|^T v)_i``
    (``eps`` of the weights' dtype): two gather-scatter passes over the edges instead of a
    sort. Only when the screen fails are the edges sorted, to confirm the asymmetry with the
    exact entry-wise test (:func:`_raise_asymmetric_edge`) and name an edge. An asymmetry that
    the screen misses needs an exact cancellation against ``v``. Weights are scaled by their
    largest magnitude first, so that no sum overflows (in float64, weights more than
    :math:`10^{300}` apart can flush the smallest to zero, and an asymmetry among them is then
    missed).
    """
    if edge_index.shape[1] == 0:
        return
    row, col = edge_index
    w = edge_weight.detach().to(torch.float64)
    top = w.abs().max()
    w = w / torch.where(top > 0, top, torch.ones_like(top))
    n = num_nodes
    gen = torch.Generator().manual_seed(12345)
    v = (1.0 + torch.rand(n, generator=gen, dtype=torch.float64)).to(w.device)
    out = torch.zeros(n, dtype=torch.float64, device=w.device).index_add_(0, row, w * v.index_select(0, col))
    back = torch.zeros_like(out).index_add_(0, col, w * v.index_select(0, row))
    tol = 16.0 * torch.finfo(edge_weight.dtype).eps + 64.0 * torch.finfo(torch.float64).eps
    # weights are non-negative here (checked before), so |A| v + |A|^T v = out + back; a
    # negative weight can only make the screen fail, and the exact test then decides
    if bool(((out - back).abs() > tol * (out + back)).any()):
        _raise_asymmetric_edge(edge_index, edge_weight, n)


def _raise_asymmetric_edge(edge_index: Tensor, edge_weight: Tensor, n: int) -> None:
    """Raise naming the first listed edge whose reverse is missing or has another weight
    (``|A_ij - A_ji| > 16 eps (|A_ij| + |A_ji|)``, by sorting); return if there is none."""
    row, col = edge_index
    w = edge_weight.detach().to(torch.float64)
    keys = torch.cat([row * n + col, col * n + row])
    uniq, inv = torch.unique(keys, return_inverse=True)
    diff = torch.zeros(uniq.numel(), dtype=w.dtype, device=w.device)
    diff = diff.index_add_(0, inv, torch.cat([w, -w]))
    mag = torch.zeros_like(diff).index_add_(0, inv, torch.cat([w.abs(), w.abs()]))
    bad = diff.abs() > 16.0 * torch.finfo(edge_weight.dtype).eps * mag
    e = row.numel()
    hit = bad[inv[:e]] | bad[inv[e:]]
    if not bool(hit.any()):
        return
    k = int(hit.nonzero()[0])
    i, j = int(row[k]), int(col[k])
    a_ij = float(w[(row == i) & (col == j)].sum())
    a_ji = float(w[(row == j) & (col == i)].sum())
    raise GraphError(
        f"the graph is directed: A[{i}, {j}] = {a_ij:.6g} but A[{j}, {i}] = {a_ji:.6g} "
        f"(at {_edge_str(edge_index, k)}). This operation needs an undirected graph: list "
        "both directions (torch_geometric.utils.to_undirected) or pass symmetrize=True"
    )


def resolve_graph(
    edge_index: Tensor | Data,
    edge_weight: Tensor | None = None,
    num_nodes: int | None = None,
    *,
    x: Tensor | None = None,
    dtype: torch.dtype | None = None,
    validate: bool = True,
    symmetric: bool = False,
    symmetrize: bool = False,
) -> Graph:
    """Check and normalise a graph given as ``edge_index`` (or ``Data``) plus options.

    Parameters
    ----------
    edge_index : Tensor, shape (2, E), integer, or torch_geometric.data.Data
    edge_weight : Tensor, shape (E,), optional
        Floating weights must have the working dtype (that of ``x``, else ``dtype``, else their
        own); integer or boolean weights are cast to it. ``None`` means all ones.
    num_nodes : int, optional
        Must equal ``x.shape[0]`` when ``x`` is given. Inferred from ``x``, else as
        ``max(edge_index) + 1``.
    x : Tensor, shape (N, ...), optional
        Node features: fix the node count, dtype and device.
    dtype : torch.dtype, optional
        Working dtype when there are no features.
    validate : bool
        Run the value checks (indices in range, weights finite and non-negative).
    symmetric : bool
        With ``validate``, also require an undirected graph (unless ``symmetrize``).
    symmetrize : bool
        Replace the adjacency by :math:`(A + A^T)/2` by appending the reversed edges with half
        the weights.

    Raises
    ------
    GraphError, DTypeError, DeviceError, ShapeError
    """
    edge_index, edge_weight, num_nodes, _ = _unpack(edge_index, edge_weight, num_nodes)
    if x is not None:
        check_features(x)
    edge_index = _check_edge_index(edge_index)
    target = _weight_dtype(edge_weight if isinstance(edge_weight, Tensor) else None, x, dtype)
    _check_devices(edge_index=edge_index, edge_weight=edge_weight, x=x)
    edge_weight = _check_weight(edge_weight, edge_index.shape[1], target, edge_index)
    n = _resolve_num_nodes(num_nodes, x, edge_index)
    if validate:
        _check_values(edge_index, edge_weight, n)
    if symmetrize:
        edge_index = torch.cat([edge_index, edge_index.flip(0)], dim=1)
        half = 0.5 * edge_weight
        edge_weight = torch.cat([half, half])
    elif symmetric and validate:
        _check_symmetric(edge_index, edge_weight, n)
    return Graph(edge_index, edge_weight, n)
