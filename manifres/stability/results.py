"""Frozen result records of the stability studies, each with a JSON-safe ``to_dict()``.

Every study function of :mod:`manifres.stability` returns one of these dataclasses. Their
tensor fields are detached; :meth:`to_dict` turns them into plain Python data that
:func:`json.dumps` accepts with ``allow_nan=False``:

* a real tensor becomes a (nested) list of floats, a boolean tensor a (nested) list of bools,
  a 0-d tensor a float or a bool;
* a complex tensor becomes ``{"real": [...], "imag": [...]}``;
* a non-finite float (NaN, +-inf) becomes ``None`` (JSON ``null``): "not available" for a NaN,
  "out of range" for an infinity (log fields are given next to values that may underflow);
* nested records become nested dictionaries.

Examples
--------
>>> import json, torch
>>> from manifres.stability.results import WeylBand
>>> band = WeylBand(
...     epsilon=torch.tensor(0.5), lower=torch.tensor(0.5), upper=torch.tensor(1.5),
...     sigma_min=torch.tensor(0.75), sigma_max=torch.tensor(1.25),
...     holds=torch.tensor(True), tol=1e-6)
>>> text = json.dumps(band.to_dict(), allow_nan=False)
>>> json.loads(text)["sigma_max"], json.loads(text)["holds"]
(1.25, True)
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from .._deprecation import warn_renamed

__all__ = [
    "to_plain",
    "JacobianSpectrum",
    "WeylBand",
    "DepthProfile",
    "LyapunovSpectrum",
    "ScaleSweep",
    "PlainResidualComparison",
    "DiffusionStability",
    "GainMargin",
    "PatchInteraction",
]


def _float(v: float) -> float | None:
    v = float(v)
    return v if math.isfinite(v) else None


def to_plain(value: Any) -> Any:
    """Convert tensors, records, sequences and numbers into JSON-safe plain Python data.

    Parameters
    ----------
    value : Tensor, dataclass, dict, list, tuple, number, str, bool or None

    Returns
    -------
    The same data made of ``dict``, ``list``, ``float``, ``int``, ``bool``, ``str`` and ``None``
    (non-finite floats become ``None``; complex tensors ``{"real": ..., "imag": ...}``).

    Examples
    --------
    >>> to_plain(torch.tensor([1.0, float("nan"), float("inf")]))
    [1.0, None, None]
    >>> to_plain(torch.tensor([1 + 2j]))
    {'real': [1.0], 'imag': [2.0]}
    """
    if isinstance(value, Tensor):
        t = value.detach().cpu()
        if t.is_complex():
            return {"real": to_plain(t.real), "imag": to_plain(t.imag)}
        if t.dtype == torch.bool:
            return t.tolist()
        if not t.is_floating_point():
            return t.tolist()
        data = t.double().tolist()
        return _map_floats(data)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, (str, int)):
        return value
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, torch.dtype):
        return str(value).removeprefix("torch.")
    return str(value)


def _map_floats(data: Any) -> Any:
    if isinstance(data, list):
        return [_map_floats(d) for d in data]
    return _float(data)


class _Record:
    """Mixin: ``to_dict()`` over the dataclass fields."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe plain-Python view of this record (see the module notes)."""
        return to_plain(self)


@dataclass(frozen=True, eq=False)
class JacobianSpectrum(_Record):
    r"""Spectrum of a block's Jacobian :math:`J` and of its residual part :math:`J - I`.

    For a manifold block, :math:`J` is the differential between tangent spaces written in
    orthonormal tangent frames (see :func:`manifres.stability.jacobian_spectrum`). Shapes:
    ``batch`` is the batch shape of the input, ``d`` the (tangent) dimension and ``k`` the
    number of Krylov steps of the matrix-free path.

    Attributes
    ----------
    method : str
        ``"dense"`` (every eigen/singular value) or ``"matrix_free"`` (Ritz estimates).
    dim : int
        Dimension ``d`` of the square Jacobian.
    eigenvalues : Tensor, shape (*batch, d) complex, or (*batch, k) complex
        Eigenvalues of :math:`J` (dense: all, sorted by decreasing modulus; matrix-free: the
        Arnoldi Ritz values of :math:`J`).
    singular_values : Tensor, shape (*batch, d) or (*batch, k)
        Singular values of :math:`J`, decreasing (matrix-free: Golub-Kahan-Lanczos Ritz values).
    residual_eigenvalues, residual_singular_values : Tensor
        The same for :math:`J - I`.
    spectral_radius, sigma_max, sigma_min : Tensor, shape batch
        :math:`\rho(J)`, :math:`\sigma_{\max}(J)`, :math:`\sigma_{\min}(J)`.
    residual_norm, residual_spectral_radius : Tensor, shape batch
        :math:`\|J - I\|_2` and :math:`\rho(J - I)`.
    """

    method: str
    dim: int
    eigenvalues: Tensor
    singular_values: Tensor
    residual_eigenvalues: Tensor
    residual_singular_values: Tensor
    spectral_radius: Tensor
    sigma_max: Tensor
    sigma_min: Tensor
    residual_norm: Tensor
    residual_spectral_radius: Tensor


