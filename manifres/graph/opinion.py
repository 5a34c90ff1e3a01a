r"""Opinion dynamics on graphs: DeGroot, Friedkin-Johnsen, Hegselmann-Krause, manifold-valued.

Every model is a ``torch.nn.Module`` that holds its graph and has the same interface:

* ``model(x, x0=None)``: one step from the opinions ``x`` of shape ``(N, *F)`` (``x0``: the
  initial opinions, used by models with an anchor such as Friedkin-Johnsen);
* ``model.simulate(x0, steps, every=1, progress=False)``: the trajectory, a tensor of shape
  ``(steps // every + 1, N, *F)`` that starts with ``x0`` (differentiable in ``x0`` and in
  the model's tensors), with an optional tqdm progress bar.

The graph follows the conventions of :func:`manifres.graph.laplacian` (edge ``(i, j)``: node
``i`` listens to node ``j``; self-loops removed; duplicates summed; isolated nodes keep their
opinion). It is validated once, at construction, and its normalised weights are stored in
float64 buffers and cast to the opinions' dtype when used, so float64 simulations are exact to
float64 rounding.
"""

from __future__ import annotations

import math
import warnings

import torch
from torch import Tensor
from tqdm.auto import tqdm

from .._numerics import safe_sqrt
from ..errors import DeviceError, GraphError, ShapeError, UnknownChoiceError
from ..manifolds.base import Manifold
from ._pyg import Data
from ._sparse import sparse_csr, spmm
from ._validate import _check_symmetric, check_features, resolve_graph
from .laplacian import _normalize

__all__ = [
    "OpinionDynamics",
    "DeGroot",
    "FriedkinJohnsen",
    "HegselmannKrause",
    "ManifoldDiffusion",
]


class OpinionDynamics(torch.nn.Module):
    """Base class: a graph held in float64 buffers, one-step ``forward`` and ``simulate``.

    Parameters
    ----------
    edge_index : Tensor, shape (2, E), integer; or torch_geometric.data.Data
    edge_weight : Tensor, shape (E,), optional
    num_nodes : int, optional
    normalization : {None, "sym", "rw"}
        Normalisation of the stored adjacency weights.
    validate : bool
        Value checks of the graph at construction.

    Notes
    -----
    Subclasses implement ``forward(x, x0=None)``, one step.

    Examples
    --------
    >>> import torch
    >>> model = DeGroot(torch.tensor([[0, 1], [1, 0]]), alpha=0.5)
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
        g = resolve_graph(
            edge_index,
            edge_weight,
            num_nodes,
            validate=validate,
            symmetric=normalization == "sym",
        )
        w = g.edge_weight.detach().to(torch.float64)
        parts = _normalize(g.edge_index, w, g.num_nodes, normalization)
        raw = torch.where(g.edge_index[0] != g.edge_index[1], w, torch.zeros_like(w))
        self.num_nodes = g.num_nodes
        self.normalization = normalization
        self._validate = validate
        self.register_buffer("edge_index", g.edge_index)
        self.register_buffer("weight", parts.weight)
        self.register_buffer("raw_weight", raw)
        self.register_buffer("diag", parts.diag)
        self.register_buffer("degree", parts.degree)
        self._csr_cache: dict = {}

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

    def _transition(self, dtype: torch.dtype, device: torch.device) -> Tensor:
        r"""CSR of :math:`P = A_n + \operatorname{diag}(1 - \ell)` (rows of isolated nodes: I)."""
        key = (dtype, device)
        if key not in self._csr_cache:
            n = self.num_nodes
            dg = 1.0 - self.diag
            keep = dg != 0
            ar = torch.arange(n, device=device)[keep]
            idx = torch.cat([self.edge_index, torch.stack([ar, ar])], dim=1)
            val = torch.cat([self.weight, dg[keep]]).to(dtype)
            self._csr_cache = {key: sparse_csr(idx, val, n)}
        return self._csr_cache[key]

    def _apply(self, fn, recurse=True):
        self._csr_cache = {}
        return super()._apply(fn, recurse)

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
        """
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
            raise ValueError(f"steps must be an integer >= 0, got {steps!r}")
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be an integer >= 1, got {every!r}")
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


