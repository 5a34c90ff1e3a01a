"""DistributedDataParallel training of a tangent residual stack (gloo, CPU, 2 processes) gives
the parameters of single-process training on the same global batch.

The model is a ``TangentResidualStack`` on S^2 (per-layer ambient MLP fields) plus a learned
anchor point on the sphere; the stack's weights are Euclidean parameters, the anchor is a
manifold parameter, and both are trained by ``manifres.optim.RiemannianSGD``. DDP averages the
gradients of the two half-batches, which equals the gradient of the mean loss on the global
batch. One spawn trains a float32 and a float64 model (spawning costs about 5 s per run).
"""

import os
import socket
import tempfile

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

import manifres
import manifres.nn as mnn
from manifres.optim import RiemannianSGD

STEPS = 4
GLOBAL_BATCH = 16
S = manifres.Sphere(2)


class _Model(nn.Module):
    def __init__(self, dtype):
        super().__init__()
        with torch.random.fork_rng(devices=[]):  # same weights in every process
            torch.manual_seed(0)
            Stack = getattr(mnn, "TangentResidualStack", None)
            if Stack is not None:
                fields = [mnn.AmbientMLPField(S, hidden=8, depth=1) for _ in range(3)]
                self.stack = Stack(S, fields, step=0.3)
            else:  # fallback while the tangent layers are not there: a Euclidean stack
                self.stack = mnn.residual_mlp(3, 3, scale=0.3)
            self.anchor = nn.Parameter(S.random(dtype=torch.float64))
        self.to(dtype)

    def forward(self, x):
        return self.stack(x)


def _data(dtype):
    g = torch.Generator().manual_seed(1)
    x = S.random(GLOBAL_BATCH, generator=g, dtype=torch.float64).to(dtype)
    y = S.random(GLOBAL_BATCH, generator=g, dtype=torch.float64).to(dtype)
    return x, y


def _loss(model, out, y):
    anchor = model.module.anchor if isinstance(model, nn.parallel.DistributedDataParallel) else model.anchor
    return ((out - y) ** 2).sum(-1).mean() + 0.5 * ((out - anchor) ** 2).sum(-1).mean()


def _optimizer(model):
    core = model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
    return RiemannianSGD(
        [{"params": core.stack.parameters()}, {"params": [core.anchor], "manifold": S}],
        lr=0.2,
        momentum=0.9,
    )


def _train(model, x, y):
    opt = _optimizer(model)
    for _ in range(STEPS):
        opt.zero_grad()
        _loss(model, model(x), y).backward()
        opt.step()


def _worker(rank, world_size, port, path):
    torch.set_num_threads(1)
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        result = {}
        for dtype in (torch.float32, torch.float64):
            model = nn.parallel.DistributedDataParallel(_Model(dtype))
            x, y = _data(dtype)
            shard = slice(rank * GLOBAL_BATCH // world_size, (rank + 1) * GLOBAL_BATCH // world_size)
            _train(model, x[shard], y[shard])
            result[str(dtype)] = {k: v.detach().clone() for k, v in model.module.state_dict().items()}
        if rank == 0:
            torch.save(result, path)
        dist.barrier()
    finally:
        dist.destroy_process_group()


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ddp_result():
    if not dist.is_available() or not dist.is_gloo_available():
        pytest.skip("torch.distributed with gloo is not available")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "ddp.pt")
        mp.spawn(_worker, args=(2, _free_port(), path), nprocs=2, join=True)
        return torch.load(path)


def test_ddp_matches_single_process(dtype, ddp_result):
    model = _Model(dtype)
    x, y = _data(dtype)
    init = {k: v.clone() for k, v in model.state_dict().items()}
    _train(model, x, y)
    ddp = ddp_result[str(dtype)]
    atol = {torch.float32: 1e-6, torch.float64: 1e-13}[dtype]
    for name, value in model.state_dict().items():
        assert not torch.equal(value, init[name]) or name.endswith("step"), f"{name} did not train"
        torch.testing.assert_close(ddp[name], value, atol=atol, rtol=0, msg=name)
    assert bool(S.is_point(ddp["anchor"]))
