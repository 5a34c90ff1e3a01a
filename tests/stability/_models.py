"""Tiny private test models (duck-typed residual and tangent blocks)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class Res(nn.Module):
    """``y = x + scale * fn(x)``: a duck-typed residual block."""

    def __init__(self, fn: nn.Module, scale: float = 1.0, learn: bool = False) -> None:
        super().__init__()
        self.fn = fn
        self.scale = nn.Parameter(torch.tensor(scale)) if learn else scale

    def forward(self, x: Tensor) -> Tensor:
        return x + self.scale * self.fn(x)


class LinearRes(nn.Module):
    """``y = x + a W x`` with a fixed matrix ``W``."""

    def __init__(self, w: Tensor, a: float = 1.0) -> None:
        super().__init__()
        self.fn = nn.Linear(w.shape[1], w.shape[0], bias=False, dtype=w.dtype)
        with torch.no_grad():
            self.fn.weight.copy_(w)
        self.scale = a

    def forward(self, x: Tensor) -> Tensor:
        return x + self.scale * self.fn(x)


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


def tanh_stack(width: int, depth: int, scale: float, dtype, seed: int = 0, learn: bool = False):
    g = torch.Generator().manual_seed(seed)
    blocks = []
    for _ in range(depth):
        lin = nn.Linear(width, width, dtype=dtype)
        with torch.no_grad():
            lin.weight.copy_(torch.randn(width, width, generator=g, dtype=dtype) / width**0.5)
            lin.bias.copy_(0.1 * torch.randn(width, generator=g, dtype=dtype))
        blocks.append(Res(nn.Sequential(lin, nn.Tanh()), scale, learn=learn))
    stack = nn.Sequential(*blocks)
    if learn:
        stack = stack.to(dtype)
    return stack
