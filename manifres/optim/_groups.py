r"""Shared parts of the Riemannian optimizers: the manifold of each parameter, parameter-group
checks, weight decay, vector transport, and a state dict made of plain data.

The manifold of a parameter
---------------------------
A group's ``"manifold"`` (or the optimizer's ``manifold=`` default) applies to every parameter
of the group. A group without one is Euclidean, except for parameters that carry their own
manifold: a :class:`manifres.ManifoldParameter`, or a ``geoopt.ManifoldParameter`` (read
through :mod:`manifres.interop.geoopt`). A parameter whose own manifold differs from its
group's is refused when the group is added.

Weight decay
------------
The decay term is the Riemannian gradient of :math:`\tfrac{\lambda}{2}\|x - r\|^2` (the ambient
distance to a reference point :math:`r`, the group's ``"decay_to"``):

.. math:: \xi = \operatorname{egrad2rgrad}_x\big(g + \lambda\,(x - r)\big)

With :math:`r = 0` on a Euclidean group this is the L2 penalty of :class:`torch.optim.SGD`. On
a sphere or a rotation group :math:`\|x\|` is constant, so :math:`\lambda x` is normal to the
manifold and the projection removes it: ``weight_decay > 0`` on a non-Euclidean manifold
therefore needs ``decay_to`` (a point on the manifold, broadcastable against the parameters),
and is refused without one instead of doing nothing silently.

State dict
----------
``state_dict()`` stores each group's manifold as plain data (``{"class": ..., "repr": ...}``),
and in ``"param_manifolds"`` the manifold each parameter carries itself (``None`` for plain
ones), so a checkpoint loads with ``torch.load(weights_only=True)``. ``load_state_dict`` takes
the manifold objects (and ``decay_to``) from the live parameter groups, after checking that they
are the manifolds the checkpoint was saved with; it never unpickles a manifold.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .._validation import check_choice, check_int
from ..errors import ManifoldError, ParameterError
from ..manifolds.base import Manifold
from ..manifolds.euclidean import Euclidean

__all__ = [
    "RiemannianMixin",
    "TRANSPORTS",
    "manifold_spec",
    "param_manifold",
    "check_group",
    "riemannian_gradient",
    "vector_transport",
    "batch_inner",
]

#: Names of the vector transports that move optimizer state to the new point.
TRANSPORTS = ("projection", "parallel")

#: Group keys restored from the live parameter groups on ``load_state_dict`` (objects bound to
#: the live parameters, not hyperparameters).
_LIVE_KEYS = ("manifold", "decay_to")


def manifold_spec(manifold: Manifold | None) -> dict[str, str] | None:
    """Plain-data description of a manifold, as stored in an optimizer's state dict.

    Examples
    --------
    >>> import manifres
    >>> manifold_spec(manifres.Sphere(2))
    {'class': 'manifres.manifolds.sphere.Sphere', 'repr': 'Sphere(2)'}
    """
    if manifold is None:
        return None
    t = type(manifold)
    return {"class": f"{t.__module__}.{t.__qualname__}", "repr": repr(manifold)}


def _own_manifold(p: Tensor) -> Manifold | None:
    """The manifold a parameter carries (``ManifoldParameter``, geoopt), or ``None``."""
    m = getattr(p, "manifold", None)
    if m is None or isinstance(m, Manifold):
        return m
    if type(m).__module__.split(".")[0] == "geoopt" or type(m).__module__ == "manifres.interop.geoopt":
        from ..interop.geoopt import parameter_manifold  # geoopt is loaded: p is its parameter

        return parameter_manifold(p)
    raise TypeError(
        f"a parameter's manifold attribute must be a manifres or geoopt manifold, got {type(m).__name__}"
    )


def param_manifold(group: dict[str, Any], p: Tensor) -> Manifold | None:
    """The manifold the optimizer uses for ``p``: the group's, else the parameter's own."""
    m = group["manifold"]
    return m if m is not None else _own_manifold(p)


def _check_numbers_and_names(owner: str, group: dict[str, Any]) -> None:
    check_choice(group["transport"], TRANSPORTS, "transport", owner)
    if group["stabilize"] is not None:
        check_int(group["stabilize"], "stabilize", owner, minimum=1)
    manifold = group["manifold"]
    if manifold is not None and not isinstance(manifold, Manifold):
        raise TypeError(
            f"{owner}: a group's manifold must be a manifres Manifold or None, got "
            f"{type(manifold).__name__} (a geoopt manifold converts with "
            "manifres.interop.geoopt.from_geoopt(m, n), or put it on a geoopt.ManifoldParameter)"
        )
    ref = group["decay_to"]
    if ref is not None and not isinstance(ref, Tensor):
        raise TypeError(f"{owner}: decay_to must be a tensor (a point) or None, got {type(ref).__name__}")


def check_group(owner: str, group: dict[str, Any]) -> None:
    """Check a parameter group: names, manifolds, weight decay, and that its parameters lie on
    their manifold.

    Reads the parameter values once (a host-device synchronisation on GPUs) when a group is
    added or loaded, never in ``step``.

    Raises
    ------
    UnknownChoiceError
        For an unknown transport or retraction name.
    ParameterError
        For a bad ``stabilize``, a parameter whose own manifold differs from the group's, or
        ``weight_decay > 0`` on a non-Euclidean manifold without ``decay_to``.
    ManifoldError
        If a parameter (or ``decay_to``) is not on its manifold.
    TypeError
        If a manifold or ``decay_to`` has the wrong type.
    """
    _check_numbers_and_names(owner, group)
    wd, ref = group["weight_decay"], group["decay_to"]
    for i, p in enumerate(group["params"]):
        own = _own_manifold(p)
        if group["manifold"] is not None and own is not None and own != group["manifold"]:
            raise ParameterError(
                f"{owner}: param[{i}] lives on {own!r} but its group says {group['manifold']!r}; "
                "drop the group's manifold (the parameter's own is used) or make them agree"
            )
        manifold = group["manifold"] if group["manifold"] is not None else own
        if wd > 0 and ref is None and manifold is not None and not isinstance(manifold, Euclidean):
            raise ParameterError(
                f"{owner}: weight_decay={wd:g} would do nothing on {manifold!r} (param[{i}]): the "
                "L2 term lambda*x is normal to a sphere or a rotation group (|x| is constant "
                "there), and the Riemannian gradient removes it. Pass decay_to=<a point> to pull "
                "the parameters toward it (the gradient of (lambda/2)|x - decay_to|^2), or put "
                "them in a group with weight_decay=0"
            )
        if ref is not None:
            _check_reference(owner, i, p, ref, manifold)
        if manifold is None:
            continue
        manifold.retraction(group["retraction"])  # raises UnknownChoiceError with the valid names
        try:
            manifold.check_point(p.detach(), name=f"param[{i}]")
        except ManifoldError as e:
            raise ManifoldError(
                f"{owner}: {e}. Initialise manifold parameters on the manifold, e.g. with "
                f"manifold.random(...) or manifold.proj_point(...)"
            ) from None


def _check_reference(owner: str, i: int, p: Tensor, ref: Tensor, manifold: Manifold | None) -> None:
    try:
        shape = torch.broadcast_shapes(p.shape, ref.shape)
    except RuntimeError:
        shape = None
    if shape != p.shape:
        raise ParameterError(
            f"{owner}: decay_to of shape {tuple(ref.shape)} does not broadcast against param[{i}] "
            f"of shape {tuple(p.shape)}"
        )
    if manifold is not None:
        try:
            manifold.check_point(ref.detach().to(p.dtype), name="decay_to")
        except ManifoldError as e:
            raise ManifoldError(f"{owner}: {e}") from None


def riemannian_gradient(manifold: Manifold | None, group: dict[str, Any], p: Tensor) -> Tensor:
    r"""The gradient the update uses: :math:`\operatorname{egrad2rgrad}_x(g + \lambda(x - r))`
    (the plain :math:`g + \lambda(x - r)` without a manifold; :math:`r = 0` without
    ``decay_to``)."""
    g = p.grad
    wd = group["weight_decay"]
    if wd != 0:
        ref = group["decay_to"]
        g = g.add(p if ref is None else p - ref.to(dtype=p.dtype, device=p.device), alpha=wd)
    return g if manifold is None else manifold.egrad2rgrad(p, g)


def vector_transport(manifold: Manifold, method: str, x: Tensor, y: Tensor, v: Tensor) -> Tensor:
    """Move the tangent vector ``v`` at ``x`` to the tangent space at ``y``."""
    if method == "projection":
        return manifold.proj(y, v)
    return manifold.transport(x, y, v)


def batch_inner(manifold: Manifold, x: Tensor, u: Tensor) -> Tensor:
    """``<u, u>_x`` with singleton manifold axes kept, shape ``(..., 1, ..., 1)``."""
    sq = manifold.inner(x, u, u)
    return sq.reshape(sq.shape + (1,) * manifold.ndim)


class RiemannianMixin:
    """Group checks on ``add_param_group`` and a plain-data ``state_dict``.

    The optimizer defines ``_check(group)``, which raises a named error. A rejected group
    leaves the optimizer as it was.
    """

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group (checked: numbers, names, and that its parameters are on their manifold)."""
        super().add_param_group(param_group)  # type: ignore[misc]
        try:
            self._check(self.param_groups[-1])  # type: ignore[attr-defined]
        except Exception:
            self.param_groups.pop()  # type: ignore[attr-defined]
            raise

    def state_dict(self) -> dict[str, Any]:
        """The optimizer state as plain data (tensors, numbers, strings): loads with
        ``torch.load(weights_only=True)``. Each group's manifold is stored as
        :func:`manifold_spec`."""
        sd = super().state_dict()  # type: ignore[misc]
        for g, live in zip(sd["param_groups"], self.param_groups, strict=True):  # type: ignore[attr-defined]
            g["manifold"] = manifold_spec(g.get("manifold"))
            g["param_manifolds"] = [manifold_spec(_own_manifold(p)) for p in live["params"]]
        return sd

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state dict saved by :meth:`state_dict` (or by the torch optimizer of the same
        algorithm, for Euclidean groups).

        Hyperparameters (``lr``, ...) and the per-parameter state come from the checkpoint;
        the manifold objects and ``decay_to`` come from this optimizer's live groups, and the
        checkpoint's manifolds must match them.

        Raises
        ------
        ParameterError
            If the number of groups differs, or a group's manifold differs from the one the
            checkpoint was saved with (and every error :meth:`add_param_group` raises for the
            loaded hyperparameters).
        """
        owner = type(self).__name__
        live_groups = self.param_groups  # type: ignore[attr-defined]
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(live_groups):
            raise ParameterError(
                f"{owner}: the state dict has {len(saved_groups)} parameter groups, the optimizer "
                f"has {len(live_groups)}"
            )
        merged, live_values = [], [{k: g[k] for k in _LIVE_KEYS} for g in live_groups]
        for i, (saved, live) in enumerate(zip(saved_groups, live_groups, strict=True)):
            saved = dict(saved)
            if "manifold" in saved:
                spec = saved["manifold"]
                spec = manifold_spec(spec) if isinstance(spec, Manifold) else spec
                if spec != manifold_spec(live["manifold"]):
                    raise ParameterError(
                        f"{owner}: group {i} of the state dict was saved for the manifold "
                        f"{_describe(spec)}, but this optimizer's group {i} has "
                        f"{_describe(manifold_spec(live['manifold']))}"
                    )
            own = saved.pop("param_manifolds", None)
            live_own = [manifold_spec(_own_manifold(p)) for p in live["params"]]
            if own is not None and own != live_own:
                k = next((k for k, (a, b) in enumerate(zip(own, live_own, strict=False)) if a != b), len(own))
                raise ParameterError(
                    f"{owner}: param[{k}] of group {i} was saved on the manifold "
                    f"{_describe(own[k] if k < len(own) else None)}, but this optimizer's carries "
                    f"{_describe(live_own[k] if k < len(live_own) else None)}"
                )
            for key in _LIVE_KEYS:
                saved[key] = live[key]
            for key, value in live.items():
                saved.setdefault(key, value)
            self._check({**saved, "params": live["params"]})  # type: ignore[attr-defined]
            merged.append(saved)  # "params" keeps the checkpoint's indices: torch pairs them
        super().load_state_dict({**state_dict, "param_groups": merged})  # type: ignore[misc]
        for group, values in zip(self.param_groups, live_values, strict=True):  # type: ignore[attr-defined]
            group.update(values)  # the objects themselves, not torch's deep copies
        for state in self.state.values():  # type: ignore[attr-defined]
            if isinstance(state.get("step"), Tensor):  # torch.optim.Adam keeps a tensor count
                state["step"] = int(state["step"].item())


def _describe(spec: dict[str, str] | None) -> str:
    return "None (Euclidean)" if spec is None else f"{spec.get('repr')} ({spec.get('class')})"
