r"""Euclidean residual blocks: :math:`y = S(x) + h\,F(x)` and the standard variants.

A residual block adds a learned correction :math:`F(x)` (the *branch*), scaled by the *step*
:math:`h`, to a shortcut :math:`S(x)` (the identity, or a learned 1x1 projection when the shapes
differ). With :math:`S = \mathrm{id}` a stack of blocks is an explicit Euler solver of
:math:`x' = F(x)` with step :math:`h`; the manifold version lives in :mod:`manifres.nn.tangent`.
Every block implements the residual-step protocol (:mod:`manifres.nn.protocol`).

Conventions
-----------
* The feature axis is the last one (``(..., C)``) unless a block takes ``feature_dim``: a 1x1
  linear map over axis 1 of an ``(N, C, H, W)`` tensor is a 1x1 convolution.
* ``step`` is a tensor: an :class:`~torch.nn.Parameter` when ``learn_step=True`` (or when an
  ``nn.Parameter`` is passed, which is then used as given), else a buffer. A number is stored
  as a float64 0-d tensor (exact for float64 inputs) and cast to the dtype of ``branch(x)`` at
  each call, so the output dtype follows the input. That buffer stays float64 under dtype
  conversions (``module.float()``, ``.half()``, ``.to(torch.float32)``: ``.float().double()``
  gives back the exact number) and follows ``.to(device)``; a step given as a tensor converts
  like every other buffer. A per-channel step must broadcast against ``branch(x)`` without changing its
  shape.
* Deprecated names (one release): ``fn`` (now ``branch``), ``scale`` (``step``),
  ``learn_scale`` (``learn_step``), ``residual_branch(x)`` (``branch(x)``).
* Shapes are checked at every call (metadata only, no host-device synchronisation).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .._deprecation import UNSET, deprecated_alias, renamed_kwargs, warn_renamed
from .._numerics import safe_norm
from .._validation import check_int
from ..errors import ParameterError, ShapeError, UnknownChoiceError
from .activations import activation as _activation
from .protocol import resolve_step, step_value

__all__ = [
    "Residual",
    "ReZero",
    "PreActResidual",
    "PostActResidual",
    "BottleneckResidual",
    "DeadZoneResidual",
    "LinearShortcut",
    "soft_threshold",
    "residual_mlp",
    "plain_mlp",
]

_NORMS = ("layer", "batch", "none")
_SHORTCUTS = ("identity", "linear")
_DEAD_ZONE_MODES = ("elementwise", "norm")


# ---------------------------------------------------------------------------- helpers
def _finite_number(name: str, value: float | Tensor, owner: str, minimum: float | None = None) -> Tensor:
    """Return ``value`` as a detached tensor after checking it is finite (and ``>= minimum``).

    A Python number becomes an exact float64 0-d tensor (callers cast it to the input's dtype
    at use); a tensor keeps its floating dtype (integers become the default dtype). Raises
    :class:`ParameterError`.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, Tensor)):
        raise ParameterError(f"{owner}: {name} must be a number or a Tensor, got {type(value).__name__}")
    if isinstance(value, Tensor):
        t = value.detach()
        t = t if t.is_floating_point() else t.to(torch.get_default_dtype())
    else:
        t = torch.tensor(float(value), dtype=torch.float64)
    if not bool(torch.isfinite(t).all()):
        raise ParameterError(f"{owner}: {name} must be finite, got {value!r}")
    if minimum is not None and bool((t < minimum).any()):
        raise ParameterError(f"{owner}: {name} must be >= {minimum}, got {value!r}")
    return t.clone()


def _register_step(module: nn.Module, step: float | Tensor, learn: bool, owner: str) -> None:
    """Store the step as ``module.step``: a Parameter (learned or given), else a buffer
    (numbers as exact float64 0-d tensors); remember the initial value for resets."""
    value = resolve_step(step, owner, learn=learn)
    if isinstance(value, nn.Parameter):
        module.step = value
        module.learn_step = True
        module._step_init = value.detach().clone()
        return
    t = torch.tensor(value, dtype=torch.float64) if isinstance(value, float) else value
    module.register_buffer("step", t)
    module.learn_step = False
    module._step_init = t.clone()
    module._exact_step = isinstance(value, float)


