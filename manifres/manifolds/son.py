r"""The rotation group :math:`SO(n)` with its bi-invariant (Frobenius) metric."""

from __future__ import annotations

import functools
import math

import torch
from torch import Tensor

from .._numerics import eps, rodrigues_coefficients, safe_norm, theta_over_sin
from .._validation import check_floating, check_int
from ..errors import CutLocusError, ManifoldError, ShapeError
from . import so3
from .actions import LeftMultiplication, LeftMultiplication3, LieGroupAction
from .base import Manifold
from .frames import Frame, LeftTranslatedFrame

__all__ = ["SpecialOrthogonal", "so_basis"]

# Newton-Schulz steps that project log's input onto SO(n) (n >= 4); quadratic convergence.
_LOG_PROJECTION_STEPS = 3
# log for n >= 4: rotation planes are split at a gap of the spectrum of (R + R^T)/2 chosen with
# every plane of angle > 2 pi / 3 on the flipped side and every plane of angle < pi / 3 on the
# other; scaled Newton steps for the complex structure, regularised by _TAU.
_BAND = 0.5
_NEWTON_STEPS = 8
_TAU = 64.0 * torch.finfo(torch.float64).eps


# ---------------------------------------------------------------------------------- helpers
def _sym(X: Tensor) -> Tensor:
    return 0.5 * (X + X.mT)


def _skew(X: Tensor) -> Tensor:
    return 0.5 * (X - X.mT)


def _eye(n: int, like: Tensor) -> Tensor:
    return torch.eye(n, dtype=like.dtype, device=like.device)


def _fro2(X: Tensor) -> Tensor:
    """Squared Frobenius norm over the last two axes, keepdim."""
    return (X * X).sum((-2, -1), keepdim=True)


def _orthonormalize(X: Tensor, steps: int = 1) -> Tensor:
    r"""Scale to :math:`\|X\|_F^2 = n`, then Newton-Schulz steps :math:`X \leftarrow X(3I - X^TX)/2`.

    Converges quadratically to the orthogonal polar factor when the singular values of the
    scaled ``X`` lie in :math:`(0, \sqrt 3)`; its derivative at an orthogonal ``X`` is the
    tangent projection. Keeps long chains of products of rotations on the group.
    """
    n = X.shape[-1]
    X = X * torch.rsqrt(_fro2(X) / n)
    for _ in range(steps):
        X = 1.5 * X - 0.5 * (X @ (X.mT @ X))
    return X


def _work_dtype(t: Tensor) -> torch.dtype:
    """float64 for the eigen-decomposition path (float32 where the device has no float64)."""
    return torch.float32 if t.device.type == "mps" else torch.float64


@functools.lru_cache(maxsize=64)
def _so_pairs(n: int) -> tuple[tuple[int, ...], tuple[int, ...], tuple[float, ...]]:
    """Rows, columns and signs of the so(n) coordinates (see :meth:`SpecialOrthogonal.hat`):
    the planes ``i < j`` in descending lexicographic order, entry ``W[j, i] = (-1)^(i+j+1) c``."""
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)][::-1]
    rows = tuple(j for i, j in pairs)
    cols = tuple(i for i, j in pairs)
    signs = tuple(float((-1) ** (i + j + 1)) for i, j in pairs)
    return rows, cols, signs


def so_basis(n: int, dtype: torch.dtype, device: torch.device | str | None = None) -> Tensor:
    r"""The basis :math:`\hat e_k` of :math:`\mathfrak{so}(n)` of :meth:`SpecialOrthogonal.hat`,
    shape ``(n(n-1)/2, n, n)``; its elements are Frobenius-orthogonal with norm :math:`\sqrt 2`."""
    rows, cols, signs = _so_pairs(n)
    m = len(rows)
    B = torch.zeros(m, n, n, dtype=dtype, device=device)
    k = torch.arange(m, device=device)
    sg = torch.tensor(signs, dtype=dtype, device=device)
    r = torch.tensor(rows, device=device)
    c = torch.tensor(cols, device=device)
    B[k, r, c] = sg
    B[k, c, r] = -sg
    return B


