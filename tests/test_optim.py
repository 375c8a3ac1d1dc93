"""engine.optim: SGD, Adam and AdamW against PyTorch step by step, plus their contract on their own."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest

import engine
from engine import nn
from engine.optim import SGD, Adam, AdamW, Optimizer
from engine.optim.lr_scheduler import CosineAnnealingLR, StepLR

STEPS = 20
# Parameters are compared relative to their scale: PyTorch's CPU kernels fuse multiply-adds and its matmuls
# sum in another order, so the two drift apart by a few float32 ulps over 20 steps.
RTOL, ATOL = 1e-6, 1e-7


def _torch():
    return pytest.importorskip("torch", reason="parity tests need PyTorch (pip install '.[parity]')")


def _data(seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """One (x, y) batch per step, float32."""
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((16, 4)).astype(np.float32), rng.standard_normal((16, 3)).astype(np.float32))
            for _ in range(STEPS)]


def _engine_model() -> nn.Module:
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))


def _twin_models(torch):
    """A torch model and an engine model with the same architecture and weights."""
    torch.manual_seed(0)
    tm = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    em = _engine_model()
    _copy_weights([p.detach().numpy() for p in tm.parameters()], em)
    return tm, em


def _copy_weights(arrays: list[np.ndarray], model: nn.Module) -> None:
    with engine.no_grad():
        for p, a in zip(model.parameters(), arrays, strict=True):
            p.copy_(engine.tensor(a))


def _loss(model, x, y, lib):
    return ((model(lib.tensor(x)) - lib.tensor(y)) ** 2).mean()


def _groups(model, split: bool, first_lr: float = 0.05):
    """All parameters in one group, or the first layer's in a group of its own with another lr."""
    params = list(model.parameters())
    return [{"params": params[:2], "lr": first_lr}, {"params": params[2:]}] if split else params


def _run_parity(torch, engine_cls, torch_cls, split_groups: bool = False, **options) -> None:
    tm, em = _twin_models(torch)
    t_opt = torch_cls(_groups(tm, split_groups), foreach=False, **options)
    e_opt = engine_cls(_groups(em, split_groups), **options)
    for step, (x, y) in enumerate(_data()):
        for opt, model, lib in ((t_opt, tm, torch), (e_opt, em, engine)):
            opt.zero_grad()
            _loss(model, x, y, lib).backward()
            opt.step()
        for (name, tp), ep in zip(tm.named_parameters(), em.parameters()):
            expected = tp.detach().numpy()
            np.testing.assert_allclose(ep.detach().numpy(), expected, rtol=RTOL, atol=ATOL,
                                       err_msg=f"{name} after step {step + 1}")


SGD_OPTIONS = [
    dict(momentum=m, dampening=d, nesterov=n, weight_decay=wd, maximize=mx)
    for m, d, n, wd, mx in itertools.product([0, 0.9], [0, 0.5], [False, True], [0, 0.01], [False, True])
    if not (n and (m == 0 or d != 0))
]
ADAM_OPTIONS = [
    dict(weight_decay=wd, amsgrad=a, maximize=mx)
    for wd, a, mx in itertools.product([0, 0.05], [False, True], [False, True])
]


def _ids(options: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in options.items())


# -- parity with PyTorch -----------------------------------------------------------------------------------
@pytest.mark.parity
@pytest.mark.parametrize("options", SGD_OPTIONS, ids=_ids)
def test_sgd_matches_torch_every_step(options):
    torch = _torch()
    _run_parity(torch, SGD, torch.optim.SGD, lr=0.02, **options)


@pytest.mark.parity
@pytest.mark.parametrize("options", ADAM_OPTIONS, ids=_ids)
def test_adam_matches_torch_every_step(options):
    torch = _torch()
    _run_parity(torch, Adam, torch.optim.Adam, lr=0.01, **options)


@pytest.mark.parity
@pytest.mark.parametrize("options", ADAM_OPTIONS, ids=_ids)
def test_adamw_matches_torch_every_step(options):
    torch = _torch()
    _run_parity(torch, AdamW, torch.optim.AdamW, lr=0.01, **options)


