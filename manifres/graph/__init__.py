"""Graph Laplacians, spectral certificates, residual diffusion layers and opinion dynamics.

Public API
----------
* :func:`laplacian`, :func:`laplacian_parts`: validated sparse Laplacians (``None``, ``"sym"``,
  ``"rw"``), with the conventions of :mod:`manifres.graph.laplacian`.
* :func:`lambda_max`, :func:`lambda_2` (:func:`fiedler_value`), :func:`max_stable_step`,
  :func:`consensus_rate`, :func:`laplacian_spectrum`, :func:`stability_certificate`,
  :func:`dirichlet_energy`: spectral tools that never build dense ``N x N`` matrices on large
  graphs.
* :class:`LaplacianResidual`: the residual layer ``x - alpha L x`` (a torch-geometric
  ``MessagePassing``), optionally certified stable.
* :class:`DeGroot`, :class:`FriedkinJohnsen`, :class:`HegselmannKrause`,
  :class:`ManifoldDiffusion`: opinion dynamics with ``forward`` (one step) and ``simulate``.

Every function that takes a graph also accepts a torch-geometric ``Data`` object in place of
``edge_index`` (its ``edge_index``, ``edge_weight`` or 1-D ``edge_attr``, and ``num_nodes``).

Validation: shapes, dtypes, devices and node counts are always checked (metadata only). Values
(indices in range, weights finite and non-negative, symmetry where needed) are checked by
default (``validate=True``): at every call of the one-shot functions, once per graph by the
layer (a graph is recognised by the identity and version counters of its tensors) and once at
construction by the opinion models. Every failure is a named error of :mod:`manifres.errors`
that names the offending edge or node. ``validate=False`` skips the value checks (no
host-device synchronisation).

Examples
--------
>>> import torch, manifres.graph as G
>>> ring = torch.tensor([[0, 1, 2, 1, 2, 0], [1, 2, 0, 0, 1, 2]])
>>> G.max_stable_step(ring)
tensor(0.6667)
"""

from . import diffusion as _diffusion
from . import laplacian as _laplacian
from . import opinion as _opinion
from . import spectral as _spectral
from .diffusion import *  # noqa: F403
from .laplacian import *  # noqa: F403
from .opinion import *  # noqa: F403
from .spectral import *  # noqa: F403

__all__ = _laplacian.__all__ + _spectral.__all__ + _diffusion.__all__ + _opinion.__all__
