r"""Gain margins of a feedback policy: which gains :math:`k \ge 0` keep a closed loop stable.

The closed loop :math:`x_{t+1} = f(x_t) + Bu_t`, :math:`u_t = -kK(x_t - x^*)` is, near a fixed
point :math:`x^*` of :math:`f`, the linear map :math:`A(k) = J - kM` with :math:`J = J_f(x^*)`
and :math:`M = BK`. It is stable when :math:`\rho(A(k)) < 1`, and the stable set changes only
at gains where an eigenvalue of :math:`A(k)` crosses the unit circle.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from .._validation import check_floating
from ..errors import ParameterError, ShapeError
from ._autodiff import jacobian_whole
from .jacobian import require_eval_mode
from .results import GainMargin

__all__ = ["gain_margin", "GAIN_MARGIN_LIMIT"]

#: Largest state dimension ``n`` accepted (the eigenproblem has size ``2 n^2``).
GAIN_MARGIN_LIMIT = 32

_F64 = torch.float64
#: A candidate gain ``k`` is taken as real when ``|Im k| <= _IMAG_RTOL * max(1, |k|)``; a
#: generous tolerance only adds candidates, which the interval test then discards.
_IMAG_RTOL = 1e-5


def _matrix(t: Tensor, name: str, column: bool) -> Tensor:
    if not isinstance(t, Tensor):
        raise TypeError(f"gain_margin: {name} must be a Tensor, got {type(t).__name__}")
    if t.dim() == 1:
        t = t[:, None] if column else t[None, :]
    if t.dim() != 2:
        raise ShapeError(f"gain_margin: {name} must be 1-D or 2-D, got shape {tuple(t.shape)}")
    return t


def _linearise(f: Tensor | Callable[[Tensor], Tensor], at: Tensor | None) -> tuple[Tensor, float | None]:
    """``(J, ||f(at) - at||)``: the matrix itself (and ``None``), or the Jacobian of ``f`` at ``at``."""
    if isinstance(f, Tensor):
        check_floating(f, names=("f",))
        if f.dim() != 2 or f.shape[0] != f.shape[1]:
            raise ShapeError(f"gain_margin: a matrix f must be square, got shape {tuple(f.shape)}")
        return f.detach().to(_F64), None
    if not callable(f):
        raise TypeError(
            f"gain_margin: f must be a square matrix, a module or a function, got {type(f).__name__}"
        )
    if at is None:
        raise ParameterError(
            "gain_margin: a module or function f is linearised at its fixed point: pass at=x_star"
        )
    check_floating(at, names=("at",))
    require_eval_mode(f, "gain_margin")
    with torch.no_grad():
        fx = f(at.detach())
    if not isinstance(fx, Tensor) or fx.shape != at.shape:
        got = tuple(fx.shape) if isinstance(fx, Tensor) else type(fx).__name__
        raise ShapeError(f"gain_margin: f must map the shape of at {tuple(at.shape)} to itself, got {got}")
    jac = jacobian_whole(f, at)[0].detach().to(_F64)
    residual = float(torch.linalg.vector_norm((fx - at).detach().to(_F64)))
    return jac, residual


def _radii(j: Tensor, m: Tensor, ks: Tensor) -> Tensor:
    return torch.linalg.eigvals(j - ks[:, None, None] * m).abs().amax(-1)


def _candidates(j: Tensor, m: Tensor) -> Tensor | None:
    r"""Every real :math:`k` with :math:`\det(A(k) \otimes A(k) - I) = 0`, :math:`A(k) = J - kM`.

    The eigenvalues of :math:`A \otimes A` are the products :math:`\lambda_i\lambda_j`, so the
    determinant vanishes where an eigenvalue is :math:`\pm 1`, where a complex pair
    :math:`e^{\pm i\omega}` sits on the circle (:math:`\lambda\bar\lambda = 1`), and at
    reciprocal real pairs :math:`(\lambda, 1/\lambda)` (spurious: the interval test drops them).
    Around a shift :math:`\sigma` where :math:`Q_0 = A(\sigma)\otimes A(\sigma) - I` is well
    conditioned, :math:`k = \sigma + 1/s` for the eigenvalues :math:`s` of the companion matrix
    of :math:`s^2 Q_0 + s Q_1 + Q_2` (:math:`Q_1 = -(A(\sigma)\otimes M + M\otimes A(\sigma))`,
    :math:`Q_2 = M \otimes M`); :math:`s = 0` are the infinite roots of a rank-deficient
    :math:`M`. ``None`` when no shift works: the determinant is identically 0, so some
    :math:`\lambda_i\lambda_j = 1` at every gain and no gain is stable.
    """
    n = j.shape[0]
    eye = torch.eye(n * n, dtype=_F64)
    mnorm = float(torch.linalg.matrix_norm(m, ord=2))
    scale = (1.0 + float(torch.linalg.matrix_norm(j, ord=2))) / max(mnorm, 1e-300)
    best = None
    for sigma in [0.0] + [scale * c for c in (0.37, 1.13, 2.71, 0.061, 5.3, 0.0097)]:
        a = j - sigma * m
        q0 = torch.kron(a, a) - eye
        cond = float(torch.linalg.cond(q0))
        if best is None or cond < best[0]:
            best = (cond, sigma, a, q0)
        if cond < 1e6:
            break
    cond, sigma, a, q0 = best
    if not math.isfinite(cond) or cond > 1.0 / (1e3 * torch.finfo(_F64).eps):
        return None
    q1 = -(torch.kron(a, m) + torch.kron(m, a))
    q2 = torch.kron(m, m)
    p = n * n
    comp = torch.zeros(2 * p, 2 * p, dtype=_F64)
    comp[:p, p:] = torch.eye(p, dtype=_F64)
    comp[p:, :p] = -torch.linalg.solve(q0, q2)
    comp[p:, p:] = -torch.linalg.solve(q0, q1)
    s = torch.linalg.eigvals(comp)
    s = s[s.abs() > 1e-12 * max(1.0, float(s.abs().max()) if s.numel() else 1.0)]
    k = sigma + 1.0 / s
    real = k.imag.abs() <= _IMAG_RTOL * k.real.abs().clamp(min=1.0)
    return k.real[real]


def gain_margin(
    f: Tensor | Callable[[Tensor], Tensor],
    B: Tensor,
    K: Tensor,
    at: Tensor | None = None,
) -> GainMargin:
    r"""The gains :math:`k \ge 0` for which the feedback policy :math:`(B, K)` stabilises ``f``.

    .. math:: x_{t+1} = f(x_t) + B u_t, \quad u_t = -kK(x_t - x^*)
              \quad\Longrightarrow\quad
              \text{stable} \iff \rho(J - kBK) < 1, \quad J = J_f(x^*),

    solved for all :math:`k \ge 0` at once from the eigenvalues: the boundaries are the real
    roots of :math:`\det\big((J - kBK) \otimes (J - kBK) - I\big) = 0`, a quadratic eigenvalue
    problem in :math:`k` (an eigenvalue on the unit circle is :math:`\pm 1` or one of a pair
    :math:`e^{\pm i\omega}`, whose product is 1); between consecutive roots the radius does not
    cross 1, so one evaluation of :math:`\rho` per gap decides that gap.

    Parameters
    ----------
    f : Tensor, shape (n, n), or module or callable
        The baseline: its Jacobian :math:`J` as a square matrix, or a map linearised at ``at``
        (any shape of ``n`` entries, flattened row-major; it must map that shape to itself).
    B : Tensor, shape (n, m) or (n,)
        Control directions (a 1-D ``B`` is one control).
    K : Tensor, shape (m, n) or (n,)
        The policy direction.
    at : Tensor, optional
        The fixed point :math:`x^*` (required for a map; ignored for a matrix).

    Returns
    -------
    GainMargin
        ``intervals`` (open, ``high`` may be ``inf``; ``low = 0`` is included when the baseline
        is stable), the boundaries with their crossing angles and residuals.

    Raises
    ------
    ShapeError
        If the shapes do not fit, or ``n`` exceeds :data:`GAIN_MARGIN_LIMIT`.
    ParameterError
        If ``f`` is a map and ``at`` is missing.
    StabilityError
        If ``f`` holds batch norm, dropout or instance norm in training mode.
    DTypeError
        If a tensor is not float32/float64.

    Notes
    -----
    * Everything is computed in float64 (whatever the input dtype), from one eigenproblem of
      size :math:`2n^2` (cost :math:`O(n^6)`, hence the limit on ``n``), plus one eigenvalue
      computation of :math:`J - kBK` per gap. No grid decides the answer.
    * Precision: a boundary is an eigenvalue of a companion matrix; where an eigenvalue crosses
      the circle transversally it is accurate to about :math:`\varepsilon\,\kappa` (relative;
      :math:`\kappa` the conditioning, typically below :math:`10^{-12}` here), where one only
      touches it (a double root), to about :math:`\sqrt{\varepsilon} \approx 10^{-8}`.
      ``boundary_residuals`` reports :math:`|\rho - 1|` at each boundary.
    * Rank-deficient :math:`BK` (fewer controls than states, or :math:`KB = 0`): its infinite
      roots are dropped. If the feedback does not change the spectrum at all, the stable set
      is :math:`[0, \infty)` or empty. If the determinant vanishes for every :math:`k` (a pair
      :math:`\lambda_i\lambda_j = 1` that the feedback cannot move), some
      :math:`|\lambda| \ge 1` at every gain and the set is empty.
    * A touching point (the radius reaches 1 without crossing) splits an interval in two.
    * The answer is local (the linearisation at :math:`x^*`), and :math:`x^*` is a fixed point
      of the closed loop only if it is one of ``f`` (``fixed_point_residual``).

    Examples
    --------
    >>> import torch
    >>> J = torch.tensor([[1.5, 0.0], [0.0, 0.5]], dtype=torch.float64)
    >>> gm = gain_margin(J, B=torch.tensor([1.0, 0.0]).double(), K=torch.tensor([1.0, 0.0]).double())
    >>> [(round(lo, 6), round(hi, 6)) for lo, hi in gm.intervals], gm.stable_at_zero
    ([(0.5, 2.5)], False)
    >>> [round(a, 4) for a in gm.crossing_angles], gm.contains(1.0), gm.contains(3.0)
    ([0.0, 3.1416], True, False)
    """
    j, residual = _linearise(f, at)
    n = j.shape[0]
    if n > GAIN_MARGIN_LIMIT:
        raise ShapeError(
            f"gain_margin: the state has n = {n} entries, above GAIN_MARGIN_LIMIT = {GAIN_MARGIN_LIMIT} "
            "(the eigenproblem has size 2 n^2)"
        )
    b = _matrix(B, "B", column=True)
    k = _matrix(K, "K", column=False)
    check_floating(b, k, names=("B", "K"))
    if b.shape[0] != n or tuple(k.shape) != (b.shape[1], n):
        raise ShapeError(
            f"gain_margin: B must be (n, m) and K (m, n) with n = {n}, "
            f"got B {tuple(b.shape)}, K {tuple(k.shape)}"
        )
    m = b.detach().to(_F64) @ k.detach().to(_F64)
    rho0 = float(_radii(j, m, torch.zeros(1, dtype=_F64))[0])
    cand = _candidates(j, m)
    if cand is None:
        return _result([], rho0, j, m, residual)
    kscale = (1.0 + float(torch.linalg.matrix_norm(j, ord=2))) / max(
        float(torch.linalg.matrix_norm(m, ord=2)), 1e-300
    )
    points: list[float] = []
    for c in sorted(float(v) for v in cand if float(v) > 1e-12 * kscale):
        if not points or c - points[-1] > 1e-10 * max(1.0, abs(c)):
            points.append(c)
    # one gap [0, c_1), (c_1, c_2), ..., (c_p, inf): the radius does not cross 1 inside a gap
    edges = [0.0] + points
    tests = [(lo + hi) / 2 for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
    tests.append(2.0 * edges[-1] + kscale)
    stable = (_radii(j, m, torch.tensor(tests, dtype=_F64)) < 1.0).tolist()
    # Two stable gaps never merge: a root between them has lambda_i lambda_j = 1, so some
    # |lambda| >= 1 there (a point where the radius touches 1); spurious roots (reciprocal
    # real pairs) lie only where the loop is unstable.
    uppers = edges[1:] + [math.inf]
    intervals = [(lo, hi) for lo, hi, ok in zip(edges, uppers, stable, strict=True) if ok]
    return _result(intervals, rho0, j, m, residual)


def _result(
    intervals: list[tuple[float, float]],
    rho0: float,
    j: Tensor,
    m: Tensor,
    residual: float | None,
) -> GainMargin:
    stable0 = rho0 < 1.0
    ends = sorted({e for iv in intervals for e in iv if math.isfinite(e) and (e > 0 or not stable0)})
    angles, residuals = [], []
    if ends:
        ev = torch.linalg.eigvals(j - torch.tensor(ends, dtype=_F64)[:, None, None] * m)
        idx = (ev.abs() - 1).abs().argmin(-1, keepdim=True)
        on = ev.gather(-1, idx)[:, 0]
        angles = [abs(math.atan2(float(z.imag), float(z.real))) for z in on]
        residuals = (ev.abs().amax(-1) - 1).abs().tolist()
    return GainMargin(
        intervals=intervals,
        boundaries=ends,
        crossing_angles=angles,
        boundary_residuals=residuals,
        stable_at_zero=stable0,
        baseline_radius=rho0,
        jacobian=j,
        direction=m,
        fixed_point_residual=residual,
    )
