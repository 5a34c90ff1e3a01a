"""Accuracy atlas: the worst error of every public manifold op over its whole domain, in eps.

Every op is swept over its domain, including the approach to each singular point (zero, tiny
angles, angles near pi, antipodes, the cut locus) and both ends of the float range (tangent
norms and unnormalised inputs from 1e-30 to 1e30), in float32 and float64, and compared with a
50-digit mpmath reference. Inputs are built in float64 and rounded to the test dtype; the
reference is computed from the **rounded** inputs, so the atlas measures the op, not the input
rounding. A rounded point stands for the manifold point it represents: its exact normalisation
on the sphere, its exact polar factor on SO(n) (the ops document that they answer for the
nearest point, or assume points on the manifold); tangent and ambient inputs are taken as
given (projected exactly where the op documents that it projects them).

The references are independent closed forms evaluated in mpmath (sphere exp as
``cos|v| x + sin|v| v/|v|``, log and dist from ``atan2(|P_x y|, <x, y>)``, transport as a rotation
of the plane of x and y, Rodrigues' formula, the SO(3) log through a quaternion, SO(n)
exp/log as matrix functions of the symmetric matrices ``-W^2`` and ``(M + M^T)/2`` by
mpmath's symmetric eigensolver, Gram-Schmidt for QR, mpmath's SVD for the nearest rotation),
never manifres code.

Errors are in units of the dtype's eps, each op with the measure stated in the table
(absolute for outputs of unit size, relative to the reference or to an input otherwise).
The sweep is cut into regions; a region where an op is known to fail is reported on its own
(``KNOWN``) and kept out of the op's bound. ``BOUNDS`` is the one table of bounds: the docs
page shows it, ``tests/test_accuracy.py`` keeps every op under it.

Run from a checkout (no install needed)::

    python benchmarks/accuracy_atlas.py            # full sweep, writes docs/_generated/accuracy_atlas.rst
    python benchmarks/accuracy_atlas.py --quick    # the small sample the default tests use; prints only
    python benchmarks/accuracy_atlas.py --ops so3  # only the ops whose name matches a pattern
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import mpmath as mp
import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # the checkout's manifres, installed or not
    sys.path.insert(0, ROOT)

from manifres import Euclidean, SpecialOrthogonal, Sphere, so3  # noqa: E402

mp.mp.dps = 50
DTYPES = {"float32": torch.float32, "float64": torch.float64}
EPS = {name: torch.finfo(dt).eps for name, dt in DTYPES.items()}
OUTPUT = os.path.join(ROOT, "docs", "_generated", "accuracy_atlas.rst")
PI = math.pi


# ---------------------------------------------------------------------------------- cases
@dataclass
class Case:
    """One input of a sweep: float64 arrays (rounded to the dtype before use), a region of
    the domain and a label for the tables."""

    args: tuple[np.ndarray, ...]
    region: str
    label: str
    sign_free: bool = False  # compare modulo sign (a log or quaternion at exactly pi)


@dataclass
class Op:
    name: str
    measure: str  # how the error is normalised, for the table
    cases: Callable[[bool], list[Case]]
    call: Callable[..., torch.Tensor]
    ref: Callable[..., list]  # mp inputs -> flat list of mpf
    scale: Callable[[list, list], mp.mpf]  # (mp inputs, flat ref) -> denominator of the error
    exclude: Callable[[list[np.ndarray], str], bool] | None = None  # rounded inputs, dtype name


@dataclass
class Result:
    worst: dict[str, float] = field(default_factory=dict)  # region -> worst error (eps)
    where: dict[str, tuple[str, list]] = field(default_factory=dict)  # region -> (label, inputs)
    count: int = 0
    excluded: int = 0


# ---------------------------------------------------------------------------------- mp helpers
def _mpf(a: np.ndarray):
    """A float64 array as exact mpf: a list (vector) or an mp.matrix (matrix)."""
    if a.ndim == 1:
        return [mp.mpf(float(t)) for t in a]
    return mp.matrix([[mp.mpf(float(t)) for t in row] for row in a])


def _flat(r) -> list:
    if isinstance(r, np.ndarray):
        return r.ravel().tolist()
    if isinstance(r, mp.matrix):
        return [r[i, j] for i in range(r.rows) for j in range(r.cols)]
    if isinstance(r, list):
        return list(r)
    return [r]


def _dot(a, b):
    return mp.fsum(x * y for x, y in zip(a, b, strict=True))


def _norm(a):
    return mp.sqrt(_dot(a, a))


def _unit(a):
    n = _norm(a)
    return [x / n for x in a]


def _tangent(x, u):
    """u - <x, u> x (x unit)."""
    c = _dot(x, u)
    return [b - c * a for a, b in zip(x, u, strict=True)]


def _fro(M):
    return mp.sqrt(mp.fsum(t * t for t in _flat(M)))


def _maxabs(vals):
    return max((abs(t) for t in _flat(vals)), default=mp.mpf(0))


def _eye(n):
    return mp.eye(n)


def _skew(M):
    return (M - M.T) / 2


def _polar(X):
    """Orthogonal polar factor of a nearly orthogonal X (Newton-Schulz, quadratic)."""
    n = X.rows
    for _ in range(12):
        Y = X * (3 * _eye(n) - X.T * X) / 2
        if mp.mnorm(Y - X, 1) < mp.mpf(10) ** -45:
            return Y
        X = Y
    return X


def _sym_fn(S, f):
    """f(S) for symmetric S by mpmath's symmetric eigensolver."""
    E, Q = mp.eigsy((S + S.T) / 2)
    D = mp.diag([f(E[i]) for i in range(S.rows)])
    return Q * D * Q.T


def _expm_skew(W):
    r"""exp(W) for skew W: :math:`\cos\Theta + \operatorname{sinc}\Theta\, W`, :math:`\Theta^2 = -W^2`."""
    T2 = -(W * W)

    def cos_(t2):
        return mp.cos(mp.sqrt(max(t2, mp.mpf(0))))

    def sinc_(t2):
        t = mp.sqrt(max(t2, mp.mpf(0)))
        return mp.mpf(1) if t == 0 else mp.sin(t) / t

    try:
        return _sym_fn(T2, cos_) + _sym_fn(T2, sinc_) * W
    except RuntimeError:  # eigsy may not converge on a nearly fourfold eigenvalue
        if not all(mp.isfinite(t) for t in _flat(W)):
            raise
        return mp.expm(W)


def _rot_angles(M):
    """The angles acos(c_i) of the eigenvalues c_i of (M + M^T)/2 (each plane twice)."""
    E, _ = mp.eigsy((M + M.T) / 2)
    return [mp.acos(max(min(E[i], mp.mpf(1)), mp.mpf(-1))) for i in range(M.rows)]


def _logm_rot(M):
    r"""Principal log of a rotation: :math:`g(S)\,K` with :math:`S = (M + M^T)/2`,
    :math:`K = (M - M^T)/2`, :math:`g(\cos\theta) = \theta/\sin\theta` (a matrix function of S,
    so repeated angles need no eigenvector choice)."""
    S, K = (M + M.T) / 2, _skew(M)

    def g(c):
        c = min(c, mp.mpf(1))
        s2 = 1 - c * c
        if s2 < mp.mpf(10) ** -40:
            return 1 + (1 - c) / 3 if c > 0 else mp.inf
        return mp.acos(c) / mp.sqrt(s2)

    return _skew(_sym_fn(S, g) * K)