@pytest.mark.parity
def test_adam_with_other_betas_and_eps_matches_torch():
    torch = _torch()
    _run_parity(torch, Adam, torch.optim.Adam, lr=0.02, betas=(0.6, 0.9), eps=1e-3)


@pytest.mark.parity
@pytest.mark.parametrize("name,options", [
    ("SGD", dict(lr=0.02, momentum=0.9, weight_decay=0.01)),
    ("Adam", dict(lr=0.01, amsgrad=True)),
    ("AdamW", dict(lr=0.01)),
])
def test_param_groups_with_their_own_lr_match_torch(name, options):
    torch = _torch()
    _run_parity(torch, getattr(engine.optim, name), getattr(torch.optim, name), split_groups=True, **options)


@pytest.mark.parity
@pytest.mark.parametrize("name,kwargs", [
    ("SGD", dict(lr=-0.1)),
    ("SGD", dict(momentum=-0.5)),
    ("SGD", dict(weight_decay=-1.0)),
    ("SGD", dict(nesterov=True)),
    ("SGD", dict(momentum=0.9, dampening=0.1, nesterov=True)),
    ("Adam", dict(lr=-0.1)),
    ("Adam", dict(eps=-1e-8)),
    ("Adam", dict(betas=(1.0, 0.999))),
    ("Adam", dict(betas=(0.9, -0.1))),
    ("Adam", dict(weight_decay=-0.1)),
    ("AdamW", dict(betas=(0.9, 1.5))),
])
def test_bad_arguments_raise_torchs_error(name, kwargs):
    torch = _torch()
    with pytest.raises(ValueError) as expected:
        getattr(torch.optim, name)([torch.nn.Parameter(torch.ones(2))], **kwargs)
    with pytest.raises(ValueError, match=f"^{re.escape(str(expected.value))}$"):
        getattr(engine.optim, name)([nn.Parameter(engine.ones(2))], **kwargs)


@pytest.mark.parity
@pytest.mark.parametrize("name,kwargs", [
    ("StepLR", dict(step_size=3, gamma=0.5)),
    ("CosineAnnealingLR", dict(T_max=7, eta_min=0.001)),
])
def test_lr_schedulers_match_torch(name, kwargs):
    torch = _torch()
    t_opt = torch.optim.SGD([torch.nn.Parameter(torch.ones(2))], lr=0.1)
    e_opt = SGD([nn.Parameter(engine.ones(2))], lr=0.1)
    t_sched = getattr(torch.optim.lr_scheduler, name)(t_opt, **kwargs)
    e_sched = getattr(engine.optim.lr_scheduler, name)(e_opt, **kwargs)
    for _ in range(25):
        t_opt.step()
        e_opt.step()
        t_sched.step()
        e_sched.step()
        assert e_sched.get_last_lr() == pytest.approx(t_sched.get_last_lr(), rel=1e-12)
        assert e_opt.param_groups[0]["lr"] == pytest.approx(t_opt.param_groups[0]["lr"], rel=1e-12)


# -- on their own ------------------------------------------------------------------------------------------
OPTIMIZERS = {
    "sgd": lambda params: SGD(params, lr=0.1),
    "sgd_momentum": lambda params: SGD(params, lr=0.05, momentum=0.9),
    "sgd_nesterov": lambda params: SGD(params, lr=0.05, momentum=0.9, nesterov=True),
    "adam": lambda params: Adam(params, lr=0.1),
    "adam_amsgrad": lambda params: Adam(params, lr=0.1, amsgrad=True),
    "adamw": lambda params: AdamW(params, lr=0.1, weight_decay=0.0),
}
STATEFUL = {  # each keeps per-parameter state that a resume must carry over
    "sgd_momentum": lambda params: SGD(params, lr=0.02, momentum=0.9, dampening=0.1, weight_decay=0.01),
    "adam_amsgrad": lambda params: Adam(params, lr=0.01, amsgrad=True, weight_decay=0.01),
    "adamw": lambda params: AdamW(params, lr=0.01),
}