def _skew_basis(n: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """Frobenius-orthonormal basis of the skew matrices, shape (n(n-1)/2, n, n)."""
    return so_basis(n, dtype, device) / math.sqrt(2.0)


def _coords(B: Tensor, X: Tensor) -> Tensor:
    """Coordinates of the skew part of ``X`` (..., n, n) in the basis ``B``: (..., m)."""
    return torch.einsum("mij,...ij->...m", B, X)


def _operator(B: Tensor, images: Tensor) -> Tensor:
    """Matrix (..., m, m) of a linear map on skew matrices from the images of the basis."""
    return torch.einsum("aij,...bij->...ab", B, images)


def _solve(A: Tensor, b: Tensor) -> Tensor:
    """Solve ``A x = b`` for vectors ``b`` (..., m) without error checks (no host sync).

    Through ``inv_ex``, not ``solve_ex``: the systems here are small and well conditioned, and
    in torch 2.13 forward-mode AD of ``solve_ex``/``solve``/``lu_solve`` under ``vmap`` gives
    wrong values (``vmap(hessian)``, ``vmap(jacfwd)``), while that of ``inv_ex`` is right."""
    return (torch.linalg.inv_ex(A, check_errors=False)[0] @ b[..., None])[..., 0]


# ---------------------------------------------------------------------------------- log, n >= 4
def _log_near_identity(M: Tensor) -> Tensor:
    r"""Log of a rotation whose angles are all at most about :math:`2\pi/3`:
    :math:`V \operatorname{diag}(\theta_i/\sigma_i) V^T K` from :math:`\operatorname{sym}(M) =
    V\Lambda V^T`, :math:`K = \operatorname{skew}(M)`, :math:`\sigma_i = \|Kv_i\|`,
    :math:`\theta_i = \operatorname{atan2}(\sigma_i, \lambda_i)`. A smooth function of
    :math:`\Lambda` with bounded derivative there, so independent of the (arbitrary) basis of
    repeated eigenvalues and insensitive to nearly repeated ones."""
    lam, V = torch.linalg.eigh(_sym(M))
    K = _skew(M)
    KV = K @ V
    sig = torch.sqrt((KV * KV).sum(-2))
    theta = torch.atan2(sig, lam)
    g = theta_over_sin(theta * theta) / torch.sqrt(sig * sig + lam * lam)
    return _skew((V * g[..., None, :]) @ (V.mT @ K))


def _split(mu: Tensor, n: int) -> Tensor:
    """Number k of eigenvalue pairs (ascending means ``mu``) to flip: the widest gap among the
    splits that flip every pair with mean < -_BAND and no pair with mean > _BAND."""
    ones = torch.ones_like(mu[..., :1], dtype=torch.bool)
    inf = torch.full_like(mu[..., :1], math.inf)
    top = inf if n % 2 == 0 else 1.0 - mu[..., -1:]  # odd n: the fixed axis is never flipped
    score = torch.cat([inf, torch.diff(mu, dim=-1), top], -1)
    valid = torch.cat([ones, mu <= _BAND], -1) & torch.cat([mu >= -_BAND, ones], -1)
    return torch.where(valid, score, -inf).argmax(-1)


def _polar_newton(X: Tensor, steps: int) -> Tensor:
    """Orthogonal polar factor by Newton's iteration with Frobenius scaling."""
    for _ in range(steps):
        Xi = torch.linalg.inv_ex(X)[0]
        mu = torch.sqrt(torch.sqrt(_fro2(Xi) / _fro2(X)))
        X = 0.5 * (mu * X + Xi.mT / mu)
    return X


def _log_forward(R: Tensor, cut_tol: float) -> tuple[Tensor, Tensor]:
    r"""Principal logarithm of a (nearly) orthogonal ``R`` (..., n, n), ``n >= 4``, and the number
    of rotation planes within ``cut_tol`` of :math:`\pi`. Forward only.

    In the eigenbasis :math:`V` of :math:`\operatorname{sym}(R)` (angles in pairs), the planes
    with large angles (a block separated by a wide spectral gap, see :func:`_split`) are
    multiplied by :math:`-1`, turning angles :math:`\varphi` into :math:`\pi - \varphi`, so that
    :func:`_log_near_identity` is well conditioned everywhere. Back on the flipped block,
    :math:`\operatorname{Log} = B - \pi J` with :math:`J` the complex structure of :math:`B`
    (its orthogonal polar factor, by scaled Newton steps, exact to rounding so
    :math:`e^{-\pi J} = -I`), regularised by :math:`\tau J_V` (consecutive eigenvector pairs)
    where :math:`B` vanishes: planes at exactly :math:`\pi`, whose log is not unique.
    """
    n = R.shape[-1]
    p = n // 2
    finite = torch.isfinite(R).all(-1).all(-1)[..., None, None]
    R = torch.where(finite, R, torch.eye(n, dtype=R.dtype, device=R.device))
    lam, V = torch.linalg.eigh(_sym(R))  # ascending: pairs (0, 1), (2, 3), ...; fixed axis last
    Rv = V.mT @ R @ V
    KV = _skew(R) @ V
    theta = torch.atan2(torch.sqrt((KV * KV).sum(-2)), lam)
    delta = math.pi - 0.5 * (theta[..., 0 : 2 * p : 2] + theta[..., 1 : 2 * p : 2])
    mu = 0.5 * (lam[..., 0 : 2 * p : 2] + lam[..., 1 : 2 * p : 2])
    flip = torch.arange(n, device=R.device) < 2 * _split(mu, n)[..., None]
    sign = torch.where(flip, -1.0, 1.0).to(R.dtype)
    B = _log_near_identity(sign[..., :, None] * Rv)
    block = (flip[..., :, None] & flip[..., None, :]).to(R.dtype)
    a = torch.arange(0, 2 * p, 2, device=R.device)
    Jv = torch.zeros(n, n, dtype=R.dtype, device=R.device)
    Jv[a + 1, a] = 1.0
    Jv[a, a + 1] = -1.0
    X = (B + _TAU * Jv) * block + torch.diag_embed((~flip).to(R.dtype))
    J = _polar_newton(X, _NEWTON_STEPS) * block
    A = _skew(V @ (B - math.pi * J) @ V.mT)
    ok = finite & (torch.linalg.det(R) > 0)[..., None, None]
    A = torch.where(ok, A, torch.full_like(A, math.nan))
    return A, (delta <= cut_tol).sum(-1)


def _dexp_blocks(A: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    r"""The orthonormal skew basis ``B`` (m, n, n), :math:`O = e^{\mathrm{ad}_A/2}` and
    :math:`\Sigma = \sinh(\mathrm{ad}_A/2)/(\mathrm{ad}_A/2)` (+ a ridge), both (..., m, m), in
    the working dtype, from one matrix exponential of ``[[ad/2, I], [0, -ad/2]]``."""
    n = A.shape[-1]
    wd = _work_dtype(A)
    Aw = A.to(wd)
    B = _skew_basis(n, wd, A.device)
    m = B.shape[0]
    ad = _operator(B, Aw[..., None, :, :] @ B - B @ Aw[..., None, :, :])
    half = 0.5 * ad
    eye = torch.eye(m, dtype=wd, device=A.device).expand(half.shape)
    top = torch.cat([half, eye], -1)
    bottom = torch.cat([torch.zeros_like(half), -half], -1)
    E = torch.linalg.matrix_exp(torch.cat([top, bottom], -2))
    O = E[..., :m, :m]
    Sig = _sym(E[..., :m, m:]) + 64.0 * eps(wd) * eye
    return B, O, Sig


def _log_backward(R: Tensor, A: Tensor, G: Tensor) -> Tensor:
    r"""Gradient w.r.t. R of <G, Log(R)> along the tangent space (normal part zero).

    With :math:`T = (e^{\mathrm{ad}_A} - 1)/\mathrm{ad}_A = e^{\mathrm{ad}_A/2}\,\Sigma`,
    :math:`\Sigma = \sinh(\mathrm{ad}_A/2)/(\mathrm{ad}_A/2)` symmetric with eigenvalues in
    [0, 1] for a principal log, the gradient is :math:`R\,W`, :math:`\Sigma W =
    e^{-\mathrm{ad}_A/2}\operatorname{skew}(G)`. Both blocks come from one matrix exponential
    of ``[[ad/2, I], [0, -ad/2]]``; a tiny ridge keeps the solve finite at :math:`\pi`.
    Built from differentiable torch operations, so it can itself be differentiated.
    """
    B, O, Sig = _dexp_blocks(A)
    w = _solve(Sig, (O.mT @ _coords(B, G.to(B.dtype))[..., None])[..., 0])
    W = torch.einsum("...m,mij->...ij", w, B)
    return R @ W.to(R.dtype)


def _log_jvp(R: Tensor, A: Tensor, dR: Tensor) -> Tensor:
    r"""Forward derivative of Log at R along dR (tangent part):
    :math:`dA = e^{\mathrm{ad}_A/2}\,\Sigma^{-1}\operatorname{skew}(R^T dR)`, the transpose of
    :func:`_log_backward`."""
    B, O, Sig = _dexp_blocks(A)
    a = (O @ _solve(Sig, _coords(B, (R.mT @ dR).to(B.dtype)))[..., None])[..., 0]
    return torch.einsum("...m,mij->...ij", a, B).to(R.dtype)


class _LogSO(torch.autograd.Function):
    """Principal log on SO(n), n >= 4: eigen-decomposition forward, dexp^{-1} backward and jvp.

    New-style (``setup_context``) so that it composes with :mod:`torch.func` (vmap rule
    generated); the backward is differentiable (double backward, ``hessian``)."""

    generate_vmap_rule = True

    @staticmethod
    def forward(R: Tensor) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        A, count = _log_forward(R.to(_work_dtype(R)), 64.0 * eps(R.dtype))
        return A.to(R.dtype), count

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:  # type: ignore[override]
        (R,) = inputs
        A, count = output
        ctx.save_for_backward(R, A)
        ctx.save_for_forward(R, A)
        ctx.mark_non_differentiable(count)

    @staticmethod
    def backward(ctx, gA: Tensor, _gcount: Tensor | None) -> Tensor:  # type: ignore[override]
        R, A = ctx.saved_tensors
        return _log_backward(R, A, gA)

    @staticmethod
    def jvp(ctx, dR: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        R, A = ctx.saved_tensors
        return _log_jvp(R, A, dR), None


# ---------------------------------------------------------------------------------- polar
def _polar_sylvester(Y: Tensor, R: Tensor, S: Tensor) -> Tensor:
    r"""Skew :math:`X` with :math:`HX + XH = \operatorname{skew}(S)`, :math:`H =
    \operatorname{sym}(R^TY)`, solved in an orthonormal basis of skew matrices."""
    H = _sym(R.mT @ Y)
    B = _skew_basis(Y.shape[-1], Y.dtype, Y.device)
    Hb = H[..., None, :, :]
    L = _operator(B, Hb @ B + B @ Hb)
    x = _solve(L, _coords(B, S))
    return torch.einsum("...m,mij->...ij", x, B)


class _SpecialPolar(torch.autograd.Function):
    r"""Nearest rotation :math:`U \operatorname{diag}(1, \dots, 1, \det UV^T) V^T` (SVD forward).

    Derivatives without singular vectors: with :math:`Y = R H` (H symmetric),
    :math:`\partial R = R\,\Omega` where :math:`H\Omega + \Omega H = R^T\partial Y -
    \partial Y^T R` (the jvp); the gradient is :math:`2 R\,X` with :math:`HX + XH =
    \operatorname{skew}(R^T G)`, solved in a basis of skew matrices. Finite whenever the
    nearest rotation is unique. New-style (``setup_context``, generated vmap rule, ``jvp``),
    with a differentiable backward.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(Y: Tensor) -> Tensor:  # type: ignore[override]
        finite = torch.isfinite(Y).all(-1).all(-1)[..., None, None]
        eye = torch.eye(Y.shape[-1], dtype=Y.dtype, device=Y.device)
        U, _, Vh = torch.linalg.svd(torch.where(finite, Y, eye))
        d = torch.linalg.det(U @ Vh)
        last = torch.where(d < 0, -1.0, 1.0).to(Y.dtype)[..., None]
        flip = torch.cat([torch.ones_like(U[..., 0, 1:]), last], -1)
        R = (U * flip[..., None, :]) @ Vh
        return torch.where(finite, R, torch.full_like(R, math.nan))

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:  # type: ignore[override]
        (Y,) = inputs
        ctx.save_for_backward(Y, output)
        ctx.save_for_forward(Y, output)

    @staticmethod
    def backward(ctx, gR: Tensor) -> Tensor:  # type: ignore[override]
        Y, R = ctx.saved_tensors
        return 2.0 * R @ _polar_sylvester(Y, R, R.mT @ gR)

    @staticmethod
    def jvp(ctx, dY: Tensor) -> Tensor:  # type: ignore[override]
        Y, R = ctx.saved_tensors
        return 2.0 * R @ _polar_sylvester(Y, R, R.mT @ dY)


# ---------------------------------------------------------------------------------- manifold
class SpecialOrthogonal(Manifold):
    r"""The rotation group :math:`SO(n) = \{R \in \mathbb{R}^{n\times n} : R^TR = I,\ \det R = 1\}`.

    Points have shape ``(..., n, n)``; tangent vectors are ambient, :math:`V = R\,\Omega` with
    :math:`\Omega` skew-symmetric. The metric is the Frobenius inner product of the embedding,
    :math:`\langle U, V\rangle_R = \operatorname{tr}(U^TV)`, which is bi-invariant, so that

    .. math::

        d(R_1, R_2) = \|\operatorname{Log}(R_1^TR_2)\|_F = \sqrt{2}\,
        \Big(\sum_k \theta_k^2\Big)^{1/2}

    with :math:`\theta_k` the angles of the rotation planes of :math:`R_1^TR_2` (on SO(3):
    :math:`\sqrt 2` times the rotation angle). geomstats' bi-invariant metric is half of this
    one (its distances are ours divided by :math:`\sqrt 2`).

    Parameters
    ----------
    n : int
        Size of the matrices, ``n >= 2``.
    validate : bool or None
        Value checks, see :class:`~manifres.manifolds.base.Manifold`.

    Notes
    -----
    * Closed forms for ``n = 2`` (angles by ``atan2``) and ``n = 3`` (:mod:`manifres.so3`:
      Rodrigues, and a Shepperd quaternion with an ``atan2`` angle for the log, accurate at 0
      and at :math:`\pi` in float32). For ``n >= 4``: :func:`torch.linalg.matrix_exp`, and a
      logarithm from the eigen-decomposition of :math:`(R + R^T)/2` in float64 (see
      :meth:`log`) with a custom backward through the inverse derivative of the exponential
      (never through eigenvectors, whose gradient is NaN on the degenerate spectra of
      rotations).
    * ``exp`` and every retraction project ``v`` onto the tangent space first (the skew part
      of :math:`R^Tv`) and finish with one Newton-Schulz step, so that points stay on the
      group over long chains (``||R^T R - I||`` stays at rounding level instead of growing);
      ``exp(x, 0)`` therefore equals ``x`` to rounding, not bitwise.
    * ``log`` and ``dist`` form :math:`R_1^TR_2 = I + R_1^T(R_2 - R_1)`, so coincident points
      give exactly 0 (with a zero gradient for ``dist``).
    * At the cut locus (a plane at angle :math:`\pi`) the log is not unique: ``n = 2, 3`` use
      the sign conventions of :meth:`log`; for ``n >= 4`` one plane at :math:`\pi` gets a
      deterministic orientation, and two or more planes at :math:`\pi` raise
      :class:`~manifres.errors.CutLocusError` with validation on (otherwise one valid
      logarithm is returned, so ``exp(log)`` still round-trips).
    * On CUDA, ``n >= 4`` ``log``/``dist``/``transport`` (eigh) and ``proj_point`` and the
      ``n >= 4`` polar retraction (SVD) synchronise with the host inside those LAPACK calls.

    Examples
    --------
    >>> import torch, manifres
    >>> G = manifres.SpecialOrthogonal(3)
    >>> x = torch.eye(3)
    >>> v = torch.tensor([[0.0, -0.5, 0.0], [0.5, 0.0, 0.0], [0.0, 0.0, 0.0]])
    >>> y = G.exp(x, v)
    >>> G.angle(x, y), G.dist(x, y)
    (tensor(0.5000), tensor(0.7071))
    >>> torch.allclose(G.log(x, y), v, atol=1e-6)
    True
    """

    retractions = ("exp", "cayley", "qr", "polar")

    def __init__(self, n: int, validate: bool | None = None) -> None:
        n = check_int(n, "n", "SpecialOrthogonal", minimum=2)
        super().__init__(validate)
        self.n = n

    def _params(self) -> tuple:
        return (self.n,)

    @property
    def point_shape(self) -> tuple[int, ...]:
        return (self.n, self.n)

    @property
    def dim(self) -> int:
        return self.n * (self.n - 1) // 2

    # ------------------------------------------------------------------ residuals
    _residual_name = "||R^T R - I||_F (+2 if det R <= 0)"
    _tangent_residual_name = "||sym(R^T V)||_F"

    def _det(self, x: Tensor) -> Tensor:
        if self.n == 2:
            return x[..., 0, 0] * x[..., 1, 1] - x[..., 0, 1] * x[..., 1, 0]
        if self.n == 3:
            return (x[..., 0, :] * torch.linalg.cross(x[..., 1, :], x[..., 2, :])).sum(-1)
        return torch.linalg.det(x)

    def _point_residual(self, x: Tensor) -> Tensor:
        E = x.mT @ x - _eye(self.n, x)
        res = torch.sqrt((E * E).sum((-2, -1)))
        return res + 2.0 * (self._det(x) <= 0).to(x.dtype)

    def _tangent_residual(self, x: Tensor, v: Tensor) -> Tensor:
        P = _sym(x.mT @ v)
        return torch.sqrt((P * P).sum((-2, -1)))

    # ------------------------------------------------------------------ Lie algebra
    def hat(self, c: Tensor) -> Tensor:
        r"""Skew matrix of so(n) coordinates: :math:`\hat c = \sum_k c_k \hat e_k`.

        The coordinates index the rotation planes ``i < j`` in descending lexicographic order,
        with entry :math:`\hat c_{ji} = (-1)^{i+j+1} c_k = -\hat c_{ij}`. For ``n = 3`` this is
        :func:`manifres.so3.hat` (:math:`\hat v u = v \times u`); for ``n = 2``,
        :math:`\hat c = \begin{pmatrix} 0 & -c \\ c & 0 \end{pmatrix}`. One convention for the
        whole package: the tangent frames (:meth:`tangent_frame`, :math:`R\hat e_k/\sqrt 2`),
        :class:`~manifres.nn.LieAlgebraField` and the Lie-group integrators use it.
        :math:`\|\hat c\|_F = \sqrt 2\,\|c\|`.

        Parameters
        ----------
        c : Tensor, shape (..., n(n-1)/2)

        Returns
        -------
        Tensor, shape (..., n, n)

        Examples
        --------
        >>> import torch, manifres
        >>> manifres.SpecialOrthogonal(2).hat(torch.tensor([0.5]))
        tensor([[ 0.0000, -0.5000],
                [ 0.5000,  0.0000]])
        """
        m = self.dim
        if not isinstance(c, Tensor) or c.dim() < 1 or c.shape[-1] != m:
            got = tuple(c.shape) if isinstance(c, Tensor) else type(c).__name__
            raise ShapeError(f"{self!r}.hat: c must have shape (..., {m}), got {got}")
        check_floating(c, names=("c",))
        if self.n == 3:
            return so3._hat(c)
        B = so_basis(self.n, c.dtype, c.device).reshape(m, -1)
        return (c @ B).reshape(c.shape[:-1] + (self.n, self.n))

    def vee(self, W: Tensor) -> Tensor:
        r"""so(n) coordinates of the skew part of ``W``, the left inverse of :meth:`hat`.

        .. math:: \operatorname{vee}(W)_k = \tfrac12 \langle W, \hat e_k\rangle_F

        Parameters
        ----------
        W : Tensor, shape (..., n, n)

        Returns
        -------
        Tensor, shape (..., n(n-1)/2)
        """
        self._check(W, names=("W",))
        if self.n == 3:
            return so3._vee(W)
        B = so_basis(self.n, W.dtype, W.device).reshape(self.dim, -1)
        return 0.5 * (W.flatten(-2) @ B.mT)

    def tangent_frame(self, x: Tensor) -> Frame:
        r"""The left-translated frame :math:`R\,\hat e_k / \sqrt 2` (orthonormal)."""
        return LeftTranslatedFrame(x, _skew_basis(self.n, x.dtype, x.device))

    def lie_action(self) -> LieGroupAction:
        """SO(n) acting on itself by left multiplication (rotation vectors for ``n = 3``)."""
        return LeftMultiplication3() if self.n == 3 else LeftMultiplication()

    def _expm(self, W: Tensor) -> Tensor:
        """Matrix exponential of a skew W (..., n, n)."""
        if self.n <= 3:  # Rodrigues: W^3 = -theta^2 W with theta^2 = |W|_F^2 / 2
            s, h = rodrigues_coefficients(0.5 * _fro2(W))
            return _eye(self.n, W) + s * W + h * (W @ W)
        return torch.linalg.matrix_exp(W)

    def _logm(self, M: Tensor) -> tuple[Tensor, Tensor | None]:
        """Principal log (skew) of the rotation nearest to M, and for n >= 4 the number of
        planes at pi (None otherwise)."""
        if self.n == 2:
            t = self._angle2(M)
            z = torch.zeros_like(t)
            return torch.stack([z, -t, t, z], -1).reshape(M.shape), None
        if self.n == 3:
            return so3._hat(so3._log(M)), None
        return _LogSO.apply(_orthonormalize(M, _LOG_PROJECTION_STEPS))

    @staticmethod
    def _angle2(M: Tensor) -> Tensor:
        """Signed angle in (-pi, pi] of the rotation nearest to a 2x2 M (exactly pi at -I)."""
        return torch.atan2(M[..., 1, 0] - M[..., 0, 1] + 0.0, M[..., 0, 0] + M[..., 1, 1])

    def _relative(self, x: Tensor, y: Tensor) -> Tensor:
        """x^T y as I + x^T (y - x): exactly I when y == x."""
        return _eye(self.n, x) + x.mT @ (y - x)

    def _check_cut(self, count: Tensor | None, what: str) -> None:
        if count is not None and self.validate and bool((count >= 2).any()):
            idx = [int(i) for i in torch.nonzero(count >= 2)[0]] if count.dim() else []
            raise CutLocusError(
                f"{self!r}: {what} at a rotation with two or more planes at angle pi (first at "
                f"batch index {idx}); its logarithm is not unique."
            )

    # ------------------------------------------------------------------ projections
    def proj(self, x: Tensor, u: Tensor) -> Tensor:
        r"""Tangent projection :math:`P_R(U) = R\,\operatorname{skew}(R^TU)`.

        Parameters
        ----------
        x : Tensor, shape (..., n, n)
        u : Tensor, shape (..., n, n)

        Returns
        -------
        Tensor, shape (..., n, n)
        """
        self._check(x, u, names=("x", "u"))
        self._validate_points(x=x)
        return x @ _skew(x.mT @ u)

    def proj_point(self, y: Tensor) -> Tensor:
        r"""Nearest rotation in Frobenius norm (special orthogonal Procrustes).

        .. math:: \pi(Y) = U \operatorname{diag}(1, \dots, 1, \det UV^T)\, V^T, \qquad Y = U\Sigma V^T

        ``n = 2`` uses the closed form (the angle :math:`\operatorname{atan2}(Y_{10} - Y_{01},
        Y_{00} + Y_{11})`); ``n >= 3`` an SVD with a custom backward that solves a Sylvester
        equation instead of differentiating singular vectors, so gradients are finite even
        on the degenerate spectra of (nearly) orthogonal inputs. The result is unique (and the
        gradient finite) unless ``Y`` is rank deficient by two or more or, when
        :math:`\det Y < 0`, its two smallest singular values are equal.

        Raises
        ------
        ManifoldError
            With validation on, if some ``y`` is not finite.
        """
        self._check(y, names=("y",))
        if self.validate and not bool(torch.isfinite(y).all()):
            raise ManifoldError(f"{self!r}: proj_point got a non-finite y")
        if self.n == 2:
            t = self._angle2(y)
            c, s = torch.cos(t), torch.sin(t)
            return torch.stack([c, -s, s, c], -1).reshape(y.shape)
        return _SpecialPolar.apply(y)

    # ------------------------------------------------------------------ maps
    def exp(self, x: Tensor, v: Tensor) -> Tensor:
        r"""Exponential map :math:`\exp_R(V) = R\,\operatorname{expm}(R^TV)`.

        ``V`` is projected first (:math:`\Omega = \operatorname{skew}(R^TV)`); the group
        exponential is Rodrigues' formula :math:`I + \frac{\sin\theta}{\theta}\Omega +
        \frac{1 - \cos\theta}{\theta^2}\Omega^2`, :math:`\theta^2 = \|\Omega\|_F^2/2`, for
        ``n <= 3`` (the coefficients of :func:`manifres.so3.exp`) and
        :func:`torch.linalg.matrix_exp` otherwise; one Newton-Schulz step follows.

        Parameters
        ----------
        x : Tensor, shape (..., n, n)
        v : Tensor, shape (..., n, n)

        Returns
        -------
        Tensor, shape (..., n, n)
        """
        self._check(x, v, names=("x", "v"))
        if self.validate:
            self.check_point(x)
            self.check_tangent(x, v)
        return _orthonormalize(x @ self._expm(_skew(x.mT @ v)))

    def log(self, x: Tensor, y: Tensor) -> Tensor:
        r"""Logarithm :math:`\log_R(Y) = R\,\operatorname{Log}(R^TY)`, the principal one.

        Exactly 0 at ``y = x``. ``R^T Y`` is first replaced by the nearest rotation (closed
        forms for ``n <= 3``, three Newton-Schulz steps for ``n >= 4``).

        * ``n = 2``: :math:`\operatorname{Log} = \theta J` with
          :math:`\theta = \operatorname{atan2}(M_{10} - M_{01}, M_{00} + M_{11}) \in (-\pi, \pi]`
          (``+pi`` at exactly :math:`\pi`).
        * ``n = 3``: :func:`manifres.so3.log` (at exactly :math:`\pi` the rotation vector's
          component with the largest pivot is positive).
        * ``n >= 4`` (float64 internally): with :math:`\operatorname{sym}(M) = V\Lambda V^T`
          (eigenvalues :math:`\cos\theta_k` in pairs), the planes of angle above
          :math:`2\pi/3` (and any nearly equal neighbours: the split is made at the widest
          spectral gap in :math:`[-1/2, 1/2]`) are flipped by :math:`-1`, so that every angle is
          at most :math:`2\pi/3`, where :math:`\operatorname{Log} = V\operatorname{diag}
          (\theta_i/\|Kv_i\|)V^TK` (:math:`K = \operatorname{skew}(M)`, :math:`\theta_i =
          \operatorname{atan2}(\|Kv_i\|, \lambda_i)`) is well conditioned and independent of
          the basis of repeated eigenvalues; the flipped block then gets :math:`-\pi J`, with
          :math:`J` its exact complex structure (Newton's polar iteration). Accurate to rounding
          at and near :math:`\pi`, for repeated angles too (round trip :math:`\lesssim 10^{-13}`
          in float64). Planes at exactly :math:`\pi` take the orientation of consecutive
          eigenvector pairs: a valid logarithm, deterministic for a given input. A matrix with
          negative determinant (or a non-finite one) gives NaN.

        Parameters
        ----------
        x, y : Tensor, shape (..., n, n)

        Returns
        -------
        Tensor, shape (..., n, n)

        Raises
        ------
        CutLocusError
            With validation on, for ``n >= 4``, if two or more planes of :math:`R^TY` are at
            angle :math:`\pi` (within :math:`64\varepsilon` of the input dtype), where the
            logarithm is not unique.
        """
        self._check(x, y, names=("x", "y"))
        self._validate_points(x=x, y=y)
        A, count = self._logm(self._relative(x, y))
        self._check_cut(count, "log")
        return x @ A

    def dist(self, x: Tensor, y: Tensor) -> Tensor:
        r"""Geodesic distance :math:`\|\operatorname{Log}(R_1^TR_2)\|_F`.

        ``n = 2``: :math:`\sqrt2\,|\theta|`; ``n = 3``: :math:`\sqrt2\,
        \operatorname{atan2}(\|\operatorname{vee}(\operatorname{skew} M)\|,
        (\operatorname{tr}M - 1)/2)` with :math:`M = x^Ty`: exact 0 at coincident points with a
        zero gradient, relative accuracy at tiny angles, a few :math:`\varepsilon` at
        :math:`\pi`; unlike :func:`manifres.so3.angle` it does not project ``M`` (points are
        assumed on the group; validation checks that). ``n >= 4``: the Frobenius norm of the
        logarithm.

        Parameters
        ----------
        x, y : Tensor, shape (..., n, n)

        Returns
        -------
        Tensor, shape (...)
        """
        self._check(x, y, names=("x", "y"))
        self._validate_points(x=x, y=y)
        return math.sqrt(2.0) * self._angle(x, y)

    def angle(self, x: Tensor, y: Tensor) -> Tensor:
        r"""Rotation angle between ``x`` and ``y``: :math:`d(x, y)/\sqrt 2`.

        For ``n = 2, 3`` this is the angle :math:`\theta \in [0, \pi]` of :math:`x^Ty`; for
        ``n >= 4`` it is the root sum of squares :math:`(\sum_k \theta_k^2)^{1/2}` of the
        angles of its rotation planes.

        Parameters
        ----------
        x, y : Tensor, shape (..., n, n)

        Returns
        -------
        Tensor, shape (...)
        """
        self._check(x, y, names=("x", "y"))
        self._validate_points(x=x, y=y)
        return self._angle(x, y)

    def _angle(self, x: Tensor, y: Tensor) -> Tensor:
        M = self._relative(x, y)
        if self.n == 2:
            return self._angle2(M).abs()
        if self.n == 3:  # atan2(|axis sin|, cos), no projection: points are on the group
            w = torch.stack(
                [M[..., 2, 1] - M[..., 1, 2], M[..., 0, 2] - M[..., 2, 0], M[..., 1, 0] - M[..., 0, 1]],
                dim=-1,
            )
            tr = M[..., 0, 0] + M[..., 1, 1] + M[..., 2, 2]
            return torch.atan2(0.5 * safe_norm(w), 0.5 * (tr - 1.0))
        A, _ = self._logm(M)
        return safe_norm(A, dim=(-2, -1)) / math.sqrt(2.0)

    def transport(self, x: Tensor, y: Tensor, v: Tensor) -> Tensor:
        r"""Parallel transport along the geodesic :math:`R_1 e^{tA}`,
        :math:`A = \operatorname{Log}(R_1^TR_2)`:

        .. math:: \Gamma(R_1 W) = R_2\, e^{-A/2}\, W\, e^{A/2}

        (the transport equation :math:`\dot W = -\tfrac12[A, W]` of the bi-invariant metric in
        the left trivialisation; equal to geomstats' pole-ladder form
        :math:`-m V^T m` with :math:`m = R_1e^{A/2}`). An isometry onto the tangent space at
        ``y``; it maps :math:`\log_x y` to :math:`-\log_y x`. ``v`` is projected first.

        Parameters
        ----------
        x, y, v : Tensor, shape (..., n, n)

        Returns
        -------
        Tensor, shape (..., n, n)

        Raises
        ------
        CutLocusError
            As :meth:`log`.
        """
        self._check(x, y, v, names=("x", "y", "v"))
        if self.validate:
            self._validate_points(x=x, y=y)
            self.check_tangent(x, v)
        A, count = self._logm(self._relative(x, y))
        self._check_cut(count, "transport")
        E = self._expm(0.5 * A)
        return y @ (E.mT @ _skew(x.mT @ v) @ E)

    # ------------------------------------------------------------------ retractions
    def _retraction_input(self, x: Tensor, v: Tensor) -> Tensor:
        self._check(x, v, names=("x", "v"))
        if self.validate:
            self.check_point(x)
            self.check_tangent(x, v)
        return _skew(x.mT @ v)

    def retract_cayley(self, x: Tensor, v: Tensor) -> Tensor:
        r"""Cayley retraction :math:`R\,(I - \Omega/2)^{-1}(I + \Omega/2)`, :math:`\Omega =
        \operatorname{skew}(R^TV)`.

        :math:`I - \Omega/2` is invertible for every skew :math:`\Omega`, so any step is finite
        and orthogonal. For ``n <= 3``: :math:`I + (\Omega + \Omega^2/2)/(1 + \theta^2/4)`,
        :math:`\theta^2 = \|\Omega\|_F^2/2` (a rotation by :math:`2\arctan(\theta/2)`); else a
        linear solve. Agrees with :meth:`exp` to second order. One Newton-Schulz step follows.
        """
        W = self._retraction_input(x, v)
        eye = _eye(self.n, W)
        if self.n <= 3:
            t2 = 0.5 * _fro2(W)
            C = eye + (W + 0.5 * (W @ W)) / (1.0 + 0.25 * t2)
        else:
            C = torch.linalg.inv_ex(eye - 0.5 * W, check_errors=False)[0] @ (eye + 0.5 * W)
        return _orthonormalize(x @ C)

    def retract_qr(self, x: Tensor, v: Tensor) -> Tensor:
        r"""QR retraction :math:`\operatorname{qf}(R + V) = R\,\operatorname{qf}(I + \Omega)`.

        The Q factor is sign-corrected so that the triangular factor has a positive diagonal,
        which makes it unique and continuous in the step; :math:`\det(I + \Omega) > 0` then
        gives :math:`\det = +1`. First-order agreement with :meth:`exp`. One Newton-Schulz step
        follows.
        """
        W = self._retraction_input(x, v)
        Q, T = torch.linalg.qr(_eye(self.n, W) + W)
        d = torch.diagonal(T, dim1=-2, dim2=-1)
        Q = Q * torch.where(d < 0, -1.0, 1.0).to(Q.dtype)[..., None, :]
        return _orthonormalize(x @ Q)

    def retract_polar(self, x: Tensor, v: Tensor) -> Tensor:
        r"""Polar retraction :math:`(R + V)((R + V)^T(R + V))^{-1/2} = R(I + \Omega)(I -
        \Omega^2)^{-1/2}`.

        For ``n <= 3`` the closed form :math:`I + \Omega/s + \Omega^2/(s(s + 1))`,
        :math:`s = \sqrt{1 + \theta^2}` (a rotation by :math:`\arctan\theta`); for ``n >= 4``
        the SVD path of :meth:`proj_point`. Second-order agreement with :meth:`exp`. One
        Newton-Schulz step follows.
        """
        W = self._retraction_input(x, v)
        eye = _eye(self.n, W)
        if self.n <= 3:
            s = torch.sqrt(1.0 + 0.5 * _fro2(W))
            P = eye + W / s + (W @ W) / (s * (s + 1.0))
        else:
            P = _SpecialPolar.apply(eye + W)
        return _orthonormalize(x @ P)

    # ------------------------------------------------------------------ sampling
    def random(
        self,
        *batch: int,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Haar-distributed rotations, shape ``(*batch, n, n)``.

        QR of a standard Gaussian matrix with the signs of ``diag(R)`` moved into ``Q``
        (Haar on O(n), Mezzadri 2007), then the first column negated where ``det Q = -1``
        (Haar on SO(n)).
        """
        dtype = dtype or torch.get_default_dtype()
        Z = torch.randn(*batch, self.n, self.n, dtype=dtype, device=device, generator=generator)
        Q, T = torch.linalg.qr(Z)
        d = torch.diagonal(T, dim1=-2, dim2=-1)
        Q = Q * torch.where(d < 0, -1.0, 1.0).to(dtype)[..., None, :]
        flip = torch.ones_like(Q[..., 0, :])
        flip[..., 0] = torch.where(self._det(Q) < 0, -1.0, 1.0)
        return Q * flip[..., None, :]
