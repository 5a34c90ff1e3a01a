r"""``ManifoldParameter``: an ``nn.Parameter`` that knows the manifold it lives on.

The manifres optimizers (:mod:`manifres.optim`) read the manifold from the parameter when its
group names none, so a module can carry its geometry:

.. math:: x \in M \quad\Longrightarrow\quad x \leftarrow R_x\bigl(-\eta\,
          \operatorname{egrad2rgrad}_x(\nabla f(x))\bigr)

Design: a plain Python subclass of :class:`torch.nn.Parameter` with one attribute,
``manifold``. It is not a tensor subclass with its own ``__torch_function__`` (every operation on
it returns a plain tensor, as for ``nn.Parameter``), so modules that hold one work with
``torch.compile``, and ``module.state_dict()`` holds plain tensors, which
``torch.load(weights_only=True)`` reads.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import Tensor, nn

from .manifolds.base import Manifold, check_manifold

__all__ = ["ManifoldParameter"]


class ManifoldParameter(nn.Parameter):
    r"""A module parameter on a manifold: ``nn.Parameter`` plus a ``manifold`` attribute.

    .. math:: x \in M, \qquad x \text{ of shape } (\dots, *M.\text{point\_shape})

    Parameters
    ----------
    data : Tensor, shape ``(..., *manifold.point_shape)``
        The point(s), float32 or float64. The parameter shares its storage (as
        ``nn.Parameter`` does); a parameter or tensor subclass is read through ``detach()``.
    manifold : Manifold
        The manifres manifold the points lie on.
    requires_grad : bool
        As for ``nn.Parameter``.

    Attributes
    ----------
    manifold : Manifold

    Raises
    ------
    TypeError
        If ``manifold`` is not a manifres manifold or ``data`` is not a tensor.
    ShapeError, DTypeError
        If ``data`` does not end in ``manifold.point_shape`` or is not float32/float64 (always
        checked: metadata only).
    ManifoldError
        With validation on (``manifold.validate``), if a point is not on the manifold.

    Notes
    -----
    * The manifres optimizers use ``manifold`` for a parameter whose group has no
      ``"manifold"`` key (and refuse a group whose manifold differs from it).
    * ``module.state_dict()`` holds the values as plain tensors; ``load_state_dict`` copies
      them into the live parameter, which keeps its manifold (with
      ``torch.__future__.set_swap_module_params_on_conversion(True)`` the loaded value is
      checked when validation is on).
    * ``copy.deepcopy`` and ``pickle`` keep the class and the manifold; ``module.double()``
      and ``module.to(device)`` convert the data in place and keep both.
    * Two torch paths rebuild every parameter as a plain ``nn.Parameter`` and lose the
      manifold: ``load_state_dict(..., assign=True)``, and dtype/device conversion with
      ``torch.__future__.set_swap_module_params_on_conversion(True)``.
    * ``torch.optim.swa_utils.AveragedModel`` averages the ambient coordinates: the average
      of points on a curved manifold is off it (map it back with ``manifold.proj_point``).

    Examples
    --------
    >>> import torch, manifres
    >>> S = manifres.Sphere(2)
    >>> x = manifres.ManifoldParameter(torch.tensor([0.0, 0.6, 0.8]), S)
    >>> x.manifold, isinstance(x, torch.nn.Parameter), type(x * 2).__name__
    (Sphere(2), True, 'Tensor')
    >>> opt = manifres.optim.RiemannianSGD([x], lr=0.1)  # no "manifold" key needed
    >>> (x @ torch.tensor([1.0, 0.0, 0.0])).backward(); opt.step()
    >>> bool(S.is_point(x.detach()))
    True
    """

    manifold: Manifold

    def __new__(cls, data: Tensor, manifold: Manifold, requires_grad: bool = True) -> ManifoldParameter:
        manifold = check_manifold(manifold, "ManifoldParameter")
        if not isinstance(data, Tensor):
            raise TypeError(f"ManifoldParameter: data must be a torch.Tensor, got {type(data).__name__}")
        if type(data) is not Tensor:
            data = data.detach()  # a Parameter (or geoopt tensor): its plain data
            if type(data) is not Tensor:
                raise TypeError(
                    f"ManifoldParameter: data must be a plain tensor, got the subclass {type(data).__name__}"
                )
        manifold._check(data, names=("data",))
        if manifold.validate:
            manifold.check_point(data.detach(), name="ManifoldParameter data")
        self = super().__new__(cls, data, requires_grad)
        self.manifold = manifold
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> ManifoldParameter:
        if id(self) in memo:
            return memo[id(self)]
        result = type(self)(
            self.data.clone(memory_format=torch.preserve_format),
            copy.deepcopy(self.manifold, memo),
            self.requires_grad,
        )
        memo[id(self)] = result
        return result

    def __reduce_ex__(self, proto: int) -> tuple:
        # as nn.Parameter (hooks are not saved), plus the class and the manifold
        return _rebuild_manifold_parameter, (self.data, self.manifold, self.requires_grad)

    def module_load(self, other: Tensor, assign: bool = False) -> ManifoldParameter:
        """The loaded value as a ``ManifoldParameter`` on this manifold (used by
        ``load_state_dict`` when torch swaps module parameters); checked when validation is on."""
        value = other.detach() if assign else self.copy_(other).detach()
        return type(self)(value, self.manifold, self.requires_grad)

    def __repr__(self) -> str:
        text = repr(self.detach())
        if self.requires_grad:
            text = text[:-1] + ", requires_grad=True)"
        return f"ManifoldParameter on {self.manifold!r} containing:\n{text}"


def _rebuild_manifold_parameter(data: Tensor, manifold: Manifold, requires_grad: bool) -> ManifoldParameter:
    return ManifoldParameter(data, manifold, requires_grad)
