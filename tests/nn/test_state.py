"""State of every nn layer through what users do with modules: state_dict round trips (and
torch.load(weights_only=True)), load_state_dict, deepcopy, pickle and torch.save, dtype
conversion (a number step stays exact), AveragedModel, steps passed as parameters or tensors,
and shared learnable steps that stay tied."""

import copy
import io
import pickle

import pytest
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

import manifres
from manifres.errors import ParameterError
from manifres.experiments.sir import SIR
from manifres.nn import (
    AdapterNetwork,
    AmbientMLPField,
    BottleneckResidual,
    ConstantField,
    DeadZoneResidual,
    Hybrid,
    LieAlgebraField,
    LinearField,
    PostActResidual,
    PreActResidual,
    Residual,
    ResidualAdapter,
    ReZero,
    TangentResidual,
    TangentResidualStack,
    residual_mlp,
)
from manifres.testing import tol

S2 = manifres.Sphere(2)
SO3 = manifres.SpecialOrthogonal(3)
SKEW = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])


def _flat(dtype, seed):
    return torch.randn(5, 3, dtype=dtype, generator=torch.Generator().manual_seed(seed))


def _sphere(dtype, seed):
    return S2.random(5, dtype=dtype, generator=torch.Generator().manual_seed(seed))


def _rotations(dtype, seed):
    return SO3.random(5, dtype=dtype, generator=torch.Generator().manual_seed(seed))


def _sir_states(dtype, seed):
    i = 0.01 + 0.1 * torch.rand(5, 1, dtype=dtype, generator=torch.Generator().manual_seed(seed))
    return torch.cat([1 - i, i, torch.zeros_like(i)], -1)


# (id, factory, input, call); every factory builds float32 modules
LAYERS = [
    ("Residual", lambda: Residual(nn.Linear(3, 3), step=0.1), _flat, None),
    ("Residual-learned", lambda: Residual(nn.Linear(3, 3), step=0.1, learn_step=True), _flat, None),
    (
        "Residual-per-channel",
        lambda: Residual(nn.Linear(3, 3), step=torch.tensor([0.1, 0.2, 0.3])),
        _flat,
        None,
    ),
    ("Residual-linear-shortcut", lambda: Residual(nn.Linear(3, 4), shortcut="linear"), _flat, None),
    ("ReZero", lambda: ReZero(nn.Linear(3, 3)), _flat, None),
    ("PreActResidual-batchnorm", lambda: PreActResidual(3, hidden=4, norm="batch"), _flat, None),
    ("PostActResidual", lambda: PostActResidual(3, step=0.5, learn_step=True), _flat, None),
    ("BottleneckResidual", lambda: BottleneckResidual(3, 2, out_features=4), _flat, None),
    ("DeadZoneResidual", lambda: DeadZoneResidual(nn.Linear(3, 3), 0.05, step=0.1, mode="norm"), _flat, None),
    ("residual_mlp", lambda: residual_mlp(3, 3, step=0.1, learn_step=True, hidden=4), _flat, None),
    ("ResidualAdapter", lambda: ResidualAdapter(3, bottleneck=2), _flat, None),
    (
        "AdapterNetwork",
        lambda: AdapterNetwork(nn.Sequential(nn.Linear(3, 3), nn.Tanh()), [None, 3], n_tasks=2),
        _flat,
        lambda m, x: m(x, task=1),
    ),
    ("TangentResidual", lambda: TangentResidual(S2, AmbientMLPField(S2, 4, 1), step=0.1), _sphere, None),
    (
        "TangentResidual-learned",
        lambda: TangentResidual(S2, AmbientMLPField(S2, 4, 1), step=0.1, learn_step=True),
        _sphere,
        None,
    ),
    (
        "TangentResidual-rkmk4-SO3",
        lambda: TangentResidual(SO3, LieAlgebraField(3, 4, 1), step=0.2, method="rkmk4"),
        _rotations,
        None,
    ),
    (
        "TangentResidualStack-shared",
        lambda: TangentResidualStack(S2, AmbientMLPField(S2, 4, 1), step=0.1, depth=3, learn_step=True),
        _sphere,
        None,
    ),
    (
        "TangentResidualStack-per-layer",
        lambda: TangentResidualStack(
            S2, [AmbientMLPField(S2, 4, 1, time_dependent=True) for _ in range(3)], step=0.1
        ),
        _sphere,
        None,
    ),
    ("AmbientMLPField", lambda: AmbientMLPField(SO3, 4, 1), _rotations, None),
    ("LieAlgebraField", lambda: LieAlgebraField(3, 4, 1, time_dependent=True), _rotations, None),
    ("ConstantField", lambda: ConstantField(torch.tensor([0.0, 0.0, 1.0]), learnable=True), _sphere, None),
    ("LinearField", lambda: LinearField(SKEW, rate=SKEW, learnable=True), _sphere, lambda m, x: m(x, 0.5)),
    (
        "Hybrid-SIR",
        lambda: Hybrid(SIR(0.3, 0.1, learn=True), nn.Linear(3, 3), freeze_baseline=False),
        _sir_states,
        None,
    ),
    ("SIR-buffers", lambda: SIR(0.3, 0.1, steps=2), _sir_states, None),
]
IDS = [layer[0] for layer in LAYERS]
WITH_PARAMETERS = [layer for layer in LAYERS if layer[0] != "SIR-buffers"]


