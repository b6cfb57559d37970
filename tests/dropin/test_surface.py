"""dlterms.nn and dlterms.optim as drop-ins for torch.nn and torch.optim: torch's defaults and signatures,
both sequence layouts, the torch.nn names a model file uses, torch.save/torch.load(weights_only=True),
the optimisers' implementation switches and clip_grad_norm_'s norm types. Each against torch."""

from __future__ import annotations

import inspect
import io
import math

import pytest
import torch
import torch.nn.functional as TF

import dlterms.nn as nn
import dlterms.optim as optim

DT = torch.float64
TIGHT = dict(rtol=1e-10, atol=1e-12)


def _same_weights(ref: torch.nn.Module, ours: torch.nn.Module) -> torch.nn.Module:
    ours.load_state_dict(ref.state_dict())
    return ours


# --------------------------------------------------------------------------- defaults and signatures

LAYOUT_CLASSES = ["LSTM", "GRU", "RNN", "MultiheadAttention", "TransformerEncoderLayer", "TransformerDecoderLayer"]


@pytest.mark.parametrize("name", LAYOUT_CLASSES + ["Transformer"])
def test_batch_first_defaults_to_false_as_in_torch(name):
    args = {"MultiheadAttention": (8, 2), "Transformer": (8, 2, 1, 1, 16)}.get(name, (8, 2))
    ours = getattr(nn, name)(*args)
    ref = getattr(torch.nn, name)(*args)
    mha = getattr(ours, "self_attn", None) or getattr(getattr(ours, "encoder", None), "layers", [None])[0]
    assert ours.batch_first is False
    if hasattr(ref, "batch_first"):
        assert ref.batch_first is False
    if mha is not None:
        assert (mha.self_attn if hasattr(mha, "self_attn") else mha).batch_first is False


@pytest.mark.parametrize(
    "name", ["MultiheadAttention", "TransformerEncoderLayer", "TransformerDecoderLayer", "Transformer"]
)
@pytest.mark.parametrize("method", ["__init__", "forward"])
def test_signatures_start_with_torchs_in_torchs_order(name, method):
    # so that positional calls written for torch mean the same here; ours may add keywords at the end
    ref = list(inspect.signature(getattr(getattr(torch.nn, name), method)).parameters.items())
    ours = list(inspect.signature(getattr(getattr(nn, name), method)).parameters.items())
    assert [n for n, _ in ours[: len(ref)]] == [n for n, _ in ref]
    for (n, a), (_, b) in zip(ours, ref):
        if b.default is not inspect.Parameter.empty and not callable(b.default):
            assert a.default == b.default, n


SAME_SIGNATURE = [
    "Linear",
    "Embedding",
    "Dropout",
    "LSTMCell",
    "GRUCell",
    "RNNCell",
    "ReLU",
    "LeakyReLU",
    "GELU",
    "Softmax",
    "LogSoftmax",
    "Conv1d",
    "Conv2d",
    "TransformerEncoder",
    "TransformerDecoder",
]


@pytest.mark.parametrize("name", SAME_SIGNATURE)
def test_layer_signature_is_torchs(name):
    ref = inspect.signature(getattr(torch.nn, name)).parameters
    ours = inspect.signature(getattr(nn, name)).parameters
    assert list(ours)[: len(ref)] == list(ref)
    for n, b in ref.items():
        if b.default is not inspect.Parameter.empty:
            assert ours[n].default == b.default, n


def test_embedding_refuses_options_it_does_not_implement_and_freezes():
    with pytest.raises(ValueError, match="max_norm"):
        nn.Embedding(10, 4, None, 1.0)  # torch's fourth positional argument
    with pytest.raises(ValueError, match="scale_grad_by_freq"):
        nn.Embedding(10, 4, scale_grad_by_freq=True)
    assert not nn.Embedding(10, 4, _freeze=True).weight.requires_grad
    assert not nn.Embedding(10, 4, _weight=torch.zeros(10, 4), _freeze=True).weight.requires_grad