def _hat(w):
    x, y, z = w
    o = mp.mpf(0)
    return mp.matrix([[o, -z, y], [z, o, -x], [-y, x, o]])


def _vee(W):
    return [(W[2, 1] - W[1, 2]) / 2, (W[0, 2] - W[2, 0]) / 2, (W[1, 0] - W[0, 1]) / 2]


def _rodrigues(w):
    t2 = _dot(w, w)
    if t2 == 0:
        return _eye(3)
    t = mp.sqrt(t2)
    W = _hat(w)
    ww = mp.matrix([[a * b for b in w] for a in w])
    return mp.cos(t) * _eye(3) + (mp.sin(t) / t) * W + ((1 - mp.cos(t)) / t2) * ww


def _quaternion(M):
    """Unit quaternion (w >= 0) of an exact rotation, largest pivot first."""
    tr = M[0, 0] + M[1, 1] + M[2, 2]
    piv = [tr, M[0, 0], M[1, 1], M[2, 2]]
    k = max(range(4), key=lambda i: piv[i] if i == 0 else 2 * piv[i] - tr)
    if k == 0:
        w = mp.sqrt(1 + tr) / 2
        q = [w, (M[2, 1] - M[1, 2]) / (4 * w), (M[0, 2] - M[2, 0]) / (4 * w), (M[1, 0] - M[0, 1]) / (4 * w)]
    else:
        i = k - 1
        j, l = (i + 1) % 3, (i + 2) % 3
        a = mp.sqrt(1 + 2 * M[i, i] - tr) / 2
        v = [mp.mpf(0)] * 3
        v[i] = a
        v[j] = (M[j, i] + M[i, j]) / (4 * a)
        v[l] = (M[l, i] + M[i, l]) / (4 * a)
        w = (M[l, j] - M[j, l]) / (4 * a)
        q = [w] + v
    q = _unit(q)
    return [-t for t in q] if q[0] < 0 else q


def _quat_log(q):
    w, v = q[0], q[1:]
    s = _norm(v)
    if s == 0:
        return [mp.mpf(0)] * 3
    th = 2 * mp.atan2(s, w)
    return [th * t / s for t in v]


def _so3_log(M):
    return _quat_log(_quaternion(M))


def _so_log(M):
    """Principal log of an exact rotation (n = 2, 3 closed forms, else the matrix function)."""
    n = M.rows
    if n == 2:
        t = mp.atan2(M[1, 0], M[0, 0])
        return mp.matrix([[0, -t], [t, 0]])
    if n == 3:
        return _hat(_so3_log(M))
    return _logm_rot(M)


def _so_exp(W):
    return _rodrigues(_vee(W)) if W.rows == 3 else _expm_skew(W)


def _gram_schmidt(A):
    n = A.rows
    Q = mp.matrix(n, n)
    for j in range(n):
        v = [A[i, j] for i in range(n)]
        for k in range(j):
            qk = [Q[i, k] for i in range(n)]
            c = _dot(qk, v)
            v = [a - c * b for a, b in zip(v, qk, strict=True)]
        v = _unit(v)
        for i in range(n):
            Q[i, j] = v[i]
    return Q


def _nearest_rotation(Y):
    U, S, V = mp.svd_r(Y)  # Y = U diag(S) V
    d = mp.det(U * V)
    D = _eye(Y.rows)
    D[Y.rows - 1, Y.rows - 1] = 1 if d > 0 else -1
    return U * D * V


# ---------------------------------------------------------------------------------- samples
def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _unit64(rng, d):
    v = rng.standard_normal(d)
    return v / np.linalg.norm(v)


def _tangent64(rng, x):
    t = rng.standard_normal(x.shape)
    t -= (t @ x) * x
    return t / np.linalg.norm(t)


def _rotation64(rng, n):
    Q, R = np.linalg.qr(rng.standard_normal((n, n)))
    Q = Q * np.sign(np.diag(R))
    if np.linalg.det(Q) < 0:
        Q[:, 0] = -Q[:, 0]
    return Q


def _skew_unit64(rng, n):
    """A random skew matrix of Frobenius norm sqrt(2) (angle 1 on SO(3))."""
    A = rng.standard_normal((n, n))
    A = A - A.T
    return A * math.sqrt(2.0) / np.linalg.norm(A)


def _expm64(A):
    """exp of a skew matrix in mpmath, rounded to float64 (an accurate input builder)."""
    E = _so_exp(_mpf(A))
    return np.array([[float(E[i, j]) for j in range(E.cols)] for i in range(E.rows)])


def _norms(quick: bool) -> list[float]:
    """Tangent norms for the maps exp_x(v): zero, tiny, moderate, multiples of pi, huge."""
    k = 3 if quick else 1
    return sorted({0.0, PI, 2 * PI, 3 * PI, *np.logspace(-30, -4, 27)[::k], *np.linspace(0.05, 10, 40)[::k],
                   *np.logspace(1.3, 30, 30)[::k]})


def _angles(quick: bool) -> list[float]:
    """Angles between two points: zero, tiny, moderate, and pi - delta down to 1e-16."""
    k = 3 if quick else 1
    return sorted({0.0, *np.logspace(-30, -4, 27)[::k], *np.linspace(1e-3, PI - 1e-3, 40)[::k],
                   *(PI - np.logspace(-16, -3, 27)[::k])})


def _scales(quick: bool) -> list[float]:
    """Magnitudes of unnormalised or ambient inputs, 1e-30 to 1e30."""
    return list(np.logspace(-30, 30, 21 if quick else 61))


def _norm_region(t: float) -> str:
    if t == 0:
        return "zero"
    if t < 1e-15:
        return "< 1e-15"
    if t < 1e-4:
        return "tiny"
    if t <= 10:
        return "moderate"
    return "large" if t <= 1e8 else "huge"


def _angle_region(t: float) -> str:
    if t == 0:
        return "zero"
    if t < 1e-15:
        return "< 1e-15"
    if t < 1e-4:
        return "tiny"
    return "near pi" if PI - t < 1e-3 else "moderate"


def _scale_region(s: float) -> str:
    if s == 0:
        return "zero"
    if 1e-8 <= s <= 1e8:
        return "moderate"
    return "extreme" if (s < 1e-15 or s > 1e15) else ("small" if s < 1 else "large")


def _fmt(t: float) -> str:
    return f"{t:.3g}"


def _angle_label(t: float) -> str:
    if t > 3.0 and PI - t > 0:
        return f"θ = π − {_fmt(PI - t)}"
    return f"θ = {_fmt(t)}"


