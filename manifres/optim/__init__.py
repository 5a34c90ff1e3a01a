"""Riemannian optimizers for parameters that live on manifres manifolds.

Say which manifold a parameter lives on through its parameter group (the ``"manifold"`` key,
or the optimizer's ``manifold=`` default); groups without one are ordinary Euclidean
parameters and get exactly the update of :class:`torch.optim.SGD` / :class:`torch.optim.Adam`.
The parameters themselves stay plain :class:`torch.nn.Parameter` (no tensor subclass), so
modules that hold them work with ``torch.compile`` and DistributedDataParallel.

Examples
--------
>>> import torch, manifres
>>> from manifres.optim import RiemannianSGD
>>> R = torch.nn.Parameter(torch.eye(3))
>>> w = torch.nn.Parameter(torch.zeros(3))
>>> opt = RiemannianSGD(
...     [{"params": [R], "manifold": manifres.SpecialOrthogonal(3)}, {"params": [w]}], lr=0.1
... )
>>> ((R @ torch.tensor([1.0, 0.0, 0.0]) - torch.tensor([0.0, 1.0, 0.0])) ** 2).sum().backward()
>>> opt.step()
>>> bool(manifres.SpecialOrthogonal(3).is_point(R.detach()))
True
"""

from .radam import RiemannianAdam
from .rsgd import RiemannianSGD

__all__ = ["RiemannianSGD", "RiemannianAdam"]
