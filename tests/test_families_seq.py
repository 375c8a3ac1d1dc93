"""Sequence model families built in PyTorch, saved as PyTorch users save them (safetensors and torch.save),
loaded strictly into the same model written with engine.nn, compared in eval under no_grad (and, for small
recurrent and attention models, in gradients too)."""

import math
import warnings

import numpy as np
import pytest
from torch_checkpoints import FORMATS, torch_state_dicts
from torch_twins import assert_close

import engine

torch = pytest.importorskip("torch", reason="parity tests need PyTorch (pip install '.[parity]')")
pytestmark = [pytest.mark.parity, pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors"),
              pytest.mark.filterwarnings("ignore:enable_nested_tensor is True")]

VOCAB, D, HEADS, FF, CLASSES, MAXLEN = 20, 16, 4, 32, 3, 12
DEEP = {"atol": 2e-4, "rtol": 2e-3}  # several layers of float32
SINGLE = {"atol": 1e-5, "rtol": 1e-4}
rng = np.random.default_rng(2024)
TOKENS = rng.integers(1, VOCAB, (4, 9))
TOKENS[1, 6:], TOKENS[2, 3:] = 0, 0  # padding (index 0) at the end of two sequences


def sinusoidal(lib, length: int, dim: int):
    """The classic positional-encoding table, written as ported scripts write it."""
    position = lib.arange(length).unsqueeze(1)
    div = lib.exp(lib.arange(0, dim, 2).float() * (-math.log(10000.0) / dim))
    table = lib.zeros(length, dim)
    table[:, 0::2] = lib.sin(position * div)
    table[:, 1::2] = lib.cos(position * div)
    return table


