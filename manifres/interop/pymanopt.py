"""Hand manifres manifolds to pymanopt's solvers, and convert pymanopt manifolds back.

:func:`to_pymanopt` returns a ``pymanopt.manifolds.manifold.Manifold`` whose every operation
(projection, retraction, exp, log, transport, Riemannian gradient and Hessian) is computed by
manifres in float64, so any pymanopt solver (steepest descent, conjugate gradients, trust
regions) runs on manifres' geometry. Points and tangent vectors are numpy arrays in manifres'
layout (ambient tangent vectors).

Examples
--------
>>> import numpy as np, pymanopt, manifres
>>> from manifres.interop.pymanopt import to_pymanopt
>>> A = np.diag([3.0, 2.0, 1.0])
>>> M = to_pymanopt(manifres.Sphere(2))
>>> @pymanopt.function.numpy(M)
... def cost(x):
...     return -x @ A @ x
>>> @pymanopt.function.numpy(M)
... def egrad(x):
...     return -2 * A @ x
>>> problem = pymanopt.Problem(M, cost, euclidean_gradient=egrad)
>>> opt = pymanopt.optimizers.SteepestDescent(verbosity=0)
>>> x = opt.run(problem, initial_point=np.array([0.6, 0.6, 0.52915026])).point
>>> bool(np.allclose(np.abs(x), [1, 0, 0], atol=1e-4))
True
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..manifolds import Euclidean, Manifold, SpecialOrthogonal, Sphere

__all__ = ["to_pymanopt", "from_pymanopt"]


def _t(a: Any) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a, dtype=np.float64))


def _n(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


def to_pymanopt(manifold: Manifold) -> Any:
    """Wrap ``manifold`` as a pymanopt manifold computed by manifres (float64, CPU).

    Parameters
    ----------
    manifold : Manifold
        A manifres Sphere, SpecialOrthogonal or Euclidean.

    Returns
    -------
    pymanopt.manifolds.manifold.Manifold
        With ``.manifres`` holding ``manifold``. Its inner product, norm and Riemannian
        gradient are the manifold's (``inner``, ``norm``, ``egrad2rgrad``), so a manifold with
        its own metric keeps it; the Riemannian Hessian (trust regions) is known for the
        embedded metrics of Sphere, SpecialOrthogonal and Euclidean only and raises
        ``NotImplementedError`` otherwise.
    """
    try:
        from pymanopt.manifolds.manifold import Manifold as PManifold
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("manifres.interop.pymanopt needs pymanopt (pip install pymanopt)") from err

    M = manifold
    is_so = M.ndim == 2
    # the Hessian formulas below hold for these classes (the metric of the embedding) only
    embedded = type(M) in (Sphere, Euclidean, SpecialOrthogonal)

    class ManifresManifold(PManifold):
        """pymanopt view of a manifres manifold."""

        def __init__(self) -> None:
            super().__init__(f"manifres {M!r}", M.dim)
            self.manifres = M

        @property
        def typical_dist(self) -> float:
            if isinstance(M, Euclidean):
                return float(np.sqrt(M.dim))
            return float(np.pi * (np.sqrt(M.n) if is_so else 1.0))

        def inner_product(self, point, a, b):
            return float(M.inner(_t(point), _t(a), _t(b)))

        def norm(self, point, tangent_vector):
            return float(M.norm(_t(point), _t(tangent_vector)))

        def projection(self, point, vector):
            return _n(M.proj(_t(point), _t(vector)))

        to_tangent_space = projection

        def euclidean_to_riemannian_gradient(self, point, euclidean_gradient):
            return _n(M.egrad2rgrad(_t(point), _t(euclidean_gradient)))

        def euclidean_to_riemannian_hessian(
            self, point, euclidean_gradient, euclidean_hessian, tangent_vector
        ):
            if not embedded:
                raise NotImplementedError(
                    f"{M!r} has its own metric (inner or egrad2rgrad overridden); the bridge knows "
                    "the Riemannian Hessian of the embedded metrics only: use a first-order solver"
                )
            x, g, h, v = (_t(a) for a in (point, euclidean_gradient, euclidean_hessian, tangent_vector))
            if isinstance(M, Sphere):
                corr = (x * g).sum() * v
            elif is_so:
                xg = x.transpose(-1, -2) @ g
                corr = v @ (0.5 * (xg + xg.transpose(-1, -2)))
            else:
                corr = torch.zeros_like(v)
            return _n(M.proj(x, h - corr))

        def random_point(self):
            return _n(M.random(dtype=torch.float64))

        def random_tangent_vector(self, point):
            v = M.random_tangent(_t(point))
            return _n(v / v.norm())

        def zero_vector(self, point):
            return np.zeros_like(np.asarray(point, dtype=np.float64))

        def retraction(self, point, tangent_vector):
            return _n(M.retract(_t(point), _t(tangent_vector)))

        def exp(self, point, tangent_vector):
            return _n(M.exp(_t(point), _t(tangent_vector)))

        def log(self, point_a, point_b):
            return _n(M.log(_t(point_a), _t(point_b)))

        def dist(self, point_a, point_b):
            return float(M.dist(_t(point_a), _t(point_b)))

        def transport(self, point_a, point_b, tangent_vector_a):
            return _n(M.transport(_t(point_a), _t(point_b), _t(tangent_vector_a)))

        def pair_mean(self, point_a, point_b):
            x = _t(point_a)
            return _n(M.exp(x, 0.5 * M.log(x, _t(point_b))))

    return ManifresManifold()


def from_pymanopt(manifold: Any) -> Manifold:
    """Return the manifres manifold matching a pymanopt manifold.

    ``Sphere(k)`` (vectors of length ``k``) -> ``manifres.Sphere(k - 1)``,
    ``SpecialOrthogonalGroup(n)`` (``k = 1``) -> ``manifres.SpecialOrthogonal(n)``,
    ``Euclidean(n)`` -> ``manifres.Euclidean(n)``, and a wrapper made by :func:`to_pymanopt`
    back to its manifres manifold.

    Raises
    ------
    TypeError
        For a pymanopt manifold without a manifres counterpart.
    """
    import manifres

    if hasattr(manifold, "manifres"):
        return manifold.manifres
    name = type(manifold).__name__
    if name == "Sphere":
        shape = manifold._shape
        if len(shape) == 1:
            return Sphere(int(shape[0]) - 1)
    if name == "SpecialOrthogonalGroup" and manifold._k == 1:
        return manifres.SpecialOrthogonal(int(manifold._n))
    if name == "Euclidean":
        shape = manifold._shape
        if len(shape) == 1:
            return Euclidean(int(shape[0]))
    raise TypeError(f"no manifres counterpart for the pymanopt manifold {manifold!r}")
