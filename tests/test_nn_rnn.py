"""LSTM, GRU, RNN and their cells against PyTorch: outputs and states, gradients through time, options, checks."""

import numpy as np
import pytest
from gradcheck import gradcheck
from torch_twins import assert_close, engine_saved_bytes, to_engine, torch_saved_bytes, twins

import engine

torch = pytest.importorskip("torch", reason="parity tests need PyTorch (pip install '.[parity]')")
pytestmark = pytest.mark.parity

I, H, T, N = 5, 6, 4, 3
rng = np.random.default_rng(11)
KINDS = {"LSTM": {}, "GRU": {}, "RNN_tanh": {}, "RNN_relu": {"nonlinearity": "relu"}}


def _net(kind: str, dtype: str = "float32", **options):
    cls = kind.split("_")[0]
    return twins(lambda lib: getattr(lib.nn, cls)(I, H, **KINDS[kind], **options), dtype=dtype)


def _inputs(kind, batch_first, layers, directions, dtype=np.float64):
    x = rng.standard_normal((N, T, I) if batch_first else (T, N, I)).astype(dtype)
    states = [rng.standard_normal((layers * directions, N, H)).astype(dtype) for _ in range(2 if kind == "LSTM" else 1)]
    return x, states


def _forward(lib, module, kind, x, states):
    """(output, h_n[, c_n]) as a flat list."""
    if not states:
        out, hidden = module(x)
    else:
        out, hidden = module(x, tuple(states) if kind == "LSTM" else states[0])
    return [out, *(hidden if kind == "LSTM" else (hidden,))]


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("batch_first", [False, True], ids=["seq_first", "batch_first"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["one_way", "bidirectional"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
def test_two_layers_forward_and_gradients_match_pytorch_in_float64(kind, batch_first, bidirectional, bias):
    ref, model = _net(kind, "float64", num_layers=2, batch_first=batch_first, bidirectional=bidirectional, bias=bias)
    x, states = _inputs(kind, batch_first, 2, 2 if bidirectional else 1)
    results = {}
    for lib, module in ((torch, ref), (engine, model)):
        leaves = [lib.tensor(a, requires_grad=True) for a in (x, *states)]
        outs = _forward(lib, module, kind, leaves[0], leaves[1:])
        upstream = np.random.default_rng(0)
        sum(((o * lib.tensor(upstream.standard_normal(tuple(o.shape)))).sum() for o in outs), lib.tensor(0.0,
            dtype=lib.float64)).backward()
        results[lib.__name__] = (outs, [v.grad for v in leaves], [p.grad for p in module.parameters()])
    for ours, theirs in zip(*[[t for group in results[name] for t in group] for name in ("engine", "torch")]):
        assert_close(ours, theirs, atol=1e-12, rtol=1e-9)


@pytest.mark.parametrize("kind", list(KINDS))
def test_float32_eval_forward_matches_pytorch(kind):
    ref, model = _net(kind, num_layers=2, bidirectional=True, batch_first=True)
    x, _ = _inputs(kind, True, 2, 2, np.float32)
    with torch.no_grad():
        expected = _forward(torch, ref.eval(), kind, torch.tensor(x), [])
    with engine.no_grad():
        got = _forward(engine, model.eval(), kind, engine.tensor(x), [])
    for ours, theirs in zip(got, expected):
        assert_close(ours, theirs, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("kind", list(KINDS))
def test_unbatched_input_and_state_match_pytorch(kind):
    ref, model = _net(kind, num_layers=2)
    x, states = _inputs(kind, False, 2, 1, np.float32)
    x, states = x[:, 0], [s[:, 0] for s in states]
    expected = _forward(torch, ref, kind, torch.tensor(x), [torch.tensor(s) for s in states])
    got = _forward(engine, model, kind, engine.tensor(x), [engine.tensor(s) for s in states])
    for ours, theirs in zip(got, expected):
        assert_close(ours, theirs, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("kind", list(KINDS))
def test_key_names_and_repr_match_pytorch(kind):
    ref, model = _net(kind, num_layers=2, bidirectional=True, batch_first=True, dropout=0.5)
    assert list(model.state_dict()) == list(ref.state_dict())
    assert repr(model) == repr(ref)


def test_dropout_between_layers_is_off_in_eval():
    ref, model = _net("LSTM", num_layers=2, dropout=0.5)
    x, _ = _inputs("LSTM", False, 2, 1, np.float32)
    with torch.no_grad():
        expected = ref.eval()(torch.tensor(x))[0]
    assert_close(model.eval()(engine.tensor(x))[0], expected, atol=1e-6)


def test_dropout_of_one_cuts_the_layers_apart_in_training_as_in_pytorch():
    ref, model = _net("GRU", "float64", num_layers=2, dropout=1.0)
    x, _ = _inputs("GRU", False, 2, 1)
    tx, ex = torch.tensor(x, requires_grad=True), engine.tensor(x, requires_grad=True)
    expected, got = ref.train()(tx)[0], model.train()(ex)[0]
    assert_close(got, expected, atol=1e-12)
    expected.sum().backward()
    got.sum().backward()
    np.testing.assert_array_equal(ex.grad.numpy(), 0.0)
    assert_close(model.weight_hh_l1.grad, ref.weight_hh_l1.grad, atol=1e-12)


def test_gradient_with_dropout_matches_finite_differences():
    model = engine.nn.LSTM(I, H, num_layers=2, dropout=0.5, bidirectional=True).double().train()
    x, _ = _inputs("LSTM", False, 2, 2)

    def run(x):
        engine.manual_seed(0)  # the same dropout masks at every call
        return model(x)[0]
    gradcheck(run, x)


def test_dropout_with_one_layer_warns_as_pytorch_does():
    with pytest.warns(UserWarning, match="non-zero dropout expects num_layers greater than 1"):
        engine.nn.GRU(I, H, dropout=0.2)


def test_no_grad_records_nothing_and_keeps_nothing():
    model = engine.nn.LSTM(I, H, num_layers=2, bidirectional=True)
    x = engine.tensor(_inputs("LSTM", False, 2, 2, np.float32)[0])
    with engine.no_grad():
        saved, (out, (h, c)) = engine_saved_bytes(lambda: model(x))
    assert saved == 0 and out.grad_fn is None and h.grad_fn is None


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN_tanh"])
def test_keeps_no_more_for_backward_than_pytorch(kind):
    ref, model = _net(kind, num_layers=2, bidirectional=True)
    x, _ = _inputs(kind, False, 2, 2, np.float32)
    tx, ex = torch.tensor(x), engine.tensor(x)
    theirs = torch_saved_bytes(lambda: ref(tx))
    ours, _ = engine_saved_bytes(lambda: model(ex))
    assert 0 < ours <= theirs


def test_wrong_input_size_is_an_error():
    with pytest.raises(RuntimeError, match="input.size\\(-1\\) must be equal to input_size. Expected 5, got 4"):
        engine.nn.LSTM(I, H)(engine.ones(T, N, 4))


def test_wrong_hidden_size_is_an_error():
    with pytest.raises(RuntimeError, match="Expected hidden size \\(1, 3, 6\\), got \\[1, 3, 5\\]"):
        engine.nn.GRU(I, H)(engine.ones(T, N, I), engine.ones(1, N, 5))


def test_input_dtype_must_match_the_weights():
    with pytest.raises(ValueError, match="does not match weight dtype"):
        engine.nn.RNN(I, H)(engine.ones(T, N, I, dtype=engine.float64))


def test_proj_size_says_it_is_unsupported():
    with pytest.raises(NotImplementedError, match="proj_size"):
        engine.nn.LSTM(I, H, proj_size=2)


def test_unknown_nonlinearity_is_an_error():
    with pytest.raises(ValueError, match="Unknown nonlinearity 'sigmoid'"):
        engine.nn.RNN(I, H, nonlinearity="sigmoid")


# -- cells ---------------------------------------------------------------------------------------
CELLS = {"LSTMCell": {}, "GRUCell": {}, "RNNCell": {}, "RNNCell_relu": {"nonlinearity": "relu"}}


def _cell(kind, dtype="float32", **options):
    return twins(lambda lib: getattr(lib.nn, kind.split("_")[0])(I, H, **CELLS[kind], **options), dtype=dtype)


@pytest.mark.parametrize("kind", list(CELLS))
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
def test_cell_step_and_gradients_match_pytorch_in_float64(kind, bias):
    ref, model = _cell(kind, "float64", bias=bias)
    x, h, c = (rng.standard_normal(shape) for shape in ((N, I), (N, H), (N, H)))
    grads = {}
    for lib, module in ((torch, ref), (engine, model)):
        leaves = [lib.tensor(a, requires_grad=True) for a in (x, h, c)]
        out = module(leaves[0], tuple(leaves[1:]) if kind == "LSTMCell" else leaves[1])
        outs = out if kind == "LSTMCell" else (out,)
        sum((o * (k + 2)).sum() for k, o in enumerate(outs)).backward()
        grads[lib.__name__] = [*outs, leaves[0].grad, leaves[1].grad, *[p.grad for p in module.parameters()]]
    for ours, theirs in zip(grads["engine"], grads["torch"]):
        assert_close(ours, theirs, atol=1e-12, rtol=1e-9)


@pytest.mark.parametrize("kind", list(CELLS))
def test_unbatched_cell_without_state_matches_pytorch(kind):
    ref, model = _cell(kind)
    x = rng.standard_normal(I).astype(np.float32)
    with torch.no_grad():
        expected = ref(torch.tensor(x))
    got = model(engine.tensor(x))
    for ours, theirs in zip(*[out if kind == "LSTMCell" else (out,) for out in (got, expected)]):
        assert_close(ours, theirs, atol=1e-6)


@pytest.mark.parametrize("kind", list(CELLS))
def test_cell_key_names_and_repr_match_pytorch(kind):
    ref, model = _cell(kind, bias=False)
    assert list(model.state_dict()) == list(ref.state_dict())
    assert repr(model) == repr(ref)


def test_cell_refuses_the_wrong_input_size():
    with pytest.raises(RuntimeError, match="input has inconsistent input_size: got 4 expected 5"):
        engine.nn.GRUCell(I, H)(engine.ones(N, 4))


def test_parameters_are_initialised_uniform_within_one_over_sqrt_hidden():
    model = engine.nn.LSTM(I, 16)
    bound = 1 / np.sqrt(16)
    for p in model.parameters():
        assert np.abs(p.detach().numpy()).max() <= bound and p.detach().numpy().std() > bound / 4


def test_state_dict_round_trips_through_to_engine():
    ref, model = _net("LSTM", num_layers=2, bidirectional=True)
    for (name, ours), (_, theirs) in zip(model.state_dict().items(), ref.state_dict().items()):
        np.testing.assert_array_equal(ours.numpy(), to_engine(theirs).numpy()), name