# ---------------------------------------------------------------------------------- sphere
def _sphere_ops(n: int, fill: int = 0) -> list[Op]:
    S = Sphere(n)
    d = n + 1
    tag = f"Sphere({n})"

    def pad(cases: list[Case], make: Callable[[np.random.Generator], Case], quick: bool) -> list[Case]:
        rng = _rng(99)
        while not quick and len(cases) < fill:
            cases.append(make(rng))
        return cases

    def exp_cases(quick: bool) -> list[Case]:
        rng = _rng(1)
        out = []
        for t in _norms(quick):
            for _ in range(2):
                x = _unit64(rng, d)
                out.append(Case((x, t * _tangent64(rng, x)), _norm_region(t), f"|v| = {_fmt(t)}"))
        for c in (1e-3, 1.0, 1e3):  # non-tangent v: exp projects it first
            x = _unit64(rng, d)
            out.append(Case((x, _tangent64(rng, x) + c * x), "non-tangent", f"v = t + {_fmt(c)} x"))

        def rand(rng):
            x = _unit64(rng, d)
            return Case((x, rng.uniform(0, 4) * _tangent64(rng, x)), "moderate", "random")

        return pad(out, rand, quick)

    def pair_cases(quick: bool, antipode: bool = False, magnitudes: bool = False) -> list[Case]:
        rng = _rng(2)
        out = []
        for t in _angles(quick):
            for _ in range(2):
                x = _unit64(rng, d)
                y = [float(a) for a in _point_at(x, _tangent64(rng, x), t)]
                args = (x, np.array(y))
                if magnitudes:
                    s = float(10.0 ** rng.integers(-30, 31))
                    args = args + (s * _tangent64(rng, x),)
                out.append(Case(args, _angle_region(t), _angle_label(t)))
        if antipode:
            for _ in range(3):
                x = _unit64(rng, d)
                out.append(Case((x, -x), "antipode", "y = −x"))

        def rand(rng):
            x = _unit64(rng, d)
            t = rng.uniform(0.01, 3.0)
            args = (x, np.array([float(a) for a in _point_at(x, _tangent64(rng, x), t)]))
            if magnitudes:
                args = args + (_tangent64(rng, x),)
            return Case(args, "moderate", "random")

        return pad(out, rand, quick)

    def cut(r: list[np.ndarray], dt: str) -> bool:  # the cut locus: log/transport raise there
        return bool(np.linalg.norm(r[0] + r[1]) <= 64 * EPS[dt])

    def proj_cases(quick: bool) -> list[Case]:
        rng = _rng(3)
        out = []
        sc = _scales(quick)
        for a in [0.0, *sc[:: 2 if quick else 4]]:
            for b in [0.0, *sc[:: 2 if quick else 4]]:
                if a == 0 and b == 0:
                    continue
                x = _unit64(rng, d)
                u = a * x + b * _tangent64(rng, x)
                out.append(Case((x, u), _scale_region(max(a, b)), f"u = {_fmt(a)} x + {_fmt(b)} t"))

        def rand(rng):
            x = _unit64(rng, d)
            return Case((x, rng.standard_normal(d)), "moderate", "random")

        return pad(out, rand, quick)

    def scale_cases(quick: bool, tangent: bool) -> list[Case]:
        rng = _rng(4)
        out = []
        for s in _scales(quick):
            for _ in range(2):
                x = _unit64(rng, d)
                if tangent:
                    out.append(Case((x, s * _tangent64(rng, x)), _scale_region(s), f"|v| = {_fmt(s)}"))
                else:
                    out.append(Case((s * x,), _scale_region(s), f"|y| = {_fmt(s)}"))
        x = _unit64(rng, d)
        out.append(Case((x, 0 * x) if tangent else (0 * x,), "zero", "v = 0" if tangent else "y = 0"))
        return out

    def ref_proj(x, u):
        return _tangent(_unit(x), u)

    def ref_proj_point(y):
        if all(t == 0 for t in y):
            return [mp.mpf(1)] + [mp.mpf(0)] * (len(y) - 1)  # the documented fallback e_0
        return _unit(y)

    def ref_exp(x, v):
        xh = _unit(x)
        w = _tangent(xh, v)
        t = _norm(w)
        if t == 0:
            return xh
        return [mp.cos(t) * a + mp.sin(t) / t * b for a, b in zip(xh, w, strict=True)]

    def ref_projective(x, v):
        xh = _unit(x)
        w = _tangent(xh, v)
        return _unit([a + b for a, b in zip(xh, w, strict=True)])

    def ref_log(x, y):
        if x == y:
            return [mp.mpf(0)] * len(x)
        xh, yh = _unit(x), _unit(y)
        p = _tangent(xh, yh)
        s = _norm(p)
        if s == 0:
            return [mp.mpf(0)] * len(x)
        return [mp.atan2(s, _dot(xh, yh)) / s * t for t in p]

    def ref_dist(x, y):
        if x == y:
            return [mp.mpf(0)]
        xh, yh = _unit(x), _unit(y)
        return [mp.atan2(_norm(_tangent(xh, yh)), _dot(xh, yh))]

    def ref_transport(x, y, v):
        """Rotation of the plane (x, e) by theta, e the unit tangent at x towards y."""
        xh, yh = _unit(x), _unit(y)
        w = _tangent(xh, v)
        p = _tangent(xh, yh)
        s = _norm(p)
        if x == y or s == 0:
            return w
        e = [t / s for t in p]
        th = mp.atan2(s, _dot(xh, yh))
        a = _dot(w, e)
        c, sn = mp.cos(th), mp.sin(th)
        return [wi - a * ei + a * (c * ei - sn * xi) for wi, ei, xi in zip(w, e, xh, strict=True)]

    def ref_norm(x, v):
        return [_norm(v)]

    def rel(args, r):
        return _maxabs(r)

    def absolute(args, r):
        return mp.mpf(1)

    ops = [
        Op(f"{tag}.proj", "relative to max|u|", proj_cases, S.proj, ref_proj, lambda a, r: _maxabs(a[1])),
        Op(f"{tag}.exp", "absolute / max(1, |v|)", exp_cases, S.exp, ref_exp,
           lambda a, r: max(mp.mpf(1), _norm(a[1]))),
        Op(f"{tag}.retract(projective)", "absolute / max(1, |v|)", exp_cases, S.retract_projective,
           ref_projective, lambda a, r: max(mp.mpf(1), _norm(a[1]))),
        Op(f"{tag}.log", "relative", lambda q: pair_cases(q), S.log, ref_log, rel, cut),
        Op(f"{tag}.dist", "relative", lambda q: pair_cases(q, antipode=True), S.dist, ref_dist, rel),
        Op(f"{tag}.transport", "relative", lambda q: pair_cases(q, magnitudes=True), S.transport,
           ref_transport, rel, cut),
    ]
    if not fill:
        ops[1:1] = [Op(f"{tag}.proj_point", "absolute", lambda q: scale_cases(q, False), S.proj_point,
                       ref_proj_point, absolute)]
        ops.append(Op(f"{tag}.norm", "relative", lambda q: scale_cases(q, True), S.norm, ref_norm, rel))
    return ops


def _point_at(x: np.ndarray, t: np.ndarray, theta: float):
    """cos(theta) x + sin(theta) t in 50 digits (accurate near pi), rounded to float64."""
    th = mp.mpf(theta)
    c, s = mp.cos(th), mp.sin(th)
    return [float(c * mp.mpf(float(a)) + s * mp.mpf(float(b))) for a, b in zip(x, t, strict=True)]


