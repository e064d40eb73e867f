"""The D4 layers: turning or mirroring the input turns and permutes the feature planes exactly, and
the network's output does not change at all."""
import pytest
import torch

from galaxalign.equivariant import INV, MUL, ORDER, ConvD4, D4Tower, LiftD4, d4_cnn, transform, turned_copies


def test_the_group_table_is_a_group():
    assert sorted(MUL[0]) == list(range(ORDER))  # 0 is the identity
    for a in range(ORDER):
        assert sorted(MUL[a]) == list(range(ORDER))  # every row a permutation
        assert MUL[a, INV[a]] == 0
    for a in range(ORDER):
        for b in range(ORDER):
            for c in range(ORDER):
                assert MUL[MUL[a, b], c] == MUL[a, MUL[b, c]]
    assert any(MUL[a, b] != MUL[b, a] for a in range(ORDER) for b in range(ORDER))  # D4 is not abelian


@pytest.mark.parametrize("g", range(ORDER))
def test_layers_are_equivariant(g):
    torch.manual_seed(0)
    lift, conv = LiftD4(2, 3), ConvD4(3, 4)
    x = torch.randn(2, 2, 16, 16)
    y, turned = conv(lift(x)), conv(lift(transform(x, g)))
    # the law: plane h of the turned input's output is plane g⁻¹h of the output, turned by g
    expected = transform(y[:, :, [MUL[INV[g], h] for h in range(ORDER)]], g)
    assert torch.allclose(turned, expected, atol=1e-5)
    if g:  # and the planes do move: not a trivially constant map
        assert not torch.allclose(turned, transform(y, g), atol=1e-3)


def test_the_network_is_invariant_and_still_sees_the_image():
    torch.manual_seed(0)
    net = d4_cnn(channels=1, width=4, classes=4).eval()
    x = torch.randn(4, 1, 32, 32)
    with torch.no_grad():
        y = net(x)
        for g in range(1, ORDER):
            assert torch.allclose(net(transform(x, g)), y, atol=1e-5)
        net.train()  # batch statistics too: a turned batch has the same ones
        net.drop.p = 0.0
        y = net(x)
        assert torch.allclose(net(transform(x, 3)), y, atol=1e-5)
        assert not torch.allclose(net(torch.randn(4, 1, 32, 32)), y, atol=1e-3)


def test_turned_copies_turn_the_batch_by_fractions_of_a_quarter_turn():
    x = torch.zeros(2, 1, 32, 32)
    x[0, 0, 15:17, 4:28] = 1.0  # a bar along the rows
    x[1, 0, 4:28, 15:17] = 1.0  # and one along the columns
    assert turned_copies(x, 1) is x
    c = turned_copies(x, 2)
    assert c.shape == (4, 1, 32, 32) and torch.equal(c[:2], x)
    diagonal = c[2, 0, torch.arange(8, 24), torch.arange(8, 24)]
    anti = c[2, 0, torch.arange(8, 24), torch.arange(23, 7, -1)]
    assert (diagonal.mean() > 0.5 and anti.mean() < 0.2) or (anti.mean() > 0.5 and diagonal.mean() < 0.2)
    assert c[2, 0, 15:17, 4:8].max() < 0.1  # the bar's ends have left the row
    assert turned_copies(x, 4).shape[0] == 4 * 2


def test_pooling_over_turned_copies_keeps_d4_exact_and_steadies_45_degree_turns():
    """``turns=2``: quarter turns and mirrors still change nothing; a 45° turn of a smooth galaxy moves
    the features less than the same weights without the turned copies do."""
    torch.manual_seed(0)
    tower = D4Tower(4, 16, 32, channels=1).eval()
    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    blobs = [torch.exp(-((xx - 16 - 6 * dx) ** 2 + (yy - 16 - 3 * dy) ** 2) / 18) for dx, dy in ((1, 0), (-1, 1), (0.5, -1))]
    x = torch.stack([b + 0.5 * torch.exp(-((xx - 16) ** 2 + (yy - 16) ** 2) / 30) for b in blobs])[:, None]
    x45 = turned_copies(x, 2)[3:]
    change = {}
    with torch.no_grad():
        for turns in (1, 2):
            tower.turns = turns
            y = tower(x)
            for g in (1, 5):
                assert torch.allclose(tower(transform(x, g)), y, atol=1e-4)
            change[turns] = ((tower(x45) - y).norm(dim=1) / y.norm(dim=1)).mean().item()
    assert change[2] < 0.5 * change[1], change