def _param(values) -> nn.Parameter:
    return nn.Parameter(engine.tensor(values, dtype=engine.float32))


def _train(model, opt, batches) -> None:
    for x, y in batches:
        opt.zero_grad()
        _loss(model, x, y, engine).backward()
        opt.step()


def _params_of(model) -> list[np.ndarray]:
    return [p.detach().numpy().copy() for p in model.parameters()]


@pytest.mark.parametrize("make", OPTIMIZERS.values(), ids=OPTIMIZERS.keys())
def test_minimises_a_quadratic(make):
    target = np.array([1.0, -2.0, 0.5], np.float32)
    w = _param([0.0, 0.0, 0.0])
    opt = make([w])
    for _ in range(300):
        opt.zero_grad()
        ((w - engine.tensor(target)) ** 2).sum().backward()
        opt.step()
    np.testing.assert_allclose(w.detach().numpy(), target, atol=1e-2)


def test_maximize_climbs_instead():
    w = _param([0.0])
    opt = SGD([w], lr=0.1, maximize=True)
    (w * 3.0).sum().backward()
    opt.step()
    assert w.item() == pytest.approx(0.3)


def test_step_updates_the_parameter_in_place_and_bumps_its_version():
    w = _param([1.0, 2.0])
    storage, version = w._data, w._version[0]
    w.grad = engine.tensor([0.5, 0.5])
    SGD([w], lr=0.1).step()
    assert w._data is storage
    assert w._version[0] > version
    np.testing.assert_allclose(w.detach().numpy(), [0.95, 1.95])


def test_step_leaves_the_parameter_a_leaf_without_history():
    w = _param([1.0, 2.0])
    (w * w).sum().backward()
    Adam([w]).step()
    assert w.is_leaf and w.grad_fn is None and w.requires_grad


def test_step_leaves_the_gradient_untouched():
    w = _param([1.0, 2.0])
    w.grad = engine.tensor([0.5, -0.5])
    SGD([w], lr=0.1, momentum=0.9, weight_decay=0.1, maximize=True).step()
    np.testing.assert_array_equal(w.grad.numpy(), [0.5, -0.5])


@pytest.mark.parametrize("make", OPTIMIZERS.values(), ids=OPTIMIZERS.keys())
def test_parameters_without_grad_are_skipped(make):
    used, unused = _param([1.0]), _param([1.0])
    opt = make([used, unused])
    used.grad = engine.tensor([1.0])
    opt.step()
    assert unused.item() == 1.0 and used.item() != 1.0
    assert unused not in opt.state


