r"""Hybrid models: a known baseline (a physical law, a cheap simulator) plus a learned residual
correction (:class:`manifres.experiments.SIR` is such a baseline).

The design principle is the residual one: learn the *correction* to a model that is already
nearly right, :math:`y = B(x) + C(x)`, instead of the whole map.
"""

from __future__ import annotations

from torch import Tensor, nn

from ..errors import ShapeError

__all__ = ["Hybrid"]


class Hybrid(nn.Module):
    r"""Baseline plus learned residual correction.

    .. math:: y = B(x) + C(x) \qquad\text{or, with } \texttt{pass_baseline=True},\qquad
              y = B(x) + C(x, B(x))

    Parameters
    ----------
    baseline : nn.Module
        :math:`B`, any model or simulator written in torch (e.g.
        :class:`manifres.experiments.SIR`).
    correction : nn.Module
        :math:`C`, the learned residual. It must return the shape of ``baseline(x)``.
    freeze_baseline : bool
        If True (default) the baseline's parameters get ``requires_grad=False`` and the
        baseline stays in eval mode under :meth:`train` (its batch-norm statistics, dropout,
        ... are frozen too). The baseline remains differentiable with respect to its *input*.
        If False its parameters are trained with the correction (e.g. the rates of an
        epidemic model fitted jointly with the residual network).
    pass_baseline : bool
        If True the correction is called as ``correction(x, baseline(x), *args, **kwargs)``, so
        it can condition on the baseline's prediction.

    Attributes
    ----------
    baseline, correction : nn.Module

    Shapes:
        - **input:** whatever the baseline accepts; extra positional and keyword arguments
          (e.g. the time ``t``) are passed to both the baseline and the correction
        - **output:** the shape of ``baseline(x)``

    Raises
    ------
    ShapeError
        At a call, if ``correction`` returns a different shape than ``baseline``.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> baseline = nn.Linear(3, 3)  # stands for a known model
    >>> model = Hybrid(baseline, nn.Linear(3, 3))
    >>> x = torch.tensor([[0.99, 0.01, 0.0]])
    >>> model(x).shape
    torch.Size([1, 3])
    >>> [n for n, p in model.named_parameters() if p.requires_grad]
    ['correction.weight', 'correction.bias']
    """

    def __init__(
        self,
        baseline: nn.Module,
        correction: nn.Module,
        freeze_baseline: bool = True,
        pass_baseline: bool = False,
    ) -> None:
        super().__init__()
        for name, m in (("baseline", baseline), ("correction", correction)):
            if not isinstance(m, nn.Module):
                raise TypeError(f"Hybrid: {name} must be an nn.Module, got {type(m).__name__}")
        self.baseline = baseline
        self.correction = correction
        self.freeze_baseline = bool(freeze_baseline)
        self.pass_baseline = bool(pass_baseline)
        if self.freeze_baseline:
            baseline.requires_grad_(False)
            baseline.eval()

    def train(self, mode: bool = True) -> Hybrid:
        """Set training mode; a frozen baseline stays in eval mode."""
        super().train(mode)
        if self.freeze_baseline:
            self.baseline.eval()
        return self

    def forward(self, x: Tensor, *args, **kwargs) -> Tensor:
        b = self.baseline(x, *args, **kwargs)
        if self.pass_baseline:
            c = self.correction(x, b, *args, **kwargs)
        else:
            c = self.correction(x, *args, **kwargs)
        if c.shape != b.shape:
            raise ShapeError(
                f"Hybrid: correction returned shape {tuple(c.shape)} but the baseline returned "
                f"{tuple(b.shape)} (input {tuple(x.shape)}); they must match"
            )
        return b + c

    def extra_repr(self) -> str:
        return f"freeze_baseline={self.freeze_baseline}, pass_baseline={self.pass_baseline}"
