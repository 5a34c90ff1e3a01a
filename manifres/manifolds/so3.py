r"""Rotations of :math:`\mathbb{R}^3` as batched functions: hat/vee, Exp/Log, quaternions, angle.

Every function takes any leading batch shape: rotation vectors are ``(..., 3)``, matrices
``(..., 3, 3)``, quaternions ``(..., 4)``. Inputs must be float32 or float64 tensors
(:class:`~manifres.errors.DTypeError` otherwise); a wrong trailing shape raises
:class:`~manifres.errors.ShapeError`. Outputs follow the input's dtype and device.

Conventions
-----------
* ``hat(v) @ u == cross(v, u)``; ``vee`` is its left inverse and takes the skew part.
* Quaternions are **scalar first**, ``q = (w, x, y, z)``, and the ones returned are unit and
  canonical: ``w >= 0``. At exactly :math:`\pi` (``w == 0``) the sign is Shepperd's: the
  component with the largest diagonal pivot :math:`1 + 2R_{kk} - \operatorname{tr}R` is positive.
* ``log`` returns the rotation vector of norm :math:`\le \pi`; at exactly :math:`\pi` it
  follows the quaternion's sign rule above (``log(diag(1, -1, -1)) == (pi, 0, 0)``).
* ``log``, ``to_quaternion`` and ``angle`` accept nearly orthogonal matrices and answer for
  the **nearest rotation** (special orthogonal Procrustes): the pivot quaternion is refined by
  four power iterations on the 4x4 Davenport matrix, which is exact to rounding when
  :math:`\|R^T R - I\|_F \lesssim 10^{-2}` and converges linearly (to the nearest rotation)
  beyond that. With validation on (:func:`manifres.set_validation` or ``validate=True``) a
  matrix off SO(3) raises :class:`~manifres.errors.ManifoldError` instead.

Examples
--------
>>> import torch
>>> from manifres import so3
>>> v = torch.tensor([0.0, 0.0, torch.pi / 2])
>>> R = so3.exp(v)
>>> torch.allclose(R @ torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0]), atol=1e-6)
True
>>> so3.log(R)
tensor([0.0000, 0.0000, 1.5708])
>>> so3.to_quaternion(torch.eye(3))
tensor([1., 0., 0., 0.])
"""

from __future__ import annotations

import torch
from torch import Tensor

from .._config import get_validation
from .._numerics import atan_over_x, rodrigues_coefficients, safe_norm
from .._validation import POINT_ATOL, check_floating, full_precision
from ..errors import ManifoldError, ShapeError

__all__ = ["hat", "vee", "exp", "log", "angle", "to_quaternion", "from_quaternion"]

#: Power iterations that refine the pivot quaternion towards the nearest rotation.
_POWER_STEPS = 4

# ---------------------------------------------------------------------------------- checks
def _check_trailing(t: Tensor, shape: tuple[int, ...], fn: str, name: str) -> None:
    check_floating(t, names=(name,))
    k = len(shape)
    if t.dim() < k or tuple(t.shape[t.dim() - k :]) != shape:
        want = ", ".join(map(str, shape))
        raise ShapeError(f"so3.{fn}: {name} must have shape (..., {want}), got {tuple(t.shape)}")


def _validating(validate: bool | None) -> bool:
    return get_validation() if validate is None else bool(validate)


def _first_bad(bad: Tensor) -> list[int]:
    return [int(i) for i in torch.nonzero(bad)[0]] if bad.dim() else []


