r"""Opinion dynamics on graphs: DeGroot, Friedkin-Johnsen, Hegselmann-Krause.

Every model is a ``torch.nn.Module`` that holds its graph and has the same interface:

* ``model(x, x0=None)``: one step from the opinions ``x`` of shape ``(N, *F)`` (``x0``: the
  initial opinions, used by models with an anchor such as Friedkin-Johnsen);
* ``model.simulate(x0, steps, every=1, progress=False)``: the trajectory, a tensor of shape
  ``(steps // every + 1, N, *F)`` that starts with ``x0`` (differentiable in ``x0`` and in
  the model's parameters), with an optional tqdm progress bar.

The graph follows the conventions of :func:`manifres.graph.laplacian` (edge ``(i, j)``: node
``i`` listens to node ``j``; self-loops removed; duplicates summed; isolated nodes keep their
opinion). It is data: ``edge_index`` (int64) and ``edge_weight`` (float64, a copy) are buffers,
so they move with ``.to()``, appear in ``state_dict()`` and load with ``load_state_dict``. The
normalised weights and the sparse operator are derived from them on first use and cached per
dtype and device (:mod:`manifres.graph._cache`): the same graph is never normalised twice, and a
changed graph (an in-place edit of a buffer, a loaded state dict, ``.to()``) is never served
from a stale operator; it is validated again (``validate=True``) when the operator is rebuilt.
``ManifoldDiffusion`` (in :mod:`manifres.graph.diffusion`) shares this base.
"""

from __future__ import annotations

import numbers
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor, nn

from .._deprecation import UNSET, deprecated_alias, renamed_kwargs
from .._linalg import pcg
from .._numerics import safe_sqrt
from .._validation import check_int, check_real
from ..errors import DeviceError, GraphError, ParameterError, ShapeError
from ._cache import OperatorCache
from ._sparse import diffusion_operator, sparse_operator, spmm
from ._validate import _check_symmetric, check_features, resolve_graph
from .laplacian import LaplacianParts, _check_normalization, _normalize

if TYPE_CHECKING:  # annotations only (torch-geometric loads in graph.diffusion alone)
    from torch_geometric.data import Data

__all__ = [
    "OpinionDynamics",
    "DeGroot",
    "FriedkinJohnsen",
    "HegselmannKrause",
]


def _flat(x: Tensor) -> Tensor:
    return x.flatten(1) if x.dim() > 1 else x.unsqueeze(-1)


def _step_kwargs(owner: str, step: Any, deprecated: dict, default: float) -> Any:
    """``step``, or its deprecated spelling ``alpha``; ``default`` when neither is given."""
    new = renamed_kwargs(owner, deprecated, {"alpha": ("step", step)})
    step = new.get("step", step)
    return default if step is UNSET else step


