"""Orthonormal tangent frames, to restrict Jacobians of manifold blocks to tangent spaces.

A *frame* at a batch of points ``x`` is a linear map from coordinates ``c`` of shape
``(B, k)`` (``k`` the intrinsic dimension) to ambient tangent vectors ``B_x c`` of shape
``(B, *point_shape)`` whose columns are orthonormal in the ambient (Frobenius) metric;
``coords`` is its adjoint ``B_x^T``. Frames act matrix-free, so the Krylov path of
:func:`manifres.stability.jacobian_spectrum` never builds a ``D x D`` matrix.

Frames used:

* Euclidean space (and no manifold): the identity.
* The sphere :math:`S^n`: the last ``n`` columns of the Householder reflection
  :math:`H = I - 2 u u^T / \\|u\\|^2`, :math:`u = x + s e_0`, :math:`s = \\operatorname{sign} x_0`
  (``+1`` at 0), which maps :math:`e_0` to :math:`-s x`. ``\\|u\\|^2 \\ge 2`` keeps it exact
  everywhere; the frame jumps where :math:`x_0` changes sign.
* Matrix manifolds of point shape ``(n, n)`` (duck-typed as :math:`SO(n)`):
  :math:`R E_{ij}`, :math:`E_{ij} = (e_i e_j^T - e_j e_i^T)/\\sqrt2`, ``i < j`` in row-major
  order: the left-translated basis of skew matrices, orthonormal in the Frobenius metric.
* Any other embedded manifold: the eigenvectors of the projection matrix ``proj(x, .)`` with
  eigenvalue 1 (dense, ``O(D^3)``).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .._validation import check_floating
from ..errors import ShapeError, UnknownChoiceError
from ..manifolds.base import Manifold
from ..manifolds.euclidean import Euclidean
from ..manifolds.sphere import Sphere

__all__ = ["tangent_basis", "FRAMES"]

#: How the frame at the output ``y = block(x)`` is chosen (see :func:`jacobian_spectrum`).
FRAMES = ("transport", "basis")


class _Frame:
    """Orthonormal frame of ``T_x`` for a flat batch ``x`` of shape ``(B, *point_shape)``."""

    def __init__(self, x: Tensor, point_shape: tuple[int, ...], k: int) -> None:
        self.x = x
        self.point_shape = point_shape
        self.k = k

    def apply(self, c: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def coords(self, v: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def matrix(self) -> Tensor:
        """Dense frame, shape ``(B, D, k)`` with ``D = prod(point_shape)``."""
        b = self.x.shape[0]
        eye = torch.eye(self.k, dtype=self.x.dtype, device=self.x.device)
        cols = torch.vmap(self.apply, in_dims=1, out_dims=1)(eye.expand(b, self.k, self.k))
        return cols.reshape(b, self.k, -1).transpose(1, 2)


class _IdentityFrame(_Frame):
    def apply(self, c: Tensor) -> Tensor:
        return c.reshape(c.shape[:1] + self.point_shape)

    def coords(self, v: Tensor) -> Tensor:
        return v.reshape(v.shape[0], -1)

    def matrix(self) -> Tensor:
        eye = torch.eye(self.k, dtype=self.x.dtype, device=self.x.device)
        return eye.expand(self.x.shape[0], self.k, self.k)


class _HouseholderFrame(_Frame):
    def __init__(self, x: Tensor, point_shape: tuple[int, ...], k: int) -> None:
        super().__init__(x, point_shape, k)
        s = torch.where(x[:, :1] >= 0, torch.ones_like(x[:, :1]), -torch.ones_like(x[:, :1]))
        u = x.clone()
        u[:, :1] = x[:, :1] + s
        self.u = u
        self.c = 2.0 / (u * u).sum(-1, keepdim=True)  # |u|^2 = 2 (1 + |x_0|) >= 2

    def apply(self, c: Tensor) -> Tensor:
        full = torch.cat([torch.zeros_like(c[:, :1]), c], dim=-1)
        return full - self.c * (self.u[:, 1:] * c).sum(-1, keepdim=True) * self.u

    def coords(self, v: Tensor) -> Tensor:
        hv = v - self.c * (self.u * v).sum(-1, keepdim=True) * self.u
        return hv[:, 1:]

    def matrix(self) -> Tensor:
        eye = torch.eye(self.k + 1, dtype=self.x.dtype, device=self.x.device)[:, 1:]
        return eye - self.c[..., None] * self.u[:, :, None] * self.u[:, None, 1:]


class _SkewFrame(_Frame):
    def __init__(self, x: Tensor, point_shape: tuple[int, ...], k: int) -> None:
        super().__init__(x, point_shape, k)
        n = point_shape[0]
        self.iu = torch.triu_indices(n, n, offset=1, device=x.device)
        e = torch.zeros(k, n, n, dtype=x.dtype, device=x.device)
        m = torch.arange(k, device=x.device)
        e[m, self.iu[0], self.iu[1]] = 1.0 / math.sqrt(2.0)
        self.skew = e - e.transpose(-1, -2)  # (k, n, n): the basis E_ij

    def apply(self, c: Tensor) -> Tensor:
        return self.x @ torch.einsum("bm,mij->bij", c, self.skew)

    def coords(self, v: Tensor) -> Tensor:
        m = self.x.transpose(-1, -2) @ v
        return (m[..., self.iu[0], self.iu[1]] - m[..., self.iu[1], self.iu[0]]) / math.sqrt(2.0)


class _ProjectionFrame(_Frame):
    def __init__(self, manifold: Manifold, x: Tensor, point_shape: tuple[int, ...], k: int) -> None:
        super().__init__(x, point_shape, k)
        d = math.prod(point_shape)
        b = x.shape[0]
        eye = torch.eye(d, dtype=x.dtype, device=x.device).reshape((1, d) + point_shape)
        p = manifold.proj(x.unsqueeze(1), eye.expand((b, d) + point_shape)).reshape(b, d, d)
        p = 0.5 * (p + p.transpose(1, 2))
        self.basis = torch.linalg.eigh(p).eigenvectors[..., d - k :]

    def apply(self, c: Tensor) -> Tensor:
        return (self.basis @ c.unsqueeze(-1)).reshape(c.shape[:1] + self.point_shape)

    def coords(self, v: Tensor) -> Tensor:
        return (self.basis.transpose(1, 2) @ v.reshape(v.shape[0], -1, 1)).squeeze(-1)

    def matrix(self) -> Tensor:
        return self.basis


class _TransportedFrame(_Frame):
    """The frame at ``x`` carried to ``y`` by the manifold's parallel transport."""

    def __init__(self, manifold: Manifold, base: _Frame, y: Tensor) -> None:
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
        return moved.reshape(b, k, -1).transpose(1, 2)


