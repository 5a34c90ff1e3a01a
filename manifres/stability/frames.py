"""Frames for the studies: the manifold's own tangent frame at the input, and at the output.

The frames themselves live with the manifolds (:meth:`manifres.Manifold.tangent_frame`,
:mod:`manifres.manifolds.frames`); this module only chooses them for a block ``y = f(x)``.
"""

from __future__ import annotations

import math

from torch import Tensor

from .._deprecation import warn_renamed
from .._validation import check_choice, check_floating
from ..errors import ShapeError
from ..manifolds.base import Manifold
from ..manifolds.frames import Frame, IdentityFrame, TransportedFrame

__all__ = ["FRAMES", "input_frame", "output_frame", "tangent_basis"]

#: How the frame at the output ``y = block(x)`` is chosen (see :func:`jacobian_spectrum`).
FRAMES = ("transport", "basis")


def input_frame(manifold: Manifold | None, x: Tensor, shape: tuple[int, ...]) -> Frame:
    """Frame at the flat batch ``x`` of shape ``(B, *shape)``: the manifold's, else the identity."""
    if manifold is None:
        return IdentityFrame(x, shape, math.prod(shape))
    return manifold.tangent_frame(x)


def output_frame(manifold: Manifold | None, fx: Frame, y: Tensor, frame: str) -> Frame:
    """Frame at the output ``y``: ``fx`` transported to ``y``, or the manifold's frame at ``y``."""
    check_choice(frame, FRAMES, "frame", "jacobian_spectrum")
    if manifold is None or isinstance(fx, IdentityFrame):
        return IdentityFrame(y, fx.point_shape, fx.k)
    if frame == "transport":
        return TransportedFrame(manifold, fx, y)
    return manifold.tangent_frame(y)


def tangent_basis(manifold: Manifold | None, x: Tensor) -> Tensor:
    """Deprecated: ``manifold.tangent_basis(x)`` (``None``: the identity on the last axis)."""
    warn_renamed("manifres.stability", "tangent_basis(manifold, x)", "manifold.tangent_basis(x)")
    if manifold is not None:
        return manifold.tangent_basis(x)
    check_floating(x, names=("x",))
    if x.dim() < 1:
        raise ShapeError(f"x must have a feature axis, got shape {tuple(x.shape)}")
    flat = x.reshape(-1, x.shape[-1])
    m = IdentityFrame(flat, tuple(x.shape[-1:]), x.shape[-1]).matrix()
    return m.reshape(x.shape[:-1] + m.shape[1:])
