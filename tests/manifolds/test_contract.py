"""The manifold contract (issue 9 item 4): every manifold, float32 and float64, same properties.

The properties live in :mod:`manifres.testing` (``CONTRACT``, one ``assert_*`` function per
check, and ``check_manifold_contract``) so that users run them on their own manifolds; this
file is the parametrised driver.

**A new manifold joins with one line in** ``MANIFOLDS``: an id, a factory and its
:class:`~manifres.testing.ContractSpec` (the injectivity radius, known singular sets, which
ops have documented second derivatives, tolerance scale). ``test_every_manifold_is_listed``
fails until it is there.

The second half runs deliberately broken manifolds through the same checks and expects them to
fail: the suite demonstrably catches each kind of bug it claims to.
"""

import math
from dataclasses import replace

import pytest
import torch

import manifres.manifolds
from manifres import Euclidean, SpecialOrthogonal, Sphere
from manifres.errors import UnknownChoiceError
from manifres.manifolds.actions import SphereRotation2
from manifres.testing import CONTRACT, ContractSpec, assert_gradcheck, check_manifold_contract

SO_RADIUS = math.sqrt(2.0) * math.pi  # one plane at angle pi: |Log|_F = sqrt(2) pi

#: Every manifold of the package (one line each): id, factory, knobs.
MANIFOLDS = [
    ("S2", lambda: Sphere(2), ContractSpec(injectivity_radius=math.pi)),
    ("S5", lambda: Sphere(5), ContractSpec(injectivity_radius=math.pi)),
    ("SO2", lambda: SpecialOrthogonal(2), ContractSpec(injectivity_radius=SO_RADIUS)),
    ("SO3", lambda: SpecialOrthogonal(3), ContractSpec(injectivity_radius=SO_RADIUS)),
    ("SO4", lambda: SpecialOrthogonal(4), ContractSpec(injectivity_radius=SO_RADIUS)),
    ("E3", lambda: Euclidean(3), ContractSpec(injectivity_radius=math.inf)),
]

CASES = [pytest.param(factory, spec, id=name) for name, factory, spec in MANIFOLDS]
CHECKS = [c for c in CONTRACT if c != "gradcheck"]  # gradcheck: float64 only, below


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors: one thread avoids OpenMP overhead on a loaded machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.mark.parametrize("check", CHECKS)
@pytest.mark.parametrize("factory,spec", CASES)
def test_contract(factory, spec, check, dtype):
    CONTRACT[check](factory(), dtype, spec)


@pytest.mark.parametrize("factory,spec", CASES)
def test_gradcheck(factory, spec):
    """float64 gradcheck of every differentiable op, gradgradcheck in fast mode."""
    assert_gradcheck(factory(), torch.float64, spec)


@pytest.mark.slow
@pytest.mark.parametrize("factory,spec", CASES)
def test_gradgradcheck_full(factory, spec):
    """The full (not fast-mode) gradgradcheck, and the contract at other seeds."""
    M = factory()
    assert_gradcheck(M, torch.float64, replace(spec, gradgrad_fast=False))
    for seed in (1, 2):
        for dtype in (torch.float32, torch.float64):
            check_manifold_contract(M, dtype, replace(spec, seed=seed))


def test_every_manifold_is_listed():
    """A manifold exported by manifres.manifolds must join MANIFOLDS (one line)."""
    listed = {type(factory()) for _, factory, _ in MANIFOLDS}
    exported = {
        obj
        for obj in vars(manifres.manifolds).values()
        if isinstance(obj, type)
        and issubclass(obj, manifres.manifolds.Manifold)
        and obj is not manifres.manifolds.Manifold
    }
    assert exported <= listed, f"add {sorted(c.__name__ for c in exported - listed)} to MANIFOLDS"


def test_check_manifold_contract_runs_everything():
    M = Sphere(2)
    assert check_manifold_contract(M, torch.float32, injectivity_radius=math.pi) == list(CONTRACT)
    with pytest.raises(UnknownChoiceError, match="valid"):
        check_manifold_contract(M, checks=["no such check"], injectivity_radius=math.pi)
    with pytest.raises(TypeError, match="injectivity radius"):
        check_manifold_contract(M, checks=["proj"])


# ----------------------------------------------------------------------------- broken manifolds
# Each is a small subclass with one deliberate bug, and the contract checks that must catch it.
class S2(Sphere):
    def __init__(self):
        super().__init__(2)


class UnnormalisedRetraction(S2):
    """The projective retraction without its normalisation: drifts off the sphere."""

    def retract_projective(self, x, v):
        return x + self.proj(x, v)


class SlowDrift(S2):
    """Each step is within tolerance of the sphere, but the error compounds over a chain."""

    def retract_projective(self, x, v):
        d = 0.1 * self.atol(x.dtype)
        return super().retract_projective(x, v) * self._expand(torch.linalg.vector_norm(x, dim=-1)) * (1 + d)


class FirstOrderWrong(S2):
    """A retraction on the manifold whose derivative at 0 is 2 v."""

    def retract_projective(self, x, v):
        return super().retract_projective(x, 2 * v)