def _build(spec, dtype, seed):
    """A layer in ``dtype`` with seed-dependent weights and trained batch-norm statistics."""
    _, make, inp, _ = spec
    torch.manual_seed(seed)
    m = make().to(dtype)
    m.train()
    with torch.no_grad():
        _call(spec, m, inp(dtype, 100 + seed))  # batch-norm running statistics move
        for p in m.parameters():
            p.add_(0.05 * torch.randn_like(p))
        for b in m.buffers():
            if b.is_floating_point():
                b.add_(0.01 * torch.rand_like(b))
    return m.eval()


def _call(spec, m, x):
    return spec[3](m, x) if spec[3] is not None else m(x)


def _save_load(obj, weights_only=True):
    buf = io.BytesIO()
    torch.save(obj, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=weights_only)


@pytest.mark.parametrize("spec", LAYERS, ids=IDS)
def test_state_dict_round_trip_through_weights_only_load(dtype, spec):
    src, dst = _build(spec, dtype, 0), _build(spec, dtype, 1)
    x = spec[2](dtype, 0)
    assert not torch.equal(_call(spec, dst, x), _call(spec, src, x))
    sd = _save_load(src.state_dict())
    dst.load_state_dict(sd)
    assert torch.equal(_call(spec, dst, x), _call(spec, src, x))
    assert sd.keys() == src.state_dict().keys()
    assert all(torch.equal(a, b) for a, b in zip(dst.state_dict().values(), sd.values(), strict=True))


@pytest.mark.parametrize("spec", LAYERS, ids=IDS)
def test_deepcopy_is_equal_and_independent(dtype, spec):
    m = _build(spec, dtype, 0)
    x = spec[2](dtype, 0)
    y = _call(spec, m, x)
    clone = copy.deepcopy(m)
    assert torch.equal(_call(spec, clone, x), y)
    with torch.no_grad():
        for p in clone.parameters():
            p.mul_(1.5)
    assert torch.equal(_call(spec, m, x), y)
    if any(True for _ in m.parameters() if _.requires_grad):
        assert not torch.equal(_call(spec, clone, x), y)


@pytest.mark.parametrize("spec", LAYERS, ids=IDS)
def test_pickle_and_torch_save_of_the_module(dtype, spec):
    m = _build(spec, dtype, 0)
    x = spec[2](dtype, 0)
    for clone in (pickle.loads(pickle.dumps(m)), _save_load(m, weights_only=False)):
        assert type(clone) is type(m) and torch.equal(_call(spec, clone, x), _call(spec, m, x))


