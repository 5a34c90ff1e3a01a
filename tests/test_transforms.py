"""Every public manifold op, ``so3`` function and layer through the ``torch.func`` transforms
(``grad``, ``vjp``, ``jvp``, ``jacrev``, ``jacfwd``, ``vmap``, ``hessian``) and forward-mode AD
(``torch.autograd.forward_ad``), compared with eager autograd.

Every case is a function of tensors with a leading batch axis whose samples are independent,
so the eager reference Jacobian of all samples at once takes one backward pass per output
component of one sample (and the reference Hessian one double-backward pass per input
component). Tolerances: 1e-12 in float64, 1e-6 in float32 (relative and absolute).

The small cases (a batch of 3) run by default; the large cases (>= 2**16 input elements) are
marked ``slow``. Known failures of code other engineers are fixing live in ``KNOWN_FAILURES``
(strict xfails: a fix makes the test fail until its entry is removed).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch
from torch import nn
from torch.autograd import forward_ad
from torch.func import grad, hessian, jacfwd, jacrev, jvp, vjp, vmap

import manifres
from manifres import so3
from manifres.graph import LaplacianResidual
from manifres.manifolds import Euclidean, SpecialOrthogonal, Sphere
from manifres.nn import AmbientMLPField, Residual, TangentResidual, TangentResidualStack

TOL = {torch.float64: 1e-12, torch.float32: 1e-6}
SMALL_BATCH = 3
LARGE_ELEMENTS = 2**16
SMALL_TRANSFORMS = ("grad", "vjp", "jvp", "forward_ad", "jacrev", "jacfwd", "vmap", "hessian")
LARGE_TRANSFORMS = SMALL_TRANSFORMS

# ------------------------------------------------------------------------ known failures
# (case id, transform, size, dtype) -> reason; size is "small", "large" or "*" (both).
# Remove an entry when its fix merges: the xfails are strict.
_FUSED = (
    "manifolds/_fused.py: the old-style autograd.Function _Combine (used from 2**15 elements "
    "on) has no jvp/vmap rule"
)
_SON_DTYPE = (
    "torch 2.13: under forward AD a 0-dim float32 tensor combined with a Python float gets a "
    "float64 tangent (wrapped-number type promotion), and per-sample values under vmap are "
    "0-dim: son.py/so3.py scalar formulas then leak float64 into jacfwd/hessian in float32"
)
_SPARSE = (
    "graph/_sparse.py: the CSR sparse matmul (old-style autograd.Function, sparse CSR "
    "tensors) supports none of the torch.func transforms nor forward AD; vmap alone works"
)
_ALL = SMALL_TRANSFORMS
_VMAPPED = ("vmap", "jacrev", "jacfwd", "hessian")

KNOWN_FAILURES: dict[tuple[str, str, str], str] = {}


def _known(cases, transforms, reason: str, size: str = "*", dtypes=("float64", "float32")) -> None:
    for c in [cases] if isinstance(cases, str) else cases:
        for t in transforms:
            for d in dtypes:
                KNOWN_FAILURES[(c, t, size, d)] = reason


_known(
    ["SO(2).log", "SO(2).transport", "SO(3).log", "SO(3).transport"]
    + ["so3.angle", "so3.log", "so3.to_quaternion"],
    ("jacfwd", "hessian"),
    _SON_DTYPE,
    dtypes=("float32",),
)
_known(
    ["SO(2).dist", "SO(2).proj_point", "SO(3).dist", "SO(4).dist", "so3.from_quaternion"],
    ("jacfwd",),
    _SON_DTYPE,
    dtypes=("float32",),
)
_known(
    "graph.LaplacianResidual", ("grad", "vjp", "jvp", "forward_ad", "jacrev", "jacfwd", "hessian"), _SPARSE
)


# ------------------------------------------------------------------------------- cases
@dataclass(frozen=True)
class Case:
    id: str
    fn: Callable  # of tensors with any leading batch shape (also none: one sample)
    make: Callable  # (batch, dtype, generator) -> tuple of inputs with a leading batch axis
    numel: int  # input elements of one sample (of the first input), for the large batch


def _randn(shape, dtype, g):
    return torch.randn(shape, dtype=torch.float64, generator=g).to(dtype)


def _point(M, b, dtype, g):
    return M.random(b, dtype=torch.float64, generator=g).to(dtype)


def _tangent(M, x, g, scale=0.4):
    return (scale * M.random_tangent(x.double(), generator=g)).to(x.dtype)


def _near(M, x, g, scale=0.4):
    """A point a short geodesic away from ``x`` (far from the cut locus)."""
    xd = x.double()
    return M.exp(xd, scale * M.random_tangent(xd, generator=g) / 2).to(x.dtype)


def _manifold_cases(M, label: str) -> list[Case]:
    n = math.prod(M.point_shape)
    shape = M.point_shape

    def mk(kind):
        def make(b, dtype, g):
            x = _point(M, b, dtype, g)
            if kind == "xu":
                return x, _randn((b, *shape), dtype, g)
            if kind == "y":
                return (x + 0.05 * _randn((b, *shape), dtype, g),)
            if kind == "xv":
                return x, _tangent(M, x, g)
            if kind == "xy":
                return x, _near(M, x, g)
            if kind == "xyv":
                return x, _near(M, x, g), _tangent(M, x, g)
            if kind == "xuv":
                return x, _tangent(M, x, g), _tangent(M, x, g)
            raise AssertionError(kind)

        return make

    cases = [
        Case(f"{label}.proj", M.proj, mk("xu"), n),
        Case(f"{label}.proj_point", M.proj_point, mk("y"), n),
        Case(f"{label}.exp", M.exp, mk("xv"), n),
        Case(f"{label}.log", M.log, mk("xy"), n),
        Case(f"{label}.dist", M.dist, mk("xy"), n),
        Case(f"{label}.transport", M.transport, mk("xyv"), n),
        Case(f"{label}.inner", M.inner, mk("xuv"), n),
        Case(f"{label}.norm", M.norm, mk("xv"), n),
        Case(f"{label}.egrad2rgrad", M.egrad2rgrad, mk("xu"), n),
    ]
    for r in M.retractions:
        cases.append(Case(f"{label}.retract[{r}]", (lambda x, v, r=r: M.retract(x, v, r)), mk("xv"), n))
    return cases


def _so3_cases() -> list[Case]:
    R = SpecialOrthogonal(3)

    def vec(b, dtype, g):
        return (_randn((b, 3), dtype, g),)

    def mat(b, dtype, g):
        return (_randn((b, 3, 3), dtype, g),)

    def rot(b, dtype, g):
        return (_point(R, b, dtype, g),)

    def quat(b, dtype, g):
        q = _randn((b, 4), dtype, g)
        q[:, 0] = q[:, 0].abs() + 0.5  # away from w = 0 (the sign flip of the canonical form)
        return (q,)

    makes = {
        "hat": vec,
        "vee": mat,
        "exp": vec,
        "log": rot,
        "angle": rot,
        "to_quaternion": rot,
        "from_quaternion": quat,
    }
    assert set(makes) == set(so3.__all__), "a new so3 function needs a case here"
    sizes = {"hat": 3, "exp": 3, "from_quaternion": 4}
    return [Case(f"so3.{name}", getattr(so3, name), makes[name], sizes.get(name, 9)) for name in so3.__all__]


def _frozen(module: nn.Module) -> dict:
    """A float64 and a float32 copy of ``module`` with frozen parameters (only the input is
    differentiated)."""
    import copy

    copies = {}
    for dtype in (torch.float64, torch.float32):
        m = copy.deepcopy(module).to(dtype)
        for p in m.parameters():
            p.requires_grad_(False)
        copies[dtype] = m
    return copies


def _layer_fn(copies: dict) -> Callable:
    def fn(x):
        return copies[x.dtype](x)

    return fn


def _layer_cases() -> list[Case]:
    torch.manual_seed(0)
    S = Sphere(2)
    cases = []

    def eucl(b, dtype, g):
        return (_randn((b, 3), dtype, g),)

    def sph(b, dtype, g):
        return (_point(S, b, dtype, g),)

    res = _frozen(Residual(nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 3)), step=0.5))
    cases.append(Case("nn.Residual", _layer_fn(res), eucl, 3))
    for method in ("euler", "rkmk2", "rkmk4", "cg2", "cf4"):
        layer = _frozen(TangentResidual(S, AmbientMLPField(S, hidden=4, depth=1), step=0.3, method=method))
        cases.append(Case(f"nn.TangentResidual[{method}]", _layer_fn(layer), sph, 3))
    for r in S.retractions:
        layer = _frozen(TangentResidual(S, AmbientMLPField(S, hidden=4, depth=1), step=0.3, retraction=r))
        cases.append(Case(f"nn.TangentResidual[euler-{r}]", _layer_fn(layer), sph, 3))
    stack = _frozen(
        TangentResidualStack(S, [AmbientMLPField(S, hidden=4, depth=1) for _ in range(2)], step=0.3)
    )
    cases.append(Case("nn.TangentResidualStack", _layer_fn(stack), sph, 3))

    ring = torch.tensor([[0, 1, 2, 3, 4, 1, 2, 3, 4, 0], [1, 2, 3, 4, 0, 0, 1, 2, 3, 4]])
    bound = LaplacianResidual(0.3).bind(ring)

    def lap(x):
        # one sample: the 5 node values of one feature channel (channels are independent)
        flat = x.reshape(-1, 5)
        return bound(flat.mT).mT.reshape(x.shape)

    cases.append(Case("graph.LaplacianResidual", lap, lambda b, dtype, g: (_randn((b, 5), dtype, g),), 5))
    return cases


CASES: list[Case] = [
    *_manifold_cases(Sphere(2), "Sphere(2)"),
    *_manifold_cases(Sphere(5), "Sphere(5)"),
    *[
        c
        for c in _manifold_cases(Sphere(5, cut_locus="nan"), "Sphere(5,nan)")
        if "log" in c.id or "transport" in c.id
    ],
    *[
        c
        for c in _manifold_cases(Sphere(5, cut_locus="deterministic"), "Sphere(5,deterministic)")
        if "log" in c.id or "transport" in c.id
    ],
    *_manifold_cases(SpecialOrthogonal(2), "SO(2)"),
    *_manifold_cases(SpecialOrthogonal(3), "SO(3)"),
    *_manifold_cases(SpecialOrthogonal(4), "SO(4)"),
    *_manifold_cases(Euclidean(3), "Euclidean(3)"),
    *_so3_cases(),
    *_layer_cases(),
]
CASE_BY_ID = {c.id: c for c in CASES}
assert len(CASE_BY_ID) == len(CASES)


def _params(transforms, size, marks=()):
    out = []
    for c in CASES:
        for t in transforms:
            for dtype in (torch.float64, torch.float32):
                d = str(dtype)[6:]
                reason = KNOWN_FAILURES.get((c.id, t, size, d)) or KNOWN_FAILURES.get((c.id, t, "*", d))
                m = list(marks)
                if reason:
                    m.append(pytest.mark.xfail(strict=True, reason=reason))
                out.append(pytest.param(c.id, t, dtype, id=f"{c.id}-{t}-{str(dtype)[6:]}", marks=m))
    return out


# ------------------------------------------------------------------------ references
def _inputs(case: Case, batch: int, dtype, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return tuple(t.contiguous() for t in case.make(batch, dtype, g))


def _flat(ts, b):
    return torch.cat([t.reshape(b, -1) for t in ts], dim=-1)


def _ref_jacobian(fn, xs):
    """Per-sample Jacobians (B, K, N) of all samples at once (K outputs, N inputs per sample)."""
    xs = tuple(x.detach().requires_grad_(True) for x in xs)
    out = fn(*xs)
    b = out.shape[0]
    of = out.reshape(b, -1)
    rows = []
    for k in range(of.shape[1]):
        gs = torch.autograd.grad(of[:, k].sum(), xs, retain_graph=True, allow_unused=True)
        gs = [torch.zeros_like(x) if gk is None else gk for gk, x in zip(gs, xs, strict=True)]
        rows.append(_flat(gs, b))
    return out.detach(), torch.stack(rows, dim=1)


def _ref_hessian(fn, xs, w):
    """Per-sample Hessians (B, N, N) of ``sum(fn(x) * w)``."""
    xs = tuple(x.detach().requires_grad_(True) for x in xs)
    b = xs[0].shape[0]
    loss = (fn(*xs) * w).sum()
    gs = torch.autograd.grad(loss, xs, create_graph=True, allow_unused=True)
    gs = [torch.zeros_like(x) if gk is None else gk for gk, x in zip(gs, xs, strict=True)]
    gf = _flat(gs, b)
    if not gf.requires_grad:  # a linear function: no second derivative
        return torch.zeros(b, gf.shape[1], gf.shape[1], dtype=gf.dtype)
    rows = []
    for j in range(gf.shape[1]):
        hs = torch.autograd.grad(gf[:, j].sum(), xs, retain_graph=True, allow_unused=True)
        hs = [torch.zeros_like(x) if h is None else h for h, x in zip(hs, xs, strict=True)]
        rows.append(_flat(hs, b))
    return torch.stack(rows, dim=1)


def _close(actual, expected, dtype, what=""):
    tol = TOL[dtype]
    assert actual.shape == expected.shape, (what, actual.shape, expected.shape)
    torch.testing.assert_close(actual, expected, rtol=tol, atol=tol, msg=lambda m: f"{what}: {m}")


def _jac_from_func(jac, b, k):
    """A tuple (over inputs) of per-sample Jacobians (B, *out, *in_i) as (B, K, N)."""
    return torch.cat([j.reshape(b, k, -1) for j in jac], dim=-1)


def _grads(out, xs, **kw):
    gs = torch.autograd.grad(out, xs, allow_unused=True, **kw)
    return [torch.zeros_like(x) if gk is None else gk for gk, x in zip(gs, xs, strict=True)]


def _check(case_id: str, transform: str, dtype, batch: int):
    case = CASE_BY_ID[case_id]
    xs = _inputs(case, batch, dtype)
    fn = case.fn
    argnums = tuple(range(len(xs)))
    g = torch.Generator().manual_seed(1)
    out_ref, J = _ref_jacobian(fn, xs)
    k = J.shape[1]
    w = _randn(out_ref.shape, dtype, g)  # a cotangent
    ts = tuple(_randn(x.shape, dtype, g) for x in xs)  # tangents
    assert torch.isfinite(J).all(), "the reference Jacobian is not finite (a singular input?)"

    if transform == "grad":
        ref = _grads((fn(*[x.requires_grad_(True) for x in xs]) * w).sum(), xs)
        xs = tuple(x.detach() for x in xs)
        got = grad(lambda *a: (fn(*a) * w).sum(), argnums=argnums)(*xs)
        for i, (a, e) in enumerate(zip(got, ref, strict=True)):
            _close(a, e, dtype, f"grad wrt input {i}")
        # and the gradient is the cotangent through the Jacobian
        _close(_flat(got, batch), torch.einsum("bk,bkn->bn", w.reshape(batch, -1), J), dtype, "grad vs J")
    elif transform == "vjp":
        out, pullback = vjp(fn, *xs)
        _close(out, out_ref, dtype, "vjp primal")
        got = pullback(w)
        xr = tuple(x.detach().requires_grad_(True) for x in xs)
        ref = _grads(fn(*xr), xr, grad_outputs=w)
        for i, (a, e) in enumerate(zip(got, ref, strict=True)):
            _close(a, e, dtype, f"vjp wrt input {i}")
    elif transform in ("jvp", "forward_ad"):
        if transform == "jvp":
            out, tan = jvp(fn, xs, ts)
        else:
            with forward_ad.dual_level():
                res = fn(*[forward_ad.make_dual(x, t) for x, t in zip(xs, ts, strict=True)])
                out, tan = forward_ad.unpack_dual(res)
                assert tan is not None, "forward AD lost the tangent"
                out, tan = out.clone(), tan.clone()
        _close(out, out_ref, dtype, f"{transform} primal")
        ref = torch.einsum("bkn,bn->bk", J, _flat(ts, batch)).reshape(out_ref.shape)
        _close(tan, ref, dtype, f"{transform} tangent")
    elif transform in ("jacrev", "jacfwd"):
        jac = (jacrev if transform == "jacrev" else jacfwd)(fn, argnums=argnums)
        got = vmap(jac)(*xs)
        _close(_jac_from_func(got, batch, k), J, dtype, f"vmap({transform})")
    elif transform == "vmap":
        got = vmap(fn)(*xs)
        _close(got, out_ref, dtype, "vmap vs the batched call")
        if batch <= SMALL_BATCH:
            loop = torch.stack([fn(*[x[i] for x in xs]) for i in range(batch)])
            _close(got, loop, dtype, "vmap vs a loop over samples")
    elif transform == "hessian":
        H_ref = _ref_hessian(fn, xs, w)
        H = vmap(hessian(lambda *a: (fn(*a[:-1]) * a[-1]).sum(), argnums=argnums))(*xs, w)
        n = H_ref.shape[-1]
        sizes = [x[0].numel() for x in xs]
        blocks = [
            torch.cat([H[i][j].reshape(batch, sizes[i], sizes[j]) for j in argnums], -1) for i in argnums
        ]
        _close(torch.cat(blocks, 1).reshape(batch, n, n), H_ref, dtype, "vmap(hessian)")
    else:
        raise AssertionError(transform)


# ------------------------------------------------------------------------------ tests
@pytest.mark.parametrize(("case_id", "transform", "dtype"), _params(SMALL_TRANSFORMS, "small"))
def test_small(case_id, transform, dtype):
    _check(case_id, transform, dtype, SMALL_BATCH)


@pytest.mark.slow
@pytest.mark.parametrize(("case_id", "transform", "dtype"), _params(LARGE_TRANSFORMS, "large"))
def test_large(case_id, transform, dtype):
    case = CASE_BY_ID[case_id]
    batch = -(-LARGE_ELEMENTS // case.numel)
    _check(case_id, transform, dtype, batch)


def test_every_public_op_has_a_case():
    """The matrix covers every op of the manifold contract and every retraction name."""
    ops = {"proj", "proj_point", "exp", "log", "dist", "transport", "inner", "norm", "egrad2rgrad"}
    for M, label in [
        (Sphere(2), "Sphere(2)"),
        (SpecialOrthogonal(4), "SO(4)"),
        (Euclidean(3), "Euclidean(3)"),
    ]:
        names = {c.id.split(".", 1)[1] for c in CASES if c.id.startswith(label + ".")}
        assert ops | {f"retract[{r}]" for r in M.retractions} <= names
    assert {f"so3.{n}" for n in so3.__all__} <= set(CASE_BY_ID)
    assert manifres.__file__  # the package under test


def test_checker_catches_a_wrong_derivative():
    """The comparison is not vacuous: a forward rule that disagrees with the backward fails."""

    class Wrong(torch.autograd.Function):
        @staticmethod
        def forward(x):
            return x.sin()

        @staticmethod
        def setup_context(ctx, inputs, output):
            ctx.save_for_backward(inputs[0])

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * x.cos() * 1.001

        @staticmethod
        def jvp(ctx, t):
            return t * 1.0

        @staticmethod
        def vmap(info, in_dims, x):
            return Wrong.apply(x), in_dims[0]

    case = Case("wrong", Wrong.apply, lambda b, dtype, g: (_randn((b, 3), dtype, g),), 3)
    CASE_BY_ID["wrong"] = case
    try:
        with pytest.raises(AssertionError):
            _check("wrong", "jvp", torch.float64, SMALL_BATCH)
    finally:
        del CASE_BY_ID["wrong"]
