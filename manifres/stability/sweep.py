"""Sweeps: the residual scale ``a`` (stable to unstable), and plain against residual depth."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence

import torch
from torch import Tensor, nn
from tqdm import tqdm

from .._validation import check_floating
from ..errors import ShapeError, StabilityError
from ._models import make_layers, plain_stack, residual_stack
from .depth import Layer, depth_profile, is_residual_block, stack_layers
from .jacobian import DENSE_LIMIT
from .results import DepthProfile, PlainResidualComparison, ScaleSweep

__all__ = ["scale_sweep", "compare_plain_residual"]


def _nanmean(t: Tensor) -> Tensor:
    ok = ~torch.isnan(t)
    n = ok.sum()
    return torch.where(n > 0, torch.where(ok, t, 0).sum() / n.clamp(min=1), torch.nan)


class _ScaleSetter:
    """Sets every residual block's ``scale`` of a stack to a value, and restores it."""

    def __init__(self, model: Layer | Iterable[Layer]) -> None:
        self.blocks = [b for b in stack_layers(model) if is_residual_block(b)]
        if not self.blocks:
            raise StabilityError(
                "scale_sweep: the model has no residual block (a layer with .fn and .scale); "
                "pass a stack of residual blocks or a function scale -> model"
            )
        self.saved = [
            b.scale.detach().clone() if isinstance(b.scale, Tensor) else b.scale for b in self.blocks
        ]

    def set(self, a: float) -> None:
        for b in self.blocks:
            if isinstance(b.scale, Tensor):
                with torch.no_grad():
                    b.scale.fill_(a)
            else:
                b.scale = a

    def restore(self) -> None:
        for b, s in zip(self.blocks, self.saved, strict=True):
            if isinstance(s, Tensor):
                with torch.no_grad():
                    b.scale.copy_(s)
            else:
                b.scale = s


def _summary(p: DepthProfile) -> dict[str, Tensor]:
    cos = p.grad_cosines
    valid = ~torch.isnan(cos)
    anti = torch.where(valid, (cos < 0).to(cos.dtype), torch.nan)
    sg = p.scale_grads
    flips = (sg[1:] * sg[:-1] < 0).to(sg.dtype) if sg.numel() > 1 else sg[:0]
    flips = torch.where(torch.isnan(sg[1:] * sg[:-1]), torch.nan, flips) if sg.numel() > 1 else flips
    return {
        "max_residual_norm": p.residual_norms.max() if p.depth else torch.tensor(math.nan),
        "max_spectral_radius": p.spectral_radii.max() if p.depth else torch.tensor(math.nan),
        "log_sigma_max": p.log_sigma_max.mean(),
        "log_sigma_min": p.log_sigma_min.mean(),
        "log_upper_bound": p.log_upper_bound.mean(),
        "first_layer_grad_norm": p.grad_norms[0],
        "log10_first_layer_grad_norm": p.log10_grad_norms[0],
        "mean_grad_cosine": _nanmean(cos),
        "anti_aligned_fraction": _nanmean(anti),
        "mean_abs_scale_grad": _nanmean(sg.abs()),
        "scale_grad_sign_flips": _nanmean(flips),
    }


def scale_sweep(
    model: Layer | Iterable[Layer] | Callable[[float], Layer | Iterable[Layer]],
    x: Tensor,
    scales: Sequence[float] | Tensor,
    *,
    loss_fn: Callable[[Tensor], Tensor] | None = None,
    spectra: bool = True,
    dense_limit: int = DENSE_LIMIT,
    seed: int = 0,
    progress: bool = False,
) -> ScaleSweep:
    r"""Stability measures of a residual stack as its residual scale ``a`` grows.

    Every block becomes :math:`y_l = h_{l-1} + a F_l(h_{l-1})`, with Jacobian
    :math:`I + a J_{F_l}` and eigenvalues :math:`1 + a \lambda_i(J_{F_l})`. For each ``a`` this
    runs :func:`depth_profile` and keeps: :math:`\max_l \|J_l - I\|_2` (linear in ``a``),
    :math:`\max_l \rho(J_l)`, the end-to-end log singular values against
    :math:`\sum_l \log(1 + e_l)`, the first layer's gradient norm, and whether consecutive
    layers' gradients *fight*: the mean cosine between consecutive parameter gradients, the
    fraction of anti-aligned pairs, and the fraction of sign flips of
    :math:`\partial L/\partial a_l = \langle \partial L / \partial y_l, F_l(h_{l-1})\rangle`.

    Parameters
    ----------
    model : stack of residual blocks, or callable
        A stack (see :func:`stack_layers`) whose residual blocks (``.fn`` and ``.scale``) get
        their ``scale`` set to each value in turn and restored afterwards, or a function
        ``a -> stack`` that builds the model for a scale.
    x : Tensor, shape (B, d)
        Input batch.
    scales : sequence of float
        The values of ``a``.
    loss_fn, spectra, dense_limit, seed
        As in :func:`depth_profile`.
    progress : bool
        Show a tqdm progress bar (silent when not on a terminal).

    Returns
    -------
    ScaleSweep

    Raises
    ------
    StabilityError
        If a stack has no residual block to set the scale of.
    ShapeError
        If ``scales`` is empty, or as :func:`depth_profile`.
    DTypeError
        If ``x`` is not float32/float64.

    Notes
    -----
    A stack passed in is modified in place during the sweep (under ``torch.no_grad``) and
    restored in a ``finally`` block, also when a profile raises.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> class Block(nn.Module):
    ...     def __init__(self):
    ...         super().__init__(); self.fn = nn.Linear(3, 3); self.scale = 1.0
    ...     def forward(self, h):
    ...         return h + self.scale * self.fn(h)
    >>> torch.manual_seed(0) and None
    >>> stack = nn.Sequential(Block(), Block()).double()
    >>> sweep = scale_sweep(stack, torch.randn(4, 3, dtype=torch.float64), [0.1, 1.0])
    >>> bool(sweep.max_residual_norm[1] > sweep.max_residual_norm[0]), stack[0].scale
    (True, 1.0)
    """
    check_floating(x, names=("x",))
    values = [float(a) for a in (scales.tolist() if isinstance(scales, Tensor) else scales)]
    if not values:
        raise ShapeError("scale_sweep: scales is empty")
    factory = callable(model) and not isinstance(model, (nn.Module, list, tuple))
    setter = None if factory else _ScaleSetter(model)  # type: ignore[arg-type]
    profiles = []
    try:
        for a in tqdm(values, desc="scale sweep", disable=None if progress else True, leave=False):
            if setter is None:
                stack = model(a)  # type: ignore[operator]
            else:
                setter.set(a)
                stack = model
            profiles.append(
                depth_profile(stack, x, loss_fn=loss_fn, spectra=spectra, dense_limit=dense_limit, seed=seed)
            )
    finally:
        if setter is not None:
            setter.restore()
    rows = [_summary(p) for p in profiles]
    cols = {k: torch.stack([r[k].to(x.dtype).cpu() for r in rows]) for k in rows[0]}
    return ScaleSweep(scales=torch.tensor(values, dtype=x.dtype), profiles=tuple(profiles), **cols)


