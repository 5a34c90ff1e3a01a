"""Residual layers: Euclidean blocks, tangent-constrained manifold layers and stacks, vector
fields, hybrid "baseline + correction" models and residual adapters."""

from . import adapters, fields, hybrid, residual, tangent
from .adapters import *  # noqa: F403
from .fields import *  # noqa: F403
from .hybrid import *  # noqa: F403
from .residual import *  # noqa: F403
from .tangent import *  # noqa: F403

__all__ = residual.__all__ + tangent.__all__ + fields.__all__ + hybrid.__all__ + adapters.__all__
