"""Augmentations: shifts against torch.roll, rotation against torch's affine_grid/grid_sample and rot90,
crops as shifts, seeded reproducibility, errors."""

import pytest
import torch
import torch.nn.functional as F

from _tolerance import assert_close_f32
from dlterms.data.augment import (
    Compose,
    GaussianNoise,
    RandomCrop,
    RandomRotation,
    RandomShift,
    RandomSignalShift,
    rotate_images,
    shift_images,
    shift_signals,
)


def _imgs(b=4, c=2, h=8, w=8, seed=0):
    return torch.randn(b, c, h, w, generator=torch.Generator().manual_seed(seed))


def _roll_zero(x, dy, dx):
    out = torch.roll(x, (dy, dx), dims=(-2, -1))
    H, W = x.shape[-2:]
    if dy > 0:
        out[..., :dy, :] = 0
    if dy < 0:
        out[..., H + dy :, :] = 0
    if dx > 0:
        out[..., :, :dx] = 0
    if dx < 0:
        out[..., :, W + dx :] = 0
    return out


def test_shift_images_matches_roll_with_zero_fill():
    x = _imgs()
    dy, dx = torch.tensor([1, -1, 0, 2]), torch.tensor([0, 1, -2, -1])
    out = shift_images(x, dy, dx)
    for b in range(4):
        torch.testing.assert_close(out[b], _roll_zero(x[b], int(dy[b]), int(dx[b])), rtol=0, atol=0)


@pytest.mark.parametrize("deg", [-20.0, 7.5, 45.0])
def test_rotation_matches_torch_grid_sample(deg):
    x = _imgs(b=1, h=9, w=9).double()
    t = torch.tensor(deg, dtype=torch.float64) * torch.pi / 180
    theta = torch.tensor([[[torch.cos(t), -torch.sin(t), 0.0], [torch.sin(t), torch.cos(t), 0.0]]], dtype=torch.float64)
    grid = F.affine_grid(theta, list(x.shape), align_corners=True)
    ref = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    torch.testing.assert_close(rotate_images(x, torch.tensor([deg])), ref, rtol=1e-10, atol=1e-10)


def test_rotation_by_90_is_rot90_counter_clockwise_and_0_is_identity():
    x = _imgs(b=2, h=7, w=7)
    # cos(90 degrees) in float32 is -4e-8, not 0: the sampling grid is off by ~1e-7 px; the affine map, the
    # grid's normalisation and the bilinear weights take 16 roundings
    assert_close_f32(rotate_images(x, torch.tensor([90.0, 90.0])), torch.rot90(x, 1, dims=(2, 3)), n=16)
    assert_close_f32(rotate_images(x, torch.zeros(2)), x, n=4)  # grid normalised and back, bilinear weights


def test_crop_with_padding_is_a_shift_and_without_is_identity():
    x = _imgs()
    torch.testing.assert_close(RandomCrop(8, 0)(x, torch.Generator().manual_seed(0)), x, rtol=0, atol=0)
    out = RandomCrop(8, padding=1)(x, torch.Generator().manual_seed(5))
    for b in range(4):  # each output is one of the 9 shifts of its input
        assert any(torch.equal(out[b], _roll_zero(x[b], dy, dx)) for dy in (-1, 0, 1) for dx in (-1, 0, 1))
    assert RandomCrop((5, 6), padding=0)(x).shape == (4, 2, 5, 6)


def test_signal_shift_matches_roll():
    x = torch.arange(2 * 10, dtype=torch.float32).view(2, 10)
    s = torch.tensor([3, -2])
    circ = shift_signals(x, s, circular=True)
    torch.testing.assert_close(circ[0], torch.roll(x[0], 3))
    torch.testing.assert_close(circ[1], torch.roll(x[1], -2))
    zero = shift_signals(x.unsqueeze(1), s)  # (B, 1, L)
    assert zero[0, 0, :3].eq(0).all() and torch.equal(zero[0, 0, 3:], x[0, :7])
    assert zero[1, 0, -2:].eq(0).all() and torch.equal(zero[1, 0, :-2], x[1, 2:])


def test_seeded_and_composable():
    x = _imgs(b=16)
    aug = Compose([RandomShift(1), RandomRotation(10), GaussianNoise(0.1)])
    a = aug(x, torch.Generator().manual_seed(7))
    b = aug(x, torch.Generator().manual_seed(7))
    c = aug(x, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)
    shifts = RandomShift(1)(x, torch.Generator().manual_seed(0))
    assert not torch.equal(shifts, x)
    noise = GaussianNoise(0.5)(torch.zeros(20000), torch.Generator().manual_seed(0))
    assert abs(noise.std().item() - 0.5) < 0.01
    sig = RandomSignalShift(2)(torch.randn(8, 1, 40), torch.Generator().manual_seed(0))
    assert sig.shape == (8, 1, 40)


