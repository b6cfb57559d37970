"""Quantization against PyTorch: observer qparams, fake-quantize (per tensor and per channel), the
int8 weights of torch's dynamic quantization, and the quantized model's outputs."""

from __future__ import annotations

import warnings

import pytest
import torch

from _tolerance import assert_close_f32
from dlterms.methods.quantization import (
    MinMaxObserver,
    PerChannelMinMaxObserver,
    QuantizedLinear,
    calculate_qparams,
    fake_quantize,
    model_size_bytes,
    qrange,
    quantize,
    quantize_dynamic,
)


def _torch_observer(cls, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cls(**kw)


@pytest.mark.parametrize(
    "dtype,scheme,signed,symmetric",
    [
        (torch.quint8, torch.per_tensor_affine, False, False),
        (torch.qint8, torch.per_tensor_symmetric, True, True),
        (torch.qint8, torch.per_tensor_affine, True, False),
        (torch.quint8, torch.per_tensor_symmetric, False, True),
    ],
)
def test_minmax_observer_matches_torch(dtype, scheme, signed, symmetric):
    from torch.ao.quantization.observer import MinMaxObserver as TorchMinMax

    torch.manual_seed(0)
    ref = _torch_observer(TorchMinMax, dtype=dtype, qscheme=scheme)
    ours = MinMaxObserver(8, signed=signed, symmetric=symmetric)
    for _ in range(3):
        x = torch.randn(50) * 3 + 0.7
        ref(x)
        ours(x)
    s_ref, z_ref = ref.calculate_qparams()
    s, z = ours.calculate_qparams()
    assert_close_f32(s, s_ref.reshape(()), n=2)  # (max - min) / (q_max - q_min)
    assert int(z) == int(z_ref)


def test_per_channel_observer_and_fake_quant_match_torch():
    from torch.ao.quantization.observer import PerChannelMinMaxObserver as TorchPC

    torch.manual_seed(1)
    w = torch.randn(6, 10) * torch.linspace(0.1, 3, 6)[:, None]
    ref = _torch_observer(TorchPC, dtype=torch.qint8, qscheme=torch.per_channel_symmetric, ch_axis=0)
    ref(w)
    ours = PerChannelMinMaxObserver(8, signed=True, symmetric=True, axis=0)
    ours(w)
    s_ref, z_ref = ref.calculate_qparams()
    s, z = ours.calculate_qparams()
    assert_close_f32(s, s_ref, n=2)
    assert torch.equal(z, z_ref.to(torch.int64))
    fq_ref = torch.fake_quantize_per_channel_affine(w, s_ref, z_ref.int(), 0, -128, 127)
    assert_close_f32(fake_quantize(w, s, z, -128, 127, axis=0), fq_ref, n=2)  # round(w / s) + z, then back


def test_fake_quant_per_tensor_matches_torch_and_error_is_bounded():
    torch.manual_seed(2)
    x = torch.randn(1000)
    s, z = calculate_qparams(x.min(), x.max(), 0, 255)
    ref = torch.fake_quantize_per_tensor_affine(x, float(s), int(z), 0, 255)
    ours = fake_quantize(x, s, z, 0, 255)
    assert_close_f32(ours, ref, n=2)
    assert (ours - x).abs().max() <= s / 2 + 1e-6  # rounding error at most half a step inside the range


def test_int8_weights_equal_torch_quantize_dynamic():
    from torch.ao.quantization import quantize_dynamic as torch_qd

    torch.manual_seed(3)
    lin = torch.nn.Linear(20, 7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = torch_qd(torch.nn.Sequential(lin), {torch.nn.Linear}, dtype=torch.qint8)[0]
        w_ref = ref.weight()
        q_ref, s_ref = w_ref.int_repr(), w_ref.q_scale()
    ours = QuantizedLinear.from_float(lin, bits=8, per_channel=False)
    assert torch.equal(ours.q_weight, q_ref)
    assert float(ours.w_scale) == pytest.approx(s_ref, rel=1e-6)
    x = torch.randn(16, 20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        y_ref = ref(x)
    y = ours(x)
    # torch's x86 kernel quantizes activations to 7 bits (reduce_range), ours to 8: close, not equal
    assert (y - y_ref).abs().max() < 0.05
    assert (y - lin(x)).abs().max() < 0.05


def test_quantized_model_is_close_smaller_and_original_untouched():
    torch.manual_seed(4)
    model = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
    q = quantize_dynamic(model, bits=8, per_channel=True)
    assert isinstance(model[0], torch.nn.Linear) and isinstance(q[0], QuantizedLinear)
    x = torch.rand(32, 64)
    assert (q(x) - model(x)).abs().max() < 0.02
    ratio = model_size_bytes(model) / model_size_bytes(q)
    assert 3.5 < ratio < 4.0
    torch.testing.assert_close(
        q[0].dequantized_weight(), model[0].weight.detach(), atol=float(q[0].w_scale.max()) / 2 + 1e-7, rtol=0
    )


def test_quantize_hand_worked():
    # s = 0.5, z = 10, range [0, 255]: 1.26 -> round(2.52) + 10 = 13; -100 clamps to 0
    assert quantize(torch.tensor([1.26, -100.0]), 0.5, 10, 0, 255).tolist() == [13, 0]
    assert qrange(4, True) == (-8, 7) and qrange(4, False) == (0, 15)


def test_errors():
    with pytest.raises(ValueError, match="bits"):
        qrange(1, True)
    with pytest.raises(ValueError, match="min_val"):
        calculate_qparams(torch.tensor(1.0), torch.tensor(0.0), 0, 255)
    with pytest.raises(ValueError, match="seen no data"):
        MinMaxObserver().calculate_qparams()