@dataclass(frozen=True, eq=False)
class WeylBand(_Record):
    r"""The Weyl band :math:`[1 - e, 1 + e]`, :math:`e = \|W\|_2`, against the measured
    extreme singular values of :math:`I + W`.

    Attributes
    ----------
    epsilon : Tensor, shape batch
        :math:`e = \|W\|_2`.
    lower, upper : Tensor, shape batch
        :math:`1 - e` and :math:`1 + e`.
    sigma_min, sigma_max : Tensor, shape batch
        Measured extreme singular values of :math:`I + W`.
    holds : Tensor of bool, shape batch
        Whether ``lower - tol <= sigma_min`` and ``sigma_max <= upper + tol``.
    tol : float
        Rounding allowance (relative to ``1 + e``) used by ``holds``.
    """

    epsilon: Tensor
    lower: Tensor
    upper: Tensor
    sigma_min: Tensor
    sigma_max: Tensor
    holds: Tensor
    tol: float

    @property
    def all_hold(self) -> bool:
        """Whether the bound holds for every matrix of the batch (reads values)."""
        return bool(self.holds.all())


@dataclass(frozen=True, eq=False)
class LyapunovSpectrum(_Record):
    r"""Growth rates of tangent volumes through a stack, by the QR (Benettin) method.

    Attributes
    ----------
    exponents : Tensor, shape (k,)
        Average log growth per layer, :math:`\frac1L \sum_l \log |R_l|_{ii}`, decreasing,
        averaged over the batch.
    cumulative : Tensor, shape (L, k)
        :math:`\sum_{m \le l} \log |R_m|_{ii}` after each layer (batch mean): the log of the
        growth of the ``i``-th orthogonalised direction.
    depth : int
        Number of layers ``L``.
    """

    exponents: Tensor
    cumulative: Tensor
    depth: int