def _check_rotation(R: Tensor, fn: str) -> None:
    """Raise :class:`ManifoldError` unless every ``R`` is finite, orthogonal and has det +1."""
    with torch.no_grad():
        finite = torch.isfinite(R).all(-1).all(-1)
        if not bool(finite.all()):
            raise ManifoldError(f"so3.{fn}: R{_first_bad(~finite)} is not finite (NaN or Inf)")
        E = R.mT @ R - torch.eye(3, dtype=R.dtype, device=R.device)
        res = torch.sqrt((E * E).sum((-2, -1)))
        atol = POINT_ATOL[R.dtype]
        bad = res > atol
        if bool(bad.any()):
            idx = _first_bad(bad)
            raise ManifoldError(
                f"so3.{fn}: R{idx} is not a rotation: ||R^T R - I||_F = "
                f"{float(res[tuple(idx)]):.3e} > atol = {atol:.1e}"
            )
        det = torch.linalg.det(R)
        if bool((det <= 0).any()):
            idx = _first_bad(det <= 0)
            raise ManifoldError(
                f"so3.{fn}: R{idx} has det = {float(det[tuple(idx)]):.3f}; a rotation has det +1"
            )


# ---------------------------------------------------------------------------------- private
def _hat(v: Tensor) -> Tensor:
    x, y, z = v.unbind(-1)
    o = torch.zeros_like(x)
    return torch.stack([o, -z, y, z, o, -x, -y, x, o], dim=-1).reshape(v.shape[:-1] + (3, 3))


def _vee(W: Tensor) -> Tensor:
    return 0.5 * torch.stack(
        [W[..., 2, 1] - W[..., 1, 2], W[..., 0, 2] - W[..., 2, 0], W[..., 1, 0] - W[..., 0, 1]],
        dim=-1,
    )


def _exp(v: Tensor) -> Tensor:
    t2 = (v * v).sum(-1)[..., None, None]
    s, h = rodrigues_coefficients(t2)
    eye = torch.eye(3, dtype=v.dtype, device=v.device)
    return (1.0 - h * t2) * eye + s * _hat(v) + h * (v[..., :, None] * v[..., None, :])


def _quaternion(M: Tensor) -> Tensor:
    """Unit quaternion (w >= 0) of the rotation nearest to ``M`` (..., 3, 3).

    Shepperd's largest pivot gives the start; power iterations on
    ``D(M) + s I`` (``D`` the Davenport matrix, whose top eigenvector maximises
    ``tr(R(q)^T M)``, and ``s = ||M||_F / sqrt(3)``, which makes the other eigenvalues
    vanish for a scaled rotation) converge to the nearest rotation. For a rotation
    ``D + I = 4 q q^T`` and the iterations change nothing but rounding.
    """
    m00, m01, m02, m10, m11, m12, m20, m21, m22 = M.flatten(-2).unbind(-1)
    tr = m00 + m11 + m22
    s = torch.sqrt((M * M).sum((-2, -1)) / 3.0)
    qww = tr + s
    qxx = 2.0 * m00 - tr + s
    qyy = 2.0 * m11 - tr + s
    qzz = 2.0 * m22 - tr + s
    qwx = m21 - m12
    qwy = m02 - m20
    qwz = m10 - m01
    qxy = m01 + m10
    qxz = m02 + m20
    qyz = m12 + m21
    Q = torch.stack(
        [qww, qwx, qwy, qwz, qwx, qxx, qxy, qxz, qwy, qxy, qyy, qyz, qwz, qxz, qyz, qzz], dim=-1
    ).reshape(M.shape[:-2] + (4, 4))
    k = torch.stack([qww, qxx, qyy, qzz], dim=-1).argmax(-1)
    q = torch.gather(Q, -2, k[..., None, None].expand(k.shape + (1, 4))).squeeze(-2)
    for _ in range(_POWER_STEPS):
        q = q / torch.sqrt((q * q).sum(-1, keepdim=True))
        q = (Q @ q[..., None]).squeeze(-1)
    q = q / torch.sqrt((q * q).sum(-1, keepdim=True))
    return torch.where(q[..., :1] < 0, -q, q)


def _quaternion_log(q: Tensor) -> Tensor:
    """Rotation vector of a canonical unit quaternion (w >= 0): ``2 atan2(|v|, w) v / |v|``."""
    w = q[..., :1]
    qv = q[..., 1:]
    s2 = (qv * qv).sum(-1, keepdim=True)
    small = s2 <= w * w  # angle <= pi/2: atan(t)/t with t = |v|/w <= 1
    w_safe = torch.where(small, w, torch.ones_like(w))
    f_small = 2.0 * atan_over_x(torch.where(small, s2 / (w_safe * w_safe), torch.zeros_like(s2)))
    f_small = f_small / w_safe
    s_safe = torch.sqrt(torch.where(small, torch.ones_like(s2), s2))  # >= 1/sqrt(2) when used
    f_large = 2.0 * torch.atan2(s_safe, w) / s_safe
    return torch.where(small, f_small, f_large) * qv


