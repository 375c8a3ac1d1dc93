"""Normalisation, dropout, embedding, flatten, activation and container modules: gradients, behaviour, parity."""

from collections import OrderedDict

import numpy as np
import pytest
from gradcheck import gradcheck

import engine
import engine.nn as nn
import engine.nn.functional as F

rng = np.random.default_rng(0)


def randn(*shape, dtype=np.float64) -> np.ndarray:
    return rng.standard_normal(shape).astype(dtype)


# -- gradients against finite differences (float64) -------------------------------------------------------
GRAD_CASES = {
    "batch_norm_train_2d": (lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True), [(5, 3), (3,), (3,)]),
    "batch_norm_train_3d": (lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True), [(2, 3, 4), (3,), (3,)]),
    "batch_norm_train_4d": (lambda x, w, b: F.batch_norm(x, None, None, w, b, True), [(2, 2, 3, 2), (2,), (2,)]),
    "batch_norm_train_no_affine": (lambda x: F.batch_norm(x, None, None, training=True), [(4, 3, 2)]),
    "batch_norm_eval": (lambda x, w, b: F.batch_norm(x, engine.tensor([0.5, -1.0, 2.0], dtype=engine.float64),
                                                     engine.tensor([2.0, 0.5, 1.5], dtype=engine.float64), w, b),
                        [(4, 3, 2), (3,), (3,)]),
    "layer_norm_last_dim": (lambda x, w, b: F.layer_norm(x, (4,), w, b), [(3, 4), (4,), (4,)]),
    "layer_norm_two_dims": (lambda x, w, b: F.layer_norm(x, (3, 2), w, b), [(2, 3, 2), (3, 2), (3, 2)]),
    "layer_norm_no_affine": (lambda x: F.layer_norm(x, 5), [(2, 5)]),
    "embedding_weight": (lambda w: F.embedding(engine.tensor([[0, 2, 2], [3, 0, 1]]), w), [(4, 3)]),
    "flatten": (lambda x: nn.Flatten()(x), [(2, 3, 2)]),
    "unflatten": (lambda x: nn.Unflatten(1, (2, 3))(x), [(2, 6)]),
}


@pytest.mark.parametrize("name", list(GRAD_CASES))
def test_gradient_matches_finite_differences(name):
    fn, shapes = GRAD_CASES[name]
    gradcheck(fn, *[randn(*s) for s in shapes])


def test_embedding_gradient_skips_padding_row():
    emb = nn.Embedding(4, 2, padding_idx=1)
    emb(engine.tensor([1, 2, 1])).sum().backward()
    np.testing.assert_array_equal(emb.weight.grad.numpy(), [[0, 0], [0, 0], [1, 1], [0, 0]])


def test_embedding_gradient_accumulates_repeated_indices():
    emb = nn.Embedding(3, 2)
    emb(engine.tensor([[2, 2], [2, 0]])).sum().backward()
    np.testing.assert_array_equal(emb.weight.grad.numpy(), [[1, 1], [0, 0], [3, 3]])


def test_embedding_scale_grad_by_freq_divides_by_index_count():
    emb = nn.Embedding(3, 1)
    F.embedding(engine.tensor([0, 2, 2, 2]), emb.weight, scale_grad_by_freq=True).sum().backward()
    np.testing.assert_allclose(emb.weight.grad.numpy(), [[1], [0], [1]])


def test_dropout_gradient_is_the_mask_scaled():
    x = engine.ones(200, requires_grad=True)
    out = F.dropout(x, 0.25)
    out.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), out.detach().numpy())


# -- BatchNorm -----------------------------------------------------------------------------------------
def test_batchnorm_state_dict_keys_are_pytorchs():
    assert list(nn.BatchNorm1d(3).state_dict()) == ["weight", "bias", "running_mean", "running_var",
                                                     "num_batches_tracked"]


def test_batchnorm_without_running_stats_has_only_affine_parameters():
    assert list(nn.BatchNorm2d(3, track_running_stats=False).state_dict()) == ["weight", "bias"]


def test_batchnorm_without_affine_has_only_buffers():
    bn = nn.BatchNorm2d(3, affine=False)
    assert bn.weight is None and bn.bias is None and list(bn.parameters()) == []