def encoder_classifier(lib, batch_first: bool, norm_first: bool):
    """Token classifier: embedding + positions + 2-layer gelu TransformerEncoder with padding mask, masked mean."""

    class EncoderClassifier(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = lib.nn.Embedding(VOCAB, D, padding_idx=0)
            self.register_buffer("pe", sinusoidal(lib, MAXLEN, D))
            layer = lib.nn.TransformerEncoderLayer(D, HEADS, FF, activation="gelu", batch_first=batch_first,
                                                   norm_first=norm_first)
            self.encoder = lib.nn.TransformerEncoder(layer, 2, norm=lib.nn.LayerNorm(D))
            self.head = lib.nn.Linear(D, CLASSES)

        def forward(self, tokens):
            padding = tokens == 0
            x = self.embed(tokens) * math.sqrt(D) + self.pe[:tokens.size(1)]
            if not batch_first:
                x = x.transpose(0, 1)
            h = self.encoder(x, src_key_padding_mask=padding)
            if not batch_first:
                h = h.transpose(0, 1)
            keep = (~padding).unsqueeze(-1).type_as(h)
            return self.head((h * keep).sum(1) / keep.sum(1).clamp(min=1.0))

    return EncoderClassifier()


def seq2seq(lib):
    """Encoder-decoder: TransformerEncoder over the source, TransformerDecoder with a causal mask over the target."""

    class Seq2Seq(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.src_embed = lib.nn.Embedding(VOCAB, D, padding_idx=0)
            self.tgt_embed = lib.nn.Embedding(VOCAB, D)
            self.encoder = lib.nn.TransformerEncoder(lib.nn.TransformerEncoderLayer(D, HEADS, FF, batch_first=True), 2)
            self.decoder = lib.nn.TransformerDecoder(
                lib.nn.TransformerDecoderLayer(D, HEADS, FF, batch_first=True, norm_first=True), 2,
                norm=lib.nn.LayerNorm(D))
            self.out = lib.nn.Linear(D, VOCAB)

        def forward(self, src, tgt):
            padding = src == 0
            memory = self.encoder(self.src_embed(src), src_key_padding_mask=padding)
            causal = lib.nn.Transformer.generate_square_subsequent_mask(tgt.size(1))
            h = self.decoder(self.tgt_embed(tgt), memory, tgt_mask=causal, tgt_is_causal=True,
                             memory_key_padding_mask=padding)
            return self.out(h)

    return Seq2Seq()


def recurrent_tagger(lib, kind: str):
    """Embedding + a 2-layer bidirectional batch-first recurrent net with initial states + a per-token head."""

    class Tagger(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = lib.nn.Embedding(VOCAB, D)
            options = {"nonlinearity": "relu"} if kind == "RNN" else {}
            self.rnn = getattr(lib.nn, kind)(D, 12, num_layers=2, bidirectional=True, batch_first=True, **options)
            self.head = lib.nn.Linear(24, CLASSES)

        def forward(self, tokens, h0, c0):
            out, state = self.rnn(self.embed(tokens), (h0, c0) if kind == "LSTM" else h0)
            return {"tags": self.head(out), "state": state}

    return Tagger()


def cell_decoder(lib, kind: str):
    """A step-by-step decoder written with a cell, as hand-rolled seq2seq code does."""

    class CellDecoder(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.cell = getattr(lib.nn, kind)(D, 10)
            self.out = lib.nn.Linear(10, VOCAB)

        def forward(self, x):
            state, outputs = None, []
            for t in range(x.size(1)):
                state = self.cell(x[:, t], state)
                outputs.append(self.out(state[0] if kind == "LSTMCell" else state))
            return lib.stack(outputs, dim=1)

    return CellDecoder()


def _pair(factory, tmp_path, fmt: str):
    """(torch model with random weights, engine model loaded strictly from the torch model saved in `fmt`)."""
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = factory(torch)
        with torch.no_grad():
            for p in reference.parameters():
                p.normal_(0, 0.3)
        model = factory(engine)
    model.load_state_dict(torch_state_dicts(reference, tmp_path)[fmt])
    return reference.eval(), model.eval()


def _eval(lib, model, *arrays):
    with lib.no_grad():
        return model(*[lib.tensor(a) for a in arrays])


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("batch_first", [True, False], ids=["batch_first", "seq_first"])
@pytest.mark.parametrize("norm_first", [False, True], ids=["post_norm", "pre_norm"])
def test_encoder_classifier_matches_pytorch(tmp_path, fmt, batch_first, norm_first):
    reference, model = _pair(lambda lib: encoder_classifier(lib, batch_first, norm_first), tmp_path, fmt)
    assert_close(_eval(engine, model, TOKENS), _eval(torch, reference, TOKENS), **DEEP)


@pytest.mark.parametrize("fmt", FORMATS)
def test_encoder_decoder_matches_pytorch(tmp_path, fmt):
    reference, model = _pair(seq2seq, tmp_path, fmt)
    target = rng.integers(1, VOCAB, (4, 5))
    assert_close(_eval(engine, model, TOKENS, target), _eval(torch, reference, TOKENS, target), **DEEP)


MHA_MASKS = {
    "none": {},
    "key_padding_bool": {"key_padding_mask": TOKENS == 0},
    "key_padding_float": {"key_padding_mask": np.where(TOKENS == 0, -1e9, 0.0).astype(np.float32)},
    "attn_mask_bool_2d": {"attn_mask": np.triu(np.ones((9, 9), bool), 1)},
    "attn_mask_float_3d": {"attn_mask": rng.standard_normal((4 * HEADS, 9, 9)).astype(np.float32)},
    "both_bool": {"key_padding_mask": TOKENS == 0, "attn_mask": np.triu(np.ones((9, 9), bool), 1)},
}


@pytest.fixture(scope="module", params=FORMATS)
def attention_pair(request, tmp_path_factory):
    return _pair(lambda lib: lib.nn.MultiheadAttention(D, HEADS, batch_first=True), tmp_path_factory.mktemp("mha"),
                 request.param)


@pytest.mark.parametrize("mask", list(MHA_MASKS))
@pytest.mark.parametrize("weights", [{"need_weights": False}, {"need_weights": True},
                                     {"need_weights": True, "average_attn_weights": False}], ids=["none", "mean",
                                                                                                  "per_head"])
def test_multihead_attention_matches_pytorch(attention_pair, mask, weights):
    reference, model = attention_pair
    x = rng.standard_normal((4, 9, D)).astype(np.float32)
    results = []
    for lib, module in ((engine, model), (torch, reference)):
        with lib.no_grad():
            t = lib.tensor(x)
            results.append(module(t, t, t, **{k: lib.tensor(v) for k, v in MHA_MASKS[mask].items()}, **weights))
    (out, attn), (expected_out, expected_attn) = results
    assert_close(out, expected_out, **SINGLE)
    assert (attn is None) == (expected_attn is None)
    if expected_attn is not None:
        assert_close(attn, expected_attn, **SINGLE)


def _states(kind: str) -> tuple:
    h0 = rng.standard_normal((4, 4, 12)).astype(np.float32)
    return h0, rng.standard_normal((4, 4, 12)).astype(np.float32) if kind == "LSTM" else h0


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
def test_recurrent_tagger_matches_pytorch(tmp_path, fmt, kind):
    reference, model = _pair(lambda lib: recurrent_tagger(lib, kind), tmp_path, fmt)
    h0, c0 = _states(kind)
    got, expected = _eval(engine, model, TOKENS, h0, c0), _eval(torch, reference, TOKENS, h0, c0)
    assert_close(got["tags"], expected["tags"], **DEEP)
    for ours, theirs in zip(*[out["state"] if kind == "LSTM" else (out["state"],) for out in (got, expected)]):
        assert_close(ours, theirs, **DEEP)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("kind", ["LSTMCell", "GRUCell", "RNNCell"])
def test_cell_decoder_matches_pytorch(tmp_path, fmt, kind):
    reference, model = _pair(lambda lib: cell_decoder(lib, kind), tmp_path, fmt)
    x = rng.standard_normal((4, 6, D)).astype(np.float32)
    assert_close(_eval(engine, model, x), _eval(torch, reference, x), **DEEP)


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_recurrent_tagger_gradients_match_pytorch(tmp_path, kind):
    reference, model = _pair(lambda lib: recurrent_tagger(lib, kind), tmp_path, "safetensors")
    h0, c0 = _states(kind)
    for lib, module in ((torch, reference), (engine, model)):
        module.train()
        tags = module(lib.tensor(TOKENS), lib.tensor(h0), lib.tensor(c0))["tags"]
        (tags * tags).sum().backward()
    for (name, ours), (_, theirs) in zip(model.named_parameters(), reference.named_parameters()):
        assert_close(ours.grad, theirs.grad, **DEEP), name


def test_multihead_attention_gradients_match_pytorch(tmp_path):
    reference, model = _pair(lambda lib: lib.nn.MultiheadAttention(D, HEADS, batch_first=True), tmp_path,
                             "torch.save")
    x = rng.standard_normal((4, 9, D)).astype(np.float32)
    inputs = {}
    for lib, module in ((torch, reference), (engine, model)):
        t = inputs[lib.__name__] = lib.tensor(x, requires_grad=True)
        out, attn = module(t, t, t, key_padding_mask=lib.tensor(TOKENS == 0))
        ((out * out).sum() + (attn * attn).sum()).backward()
    assert_close(inputs["engine"].grad, inputs["torch"].grad, **SINGLE)
    for (name, ours), (_, theirs) in zip(model.named_parameters(), reference.named_parameters()):
        assert_close(ours.grad, theirs.grad, **SINGLE), name
