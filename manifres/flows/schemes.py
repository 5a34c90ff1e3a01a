r"""One-step schemes for manifold ODEs :math:`x' = P_x F(x, t)`: retraction Euler and Lie-group
integrators (Runge-Kutta-Munthe-Kaas, Crouch-Grossman, commutator-free).

The Lie-group schemes need a Lie group :math:`G` acting on the manifold from the left,
:math:`(g, x) \mapsto g \cdot x`, and a map :math:`\xi` from a tangent vector ``v`` at ``x`` to
an algebra element with :math:`\xi(x, v) \cdot x = v` (the infinitesimal action). The field is
frozen to :math:`f(y, t) = \xi(y, P_y F(y, t)) \in \mathfrak{g}` and every update is
:math:`x \mapsto \exp(\Theta) \cdot x`, so the iterates stay on the manifold to rounding.
Each manifold provides its action (:meth:`manifres.Manifold.lie_action`,
:mod:`manifres.manifolds.actions`):

=====================  ==============================  ========================================
manifold               group and action                :math:`\xi(x, v)`
=====================  ==============================  ========================================
``Sphere(n)``          :math:`SO(n+1)`, :math:`Qx`     :math:`v x^T - x v^T` (:math:`x \times v`
                                                       as a rotation vector for ``n = 2``)
``SpecialOrthogonal``  :math:`SO(n)`, :math:`Q R`      :math:`\operatorname{skew}(V R^T)`
                                                       (rotation vector for ``n = 3``)
``Euclidean(n)``       translations, :math:`x + a`     :math:`v` (the schemes become classical RK)
=====================  ==============================  ========================================

A new manifold joins the Lie-group schemes by overriding ``lie_action()``.

An action may also offer ``local(x, size)`` (``Sphere(n)``, ``n != 2``:
:class:`~manifres.manifolds.actions.SphereSubspace`): the step then runs in the span
:math:`\mathcal{K}` of ``x`` and the stage vectors (``size`` = number of stages + 1: 3 for
``rkmk2``/``cg2``, 5 for ``rkmk4``/``cf4``). Every generator of a step on :math:`S^n` is a sum of
rank-2 generators :math:`v_i y_i^T - y_i v_i^T`, their brackets and dexp^{-1} terms, all of
the form :math:`A = Q K Q^T` with an orthonormal basis :math:`Q` of :math:`\mathcal{K}`
(shape ``(B, n+1, size)``) and a small skew core ``K`` (``(B, size, size)``), so that

.. math:: e^{A} y = y + Q (e^{K} - I) Q^T y, \qquad [Q K_1 Q^T, Q K_2 Q^T] = Q [K_1, K_2] Q^T.

Memory is :math:`O(B n)` and an RKMK4 step costs its four field evaluations plus
:math:`O(B\,n)` work per stage, instead of four ``(n+1) x (n+1)`` ``matrix_exp``; the
results equal the dense computation to rounding.

Methods (:data:`METHODS`, name -> order):

* ``"euler"`` (1): :math:`x_1 = R_x(h P_x F(x, t))` with any retraction of the manifold: the
  tangent residual layer. Works on every manifold.
* ``"rkmk2"`` (2): Heun's method in the Lie algebra, :math:`k_1 = h f(x_0, t)`,
  :math:`k_2 = h f(e^{k_1} x_0, t + h)`, :math:`x_1 = \exp(\tfrac12(k_1 + k_2)) x_0`.
* ``"rkmk4"`` (4): classical RK4 on
  :math:`\Theta' = \operatorname{dexp}^{-1}_\Theta f(e^\Theta x_0)`, with
  :math:`\operatorname{dexp}^{-1}_u(k) \approx k - \tfrac12[u, k] + \tfrac1{12}[u,[u,k]]`
  (truncated after the :math:`B_2` term: the next Bernoulli term, :math:`B_3`, vanishes,
  so the truncation error is :math:`O(h^5)` per step; Hairer-Lubich-Wanner IV.8.2).
* ``"cg2"`` (2): Crouch-Grossman with Heun's tableau,
  :math:`x_1 = e^{h F_2/2} e^{h F_1/2} x_0`, :math:`F_2 = f(e^{h F_1} x_0, t + h)`.
* ``"cf4"`` (4): the commutator-free method of Celledoni, Marthinsen and Owren (2003): five
  exponentials, no commutators.

References
----------
H. Munthe-Kaas, "High order Runge-Kutta methods on manifolds", Appl. Numer. Math. 29 (1999).
E. Celledoni, A. Marthinsen, B. Owren, "Commutator-free Lie group methods", FGCS 19 (2003).
E. Hairer, C. Lubich, G. Wanner, "Geometric Numerical Integration", 2nd ed., IV.8.

Examples
--------
>>> import torch, manifres
>>> from manifres.flows import get_stepper
>>> S = manifres.Sphere(2)
>>> A = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
>>> step = get_stepper(S, "rkmk4")
>>> x = torch.tensor([1.0, 0.0, 0.0])
>>> step(lambda x: A @ x, x, 0.0, torch.pi / 2).round(decimals=6)
tensor([0., 1., 0.])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from .._deprecation import warn_renamed
from ..errors import UnknownChoiceError
from ..manifolds.actions import LieGroupAction
from ..manifolds.base import Manifold
from .evaluation import evaluate_field, is_time_dependent

__all__ = [
    "METHODS",
    "LieGroupAction",
    "get_stepper",
    "Stepper",
]

#: Method name -> order of convergence.
METHODS: dict[str, int] = {"euler": 1, "rkmk2": 2, "rkmk4": 4, "cg2": 2, "cf4": 4}

#: ``Stepper(field, x, t, h, time_dependent=None) -> x_next``.
Stepper = Callable[..., Tensor]


def lie_action(manifold: Manifold) -> LieGroupAction:
    """Deprecated: ``manifold.lie_action()`` (the action lives with the manifold)."""
    warn_renamed("manifres.flows", "lie_action(manifold)", "manifold.lie_action()")
    return manifold.lie_action()


# ---------------------------------------------------------------------------- tableaux
@dataclass(frozen=True)
class _RKMK:
    a: Sequence[Sequence[float]]
    b: Sequence[float]
    c: Sequence[float]
    q: int  # dexp^{-1} truncated after the B_q term


@dataclass(frozen=True)
class _CommutatorFree:
    c: Sequence[float]
    # stage i: exponentials applied to x0 one after the other, each a combination of F_1..F_{i-1}
    stages: Sequence[Sequence[Sequence[float]]]
    final: Sequence[Sequence[float]]


_SCHEMES: dict[str, _RKMK | _CommutatorFree] = {
    "rkmk2": _RKMK(a=[[], [1.0]], b=[0.5, 0.5], c=[0.0, 1.0], q=0),
    "rkmk4": _RKMK(
        a=[[], [0.5], [0.0, 0.5], [0.0, 0.0, 1.0]],
        b=[1 / 6, 1 / 3, 1 / 3, 1 / 6],
        c=[0.0, 0.5, 0.5, 1.0],
        q=2,
    ),
    "cg2": _CommutatorFree(c=[0.0, 1.0], stages=[[], [[1.0]]], final=[[0.5, 0.0], [0.0, 0.5]]),
    "cf4": _CommutatorFree(
        c=[0.0, 0.5, 0.5, 1.0],
        stages=[[], [[0.5]], [[0.0, 0.5]], [[0.5], [-0.5, 0.0, 1.0]]],
        final=[[3 / 12, 2 / 12, 2 / 12, -1 / 12], [-1 / 12, 2 / 12, 2 / 12, 3 / 12]],
    ),
}

# B_k / k! for the dexp^{-1} series
_DEXPINV = (1.0, -0.5, 1 / 12)


def _combine(coeffs: Sequence[float], ks: Sequence[Tensor]) -> Tensor | None:
    out = None
    for c, k in zip(coeffs, ks, strict=False):
        if c != 0.0:
            out = c * k if out is None else out + c * k
    return out


def _dexpinv(action: LieGroupAction, u: Tensor, k: Tensor, q: int) -> Tensor:
    out, ad = k, k
    for m in range(1, q + 1):
        ad = action.bracket(u, ad)
        out = out + _DEXPINV[m] * ad
    return out


class _EulerStepper:
    def __init__(self, manifold: Manifold, retraction: str | None) -> None:
        self.manifold = manifold
        self.retract = manifold.retraction(retraction)

    def __call__(self, field: Callable, x: Tensor, t, h, time_dependent: bool | None = None) -> Tensor:
        v = evaluate_field(field, x, t, time_dependent)
        return self.retract(x, h * self.manifold.proj(x, v))


class _LieStepper:
    def __init__(self, manifold: Manifold, scheme: _RKMK | _CommutatorFree) -> None:
        self.manifold = manifold
        self.action = manifold.lie_action()
        self.scheme = scheme

    def __call__(self, field: Callable, x: Tensor, t, h, time_dependent: bool | None = None) -> Tensor:
        td = is_time_dependent(field) if time_dependent is None else time_dependent
        local = getattr(self.action, "local", None)
        if local is None:  # points and algebra elements as the action defines them
            act, start, ambient = self.action, x, None
        else:  # a low-rank action in the span of the stage vectors (SphereSubspace)
            act = local(x, len(self.scheme.c) + 1)
            start, ambient = act.origin, act.ambient
        proj = self.manifold.proj

        def frozen(y: Tensor, t_i) -> Tensor:
            """The field frozen in the algebra, f(y, t) = xi(y, P_y F(y, t))."""
            p = y if ambient is None else ambient(y)
            return act.algebra(y, proj(p, evaluate_field(field, p, t_i, td)))

        if isinstance(self.scheme, _RKMK):
            out = _rkmk(self.scheme, act, frozen, start, t, h)
        else:
            out = _commutator_free(self.scheme, act, frozen, start, t, h)
        return out if ambient is None else _normalize(ambient(out))


def _normalize(x: Tensor) -> Tensor:
    return x / torch.sqrt((x * x).sum(-1, keepdim=True).clamp_min(torch.finfo(x.dtype).tiny))


def _rkmk(s: _RKMK, act: LieGroupAction, frozen: Callable, x: Tensor, t, h) -> Tensor:
    ks: list[Tensor] = []
    for a_i, c_i in zip(s.a, s.c, strict=True):
        u = _combine(a_i, ks)
        y = x if u is None else act.act(u, x)
        k = h * frozen(y, t + c_i * h)
        if u is not None and s.q > 0:
            k = _dexpinv(act, u, k, s.q)
        ks.append(k)
    return act.act(_combine(s.b, ks), x)


def _commutator_free(s: _CommutatorFree, act: LieGroupAction, frozen: Callable, x: Tensor, t, h) -> Tensor:
    fs: list[Tensor] = []
    for exps, c_i in zip(s.stages, s.c, strict=True):
        y = x
        for coeffs in exps:
            y = act.act(h * _combine(coeffs, fs), y)
        fs.append(frozen(y, t + c_i * h))
    y = x
    for coeffs in s.final:
        y = act.act(h * _combine(coeffs, fs), y)
    return y


def get_stepper(manifold: Manifold, method: str = "euler", retraction: str | None = None) -> Stepper:
    r"""Return the one-step map ``step(field, x, t, h, time_dependent=None) -> x_next``.

    Parameters
    ----------
    manifold : Manifold
    method : str
        One of :data:`METHODS`: ``"euler"``, ``"rkmk2"``, ``"rkmk4"``, ``"cg2"``, ``"cf4"``.
    retraction : str, optional
        The retraction of ``"euler"`` (a name in ``manifold.retractions``, default the
        first). The Lie-group methods use the group exponential and take no retraction.

    Returns
    -------
    callable
        ``step(field, x, t, h, time_dependent=None)`` with ``x`` of shape
        ``(..., *point_shape)``, ``t`` and ``h`` floats or 0-dim tensors, returning the point
        after one step. It checks the field's output shape and dtype but not ``x``. The
        object is picklable (no closures).

    Raises
    ------
    UnknownChoiceError
        If ``method`` is unknown (the message lists :data:`METHODS`), if ``retraction`` is
        unknown to the manifold or given with a Lie-group method, or if the manifold has no
        Lie-group action for a Lie-group method.

    Examples
    --------
    >>> import torch, manifres
    >>> E = manifres.Euclidean(1)
    >>> step = get_stepper(E, "rkmk4")  # classical RK4 on R^n
    >>> step(lambda x: x, torch.tensor([1.0], dtype=torch.float64), 0.0, 1.0)
    tensor([2.7083], dtype=torch.float64)
    """
    if method not in METHODS:
        raise UnknownChoiceError(f"unknown method {method!r}; valid names: {', '.join(METHODS)}")
    if method == "euler":
        return _EulerStepper(manifold, retraction)
    if retraction is not None:
        raise UnknownChoiceError(
            f"retraction={retraction!r} applies to method='euler' only; {method!r} moves by the "
            "group exponential (pass retraction=None)"
        )
    return _LieStepper(manifold, _SCHEMES[method])
