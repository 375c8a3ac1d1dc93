"""scaled_dot_product_attention and nn.MultiheadAttention against PyTorch: masks, layouts, options, memory."""

import numpy as np
import pytest
from torch_twins import assert_close, engine_saved_bytes, to_engine, torch_saved_bytes, twins

import engine

torch = pytest.importorskip("torch", reason="parity tests need PyTorch (pip install '.[parity]')")
pytestmark = pytest.mark.parity

E, HEADS, L, N = 8, 2, 5, 3
rng = np.random.default_rng(7)
X = rng.standard_normal((N, L, E)).astype(np.float32)
PADDING = np.array([[False] * 5, [False, False, False, True, True], [False] * 4 + [True]])
BLOCKED = np.triu(np.ones((L, L), bool), 1)  # bool attn_mask: True may not attend
MASKS = {
    "none": {},
    "key_padding_bool": {"key_padding_mask": PADDING},
    "key_padding_float": {"key_padding_mask": np.where(PADDING, -1e4, 0).astype(np.float32)},
    "attn_mask_2d_bool": {"attn_mask": BLOCKED},
    "attn_mask_3d_float": {"attn_mask": rng.standard_normal((N * HEADS, L, L)).astype(np.float32)},
    "both_bool": {"key_padding_mask": PADDING, "attn_mask": BLOCKED},
}


def _layout(x: np.ndarray, batch_first: bool) -> np.ndarray:
    return x if batch_first else np.ascontiguousarray(x.transpose(1, 0, 2))


def _call(lib, module, x, masks, **kw):
    x = lib.tensor(x)
    return module(x, x, x, **{k: lib.tensor(v) for k, v in masks.items()}, **kw)


@pytest.mark.parametrize("batch_first", [True, False], ids=["batch_first", "seq_first"])
@pytest.mark.parametrize("mask", list(MASKS))
@pytest.mark.parametrize("weights", ["none", "averaged", "per_head"])
def test_self_attention_matches_pytorch_in_eval(batch_first, mask, weights):
    ref, model = twins(lambda lib: lib.nn.MultiheadAttention(E, HEADS, batch_first=batch_first).eval())
    kw = {"need_weights": weights != "none", "average_attn_weights": weights == "averaged"}
    x = _layout(X, batch_first)
    with torch.no_grad():
        expected = _call(torch, ref, x, MASKS[mask], **kw)
    with engine.no_grad():
        got = _call(engine, model, x, MASKS[mask], **kw)
    assert_close(got[0], expected[0])
    assert (got[1] is None) == (expected[1] is None)
    if expected[1] is not None:
        assert_close(got[1], expected[1])


@pytest.mark.parametrize("options", [{"bias": False}, {"add_bias_kv": True}, {"add_zero_attn": True},
                                     {"add_bias_kv": True, "add_zero_attn": True}], ids=str)
def test_options_match_pytorch(options):
    ref, model = twins(lambda lib: lib.nn.MultiheadAttention(E, HEADS, **options).eval())
    x = _layout(X, False)
    with torch.no_grad():
        expected = _call(torch, ref, x, {"key_padding_mask": PADDING})
    assert_close(_call(engine, model, x, {"key_padding_mask": PADDING})[0], expected[0])


def test_different_key_and_value_sizes_use_separate_projection_keys():
    ref, model = twins(lambda lib: lib.nn.MultiheadAttention(E, HEADS, kdim=6, vdim=4, batch_first=True).eval())
    assert list(model.state_dict()) == list(ref.state_dict())
    assert "q_proj_weight" in model.state_dict() and "in_proj_weight" not in model.state_dict()
    q, k, v = X, rng.standard_normal((N, 7, 6)).astype(np.float32), rng.standard_normal((N, 7, 4)).astype(np.float32)
    with torch.no_grad():
        expected = ref(torch.tensor(q), torch.tensor(k), torch.tensor(v))
    got = model(engine.tensor(q), engine.tensor(k), engine.tensor(v))
    assert_close(got[0], expected[0])
    assert_close(got[1], expected[1])


def test_key_names_match_pytorch():
    ref, model = twins(lambda lib: lib.nn.MultiheadAttention(E, HEADS, add_bias_kv=True))
    assert list(model.state_dict()) == list(ref.state_dict())


def test_unbatched_input_matches_pytorch():
    ref, model = twins(lambda lib: lib.nn.MultiheadAttention(E, HEADS, batch_first=True).eval())
    with torch.no_grad():
        expected = _call(torch, ref, X[0], {"key_padding_mask": PADDING[1]})
    got = _call(engine, model, X[0], {"key_padding_mask": PADDING[1]})
    assert_close(got[0], expected[0])
    assert_close(got[1], expected[1])


def test_encoder_decoder_attention_matches_pytorch():
    ref, model = twins(lambda lib: lib.nn.MultiheadAttention(E, HEADS, batch_first=True).eval())
    memory = rng.standard_normal((N, 7, E)).astype(np.float32)
    with torch.no_grad():
        expected = ref(torch.tensor(X), torch.tensor(memory), torch.tensor(memory), need_weights=False)
    got = model(engine.tensor(X), engine.tensor(memory), engine.tensor(memory), need_weights=False)
    assert_close(got[0], expected[0])


def test_causal_hint_without_a_mask_is_an_error():
    model = engine.nn.MultiheadAttention(E, HEADS)
    x = engine.tensor(_layout(X, False))
    with pytest.raises(RuntimeError, match="Need attn_mask"):
        model(x, x, x, is_causal=True)


