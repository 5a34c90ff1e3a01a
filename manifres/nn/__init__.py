"""Residual layers: the residual-step protocol, Euclidean blocks, tangent-constrained manifold
layers and stacks, vector fields, hybrid "baseline + correction" models and residual adapters."""

from . import activations, adapters, fields, hybrid, protocol, residual, tangent
from .activations import *  # noqa: F403
from .adapters import *  # noqa: F403
from .fields import *  # noqa: F403
from .hybrid import *  # noqa: F403
from .protocol import *  # noqa: F403
from .residual import *  # noqa: F403
from .tangent import *  # noqa: F403

__all__ = (
    protocol.__all__
    + residual.__all__
    + tangent.__all__
    + fields.__all__
    + hybrid.__all__
    + adapters.__all__
    + activations.__all__
)
