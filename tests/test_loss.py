import math

import pytest
import torch

from galaxalign.loss import STAGE1_PAIRS, STAGE2_PAIRS, GalaxAlignLoss, clip_pair_loss, focal_loss


def test_clip_loss_by_hand():
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    b = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    s = torch.tensor(2.0)
    # each row: logits [2, 0] → CE = log(1 + e^-2), same both ways
    assert clip_pair_loss(a, b, s).item() == pytest.approx(math.log(1 + math.exp(-2)), rel=1e-6)
    # swapped targets: CE = log(1 + e^2)
    assert clip_pair_loss(a, b.flip(0), s).item() == pytest.approx(math.log(1 + math.exp(2)), rel=1e-6)


def test_paper_targets_penalise_same_class_pairs_class_aware_do_not():
    # two galaxies of one class share the same caption embedding: the paper's target still asks
    # row 0 to prefer column 0 over the identical column 1 → loss ≥ log 2; class-aware gives ~0
    a = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    t = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    s = torch.tensor(50.0)
    labels = torch.tensor([3, 3])
    assert clip_pair_loss(a, t, s).item() == pytest.approx(math.log(2), rel=1e-5)
    assert clip_pair_loss(a, t, s, labels, class_aware=True).item() == pytest.approx(math.log(2), rel=1e-5)
    # two same-class galaxies matched to each other's caption: the paper's target calls that wrong,
    # class-aware targets do not care which same-class caption a galaxy lands on
    a3 = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]])
    t_swapped = a3[[1, 0, 2]]
    l3 = torch.tensor([0, 0, 1])
    paper = clip_pair_loss(a3, t_swapped, s).item()
    aware = clip_pair_loss(a3, t_swapped, s, l3, class_aware=True).item()
    assert paper > aware + 1.0
    assert aware == pytest.approx(clip_pair_loss(a3, a3, s, l3, class_aware=True).item(), rel=1e-5)
    with pytest.raises(ValueError, match="labels"):
        clip_pair_loss(a3, a3, s, None, class_aware=True)


def test_stage_losses_are_named_sums_of_their_pairs():
    torch.manual_seed(0)
    z = {k: torch.randn(6, 4) for k in ("img", "sym", "txt")}
    s = torch.tensor(10.0)
    t1 = GalaxAlignLoss(STAGE1_PAIRS)(z, s)
    assert set(t1) == {"img_txt", "sym_txt", "loss"}
    assert t1["loss"].item() == pytest.approx(t1["img_txt"].item() + t1["sym_txt"].item())
    t2 = GalaxAlignLoss(STAGE2_PAIRS)(z, s)
    assert set(t2) == {"img_txt", "img_sym", "sym_txt", "loss"}
    assert t2["img_sym"].item() == pytest.approx(clip_pair_loss(z["img"], z["sym"], s).item())
    with pytest.raises(ValueError):
        GalaxAlignLoss(("img_txt", "img_img"))


def test_focal_loss_reduces_to_cross_entropy_at_gamma_zero():
    logits = torch.randn(5, 3)
    y = torch.tensor([0, 1, 2, 1, 0])
    assert focal_loss(logits, y, gamma=0).item() == pytest.approx(torch.nn.functional.cross_entropy(logits, y).item())
    assert focal_loss(logits, y, gamma=2).item() < focal_loss(logits, y, gamma=0).item()