class OpinionDynamics(nn.Module):
    """Base class: a graph held in buffers, cached operators, one-step ``forward`` and
    ``simulate``.

    Parameters
    ----------
    edge_index : Tensor, shape (2, E), integer; or torch_geometric.data.Data
    edge_weight : Tensor, shape (E,), optional
        Non-negative weights (a copy is stored in float64). Gradients do not flow to the
        graph: a weight that requires a gradient is refused.
    num_nodes : int, optional
    normalization : {None, "sym", "rw"}
        Normalisation of the operator's weights.
    validate : bool
        Value checks of the graph at construction and whenever its operator is rebuilt.

    Notes
    -----
    Subclasses implement ``forward(x, x0=None)``, one step.

    Examples
    --------
    >>> import torch
    >>> model = DeGroot(torch.tensor([[0, 1], [1, 0]]), step=0.5)
    >>> model.simulate(torch.tensor([[0.0], [4.0]]), 2).squeeze(-1)
    tensor([[0., 4.],
            [2., 2.],
            [2., 2.]])
    """

    def __init__(
        self,
        edge_index: Tensor | Data,
        edge_weight: Tensor | None = None,
        num_nodes: int | None = None,
        normalization: str | None = "rw",
        validate: bool = True,
    ) -> None:
        super().__init__()
        _check_normalization(normalization)
        owner = type(self).__name__
        if isinstance(edge_weight, Tensor) and edge_weight.requires_grad:
            raise ParameterError(
                f"{owner}: edge_weight requires a gradient, but an opinion model holds its graph "
                "as data (buffers) and no gradient flows to it; pass edge_weight.detach() (or "
                "use LaplacianResidual, which is differentiable in the weights)"
            )
        g = resolve_graph(
            edge_index,
            edge_weight,
            num_nodes,
            validate=validate,
            symmetric=normalization == "sym",
        )
        self.num_nodes = g.num_nodes
        self.normalization = normalization
        self.validate = bool(validate)
        self.register_buffer("edge_index", g.edge_index.clone())
        self.register_buffer("edge_weight", g.edge_weight.detach().to(torch.float64).clone())
        self._cache = OperatorCache()

    # ------------------------------------------------------------------ cache
    def _graph_tensors(self) -> tuple[Tensor, Tensor]:
        return (self.edge_index, self.edge_weight)

    def _apply(self, fn, recurse=True):
        self._cache.clear()
        return super()._apply(fn, recurse)

    def _load_from_state_dict(self, *args, **kwargs) -> None:
        self._cache.clear()
        super()._load_from_state_dict(*args, **kwargs)

    def _parts(self) -> LaplacianParts:
        """The normalised graph in float64 (cached; validated again on every rebuild)."""
        key = self._graph_tensors()
        parts = self._cache.get("parts", key, (self.num_nodes, self.normalization))
        if parts is None:
            g = resolve_graph(
                self.edge_index,
                self.edge_weight.to(torch.float64),
                self.num_nodes,
                validate=self.validate,
                symmetric=self.normalization == "sym",
            )
            with torch.no_grad(), torch.inference_mode(False):
                parts = _normalize(g.edge_index, g.edge_weight, g.num_nodes, self.normalization)
            self._cache.put("parts", key, (self.num_nodes, self.normalization), parts)
        return parts

    @property
    def degree(self) -> Tensor:
        """Weighted degrees :math:`d_i` (self-loops excluded), float64, shape ``(N,)``."""
        return self._parts().degree

    def _operator(self, step: float, dtype: torch.dtype, device: torch.device) -> Tensor:
        r"""CSR of :math:`I - hL` (:func:`~manifres.graph._sparse.diffusion_operator`, the
        operator of ``LaplacianResidual``), built in float64 and cast; cached per step, dtype
        and device."""
        key = self._graph_tensors()
        extra = (self.num_nodes, self.normalization, step, dtype, device)
        M = self._cache.get("operator", key, extra)
        if M is None:
            p = self._parts()
            with torch.no_grad(), torch.inference_mode(False):
                M = diffusion_operator(p.edge_index, p.weight, p.diag, p.num_nodes, step=step).to(dtype)
            self._cache.put("operator", key, extra, M)
        return M

    # ------------------------------------------------------------------ helpers
    def _check_x(self, x: Tensor, name: str = "x") -> None:
        check_features(x, name)
        if x.shape[0] != self.num_nodes:
            raise GraphError(
                f"{type(self).__name__}: {name} has {x.shape[0]} rows but the graph has "
                f"{self.num_nodes} nodes"
            )
        if x.device != self.edge_index.device:
            raise DeviceError(
                f"{type(self).__name__}: {name} is on {x.device} but the graph is on "
                f"{self.edge_index.device} (move the model with .to(device))"
            )

    def _mix(self, xf: Tensor, step: float) -> Tensor:
        r""":math:`(I - hL) x` for flat ``x`` of shape ``(N, F)``: one sparse product."""
        return spmm(self._operator(step, xf.dtype, xf.device), xf)

    # ------------------------------------------------------------------ interface
    def simulate(
        self, x0: Tensor, steps: int, *, every: int = 1, progress: bool | None = False
    ) -> Tensor:
        """Run ``steps`` steps from ``x0``.

        Parameters
        ----------
        x0 : Tensor, shape (N, *F)
        steps : int
            Number of steps (>= 0).
        every : int
            Keep every ``every``-th state (the first state, ``x0``, is always kept).
        progress : bool or None
            Show a tqdm progress bar; ``None`` shows it only on a terminal.

        Returns
        -------
        Tensor, shape (steps // every + 1, N, *F)

        Raises
        ------
        ParameterError
            For a negative ``steps`` or an ``every`` below 1.
        """
        from tqdm.auto import tqdm

        owner = f"{type(self).__name__}.simulate"
        steps = check_int(steps, "steps", owner, minimum=0)
        every = check_int(every, "every", owner, minimum=1)
        self._check_x(x0, "x0")
        states = [x0]
        x = x0
        bar = tqdm(
            range(1, steps + 1),
            desc=type(self).__name__,
            disable=None if progress is None else not progress,
            leave=False,
        )
        for k in bar:
            x = self(x, x0)
            if k % every == 0:
                states.append(x)
        return torch.stack(states)