@pytest.mark.parametrize("cls,kw", [("ReLU", {}), ("LeakyReLU", {"negative_slope": 0.2})])
def test_inplace_activations_write_into_their_input_as_torchs(cls, kw):
    x = torch.randn(4, 5, dtype=DT)
    a, b = x.clone(), x.clone()
    out = getattr(nn, cls)(inplace=True, **kw)(a)
    ref = getattr(torch.nn, cls)(inplace=True, **kw)(b)
    assert out is a
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    torch.testing.assert_close(out, ref, rtol=0, atol=0)


def test_packed_sequences_are_refused_with_the_alternative():
    x = torch.randn(4, 2, 3)
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, torch.tensor([4, 2]))
    with pytest.raises(ValueError, match="lengths="):
        nn.LSTM(3, 5)(packed)


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
def test_recurrent_signature_is_torchs(kind):
    # torch's take (*args, **kwargs); their documented order is this
    order = ["input_size", "hidden_size", "num_layers", "bias", "batch_first", "dropout", "bidirectional"]
    if kind == "RNN":
        order.insert(3, "nonlinearity")
    params = list(inspect.signature(getattr(nn, kind)).parameters)
    assert params[: len(order)] == order
    assert params[-2:] == ["device", "dtype"]
    with pytest.raises(ValueError, match="proj_size"):
        nn.LSTM(3, 4, proj_size=2)


@pytest.mark.parametrize(
    "build",
    [
        lambda m: m.LSTM(3, 5, 2, bidirectional=True),
        lambda m: m.GRU(3, 5),
        lambda m: m.RNN(3, 5, nonlinearity="relu"),
        lambda m: m.LSTMCell(3, 5),
        lambda m: m.Transformer(8, 2, 2, 1, 16),
        lambda m: m.TransformerEncoderLayer(8, 2, 16),
        lambda m: m.MultiheadAttention(8, 2),
        lambda m: m.Embedding(7, 3),
        lambda m: m.Linear(4, 3),
        lambda m: m.Conv2d(3, 4, 3),
        lambda m: m.TransformerDecoderLayer(8, 2, 16),
    ],
)
@pytest.mark.parametrize("dtype", [None, DT])
def test_same_seed_same_initial_weights_as_torch(build, dtype):
    torch.manual_seed(0)
    ref = build(torch.nn).to(dtype or torch.float32) if dtype is None else _build_dtype(build, torch.nn, dtype)
    torch.manual_seed(0)
    ours = build(nn) if dtype is None else _build_dtype(build, nn, dtype)
    assert list(ref.state_dict()) == list(ours.state_dict())
    for k, v in ref.state_dict().items():
        if dtype is None:
            assert torch.equal(v, ours.state_dict()[k]), k
        else:  # the same draws; a bound written 1/sqrt(n) instead of torch's gain * sqrt(3/n) moves the last bit
            torch.testing.assert_close(ours.state_dict()[k], v, rtol=1e-14, atol=0, msg=k)


def _build_dtype(build, ns, dtype):
    """build(ns) with `dtype` as torch's default dtype."""
    prev = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        return build(ns)
    finally:
        torch.set_default_dtype(prev)


def test_dtype_argument_builds_in_that_dtype():
    torch.manual_seed(0)
    ref = torch.nn.TransformerEncoderLayer(8, 2, 16, dtype=DT)
    torch.manual_seed(0)
    ours = nn.TransformerEncoderLayer(8, 2, 16, dtype=DT)
    for k, v in ref.state_dict().items():
        assert v.dtype == DT and torch.equal(v, ours.state_dict()[k]), k
    torch.manual_seed(0)
    ref = torch.nn.LSTM(3, 4, dtype=DT)
    torch.manual_seed(0)
    ours = nn.LSTM(3, 4, dtype=DT)
    for k, v in ref.state_dict().items():
        assert torch.equal(v, ours.state_dict()[k]), k


