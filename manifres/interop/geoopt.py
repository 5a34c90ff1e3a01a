r"""Use manifres manifolds from geoopt, and geoopt parameters with manifres' optimizers.

* :func:`to_geoopt` wraps a manifres manifold as a ``geoopt.Manifold`` whose every operation is
  computed by manifres, usable with ``geoopt.ManifoldParameter`` and geoopt's
  ``RiemannianSGD`` / ``RiemannianAdam``.
* :func:`from_geoopt` maps geoopt's ``Sphere``, ``SphereExact`` and ``Euclidean`` (which carry
  no dimension: ``n`` is given) to manifres.
* manifres' optimizers accept ``geoopt.ManifoldParameter`` directly (through
  :func:`parameter_manifold`).

Importing this module imports geoopt; ``import manifres`` does not.

Argument mapping
----------------
Both libraries put the base point first, so the bridge renames and reshapes only:

========================================  ================================================
geoopt (``m = to_geoopt(M)``)             manifres
========================================  ================================================
``m.projx(x)``                            ``M.proj_point(x)``
``m.proju(x, u)``                         ``M.proj(x, u)``
``m.egrad2rgrad(x, g)``                   ``M.egrad2rgrad(x, g)``
``m.retr(x, u)``                          ``M.retract(x, u, retraction)``
``m.expmap(x, u)`` / ``m.logmap``         ``M.exp(x, u)`` / ``M.log(x, y)``
``m.transp(x, y, v)``                     ``M.proj(y, v)`` (``"projection"``) or ``M.transport(x, y, v)``
``m.inner(x, u, v=None, keepdim=)``       ``M.inner(x, u, v)`` (one value per point; ``keepdim``
                                          keeps ``M.ndim`` singleton axes)
``m.norm``, ``m.dist(x, y, keepdim=)``    ``M.norm``, ``M.dist``
``m.random(*batch, *point_shape)``        ``M.random(*batch)`` (as a ``geoopt.ManifoldTensor``)
========================================  ================================================

``component_inner`` is ``inner(..., keepdim=True)``, so geoopt's ``RiemannianAdam`` keeps one
second moment per point, as manifres' does. Differences that remain: geoopt's SGD starts its
momentum buffer from the Euclidean gradient (manifres and torch from the Riemannian one), and
geoopt's ``Sphere`` retracts by projection (``SphereExact`` and manifres' default use the
exponential map).

Examples
--------
>>> import torch, geoopt, manifres
>>> from manifres.interop.geoopt import to_geoopt, from_geoopt
>>> m = to_geoopt(manifres.Sphere(2))
>>> x = geoopt.ManifoldParameter(torch.tensor([1.0, 0.0, 0.0]), manifold=m)
>>> opt = geoopt.optim.RiemannianSGD([x], lr=0.5)
>>> (x @ torch.tensor([0.0, -1.0, 0.0])).backward(); opt.step()
>>> x.detach()
tensor([0.8776, 0.4794, 0.0000])
>>> from_geoopt(geoopt.SphereExact(), 2), from_geoopt(m)
(Sphere(2), Sphere(2))
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .._validation import check_choice, check_int
from ..errors import ParameterError
from ..manifolds import Euclidean, Manifold, Sphere
from ..manifolds.base import check_manifold

try:
    import geoopt
except ImportError as err:  # pragma: no cover - depends on the environment
    raise ImportError("manifres.interop.geoopt needs geoopt (pip install 'geoopt>=0.5')") from err

__all__ = ["ManifresManifold", "to_geoopt", "from_geoopt", "parameter_manifold"]

_TRANSPORTS = ("projection", "parallel")


class ManifresManifold(geoopt.Manifold):
    """A ``geoopt.Manifold`` computed by a manifres manifold (see the module docstring).

    Parameters
    ----------
    manifold : Manifold
        The manifres manifold (held as ``.manifres``).
    retraction : str or None
        The manifres retraction behind ``retr`` (default: the manifold's first).
    transport : {"projection", "parallel"}
        The vector transport behind ``transp`` (geoopt's optimizers move their moments with
        it).
    """

    name = "Manifres"
    reversible = False

    def __init__(self, manifold: Manifold, retraction: str | None = None, transport: str = "projection"):
        super().__init__()
        self.manifres = check_manifold(manifold, "to_geoopt")
        self.ndim = manifold.ndim
        manifold.retraction(retraction)  # raises UnknownChoiceError with the valid names
        self.retraction = manifold.retractions[0] if retraction is None else retraction
        self.transport = check_choice(transport, _TRANSPORTS, "transport", "to_geoopt")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ManifresManifold) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def _key(self) -> tuple:
        return (self.manifres, self.retraction, self.transport)

    def extra_repr(self) -> str:
        return f"{self.manifres!r}, retraction={self.retraction!r}, transport={self.transport!r}"

    # -------------------------------------------------------------- shapes and checks
    def _keep(self, t: Tensor, keepdim: bool) -> Tensor:
        return t.reshape(t.shape + (1,) * self.ndim) if keepdim else t

    def _check_shape(self, shape: tuple[int, ...], name: str) -> tuple[bool, str | None]:
        point = tuple(self.manifres.point_shape)
        ok = len(shape) >= self.ndim and tuple(shape[len(shape) - self.ndim :]) == point
        reason = None if ok else f"'{name}' of {self!r} must have shape (..., {', '.join(map(str, point))})"
        return ok, reason

    def _check_point_on_manifold(self, x: Tensor, *, atol: float = 1e-5, rtol: float = 1e-5):
        ok = bool(self.manifres.is_point(x, atol=atol).all())
        return ok, None if ok else f"points of {self.manifres!r} off the manifold (atol={atol})"

    def _check_vector_on_tangent(self, x: Tensor, u: Tensor, *, atol: float = 1e-5, rtol: float = 1e-5):
        ok = bool(self.manifres.is_tangent(x, u, atol=atol).all())
        return ok, None if ok else f"vectors not tangent to {self.manifres!r} (atol={atol})"

    # -------------------------------------------------------------- geometry
    def projx(self, x: Tensor) -> Tensor:
        return self.manifres.proj_point(x)

    def proju(self, x: Tensor, u: Tensor) -> Tensor:
        return self.manifres.proj(x, u)

    def egrad2rgrad(self, x: Tensor, u: Tensor) -> Tensor:
        return self.manifres.egrad2rgrad(x, u)

    def retr(self, x: Tensor, u: Tensor) -> Tensor:
        return self.manifres.retract(x, u, self.retraction)

    def expmap(self, x: Tensor, u: Tensor) -> Tensor:
        return self.manifres.exp(x, u)

    def logmap(self, x: Tensor, y: Tensor) -> Tensor:
        return self.manifres.log(x, y)

    def transp(self, x: Tensor, y: Tensor, v: Tensor) -> Tensor:
        if self.transport == "projection":
            return self.manifres.proj(y, v)
        return self.manifres.transport(x, y, v)

    def inner(self, x: Tensor, u: Tensor, v: Tensor | None = None, *, keepdim: bool = False) -> Tensor:
        ip = self.manifres.inner(x, u, u if v is None else v)
        ip = self._keep(ip, keepdim)
        k = self.ndim if keepdim else 0
        batch = tuple(x.shape[: x.dim() - self.ndim]) + (1,) * k
        return ip.expand(torch.broadcast_shapes(batch, ip.shape))

    def norm(self, x: Tensor, u: Tensor, *, keepdim: bool = False) -> Tensor:
        return self._keep(self.manifres.norm(x, u), keepdim)

    def dist(self, x: Tensor, y: Tensor, *, keepdim: bool = False) -> Tensor:
        return self._keep(self.manifres.dist(x, y), keepdim)

    def random(self, *size: int, dtype: torch.dtype | None = None, device: Any = None, **kwargs: Any):
        """Random points: ``size`` is the full shape, ending in the point shape (geoopt)."""
        size = tuple(size[0]) if len(size) == 1 and isinstance(size[0], (tuple, list)) else size
        ok, reason = self._check_shape(size, "x")
        if not ok:
            raise ValueError(reason)
        batch = size[: len(size) - self.ndim]
        x = self.manifres.random(*batch, dtype=dtype, device=device, generator=kwargs.get("generator"))
        return geoopt.ManifoldTensor(x, manifold=self)


def to_geoopt(
    manifold: Manifold, retraction: str | None = None, transport: str = "projection"
) -> ManifresManifold:
    """A geoopt manifold computed by the manifres ``manifold``.

    Parameters
    ----------
    manifold : Manifold
    retraction : str or None
        A name in ``manifold.retractions`` for ``retr`` (default: the first).
    transport : {"projection", "parallel"}
        What ``transp`` does.

    Returns
    -------
    ManifresManifold
        A ``geoopt.Manifold`` (an ``nn.Module``) with ``.manifres`` holding ``manifold``.

    Raises
    ------
    TypeError
        If ``manifold`` is not a manifres manifold.
    UnknownChoiceError
        For an unknown retraction or transport.
    """
    return ManifresManifold(manifold, retraction, transport)


def from_geoopt(manifold: Any, n: int | None = None) -> Manifold:
    """The manifres manifold matching a geoopt manifold.

    ``Sphere()`` and ``SphereExact()`` -> ``manifres.Sphere(n)`` (points of length ``n + 1``),
    ``Euclidean(ndim)`` with ``ndim`` 0 or 1 -> ``manifres.Euclidean(n)``, and a manifold made
    by :func:`to_geoopt` -> its manifres manifold.

    Parameters
    ----------
    manifold : geoopt.Manifold
    n : int
        The dimension (geoopt manifolds carry none); not needed for a :func:`to_geoopt` one.

    Raises
    ------
    TypeError
        For a geoopt manifold without a manifres counterpart (a sphere restricted to a
        subspace, Stiefel, Lorentz, ...).
    ParameterError
        If ``n`` is missing or not an integer ``>= 1``.

    Notes
    -----
    ``geoopt.Euclidean(ndim=0)`` treats every entry as its own coordinate, so geoopt's Adam is
    elementwise on it; ``manifres.Euclidean(n)`` in a manifres ``RiemannianAdam`` group keeps
    one second moment per vector. manifres' optimizers therefore treat a geoopt Euclidean
    parameter as a plain one (see :func:`parameter_manifold`).
    """
    if isinstance(manifold, ManifresManifold):
        return manifold.manifres
    if not isinstance(manifold, geoopt.Manifold):
        raise TypeError(f"from_geoopt needs a geoopt manifold, got {type(manifold).__name__}")
    if n is None:
        raise ParameterError(f"from_geoopt: geoopt's {manifold!r} carries no dimension; pass n")
    n = check_int(n, "n", "from_geoopt", minimum=1)
    if isinstance(manifold, geoopt.Sphere) and getattr(manifold, "projector", None) is None:
        return Sphere(n)
    if isinstance(manifold, geoopt.Euclidean) and manifold.ndim in (0, 1):
        return Euclidean(n)
    raise TypeError(f"no manifres counterpart for the geoopt manifold {manifold!r}")


def parameter_manifold(p: Tensor) -> Manifold | None:
    """The manifold manifres' optimizers use for a geoopt ``ManifoldParameter`` ``p``.

    A :func:`to_geoopt` manifold gives its manifres manifold; ``Sphere``/``SphereExact`` give
    ``manifres.Sphere(p.shape[-1] - 1)``; ``Euclidean`` gives ``None`` (the plain update, the
    one geoopt uses). The retraction and transport are the optimizer group's.

    Raises
    ------
    TypeError
        For a geoopt manifold without a manifres counterpart.
    """
    m = p.manifold
    if isinstance(m, ManifresManifold):
        return m.manifres
    if isinstance(m, geoopt.Euclidean):
        return None
    if isinstance(m, geoopt.Sphere) and p.dim() >= 1:
        return from_geoopt(m, p.shape[-1] - 1)
    raise TypeError(
        f"manifres' optimizers cannot handle a parameter on the geoopt manifold {m!r}: no manifres "
        "counterpart (use geoopt's optimizers, or a manifres manifold through to_geoopt)"
    )