@dataclass(frozen=True, eq=False)
class DepthProfile(_Record):
    r"""Forward and backward behaviour of a stack of ``L`` layers, layer by layer.

    Norms are Frobenius norms over the batch; ``log10_*`` fields are computed with a
    renormalised layer-by-layer backward pass, so they stay finite where the plain values
    underflow to 0 or overflow to infinity.

    Attributes
    ----------
    depth : int
        Number of layers ``L``.
    activation_norms : Tensor, shape (L + 1,)
        :math:`\|h_l\|`, ``h_0 = x``.
    forward_gain : Tensor, shape (L,)
        Per-layer amplification :math:`\|J_l \delta_{l-1}\| / \|\delta_{l-1}\|` of a random
        perturbation pushed through the stack (forward-mode derivatives).
    grad_norms, log10_grad_norms : Tensor, shape (L,)
        Norm of the loss gradient with respect to each layer's parameters (NaN for a layer
        without parameters).
    activation_grad_norms, log10_activation_grad_norms : Tensor, shape (L + 1,)
        :math:`\|\partial L / \partial h_l\|`.
    grad_cosines : Tensor, shape (L - 1,)
        Cosine between the parameter gradients of layers ``l`` and ``l + 1`` (NaN where their
        parameter shapes differ).
    activation_grad_cosines : Tensor, shape (L,)
        Cosine between :math:`\partial L / \partial h_{l-1}` and :math:`\partial L / \partial h_l`.
    dim : int
        Coordinates per sample of each Jacobian: ``manifold.dim`` on a manifold (tangent
        frames), else the number of features of one sample.
    step_grads : Tensor, shape (L,)
        :math:`\partial L / \partial h_l`, the derivative of the loss with respect to each
        layer's step (autograd, for every layer of the residual-step protocol; NaN for other
        layers). Deprecated alias: ``scale_grads``.
    residual_norms : Tensor, shape (L,)
        :math:`e_l = \max_b \|J_l - I\|_2` over the batch (NaN when spectra were skipped).
    spectral_radii : Tensor, shape (L,)
        :math:`\max_b \rho(J_l)` (NaN when spectra were skipped).
    log_upper_bound, log_lower_bound : Tensor, shape batch
        Per sample, :math:`\sum_l \log(1 + e_l)` and :math:`\sum_l \log(1 - e_l)` with
        :math:`e_l = \|J_l - I\|_2` at that sample (``-inf``, stored as ``None``, once some
        :math:`e_l \ge 1`).
    log_sigma_max, log_sigma_min : Tensor, shape batch
        Natural logs of the extreme singular values of the end-to-end Jacobian
        :math:`J_L \cdots J_1`, computed with a renormalised product (NaN when spectra were
        skipped). The smallest is reliable only while the condition number stays below
        ``1 / eps``.
    bound_holds : Tensor of bool, shape batch
        Whether the measured end-to-end singular values lie inside the product bounds.
    """

    depth: int
    dim: int
    activation_norms: Tensor
    forward_gain: Tensor
    grad_norms: Tensor
    log10_grad_norms: Tensor
    activation_grad_norms: Tensor
    log10_activation_grad_norms: Tensor
    grad_cosines: Tensor
    activation_grad_cosines: Tensor
    step_grads: Tensor
    residual_norms: Tensor
    spectral_radii: Tensor
    log_upper_bound: Tensor
    log_lower_bound: Tensor
    log_sigma_max: Tensor
    log_sigma_min: Tensor
    bound_holds: Tensor

    @property
    def scale_grads(self) -> Tensor:
        """Deprecated alias of :attr:`step_grads`."""
        warn_renamed("DepthProfile", "scale_grads", "step_grads")
        return self.step_grads


@dataclass(frozen=True, eq=False)
class ScaleSweep(_Record):
    r"""How a residual stack's stability measures change with its step ``h`` (the residual
    scale).

    Every field but ``steps`` and ``profiles`` has shape ``(S,)``, one entry per step.

    Attributes
    ----------
    steps : Tensor, shape (S,)
        The steps swept (deprecated alias: ``scales``).
    max_residual_norm : Tensor
        :math:`\max_l e_l = \max_l \|J_l - I\|_2`.
    max_spectral_radius : Tensor
        :math:`\max_l \rho(J_l)`.
    log_sigma_max, log_sigma_min : Tensor
        Batch means of the end-to-end log singular values.
    log_upper_bound : Tensor
        :math:`\sum_l \log(1 + e_l)`.
    first_layer_grad_norm, log10_first_layer_grad_norm : Tensor
    mean_grad_cosine : Tensor
        Mean cosine between consecutive layers' parameter gradients.
    anti_aligned_fraction : Tensor
        Fraction of consecutive layer pairs whose parameter gradients have a negative cosine.
    mean_abs_step_grad : Tensor
        Mean over layers of :math:`|\partial L / \partial h_l|`.
    step_grad_sign_flips : Tensor
        Fraction of consecutive layers whose step gradients have opposite signs.
    profiles : tuple of DepthProfile
        The full profile at each step.
    """

    steps: Tensor
    max_residual_norm: Tensor
    max_spectral_radius: Tensor
    log_sigma_max: Tensor
    log_sigma_min: Tensor
    log_upper_bound: Tensor
    first_layer_grad_norm: Tensor
    log10_first_layer_grad_norm: Tensor
    mean_grad_cosine: Tensor
    anti_aligned_fraction: Tensor
    mean_abs_step_grad: Tensor
    step_grad_sign_flips: Tensor
    profiles: tuple[DepthProfile, ...]

    @property
    def scales(self) -> Tensor:
        """Deprecated alias of :attr:`steps`."""
        warn_renamed("ScaleSweep", "scales", "steps")
        return self.steps

    @property
    def mean_abs_scale_grad(self) -> Tensor:
        """Deprecated alias of :attr:`mean_abs_step_grad`."""
        warn_renamed("ScaleSweep", "mean_abs_scale_grad", "mean_abs_step_grad")
        return self.mean_abs_step_grad

    @property
    def scale_grad_sign_flips(self) -> Tensor:
        """Deprecated alias of :attr:`step_grad_sign_flips`."""
        warn_renamed("ScaleSweep", "scale_grad_sign_flips", "step_grad_sign_flips")
        return self.step_grad_sign_flips