@pytest.mark.parametrize("spec", LAYERS, ids=IDS)
def test_double_converts_every_tensor_and_keeps_the_map(spec):
    m32 = _build(spec, torch.float32, 0)
    x = spec[2](torch.float32, 0)
    m64 = copy.deepcopy(m32).double()
    y64 = _call(spec, m64, x.double())
    assert y64.dtype == torch.float64
    assert all(p.dtype == torch.float64 for p in m64.parameters())
    torch.testing.assert_close(y64.float(), _call(spec, m32, x), atol=tol(torch.float32, 1e-5), rtol=1e-5)


NUMBER_STEPS = [
    ("Residual", lambda: Residual(nn.Linear(3, 3), step=0.1), lambda m: m.step),
    ("DeadZoneResidual", lambda: DeadZoneResidual(nn.Linear(3, 3), 0.0, step=0.1), lambda m: m.step),
    ("residual_mlp", lambda: residual_mlp(3, 2, step=0.1), lambda m: m[1].step),
    (
        "TangentResidual",
        lambda: TangentResidual(S2, ConstantField(torch.ones(3)), step=0.1),
        lambda m: m.step,
    ),
    (
        "TangentResidualStack",
        lambda: TangentResidualStack(S2, ConstantField(torch.ones(3)), step=0.1, depth=2),
        lambda m: m.layers[1].step,
    ),
]


@pytest.mark.parametrize("spec", NUMBER_STEPS, ids=[s[0] for s in NUMBER_STEPS])
def test_a_number_step_stays_exact_under_dtype_conversion(spec):
    """0.1 is not a float32 number: .float().double() (or .half()) must not round the step."""
    _, make, step = spec
    m = make().float().half().to(torch.float32).double()
    assert float(step(m)) == 0.1
    if isinstance(step(m), torch.Tensor):
        assert step(m).dtype == torch.float64
        m.to("meta")  # still follows device moves
        assert step(m).device.type == "meta"


@pytest.mark.parametrize("spec", WITH_PARAMETERS, ids=[s[0] for s in WITH_PARAMETERS])
def test_averaged_model_averages_every_parameter(dtype, spec):
    m = _build(spec, dtype, 0)
    avg = AveragedModel(m)
    avg.update_parameters(m)  # the first update copies
    first = [p.detach().clone() for p in m.parameters()]
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.1)
    avg.update_parameters(m)
    for p_avg, p0 in zip(avg.module.parameters(), first, strict=True):
        torch.testing.assert_close(p_avg, p0 + 0.05, atol=tol(dtype, 1e-6, 1e-14), rtol=0)
    x = spec[2](dtype, 0)
    assert _call(spec, avg, x).shape == _call(spec, m, x).shape


def _graph_leaves(t):
    """The tensors that require a gradient and that ``t`` depends on (autograd's leaves)."""
    leaves, seen, todo = [], set(), [t.grad_fn]
    while todo:
        node = todo.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        if hasattr(node, "variable"):
            leaves.append(node.variable)
        todo.extend(n for n, _ in node.next_functions)
    return leaves


@pytest.mark.parametrize("spec", WITH_PARAMETERS, ids=[s[0] for s in WITH_PARAMETERS])
def test_every_learnable_tensor_is_a_registered_parameter_in_the_state_dict(dtype, spec):
    """Whatever the output depends on and could learn is in parameters() and state_dict()."""
    m = _build(spec, dtype, 0)
    out = _call(spec, m, spec[2](dtype, 0))
    leaves = _graph_leaves(out)
    registered = {id(p): name for name, p in m.named_parameters(remove_duplicate=False)}
    assert leaves and all(id(v) in registered for v in leaves)
    keys = set(m.state_dict())
    assert set(registered.values()) <= keys
    for mod in m.modules():  # and no learnable tensor hides in a plain attribute
        for name, value in vars(mod).items():
            if isinstance(value, torch.Tensor) and value.requires_grad:
                assert id(value) in registered, f"{type(mod).__name__}.{name} is learnable but not registered"