# ---------------------------------------------------------------------------------- SO(n)
def _exact_pi(R: np.ndarray) -> bool:
    """One of the exactly representable rotations by pi of the sweeps (entries 0, +-1)."""
    return bool(np.all(np.isin(R, (-1.0, 0.0, 1.0))) and abs(np.trace(R) + 1) < 1e-12)


def _so_ops(n: int) -> list[Op]:
    G = SpecialOrthogonal(n)
    tag = f"SpecialOrthogonal({n})"

    def rot_at(rng, angles: list[float]) -> np.ndarray:
        """A rotation with the given plane angles in a random frame (built in 50 digits)."""
        Q = _rotation64(rng, n)
        A = np.zeros((n, n))
        for k, a in enumerate(angles):
            A[2 * k + 1, 2 * k], A[2 * k, 2 * k + 1] = a, -a
        E = _mpf(Q) * _so_exp(_mpf(A)) * _mpf(Q).T
        return np.array([[float(E[i, j]) for j in range(n)] for i in range(n)])

    def tangent_cases(quick: bool) -> list[Case]:
        rng = _rng(11)
        out = []
        for t in _norms(quick):
            x = _rotation64(rng, n)
            W = _skew_unit64(rng, n) * (t / math.sqrt(2.0))  # rotation angle t on SO(3)
            out.append(Case((x, x @ W), _norm_region(t), f"|Ω|/√2 = {_fmt(t)}"))
        return out

    def pair_cases(quick: bool) -> list[Case]:
        rng = _rng(12)
        out = []
        angs = _angles(quick)
        for t in angs:
            x = _rotation64(rng, n)
            if n == 4:  # second plane: a random angle, or the same (repeated angles)
                second = [t, float(rng.choice(angs)), 0.0]
                t2 = second[int(rng.integers(0, 3))]
                y = x @ rot_at(rng, [t, t2])
                label = f"{_angle_label(t)}, second plane {_angle_label(t2)[4:]}"
                region = _angle_region(max(t, t2))  # the largest angle decides
            else:
                y = x @ rot_at(rng, [t])
                label, region = _angle_label(t), _angle_region(t)
            out.append(Case((x, y), region, label))
        if n == 3:  # exactly pi: exact rotations (log sign-free there)
            I3 = np.eye(3)
            for P in (np.diag([1.0, -1.0, -1.0]), np.array([[0.0, 1, 0], [1, 0, 0], [0, 0, -1]])):
                out.append(Case((I3, P), "pi exactly", "θ = π (exact)", sign_free=True))
        return out

    def transport_cases(quick: bool) -> list[Case]:
        rng = _rng(13)
        out = []
        for c in pair_cases(quick):
            x = c.args[0]
            out.append(Case(c.args + (x @ _skew_unit64(rng, n),), c.region, c.label, c.sign_free))
        return [c for c in out if not c.sign_free]  # transport at pi: not unique

    def proj_point_cases(quick: bool) -> list[Case]:
        rng = _rng(14)
        out = []
        for s in _scales(quick):
            for noise in (0.0, 1e-8, 1e-3, 0.3):
                R = _rotation64(rng, n)
                Y = s * (R + noise * rng.standard_normal((n, n)))
                out.append(Case((Y,), _scale_region(s), f"s = {_fmt(s)}, noise {_fmt(noise)}"))
        for _ in range(4):  # det < 0: the nearest rotation flips the smallest singular direction
            R = _rotation64(rng, n)
            R[:, 0] = -R[:, 0]
            Y = R @ np.diag(np.linspace(1.0, 2.0, n))
            out.append(Case((Y,), "det < 0", "reflection with distinct singular values"))
        return out

    def xhat(x):
        return _polar(x)

    def omega(xh, v):
        return _skew(xh.T * v)

    def ref_exp(x, v):
        xh = xhat(x)
        return xh * _so_exp(omega(xh, v))

    def relative(x, y):
        """Log of xh^T yh, exactly 0 for identical inputs (no 1e-50 noise)."""
        xh, yh = xhat(x), xhat(y)
        return xh, yh, (mp.zeros(n, n) if x == y else _so_log(xh.T * yh))

    def ref_log(x, y):
        xh, _, A = relative(x, y)
        return xh * A

    def ref_dist(x, y):
        if x == y:
            return [mp.mpf(0)]
        th = _rot_angles(xhat(x).T * xhat(y))  # |Log|_F^2 = sum over the eigenvalues of theta^2
        return [mp.sqrt(mp.fsum(t * t for t in th))]

    def cut(r: list[np.ndarray], dt: str) -> bool:
        """The cut locus (a plane within 64 eps of pi), where the log is not unique: excluded
        from log and transport (exact-pi cases with a sign-free comparison are kept)."""
        x, y = _mpf(r[0]), _mpf(r[1])
        if x == y:
            return False
        th = _rot_angles(_polar(x).T * _polar(y))
        return bool(PI - float(max(th)) <= 64 * EPS[dt]) and not (n == 3 and _exact_pi(r[1]))

    def ref_angle(x, y):
        return [ref_dist(x, y)[0] / mp.sqrt(2)]

    def ref_transport(x, y, v):
        xh, yh, A = relative(x, y)
        E = _so_exp(A / 2)
        return yh * E.T * omega(xh, v) * E

    def ref_cayley(x, v):
        xh = xhat(x)
        W = omega(xh, v)
        return xh * mp.inverse(_eye(n) - W / 2) * (_eye(n) + W / 2)

    def ref_qr(x, v):
        xh = xhat(x)
        return xh * _gram_schmidt(_eye(n) + omega(xh, v))

    def ref_polar(x, v):
        xh = xhat(x)
        W = omega(xh, v)
        return xh * (_eye(n) + W) * _sym_fn(_eye(n) - W * W, lambda lam: 1 / mp.sqrt(lam))

    def ref_proj_point(Y):
        return _nearest_rotation(Y)

    def rel(args, r):
        return _maxabs(r)

    def absolute(args, r):
        return mp.mpf(1)

    def cond(args, r):
        return max(mp.mpf(1), _fro(args[1]) / mp.sqrt(2))

    return [
        Op(f"{tag}.exp", "absolute / max(1, |Ω|/√2)", tangent_cases, G.exp, ref_exp, cond),
        Op(f"{tag}.retract(cayley)", "absolute", tangent_cases, G.retract_cayley, ref_cayley, absolute),
        Op(f"{tag}.retract(qr)", "absolute", tangent_cases, G.retract_qr, ref_qr, absolute),
        Op(f"{tag}.retract(polar)", "absolute", tangent_cases, G.retract_polar, ref_polar, absolute),
        Op(f"{tag}.log", "relative", pair_cases, G.log, ref_log, rel, cut),
        Op(f"{tag}.dist", "relative", pair_cases, G.dist, ref_dist, rel),
        Op(f"{tag}.angle", "relative", pair_cases, G.angle, ref_angle, rel),
        Op(f"{tag}.transport", "relative", transport_cases, G.transport, ref_transport, rel, cut),
        Op(f"{tag}.proj_point", "absolute", proj_point_cases, G.proj_point, ref_proj_point, absolute),
    ]