def test_causal_hint_with_its_mask_matches_pytorch():
    ref, model = twins(lambda lib: lib.nn.MultiheadAttention(E, HEADS, batch_first=True).eval())
    kw = {"attn_mask": BLOCKED, "is_causal": True, "need_weights": False}
    with torch.no_grad():
        expected = ref(*[torch.tensor(X)] * 3, attn_mask=torch.tensor(BLOCKED), is_causal=True, need_weights=False)
    got = model(*[engine.tensor(X)] * 3, **{**kw, "attn_mask": engine.tensor(BLOCKED)})
    assert_close(got[0], expected[0])


def test_dropout_applies_in_training_only():
    model = engine.nn.MultiheadAttention(E, HEADS, dropout=0.9, batch_first=True)
    x = engine.tensor(X)
    with engine.no_grad():
        model.eval()
        first, second = model(x, x, x)[0], model(x, x, x)[0]
        model.train()
        dropped = model(x, x, x)[0]
    np.testing.assert_array_equal(first.numpy(), second.numpy())
    assert not np.allclose(dropped.numpy(), first.numpy())


def test_gradients_match_pytorch_in_float64():
    ref, model = twins(lambda lib: lib.nn.MultiheadAttention(E, HEADS, batch_first=True), dtype="float64")
    tx = torch.tensor(X, dtype=torch.float64, requires_grad=True)
    ex = to_engine(tx, requires_grad=True)
    upstream = rng.standard_normal((N, L, E))
    for lib, module, x in ((torch, ref, tx), (engine, model, ex)):
        out, weights = module(x, x, x, key_padding_mask=lib.tensor(PADDING))
        ((out * lib.tensor(upstream)).sum() + weights.sum()).backward()
    assert_close(ex.grad, tx.grad, atol=1e-12, rtol=1e-10)
    for (name, ours), (_, theirs) in zip(model.named_parameters(), ref.named_parameters()):
        assert_close(ours.grad, theirs.grad, atol=1e-12, rtol=1e-10), name


def test_bytes_kept_for_backward_match_pytorch():
    ref, model = twins(lambda lib: lib.nn.MultiheadAttention(E, HEADS, batch_first=True).eval())
    tx, ex = torch.tensor(X, requires_grad=True), engine.tensor(X, requires_grad=True)
    theirs = torch_saved_bytes(lambda: ref(tx, tx, tx, need_weights=False))
    ours, _ = engine_saved_bytes(lambda: model(ex, ex, ex, need_weights=False))
    assert ours == theirs


def test_no_grad_keeps_nothing_for_backward():
    model = engine.nn.MultiheadAttention(E, HEADS, batch_first=True)
    x = engine.tensor(X)
    with engine.no_grad():
        saved, (out, _) = engine_saved_bytes(lambda: model(x, x, x))
    assert saved == 0 and out.grad_fn is None


# -- scaled_dot_product_attention beyond the op table ---------------------------------------------
def test_sdpa_applies_dropout_whenever_p_is_positive():
    q = engine.tensor(rng.standard_normal((2, 4, 3)).astype(np.float32))
    out = engine.nn.functional.scaled_dot_product_attention(q, q, q, dropout_p=1.0)
    np.testing.assert_array_equal(out.numpy(), np.zeros((2, 4, 3), np.float32))


def test_sdpa_refuses_a_mask_with_the_causal_flag():
    q = engine.ones(1, 2, 4)
    with pytest.raises(RuntimeError, match="Explicit attn_mask should not be set when is_causal=True"):
        engine.nn.functional.scaled_dot_product_attention(q, q, q, attn_mask=engine.ones(2, 2), is_causal=True)


def test_sdpa_keeps_what_pytorch_keeps_for_backward():
    arrays = [rng.standard_normal((2, 2, 6, 4)).astype(np.float32) for _ in range(3)]
    mask = rng.random((6, 6)) > 0.3
    tq, tk, tv = (torch.tensor(a, requires_grad=True) for a in arrays)
    eq, ek, ev = (engine.tensor(a, requires_grad=True) for a in arrays)
    theirs = torch_saved_bytes(lambda: torch.nn.functional.scaled_dot_product_attention(
        tq, tk, tv, attn_mask=torch.tensor(mask)))
    ours, _ = engine_saved_bytes(lambda: engine.nn.functional.scaled_dot_product_attention(
        eq, ek, ev, attn_mask=engine.tensor(mask)))
    assert ours == theirs


EMPTY = np.array([[False] * 5, [True] * 5, [False, False, True, True, True]])  # sequence 1: every key padded


@pytest.mark.parametrize("grad", [False, True], ids=["no_grad", "grad"])
@pytest.mark.parametrize("training", [False, True], ids=["eval", "train"])
def test_a_sequence_with_every_key_padded_matches_pytorch_whichever_kernel_it_uses(grad, training):
    # PyTorch's fused inference kernel (eval, no grad, batch first, self-attention) gives nan there, its
    # scaled_dot_product_attention gives 0.
    ref, model = twins(lambda lib: lib.nn.MultiheadAttention(E, HEADS, batch_first=True))
    ref.train(training), model.train(training)
    with torch.set_grad_enabled(grad), engine.set_grad_enabled(grad):
        expected = _call(torch, ref, X, {"key_padding_mask": EMPTY}, need_weights=False)[0]
        got = _call(engine, model, X, {"key_padding_mask": EMPTY}, need_weights=False)[0]
    assert np.isnan(expected.detach().numpy()[1]).all() == (not grad and not training)
    assert_close(got, expected)