def _frame(manifold: Manifold | None, x: Tensor, point_shape: tuple[int, ...]) -> _Frame:
    """Frame at the flat batch ``x`` of shape ``(B, *point_shape)``."""
    if manifold is None or isinstance(manifold, Euclidean):
        return _IdentityFrame(x, point_shape, math.prod(point_shape))
    if isinstance(manifold, Sphere):
        return _HouseholderFrame(x, point_shape, manifold.dim)
    if len(point_shape) == 2 and point_shape[0] == point_shape[1]:
        n = point_shape[0]
        return _SkewFrame(x, point_shape, n * (n - 1) // 2)
    return _ProjectionFrame(manifold, x, point_shape, manifold.dim)


def _output_frame(manifold: Manifold | None, fx: _Frame, y: Tensor, frame: str) -> _Frame:
    if frame not in FRAMES:
        raise UnknownChoiceError(f"unknown frame {frame!r}; valid names: {', '.join(FRAMES)}")
    if manifold is None or isinstance(manifold, Euclidean):
        return _IdentityFrame(y, fx.point_shape, fx.k)
    if frame == "transport":
        return _TransportedFrame(manifold, fx, y)
    return _frame(manifold, y, fx.point_shape)


def tangent_basis(manifold: Manifold | None, x: Tensor) -> Tensor:
    r"""Orthonormal basis of the tangent space :math:`T_x M`, as the columns of a matrix.

    .. math:: B_x \in \mathbb{R}^{D \times k},\quad B_x^T B_x = I_k,\quad
              \operatorname{range} B_x = T_x M

    with ``D`` the number of ambient coordinates (the point shape flattened row-major) and
    ``k`` the intrinsic dimension.

    Parameters
    ----------
    manifold : Manifold or None
        :class:`~manifres.Sphere`, :class:`~manifres.Euclidean` (or ``None``: the identity),
        a manifold with point shape ``(n, n)`` (treated as :math:`SO(n)`), or any manifold
        with ``proj`` and ``dim`` (generic dense fallback).
    x : Tensor, shape (..., *point_shape)
        Points of the manifold.

    Returns
    -------
    Tensor, shape (..., D, k)

    Raises
    ------
    ShapeError
        If ``x`` does not end with the manifold's point shape.
    DTypeError
        If ``x`` is not float32/float64.

    Notes
    -----
    The sphere uses a Householder frame, :math:`SO(n)` the left-translated skew basis
    :math:`R E_{ij}` with :math:`E_{ij} = (e_i e_j^T - e_j e_i^T)/\sqrt2`, ``i < j``
    (see the module notes).

    Examples
    --------
    >>> import torch, manifres
    >>> x = torch.tensor([0.0, 0.6, 0.8], dtype=torch.float64)
    >>> b = tangent_basis(manifres.Sphere(2), x)
    >>> b.shape
    torch.Size([3, 2])
    >>> torch.allclose(b.T @ b, torch.eye(2, dtype=torch.float64)), float((x @ b).abs().max()) < 1e-15
    (True, True)
    """
    check_floating(x, names=("x",))
    point_shape = tuple(manifold.point_shape) if manifold is not None else tuple(x.shape[-1:])
    nd = len(point_shape)
    if x.dim() < nd or tuple(x.shape[x.dim() - nd :]) != point_shape:
        raise ShapeError(f"x must have shape (..., {', '.join(map(str, point_shape))}), got {tuple(x.shape)}")
    batch = x.shape[: x.dim() - nd]
    flat = x.reshape((-1,) + point_shape)
    m = _frame(manifold, flat, point_shape).matrix()
    return m.reshape(batch + m.shape[1:])
