"""Assertions that users can reuse to test their own manifolds, fields and layers.

Examples
--------
>>> import torch, manifres
>>> from manifres.testing import assert_on_manifold
>>> S = manifres.Sphere(2)
>>> assert_on_manifold(S, S.random(10, dtype=torch.float64))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from .manifolds.base import Manifold

__all__ = [
    "TOL",
    "tol",
    "assert_on_manifold",
    "assert_tangent",
    "assert_finite_grad",
    "TRANSFORMS",
    "assert_transforms",
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