@dataclass(frozen=True, eq=False)
class PlainResidualComparison(_Record):
    r"""First-layer gradient norms of a plain and a residual stack against depth.

    Both stacks share widths, weights and inputs: plain layers compute
    :math:`h \mapsto \phi(W_l h + b_l)`, residual ones :math:`h \mapsto h + h_s\,\phi(W_l h + b_l)`.

    Attributes
    ----------
    depths : list of int
    width : int
    step : float
        The residual step :math:`h_s` (deprecated alias: ``scale``).
    activation : str
    plain_grad_norm, residual_grad_norm : Tensor, shape (len(depths),)
        Norm of the loss gradient with respect to the first layer's parameters (0 where it
        underflows).
    plain_log10_grad_norm, residual_log10_grad_norm : Tensor, shape (len(depths),)
        The same as base-10 logarithms, from a renormalised backward pass (finite where the
        plain value underflows).
    plain_output_norm, residual_output_norm : Tensor, shape (len(depths),)
        :math:`\|h_L\|` over the batch.
    """

    depths: list[int]
    width: int
    step: float
    activation: str
    plain_grad_norm: Tensor
    residual_grad_norm: Tensor
    plain_log10_grad_norm: Tensor
    residual_log10_grad_norm: Tensor
    plain_output_norm: Tensor
    residual_output_norm: Tensor

    @property
    def scale(self) -> float:
        """Deprecated alias of :attr:`step`."""
        warn_renamed("PlainResidualComparison", "scale", "step")
        return self.step


@dataclass(frozen=True, eq=False)
class DiffusionStability(_Record):
    r"""Stability of the graph diffusion step :math:`x \mapsto (I - \alpha L) x`.

    Attributes
    ----------
    num_nodes : int
    num_edges : int
        Number of undirected edges (stored directions / 2).
    normalization : str or None
        Laplacian normalization (``None``: combinatorial, ``"sym"``, ``"rw"``).
    step : float
        The step :math:`h` under test (deprecated alias: ``alpha``).
    lambda_max, lambda_2 : float
        Largest and second-smallest Laplacian eigenvalues.
    max_step : float
        :math:`2 / \lambda_{\max}`: steps below it keep :math:`|1 - h\lambda| \le 1`.
    consensus_rate : float
        :math:`\max_{\lambda \ne 0} |1 - h \lambda|`: per-step contraction of the
        disagreement (``>= 1``: no consensus).
    stable : bool or None
        The certificate's verdict on :math:`h \lambda_{\max} \le 2`: ``True`` or ``False``
        when proven by bounds that hold, ``None`` when they cannot decide (see
        :class:`manifres.graph.DiffusionCertificate`).
    eigenvalues : Tensor or None, shape (N,)
        The whole Laplacian spectrum (ascending) for graphs small enough for a dense
        eigen-decomposition, else ``None``.
    decay : Tensor or None, shape (steps + 1,)
        :math:`\|L x_k\| / \|L x_0\|` over a simulated run of ``steps`` diffusion steps
        (``None`` without a simulation).
    """

    num_nodes: int
    num_edges: int
    normalization: str | None
    step: float
    lambda_max: float
    lambda_2: float
    max_step: float
    consensus_rate: float
    stable: bool | None
    eigenvalues: Tensor | None
    decay: Tensor | None

    @property
    def alpha(self) -> float:
        """Deprecated alias of :attr:`step`."""
        warn_renamed("DiffusionStability", "alpha", "step")
        return self.step