def test_batchnorm_buffers_start_at_zero_mean_unit_var_and_int64_count():
    bn = nn.BatchNorm1d(2)
    assert bn.running_mean.tolist() == [0, 0] and bn.running_var.tolist() == [1, 1]
    assert bn.num_batches_tracked.dtype == engine.int64 and bn.num_batches_tracked.item() == 0


def test_batchnorm_train_normalises_each_channel_with_batch_stats():
    out = nn.BatchNorm1d(3)(engine.tensor(randn(64, 3, dtype=np.float32) * 4 + 2)).detach().numpy()
    np.testing.assert_allclose(out.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(out.var(0), 1, atol=1e-3)


def test_batchnorm_train_updates_running_stats_with_unbiased_variance():
    x = randn(10, 2, dtype=np.float32)
    bn = nn.BatchNorm1d(2, momentum=0.5)
    bn(engine.tensor(x))
    np.testing.assert_allclose(bn.running_mean.numpy(), 0.5 * x.mean(0), rtol=1e-5)
    np.testing.assert_allclose(bn.running_var.numpy(), 0.5 + 0.5 * x.var(0, ddof=1), rtol=1e-5)
    assert bn.num_batches_tracked.item() == 1


def test_batchnorm_momentum_none_keeps_a_cumulative_average():
    batches = [randn(6, 2, dtype=np.float32) for _ in range(3)]
    bn = nn.BatchNorm1d(2, momentum=None)
    for x in batches:
        bn(engine.tensor(x))
    np.testing.assert_allclose(bn.running_mean.numpy(), np.mean([x.mean(0) for x in batches], 0), atol=1e-6)


def test_batchnorm_eval_uses_running_stats_and_leaves_them():
    bn = nn.BatchNorm1d(2).eval()
    bn.running_mean.copy_(engine.tensor([1.0, -1.0]))
    bn.running_var.copy_(engine.tensor([4.0, 0.25]))
    out = bn(engine.tensor([[3.0, 0.0]]))
    np.testing.assert_allclose(out.detach().numpy(), [[2 / np.sqrt(4 + 1e-5), 1 / np.sqrt(0.25 + 1e-5)]], rtol=1e-6)
    assert bn.running_mean.tolist() == [1.0, -1.0] and bn.num_batches_tracked.item() == 0


def test_batchnorm_eval_without_running_stats_uses_batch_stats():
    bn = nn.BatchNorm1d(2, track_running_stats=False).eval()
    out = bn(engine.tensor(randn(8, 2, dtype=np.float32) + 5)).detach().numpy()
    np.testing.assert_allclose(out.mean(0), 0, atol=1e-5)


@pytest.mark.parametrize("module, shape, message", [
    (nn.BatchNorm1d(3), (2, 3, 4, 5), "expected 2D or 3D input (got 4D input)"),
    (nn.BatchNorm1d(3), (3,), "expected 2D or 3D input (got 1D input)"),
    (nn.BatchNorm2d(3), (2, 3, 4), "expected 4D input (got 3D input)"),
])
def test_batchnorm_rejects_input_of_wrong_rank(module, shape, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        module(engine.zeros(*shape))


def test_batchnorm_training_needs_more_than_one_value_per_channel():
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
        nn.BatchNorm1d(3)(engine.zeros(1, 3))


def test_batchnorm_rejects_wrong_channel_count():
    with pytest.raises(RuntimeError, match="running_mean should contain 4 elements not 3"):
        nn.BatchNorm1d(3)(engine.zeros(2, 4))


# -- LayerNorm -----------------------------------------------------------------------------------------
def test_layernorm_normalises_the_trailing_dims():
    out = nn.LayerNorm((3, 4))(engine.tensor(randn(2, 3, 4, dtype=np.float32) * 3 + 1)).detach().numpy()
    np.testing.assert_allclose(out.reshape(2, -1).mean(1), 0, atol=1e-6)
    np.testing.assert_allclose(out.reshape(2, -1).var(1), 1, atol=1e-4)


def test_layernorm_parameters_follow_its_flags():
    assert list(nn.LayerNorm(4).state_dict()) == ["weight", "bias"]
    assert list(nn.LayerNorm(4, bias=False).state_dict()) == ["weight"]
    assert list(nn.LayerNorm(4, elementwise_affine=False).state_dict()) == []


def test_layernorm_rejects_mismatched_trailing_shape():
    with pytest.raises(RuntimeError, match=r"Given normalized_shape=\[4\], expected input with shape \[\*, 4\]"):
        nn.LayerNorm(4)(engine.zeros(2, 3))


# -- Dropout -------------------------------------------------------------------------------------------
def test_dropout_is_the_identity_in_eval():
    x = engine.randn(10)
    assert nn.Dropout(0.5).eval()(x) is x


def test_dropout_with_p_zero_is_the_identity():
    x = engine.randn(10)
    assert nn.Dropout(0.0)(x) is x


def test_dropout_with_p_one_gives_zeros():
    assert nn.Dropout(1.0)(engine.ones(5)).tolist() == [0.0] * 5


def test_dropout_scales_survivors_by_one_over_keep_probability():
    out = nn.Dropout(0.2)(engine.ones(1000)).numpy()
    assert set(np.unique(out).tolist()) == {0.0, np.float32(1 / 0.8)}


def test_dropout_drops_about_p_of_the_elements():
    engine.manual_seed(0)
    out = nn.Dropout(0.3)(engine.ones(100_000)).numpy()
    assert abs((out == 0).mean() - 0.3) < 0.01


def test_dropout_draws_from_the_engine_generator():
    engine.manual_seed(7)
    first = F.dropout(engine.ones(50)).numpy()
    engine.manual_seed(7)
    np.testing.assert_array_equal(F.dropout(engine.ones(50)).numpy(), first)


@pytest.mark.parametrize("p", [-0.1, 1.5])
def test_dropout_rejects_probability_outside_unit_interval(p):
    with pytest.raises(ValueError, match=f"dropout probability has to be between 0 and 1, but got {p}"):
        nn.Dropout(p)


# -- Embedding -----------------------------------------------------------------------------------------
def test_embedding_looks_up_rows():
    emb = nn.Embedding(5, 3)
    np.testing.assert_array_equal(emb(engine.tensor([[4, 0]])).detach().numpy(), emb.weight.detach().numpy()[[[4, 0]]])


def test_embedding_zeroes_padding_row_at_init():
    assert nn.Embedding(4, 3, padding_idx=-1).weight[3].tolist() == [0.0, 0.0, 0.0]


def test_embedding_normalises_negative_padding_idx():
    assert nn.Embedding(5, 3, padding_idx=-1).padding_idx == 4


def test_embedding_rejects_padding_idx_out_of_range():
    with pytest.raises(AssertionError, match="Padding_idx must be within num_embeddings"):
        nn.Embedding(5, 3, padding_idx=5)


def test_embedding_rejects_out_of_range_index():
    with pytest.raises(IndexError, match="index out of range in self"):
        nn.Embedding(5, 3)(engine.tensor([5]))


def test_embedding_rejects_float_indices():
    with pytest.raises(RuntimeError, match="'indices' to have one of the following scalar types: Long, Int"):
        nn.Embedding(5, 3)(engine.tensor([1.0]))


def test_embedding_from_pretrained_is_frozen_by_default():
    emb = nn.Embedding.from_pretrained(engine.ones(3, 2))
    assert not emb.weight.requires_grad and emb(engine.tensor([2])).tolist() == [[1.0, 1.0]]


def test_embedding_max_norm_renormalises_looked_up_rows_in_place():
    emb = nn.Embedding.from_pretrained(engine.tensor([[3.0, 4.0], [0.3, 0.4]]), max_norm=1.0)
    emb(engine.tensor([0, 1]))
    np.testing.assert_allclose(emb.weight.numpy(), [[0.6, 0.8], [0.3, 0.4]], rtol=1e-6)


# -- Flatten, activations ------------------------------------------------------------------------------
def test_flatten_keeps_the_batch_dim_by_default():
    assert nn.Flatten()(engine.zeros(2, 3, 4)).shape == (2, 12)


def test_unflatten_splits_one_dim():
    assert nn.Unflatten(-1, (2, 3))(engine.zeros(4, 6)).shape == (4, 2, 3)


def test_unflatten_rejects_non_tuple_size():
    with pytest.raises(TypeError, match="unflattened_size must be a tuple of ints"):
        nn.Unflatten(1, 6)


@pytest.mark.parametrize("module, fn", [
    (nn.ReLU(), F.relu), (nn.LeakyReLU(0.2), lambda x: F.leaky_relu(x, 0.2)), (nn.GELU(), F.gelu),
    (nn.GELU("tanh"), lambda x: F.gelu(x, approximate="tanh")), (nn.SiLU(), F.silu), (nn.Tanh(), F.tanh),
    (nn.Sigmoid(), F.sigmoid), (nn.Softmax(1), lambda x: F.softmax(x, 1)),
    (nn.LogSoftmax(-1), lambda x: F.log_softmax(x, -1)),
], ids=lambda v: type(v).__name__ if isinstance(v, nn.Module) else "")
def test_activation_module_applies_its_function(module, fn):
    x = engine.randn(3, 4)
    np.testing.assert_array_equal(module(x).numpy(), fn(x).numpy())


@pytest.mark.parametrize("module", [
    nn.BatchNorm1d(4), nn.LayerNorm(4), nn.Dropout(), nn.Flatten(), nn.LeakyReLU(), nn.GELU(), nn.SiLU(), nn.Tanh(),
    nn.Sigmoid(), nn.Softmax(1), nn.LogSoftmax(1),
], ids=lambda m: type(m).__name__)
def test_module_output_stays_float32(module):
    assert module(engine.randn(3, 4)).dtype == engine.float32


def test_embedding_output_is_its_weight_dtype():
    assert nn.Embedding(3, 2)(engine.tensor([1])).dtype == engine.float32


# -- ModuleList, ModuleDict ----------------------------------------------------------------------------
def _layers(n):
    return [nn.Linear(1, 1) for _ in range(n)]


def test_modulelist_keys_are_positions():
    assert list(nn.ModuleList(_layers(2)).state_dict()) == ["0.weight", "0.bias", "1.weight", "1.bias"]


def test_modulelist_supports_the_list_api():
    a, b, c, d = _layers(4)
    ml = nn.ModuleList([a])
    ml.append(b)
    ml.extend([d])
    ml.insert(2, c)
    assert list(ml) == [a, b, c, d] and len(ml) == 4 and ml[-1] is d
    assert list(ml[1:3]) == [b, c] and isinstance(ml[1:3], nn.ModuleList)


def test_modulelist_delete_renumbers_keys():
    a, b, c = _layers(3)
    ml = nn.ModuleList([a, b, c])
    del ml[0]
    assert list(ml._modules) == ["0", "1"] and list(ml) == [b, c]


def test_modulelist_setitem_keeps_position():
    a, b, c = _layers(3)
    ml = nn.ModuleList([a, b])
    ml[0] = c
    assert list(ml) == [c, b]


def test_modulelist_index_out_of_range_names_the_index():
    with pytest.raises(IndexError, match="index 2 is out of range"):
        nn.ModuleList(_layers(2))[2]


def test_modulelist_repr_compresses_repeats():
    assert repr(nn.ModuleList([nn.Tanh(), nn.Tanh(), nn.ReLU()])) == (
        "ModuleList(\n  (0-1): 2 x Tanh()\n  (2): ReLU()\n)")


def test_moduledict_supports_the_dict_api():
    a, b = _layers(2)
    md = nn.ModuleDict({"a": a})
    md["b"] = b
    md.update([("c", nn.Tanh())])
    assert list(md) == ["a", "b", "c"] and "b" in md and md["a"] is a and len(md) == 3
    assert md.pop("c").__class__ is nn.Tanh and list(md.keys()) == ["a", "b"]
    assert list(md.state_dict()) == ["a.weight", "a.bias", "b.weight", "b.bias"]


# -- parity with PyTorch (float32) ---------------------------------------------------------------------
@pytest.fixture
def torch():
    return pytest.importorskip("torch", reason="parity tests need PyTorch (pip install '.[parity]')")


def _floats(*shape):
    return randn(*shape, dtype=np.float32) * 2 + 0.5


# name: (module class name, args, kwargs, input)
MODULE_CASES = {
    "BatchNorm1d_2d": ("BatchNorm1d", (3,), {}, _floats(6, 3)),
    "BatchNorm1d_3d": ("BatchNorm1d", (3,), {"momentum": None}, _floats(4, 3, 5)),
    "BatchNorm2d": ("BatchNorm2d", (3,), {}, _floats(2, 3, 4, 5)),
    "BatchNorm2d_no_affine": ("BatchNorm2d", (3,), {"affine": False}, _floats(2, 3, 4, 5)),
    "BatchNorm2d_no_running_stats": ("BatchNorm2d", (3,), {"track_running_stats": False}, _floats(2, 3, 3, 3)),
    "BatchNorm2d_no_bias": ("BatchNorm2d", (3,), {"bias": False, "eps": 1e-3}, _floats(2, 3, 3, 3)),
    "LayerNorm": ("LayerNorm", (5,), {}, _floats(2, 3, 5)),
    "LayerNorm_two_dims": ("LayerNorm", ((3, 5),), {"eps": 1e-6}, _floats(2, 3, 5)),
    "LayerNorm_no_bias": ("LayerNorm", (5,), {"bias": False}, _floats(4, 5)),
    "LayerNorm_no_affine": ("LayerNorm", (5,), {"elementwise_affine": False}, _floats(4, 5)),
    "Embedding": ("Embedding", (6, 4), {}, rng.integers(0, 6, (3, 5))),
    "Embedding_padding": ("Embedding", (6, 4), {"padding_idx": 2}, np.array([[2, 1, 2], [0, 5, 2]])),
    "Embedding_freq": ("Embedding", (6, 4), {"scale_grad_by_freq": True, "padding_idx": -1},
                       np.array([1, 1, 3, 5, 1])),
    "Embedding_max_norm": ("Embedding", (6, 4), {"max_norm": 1.5, "norm_type": 1.0}, np.array([0, 3, 3])),
    "Flatten": ("Flatten", (), {}, _floats(2, 3, 4)),
    "Flatten_range": ("Flatten", (0, 1), {}, _floats(2, 3, 4)),
    "Unflatten": ("Unflatten", (1, (2, 2)), {}, _floats(3, 4)),
    "ReLU": ("ReLU", (), {}, _floats(3, 4)),
    "LeakyReLU": ("LeakyReLU", (0.2,), {}, _floats(3, 4)),
    "GELU": ("GELU", (), {}, _floats(3, 4)),
    "GELU_tanh": ("GELU", ("tanh",), {}, _floats(3, 4)),
    "SiLU": ("SiLU", (), {}, _floats(3, 4)),
    "Tanh": ("Tanh", (), {}, _floats(3, 4)),
    "Sigmoid": ("Sigmoid", (), {}, _floats(3, 4)),
    "Softmax": ("Softmax", (1,), {}, _floats(3, 4)),
    "LogSoftmax": ("LogSoftmax", (-1,), {}, _floats(3, 4)),
}


def _twins(torch, name, args, kwargs):
    """A torch module with random parameters, and an engine module loaded from its state_dict."""
    torch.manual_seed(0)
    torch_module = getattr(torch.nn, name)(*args, **kwargs)
    with torch.no_grad():
        for p in torch_module.parameters():
            p.copy_(torch.randn_like(p))
    engine_module = getattr(nn, name)(*args, **kwargs)
    engine_module.load_state_dict({k: v.numpy() for k, v in torch_module.state_dict().items()})
    return torch_module, engine_module


def _run(module, m, x, upstream):
    """Output, input gradient (floats only), parameter gradients and buffers after one forward/backward."""
    leaf = m.tensor(x, requires_grad=x.dtype.kind == "f")
    out = module(leaf)
    (out * m.tensor(upstream)).sum().backward()
    grads = {n: p.grad.numpy() for n, p in module.named_parameters()}
    buffers = {n: b.numpy() for n, b in module.named_buffers()}
    return out.detach().numpy(), (leaf.grad.numpy() if leaf.requires_grad else None), grads, buffers


@pytest.fixture(params=list(MODULE_CASES))
def module_runs(request, torch):
    """(engine run, torch run) of one module case on the same input and upstream gradient."""
    name, args, kwargs, x = MODULE_CASES[request.param]
    torch_module, engine_module = _twins(torch, name, args, kwargs)
    with torch.no_grad():
        upstream = randn(*torch_module(torch.from_numpy(x)).shape, dtype=np.float32)
    torch_module, engine_module = _twins(torch, name, args, kwargs)  # fresh: forward may change buffers
    return _run(engine_module, engine, x, upstream), _run(torch_module, torch, x, upstream)


def _close(actual, expected, what):
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5, err_msg=what)


@pytest.mark.parity
def test_module_forward_matches_torch(module_runs):
    (e_out, *_), (t_out, *_) = module_runs
    assert e_out.dtype == t_out.dtype and e_out.shape == t_out.shape
    _close(e_out, t_out, "output")


@pytest.mark.parity
def test_module_input_gradient_matches_torch(module_runs):
    (_, e_grad, *_), (_, t_grad, *_) = module_runs
    if t_grad is not None:
        _close(e_grad, t_grad, "input gradient")


@pytest.mark.parity
def test_module_parameter_gradients_match_torch(module_runs):
    (*_, e_grads, _), (*_, t_grads, _) = module_runs
    assert list(e_grads) == list(t_grads)
    for name in t_grads:
        _close(e_grads[name], t_grads[name], name)


@pytest.mark.parity
def test_module_buffers_after_a_step_match_torch(module_runs):
    (*_, e_buffers), (*_, t_buffers) = module_runs
    assert list(e_buffers) == list(t_buffers)
    for name in t_buffers:
        assert e_buffers[name].dtype == t_buffers[name].dtype, name
        _close(e_buffers[name], t_buffers[name], name)


@pytest.mark.parity
@pytest.mark.parametrize("name, kwargs, shape", [
    ("BatchNorm1d", {}, (8, 3)), ("BatchNorm1d", {"momentum": None}, (4, 3, 6)),
    ("BatchNorm2d", {"momentum": 0.3}, (4, 3, 5, 5)),
])
def test_batchnorm_running_stats_and_eval_output_match_torch_after_training(torch, name, kwargs, shape):
    torch_module, engine_module = _twins(torch, name, (3,), kwargs)
    for _ in range(5):
        x = _floats(*shape) * 3
        engine_module(engine.tensor(x))
        torch_module(torch.from_numpy(x))
    for key, value in torch_module.state_dict().items():
        _close(engine_module.state_dict()[key].numpy(), value.numpy(), key)
    x = _floats(*shape)
    with torch.no_grad():
        expected = torch_module.eval()(torch.from_numpy(x)).numpy()
    _close(engine_module.eval()(engine.tensor(x)).detach().numpy(), expected, "eval output")


def _zoo(m):
    """One model holding every module of this suite, built from module namespace m (engine or torch)."""
    n = m.nn
    return n.Sequential(OrderedDict([
        ("bn1", n.BatchNorm1d(3)), ("bn2", n.BatchNorm2d(4, affine=False)),
        ("bn3", n.BatchNorm1d(2, momentum=None, track_running_stats=False)), ("bn4", n.BatchNorm2d(2, bias=False)),
        ("ln1", n.LayerNorm(4)), ("ln2", n.LayerNorm((2, 3), elementwise_affine=False)),
        ("ln3", n.LayerNorm(5, eps=1e-6, bias=False)), ("drop", n.Dropout()), ("drop2", n.Dropout(0.2, inplace=True)),
        ("emb", n.Embedding(10, 3)),
        ("emb2", n.Embedding(10, 3, padding_idx=0, max_norm=1.0, norm_type=1.0, scale_grad_by_freq=True)),
        ("flat", n.Flatten()), ("flat2", n.Flatten(0, 2)), ("unflat", n.Unflatten(1, (2, 5))),
        ("unflat2", n.Unflatten(-1, m.Size([2, 5]))), ("relu", n.ReLU()), ("relu2", n.ReLU(True)),
        ("leaky", n.LeakyReLU()), ("leaky2", n.LeakyReLU(0.2, True)), ("gelu", n.GELU()), ("gelu2", n.GELU("tanh")),
        ("silu", n.SiLU()), ("silu2", n.SiLU(True)), ("tanh", n.Tanh()), ("sigmoid", n.Sigmoid()),
        ("softmax", n.Softmax(dim=1)), ("softmax2", n.Softmax()), ("logsoftmax", n.LogSoftmax(-1)),
        ("list", n.ModuleList([n.Linear(2, 2), n.Linear(2, 2), n.Tanh()])), ("empty_list", n.ModuleList()),
        ("dict", n.ModuleDict({"b": n.Linear(1, 1), "a": n.Tanh()})), ("empty_dict", n.ModuleDict()),
    ]))


@pytest.mark.parity
def test_state_dict_keys_match_torch(torch):
    assert list(_zoo(engine).state_dict()) == list(_zoo(torch).state_dict())


@pytest.mark.parity
def test_reprs_match_torch(torch):
    assert repr(_zoo(engine)) == repr(_zoo(torch)).replace("torch.", "engine.")
