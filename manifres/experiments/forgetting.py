r"""Forgetting with residual adapters: one set of adapters per task against one shared set.

:func:`forgetting_experiment` trains two regression tasks in turn on a frozen backbone with
:class:`~manifres.nn.AdapterNetwork` adapters, in both modes, and measures how much the
first task is forgotten (the gallery example ``learning/plot_continual_adapters`` draws it).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..nn.adapters import AdapterNetwork

__all__ = ["forgetting_experiment"]

_MODES = ("per_task", "shared")


def forgetting_experiment(
    seed: int = 0,
    steps: int = 200,
    lr: float = 1e-2,
    width: int = 32,
    n_samples: int = 256,
    bottleneck: int | None = None,
    dtype: torch.dtype = torch.float32,
) -> dict[str, dict[str, float]]:
    r"""Measure forgetting of task 1 after training task 2, in both adapter modes.

    A random frozen backbone ``Linear(8, width) - tanh - Linear(width, width) - tanh -
    Linear(width, 1)`` carries adapters after both tanh layers. The two regression tasks are
    produced by the same backbone with two different random adapters (so both are exactly
    learnable). For each mode, from the same initial weights: train task 1 (Adam, ``steps``
    full-batch steps, only that task's adapters), measure the task-1 test error, train task 2,
    measure both again.

    .. math:: \text{forgetting} = \mathrm{MSE}_1(\text{after task 2}) -
              \mathrm{MSE}_1(\text{after task 1})

    Parameters
    ----------
    seed : int
        Seeds the backbone, the tasks, the data and the adapters.
    steps : int
        Adam steps per task.
    lr : float
        Adam learning rate.
    width : int
        Backbone width.
    n_samples : int
        Training and test set size per task.
    bottleneck : int, optional
        Adapter architecture, see :class:`~manifres.nn.ResidualAdapter`.
    dtype : torch.dtype
        float32 or float64.

    Returns
    -------
    dict
        ``{"per_task": r, "shared": r}`` where ``r`` has ``"task1_before"`` (task-1 test MSE
        after training task 1), ``"task1_after"`` (after training task 2), ``"task2"`` (task-2
        test MSE after training task 2), ``"forgetting"`` (the difference above) and
        ``"task1_max_change"`` (largest change of a task-1 test prediction).

    Examples
    --------
    >>> r = forgetting_experiment(steps=10, n_samples=64)
    >>> r["per_task"]["forgetting"], r["per_task"]["task1_max_change"]
    (0.0, 0.0)
    >>> r["shared"]["forgetting"] > 0
    True
    """
    with torch.random.fork_rng(devices=[]):  # seeded, without touching the global RNG
        torch.manual_seed(seed)
        backbone = nn.Sequential(
            nn.Linear(8, width), nn.Tanh(), nn.Linear(width, width), nn.Tanh(), nn.Linear(width, 1)
        ).to(dtype)
        widths = [None, width, None, width, None]
        teacher = AdapterNetwork(backbone, widths, 2, "per_task", bottleneck).to(dtype)
        with torch.no_grad():
            for p in teacher.adapters.parameters():
                p.normal_(0.0, 0.5 / width**0.5)
        data = []
        for task in range(2):
            x_train = torch.randn(n_samples, 8, dtype=dtype)
            x_test = torch.randn(n_samples, 8, dtype=dtype)
            with torch.no_grad():
                data.append((x_train, teacher(x_train, task), x_test, teacher(x_test, task)))
        nets = {m: AdapterNetwork(backbone, widths, 2, m, bottleneck).to(dtype) for m in _MODES}
        init = nets["per_task"].adapters[0].state_dict()
        for net in nets.values():
            for adapters in net.adapters:
                adapters.load_state_dict(init)

    def train(net: AdapterNetwork, task: int) -> None:
        x, y = data[task][:2]
        opt = torch.optim.Adam(net.task_parameters(task), lr=lr)
        for _ in range(steps):
            opt.zero_grad()
            (net(x, task) - y).pow(2).mean().backward()
            opt.step()

    def predict(net: AdapterNetwork, task: int) -> Tensor:
        with torch.no_grad():
            return net(data[task][2], task)

    def mse(pred: Tensor, task: int) -> float:
        return float((pred - data[task][3]).pow(2).mean())

    results = {}
    for mode in _MODES:
        net = nets[mode]
        train(net, 0)
        before = predict(net, 0)
        train(net, 1)
        after = predict(net, 0)
        results[mode] = {
            "task1_before": mse(before, 0),
            "task1_after": mse(after, 0),
            "task2": mse(predict(net, 1), 1),
            "forgetting": mse(after, 0) - mse(before, 0),
            "task1_max_change": float((after - before).abs().max()),
        }
    return results
