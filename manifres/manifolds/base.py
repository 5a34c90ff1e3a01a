"""The manifold contract: one abstract class that every manifres manifold implements.

Conventions
-----------
* Manifold axes last, any leading batch shape; batch shapes broadcast.
* Base point first: ``proj(x, u)``, ``retract(x, v)``, ``exp(x, v)``, ``log(x, y)``,
  ``transport(x, y, v)``, ``dist(x, y)``, ``inner(x, u, v)``.
* Tangent vectors are ambient: they have the shape of points.
* Manifolds are small immutable, hashable objects (not ``nn.Module``): layers hold one.
* Under ``torch.autocast`` the public operations compute in the dtype of their (float32 or
  float64) inputs and return it: autocast is switched off inside them (see
  :func:`manifres._validation.full_precision`), as rounding a rotation or a unit vector to
  bfloat16 would leave it far off the manifold.
* Shape, dtype and device checks are always on (they read metadata only). Value checks (on the
  manifold, tangent, finite) are opt-in: ``validate=True`` at construction, or
  :func:`manifres.set_validation` / :func:`manifres.validation` globally.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from .. import _config
from .._numerics import safe_sqrt, scaled_norm
from .._validation import POINT_ATOL, SUPPORTED_DTYPES, check_floating, full_precision
from ..errors import ManifoldError, ShapeError, UnknownChoiceError
from .frames import Frame, ProjectionFrame

if TYPE_CHECKING:  # pragma: no cover
    from .actions import LieGroupAction

__all__ = ["Manifold", "check_manifold"]

#: Public operations that run with autocast off (wrapped where a class defines them).
_FULL_PRECISION_OPS = frozenset(
    "proj proj_point exp log dist angle transport inner norm geodesic egrad2rgrad retract hat vee "
    "random_tangent tangent_basis".split()
)


def check_manifold(manifold: object, owner: str) -> Manifold:
    """Return ``manifold`` if it is a manifres :class:`Manifold`, else raise ``TypeError``."""
    if not isinstance(manifold, Manifold):
        raise TypeError(f"{owner}: manifold must be a manifres Manifold, got {type(manifold).__name__}")
    return manifold


class Manifold(abc.ABC):
    """Abstract base class of manifres manifolds.

    Subclasses implement the geometry; this class holds the checks, the retraction registry and
    the derived operations (``geodesic``, ``norm``, ``is_point``, ``check_point``, ...).

    Parameters
    ----------
    validate : bool or None
        Check values (points on the manifold, vectors tangent, finite inputs) in every operation
        and raise :class:`~manifres.errors.ManifoldError` on failure. ``None`` follows the global
        switch :func:`manifres.set_validation` (off by default).
    """

    #: Names of the retractions this manifold offers; the first is the default.
    retractions: tuple[str, ...] = ("exp",)

    def __init__(self, validate: bool | None = None) -> None:
        self._validate = validate

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        for name, fn in list(vars(cls).items()):
            if callable(fn) and (name in _FULL_PRECISION_OPS or name.startswith("retract_")):
                setattr(cls, name, full_precision(fn))

    # ------------------------------------------------------------------ identity
    @abc.abstractmethod
    def _params(self) -> tuple:
        """Constructor arguments that define equality and hashing."""

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self._params() == other._params()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._params()))

    def __repr__(self) -> str:
        args = ", ".join(repr(p) for p in self._params())
        return f"{type(self).__name__}({args})"

    # ------------------------------------------------------------------ shape
    @property
    @abc.abstractmethod
    def point_shape(self) -> tuple[int, ...]:
        """Shape of the manifold axes of a point (the trailing axes)."""

    @property
    @abc.abstractmethod
    def dim(self) -> int:
        """Intrinsic dimension."""

    @property
    def ndim(self) -> int:
        """Number of manifold axes (1 for vectors, 2 for matrices)."""
        return len(self.point_shape)

    @property
    def validate(self) -> bool:
        """Whether value checks run (this manifold's flag, else the global switch)."""
        return _config.get_validation() if self._validate is None else self._validate

    def _check(self, *tensors: Tensor, names: Sequence[str]) -> None:
        """Metadata checks (always on): dtype, device, trailing shape, broadcastable batches."""
        t0 = tensors[0]
        ok = isinstance(t0, Tensor) and t0.dtype in SUPPORTED_DTYPES
        if ok and t0.shape[-self.ndim :] == self.point_shape:
            # fast path: identical metadata everywhere (the common case in a hot loop)
            if all(
                isinstance(t, Tensor)
                and t.dtype == t0.dtype
                and t.device == t0.device
                and t.shape == t0.shape
                for t in tensors[1:]
            ):
                return
        check_floating(*tensors, names=names)
        shape = self.point_shape
        k = len(shape)
        for name, t in zip(names, tensors, strict=True):
            if t.dim() < k or tuple(t.shape[t.dim() - k :]) != shape:
                raise ShapeError(
                    f"{self!r}: {name} must have shape (..., {', '.join(map(str, shape))}), "
                    f"got {tuple(t.shape)}"
                )
        if len(tensors) > 1:
            try:
                torch.broadcast_shapes(*(t.shape for t in tensors))
            except RuntimeError:
                shapes = ", ".join(f"{n}: {tuple(t.shape)}" for n, t in zip(names, tensors, strict=True))
                raise ShapeError(f"{self!r}: batch shapes do not broadcast ({shapes})") from None

    def _sum(self, t: Tensor, keepdim: bool = False) -> Tensor:
        """Sum over the manifold axes."""
        return t.sum(dim=tuple(range(-self.ndim, 0)), keepdim=keepdim)

    def _expand(self, t: Tensor) -> Tensor:
        """Append ``ndim`` singleton axes to a batch-shaped tensor."""
        return t.reshape(t.shape + (1,) * self.ndim)

    # ------------------------------------------------------------------ geometry
    @abc.abstractmethod
    def proj(self, x: Tensor, u: Tensor) -> Tensor:
        """Orthogonal projection of an ambient vector ``u`` onto the tangent space at ``x``."""

    @abc.abstractmethod
    def proj_point(self, y: Tensor) -> Tensor:
        """Nearest point of the manifold to an ambient point ``y``."""

    @abc.abstractmethod
    def exp(self, x: Tensor, v: Tensor) -> Tensor:
        """Riemannian exponential map ``exp_x(v)``."""

    @abc.abstractmethod
    def log(self, x: Tensor, y: Tensor) -> Tensor:
        """Riemannian logarithm ``log_x(y)``, the tangent at ``x`` pointing to ``y``."""

    @abc.abstractmethod
    def dist(self, x: Tensor, y: Tensor) -> Tensor:
        """Geodesic distance, shape: the broadcast batch shape."""

    @abc.abstractmethod
    def transport(self, x: Tensor, y: Tensor, v: Tensor) -> Tensor:
        """Parallel transport of ``v`` from ``x`` to ``y`` along the minimising geodesic."""

    @abc.abstractmethod
    def random(
        self,
        *batch: int,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Random points of shape ``(*batch, *point_shape)``."""

    @abc.abstractmethod
    def _point_residual(self, x: Tensor) -> Tensor:
        """Batch-shaped distance-like measure of how far ``x`` is from the manifold."""

    @abc.abstractmethod
    def _tangent_residual(self, x: Tensor, v: Tensor) -> Tensor:
        """Batch-shaped measure of how far ``v`` is from the tangent space at ``x``."""

    def inner(self, x: Tensor, u: Tensor, v: Tensor) -> Tensor:
        """Riemannian inner product ``<u, v>_x`` (Frobenius for embedded metrics)."""
        self._check(x, u, v, names=("x", "u", "v"))
        return self._sum(u * v)

    def norm(self, x: Tensor, v: Tensor) -> Tensor:
        """Norm ``||v||_x = sqrt(<v, v>_x)``; 0 with a zero gradient at the zero vector.

        For the embedded (Frobenius) metric computed as ``m ||v / m||``, ``m = max |v_i|``, so
        that it neither underflows (``|v| = 1e-23`` in float32) nor overflows (``1e20``); a
        manifold with another :meth:`inner` gets ``sqrt(inner(x, v, v))``."""
        if type(self).inner is not Manifold.inner:
            return safe_sqrt(self.inner(x, v, v))
        self._check(x, v, names=("x", "v"))
        k = self.ndim
        n = scaled_norm(v, dim=tuple(range(-k, 0)))
        return n.expand(torch.broadcast_shapes(x.shape[: x.dim() - k], v.shape[: v.dim() - k]))

    def geodesic(self, x: Tensor, v: Tensor, t: float | Tensor) -> Tensor:
        """Point ``exp_x(t v)`` of the geodesic through ``x`` with velocity ``v``.

        ``t`` is a number or a tensor whose shape broadcasts against the batch shape.
        """
        t = torch.as_tensor(t, dtype=v.dtype, device=v.device)
        return self.exp(x, self._expand(t) * v)

    def random_tangent(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """A random tangent vector at ``x`` (a projected standard normal)."""
        self._check(x, names=("x",))
        u = torch.randn(x.shape, dtype=x.dtype, device=x.device, generator=generator)
        return self.proj(x, u)

    # ------------------------------------------------------------------ capabilities
    # Optional parts of the contract: the defaults hold for a manifold embedded in Euclidean
    # space with the induced metric; a manifold with another metric, a better frame or a group
    # action overrides them. Flows, stability, nn and optim call only these.
    def egrad2rgrad(self, x: Tensor, g: Tensor) -> Tensor:
        """Riemannian gradient at ``x`` from the Euclidean gradient ``g`` of the embedding.

        The default is the tangent projection :math:`P_x g` (exact for the induced metric).
        """
        return self.proj(x, g)

    def tangent_frame(self, x: Tensor) -> Frame:
        """Orthonormal frame of the tangent spaces at a flat batch ``x`` of shape
        ``(B, *point_shape)`` (see :mod:`manifres.manifolds.frames`).

        The default is the dense :class:`~manifres.manifolds.frames.ProjectionFrame`
        (orthonormal in the Euclidean metric of the embedding, :math:`O(D^3)`).
        """
        return ProjectionFrame(self, x)

    def tangent_basis(self, x: Tensor) -> Tensor:
        r"""Orthonormal basis of :math:`T_x M` as the columns of a matrix.

        .. math:: B_x \in \mathbb{R}^{D \times k},\quad B_x^T B_x = I_k,\quad
                  \operatorname{range} B_x = T_x M

        with ``D`` the number of ambient coordinates (the point shape flattened row-major) and
        ``k = dim``.

        Parameters
        ----------
        x : Tensor, shape (..., *point_shape)

        Returns
        -------
        Tensor, shape (..., D, k)

        Examples
        --------
        >>> import torch, manifres
        >>> x = torch.tensor([0.0, 0.6, 0.8], dtype=torch.float64)
        >>> b = manifres.Sphere(2).tangent_basis(x)
        >>> b.shape, torch.allclose(b.T @ b, torch.eye(2, dtype=torch.float64))
        (torch.Size([3, 2]), True)
        """
        self._check(x, names=("x",))
        batch = x.shape[: x.dim() - self.ndim]
        m = self.tangent_frame(x.reshape((-1,) + tuple(self.point_shape))).matrix()
        return m.reshape(batch + m.shape[1:])

    def lie_action(self) -> LieGroupAction:
        """The Lie-group action used by the Lie-group integrators (:mod:`manifres.manifolds.actions`).

        Raises
        ------
        UnknownChoiceError
            If the manifold has none (only the retraction Euler method works there).
        """
        raise UnknownChoiceError(
            f"{self!r} has no Lie-group action, which the Lie-group methods (rkmk2, rkmk4, cg2, "
            "cf4) need; the valid method here is 'euler' (or give the manifold a lie_action())"
        )

    # ------------------------------------------------------------------ retractions
    def retract(self, x: Tensor, v: Tensor, method: str | None = None) -> Tensor:
        """Retraction ``R_x(v)`` by name (``None``: the first of :attr:`retractions`).

        Raises
        ------
        UnknownChoiceError
            If ``method`` is not one of :attr:`retractions`.
        """
        return self.retraction(method)(x, v)

    def retraction(self, method: str | None = None):
        """Return the retraction function ``(x, v) -> R_x(v)`` named ``method``."""
        name = self.retractions[0] if method is None else method
        if name not in self.retractions:
            raise UnknownChoiceError(
                f"{self!r} has no retraction {method!r}; valid names: {', '.join(self.retractions)}"
            )
        return self.exp if name == "exp" else getattr(self, f"retract_{name}")

    # ------------------------------------------------------------------ membership
    def atol(self, dtype: torch.dtype) -> float:
        """Default tolerance of :meth:`is_point` and :meth:`check_tangent` for ``dtype``."""
        return POINT_ATOL.get(dtype, 1e-5)

    def is_point(self, x: Tensor, atol: float | None = None) -> Tensor:
        """Boolean tensor of the batch shape: is ``x`` finite and on the manifold within ``atol``."""
        self._check(x, names=("x",))
        atol = self.atol(x.dtype) if atol is None else atol
        res = self._point_residual(x)
        return torch.isfinite(self._sum(x)) & (res <= atol)

    def is_tangent(self, x: Tensor, v: Tensor, atol: float | None = None) -> Tensor:
        """Boolean tensor of the batch shape: is ``v`` finite and tangent at ``x`` within ``atol``."""
        self._check(x, v, names=("x", "v"))
        atol = self.atol(v.dtype) if atol is None else atol
        res = self._tangent_residual(x, v)
        scale = 1.0 + safe_sqrt(self._sum(v * v))
        return torch.isfinite(self._sum(v)) & (res <= atol * scale)

    def check_point(self, x: Tensor, atol: float | None = None, name: str = "x") -> None:
        """Raise :class:`~manifres.errors.ManifoldError` unless every point of ``x`` is on the
        manifold; the message names the first offending index and its residual."""
        self._check(x, names=(name,))
        atol = self.atol(x.dtype) if atol is None else atol
        with torch.no_grad():
            bad = ~self.is_point(x, atol)
            if bool(bad.any()):
                idx = tuple(int(i) for i in torch.nonzero(bad)[0]) if bad.dim() else ()
                sample = x[idx] if idx else x
                if not bool(torch.isfinite(sample).all()):
                    raise ManifoldError(f"{self!r}: {name}{list(idx)} is not finite (NaN or Inf)")
                res = float(self._point_residual(sample))
                raise ManifoldError(
                    f"{self!r}: {name}{list(idx)} is not on the manifold: "
                    f"{self._residual_name} = {res:.3e} > atol = {atol:.1e}"
                )

    def check_tangent(self, x: Tensor, v: Tensor, atol: float | None = None, name: str = "v") -> None:
        """Raise :class:`~manifres.errors.ManifoldError` unless ``v`` is tangent at ``x``."""
        self._check(x, v, names=("x", name))
        atol = self.atol(v.dtype) if atol is None else atol
        with torch.no_grad():
            bad = ~self.is_tangent(x, v, atol)
            if bool(bad.any()):
                idx = tuple(int(i) for i in torch.nonzero(bad)[0]) if bad.dim() else ()
                xb, vb = torch.broadcast_tensors(x, v)
                if not bool(torch.isfinite(vb[idx] if idx else vb).all()):
                    raise ManifoldError(f"{self!r}: {name}{list(idx)} is not finite (NaN or Inf)")
                res = float(self._tangent_residual(xb[idx] if idx else xb, vb[idx] if idx else vb))
                raise ManifoldError(
                    f"{self!r}: {name}{list(idx)} is not tangent at x: "
                    f"{self._tangent_residual_name} = {res:.3e} > atol = {atol:.1e}"
                )

    _residual_name = "distance to the manifold"
    _tangent_residual_name = "normal component"

    def _validate_points(self, **tensors: Tensor) -> None:
        """Run :meth:`check_point` on each named tensor when validation is on."""
        if self.validate:
            for name, t in tensors.items():
                self.check_point(t, name=name)

    def _validate_tangent(self, x: Tensor, v: Tensor, name: str = "v") -> None:
        if self.validate:
            self.check_tangent(x, v, name=name)
