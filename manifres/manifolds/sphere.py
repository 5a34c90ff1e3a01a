"""The unit sphere ``S^n`` embedded in ``R^{n+1}``."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .._numerics import cos_sq, eps, safe_sqrt, series_threshold, sinc, theta_over_sin
from .._validation import check_int
from ..errors import CutLocusError, ManifoldError, UnknownChoiceError
from ._fused import combine, dot
from .actions import LieGroupAction, SphereRotation, SphereRotation2
from .base import Manifold
from .frames import Frame, HouseholderFrame

__all__ = ["Sphere"]

_CUT_LOCUS = ("raise", "nan", "deterministic")


# Batch-scalar coefficients (P, Q) of y = P x + Q u from a = <x,u>, xx = |x|^2, uu = |u|^2
# (see _fused.combine). With v = u - a x the tangent part of u, |v|^2 = uu - a^2 (2 - xx).
def _proj_coeffs(a: Tensor, xx: Tensor, uu: Tensor) -> tuple[Tensor, Tensor]:
    return -a, torch.ones_like(a)


def _unit(p: Tensor, q: Tensor, a: Tensor, xx: Tensor, uu: Tensor) -> tuple[Tensor, Tensor]:
    """Scale (p, q) so that |p x + q u| = 1.

    NaN where |p x + q u|^2 overflows (|u| beyond about 1.8e19 in float32, 1.3e154 in
    float64), never the zero vector. At u = 0 with |x| within rounding of 1 the factor is
    exactly 1 (its gradient kept), so that a step of zero returns x bitwise."""
    n2 = p * p * xx + 2.0 * p * q * a + q * q * uu
    r = 1.0 / torch.sqrt(n2.clamp_min(torch.finfo(n2.dtype).tiny))
    r = torch.where(torch.isinf(n2), torch.nan, r)
    still = (uu == 0) & ((r - 1.0).abs() <= 4.0 * torch.finfo(r.dtype).eps)
    r = torch.where(still, r + (1.0 - r).detach(), r)
    return p * r, q * r


def _exp_coeffs(a: Tensor, xx: Tensor, uu: Tensor) -> tuple[Tensor, Tensor]:
    t2 = (uu - a * a * (2.0 - xx)).clamp_min(0.0)
    s = sinc(t2)
    return _unit(cos_sq(t2) - s * a, s, a, xx, uu)


def _projective_coeffs(a: Tensor, xx: Tensor, uu: Tensor) -> tuple[Tensor, Tensor]:
    return _unit(1.0 - a, torch.ones_like(a), a, xx, uu)


def _is_vmapped(t: Tensor) -> bool:
    """Whether ``t`` is batched by ``torch.func.vmap`` at some level (so has no single value)."""
    f = torch._C._functorch
    while f.is_functorch_wrapped_tensor(t):
        if f.is_batchedtensor(t):
            return True
        t = f.get_unwrapped(t)
    return False


class Sphere(Manifold):
    r"""The unit sphere :math:`S^n = \{x \in \mathbb{R}^{n+1} : \|x\| = 1\}`.

    Points have shape ``(..., n+1)``; tangent vectors are ambient vectors orthogonal to the
    point. The metric is the one induced by :math:`\mathbb{R}^{n+1}`.

    Parameters
    ----------
    n : int
        Intrinsic dimension (``Sphere(2)`` is the 2-sphere in :math:`\mathbb{R}^3`).
    cut_locus : {"raise", "nan", "deterministic"}
        What :meth:`log` and :meth:`transport` do at antipodal points, where the minimising
        geodesic is not unique. ``"raise"`` (default) raises
        :class:`~manifres.errors.CutLocusError` (this reads values: one host-device sync per
        call on GPUs; under :func:`torch.func.vmap` and :func:`torch.compile`, where raising
        on values is impossible or breaks the graph, antipodal pairs give NaN as with
        ``"nan"``); ``"nan"`` returns NaN for those points (no sync);
        ``"deterministic"`` returns the tangent of norm :math:`\pi` towards the coordinate
        axis ``e_j`` in which ``|x_j|`` is smallest (``log``), and the transport along that
        geodesic.
    validate : bool or None
        Value checks, see :class:`~manifres.manifolds.base.Manifold`.

    Notes
    -----
    * :meth:`exp` is exact: :math:`\exp_x(v) = \cos\|v\|\,x + \operatorname{sinc}\|v\|\,v`,
      with ``sinc`` from a Taylor series below :math:`\|v\| = 0.5` (float32) or ``0.1``
      (float64). It projects ``v`` onto :math:`T_x S^n` first and renormalises the result, so
      points stay on the sphere over long chains of steps; ``exp(x, 0)`` (and the projective
      retraction at 0) returns ``x`` bitwise whenever :math:`1/\|x\|` is within
      :math:`4\varepsilon` of 1.
    * :meth:`dist` is :math:`2\operatorname{atan2}(\|x-y\|, \|x+y\|)`: exact 0 at coincident
      points, exact :math:`\pi` at antipodes, relative accuracy at tiny angles (no clamped
      ``acos``).
    * Points count as antipodal when :math:`\|x + y\| \leq 16\,\varepsilon` (``eps`` of the
      dtype); closer to the cut locus than that, the direction of the log is rounding noise.
    * ``proj_point(0)`` returns ``e_0 = (1, 0, ..., 0)`` with a zero gradient (a documented
      fallback); with validation on it raises :class:`~manifres.errors.ManifoldError`.
    * For float32, angles of :math:`\|v\| \gtrsim 10^7` cannot be resolved (the result stays on
      the sphere but its position is rounding noise).
      Beyond :math:`\|v\| \approx 1.8\cdot10^{19}` (float32) or :math:`1.3\cdot10^{154}`
      (float64), where :math:`\|v\|^2` overflows, :meth:`exp` and the projective retraction
      return NaN.
    * :meth:`proj_point` scales by :math:`\max_i |y_i|` first: correct from the smallest
      subnormal to the largest finite ``y``.

    Examples
    --------
    >>> import torch, manifres
    >>> S = manifres.Sphere(2)
    >>> x = torch.tensor([1.0, 0.0, 0.0]); v = torch.tensor([0.0, torch.pi / 2, 0.0])
    >>> S.exp(x, v)
    tensor([-4.3711e-08,  1.0000e+00,  0.0000e+00])
    >>> S.dist(x, S.exp(x, v))
    tensor(1.5708)
    """

    retractions = ("exp", "projective")

    def __init__(self, n: int, cut_locus: str = "raise", validate: bool | None = None) -> None:
        n = check_int(n, "n", "Sphere", minimum=1)
        if cut_locus not in _CUT_LOCUS:
            raise UnknownChoiceError(f"unknown cut_locus {cut_locus!r}; valid names: {', '.join(_CUT_LOCUS)}")
        super().__init__(validate)
        self.n = n
        self.cut_locus = cut_locus

    def _params(self) -> tuple:
        return (self.n,) if self.cut_locus == "raise" else (self.n, self.cut_locus)

    @property
    def point_shape(self) -> tuple[int, ...]:
        return (self.n + 1,)

    @property
    def dim(self) -> int:
        return self.n

    # ------------------------------------------------------------------ residuals
    _residual_name = "| |x| - 1 |"
    _tangent_residual_name = "|<x, v>|"

    def _point_residual(self, x: Tensor) -> Tensor:
        return (torch.sqrt((x * x).sum(-1)) - 1.0).abs()

    def _tangent_residual(self, x: Tensor, v: Tensor) -> Tensor:
        return (x * v).sum(-1).abs()

    # ------------------------------------------------------------------ projections
    def proj(self, x: Tensor, u: Tensor) -> Tensor:
        r"""Tangent projection :math:`P_x u = u - \langle x, u\rangle x`.

        Parameters
        ----------
        x : Tensor, shape (..., n+1)
        u : Tensor, shape (..., n+1)

        Returns
        -------
        Tensor, shape (..., n+1)
        """
        self._check(x, u, names=("x", "u"))
        self._validate_points(x=x)
        return combine(x, u, _proj_coeffs)

    def proj_point(self, y: Tensor) -> Tensor:
        r"""Nearest point :math:`y / \|y\|`; ``e_0`` (zero gradient) for ``y = 0``.

        Raises
        ------
        ManifoldError
            With validation on, if some ``y`` is zero or not finite.
        """
        self._check(y, names=("y",))
        if self.validate:
            if not bool(torch.isfinite(y).all()):
                raise ManifoldError(f"{self!r}: proj_point got a non-finite y")
            if bool((y == 0).all(-1).any()):
                raise ManifoldError(f"{self!r}: proj_point of the zero vector is undefined")
        # y / |y| as (y / m) / |y / m|, m = max |y_i|: no underflow of |y|^2 (|y| = 1e-23 in
        # float32) and no overflow (1e20)
        m = y.abs().amax(-1, keepdim=True)
        zero = m == 0
        e0 = torch.zeros_like(y)
        e0[..., 0] = 1.0
        ys = torch.where(zero, e0, y / torch.where(zero, torch.ones_like(m), m))
        return ys / torch.sqrt((ys * ys).sum(-1, keepdim=True))

    @staticmethod
    def _normalize(y: Tensor) -> Tensor:
        n2 = (y * y).sum(-1, keepdim=True)
        return y / torch.sqrt(n2.clamp_min(torch.finfo(y.dtype).tiny))

    # ------------------------------------------------------------------ maps
    def exp(self, x: Tensor, v: Tensor) -> Tensor:
        r"""Exponential map :math:`\exp_x(v) = \cos\|v\|\,x + \frac{\sin\|v\|}{\|v\|}\,v`.

        ``v`` is projected onto :math:`T_x S^n` first and the result is renormalised.

        Parameters
        ----------
        x : Tensor, shape (..., n+1)
        v : Tensor, shape (..., n+1)

        Returns
        -------
        Tensor, shape (..., n+1)
        """
        self._check(x, v, names=("x", "v"))
        if self.validate:
            self.check_point(x)
            self.check_tangent(x, v)
        # project first (a separate pass): a large normal component would otherwise cancel
        # inside the fused combination and cost accuracy
        return combine(x, combine(x, v, _proj_coeffs), _exp_coeffs)

    def retract_projective(self, x: Tensor, v: Tensor) -> Tensor:
        r"""Projective retraction :math:`R_x(v) = (x + v)/\|x + v\|` (``v`` projected first).

        Agrees with :meth:`exp` to second order: :math:`R_x(hv) - \exp_x(hv) = O(h^3)`.
        """
        self._check(x, v, names=("x", "v"))
        if self.validate:
            self.check_point(x)
            self.check_tangent(x, v)
        return combine(x, combine(x, v, _proj_coeffs), _projective_coeffs)

    @staticmethod
    def _cut_mask(ww: Tensor) -> Tensor:
        """Antipodal pairs: ``|x + y| <= 16 eps`` (``ww = |x + y|^2``)."""
        tol = 16.0 * eps(ww.dtype)
        return ww <= tol * tol

    def _handle_cut(self, cut: Tensor, what: str) -> bool:
        """Raise at antipodal pairs for ``cut_locus="raise"``; return whether the antipodal
        outputs are NaN: for ``"nan"``, and for ``"raise"`` under ``torch.func.vmap`` or
        ``torch.compile``, where a data-dependent raise is impossible (vmap) or a graph break
        (compile)."""
        if self.cut_locus == "nan":
            return True
        if self.cut_locus != "raise":
            return False
        if torch.compiler.is_compiling() or _is_vmapped(cut):
            return True
        if bool(cut.any()):
            idx = [int(i) for i in torch.nonzero(cut)[0]][:-1]
            raise CutLocusError(
                f"{self!r}: {what} at antipodal points (first at batch index {idx}); the "
                "minimising geodesic is not unique. Use Sphere(n, cut_locus='nan') or "
                "'deterministic' to choose a behaviour."
            )
        return False

    def _pole_direction(self, x: Tensor) -> Tensor:
        """Unit tangent at ``x`` towards the axis in which ``|x_j|`` is smallest."""
        j = x.detach().abs().argmin(-1, keepdim=True)
        e = (torch.arange(x.shape[-1], device=x.device) == j).to(x.dtype)  # one-hot, no scatter
        u = e - (x.detach() * e).sum(-1, keepdim=True) * x.detach()
        return self._normalize(u)

    def log(self, x: Tensor, y: Tensor) -> Tensor:
        r"""Logarithm :math:`\log_x(y) = \frac{\theta}{\sin\theta} P_x(y - x)`,
        :math:`\theta = d(x, y)`.

        Exactly 0 at ``y = x`` with derivative :math:`P_x` there. At antipodal points the
        behaviour follows ``cut_locus`` (see the class notes); never a silent 0.

        Parameters
        ----------
        x, y : Tensor, shape (..., n+1)

        Returns
        -------
        Tensor, shape (..., n+1)

        Raises
        ------
        CutLocusError
            With ``cut_locus="raise"``, if some ``y`` is antipodal to ``x``.
        """
        self._check(x, y, names=("x", "y"))
        self._validate_points(x=x, y=y)
        d = y - x
        xd = dot(x, d)
        w = x + y
        ww = dot(w, w)
        theta, _ = self._angle_dots(dot(d, d), ww)
        u = torch.addcmul(d, x, xd, value=-1.0)  # P_x(y - x) = d - <x, d> x
        s2 = dot(u, u)
        cut = self._cut_mask(ww)
        nan_at_cut = self._handle_cut(cut, "log")
        t2 = theta * theta
        thr = series_threshold(x.dtype)
        small = t2 < thr * thr
        s2_safe = torch.where(small | cut, torch.ones_like(s2), s2)
        # theta / |u|: the norm of the result is theta itself (accurate near pi too); the
        # Taylor series of theta / sin(theta) below the threshold keeps gradients finite at 0
        f = torch.where(
            small,
            theta_over_sin(torch.where(small, t2, torch.zeros_like(t2))),
            theta / torch.sqrt(s2_safe),
        )
        out = f * u
        if nan_at_cut:
            return torch.where(cut, torch.full_like(out, math.nan), out)
        if self.cut_locus == "deterministic":
            return torch.where(cut, math.pi * self._pole_direction(x), out)
        return out

    @staticmethod
    def _angle_dots(dd: Tensor, ww: Tensor) -> tuple[Tensor, Tensor]:
        """Angle ``2 atan2(|x - y|, |x + y|)`` from ``dd = |x - y|^2`` and ``ww = |x + y|^2``."""
        a, b = safe_sqrt(dd), safe_sqrt(ww)
        theta = 2.0 * torch.atan2(a, b)
        # atan2(inf, inf) is finite: make non-finite inputs give NaN, never a valid-looking angle
        return torch.where(torch.isfinite(a + b), theta, torch.full_like(theta, math.nan)), b

    def _angle(self, x: Tensor, y: Tensor) -> Tensor:
        d, w = x - y, x + y
        return self._angle_dots(dot(d, d), dot(w, w))[0].squeeze(-1)

    def dist(self, x: Tensor, y: Tensor) -> Tensor:
        r"""Great-circle distance :math:`2\operatorname{atan2}(\|x - y\|, \|x + y\|)`.

        Exactly 0 at ``x = y`` (with a zero gradient) and exactly :math:`\pi` at ``y = -x``.
        Tiny angles keep their relative accuracy up to the rounding of the inputs themselves:
        a float32 point is off the sphere by about 6e-8, which perturbs an angle
        :math:`\theta` by a relative :math:`(6\cdot 10^{-8}/\theta)^2`, below 1e-5 for
        :math:`\theta \geq 2\cdot 10^{-5}`.

        Parameters
        ----------
        x, y : Tensor, shape (..., n+1)

        Returns
        -------
        Tensor, shape (...)
        """
        self._check(x, y, names=("x", "y"))
        self._validate_points(x=x, y=y)
        return self._angle(x, y)

    def transport(self, x: Tensor, y: Tensor, v: Tensor) -> Tensor:
        r"""Parallel transport along the minimising geodesic from ``x`` to ``y``:

        .. math:: \Gamma_{x\to y}(v) = v - \frac{\langle y, v\rangle}{1 + \langle x, y\rangle}(x + y)

        with :math:`1 + \langle x, y\rangle` computed as :math:`\|x + y\|^2/2`. At antipodal
        points the behaviour follows ``cut_locus``.
        """
        self._check(x, y, v, names=("x", "y", "v"))
        if self.validate:
            self._validate_points(x=x, y=y)
            self.check_tangent(x, v)
        w = x + y
        ww = dot(w, w)
        cut = self._cut_mask(ww)
        nan_at_cut = self._handle_cut(cut, "transport")
        safe = torch.where(cut, torch.ones_like(ww), 0.5 * ww)
        out = torch.addcmul(v, w, dot(y, v) / safe, value=-1.0)
        if nan_at_cut:
            return torch.where(cut, torch.full_like(out, math.nan), out)
        if self.cut_locus == "deterministic":
            # along the geodesic towards the pole direction e: the e-component flips sign
            e = self._pole_direction(x)
            ve = dot(v, e)
            return torch.where(cut, v - 2.0 * ve * e, out)
        return out

    # ------------------------------------------------------------------ capabilities
    def tangent_frame(self, x: Tensor) -> Frame:
        """The Householder frame (see :mod:`manifres.manifolds.frames`)."""
        return HouseholderFrame(x)

    def lie_action(self) -> LieGroupAction:
        """:math:`SO(n+1)` acting by rotations (rotation vectors for ``n = 2``)."""
        return SphereRotation2() if self.n == 2 else SphereRotation()

    # ------------------------------------------------------------------ sampling
    def random(
        self,
        *batch: int,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Uniform random points (normalised standard normals), shape ``(*batch, n+1)``."""
        dtype = dtype or torch.get_default_dtype()
        y = torch.randn(*batch, self.n + 1, dtype=dtype, device=device, generator=generator)
        return self._normalize(y)
