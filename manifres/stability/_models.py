"""Small seeded models for the built-in studies: plain and residual stacks sharing weights."""

from __future__ import annotations

import math

import torch
from torch import nn

from ..nn.activations import activation as make_activation
from ..nn.residual import Residual

__all__ = ["make_layers", "plain_stack", "residual_stack"]


def make_layers(
    width: int,
    depth: int,
    activation: str,
    dtype: torch.dtype,
    device: torch.device | str | None,
    seed: int,
) -> list[nn.Sequential]:
    """``depth`` dense layers ``act(W h + b)`` with torch's default ``nn.Linear``
    initialisation (:math:`W, b \\sim U(-1/\\sqrt{n}, 1/\\sqrt{n})`), drawn in order from one CPU
    generator, so that a shallower stack with the same seed is a prefix of a deeper one."""
    act = make_activation(activation, "make_layers")  # checks the name first
    gen = torch.Generator().manual_seed(seed)
    bound = 1.0 / math.sqrt(width)
    layers = []
    for _ in range(depth):
        lin = nn.Linear(width, width, dtype=dtype, device="meta")
        weight = torch.empty(width, width, dtype=dtype).uniform_(-bound, bound, generator=gen)
        bias = torch.empty(width, dtype=dtype).uniform_(-bound, bound, generator=gen)
        lin.weight = nn.Parameter(weight.to(device))
        lin.bias = nn.Parameter(bias.to(device))
        layers.append(nn.Sequential(lin, type(act)()))
    return layers


def plain_stack(layers: list[nn.Module]) -> nn.Sequential:
    """``h_l = act(W_l h_{l-1} + b_l)``."""
    return nn.Sequential(*layers)


def residual_stack(layers: list[nn.Module], step: float) -> nn.Sequential:
    """``h_l = h_{l-1} + step * act(W_l h_{l-1} + b_l)`` (:class:`~manifres.nn.Residual`
    blocks sharing the layers' parameters)."""
    return nn.Sequential(*[Residual(layer, step) for layer in layers])
