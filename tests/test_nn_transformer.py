"""Transformer layers, stacks and nn.Transformer against PyTorch: key names, norm_first, activations, masks,
and PyTorch's evaluation results whichever internal path it takes (the nested-tensor encoder path zeroes
padded positions)."""

import warnings

import numpy as np
import pytest
from torch_twins import assert_close, twins

import engine

torch = pytest.importorskip("torch", reason="parity tests need PyTorch (pip install '.[parity]')")
pytestmark = [pytest.mark.parity, pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors")]

D, HEADS, FF, N, S = 8, 2, 16, 3, 6
rng = np.random.default_rng(3)
PADDING = np.zeros((N, S), bool)
PADDING[0, 4:], PADDING[1, 2:] = True, True  # left-aligned: kept positions first


def _encoder(batch_first=True, norm_first=False, activation="relu", nested=True, layers=2):
    def build(lib):
        layer = lib.nn.TransformerEncoderLayer(D, HEADS, FF, activation=activation, batch_first=batch_first,
                                               norm_first=norm_first)
        return lib.nn.TransformerEncoder(layer, layers, norm=lib.nn.LayerNorm(D), enable_nested_tensor=nested)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # both libraries warn when nested tensors cannot be used
        return twins(build)


def _x(batch_first: bool, length: int = S) -> np.ndarray:
    x = rng.standard_normal((N, length, D)).astype(np.float32)
    return x if batch_first else np.ascontiguousarray(x.transpose(1, 0, 2))


def _run(lib, module, *arrays, grad=False, **masks):
    with lib.set_grad_enabled(grad):
        return module(*[lib.tensor(a) for a in arrays], **{k: lib.tensor(v) for k, v in masks.items()})


@pytest.mark.parametrize("batch_first", [True, False], ids=["batch_first", "seq_first"])
@pytest.mark.parametrize("norm_first", [False, True], ids=["post_norm", "pre_norm"])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_encoder_with_padding_matches_pytorch_in_eval(batch_first, norm_first, activation):
    ref, model = _encoder(batch_first, norm_first, activation)
    x = _x(batch_first)
    ref.eval(), model.eval()
    assert_close(_run(engine, model, x, src_key_padding_mask=PADDING),
                 _run(torch, ref, x, src_key_padding_mask=PADDING))


def test_nested_path_gives_padded_positions_the_final_norm_of_zero():
    ref, model = _encoder()
    ref.eval(), model.eval()
    x = _x(True)
    got = _run(engine, model, x, src_key_padding_mask=PADDING)
    assert_close(got, _run(torch, ref, x, src_key_padding_mask=PADDING))
    np.testing.assert_allclose(got.numpy()[1, 2:], np.broadcast_to(model.norm.bias.detach().numpy(), (S - 2, D)),
                               atol=1e-6)


def test_padded_positions_are_computed_when_gradients_are_recorded():
    ref, model = _encoder()
    ref.eval(), model.eval()
    x = _x(True)
    got = _run(engine, model, x, grad=True, src_key_padding_mask=PADDING)
    assert_close(got, _run(torch, ref, x, grad=True, src_key_padding_mask=PADDING))
    assert not np.allclose(got.detach().numpy()[1, 2:], model.norm.bias.detach().numpy())


def test_padding_that_is_not_left_aligned_matches_pytorch():
    ref, model = _encoder()
    ref.eval(), model.eval()
    padding = PADDING.copy()
    padding[2, 1] = True
    x = _x(True)
    assert_close(_run(engine, model, x, src_key_padding_mask=padding),
                 _run(torch, ref, x, src_key_padding_mask=padding))


def test_encoder_without_nested_tensors_matches_pytorch():
    ref, model = _encoder(nested=False)
    ref.eval(), model.eval()
    x = _x(True)
    assert_close(_run(engine, model, x, src_key_padding_mask=PADDING),
                 _run(torch, ref, x, src_key_padding_mask=PADDING))


def test_encoder_in_training_matches_pytorch_without_dropout():
    ref, model = twins(lambda lib: lib.nn.TransformerEncoder(
        lib.nn.TransformerEncoderLayer(D, HEADS, FF, dropout=0.0, batch_first=True), 2, enable_nested_tensor=False))
    x = _x(True)
    assert_close(_run(engine, model, x, src_key_padding_mask=PADDING),
                 _run(torch, ref, x, src_key_padding_mask=PADDING))


def test_causal_mask_is_detected_and_matches_pytorch():
    ref, model = _encoder(nested=False)
    ref.eval(), model.eval()
    mask = torch.nn.Transformer.generate_square_subsequent_mask(S).numpy()
    x = _x(True)
    assert_close(_run(engine, model, x, mask=mask), _run(torch, ref, x, mask=mask))


def test_callable_activation_is_used_as_is():
    def build(lib):
        return lib.nn.TransformerEncoderLayer(D, HEADS, FF, activation=lib.nn.functional.silu, batch_first=True)
    ref, model = twins(build)
    ref.eval(), model.eval()
    x = _x(True)
    assert model.activation_relu_or_gelu == 0
    assert_close(_run(engine, model, x), _run(torch, ref, x))


def test_unknown_activation_name_is_an_error():
    with pytest.raises(RuntimeError, match="activation should be relu/gelu, not tanh"):
        engine.nn.TransformerEncoderLayer(D, HEADS, activation="tanh")


def test_unbatched_layer_matches_pytorch():
    ref, model = twins(lambda lib: lib.nn.TransformerEncoderLayer(D, HEADS, FF, batch_first=True))
    ref.eval(), model.eval()
    x = _x(True)[0]
    assert_close(_run(engine, model, x), _run(torch, ref, x))


def test_layer_norm_eps_and_bias_false_match_pytorch():
    ref, model = twins(lambda lib: lib.nn.TransformerEncoderLayer(D, HEADS, FF, layer_norm_eps=1e-3, bias=False))
    ref.eval(), model.eval()
    assert list(model.state_dict()) == list(ref.state_dict())
    x = _x(False)
    assert_close(_run(engine, model, x), _run(torch, ref, x))


def test_encoder_key_names_match_pytorch():
    ref, model = _encoder()
    assert list(model.state_dict()) == list(ref.state_dict())


def test_nested_tensor_warning_matches_pytorch():
    with pytest.warns(UserWarning) as ours:
        engine.nn.TransformerEncoder(engine.nn.TransformerEncoderLayer(D, HEADS, norm_first=True), 1)
    with pytest.warns(UserWarning) as theirs:
        torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(D, HEADS, norm_first=True), 1)
    assert str(ours[0].message) == str(theirs[0].message)


