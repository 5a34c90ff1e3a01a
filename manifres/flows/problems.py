r"""Test problems with exact solutions, and measured orders of convergence.

Every problem is an ODE :math:`x' = F(x, t)` on a manifold whose exact solution is known in
closed form (rotations written with ``cos``/``sin``, independent of the integrators'
Rodrigues series and of ``matrix_exp``). With :math:`\hat a` the skew matrix of
:math:`a \in \mathbb{R}^3` and :math:`Q(a) = e^{\hat a}`:

* ``sphere_geodesic``: :math:`x' = s(w u^T - u w^T) x` from points on the great circle
  through the orthonormal ``u, w``; exact :math:`\cos(st) x_0 + \sin(st) w_0`.
* ``sphere_small_circle``: :math:`x' = \hat a x`; exact small circles :math:`Q(t a) x_0`.
* ``sphere_time_dependent``: :math:`x' = \widehat{(a + Q(ta) b)}\,x`; exact
  :math:`Q(ta) Q(tb) x_0`.
* ``so3_constant``: :math:`R' = R \hat w`; exact :math:`R_0 Q(t w)`.
* ``so3_time_dependent``: :math:`R' = R\,\widehat{(Q(tb)^T a + b)}`; exact
  :math:`R_0 Q(ta) Q(tb)`.

(:math:`\widehat{a + Q(ta) b} = \hat a + e^{t\hat a} \hat b e^{-t\hat a}`, so
:math:`\frac{d}{dt} e^{t\hat a} e^{t\hat b} = (\hat a + e^{t\hat a}\hat b e^{-t\hat a})
e^{t\hat a} e^{t\hat b}`.) The geodesic field makes exponential-map Euler exact; the constant
left-invariant field on SO(3) makes every Lie-group method exact; the other three are the
order tests.

Examples
--------
>>> import torch
>>> from manifres.flows import problems
>>> rows = problems.convergence_table(["sphere_small_circle"], ["euler", "rkmk4"])
>>> [(r.method, round(r.slope)) for r in rows]
[('euler', 1), ('rkmk4', 4)]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .. import so3
from ..errors import UnknownChoiceError
from ..manifolds import SpecialOrthogonal, Sphere
from ..manifolds.base import Manifold
from ..nn.fields import LinearField
from .integrate import integrate
from .schemes import METHODS

__all__ = [
    "Problem",
    "PROBLEMS",
    "get_problem",
    "sphere_geodesic",
    "sphere_small_circle",
    "sphere_time_dependent",
    "so3_constant",
    "so3_time_dependent",
    "ConvergenceRow",
    "global_error",
    "convergence_table",
    "retraction_defect",
    "format_table",
    "DEFAULT_STEPS",
    "CONVERGENCE_PROBLEMS",
]

#: The problems of the order tests (Euler is not exact on any of them).
CONVERGENCE_PROBLEMS = ("sphere_small_circle", "sphere_time_dependent", "so3_time_dependent")

#: Step counts used for each theoretical order (float64, errors well above rounding).
DEFAULT_STEPS: dict[int, tuple[int, ...]] = {1: (32, 64, 128), 2: (16, 32, 64), 4: (8, 16, 32)}


# ---------------------------------------------------------------------------- closed forms
def _rot(w: Tensor) -> Tensor:
    """``exp(hat(w))`` written with cos and sin of ``|w|``, shape (..., 3, 3)."""
    theta = torch.sqrt((w * w).sum(-1))[..., None, None]
    zero = theta == 0
    safe = torch.where(zero, torch.ones_like(theta), theta)
    s = torch.where(zero, torch.ones_like(theta), torch.sin(safe) / safe)
    c = torch.where(zero, torch.full_like(theta, 0.5), 2.0 * torch.sin(0.5 * safe) ** 2 / safe**2)
    W = so3.hat(w)
    eye = torch.eye(3, dtype=w.dtype, device=w.device)
    return eye + s * W + c * (W @ W)


def _t(t: float | Tensor, like: Tensor) -> Tensor:
    return torch.as_tensor(t, dtype=like.dtype, device=like.device)


class _RotatingAxisField(nn.Module):
    r"""Rotation-rate field with a rotating axis.

    ``side=None`` (sphere): :math:`F(x, t) = \widehat{\omega(t)} x`,
    :math:`\omega(t) = a + Q(ta) b`. ``side="right"`` (SO(3)): :math:`F(R, t) = R
    \widehat{\omega(t)}`, :math:`\omega(t) = Q(tb)^T a + b`.
    """

    time_dependent = True

    def __init__(self, a: Tensor, b: Tensor, side: str | None) -> None:
        super().__init__()
        self.register_buffer("a", a)
        self.register_buffer("b", b)
        self.side = side

    def omega(self, t: float | Tensor) -> Tensor:
        t = _t(t, self.a)
        if self.side is None:
            return self.a + _rot(t * self.a) @ self.b
        return _rot(t * self.b).mT @ self.a + self.b

    def forward(self, x: Tensor, t: float | Tensor) -> Tensor:
        W = so3.hat(self.omega(t)).to(x.dtype)
        if self.side is None:
            return (W @ x.unsqueeze(-1)).squeeze(-1)
        return x @ W


@dataclass(frozen=True)
class Problem:
    """An ODE on a manifold with its exact solution.

    Attributes
    ----------
    name : str
    manifold : Manifold
    field : nn.Module
        ``F(x)`` or ``F(x, t)``.
    x0 : Tensor, shape (batch, *point_shape)
        Initial points.
    t0, t1 : float
        Time interval.
    solution : callable
        ``t -> x(t)``, the exact solution of shape ``x0.shape``.
    """

    name: str
    manifold: Manifold
    field: nn.Module
    x0: Tensor
    t0: float
    t1: float
    solution: Callable[[float | Tensor], Tensor]

    def exact(self, t: float | Tensor) -> Tensor:
        """The exact solution at time ``t``, shape ``x0.shape``."""
        return self.solution(t)


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _unit(v: Tensor) -> Tensor:
    return v / torch.sqrt((v * v).sum(-1, keepdim=True))


def sphere_geodesic(
    dtype: torch.dtype = torch.float64, device: torch.device | str | None = None, batch: int = 4
) -> Problem:
    r"""Great circles: :math:`x' = s(w u^T - u w^T) x` with starting points on the circle
    through the orthonormal ``u, w``; exact :math:`x(t) = \cos(st) x_0 + \sin(st) w_0`,
    :math:`w_0 = (w u^T - u w^T) x_0`, for :math:`t \in [0, 2]`, speed ``s = 1.3``.
    Exponential-map Euler reproduces it to rounding.

    Examples
    --------
    >>> p = sphere_geodesic()
    >>> bool(torch.allclose(p.exact(0.0), p.x0))
    True
    """
    g = _generator(1)
    u = _unit(torch.randn(3, dtype=torch.float64, generator=g))
    w = _unit(torch.randn(3, dtype=torch.float64, generator=g))
    w = _unit(w - (u @ w) * u)
    s = 1.3
    G = torch.outer(w, u) - torch.outer(u, w)
    phase = torch.linspace(0.0, 2 * math.pi, batch + 1, dtype=torch.float64)[:batch, None]
    x0 = torch.cos(phase) * u + torch.sin(phase) * w
    w0 = x0 @ G.mT

    def solution(t: float | Tensor) -> Tensor:
        tt = _t(t, x0)
        return (torch.cos(s * tt) * x0 + torch.sin(s * tt) * w0).to(dtype=dtype, device=device)

    field = LinearField((s * G).to(dtype=dtype, device=device))
    return Problem("sphere_geodesic", Sphere(2), field, x0.to(dtype=dtype, device=device), 0.0, 2.0, solution)


def sphere_small_circle(
    dtype: torch.dtype = torch.float64, device: torch.device | str | None = None, batch: int = 4
) -> Problem:
    r"""Rotation about a fixed axis: :math:`x' = \hat a x`, exact :math:`x(t) = Q(ta) x_0`,
    small circles for starting points off the equator of ``a``; :math:`t \in [0, 1.5]`.

    Examples
    --------
    >>> p = sphere_small_circle()
    >>> abs(float((p.exact(1.0) * p.exact(1.0)).sum(-1).max()) - 1.0) < 1e-15
    True
    """
    g = _generator(2)
    a = torch.tensor([0.3, -0.5, 1.1], dtype=torch.float64)
    x0 = _unit(torch.randn(batch, 3, dtype=torch.float64, generator=g))

    def solution(t: float | Tensor) -> Tensor:
        return (x0 @ _rot(_t(t, a) * a).mT).to(dtype=dtype, device=device)

    field = LinearField(so3.hat(a).to(dtype=dtype, device=device))
    return Problem(
        "sphere_small_circle",
        Sphere(2),
        field,
        x0.to(dtype=dtype, device=device),
        0.0,
        1.5,
        solution,
    )


def sphere_time_dependent(
    dtype: torch.dtype = torch.float64, device: torch.device | str | None = None, batch: int = 4
) -> Problem:
    r"""A rotation field whose axis rotates,
    :math:`x' = (\hat a + e^{t\hat a}\hat b e^{-t\hat a}) x`, exact
    :math:`x(t) = Q(ta) Q(tb) x_0`; :math:`t \in [0, 1.5]`.

    Examples
    --------
    >>> p = sphere_time_dependent()
    >>> p.field.time_dependent
    True
    """
    g = _generator(3)
    a = torch.tensor([0.2, 0.9, -0.4], dtype=torch.float64)
    b = torch.tensor([1.0, -0.3, 0.5], dtype=torch.float64)
    x0 = _unit(torch.randn(batch, 3, dtype=torch.float64, generator=g))

    def solution(t: float | Tensor) -> Tensor:
        tt = _t(t, a)
        return (x0 @ (_rot(tt * a) @ _rot(tt * b)).mT).to(dtype=dtype, device=device)

    field = _RotatingAxisField(a, b, side=None).to(dtype=dtype, device=device)
    return Problem(
        "sphere_time_dependent",
        Sphere(2),
        field,
        x0.to(dtype=dtype, device=device),
        0.0,
        1.5,
        solution,
    )


def _random_rotations(batch: int, seed: int) -> Tensor:
    w = torch.randn(batch, 3, dtype=torch.float64, generator=_generator(seed))
    return _rot(w)


def so3_constant(
    dtype: torch.dtype = torch.float64, device: torch.device | str | None = None, batch: int = 3
) -> Problem:
    r"""A constant left-invariant field :math:`R' = R\hat w`, exact :math:`R(t) = R_0 Q(tw)`;
    :math:`t \in [0, 2]`. Every Lie-group method (and exponential Euler) is exact on it.

    Examples
    --------
    >>> p = so3_constant()
    >>> p.x0.shape
    torch.Size([3, 3, 3])
    """
    w = torch.tensor([0.7, -0.2, 0.9], dtype=torch.float64)
    R0 = _random_rotations(batch, 4)

    def solution(t: float | Tensor) -> Tensor:
        return (R0 @ _rot(_t(t, w) * w)).to(dtype=dtype, device=device)

    field = LinearField(so3.hat(w).to(dtype=dtype, device=device), side="right")
    return Problem(
        "so3_constant", SpecialOrthogonal(3), field, R0.to(dtype=dtype, device=device), 0.0, 2.0, solution
    )


def so3_time_dependent(
    dtype: torch.dtype = torch.float64, device: torch.device | str | None = None, batch: int = 3
) -> Problem:
    r"""A left-invariant field with a rotating generator:
    :math:`R' = R(e^{-t\hat b}\hat a e^{t\hat b} + \hat b)`, exact :math:`R(t) = R_0 Q(ta) Q(tb)`;
    :math:`t \in [0, 1.5]`.

    Examples
    --------
    >>> p = so3_time_dependent()
    >>> bool(torch.allclose(p.exact(0.0), p.x0))
    True
    """
    a = torch.tensor([0.8, 0.1, -0.6], dtype=torch.float64)
    b = torch.tensor([-0.3, 1.0, 0.4], dtype=torch.float64)
    R0 = _random_rotations(batch, 5)

    def solution(t: float | Tensor) -> Tensor:
        tt = _t(t, a)
        return (R0 @ _rot(tt * a) @ _rot(tt * b)).to(dtype=dtype, device=device)

    field = _RotatingAxisField(a, b, side="right").to(dtype=dtype, device=device)
    return Problem(
        "so3_time_dependent",
        SpecialOrthogonal(3),
        field,
        R0.to(dtype=dtype, device=device),
        0.0,
        1.5,
        solution,
    )


#: Problem name -> factory ``(dtype, device) -> Problem``.
PROBLEMS: dict[str, Callable[..., Problem]] = {
    "sphere_geodesic": sphere_geodesic,
    "sphere_small_circle": sphere_small_circle,
    "sphere_time_dependent": sphere_time_dependent,
    "so3_constant": so3_constant,
    "so3_time_dependent": so3_time_dependent,
}


def get_problem(
    name: str, dtype: torch.dtype = torch.float64, device: torch.device | str | None = None
) -> Problem:
    """The problem called ``name`` (see :data:`PROBLEMS`).

    Raises
    ------
    UnknownChoiceError
        If ``name`` is unknown; the message lists the names.

    Examples
    --------
    >>> get_problem("sphere_small_circle").t1
    1.5
    """
    if name not in PROBLEMS:
        raise UnknownChoiceError(f"unknown problem {name!r}; valid names: {', '.join(PROBLEMS)}")
    return PROBLEMS[name](dtype=dtype, device=device)


# ---------------------------------------------------------------------------- measurements
@dataclass(frozen=True)
class ConvergenceRow:
    """Errors against step size and the fitted slope (the measured order).

    Attributes
    ----------
    problem, method : str
    order : int
        Theoretical order (for a retraction defect: the order of the per-step difference).
    steps : tuple of float
        Step counts (or, for :func:`retraction_defect`, the step sizes ``h``).
    errors : tuple of float
        Max over the batch of the ambient (Frobenius) error.
    slope : float
        Least-squares slope of ``log(error)`` against ``log(h)``.
    """

    problem: str
    method: str
    order: int
    steps: tuple[float, ...]
    errors: tuple[float, ...]
    slope: float


def _fit_slope(hs: Sequence[float], errs: Sequence[float]) -> float:
    xs = [math.log(h) for h in hs]
    ys = [math.log(max(e, 1e-300)) for e in errs]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx


def global_error(problem: Problem, method: str, steps: int, retraction: str | None = None) -> float:
    r"""Max over the batch of :math:`\|x_N - x(t_1)\|_F` after ``steps`` steps of ``method``.

    Examples
    --------
    >>> p = sphere_geodesic()
    >>> global_error(p, "euler", 10) < 1e-14
    True
    """
    with torch.no_grad():
        xN = integrate(
            problem.manifold,
            problem.field,
            problem.x0,
            problem.t1,
            steps,
            method=method,
            t0=problem.t0,
            retraction=retraction,
        )
        d = xN - problem.exact(problem.t1)
        return float(torch.sqrt(problem.manifold._sum(d * d)).max())


def convergence_table(
    problems: Sequence[str] = (
        "sphere_small_circle",
        "sphere_time_dependent",
        "so3_time_dependent",
    ),
    methods: Sequence[str] = tuple(METHODS),
    steps: Sequence[int] | None = None,
    dtype: torch.dtype = torch.float64,
    retraction: str | None = None,
) -> list[ConvergenceRow]:
    r"""Measured orders of convergence: slope of :math:`\log` error against :math:`\log h`.

    Parameters
    ----------
    problems : sequence of str
        Names in :data:`PROBLEMS`.
    methods : sequence of str
        Names in :data:`~manifres.flows.METHODS`.
    steps : sequence of int, optional
        Step counts; default :data:`DEFAULT_STEPS` for each method's order.
    dtype : torch.dtype
        float64 for clean slopes.
    retraction : str, optional
        Retraction of ``"euler"``.

    Returns
    -------
    list of ConvergenceRow
        One row per (problem, method); format with :func:`format_table`.

    Examples
    --------
    >>> rows = convergence_table(["sphere_time_dependent"], ["rkmk2"])
    >>> abs(rows[0].slope - 2) < 0.2
    True
    """
    rows = []
    for name in problems:
        p = get_problem(name, dtype=dtype)
        for m in methods:
            order = METHODS[m] if m in METHODS else 0
            ns = tuple(steps) if steps is not None else DEFAULT_STEPS.get(order, DEFAULT_STEPS[1])
            errs = tuple(global_error(p, m, n, retraction) for n in ns)
            hs = [(p.t1 - p.t0) / n for n in ns]
            rows.append(ConvergenceRow(name, m, order, ns, errs, _fit_slope(hs, errs)))
    return rows


def retraction_defect(
    manifold: Manifold,
    x: Tensor,
    v: Tensor,
    retraction: str,
    hs: Sequence[float] = (0.1, 0.05, 0.025, 0.0125),
    order: int = 3,
) -> ConvergenceRow:
    r"""Per-step difference between a retraction and the exponential map:
    :math:`\max \|R_x(hv) - \exp_x(hv)\|_F` for each ``h`` and the slope against ``h``
    (3 for a second-order retraction, 2 for a first-order one).

    Parameters
    ----------
    manifold : Manifold
    x : Tensor, shape (..., *point_shape)
    v : Tensor, shape (..., *point_shape)
        Tangent vectors at ``x``.
    retraction : str
        A name in ``manifold.retractions``.
    hs : sequence of float
        Step sizes.
    order : int
        The expected slope, stored in the row (3 for a second-order retraction such as the
        sphere's projective one or Cayley and polar on SO(n); 2 for QR).

    Returns
    -------
    ConvergenceRow
        ``steps`` holds the ``hs``.

    Examples
    --------
    >>> import torch, manifres
    >>> S = manifres.Sphere(2)
    >>> x = S.random(8, dtype=torch.float64); v = S.random_tangent(x)
    >>> round(retraction_defect(S, x, v, "projective").slope, 1)
    3.0
    """
    errs = []
    with torch.no_grad():
        for h in hs:
            d = manifold.retract(x, h * v, retraction) - manifold.exp(x, h * v)
            errs.append(float(torch.sqrt(manifold._sum(d * d)).max()))
    return ConvergenceRow(repr(manifold), retraction, order, tuple(hs), tuple(errs), _fit_slope(hs, errs))


def format_table(rows: Sequence[ConvergenceRow]) -> str:
    """A plain-text table of :class:`ConvergenceRow` (problem, method, order, slope, errors).

    Examples
    --------
    >>> rows = [ConvergenceRow("p", "euler", 1, (10, 20), (0.1, 0.05), 1.0)]
    >>> print(format_table(rows))
    problem  method  order  slope  errors
    p        euler       1   1.00  1.0e-01 5.0e-02
    """
    head = ("problem", "method", "order", "slope", "errors")
    body = [
        (
            r.problem,
            r.method,
            str(r.order),
            f"{r.slope:.2f}",
            " ".join(f"{e:.1e}" for e in r.errors),
        )
        for r in rows
    ]
    w = [max(len(x[i]) for x in [head, *body]) for i in range(4)]
    lines = [f"{a:<{w[0]}}  {b:<{w[1]}}  {c:>{w[2]}}  {d:>{w[3]}}  {e}" for a, b, c, d, e in [head, *body]]
    return "\n".join(line.rstrip() for line in lines)
