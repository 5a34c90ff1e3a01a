r"""The residual-step protocol: one interface for every residual layer of manifres.

A residual layer advances a state :math:`x` by a step :math:`h` along a branch :math:`F`:

====================  ==================================================  ===============================
layer                 update rule                                         branch :math:`F`
====================  ==================================================  ===============================
Euclidean block       :math:`x + h\,F(x)`                                 the residual function
multi-branch block    :math:`x + h \sum_k F_k(x)`                         the ``C`` branches
transformer block     :math:`x + h\,A(x)`, then :math:`+\,h\,M(\cdot)`    attention and MLP
policy residual       :math:`f(x) - h\,BK(x - x^*)`                       the feedback :math:`BK`
tangent layer         :math:`R_x\bigl(h\,P_x F(x)\bigr)`                  the (ambient) vector field
graph layer           :math:`x - h\,L x`                                  the Laplacian term :math:`Lx`
====================  ==================================================  ===============================

(and the variants: post-activation :math:`\sigma(x + hF(x))`, dead zone
:math:`x + h\,\operatorname{soft}(F(x))`, a post-norm transformer, a Lie-group step
:math:`\exp(\Theta_h(x))\cdot x`).
The step is called ``step`` everywhere (``a``, ``h`` and ``alpha`` in the literature).

A layer implements the protocol with these members:

``step``
    The step :math:`h`: a Python float, a buffer or an ``nn.Parameter`` (read and write).
``branch``
    The branch :math:`F` (a module or callable).
``manifold``
    The :class:`~manifres.Manifold` the state lives on, or ``None`` for flat features.
``sample_ndim``
    Trailing axes of the input that form one sample (``1`` for ``(..., C)`` features,
    ``manifold.ndim`` on a manifold); ``None`` when the whole input is one state (a graph
    layer bound to its graph: the Jacobian couples all nodes).
``forward_with_step(x, step)``
    The layer's map with the step given explicitly, differentiable in ``step``:
    ``forward(x) == forward_with_step(x, self.step)``.

The stability studies (:mod:`manifres.stability`) use exactly these members: they sweep the
step by calling ``forward_with_step`` (the layer is never modified), differentiate the loss
with respect to each layer's step by autograd, and take Jacobians in tangent frames of
``manifold``. A stack of layers (``nn.Sequential``, a list, or a stack with a ``layers``
attribute such as :class:`~manifres.nn.TangentResidualStack`) is studied layer by layer.

Examples
--------
>>> import torch
>>> from torch import nn
>>> from manifres.nn import Residual
>>> block = Residual(nn.Linear(3, 3), step=0.5)
>>> is_residual_step(block), float(block.step)
(True, 0.5)
>>> x = torch.randn(2, 3)
>>> torch.allclose(block(x), block.forward_with_step(x, 0.5))
True
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from .._validation import check_real
from ..errors import ParameterError
from ..manifolds.base import Manifold

__all__ = ["ResidualStep", "is_residual_step", "stack_layers", "resolve_step", "step_value"]


@runtime_checkable
class ResidualStep(Protocol):
    """Structural type of a residual layer (see the module docstring)."""

    @property
    def step(self) -> float | Tensor: ...

    @property
    def branch(self) -> Any: ...

    @property
    def manifold(self) -> Manifold | None: ...

    @property
    def sample_ndim(self) -> int | None: ...

    def forward_with_step(self, x: Tensor, step: float | Tensor) -> Tensor: ...


def is_residual_step(layer: object) -> bool:
    """Whether ``layer`` implements the residual-step protocol."""
    return isinstance(layer, ResidualStep)


def stack_layers(model: object) -> list[Any]:
    """The layers of a stack, in order.

    ``nn.Sequential``, ``nn.ModuleList``, a list or tuple, or a module with a ``layers`` (or
    ``blocks``) attribute holding one of those; any other callable is a stack of one layer.

    Examples
    --------
    >>> from torch import nn
    >>> len(stack_layers(nn.Sequential(nn.Tanh(), nn.Tanh()))), len(stack_layers(nn.Tanh()))
    (2, 1)
    """
    if isinstance(model, (nn.Sequential, nn.ModuleList, list, tuple)):
        return list(model)
    for name in ("layers", "blocks"):
        inner = getattr(model, name, None)
        if isinstance(inner, (nn.Sequential, nn.ModuleList, list, tuple)):
            return list(inner)
    return [model]


def resolve_step(step: Any, owner: str, *, learn: bool = False, scalar: bool = False) -> float | Tensor:
    """The value to store as a layer's step.

    * an ``nn.Parameter`` is used as given (it stays connected: the optimizer that holds it
      trains the layer);
    * any other tensor that requires a gradient is refused (it could not be saved, copied or
      found in ``parameters()``): pass an ``nn.Parameter``;
    * otherwise the value must be finite; with ``learn=True`` it becomes a new
      ``nn.Parameter`` (in the default dtype) holding it, else it is returned as a Python
      float (a number or a 0-dim tensor) or a detached copy (a per-channel tensor).

    With ``scalar=True`` only a single number (or a 0-dim tensor) is accepted.

    Raises
    ------
    ParameterError
        For a non-finite or non-real step, or a tensor that requires a gradient but is not an
        ``nn.Parameter``.
    """
    if scalar and isinstance(step, Tensor) and step.dim():
        shape = tuple(step.shape)
        raise ParameterError(f"{owner}: step must be a real number, got a tensor of shape {shape}")
    if isinstance(step, nn.Parameter):
        if not torch.isfinite(step.detach()).all():
            raise ParameterError(f"{owner}: step must be finite, got {step!r}")
        return step
    if isinstance(step, Tensor):
        if step.requires_grad:
            raise ParameterError(
                f"{owner}: the step is a tensor that requires a gradient but is not an "
                "nn.Parameter; a layer cannot keep it connected through saving and copying. Pass "
                "nn.Parameter(step) (the layer then registers it) or step.detach()"
            )
        if step.dim() == 0:
            step = check_real(step, "step", owner)
        else:
            if not step.is_floating_point() or not bool(torch.isfinite(step).all()):
                raise ParameterError(f"{owner}: step must be a finite real tensor, got {step!r}")
            step = step.detach().clone()
    else:
        step = check_real(step, "step", owner)
    if learn:
        return nn.Parameter(torch.as_tensor(step, dtype=torch.get_default_dtype()).clone())
    return step


def step_value(step: float | Tensor, like: Tensor) -> float | Tensor:
    """``step`` ready to multiply ``like``: floats unchanged, tensors cast to its dtype."""
    return step.to(like.dtype) if isinstance(step, Tensor) else step