def _flat(x: Tensor) -> Tensor:
    return x.flatten(1) if x.dim() > 1 else x.unsqueeze(-1)


def _check_unit(value, n: int, name: str, like: Tensor) -> Tensor:
    """A per-node coefficient in [0, 1], as a float64 tensor of shape (N,)."""
    t = torch.as_tensor(value, dtype=torch.float64, device=like.device)
    if t.dim() == 0:
        t = t.expand(n)
    if tuple(t.shape) != (n,):
        raise ShapeError(f"{name} must be a number or have shape (N,) = ({n},), got {tuple(t.shape)}")
    bad = ~((t >= 0) & (t <= 1))
    if bool(bad.any()):
        k = int(bad.nonzero()[0])
        raise GraphError(f"{name}[{k}] = {float(t[k])} is outside [0, 1]")
    return t.clone()


class DeGroot(OpinionDynamics):
    r"""DeGroot averaging :math:`X \leftarrow W X` with
    :math:`W = I - \alpha L_{\mathrm{rw}} = (1 - \alpha) I + \alpha D^{-1} A`.

    .. math:: x_i \leftarrow (1 - \alpha)\, x_i + \alpha \sum_j \frac{w_{ij}}{d_i} x_j

    :math:`W` is row-stochastic for :math:`0 \le \alpha \le 1`; isolated nodes have
    :math:`W_{ii} = 1` (they keep their opinion).

    Parameters
    ----------
    edge_index, edge_weight, num_nodes
        The graph (or a ``Data`` object); directed graphs are allowed.
    alpha : float
        Weight of the neighbours, in ``(0, 1]``; ``1 - alpha`` is every node's self-trust.
    validate : bool
        Value checks of the graph at construction.

    Notes
    -----
    On a connected undirected graph the opinions converge to the **degree-weighted** average
    :math:`\sum_i d_i x_i(0) / \sum_i d_i` (:meth:`consensus`), because :math:`d^T W = d^T`.
    With ``alpha = 1`` a bipartite graph oscillates; any ``alpha < 1`` converges.

    Examples
    --------
    >>> import torch
    >>> star = torch.tensor([[0, 0, 1, 2], [1, 2, 0, 0]])
    >>> model = DeGroot(star, alpha=0.5)
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
        alpha: float = 1.0,
        validate: bool = True,
    ) -> None:
        super().__init__(edge_index, edge_weight, num_nodes, "rw", validate)
        alpha = float(alpha)
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"DeGroot needs 0 < alpha <= 1 (row-stochastic W), got {alpha}")
        self.alpha = alpha

    def extra_repr(self) -> str:
        return f"num_nodes={self.num_nodes}, alpha={self.alpha}"

    def _mix(self, x: Tensor) -> Tensor:
        """``W x`` for flat ``x`` of shape (N, F)."""
        P = self._transition(x.dtype, x.device)
        y = spmm(P, x)
        return y if self.alpha == 1.0 else torch.lerp(x, y, self.alpha)

    def forward(self, x: Tensor, x0: Tensor | None = None) -> Tensor:
        """One step :math:`W x` (``x0`` is ignored)."""
        self._check_x(x)
        return self._mix(_flat(x)).reshape(x.shape)

    def consensus(self, x0: Tensor) -> Tensor:
        r"""The degree-weighted average :math:`\sum_i d_i x_i / \sum_i d_i`, shape ``(*F)``."""
        self._check_x(x0, "x0")
        d = self.degree.to(x0.dtype)
        return torch.tensordot(d, x0, dims=([0], [0])) / d.sum()


class FriedkinJohnsen(OpinionDynamics):
    r"""Friedkin-Johnsen dynamics with per-node susceptibility :math:`\Lambda`.

    .. math:: X \leftarrow \Lambda W X + (I - \Lambda) X_0, \qquad
              W = I - \alpha L_{\mathrm{rw}}

    :math:`\Lambda = \operatorname{diag}(\lambda_i)`, :math:`\lambda_i \in [0, 1]`, is the
    weight a node gives to its neighbours; :math:`1 - \lambda_i` is its **stubbornness**, the
    weight of its initial opinion. Give exactly one of ``susceptibility`` and
    ``stubbornness``.

    Parameters
    ----------
    edge_index, edge_weight, num_nodes
        The graph (or a ``Data`` object).
    susceptibility : float or Tensor, shape (N,)
        :math:`\lambda_i` (the diagonal of :math:`\Lambda`).
    stubbornness : float or Tensor, shape (N,)
        :math:`1 - \lambda_i`.
    alpha : float
        Step of :math:`W` (as in :class:`DeGroot`), in ``(0, 1]``.
    validate : bool
        Value checks of the graph at construction.

    Notes
    -----
    The equilibrium :math:`X^* = (I - \Lambda W)^{-1}(I - \Lambda) X_0` (:meth:`equilibrium`)
    is computed without dense matrices: multiplying row ``i`` by
    :math:`d_i / (\alpha\lambda_i)` turns :math:`I - \Lambda W` into the symmetric, diagonally
    dominant :math:`\operatorname{diag}(c) - A`, :math:`c_i = d_i(1 - \lambda_i +
    \alpha\lambda_i)/(\alpha\lambda_i)`, solved by Jacobi-preconditioned conjugate gradients in
    float64 (nodes with :math:`\lambda_i = 0` and isolated nodes are fixed at their initial
    opinion). It needs an undirected graph. It is unique when every connected component has a
    node with :math:`\lambda_i < 1`; a component without one converges (for ``alpha < 1``) to
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
        alpha: float = 1.0,
        validate: bool = True,
    ) -> None:
        super().__init__(edge_index, edge_weight, num_nodes, "rw", validate)
        if (susceptibility is None) == (stubbornness is None):
            raise ValueError("give exactly one of susceptibility and stubbornness")
        if susceptibility is not None:
            lam = _check_unit(susceptibility, self.num_nodes, "susceptibility", self.edge_index)
        else:
            lam = 1.0 - _check_unit(stubbornness, self.num_nodes, "stubbornness", self.edge_index)
        alpha = float(alpha)
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"FriedkinJohnsen needs 0 < alpha <= 1, got {alpha}")
        self.alpha = alpha
        self.register_buffer("susceptibility", lam)

    def extra_repr(self) -> str:
        return f"num_nodes={self.num_nodes}, alpha={self.alpha}"

    def forward(self, x: Tensor, x0: Tensor | None = None) -> Tensor:
        """One step :math:`\\Lambda W x + (I - \\Lambda) x_0` (``x0 = x`` when omitted)."""
        self._check_x(x)
        x0 = x if x0 is None else x0
        self._check_x(x0, "x0")
        xf, x0f = _flat(x), _flat(x0)
        P = self._transition(x.dtype, x.device)
        y = spmm(P, xf)
        if self.alpha != 1.0:
            y = torch.lerp(xf, y, self.alpha)
        lam = self.susceptibility.to(x.dtype).unsqueeze(-1)
        return torch.lerp(x0f, y, lam).reshape(x.shape)

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
        if self._validate:
            _check_symmetric(self.edge_index, self.raw_weight, self.num_nodes)
        b0 = _flat(x0).to(torch.float64)
        f64 = torch.float64
        lam, d, a = self.susceptibility.to(f64), self.degree.to(f64), self.alpha
        free = (lam > 0) & (d > 0)
        m = free.to(torch.float64).unsqueeze(-1)
        lam_s = torch.where(free, lam, torch.ones_like(lam))
        c = torch.where(free, d * (1.0 - lam_s + a * lam_s) / (a * lam_s), torch.ones_like(d))
        c = c.unsqueeze(-1)
        A = sparse_csr(self.edge_index, self.raw_weight.to(f64), self.num_nodes)

        def op(y: Tensor) -> Tensor:
            return m * (c * y - spmm(A, m * y)) + (1.0 - m) * y

        rhs_free = torch.where(free, d * (1.0 - lam_s) / (a * lam_s), torch.zeros_like(d))
        b = m * (rhs_free.unsqueeze(-1) * b0 + spmm(A, (1.0 - m) * b0)) + (1.0 - m) * b0
        y = _pcg(op, b, 1.0 / c * m + (1.0 - m), b0, rtol, maxiter)
        return y.to(x0.dtype).reshape(x0.shape)


