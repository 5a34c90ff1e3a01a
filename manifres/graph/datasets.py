"""Small graphs by name and edge-list files (the diffusion study's inputs, and test problems).

Every graph is a :class:`~manifres.graph.Graph` with a symmetric ``edge_index`` of shape
``(2, 2E)`` (each undirected edge in both directions, ``int64``: first every pair ``(i, j)``,
then every ``(j, i)``), an optional ``edge_weight`` of shape ``(2E,)``, the node count and a
name.
"""

from __future__ import annotations

import math
import os
import re

import torch
from torch import Tensor

from .._validation import check_choice, check_int
from ..errors import GraphError
from ._validate import Graph

__all__ = ["Graph", "GRAPH_NAMES", "named_graph", "read_edge_list"]

#: Names accepted by :func:`named_graph`.
GRAPH_NAMES = ("karate", "path", "cycle", "star", "complete", "grid", "bipartite")

# Zachary's karate club (1977): 34 members, 78 friendships (the graph networkx ships).
_KARATE = (
    "0-1 0-2 0-3 0-4 0-5 0-6 0-7 0-8 0-10 0-11 0-12 0-13 0-17 0-19 0-21 0-31 1-2 1-3 1-7 1-13 "
    "1-17 1-19 1-21 1-30 2-3 2-7 2-8 2-9 2-13 2-27 2-28 2-32 3-7 3-12 3-13 4-6 4-10 5-6 5-10 "
    "5-16 6-16 8-30 8-32 8-33 9-33 13-33 14-32 14-33 15-32 15-33 18-32 18-33 19-33 20-32 20-33 "
    "22-32 22-33 23-25 23-27 23-29 23-32 23-33 24-25 24-27 24-31 25-31 26-29 26-33 27-33 28-31 "
    "28-33 29-32 29-33 30-32 30-33 31-32 31-33 32-33"
)


def _undirected(pairs: Tensor, n: int, name: str, weights: Tensor | None = None) -> Graph:
    """Both directions of the ``(2, E)`` pairs, with the weights repeated."""
    pairs = pairs.reshape(2, -1).long()
    edge_index = torch.cat([pairs, pairs.flip(0)], dim=1)
    w = None if weights is None else torch.cat([weights, weights])
    return Graph(edge_index, w, n, name)


def _karate() -> Tensor:
    return torch.tensor([tuple(map(int, p.split("-"))) for p in _KARATE.split()]).T


def named_graph(name: str, nodes: int = 20) -> Graph:
    r"""A classic graph by name.

    ``karate`` (Zachary's karate club, 34 nodes, unweighted; ``nodes`` is ignored), ``path``
    :math:`P_n`, ``cycle`` :math:`C_n`, ``star`` :math:`K_{1,n-1}` (centre 0), ``complete``
    :math:`K_n`, ``grid`` (a :math:`k \times k` grid, :math:`k = \lfloor\sqrt{n}\rfloor`),
    ``bipartite`` (:math:`K_{\lfloor n/2\rfloor, \lceil n/2\rceil}`), with ``n = nodes``.

    Parameters
    ----------
    name : str
        One of :data:`GRAPH_NAMES`.
    nodes : int
        Number of nodes ``n`` (at least 2; at least 3 for a cycle, 4 for a grid).

    Returns
    -------
    Graph

    Raises
    ------
    UnknownChoiceError
        For an unknown name.
    GraphError
        For too few nodes.
    ParameterError
        If ``nodes`` is not an integer.

    Examples
    --------
    >>> g = named_graph("cycle", 4)
    >>> g.edge_index.shape, g.num_nodes
    (torch.Size([2, 8]), 4)
    """
    check_choice(name, GRAPH_NAMES, "graph", "named_graph")
    if name == "karate":
        return _undirected(_karate(), 34, name)
    n = check_int(nodes, "nodes", "named_graph")
    least = {"cycle": 3, "grid": 4}.get(name, 2)
    if n < least:
        raise GraphError(f"a {name} graph needs at least {least} nodes, got {n}")
    a = torch.arange(n)
    if name == "path":
        pairs = torch.stack([a[:-1], a[1:]])
    elif name == "cycle":
        pairs = torch.stack([a, torch.roll(a, -1)])
    elif name == "star":
        pairs = torch.stack([torch.zeros(n - 1, dtype=torch.long), a[1:]])
    elif name == "complete":
        pairs = torch.triu_indices(n, n, offset=1)
    elif name == "grid":
        k = math.isqrt(n)
        n = k * k
        idx = torch.arange(n).reshape(k, k)
        horizontal = torch.stack([idx[:, :-1].reshape(-1), idx[:, 1:].reshape(-1)])
        vertical = torch.stack([idx[:-1, :].reshape(-1), idx[1:, :].reshape(-1)])
        pairs = torch.cat([horizontal, vertical], dim=1)
    else:  # bipartite
        h = n // 2
        left, right = torch.meshgrid(a[:h], a[h:], indexing="ij")
        pairs = torch.stack([left.reshape(-1), right.reshape(-1)])
    return _undirected(pairs, n, f"{name}{n}")