# --------------------------------------------------------------------------- both layouts


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("T,B", [(5, 3), (4, 4), (1, 2)])  # T == B: a wrong layout would run silently
def test_recurrent_layouts_equal_torch(kind, batch_first, T, B):
    torch.manual_seed(0)
    ref = getattr(torch.nn, kind)(3, 5, 2, batch_first=batch_first, bidirectional=True).to(DT)
    ours = _same_weights(ref, getattr(nn, kind)(3, 5, 2, batch_first=batch_first, bidirectional=True).to(DT))
    g = torch.Generator().manual_seed(1)
    x = torch.randn((B, T, 3) if batch_first else (T, B, 3), generator=g, dtype=DT)
    h0 = torch.randn(4, B, 5, generator=g, dtype=DT)
    hx = (h0, torch.randn(4, B, 5, generator=g, dtype=DT)) if kind == "LSTM" else h0
    (yo, ho), (yr, hr) = ours(x, hx), ref(x, hx)
    torch.testing.assert_close(yo, yr, **TIGHT)
    for a, b in zip(ho if kind == "LSTM" else (ho,), hr if kind == "LSTM" else (hr,)):
        torch.testing.assert_close(a, b, **TIGHT)
    # unbatched (T, I), as torch
    (yo, _), (yr, _) = ours(x[:, 0] if not batch_first else x[0]), ref(x[:, 0] if not batch_first else x[0])
    torch.testing.assert_close(yo, yr, **TIGHT)


def test_wrong_state_for_time_major_input_raises():
    m = nn.LSTM(3, 4)  # time-major by default: (T=10, B=20, I)
    with pytest.raises(ValueError, match=r"initial state must have shape \(1, 20, 4\)"):
        m(torch.randn(10, 20, 3), (torch.zeros(1, 10, 4), torch.zeros(1, 10, 4)))


def _mha_pair(batch_first):
    torch.manual_seed(0)
    ref = torch.nn.MultiheadAttention(8, 2, batch_first=batch_first).to(DT).eval()
    return _same_weights(ref, nn.MultiheadAttention(8, 2, batch_first=batch_first).to(DT).eval()), ref


@pytest.mark.parametrize("batch_first", [False, True])
def test_multihead_attention_layouts_and_unbatched_equal_torch(batch_first):
    ours, ref = _mha_pair(batch_first)
    g = torch.Generator().manual_seed(2)
    B, Tq, Tk = 3, 4, 6
    q = torch.randn((B, Tq, 8) if batch_first else (Tq, B, 8), generator=g, dtype=DT)
    kv = torch.randn((B, Tk, 8) if batch_first else (Tk, B, 8), generator=g, dtype=DT)
    kpm = torch.zeros(B, Tk, dtype=torch.bool)
    kpm[1, -2:] = True
    am = torch.zeros(Tq, Tk, dtype=torch.bool)
    am[0, 3:] = True
    for kw in ({}, {"key_padding_mask": kpm, "attn_mask": am, "average_attn_weights": False}):
        (yo, wo), (yr, wr) = ours(q, kv, kv, **kw), ref(q, kv, kv, **kw)
        torch.testing.assert_close(yo, yr, **TIGHT)
        torch.testing.assert_close(wo, wr, **TIGHT)
    # one unbatched sequence (T, E)
    q1, kv1 = torch.randn(Tq, 8, generator=g, dtype=DT), torch.randn(Tk, 8, generator=g, dtype=DT)
    (yo, wo), (yr, wr) = ours(q1, kv1, kv1, key_padding_mask=kpm[1]), ref(q1, kv1, kv1, key_padding_mask=kpm[1])
    torch.testing.assert_close(yo, yr, **TIGHT)
    torch.testing.assert_close(wo, wr, **TIGHT)


