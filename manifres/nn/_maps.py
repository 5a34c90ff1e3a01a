"""Private helpers shared by the architecture zoo: one name per kind of feature map.

A *kind* says how a block mixes features: ``"linear"`` acts on the last axis of ``(..., C)``
features; ``"conv1d"`` and ``"conv2d"`` act on axis 1 of ``(N, C, L)`` and ``(N, C, H, W)``
tensors (stride 1, ``"same"`` padding, so only the channel count changes).
"""

from __future__ import annotations

from torch import Tensor, nn

from ..errors import ShapeError

__all__ = ["KINDS", "feature_axis", "kind_sample_ndim", "feature_map", "check_features"]

#: Kinds of feature maps, and the number of trailing axes that form one sample for each.
KINDS = {"linear": 1, "conv1d": 2, "conv2d": 3}

_CONV = {"conv1d": nn.Conv1d, "conv2d": nn.Conv2d}


def feature_axis(kind: str) -> int:
    """The feature (channel) axis of a kind: ``-1`` for ``"linear"``, ``1`` for convolutions."""
    return -1 if kind == "linear" else 1


def kind_sample_ndim(kind: str) -> int:
    """Trailing axes of one sample: 1 for ``(..., C)``, 2 for ``(N, C, L)``, 3 for ``(N, C, H, W)``."""
    return KINDS[kind]


def feature_map(
    kind: str, in_features: int, out_features: int, kernel_size: int = 1, groups: int = 1, bias: bool = True
) -> nn.Module:
    """``nn.Linear`` (``groups`` must be 1) or a stride-1 ``"same"``-padded convolution."""
    if kind == "linear":
        return nn.Linear(in_features, out_features, bias=bias)
    return _CONV[kind](in_features, out_features, kernel_size, padding="same", groups=groups, bias=bias)


def check_features(x: Tensor, kind: str, features: int, owner: str) -> None:
    """Raise :class:`ShapeError` unless ``x`` has the layout of ``kind`` with ``features`` features."""
    ndim = KINDS[kind]
    if kind == "linear":
        ok = x.dim() >= 1 and x.shape[-1] == features
        want = f"(..., {features})"
    else:
        ok = x.dim() == ndim + 1 and x.shape[1] == features
        want = f"(N, {features}, L)" if kind == "conv1d" else f"(N, {features}, H, W)"
    if not ok:
        raise ShapeError(f"{owner}: input must have shape {want} for kind={kind!r}, got {tuple(x.shape)}")
