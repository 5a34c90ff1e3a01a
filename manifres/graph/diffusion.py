r"""``LaplacianResidual``: one step of Laplacian (opinion) diffusion as a message-passing layer."""

from __future__ import annotations

import math
import weakref

import torch
from torch import Tensor

from ..errors import StabilityError
from ._pyg import Data, MessagePassing
from ._sparse import sparse_csr, spmm
from ._validate import Graph, _unpack, resolve_graph
from .laplacian import LaplacianParts, _check_normalization, _normalize
from .spectral import STEP_RTOL, _spectrum

__all__ = ["LaplacianResidual"]


class _GraphKey:
    """Identity of a graph given as tensors (same objects, unmodified: same version counters)
    together with the features' node count, dtype and device."""

    def __init__(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None) -> None:
        self.refs = (weakref.ref(edge_index), None if edge_weight is None else weakref.ref(edge_weight))
        self.state = self._state(x, edge_index, edge_weight)

    @staticmethod
    def _state(x: Tensor, edge_index: Tensor, edge_weight: Tensor | None) -> tuple:
        ew = None if edge_weight is None else edge_weight._version
        return (edge_index._version, ew, x.shape[0], x.dtype, x.device)

    def matches(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None) -> bool:
        ew = self.refs[1]() if self.refs[1] is not None else None
        return (
            self.refs[0]() is edge_index
            and ew is edge_weight
            and self.state == self._state(x, edge_index, edge_weight)
        )