_SPLIT = re.compile(r"[\s,;]+")


def read_edge_list(path: str | os.PathLike[str], num_nodes: int | None = None) -> Graph:
    """Read an undirected graph from a text file of edges.

    One edge per line: two non-negative integer node ids and an optional non-negative weight,
    separated by spaces, tabs or commas; ``#`` starts a comment; blank lines are skipped. Every
    line has the same number of columns. An edge listed in both directions counts once (with
    equal weights).

    Parameters
    ----------
    path : path-like
    num_nodes : int, optional
        Node count (default: the largest id + 1); use it to include trailing isolated nodes.

    Returns
    -------
    Graph

    Raises
    ------
    GraphError
        A malformed line (with its number), a negative id or weight, an edge listed twice with
        different weights, a ``num_nodes`` too small, or a file without edges.
    OSError
        If the file cannot be read.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = pathlib.Path(d) / "g.txt"
    ...     _ = p.write_text("# a triangle\\n0 1\\n1 2\\n2 0\\n")
    ...     read_edge_list(p).num_nodes
    3
    """
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    seen: dict[tuple[int, int], tuple[float, int]] = {}
    ncols = None
    for lineno, raw in enumerate(lines, start=1):
        text = raw.split("#", 1)[0].strip()
        if not text:
            continue
        cols = [c for c in _SPLIT.split(text) if c]
        where = f"{os.fspath(path)}, line {lineno}"
        if len(cols) not in (2, 3):
            raise GraphError(f"{where}: expected 'i j' or 'i j weight', got {raw.strip()!r}")
        if ncols is None:
            ncols = len(cols)
        elif len(cols) != ncols:
            raise GraphError(f"{where}: {len(cols)} columns, but earlier lines have {ncols}")
        try:
            i, j = int(cols[0]), int(cols[1])
        except ValueError:
            raise GraphError(f"{where}: node ids must be integers, got {raw.strip()!r}") from None
        try:
            w = float(cols[2]) if len(cols) == 3 else 1.0
        except ValueError:
            raise GraphError(f"{where}: the weight must be a number, got {cols[2]!r}") from None
        if i < 0 or j < 0:
            raise GraphError(f"{where}: negative node id")
        if not math.isfinite(w) or w < 0:
            raise GraphError(f"{where}: the weight must be finite and non-negative, got {w}")
        key = (min(i, j), max(i, j))
        if key in seen and seen[key][0] != w:
            raise GraphError(
                f"{where}: edge {key} listed again with weight {w} (line {seen[key][1]}: {seen[key][0]})"
            )
        seen.setdefault(key, (w, lineno))
    if not seen:
        raise GraphError(f"{os.fspath(path)}: no edges found")
    n = 1 + max(max(k) for k in seen)
    if num_nodes is not None:
        if num_nodes < n:
            raise GraphError(f"num_nodes = {num_nodes}, but the file uses node id {n - 1}")
        n = int(num_nodes)
    pairs = torch.tensor(list(seen), dtype=torch.long).T
    weights = torch.tensor([w for w, _ in seen.values()], dtype=torch.float64) if ncols == 3 else None
    return _undirected(pairs, n, os.path.basename(os.fspath(path)), weights)