def compare_plain_residual(
    depths: Sequence[int] = (10, 100, 1000),
    width: int = 32,
    *,
    scale: float = 1.0,
    activation: str = "tanh",
    batch: int = 16,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
    seed: int = 0,
    progress: bool = False,
) -> PlainResidualComparison:
    r"""The vanishing-gradient study: first-layer gradient norm against depth, plain vs residual.

    Both stacks use the same ``depth`` dense layers (torch's default ``nn.Linear`` init,
    seeded; a shallower stack is a prefix of a deeper one) and the same input
    :math:`x \sim N(0, I)`:

    .. math:: \text{plain: } h_l = \phi(W_l h_{l-1} + b_l), \qquad
              \text{residual: } h_l = h_{l-1} + a\,\phi(W_l h_{l-1} + b_l),

    and the loss :math:`L = \langle g, h_L\rangle / B` with a fixed normal ``g``. The plain
    stack multiplies ``L`` Jacobians of norm below 1 and its gradient vanishes exponentially;
    the residual stack's Jacobians :math:`I + a J_F` keep it of order one (within the Weyl
    band :math:`(1 \pm e)^L`).

    Parameters
    ----------
    depths : sequence of int
        Depths ``L`` to measure (each >= 1).
    width : int
        Width ``d`` of every layer.
    scale : float
        Residual scale ``a``.
    activation : {"tanh", "relu", "identity"}
        :math:`\phi`.
    batch : int
        Batch size ``B``.
    dtype, device
        Of the parameters and inputs (float64 by default, so that gradients down to
        :math:`10^{-308}` are representable).
    seed : int
        Seed of the weights, the input and ``g``.
    progress : bool
        Show a tqdm progress bar over the depths (silent when not on a terminal).

    Returns
    -------
    PlainResidualComparison
        With both the plain gradient norms (0 where they underflow) and their base-10 logs
        from a renormalised backward pass (always finite).

    Raises
    ------
    ShapeError
        If ``depths`` is empty or holds a depth below 1, or ``width``/``batch`` is below 1.
    UnknownChoiceError
        For an unknown activation.

    Examples
    --------
    >>> cmp = compare_plain_residual(depths=(2, 20), width=8)
    >>> bool(cmp.plain_grad_norm[1] < cmp.plain_grad_norm[0])
    True
    >>> bool(cmp.residual_grad_norm[1] > cmp.plain_grad_norm[1])
    True
    """
    depths = [int(d) for d in depths]
    if not depths or min(depths) < 1 or width < 1 or batch < 1:
        raise ShapeError(
            f"compare_plain_residual needs depths >= 1, width >= 1 and batch >= 1, got "
            f"depths={depths}, width={width}, batch={batch}"
        )
    layers = make_layers(width, max(depths), activation, dtype, device, seed)
    gen = torch.Generator().manual_seed(seed + 12345)
    x = torch.randn(batch, width, dtype=dtype, generator=gen).to(device)
    out: dict[str, list[Tensor]] = {k: [] for k in ("pg", "rg", "pl", "rl", "po", "ro")}
    for depth in tqdm(depths, desc="plain vs residual", disable=None if progress else True, leave=False):
        plain = depth_profile(plain_stack(layers[:depth]), x, spectra=False, seed=seed)
        resid = depth_profile(residual_stack(layers[:depth], scale), x, spectra=False, seed=seed)
        for key, prof in (("p", plain), ("r", resid)):
            out[key + "g"].append(prof.grad_norms[0])
            out[key + "l"].append(prof.log10_grad_norms[0])
            out[key + "o"].append(prof.activation_norms[-1])

    def col(k: str) -> Tensor:
        return torch.stack(out[k]).cpu()

    return PlainResidualComparison(
        depths=depths,
        width=int(width),
        scale=float(scale),
        activation=activation,
        plain_grad_norm=col("pg"),
        residual_grad_norm=col("rg"),
        plain_log10_grad_norm=col("pl"),
        residual_log10_grad_norm=col("rl"),
        plain_output_norm=col("po"),
        residual_output_norm=col("ro"),
    )