def _unit_interval(value: Any, n: int, name: str, owner: str, like: Tensor) -> Tensor:
    """A per-node coefficient in [0, 1]: an ``nn.Parameter`` as given, else a float64 copy of
    shape (N,)."""
    if isinstance(value, Tensor) and value.requires_grad and not isinstance(value, nn.Parameter):
        raise ParameterError(
            f"{owner}: {name} is a tensor that requires a gradient but is not an nn.Parameter; "
            f"pass nn.Parameter({name}) (the model then registers it) or {name}.detach()"
        )
    if isinstance(value, Tensor):
        t = value
    elif isinstance(value, numbers.Real) or np.ndim(value) == 0:
        t = torch.as_tensor(check_real(value, name, owner), dtype=torch.float64)
    else:  # a sequence or an array of per-node values
        t = torch.as_tensor(np.asarray(value, dtype=np.float64))
    t = t.to(like.device)
    if t.dim() == 0 and not isinstance(t, nn.Parameter):
        t = t.expand(n)
    if tuple(t.shape) != (n,):
        shape = tuple(t.shape)
        raise ShapeError(f"{owner}: {name} must be a number or have shape (N,) = ({n},), got {shape}")
    if not t.is_floating_point():
        t = t.to(torch.float64)
    bad = ~((t.detach() >= 0) & (t.detach() <= 1))
    if bool(bad.any()):
        k = int(bad.nonzero()[0])
        raise ParameterError(f"{owner}: {name}[{k}] = {float(t[k])} is outside [0, 1]")
    return t if isinstance(t, nn.Parameter) else t.detach().to(torch.float64).clone()


