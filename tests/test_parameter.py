"""manifres.ManifoldParameter: a parameter that knows its manifold, read by the optimizers, kept
through state dicts (weights_only), deepcopy, pickle, dtype conversion and torch.compile."""

import copy
import io
import pickle

import pytest
import torch
from torch import nn

import manifres
from manifres import ManifoldParameter
from manifres.errors import DTypeError, ManifoldError, ParameterError, ShapeError
from manifres.optim import RiemannianAdam, RiemannianSGD
from manifres.testing import assert_on_manifold, tol

S2 = manifres.Sphere(2)
SO3 = manifres.SpecialOrthogonal(3)


class Model(nn.Module):
    """A rotation, a unit direction and a Euclidean layer."""

    def __init__(self, dtype=torch.float32, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.R = ManifoldParameter(SO3.random(generator=g, dtype=dtype), SO3)
        self.u = ManifoldParameter(S2.random(generator=g, dtype=dtype), S2)
        self.lin = nn.Linear(3, 3).to(dtype)
        with torch.no_grad():
            self.lin.weight.copy_(torch.randn(3, 3, generator=g, dtype=dtype))
            self.lin.bias.copy_(torch.randn(3, generator=g, dtype=dtype))

    def forward(self, y):
        return ((self.lin(y) @ self.R.mT) * self.u).sum()


def _save_load(obj, weights_only=True):
    buf = io.BytesIO()
    torch.save(obj, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=weights_only)


def test_is_a_parameter_that_knows_its_manifold(dtype):
    data = S2.random(5, dtype=dtype)
    x = ManifoldParameter(data, S2)
    assert isinstance(x, nn.Parameter) and x.manifold is S2 and x.requires_grad
    assert x.data_ptr() == data.data_ptr()  # shares storage, as nn.Parameter
    assert type(x * 2) is torch.Tensor and type(x.detach()) is torch.Tensor
    m = Model(dtype)
    assert [n for n, _ in m.named_parameters()] == ["R", "u", "lin.weight", "lin.bias"]
    assert repr(ManifoldParameter(torch.tensor([1.0, 0.0, 0.0]), S2)).startswith(
        "ManifoldParameter on Sphere(2) containing:\ntensor([1., 0., 0.], requires_grad=True)"
    )
    again = ManifoldParameter(x, S2, requires_grad=False)  # from a parameter
    assert type(again) is ManifoldParameter and not again.requires_grad


def test_checks_shape_and_dtype_always_and_values_with_validation():
    with pytest.raises(ShapeError, match=r"\(\.\.\., 3\)"):
        ManifoldParameter(torch.ones(4), S2)
    with pytest.raises(DTypeError):
        ManifoldParameter(torch.ones(3, dtype=torch.float16), S2)
    with pytest.raises(TypeError, match="manifres Manifold"):
        ManifoldParameter(torch.ones(3), "sphere")
    with pytest.raises(TypeError, match="must be a torch.Tensor"):
        ManifoldParameter([1.0, 0.0, 0.0], S2)
    off = torch.tensor([2.0, 0.0, 0.0])
    assert ManifoldParameter(off, S2).manifold is S2  # values are not read by default
    with pytest.raises(ManifoldError, match="not on the manifold"):
        ManifoldParameter(off, manifres.Sphere(2, validate=True))
    with manifres.validation(), pytest.raises(ManifoldError, match=r"\| \|x\| - 1 \| = 1\.000e\+00"):
        ManifoldParameter(off, S2)


@pytest.mark.parametrize("algo", ["sgd", "adam"])
def test_optimizers_read_the_manifold_from_the_parameter(dtype, algo):
    """Same trajectory as a plain parameter whose group names the manifold."""
    torch.manual_seed(0)
    target = torch.randn(6, 3, dtype=dtype)
    x0 = S2.random(6, dtype=dtype)
    own = ManifoldParameter(x0.clone(), S2)
    plain = nn.Parameter(x0.clone())
    kw = dict(lr=0.2, momentum=0.5) if algo == "sgd" else dict(lr=0.1)
    cls = RiemannianSGD if algo == "sgd" else RiemannianAdam
    opt_own = cls([own], **kw)
    opt_plain = cls([{"params": [plain], "manifold": S2}], **kw)
    for _ in range(20):
        for p, opt in ((own, opt_own), (plain, opt_plain)):
            opt.zero_grad()
            (-(p * target).sum()).backward()
            opt.step()
    assert torch.equal(own.detach(), plain.detach())
    assert bool((S2.dist(own.detach(), x0) > 0.1).all())
    assert_on_manifold(S2, own.detach())
    assert opt_own.param_groups[0]["manifold"] is None


def test_a_group_manifold_that_disagrees_is_refused():
    x = ManifoldParameter(S2.random(2), S2)
    RiemannianSGD([{"params": [x], "manifold": manifres.Sphere(2)}], lr=0.1)  # equal: fine
    with pytest.raises(ParameterError, match=r"param\[0\] lives on Sphere\(2\) but its group says"):
        RiemannianSGD([{"params": [x], "manifold": manifres.Sphere(2, cut_locus="nan")}], lr=0.1)
    with pytest.raises(ParameterError, match=r"would do nothing on SpecialOrthogonal\(3\) \(param\[0\]\)"):
        RiemannianAdam(Model().parameters(), weight_decay=0.01)  # the decay rule applies to it


def test_module_state_dict_round_trip_loads_with_weights_only(dtype):
    src, dst = Model(dtype, seed=0), Model(dtype, seed=1)
    sd = _save_load(src.state_dict())
    assert type(sd["R"]) is torch.Tensor
    R_obj = dst.R
    dst.load_state_dict(sd)
    assert dst.R is R_obj and type(dst.R) is ManifoldParameter and dst.R.manifold is SO3
    y = torch.randn(2, 3, dtype=dtype)
    assert torch.equal(dst(y), src(y))


def test_deepcopy_pickle_and_torch_save_keep_the_class_and_manifold(dtype):
    m = Model(dtype)
    y = torch.randn(2, 3, dtype=dtype)
    for clone in (copy.deepcopy(m), pickle.loads(pickle.dumps(m)), _save_load(m, weights_only=False)):
        assert type(clone.R) is ManifoldParameter and clone.R.manifold == SO3 and clone.u.manifold == S2
        assert clone.R is not m.R and clone.R.data_ptr() != m.R.data_ptr()
        assert torch.equal(clone(y), m(y))
    with pytest.raises(pickle.UnpicklingError):  # the object itself pickles its manifold:
        _save_load({"R": m.R})  # weights_only refuses it (save m.state_dict() instead)
    a = ManifoldParameter(S2.random(2, dtype=dtype), S2)
    pair = copy.deepcopy([a, a])
    assert pair[0] is pair[1]  # shared stays shared


def test_dtype_conversion_keeps_the_class_and_manifold():
    m = Model(torch.float32).double()
    assert m.R.dtype == torch.float64 and type(m.R) is ManifoldParameter and m.R.manifold is SO3
    m.float()
    assert m.u.dtype == torch.float32 and type(m.u) is ManifoldParameter


def test_swapped_load_keeps_the_class_and_checks_the_values():
    """torch's swap path (set_swap_module_params_on_conversion) goes through module_load."""
    old = torch.__future__.get_swap_module_params_on_conversion()
    torch.__future__.set_swap_module_params_on_conversion(True)
    try:
        src, dst = Model(seed=0), Model(seed=1)
        dst.load_state_dict(src.state_dict())
        assert type(dst.R) is ManifoldParameter and dst.R.manifold is SO3
        assert torch.equal(dst.R.detach(), src.R.detach())
        bad = src.state_dict()
        bad["u"] = 2.0 * bad["u"]
        with manifres.validation(), pytest.raises(RuntimeError, match='"u".*not on the manifold'):
            dst.load_state_dict(bad)
    finally:
        torch.__future__.set_swap_module_params_on_conversion(old)


@pytest.mark.parametrize("algo", ["sgd", "adam"])
def test_optimizer_checkpoint_resumes_with_manifold_parameters(dtype, algo):
    cls = RiemannianSGD if algo == "sgd" else RiemannianAdam
    y = torch.randn(8, 3, dtype=dtype, generator=torch.Generator().manual_seed(3))

    def run(model, opt, steps):
        for _ in range(steps):
            opt.zero_grad()
            model(y).backward()
            opt.step()

    ref = Model(dtype)
    run(ref, cls(ref.parameters(), lr=0.05), 10)
    m = Model(dtype)
    opt = cls(m.parameters(), lr=0.05)
    run(m, opt, 4)
    ck = _save_load({"model": m.state_dict(), "opt": opt.state_dict()})
    m2 = Model(dtype, seed=5)
    m2.load_state_dict(ck["model"])
    opt2 = cls(m2.parameters(), lr=1.0)
    opt2.load_state_dict(ck["opt"])
    run(m2, opt2, 6)
    for a, b in zip(m2.parameters(), ref.parameters(), strict=True):
        assert torch.equal(a.detach(), b.detach())
    assert float(SO3.dist(m2.R.detach(), Model(dtype).R.detach())) > 0.05


@pytest.mark.parametrize("backend", ["aot_eager", pytest.param("inductor", marks=pytest.mark.slow)])
def test_a_module_holding_one_compiles_without_graph_breaks(backend):
    torch._dynamo.reset()
    m = Model(torch.float32)
    y = torch.randn(5, 3)
    compiled = torch.compile(m, fullgraph=True, backend=backend)
    out = compiled(y)
    out.backward()
    grads = [p.grad.clone() for p in m.parameters()]
    m.zero_grad()
    ref = m(y)
    ref.backward()
    torch.testing.assert_close(out, ref, atol=tol(torch.float32, 1e-5), rtol=1e-5)
    for g, p in zip(grads, m.parameters(), strict=True):
        torch.testing.assert_close(g, p.grad, atol=1e-5, rtol=1e-5)
    RiemannianSGD(m.parameters(), lr=0.1).step()
    assert type(m.R) is ManifoldParameter
    assert_on_manifold(SO3, m.R.detach())


def test_optimizer_checkpoint_refuses_parameters_on_other_manifolds():
    """A checkpoint's moments are shaped for the manifold (one Adam second moment per point):
    loading them for a parameter on another manifold (or none) is refused."""
    m = Model()
    opt = RiemannianAdam(m.parameters(), lr=0.1)
    sd = _save_load(opt.state_dict())
    assert sd["param_groups"][0]["param_manifolds"] == [
        {"class": "manifres.manifolds.son.SpecialOrthogonal", "repr": "SpecialOrthogonal(3)"},
        {"class": "manifres.manifolds.sphere.Sphere", "repr": "Sphere(2)"},
        None,
        None,
    ]
    other = Model()
    other.u = nn.Parameter(other.u.detach().clone())  # now a plain parameter
    message = r"param\[1\] of group 0 was saved on the manifold Sphere\(2\).*carries None"
    with pytest.raises(ParameterError, match=message):
        RiemannianAdam(other.parameters(), lr=0.1).load_state_dict(sd)
