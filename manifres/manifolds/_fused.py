"""Fused ``y = P x + Q u`` with batch scalars ``(P, Q)`` computed from the Gram entries of ``(x, u)``.

Many sphere operations have this form: the tangent projection (``P = -<x,u>``, ``Q = 1``), the
exponential map and the projective retraction (normalised combinations of ``x`` and ``u``).
Written as one autograd Function they make few passes over memory: three reductions (computed
as batched matrix products, which write no temporaries) and one output; the backward pass is
hand-written for the large tensors and uses autograd only on the batch-sized scalars. The
backward is itself differentiable (double backward works), for Hessian-based studies.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["combine", "dot"]

Coeffs = Callable[[Tensor, Tensor, Tensor], tuple[Tensor, Tensor]]


#: Below this many elements plain eager ops (lower call overhead) beat the fused path.
SMALL = 1 << 15


def dot(a: Tensor, b: Tensor) -> Tensor:
    """``<a, b>`` over the last axis, keepdim; large inputs go through a batched matrix product,
    which writes no temporary product tensor."""
    if max(a.numel(), b.numel()) < SMALL:
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
        fn = ctx.fn
        create = torch.is_grad_enabled()  # double backward: keep the graph through x and u
        if create:
            leaves = [t for t in (x, u) if t.requires_grad]
            with torch.enable_grad():
                P, Q = fn(dot(x, u), dot(x, x), dot(u, u))
                # <gy, y> with y = P x + Q u, a differentiable expression of x, u and gy
                s = (P * dot(gy, x) + Q * dot(gy, u)).sum()
                grads = iter(torch.autograd.grad(s, leaves, create_graph=True)) if leaves else iter(())
            gx = next(grads) if x.requires_grad else None
            gu = next(grads) if u.requires_grad else None
            return gx, gu, None
        with torch.enable_grad():
            a_, xx_, uu_ = (t.detach().requires_grad_(True) for t in (a, xx, uu))
            P, Q = fn(a_, xx_, uu_)
            outs = [(o, g) for o, g in ((P, dot(gy, x)), (Q, dot(gy, u))) if o.requires_grad]
            g_a, g_xx, g_uu = (
                torch.autograd.grad(
                    [o for o, _ in outs], (a_, xx_, uu_), [g for _, g in outs], allow_unused=True
                )
                if outs
                else (None, None, None)
            )
        z = torch.zeros_like(a)
        g_a = z if g_a is None else g_a
        g_xx = z if g_xx is None else g_xx
        g_uu = z if g_uu is None else g_uu
        P, Q = P.detach(), Q.detach()
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
    if max(x.numel(), u.numel()) < SMALL:
        P, Q = fn(dot(x, u), dot(x, x), dot(u, u))
        return x * P + u * Q
    return _Combine.apply(x, u, fn)
