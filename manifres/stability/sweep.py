"""Sweeps: the residual scale ``a`` (stable to unstable), and plain against residual depth."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence

import torch
from torch import Tensor, nn

from .._deprecation import UNSET, renamed_kwargs
from .._validation import check_floating, check_int, check_real
from ..errors import ShapeError, StabilityError
from ..manifolds.base import Manifold
from ..nn.protocol import is_residual_step, stack_layers
from ._models import make_layers, plain_stack, residual_stack
from .depth import Layer, depth_profile
from .jacobian import DENSE_LIMIT
from .results import DepthProfile, PlainResidualComparison, ScaleSweep

__all__ = ["scale_sweep", "compare_plain_residual"]


def _nanmean(t: Tensor) -> Tensor:
    ok = ~torch.isnan(t)
    n = ok.sum()
    return torch.where(n > 0, torch.where(ok, t, 0).sum() / n.clamp(min=1), torch.nan)


class _AtStep(nn.Module):
    """A residual-step layer seen with another step: the sweep never modifies the model."""

    def __init__(self, layer: nn.Module, step: float) -> None:
        super().__init__()
        self.layer = layer
        self._value = step

    @property
    def step(self) -> float:
        return self._value

    @property
    def branch(self) -> object:
        return self.layer.branch

    @property
    def manifold(self) -> object:
        return self.layer.manifold

    @property
    def sample_ndim(self) -> int | None:
        return self.layer.sample_ndim

    def forward_with_step(self, x: Tensor, step: float | Tensor) -> Tensor:
        return self.layer.forward_with_step(x, step)

    def forward(self, x: Tensor) -> Tensor:
        return self.layer.forward_with_step(x, self._value)


def _at_step(model: Layer | Iterable[Layer], step: float) -> list[Layer]:
    layers = stack_layers(model)
    if not any(is_residual_step(layer) for layer in layers):
        raise StabilityError(
            "scale_sweep: the model has no layer of the residual-step protocol (a step and "
            "forward_with_step; see manifres.nn.protocol); pass a stack of residual layers or a "
            "function step -> model"
        )
    return [_AtStep(layer, step) if is_residual_step(layer) else layer for layer in layers]


def _summary(p: DepthProfile) -> dict[str, Tensor]:
    cos = p.grad_cosines
    valid = ~torch.isnan(cos)
    anti = torch.where(valid, (cos < 0).to(cos.dtype), torch.nan)
    sg = p.step_grads
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
        "mean_abs_step_grad": _nanmean(sg.abs()),
        "step_grad_sign_flips": _nanmean(flips),
    }


def scale_sweep(
    model: Layer | Iterable[Layer] | Callable[[float], Layer | Iterable[Layer]],
    x: Tensor,
    steps: Sequence[float] | Tensor = UNSET,
    *,
    loss_fn: Callable[[Tensor], Tensor] | None = None,
    spectra: bool = True,
    dense_limit: int = DENSE_LIMIT,
    seed: int = 0,
    progress: bool = False,
    manifold: Manifold | None = None,
    sample_ndim: int | None = None,
    **deprecated: object,
) -> ScaleSweep:
    r"""Stability measures of a residual stack as its step ``h`` (the residual scale) grows.

    For a Euclidean stack every block becomes :math:`y_l = h_{l-1} + h F_l(h_{l-1})`, with
    Jacobian :math:`I + h J_{F_l}` and eigenvalues :math:`1 + h \lambda_i(J_{F_l})`; tangent
    layers take the step :math:`R_x(h P_x F(x))`, graph layers :math:`x - h L x`. For each
    ``h`` this runs :func:`depth_profile` and keeps: :math:`\max_l \|J_l - I\|_2`,
    :math:`\max_l \rho(J_l)`, the end-to-end log singular values against
    :math:`\sum_l \log(1 + e_l)`, the first layer's gradient norm, and whether consecutive
    layers' gradients *fight*: the mean cosine between consecutive parameter gradients, the
    fraction of anti-aligned pairs, and the fraction of sign flips of
    :math:`\partial L/\partial h_l`.

    Parameters
    ----------
    model : stack of residual layers, or callable
        A stack (see :func:`~manifres.nn.protocol.stack_layers`) whose layers of the
        residual-step protocol all run with each step in turn (through their
        ``forward_with_step``: the model is never modified), or a function ``h -> stack``
        that builds the model for a step.
    x : Tensor, shape (..., *sample_shape)
        Input batch.
    steps : sequence of float
        The values of ``h`` (deprecated keyword: ``scales``).
    loss_fn, spectra, dense_limit, seed, manifold, sample_ndim
        As in :func:`depth_profile`.
    progress : bool
        Show a tqdm progress bar (silent when not on a terminal).

    Returns
    -------
    ScaleSweep

    Raises
    ------
    StabilityError
        If a stack has no layer of the residual-step protocol.
    ShapeError
        If ``steps`` is empty, or as :func:`depth_profile`.
    ParameterError
        If a step is not a finite real number.
    DTypeError
        If ``x`` is not float32/float64.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from manifres.nn import Residual
    >>> torch.manual_seed(0) and None
    >>> stack = nn.Sequential(Residual(nn.Linear(3, 3)), Residual(nn.Linear(3, 3))).double()
    >>> sweep = scale_sweep(stack, torch.randn(4, 3, dtype=torch.float64), [0.1, 1.0])
    >>> bool(sweep.max_residual_norm[1] > sweep.max_residual_norm[0]), float(stack[0].step)
    (True, 1.0)
    """
    if deprecated:
        steps = renamed_kwargs("scale_sweep", deprecated, {"scales": ("steps", steps)})["steps"]
    if steps is UNSET:
        raise TypeError("scale_sweep() missing the steps to sweep (third argument)")
    check_floating(x, names=("x",))
    raw = steps.tolist() if isinstance(steps, Tensor) else list(steps)
    values = [check_real(a, "step", "scale_sweep") for a in raw]
    if not values:
        raise ShapeError("scale_sweep: steps is empty")
    factory = callable(model) and not isinstance(model, (nn.Module, list, tuple))
    if not factory:
        _at_step(model, values[0])  # refuse a model without residual layers before any work
    profiles = []
    from tqdm.auto import tqdm

    for a in tqdm(values, desc="scale sweep", disable=None if progress else True, leave=False):
        stack = model(a) if factory else _at_step(model, a)  # type: ignore[operator]
        profiles.append(
            depth_profile(
                stack,
                x,
                loss_fn=loss_fn,
                spectra=spectra,
                dense_limit=dense_limit,
                seed=seed,
                manifold=manifold,
                sample_ndim=sample_ndim,
            )
        )
    rows = [_summary(p) for p in profiles]
    cols = {k: torch.stack([r[k].to(x.dtype).cpu() for r in rows]) for k in rows[0]}
    return ScaleSweep(steps=torch.tensor(values, dtype=x.dtype), profiles=tuple(profiles), **cols)


def compare_plain_residual(
    depths: Sequence[int] = (10, 100, 1000),
    width: int = 32,
    *,
    step: float = UNSET,
    activation: str = "tanh",
    batch: int = 16,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
    seed: int = 0,
    progress: bool = False,
    **deprecated: object,
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
    step : float
        Residual step ``a`` (default 1; deprecated keyword: ``scale``).
    activation : str
        :math:`\phi`, a name of :data:`manifres.nn.ACTIVATIONS`.
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
    if deprecated:
        step = renamed_kwargs("compare_plain_residual", deprecated, {"scale": ("step", step)})["step"]
    step = 1.0 if step is UNSET else check_real(step, "step", "compare_plain_residual")
    depths = [check_int(d, "depth", "compare_plain_residual") for d in depths]
    if not depths or min(depths) < 1 or width < 1 or batch < 1:
        raise ShapeError(
            f"compare_plain_residual needs depths >= 1, width >= 1 and batch >= 1, got "
            f"depths={depths}, width={width}, batch={batch}"
        )
    layers = make_layers(width, max(depths), activation, dtype, device, seed)
    gen = torch.Generator().manual_seed(seed + 12345)
    x = torch.randn(batch, width, dtype=dtype, generator=gen).to(device)
    out: dict[str, list[Tensor]] = {k: [] for k in ("pg", "rg", "pl", "rl", "po", "ro")}
    from tqdm.auto import tqdm

    for depth in tqdm(depths, desc="plain vs residual", disable=None if progress else True, leave=False):
        plain = depth_profile(plain_stack(layers[:depth]), x, spectra=False, seed=seed)
        resid = depth_profile(residual_stack(layers[:depth], step), x, spectra=False, seed=seed)
        for key, prof in (("p", plain), ("r", resid)):
            out[key + "g"].append(prof.grad_norms[0])
            out[key + "l"].append(prof.log10_grad_norms[0])
            out[key + "o"].append(prof.activation_norms[-1])

    def col(k: str) -> Tensor:
        return torch.stack(out[k]).cpu()

    return PlainResidualComparison(
        depths=depths,
        width=int(width),
        step=step,
        activation=activation,
        plain_grad_norm=col("pg"),
        residual_grad_norm=col("rg"),
        plain_log10_grad_norm=col("pl"),
        residual_log10_grad_norm=col("rl"),
        plain_output_norm=col("po"),
        residual_output_norm=col("ro"),
    )
