"""Fused ``y = P x + Q u`` with batch scalars ``(P, Q)`` computed from the Gram entries of ``(x, u)``.

Many sphere operations have this form: the tangent projection (``P = -<x,u>``, ``Q = 1``), the
exponential map and the projective retraction (normalised combinations of ``x`` and ``u``).
Written as one autograd Function they make few passes over memory: three reductions (computed
as batched matrix products, which write no temporaries) and one output; the backward pass is
hand-written for the large tensors and takes a ``torch.func.vjp`` of the batch-sized scalars
only. The backward is itself differentiable (double backward works), for Hessian-based studies.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["combine", "dot"]

Coeffs = Callable[[Tensor, Tensor, Tensor], tuple[Tensor, Tensor]]


#: Below this many elements plain eager ops (lower call overhead) beat the fused path.
SMALL = 1 << 15
#: At most this many ambient coordinates (S^2, say), batched matrix products are slow and the
#: batch-sized scalar work dominates: plain eager ops are faster there (measured on CPU).
NARROW = 8


def dot(a: Tensor, b: Tensor) -> Tensor:
    """``<a, b>`` over the last axis, keepdim; large inputs go through a batched matrix product,
    which writes no temporary product tensor."""
    if max(a.numel(), b.numel()) < SMALL or a.shape[-1] <= NARROW:
        return (a * b).sum(-1, keepdim=True)
    return (a.unsqueeze(-2) @ b.unsqueeze(-1)).squeeze(-1)


class _Combine(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, u: Tensor, fn: Coeffs) -> Tensor:  # type: ignore[override]
        a, xx, uu = dot(x, u), dot(x, x), dot(u, u)
        P, Q = fn(a, xx, uu)
        y = (x * P).addcmul_(u, Q)  # x * P already has the broadcast shape
        ctx.save_for_backward(x, u, a, xx, uu)
        ctx.fn = fn
        return y

    @staticmethod
    def backward(ctx, gy: Tensor):  # type: ignore[override]
        x, u, a, xx, uu = ctx.saved_tensors
        if torch.is_grad_enabled():
            # double backward: recompute the scalars as differentiable functions of x and u
            a, xx, uu = dot(x, u), dot(x, x), dot(u, u)
        # explicit partial derivatives (a vjp on the batch scalars only, never a nested
        # autograd.grad through gy's graph), so the result is differentiable in x, u and gy
        (P, Q), vjp = torch.func.vjp(ctx.fn, a, xx, uu)
        g_a, g_xx, g_uu = vjp((dot(gy, x), dot(gy, u)))
        gx = (gy * P).addcmul_(x, 2 * g_xx).addcmul_(u, g_a)
        gu = (gy * Q).addcmul_(x, g_a).addcmul_(u, 2 * g_uu)
        return _unbroadcast(gx, x.shape), _unbroadcast(gu, u.shape), None


def _unbroadcast(g: Tensor, shape: torch.Size) -> Tensor:
    if g.shape == shape:
        return g
    extra = g.dim() - len(shape)
    g = g.sum(dim=tuple(range(extra))) if extra > 0 else g
    dims = tuple(i for i, (gs, s) in enumerate(zip(g.shape, shape, strict=True)) if s == 1 and gs != 1)
    return g.sum(dim=dims, keepdim=True) if dims else g


def combine(x: Tensor, u: Tensor, fn: Coeffs) -> Tensor:
    """``y = P x + Q u`` with ``(P, Q) = fn(<x,u>, <x,x>, <u,u>)`` (each of shape ``(..., 1)``)."""
    if max(x.numel(), u.numel()) < SMALL or x.shape[-1] <= NARROW:
        P, Q = fn(dot(x, u), dot(x, x), dot(u, u))
        return x * P + u * Q
    return _Combine.apply(x, u, fn)