# ---------------------------------------------------------------------------------- so3
def _so3_ops() -> list[Op]:
    def rotvec_cases(quick: bool) -> list[Case]:
        rng = _rng(21)
        return [Case((t * _unit64(rng, 3),), _norm_region(t), f"|v| = {_fmt(t)}") for t in _norms(quick)]

    def matrix_cases(quick: bool) -> list[Case]:
        rng = _rng(22)
        out = []
        for t in _angles(quick):
            w = t * _unit64(rng, 3)
            E = _rodrigues([mp.mpf(float(a)) for a in w])
            R = np.array([[float(e) for e in row] for row in E.tolist()])
            out.append(Case((R,), _angle_region(t), _angle_label(t)))
        for P in (np.diag([1.0, -1.0, -1.0]), np.array([[0.0, 1, 0], [1, 0, 0], [0, 0, -1]])):
            out.append(Case((P,), "pi exactly", "θ = π (exact)", sign_free=True))
        for k, (scale, noise) in enumerate([(1.001, 0.0), (1.0, 1e-5), (0.999, 1e-3)]):
            R = _rotation64(_rng(30 + k), 3)
            out.append(Case((scale * R + noise * rng.standard_normal((3, 3)),), "near-orthogonal",
                            f"{scale} R + {_fmt(noise)} noise"))
        return out

    def quaternion_cases(quick: bool) -> list[Case]:
        rng = _rng(23)
        out = []
        for s in _scales(quick):
            for _ in range(2):
                out.append(Case((s * _unit64(rng, 4),), _scale_region(s), f"|q| = {_fmt(s)}"))
        out.append(Case((np.array([0.0, 1.0, 0.0, 0.0]),), "moderate", "q = (0, 1, 0, 0)"))
        return out

    def hat_cases(quick: bool) -> list[Case]:
        rng = _rng(24)
        return [Case((s * rng.standard_normal(3),), _scale_region(s), f"|v| ~ {_fmt(s)}")
                for s in _scales(quick)]

    def vee_cases(quick: bool) -> list[Case]:
        rng = _rng(25)
        return [Case((s * rng.standard_normal((3, 3)),), _scale_region(s), f"|W| ~ {_fmt(s)}")
                for s in _scales(quick)]

    def ref_exp(w):
        return _rodrigues(w)

    def cut(r: list[np.ndarray], dt: str) -> bool:
        """Within 64 eps of pi (not exactly pi): the sign of the log is not resolved there."""
        if _exact_pi(r[0]):
            return False
        return bool(PI - float(max(_rot_angles(_polar(_mpf(r[0]))))) <= 64 * EPS[dt])

    def ref_log(R):
        return _so3_log(_polar(R))

    def ref_angle(R):
        q = _quaternion(_polar(R))
        return [2 * mp.atan2(_norm(q[1:]), abs(q[0]))]

    def ref_to_q(R):
        return _quaternion(_polar(R))

    def ref_from_q(q):
        w, x, y, z = _unit(q)
        return mp.matrix([
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ])

    def rel(args, r):
        return _maxabs(r)

    def absolute(args, r):
        return mp.mpf(1)

    return [
        Op("so3.exp", "absolute / max(1, |v|)", rotvec_cases, so3.exp, ref_exp,
           lambda a, r: max(mp.mpf(1), _norm(a[0]))),
        Op("so3.log", "relative", matrix_cases, so3.log, ref_log, rel, cut),
        Op("so3.angle", "relative", matrix_cases, so3.angle, ref_angle, rel),
        Op("so3.to_quaternion", "absolute", matrix_cases, so3.to_quaternion, ref_to_q, absolute, cut),
        Op("so3.from_quaternion", "absolute", quaternion_cases, so3.from_quaternion, ref_from_q, absolute),
        Op("so3.hat", "relative", hat_cases, so3.hat, _hat, rel),
        Op("so3.vee", "relative to max|W|", vee_cases, so3.vee, _vee, lambda a, r: _maxabs(_flat(a[0]))),
    ]


# ---------------------------------------------------------------------------------- Euclidean
def _euclidean_ops() -> list[Op]:
    E = Euclidean(3)

    def cases(quick: bool) -> list[Case]:
        rng = _rng(31)
        out = []
        for s in _scales(quick):
            for rel_gap in (1.0, 1e-6):
                x = s * rng.standard_normal(3)
                y = x + rel_gap * s * rng.standard_normal(3)
                out.append(Case((x, y), _scale_region(s), f"|x| ~ {_fmt(s)}, |y − x| ~ {_fmt(rel_gap * s)}"))
        x = rng.standard_normal(3)
        out.append(Case((x, x.copy()), "zero", "y = x"))
        return out

    def ref(x, y):
        return [_norm([b - a for a, b in zip(x, y, strict=True)])]

    return [Op("Euclidean(3).dist", "relative", cases, E.dist, ref, lambda a, r: _maxabs(r))]


def all_ops() -> list[Op]:
    return [*_sphere_ops(2), *_sphere_ops(15, fill=2304), *_so_ops(3), *_so_ops(4), *_so3_ops(),
            *_euclidean_ops()]


# ---------------------------------------------------------------------------------- bounds
#: The one table of bounds (eps of the dtype): (float32, float64), for every op over its sweep
#: without the regions of KNOWN; about twice the measured worst error (rounded up).
BOUNDS: dict[str, tuple[float, float]] = {
    "Sphere(2).proj": (3, 4),
    "Sphere(2).proj_point": (3, 1.5),
    "Sphere(2).exp": (2, 3),
    "Sphere(2).retract(projective)": (2, 2),
    "Sphere(2).log": (40, 30),
    "Sphere(2).dist": (2, 3),
    "Sphere(2).transport": (10, 50),
    "Sphere(2).norm": (1.5, 1.5),
    "Sphere(15).proj": (3, 6),
    "Sphere(15).exp": (3, 3),
    "Sphere(15).retract(projective)": (2, 2),
    "Sphere(15).log": (30, 50),
    "Sphere(15).dist": (4, 4),
    "Sphere(15).transport": (15, 30),
    "SpecialOrthogonal(3).exp": (3, 4),
    "SpecialOrthogonal(3).retract(cayley)": (3, 4),
    "SpecialOrthogonal(3).retract(qr)": (30, 20),
    "SpecialOrthogonal(3).retract(polar)": (3, 3),
    "SpecialOrthogonal(3).log": (5, 50),
    "SpecialOrthogonal(3).dist": (3, 30),
    "SpecialOrthogonal(3).angle": (3, 30),
    "SpecialOrthogonal(3).transport": (5, 10),
    "SpecialOrthogonal(3).proj_point": (8, 40),
    "SpecialOrthogonal(4).exp": (6, 3),
    "SpecialOrthogonal(4).retract(cayley)": (10, 20),
    "SpecialOrthogonal(4).retract(qr)": (40, 40),
    "SpecialOrthogonal(4).retract(polar)": (15, 40),
    "SpecialOrthogonal(4).log": (5, 500),
    "SpecialOrthogonal(4).dist": (5, 80),
    "SpecialOrthogonal(4).angle": (4, 80),
    "SpecialOrthogonal(4).transport": (10, 200),
    "SpecialOrthogonal(4).proj_point": (10, 40),
    "so3.exp": (1.5, 2),
    "so3.log": (3, 3),
    "so3.angle": (1.5, 3),
    "so3.to_quaternion": (1.5, 1.5),
    "so3.from_quaternion": (5, 4),
    "so3.hat": (0, 0),
    "so3.vee": (1, 1),
    "Euclidean(3).dist": (2, 1.5),
}