class _BatchNormLast(nn.BatchNorm1d):
    """BatchNorm over the last axis of a ``(..., C)`` tensor (statistics over the rest)."""

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x.reshape(-1, x.shape[-1])).reshape(x.shape)


def _norm_layer(name: str | None, features: int) -> nn.Module:
    """Build a normalisation over the last axis: ``"layer"``, ``"batch"`` or ``"none"``/None."""
    if name is None or name == "none":
        return nn.Identity()
    if name == "layer":
        return nn.LayerNorm(features)
    if name == "batch":
        return _BatchNormLast(features)
    raise UnknownChoiceError(f"unknown norm {name!r}; valid names: {', '.join(_NORMS)} (or None)")


def _infer_features(fn: nn.Module) -> tuple[int, int] | None:
    """``(in, out)`` features from the first and last submodules that declare them."""
    first = last = None
    for m in fn.modules():
        i = getattr(m, "in_features", getattr(m, "in_channels", None))
        o = getattr(m, "out_features", getattr(m, "out_channels", None))
        if isinstance(i, int) and isinstance(o, int):
            first = i if first is None else first
            last = o
    return None if first is None else (first, last)


def _broadcasts_into(small: torch.Size, shape: torch.Size) -> bool:
    """Whether ``small`` broadcasts against ``shape`` without changing it."""
    try:
        return torch.broadcast_shapes(small, shape) == shape
    except RuntimeError:
        return False


def _reset_children(*modules: nn.Module) -> None:
    for module in modules:
        for m in module.modules():
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()


def _step_args(owner: str, step: object, learn_step: object, deprecated: dict) -> tuple[object, bool]:
    """Resolve ``step``/``learn_step`` and their deprecated spellings ``scale``/``learn_scale``."""
    renames = {"scale": ("step", step), "learn_scale": ("learn_step", learn_step)}
    new = renamed_kwargs(owner, deprecated, renames)
    step = new.get("step", 1.0 if step is UNSET else step)
    learn_step = new.get("learn_step", False if learn_step is UNSET else learn_step)
    return step, bool(learn_step)


# ---------------------------------------------------------------------------- shortcut
class LinearShortcut(nn.Module):
    r"""Learned 1x1 projection over one feature axis: :math:`S(x) = W x` (optionally :math:`+ b`).

    Over the last axis it is ``nn.Linear``; over axis 1 of an ``(N, C, H, W)`` tensor it is a
    1x1 convolution.

    Parameters
    ----------
    in_features, out_features : int
        Sizes of the feature axis before and after.
    dim : int
        The feature axis (``-1`` for ``(..., C)``, ``1`` for ``(N, C, H, W)``).
    bias : bool
        Add a learned bias (default False, as in ResNet projection shortcuts).

    Shapes:
        - **input:** ``(..., in_features, ...)`` with the feature axis at ``dim``
        - **output:** the same shape with ``out_features`` at ``dim``

    Examples
    --------
    >>> import torch
    >>> LinearShortcut(3, 5, dim=1)(torch.randn(2, 3, 4, 4)).shape
    torch.Size([2, 5, 4, 4])
    """

    def __init__(self, in_features: int, out_features: int, dim: int = -1, bias: bool = False) -> None:
        super().__init__()
        self.in_features, self.out_features, self.dim = in_features, out_features, dim
        self.linear = nn.Linear(in_features, out_features, bias=bias)

    def reset_parameters(self) -> None:
        """Re-initialise the projection (``nn.Linear``'s default init)."""
        self.linear.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        if not -x.dim() <= self.dim < x.dim() or x.shape[self.dim] != self.in_features:
            raise ShapeError(
                f"LinearShortcut: input axis {self.dim} must have size {self.in_features}, "
                f"got shape {tuple(x.shape)}"
            )
        if self.dim in (-1, x.dim() - 1):
            return self.linear(x)
        return self.linear(x.movedim(self.dim, -1)).movedim(-1, self.dim)

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, dim={self.dim}"