class WrongScaleLog(S2):
    def log(self, x, y):
        return 1.001 * super().log(x, y)


class ProjectiveExp(S2):
    """exp replaced by the projective retraction, log by its exact inverse: round trips hold,
    but t -> exp(x, t v) is not a geodesic."""

    def exp(self, x, v):
        return super().retract_projective(x, v)

    def log(self, x, y):
        return self.proj(x, y / (x * y).sum(-1, keepdim=True))

    def dist(self, x, y):
        return self.norm(x, self.log(x, y))


class NonIsometricTransport(S2):
    def transport(self, x, y, v):
        return self.proj(y, v)


class LeftTranslationTransport(SpecialOrthogonal):
    """An isometric vector transport that maps log to -log, but is not parallel."""

    def __init__(self):
        super().__init__(3)

    def transport(self, x, y, v):
        return y @ (x.mT @ self.proj(x, v))


class NonIdempotentProj(S2):
    def proj(self, x, u):
        return 1.01 * super().proj(x, u)


class UnimplementedRetraction(S2):
    retractions = ("exp", "projective", "stereographic")


class UnlistedRetraction(S2):
    def retract_cayley(self, x, v):
        return self.exp(x, v)


class WrongDefaultRetraction(S2):
    def retract(self, x, v, method=None):
        return super().retract(x, v, "projective" if method is None else method)


class UnprojectedGradient(S2):
    def egrad2rgrad(self, x, g):
        return g


class WrongScaleGradient(S2):
    def egrad2rgrad(self, x, g):
        return 2.0 * self.proj(x, g)


class NormNotFromInner(S2):
    def norm(self, x, v):
        return 1.001 * super().norm(x, v)


class NonOrthonormalBasis(S2):
    def tangent_basis(self, x):
        b = super().tangent_basis(x)
        return torch.cat([b[..., :1], b[..., :1]], -1)  # rank 1, not dim


class _DoubledAlgebra(SphereRotation2):
    def algebra(self, x, v):
        return 2.0 * super().algebra(x, v)


class WrongLieAction(S2):
    def lie_action(self):
        return _DoubledAlgebra()


class BatchNormalisedProjPoint(S2):
    """Normalises by the norm of the whole batch, not of each point."""

    def proj_point(self, y):
        return y / torch.linalg.vector_norm(y) * math.sqrt(y.shape[0] if y.dim() > 1 else 1)


class NoBroadcast(S2):
    def exp(self, x, v):
        if x.shape != v.shape:
            raise RuntimeError("shapes differ")
        return super().exp(x, v)


class EmptyBatchCrash(S2):
    def dist(self, x, y):
        d = super().dist(x, y)
        return d * (d.max() >= 0)  # max of an empty tensor raises


class DetachedExp(S2):
    def exp(self, x, v):
        return super().exp(x.detach(), v)


class UncheckedDist(S2):
    def dist(self, x, y):
        norm = torch.linalg.vector_norm
        return 2 * torch.atan2(norm(x - y, dim=-1), norm(x + y, dim=-1))


class ConvertingTransport(S2):
    """Converts v to the dtype of x silently instead of raising DTypeError."""

    def transport(self, x, y, v):
        return super().transport(x, y, v.to(x.dtype))


BROKEN = [
    (UnnormalisedRetraction, ["on_manifold", "long_chains"]),
    (SlowDrift, ["long_chains"]),
    (FirstOrderWrong, ["retractions"]),
    (WrongScaleLog, ["exp_log", "dist"]),
    (ProjectiveExp, ["exp_log"]),
    (NonIsometricTransport, ["transport"]),
    (LeftTranslationTransport, ["transport"]),
    (NonIdempotentProj, ["proj"]),
    (UnimplementedRetraction, ["retractions"]),
    (UnlistedRetraction, ["retractions"]),
    (WrongDefaultRetraction, ["retractions"]),
    (UnprojectedGradient, ["egrad2rgrad"]),
    (WrongScaleGradient, ["egrad2rgrad"]),
    (NormNotFromInner, ["norm_inner"]),
    (NonOrthonormalBasis, ["tangent_basis"]),
    (WrongLieAction, ["lie_action"]),
    (BatchNormalisedProjPoint, ["batched"]),
    (NoBroadcast, ["broadcasting"]),
    (EmptyBatchCrash, ["empty_batch"]),
    (DetachedExp, ["gradcheck"]),
    (UncheckedDist, ["named_errors"]),
    (ConvertingTransport, ["named_errors"]),
]


@pytest.mark.parametrize("cls,checks", BROKEN, ids=[cls.__name__ for cls, _ in BROKEN])
def test_contract_catches_broken_manifold(cls, checks, dtype):
    M = cls()
    spec = ContractSpec(injectivity_radius=math.pi if isinstance(M, Sphere) else SO_RADIUS)
    for check in checks:
        if check == "gradcheck" and dtype == torch.float32:
            continue
        with pytest.raises(AssertionError, match=f"contract '{check}'"):
            CONTRACT[check](M, dtype, spec)
    with pytest.raises(AssertionError, match="contract checks failed"):
        check_manifold_contract(M, dtype, spec, checks=checks)
