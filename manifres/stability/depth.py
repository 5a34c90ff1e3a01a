"""Layer-by-layer stability of a deep stack: amplification, gradients, bounds, growth rates.

The stack's layers are read with :func:`~manifres.nn.protocol.stack_layers`; layers of the
residual-step protocol (:mod:`manifres.nn.protocol`: Euclidean blocks, tangent layers on a
manifold, graph layers bound to their graph) get their step's gradient by autograd and are
linearised in the tangent frames of their manifold; any other layer is a plain map.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
from torch import Tensor, nn

from .._deprecation import warn_renamed
from .._validation import check_floating, check_int
from ..errors import ShapeError
from ..manifolds.base import Manifold
from ..manifolds.frames import Frame, IdentityFrame
from ..nn.protocol import is_residual_step, stack_layers
from ._autodiff import Linearisation
from .frames import input_frame
from .jacobian import DENSE_LIMIT, _Linearised, require_eval_mode, sample_shape, study_geometry
from .results import DepthProfile, LyapunovSpectrum

__all__ = ["depth_profile", "lyapunov_exponents", "stack_layers", "is_residual_step", "is_residual_block"]

Layer = Callable[[Tensor], Tensor]

_LN10 = math.log(10.0)


def is_residual_block(layer: object) -> bool:
    """Deprecated: :func:`~manifres.nn.protocol.is_residual_step`."""
    warn_renamed("manifres.stability", "is_residual_block", "is_residual_step")
    return is_residual_step(layer)


class _StudiedStack:
    """The layers of a stack with the geometry the studies need: the manifold (or none), the
    shape of one sample, and each layer's map with an optional shift of its step."""

    def __init__(
        self,
        model: Layer | Iterable[Layer],
        x: Tensor,
        manifold: Manifold | None,
        sample_ndim: int | None,
        who: str,
    ) -> None:
        check_floating(x, names=("x",))
        if x.dim() < 1:
            raise ShapeError(f"{who}: x must have at least one (feature) axis")
        self.layers = stack_layers(model)
        require_eval_mode(model, who)
        for layer in self.layers:
            require_eval_mode(layer, who)
        first = self.layers[0] if self.layers else None
        declared = next((lay for lay in self.layers if is_residual_step(lay)), first)
        self.manifold, self.sample_ndim = study_geometry(declared, manifold, sample_ndim)
        self.shape = sample_shape(x, self.manifold, self.sample_ndim, who)
        self.whole = len(self.shape) == x.dim()
        self.batch = tuple(x.shape[: x.dim() - len(self.shape)])
        self.size = math.prod(self.shape)
        self.dim = self.manifold.dim if self.manifold is not None else self.size
        self.who = who

    @staticmethod
    def call(layer: Layer, h: Tensor, shift: Tensor | None) -> Tensor:
        """``layer(h)``, with the step of a protocol layer moved by ``shift`` (a 0-dim tensor)."""
        if shift is None:
            return layer(h)
        return layer.forward_with_step(h, layer.step + shift)  # type: ignore[attr-defined]

    def frame(self, h: Tensor) -> Frame:
        """The input frame at ``h`` (flat batch of samples)."""
        flat = h.reshape((-1,) + self.shape)
        return input_frame(self.manifold, flat, self.shape)

    def riemannian(self, h: Tensor, g: Tensor) -> Tensor:
        """The Riemannian gradient at ``h`` of an ambient gradient ``g`` (``g`` on flat spaces)."""
        return g if self.manifold is None else self.manifold.egrad2rgrad(h, g)


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


def _perturbation(stack: _StudiedStack, h: Tensor, seed: int) -> Tensor:
    """A seeded unit perturbation of ``h``, tangent on a manifold."""
    delta = _seeded(tuple(h.shape), h, seed)
    if stack.manifold is not None:
        delta = stack.manifold.proj(h, delta)
    return _normalised(delta)[0]