# ---------------------------------------------------------------------------- blocks
class Residual(nn.Module):
    r"""Residual block :math:`y = S(x) + h\,F(x)`.

    .. math:: y = S(x) + h\,F(x), \qquad
              \frac{\partial L}{\partial h} = \Big\langle \frac{\partial L}{\partial y},
              F(x) \Big\rangle

    Parameters
    ----------
    branch : nn.Module
        The residual branch :math:`F`.
    step : float, Tensor or nn.Parameter
        The step :math:`h` (finite). A tensor must broadcast against ``branch(x)``
        (per-channel steps) without changing its shape. An ``nn.Parameter`` is used as given
        (it stays connected to the optimizer that holds it); any other tensor that requires a
        gradient is refused with a :class:`~manifres.errors.ParameterError`.
    learn_step : bool
        Make ``step`` an :class:`~torch.nn.Parameter` (else a buffer). ``step=0.0,
        learn_step=True`` starts the block as the identity (see :class:`ReZero`).
    shortcut : None, "identity", "linear" or nn.Module
        :math:`S`. ``None``/``"identity"``: the identity. ``"linear"``: a learned 1x1
        projection :class:`LinearShortcut` over ``feature_dim`` when ``branch`` changes the
        feature size, the identity when it does not. A module is used as given.
    features : (int, int), optional
        ``(in_features, out_features)`` of ``branch`` for ``shortcut="linear"``. Inferred, when
        omitted, from the first and the last submodule of ``branch`` that declare
        ``in_features``/``out_features`` (or ``in_channels``/``out_channels``).
    feature_dim : int
        Feature axis of the projection (``1`` for ``(N, C, H, W)`` inputs: a 1x1 convolution).

    Attributes
    ----------
    branch : nn.Module
        The residual branch (deprecated alias: ``fn``).
    step : Tensor
        :math:`h` (a Parameter or a buffer; deprecated alias: ``scale``).
    shortcut : nn.Module
        ``nn.Identity()`` or the projection.
    manifold : None
        Flat features (the residual-step protocol).
    sample_ndim : int
        1: one sample is the last axis (pass ``sample_ndim=`` to the studies for images).

    Shapes:
        - **input:** ``(..., C_in)`` (or any shape ``branch`` and the shortcut accept)
        - **output:** the shape of ``branch(x)``

    Raises
    ------
    ParameterError
        If ``step`` is not finite, or is a non-Parameter tensor that requires a gradient.
    UnknownChoiceError
        If ``shortcut`` is an unknown name.
    ShapeError
        At construction, if ``shortcut="linear"`` and the features cannot be inferred; at a
        call, if ``branch(x)`` and ``shortcut(x)`` have different shapes, or ``step`` does not
        broadcast against ``branch(x)``.

    Notes
    -----
    :meth:`reset_parameters` restores the initial step and re-initialises ``branch`` and the
    shortcut (every submodule with a ``reset_parameters`` method).

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> block = Residual(nn.Linear(4, 4), step=0.5)
    >>> x = torch.randn(2, 4)
    >>> torch.allclose(block(x), x + 0.5 * block.branch(x))
    True
    >>> Residual(nn.Linear(4, 6), shortcut="linear")(x).shape
    torch.Size([2, 6])
    """

    manifold = None
    sample_ndim = 1

    def __init__(
        self,
        branch: nn.Module = UNSET,
        step: float | Tensor = UNSET,
        learn_step: bool = UNSET,
        shortcut: str | nn.Module | None = None,
        *,
        features: tuple[int, int] | None = None,
        feature_dim: int = -1,
        **deprecated: object,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        if "fn" in deprecated:
            branch = renamed_kwargs(name, {"fn": deprecated.pop("fn")}, {"fn": ("branch", branch)})["branch"]
        step, learn_step = _step_args(name, step, learn_step, deprecated)
        if branch is UNSET:
            raise TypeError(f"{name}() missing the residual branch (first argument)")
        if not isinstance(branch, nn.Module):
            raise TypeError(f"{name}: branch must be an nn.Module, got {type(branch).__name__}")
        _register_step(self, step, learn_step, name)
        self.branch = branch
        self.shortcut = self._make_shortcut(shortcut, branch, features, feature_dim)

    def _apply(self, fn, recurse: bool = True):
        # a step given as a number keeps its exact float64 value under dtype conversions
        # (it is cast to the input's dtype at each call) and follows device moves
        step = self._buffers.get("step")
        exact = step is not None and getattr(self, "_exact_step", False)
        out = super()._apply(fn, recurse)
        if exact and self._buffers["step"].dtype != torch.float64:
            self._buffers["step"] = step.to(device=self._buffers["step"].device)
        return out

    fn = deprecated_alias("branch", "fn")
    scale = deprecated_alias("step", "scale")
    learn_scale = deprecated_alias("learn_step", "learn_scale")

    @staticmethod
    def _make_shortcut(
        shortcut: str | nn.Module | None,
        branch: nn.Module,
        features: tuple[int, int] | None,
        feature_dim: int,
    ) -> nn.Module:
        if isinstance(shortcut, nn.Module):
            return shortcut
        if shortcut is None or shortcut == "identity":
            return nn.Identity()
        if shortcut != "linear":
            raise UnknownChoiceError(
                f"unknown shortcut {shortcut!r}; valid names: {', '.join(_SHORTCUTS)} "
                "(or None, or an nn.Module)"
            )
        features = features if features is not None else _infer_features(branch)
        if features is None:
            raise ShapeError(
                "shortcut='linear' needs the feature sizes of the branch: pass features=(in, out) "
                f"(none could be inferred from {type(branch).__name__})"
            )
        c_in, c_out = features
        if c_in == c_out:
            return nn.Identity()
        return LinearShortcut(c_in, c_out, dim=feature_dim)

    def reset_parameters(self) -> None:
        """Restore the initial step and re-initialise ``branch`` and the shortcut."""
        with torch.no_grad():
            self.step.copy_(self._step_init)
        _reset_children(self.branch, self.shortcut)

    def residual_branch(self, x: Tensor) -> Tensor:
        """Deprecated: ``branch(x)``."""
        warn_renamed(type(self).__name__, "residual_branch(x)", "branch(x)")
        return self.branch(x)

    def _branches(self, x: Tensor, step: float | Tensor) -> tuple[Tensor, Tensor]:
        s = self.shortcut(x)
        r = self.branch(x)
        if s.shape != r.shape:
            raise ShapeError(
                f"{type(self).__name__}: branch(x) has shape {tuple(r.shape)} but the shortcut "
                f"gives {tuple(s.shape)} (input {tuple(x.shape)}); they must match. Use "
                "shortcut='linear' (or a projection module) when the branch changes the feature size."
            )
        if isinstance(step, Tensor) and step.dim() and not _broadcasts_into(step.shape, r.shape):
            raise ShapeError(
                f"{type(self).__name__}: step of shape {tuple(step.shape)} does not "
                f"broadcast against branch(x) of shape {tuple(r.shape)}"
            )
        return s, r

    def forward_with_step(self, x: Tensor, step: float | Tensor) -> Tensor:
        """The block with the step given explicitly (differentiable in ``step``)."""
        s, r = self._branches(x, step)
        return s + step_value(step, r) * r

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_with_step(x, self.step)

    def extra_repr(self) -> str:
        if self.step.dim() == 0:
            a = f"{float(self.step.detach()):.4g}"
        else:
            a = f"Tensor{tuple(self.step.shape)}"
        return f"step={a}, learn_step={self.learn_step}"


class ReZero(Residual):
    r"""Zero-initialised learnable residual (Bachlechner et al. 2020): starts as the identity.

    .. math:: y = S(x) + h\,F(x), \qquad h = 0 \text{ at initialisation (learned)}

    Parameters
    ----------
    branch : nn.Module
        The residual branch :math:`F`.
    shortcut, features, feature_dim
        As in :class:`Residual`.

    Shapes:
        - **input:** ``(..., C)``
        - **output:** ``(..., C)``

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> block = ReZero(nn.Linear(3, 3))
    >>> x = torch.randn(2, 3)
    >>> torch.equal(block(x), x)
    True
    >>> block
    ReZero(
      step=0, learn_step=True
      (branch): Linear(in_features=3, out_features=3, bias=True)
      (shortcut): Identity()
    )
    """

    def __init__(
        self,
        branch: nn.Module,
        shortcut: str | nn.Module | None = None,
        *,
        features: tuple[int, int] | None = None,
        feature_dim: int = -1,
    ) -> None:
        super().__init__(branch, 0.0, True, shortcut, features=features, feature_dim=feature_dim)


class PreActResidual(Residual):
    r"""Pre-activation residual block (He et al. 2016, "Identity mappings in deep residual
    networks"): normalisation and activation come *before* each linear map, and nothing follows
    the addition, so the shortcut path is a pure identity.

    .. math:: y = S(x) + a\,W_2\,\sigma(N_2(W_1\,\sigma(N_1(x)) + b_1)) + a\,b_2

    Parameters
    ----------
    features : int
        Input feature size ``C``.
    hidden : int, optional
        Hidden size (default ``features``).
    out_features : int, optional
        Output size (default ``features``); a different size uses a linear shortcut.
    activation : str or nn.Module
        ``"relu"`` (default), ``"gelu"``, ``"tanh"``, ``"silu"``, ``"elu"``, ``"softplus"``,
        ``"sigmoid"``, ``"identity"``.
    norm : {"layer", "batch", "none"} or None
        Normalisation over the feature axis (``"batch"`` pools every leading axis).
    step, learn_step : see :class:`Residual`.
    bias : bool
        Biases in the linear maps.

    Shapes:
        - **input:** ``(..., features)``
        - **output:** ``(..., out_features)``

    Examples
    --------
    >>> import torch
    >>> block = PreActResidual(8, hidden=16)
    >>> block(torch.randn(5, 8)).shape
    torch.Size([5, 8])
    >>> [type(m).__name__ for m in block.branch]
    ['LayerNorm', 'ReLU', 'Linear', 'LayerNorm', 'ReLU', 'Linear']
    """

    def __init__(
        self,
        features: int,
        hidden: int | None = None,
        out_features: int | None = None,
        activation: str | nn.Module = "relu",
        norm: str | None = "layer",
        step: float | Tensor = UNSET,
        learn_step: bool = UNSET,
        bias: bool = True,
        **deprecated: object,
    ) -> None:
        step, learn_step = _step_args(type(self).__name__, step, learn_step, deprecated)
        hidden = features if hidden is None else hidden
        out = features if out_features is None else out_features
        fn = nn.Sequential(
            _norm_layer(norm, features),
            _activation(activation),
            nn.Linear(features, hidden, bias=bias),
            _norm_layer(norm, hidden),
            _activation(activation),
            nn.Linear(hidden, out, bias=bias),
        )
        super().__init__(fn, step, learn_step, "linear", features=(features, out))


class PostActResidual(Residual):
    r"""Post-activation residual block (He et al. 2015, the original ResNet ordering): the
    activation follows the addition.

    .. math:: y = \sigma\big(S(x) + a\,N_2(W_2\,\sigma(N_1(W_1 x + b_1)) + b_2)\big)

    Parameters
    ----------
    features, hidden, out_features, activation, norm, step, learn_step, bias
        As in :class:`PreActResidual`.

    Attributes
    ----------
    post : nn.Module
        The activation applied after the addition.

    Shapes:
        - **input:** ``(..., features)``
        - **output:** ``(..., out_features)``

    Notes
    -----
    Unlike :class:`PreActResidual`, the block is not the identity when ``h = 0``: it is
    :math:`\sigma(S(x))`.

    Examples
    --------
    >>> import torch
    >>> block = PostActResidual(4, step=0.0)
    >>> x = torch.randn(3, 4)
    >>> torch.equal(block(x), torch.relu(x))
    True
    """

    def __init__(
        self,
        features: int,
        hidden: int | None = None,
        out_features: int | None = None,
        activation: str | nn.Module = "relu",
        norm: str | None = "layer",
        step: float | Tensor = UNSET,
        learn_step: bool = UNSET,
        bias: bool = True,
        **deprecated: object,
    ) -> None:
        step, learn_step = _step_args(type(self).__name__, step, learn_step, deprecated)
        hidden = features if hidden is None else hidden
        out = features if out_features is None else out_features
        fn = nn.Sequential(
            nn.Linear(features, hidden, bias=bias),
            _norm_layer(norm, hidden),
            _activation(activation),
            nn.Linear(hidden, out, bias=bias),
            _norm_layer(norm, out),
        )
        super().__init__(fn, step, learn_step, "linear", features=(features, out))
        self.post = _activation(activation)

    def forward_with_step(self, x: Tensor, step: float | Tensor) -> Tensor:
        r"""The block with the step given explicitly: :math:`\sigma(S(x) + h F(x))`."""
        return self.post(super().forward_with_step(x, step))


class BottleneckResidual(Residual):
    r"""Bottleneck residual block (reduce -> transform -> expand), pre-activation ordering.

    .. math:: F = W_{\uparrow}\,\sigma N\; W_{\circ}\,\sigma N\; W_{\downarrow}\,\sigma N,
              \qquad y = S(x) + a\,F(x)

    with :math:`W_{\downarrow}: C \to B`, :math:`W_{\circ}: B \to B`,
    :math:`W_{\uparrow}: B \to C_{out}` and :math:`B < C` the bottleneck width.

    Parameters
    ----------
    features : int
        Input feature size ``C``.
    bottleneck : int
        Bottleneck width ``B``.
    out_features : int, optional
        Output size (default ``features``); a different size uses a linear shortcut.
    activation, norm, step, learn_step, bias
        As in :class:`PreActResidual`.

    Shapes:
        - **input:** ``(..., features)``
        - **output:** ``(..., out_features)``

    Examples
    --------
    >>> import torch
    >>> block = BottleneckResidual(16, 4, out_features=32)
    >>> block(torch.randn(2, 16)).shape
    torch.Size([2, 32])
    >>> type(block.shortcut).__name__
    'LinearShortcut'
    """

    def __init__(
        self,
        features: int,
        bottleneck: int,
        out_features: int | None = None,
        activation: str | nn.Module = "relu",
        norm: str | None = "layer",
        step: float | Tensor = UNSET,
        learn_step: bool = UNSET,
        bias: bool = True,
        **deprecated: object,
    ) -> None:
        step, learn_step = _step_args(type(self).__name__, step, learn_step, deprecated)
        out = features if out_features is None else out_features
        fn = nn.Sequential(
            _norm_layer(norm, features),
            _activation(activation),
            nn.Linear(features, bottleneck, bias=bias),
            _norm_layer(norm, bottleneck),
            _activation(activation),
            nn.Linear(bottleneck, bottleneck, bias=bias),
            _norm_layer(norm, bottleneck),
            _activation(activation),
            nn.Linear(bottleneck, out, bias=bias),
        )
        super().__init__(fn, step, learn_step, "linear", features=(features, out))


# ---------------------------------------------------------------------------- dead zone
def _soft(u: Tensor, tau: float, mode: str, dim: int | tuple[int, ...]) -> tuple[Tensor, Tensor]:
    """Soft threshold and its active mask (``~(|u| <= tau)``, so NaN counts as active)."""
    if mode == "elementwise":
        return u - u.clamp(-tau, tau), ~(u.abs() <= tau)
    n = safe_norm(u, dim=dim, keepdim=True)
    active = ~(n <= tau)
    safe_n = torch.where(active, n, torch.ones_like(n))
    return torch.where(active, 1.0 - tau / safe_n, torch.zeros_like(n)) * u, active


def soft_threshold(
    u: Tensor, tau: float, mode: str = "elementwise", dim: int | tuple[int, ...] = -1
) -> Tensor:
    r"""Soft threshold (the proximal map of :math:`\tau\|\cdot\|_1` or of a group norm).

    .. math::
        \operatorname{soft}(u, \tau)_i = \operatorname{sign}(u_i)\max(|u_i| - \tau, 0)
        \quad\text{("elementwise")}, \qquad
        \operatorname{soft}(u, \tau) = \max\Big(1 - \frac{\tau}{\|u\|}, 0\Big)\,u
        \quad\text{("norm")}

    Parameters
    ----------
    u : Tensor, shape (...)
    tau : float
        Threshold, ``>= 0``.
    mode : {"elementwise", "norm"}
        Per entry, or on the Euclidean norm over ``dim`` (group soft threshold: the direction
        is kept, the length shrinks by ``tau``).
    dim : int or tuple of int
        Axes of the norm in ``"norm"`` mode.

    Returns
    -------
    Tensor, the shape of ``u``
        Exactly 0 where :math:`|u_i| \le \tau` (resp. :math:`\|u\| \le \tau`); NaN inputs stay NaN.

    Raises
    ------
    UnknownChoiceError
        If ``mode`` is not one of the two names.

    Examples
    --------
    >>> import torch
    >>> soft_threshold(torch.tensor([-2.0, -0.5, 0.3, 1.5]), 1.0)
    tensor([-1.0000,  0.0000,  0.0000,  0.5000])
    >>> soft_threshold(torch.tensor([3.0, 4.0]), 1.0, mode="norm")
    tensor([2.4000, 3.2000])
    """
    if mode not in _DEAD_ZONE_MODES:
        raise UnknownChoiceError(f"unknown mode {mode!r}; valid names: {', '.join(_DEAD_ZONE_MODES)}")
    return _soft(u, tau, mode, dim)[0]


class DeadZoneResidual(Residual):
    r"""Residual block with a soft-threshold dead zone: exactly the identity while the
    correction is small.

    .. math:: y = S(x) + h\,\operatorname{soft}(F(x), \tau)

    with :func:`soft_threshold`. Where :math:`|F(x)_i| \le \tau` (``"elementwise"``) or
    :math:`\|F(x)\| \le \tau` over ``dim`` (``"norm"``), the output *is* :math:`S(x)`, bit for
    bit (selected with ``torch.where``, so even ``-0.0`` survives).

    Parameters
    ----------
    branch : nn.Module
        The residual branch :math:`F`.
    threshold : float
        :math:`\tau \ge 0`, finite.
    step, learn_step, shortcut, features, feature_dim
        As in :class:`Residual`.
    mode : {"elementwise", "norm"}
        ``"elementwise"`` (default) thresholds each entry: small entries are dropped
        independently, and the correction changes direction. ``"norm"`` thresholds the
        Euclidean norm over ``dim`` (a group soft threshold): the correction keeps its
        direction and is either applied (shrunk by :math:`\tau`) or dropped as a whole, which
        is the natural choice when the features form one vector (a velocity, a tangent vector).
    dim : int or tuple of int
        Axes of the norm in ``"norm"`` mode (default: the last axis).

    Shapes:
        - **input:** ``(..., C)``
        - **output:** ``(..., C)``

    Raises
    ------
    ParameterError
        If ``threshold`` is negative or not finite, or ``step`` is not finite.
    UnknownChoiceError
        If ``mode`` is unknown.

    Notes
    -----
    A NaN in :math:`F(x)` counts as *above* the threshold, so it reaches the output (never a
    silent identity). The gradient with respect to :math:`F` is zero inside the dead zone.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> block = DeadZoneResidual(nn.Linear(3, 3), threshold=1e3)
    >>> x = torch.randn(4, 3)
    >>> torch.equal(block(x), x)
    True
    >>> block
    DeadZoneResidual(
      step=1, learn_step=False, threshold=1000.0, mode='elementwise'
      (branch): Linear(in_features=3, out_features=3, bias=True)
      (shortcut): Identity()
    )
    """

    def __init__(
        self,
        branch: nn.Module,
        threshold: float,
        step: float | Tensor = UNSET,
        learn_step: bool = UNSET,
        mode: str = "elementwise",
        dim: int | tuple[int, ...] = -1,
        shortcut: str | nn.Module | None = None,
        *,
        features: tuple[int, int] | None = None,
        feature_dim: int = -1,
        **deprecated: object,
    ) -> None:
        name = type(self).__name__
        if "fn" in deprecated:
            branch = renamed_kwargs(name, {"fn": deprecated.pop("fn")}, {"fn": ("branch", branch)})["branch"]
        step, learn_step = _step_args(name, step, learn_step, deprecated)
        if isinstance(threshold, Tensor) and threshold.dim():
            raise ShapeError(f"{name}: threshold must be a scalar, got shape {tuple(threshold.shape)}")
        threshold = float(_finite_number("threshold", threshold, name, minimum=0.0))
        if mode not in _DEAD_ZONE_MODES:
            raise UnknownChoiceError(f"unknown mode {mode!r}; valid names: {', '.join(_DEAD_ZONE_MODES)}")
        super().__init__(branch, step, learn_step, shortcut, features=features, feature_dim=feature_dim)
        self.threshold = threshold
        self.mode = mode
        self.dim = dim

    def forward_with_step(self, x: Tensor, step: float | Tensor) -> Tensor:
        r"""The block with the step given explicitly: :math:`S(x) + h\,\operatorname{soft}(F(x))`."""
        s, r = self._branches(x, step)
        u, active = _soft(r, self.threshold, self.mode, self.dim)
        return torch.where(active, s + step_value(step, u) * u, s)

    def extra_repr(self) -> str:
        extra = f", dim={self.dim}" if self.mode == "norm" else ""
        return f"{super().extra_repr()}, threshold={self.threshold}, mode={self.mode!r}{extra}"


# ---------------------------------------------------------------------------- stacks
def _block_fn(width: int, hidden: int | None, act: str | nn.Module, bias: bool) -> nn.Sequential:
    if hidden is None:
        return nn.Sequential(nn.Linear(width, width, bias=bias), _activation(act))
    return nn.Sequential(
        nn.Linear(width, hidden, bias=bias), _activation(act), nn.Linear(hidden, width, bias=bias)
    )


def _stack(
    width: int,
    depth: int,
    hidden: int | None,
    act: str | nn.Module,
    in_features: int | None,
    out_features: int | None,
    bias: bool,
    wrap,
) -> nn.Sequential:
    depth = check_int(depth, "depth", "residual_mlp", minimum=0)
    layers: list[nn.Module] = []
    if in_features is not None:
        layers.append(nn.Linear(in_features, width, bias=bias))
    layers += [wrap(_block_fn(width, hidden, act, bias)) for _ in range(depth)]
    if out_features is not None:
        layers.append(nn.Linear(width, out_features, bias=bias))
    return nn.Sequential(*layers)


def residual_mlp(
    width: int,
    depth: int,
    step: float | Tensor = UNSET,
    learn_step: bool = UNSET,
    hidden: int | None = None,
    activation: str | nn.Module = "tanh",
    in_features: int | None = None,
    out_features: int | None = None,
    bias: bool = True,
    **deprecated: object,
) -> nn.Sequential:
    r"""A deep stack of residual MLP blocks (an explicit Euler solver with step ``step``).

    .. math:: x_{k+1} = x_k + h\,\sigma(W_k x_k + b_k) \quad(\text{hidden}=\text{None}),
              \qquad x_{k+1} = x_k + h\,(W'_k\,\sigma(W_k x_k + b_k) + b'_k)

    Parameters
    ----------
    width : int
        Feature size of the residual stream.
    depth : int
        Number of :class:`Residual` blocks.
    step, learn_step
        The step :math:`h` of every block (e.g. ``1 / depth``), see :class:`Residual`.
    hidden : int, optional
        ``None``: one-layer blocks :math:`\sigma(Wx + b)`; an int: two-layer blocks through
        ``hidden`` units.
    activation : str or nn.Module
        :math:`\sigma` (default ``"tanh"``).
    in_features, out_features : int, optional
        Add a linear map into (out of) the residual stream.
    bias : bool
        Biases in every linear map.

    Returns
    -------
    nn.Sequential
        ``[Linear(in, width)], Residual * depth, [Linear(width, out)]``.

    Notes
    -----
    :func:`plain_mlp` with the same arguments creates its parameters in the same order, so
    under the same seed both networks have identical weights (plain-vs-residual studies).

    Examples
    --------
    >>> import torch
    >>> net = residual_mlp(8, depth=10, step=0.1, in_features=2, out_features=1)
    >>> net(torch.randn(5, 2)).shape
    torch.Size([5, 1])
    >>> sum(isinstance(m, Residual) for m in net)
    10
    """
    step, learn_step = _step_args("residual_mlp", step, learn_step, deprecated)
    return _stack(
        width,
        depth,
        hidden,
        activation,
        in_features,
        out_features,
        bias,
        lambda branch: Residual(branch, step, learn_step),
    )


def plain_mlp(
    width: int,
    depth: int,
    hidden: int | None = None,
    activation: str | nn.Module = "tanh",
    in_features: int | None = None,
    out_features: int | None = None,
    bias: bool = True,
) -> nn.Sequential:
    r"""The network of :func:`residual_mlp` without the skips (same blocks, same init order).

    .. math:: x_{k+1} = \sigma(W_k x_k + b_k)

    Parameters
    ----------
    width, depth, hidden, activation, in_features, out_features, bias
        As in :func:`residual_mlp`.

    Returns
    -------
    nn.Sequential
        ``[Linear(in, width)], block * depth, [Linear(width, out)]`` where each block is the
        branch a residual block would wrap.

    Examples
    --------
    >>> import torch
    >>> _ = torch.manual_seed(0); plain = plain_mlp(4, 3)
    >>> _ = torch.manual_seed(0); res = residual_mlp(4, 3)
    >>> torch.equal(plain[0][0].weight, res[0].branch[0].weight)
    True
    """
    return _stack(width, depth, hidden, activation, in_features, out_features, bias, lambda fn: fn)