_INF = math.inf
_SQ32 = "float32 squares overflow above 1.8e19 and underflow below 1e-19"
_NEAR_PI = ("ill-conditioned near the antipode (condition number about π/δ at θ = π − δ): the error is "
            "about ε/δ, as from a backward-stable evaluation; forming the direction from x + y, exact "
            "for nearly antipodal inputs, would keep it to a few ε")
_DIST_TINY = ("documented: the rounding of the inputs off the sphere (about ε) perturbs the chord |x − y| "
              "by a relative (ε/θ)²; an angle from |P_x(y − x)| would keep relative accuracy")
_SO4_SMALL = ("absolute, not relative, accuracy at small angles (about 1e-17): the float64 projection and "
              "eigen-decomposition of xᵀy leave rounding of size ε in the skew part")
_SO4_PI = ("ill-conditioned near π, worst for two planes near π (nearly repeated angles there); within "
           "about 1e3 ε of π (float64) the regularisation τ = 64 ε of the complex-structure iteration "
           "biases the log by about τ/δ, up to O(1)")

#: Regions where an op is known to be inaccurate (or NaN): (op, dtype, region) -> (bound in eps,
#: math.inf allowing NaN/inf, what goes wrong). Kept out of BOUNDS, shown in their own table.
KNOWN: dict[tuple[str, str, str], tuple[float, str]] = {
    ("Sphere(2).proj_point", "float32", "extreme"): (
        4e7, f"{_SQ32}: |y| ≲ 1e-19 gives the zero fallback e₀ (or a wrong direction), |y| ≳ 1.8e19 gives 0"),
    ("Sphere(2).exp", "float32", "huge"): (_INF, f"NaN for |v| ≳ 1.8e19 ({_SQ32})"),
    ("Sphere(2).retract(projective)", "float32", "huge"): (_INF, f"NaN for |v| ≳ 1.8e19 ({_SQ32})"),
    ("Sphere(2).log", "float32", "near pi"): (3e5, _NEAR_PI),
    ("Sphere(2).log", "float64", "near pi"): (1.5e14, _NEAR_PI),
    ("Sphere(2).dist", "float32", "tiny"): (4e7, _DIST_TINY),
    ("Sphere(2).dist", "float64", "< 1e-15"): (4e14, _DIST_TINY),
    ("Sphere(2).dist", "float64", "tiny"): (1.5e13, _DIST_TINY),
    ("Sphere(2).transport", "float32", "near pi"): (1e5, _NEAR_PI),
    ("Sphere(2).transport", "float64", "near pi"): (5e14, _NEAR_PI),
    ("Sphere(2).norm", "float32", "extreme"): (_INF, f"inf above |v| ≈ 1.8e19, 0 below 1e-23 ({_SQ32})"),
    ("Sphere(15).exp", "float32", "huge"): (_INF, f"NaN for |v| ≳ 1.8e19 ({_SQ32})"),
    ("Sphere(15).retract(projective)", "float32", "huge"): (_INF, f"NaN for |v| ≳ 1.8e19 ({_SQ32})"),
    ("Sphere(15).log", "float32", "near pi"): (3e5, _NEAR_PI),
    ("Sphere(15).log", "float64", "near pi"): (1.5e14, _NEAR_PI),
    ("Sphere(15).dist", "float32", "tiny"): (4e5, _DIST_TINY),
    ("Sphere(15).dist", "float64", "< 1e-15"): (4e13, _DIST_TINY),
    ("Sphere(15).dist", "float64", "tiny"): (1.5e12, _DIST_TINY),
    ("Sphere(15).transport", "float32", "near pi"): (2e4, _NEAR_PI),
    ("Sphere(15).transport", "float64", "near pi"): (2e13, _NEAR_PI),
    ("SpecialOrthogonal(3).exp", "float32", "huge"): (_INF, f"NaN for |Ω| ≳ 1.8e19: θ² overflows ({_SQ32})"),
    ("SpecialOrthogonal(3).retract(cayley)", "float32", "huge"): (_INF, f"NaN for |Ω| ≳ 1.8e19 ({_SQ32})"),
    ("SpecialOrthogonal(3).retract(polar)", "float32", "huge"): (_INF, f"NaN for |Ω| ≳ 1.8e19 ({_SQ32})"),
    ("SpecialOrthogonal(3).retract(qr)", "float32", "huge"): (
        4e7, "|Ω| ≳ 1/ε: I + Ω rounds to the singular Ω, the sign of the last column is rounding noise"),
    ("SpecialOrthogonal(3).retract(qr)", "float64", "huge"): (
        2e16, "|Ω| ≳ 1/ε: I + Ω rounds to the singular Ω, the sign of the last column is rounding noise"),
    ("SpecialOrthogonal(4).exp", "float32", "huge"): (
        _INF, "NaN from torch.linalg.matrix_exp for |Ω| ≳ 1e10 (float32)"),
    ("SpecialOrthogonal(4).exp", "float64", "huge"): (
        _INF, "NaN from torch.linalg.matrix_exp for |Ω| ≳ 1e19 (float64)"),
    ("SpecialOrthogonal(3).log", "float64", "zero"): (
        1e3, "y = x R(0) differs from x by rounding: the log is itself of rounding size (about ε), so its "
             "relative error is set by the last bits of xᵀy (the BLAS summation order; 130 ε on CI)"),
    ("SpecialOrthogonal(4).log", "float32", "near pi"): (6e4, _SO4_PI),
    ("SpecialOrthogonal(4).log", "float64", "near pi"): (1e15, _SO4_PI),
    ("SpecialOrthogonal(4).log", "float64", "< 1e-15"): (4e14, _SO4_SMALL),
    ("SpecialOrthogonal(4).log", "float64", "tiny"): (4e12, _SO4_SMALL),
    ("SpecialOrthogonal(4).dist", "float64", "< 1e-15"): (2e14, _SO4_SMALL),
    ("SpecialOrthogonal(4).dist", "float64", "tiny"): (2e12, _SO4_SMALL),
    ("SpecialOrthogonal(4).angle", "float64", "< 1e-15"): (2e14, _SO4_SMALL),
    ("SpecialOrthogonal(4).angle", "float64", "tiny"): (2e12, _SO4_SMALL),
    ("SpecialOrthogonal(4).transport", "float32", "near pi"): (8e3, _SO4_PI),
    ("SpecialOrthogonal(4).transport", "float64", "near pi"): (1e15, _SO4_PI),
    ("so3.exp", "float32", "huge"): (_INF, f"NaN for |v| ≳ 1.8e19 ({_SQ32})"),
    ("so3.angle", "float32", "< 1e-15"): (
        2e7, "0 for θ ≲ 1e-19: |q_v|² underflows (so3.log, which avoids the square, is accurate)"),
    ("so3.from_quaternion", "float32", "extreme"): (
        _INF, f"NaN below |q| ≈ 1e-19, the identity above 1.8e19 ({_SQ32})"),
    ("Euclidean(3).dist", "float32", "extreme"): (
        _INF, f"inf above |y − x| ≈ 1.8e19, 0 below 1e-23 ({_SQ32})"),
}