def _angle(M: Tensor) -> Tensor:
    q = _quaternion(M)
    return 2.0 * torch.atan2(safe_norm(q[..., 1:]), q[..., 0])


def _log(M: Tensor) -> Tensor:
    return _quaternion_log(_quaternion(M))


# ---------------------------------------------------------------------------------- public
@full_precision
def hat(v: Tensor) -> Tensor:
    r"""Skew-symmetric matrix of a vector, :math:`\hat v\,u = v \times u`.

    .. math::

        \hat v = \begin{pmatrix} 0 & -v_z & v_y \\ v_z & 0 & -v_x \\ -v_y & v_x & 0 \end{pmatrix}

    Parameters
    ----------
    v : Tensor, shape (..., 3)

    Returns
    -------
    Tensor, shape (..., 3, 3)

    Raises
    ------
    ShapeError
        If the last axis of ``v`` is not 3.
    DTypeError
        If ``v`` is not float32/float64.

    Examples
    --------
    >>> import torch
    >>> hat(torch.tensor([1.0, 2.0, 3.0]))
    tensor([[ 0., -3.,  2.],
            [ 3.,  0., -1.],
            [-2.,  1.,  0.]])
    """
    _check_trailing(v, (3,), "hat", "v")
    return _hat(v)


@full_precision
def vee(W: Tensor, validate: bool | None = None) -> Tensor:
    r"""Vector of the skew part of a matrix, the left inverse of :func:`hat`.

    .. math:: \operatorname{vee}(W) = \tfrac12 (W_{21} - W_{12},\; W_{02} - W_{20},\; W_{10} - W_{01})

    ``vee(hat(v)) == v`` exactly (barring overflow).

    Parameters
    ----------
    W : Tensor, shape (..., 3, 3)
    validate : bool or None
        Check that ``W`` is skew-symmetric: :math:`\|W + W^T\|_F \le
        \mathrm{atol}\,(1 + \|W\|_F)` with ``atol`` 2e-5 (float32) or 1e-12 (float64).
        ``None`` follows :func:`manifres.get_validation` (off by default); without the check
        the symmetric part of ``W`` is discarded.

    Returns
    -------
    Tensor, shape (..., 3)

    Raises
    ------
    ShapeError
        If ``W`` is not ``(..., 3, 3)``.
    ManifoldError
        With validation on, if ``W`` is not skew-symmetric (or not finite).

    Examples
    --------
    >>> import torch
    >>> vee(torch.tensor([[0.0, -3.0, 2.0], [3.0, 0.0, -1.0], [-2.0, 1.0, 0.0]]))
    tensor([1., 2., 3.])
    """
    _check_trailing(W, (3, 3), "vee", "W")
    if _validating(validate):
        with torch.no_grad():
            if not bool(torch.isfinite(W).all()):
                raise ManifoldError("so3.vee: W is not finite (NaN or Inf)")
            S = W + W.mT
            res = torch.sqrt((S * S).sum((-2, -1)))
            scale = 1.0 + torch.sqrt((W * W).sum((-2, -1)))
            atol = POINT_ATOL[W.dtype]
            bad = res > atol * scale
            if bool(bad.any()):
                idx = _first_bad(bad)
                raise ManifoldError(
                    f"so3.vee: W{idx} is not skew-symmetric: ||W + W^T||_F = "
                    f"{float(res[tuple(idx)]):.3e} > atol (1 + ||W||_F) with atol = {atol:.1e}"
                )
    return _vee(W)


