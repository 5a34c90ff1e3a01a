r"""Residual diffusion layers: :class:`LaplacianResidual` (``x - h L x``), its graph-bound form
:class:`BoundLaplacianResidual`, and :class:`ManifoldDiffusion` (manifold-valued opinions).

Operators are cached per graph (:mod:`manifres.graph._cache`): a graph is recognised by the
identity and version counters of its tensors together with the node count, dtype and device
of the features, so a changed, edited, reloaded or different graph is never served from a
stale operator, and caches are dropped by ``copy.deepcopy``, pickling, ``.to()`` and
``load_state_dict``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from .._deprecation import UNSET, deprecated_alias, renamed_kwargs
from .._validation import check_real
from ..errors import GraphError, ParameterError, ShapeError, StabilityError
from ..manifolds.base import Manifold, check_manifold
from ..nn.protocol import resolve_step
from ._cache import OperatorCache
from ._pyg import is_data, message_passing
from ._sparse import RowPattern, diffusion_operator, pattern_matmul, sparse_operator, spmm
from ._validate import Graph, _check_symmetric, _unpack, check_features, resolve_graph
from .laplacian import LaplacianParts, _check_normalization, _indicator, _normalize
from .opinion import OpinionDynamics, _flat, _step_kwargs
from .spectral import _require_stable_step, _Spectrum

if TYPE_CHECKING:  # annotations only (torch-geometric loads in graph.diffusion alone)
    from torch_geometric.data import Data

__all__ = ["LaplacianResidual", "BoundLaplacianResidual", "ManifoldDiffusion"]


class _Entry:
    """What a layer knows about one graph: the resolved graph, how often it was seen, and the
    operators and certificates derived from it (built when needed)."""

    __slots__ = (
        "graph", "sightings", "parts", "operator", "laplacian", "inv_dmax", "certified", "spectrum",
        "symmetric",
    )

    def __init__(self, graph: Graph, symmetric: bool) -> None:
        self.graph = graph
        self.sightings = 1
        self.parts: LaplacianParts | None = None
        self.operator: tuple[float, Tensor] | None = None  # (h, CSR of I - hL)
        self.laplacian: Tensor | None = None  # CSR of L, for tensor steps
        self.inv_dmax: Tensor | None = None
        self.certified: float | None = None
        self.spectrum: _Spectrum | None = None
        self.symmetric = symmetric


class LaplacianResidual(message_passing()):
    r"""Residual graph layer :math:`X \leftarrow X - h L X`: one step of opinion diffusion.

    .. math::

        x_i \leftarrow x_i - h \Big(\ell_i x_i - \sum_j (A_n)_{ij} x_j\Big), \qquad
        \frac{\partial \mathcal L}{\partial h} = \Big\langle \frac{\partial \mathcal L}{\partial y},
        -L x \Big\rangle

    Every node keeps its opinion (the identity path) and moves towards its neighbours' (the
    residual, through the Laplacian :math:`L = \operatorname{diag}(\ell) - A_n` of
    :func:`manifres.graph.laplacian`, whose conventions apply: isolated nodes keep their
    features exactly, self-loops are removed, duplicate edges summed).

    Parameters
    ----------
    step : float or nn.Parameter
        The step :math:`h` (deprecated alias: ``alpha``). With ``learn_step=True`` and
        ``certify=True`` it is the initial value of :math:`\sigma(\theta)` and must lie in
        ``(0, 1)`` (see Notes). A 0-dim ``nn.Parameter`` is used as given (a learnable,
        uncertified step).
    normalization : {"sym", "rw", None}
        Laplacian normalisation.
    learn_step : bool
        Make the step a learnable parameter ``theta`` (deprecated alias: ``learn_alpha``).
    certify : bool
        Guarantee a non-expansive step, :math:`0 < h \le 2/\lambda_{\max}(L)` (see Notes).
    cached : bool
        Reuse the sparse operator :math:`I - hL` of a graph seen before (the default): the step
        is then one CSR product (a tensor step, learnable or given to :meth:`forward_with_step`,
        uses the cached :math:`L`: :math:`x - h(Lx)`). The first call on a graph uses message
        passing (no sort); the operator is built on the second call with the same graph. With
        weights that require a gradient, the normalisation is recomputed at every call and the
        product runs on the graph's cached CSR pattern (differentiable in the weights).
        ``cached=False`` recomputes everything at every call.
    validate : bool
        Value checks of each new graph (indices in range; weights finite and non-negative;
        undirected for ``"sym"`` and for a certificate that needs a spectrum). A graph is
        recognised by the identity and version counters of its tensors, so a loop that passes
        the same ``edge_index`` pays once; new weight tensors at every call are checked at
        every call (one host-device sync): pass ``validate=False`` there.

    Attributes
    ----------
    step : float or Tensor
        :math:`h` (read and write): a float, the Parameter ``theta`` (learnable), or
        :math:`\sigma(\theta)` (certified learnable; for the combinatorial Laplacian the
        fraction of :math:`1/\max_i d_i`, which depends on the graph: see :meth:`bind`).

    Shapes:
        - **x:** ``(N, *F)``, float32 or float64; ``N`` is the node count (a trailing
          isolated node is never dropped)
        - **edge_index:** ``(2, E)`` integer (or a ``Data`` object); **edge_weight:** ``(E,)``
        - **output:** ``(N, *F)``

    Raises
    ------
    StabilityError
        ``certify=True`` and the step is not proven stable on the graph (outside the stable
        range, not positive, or undecided by :func:`~manifres.graph.stability_certificate`).
    GraphError, DTypeError, DeviceError
        Bad graph input (see :func:`manifres.graph.laplacian`).
    ParameterError
        A non-finite step, or a tensor step that requires a gradient but is not a Parameter.

    Notes
    -----
    * **Certified fixed step**: for ``"sym"`` and ``"rw"``, :math:`\lambda_{\max} \le 2` on
      every graph, so :math:`0 < h \le 1` is certified without computing anything (for
      ``"rw"`` also on directed graphs, in the max-norm). Otherwise the certificate of
      :func:`~manifres.graph.stability_certificate` is computed once per graph and step
      value (cheap bounds first), and the step is refused unless it is proven stable.
    * **Certified learnable step**: :math:`h = \rho\,\sigma(\theta)` with
      :math:`\sigma(\theta_0)` = ``step``, where :math:`\rho = 1` for ``"sym"`` and ``"rw"``
      and :math:`\rho = 1 / \max_i d_i` for the combinatorial Laplacian (Gershgorin:
      :math:`\lambda_{\max} \le 2\max_i d_i`). The step is then stable on every graph, with no
      eigensolver and no synchronisation.
    * Without ``certify`` a learnable step is the raw parameter, initialised to ``step``.
    * The first call on a graph, and every call with ``cached=False``, computes
      :math:`A_n x` by torch-geometric message passing (``propagate``: messages
      :math:`(A_n)_{ij} x_j` gathered from ``edge_index[1]`` and summed at ``edge_index[0]``,
      i.e. ``flow="target_to_source"``, the matrix convention of
      :func:`~manifres.graph.laplacian`); later calls use the cached CSR operator, which
      bypasses ``propagate`` (and its hooks).
    * :meth:`bind` returns the layer bound to one graph (:class:`BoundLaplacianResidual`),
      which implements the residual-step protocol (:mod:`manifres.nn.protocol`).

    Examples
    --------
    >>> import torch
    >>> layer = LaplacianResidual(0.5, normalization=None)
    >>> ei = torch.tensor([[0, 1], [1, 0]])
    >>> layer(torch.tensor([[1.0], [3.0]]), ei)
    tensor([[2.],
            [2.]])
    >>> layer
    LaplacianResidual(step=0.5, normalization=None, learn_step=False, certify=False)
    """

    def __init__(
        self,
        step: float | Tensor = UNSET,
        normalization: str | None = "sym",
        learn_step: bool = UNSET,
        certify: bool = False,
        *,
        cached: bool = True,
        validate: bool = True,
        **deprecated: Any,
    ) -> None:
        super().__init__(aggr="add", flow="target_to_source")
        owner = "LaplacianResidual"
        renames = {"alpha": ("step", step), "learn_alpha": ("learn_step", learn_step)}
        new = renamed_kwargs(owner, deprecated, renames)
        step = new.get("step", step)
        learn_step = bool(new.get("learn_step", False if learn_step is UNSET else learn_step))
        if step is UNSET:
            raise TypeError(f"{owner}() missing the step (first argument)")
        _check_normalization(normalization)
        self.normalization = normalization
        self.certify = bool(certify)
        self.cached = bool(cached)
        self.validate = bool(validate)
        value = resolve_step(step, owner, scalar=True)
        if isinstance(value, nn.Parameter):
            if self.certify:
                raise ParameterError(
                    f"{owner}: a Parameter step cannot be certified (the certified learnable step "
                    "is sigmoid(theta)); pass a number with learn_step=True"
                )
            self._step0 = float(value.detach())
            self.theta = value
            self.learn_step = True
        else:
            h = float(value)
            if self.certify and not h > 0:
                raise StabilityError(f"certify=True needs a positive step, got step = {h}")
            if self.certify and learn_step and not 0.0 < h < 1.0:
                raise StabilityError(
                    "with learn_step=True and certify=True, step is the initial sigmoid(theta) "
                    f"and must lie in (0, 1); got {h}"
                )
            self._step0 = h
            self._step = h
            self.learn_step = learn_step
            if learn_step:
                self.theta = nn.Parameter(torch.empty((), dtype=torch.float64))
            else:
                self.register_parameter("theta", None)
        self._cache = OperatorCache()
        self.reset_parameters()

    alpha = deprecated_alias("step", "alpha")
    learn_alpha = deprecated_alias("learn_step", "learn_alpha")

    def reset_parameters(self) -> None:
        """Reset the step to its initial value and forget cached graphs."""
        super().reset_parameters()
        if self.theta is not None:
            h = self._step0
            init = math.log(h / (1.0 - h)) if self.certify else h
            with torch.no_grad():
                self.theta.fill_(init)
        else:
            self._step = self._step0
        self._cache.clear()

    @property
    def step(self) -> float | Tensor:
        """The step: a float, or for a learnable step a 0-dim tensor (for a certified
        combinatorial step, the fraction :math:`\\sigma(\\theta)` of ``1 / max_i d_i``)."""
        if self.theta is None:
            return self._step
        return torch.sigmoid(self.theta) if self.certify else self.theta

    @step.setter
    def step(self, value: float | Tensor) -> None:
        h = check_real(value, "step", type(self).__name__)
        if self.theta is None:
            if self.certify and not h > 0:
                raise StabilityError(f"certify=True needs a positive step, got step = {h}")
            self._step = h
            return
        if self.certify:
            if not 0.0 < h < 1.0:
                raise StabilityError(f"a certified learnable step sigmoid(theta) lies in (0, 1); got {h}")
            h = math.log(h / (1.0 - h))
        with torch.no_grad():
            self.theta.fill_(h)

    def __repr__(self) -> str:
        h = self._step0 if self.theta is not None else self._step
        return (
            f"{type(self).__name__}(step={h}, normalization={self.normalization!r}, "
            f"learn_step={self.learn_step}, certify={self.certify})"
        )

    def _apply(self, fn, recurse=True):
        self._cache.clear()
        return super()._apply(fn, recurse)

    def _load_from_state_dict(self, *args, **kwargs) -> None:
        self._cache.clear()
        super()._load_from_state_dict(*args, **kwargs)

    # ------------------------------------------------------------------ public calls
    def forward(
        self, x: Tensor, edge_index: Tensor | Data, edge_weight: Tensor | None = None
    ) -> Tensor:
        """One diffusion step ``x - h L x``; see the class docstring.

        ``edge_index`` may also be a torch-geometric ``Data``/``Batch`` object: its
        ``edge_index`` and weight (``edge_weight``, or a 1-D or ``(E, 1)`` ``edge_attr``) are
        used; a node count it declares must equal ``x.shape[0]``.
        """
        return self._diffuse(x, edge_index, edge_weight, self._cache, None)

    def forward_with_step(
        self,
        x: Tensor,
        edge_index: Tensor | Data,
        edge_weight: Tensor | None = None,
        *,
        step: float | Tensor,
    ) -> Tensor:
        """``x - step * L x`` with the step given explicitly (differentiable in ``step``,
        ``x`` and, as :meth:`forward`, the weights). No certificate is checked: the stability
        studies sweep unstable steps on purpose."""
        return self._diffuse(x, edge_index, edge_weight, self._cache, step)

    def bind(
        self,
        edge_index: Tensor | Data,
        edge_weight: Tensor | None = None,
        num_nodes: int | None = None,
    ) -> BoundLaplacianResidual:
        """This layer bound to one graph: a module of the node features alone.

        See :class:`BoundLaplacianResidual` (it shares this layer's parameters).

        Examples
        --------
        >>> import torch
        >>> ring = torch.tensor([[0, 1, 2, 1, 2, 0], [1, 2, 0, 0, 1, 2]])
        >>> bound = LaplacianResidual(0.5).bind(ring)
        >>> bound(torch.tensor([[3.0], [0.0], [0.0]])).squeeze(-1)
        tensor([1.5000, 0.7500, 0.7500])
        """
        return BoundLaplacianResidual(self, edge_index, edge_weight, num_nodes)

    def message(self, x_j: Tensor, edge_weight: Tensor) -> Tensor:
        return edge_weight.unsqueeze(-1) * x_j

    # ------------------------------------------------------------------ machinery
    def _diffuse(
        self,
        x: Tensor,
        edge_index: Tensor | Data,
        edge_weight: Tensor | None,
        cache: OperatorCache,
        step: float | Tensor | None,
    ) -> Tensor:
        check_features(x)
        if is_data(edge_index):
            edge_index, edge_weight, _, declared = _unpack(edge_index, edge_weight, None)
            if declared is not None and declared != x.shape[0]:
                raise GraphError(
                    f"{type(self).__name__}: the Data object declares {declared} nodes but x has "
                    f"{x.shape[0]} rows (one per node); they must agree"
                )
        grad_w = isinstance(edge_weight, Tensor) and edge_weight.requires_grad and torch.is_grad_enabled()
        tensors = (edge_index, edge_weight)
        extra = (x.shape[0], x.dtype, x.device)
        entry = cache.get("graph", tensors, extra)
        if entry is None:
            g = resolve_graph(
                edge_index, edge_weight, x=x, validate=self.validate,
                symmetric=self.normalization == "sym",
            )
            entry = _Entry(g, symmetric=self.normalization == "sym" or not self.validate)
            # weights computed at every call (a non-leaf tensor) are never seen again: keeping
            # them would only keep their autograd graph alive until the next call
            if not (grad_w and edge_weight.grad_fn is not None):
                cache.put("graph", tensors, extra, entry)
        else:
            entry.sightings += 1
        h = self._current_step(entry) if step is None else _given_step(step)
        xf = _flat(x)
        if xf.numel() == 0:
            return x.clone()
        if grad_w:
            out = self._differentiable(xf, entry, h, cache)
        elif self.cached and entry.sightings >= 2:
            out = self._cached_step(xf, entry, h)
        else:
            out = self._propagate(xf, entry.graph, h)
        return out.reshape(x.shape)

    def _current_step(self, entry: _Entry) -> float | Tensor:
        """The layer's step on this graph, certified when asked (once per graph and value)."""
        if self.theta is None:
            h = self._step
            if self.certify and entry.certified != h:
                self._certify_fixed(h, entry)
                entry.certified = h
            return h
        if not self.certify:
            return self.theta
        frac = torch.sigmoid(self.theta)
        if self.normalization is not None:
            return frac
        return frac * self._inv_dmax(entry)

    def _certify_fixed(self, h: float, entry: _Entry) -> None:
        if not h > 0:
            raise StabilityError(f"{self!r}: certify=True needs a positive step, got step = {h}")
        if self.normalization is not None and h <= 1.0:
            return  # lambda_max <= 2 on every graph (rw: also directed, in the max-norm)
        if entry.spectrum is None:
            g = entry.graph
            if not entry.symmetric:
                _check_symmetric(g.edge_index, g.edge_weight, g.num_nodes)
                entry.symmetric = True
            entry.spectrum = _Spectrum(g, self.normalization)
        _require_stable_step(h, entry.spectrum, repr(self))

    def _parts(self, entry: _Entry) -> LaplacianParts:
        if entry.parts is None:
            g = entry.graph
            with torch.no_grad(), torch.inference_mode(False):
                entry.parts = _normalize(g.edge_index, g.edge_weight, g.num_nodes, self.normalization)
        return entry.parts

    def _inv_dmax(self, entry: _Entry) -> Tensor:
        """:math:`1 / \\max_i d_i` (1 without edges): the certified combinatorial scale."""
        if entry.inv_dmax is None:
            d = self._parts(entry).degree
            dmax = d.max() if d.numel() else d.new_ones(())
            entry.inv_dmax = torch.where(dmax > 0, 1.0 / dmax, torch.ones_like(dmax))
        return entry.inv_dmax

    def _cached_step(self, xf: Tensor, entry: _Entry, h: float | Tensor) -> Tensor:
        r"""One sparse product with a cached operator: :math:`(I - hL)x` for a number ``h``
        (the step is part of the operator, rebuilt when it changes), :math:`x - h(Lx)` for a
        tensor ``h`` (differentiable in it). Both keep :math:`hL` apart from :math:`I`, so a
        step that compensates tiny weights loses no digits (``lerp(x, (I - L)x, h)`` would)."""
        p = self._parts(entry)
        if isinstance(h, Tensor):
            if entry.laplacian is None:
                with torch.no_grad(), torch.inference_mode(False):
                    entry.laplacian = sparse_operator(p.edge_index, -p.weight, p.diag, p.num_nodes)
            return torch.addcmul(xf, h.to(xf.dtype), spmm(entry.laplacian, xf), value=-1.0)
        if entry.operator is None or entry.operator[0] != h:
            with torch.no_grad(), torch.inference_mode(False):
                M = diffusion_operator(p.edge_index, p.weight, p.diag, p.num_nodes, step=h)
            entry.operator = (h, M)
        return spmm(entry.operator[1], xf)

    def _propagate(self, xf: Tensor, g: Graph, h: float | Tensor) -> Tensor:
        n = g.num_nodes
        parts = _normalize(g.edge_index, g.edge_weight, n, self.normalization)
        hw, hl = _scaled(parts, h, xf.dtype)
        z = self.propagate(g.edge_index, x=xf, edge_weight=hw, size=(n, n))
        return torch.addcmul(xf + z, hl.unsqueeze(-1), xf, value=-1.0)

    def _differentiable(self, xf: Tensor, entry: _Entry, h: float | Tensor, cache: OperatorCache) -> Tensor:
        """The step with weights that require a gradient: normalisation at every call, the
        product on the cached CSR pattern of ``edge_index`` (seen before) or by message
        passing (first sight)."""
        g = entry.graph
        key, extra = (g.edge_index,), (g.num_nodes, g.edge_index.device)
        slot = cache.get("pattern", key, extra)
        if slot is None or not self.cached:
            cache.put("pattern", key, extra, [None])
            return self._propagate(xf, g, h)
        if slot[0] is None:
            row, col = g.edge_index
            with torch.no_grad(), torch.inference_mode(False):
                loops = row == col
                # a mask only when there are self-loops (known once per pattern)
                mask = (~loops).to(g.edge_weight.dtype) if bool(loops.any()) else None
                slot[0] = (RowPattern(row, col, g.num_nodes), mask)
        pattern, offdiag = slot[0]
        w = g.edge_weight if offdiag is None else g.edge_weight * offdiag  # no self-loops
        # one feature of an unsorted graph: scattering beats gathering the weights into CSR order
        scatter = pattern.perm is not None and xf.shape[1] == 1
        ax, ell = _normalized_product(
            g.edge_index if scatter else pattern,
            w if scatter else pattern.sorted_values(w),
            xf,
            self.normalization,
            signed=not self.validate,
        )
        if isinstance(h, Tensor):  # x + h (A_n x - l x)
            return torch.addcmul(xf, h.to(xf.dtype), torch.addcmul(ax, ell.unsqueeze(-1), xf, value=-1.0))
        return torch.addcmul(torch.add(xf, ax, alpha=h), ell.unsqueeze(-1), xf, value=-h)


def _normalized_product(
    graph: RowPattern | Tensor, w: Tensor, xf: Tensor, normalization: str | None, *, signed: bool
) -> tuple[Tensor, Tensor]:
    r"""``(A_n x, \ell)`` from raw weights ``w``: the features are scaled instead of the edges
    (:math:`D^{-1/2} A D^{-1/2} x` as ``(A (x / r)) / r`` with :math:`r = \sqrt{d}`), so a call
    costs a few sparse products of the raw weights and no normalised weight per edge.

    ``graph`` is a :class:`RowPattern` (``w`` in its order: CSR products) or an ``edge_index``
    (``w`` in its order: scatter products). Degrees are accumulated in float64 (float64 weights
    scaled by the largest one first: no overflow, and no underflow for weights less than
    :math:`10^{300}` apart); isolated nodes get :math:`\ell_i = 0`, a degree that is not
    positive otherwise NaN (with ``signed``, the rows whose weights are not all zero are found
    from :math:`|w|`)."""
    if isinstance(graph, RowPattern):
        n = graph.n

        def product(values: Tensor, x: Tensor) -> Tensor:
            return pattern_matmul(graph, values, x)

        def degree(values: Tensor) -> Tensor:
            ones = torch.ones(n, 1, dtype=values.dtype, device=values.device)
            return pattern_matmul(graph, values, ones)[:, 0]
    else:
        n = xf.shape[0]
        row, col = graph

        def product(values: Tensor, x: Tensor) -> Tensor:
            return torch.zeros_like(x).index_add_(0, row, values.unsqueeze(-1) * x.index_select(0, col))

        def degree(values: Tensor) -> Tensor:
            return torch.zeros(n, dtype=values.dtype, device=values.device).index_add_(0, row, values)

    if normalization is None:
        return product(w, xf), degree(w.to(torch.float64)).to(xf.dtype)
    if w.dtype == torch.float64:  # scaled by the largest weight: no overflow
        top = w.detach().abs().max() if w.numel() else w.new_zeros(())
        scale = torch.where(top > 0, top, torch.ones_like(top))
        scaled = degree(w / scale)
    else:  # float32 sums in float64 neither overflow nor underflow
        scale = torch.ones((), dtype=torch.float64, device=w.device)
        scaled = degree(w.to(torch.float64))
    iso = degree(w.detach().abs().to(torch.float64)) == 0 if signed else scaled == 0
    pos = scaled > 0
    safe = torch.where(pos, scaled, torch.ones_like(scaled))
    root = torch.where(pos | iso, scale.sqrt() * safe.sqrt(), torch.full_like(safe, math.nan))
    r = root.to(xf.dtype).unsqueeze(-1)
    if normalization == "sym":
        ax = product(w, xf / r) / r
    else:
        ax = product(w, xf) / r / r
    return ax, _indicator(scaled, iso).to(xf.dtype)


def _given_step(step: float | Tensor) -> float | Tensor:
    """A step passed to ``forward_with_step``: a 0-dim tensor (kept, differentiable) or a
    finite number."""
    if isinstance(step, Tensor):
        if step.dim() != 0:
            raise ParameterError(f"LaplacianResidual: step must be 0-dim, got shape {tuple(step.shape)}")
        return step
    return check_real(step, "step", "LaplacianResidual")


def _scaled(parts: LaplacianParts, h: float | Tensor, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    r"""``(h A_n, h \ell)``: the step applied to the weights and the diagonal (no cancellation
    against :math:`x`, and no overflow of :math:`A_n x` when ``h`` compensates huge weights)."""
    if isinstance(h, Tensor):
        h = h.to(dtype)
    return h * parts.weight, h * parts.diag


class BoundLaplacianResidual(nn.Module):
    r"""A :class:`LaplacianResidual` bound to one graph: ``x -> x - h L x`` on the node
    features alone, implementing the residual-step protocol (:mod:`manifres.nn.protocol`).

    Made by :meth:`LaplacianResidual.bind`. It holds the layer as a submodule (so it shares the
    layer's parameters, and two bindings of one layer share one step) and the graph:
    ``edge_index`` as an int64 buffer and ``edge_weight`` as a buffer, or as a parameter when an
    ``nn.Parameter`` is given (learnable weights, then differentiable as in the layer). Both
    move with ``.to()`` and appear in ``state_dict()``; an in-place edit or a loaded state dict
    rebuilds the cached operator (and validates the graph again).

    Attributes
    ----------
    step : float or Tensor
        The effective step :math:`h` on this graph (read and write; for a certified learnable
        combinatorial layer :math:`\sigma(\theta)/\max_i d_i`).
    branch : callable
        ``x -> L x``, the Laplacian term.
    manifold : None
    sample_ndim : None
        The whole ``(N, *F)`` input is one state (the Jacobian couples the nodes).
    num_nodes : int

    Shapes:
        - **x:** ``(N, *F)`` with ``N = num_nodes``
        - **output:** ``(N, *F)``

    Raises
    ------
    GraphError
        At binding, for a bad graph; at a call, when ``x`` does not have ``num_nodes`` rows.
    ParameterError
        At binding, for weights that require a gradient but are not an ``nn.Parameter``.

    Examples
    --------
    >>> import torch
    >>> from manifres.nn.protocol import is_residual_step
    >>> ring = torch.tensor([[0, 1, 2, 1, 2, 0], [1, 2, 0, 0, 1, 2]])
    >>> bound = LaplacianResidual(0.25).bind(ring)
    >>> x = torch.randn(3, 2)
    >>> is_residual_step(bound), torch.allclose(bound(x), x - 0.25 * bound.branch(x))
    (True, True)
    """

    manifold = None
    sample_ndim = None

    def __init__(
        self,
        layer: LaplacianResidual,
        edge_index: Tensor | Data,
        edge_weight: Tensor | None = None,
        num_nodes: int | None = None,
    ) -> None:
        super().__init__()
        owner = "LaplacianResidual.bind"
        if not isinstance(layer, LaplacianResidual):
            raise TypeError(f"{owner}: expected a LaplacianResidual, got {type(layer).__name__}")
        ei, ew, n, declared = _unpack(edge_index, edge_weight, num_nodes)
        if declared is not None and num_nodes is not None and declared != num_nodes:
            raise GraphError(f"{owner}: num_nodes={num_nodes} but the Data object declares {declared}")
        if isinstance(ew, Tensor) and ew.requires_grad and not isinstance(ew, nn.Parameter):
            raise ParameterError(
                f"{owner}: edge_weight requires a gradient but is not an nn.Parameter; a bound "
                "module holds its graph (saved, copied, moved): pass nn.Parameter(edge_weight), "
                "edge_weight.detach(), or call the unbound layer with the weights at each step"
            )
        g = resolve_graph(
            ei, ew, n, validate=layer.validate, symmetric=layer.normalization == "sym",
            dtype=ew.dtype if isinstance(ew, Tensor) and ew.is_floating_point() else None,
        )
        self.layer = layer
        self.num_nodes = g.num_nodes
        self.register_buffer("edge_index", g.edge_index)
        if isinstance(ew, nn.Parameter):
            self.edge_weight = ew
        else:
            self.register_buffer("edge_weight", ew)  # integer weights are cast at each call
        self._cache = OperatorCache()

    def _apply(self, fn, recurse=True):
        self._cache.clear()
        return super()._apply(fn, recurse)

    def _load_from_state_dict(self, *args, **kwargs) -> None:
        self._cache.clear()
        super()._load_from_state_dict(*args, **kwargs)

    def _check(self, x: Tensor) -> None:
        check_features(x)
        if x.shape[0] != self.num_nodes:
            raise GraphError(
                f"{type(self).__name__}: x has {x.shape[0]} rows but the bound graph has "
                f"{self.num_nodes} nodes"
            )

    def forward(self, x: Tensor) -> Tensor:
        """One diffusion step ``x - h L x`` on the bound graph."""
        self._check(x)
        return self.layer._diffuse(x, self.edge_index, self.edge_weight, self._cache, None)

    def forward_with_step(self, x: Tensor, step: float | Tensor) -> Tensor:
        """``x - step * L x``, differentiable in ``step``, ``x`` (and learnable weights)."""
        self._check(x)
        return self.layer._diffuse(x, self.edge_index, self.edge_weight, self._cache, step)

    def branch(self, x: Tensor) -> Tensor:
        """The Laplacian term :math:`L x`."""
        return x - self.forward_with_step(x, 1.0)

    def _scale(self) -> Tensor | None:
        """:math:`1/\\max_i d_i` of the bound graph for a certified learnable combinatorial
        layer (else ``None``)."""
        layer = self.layer
        if layer.theta is None or not layer.certify or layer.normalization is not None:
            return None
        w = self.edge_weight
        dtype = w.dtype if isinstance(w, Tensor) and w.is_floating_point() else torch.get_default_dtype()
        probe = torch.empty(self.num_nodes, 0, dtype=dtype, device=self.edge_index.device)
        entry = self._cache.get("graph", (self.edge_index, w), (self.num_nodes, dtype, probe.device))
        if entry is None:
            g = resolve_graph(self.edge_index, w, x=probe, validate=layer.validate)
            entry = _Entry(g, symmetric=True)
            self._cache.put("graph", (self.edge_index, w), (self.num_nodes, dtype, probe.device), entry)
        return layer._inv_dmax(entry)

    @property
    def step(self) -> float | Tensor:
        scale = self._scale()
        return self.layer.step if scale is None else self.layer.step * scale

    @step.setter
    def step(self, value: float | Tensor) -> None:
        scale = self._scale()
        if scale is None:
            self.layer.step = value
        else:
            self.layer.step = check_real(value, "step", type(self).__name__) / float(scale)

    def extra_repr(self) -> str:
        return f"num_nodes={self.num_nodes}, num_edges={self.edge_index.shape[1]}"


class ManifoldDiffusion(OpinionDynamics):
    r"""Manifold-valued opinions: every node holds a point and moves towards its neighbours.

    .. math:: x_i \leftarrow R_{x_i}\Big(h \sum_j (A_n)_{ij} \log_{x_i}(x_j)\Big)

    with :math:`A_n` the adjacency normalised by ``normalization`` (``"rw"``: the weighted
    mean of the log-directions, so ``step`` in ``(0, 1]`` is a fraction of the way to the
    neighbours' (tangent) average). Node features have shape ``(N, *point_shape)``.

    Parameters
    ----------
    manifold : Manifold
        A manifres manifold (``manifres.Sphere(n)``, ``manifres.SpecialOrthogonal(3)``, ...).
    edge_index, edge_weight, num_nodes
        The graph (or a ``Data`` object).
    step : float
        Step :math:`h` (finite; deprecated alias: ``alpha``).
    normalization : {"rw", None, "sym"}
        Normalisation of the weights.
    retraction : str, optional
        Name of the manifold's retraction (default: its first, usually ``"exp"``).
    validate : bool
        Value checks of the graph.

    Raises
    ------
    ParameterError
        A non-finite step.
    UnknownChoiceError
        Unknown normalisation or retraction.

    Notes
    -----
    * Isolated nodes do not move (:math:`R_x(0) = x`).
    * Antipodal neighbours on the sphere (the cut locus, where the log is not unique) follow
      the manifold's ``cut_locus`` option: ``Sphere(n)`` raises
      :class:`~manifres.errors.CutLocusError` (the default, one host-device sync per step),
      ``Sphere(n, cut_locus="deterministic")`` uses a fixed tangent of norm :math:`\pi`, and
      ``cut_locus="nan"`` makes those nodes NaN.
    * From a start inside an open hemisphere (a geodesically convex ball) and with
      ``step`` in ``(0, 1]``, opinions on a connected graph reach consensus.
    * The normalised weights are cached per dtype and device, like every graph operator.

    Examples
    --------
    >>> import torch, manifres
    >>> S = manifres.Sphere(2)
    >>> ring = torch.tensor([[0, 1, 2, 1, 2, 0], [1, 2, 0, 0, 1, 2]])
    >>> x0 = S.proj_point(torch.tensor([[1.0, 0.2, 0.0], [1.0, 0.0, 0.3], [1.0, -0.3, 0.0]]))
    >>> xs = ManifoldDiffusion(S, ring, step=0.5).simulate(x0, 50)
    >>> float(S.dist(xs[-1][0], xs[-1][1])) < 1e-6
    True
    """

    def __init__(
        self,
        manifold: Manifold,
        edge_index: Tensor | Data,
        edge_weight: Tensor | None = None,
        num_nodes: int | None = None,
        *,
        step: float = UNSET,
        normalization: str | None = "rw",
        retraction: str | None = None,
        validate: bool = True,
        **deprecated: Any,
    ) -> None:
        owner = "ManifoldDiffusion"
        step = _step_kwargs(owner, step, deprecated, 0.5)
        check_manifold(manifold, owner)
        _check_normalization(normalization)
        super().__init__(edge_index, edge_weight, num_nodes, normalization, validate)
        manifold.retraction(retraction)  # raises UnknownChoiceError for an unknown name
        self.manifold = manifold
        self.step = check_real(step, "step", owner)
        self.retraction = retraction

    alpha = deprecated_alias("step", "alpha")

    def extra_repr(self) -> str:
        return (
            f"{self.manifold!r}, num_nodes={self.num_nodes}, step={self.step}, "
            f"normalization={self.normalization!r}, retraction={self.retraction!r}"
        )

    def _check_x(self, x: Tensor, name: str = "x") -> None:
        super()._check_x(x, name)
        self.manifold._check(x, names=(name,))
        if x.dim() != self.manifold.ndim + 1:
            raise ShapeError(
                f"{name} must have shape (N, {', '.join(map(str, self.manifold.point_shape))}), "
                f"got {tuple(x.shape)}"
            )

    def _weights(self, dtype: torch.dtype) -> Tensor:
        """Normalised weights in ``dtype`` (cached), shaped to broadcast over a point."""
        key = self._graph_tensors()
        extra = (self.num_nodes, self.normalization, dtype)
        w = self._cache.get("weights", key, extra)
        if w is None:
            w = self._parts().weight.to(dtype).reshape((-1,) + (1,) * self.manifold.ndim)
            self._cache.put("weights", key, extra, w)
        return w

    def forward(self, x: Tensor, x0: Tensor | None = None) -> Tensor:
        """One step (``x0`` is ignored)."""
        self._check_x(x)
        row, col = self.edge_index
        v = self.manifold.log(x.index_select(0, row), x.index_select(0, col))
        s = torch.index_add(torch.zeros_like(x), 0, row, self._weights(x.dtype) * v)
        return self.manifold.retract(x, self.step * s, self.retraction)