def depth_profile(
    model: Layer | Iterable[Layer],
    x: Tensor,
    *,
    loss_fn: Callable[[Tensor], Tensor] | None = None,
    spectra: bool = True,
    dense_limit: int = DENSE_LIMIT,
    seed: int = 0,
    manifold: Manifold | None = None,
    sample_ndim: int | None = None,
) -> DepthProfile:
    r"""Per-layer amplification, gradients and the product bound of a stack of layers.

    For :math:`h_0 = x`, :math:`h_l = f_l(h_{l-1})`, :math:`J_l = \partial f_l / \partial h`
    (on a manifold: the differential :math:`T_{h_{l-1}}M \to T_{h_l}M` in orthonormal frames)
    and :math:`e_l = \|J_l - I\|_2`, Weyl's inequality bounds the end-to-end Jacobian:

    .. math:: \prod_l (1 - e_l) \;\le\; \sigma_{\min}(J_L \cdots J_1) \;\le\;
              \sigma_{\max}(J_L \cdots J_1) \;\le\; \prod_l (1 + e_l),

    and for each layer of the residual-step protocol with step :math:`h_l` the study reports
    :math:`\partial L / \partial h_l` from autograd (for :math:`y = x + h F(x)` it equals
    :math:`\langle \partial L / \partial y_l, F_l(x)\rangle`; for post-activation, dead-zone,
    tangent and graph layers it is the derivative of their own update rule).

    Parameters
    ----------
    model : stack of layers
        See :func:`~manifres.nn.protocol.stack_layers`: an ``nn.Sequential``, a list, or a
        stack with ``layers`` (such as :class:`~manifres.nn.TangentResidualStack`). Modules
        with batch norm, dropout or instance norm in training mode are refused.
    x : Tensor, shape (..., *sample_shape)
        Input batch.
    loss_fn : callable, optional
        ``output -> scalar loss``. Default: :math:`L = \langle g, h_L\rangle / B` with a fixed
        standard normal ``g`` (seeded) and ``B`` the number of samples (1 for a state that is
        the whole input), so that :math:`\partial L / \partial h_L = g / B` and the gradients
        measure pure backward propagation.
    spectra : bool
        Compute each layer's dense Jacobian (per sample, at most ``dense_limit`` ambient
        coordinates) for the residual norms, spectral radii, the product bound and the
        end-to-end singular values. With ``False`` those fields are NaN and every layer may
        change shapes.
    dense_limit : int
        As in :func:`jacobian_spectrum`.
    seed : int
        Seed of ``g`` and of the forward perturbation.
    manifold : Manifold, optional
        The manifold of the states (default: that of the first protocol layer, if any).
    sample_ndim : int, optional
        Trailing axes of one sample without a manifold (default: the first protocol layer's;
        a graph layer bound to its graph declares the whole input; else 1).

    Returns
    -------
    DepthProfile
        With ``dim`` entries per Jacobian: ``manifold.dim`` on a manifold.

    Raises
    ------
    ShapeError
        With ``spectra=True``, if a layer's output shape differs from its input's (or as
        :func:`jacobian_spectrum`).
    DTypeError
        If ``x`` is not float32/float64.
    StabilityError
        If the model holds a mode-dependent module in training mode.

    Notes
    -----
    * The backward pass runs layer by layer (each layer's own graph, ``torch.autograd.grad``
      with the cotangent renormalised to unit norm, its log scale carried alongside), so
      ``log10_grad_norms`` stays finite where the gradient underflows (a deep plain stack) and
      nothing is written to the parameters' ``.grad``. On a manifold the activation gradients
      are Riemannian (projected onto the tangent spaces).
    * ``step_grads``: each protocol layer runs as ``layer.forward_with_step(h, step + t)`` with a
      scalar ``t = 0`` that autograd differentiates; for a per-channel step it is the
      derivative along a uniform change of all channels. Layers that share one step (a
      :class:`~manifres.nn.TangentResidualStack`) get their shares of its gradient, which sum
      to the total.
    * ``forward_gain`` pushes a random unit (tangent) perturbation through the stack
      (Jacobian-vector products by the double-backward trick), renormalising after each layer.
    * The end-to-end Jacobian is multiplied out in the manifold's frames (per-sample
      renormalisation); its smallest singular value is resolved only while the condition
      number is below ``1 / eps``, and the lower bound is checked only while every
      :math:`e_l < 1`. The bound check allows :math:`10\,L\,d\,\varepsilon` in log space for
      rounding. Per-layer :math:`e_l` and radii use the transported frame (a layer that only
      transports has :math:`J_l = I`).

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
    stack = _StudiedStack(model, x, manifold, sample_ndim, "depth_profile")
    layers = stack.layers
    depth = len(layers)
    dtype, device = x.dtype, x.device
    nan = torch.tensor(math.nan, dtype=dtype, device=device)

    # ---------------------------------------------------------------- forward, one graph a layer
    ins: list[Tensor] = []
    outs: list[Tensor] = []
    shifts: list[Tensor | None] = []
    gains: list[Tensor] = []
    h = x.detach()
    delta = _perturbation(stack, h, seed + 1)
    for layer in layers:
        protocol = is_residual_step(layer)
        shift = torch.zeros((), dtype=dtype, device=device, requires_grad=True) if protocol else None
        lin = Linearisation(lambda z, lay=layer, s=shift: stack.call(lay, z, s), h)
        out = lin.y
        if spectra and tuple(out.shape) != tuple(h.shape):
            raise ShapeError(
                f"depth_profile: layer {len(ins)} maps shape {tuple(h.shape)} to "
                f"{tuple(out.shape)}; the spectra need square Jacobians (pass spectra=False)"
            )
        if delta.shape != h.shape:  # a layer changed the shape (spectra=False): start afresh
            delta = _normalised(_seeded(tuple(h.shape), x, seed + 1))[0]
        delta, log_gain = _normalised(lin.jvp(delta).detach())
        gains.append(torch.exp(log_gain))
        ins.append(lin.x)
        outs.append(out)
        shifts.append(shift)
        h = out.detach()
    act_norms = torch.stack([torch.linalg.vector_norm(t.detach()) for t in ins + [h]])

    # ---------------------------------------------------------------- backward, renormalised
    y = outs[-1] if outs else x.detach().requires_grad_(True)
    with torch.enable_grad():
        if loss_fn is None:
            g = _seeded(tuple(y.shape), x, seed)
            loss = (g * y).sum() / max(1, math.prod(stack.batch))
        else:
            loss = loss_fn(y)
        (dy,) = torch.autograd.grad(loss, y, allow_unused=True)
    if dy is None:
        dy = torch.zeros_like(y)
    manifold_out = stack.manifold is not None and y.shape == x.shape
    cot, logscale = _normalised((stack.riemannian(y.detach(), dy) if manifold_out else dy).detach())
    log_act_grad = [logscale]
    log_grad: list[Tensor] = [nan] * depth
    grad_cos: list[Tensor] = [nan] * max(depth - 1, 0)
    act_cos: list[Tensor] = [nan] * depth
    step_grads: list[Tensor] = [nan] * depth
    prev_dir: Tensor | None = None
    prev_shapes: list[tuple[int, ...]] | None = None
    for l in range(depth - 1, -1, -1):
        layer, hin, out, shift = layers[l], ins[l], outs[l], shifts[l]
        params = _params(layer)
        inputs = [hin] + params + ([shift] if shift is not None else [])
        if out.requires_grad:
            res = torch.autograd.grad(out, inputs, grad_outputs=cot, allow_unused=True)
        else:
            res = (None,) * len(inputs)
        gin = res[0] if res[0] is not None else torch.zeros_like(hin)
        if shift is not None:
            gs = res[-1] if res[-1] is not None else torch.zeros((), dtype=dtype, device=device)
            step_grads[l] = gs.to(torch.float64) * torch.exp(logscale.to(torch.float64))
        pgrads = list(res[1 : 1 + len(params)])
        shapes = [tuple(p.shape) for p in params]
        if params:
            pdir, plog = _normalised(_flat(pgrads, params))
            log_grad[l] = (plog + logscale) / _LN10
            if prev_dir is not None and shapes == prev_shapes:
                grad_cos[l] = _cos(pdir, prev_dir)
            prev_dir, prev_shapes = pdir, shapes
        else:
            prev_dir, prev_shapes = None, None
        if stack.manifold is not None and hin.shape == x.shape:
            gin = stack.riemannian(hin.detach(), gin)
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
    if spectra:
        res_norms, radii, log_up, log_lo, log_smax, log_smin, holds = _spectra(stack, ins, x, dense_limit)
    else:
        res_norms = radii = torch.full((depth,), math.nan, dtype=dtype, device=device)
        log_up = log_lo = log_smax = log_smin = torch.full(stack.batch, math.nan, dtype=dtype, device=device)
        holds = torch.zeros(stack.batch, dtype=torch.bool, device=device)
    return DepthProfile(
        depth=depth,
        dim=stack.dim,
        activation_norms=act_norms.detach(),
        forward_gain=torch.stack(gains).to(dtype) if gains else empty,
        grad_norms=from_log10(log10_grad),
        log10_grad_norms=log10_grad,
        activation_grad_norms=from_log10(log10_act),
        log10_activation_grad_norms=log10_act,
        grad_cosines=torch.stack(grad_cos).to(dtype) if grad_cos else empty,
        activation_grad_cosines=torch.stack(act_cos).to(dtype) if act_cos else empty,
        step_grads=torch.stack([s.to(dtype) for s in step_grads]) if depth else empty,
        residual_norms=res_norms,
        spectral_radii=radii,
        log_upper_bound=log_up,
        log_lower_bound=log_lo,
        log_sigma_max=log_smax,
        log_sigma_min=log_smin,
        bound_holds=holds,
    )


def _spectra(stack: _StudiedStack, ins: list[Tensor], x: Tensor, dense_limit: int) -> tuple[Tensor, ...]:
    """Per-layer residual norms and radii, product bounds and end-to-end log singular values,
    in the manifold's tangent frames (``k = dim`` coordinates per sample)."""
    dtype, device = x.dtype, x.device
    b = math.prod(stack.batch)
    k = stack.dim
    eye = torch.eye(k, dtype=dtype, device=device)
    prod = eye.expand(b, k, k)
    logscale = torch.zeros(b, dtype=dtype, device=device)
    log_up = torch.zeros(b, dtype=dtype, device=device)
    log_lo = torch.zeros(b, dtype=dtype, device=device)
    res_norms, radii = [], []
    nd = None if stack.whole else len(stack.shape)
    for layer, hin in zip(stack.layers, ins, strict=True):
        lin = _Linearised(layer, hin.detach(), stack.manifold, "transport", nd, "depth_profile")
        if lin.size > dense_limit:
            raise ShapeError(
                f"depth_profile: a sample has {lin.size} coordinates, above the dense limit "
                f"{dense_limit}; pass spectra=False or raise dense_limit"
            )
        jac = lin.ambient()
        a_transport = lin.dense(jac)
        # the product needs the same frame at each layer's output and the next layer's input
        a_basis = a_transport if isinstance(lin.fx, IdentityFrame) else lin.dense(jac, stack.frame(lin.y))
        e = torch.linalg.matrix_norm(a_transport - eye, ord=2)
        res_norms.append(e.amax())
        radii.append(torch.linalg.eigvals(a_transport).abs().amax())
        log_up = log_up + torch.log1p(e)
        log_lo = log_lo + torch.where(e < 1, torch.log1p(-e.clamp(max=1)), -torch.inf)
        prod = a_basis @ prod
        s = torch.linalg.matrix_norm(prod)
        prod = prod / torch.where(s > 0, s, 1.0)[:, None, None]
        logscale = logscale + torch.log(s)
    sv = torch.linalg.svdvals(prod)
    log_smax = torch.log(sv[:, 0]) + logscale
    log_smin = torch.log(sv[:, -1]) + logscale
    tol = 10.0 * max(len(stack.layers), 1) * k * torch.finfo(dtype).eps
    holds = (log_smax <= log_up + tol) & ((log_smin >= log_lo - tol) | torch.isinf(log_lo))
    depth = len(stack.layers)

    def shaped(t: Tensor) -> Tensor:
        return t.reshape(stack.batch)

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
    manifold: Manifold | None = None,
    sample_ndim: int | None = None,
) -> LyapunovSpectrum:
    r"""Lyapunov-style growth rates of a stack by the QR (Benettin) method.

    With :math:`Q_0` a random orthonormal ``D x k`` frame of tangent vectors,

    .. math:: J_l Q_{l-1} = Q_l R_l, \qquad
              \lambda_i = \frac1L \sum_{l=1}^L \log |(R_l)_{ii}|,

    so :math:`\lambda_1` is the average log growth per layer of the most amplified direction
    and :math:`\sum_{i \le k} \lambda_i` that of ``k``-dimensional volumes. A residual stack
    with :math:`e_l \le e` has every :math:`\lambda_i \in [\log(1 - e), \log(1 + e)]`.

    Parameters
    ----------
    model : stack of layers
        See :func:`~manifres.nn.protocol.stack_layers`; every layer must keep the shape.
    x : Tensor, shape (..., *sample_shape)
        Input batch.
    k : int, optional
        Number of directions (default: the dimension, ``manifold.dim`` on a manifold).
    seed : int
        Seed of :math:`Q_0`.
    manifold, sample_ndim
        As in :func:`depth_profile`.

    Returns
    -------
    LyapunovSpectrum

    Raises
    ------
    ShapeError
        If a layer changes the shape, or ``k`` is outside ``[1, dim]``.
    StabilityError
        If the model holds a mode-dependent module in training mode.

    Notes
    -----
    Costs ``k`` Jacobian-vector products (one double-backward pass on ``k`` copies of the batch,
    or ``k`` products on one graph for a state that is the whole input) and a ``D x k`` QR per
    layer: no Jacobian is formed and nothing overflows however deep the stack. On a manifold
    the directions are tangent, so the exponents are those of the Riemannian differentials.

    Examples
    --------
    >>> import torch
    >>> stack = [lambda h: 2.0 * h, lambda h: 2.0 * h]
    >>> lyapunov_exponents(stack, torch.ones(1, 3, dtype=torch.float64)).exponents
    tensor([0.6931, 0.6931, 0.6931], dtype=torch.float64)
    """
    stack = _StudiedStack(model, x, manifold, sample_ndim, "lyapunov_exponents")
    dim = stack.dim
    k = dim if k is None else check_int(k, "k", "lyapunov_exponents")
    if not 1 <= k <= dim:
        raise ShapeError(f"lyapunov_exponents: k must be in [1, {dim}], got {k}")
    shape, d = stack.shape, stack.size
    h = x.detach().reshape((-1,) + shape)
    b = h.shape[0]
    coords = torch.linalg.qr(_seeded((b, dim, k), x, seed)).Q  # (b, dim, k)
    frame = stack.frame(h)
    q = torch.stack([frame.apply(coords[:, :, i]) for i in range(k)], dim=1).reshape(b, k, d)
    logs = []
    for i, layer in enumerate(stack.layers):
        if stack.whole:
            lin = Linearisation(layer, h.reshape(x.shape))
            z = torch.stack([lin.jvp(q[0, j].reshape(x.shape)).detach().reshape(d) for j in range(k)])[None]
            out = lin.y.detach().reshape((1,) + shape)
        else:
            hk = h.unsqueeze(1).expand((b, k) + shape).reshape((b * k,) + shape)
            lin = Linearisation(layer, hk)
            if tuple(lin.y.shape) != tuple(hk.shape):
                raise ShapeError(
                    f"lyapunov_exponents: layer {i} maps shape (..., {', '.join(map(str, shape))}) to "
                    f"{tuple(lin.y.shape)}; every layer must keep the shape"
                )
            z = lin.jvp(q.reshape((b * k,) + shape)).detach().reshape(b, k, d)
            out = lin.y.detach().reshape((b, k) + shape)[:, 0]
        if z.shape[-1] != d:
            raise ShapeError(f"lyapunov_exponents: layer {i} changes the shape; every layer must keep it")
        qm, r = torch.linalg.qr(z.transpose(1, 2))
        q = qm.transpose(1, 2)
        logs.append(torch.log(torch.diagonal(r, dim1=-2, dim2=-1).abs()))
        h = out
    depth = len(stack.layers)
    if depth == 0:
        zeros = torch.zeros(k, dtype=x.dtype, device=x.device)
        return LyapunovSpectrum(exponents=zeros, cumulative=zeros[:0, None], depth=0)
    cumulative = torch.cumsum(torch.stack(logs), 0).mean(1)  # (L, k)
    exponents = (cumulative[-1] / depth).sort(descending=True).values
    return LyapunovSpectrum(exponents=exponents, cumulative=cumulative, depth=depth)