def test_multihead_attention_refuses_what_it_does_not_implement():
    for kw, name in (({"add_bias_kv": True}, "add_bias_kv"), ({"add_zero_attn": True}, "add_zero_attn")):
        with pytest.raises(ValueError, match=name):
            nn.MultiheadAttention(8, 2, **kw)
    with pytest.raises(ValueError, match="kdim"):
        nn.MultiheadAttention(8, 2, kdim=4)
    nn.MultiheadAttention(8, 2, kdim=8, vdim=8)  # the same width is fine
    with pytest.raises(ValueError, match="all be 3-D"):
        nn.MultiheadAttention(8, 2)(torch.randn(3, 2, 8), torch.randn(3, 8), torch.randn(3, 8))


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("norm_first", [False, True])
def test_transformer_layouts_equal_torch(batch_first, norm_first):
    kw = dict(dim_feedforward=24, dropout=0.0, batch_first=batch_first, norm_first=norm_first)
    torch.manual_seed(0)
    ref = torch.nn.Transformer(8, 2, 2, 2, **kw).to(DT).eval()
    ours = _same_weights(ref, nn.Transformer(8, 2, 2, 2, **kw).to(DT).eval())
    g = torch.Generator().manual_seed(3)
    B, S, T = 3, 5, 4
    src = torch.randn((B, S, 8) if batch_first else (S, B, 8), generator=g, dtype=DT)
    tgt = torch.randn((B, T, 8) if batch_first else (T, B, 8), generator=g, dtype=DT)
    spm = torch.zeros(B, S, dtype=torch.bool)
    spm[2, -2:] = True
    mask = torch.nn.Transformer.generate_square_subsequent_mask(T, dtype=DT)
    torch.testing.assert_close(nn.Transformer.generate_square_subsequent_mask(T, dtype=DT), mask, rtol=0, atol=0)
    with torch.no_grad():
        for extra in ({}, {"tgt_mask": mask, "src_key_padding_mask": spm, "memory_key_padding_mask": spm}):
            torch.testing.assert_close(ours(src, tgt, **extra), ref(src, tgt, **extra), **TIGHT)
        # the encoder stack alone, and an unbatched sequence
        ref_e = torch.nn.TransformerEncoder(ref.encoder.layers[0], 2, enable_nested_tensor=False)
        ours_e = _same_weights(ref_e, nn.TransformerEncoder(ours.encoder.layers[0], 2))
        x = torch.randn((B, S, 8) if batch_first else (S, B, 8), generator=g, dtype=DT)
        smask = torch.nn.Transformer.generate_square_subsequent_mask(S, dtype=DT)
        torch.testing.assert_close(ours_e(x, mask=smask), ref_e(x, mask=smask), **TIGHT)
        x1 = torch.randn(S, 8, generator=g, dtype=DT)
        torch.testing.assert_close(ours_e(x1), ref_e(x1), **TIGHT)


def test_decoder_is_causal_only_when_asked_as_in_torch():
    torch.manual_seed(0)
    ref = torch.nn.Transformer(8, 2, 1, 1, 16, dropout=0.0).to(DT).eval()
    ours = _same_weights(ref, nn.Transformer(8, 2, 1, 1, 16, dropout=0.0).to(DT).eval())
    src, tgt = torch.randn(5, 2, 8, dtype=DT), torch.randn(4, 2, 8, dtype=DT)
    with torch.no_grad():
        torch.testing.assert_close(ours(src, tgt), ref(src, tgt), **TIGHT)  # no mask: not causal in either
        mask = ref.generate_square_subsequent_mask(4, dtype=DT)
        torch.testing.assert_close(ours(src, tgt, tgt_is_causal=True), ref(src, tgt, tgt_mask=mask), **TIGHT)
    with pytest.raises(ValueError, match="batch size"):
        ours(src, torch.randn(4, 3, 8, dtype=DT))


# --------------------------------------------------------------------------- the torch.nn names


def test_infrastructure_is_torchs_own():
    for name in ("Module", "Parameter", "Sequential", "ModuleList", "ModuleDict", "ParameterList", "Flatten"):
        assert getattr(nn, name) is getattr(torch.nn, name), name
    assert isinstance(nn.Identity(54, unused=0.1), torch.nn.Module)  # torch's ignored arguments
    x = torch.randn(2, 3)
    assert nn.Identity()(x) is x
    assert nn.NLLLoss is not None and nn.CrossEntropyLoss()(x, torch.tensor([0, 2])).shape == ()
    with pytest.raises(AttributeError, match="no attribute 'Conv3d'"):
        nn.Conv3d  # noqa: B018


