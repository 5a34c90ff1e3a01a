"""Stability of graph diffusion steps ``x <- (I - h L) x``, from the graph module's spectra.

The computation is :func:`manifres.graph.stability_certificate`'s (one resolved graph, one
spectrum, one stability test); this module adds the whole spectrum of small graphs and a
simulated run, as a :class:`~manifres.stability.results.DiffusionStability` record.
:data:`STEP_RTOL` and :data:`SPECTRUM_LIMIT` are :data:`manifres.graph.STEP_RTOL` and
:data:`manifres.graph.DENSE_MAX` (read on first use: :mod:`manifres.graph` is imported lazily).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from .._deprecation import UNSET, renamed_kwargs
from .._validation import check_int, check_real
from .results import DiffusionStability

__all__ = ["diffusion_stability"]


def __getattr__(name: str) -> Any:
    if name in ("STEP_RTOL", "SPECTRUM_LIMIT"):
        from ..graph import spectral

        return spectral.STEP_RTOL if name == "STEP_RTOL" else spectral.DENSE_MAX
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def diffusion_stability(
    edge_index: Tensor,
    step: float = UNSET,
    normalization: str | None = None,
    *,
    edge_weight: Tensor | None = None,
    num_nodes: int | None = None,
    symmetrize: bool = False,
    simulate: int = 0,
    seed: int = 0,
    **deprecated: object,
) -> DiffusionStability:
    r"""Is the diffusion step :math:`x \mapsto (I - h L)x` stable on this graph, and how fast
    does it reach consensus?

    .. math:: \text{stable} \iff 0 < h \le \frac{2}{\lambda_{\max}}, \qquad
              \rho = \max\big(|1 - h\lambda_2|,\ |1 - h\lambda_{\max}|\big)

    (the eigenvalues :math:`1 - h\lambda_i` of the step stay in :math:`[-1, 1]`; the
    disagreement shrinks like :math:`\rho^k`).

    Parameters
    ----------
    edge_index : Tensor, shape (2, E), integer
        An undirected graph (both directions listed), as in :mod:`manifres.graph`.
    step : float
        The step :math:`h` under test (deprecated keyword: ``alpha``).
    normalization : {None, "sym", "rw"}
        Laplacian normalization (``None``: :math:`L = D - A`).
    edge_weight : Tensor, shape (E,), optional
        Non-negative weights (default: ones).
    num_nodes : int, optional
        Node count (default: ``max(edge_index) + 1``).
    symmetrize : bool
        Use :math:`(A + A^T)/2` for a directed edge list.
    simulate : int
        If positive, also run that many diffusion steps from a random (seeded) start and record
        the decay :math:`\|L x_k\| / \|L x_0\|`, which :math:`\rho^k` bounds for symmetric
        Laplacians (:math:`L x_k = (I - h L)^k L x_0` has no consensus component). (Deprecated
        keyword: ``steps``.)
    seed : int
        Seed of the start of the simulation.

    Returns
    -------
    DiffusionStability
        With the whole spectrum for graphs of at most :data:`SPECTRUM_LIMIT` nodes. ``stable``
        is the certificate's verdict: ``True`` or ``False`` when proven, ``None`` when the
        bounds cannot decide (large graphs whose Lanczos iteration does not converge; see
        :class:`manifres.graph.DiffusionCertificate`).

    Raises
    ------
    GraphError
        Malformed or directed graph (from :mod:`manifres.graph`).
    UnknownChoiceError
        Unknown normalization.

    Notes
    -----
    One call of :func:`manifres.graph.stability_certificate`'s implementation (float64;
    dense eigensolver up to :data:`SPECTRUM_LIMIT` nodes, Lanczos above): the graph is
    resolved and validated once and its spectrum computed once. ``stable`` allows a relative
    slack :data:`STEP_RTOL` on :math:`h\lambda_{\max} \le 2`.
    For ``"sym"`` and ``"rw"``, :math:`\lambda_{\max} \le 2` (equality for a bipartite
    component), so every :math:`h \le 1` is stable.

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
    from ..graph._sparse import sparse_operator
    from ..graph.laplacian import _normalize
    from ..graph.spectral import DENSE_MAX, _certify, _spectrum

    if deprecated:
        new = renamed_kwargs(
            "diffusion_stability", deprecated, {"alpha": ("step", step), "steps": ("simulate", UNSET)}
        )
        step, simulate = new.get("step", step), new.get("simulate", simulate)
    if step is UNSET:
        raise TypeError("diffusion_stability() missing the step under test (second argument)")
    a = check_real(step, "step", "diffusion_stability")
    steps = check_int(simulate, "simulate", "diffusion_stability", minimum=0)
    s = _spectrum(edge_index, edge_weight, num_nodes, normalization, symmetrize=symmetrize)
    n = s.n
    cert = _certify(a, s, fiedler=n >= 2)
    spectrum = s.spectrum().cpu() if n <= DENSE_MAX else None
    decay = None
    if steps > 0:
        g = s.graph
        p = _normalize(g.edge_index, s.w64, n, normalization)
        lap = sparse_operator(p.edge_index, -p.weight, p.diag, n)
        gen = torch.Generator().manual_seed(seed)
        x = torch.randn(n, dtype=torch.float64, generator=gen).to(lap.device)
        r0 = torch.linalg.vector_norm(lap @ x)
        norms = []
        for _ in range(steps + 1):
            lx = lap @ x
            norms.append(torch.linalg.vector_norm(lx) / torch.where(r0 > 0, r0, 1.0))
            x = x - cert.step * lx
        decay = torch.stack(norms).cpu()
    row, col = s.graph.edge_index
    return DiffusionStability(
        num_nodes=n,
        num_edges=int((row < col).sum()),
        normalization=normalization,
        step=cert.step,
        lambda_max=cert.lambda_max,
        lambda_2=math.nan if cert.lambda_2 is None else cert.lambda_2,
        max_step=cert.max_step,
        consensus_rate=math.nan if cert.rate is None else cert.rate,
        stable=cert.stable,
        eigenvalues=spectrum,
        decay=decay,
    )
