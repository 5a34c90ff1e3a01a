r"""A differentiable SIR epidemic model and the hybrid-versus-scratch experiment built on it.

:class:`SIR` is a physical baseline for :class:`manifres.nn.Hybrid`;
:func:`sir_hybrid_experiment` measures what learning only the *correction* to it buys
(the gallery example ``learning/plot_delta_learning`` draws it).

Examples
--------
>>> import torch
>>> from torch import nn
>>> from manifres.nn import Hybrid
>>> model = Hybrid(SIR(beta=0.3, gamma=0.1), nn.Linear(3, 3))
>>> model(torch.tensor([[0.99, 0.01, 0.0]])).shape
torch.Size([1, 3])
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from .._validation import check_choice, check_floating, check_int, check_real
from ..errors import ShapeError
from ..nn.hybrid import Hybrid
from ..nn.residual import _finite_number

__all__ = ["SIR", "sir_hybrid_experiment"]

# Runge-Kutta schemes of SIR.
_METHODS = ("euler", "heun", "rk4")


class SIR(nn.Module):
    r"""Differentiable SIR epidemic model: one step of length ``dt`` of

    .. math:: \dot S = -\beta(t) S I, \qquad \dot I = \beta(t) S I - \gamma I, \qquad
              \dot R = \gamma I

    on population fractions :math:`x = (S, I, R)`, made of ``steps`` explicit Runge-Kutta
    sub-steps (Euler, Heun or the classical RK4).

    Parameters
    ----------
    beta : float, Tensor or callable
        Contact rate :math:`\beta`: a number (constant), or a function ``beta(t) -> Tensor``
        of the time (a tensor of the batch shape), for time-varying contact rates.
    gamma : float or Tensor
        Recovery rate :math:`\gamma`.
    dt : float
        Length of one call's step (``> 0``).
    steps : int
        Runge-Kutta sub-steps per call (``>= 1``); the sub-step is ``dt / steps``.
    method : {"euler", "heun", "rk4"}
        The explicit Runge-Kutta scheme (orders 1, 2, 4).
    learn : bool
        Make the constant rates :math:`\beta, \gamma` trainable parameters (no positivity
        constraint is imposed); else buffers.

    Shapes:
        - **input:** ``x`` of shape ``(..., 3)``; ``t`` (optional, default 0) a number or a
          tensor broadcasting against the batch shape ``(...)``
        - **output:** ``(..., 3)``, the state at ``t + dt``

    Raises
    ------
    ShapeError
        If the last axis of ``x`` is not 3.
    DTypeError
        If ``x`` is not float32/float64.
    ParameterError
        If a rate or ``dt`` is not finite, ``dt <= 0``, or ``steps`` is not an int ``>= 1``.
    UnknownChoiceError
        If ``method`` is unknown.

    Notes
    -----
    The scheme conserves :math:`S + I + R` exactly in exact arithmetic (every stage does).
    Rates given as numbers are stored as float64 0-d tensors (exact for float64 states) and
    cast to the dtype of the state at each call: the output dtype follows ``x``.

    Examples
    --------
    >>> import torch
    >>> sir = SIR(beta=0.3, gamma=0.1, dt=1.0, steps=4)
    >>> traj = sir.simulate(torch.tensor([0.99, 0.01, 0.0], dtype=torch.float64), 100)
    >>> traj.shape
    torch.Size([101, 3])
    >>> round(float(traj[-1].sum()), 12)
    1.0
    """

    def __init__(
        self,
        beta: float | Tensor | Callable[[Tensor], Tensor] = 0.3,
        gamma: float | Tensor = 0.1,
        dt: float = 1.0,
        steps: int = 1,
        method: str = "rk4",
        learn: bool = False,
    ) -> None:
        super().__init__()
        method = check_choice(method, _METHODS, "method", "SIR")
        steps = check_int(steps, "steps", "SIR", minimum=1)
        dt = check_real(dt, "dt", "SIR", minimum=0.0, strict_min=True)
        self.dt, self.steps, self.method, self.learn = dt, steps, method, bool(learn)
        self.beta_fn = beta if callable(beta) and not isinstance(beta, Tensor) else None
        rates = {"gamma": _finite_number("gamma", gamma, "SIR")}
        if self.beta_fn is None:
            rates["beta"] = _finite_number("beta", beta, "SIR")
        for name, value in rates.items():
            if self.learn:
                setattr(self, name, nn.Parameter(value))
            else:
                self.register_buffer(name, value)

    def rhs(self, x: Tensor, t: Tensor | float = 0.0) -> Tensor:
        r"""The vector field :math:`(\dot S, \dot I, \dot R)` at state ``x`` and time ``t``."""
        S, I = x[..., 0], x[..., 1]
        if self.beta_fn is not None:
            beta = self.beta_fn(torch.as_tensor(t, dtype=x.dtype, device=x.device)).to(x.dtype)
        else:
            beta = self.beta.to(x.dtype)
        infection = beta * S * I
        recovery = self.gamma.to(x.dtype) * I
        return torch.stack((-infection, infection - recovery, recovery), dim=-1)

    def forward(self, x: Tensor, t: Tensor | float | None = None) -> Tensor:
        check_floating(x, names=("x",))
        if x.dim() == 0 or x.shape[-1] != 3:
            raise ShapeError(f"SIR: x must have shape (..., 3) = (S, I, R), got {tuple(x.shape)}")
        t = torch.zeros((), dtype=x.dtype, device=x.device) if t is None else t
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
        h = self.dt / self.steps
        f = self.rhs
        for _ in range(self.steps):
            if self.method == "euler":
                x = x + h * f(x, t)
            elif self.method == "heun":
                k1 = f(x, t)
                k2 = f(x + h * k1, t + h)
                x = x + (0.5 * h) * (k1 + k2)
            else:
                k1 = f(x, t)
                k2 = f(x + (0.5 * h) * k1, t + 0.5 * h)
                k3 = f(x + (0.5 * h) * k2, t + 0.5 * h)
                k4 = f(x + h * k3, t + h)
                x = x + (h / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
            t = t + h
        return x

    def simulate(self, x0: Tensor, n: int, t0: float = 0.0) -> Tensor:
        """Trajectory ``x0, x(t0 + dt), ..., x(t0 + n dt)``, shape ``(n + 1, *x0.shape)``."""
        xs = [x0]
        for k in range(n):
            xs.append(self(xs[-1], t0 + k * self.dt))
        return torch.stack(xs)

    def extra_repr(self) -> str:
        beta = "beta=<function>" if self.beta_fn else f"beta={float(self.beta.detach()):.4g}"
        return (
            f"{beta}, gamma={float(self.gamma.detach()):.4g}, dt={self.dt}, steps={self.steps}, "
            f"method={self.method!r}, learn={self.learn}"
        )


class _StateTimeMLP(nn.Module):
    """MLP of ``(x, t / horizon)``: the correction network of :func:`sir_hybrid_experiment`."""

    def __init__(self, width: int, horizon: float) -> None:
        super().__init__()
        self.horizon = horizon
        self.net = nn.Sequential(
            nn.Linear(4, width), nn.Tanh(), nn.Linear(width, width), nn.Tanh(), nn.Linear(width, 3)
        )
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        return self.net(torch.cat((x, (t / self.horizon).unsqueeze(-1)), dim=-1))


def sir_hybrid_experiment(
    seed: int = 0,
    days: int = 60,
    n_train: int = 6,
    n_test: int = 4,
    iterations: int = 200,
    width: int = 32,
    lr: float = 1e-2,
    amplitude: float = 0.4,
    dtype: torch.dtype = torch.float32,
) -> dict[str, float]:
    r"""Hybrid SIR + network versus the same network from scratch, on data from a richer model.

    Data: daily states of epidemics whose contact rate drops around day :math:`t_0 = 0.4\,`
    ``days`` (an intervention),
    :math:`\beta(t) = \beta_0 (1 - A\,\sigma((t - t_0)/5))`, :math:`\beta_0 = 0.3`,
    :math:`\gamma = 0.1` (RK4, 10 sub-steps per day), from random initial infected and
    recovered fractions. Task: predict tomorrow's state :math:`x_{k+1}` from
    :math:`(x_k, t_k)`. Models, trained with full-batch Adam (cosine learning-rate decay) on
    the same training trajectories, from the same initial weights (the last layer is zero, so
    the hybrid starts as the baseline):

    * ``baseline``: the constant-rate :class:`SIR` with :math:`\beta_0` (no training);
    * ``hybrid``: :class:`~manifres.nn.Hybrid` of the frozen baseline and the network;
    * ``scratch``: the network alone.

    Parameters
    ----------
    seed : int
        Seeds the data and the network initialisation.
    days : int
        Length of each trajectory.
    n_train, n_test : int
        Number of training and test trajectories (different initial conditions).
    iterations : int
        Full-batch Adam steps.
    width : int
        Hidden width of the two-hidden-layer tanh network of :math:`(S, I, R, t/\text{days})`.
    lr : float
        Adam learning rate.
    amplitude : float
        :math:`A`, the relative drop of the contact rate (0: the baseline is exact).
    dtype : torch.dtype
        float32 or float64.

    Returns
    -------
    dict
        ``"baseline"``, ``"hybrid"``, ``"scratch"``: one-step mean squared errors on the
        test trajectories.

    Notes
    -----
    Measured with the defaults (seeds 0-2, float32 and float64): hybrid 0.8e-6 to 1.4e-6,
    baseline 0.9e-5 to 1.2e-5, scratch 2.4e-4 to 1.3e-3. Free-running ``days``-step forecasts are *not*
    reliably better than the baseline's: the correction is only trained on one-step pairs and
    extrapolates once a forecast leaves the data.

    Examples
    --------
    >>> r = sir_hybrid_experiment(days=30, n_train=2, n_test=1, iterations=20)
    >>> r["hybrid"] < r["scratch"]
    True
    """
    gen = torch.Generator().manual_seed(seed)
    beta0, gamma = 0.3, 0.1

    def contact_rate(t: Tensor) -> Tensor:
        return beta0 * (1.0 - amplitude * torch.sigmoid((t - 0.4 * days) / 5.0))

    truth = SIR(contact_rate, gamma, dt=1.0, steps=10)

    def trajectories(n: int) -> Tensor:
        i0 = 10 ** (-3.0 + 1.5 * torch.rand(n, generator=gen, dtype=dtype))
        r0 = 0.3 * torch.rand(n, generator=gen, dtype=dtype)
        x0 = torch.stack((1.0 - i0 - r0, i0, r0), dim=-1)
        return truth.simulate(x0, days)  # (days + 1, n, 3)

    train, test = trajectories(n_train), trajectories(n_test)
    times = torch.arange(days, dtype=dtype)[:, None].expand(days, n_train)
    test_times = torch.arange(days, dtype=dtype)[:, None].expand(days, n_test)
    baseline = SIR(beta0, gamma, dt=1.0, steps=1)

    with torch.random.fork_rng(devices=[]):  # seeded init without touching the global RNG
        torch.manual_seed(seed)
        net = _StateTimeMLP(width, float(days)).to(dtype)
        scratch = _StateTimeMLP(width, float(days)).to(dtype)
    scratch.load_state_dict(net.state_dict())  # the same initial weights
    models: dict[str, nn.Module] = {"hybrid": Hybrid(baseline, net), "scratch": scratch}

    for model in models.values():
        opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, iterations)
        for _ in range(iterations):
            opt.zero_grad()
            loss = (model(train[:-1], times) - train[1:]).pow(2).mean()
            loss.backward()
            opt.step()
            sched.step()
    models["baseline"] = baseline
    with torch.no_grad():
        return {
            name: float((model(test[:-1], test_times) - test[1:]).pow(2).mean())
            for name, model in models.items()
        }