def test_flatten_parameters_is_a_no_op():
    m = nn.LSTM(3, 4)
    x = torch.randn(5, 2, 3)
    before = m(x)[0]
    assert m.flatten_parameters() is None
    torch.testing.assert_close(m(x)[0], before, rtol=0, atol=0)


def _functional_cases():
    g = torch.Generator().manual_seed(4)
    x = torch.randn(3, 4, 5, generator=g, dtype=DT)
    y = torch.randint(0, 4, (3, 5), generator=g)
    img = torch.randn(2, 3, 6, 6, generator=g, dtype=DT)
    w2 = torch.randn(4, 3, 3, 3, generator=g, dtype=DT)
    w1 = torch.randn(4, 3, 2, generator=g, dtype=DT)
    sig = torch.randn(2, 3, 9, generator=g, dtype=DT)
    emb = torch.randn(6, 4, generator=g, dtype=DT)
    idx = torch.randint(0, 6, (3, 2), generator=g)
    q, k, v = (torch.randn(2, 3, 5, 4, generator=g, dtype=DT) for _ in range(3))
    return [
        ("relu", (x,), {}),
        ("leaky_relu", (x, 0.2), {}),
        ("gelu", (x,), {"approximate": "tanh"}),
        ("sigmoid", (x,), {}),
        ("tanh", (x,), {}),
        ("softmax", (x,), {"dim": 1}),
        ("log_softmax", (x,), {"dim": -1}),
        ("dropout", (x, 0.3, False), {}),
        ("embedding", (idx, emb), {"padding_idx": -1}),
        ("conv1d", (sig, w1), {"stride": 2, "padding": 1}),
        ("conv2d", (img, w2), {"padding": 1, "dilation": 1}),
        ("max_pool1d", (sig, 3), {"stride": 2}),
        ("max_pool2d", (img, 2), {}),
        ("avg_pool1d", (sig, 3), {"padding": 1}),
        ("avg_pool2d", (img, 3), {"stride": 1}),
        ("batch_norm", (x, None, None), {"training": True}),
        ("layer_norm", (x, [4, 5]), {}),
        ("scaled_dot_product_attention", (q, k, v), {"is_causal": True}),
        ("cross_entropy", (x, y), {"label_smoothing": 0.1}),
        ("nll_loss", (torch.log_softmax(x, 1), y), {"reduction": "sum"}),
        ("mse_loss", (x, x.flip(0)), {}),
        ("l1_loss", (x, x.flip(0)), {"reduction": "none"}),
        ("huber_loss", (x, x.flip(0)), {"delta": 0.5}),
        ("binary_cross_entropy_with_logits", (x, torch.sigmoid(x.flip(0))), {}),
    ]


@pytest.mark.parametrize("name,args,kw", _functional_cases(), ids=[c[0] for c in _functional_cases()])
def test_functional_equals_torch_functional(name, args, kw):
    assert name in nn.functional.__all__
    ours_args, ref_args = _leaf_copies(args), _leaf_copies(args)
    out = getattr(nn.functional, name)(*ours_args, **kw)
    ref = getattr(TF, name)(*ref_args, **kw)
    torch.testing.assert_close(out, ref, **TIGHT)
    w = torch.randn(ref.shape, generator=torch.Generator().manual_seed(5), dtype=DT)
    (out * w).sum().backward()
    (ref * w).sum().backward()
    for a, b in zip(ours_args, ref_args):
        if _is_float(a):
            torch.testing.assert_close(a.grad, b.grad, **TIGHT)


def _is_float(a) -> bool:
    return isinstance(a, torch.Tensor) and a.is_floating_point()


def _leaf_copies(args) -> list:
    return [a.clone().requires_grad_(True) if _is_float(a) else a for a in args]


def test_functional_refuses_options_it_does_not_implement():
    x = torch.randn(2, 3, 8)
    F = nn.functional
    for call, name in (
        (lambda: F.embedding(torch.tensor([1]), torch.randn(3, 2), max_norm=1.0), "max_norm"),
        (lambda: F.max_pool1d(x, 2, ceil_mode=True), "ceil_mode"),
        (lambda: F.softmax(x), "dim"),
        (lambda: nn.Softmax(), "dim"),  # torch would guess the dimension from the rank
        (lambda: F.cross_entropy(x, torch.zeros(2, 8, dtype=torch.long), size_average=True), "size_average"),
        (lambda: F.scaled_dot_product_attention(x, x, x, scale=0.5), "scale"),
    ):
        with pytest.raises(ValueError, match=name):
            call()