def test_float32_state_stays_float32():
    w = _param([1.0, 2.0])
    opt = Adam([w], amsgrad=True)
    w.grad = engine.tensor([0.5, 0.5])
    opt.step()
    state = opt.state[w]
    assert w.dtype is engine.float32
    assert all(state[k].dtype is engine.float32 for k in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"))
    assert state["step"].dtype is engine.float32 and state["step"].dim() == 0 and state["step"].item() == 1.0


def test_float64_parameters_get_float64_state():
    w = nn.Parameter(engine.tensor([1.0, 2.0], dtype=engine.float64))
    opt = SGD([w], lr=0.1, momentum=0.9)
    w.grad = engine.tensor([0.5, 0.5], dtype=engine.float64)
    opt.step()
    assert w.dtype is engine.float64 and opt.state[w]["momentum_buffer"].dtype is engine.float64


def test_step_runs_the_closure_with_grad_enabled_and_returns_its_loss():
    w = _param([3.0])
    opt = SGD([w], lr=0.1)

    def closure():
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss

    with engine.no_grad():
        loss = opt.step(closure)
    assert loss.item() == 9.0
    assert w.item() == pytest.approx(3.0 - 0.1 * 6.0)


def test_zero_grad_sets_gradients_to_none_by_default():
    w = _param([1.0])
    w.grad = engine.tensor([2.0])
    SGD([w]).zero_grad()
    assert w.grad is None


def test_zero_grad_without_set_to_none_zeroes_the_same_gradient_tensor():
    w = _param([1.0, 2.0])
    (w * w).sum().backward()
    grad = w.grad
    SGD([w]).zero_grad(set_to_none=False)
    assert w.grad is grad
    np.testing.assert_array_equal(grad.numpy(), [0.0, 0.0])


def test_param_groups_take_defaults_for_options_they_leave_out():
    a, b = _param([1.0]), _param([1.0])
    opt = SGD([{"params": [a], "lr": 0.5}, {"params": [b]}], lr=0.1, momentum=0.9)
    assert [g["lr"] for g in opt.param_groups] == [0.5, 0.1]
    assert [g["momentum"] for g in opt.param_groups] == [0.9, 0.9]


def test_add_param_group_appends_a_group_with_defaults():
    a, b = _param([1.0]), _param([1.0])
    opt = Adam([a], lr=0.01)
    opt.add_param_group({"params": b, "lr": 0.5})
    assert opt.param_groups[1]["params"][0] is b
    assert opt.param_groups[1]["lr"] == 0.5 and opt.param_groups[1]["betas"] == (0.9, 0.999)


def test_state_dict_has_pytorchs_layout():
    a, b, c = _param([1.0]), _param([1.0]), _param([1.0])
    opt = Adam([{"params": [a, b]}, {"params": [c], "lr": 0.5}])
    for p in (a, c):
        p.grad = engine.tensor([1.0])
    opt.step()
    sd = opt.state_dict()
    assert [g["params"] for g in sd["param_groups"]] == [[0, 1], [2]]
    assert sd["param_groups"][1]["lr"] == 0.5
    assert sorted(sd["state"]) == [0, 2]
    assert sorted(sd["state"][0]) == ["exp_avg", "exp_avg_sq", "step"]


@pytest.mark.parametrize("make", STATEFUL.values(), ids=STATEFUL.keys())
def test_state_dict_round_trip_resumes_identically(make):
    batches = _data(seed=1)
    engine.manual_seed(0)
    straight = _engine_model()
    start = _params_of(straight)
    _train(straight, make(straight.parameters()), batches)

    first = _engine_model()
    _copy_weights(start, first)
    first_opt = make(first.parameters())
    _train(first, first_opt, batches[:7])
    resumed = _engine_model()
    _copy_weights(_params_of(first), resumed)
    resumed_opt = make(resumed.parameters())
    resumed_opt.load_state_dict(first_opt.state_dict())
    _train(resumed, resumed_opt, batches[7:])

    for a, b in zip(_params_of(straight), _params_of(resumed)):
        np.testing.assert_array_equal(a, b)


def test_load_state_dict_copies_so_the_source_can_keep_going():
    a, b = _param([1.0]), _param([1.0])
    source, target = SGD([a], lr=0.1, momentum=0.9), SGD([b], lr=0.1, momentum=0.9)
    a.grad = engine.tensor([1.0])
    source.step()
    target.load_state_dict(source.state_dict())
    source.step()
    assert target.state[b]["momentum_buffer"].item() == 1.0


def test_load_state_dict_restores_group_options():
    a, b = _param([1.0]), _param([1.0])
    source, target = Adam([a], lr=0.5, betas=(0.8, 0.99)), Adam([b])
    target.load_state_dict(source.state_dict())
    assert target.param_groups[0]["lr"] == 0.5 and target.param_groups[0]["betas"] == (0.8, 0.99)
    assert target.param_groups[0]["params"][0] is b


def test_load_state_dict_accepts_a_plain_step_count():
    a, b = _param([1.0]), _param([1.0])
    source, target = Adam([a]), Adam([b])
    a.grad = b.grad = engine.tensor([1.0])
    source.step()
    sd = source.state_dict()
    sd["state"][0]["step"] = 1
    target.load_state_dict(sd)
    target.step()
    assert target.state[b]["step"].item() == 2.0


def test_adamw_keeps_decoupled_weight_decay_after_loading_an_adam_state_dict():
    a, b = _param([1.0]), _param([1.0])
    target = AdamW([b])
    target.load_state_dict(Adam([a]).state_dict())
    assert target.param_groups[0]["decoupled_weight_decay"] is True


def test_load_state_dict_rejects_a_different_number_of_groups():
    a, b = _param([1.0]), _param([1.0])
    with pytest.raises(ValueError, match="different number of parameter groups"):
        SGD([a, b]).load_state_dict(SGD([{"params": [a]}, {"params": [b]}]).state_dict())


def test_load_state_dict_rejects_groups_of_another_size():
    a, b = _param([1.0]), _param([1.0])
    with pytest.raises(ValueError, match="doesn't match the size of optimizer's group"):
        SGD([a, b]).load_state_dict(SGD([a]).state_dict())


def test_an_empty_parameter_list_is_an_error():
    with pytest.raises(ValueError, match="optimizer got an empty parameter list"):
        SGD([])


def test_a_bare_tensor_for_params_is_an_error():
    with pytest.raises(TypeError, match="iterable of Tensors or dicts"):
        SGD(_param([1.0]))


def test_a_non_leaf_parameter_is_an_error():
    w = _param([1.0])
    with pytest.raises(ValueError, match="can't optimize a non-leaf Tensor"):
        SGD([w * 2])


def test_an_integer_parameter_is_an_error():
    with pytest.raises(ValueError, match="floating point Tensors.*int64"):
        SGD([engine.tensor([1, 2])])


def test_a_non_tensor_parameter_is_an_error():
    with pytest.raises(TypeError, match="can only optimize Tensors, but one of the params is list"):
        SGD([[1.0]])


def test_a_parameter_in_two_groups_is_an_error():
    w = _param([1.0])
    with pytest.raises(ValueError, match="some parameters appear in more than one parameter group"):
        SGD([{"params": [w]}, {"params": [w]}])


def test_a_set_of_parameters_is_an_error():
    with pytest.raises(TypeError, match="ordered collections"):
        SGD([{"params": {_param([1.0])}}])


@pytest.mark.parametrize("make,message", [
    (lambda p: SGD(p, lr=-0.1), "Invalid learning rate: -0.1"),
    (lambda p: SGD(p, momentum=-0.5), "Invalid momentum value: -0.5"),
    (lambda p: SGD(p, weight_decay=-1.0), "Invalid weight_decay value: -1.0"),
    (lambda p: SGD(p, nesterov=True), "Nesterov momentum requires a momentum and zero dampening"),
    (lambda p: Adam(p, lr=-0.1), "Invalid learning rate: -0.1"),
    (lambda p: Adam(p, eps=-1.0), "Invalid epsilon value: -1.0"),
    (lambda p: Adam(p, betas=(1.0, 0.999)), "Invalid beta parameter at index 0: 1.0"),
    (lambda p: AdamW(p, betas=(0.9, -0.1)), "Invalid beta parameter at index 1: -0.1"),
    (lambda p: AdamW(p, weight_decay=-0.1), "Invalid weight_decay value: -0.1"),
], ids=["sgd-lr", "momentum", "sgd-weight-decay", "nesterov", "adam-lr", "eps", "beta1", "beta2",
        "adamw-weight-decay"])
def test_bad_hyperparameters_are_errors(make, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        make([_param([1.0])])


def test_base_optimizer_step_is_abstract():
    with pytest.raises(NotImplementedError):
        Optimizer([_param([1.0])], {}).step()


def test_step_lr_decays_every_step_size_epochs():
    opt = SGD([_param([1.0])], lr=1.0)
    sched = StepLR(opt, step_size=2, gamma=0.5)
    lrs = []
    for _ in range(5):
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs == [1.0, 0.5, 0.5, 0.25, 0.25]


def test_cosine_annealing_reaches_eta_min_at_t_max():
    opt = SGD([_param([1.0])], lr=1.0)
    sched = CosineAnnealingLR(opt, T_max=10, eta_min=0.1)
    for _ in range(10):
        opt.step()
        sched.step()
    assert sched.get_last_lr() == [pytest.approx(0.1)]