# ----------------------------------------------------------------------------- steps
STEP_LAYERS = [
    ("Residual", lambda s: Residual(nn.Linear(3, 3), step=s), _flat),
    ("PreActResidual", lambda s: PreActResidual(3, step=s), _flat),
    ("PostActResidual", lambda s: PostActResidual(3, step=s), _flat),
    ("BottleneckResidual", lambda s: BottleneckResidual(3, 2, step=s), _flat),
    ("DeadZoneResidual", lambda s: DeadZoneResidual(nn.Linear(3, 3), 0.0, step=s), _flat),
    ("ResidualAdapter", lambda s: ResidualAdapter(3, step=s), _flat),
    ("residual_mlp", lambda s: residual_mlp(3, 2, step=s), _flat),
    ("TangentResidual", lambda s: TangentResidual(S2, AmbientMLPField(S2, 4, 1), step=s), _sphere),
    (
        "TangentResidualStack",
        lambda s: TangentResidualStack(S2, AmbientMLPField(S2, 4, 1), step=s, depth=3),
        _sphere,
    ),
]


def _steps(m):
    return [layer.step for layer in m.modules() if hasattr(layer, "step") and not hasattr(layer, "layers")]


@pytest.mark.parametrize("spec", STEP_LAYERS, ids=[s[0] for s in STEP_LAYERS])
def test_a_parameter_step_keeps_its_autograd_connection(spec):
    _, make, inp = spec
    torch.manual_seed(0)
    h = nn.Parameter(torch.tensor(0.3))
    m = make(h)
    if spec[0] == "ResidualAdapter":
        with torch.no_grad():  # a zero-initialised adapter has a zero branch: no step gradient
            m.branch.weight.normal_()
    assert all(s is h for s in _steps(m)) and len(_steps(m)) >= 1
    assert any(p is h for p in m.parameters())
    out = m(inp(torch.float32, 0))
    (out * torch.randn(out.shape, generator=torch.Generator().manual_seed(1))).sum().backward()
    assert h.grad is not None and float(h.grad.abs()) > 1e-3
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    opt.step()
    assert abs(float(h.detach()) - 0.3) > 1e-4 and all(s is h for s in _steps(m))  # trained
    clone = copy.deepcopy(m)
    assert all(s is _steps(clone)[0] for s in _steps(clone)) and _steps(clone)[0] is not h


@pytest.mark.parametrize("spec", STEP_LAYERS, ids=[s[0] for s in STEP_LAYERS])
def test_a_tensor_step_that_requires_grad_is_refused(spec):
    h = torch.tensor(0.3, requires_grad=True) * 1.0  # would silently detach from its graph
    message = r"requires a gradient but is not an nn.Parameter.*nn.Parameter\(step\)"
    with pytest.raises(ParameterError, match=message):
        spec[1](h)


def test_a_shared_learnable_step_of_a_stack_stays_tied():
    """One Parameter for every layer, through load_state_dict, deepcopy, pickle, .double(),
    AveragedModel and an optimizer step."""
    torch.manual_seed(0)

    def tied(stack):
        return all(layer.step is stack.layers[0].step for layer in stack.layers)

    def make():
        return TangentResidualStack(S2, AmbientMLPField(S2, 4, 1), step=0.1, depth=4, learn_step=True)

    net = make()
    assert tied(net) and sum(p is net.step for p in net.parameters()) == 1
    other = make()
    sd = net.state_dict()
    sd["layers.3.step"] = torch.tensor(0.25)  # a checkpoint with the layers saved one by one
    sd["layers.0.step"] = torch.tensor(0.25)
    sd["layers.1.step"] = torch.tensor(0.25)
    sd["layers.2.step"] = torch.tensor(0.25)
    other.load_state_dict(sd)
    assert tied(other) and float(other.step.detach()) == 0.25
    for clone in (copy.deepcopy(net), pickle.loads(pickle.dumps(net)), copy.deepcopy(net).double()):
        assert tied(clone) and clone.step is not net.step
    assert tied(AveragedModel(net).module)
    x = S2.random(6)
    net(x).sum().backward()
    torch.optim.SGD(net.parameters(), lr=1.0).step()
    assert tied(net) and float(net.step.detach()) != 0.1