class DeGroot(OpinionDynamics):
    r"""DeGroot averaging :math:`X \leftarrow W X` with
    :math:`W = I - h L_{\mathrm{rw}} = (1 - h) I + h D^{-1} A`.

    .. math:: x_i \leftarrow (1 - h)\, x_i + h \sum_j \frac{w_{ij}}{d_i} x_j

    This is :class:`~manifres.graph.LaplacianResidual` with ``normalization="rw"`` on a fixed
    graph (both use the operator of :func:`manifres.graph._sparse.diffusion_operator`).
    :math:`W` is row-stochastic for :math:`0 \le h \le 1`; isolated nodes have
    :math:`W_{ii} = 1` (they keep their opinion).

    Parameters
    ----------
    edge_index, edge_weight, num_nodes
        The graph (or a ``Data`` object); directed graphs are allowed.
    step : float
        Weight :math:`h` of the neighbours, in ``(0, 1]``; ``1 - h`` is every node's
        self-trust (deprecated alias: ``alpha``).
    validate : bool
        Value checks of the graph.

    Raises
    ------
    ParameterError
        For a step outside ``(0, 1]``.

    Notes
    -----
    On a connected undirected graph the opinions converge to the **degree-weighted** average
    :math:`\sum_i d_i x_i(0) / \sum_i d_i` (:meth:`consensus`), because :math:`d^T W = d^T`.
    With ``step = 1`` a bipartite graph oscillates; any ``step < 1`` converges.

    Examples
    --------
    >>> import torch
    >>> star = torch.tensor([[0, 0, 1, 2], [1, 2, 0, 0]])
    >>> model = DeGroot(star, step=0.5)
    >>> x0 = torch.tensor([[3.0], [0.0], [0.0]])
    >>> model.simulate(x0, 60)[-1].squeeze(-1)
    tensor([1.5000, 1.5000, 1.5000])
    >>> model.consensus(x0)
    tensor([1.5000])
    """

    def __init__(
        self,
        edge_index: Tensor | Data,
        edge_weight: Tensor | None = None,
        num_nodes: int | None = None,
        *,
        step: float = UNSET,
        validate: bool = True,
        **deprecated: Any,
    ) -> None:
        step = _step_kwargs("DeGroot", step, deprecated, 1.0)
        super().__init__(edge_index, edge_weight, num_nodes, "rw", validate)
        self.step = check_real(step, "step", "DeGroot", minimum=0.0, maximum=1.0, strict_min=True)

    alpha = deprecated_alias("step", "alpha")

    def extra_repr(self) -> str:
        return f"num_nodes={self.num_nodes}, step={self.step}"

    def forward(self, x: Tensor, x0: Tensor | None = None) -> Tensor:
        """One step :math:`W x` (``x0`` is ignored)."""
        self._check_x(x)
        return self._mix(_flat(x), self.step).reshape(x.shape)

    def consensus(self, x0: Tensor) -> Tensor:
        r"""The degree-weighted average :math:`\sum_i d_i x_i / \sum_i d_i`, shape ``(*F)``."""
        self._check_x(x0, "x0")
        d = self.degree.to(x0.dtype)
        return torch.tensordot(d, x0, dims=([0], [0])) / d.sum()