def _pcg(op, b: Tensor, pinv: Tensor, y: Tensor, rtol: float, maxiter: int) -> Tensor:
    """Column-wise preconditioned conjugate gradients for an SPD ``op`` (float64)."""
    r = b - op(y)
    z = pinv * r
    p = z.clone()
    rz = (r * z).sum(0)
    # relative to the right-hand side, or to the first residual when b = 0 (a component
    # without stubborn nodes, where the singular system is consistent)
    scale = torch.maximum(torch.linalg.vector_norm(b, dim=0), torch.linalg.vector_norm(r, dim=0))
    for _ in range(maxiter):
        if bool((torch.linalg.vector_norm(r, dim=0) <= rtol * scale).all()):
            return y
        q = op(p)
        pq = (p * q).sum(0)
        step = torch.where(pq > 0, rz / torch.where(pq > 0, pq, torch.ones_like(pq)), 0.0)
        y = y + step * p
        r = r - step * q
        z = pinv * r
        rz_new = (r * z).sum(0)
        beta = torch.where(rz > 0, rz_new / torch.where(rz > 0, rz, torch.ones_like(rz)), 0.0)
        p = z + beta * p
        rz = rz_new
    warnings.warn(
        f"conjugate gradients did not reach rtol={rtol} in {maxiter} iterations",
        RuntimeWarning,
        stacklevel=3,
    )
    return y


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
    epsilon : float or Tensor
        Confidence radius (a tensor that requires grad can be learned in the soft model).
    edge_index : Tensor or Data, optional
        Who may listen to whom; ``None`` is the classical model on the complete graph, which
        uses dense pairwise distances (:math:`O(N^2 F)` memory).
    edge_weight, num_nodes
        As for the other models (``num_nodes`` is required without ``edge_index``).
    temperature : float, optional
        ``None``: hard model. A positive :math:`\tau`: soft model, which tends to the hard one
        as :math:`\tau \to 0`.
    validate : bool
        Value checks of the graph at construction.

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
        if edge_index is None:
            if num_nodes is None:
                raise GraphError("HegselmannKrause on the complete graph needs num_nodes")
            edge_index = torch.zeros(2, 0, dtype=torch.long)
            self_complete = True
        else:
            self_complete = False
        super().__init__(edge_index, edge_weight, num_nodes, None, validate)
        eps = float(epsilon.detach()) if isinstance(epsilon, Tensor) else float(epsilon)
        if not eps >= 0:
            raise ValueError(f"epsilon must be >= 0, got {eps}")
        if temperature is not None and not float(temperature) > 0:
            raise ValueError(f"temperature must be positive (or None), got {temperature}")
        self.complete = self_complete
        self.epsilon = epsilon
        self.temperature = None if temperature is None else float(temperature)

    def extra_repr(self) -> str:
        graph = "complete" if self.complete else f"E={self.edge_index.shape[1]}"
        eps = self.epsilon
        eps = float(eps.detach()) if isinstance(eps, Tensor) else eps
        return (
            f"num_nodes={self.num_nodes}, {graph}, epsilon={eps}, "
            f"temperature={self.temperature}"
        )

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
        diff = xf[row] - xf[col]
        om = self._omega((diff * diff).sum(-1)) * self.raw_weight.to(x.dtype)
        self_w = self._omega(torch.zeros((), dtype=x.dtype, device=x.device))
        num = torch.index_add(self_w * xf, 0, row, om.unsqueeze(-1) * xf[col])
        den = torch.index_add(self_w.expand(self.num_nodes).clone(), 0, row, om)
        return (num / den.unsqueeze(-1)).reshape(x.shape)


