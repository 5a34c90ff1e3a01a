"""Small seeded models for the built-in studies: plain and residual stacks sharing weights."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .._validation import check_choice
from ..nn.activations import ACTIVATIONS
from ..nn.activations import activation as make_activation

__all__ = ["DenseLayer", "ResidualBlock", "make_layers", "plain_stack", "residual_stack"]


class DenseLayer(nn.Module):
    """``h -> act(W h + b)``."""

    def __init__(self, linear: nn.Linear, activation: str) -> None:
        super().__init__()
        self.linear = linear
        self.act = make_activation(activation, "DenseLayer")

    def forward(self, h: Tensor) -> Tensor:
        return self.act(self.linear(h))


class ResidualBlock(nn.Module):
    """``h -> h + scale * fn(h)`` with the scale held in a buffer (duck-typed residual block)."""

    def __init__(self, fn: nn.Module, scale: float) -> None:
        super().__init__()
        self.fn = fn
        p = next(fn.parameters())
        self.register_buffer("scale", torch.tensor(float(scale), dtype=p.dtype, device=p.device))

    def forward(self, h: Tensor) -> Tensor:
        return h + self.scale * self.fn(h)

    def extra_repr(self) -> str:
        return f"scale={float(self.scale):g}"


def make_layers(
    width: int,
    depth: int,
    activation: str,
    dtype: torch.dtype,
    device: torch.device | str | None,
    seed: int,
) -> list[DenseLayer]:
    """``depth`` dense layers with torch's default ``nn.Linear`` initialisation
    (:math:`W, b \\sim U(-1/\\sqrt{n}, 1/\\sqrt{n})`), drawn in order from one CPU generator,
    so that a shallower stack with the same seed is a prefix of a deeper one."""
    check_choice(activation, ACTIVATIONS, "activation", "make_layers")
    gen = torch.Generator().manual_seed(seed)
    bound = 1.0 / math.sqrt(width)
    layers = []
    for _ in range(depth):
        lin = nn.Linear(width, width, dtype=dtype, device="meta")
        weight = torch.empty(width, width, dtype=dtype).uniform_(-bound, bound, generator=gen)
        bias = torch.empty(width, dtype=dtype).uniform_(-bound, bound, generator=gen)
        lin.weight = nn.Parameter(weight.to(device))
        lin.bias = nn.Parameter(bias.to(device))
        layers.append(DenseLayer(lin, activation))
    return layers


def plain_stack(layers: list[DenseLayer]) -> nn.Sequential:
    """``h_l = act(W_l h_{l-1} + b_l)``."""
    return nn.Sequential(*layers)


def residual_stack(layers: list[DenseLayer], scale: float) -> nn.Sequential:
    """``h_l = h_{l-1} + scale * act(W_l h_{l-1} + b_l)``, sharing the layers' parameters."""
    return nn.Sequential(*[ResidualBlock(layer, scale) for layer in layers])
