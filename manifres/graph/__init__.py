"""Graph Laplacians, spectral certificates, residual diffusion layers and opinion dynamics.

Public API
----------
* :func:`laplacian`, :func:`laplacian_parts`: validated sparse Laplacians (``None``, ``"sym"``,
  ``"rw"``), with the conventions of :mod:`manifres.graph.laplacian`.
* :func:`lambda_max`, :func:`lambda_2` (:func:`fiedler_value`), :func:`max_stable_step`,
  :func:`consensus_rate`, :func:`laplacian_spectrum`, :func:`stability_certificate`,
  :func:`dirichlet_energy`: spectral tools that never build dense ``N x N`` matrices on large
  graphs, with bounds that hold (a certificate is never wrong; it says when it cannot decide).
* :class:`LaplacianResidual`: the residual layer ``x - h L x`` (a torch-geometric
  ``MessagePassing``), optionally certified stable, with a cached operator; ``layer.bind(graph)``
  (:class:`BoundLaplacianResidual`) implements the residual-step protocol.
* :class:`DeGroot`, :class:`FriedkinJohnsen`, :class:`HegselmannKrause`,
  :class:`ManifoldDiffusion`: opinion dynamics with ``forward`` (one step) and ``simulate``.
* :func:`named_graph`, :func:`read_edge_list` (:mod:`manifres.graph.datasets`): small graphs
  as :class:`Graph` tuples.

Every function that takes a graph also accepts a torch-geometric ``Data`` object in place of
``edge_index`` (its ``edge_index``, ``edge_weight`` or 1-D / ``(E, 1)`` ``edge_attr``, and its
node count).

Validation: shapes, dtypes, devices and node counts are always checked (metadata only). Values
(indices in range, weights finite and non-negative, symmetry where needed) are checked by
default (``validate=True``): at every call of the one-shot functions, once per graph by the
layer (a graph is recognised by the identity and version counters of its tensors) and once per
graph by the opinion models (again when their graph buffers change). Every failure is a named
error of :mod:`manifres.errors` that names the offending edge or node. ``validate=False`` skips
the value checks (no host-device synchronisation).

torch-geometric (2-3 s to import) is loaded only with the layers of
:mod:`manifres.graph.diffusion`, on first use of one of their names.

Examples
--------
>>> import torch, manifres.graph as G
>>> ring = torch.tensor([[0, 1, 2, 1, 2, 0], [1, 2, 0, 0, 1, 2]])
>>> G.max_stable_step(ring)
tensor(0.6667)
"""

from __future__ import annotations

import importlib
from typing import Any

from . import datasets as _datasets
from . import laplacian as _laplacian
from . import opinion as _opinion
from . import spectral as _spectral
from .datasets import *  # noqa: F403
from .laplacian import *  # noqa: F403
from .opinion import *  # noqa: F403
from .spectral import *  # noqa: F403

#: The names of :mod:`manifres.graph.diffusion` (checked against its ``__all__`` by the tests).
_DIFFUSION = ("LaplacianResidual", "BoundLaplacianResidual", "ManifoldDiffusion")


def __getattr__(name: str) -> Any:
    if name in _DIFFUSION:
        return getattr(importlib.import_module(".diffusion", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_DIFFUSION))


__all__ = [
    *_laplacian.__all__,
    *_spectral.__all__,
    *_DIFFUSION,
    *_opinion.__all__,
    *_datasets.__all__,
]