class ManifoldDiffusion(OpinionDynamics):
    r"""Manifold-valued opinions: every node holds a point and moves towards its neighbours.

    .. math:: x_i \leftarrow R_{x_i}\Big(\alpha \sum_j (A_n)_{ij} \log_{x_i}(x_j)\Big)

    with :math:`A_n` the adjacency normalised by ``normalization`` (``"rw"``: the weighted
    mean of the log-directions, so ``alpha`` in ``(0, 1]`` is a fraction of the way to the
    neighbours' (tangent) average). Node features have shape ``(N, *point_shape)``.

    Parameters
    ----------
    manifold : Manifold
        A manifres manifold (``manifres.Sphere(n)``, ``manifres.SpecialOrthogonal(3)``, ...).
    edge_index, edge_weight, num_nodes
        The graph (or a ``Data`` object).
    alpha : float
        Step size.
    normalization : {"rw", None, "sym"}
        Normalisation of the weights.
    retraction : str, optional
        Name of the manifold's retraction (default: its first, usually ``"exp"``).
    validate : bool
        Value checks of the graph at construction.

    Notes
    -----
    * Isolated nodes do not move (:math:`R_x(0) = x`).
    * Antipodal neighbours on the sphere (the cut locus, where the log is not unique) follow
      the manifold's ``cut_locus`` option: ``Sphere(n)`` raises
      :class:`~manifres.errors.CutLocusError` (the default, one host-device sync per step),
      ``Sphere(n, cut_locus="deterministic")`` uses a fixed tangent of norm :math:`\pi`, and
      ``cut_locus="nan"`` makes those nodes NaN.
    * From a start inside an open hemisphere (a geodesically convex ball) and with
      ``alpha`` in ``(0, 1]``, opinions on a connected graph reach consensus.

    Examples
    --------
    >>> import torch, manifres
    >>> S = manifres.Sphere(2)
    >>> ring = torch.tensor([[0, 1, 2, 1, 2, 0], [1, 2, 0, 0, 1, 2]])
    >>> x0 = S.proj_point(torch.tensor([[1.0, 0.2, 0.0], [1.0, 0.0, 0.3], [1.0, -0.3, 0.0]]))
    >>> xs = ManifoldDiffusion(S, ring, alpha=0.5).simulate(x0, 50)
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
        alpha: float = 0.5,
        normalization: str | None = "rw",
        retraction: str | None = None,
        validate: bool = True,
    ) -> None:
        if not isinstance(manifold, Manifold):
            raise TypeError(f"manifold must be a manifres Manifold, got {type(manifold).__name__}")
        if normalization not in (None, "sym", "rw"):
            raise UnknownChoiceError(
                f"unknown normalization {normalization!r}; valid values: 'rw', None, 'sym'"
            )
        super().__init__(edge_index, edge_weight, num_nodes, normalization, validate)
        manifold.retraction(retraction)  # raises UnknownChoiceError for an unknown name
        self.manifold = manifold
        self.alpha = float(alpha)
        if not math.isfinite(self.alpha):
            raise ValueError(f"alpha must be finite, got {alpha}")
        self.retraction = retraction

    def extra_repr(self) -> str:
        return (
            f"{self.manifold!r}, num_nodes={self.num_nodes}, alpha={self.alpha}, "
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

    def forward(self, x: Tensor, x0: Tensor | None = None) -> Tensor:
        """One step (``x0`` is ignored)."""
        self._check_x(x)
        row, col = self.edge_index
        v = self.manifold.log(x[row], x[col])
        w = self.weight.to(x.dtype).reshape((-1,) + (1,) * self.manifold.ndim)
        s = torch.index_add(torch.zeros_like(x), 0, row, w * v)
        return self.manifold.retract(x, self.alpha * s, self.retraction)