class FriedkinJohnsen(OpinionDynamics):
    r"""Friedkin-Johnsen dynamics with per-node susceptibility :math:`\Lambda`.

    .. math:: X \leftarrow \Lambda W X + (I - \Lambda) X_0, \qquad
              W = I - h L_{\mathrm{rw}}

    :math:`\Lambda = \operatorname{diag}(\lambda_i)`, :math:`\lambda_i \in [0, 1]`, is the
    weight a node gives to its neighbours; :math:`1 - \lambda_i` is its **stubbornness**, the
    weight of its initial opinion. Give exactly one of ``susceptibility`` and
    ``stubbornness``.

    Parameters
    ----------
    edge_index, edge_weight, num_nodes
        The graph (or a ``Data`` object).
    susceptibility : float, Tensor of shape (N,) or nn.Parameter
        :math:`\lambda_i` (the diagonal of :math:`\Lambda`). An ``nn.Parameter`` is registered
        as given (learnable; checked in ``[0, 1]`` at construction); other values are stored as
        a float64 buffer.
    stubbornness : float or Tensor, shape (N,)
        :math:`1 - \lambda_i`.
    step : float
        Step :math:`h` of :math:`W` (as in :class:`DeGroot`), in ``(0, 1]`` (deprecated
        alias: ``alpha``).
    validate : bool
        Value checks of the graph.

    Raises
    ------
    ParameterError
        Neither or both of ``susceptibility`` and ``stubbornness``, a coefficient outside
        ``[0, 1]``, a step outside ``(0, 1]``.
    ShapeError
        A coefficient tensor of the wrong shape.

    Notes
    -----
    The equilibrium :math:`X^* = (I - \Lambda W)^{-1}(I - \Lambda) X_0` (:meth:`equilibrium`)
    is computed without dense matrices: multiplying row ``i`` by
    :math:`d_i / (h\lambda_i)` turns :math:`I - \Lambda W` into the symmetric, diagonally
    dominant :math:`\operatorname{diag}(c) - A`, :math:`c_i = d_i(1 - \lambda_i +
    h\lambda_i)/(h\lambda_i)`, solved by Jacobi-preconditioned conjugate gradients in
    float64 (nodes with :math:`\lambda_i = 0` and isolated nodes are fixed at their initial
    opinion). It needs an undirected graph. It is unique when every connected component has a
    node with :math:`\lambda_i < 1`; a component without one converges (for ``step < 1``) to
    its degree-weighted average, which is also what the preconditioned solver returns.

    Examples
    --------
    >>> import torch
    >>> path = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
    >>> model = FriedkinJohnsen(path, stubbornness=torch.tensor([1.0, 0.0, 0.0]))
    >>> x0 = torch.tensor([[1.0], [0.0], [-1.0]])
    >>> model.equilibrium(x0).squeeze(-1)  # node 0 holds on, the others follow it
    tensor([1., 1., 1.])
    """

    def __init__(
        self,
        edge_index: Tensor | Data,
        edge_weight: Tensor | None = None,
        num_nodes: int | None = None,
        *,
        susceptibility: float | Tensor | None = None,
        stubbornness: float | Tensor | None = None,
        step: float = UNSET,
        validate: bool = True,
        **deprecated: Any,
    ) -> None:
        owner = "FriedkinJohnsen"
        step = _step_kwargs(owner, step, deprecated, 1.0)
        super().__init__(edge_index, edge_weight, num_nodes, "rw", validate)
        if (susceptibility is None) == (stubbornness is None):
            raise ParameterError(f"{owner}: give exactly one of susceptibility and stubbornness")
        n = self.num_nodes
        if susceptibility is not None:
            lam = _unit_interval(susceptibility, n, "susceptibility", owner, self.edge_index)
        elif isinstance(stubbornness, nn.Parameter):
            raise ParameterError(
                f"{owner}: a learnable coefficient is given as susceptibility=nn.Parameter(...) "
                "(stubbornness is 1 - susceptibility)"
            )
        else:
            lam = 1.0 - _unit_interval(stubbornness, n, "stubbornness", owner, self.edge_index)
        self.step = check_real(step, "step", owner, minimum=0.0, maximum=1.0, strict_min=True)
        if isinstance(lam, nn.Parameter):
            self.susceptibility = lam
        else:
            self.register_buffer("susceptibility", lam.detach().clone())

    alpha = deprecated_alias("step", "alpha")

    def extra_repr(self) -> str:
        return f"num_nodes={self.num_nodes}, step={self.step}"

    def forward(self, x: Tensor, x0: Tensor | None = None) -> Tensor:
        """One step :math:`\\Lambda W x + (I - \\Lambda) x_0` (``x0 = x`` when omitted)."""
        self._check_x(x)
        x0 = x if x0 is None else x0
        self._check_x(x0, "x0")
        y = self._mix(_flat(x), self.step)
        lam = self.susceptibility.to(x.dtype).unsqueeze(-1)
        return torch.lerp(_flat(x0), y, lam).reshape(x.shape)

    def equilibrium(self, x0: Tensor, *, rtol: float = 1e-12, maxiter: int = 10_000) -> Tensor:
        r"""Fixed point :math:`X^* = (I - \Lambda W)^{-1}(I - \Lambda) X_0` (see Notes).

        Parameters
        ----------
        x0 : Tensor, shape (N, *F)
        rtol : float
            Stop when every column's residual is below ``rtol`` times the larger of its
            right-hand side and its initial residual.
        maxiter : int
            Maximal number of conjugate-gradient iterations (a ``RuntimeWarning`` if reached).

        Returns
        -------
        Tensor, shape (N, *F), in the dtype of ``x0``

        Raises
        ------
        GraphError
            With validation, if the graph is directed.
        """
        self._check_x(x0, "x0")
        owner = "FriedkinJohnsen.equilibrium"
        rtol = check_real(rtol, "rtol", owner, minimum=0.0, strict_min=True)
        maxiter = check_int(maxiter, "maxiter", owner, minimum=1)
        p = self._parts()
        row, col = p.edge_index
        raw = torch.where(row != col, self.edge_weight.to(torch.float64), 0.0)
        if self.validate:
            _check_symmetric(p.edge_index, raw, self.num_nodes)
        f64 = torch.float64
        b0 = _flat(x0).to(f64)
        lam, d, a = self.susceptibility.detach().to(f64), p.degree.to(f64), self.step
        free = (lam > 0) & (d > 0)
        m = free.to(f64).unsqueeze(-1)
        lam_s = torch.where(free, lam, torch.ones_like(lam))
        c = torch.where(free, d * (1.0 - lam_s + a * lam_s) / (a * lam_s), torch.ones_like(d))
        c = c.unsqueeze(-1)
        A = sparse_operator(p.edge_index, raw, torch.zeros_like(d), self.num_nodes)

        def op(y: Tensor) -> Tensor:
            return m * (c * y - spmm(A, m * y)) + (1.0 - m) * y

        rhs_free = torch.where(free, d * (1.0 - lam_s) / (a * lam_s), torch.zeros_like(d))
        b = m * (rhs_free.unsqueeze(-1) * b0 + spmm(A, (1.0 - m) * b0)) + (1.0 - m) * b0
        y = pcg(op, b, 1.0 / c * m + (1.0 - m), b0, rtol=rtol, maxiter=maxiter)
        return y.to(x0.dtype).reshape(x0.shape)


