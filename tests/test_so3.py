"""manifres.so3: rows B1-B12, B15, B16, B21-B23 of HOSTILE_INPUTS.md, references, gradchecks.

Rows about the manifold (B13, B14, B17-B20) are in tests/manifolds/test_son.py.
"""

import math

import mpmath
import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

import manifres
from manifres import so3
from manifres.errors import DTypeError, ManifoldError, ShapeError
from manifres.testing import tol

EPS = {torch.float32: torch.finfo(torch.float32).eps, torch.float64: torch.finfo(torch.float64).eps}
AXIS = torch.tensor([0.3, -0.5, 0.8], dtype=torch.float64) / math.sqrt(0.98)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """3x3 batches are tiny: one thread avoids OpenMP overhead on a loaded 2-core machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def mp_rodrigues(v):
    """Exp(v) in 40-digit arithmetic (v: float64 array of 3)."""
    mpmath.mp.dps = 40
    x, y, z = (mpmath.mpf(float(a)) for a in v)
    t = mpmath.sqrt(x * x + y * y + z * z)
    s = mpmath.sin(t) / t if t != 0 else mpmath.mpf(1)
    c = (1 - mpmath.cos(t)) / (t * t) if t != 0 else mpmath.mpf(1) / 2
    W = mpmath.matrix([[0, -z, y], [z, 0, -x], [-y, x, 0]])
    R = mpmath.eye(3) + s * W + c * W * W
    return np.array([[float(R[i, j]) for j in range(3)] for i in range(3)])


def orth(R):
    E = R.mT @ R - torch.eye(3, dtype=R.dtype)
    return float(E.abs().max())


def rot(theta, axis=AXIS, dtype=torch.float64):
    """Rotation by theta about axis, built in float64 (Rodrigues in mpmath), then cast."""
    return torch.tensor(mp_rodrigues((theta * axis).numpy())).to(dtype)


def tangent_fd(f, R0, h=1e-6):
    """Central differences of f(R0 Exp(h e_i)) in float64, shape (3, *f.shape)."""
    out = []
    for i in range(3):
        e = torch.zeros(3, dtype=torch.float64)
        e[i] = h
        out.append((f(R0 @ so3.exp(e)) - f(R0 @ so3.exp(-e))) / (2 * h))
    return torch.stack(out)


# ----------------------------------------------------------------------------- B1
def test_b1_exp_of_zero_is_identity_with_hat_gradient(dtype):
    assert torch.equal(so3.exp(torch.zeros(3, dtype=dtype)), torch.eye(3, dtype=dtype))
    assert torch.equal(so3.exp(torch.zeros(5, 3, dtype=dtype)), torch.eye(3, dtype=dtype).expand(5, 3, 3))
    W = torch.randn(3, 3, dtype=dtype, generator=torch.Generator().manual_seed(0))
    v = torch.zeros(3, dtype=dtype, requires_grad=True)
    (W * so3.exp(v)).sum().backward()
    want = torch.stack([W[2, 1] - W[1, 2], W[0, 2] - W[2, 0], W[1, 0] - W[0, 1]])
    assert torch.allclose(v.grad, want, atol=tol(dtype, 1e-6, 1e-14), rtol=0)


# ----------------------------------------------------------------------------- B2, B3
@pytest.mark.parametrize("norm", [1e-20, 1e-8, 1e-6, 1e-3])
def test_b2_exp_small_angles(dtype, norm):
    v = (norm * AXIS).to(dtype).requires_grad_(True)
    R = so3.exp(v)
    ref = torch.tensor(mp_rodrigues(v.detach().double().numpy()))
    assert orth(R.detach().double()) <= tol(dtype, 1e-6, 1e-14)
    assert (R.detach().double() - ref).abs().max() <= tol(dtype, 2e-7, 4e-16)
    R.sum().backward()
    assert torch.isfinite(v.grad).all()


@pytest.mark.parametrize("norm", [math.pi, 2 * math.pi, 3 * math.pi, 1e4])
def test_b3_exp_large_angles(dtype, norm):
    v = (norm * AXIS).to(dtype)
    R = so3.exp(v)
    assert orth(R.double()) <= tol(dtype, 1e-6, 1e-14)
    assert abs(float(torch.linalg.det(R.double())) - 1) <= tol(dtype, 1e-6, 1e-14)
    ref = torch.tensor(mp_rodrigues(v.double().numpy()))
    assert (R.double() - ref).abs().max() <= 4 * EPS[dtype] * max(norm, 1.0)


# ----------------------------------------------------------------------------- B4
def test_b4_log_of_identity_and_its_gradient(dtype):
    I = torch.eye(3, dtype=dtype)
    assert torch.equal(so3.log(I), torch.zeros(3, dtype=dtype))
    w = torch.tensor([0.7, -0.2, 0.4], dtype=dtype)
    xi = torch.zeros(3, dtype=dtype, requires_grad=True)
    (w * so3.log(I @ so3.exp(xi))).sum().backward()
    assert torch.allclose(xi.grad, w, atol=tol(dtype, 1e-6, 1e-14), rtol=0)
    R = I.clone().requires_grad_(True)  # ambient gradient: finite, equal to hat(w) / 2
    (w * so3.log(R)).sum().backward()
    assert torch.allclose(R.grad, so3.hat(w) / 2, atol=tol(dtype, 1e-6, 1e-14))


# ----------------------------------------------------------------------------- B5, B6
@pytest.mark.parametrize("theta", [1e-8, 1e-4, 1e-3])
def test_b5_log_small_angles_relative_accuracy(dtype, theta):
    R = rot(theta, dtype=dtype)
    v = so3.log(R).double()
    assert abs(float(v.norm()) - theta) <= tol(dtype, 1e-5, 1e-12) * theta
    assert (v - theta * AXIS).norm() <= tol(dtype, 1e-5, 1e-12) * theta
    assert abs(float(so3.angle(R)) - theta) <= tol(dtype, 1e-5, 1e-12) * theta


@pytest.mark.parametrize("delta", [1e-3, 1e-5, 1e-7])
def test_b6_log_near_pi(dtype, delta):
    R = rot(math.pi - delta, dtype=dtype)
    v = so3.log(R).double()
    t = float(v.norm())
    assert abs(t - (math.pi - delta)) <= tol(dtype, 1e-6, 1e-12)
    assert (v / t - AXIS).norm() <= tol(dtype, 1e-6, 1e-12)
    assert abs(float(so3.angle(R)) - (math.pi - delta)) <= tol(dtype, 1e-6, 1e-12)


# ----------------------------------------------------------------------------- B7
def test_b7_log_at_exactly_pi(dtype):
    for k in range(3):
        d = -torch.ones(3, dtype=dtype)
        d[k] = 1.0
        want = torch.zeros(3, dtype=dtype)
        want[k] = math.pi
        assert torch.allclose(so3.log(torch.diag(d)), want, atol=2 * EPS[dtype] * math.pi, rtol=0)
    for axis in (AXIS, -AXIS, torch.tensor([1.0, 1.0, 0.0], dtype=torch.float64) / math.sqrt(2)):
        R = (2 * torch.outer(axis, axis) - torch.eye(3, dtype=torch.float64)).to(dtype)  # exactly pi
        v = so3.log(R)
        assert abs(float(v.norm()) - math.pi) <= tol(dtype, 1e-6, 1e-14)
        assert torch.allclose(so3.exp(v), R, atol=tol(dtype, 1e-6, 1e-14))
        assert torch.equal(v, so3.log(R.clone()))  # deterministic
        # convention: the component with the largest pivot 1 + 2 R_kk - tr R is positive
        k = int(torch.argmax(2 * torch.diagonal(R) - torch.diagonal(R).sum()))
        assert v[k] > 0
    assert not torch.isnan(so3.log(torch.diag(torch.tensor([1.0, -1.0, -1.0], dtype=dtype)))).any()


# ----------------------------------------------------------------------------- B8
@pytest.mark.parametrize("theta", [1e-6, 1.0, math.pi - 1e-2, math.pi - 1e-4, math.pi - 1e-6])
def test_b8_log_tangent_gradient_matches_fd(dtype, theta):
    R0 = rot(theta)
    w = torch.tensor([0.7, -0.2, 0.4], dtype=torch.float64)
    xi = torch.zeros(3, dtype=dtype, requires_grad=True)
    (w.to(dtype) * so3.log(R0.to(dtype) @ so3.exp(xi))).sum().backward()
    assert torch.isfinite(xi.grad).all()
    ref_fn = lambda R: torch.tensor(Rotation.from_matrix(R.numpy()).as_rotvec()) @ w  # noqa: E731
    h = min(1e-6, (math.pi - theta) / 50)
    fd = tangent_fd(ref_fn, R0, h)
    assert (xi.grad.double() - fd).norm() <= tol(dtype, 1e-3, 1e-7) * fd.norm()


# ----------------------------------------------------------------------------- B9
def _nearest_rotation(M):
    U, _, Vt = np.linalg.svd(M)
    D = np.diag([1.0, 1.0, np.linalg.det(U @ Vt)])
    return U @ D @ Vt


@pytest.mark.parametrize("kind", ["scaled", "noisy"])
def test_b9_non_orthogonal_input(dtype, kind):
    R = rot(1.0)
    noise = torch.randn(3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    M = (1.001 * R if kind == "scaled" else R + 1e-3 * noise).to(dtype)
    with pytest.raises(ManifoldError, match=r"\|\|R\^T R - I\|\|_F = "):
        so3.log(M, validate=True)
    with manifres.validation(), pytest.raises(ManifoldError):
        so3.angle(M)
    with pytest.raises(ManifoldError, match="not on the manifold"):
        manifres.SpecialOrthogonal(3, validate=True).log(torch.eye(3, dtype=dtype), M)
    Rn = _nearest_rotation(M.double().numpy())
    ref = torch.tensor(Rotation.from_matrix(Rn).as_rotvec())
    v = so3.log(M).double()
    assert (v - ref).abs().max() <= tol(dtype, 1e-6, 1e-12)
    # one answer for one input: angle, quaternion and log agree
    assert abs(float(so3.angle(M)) - float(ref.norm())) <= tol(dtype, 1e-6, 1e-12)
    q = so3.to_quaternion(M).double()
    assert (so3.from_quaternion(q) - torch.tensor(Rn)).abs().max() <= tol(dtype, 1e-6, 1e-12)


# ----------------------------------------------------------------------------- B10
def test_b10_trace_out_of_range_from_rounding(dtype):
    for M in (torch.eye(3, dtype=dtype) * (1 + 1e-7),
              torch.diag(torch.tensor([1.0, -1.0, -1.0], dtype=dtype)) * (1 + 1e-7),
              torch.eye(3, dtype=dtype) * (1 + EPS[dtype])):
        M = M.clone().requires_grad_(True)
        v = so3.log(M)
        assert torch.isfinite(v).all()
        (v.sum() + so3.angle(M) + so3.to_quaternion(M).sum()).backward()
        assert torch.isfinite(M.grad).all()
    assert abs(float(so3.angle(torch.diag(torch.tensor([1.0, -1.0, -1.0], dtype=dtype)) * 1.0000001))
               - math.pi) <= tol(dtype, 1e-6, 1e-12)


# ----------------------------------------------------------------------------- B11, B12
def test_b11_log_exp_round_trip(dtype):
    g = torch.Generator().manual_seed(3)
    u = torch.randn(2000, 3, dtype=torch.float64, generator=g)
    u = u / u.norm(dim=-1, keepdim=True)
    t = torch.cat([torch.logspace(-12, 0, 500, dtype=torch.float64),
                   torch.linspace(1, math.pi - 1e-3, 1500, dtype=torch.float64)])
    v = (t[:, None] * u).to(dtype)
    err = (so3.log(so3.exp(v)) - v).abs().max()
    assert err <= tol(dtype, 1e-6, 1e-12)


@pytest.mark.parametrize("norm", [4.0, 2 * math.pi - 1e-3, 3 * math.pi - 0.5])
def test_b12_log_returns_the_shortest_vector(dtype, norm):
    v = (norm * AXIS).to(dtype)
    out = so3.log(so3.exp(v)).double()
    k = round(norm / (2 * math.pi))
    want = (norm - 2 * math.pi * k) * AXIS
    assert float(out.norm()) <= math.pi
    assert (out - want).abs().max() <= tol(dtype, 1e-6, 1e-12) * max(1.0, norm / 4)


# ----------------------------------------------------------------------------- B15, B16
def test_b15_quaternion_double_cover(dtype):
    g = torch.Generator().manual_seed(4)
    q = torch.randn(500, 4, dtype=torch.float64, generator=g)
    q = (q / q.norm(dim=-1, keepdim=True)).to(dtype)
    R = so3.from_quaternion(q)
    assert torch.equal(R, so3.from_quaternion(-q))
    v = so3.log(R)
    assert (v.norm(dim=-1) <= math.pi + 4 * EPS[dtype]).all()
    qd = q.double().numpy()
    ref = Rotation.from_quat(np.concatenate([qd[:, 1:], qd[:, :1]], 1))  # scipy: scalar last
    assert (v.double() - torch.tensor(ref.as_rotvec())).abs().max() <= tol(dtype, 2e-6, 1e-12)
    canon = torch.where(q[:, :1] < 0, -q, q)
    assert torch.allclose(so3.to_quaternion(R), canon, atol=tol(dtype, 1e-6, 1e-12))
    assert (so3.to_quaternion(R)[:, 0] >= 0).all()


@pytest.mark.parametrize("scale", [2.0, 1e-3])
def test_b16_unnormalised_quaternion(dtype, scale):
    q = torch.tensor([0.5, -0.1, 0.7, 0.3], dtype=torch.float64)
    q = q / q.norm()
    R = so3.from_quaternion((scale * q).to(dtype))
    assert torch.allclose(R.double(), so3.from_quaternion(q), atol=tol(dtype, 1e-6, 1e-12))
    assert orth(R.double()) <= tol(dtype, 1e-6, 1e-12)
    assert torch.isnan(so3.from_quaternion(torch.zeros(4, dtype=dtype))).all()
    with pytest.raises(ManifoldError, match="zero"):
        so3.from_quaternion(torch.zeros(2, 4, dtype=dtype), validate=True)


# ----------------------------------------------------------------------------- B21
def test_b21_hat_vee(dtype):
    g = torch.Generator().manual_seed(5)
    v = torch.randn(100, 3, dtype=dtype, generator=g) * torch.logspace(-30, 30, 100, dtype=dtype)[:, None]
    v = torch.where(torch.isfinite(v), v, torch.zeros_like(v))
    assert torch.equal(so3.vee(so3.hat(v)), v)
    u = torch.randn(100, 3, dtype=dtype, generator=g)
    w = v[40:60]  # moderate magnitudes
    diff = (so3.hat(w) @ u[40:60, :, None])[..., 0] - torch.linalg.cross(w, u[40:60])
    assert (diff.norm(dim=-1) <= 4 * EPS[dtype] * w.norm(dim=-1) * u[40:60].norm(dim=-1)).all()
    A = torch.randn(3, 3, dtype=dtype, generator=g)
    assert torch.allclose(so3.vee(A), so3.vee(0.5 * (A - A.mT)))  # the skew part
    with pytest.raises(ManifoldError, match="not skew-symmetric"):
        so3.vee(A, validate=True)
    with manifres.validation(), pytest.raises(ManifoldError):
        so3.vee(A)
    W = so3.hat(v[40:60])
    so3.vee(W + 0.1 * tol(dtype, 2e-5, 1e-12) * torch.eye(3, dtype=dtype), validate=True)  # within


# ----------------------------------------------------------------------------- B22, B23
def test_b22_shapes(dtype):
    g = torch.Generator().manual_seed(6)
    for batch in [(), (5,), (2, 3), (0,)]:
        v = torch.randn(*batch, 3, dtype=dtype, generator=g)
        R = so3.exp(v)
        assert R.shape == (*batch, 3, 3)
        assert so3.hat(v).shape == (*batch, 3, 3)
        assert so3.vee(R).shape == (*batch, 3)
        assert so3.log(R).shape == (*batch, 3)
        assert so3.angle(R).shape == batch
        q = so3.to_quaternion(R)
        assert q.shape == (*batch, 4)
        assert so3.from_quaternion(q).shape == (*batch, 3, 3)
        looped = [so3.log(R.reshape(-1, 3, 3)[i]) for i in range(R.reshape(-1, 3, 3).shape[0])]
        if looped:
            assert torch.allclose(torch.stack(looped), so3.log(R).reshape(-1, 3), atol=2 * EPS[dtype])
    bad = [(so3.hat, torch.zeros(4, dtype=dtype), r"\(\.\.\., 3\), got \(4,\)"),
           (so3.exp, torch.zeros(2, 2, dtype=dtype), r"\(\.\.\., 3\)"),
           (so3.log, torch.zeros(3, 4, dtype=dtype), r"\(\.\.\., 3, 3\), got \(3, 4\)"),
           (so3.vee, torch.zeros(3, dtype=dtype), r"\(\.\.\., 3, 3\)"),
           (so3.angle, torch.zeros(4, 3, dtype=dtype), r"\(\.\.\., 3, 3\)"),
           (so3.to_quaternion, torch.zeros(2, 2, dtype=dtype), r"\(\.\.\., 3, 3\)"),
           (so3.from_quaternion, torch.zeros(3, dtype=dtype), r"\(\.\.\., 4\)")]
    for fn, x, msg in bad:
        with pytest.raises(ShapeError, match=msg):
            fn(x)
    assert issubclass(ShapeError, ValueError)


def test_b23_dtypes():
    for fn, shape in [(so3.hat, (3,)), (so3.exp, (3,)), (so3.log, (3, 3)), (so3.vee, (3, 3)),
                      (so3.angle, (3, 3)), (so3.to_quaternion, (3, 3)), (so3.from_quaternion, (4,))]:
        with pytest.raises(DTypeError, match="int64"):
            fn(torch.zeros(shape, dtype=torch.int64))
        for half in (torch.float16, torch.bfloat16):
            with pytest.raises(DTypeError, match="float32 and torch.float64"):
                fn(torch.zeros(shape, dtype=half))
    assert issubclass(DTypeError, TypeError)


# ----------------------------------------------------------------------------- references
def test_matches_scipy_rotation(dtype):
    g = torch.Generator().manual_seed(7)
    rv = torch.randn(1000, 3, dtype=torch.float64, generator=g) * 1.2
    rv = rv.to(dtype).double()
    ref = Rotation.from_rotvec(rv.numpy())
    R = so3.exp(rv.to(dtype))
    assert (R.double() - torch.tensor(ref.as_matrix())).abs().max() <= tol(dtype, 1e-6, 1e-14)
    Rd = torch.tensor(ref.as_matrix()).to(dtype)
    assert (so3.log(Rd).double() - torch.tensor(ref.as_rotvec())).abs().max() <= tol(dtype, 2e-6, 1e-13)
    qs = ref.as_quat()
    qs = np.concatenate([qs[:, 3:], qs[:, :3]], 1)
    qs = qs * np.sign(qs[:, :1])
    assert (so3.to_quaternion(Rd).double() - torch.tensor(qs)).abs().max() <= tol(dtype, 1e-6, 1e-14)
    assert (so3.angle(Rd).double() - torch.tensor(ref.magnitude())).abs().max() <= tol(dtype, 2e-6, 1e-13)


def test_matches_scipy_expm_logm():
    import scipy.linalg as sl

    g = torch.Generator().manual_seed(8)
    rv = torch.randn(20, 3, dtype=torch.float64, generator=g)
    for v in rv:
        W = so3.hat(v)
        assert np.abs(so3.exp(v).numpy() - sl.expm(W.numpy())).max() <= 1e-13
        R = so3.exp(v)
        L = sl.logm(R.numpy()).real
        assert np.abs(so3.hat(so3.log(R)).numpy() - L).max() <= 1e-12


# ----------------------------------------------------------------------------- D4, D5
def test_d4_finite_gradients_at_singular_points(dtype):
    pts = [torch.eye(3, dtype=dtype), torch.diag(torch.tensor([1.0, -1.0, -1.0], dtype=dtype)),
           rot(math.pi, dtype=dtype), rot(math.pi - 1e-7, dtype=dtype), rot(1e-9, dtype=dtype)]
    for R0 in pts:
        for f in (so3.log, so3.angle, so3.to_quaternion):
            R = R0.clone().requires_grad_(True)
            f(R).sum().backward()
            assert torch.isfinite(R.grad).all(), f
    for v0 in (torch.zeros(3, dtype=dtype), math.pi * AXIS.to(dtype)):
        v = v0.clone().requires_grad_(True)
        so3.exp(v).sum().backward()
        assert torch.isfinite(v.grad).all()
    q = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=dtype, requires_grad=True)
    so3.from_quaternion(q).sum().backward()
    assert torch.isfinite(q.grad).all()


@pytest.mark.parametrize("fn", ["exp", "log", "angle", "to_quaternion", "from_quaternion", "hat", "vee"])
def test_d5_gradcheck_and_gradgradcheck(fn):
    g = torch.Generator().manual_seed(9)
    v = torch.randn(2, 3, dtype=torch.float64, generator=g)
    v[1] *= 2.8 / v[1].norm()  # one point near (not at) pi
    R = so3.exp(v)
    inputs = {"exp": (so3.exp, v), "log": (so3.log, R), "angle": (so3.angle, R),
              "to_quaternion": (so3.to_quaternion, R),
              "from_quaternion": (so3.from_quaternion, torch.randn(2, 4, dtype=torch.float64, generator=g)),
              "hat": (so3.hat, v), "vee": (so3.vee, R)}
    f, x = inputs[fn]
    x = x.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(f, (x,))
    assert torch.autograd.gradgradcheck(f, (x,))


def test_d7_bitwise_reproducible(dtype):
    v = torch.randn(1000, 3, dtype=dtype, generator=torch.Generator().manual_seed(10)) * 2
    R = so3.exp(v)
    assert torch.equal(so3.exp(v), R)
    assert torch.equal(so3.log(R), so3.log(R))


@pytest.mark.cuda
def test_d7_cpu_matches_cuda(dtype):
    v = torch.randn(1000, 3, dtype=dtype, generator=torch.Generator().manual_seed(11)) * 2
    R = so3.exp(v.cuda())
    assert R.device.type == "cuda"
    assert torch.allclose(R.cpu(), so3.exp(v), atol=tol(dtype, 1e-6, 1e-12))
    assert torch.allclose(so3.log(R).cpu(), so3.log(so3.exp(v)), atol=tol(dtype, 2e-6, 1e-12))
    q = so3.to_quaternion(so3.exp(v))
    assert torch.allclose(so3.to_quaternion(R).cpu(), q, atol=tol(dtype, 1e-6, 1e-12))