# --------------------------------------------------------------------------- torch.save / torch.load


class _Client(torch.nn.Module):
    """A model class of a client's own, built from dlterms.nn layers."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(11, 8)
        self.rnn = nn.LSTM(8, 8, 2)
        self.enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, activation="gelu"), 2)
        self.head = nn.Sequential(nn.LayerNorm(8), nn.Linear(8, 11), nn.Dropout(0.0))

    def forward(self, idx):
        return self.head(self.enc(self.rnn(self.emb(idx))[0]))


def test_torch_save_whole_model_loads_with_weights_only():
    torch.manual_seed(0)
    model = _Client().eval()
    conv = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten()).eval()
    idx = torch.randint(0, 11, (4, 3))
    img = torch.randn(2, 1, 8, 8)
    for m, x, allow in ((model, idx, [_Client]), (conv, img, [])):
        buf = io.BytesIO()
        torch.save(m, buf)
        buf.seek(0)
        assert set(torch.serialization.get_unsafe_globals_in_checkpoint(buf)) <= {
            f"{c.__module__}.{c.__qualname__}" for c in allow
        }  # importing dlterms.nn allowed everything else
        buf.seek(0)
        with torch.serialization.safe_globals(allow):
            loaded = torch.load(buf, weights_only=True)
        assert type(loaded) is type(m)
        with torch.no_grad():
            torch.testing.assert_close(loaded(x), m(x), rtol=0, atol=0)
    assert nn.LSTM in nn.SAFE_GLOBALS and nn.relu in nn.SAFE_GLOBALS and torch.nn.ModuleList in nn.SAFE_GLOBALS


# --------------------------------------------------------------------------- optimisers

OPTIMIZERS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.1, maximize=True)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, amsgrad=True, weight_decay=0.1)),
    ("Adam", dict(lr=0.01, maximize=True, decoupled_weight_decay=True, weight_decay=0.1)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.01, amsgrad=True)),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, momentum=0.9, centered=True, weight_decay=0.01)),
    ("RMSprop", dict(lr=0.01, maximize=True)),
]


def _trajectory(cls, kw, steps=6):
    torch.manual_seed(0)
    p = torch.nn.Parameter(torch.randn(5, 3, dtype=DT))
    opt = cls([p], **kw)
    g = torch.Generator().manual_seed(6)
    for _ in range(steps):
        target = torch.randn(5, 3, generator=g, dtype=DT)
        opt.zero_grad()
        ((p - target) ** 4).sum().backward()
        opt.step()
    return p.detach()


@pytest.mark.parametrize("foreach", [None, False, True])
@pytest.mark.parametrize("name,kw", OPTIMIZERS, ids=[f"{n}{sorted(k)}" for n, k in OPTIMIZERS])
def test_optimizer_accepts_foreach_and_matches_torch(name, kw, foreach):
    extra = {"foreach": foreach, "fused": False} if name != "RMSprop" else {"foreach": foreach}
    ours = _trajectory(getattr(optim, name), {**kw, **extra})
    ref = _trajectory(getattr(torch.optim, name), {**kw, **extra})
    torch.testing.assert_close(ours, ref, **TIGHT)


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW"])
def test_fused_true_is_refused_by_name(name):
    p = [torch.nn.Parameter(torch.zeros(2))]
    with pytest.raises(ValueError, match="fused=True is not supported"):
        getattr(optim, name)(p, fused=True)
    with pytest.raises(ValueError, match="foreach must be None, False or True"):
        getattr(optim, name)(p, foreach="yes")


@pytest.mark.parametrize("name", ["Adam", "AdamW", "RMSprop"])
def test_capturable_true_is_refused_by_name(name):
    with pytest.raises(ValueError, match="capturable=True is not supported"):
        getattr(optim, name)([torch.nn.Parameter(torch.zeros(2))], capturable=True)


def test_unknown_arguments_are_refused_as_by_torch():
    with pytest.raises(TypeError):
        optim.SGD([torch.nn.Parameter(torch.zeros(2))], capturable=True)  # torch's SGD has no capturable either


def _hypergradients(cls, kw, steps):
    """d(loss after `steps` differentiable steps) / d(initial weights, each step's gradient)."""
    torch.manual_seed(0)
    w0 = torch.randn(4, 3, dtype=DT, requires_grad=True)
    grads = [torch.randn(4, 3, dtype=DT, requires_grad=True) for _ in range(steps)]
    p = w0.clone()  # a non-leaf: the step is recorded through it
    opt = cls([p], differentiable=True, **kw)
    for g in grads:
        p.grad = g * (1 + p.detach().abs())  # a gradient that depends on the recorded graph's inputs
        opt.step()
    loss = (p**2).sum()
    return torch.autograd.grad(loss, [w0, *grads], allow_unused=True)  # SGD's first buffer is detached


@pytest.mark.parametrize("name,kw", OPTIMIZERS, ids=[f"{n}{sorted(k)}" for n, k in OPTIMIZERS])
def test_differentiable_step_gives_torchs_hypergradients(name, kw):
    # torch's own amsgrad and centred RMSprop cannot be differentiated through a second step (their
    # `maximum` and `addcmul` read state the next step changes in place); ours behave alike
    steps = 1 if kw.get("amsgrad") or kw.get("centered") else 3
    # torch's differentiable Adam counts steps in a tensor of the default dtype; float64 keeps its bias
    # corrections exact (in float32 they alone differ from ours by ~1e-7)
    ours = _build_dtype(lambda _: _hypergradients(getattr(optim, name), kw, steps), None, DT)
    ref = _build_dtype(lambda _: _hypergradients(getattr(torch.optim, name), kw, steps), None, DT)
    assert any(g is not None and float(g.abs().max()) > 0 for g in ref)
    for a, b in zip(ours, ref):
        if b is None:
            assert a is None
        else:
            torch.testing.assert_close(a, b, **TIGHT)


# --------------------------------------------------------------------------- clip_grad_norm_


@pytest.mark.parametrize("norm_type", [2.0, 1, 3.5, "2", "inf", float("inf"), math.inf])
@pytest.mark.parametrize("foreach", [None, False, True])
def test_clip_grad_norm_norm_types_and_foreach_equal_torch(norm_type, foreach):
    g = torch.Generator().manual_seed(8)
    grads = [torch.randn(s, generator=g, dtype=DT) for s in ((3, 4), (5,), (2, 2, 2))]
    out = []
    for clip in (optim.clip_grad_norm_, torch.nn.utils.clip_grad_norm_):
        ps = [torch.nn.Parameter(torch.zeros_like(x)) for x in grads]
        for p, x in zip(ps, grads):
            p.grad = x.clone()
        total = clip(ps, 0.5, norm_type=norm_type, foreach=foreach)
        out.append((total, [p.grad for p in ps]))
    (t_o, g_o), (t_r, g_r) = out
    torch.testing.assert_close(t_o, t_r, **TIGHT)
    assert float(t_o) > 0.5  # clipping happened
    for a, b in zip(g_o, g_r):
        torch.testing.assert_close(a, b, **TIGHT)


def test_clip_grad_norm_bad_norm_type_is_named():
    p = torch.nn.Parameter(torch.zeros(2))
    p.grad = torch.ones(2)
    with pytest.raises(ValueError, match="norm_type must be a number > 0 or inf, got 'euclid'"):
        optim.clip_grad_norm_([p], 1.0, norm_type="euclid")
    with pytest.raises(ValueError, match="norm_type must be > 0 or inf"):
        optim.clip_grad_norm_([p], 1.0, norm_type=-1)
    with pytest.raises(ValueError, match="foreach"):
        optim.clip_grad_value_([p], 1.0, foreach="no")