@pytest.mark.parametrize("batch_first", [True, False], ids=["batch_first", "seq_first"])
@pytest.mark.parametrize("norm_first", [False, True], ids=["post_norm", "pre_norm"])
def test_decoder_with_causal_and_memory_padding_masks_matches_pytorch(batch_first, norm_first):
    def build(lib):
        layer = lib.nn.TransformerDecoderLayer(D, HEADS, FF, batch_first=batch_first, norm_first=norm_first)
        return lib.nn.TransformerDecoder(layer, 2, norm=lib.nn.LayerNorm(D))
    ref, model = twins(build)
    ref.eval(), model.eval()
    tgt, memory = _x(batch_first, 4), _x(batch_first)
    masks = {"tgt_mask": torch.nn.Transformer.generate_square_subsequent_mask(4).numpy(),
             "memory_key_padding_mask": PADDING}
    assert list(model.state_dict()) == list(ref.state_dict())
    assert_close(_run(engine, model, tgt, memory, **masks), _run(torch, ref, tgt, memory, **masks))


def test_transformer_matches_pytorch():
    ref, model = twins(lambda lib: lib.nn.Transformer(D, HEADS, 2, 2, FF, batch_first=True))
    ref.eval(), model.eval()
    src, tgt = _x(True), _x(True, 4)
    mask = torch.nn.Transformer.generate_square_subsequent_mask(4).numpy()
    assert list(model.state_dict()) == list(ref.state_dict())
    assert_close(_run(engine, model, src, tgt, tgt_mask=mask, src_key_padding_mask=PADDING,
                      memory_key_padding_mask=PADDING),
                 _run(torch, ref, src, tgt, tgt_mask=mask, src_key_padding_mask=PADDING,
                      memory_key_padding_mask=PADDING), atol=2e-5)


def test_square_subsequent_mask_matches_pytorch():
    ours = engine.nn.Transformer.generate_square_subsequent_mask(4)
    theirs = torch.nn.Transformer.generate_square_subsequent_mask(4)
    assert ours.dtype == engine.float32
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_encoder_gradients_match_pytorch_in_float64():
    def build(lib):
        # relu: the engine's gelu approximates erf to 1e-7, which a float64 comparison would see
        layer = lib.nn.TransformerEncoderLayer(D, HEADS, FF, dropout=0.0, batch_first=True)
        return lib.nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
    ref, model = twins(build, dtype="float64")
    x = _x(True).astype(np.float64)
    tx, ex = torch.tensor(x, requires_grad=True), engine.tensor(x, requires_grad=True)
    ref(tx, src_key_padding_mask=torch.tensor(PADDING)).square().sum().backward()
    (model(ex, src_key_padding_mask=engine.tensor(PADDING)) ** 2).sum().backward()
    assert_close(ex.grad, tx.grad, atol=1e-10, rtol=1e-8)
    for (name, ours), (_, theirs) in zip(model.named_parameters(), ref.named_parameters()):
        assert_close(ours.grad, theirs.grad, atol=1e-10, rtol=1e-8), name


@pytest.mark.parametrize("nested", [True, False], ids=["nested", "not_nested"])
@pytest.mark.parametrize("norm_first", [False, True], ids=["post_norm", "pre_norm"])
def test_a_sequence_with_every_position_padded_matches_pytorch(nested, norm_first):
    # The nested-tensor path gives 0 before the final norm; PyTorch's fused layer kernel gives nan.
    ref, model = _encoder(norm_first=norm_first, nested=nested)
    ref.eval(), model.eval()
    padding = PADDING.copy()
    padding[2] = True
    x = _x(True)
    expected = _run(torch, ref, x, src_key_padding_mask=padding)
    assert_close(_run(engine, model, x, src_key_padding_mask=padding), expected)
