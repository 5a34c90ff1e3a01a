"""Euclidean space ``R^n`` as a (flat) manifold, so that every layer also works without curvature."""

from __future__ import annotations

import torch
from torch import Tensor

from .._numerics import scaled_norm
from .._validation import check_int
from .actions import LieGroupAction, Translation
from .base import Manifold
from .frames import Frame, IdentityFrame

__all__ = ["Euclidean"]


class Euclidean(Manifold):
    r"""Flat space :math:`\mathbb{R}^n`: ``exp(x, v) = x + v``, ``log(x, y) = y - x``.

    Parameters
    ----------
    n : int
        Dimension; points have shape ``(..., n)``.
    validate : bool or None
        Value checks (here: finiteness only).

    Examples
    --------
    >>> import torch, manifres
    >>> E = manifres.Euclidean(2)
    >>> E.dist(torch.zeros(2), torch.tensor([3.0, 4.0]))
    tensor(5.)
    """

    retractions = ("exp",)

    def __init__(self, n: int, validate: bool | None = None) -> None:
        n = check_int(n, "n", "Euclidean", minimum=1)
        super().__init__(validate)
        self.n = n

    def _params(self) -> tuple:
        return (self.n,)

    @property
    def point_shape(self) -> tuple[int, ...]:
        return (self.n,)

    @property
    def dim(self) -> int:
        return self.n

    def _point_residual(self, x: Tensor) -> Tensor:
        return torch.zeros_like(x[..., 0])

    def _tangent_residual(self, x: Tensor, v: Tensor) -> Tensor:
        return torch.zeros_like((x + v)[..., 0])

    def proj(self, x: Tensor, u: Tensor) -> Tensor:
        """Identity: every vector is tangent."""
        self._check(x, u, names=("x", "u"))
        return torch.broadcast_to(u, torch.broadcast_shapes(x.shape, u.shape))

    def proj_point(self, y: Tensor) -> Tensor:
        """Identity."""
        self._check(y, names=("y",))
        return y

    def exp(self, x: Tensor, v: Tensor) -> Tensor:
        """``x + v``."""
        self._check(x, v, names=("x", "v"))
        self._validate_points(x=x, v=v)
        return x + v

    def log(self, x: Tensor, y: Tensor) -> Tensor:
        """``y - x``."""
        self._check(x, y, names=("x", "y"))
        self._validate_points(x=x, y=y)
        return y - x

    def dist(self, x: Tensor, y: Tensor) -> Tensor:
        """``|y - x|`` with a zero gradient at ``x = y``."""
        self._check(x, y, names=("x", "y"))
        return scaled_norm(y - x)

    def transport(self, x: Tensor, y: Tensor, v: Tensor) -> Tensor:
        """Identity (broadcast to the common shape)."""
        self._check(x, y, v, names=("x", "y", "v"))
        return torch.broadcast_to(v, torch.broadcast_shapes(x.shape, y.shape, v.shape))

    def tangent_frame(self, x: Tensor) -> Frame:
        """The standard basis."""
        return IdentityFrame(x, (self.n,), self.n)

    def lie_action(self) -> LieGroupAction:
        """Translations (the Lie-group schemes become classical Runge-Kutta)."""
        return Translation()

    def random(
        self,
        *batch: int,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Standard normal points, shape ``(*batch, n)``."""
        dtype = dtype or torch.get_default_dtype()
        return torch.randn(*batch, self.n, dtype=dtype, device=device, generator=generator)
