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

__all__ = ["LieGroupAction", "SphereRotation2", "SphereRotation", "SphereSubspace",
           "LeftMultiplication3", "LeftMultiplication",
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
    r"""SO(n+1) on S^n: ``xi = v x^T - x v^T`` (skew matrices), ``act = matrix_exp(xi) x``.

    :meth:`algebra`, :meth:`act` and :meth:`bracket` are the dense reference, with algebra
    elements of shape ``(..., n+1, n+1)``. The integrators of :mod:`manifres.flows` do not use
    them: they call :meth:`local`, which works in the span of the stage vectors (at most
    ``size`` columns) and never builds an ``(n+1) x (n+1)`` matrix.
    """

    def algebra(self, x: Tensor, v: Tensor) -> Tensor:
        vx = v.unsqueeze(-1) * x.unsqueeze(-2)
        return vx - vx.mT

    def act(self, xi: Tensor, x: Tensor) -> Tensor:
        return _normalize((torch.linalg.matrix_exp(xi) @ x.unsqueeze(-1)).squeeze(-1))

    def bracket(self, a: Tensor, b: Tensor) -> Tensor:
        return _commutator(a, b)

    def local(self, x: Tensor, size: int) -> SphereSubspace:
        """The low-rank action around ``x`` for a step with ``size - 1`` field evaluations
        (see :class:`SphereSubspace`)."""
        return SphereSubspace(x, size)


class SphereSubspace(LieGroupAction):
    r"""The action of SO(n+1) on S^n restricted to a small subspace, for one integrator step.

    Every generator of a Lie-group step on the sphere is a combination of the rank-2
    generators :math:`\xi(y_i, v_i) = v_i y_i^T - y_i v_i^T` of its stages, their brackets
    and dexp^{-1} terms, and every stage point :math:`y_i` is :math:`e^{A} x_0` with such an
    ``A``. All of them live in :math:`\mathcal{K} = \operatorname{span}(x_0, v_1, v_2, \dots)`.
    This class keeps an orthonormal basis :math:`Q` of :math:`\mathcal{K}`, shape
    ``(..., n+1, m)`` with ``m <= size``, grown by one column (two-pass Gram-Schmidt) at each
    :meth:`algebra` call, and represents

    * a point :math:`y \in \mathcal{K}` by its coordinates ``c``, shape ``(..., size)``,
      :math:`y = Q c` (trailing entries zero);
    * a generator :math:`A = Q K Q^T` by the small skew core ``K = Q^T A Q``, shape
      ``(..., size, size)``; sums and brackets act on the cores,
      :math:`[Q K_1 Q^T, Q K_2 Q^T] = Q [K_1, K_2] Q^T`;
    * the action by :math:`e^{A} y = y + Q (e^{K} - I) Q^T y = Q e^{K} c`, a ``size x size``
      ``matrix_exp``.

    Memory and time are :math:`O(B\,n\,\mathrm{size})` per stage (:math:`O(B\, n^3)` for the
    dense :class:`SphereRotation`), and the results equal the dense action to rounding.

    Parameters
    ----------
    x : Tensor, shape (..., n+1)
        The starting point (unit norm).
    size : int
        Largest number of basis columns: one for ``x`` plus one per :meth:`algebra` call.

    Examples
    --------
    >>> import torch
    >>> x = torch.tensor([1.0, 0.0, 0.0, 0.0]); v = torch.tensor([0.0, 2.0, 0.0, 0.0])
    >>> loc = SphereRotation().local(x, 2)
    >>> k = loc.algebra(loc.origin, v)
    >>> loc.ambient(loc.act(torch.pi / 4 * k, loc.origin)).round(decimals=6)
    tensor([0., 1., 0., 0.])
    """

    def __init__(self, x: Tensor, size: int) -> None:
        nrm = torch.sqrt((x * x).sum(-1, keepdim=True))
        self.size = size
        self._m = 1
        # Q^T, shape (..., m, n+1): rows are the columns of Q. Without autograd the rows are
        # written into one preallocated (..., size, n+1) buffer; with it, concatenated.
        self._inplace = not torch.is_grad_enabled()
        if self._inplace:
            self._qt = x.new_zeros((*x.shape[:-1], size, x.shape[-1]))
            self._qt[..., 0, :] = x / nrm
        else:
            self._qt = (x / nrm).unsqueeze(-2)
        self.origin = torch.cat([nrm, nrm.new_zeros((*nrm.shape[:-1], size - 1))], -1)

    @property
    def rank(self) -> int:
        """The number ``m`` of basis columns so far."""
        return self._m

    def _rows(self) -> Tensor:
        return self._qt[..., : self._m, :]

    def basis(self) -> Tensor:
        """The orthonormal basis :math:`Q`, shape ``(..., n+1, m)``."""
        return self._rows().mT

    @staticmethod
    def _coords(qt: Tensor, v: Tensor) -> Tensor:  # Q^T v, (..., m): (1 x n+1) @ (n+1 x m)
        return (v.unsqueeze(-2) @ qt.mT).squeeze(-2)

    @staticmethod
    def _span(qt: Tensor, d: Tensor) -> Tensor:  # Q d, (..., n+1): (1 x m) @ (m x n+1)
        return (d.unsqueeze(-2) @ qt).squeeze(-2)

    def ambient(self, c: Tensor) -> Tensor:
        """The point :math:`Q c`, shape ``(..., n+1)``, from coordinates ``(..., size)``."""
        return self._span(self._rows(), c[..., : self._m])

    def algebra(self, c: Tensor, v: Tensor) -> Tensor:
        r"""Core :math:`K = d c^T - c d^T` of :math:`\xi(y, v) = v y^T - y v^T`, ``y = Q c``,
        after adding the part of ``v`` (shape ``(..., n+1)``) outside :math:`\mathcal{K}` to the
        basis (:math:`v = Q d` afterwards). Shape ``(..., size, size)``."""
        m = self._m
        if m >= self.size:
            raise RuntimeError(f"SphereSubspace: more than {self.size - 1} algebra() calls")
        qt = self._rows()
        d = self._coords(qt, v)
        r = v - self._span(qt, d)
        d2 = self._coords(qt, r)  # second pass: orthogonal to rounding
        r = r - self._span(qt, d2)
        q = _normalize(r)
        batch = torch.broadcast_shapes(self._qt.shape[:-2], q.shape[:-1])
        n1 = q.shape[-1]
        if self._inplace:
            if batch != self._qt.shape[:-2]:
                self._qt = self._qt.expand(*batch, self.size, n1).clone()
            self._qt[..., m, :] = q
        else:
            self._qt = torch.cat([self._qt.expand(*batch, m, n1), q.unsqueeze(-2).expand(*batch, 1, n1)], -2)
        self._m = m + 1
        d = torch.cat([d + d2, (q * r).sum(-1, keepdim=True)], -1)
        d = torch.cat([d, d.new_zeros((*d.shape[:-1], self.size - m - 1))], -1)
        d, c = torch.broadcast_tensors(d, c)
        dc = d.unsqueeze(-1) * c.unsqueeze(-2)
        return dc - dc.mT

    def act(self, xi: Tensor, c: Tensor) -> Tensor:
        """Coordinates :math:`e^{K} c` of :math:`e^{A} y`, normalised like :meth:`SphereRotation.act`
        (``Q`` is orthonormal: the norm of the coordinates is the norm of the point)."""
        return _normalize((torch.linalg.matrix_exp(xi) @ c.unsqueeze(-1)).squeeze(-1))

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
