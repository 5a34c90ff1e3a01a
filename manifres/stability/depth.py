"""Layer-by-layer stability of a deep stack: amplification, gradients, bounds, growth rates."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
from torch import Tensor, nn

from .._validation import check_floating
from ..errors import ShapeError
from ._autodiff import Linearisation
from .jacobian import DENSE_LIMIT, _Linearised
from .results import DepthProfile, LyapunovSpectrum

__all__ = ["depth_profile", "lyapunov_exponents", "stack_layers", "is_residual_block"]

Layer = Callable[[Tensor], Tensor]

_LN10 = math.log(10.0)


def stack_layers(model: Layer | Iterable[Layer]) -> list[Layer]:
    """The layers of a stack, in order.

    ``nn.Sequential``, ``nn.ModuleList``, a list or tuple of callables, or a module with a
    ``blocks`` or ``layers`` attribute holding one of those; any other callable is a stack of
    one layer.

    Examples
    --------
    >>> from torch import nn
    >>> len(stack_layers(nn.Sequential(nn.Tanh(), nn.Tanh()))), len(stack_layers(nn.Tanh()))
    (2, 1)
    """
    if isinstance(model, (nn.Sequential, nn.ModuleList, list, tuple)):
        return list(model)
    for name in ("blocks", "layers"):
        inner = getattr(model, name, None)
        if isinstance(inner, (nn.Sequential, nn.ModuleList, list, tuple)):
            return list(inner)
    return [model]  # type: ignore[list-item]


def is_residual_block(layer: object) -> bool:
    """Whether ``layer`` is a residual block ``y = shortcut(x) + scale * fn(x)`` (duck typing:
    it has ``.fn`` and ``.scale``)."""
    return hasattr(layer, "fn") and hasattr(layer, "scale")


def _params(layer: Layer) -> list[Tensor]:
    if isinstance(layer, nn.Module):
        return [p for p in layer.parameters() if p.requires_grad]
    return []


def _flat(ts: list[Tensor | None], like: list[Tensor]) -> Tensor:
    parts = [(g if g is not None else torch.zeros_like(p)).reshape(-1) for g, p in zip(ts, like, strict=True)]
    return torch.cat(parts) if parts else torch.zeros(0)


def _cos(a: Tensor, b: Tensor) -> Tensor:
    na, nb = torch.linalg.vector_norm(a), torch.linalg.vector_norm(b)
    den = na * nb
    return torch.where(den > 0, (a * b).sum() / torch.where(den > 0, den, 1.0), torch.nan)


def _normalised(t: Tensor) -> tuple[Tensor, Tensor]:
    """``t / |t|`` (0 for the zero tensor) and ``log |t|`` (``-inf`` for it)."""
    n = torch.linalg.vector_norm(t)
    return t / torch.where(n > 0, n, 1.0), torch.log(n)


def _seeded(shape: tuple[int, ...], like: Tensor, seed: int) -> Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(shape, dtype=like.dtype, generator=gen).to(like.device)


def depth_profile(
    model: Layer | Iterable[Layer],
    x: Tensor,
    *,
    loss_fn: Callable[[Tensor], Tensor] | None = None,
    spectra: bool = True,
    dense_limit: int = DENSE_LIMIT,
    seed: int = 0,
) -> DepthProfile:
    r"""Per-layer amplification, gradients and the product bound of a stack of layers.

    For :math:`h_0 = x`, :math:`h_l = f_l(h_{l-1})`, :math:`J_l = \partial f_l / \partial h`
    and :math:`e_l = \|J_l - I\|_2`, Weyl's inequality bounds the end-to-end Jacobian:

    .. math:: \prod_l (1 - e_l) \;\le\; \sigma_{\min}(J_L \cdots J_1) \;\le\;
              \sigma_{\max}(J_L \cdots J_1) \;\le\; \prod_l (1 + e_l),

    and for a residual block :math:`y_l = h_{l-1} + a_l F_l(h_{l-1})` the gradient of the loss
    with respect to its scale is :math:`\partial L / \partial a_l =
    \langle \partial L / \partial y_l, F_l(h_{l-1})\rangle`.

    Parameters
    ----------
    model : stack of layers
        See :func:`stack_layers`. Residual blocks are recognised by ``.fn`` and ``.scale``.
    x : Tensor, shape (B, d) or (..., d)
        Input batch; features on the last axis.
    loss_fn : callable, optional
        ``output -> scalar loss``. Default: :math:`L = \langle g, h_L\rangle / B` with a fixed
        standard normal ``g`` (seeded), so that :math:`\partial L / \partial h_L = g / B` and
        the gradients measure pure backward propagation.
    spectra : bool
        Compute each layer's dense Jacobian (per sample, ``d <= dense_limit``) for the
        residual norms, spectral radii, the product bound and the end-to-end singular values.
        With ``False`` those fields are NaN and every layer may change shapes.
    dense_limit : int
        As in :func:`jacobian_spectrum`.
    seed : int
        Seed of ``g`` and of the forward perturbation.

    Returns
    -------
    DepthProfile

    Raises
    ------
    ShapeError
        With ``spectra=True``, if a layer's output shape differs from its input's (or as
        :func:`jacobian_spectrum`).
    DTypeError
        If ``x`` is not float32/float64.

    Notes
    -----
    * The backward pass runs layer by layer (each layer's own graph, ``torch.autograd.grad``
      with the cotangent renormalised to unit norm, its log scale carried alongside), so
      ``log10_grad_norms`` stays finite where the gradient underflows (a deep plain stack) and
      nothing is written to the parameters' ``.grad``.
    * ``scale_grads`` evaluates ``block.fn`` once more at each block's input. For a per-channel
      (tensor) scale it is the derivative along a uniform change of all channels.
    * ``forward_gain`` pushes a random unit perturbation through the stack (Jacobian-vector
      products by the double-backward trick), renormalising after each layer.
    * The end-to-end Jacobian is multiplied out with per-sample renormalisation; its smallest
      singular value is resolved only while the condition number is below ``1 / eps``, and
      the lower bound is checked only while every :math:`e_l < 1`. The bound check allows
      :math:`10\,L\,d\,\varepsilon` in log space for rounding.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> torch.manual_seed(0) and None
    >>> stack = nn.Sequential(*[nn.Linear(4, 4) for _ in range(3)]).double()
    >>> prof = depth_profile(stack, torch.randn(8, 4, dtype=torch.float64))
    >>> prof.depth, prof.grad_norms.shape, bool(prof.bound_holds.all())
    (3, torch.Size([3]), True)
    """
    check_floating(x, names=("x",))
    if x.dim() < 1:
        raise ShapeError("depth_profile: x must have at least one (feature) axis")
    layers = stack_layers(model)
    depth = len(layers)
    dtype, device = x.dtype, x.device
    nan = torch.tensor(math.nan, dtype=dtype, device=device)

    # ---------------------------------------------------------------- forward, one graph a layer
    ins: list[Tensor] = []
    outs: list[Tensor] = []
    gains: list[Tensor] = []
    h = x.detach()
    delta, _ = _normalised(_seeded(tuple(x.shape), x, seed + 1))
    for layer in layers:
        lin = Linearisation(layer, h)
        out = lin.y
        if spectra and tuple(out.shape) != tuple(h.shape):
            raise ShapeError(
                f"depth_profile: layer {len(ins)} maps shape {tuple(h.shape)} to "
                f"{tuple(out.shape)}; the spectra need square Jacobians (pass spectra=False)"
            )
        if delta.shape != h.shape:
            delta, _ = _normalised(_seeded(tuple(h.shape), x, seed + 1))
        delta, log_gain = _normalised(lin.jvp(delta).detach())
        gains.append(torch.exp(log_gain))
        ins.append(lin.x)
        outs.append(out)
        h = out.detach()
    act_norms = torch.stack([torch.linalg.vector_norm(t.detach()) for t in ins + [h]])

    # ---------------------------------------------------------------- backward, renormalised
    y = outs[-1] if outs else x.detach().requires_grad_(True)
    with torch.enable_grad():
        if loss_fn is None:
            g = _seeded(tuple(y.shape), x, seed)
            loss = (g * y).sum() / max(1, y.shape[0] if y.dim() > 1 else 1)
        else:
            loss = loss_fn(y)
        (dy,) = torch.autograd.grad(loss, y, allow_unused=True)
    if dy is None:
        dy = torch.zeros_like(y)
    cot, logscale = _normalised(dy.detach())
    log_act_grad = [logscale]
    log_grad: list[Tensor] = [nan] * depth
    grad_cos: list[Tensor] = [nan] * max(depth - 1, 0)
    act_cos: list[Tensor] = [nan] * depth
    scale_grads: list[Tensor] = [nan] * depth
    prev_dir: Tensor | None = None
    prev_shapes: list[tuple[int, ...]] | None = None
    for l in range(depth - 1, -1, -1):
        layer, hin, out = layers[l], ins[l], outs[l]
        params = _params(layer)
        if out.requires_grad:
            res = torch.autograd.grad(out, [hin] + params, grad_outputs=cot, allow_unused=True)
        else:
            res = (None,) * (1 + len(params))
        gin = res[0] if res[0] is not None else torch.zeros_like(hin)
        if is_residual_block(layer):
            with torch.no_grad():
                fx = layer.fn(hin.detach())  # type: ignore[attr-defined]
            scale_grads[l] = (cot * fx).sum().to(torch.float64) * torch.exp(logscale.to(torch.float64))
        shapes = [tuple(p.shape) for p in params]
        if params:
            pdir, plog = _normalised(_flat(list(res[1:]), params))
            log_grad[l] = (plog + logscale) / _LN10
            if prev_dir is not None and shapes == prev_shapes:
                grad_cos[l] = _cos(pdir, prev_dir)
            prev_dir, prev_shapes = pdir, shapes
        else:
            prev_dir, prev_shapes = None, None
        new_cot, glog = _normalised(gin.detach())
        if new_cot.shape == cot.shape:
            act_cos[l] = _cos(new_cot, cot)
        cot, logscale = new_cot, logscale + glog
        log_act_grad.append(logscale)
    log_act_grad = log_act_grad[::-1]
    log10_act = torch.stack(log_act_grad).to(dtype) / _LN10
    log10_grad = torch.stack(log_grad).to(dtype) if depth else torch.zeros(0, dtype=dtype)

    def from_log10(t: Tensor) -> Tensor:
        return torch.pow(10.0, t.to(torch.float64)).to(dtype)

    # ---------------------------------------------------------------- spectra
    empty = torch.zeros(0, dtype=dtype, device=device)
    batch = tuple(x.shape[:-1])
    if spectra:
        res_norms, radii, log_up, log_lo, log_smax, log_smin, holds = _spectra(layers, ins, x, dense_limit)
    else:
        res_norms = radii = torch.full((depth,), math.nan, dtype=dtype, device=device)
        log_up = log_lo = log_smax = log_smin = torch.full(batch, math.nan, dtype=dtype, device=device)
        holds = torch.zeros(batch, dtype=torch.bool, device=device)
    return DepthProfile(
        depth=depth,
        activation_norms=act_norms.detach(),
        forward_gain=torch.stack(gains).to(dtype) if gains else empty,
        grad_norms=from_log10(log10_grad),
        log10_grad_norms=log10_grad,
        activation_grad_norms=from_log10(log10_act),
        log10_activation_grad_norms=log10_act,
        grad_cosines=torch.stack(grad_cos).to(dtype) if grad_cos else empty,
        activation_grad_cosines=torch.stack(act_cos).to(dtype) if act_cos else empty,
        scale_grads=torch.stack([s.to(dtype) for s in scale_grads]) if depth else empty,
        residual_norms=res_norms,
        spectral_radii=radii,
        log_upper_bound=log_up,
        log_lower_bound=log_lo,
        log_sigma_max=log_smax,
        log_sigma_min=log_smin,
        bound_holds=holds,
    )


def _spectra(layers: list[Layer], ins: list[Tensor], x: Tensor, dense_limit: int) -> tuple[Tensor, ...]:
    """Per-layer residual norms and radii, product bounds and end-to-end log singular values."""
    batch = tuple(x.shape[:-1])
    d = x.shape[-1]
    dtype = x.dtype
    b = math.prod(batch)
    eye = torch.eye(d, dtype=dtype, device=x.device)
    prod = eye.expand(b, d, d)
    logscale = torch.zeros(b, dtype=dtype, device=x.device)
    log_up = torch.zeros(b, dtype=dtype, device=x.device)
    log_lo = torch.zeros(b, dtype=dtype, device=x.device)
    res_norms, radii = [], []
    for layer, hin in zip(layers, ins, strict=True):
        lin = _Linearised(layer, hin, None, "transport", 1, "depth_profile")
        if lin.size > dense_limit:
            raise ShapeError(
                f"depth_profile: width {lin.size} is above the dense limit {dense_limit}; "
                "pass spectra=False or raise dense_limit"
            )
        jac = lin.dense()
        e = torch.linalg.matrix_norm(jac - eye, ord=2)
        res_norms.append(e.amax())
        radii.append(torch.linalg.eigvals(jac).abs().amax())
        log_up = log_up + torch.log1p(e)
        log_lo = log_lo + torch.where(e < 1, torch.log1p(-e.clamp(max=1)), -torch.inf)
        prod = jac @ prod
        s = torch.linalg.matrix_norm(prod)
        prod = prod / torch.where(s > 0, s, 1.0)[:, None, None]
        logscale = logscale + torch.log(s)
    sv = torch.linalg.svdvals(prod)
    log_smax = torch.log(sv[:, 0]) + logscale
    log_smin = torch.log(sv[:, -1]) + logscale
    tol = 10.0 * max(len(layers), 1) * d * torch.finfo(dtype).eps
    holds = (log_smax <= log_up + tol) & ((log_smin >= log_lo - tol) | torch.isinf(log_lo))
    depth = len(layers)

    def shaped(t: Tensor) -> Tensor:
        return t.reshape(batch)

    return (
        torch.stack(res_norms) if depth else torch.zeros(0, dtype=dtype),
        torch.stack(radii) if depth else torch.zeros(0, dtype=dtype),
        shaped(log_up),
        shaped(log_lo),
        shaped(log_smax),
        shaped(log_smin),
        shaped(holds),
    )


def lyapunov_exponents(
    model: Layer | Iterable[Layer],
    x: Tensor,
    *,
    k: int | None = None,
    seed: int = 0,
) -> LyapunovSpectrum:
    r"""Lyapunov-style growth rates of a stack by the QR (Benettin) method.

    With :math:`Q_0` a random orthonormal ``d x k`` frame,

    .. math:: J_l Q_{l-1} = Q_l R_l, \qquad
              \lambda_i = \frac1L \sum_{l=1}^L \log |(R_l)_{ii}|,

    so :math:`\lambda_1` is the average log growth per layer of the most amplified direction
    and :math:`\sum_{i \le k} \lambda_i` that of ``k``-dimensional volumes. A residual stack
    with :math:`e_l \le e` has every :math:`\lambda_i \in [\log(1 - e), \log(1 + e)]`.

    Parameters
    ----------
    model : stack of layers
        See :func:`stack_layers`; every layer must keep the shape ``(..., d)``.
    x : Tensor, shape (..., d)
        Input batch.
    k : int, optional
        Number of directions (default ``d``).
    seed : int
        Seed of :math:`Q_0`.

    Returns
    -------
    LyapunovSpectrum
        Batch means of the exponents (sorted decreasing) and of the cumulative sums.

    Raises
    ------
    ShapeError
        If a layer changes the shape, or ``k`` is not in ``[1, d]``.
    DTypeError
        If ``x`` is not float32/float64.

    Notes
    -----
    Costs ``k`` Jacobian-vector products (one double-backward pass on ``k`` copies of the batch) and a
    ``d x k`` QR per layer: no Jacobian is formed and nothing overflows however deep the stack.

    Examples
    --------
    >>> import torch
    >>> stack = [lambda h: 2.0 * h, lambda h: 2.0 * h]
    >>> lyapunov_exponents(stack, torch.ones(1, 3, dtype=torch.float64)).exponents
    tensor([0.6931, 0.6931, 0.6931], dtype=torch.float64)
    """
    check_floating(x, names=("x",))
    if x.dim() < 1:
        raise ShapeError("lyapunov_exponents: x must have at least one (feature) axis")
    layers = stack_layers(model)
    d = x.shape[-1]
    k = d if k is None else int(k)
    if not 1 <= k <= d:
        raise ShapeError(f"lyapunov_exponents: k must be in [1, {d}], got {k}")
    h = x.detach().reshape(-1, d)
    b = h.shape[0]
    q = torch.linalg.qr(_seeded((b, d, k), x, seed)).Q
    logs = []
    for i, layer in enumerate(layers):
        hk = h.unsqueeze(1).expand(b, k, d).reshape(b * k, d)
        lin = Linearisation(layer, hk)
        out = lin.y.detach()
        if tuple(out.shape) != (b * k, d):
            raise ShapeError(
                f"lyapunov_exponents: layer {i} maps shape (..., {d}) to {tuple(out.shape)}; "
                "every layer must keep the shape"
            )
        z = lin.jvp(q.transpose(1, 2).reshape(b * k, d)).detach()
        q, r = torch.linalg.qr(z.reshape(b, k, d).transpose(1, 2))
        logs.append(torch.log(torch.diagonal(r, dim1=-2, dim2=-1).abs()))
        h = out.reshape(b, k, d)[:, 0]
    depth = len(layers)
    if depth == 0:
        zeros = torch.zeros(k, dtype=x.dtype, device=x.device)
        return LyapunovSpectrum(exponents=zeros, cumulative=zeros[:0, None], depth=0)
    cumulative = torch.cumsum(torch.stack(logs), 0).mean(1)  # (L, k)
    exponents = (cumulative[-1] / depth).sort(descending=True).values
    return LyapunovSpectrum(exponents=exponents, cumulative=cumulative, depth=depth)
