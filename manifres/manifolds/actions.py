r"""Left actions of Lie groups on the manifolds, for the Lie-group integrators.

The Runge-Kutta-Munthe-Kaas, Crouch-Grossman and commutator-free schemes of
:mod:`manifres.flows` move points by :math:`x \mapsto \exp(\xi)\cdot x`. Each manifold offers its
action through :meth:`manifres.Manifold.lie_action`:

=====================  ==============================  ========================================
manifold               group and action                :math:`\xi(x, v)`
=====================  ==============================  ========================================
``Sphere(n)``          :math:`SO(n+1)`, :math:`Qx`     :math:`v x^T - x v^T` (:math:`x \times v`
                                                       as a rotation vector for ``n = 2``)
``SpecialOrthogonal``  :math:`SO(n)`, :math:`Q R`      :math:`\operatorname{skew}(V R^T)`
                                                       (rotation vector for ``n = 3``)
``Euclidean(n)``       translations, :math:`x + a`     :math:`v` (the schemes become classical RK)
=====================  ==============================  ========================================

Examples
--------
>>> import torch, manifres
>>> act = manifres.Sphere(2).lie_action()
>>> x = torch.tensor([1.0, 0.0, 0.0]); v = torch.tensor([0.0, 2.0, 0.0])
>>> act.algebra(x, v)  # rotation vector x cross v
tensor([0., 0., 2.])
"""

from __future__ import annotations

import torch
from torch import Tensor

from .._numerics import rodrigues_coefficients
from . import so3

__all__ = ["LieGroupAction", "SphereRotation2", "SphereRotation", "LeftMultiplication3", "LeftMultiplication",
           "Translation"]


def _cross(a: Tensor, b: Tensor) -> Tensor:
    a, b = torch.broadcast_tensors(a, b)
    return torch.linalg.cross(a, b, dim=-1)


def _commutator(a: Tensor, b: Tensor) -> Tensor:
    return a @ b - b @ a


def _normalize(x: Tensor) -> Tensor:
    return x / torch.sqrt((x * x).sum(-1, keepdim=True).clamp_min(torch.finfo(x.dtype).tiny))


class LieGroupAction:
    r"""A left action of a matrix Lie group on a manifold.

    Subclasses implement three maps (batch axes in front, broadcasting):

    * :meth:`algebra` ``(x, v) -> xi`` with :math:`\xi \cdot x = v` for tangent ``v``;
    * :meth:`act` ``(xi, x) -> exp(xi) . x``;
    * :meth:`bracket` ``(a, b) -> [a, b]``, the Lie bracket of the algebra.
    """

    def algebra(self, x: Tensor, v: Tensor) -> Tensor:
        """Algebra element :math:`\\xi(x, v)` with :math:`\\xi \\cdot x = v`."""
        raise NotImplementedError

    def act(self, xi: Tensor, x: Tensor) -> Tensor:
        """The point :math:`\\exp(\\xi) \\cdot x`."""
        raise NotImplementedError

    def bracket(self, a: Tensor, b: Tensor) -> Tensor:
        """The Lie bracket :math:`[a, b]`."""
        raise NotImplementedError


class SphereRotation2(LieGroupAction):
    """SO(3) on S^2 with so(3) as rotation vectors: ``xi = x cross v``, bracket = cross product."""

    def algebra(self, x: Tensor, v: Tensor) -> Tensor:
        return _cross(x, v)

    def act(self, xi: Tensor, x: Tensor) -> Tensor:
        t2 = (xi * xi).sum(-1, keepdim=True)
        s, h = rodrigues_coefficients(t2)
        wx = _cross(xi, x)
        return _normalize(x + s * wx + h * _cross(xi, wx))

    def bracket(self, a: Tensor, b: Tensor) -> Tensor:
        return _cross(a, b)


class SphereRotation(LieGroupAction):
    """SO(n+1) on S^n: ``xi = v x^T - x v^T`` (skew matrices), ``act = matrix_exp(xi) x``."""

    def algebra(self, x: Tensor, v: Tensor) -> Tensor:
        vx = v.unsqueeze(-1) * x.unsqueeze(-2)
        return vx - vx.mT

    def act(self, xi: Tensor, x: Tensor) -> Tensor:
        return _normalize((torch.linalg.matrix_exp(xi) @ x.unsqueeze(-1)).squeeze(-1))

    def bracket(self, a: Tensor, b: Tensor) -> Tensor:
        return _commutator(a, b)


class LeftMultiplication3(LieGroupAction):
    """SO(3) on itself by left multiplication, so(3) as rotation vectors."""

    def algebra(self, x: Tensor, v: Tensor) -> Tensor:
        return so3._vee(v @ x.mT)  # the skew part

    def act(self, xi: Tensor, x: Tensor) -> Tensor:
        return so3._exp(xi) @ x

    def bracket(self, a: Tensor, b: Tensor) -> Tensor:
        return _cross(a, b)


class LeftMultiplication(LieGroupAction):
    """SO(n) on itself by left multiplication, so(n) as skew matrices."""

    def algebra(self, x: Tensor, v: Tensor) -> Tensor:
        m = v @ x.mT
        return 0.5 * (m - m.mT)

    def act(self, xi: Tensor, x: Tensor) -> Tensor:
        return torch.linalg.matrix_exp(xi) @ x

    def bracket(self, a: Tensor, b: Tensor) -> Tensor:
        return _commutator(a, b)


class Translation(LieGroupAction):
    """R^n acting on itself by translation: the schemes reduce to classical Runge-Kutta."""

    def algebra(self, x: Tensor, v: Tensor) -> Tensor:
        return v

    def act(self, xi: Tensor, x: Tensor) -> Tensor:
        return x + xi

    def bracket(self, a: Tensor, b: Tensor) -> Tensor:
        return torch.zeros_like(a + b)
