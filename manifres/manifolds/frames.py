r"""Orthonormal tangent frames: coordinates on the tangent spaces of a manifold.

A *frame* at a flat batch of points ``x`` of shape ``(B, *point_shape)`` is a linear map
:math:`B_x` from coordinates ``c`` of shape ``(B, k)`` (``k = manifold.dim``) to ambient tangent
vectors of shape ``(B, *point_shape)``, with columns orthonormal in the manifold's metric;
:meth:`Frame.coords` is its adjoint :math:`B_x^T`. Frames act matrix-free (so Krylov methods
never build a ``D x D`` matrix) and give their dense matrix on demand.

Each manifold chooses its frame (:meth:`manifres.Manifold.tangent_frame`):

* :class:`~manifres.Euclidean`: the identity.
* :class:`~manifres.Sphere`: the last ``n`` columns of the Householder reflection
  :math:`H = I - 2 u u^T / \|u\|^2`, :math:`u = x + s e_0`, :math:`s = \operatorname{sign} x_0`
  (``+1`` at 0), which maps :math:`e_0` to :math:`-s x`; :math:`\|u\|^2 \ge 2` keeps it exact
  everywhere (the frame jumps where :math:`x_0` changes sign).
* :class:`~manifres.SpecialOrthogonal`: :math:`R\,\hat e_k / \sqrt 2`, the left-translated
  basis of :meth:`~manifres.SpecialOrthogonal.hat` (orthonormal in the Frobenius metric).
* the default of the contract (a manifold embedded with the Euclidean metric that defines no
  frame): the eigenvectors of the projection matrix ``proj(x, .)`` with eigenvalue 1 (dense,
  :math:`O(D^3)`). A manifold with another metric must override it.

:class:`TransportedFrame` carries a frame along the manifold's parallel transport.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import Tensor

if TYPE_CHECKING:  # pragma: no cover
    from .base import Manifold

__all__ = [
    "Frame",
    "IdentityFrame",
    "HouseholderFrame",
    "LeftTranslatedFrame",
    "ProjectionFrame",
    "TransportedFrame",
]


class Frame:
    """Orthonormal frame of :math:`T_x M` for a flat batch ``x`` of shape ``(B, *point_shape)``.

    Attributes
    ----------
    x : Tensor, shape (B, *point_shape)
    point_shape : tuple of int
    k : int
        Number of frame vectors (the intrinsic dimension).
    """

    def __init__(self, x: Tensor, point_shape: tuple[int, ...], k: int) -> None:
        self.x = x
        self.point_shape = tuple(point_shape)
        self.k = k

    def apply(self, c: Tensor) -> Tensor:
        """Tangent vectors :math:`B_x c`, shape ``(B, *point_shape)``, from ``c`` of shape ``(B, k)``."""
        raise NotImplementedError

    def coords(self, v: Tensor) -> Tensor:
        """Coordinates :math:`B_x^T v`, shape ``(B, k)``, of ambient ``v`` of shape ``(B, *point_shape)``."""
        raise NotImplementedError

    def matrix(self) -> Tensor:
        """Dense frame, shape ``(B, D, k)`` with ``D = prod(point_shape)`` (row-major)."""
        b = self.x.shape[0]
        eye = torch.eye(self.k, dtype=self.x.dtype, device=self.x.device)
        cols = torch.vmap(self.apply, in_dims=1, out_dims=1)(eye.expand(b, self.k, self.k))
        return cols.reshape(b, self.k, math.prod(self.point_shape)).transpose(1, 2)


class IdentityFrame(Frame):
    """The standard basis of :math:`\\mathbb{R}^D` (flat spaces)."""

    def apply(self, c: Tensor) -> Tensor:
        return c.reshape(c.shape[:1] + self.point_shape)

    def coords(self, v: Tensor) -> Tensor:
        return v.reshape(v.shape[0], -1)

    def matrix(self) -> Tensor:
        eye = torch.eye(self.k, dtype=self.x.dtype, device=self.x.device)
        return eye.expand(self.x.shape[0], self.k, self.k)


class HouseholderFrame(Frame):
    """The sphere's frame: the last ``n`` columns of a Householder reflection (module notes)."""

    def __init__(self, x: Tensor) -> None:
        super().__init__(x, tuple(x.shape[1:]), x.shape[-1] - 1)
        s = torch.where(x[:, :1] >= 0, torch.ones_like(x[:, :1]), -torch.ones_like(x[:, :1]))
        self.u = torch.cat([x[:, :1] + s, x[:, 1:]], dim=-1)
        self.c = 2.0 / (self.u * self.u).sum(-1, keepdim=True)  # |u|^2 = 2 (1 + |x_0|) >= 2

    def apply(self, c: Tensor) -> Tensor:
        full = torch.cat([torch.zeros_like(c[:, :1]), c], dim=-1)
        return full - self.c * (self.u[:, 1:] * c).sum(-1, keepdim=True) * self.u

    def coords(self, v: Tensor) -> Tensor:
        hv = v - self.c * (self.u * v).sum(-1, keepdim=True) * self.u
        return hv[:, 1:]

    def matrix(self) -> Tensor:
        eye = torch.eye(self.k + 1, dtype=self.x.dtype, device=self.x.device)[:, 1:]
        return eye - self.c[..., None] * self.u[:, :, None] * self.u[:, None, 1:]