@full_precision
def exp(rotvec: Tensor) -> Tensor:
    r"""Rotation matrix of a rotation vector (Rodrigues' formula).

    .. math::

        \operatorname{Exp}(v) = \cos\theta\, I + \frac{\sin\theta}{\theta}\,\hat v
        + \frac{1 - \cos\theta}{\theta^2}\, v v^T, \qquad \theta = \|v\|

    with :math:`\cos\theta` formed as :math:`1 - \theta^2\,(1 - \cos\theta)/\theta^2`.

    Parameters
    ----------
    rotvec : Tensor, shape (..., 3)

    Returns
    -------
    Tensor, shape (..., 3, 3)

    Raises
    ------
    ShapeError, DTypeError

    Notes
    -----
    The three coefficients are evaluated from :math:`\theta^2` with guarded Taylor series
    (to :math:`\theta^8`) below :math:`\theta = 0.5` (float32) or ``0.1`` (float64), the
    thresholds of :mod:`manifres._numerics`, and half-angle forms above, so
    ``exp(0)`` is exactly ``I`` and every derivative is finite at 0. Any norm is accepted;
    for large :math:`\theta` the result is orthogonal to rounding but its angle carries the
    rounding of :math:`\theta` itself (about :math:`\theta\,\varepsilon`).

    Examples
    --------
    >>> import torch
    >>> exp(torch.zeros(3))
    tensor([[1., 0., 0.],
            [0., 1., 0.],
            [0., 0., 1.]])
    """
    _check_trailing(rotvec, (3,), "exp", "rotvec")
    return _exp(rotvec)


@full_precision
def log(R: Tensor, validate: bool | None = None) -> Tensor:
    r"""Rotation vector of a rotation matrix, of norm :math:`\le \pi`.

    .. math::

        \operatorname{Log}(R) = 2\operatorname{atan2}(\|q_v\|, q_w)\,\frac{q_v}{\|q_v\|},
        \qquad q = (q_w, q_v) = \texttt{to\_quaternion}(R)

    Parameters
    ----------
    R : Tensor, shape (..., 3, 3)
    validate : bool or None
        Check that ``R`` is a finite rotation (:math:`\|R^TR - I\|_F \le` 2e-5 / 1e-12 and
        :math:`\det R > 0`); ``None`` follows :func:`manifres.get_validation`.

    Returns
    -------
    Tensor, shape (..., 3)

    Raises
    ------
    ShapeError, DTypeError
    ManifoldError
        With validation on, if ``R`` is not a rotation; the message gives the residual.

    Notes
    -----
    * Accurate at both ends: the quaternion comes from Shepperd's largest pivot, so its
      vector part keeps relative accuracy at tiny angles, and the angle is an ``atan2``
      (no clamped ``acos``), accurate to a few :math:`\varepsilon` at :math:`\pi`.
    * :math:`\operatorname{atan2}(s, w)/s` is a series in :math:`(s/w)^2` below the
      per-dtype threshold, so gradients are finite (and correct) at the identity.
    * At exactly :math:`\pi` the sign is deterministic (see the module notes); just below
      :math:`\pi` the gradient is finite. A nearly orthogonal ``R`` is answered for its
      nearest rotation (see the module notes), so ``log(1.001 * R) == log(R)``.

    Examples
    --------
    >>> import torch
    >>> log(torch.diag(torch.tensor([1.0, -1.0, -1.0])))
    tensor([3.1416, 0.0000, 0.0000])
    """
    _check_trailing(R, (3, 3), "log", "R")
    if _validating(validate):
        _check_rotation(R, "log")
    return _log(R)


@full_precision
def angle(R: Tensor, validate: bool | None = None) -> Tensor:
    r"""Rotation angle :math:`\theta \in [0, \pi]` of a rotation matrix.

    .. math:: \theta = 2\operatorname{atan2}(\|q_v\|, q_w) = \|\operatorname{Log}(R)\|

    Exactly 0 at ``R = I`` (zero gradient there), accurate to a few :math:`\varepsilon` at
    :math:`\pi`, relative accuracy at tiny angles; nearly orthogonal inputs are answered for
    the nearest rotation, as in :func:`log`.

    Parameters
    ----------
    R : Tensor, shape (..., 3, 3)
    validate : bool or None
        As in :func:`log`.

    Returns
    -------
    Tensor, shape (...)

    Raises
    ------
    ShapeError, DTypeError, ManifoldError

    Examples
    --------
    >>> import torch
    >>> angle(exp(torch.tensor([0.0, 0.3, 0.4])))
    tensor(0.5000)
    """
    _check_trailing(R, (3, 3), "angle", "R")
    if _validating(validate):
        _check_rotation(R, "angle")
    return _angle(R)


