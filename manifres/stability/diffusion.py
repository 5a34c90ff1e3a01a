"""Stability of graph diffusion steps ``x <- (I - alpha L) x``, from the graph module's spectra."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .results import DiffusionStability

__all__ = ["diffusion_stability", "SPECTRUM_LIMIT", "STEP_RTOL"]

#: Largest graph for which the whole Laplacian spectrum is returned (dense eigensolver).
SPECTRUM_LIMIT = 512

#: Relative slack of the test ``alpha * lambda_max <= 2`` (as in :mod:`manifres.graph`).
STEP_RTOL = 1e-8


def diffusion_stability(
    edge_index: Tensor,
    alpha: float,
    normalization: str | None = None,
    *,
    edge_weight: Tensor | None = None,
    num_nodes: int | None = None,
    symmetrize: bool = False,
    steps: int = 0,
    seed: int = 0,
) -> DiffusionStability:
    r"""Is the diffusion step :math:`x \mapsto (I - \alpha L)x` stable on this graph, and how
    fast does it reach consensus?

    .. math:: \text{stable} \iff 0 < \alpha \le \frac{2}{\lambda_{\max}}, \qquad
              \rho = \max\big(|1 - \alpha\lambda_2|,\ |1 - \alpha\lambda_{\max}|\big)

    (the eigenvalues :math:`1 - \alpha\lambda_i` of the step stay in :math:`[-1, 1]`; the
    disagreement shrinks like :math:`\rho^k`).

    Parameters
    ----------
    edge_index : Tensor, shape (2, E), integer
        An undirected graph (both directions listed), as in :mod:`manifres.graph`.
    alpha : float
        The step size under test.
    normalization : {None, "sym", "rw"}
        Laplacian normalization (``None``: :math:`L = D - A`).
    edge_weight : Tensor, shape (E,), optional
        Non-negative weights (default: ones).
    num_nodes : int, optional
        Node count (default: ``max(edge_index) + 1``).
    symmetrize : bool
        Use :math:`(A + A^T)/2` for a directed edge list.
    steps : int
        If positive, also run ``steps`` diffusion steps from a random (seeded) start and record
        the decay :math:`\|L x_k\| / \|L x_0\|`, which :math:`\rho^k` bounds for symmetric
        Laplacians (:math:`L x_k = (I - \alpha L)^k L x_0` has no consensus component).
    seed : int
        Seed of the start of the simulation.

    Returns
    -------
    DiffusionStability
        With the whole spectrum for graphs of at most :data:`SPECTRUM_LIMIT` nodes.

    Raises
    ------
    GraphError
        Malformed or directed graph (from :mod:`manifres.graph`).
    UnknownChoiceError
        Unknown normalization.

    Notes
    -----
    Uses :func:`manifres.graph.lambda_max`, :func:`~manifres.graph.lambda_2`,
    :func:`~manifres.graph.max_stable_step` and :func:`~manifres.graph.consensus_rate`
    (float64; dense eigensolver up to 512 nodes, Lanczos above), imported on first use.
    ``stable`` allows a relative slack :data:`STEP_RTOL` on :math:`\alpha\lambda_{\max} \le 2`.
    For ``"sym"`` and ``"rw"``, :math:`\lambda_{\max} \le 2` (equality for a bipartite
    component), so every :math:`\alpha \le 1` is stable.

    Examples
    --------
    >>> import torch
    >>> ring = torch.tensor([[0, 1, 2, 3, 1, 2, 3, 0], [1, 2, 3, 0, 0, 1, 2, 3]])
    >>> ds = diffusion_stability(ring, 0.25)  # eigenvalues 0, 2, 2, 4
    >>> [round(v, 12) for v in (ds.lambda_max, ds.lambda_2, ds.max_step, ds.consensus_rate)]
    [4.0, 2.0, 0.5, 0.5]
    >>> ds.stable
    True
    """
    from .. import graph

    if edge_weight is None and isinstance(edge_index, Tensor) and edge_index.dim() == 2:
        edge_weight = torch.ones(edge_index.shape[-1], dtype=torch.float64, device=edge_index.device)
    opts = dict(
        edge_weight=edge_weight, num_nodes=num_nodes, normalization=normalization, symmetrize=symmetrize
    )
    a = float(alpha)
    lam_max = float(graph.lambda_max(edge_index, **opts))
    n = int(num_nodes) if num_nodes is not None else int(edge_index.max()) + 1 if edge_index.numel() else 0
    lam_2 = float(graph.lambda_2(edge_index, **opts)) if n >= 2 else math.nan
    max_step = float(graph.max_stable_step(edge_index, **opts))
    rate = float(graph.consensus_rate(a, edge_index, **opts)) if n >= 2 else math.nan
    stable = a > 0 and a * lam_max <= 2.0 * (1.0 + STEP_RTOL)
    spectrum = None
    if n <= SPECTRUM_LIMIT:
        spectrum = graph.laplacian_spectrum(edge_index, **opts).detach().double().cpu()
    decay = None
    if steps > 0:
        lap = graph.laplacian(edge_index, **opts).to(torch.float64)
        gen = torch.Generator().manual_seed(seed)
        x = torch.randn(n, 1, dtype=torch.float64, generator=gen).to(lap.device)
        r0 = torch.linalg.vector_norm(lap @ x)
        norms = []
        for _ in range(steps + 1):
            lx = lap @ x
            norms.append(torch.linalg.vector_norm(lx) / torch.where(r0 > 0, r0, 1.0))
            x = x - a * lx
        decay = torch.stack(norms).cpu()
    row, col = edge_index[0], edge_index[1]
    return DiffusionStability(
        num_nodes=n,
        num_edges=int((row < col).sum()),
        normalization=normalization,
        alpha=a,
        lambda_max=lam_max,
        lambda_2=lam_2,
        max_step=max_step,
        consensus_rate=rate,
        stable=bool(stable),
        eigenvalues=spectrum,
        decay=decay,
    )