class LeftTranslatedFrame(Frame):
    """:math:`R\\,E_k` for an orthonormal basis ``E`` of skew matrices, shape ``(k, n, n)``."""

    def __init__(self, x: Tensor, basis: Tensor) -> None:
        super().__init__(x, tuple(x.shape[1:]), basis.shape[0])
        self.basis = basis

    def apply(self, c: Tensor) -> Tensor:
        return self.x @ torch.einsum("bm,mij->bij", c, self.basis)

    def coords(self, v: Tensor) -> Tensor:
        return torch.einsum("bij,mij->bm", self.x.transpose(-1, -2) @ v, self.basis)


class ProjectionFrame(Frame):
    """Eigenvectors of the tangent projection with eigenvalue 1 (any embedded manifold)."""

    def __init__(self, manifold: Manifold, x: Tensor) -> None:
        point_shape = tuple(manifold.point_shape)
        super().__init__(x, point_shape, manifold.dim)
        d = math.prod(point_shape)
        b = x.shape[0]
        eye = torch.eye(d, dtype=x.dtype, device=x.device).reshape((1, d) + point_shape)
        p = manifold.proj(x.unsqueeze(1), eye.expand((b, d) + point_shape)).reshape(b, d, d)
        p = 0.5 * (p + p.transpose(1, 2))
        self.basis = torch.linalg.eigh(p).eigenvectors[..., d - self.k :]

    def apply(self, c: Tensor) -> Tensor:
        return (self.basis @ c.unsqueeze(-1)).reshape(c.shape[:1] + self.point_shape)

    def coords(self, v: Tensor) -> Tensor:
        return (self.basis.transpose(1, 2) @ v.reshape(v.shape[0], -1, 1)).squeeze(-1)

    def matrix(self) -> Tensor:
        return self.basis


class TransportedFrame(Frame):
    """The frame ``base`` at ``base.x`` carried to ``y`` by the manifold's parallel transport."""

    def __init__(self, manifold: Manifold, base: Frame, y: Tensor) -> None:
        super().__init__(y, base.point_shape, base.k)
        self.manifold = manifold
        self.base = base

    def apply(self, c: Tensor) -> Tensor:
        return self.manifold.transport(self.base.x, self.x, self.base.apply(c))

    def coords(self, v: Tensor) -> Tensor:
        w = self.manifold.proj(self.x, v)
        return self.base.coords(self.manifold.transport(self.x, self.base.x, w))

    def matrix(self) -> Tensor:
        b, k, ps = self.x.shape[0], self.k, self.point_shape
        cols = self.base.matrix().transpose(1, 2).reshape((b, k) + ps)
        moved = self.manifold.transport(self.base.x.unsqueeze(1), self.x.unsqueeze(1), cols)
        return moved.reshape(b, k, math.prod(ps)).transpose(1, 2)
