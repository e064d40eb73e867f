"""The one training engine: the step, the schedule, clipping, resume, early stopping."""
import io
import math

import pytest
import torch

from galaxalign.engine import EarlyStop, Engine, cosine_schedule, decay_groups


def _toy(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.LayerNorm(8), torch.nn.Linear(8, 1))


def _loss(net, k):
    g = torch.Generator().manual_seed(k)
    x = torch.randn(16, 4, generator=g)
    return ((net(x).squeeze(1) - x.sum(1)) ** 2).mean()


def test_the_schedule_warms_up_then_follows_a_cosine_to_zero():
    net = _toy()
    eng = Engine(net.parameters(), 0.1, total_steps=10, warmup_steps=2)
    lrs = []
    for k in range(10):
        eng.step(lambda k=k: _loss(net, k))
        lrs.append(eng.lr)
    assert lrs[0] == pytest.approx(0.1) and lrs[1] == pytest.approx(0.1 * cosine_schedule(2, 10, 2))
    assert lrs[-1] == pytest.approx(0.0, abs=1e-12) and all(a >= b for a, b in zip(lrs[1:], lrs[2:]))
    const = Engine(_toy().parameters(), 0.1)  # no schedule: a constant rate
    const.step(lambda: _loss(net, 0))
    assert const.lr == 0.1


def test_a_step_learns_clips_and_returns_what_the_loss_returned():
    net = _toy()
    eng = Engine(decay_groups(net, 0.05), 0.05, grad_clip=1e-3)
    before = _loss(net, 99).item()

    def compute():
        loss = 1e4 * _loss(net, 1)  # a huge gradient
        return {"loss": loss, "extra": torch.tensor(3.0)}
    out = eng.step(compute)
    norm = math.sqrt(sum(float(p.grad.pow(2).sum()) for p in net.parameters()))
    assert out["extra"].item() == 3.0 and norm == pytest.approx(1e-3, rel=1e-3)
    for k in range(200):
        eng.step(lambda k=k: _loss(net, k))
    assert _loss(net, 99).item() < before
    groups = decay_groups(net, 0.05)  # no decay on biases and norm gains
    assert {g["weight_decay"] for g in groups} == {0.0, 0.05} and all(p.ndim >= 2 for p in groups[1]["params"])


def test_resuming_from_the_state_continues_exactly():
    a, b = _toy(1), _toy(1)
    ea = Engine(a.parameters(), 0.02, total_steps=20, warmup_steps=3, grad_clip=1.0)
    for k in range(10):
        ea.step(lambda k=k: _loss(a, k))
    buf = io.BytesIO()  # through a checkpoint, as last.pt is
    torch.save({"engine": ea.state_dict(), "model": a.state_dict()}, buf)
    buf.seek(0)
    saved = torch.load(buf, weights_only=False)
    state, weights = saved["engine"], saved["model"]
    b.load_state_dict(weights)
    eb = Engine(b.parameters(), 0.02, total_steps=20, warmup_steps=3, grad_clip=1.0)
    eb.load_state_dict(state)
    for k in range(10, 20):
        ea.step(lambda k=k: _loss(a, k))
        eb.step(lambda k=k: _loss(b, k))
    assert eb.lr == ea.lr and all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_early_stop_keeps_the_best_weights_and_stops_after_patience():
    net = _toy()
    stop = EarlyStop(patience=2)
    assert not stop.kept
    assert not stop.update(0.5, 1, net)
    best = {k: v.clone() for k, v in net.state_dict().items()}
    with torch.no_grad():
        net[0].weight.add_(1.0)
    assert not stop.update(0.4, 2, net)  # one epoch without a better score
    assert stop.update(0.45, 3, net)     # two: stop
    stop.restore(net)
    assert stop.epoch == 1 and stop.score == 0.5
    assert all(torch.equal(v, best[k]) for k, v in net.state_dict().items())