def test_it_learns():
    """Two classes told apart only by where the bright pixel sits relative to the centre's ring: a
    few steps drive the loss down."""
    torch.manual_seed(0)
    net = d4_cnn(channels=1, width=2, classes=2, drop=0.0)
    x = torch.zeros(16, 1, 16, 16)
    y = torch.arange(16) % 2
    x[y == 0, :, 6:10, 6:10] = 1.0
    x[y == 1, :, 2:14:4, 2:14:4] = 1.0
    opt = torch.optim.Adam(net.parameters(), lr=0.02)
    first = None
    for _ in range(30):
        loss = torch.nn.functional.cross_entropy(net(x), y)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.3 * first


def test_a_d4_tower_trains_saves_and_loads_and_turns_change_nothing(synth_h5, tmp_path):
    """``model: {tower: d4}`` through the package's own trainer: the run's saved model embeds a
    galaxy and its quarter turns and mirror images alike."""
    import numpy as np

    from galaxalign.data import load_survey
    from galaxalign.model import load_model
    from galaxalign.train import TrainCfg, train

    cfg = TrainCfg.from_dict(dict(stage1_epochs=1, stage2_epochs=1, batch_size=8, warmup_steps=2,
                                  symbol_variants=3, model={"arch": "galaxalign-tiny-rn", "norm": "group",
                                                            "tower": "d4", "tower_width": 2}))
    res = train(cfg, synth_h5, tmp_path / "run")
    assert 0.0 <= res["metrics"]["accuracy"] <= 1.0
    model = load_model(tmp_path / "run").eval()
    assert model.cfg.tower == "d4" and type(model.clip.visual).__name__ == "D4Tower"
    x = model.preprocess(load_survey(synth_h5).images(np.arange(4)))
    with torch.no_grad():
        z = model.encode_image(x)
        for g in (1, 4, 7):
            assert torch.allclose(model.encode_image(transform(x, g)), z, atol=1e-4)


def test_a_tower_with_turned_copies_saves_and_loads_as_it_was_built(tmp_path):
    """``tower_turns`` is part of the model's description: the file alone rebuilds the same tower, which
    embeds a galaxy as the saved one did (and not as the same weights without the copies would)."""
    from galaxalign.model import ModelCfg, create_model, load_model, save_model

    torch.manual_seed(0)
    model = create_model(ModelCfg("galaxalign-tiny-rn", norm="group", tower="d4", tower_width=2, tower_turns=2)).eval()
    x = torch.rand(2, 3, model.image_size, model.image_size)
    back = load_model(save_model(model, tmp_path / "run")).eval()
    assert back.cfg.tower_turns == 2 and back.clip.visual.turns == 2
    with torch.no_grad():
        z = model.encode_image(x)
        assert torch.allclose(back.encode_image(x), z, atol=1e-5)
        back.clip.visual.turns = 1
        assert not torch.allclose(back.encode_image(x), z, atol=1e-3)


@pytest.mark.parametrize("bad, message", [
    ({"tower": "c8"}, "model tower 'c8' must be 'default' or 'd4'"),
    ({"tower": "d4", "tower_width": 0}, "tower_width 0 must be a whole number from 1 to 64"),
    ({"tower": "d4", "tower_width": 2.5}, "tower_width 2.5 must be a whole number"),
    ({"tower": "d4", "tower_turns": 0}, "tower_turns 0 must be a whole number from 1 to 8"),
    ({"tower_turns": 2}, "tower_turns 2 needs tower 'd4'"),
])
def test_bad_tower_options_are_refused_by_name(bad, message):
    from galaxalign.model import ModelCfg, ModelError

    with pytest.raises(ModelError, match=message):
        ModelCfg.from_dict({"arch": "galaxalign-tiny-rn", **bad})


def test_a_d4_tower_refuses_weights_made_for_another_tower_and_odd_sizes(tmp_path):
    from galaxalign.model import ModelCfg, ModelError, create_model

    with pytest.raises(ModelError, match="image size 36 must be a multiple of 8 for tower 'd4'"):
        create_model(ModelCfg("galaxalign-tiny-rn", image_size=36, tower="d4"))
    ck = tmp_path / "tower.pt"
    ck.write_bytes(b"x")
    with pytest.raises(ModelError, match="tower 'd4' is trained from scratch"):
        create_model(ModelCfg("galaxalign-tiny-rn", pretrained=str(ck), tower="d4"))