_ATAN2 = "torch.atan2 rounds differently on its vectorised and scalar paths"
_MATMUL = "batched and unbatched matrix products round differently"
_MEXP = "torch.linalg.matrix_exp chooses its Padé degree per call: a single matrix differs from a batch"
_SO4_BATCH = f"{_MATMUL}; at small angles by the absolute error of the known issues"
_FUSED = ("the batch size picks the kernel: the fused one (manifolds/_fused.py) from 32768 elements, "
          "eager ops below; they round differently")

#: Ops whose answer depends on the batch size: (op, dtype) -> (largest difference, in eps and in
#: the op's error measure, between the whole sweep batch and slices of it; why). Every other op
#: must be bitwise batch-invariant.
BATCH_KNOWN: dict[tuple[str, str], tuple[float, str]] = {
    ("Sphere(2).log", "float32"): (3, _ATAN2),
    ("Sphere(2).log", "float64"): (3, _ATAN2),
    ("Sphere(2).dist", "float32"): (3, _ATAN2),
    ("Sphere(2).dist", "float64"): (3, _ATAN2),
    ("Sphere(15).proj", "float32"): (6, _FUSED),
    ("Sphere(15).proj", "float64"): (6, _FUSED),
    ("Sphere(15).exp", "float32"): (4, _FUSED),
    ("Sphere(15).exp", "float64"): (4, _FUSED),
    ("Sphere(15).retract(projective)", "float32"): (
        _INF, f"{_FUSED}; at |v| ≳ 1e19 the fused kernel returns NaN, the eager ops 0"),
    ("Sphere(15).retract(projective)", "float64"): (3, _FUSED),
    ("Sphere(15).log", "float32"): (6e5, f"{_FUSED}; near the antipode by the op's conditioning"),
    ("Sphere(15).log", "float64"): (8e13, f"{_FUSED}; near the antipode by the op's conditioning"),
    ("Sphere(15).dist", "float32"): (5, _FUSED),
    ("Sphere(15).dist", "float64"): (5, _FUSED),
    ("Sphere(15).transport", "float32"): (3e4, f"{_FUSED}; near the antipode by the op's conditioning"),
    ("Sphere(15).transport", "float64"): (2e13, f"{_FUSED}; near the antipode by the op's conditioning"),
    **{(f"SpecialOrthogonal(3).{op}", dt): (10, _MATMUL)
       for op in ("exp", "retract(cayley)", "retract(qr)", "retract(polar)", "log", "dist", "angle",
                  "transport", "proj_point") for dt in DTYPES},
    ("SpecialOrthogonal(4).exp", "float32"): (80, _MEXP),
    ("SpecialOrthogonal(4).exp", "float64"): (
        2e5, "torch.linalg.matrix_exp on a single matrix (or a batch of one) is inaccurate at some norms "
             "(2e-11 absolute at |W|₁ = 0.049), a batch of two is not"),
    **{(f"SpecialOrthogonal(4).{op}", dt): (10, _MATMUL)
       for op in ("retract(cayley)", "retract(qr)", "retract(polar)", "proj_point") for dt in DTYPES},
    ("SpecialOrthogonal(4).log", "float32"): (10, _MATMUL),
    ("SpecialOrthogonal(4).log", "float64"): (2e13, _SO4_BATCH),
    ("SpecialOrthogonal(4).dist", "float64"): (8e12, _SO4_BATCH),
    ("SpecialOrthogonal(4).angle", "float64"): (8e12, _SO4_BATCH),
    ("SpecialOrthogonal(4).transport", "float32"): (150, _MEXP),
    ("SpecialOrthogonal(4).transport", "float64"): (10, _MATMUL),
}


# ---------------------------------------------------------------------------------- running
def rounded(case: Case, dtype: torch.dtype) -> list[torch.Tensor]:
    return [torch.from_numpy(np.ascontiguousarray(a, dtype=np.float64)).to(dtype) for a in case.args]


def batch_inputs(cases: list[Case], dtype: torch.dtype) -> list[torch.Tensor]:
    k = len(cases[0].args)
    return [torch.stack([torch.from_numpy(np.ascontiguousarray(c.args[i], dtype=np.float64)) for c in cases])
            .to(dtype) for i in range(k)]


def _worse(e: float, prev: float | None) -> bool:
    """NaN is worse than any number."""
    if prev is None:
        return True
    if math.isnan(prev):
        return False
    return math.isnan(e) or e > prev


def _case_error(op: Op, case: Case, inputs: list[np.ndarray], out: np.ndarray, eps: float) -> float:
    flat = out.reshape(-1)
    if np.isnan(flat).any():
        return math.nan
    if np.isinf(flat).any():
        return math.inf
    big = max((float(np.abs(a).max()) for a in inputs if a.size), default=1.0)
    extra = 2 * max(0, int(math.log10(big)) + 1) if big > 0 else 0  # huge inputs: cancellations
    with mp.workdps(mp.mp.dps + extra):
        args = [_mpf(a) for a in inputs]
        r = _flat(op.ref(*args))
        o = [mp.mpf(float(t)) for t in flat]
        den = op.scale(args, r)

    def err(sign: int) -> float:
        num = max((abs(a - sign * b) for a, b in zip(o, r, strict=True)), default=mp.mpf(0))
        if num == 0:
            return 0.0
        if den == 0:
            return math.inf
        return float(num / den) / eps

    e = err(1)
    return min(e, err(-1)) if case.sign_free else e


def measure(op: Op, dtype_name: str, quick: bool, every: int = 1) -> Result:
    """Run ``op`` on its sweep (every ``every``-th case) and compare with the mp reference."""
    dtype = DTYPES[dtype_name]
    eps = EPS[dtype_name]
    cases = op.cases(quick)[::every]
    res = Result()
    keep = []
    for c in cases:
        r = [t.double().numpy() for t in rounded(c, dtype)]
        if op.exclude is not None and op.exclude(r, dtype_name):
            res.excluded += 1
            continue
        keep.append((c, r))
    if not keep:
        return res
    with torch.no_grad():
        out = op.call(*batch_inputs([c for c, _ in keep], dtype)).double().numpy()
    for i, (c, r) in enumerate(keep):
        e = _case_error(op, c, r, out[i], eps)
        res.count += 1
        if _worse(e, res.worst.get(c.region)):
            res.worst[c.region] = e
            res.where[c.region] = (c.label, [a.tolist() for a in r])
    return res