def test_errors():
    with pytest.raises(ValueError, match="max_shift must be a non-negative integer"):
        RandomShift(0.5)
    with pytest.raises(ValueError, match="expects images"):
        RandomShift(1)(torch.zeros(3, 8, 8))
    with pytest.raises(ValueError, match="degrees must be >= 0"):
        RandomRotation(-1)
    with pytest.raises(ValueError, match="larger than the padded image"):
        RandomCrop(10)(torch.zeros(1, 1, 8, 8))
    with pytest.raises(ValueError, match="std must be >= 0"):
        GaussianNoise(-0.1)
    with pytest.raises(ValueError, match="signals"):
        shift_signals(torch.zeros(1, 1, 1, 4), torch.zeros(1, dtype=torch.long))
    with pytest.raises(ValueError, match="callable"):
        Compose([1])


def test_data_augmentation_config_rejects_bad_values():
    from dlterms.experiments.generalization.data_augmentation import Config

    with pytest.raises(ValueError, match="train_fraction"):
        Config(train_fraction=1.0)
    with pytest.raises(ValueError, match="shift"):
        Config(shift=0)
    with pytest.raises(ValueError, match="splits must be >= 1"):
        Config(splits=0)
    with pytest.raises(ValueError, match="aug_lr must be > 0"):
        Config(aug_lr=0)


def _digit_like(m, n, seed):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 10, (m, n), generator=g)
    x = torch.rand(m, n, 1, 8, 8, generator=g, dtype=torch.get_default_dtype()) * 0.3
    x[..., 2:6, 2:6] += (y[..., None, None, None] / 10.0).to(x.dtype)  # a learnable signal
    return x, y


@pytest.mark.parametrize("kind", ["cnn", "mlp"])
def test_train_arm_on_several_splits_equals_fit_on_each(float64, kind):
    """The experiment's arm trainer: M models on M splits at once = each trained alone by `fit` (same
    initialisation, Adam, batch order); with one split and an augmentation, = `fit` with the same
    augmentation stream."""
    from dlterms.experiments.generalization.data_augmentation import Config, _cnn, _mlp, stack_accuracy, train_arm
    from dlterms.losses import cross_entropy
    from dlterms.optim import Adam
    from dlterms.training import fit

    make = _cnn if kind == "cnn" else (lambda: _mlp(16))
    cfg = Config(epochs=3, batch_size=8)
    x, y = _digit_like(3, 20, seed=1)
    seeds = [11, 12, 13]

    def alone(k, augment=None):
        torch.manual_seed(seeds[k])
        model = make()
        gen = torch.Generator().manual_seed(seeds[0] + 1)
        fit(
            model,
            (x[k], y[k]),
            loss_fn=cross_entropy,
            optimizer=Adam(model.parameters(), lr=5e-3),
            epochs=cfg.epochs,
            batch_size=cfg.batch_size,
            seed=seeds[0],  # every model of a stack sees one batch order, from seeds[0]
            forward=(lambda m, xb: m(augment(xb, gen)) if m.training else m(xb)) if augment else None,
        )
        return model.eval()

    stack = train_arm(make, x, y, None, 5e-3, seeds, cfg)
    models = stack.write_back() if kind == "cnn" else [stack.model(k) for k in range(3)]
    for k, m in enumerate(models):
        ref = alone(k)
        for (name, a), b in zip(ref.state_dict().items(), m.state_dict().values()):
            # float64, 9 Adam steps: only the summation order differs
            torch.testing.assert_close(b, a, rtol=1e-9, atol=1e-10, msg=f"model {k}, {name}")
    acc = stack_accuracy(stack, x, y)
    assert acc.shape == (3,) and bool(((acc >= 0) & (acc <= 1)).all())

    shift = RandomShift(1)
    one = train_arm(make, x[:1], y[:1], shift, 5e-3, seeds[:1], cfg)
    got = one.write_back()[0] if kind == "cnn" else one.model(0)
    ref = alone(0, shift)
    for (name, a), b in zip(ref.state_dict().items(), got.state_dict().values()):
        torch.testing.assert_close(b, a, rtol=1e-9, atol=1e-10, msg=f"shifted, {name}")
