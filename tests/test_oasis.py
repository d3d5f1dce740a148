import torch
import torch.nn.functional as F

from ganzoo.losses.segmentation_gan import class_balance_weights, labelmix
from ganzoo.registry import LOSSES


def one_hot(ids, n):
    return F.one_hot(ids, n).permute(0, 3, 1, 2).float()


def test_class_balance_weights_by_hand():
    # 4 pixels: class 0 x3, class 1 x1 -> weights 4/(2*3), 4/(2*1)
    label = one_hot(torch.tensor([[[0, 0], [0, 1]]]), 3)
    w = class_balance_weights(label)
    torch.testing.assert_close(w, torch.tensor([[[2 / 3, 2 / 3], [2 / 3, 2.0]]]))
    w = class_balance_weights(label, dontcare=1)  # only class 0 counts: 4 / (1*3)
    torch.testing.assert_close(w, torch.tensor([[[4 / 3, 4 / 3], [4 / 3, 0.0]]]))


def test_n_plus_one_targets_and_labelmix():
    loss = LOSSES.build({"type": "segmentation_gan", "balance": False})
    label = one_hot(torch.tensor([[[0, 1], [1, 1]]]), 2)
    pred = torch.zeros(1, 3, 2, 2)
    pred[:, 2] = 5.0  # D says "fake" everywhere
    fake_term = -torch.log_softmax(torch.tensor([0.0, 0.0, 5.0]), 0)[2]
    real_term = -torch.log_softmax(torch.tensor([0.0, 0.0, 5.0]), 0)[0]
    torch.testing.assert_close(loss.d_loss(pred, pred, label), real_term + fake_term)
    torch.testing.assert_close(loss.g_loss(pred, label), real_term)
    real, fake = torch.ones(1, 3, 2, 2), -torch.ones(1, 3, 2, 2)
    mixed, mask = labelmix(label, fake, real, torch.Generator().manual_seed(0))
    assert set(mask.unique().tolist()) <= {0.0, 1.0}
    ids = label.argmax(1, keepdim=True)
    assert (mask[ids == 1].unique().numel() == 1) and (mask[ids == 0].unique().numel() == 1)
    torch.testing.assert_close(mixed, mask * real + (1 - mask) * fake)


def test_oasis_nets_official_param_counts_and_shapes():
    from ganzoo.registry import DISCRIMINATORS, GENERATORS
    count = lambda m: sum(p.numel() for p in m.parameters())
    # official OASIS at ADE20K 256^2 (semantic_nc 151): G 74,314,691, D 22,258,904 (built from refs)
    assert count(GENERATORS.build({"type": "oasis_generator", "label_nc": 151})) == 74314691
    assert count(DISCRIMINATORS.build({"type": "oasis_unet", "label_nc": 151})) == 22258904
    g = GENERATORS.build({"type": "oasis_generator", "label_nc": 4, "ngf": 2, "z_dim": 3, "num_blocks": 3,
                          "crop_size": 16, "norm": {"type": "spade", "param_free": "batch", "hidden": 8}})
    seg = one_hot(torch.randint(0, 4, (2, 16, 16)), 4)
    z = torch.randn(2, 3)
    out = g(seg, z)
    assert out.shape == (2, 3, 16, 16) and out.abs().max() <= 1
    assert not torch.allclose(out, g(seg, torch.randn(2, 3)))  # the 3D noise changes the image
    d = DISCRIMINATORS.build({"type": "oasis_unet", "label_nc": 4, "num_blocks": 3, "width_scale": 0.0625})
    assert d(out).shape == (2, 5, 16, 16)