@full_precision
def to_quaternion(R: Tensor, validate: bool | None = None) -> Tensor:
    r"""Unit quaternion ``(w, x, y, z)`` (scalar first, ``w >= 0``) of a rotation matrix.

    .. math:: R = I + 2 w\,\hat q_v + 2\,\hat q_v^2

    Parameters
    ----------
    R : Tensor, shape (..., 3, 3)
    validate : bool or None
        As in :func:`log`.

    Returns
    -------
    Tensor, shape (..., 4)

    Raises
    ------
    ShapeError, DTypeError, ManifoldError

    Notes
    -----
    Shepperd's method (the pivot is the largest of :math:`1 + \operatorname{tr}R` and
    :math:`1 + 2R_{kk} - \operatorname{tr}R`), refined by power iterations so that a nearly
    orthogonal ``R`` gives the quaternion of its nearest rotation. ``w >= 0``; at ``w == 0``
    the pivot component is positive.

    Examples
    --------
    >>> import torch
    >>> to_quaternion(exp(torch.tensor([torch.pi / 2, 0.0, 0.0])))
    tensor([0.7071, 0.7071, 0.0000, 0.0000])
    """
    _check_trailing(R, (3, 3), "to_quaternion", "R")
    if _validating(validate):
        _check_rotation(R, "to_quaternion")
    return _quaternion(R)


@full_precision
def from_quaternion(q: Tensor, validate: bool | None = None) -> Tensor:
    r"""Rotation matrix of a quaternion ``(w, x, y, z)`` (scalar first), normalised internally.

    .. math::

        R(q) = I + \frac{2}{\|q\|^2}\left(w\,\hat q_v + \hat q_v^2\right)

    ``q`` and ``-q`` give the same rotation; any nonzero scale is divided out (no square
    root is taken). ``q = 0`` gives NaN (or, with validation on, a
    :class:`~manifres.errors.ManifoldError`).

    Parameters
    ----------
    q : Tensor, shape (..., 4)
    validate : bool or None
        Check that ``q`` is finite and nonzero; ``None`` follows
        :func:`manifres.get_validation`.

    Returns
    -------
    Tensor, shape (..., 3, 3)

    Raises
    ------
    ShapeError, DTypeError, ManifoldError

    Examples
    --------
    >>> import torch
    >>> from_quaternion(torch.tensor([2.0, 0.0, 0.0, 0.0]))
    tensor([[1., 0., 0.],
            [0., 1., 0.],
            [0., 0., 1.]])
    """
    _check_trailing(q, (4,), "from_quaternion", "q")
    n2 = (q * q).sum(-1)
    if _validating(validate):
        with torch.no_grad():
            bad = ~torch.isfinite(n2) | (n2 == 0)
            if bool(bad.any()):
                raise ManifoldError(f"so3.from_quaternion: q{_first_bad(bad)} is zero or not finite")
    w, x, y, z = q.unbind(-1)
    c = 2.0 / n2
    xx, yy, zz = c * x * x, c * y * y, c * z * z
    xy, xz, yz = c * x * y, c * x * z, c * y * z
    wx, wy, wz = c * w * x, c * w * y, c * w * z
    return torch.stack(
        [
            1.0 - (yy + zz),
            xy - wz,
            xz + wy,
            xy + wz,
            1.0 - (xx + zz),
            yz - wx,
            xz - wy,
            yz + wx,
            1.0 - (xx + yy),
        ],
        dim=-1,
    ).reshape(q.shape[:-1] + (3, 3))
