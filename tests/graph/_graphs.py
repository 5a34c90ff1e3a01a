"""Test graphs with closed-form Laplacian spectra, and dense float64 reference Laplacians."""

from __future__ import annotations

import numpy as np
import torch


def undirected(pairs, n=None):
    """``edge_index`` (2, 2E) listing both directions of each pair."""
    e = torch.tensor(pairs, dtype=torch.long).reshape(-1, 2).t()
    return torch.cat([e, e.flip(0)], dim=1)


def path(n):
    return undirected([(i, i + 1) for i in range(n - 1)])


def cycle(n):
    return undirected([(i, (i + 1) % n) for i in range(n)])


def complete(n):
    return undirected([(i, j) for i in range(n) for j in range(i + 1, n)])


def star(n):
    """Centre 0 and ``n - 1`` leaves."""
    return undirected([(0, j) for j in range(1, n)])


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
    A = np.zeros((n, n))
    ei = edge_index.cpu().numpy()
    w = np.ones(ei.shape[1]) if weight is None else weight.detach().cpu().double().numpy()
    for (i, j), wk in zip(ei.T, w, strict=True):
        if i != j:
            A[i, j] += wk
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