class LaplacianResidual(MessagePassing):
    r"""Residual graph layer :math:`X \leftarrow X - \alpha L X`: one step of opinion diffusion.

    .. math::

        x_i \leftarrow x_i - \alpha \Big(\ell_i x_i - \sum_j (A_n)_{ij} x_j\Big)

    Every node keeps its opinion (the identity path) and moves towards its neighbours' (the
    residual, through the Laplacian :math:`L = \operatorname{diag}(\ell) - A_n` of
    :func:`manifres.graph.laplacian`, whose conventions apply: isolated nodes keep their
    features exactly, self-loops are removed, duplicate edges summed).

    Parameters
    ----------
    alpha : float
        Step size. With ``learn_alpha=True`` and ``certify=True`` it is the initial value of
        :math:`\sigma(\theta)` and must lie in ``(0, 1)`` (see Notes).
    normalization : {"sym", "rw", None}
        Laplacian normalisation.
    learn_alpha : bool
        Make the step a learnable parameter.
    certify : bool
        Guarantee a non-expansive step, :math:`0 < \alpha \le 2/\lambda_{\max}(L)` (see Notes).
    cached : bool
        Cache the sparse operator :math:`M = I - L` of the last graph seen (recognised by the
        identity and version counters of ``edge_index`` and ``edge_weight``): the step is then
        one CSR sparse-dense product and one fused update, ``torch.lerp(x, M x, alpha)``. Not
        used while ``edge_weight`` requires a gradient (the uncached path is differentiable in
        the weights).
    validate : bool
        Value checks of each new graph (indices in range; weights finite and non-negative;
        undirected for ``"sym"`` and for certification). A graph is recognised by the identity
        and version counters of its tensors, so a loop that passes the same ``edge_index``
        pays once; new weight tensors at every call are checked at every call (one host-device
        sync): pass ``validate=False`` there.

    Shapes
    ------
    * ``x``: ``(N, *F)``, float32 or float64; ``N`` is the node count (an isolated trailing
      node is never dropped).
    * ``edge_index``: ``(2, E)`` integer; ``edge_weight``: ``(E,)`` non-negative.
    * output: ``(N, *F)``.

    Raises
    ------
    StabilityError
        ``certify=True`` and the step is outside the stable range of the graph (or not
        positive).
    GraphError, DTypeError, DeviceError
        Bad graph input (see :func:`manifres.graph.laplacian`).

    Notes
    -----
    * **Certified fixed step**: for ``"sym"`` and ``"rw"``, :math:`\lambda_{\max} \le 2` on
      every graph, so :math:`0 < \alpha \le 1` is certified without computing anything (for
      ``"rw"`` also on directed graphs, in the max-norm). Otherwise :math:`\lambda_{\max}` is
      computed (:func:`manifres.graph.lambda_max`, once per graph) and the step is refused
      unless :math:`\alpha\lambda_{\max} \le 2(1 + 10^{-8})`.
    * **Certified learnable step**: :math:`\alpha = \rho\,\sigma(\theta)` with
      :math:`\sigma(\theta_0)` = ``alpha``, where :math:`\rho = 1` for ``"sym"`` and ``"rw"``
      and :math:`\rho = 1 / \max_i d_i` for the combinatorial Laplacian (Gershgorin:
      :math:`\lambda_{\max} \le 2\max_i d_i`). The step is then stable on every graph, with no
      eigensolver and no synchronisation.
    * Without ``certify`` a learnable step is the raw parameter, initialised to ``alpha``.
    * Without ``cached`` the product :math:`A_n x` is torch-geometric message passing
      (``propagate``: messages :math:`(A_n)_{ij} x_j` gathered from ``edge_index[1]`` and summed
      at ``edge_index[0]``, i.e. ``flow="target_to_source"``, the matrix convention of
      :func:`~manifres.graph.laplacian`), recomputing the normalisation at every call, so the
      step is differentiable in ``x``, ``alpha`` and ``edge_weight``.

    Examples
    --------
    >>> import torch
    >>> layer = LaplacianResidual(0.5, normalization=None)
    >>> ei = torch.tensor([[0, 1], [1, 0]])
    >>> layer(torch.tensor([[1.0], [3.0]]), ei)
    tensor([[2.],
            [2.]])
    >>> layer
    LaplacianResidual(alpha=0.5, normalization=None, learn_alpha=False, certify=False)
    """

    def __init__(
        self,
        alpha: float,
        normalization: str | None = "sym",
        learn_alpha: bool = False,
        certify: bool = False,
        *,
        cached: bool = False,
        validate: bool = True,
    ) -> None:
        super().__init__(aggr="add", flow="target_to_source")
        _check_normalization(normalization)
        alpha = float(alpha)
        if certify and not alpha > 0:
            raise StabilityError(f"certify=True needs a positive step, got alpha = {alpha}")
        if certify and learn_alpha and not 0.0 < alpha < 1.0:
            raise StabilityError(
                "with learn_alpha=True and certify=True, alpha is the initial sigmoid(theta) "
                f"and must lie in (0, 1); got {alpha}"
            )
        self.normalization = normalization
        self.learn_alpha = bool(learn_alpha)
        self.certify = bool(certify)
        self.cached = bool(cached)
        self.validate = bool(validate)
        self._alpha0 = alpha
        if self.learn_alpha:
            self.theta = torch.nn.Parameter(torch.empty((), dtype=torch.float64))
        else:
            self.register_parameter("theta", None)
        self._seen: _GraphKey | None = None
        self._lambda_max: float | None = None
        self._operator: tuple[Tensor, Tensor | None] | None = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Reset the learnable step to its initial value and forget cached graphs."""
        super().reset_parameters()
        if self.theta is not None:
            a = self._alpha0
            init = math.log(a / (1.0 - a)) if self.certify else a
            with torch.no_grad():
                self.theta.fill_(init)
        self._seen = None
        self._lambda_max = None
        self._operator = None

    @property
    def alpha(self) -> float | Tensor:
        """The step: a float, or for a learnable step a 0-dim tensor (for a certified
        combinatorial step, the fraction :math:`\\sigma(\\theta)` of ``1 / max_i d_i``)."""
        if self.theta is None:
            return self._alpha0
        return torch.sigmoid(self.theta) if self.certify else self.theta

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(alpha={self._alpha0}, normalization={self.normalization!r}, "
            f"learn_alpha={self.learn_alpha}, certify={self.certify})"
        )

    # ------------------------------------------------------------------ graph handling
    def _resolve(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None) -> Graph:
        known = (
            self._seen is not None
            and isinstance(x, Tensor)
            and x.dim() > 0
            and isinstance(edge_index, Tensor)
            and self._seen.matches(x, edge_index, edge_weight)
        )
        g = resolve_graph(
            edge_index,
            edge_weight,
            x=x,
            validate=self.validate and not known,
            symmetric=self.normalization == "sym" or self._needs_spectrum(),
        )
        if not known:
            self._seen = _GraphKey(x, edge_index, edge_weight)
            self._lambda_max = None
            self._operator = None
        return g

    def _needs_spectrum(self) -> bool:
        fixed_ok = self.normalization is not None and self._alpha0 <= 1.0
        return self.certify and not self.learn_alpha and not fixed_ok

    def _certify_fixed(self, g: Graph) -> None:
        if not self._needs_spectrum():
            return
        if self._lambda_max is None:
            s = _spectrum(
                g.edge_index, g.edge_weight, g.num_nodes, self.normalization, validate=False
            )
            self._lambda_max = s.lambda_max()
        lam = self._lambda_max
        if self._alpha0 * lam > 2.0 * (1.0 + STEP_RTOL):
            raise StabilityError(
                f"{self!r}: step alpha = {self._alpha0:.6g} is outside the stable range "
                f"(0, 2 / lambda_max] = (0, {2.0 / lam:.6g}] of this graph (lambda_max = "
                f"{lam:.6g}); use a smaller alpha or normalization='sym'"
            )

    def _step(self, parts: LaplacianParts) -> Tensor | float:
        if self.theta is None:
            return self._alpha0
        if not self.certify:
            return self.theta
        frac = torch.sigmoid(self.theta)
        if self.normalization is not None:
            return frac
        dmax = parts.degree.detach().max() if parts.degree.numel() else parts.degree.new_ones(())
        return frac * torch.where(dmax > 0, 1.0 / dmax, torch.ones_like(dmax))

    # ------------------------------------------------------------------ forward
    def forward(
        self, x: Tensor, edge_index: Tensor | Data, edge_weight: Tensor | None = None
    ) -> Tensor:
        """One diffusion step ``x - alpha L x``; see the class docstring.

        ``edge_index`` may also be a torch-geometric ``Data`` object: its ``edge_index`` and
        ``edge_weight`` (or 1-D ``edge_attr``) are used; the node count is that of ``x``.
        """
        if isinstance(edge_index, Data):
            # the node count comes from x: skip Data.num_nodes (num_nodes=0 is not read)
            edge_index, edge_weight, _ = _unpack(edge_index, edge_weight, 0)
        grad_w = (
            isinstance(edge_weight, Tensor)
            and edge_weight.requires_grad
            and torch.is_grad_enabled()
        )
        if (
            self._operator is not None
            and not grad_w
            and isinstance(x, Tensor)
            and x.dim() > 0
            and self._seen.matches(x, edge_index, edge_weight)
        ):
            # fast path: a known graph (already checked and certified) with a cached operator
            if x.dim() == 2:
                return self._apply_cached(x)
            xf = x.flatten(1) if x.dim() > 2 else x.unsqueeze(-1)
            return self._apply_cached(xf).reshape(x.shape)
        g = self._resolve(x, edge_index, edge_weight)
        self._certify_fixed(g)
        n = g.num_nodes
        xf = x.flatten(1) if x.dim() > 1 else x.unsqueeze(-1)
        use_cache = self.cached and not grad_w
        if use_cache and self._operator is None:
            with torch.no_grad():
                parts = _normalize(g.edge_index, g.edge_weight, n, self.normalization)
                self._operator = self._build_operator(parts)
        if use_cache:
            out = self._apply_cached(xf)
        else:
            parts = _normalize(g.edge_index, g.edge_weight, n, self.normalization)
            alpha = self._step(parts)
            y = self.propagate(g.edge_index, x=xf, edge_weight=parts.weight, size=(n, n))
            minus_lx = torch.addcmul(y, parts.diag.unsqueeze(-1), xf, value=-1.0)
            if isinstance(alpha, Tensor):
                out = torch.addcmul(xf, alpha.to(x.dtype), minus_lx)
            else:
                out = torch.add(xf, minus_lx, alpha=alpha)
        return out.reshape(x.shape)

    def message(self, x_j: Tensor, edge_weight: Tensor) -> Tensor:
        return edge_weight.unsqueeze(-1) * x_j

    # ------------------------------------------------------------------ cached operator
    def _build_operator(self, parts: LaplacianParts) -> tuple[Tensor, Tensor | None]:
        r"""CSR of :math:`M = I - L` (diagonal stored only where non-zero) and the scale of a
        certified learnable combinatorial step; the step is ``lerp(x, M x, alpha)``, exact
        (``x``) on isolated nodes."""
        n = parts.num_nodes
        ar = torch.arange(n, device=parts.edge_index.device)
        dg = 1.0 - parts.diag
        keep = dg != 0
        idx = torch.cat([parts.edge_index, torch.stack([ar[keep], ar[keep]])], dim=1)
        val = torch.cat([parts.weight, dg[keep]])
        scale = None
        if self.theta is not None and self.certify and self.normalization is None:
            dmax = parts.degree.max() if n else parts.degree.new_ones(())
            scale = torch.where(dmax > 0, 1.0 / dmax, torch.ones_like(dmax))
        return sparse_csr(idx, val, n), scale

    def _apply_cached(self, xf: Tensor) -> Tensor:
        M, scale = self._operator
        y = spmm(M, xf)
        if self.theta is None:
            # lerp(x, y, a) computed in place in y (no new N x F buffer): y + (1 - a)(x - y)
            return y.lerp_(xf, 1.0 - self._alpha0)
        alpha = self.alpha if scale is None else self.alpha * scale
        return torch.lerp(xf, y, alpha.to(xf.dtype))