def batch_difference(op: Op, dtype_name: str, quick: bool = False) -> float:
    """Largest difference between the op on the whole sweep batch and on slices of sizes 1, 3,
    8 and 64 (and on unbatched inputs), in eps and in the op's error measure (the whole-batch
    answer standing in for the reference); 0 means bitwise equal."""
    dtype = DTYPES[dtype_name]
    cases = op.cases(quick)
    if op.exclude is not None:
        cases = [c for c in cases if not op.exclude([t.double().numpy() for t in rounded(c, dtype)],
                                                    dtype_name)]
    inputs = batch_inputs(cases, dtype)
    with torch.no_grad():
        whole = op.call(*inputs)
        parts = []
        for size in (1, 3, 8, 64):
            sl = [op.call(*(t[i : i + size] for t in inputs)) for i in range(0, len(cases), size)]
            parts.append(torch.cat(sl))
        parts.append(torch.stack([op.call(*(t[i] for t in inputs)) for i in range(min(len(cases), 16))]))
    worst = 0.0
    eps = EPS[dtype_name]
    for p in parts:
        w = whole[: p.shape[0]]
        same = (p == w) | (torch.isnan(p) & torch.isnan(w))
        rows = (~same).reshape(p.shape[0], -1).any(-1)
        for i in torch.nonzero(rows).flatten().tolist():
            a, b = w[i].double().numpy().reshape(-1), p[i].double().numpy().reshape(-1)
            if not (np.isfinite(a).all() and np.isfinite(b).all()):
                return math.inf
            den = op.scale([t[i].double().numpy() for t in inputs], a.tolist())  # float64 is enough here
            num = float(np.abs(a - b).max())
            worst = max(worst, math.inf if den == 0 else num / float(den) / eps)
    return worst


def split(op: str, dtype_name: str, res: Result) -> tuple[tuple[float, str], dict]:
    """(worst over the regions outside KNOWN, its region) and the KNOWN regions' results."""
    main, known = (0.0, ""), {}
    for region, e in res.worst.items():
        if (op, dtype_name, region) in KNOWN:
            known[region] = (e, *res.where[region])
        elif _worse(e, main[0]) and (e > 0 or math.isnan(e)):
            main = (e, region)
    return main, known


def run(ops: list[Op], quick: bool, every: int = 1, log=print) -> dict[str, dict[str, Result]]:
    results = {}
    for op in ops:
        t0 = time.perf_counter()
        results[op.name] = {dt: measure(op, dt, quick, every) for dt in DTYPES}
        parts = []
        for dt in DTYPES:
            (e, region), _ = split(op.name, dt, results[op.name][dt])
            parts.append(f"{dt} {_show(e)} ({region})")
        log(f"{op.name:44s} {'; '.join(parts)}  [{time.perf_counter() - t0:.1f}s]")
    return results


def _show(e: float) -> str:
    if math.isnan(e):
        return "NaN"
    if math.isinf(e):
        return "inf"
    if e == 0:
        return "0"
    return f"{e:.2g}" if e < 1e3 else f"{e:.1e}"


# ---------------------------------------------------------------------------------- tables
def _rst(text: str) -> str:
    """Escape the bars of |v| (reST substitution references)."""
    return text.replace("|", "\\|")


def _list_table(title: str, header: list[str], rows: list[list[str]], widths: str | None = None) -> str:
    rows = [[_rst(c) for c in row] for row in rows]
    lines = [f".. list-table:: {_rst(title)}", "   :header-rows: 1"]
    if widths:
        lines.append(f"   :widths: {widths}")
    lines.append("")
    for row in [header, *rows]:
        lines.append(f"   * - {row[0]}")
        lines.extend(f"     - {c}" for c in row[1:])
    return "\n".join(lines) + "\n"


def render(ops: list[Op], results: dict[str, dict[str, Result]], batch: dict[tuple[str, str], float]) -> str:
    rows, known_rows = [], []
    for op in ops:
        res = results[op.name]
        cells = [f"``{op.name}``", op.measure]
        where = []
        for k, dt in enumerate(DTYPES):
            (e, region), known = split(op.name, dt, res[dt])
            cells += [_show(e), _show(BOUNDS.get(op.name, (math.nan, math.nan))[k])]
            if region:
                where.append(f"{dt[5:]}: {region} ({res[dt].where[region][0]})")
            for reg, (ke, label, _) in known.items():
                bound, note = KNOWN[(op.name, dt, reg)]
                known_rows.append([f"``{op.name}``", dt, reg, _show(ke), _show(bound), label, note])
        cells.append("; ".join(where))
        rows.append(cells)
    head = ["op", "error measure", "f32 worst", "f32 bound", "f64 worst", "f64 bound", "worst at"]
    out = [
        ".. This file is generated by benchmarks/accuracy_atlas.py; do not edit it by hand.",
        "",
        _list_table("Worst error over the sweep, in eps of the dtype (f32: 1.19e-7, f64: 2.22e-16)", head,
                    rows, "22 14 7 7 7 7 36"),
    ]
    if known_rows:
        out += ["", _list_table("Known issues: regions kept out of the bounds above (bound inf: NaN or inf "
                                "outputs occur)", ["op", "dtype", "region", "worst", "bound", "worst at",
                                                   "what goes wrong"], known_rows, "18 7 9 7 7 17 35")]
    brows = []
    for op in ops:
        cells = [f"``{op.name}``"]
        notes = []
        for dt in DTYPES:
            d = batch.get((op.name, dt))
            cells.append("not measured" if d is None else ("bitwise" if d == 0 else f"{_show(d)} eps"))
            note = BATCH_KNOWN.get((op.name, dt), (0, ""))[1]
            if d and note and note not in notes:
                notes.append(note)
        brows.append(cells + ["; ".join(notes)])
    out += ["", _list_table("Batch-size dependence: largest difference of the whole sweep batch from slices "
                            "of 1, 3, 8, 64 and unbatched calls, in the op's error measure",
                            ["op", "float32", "float64", "why"], brows, "28 10 10 52")]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="the small sample of the default tests; prints only")
    p.add_argument("--ops", default="", help="regular expression: only the ops whose name matches")
    p.add_argument("--write", default=None, help=f"table file to write (default for a full run: {OUTPUT})")
    p.add_argument("--no-write", action="store_true", help="print only")
    p.add_argument("--json", default=None, help="also dump the raw results (worst per region, inputs) here")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    ops = [op for op in all_ops() if re.search(a.ops, op.name)]
    t0 = time.perf_counter()
    results = run(ops, a.quick)
    batch = {(op.name, dt): batch_difference(op, dt) for op in ops for dt in DTYPES}
    text = render(ops, results, batch)
    if a.json:
        import json

        raw = {op: {dt: {"worst": r.worst, "where": r.where, "count": r.count, "excluded": r.excluded}
                    for dt, r in per.items()} for op, per in results.items()}
        raw["batch"] = {f"{k[0]}|{k[1]}": v for k, v in batch.items()}
        with open(a.json, "w", encoding="utf-8") as f:
            json.dump(raw, f, indent=1, default=str)
    print()
    print(text)
    target = a.write or (None if (a.quick or a.ops) else OUTPUT)
    if target and not a.no_write:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "w", encoding="utf-8") as f:
            f.write(text)
        print(f"wrote {target}")
    print(f"{len(ops)} ops in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
