"""Test graphs with closed-form Laplacian spectra, and dense float64 reference Laplacians.

The graphs themselves are the package's (:func:`manifres.graph.named_graph`); the references
(spectra in closed form, Laplacians straight from the definitions in NumPy) are independent.
"""

from __future__ import annotations

import numpy as np
import torch

from manifres.graph import named_graph


def undirected(pairs):
    """``edge_index`` (2, 2E) listing both directions of each pair."""
    e = torch.tensor(pairs, dtype=torch.long).reshape(-1, 2).t()
    return torch.cat([e, e.flip(0)], dim=1)


def path(n):
    return named_graph("path", n).edge_index


def cycle(n):
    return named_graph("cycle", n).edge_index


def complete(n):
    return named_graph("complete", n).edge_index


def star(n):
    """Centre 0 and ``n - 1`` leaves."""
    return named_graph("star", n).edge_index


def spectrum(name, n, normalization):
    """Exact ascending Laplacian spectrum (float64 numpy) of a classic graph."""
    k = np.arange(n)
    sym = normalization in ("sym", "rw")
    if name == "path":
        ev = 1 - np.cos(np.pi * k / (n - 1)) if sym else 2 - 2 * np.cos(np.pi * k / n)
    elif name == "cycle":
        ev = 1 - np.cos(2 * np.pi * k / n) if sym else 2 - 2 * np.cos(2 * np.pi * k / n)
    elif name == "complete":
        ev = np.r_[0.0, np.full(n - 1, n / (n - 1) if sym else float(n))]
    elif name == "star":
        ev = np.r_[0.0, np.ones(n - 2), 2.0 if sym else float(n)]
    else:
        raise KeyError(name)
    return np.sort(ev)


GRAPHS = {"path": path, "cycle": cycle, "complete": complete, "star": star}


def dense_laplacian(edge_index, weight, n, normalization=None):
    """Reference Laplacian in float64 numpy, straight from the definitions.

    Self-loops removed, duplicates summed, isolated nodes: L_ii = 0.
    """
    ei = edge_index.cpu().numpy()
    w = np.ones(ei.shape[1]) if weight is None else weight.detach().cpu().double().numpy()
    A = np.zeros((n, n))
    off = ei[0] != ei[1]
    np.add.at(A, (ei[0][off], ei[1][off]), w[off])
    d = A.sum(1)
    if normalization is None:
        return np.diag(d) - A
    iso = d == 0
    dsafe = np.where(iso, 1.0, d)
    if normalization == "sym":
        s = 1 / np.sqrt(dsafe)
        L = np.eye(n) - s[:, None] * A * s[None, :]
    else:
        L = np.eye(n) - A / dsafe[:, None]
    L[iso, iso] = 0.0
    return L


def random_graph(n, m, seed=0, weighted=True, dtype=torch.float64):
    """Random undirected graph with ``m`` pairs (loops and duplicates possible)."""
    g = torch.Generator().manual_seed(seed)
    r = torch.randint(0, n, (m,), generator=g)
    c = torch.randint(0, n, (m,), generator=g)
    ei = torch.cat([torch.stack([r, c]), torch.stack([c, r])], dim=1)
    if not weighted:
        return ei, None
    w = torch.rand(m, generator=g, dtype=torch.float64) + 0.1
    return ei, torch.cat([w, w]).to(dtype)


def tol(dtype, f32, f64):
    return f32 if dtype == torch.float32 else f64
