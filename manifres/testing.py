"""Assertions that users can reuse to test their own manifolds, fields and layers.

The **manifold contract** (:data:`CONTRACT`, run by :func:`check_manifold_contract`) is the
suite that every manifres manifold passes in float32 and float64: retraction registry, points
staying on the manifold (also over long chains), projection, exp/log round trips, distance,
parallel transport, Riemannian gradients, tangent bases, norms, Lie-group actions, batching,
broadcasting, empty batches, float64 ``gradcheck``/``gradgradcheck`` and named errors. Each
check is also a function of its own (``assert_proj``, ``assert_transport``, ...) taking
``(manifold, dtype, spec)``; :class:`ContractSpec` holds what the checks need to know about a
manifold (its injectivity radius, its singular sets, ...).

Tolerances are relative to ``max(1, |reference|)``: 256 eps of the dtype for identities
between maps (round trips, isometries, batched against looped calls), and ``1e-3`` (float32)
or ``1e-8`` (float64) for first derivatives checked by central differences.

Examples
--------
>>> import math, torch, manifres
>>> from manifres.testing import assert_on_manifold, check_manifold_contract
>>> S = manifres.Sphere(2)
>>> assert_on_manifold(S, S.random(10, dtype=torch.float64))
>>> check_manifold_contract(S, torch.float32, injectivity_radius=math.pi, checks=["exp_log"])
['exp_log']
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from .errors import DTypeError, ManifoldError, ShapeError, UnknownChoiceError
from .manifolds.base import Manifold

__all__ = [
    "TOL",
    "tol",
    "assert_on_manifold",
    "assert_tangent",
    "assert_finite_grad",
    "TRANSFORMS",
    "assert_transforms",
    "ContractSpec",
    "CONTRACT",
    "CONTRACT_OPS",
    "check_manifold_contract",
    "assert_retractions_listed",
    "assert_stays_on_manifold",
    "assert_long_chains",
    "assert_proj",
    "assert_exp_log",
    "assert_dist",
    "assert_transport",
    "assert_egrad2rgrad",
    "assert_tangent_basis",
    "assert_norm_inner",
    "assert_lie_action",
    "assert_batched",
    "assert_broadcasting",
    "assert_empty_batch",
    "assert_gradcheck",
    "assert_named_errors",
]

#: The torch transforms checked by :func:`assert_transforms`.
TRANSFORMS = ("grad", "vjp", "jvp", "jacrev", "jacfwd", "hessian", "vmap", "forward_ad")

#: Default absolute tolerances of the test-suite, per dtype.
TOL = {torch.float32: 1e-6, torch.float64: 1e-12}


def tol(dtype: torch.dtype, f32: float | None = None, f64: float | None = None) -> float:
    """Tolerance for ``dtype``: ``f32``/``f64`` when given, else :data:`TOL`."""
    if dtype == torch.float32:
        return TOL[dtype] if f32 is None else f32
    return TOL[torch.float64] if f64 is None else f64


def assert_on_manifold(manifold: Manifold, x: Tensor, atol: float | None = None) -> None:
    """Assert every point of ``x`` is finite and on ``manifold`` within ``atol``."""
    ok = manifold.is_point(x, atol=atol)
    if not bool(ok.all()):
        worst = float(manifold._point_residual(x).max())
        raise AssertionError(
            f"{int((~ok).sum())} of {ok.numel()} points are off {manifold!r} (worst residual {worst:.3e})"
        )


def assert_tangent(manifold: Manifold, x: Tensor, v: Tensor, atol: float | None = None) -> None:
    """Assert every ``v`` is finite and tangent at ``x`` within ``atol``."""
    ok = manifold.is_tangent(x, v, atol=atol)
    if not bool(ok.all()):
        worst = float(manifold._tangent_residual(x, v).max())
        raise AssertionError(f"{int((~ok).sum())} vectors are not tangent (worst {worst:.3e})")


def assert_finite_grad(*tensors: Tensor) -> None:
    """Assert that each tensor has a gradient and that it is finite."""
    for i, t in enumerate(tensors):
        if t.grad is None:
            raise AssertionError(f"input {i} has no gradient")
        if not bool(torch.isfinite(t.grad).all()):
            raise AssertionError(f"input {i} has a non-finite gradient: {t.grad}")


def _close(name: str, got: Tensor, ref: Tensor, tol_: float) -> None:
    got, ref = torch.as_tensor(got), torch.as_tensor(ref)
    if got.shape != ref.shape:
        raise AssertionError(f"{name}: shape {tuple(got.shape)} != eager {tuple(ref.shape)}")
    scale = float(ref.detach().abs().max()) if ref.numel() else 0.0
    err = float((got.detach() - ref.detach()).abs().max()) if ref.numel() else 0.0
    if not err <= tol_ * max(1.0, scale):  # NaN fails too
        raise AssertionError(
            f"{name}: max |torch.func - eager| = {err:.3e} > {tol_:.1e} * max(1, {scale:.3e})"
        )


def assert_transforms(
    fn: Callable[..., Tensor],
    *args: Tensor,
    transforms: Sequence[str] = TRANSFORMS,
    atol: float | None = None,
    seed: int = 0,
) -> None:
    r"""Assert that torch's function transforms of ``fn`` agree with eager autograd.

    ``fn`` maps floating tensors (one dtype) to one tensor. With seeded normal directions
    ``w`` (cotangent) and ``v`` (tangents), the checks are

    * ``grad``, ``vjp``: :math:`J^T w` against ``torch.autograd.grad``;
    * ``jvp``, ``forward_ad``: :math:`J v` against the double-backward product
      :math:`\partial_u \langle J^T u, v\rangle` of eager autograd;
    * ``jacrev``, ``jacfwd``, ``hessian``: of :math:`\theta \mapsto (\langle w, f\rangle,
      \langle w', f\rangle)` on the two-parameter family :math:`x(\theta) = x + \theta_0 p +
      \theta_1 q` (so that the cost does not grow with the input), against
      :math:`[w\ w']^T J [p\ q]` and the eager Hessian of :math:`\langle w, f\rangle`;
    * ``vmap``: over three stacked perturbed inputs, against the stack of eager calls.

    Parameters
    ----------
    fn : callable
    *args : Tensor
        The inputs (any size: the transforms never form a full Jacobian).
    transforms : sequence of str
        A subset of :data:`TRANSFORMS`.
    atol : float, optional
        Tolerance relative to ``max(1, max |eager|)``; default 1e-6 (float32) or 1e-12
        (float64).
    seed : int

    Raises
    ------
    AssertionError
        Naming the first transform that fails or disagrees.

    Examples
    --------
    >>> import torch, manifres
    >>> S = manifres.Sphere(2)
    >>> x = S.random(4, dtype=torch.float64); v = 0.1 * S.random_tangent(x)
    >>> assert_transforms(S.exp, x, v)
    """
    dtype = args[0].dtype
    tol_ = (1e-6 if dtype == torch.float32 else 1e-12) if atol is None else atol
    gen = torch.Generator().manual_seed(seed)

    def randn(t: Tensor) -> Tensor:
        return torch.randn(t.shape, dtype=t.dtype, generator=gen).to(t.device)

    xs = [a.detach() for a in args]
    with torch.no_grad():
        y0 = fn(*xs)
    w, w2 = randn(y0), randn(y0)
    v = [randn(a) for a in xs]
    p, q = [randn(a) for a in xs], [randn(a) for a in xs]
    argnums = tuple(range(len(xs)))

    # eager references
    leaves = [a.clone().requires_grad_(True) for a in xs]
    y = fn(*leaves)
    u0 = torch.zeros_like(y, requires_grad=True)
    g_u = torch.autograd.grad(y, leaves, u0, create_graph=True, allow_unused=True)
    g_u = [torch.zeros_like(a) if g is None else g for g, a in zip(g_u, leaves, strict=True)]
    vjp_ref = torch.autograd.grad(y, leaves, w, retain_graph=True, allow_unused=True)
    vjp_ref = [torch.zeros_like(a) if g is None else g for g, a in zip(vjp_ref, leaves, strict=True)]

    def jvp_ref(tangents: list[Tensor]) -> Tensor:
        if not any(g.requires_grad for g in g_u):
            return torch.zeros_like(y)
        (jv,) = torch.autograd.grad(
            [g for g in g_u if g.requires_grad],
            u0,
            [t for g, t in zip(g_u, tangents, strict=True) if g.requires_grad],
            retain_graph=True,
            allow_unused=True,
        )
        return torch.zeros_like(y) if jv is None else jv

    jv = jvp_ref(v)

    def family(theta: Tensor) -> Tensor:
        return fn(*(a + theta[0] * pa + theta[1] * qa for a, pa, qa in zip(xs, p, q, strict=True)))

    def reduced(theta: Tensor) -> Tensor:
        out = family(theta)
        return torch.stack([(out * w).sum(), (out * w2).sum()])

    theta0 = torch.zeros(2, dtype=dtype, device=xs[0].device)
    for name in transforms:
        try:
            if name == "grad":
                got = torch.func.grad(lambda *a: (fn(*a) * w).sum(), argnums=argnums)(*xs)
                for k, (g, r) in enumerate(zip(got, vjp_ref, strict=True)):
                    _close(f"grad (argument {k})", g, r, tol_)
            elif name == "vjp":
                _, vjp_fn = torch.func.vjp(fn, *xs)
                for k, (g, r) in enumerate(zip(vjp_fn(w), vjp_ref, strict=True)):
                    _close(f"vjp (argument {k})", g, r, tol_)
            elif name == "jvp":
                _close("jvp", torch.func.jvp(fn, tuple(xs), tuple(v))[1], jv, tol_)
            elif name == "forward_ad":
                import torch.autograd.forward_ad as fwad

                with fwad.dual_level():
                    out = fn(*(fwad.make_dual(a, t) for a, t in zip(xs, v, strict=True)))
                    _close("forward-mode AD", fwad.unpack_dual(out).tangent, jv, tol_)
            elif name in ("jacrev", "jacfwd"):
                jac = getattr(torch.func, name)(reduced)(theta0)
                jp, jq = jvp_ref(p), jvp_ref(q)
                ref = torch.stack([torch.stack([(c * jp).sum(), (c * jq).sum()]) for c in (w, w2)])
                _close(name, jac, ref, tol_)
            elif name == "hessian":

                def loss(theta: Tensor) -> Tensor:
                    return (family(theta) * w).sum()

                th = theta0.clone().requires_grad_(True)
                (g1,) = torch.autograd.grad(loss(th), th, create_graph=True)
                rows = [torch.autograd.grad(g, th, retain_graph=True, allow_unused=True)[0] for g in g1]
                ref = torch.stack([torch.zeros(2, dtype=dtype) if r is None else r for r in rows])
                _close("hessian", torch.func.hessian(loss)(theta0), ref, tol_)
            elif name == "vmap":
                stacked = [
                    torch.stack([a, a + 1e-3 * pa, a - 1e-3 * qa]) for a, pa, qa in zip(xs, p, q, strict=True)
                ]
                with torch.no_grad():
                    ref = torch.stack([fn(*(s[i] for s in stacked)) for i in range(3)])
                _close("vmap", torch.func.vmap(fn)(*stacked), ref, tol_)
            else:
                raise AssertionError(f"unknown transform {name!r}; valid: {', '.join(TRANSFORMS)}")
        except AssertionError:
            raise
        except Exception as exc:  # noqa: BLE001 - the transform itself failed: report which
            raise AssertionError(f"{name} failed: {type(exc).__name__}: {exc}") from exc


# ================================================================================== contract
# One suite of properties that every manifold must satisfy, public so that users run it on
# their own manifolds. Each check is an ``assert_*`` function ``(manifold, dtype, spec)``;
# :func:`check_manifold_contract` runs them all.


@dataclass(frozen=True)
class ContractSpec:
    r"""What the contract checks need to know about a manifold (its "knobs").

    Parameters
    ----------
    injectivity_radius : float or None
        Tangent norm below which :math:`\exp_x` is a diffeomorphism onto its image, so that
        ``log(x, exp(x, v)) == v`` (:math:`\pi` on the unit sphere, :math:`\sqrt2\,\pi` on
        :math:`SO(n)` with the Frobenius metric, ``math.inf`` on a flat space). ``None`` reads the
        manifold's ``injectivity_radius`` attribute and fails if there is none. Pairs of points
        are drawn at distances in ``[0.05, 0.8]`` of it (up to 2 for an infinite radius), away
        from the cut locus.
    induced_metric : bool
        The metric is the one induced by the embedding (the built-in manifolds), so that
        covariant derivatives are tangent projections of ambient ones: then the checks also
        ask that ``exp`` traces geodesics (zero tangential acceleration) and that ``transport``
        is parallel (zero covariant derivative along the geodesic).
    singular : callable or None
        Known singular sets besides the cut locus: ``singular(manifold, x, y)`` returns a
        boolean batch mask of the pairs ``(x, y)`` to avoid; those pairs are redrawn.
    gradgrad : bool or tuple of str
        Ops whose second derivatives are documented (``gradgradcheck``): ``True`` for all of
        :data:`CONTRACT_OPS`, ``False`` for none, or a tuple of op names.
    gradgrad_fast : bool
        Run ``gradgradcheck`` in fast mode (random projections of the Jacobian); the full
        check is much slower on matrix manifolds.
    tol_scale : float
        Multiplies every tolerance of the checks.
    batch : int
        Batch size of the checks.
    chain_steps : int
        Length of the chains of retraction steps that must stay on the manifold.
    seed : int
        Seed of every random draw (the checks are deterministic).
    """

    injectivity_radius: float | None = None
    induced_metric: bool = True
    singular: Callable[[Manifold, Tensor, Tensor], Tensor] | None = None
    gradgrad: bool | tuple[str, ...] = True
    gradgrad_fast: bool = True
    tol_scale: float = 1.0
    batch: int = 6
    chain_steps: int = 1000
    seed: int = 0


#: The ops the contract calls generically (``retract:<name>`` for each retraction), with the
#: kinds of their arguments: ``x``, ``y`` points, ``v``, ``w`` tangent vectors at ``x``,
#: ``u`` an ambient vector, ``a`` an ambient point near the manifold.
CONTRACT_OPS = {
    "proj": "xu",
    "proj_point": "a",
    "exp": "xv",
    "log": "xy",
    "dist": "xy",
    "transport": "xyv",
    "inner": "xvw",
    "norm": "xv",
    "egrad2rgrad": "xu",
    "tangent_basis": "x",
}

# Output kinds: "point" (the point shape), "scalar" (the batch shape), "basis" (D, k).
_OUT = {"dist": "scalar", "inner": "scalar", "norm": "scalar", "tangent_basis": "basis"}

# Tolerances in units of the dtype's eps (times ContractSpec.tol_scale), relative to
# max(1, |reference|); NaN never passes. "value": a map against its exact inverse or an
# identity; "batch": a batched call against looped ones; "fd"/"fd2": a central difference
# against a first/second derivative.
_ULPS = {"value": 256.0, "batch": 256.0}


def _expand(M: Manifold, t: Tensor) -> Tensor:
    """Append ``M.ndim`` singleton axes to a batch-shaped tensor."""
    return t.reshape(t.shape + (1,) * M.ndim)


def _eps(dtype: torch.dtype) -> float:
    return torch.finfo(dtype).eps


def _tol(kind: str, dtype: torch.dtype, spec: ContractSpec) -> float:
    if kind == "fd":  # first derivatives: truncation h^2 plus rounding eps / h, h = eps^(1/3)
        return spec.tol_scale * (1e-3 if dtype == torch.float32 else 1e-8)
    if kind == "fd2":  # second derivatives: truncation h^2 plus rounding eps / h^2, h = eps^(1/4)
        return spec.tol_scale * (2e-2 if dtype == torch.float32 else 2e-6)
    return spec.tol_scale * _ULPS[kind] * _eps(dtype)


def _fail(manifold: Manifold, dtype: torch.dtype, check: str, what: str) -> AssertionError:
    name = {torch.float32: "float32", torch.float64: "float64"}.get(dtype, str(dtype))
    return AssertionError(f"contract {check!r} of {manifold!r} in {name}: {what}")


class _Ctx:
    """The manifold, dtype, spec and check name of one contract check, with its helpers."""

    def __init__(self, manifold: Manifold, dtype: torch.dtype, spec: ContractSpec | None, check: str):
        if not isinstance(manifold, Manifold):
            raise TypeError(f"the contract needs a manifres Manifold, got {type(manifold).__name__}")
        self.M = manifold
        self.dtype = dtype
        self.spec = ContractSpec() if spec is None else spec
        self.check = check
        r = self.spec.injectivity_radius
        if r is None:
            r = getattr(manifold, "injectivity_radius", None)
        if r is None:
            raise TypeError(
                f"contract {check!r}: give the injectivity radius of {manifold!r} "
                "(ContractSpec(injectivity_radius=...), math.inf for a flat space)"
            )
        self.inj = float(r)
        self.radius = 0.8 * self.inj if math.isfinite(self.inj) else 2.0  # largest round-trip step
        self.gen = torch.Generator().manual_seed(self.spec.seed)

    # ---------------------------------------------------------------- failures and comparisons
    def fail(self, what: str) -> AssertionError:
        return _fail(self.M, self.dtype, self.check, what)

    def close(
        self, what: str, got: Tensor, ref: Tensor, kind: str = "value", scale: Tensor | None = None
    ) -> None:
        """Assert ``|got - ref| <= tol * max(1, |ref|)`` (``scale`` replaces ``|ref|``)."""
        got, ref = torch.as_tensor(got), torch.as_tensor(ref)
        if got.shape != ref.shape:
            raise self.fail(f"{what}: shape {tuple(got.shape)}, expected {tuple(ref.shape)}")
        if got.numel() == 0:
            return
        t = _tol(kind, self.dtype, self.spec)
        s = ref.detach().abs().max() if scale is None else torch.as_tensor(scale).detach().abs().max()
        bound = t * max(1.0, float(s))
        err = float((got.detach() - ref.detach()).abs().max())
        if not err <= bound:  # NaN fails too
            ulps = err / (_eps(self.dtype) * max(1.0, float(s)))
            raise self.fail(f"{what}: max error {err:.3e} ({ulps:.3g} eps) > {bound:.3e}")

    def on_manifold(self, what: str, x: Tensor) -> None:
        ok = self.M.is_point(x)
        if not bool(ok.all()):
            worst = float(self.M._point_residual(x).max())  # the contract's residual, for the message
            raise self.fail(
                f"{what}: {int((~ok).sum())} of {ok.numel()} points are off the manifold "
                f"(worst {self.M._residual_name} = {worst:.3e}, atol {self.M.atol(x.dtype):.1e})"
            )

    def tangent(self, what: str, x: Tensor, v: Tensor) -> None:
        ok = self.M.is_tangent(x, v)
        if not bool(ok.all()):
            worst = float(self.M._tangent_residual(x, v).max())
            raise self.fail(
                f"{what}: {int((~ok).sum())} of {ok.numel()} vectors are not tangent "
                f"(worst {self.M._tangent_residual_name} = {worst:.3e})"
            )

    # ---------------------------------------------------------------- samples
    def points(self, *batch: int, dtype: torch.dtype | None = None) -> Tensor:
        return self.M.random(*batch, dtype=dtype or self.dtype, generator=self.gen)

    def ambient(self, like: Tensor) -> Tensor:
        return torch.randn(like.shape, dtype=like.dtype, generator=self.gen)

    def unit_tangent(self, x: Tensor) -> Tensor:
        v = self.M.random_tangent(x, generator=self.gen)
        return v / _expand(self.M, self.M.norm(x, v))

    def radii(self, x: Tensor, lo: float, hi: float) -> Tensor:
        batch = x.shape[: x.dim() - self.M.ndim]
        r = lo + (hi - lo) * torch.rand(batch, dtype=x.dtype, generator=self.gen)
        return _expand(self.M, r)

    def pair(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """A second point ``y = exp(x, v)`` at distance in [0.05, 1] radius, and that ``v``."""
        v = self.radii(x, 0.05 * self.radius, self.radius) * self.unit_tangent(x)
        y = self.M.exp(x, v)
        if self.spec.singular is not None:
            for _ in range(10):
                bad = self.spec.singular(self.M, x, y)
                if not bool(bad.any()):
                    break
                v2 = self.radii(x, 0.05 * self.radius, self.radius) * self.unit_tangent(x)
                v = torch.where(_expand(self.M, bad), v2, v)
                y = self.M.exp(x, v)
        return y, v

    def inputs(self, *batch: int) -> dict[str, Tensor]:
        """One sample of every argument kind of :data:`CONTRACT_OPS`."""
        x = self.points(*batch)
        y, _ = self.pair(x)
        v = self.unit_tangent(x) * self.radii(x, 0.1, 1.0)
        w = self.unit_tangent(x)
        u = self.ambient(x)
        return {"x": x, "y": y, "v": v, "w": w, "u": u, "a": 1.25 * x + 0.1 * u}


def _check(name: str, float64: bool = False) -> Callable[[Callable[[_Ctx], None]], Callable[..., None]]:
    """Make a contract check ``(manifold, dtype=float64, spec=None)`` from its body ``(ctx)``: an
    unexpected exception inside becomes an ``AssertionError`` naming the check."""

    def make(body: Callable[[_Ctx], None]) -> Callable[..., None]:
        def check(
            manifold: Manifold, dtype: torch.dtype = torch.float64, spec: ContractSpec | None = None
        ) -> None:
            c = _Ctx(manifold, torch.float64 if float64 else dtype, spec, name)
            try:
                body(c)
            except AssertionError:
                raise
            except Exception as exc:  # noqa: BLE001 - a crash is a contract failure too
                raise c.fail(f"raised {type(exc).__name__}: {exc}") from exc

        check.__name__ = check.__qualname__ = body.__name__
        check.__doc__ = body.__doc__
        check.__module__ = body.__module__
        return check

    return make


def _op(manifold: Manifold, name: str) -> Callable[..., Tensor]:
    if name.startswith("retract:"):
        return manifold.retraction(name.split(":", 1)[1])
    return getattr(manifold, name)


def _op_kinds(manifold: Manifold) -> dict[str, str]:
    ops = dict(CONTRACT_OPS)
    for r in manifold.retractions:
        if r != "exp":
            ops[f"retract:{r}"] = "xv"
    return ops


def _out_shape(manifold: Manifold, name: str, batch: tuple[int, ...]) -> tuple[int, ...]:
    kind = _OUT.get(name, "point")
    if kind == "scalar":
        return batch
    if kind == "basis":
        return batch + (math.prod(manifold.point_shape), manifold.dim)
    return batch + tuple(manifold.point_shape)


def _lie_action(manifold: Manifold):
    try:
        return manifold.lie_action()
    except UnknownChoiceError:
        return None


# ---------------------------------------------------------------------------------- checks
@_check("retractions")
def assert_retractions_listed(c: _Ctx) -> None:
    r"""Retraction registry: every name in ``retractions`` resolves (``exp`` or a
    ``retract_<name>`` method), every ``retract_<name>`` method is listed, the first name is the
    default of :meth:`~manifres.Manifold.retract`, an unknown name raises
    :class:`~manifres.errors.UnknownChoiceError`, and each retraction is one:
    :math:`R_x(0) = x` and :math:`\frac{d}{dh}R_x(hv)|_{h=0} = v` (central difference).
    """
    manifold, dtype = c.M, c.dtype
    M = manifold
    names = tuple(M.retractions)
    if not names:
        raise c.fail("retractions is empty (the first name is the default retraction)")
    if len(set(names)) != len(names):
        raise c.fail(f"retractions {names} has duplicates")
    methods = sorted(m[len("retract_"):] for m in dir(type(M))
                     if m.startswith("retract_") and callable(getattr(M, m)))
    unlisted = [m for m in methods if m not in names]
    if unlisted:
        raise c.fail(f"methods {['retract_' + m for m in unlisted]} are not listed in retractions {names}")
    for r in names:
        if r != "exp" and not callable(getattr(M, f"retract_{r}", None)):
            raise c.fail(f"retraction {r!r} is listed but {type(M).__name__} has no method retract_{r}")
    try:
        M.retraction("no such retraction")
    except UnknownChoiceError:
        pass
    else:
        raise c.fail("an unknown retraction name did not raise UnknownChoiceError")
    x = c.points(c.spec.batch)
    v = c.unit_tangent(x)
    if not torch.equal(M.retract(x, v), M.retraction(names[0])(x, v)):
        raise c.fail(f"retract(x, v) is not the first retraction {names[0]!r}")
    h = _eps(dtype) ** (1 / 3)
    for r in names:
        R = M.retraction(r)
        c.close(f"{r}: R_x(0) = x", R(x, torch.zeros_like(v)), x)
        fd = (R(x, h * v) - R(x, -h * v)) / (2 * h)
        c.close(f"{r}: d/dh R_x(hv) at 0 = v", fd, v, kind="fd")


@_check("on_manifold")
def assert_stays_on_manifold(c: _Ctx) -> None:
    """Outputs are on the manifold: :meth:`random`, :meth:`exp` and every retraction (steps of
    norm 0 to 1.5 times the injectivity radius, at most 3), :meth:`geodesic`, :meth:`proj_point`
    (which also fixes points); and tangent outputs are tangent (:meth:`random_tangent`,
    :meth:`log`)."""
    manifold = c.M
    M, B = manifold, c.spec.batch
    x = c.points(B)
    c.on_manifold("random", x)
    c.on_manifold("random (unbatched)", c.points())
    top = min(1.5 * c.inj, 3.0)
    for r in (0.0, 1e-8, 1e-3, 0.5 * top, top):
        v = r * c.unit_tangent(x)
        for name in M.retractions:
            c.on_manifold(f"retraction {name!r}, |v| = {r:g}", M.retraction(name)(x, v))
    c.on_manifold("geodesic(x, v, 0.5)", M.geodesic(x, c.unit_tangent(x), 0.5))
    u = c.ambient(x)
    c.on_manifold("proj_point(1.25 x + 0.1 u)", M.proj_point(1.25 * x + 0.1 * u))
    c.close("proj_point(x) = x", M.proj_point(x), x)
    c.tangent("random_tangent", x, M.random_tangent(x, generator=c.gen))
    y, _ = c.pair(x)
    c.tangent("log(x, y)", x, M.log(x, y))


@_check("long_chains")
def assert_long_chains(c: _Ctx) -> None:
    r"""``chain_steps`` chained steps :math:`x \leftarrow R_x(h P_x F(x))` of every retraction with
    a bounded state-dependent field (``F(x) = tanh(W x + b)``, ``h = 0.1``) stay on the
    manifold (the default tolerance of :meth:`is_point`: drift must not accumulate)."""
    manifold, dtype = c.M, c.dtype
    M = manifold
    x0 = c.points(4)
    d = math.prod(M.point_shape)
    W = torch.randn(d, d, dtype=dtype, generator=c.gen) / math.sqrt(d)
    b = torch.randn(d, dtype=dtype, generator=c.gen)

    def field(x: Tensor) -> Tensor:
        f = torch.tanh(x.reshape(x.shape[0], d) @ W.mT + b).reshape(x.shape)
        return M.proj(x, f)

    for name in M.retractions:
        R = M.retraction(name)
        x = x0
        for _ in range(c.spec.chain_steps):
            x = R(x, 0.1 * field(x))
        c.on_manifold(f"{c.spec.chain_steps} steps of {name!r}", x)


@_check("proj")
def assert_proj(c: _Ctx) -> None:
    r""":meth:`proj` is idempotent (:math:`P_x P_x u = P_x u`), its output is tangent, it fixes
    tangent vectors and it is linear; checked for ambient vectors of scale 1 and 1e4."""
    manifold = c.M
    M = manifold
    x = c.points(c.spec.batch)
    for s in (1.0, 1e4):
        u = s * c.ambient(x)
        p = M.proj(x, u)
        c.tangent(f"proj(x, u), |u| ~ {s:g}", x, p)
        c.close(f"proj(x, proj(x, u)) = proj(x, u), |u| ~ {s:g}", M.proj(x, p), p, scale=u)
    v = c.unit_tangent(x)
    c.close("proj(x, v) = v for tangent v", M.proj(x, v), v)
    u1, u2 = c.ambient(x), c.ambient(x)
    lin = 2.0 * M.proj(x, u1) - M.proj(x, u2)
    c.close("proj is linear", M.proj(x, 2.0 * u1 - u2), lin, scale=3 * u1.abs() + u2.abs())


@_check("exp_log")
def assert_exp_log(c: _Ctx) -> None:
    r"""Round trips within the injectivity radius: ``log(x, exp(x, v)) == v`` and
    ``exp(x, log(x, y)) == y``; ``exp(x, 0) == x``, ``log(x, x) == 0`` and
    ``geodesic(x, v, t) == exp(x, t v)`` (to rounding). With an induced metric, ``exp`` is the
    exponential and not another retraction: :math:`t \mapsto \exp_x(tv)` has no tangential
    acceleration (second central difference, projected) at ``t = 0.5`` and ``1``."""
    manifold, dtype = c.M, c.dtype
    M = manifold
    x = c.points(c.spec.batch)
    y, v = c.pair(x)
    c.close("log(x, exp(x, v)) = v", M.log(x, y), v)
    c.close("exp(x, log(x, y)) = y", M.exp(x, M.log(x, y)), y)
    v = c.radii(x, 0.0, c.radius) * c.unit_tangent(x)
    c.close("log(x, exp(x, v)) = v (|v| from 0)", M.log(x, M.exp(x, v)), v)
    c.close("exp(x, 0) = x", M.exp(x, torch.zeros_like(x)), x)
    c.close("log(x, x) = 0", M.log(x, x), torch.zeros_like(x))
    c.close("geodesic(x, v, 0.5) = exp(x, 0.5 v)", M.geodesic(x, v, 0.5), M.exp(x, 0.5 * v))
    if c.spec.induced_metric:  # t -> exp(x, t v) is a geodesic: no tangential acceleration
        h = _eps(dtype) ** 0.25
        for t in (0.5, 1.0):
            g = M.exp(x, t * v)
            acc = (M.exp(x, (t + h) * v) - 2.0 * g + M.exp(x, (t - h) * v)) / (h * h)
            c.close(f"P(d^2/dt^2 exp(x, t v)) = 0 at t = {t:g} (a geodesic)", M.proj(g, acc),
                    torch.zeros_like(acc), kind="fd2", scale=M.norm(x, v) ** 2)


@_check("dist")
def assert_dist(c: _Ctx) -> None:
    r""":meth:`dist` equals ``norm(x, log(x, y))`` and ``|v|`` for ``y = exp(x, v)`` within the
    injectivity radius; it is symmetric, zero at coincident points and satisfies the triangle
    inequality."""
    manifold, dtype = c.M, c.dtype
    M = manifold
    x = c.points(c.spec.batch)
    y, v = c.pair(x)
    d = M.dist(x, y)
    c.close("dist(x, y) = norm(x, log(x, y))", d, M.norm(x, M.log(x, y)))
    c.close("dist(x, exp(x, v)) = |v|", d, M.norm(x, v))
    c.close("dist(x, y) = dist(y, x)", M.dist(y, x), d)
    c.close("dist(x, x) = 0", M.dist(x, x), torch.zeros_like(d))
    z, _ = c.pair(y)
    slack = _tol("value", dtype, c.spec) * (1.0 + float(d.abs().max()))
    if not bool((M.dist(x, z) <= d + M.dist(y, z) + slack).all()):
        raise c.fail("the triangle inequality dist(x, z) <= dist(x, y) + dist(y, z) fails")


@_check("transport")
def assert_transport(c: _Ctx) -> None:
    r""":meth:`transport` maps :math:`T_xM` isometrically onto :math:`T_yM` (output tangent at
    ``y``, inner products kept), maps :math:`\log_x y` to :math:`-\log_y x`, is the identity
    from ``x`` to ``x`` and is undone by the transport back; with an induced metric it is
    parallel (the projected derivative of :math:`t \mapsto \Gamma_{x \to \exp_x(tv)}(w)` vanishes
    at 0), which tells parallel transport from other isometric vector transports."""
    manifold, dtype = c.M, c.dtype
    M = manifold
    x = c.points(c.spec.batch)
    y, _ = c.pair(x)
    u, w = c.unit_tangent(x), c.unit_tangent(x) * c.radii(x, 0.5, 2.0)
    tu, tw = M.transport(x, y, u), M.transport(x, y, w)
    c.tangent("transport(x, y, u) at y", y, tu)
    c.close("<Tu, Tw>_y = <u, w>_x", M.inner(y, tu, tw), M.inner(x, u, w))
    c.close("|Tw|_y = |w|_x", M.norm(y, tw), M.norm(x, w))
    c.close("transport(x, y, log_x y) = -log_y x", M.transport(x, y, M.log(x, y)), -M.log(y, x))
    c.close("transport(x, x, u) = u", M.transport(x, x, u), u)
    c.close("transport(y, x, transport(x, y, u)) = u", M.transport(y, x, tu), u)
    if c.spec.induced_metric:  # parallel: P_x d/dt transport(x, exp(x, t v), w) = 0 at t = 0
        _, v = c.pair(x)
        h = _eps(dtype) ** (1 / 3)
        dw = (M.transport(x, M.exp(x, h * v), w) - M.transport(x, M.exp(x, -h * v), w)) / (2 * h)
        c.close("covariant derivative of transport(x, exp(x, t v), w) at t = 0 is 0 (parallel)",
                M.proj(x, dw), torch.zeros_like(dw), kind="fd", scale=M.norm(x, v) * M.norm(x, w))


def _rayleigh(M: Manifold, A: Tensor):
    d = math.prod(M.point_shape)

    def f(x: Tensor) -> Tensor:
        z = x.reshape(x.shape[: x.dim() - M.ndim] + (d,))
        return 0.5 * ((z @ A) * z).sum(-1)

    def egrad(x: Tensor) -> Tensor:
        z = x.reshape(x.shape[: x.dim() - M.ndim] + (d,))
        return (z @ A).reshape(x.shape)

    return f, egrad


@_check("egrad2rgrad")
def assert_egrad2rgrad(c: _Ctx) -> None:
    r""":meth:`egrad2rgrad` gives the Riemannian gradient: for the Rayleigh-like
    :math:`f(x) = \tfrac12 x^TAx` (``A`` symmetric on the flattened ambient space) the result is
    tangent and :math:`\langle \operatorname{grad} f, v\rangle_x` equals the central difference
    of :math:`f(R_x(hv))` along the default retraction, for random tangent ``v``."""
    manifold, dtype = c.M, c.dtype
    M = manifold
    d = math.prod(M.point_shape)
    A = torch.randn(d, d, dtype=dtype, generator=c.gen)
    A = 0.5 * (A + A.mT)
    f, egrad = _rayleigh(M, A)
    x = c.points(c.spec.batch)
    g = M.egrad2rgrad(x, egrad(x))
    c.tangent("egrad2rgrad(x, g)", x, g)
    h = _eps(dtype) ** (1 / 3)
    for _ in range(3):
        v = c.unit_tangent(x)
        fd = (f(M.retract(x, h * v)) - f(M.retract(x, -h * v))) / (2 * h)
        c.close("<egrad2rgrad(x, g), v>_x = d/dh f(R_x(hv))", M.inner(x, g, v), fd, kind="fd",
                scale=M.norm(x, g))


@_check("tangent_basis")
def assert_tangent_basis(c: _Ctx) -> None:
    r""":meth:`tangent_basis` has ``dim`` columns, tangent at ``x``, orthonormal in
    :meth:`inner`, spanning :math:`T_xM` (every tangent ``v`` is :math:`\sum_i \langle v,
    b_i\rangle b_i`); for any leading batch shape."""
    manifold, dtype = c.M, c.dtype
    M = manifold
    k, shape = M.dim, tuple(M.point_shape)
    D = math.prod(shape)
    x = c.points(2, 3)
    Bm = M.tangent_basis(x)
    if tuple(Bm.shape) != (2, 3, D, k):
        raise c.fail(f"tangent_basis of a (2, 3) batch has shape {tuple(Bm.shape)}, expected {(2, 3, D, k)}")
    cols = Bm.movedim(-1, -2).reshape((2, 3, k) + shape)  # (2, 3, k, *shape)
    xe = x.unsqueeze(2)
    c.tangent("basis vectors", xe, cols)
    gram = M.inner(xe.unsqueeze(2), cols.unsqueeze(3), cols.unsqueeze(2))  # (2, 3, k, k)
    c.close("<b_i, b_j>_x = delta_ij", gram, torch.eye(k, dtype=dtype).expand_as(gram))
    v = c.unit_tangent(x) * 2.0
    coef = M.inner(xe, cols, v.unsqueeze(2))  # (2, 3, k)
    rebuilt = (_expand(M, coef) * cols).sum(2)
    c.close("v = sum_i <v, b_i> b_i (the basis spans T_x M)", rebuilt, v)


@_check("norm_inner")
def assert_norm_inner(c: _Ctx) -> None:
    r""":meth:`norm` is :math:`\sqrt{\langle v, v\rangle_x}`; :meth:`inner` is symmetric and
    bilinear; the norm of the zero vector is 0 with a finite (zero) gradient."""
    manifold = c.M
    M = manifold
    x = c.points(c.spec.batch)
    v, w = 3.0 * c.unit_tangent(x), c.unit_tangent(x)
    c.close("norm(x, v) = sqrt(inner(x, v, v))", M.norm(x, v), torch.sqrt(M.inner(x, v, v)))
    c.close("inner(x, v, w) = inner(x, w, v)", M.inner(x, v, w), M.inner(x, w, v))
    c.close("inner is bilinear", M.inner(x, 2.0 * v - w, w), 2.0 * M.inner(x, v, w) - M.inner(x, w, w),
            scale=torch.tensor(10.0))
    z = torch.zeros_like(v, requires_grad=True)
    n0 = M.norm(x, z)
    if not bool((n0 == 0).all()):
        raise c.fail(f"norm of the zero vector is {n0.tolist()}, not 0")
    (gz,) = torch.autograd.grad(n0.sum(), z)
    if not bool(torch.isfinite(gz).all()):
        raise c.fail("the gradient of norm at the zero vector is not finite")


@_check("lie_action")
def assert_lie_action(c: _Ctx) -> None:
    r"""Where :meth:`lie_action` is offered: ``act(algebra(x, 0), x) == x``,
    ``act(algebra(x, v), x)`` is on the manifold, and it moves along ``v`` to first order:
    :math:`\frac{d}{dh}\operatorname{act}(\xi(x, hv), x)|_{h=0} = v` (central difference).
    A manifold without one (:class:`~manifres.errors.UnknownChoiceError`) passes."""
    manifold, dtype = c.M, c.dtype
    M = manifold
    act = _lie_action(M)
    if act is None:
        return
    x = c.points(c.spec.batch)
    v = c.unit_tangent(x)
    c.close("act(algebra(x, 0), x) = x", act.act(act.algebra(x, torch.zeros_like(v)), x), x)
    c.on_manifold("act(algebra(x, v), x)", act.act(act.algebra(x, v), x))
    h = _eps(dtype) ** (1 / 3)
    fd = (act.act(act.algebra(x, h * v), x) - act.act(act.algebra(x, -h * v), x)) / (2 * h)
    c.close("d/dh act(algebra(x, hv), x) at 0 = v", fd, v, kind="fd")


def _call(M: Manifold, name: str, kinds: str, inp: dict[str, Tensor]) -> Tensor:
    return _op(M, name)(*(inp[k] for k in kinds))


@_check("batched")
def assert_batched(c: _Ctx) -> None:
    r"""Batched equals looped, to rounding: every op of :data:`CONTRACT_OPS` (and every
    retraction) on a batch equals the stack of its calls on single (unbatched) inputs, and on a
    ``(2, 3)`` batch the same as on the flat ``(6,)`` batch, within 64 eps relative to
    ``max(1, |value|)``. Not bit for bit: torch's CPU kernels take vectorised paths of different
    widths (and matmul different blockings) for different sizes, which changes the last bits.
    The same call twice is bitwise equal."""
    manifold = c.M
    M = manifold
    inp = c.inputs(6)
    for name, kinds in _op_kinds(M).items():
        full = _call(M, name, kinds, inp)
        if not torch.equal(full, _call(M, name, kinds, inp)):
            raise c.fail(f"{name}: two identical calls differ (not deterministic)")
        looped = torch.stack([_call(M, name, kinds, {k: t[i] for k, t in inp.items()}) for i in range(6)])
        c.close(f"{name}: batched vs looped", full, looped, kind="batch")
        grid = {k: t.reshape((2, 3) + t.shape[1:]) for k, t in inp.items()}
        g = _call(M, name, kinds, grid)
        c.close(f"{name}: (2, 3) batch vs flat", g.reshape(full.shape), full, kind="batch")


@_check("broadcasting")
def assert_broadcasting(c: _Ctx) -> None:
    r"""Batch shapes broadcast: a single (unbatched) base point against a batch of the other
    arguments, a single second argument against a batch of base points, and ``(B, 1)`` against
    ``(1, C)``, each equal (to rounding) to the call on explicitly expanded inputs."""
    manifold = c.M
    M = manifold
    B = c.spec.batch
    x0 = c.points()
    xb = x0.expand((B,) + x0.shape)
    one = {k: t for k, t in c.inputs(B).items() if k in "ua"}
    y, _ = c.pair(xb)
    one.update(x=x0, y=y, v=c.unit_tangent(xb), w=c.unit_tangent(xb))
    exp = dict(one, x=xb)
    for name, kinds in _op_kinds(M).items():
        if len(kinds) < 2:
            continue
        got = _call(M, name, kinds, one)
        c.close(f"{name}: single x against a batch", got, _call(M, name, kinds, exp), kind="batch")
    # a single second argument against a batch of base points
    y0 = c.points()
    x = M.exp(y0.expand((B,) + y0.shape), c.radii(xb, 0.1, c.radius) * c.unit_tangent(xb))
    u0 = c.ambient(x0)
    v = c.unit_tangent(x)
    for name, args, full in [
        ("log", (x, y0), (x, y0.expand_as(x))),
        ("dist", (x, y0), (x, y0.expand_as(x))),
        ("transport", (x, y0, v), (x, y0.expand_as(x), v)),
        ("proj", (x, u0), (x, u0.expand_as(x))),
        ("egrad2rgrad", (x, u0), (x, u0.expand_as(x))),
    ]:
        c.close(f"{name}: single second argument against a batch", _op(M, name)(*args),
                _op(M, name)(*full), kind="batch")
    # (B, 1) against (1, C)
    xs = c.points(3, 1)
    ys = c.points(1, 4)
    ys = M.exp(xs.expand((3, 4) + tuple(M.point_shape)), c.radii(c.points(3, 4), 0.1, c.radius)
               * c.unit_tangent(xs.expand((3, 4) + tuple(M.point_shape))))[:1]
    us = c.ambient(ys)
    grid = (3, 4) + tuple(M.point_shape)
    for name, args in [("dist", (xs, ys)), ("log", (xs, ys)), ("proj", (xs, us))]:
        got = _op(M, name)(*args)
        ref = _op(M, name)(*(a.expand(grid) for a in args))
        c.close(f"{name}: (3, 1) against (1, 4)", got, ref, kind="batch")


@_check("empty_batch")
def assert_empty_batch(c: _Ctx) -> None:
    """Every op of :data:`CONTRACT_OPS` (and every retraction, :meth:`random`,
    :meth:`random_tangent`, :meth:`is_point`, :meth:`check_point`) accepts an empty batch
    ``(0, *point_shape)`` and returns the empty result of the right shape and dtype."""
    manifold, dtype = c.M, c.dtype
    M = manifold
    shape = tuple(M.point_shape)
    e = torch.zeros((0,) + shape, dtype=dtype)
    inp = dict.fromkeys("xyvwua", e)
    results = {name: _call(M, name, kinds, inp) for name, kinds in _op_kinds(M).items()}
    results["random"] = M.random(0, dtype=dtype)
    results["random_tangent"] = M.random_tangent(e)
    for name, out in results.items():
        want = _out_shape(M, name, (0,))
        if tuple(out.shape) != want or out.dtype != dtype:
            got = f"{tuple(out.shape)} {out.dtype}"
            raise c.fail(f"{name} of an empty batch gave {got}, expected {want} {dtype}")
    if tuple(M.is_point(e).shape) != (0,):
        raise c.fail("is_point of an empty batch does not have shape (0,)")
    M.check_point(e)
    M.check_tangent(e, e)


def _chart(c: _Ctx, x0: Tensor) -> tuple[Tensor, Callable[[Tensor], Tensor]]:
    """Coordinates ``c = 0`` and the map ``c -> R_{x0}(B c)`` (tangent-space coordinates)."""
    M = c.M
    Bm = M.tangent_basis(x0).detach()  # (..., D, k)
    shape = x0.shape

    def point(coords: Tensor) -> Tensor:
        return M.retract(x0, (Bm @ coords.unsqueeze(-1)).squeeze(-1).reshape(shape))

    return torch.zeros(x0.shape[: x0.dim() - M.ndim] + (M.dim,), dtype=x0.dtype), point


def _retraction_case(M: Manifold, R: Callable[..., Tensor], X: Callable[[Tensor], Tensor]):
    return lambda p, q: R(X(p), M.proj(X(p), q))


def _gradcheck_cases(c: _Ctx) -> dict[str, tuple[Callable[..., Tensor], tuple[Tensor, ...]]]:
    """Every differentiable op as a function of its leaves: points in tangent coordinates
    (a chart of the default retraction), tangent vectors as projections of ambient leaves."""
    M = c.M
    inp = c.inputs(2)
    cx, X = _chart(c, inp["x"])
    cy, Y = _chart(c, inp["y"])
    u, uv, uw, a = inp["u"], inp["v"], inp["w"], inp["a"]
    cases: dict[str, tuple[Callable[..., Tensor], tuple[Tensor, ...]]] = {
        "proj": (lambda p, q: M.proj(X(p), q), (cx, u)),
        "proj_point": (M.proj_point, (a,)),
        "exp": (lambda p, q: M.exp(X(p), M.proj(X(p), q)), (cx, uv)),
        "log": (lambda p, q: M.log(X(p), Y(q)), (cx, cy)),
        "dist": (lambda p, q: M.dist(X(p), Y(q)), (cx, cy)),
        "transport": (lambda p, q, r: M.transport(X(p), Y(q), M.proj(X(p), r)), (cx, cy, uw)),
        "inner": (lambda p, q, r: M.inner(X(p), M.proj(X(p), q), M.proj(X(p), r)), (cx, uv, uw)),
        "norm": (lambda p, q: M.norm(X(p), M.proj(X(p), q)), (cx, uv)),
        "egrad2rgrad": (lambda p, q: M.egrad2rgrad(X(p), q), (cx, u)),
    }
    for r in M.retractions:
        if r != "exp":
            cases[f"retract:{r}"] = (_retraction_case(M, M.retraction(r), X), (cx, uv))
    return cases


@_check("gradcheck", float64=True)
def assert_gradcheck(c: _Ctx) -> None:
    r"""float64 ``torch.autograd.gradcheck`` of every differentiable op (the ops of
    :data:`CONTRACT_OPS` but ``tangent_basis``, whose frames may jump, and every retraction),
    and ``gradgradcheck`` of those in ``spec.gradgrad``, at random points away from the
    singular sets (pairs at distances in [0.05, 0.8] of the injectivity radius). Points are
    perturbed in tangent coordinates (a chart of the default retraction), tangent arguments
    are projections of ambient ones. Runs in float64 whatever ``dtype`` is."""
    gg = c.spec.gradgrad
    for name, (fn, args) in _gradcheck_cases(c).items():
        leaves = tuple(t.detach().clone().requires_grad_(True) for t in args)
        try:
            torch.autograd.gradcheck(fn, leaves, atol=1e-6 * c.spec.tol_scale, rtol=1e-5)
            if gg is True or (gg and name in gg):
                torch.autograd.gradgradcheck(fn, leaves, atol=1e-6 * c.spec.tol_scale, rtol=1e-5,
                                             fast_mode=c.spec.gradgrad_fast)
        except Exception as exc:  # noqa: BLE001 - report the op whose derivative is wrong
            msg = str(exc).strip().splitlines()
            raise c.fail(f"{name}: {type(exc).__name__}: {' '.join(msg[:6])}") from exc


def _expect_error(c: _Ctx, what: str, error: type[Exception], fn: Callable[[], object]) -> None:
    try:
        fn()
    except error:
        return
    except Exception as exc:  # noqa: BLE001
        raise c.fail(f"{what}: raised {type(exc).__name__} ({exc}), expected {error.__name__}") from exc
    raise c.fail(f"{what}: no error, expected {error.__name__}")


@_check("named_errors")
def assert_named_errors(c: _Ctx) -> None:
    """Named errors: a wrong trailing shape in any argument of any op raises
    :class:`~manifres.errors.ShapeError`, as do batch shapes that do not broadcast; mixed
    dtypes and integer tensors raise :class:`~manifres.errors.DTypeError` (never a silent
    promotion); :meth:`check_point` / :meth:`check_tangent` raise
    :class:`~manifres.errors.ManifoldError` for non-finite input."""
    manifold, dtype = c.M, c.dtype
    M = manifold
    inp = c.inputs(3)
    other = torch.float64 if dtype == torch.float32 else torch.float32
    bad_shape = tuple(M.point_shape[:-1]) + (M.point_shape[-1] + 1,)
    for name, kinds in _op_kinds(M).items():
        for i, k in enumerate(kinds):
            def with_(t: Tensor, i: int = i, kinds: str = kinds) -> list[Tensor]:
                args = [inp[kk] for kk in kinds]
                args[i] = t
                return args

            f = _op(M, name)
            wrong = torch.zeros((3,) + bad_shape, dtype=dtype)
            _expect_error(c, f"{name}: argument {i} ({k}) of shape {tuple(wrong.shape)}", ShapeError,
                          lambda f=f, wrong=wrong, w=with_: f(*w(wrong)))
            _expect_error(c, f"{name}: argument {i} ({k}) of dtype int64", DTypeError,
                          lambda f=f, k=k, w=with_: f(*w(inp[k].to(torch.int64))))
            if i > 0:
                _expect_error(c, f"{name}: argument {i} ({k}) in {other} with argument 0 in {dtype}",
                              DTypeError, lambda f=f, k=k, w=with_: f(*w(inp[k].to(other))))
        if len(kinds) > 1:
            args = [inp[kinds[0]]] + [inp[k][:2] for k in kinds[1:]]
            f = _op(M, name)
            _expect_error(c, f"{name}: batches (3,) and (2,)", ShapeError, lambda f=f, a=args: f(*a))
    nan = torch.full_like(inp["x"], math.nan)
    if bool(M.is_point(nan).any()):
        raise c.fail("is_point accepts NaN points")
    _expect_error(c, "check_point of NaN", ManifoldError, lambda: M.check_point(nan))
    _expect_error(c, "check_tangent of NaN", ManifoldError, lambda: M.check_tangent(inp["x"], nan))


#: The contract: check name -> assertion, in the order :func:`check_manifold_contract` runs
#: them. ``gradcheck`` runs in float64 whatever the dtype.
CONTRACT: dict[str, Callable[..., None]] = {
    "retractions": assert_retractions_listed,
    "on_manifold": assert_stays_on_manifold,
    "long_chains": assert_long_chains,
    "proj": assert_proj,
    "exp_log": assert_exp_log,
    "dist": assert_dist,
    "transport": assert_transport,
    "egrad2rgrad": assert_egrad2rgrad,
    "tangent_basis": assert_tangent_basis,
    "norm_inner": assert_norm_inner,
    "lie_action": assert_lie_action,
    "batched": assert_batched,
    "broadcasting": assert_broadcasting,
    "empty_batch": assert_empty_batch,
    "gradcheck": assert_gradcheck,
    "named_errors": assert_named_errors,
}


def check_manifold_contract(
    manifold: Manifold,
    dtype: torch.dtype = torch.float64,
    spec: ContractSpec | None = None,
    checks: Sequence[str] | None = None,
    **knobs,
) -> list[str]:
    r"""Run the manifold contract (:data:`CONTRACT`) on ``manifold`` in ``dtype``.

    Parameters
    ----------
    manifold : Manifold
    dtype : torch.dtype
        float32 or float64 (``gradcheck`` always runs in float64).
    spec : ContractSpec, optional
        The manifold's knobs; keyword arguments (``injectivity_radius=...``) override fields.
    checks : sequence of str, optional
        A subset of :data:`CONTRACT` (default: all).

    Returns
    -------
    list of str
        The checks that ran (all passed).

    Raises
    ------
    AssertionError
        Listing every check that failed, with the property and the error measured.

    Examples
    --------
    >>> import math, torch, manifres
    >>> from manifres.testing import check_manifold_contract
    >>> check_manifold_contract(manifres.Sphere(2), torch.float64, injectivity_radius=math.pi,
    ...                         checks=["proj", "exp_log", "dist"])
    ['proj', 'exp_log', 'dist']
    """
    spec = replace(spec or ContractSpec(), **knobs)
    names = list(CONTRACT) if checks is None else list(checks)
    unknown = [n for n in names if n not in CONTRACT]
    if unknown:
        raise UnknownChoiceError(f"unknown contract checks {unknown}; valid: {', '.join(CONTRACT)}")
    failures = []
    for n in names:
        try:
            CONTRACT[n](manifold, dtype, spec)
        except AssertionError as exc:
            failures.append(str(exc))
    if failures:
        head = f"{len(failures)} of {len(names)} contract checks failed:"
        raise AssertionError("\n".join([head, *failures]))
    return names
