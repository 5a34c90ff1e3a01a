"""Residual layers: the residual-step protocol, Euclidean blocks, the architecture zoo
(multi-branch, dense, U-Net, transformer), tangent-constrained manifold layers and stacks,
vector fields, policy feedback, hybrid "baseline + correction" models and residual adapters."""

from . import (
    activations,
    adapters,
    dense,
    fields,
    hybrid,
    multibranch,
    policy,
    protocol,
    residual,
    tangent,
    transformer,
    unet,
)
from .activations import *  # noqa: F403
from .adapters import *  # noqa: F403
from .dense import *  # noqa: F403
from .fields import *  # noqa: F403
from .hybrid import *  # noqa: F403
from .multibranch import *  # noqa: F403
from .policy import *  # noqa: F403
from .protocol import *  # noqa: F403
from .residual import *  # noqa: F403
from .tangent import *  # noqa: F403
from .transformer import *  # noqa: F403
from .unet import *  # noqa: F403

__all__ = (
    protocol.__all__
    + residual.__all__
    + multibranch.__all__
    + dense.__all__
    + unet.__all__
    + transformer.__all__
    + policy.__all__
    + tangent.__all__
    + fields.__all__
    + hybrid.__all__
    + adapters.__all__
    + activations.__all__
)