class HegselmannKrause(OpinionDynamics):
    r"""Hegselmann-Krause bounded confidence, hard or soft (differentiable).

    .. math::

        x_i \leftarrow \frac{x_i + \sum_{j} w_{ij}\,\omega_{ij}\, x_j}
                            {1 + \sum_{j} w_{ij}\,\omega_{ij}}, \qquad
        \omega_{ij} = \begin{cases} [\|x_i - x_j\| \le \varepsilon] & \text{hard} \\
        \sigma\big((\varepsilon - \|x_i - x_j\|)/\tau\big) & \text{soft}\end{cases}

    (the self weight is :math:`\omega_{ii}` itself: 1 in the hard model,
    :math:`\sigma(\varepsilon/\tau)` in the soft one).

    Parameters
    ----------
    epsilon : float or nn.Parameter
        Confidence radius (>= 0). An ``nn.Parameter`` (0-dim) is registered as given and can be
        learned in the soft model; a tensor that requires a gradient but is not a Parameter is
        refused (differentiate through ``torch.func.functional_call`` instead).
    edge_index : Tensor or Data, optional
        Who may listen to whom; ``None`` is the classical model on the complete graph, which
        uses dense pairwise distances (:math:`O(N^2 F)` memory).
    edge_weight, num_nodes
        As for the other models (``num_nodes`` is required without ``edge_index``).
    temperature : float, optional
        ``None``: hard model. A positive :math:`\tau`: soft model, which tends to the hard one
        as :math:`\tau \to 0`.
    validate : bool
        Value checks of the graph.

    Raises
    ------
    ParameterError
        A negative or non-finite ``epsilon``, a non-positive ``temperature``.
    GraphError
        No ``edge_index`` and no ``num_nodes``.

    Notes
    -----
    Distances are Euclidean over all feature axes, computed as a square root guarded at 0, so
    the soft model has finite gradients for coincident opinions.

    Examples
    --------
    >>> import torch
    >>> model = HegselmannKrause(0.3, num_nodes=4)
    >>> x0 = torch.tensor([[0.0], [0.2], [0.9], [1.0]])
    >>> model.simulate(x0, 3)[-1].squeeze(-1)
    tensor([0.1000, 0.1000, 0.9500, 0.9500])
    """

    def __init__(
        self,
        epsilon: float | Tensor,
        edge_index: Tensor | Data | None = None,
        edge_weight: Tensor | None = None,
        num_nodes: int | None = None,
        *,
        temperature: float | None = None,
        validate: bool = True,
    ) -> None:
        owner = "HegselmannKrause"
        complete = edge_index is None
        if complete:
            if num_nodes is None:
                raise GraphError(f"{owner} on the complete graph needs num_nodes")
            edge_index = torch.zeros(2, 0, dtype=torch.long)
        super().__init__(edge_index, edge_weight, num_nodes, None, validate)
        if isinstance(epsilon, Tensor) and epsilon.requires_grad and not isinstance(epsilon, nn.Parameter):
            raise ParameterError(
                f"{owner}: epsilon is a tensor that requires a gradient but is not an nn.Parameter; "
                "pass nn.Parameter(epsilon) (the model then registers it), or differentiate "
                "through torch.func.functional_call"
            )
        if isinstance(epsilon, nn.Parameter):
            if epsilon.dim() != 0:
                raise ShapeError(f"{owner}: epsilon must be 0-dim, got shape {tuple(epsilon.shape)}")
            check_real(epsilon.detach(), "epsilon", owner, minimum=0.0)
            self.epsilon = epsilon
        else:
            self.epsilon = check_real(epsilon, "epsilon", owner, minimum=0.0)
        if temperature is not None:
            temperature = check_real(temperature, "temperature", owner, minimum=0.0, strict_min=True)
        self.complete = complete
        self.temperature = temperature

    def extra_repr(self) -> str:
        graph = "complete" if self.complete else f"E={self.edge_index.shape[1]}"
        eps = self.epsilon
        eps = float(eps.detach()) if isinstance(eps, Tensor) else eps
        return f"num_nodes={self.num_nodes}, {graph}, epsilon={eps}, temperature={self.temperature}"

    def _weights(self, dtype: torch.dtype) -> Tensor:
        """The raw weights without self-loops in ``dtype`` (cached; validated on rebuild)."""
        key = self._graph_tensors()
        w = self._cache.get("weights", key, (self.num_nodes, dtype))
        if w is None:
            self._parts()  # validates the graph when it changed
            row, col = self.edge_index
            with torch.no_grad(), torch.inference_mode(False):
                w = torch.where(row != col, self.edge_weight, 0.0).to(dtype)
            self._cache.put("weights", key, (self.num_nodes, dtype), w)
        return w

    def _omega(self, d2: Tensor) -> Tensor:
        eps = self.epsilon
        if isinstance(eps, Tensor):
            eps = eps.to(d2.dtype)
        if self.temperature is None:
            return (d2 <= eps * eps).to(d2.dtype)
        return torch.sigmoid((eps - safe_sqrt(d2)) / self.temperature)

    def forward(self, x: Tensor, x0: Tensor | None = None) -> Tensor:
        """One bounded-confidence step (``x0`` is ignored)."""
        self._check_x(x)
        xf = _flat(x)
        if self.complete:
            diff = xf.unsqueeze(1) - xf.unsqueeze(0)
            om = self._omega((diff * diff).sum(-1))
            return ((om @ xf) / om.sum(1, keepdim=True)).reshape(x.shape)
        row, col = self.edge_index
        xi, xj = xf.index_select(0, row), xf.index_select(0, col)
        diff = xi - xj
        om = self._omega((diff * diff).sum(-1)) * self._weights(x.dtype)
        self_w = self._omega(torch.zeros((), dtype=x.dtype, device=x.device))
        num = torch.index_add(self_w * xf, 0, row, om.unsqueeze(-1) * xj)
        den = torch.index_add(self_w.expand(self.num_nodes).clone(), 0, row, om)
        return (num / den.unsqueeze(-1)).reshape(x.shape)