@dataclass(frozen=True, eq=False)
class GainMargin(_Record):
    r"""The feedback gains :math:`k \ge 0` that make :math:`x_{t+1} = f(x_t) - kBK(x_t - x^*)`
    locally stable: :math:`\rho(J_f - kBK) < 1`.

    Attributes
    ----------
    intervals : list of (float, float)
        The stable set as disjoint intervals ``(low, high)``, increasing; ``high`` may be
        ``inf`` (``None`` in :meth:`to_dict`). Each is open, except that ``low = 0`` is
        included exactly when :attr:`stable_at_zero`.
    boundaries : list of float
        The gains where stability changes (the finite ends of the intervals, ``0`` excluded
        when the baseline is stable), where an eigenvalue of :math:`J - kBK` crosses the unit
        circle.
    crossing_angles : list of float
        For each boundary, :math:`|\operatorname{arg}\lambda| \in [0, \pi]` of the eigenvalue on the
        circle: ``0`` (through 1), ``pi`` (through -1, a flip) or in between (a complex pair:
        oscillations).
    boundary_residuals : list of float
        :math:`|\rho(J - kBK) - 1|` at each boundary, recomputed from the eigenvalues: the
        accuracy actually reached.
    stable_at_zero : bool
        Whether the baseline itself is stable, :math:`\rho(J) < 1`.
    baseline_radius : float
        :math:`\rho(J)`.
    jacobian : Tensor, shape (n, n), float64
        :math:`J`, the baseline's Jacobian at the fixed point.
    direction : Tensor, shape (n, n), float64
        :math:`BK`.
    fixed_point_residual : float or None
        :math:`\|f(x^*) - x^*\|` for a map linearised at ``at`` (``None`` for a matrix); the
        closed loop has :math:`x^*` as a fixed point only when it is 0.
    """

    intervals: list[tuple[float, float]]
    boundaries: list[float]
    crossing_angles: list[float]
    boundary_residuals: list[float]
    stable_at_zero: bool
    baseline_radius: float
    jacobian: Tensor
    direction: Tensor
    fixed_point_residual: float | None

    def radius(self, k: float | Tensor) -> Tensor:
        r"""Spectral radius :math:`\rho(J - kBK)` for one gain or a 1-D tensor of gains."""
        ks = torch.as_tensor(k, dtype=torch.float64).reshape(-1)
        mats = self.jacobian - ks[:, None, None] * self.direction
        r = torch.linalg.eigvals(mats).abs().amax(-1)
        return r if torch.as_tensor(k).dim() else r[0]

    def contains(self, k: float) -> bool:
        """Whether the gain ``k`` lies in the stable set (read from :attr:`intervals`)."""
        k = float(k)
        return any((lo < k < hi) or (k == lo == 0.0 and self.stable_at_zero) for lo, hi in self.intervals)


@dataclass(frozen=True, eq=False)
class PatchInteraction(_Record):
    r"""How patches applied in order, :math:`x \leftarrow x + p_i(x)`, add up.

    .. math:: \text{total} = \underbrace{x}_{\text{identity}}
              + \underbrace{\textstyle\sum_i p_i(x)}_{\text{first order}}
              + \text{interaction}

    For two linear patches :math:`(I + A_2)(I + A_1) = I + A_1 + A_2 + A_2A_1`: the interaction
    is :math:`A_2A_1x` and the order dependence the commutator :math:`(A_1A_2 - A_2A_1)x`; in
    general the interaction of two patches is :math:`p_2(x + p_1(x)) - p_2(x)`.

    Attributes
    ----------
    identity : Tensor
        ``x``.
    first_order : Tensor
        :math:`\sum_i p_i(x)`, every patch at the unpatched input.
    interaction : Tensor
        ``total - identity - first_order``.
    total : Tensor
        The composed output (patches in the given order).
    reversed_total : Tensor
        The composed output with the order reversed.
    order_dependence : Tensor
        ``reversed_total - total``.

    All tensors have the shape of ``x`` and are detached.
    """

    identity: Tensor
    first_order: Tensor
    interaction: Tensor
    total: Tensor
    reversed_total: Tensor
    order_dependence: Tensor

    @property
    def relative_interaction(self) -> float:
        r""":math:`\|\text{interaction}\| / \|\text{first order}\|` (Frobenius; NaN when
        the first order is 0)."""
        return _ratio(self.interaction, self.first_order)

    @property
    def relative_order_dependence(self) -> float:
        r""":math:`\|\text{order dependence}\| / \|\text{first order}\|`."""
        return _ratio(self.order_dependence, self.first_order)


def _ratio(a: Tensor, b: Tensor) -> float:
    nb = float(torch.linalg.vector_norm(b.double()))
    return float(torch.linalg.vector_norm(a.double())) / nb if nb > 0 else math.nan
