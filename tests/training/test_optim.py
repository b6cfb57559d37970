"""Our optimisers follow torch.optim's trajectories, reject bad hyper-parameters and lower a loss."""

from __future__ import annotations

import copy

import pytest
import torch

from dlterms import optim

TOL = 1e-6


def _problem(seed: int = 0):
    """A small 2-layer regression net and data (float64 so 100 steps compare to 1e-6 with room)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 5, generator=g, dtype=torch.float64)
    y = torch.randn(64, 1, generator=g, dtype=torch.float64)
    net = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1)).double()
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64) * 0.5)
    return net, x, y


def _trajectory(make_opt, steps: int = 100, seed: int = 0, groups: bool = False):
    net, x, y = _problem(seed)
    params = (
        [{"params": net[0].parameters()}, {"params": net[2].parameters(), "lr": 0.003}] if groups else net.parameters()
    )
    opt = make_opt(params)
    path = []
    for i in range(steps):
        opt.zero_grad()
        idx = torch.arange(i % 4 * 16, i % 4 * 16 + 16)  # cycle through 4 mini-batches
        loss = ((net(x[idx]) - y[idx]) ** 2).mean()
        loss.backward()
        opt.step()
        path.append(torch.cat([p.detach().flatten().clone() for p in net.parameters()]))
    return torch.stack(path)


CASES = [
    ("SGD", dict(lr=0.05)),
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-2)),
    ("SGD", dict(lr=0.02, momentum=0.5, dampening=0.3, weight_decay=1e-3)),
    ("SGD", dict(lr=0.02, momentum=0.9, maximize=True)),
    ("RMSprop", dict(lr=1e-3)),
    ("RMSprop", dict(lr=1e-3, alpha=0.9, momentum=0.8, weight_decay=1e-2)),
    ("RMSprop", dict(lr=1e-3, centered=True, momentum=0.5, eps=1e-6)),
    ("Adam", dict(lr=1e-2)),
    ("Adam", dict(lr=1e-2, betas=(0.8, 0.99), weight_decay=0.1, eps=1e-6)),
    ("Adam", dict(lr=1e-2, amsgrad=True)),
    ("Adam", dict(lr=5e-3, maximize=True)),
    ("AdamW", dict(lr=1e-2)),
    ("AdamW", dict(lr=1e-2, betas=(0.5, 0.9), weight_decay=0.3, amsgrad=True)),
]


@pytest.mark.parametrize("name,kw", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_follows_torch_trajectory(name, kw):
    ours = _trajectory(lambda p: getattr(optim, name)(p, **kw))
    ref = _trajectory(lambda p: getattr(torch.optim, name)(p, **kw))
    assert (ours - ref).abs().max().item() < TOL
    assert (ours[-1] - ours[0]).abs().max().item() > 1e-3  # it actually moved


@pytest.mark.parametrize("name", ["SGD", "RMSprop", "Adam", "AdamW"])
def test_param_groups_follow_torch(name):
    ours = _trajectory(lambda p: getattr(optim, name)(p, lr=0.01), groups=True)
    ref = _trajectory(lambda p: getattr(torch.optim, name)(p, lr=0.01), groups=True)
    assert (ours - ref).abs().max().item() < TOL


@pytest.mark.parametrize(
    "name,kw",
    [
        ("SGD", dict(lr=0.05, momentum=0.9)),
        ("RMSprop", dict(lr=1e-3, centered=True)),
        ("Adam", dict(lr=1e-2, amsgrad=True)),
        ("AdamW", dict(lr=1e-2)),
    ],
)
def test_state_dict_round_trip_resumes_exactly(name, kw):
    """Save after 10 steps, load into a fresh optimiser, and the next 10 steps match an unbroken run."""

    def loss_of(net, x, y):
        return ((net(x) - y) ** 2).mean()

    net, x, y = _problem()
    opt = getattr(optim, name)(net.parameters(), **kw)
    for _ in range(20):
        opt.zero_grad()
        loss_of(net, x, y).backward()
        opt.step()
    unbroken = [p.detach().clone() for p in net.parameters()]

    net, x, y = _problem()
    opt = getattr(optim, name)(net.parameters(), **kw)
    for _ in range(10):
        opt.zero_grad()
        loss_of(net, x, y).backward()
        opt.step()
    saved = opt.state_dict()
    opt2 = getattr(optim, name)(net.parameters(), **kw)
    opt2.load_state_dict(saved)
    for _ in range(10):
        opt2.zero_grad()
        loss_of(net, x, y).backward()
        opt2.step()
    for a, b in zip(unbroken, net.parameters()):
        assert torch.allclose(a, b, atol=1e-12)


@pytest.mark.parametrize(
    "name,kw",
    [
        ("SGD", dict(lr=0.1, momentum=0.9)),
        ("RMSprop", dict(lr=0.01)),
        ("Adam", dict(lr=0.05)),
        ("AdamW", dict(lr=0.05)),
    ],
)
def test_twenty_steps_lower_the_loss(name, kw):
    net, x, y = _problem(3)
    opt = getattr(optim, name)(net.parameters(), **kw)

    def closure():
        opt.zero_grad()
        loss = ((net(x) - y) ** 2).mean()
        loss.backward()
        return loss

    first = closure().item()
    for _ in range(20):
        last = opt.step(closure).item()
    assert last < 0.8 * first


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda p: optim.SGD(p, lr=-0.1), "lr must be >= 0, got -0.1"),
        (lambda p: optim.SGD(p, lr=0.1, momentum=-0.5), "momentum must be >= 0, got -0.5"),
        (lambda p: optim.SGD(p, lr=0.1, weight_decay=-1), "weight_decay must be >= 0, got -1"),
        (lambda p: optim.SGD(p, lr=0.1, nesterov=True), "nesterov=True needs momentum > 0"),
        (lambda p: optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "dampening=0.1"),
        (lambda p: optim.RMSprop(p, alpha=1.5), r"alpha must be in \[0, 1\], got 1.5"),
        (lambda p: optim.RMSprop(p, eps=-1e-8), "eps must be >= 0, got -1e-08"),
        (lambda p: optim.RMSprop(p, momentum=-0.1), "momentum must be >= 0, got -0.1"),
        (lambda p: optim.Adam(p, betas=(1.0, 0.999)), r"betas\[0\] must be in \[0, 1\), got 1.0"),
        (lambda p: optim.Adam(p, betas=(0.9, -0.1)), r"betas\[1\] must be in \[0, 1\), got -0.1"),
        (lambda p: optim.Adam(p, lr=-1e-3), "lr must be >= 0, got -0.001"),
        (lambda p: optim.AdamW(p, weight_decay=-0.01), "weight_decay must be >= 0, got -0.01"),
    ],
)
def test_bad_hyperparameters_are_rejected(make, match):
    with pytest.raises(ValueError, match=match):
        make([torch.nn.Parameter(torch.zeros(2))])


def test_sparse_gradients_are_refused_with_advice():
    emb = torch.nn.Embedding(4, 2, sparse=True)
    emb(torch.tensor([1])).sum().backward()
    with pytest.raises(RuntimeError, match="does not support sparse gradients"):
        optim.Adam(emb.parameters()).step()


def test_works_with_torch_schedulers():
    p = torch.nn.Parameter(torch.zeros(1))
    opt = optim.SGD([p], lr=1.0)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    p.grad = torch.ones(1)
    opt.step()
    sched.step()
    assert opt.param_groups[0]["lr"] == 0.5


@pytest.mark.parametrize(
    "name,kw",
    [("Adam", {}), ("Adam", dict(weight_decay=0.1)), ("AdamW", dict(weight_decay=0.1)), ("Adam", dict(maximize=True))],
)
def test_adam_multi_tensor_update_equals_the_loop_bit_for_bit(name, kw):
    # foreach=False runs the per-parameter loop (the equations as written); the default issues each
    # operation once for all parameters. A parameter without a gradient at some steps falls behind in
    # step count, so the two step counts are updated in separate batches.
    cls = getattr(optim, name)
    torch.manual_seed(0)
    base = torch.nn.Sequential(torch.nn.Linear(7, 13), torch.nn.Tanh(), torch.nn.Linear(13, 3))
    a, b = copy.deepcopy(base), copy.deepcopy(base)
    oa, ob = cls(a.parameters(), lr=1e-2, foreach=False, **kw), cls(b.parameters(), lr=1e-2, **kw)
    for i in range(30):
        x = torch.randn(16, 7)
        for m, o in ((a, oa), (b, ob)):
            o.zero_grad()
            m(x).pow(2).mean().backward()
            if i % 7 == 3:
                m[2].bias.grad = None
            o.step()
    assert oa.state[a[2].bias]["step"] == ob.state[b[2].bias]["step"] < oa.state[a[0].weight]["step"]
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)
    assert not torch.equal(a[0].weight, base[0].weight)  # the weights moved
