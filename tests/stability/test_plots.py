import pytest
import torch

from manifres.graph.datasets import named_graph
from manifres.stability import (
    compare_plain_residual,
    depth_profile,
    diffusion_stability,
    gain_margin,
    jacobian_spectrum,
    lyapunov_exponents,
    patch_interaction,
    plots,
    scale_sweep,
    weyl_band,
)

from ._models import tanh_stack

pytest.importorskip("matplotlib")


def _png(fig, tmp_path, name):
    path = tmp_path / f"{name}.png"
    fig.savefig(path, dpi=40)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_every_plot_returns_a_figure(tmp_path):
    from matplotlib.figure import Figure

    dt = torch.float64
    stack = tanh_stack(3, 3, 0.5, dt)
    x = torch.randn(2, 3, dtype=dt)
    figs = {
        "spectrum": plots.plot_spectrum(jacobian_spectrum(stack[0], x), title="t"),
        "weyl": plots.plot_weyl(weyl_band(torch.randn(5, 3, 3, dtype=dt))),
        "depth": plots.plot_depth_profile(depth_profile(stack, x), lyapunov_exponents(stack, x)),
        "scale": plots.plot_scale_sweep(scale_sweep(stack, x, [0.1, 1.0])),
        "pvr": plots.plot_plain_vs_residual(compare_plain_residual((1, 3), width=3, batch=2)),
        "diffusion": plots.plot_diffusion(
            diffusion_stability(named_graph("path", 5).edge_index, 1.5, None, simulate=3)
        ),
        "gain": plots.plot_gain_margin(
            gain_margin(
                torch.diag(torch.tensor([1.5, 0.2], dtype=dt)),
                torch.ones(2, dtype=dt),
                torch.ones(2, dtype=dt),
            )
        ),
        "patches": plots.plot_patch_interaction(patch_interaction([torch.sin, torch.tanh], x)),
    }
    counts = {
        "spectrum": 2,
        "weyl": 1,
        "depth": 5,
        "scale": 3,
        "pvr": 1,
        "diffusion": 3,
        "gain": 3,
        "patches": 1,
    }
    for name, fig in figs.items():
        assert isinstance(fig, Figure)
        assert len(fig.axes) == counts[name], name  # depth: 4 panels + a twin axis
    # tests/test_cli.py renders the five study figures to PNG; render the spectrum here
    _png(figs["spectrum"], tmp_path, "spectrum")
    _png(figs["gain"], tmp_path, "gain")
    _png(figs["patches"], tmp_path, "patches")


def test_weyl_plot_marks_violations(tmp_path):
    band = weyl_band(torch.randn(3, 2, 2, dtype=torch.float64))
    broken = type(band)(**{**vars(band), "holds": torch.tensor([True, False, True])})
    fig = plots.plot_weyl(broken)
    assert "2 of 3" in fig.axes[0].get_title()
    _png(fig, tmp_path, "broken")
