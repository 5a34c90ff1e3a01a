"""Tiny private test models: residual and tangent blocks written against the residual-step
protocol (``step``, ``branch``, ``manifold``, ``sample_ndim``, ``forward_with_step``), not
against manifres.nn, so that the studies are checked on layers they have never seen."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class Res(nn.Module):
    """``y = x + step * branch(x)``: a residual block of the protocol."""

    manifold = None
    sample_ndim = 1

    def __init__(self, branch: nn.Module, step: float = 1.0, learn: bool = False) -> None:
        super().__init__()
        self.branch = branch
        self.step = nn.Parameter(torch.tensor(step)) if learn else step

    def forward_with_step(self, x: Tensor, step) -> Tensor:
        return x + step * self.branch(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_with_step(x, self.step)


class LinearRes(Res):
    """``y = x + a W x`` with a fixed matrix ``W``."""

    def __init__(self, w: Tensor, a: float = 1.0) -> None:
        lin = nn.Linear(w.shape[1], w.shape[0], bias=False, dtype=w.dtype)
        with torch.no_grad():
            lin.weight.copy_(w)
        super().__init__(lin, a)


class Tangent(nn.Module):
    """``x -> exp_x(h P_x (A x))`` on a manifold, with ``.manifold``/``.field``/``.step``."""

    def __init__(self, manifold, a: Tensor, step: float) -> None:
        super().__init__()
        self.manifold = manifold
        self.register_buffer("a", a)
        self.step = step

    def field(self, x: Tensor) -> Tensor:
        return x @ self.a.mT

    def forward(self, x: Tensor) -> Tensor:
        m = self.manifold
        return m.exp(x, self.step * m.proj(x, self.field(x)))


def tanh_stack(width: int, depth: int, step: float, dtype, seed: int = 0, learn: bool = False):
    g = torch.Generator().manual_seed(seed)
    blocks = []
    for _ in range(depth):
        lin = nn.Linear(width, width, dtype=dtype)
        with torch.no_grad():
            lin.weight.copy_(torch.randn(width, width, generator=g, dtype=dtype) / width**0.5)
            lin.bias.copy_(0.1 * torch.randn(width, generator=g, dtype=dtype))
        blocks.append(Res(nn.Sequential(lin, nn.Tanh()), step, learn=learn))
    stack = nn.Sequential(*blocks)
    if learn:
        stack = stack.to(dtype)
    return stack
