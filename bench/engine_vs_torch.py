"""Engine vs PyTorch on the CPU: MLP, ConvNet, ResNet-18, MobileNet, Transformer and LSTM throughput, an MLP
training step, per-op overhead, saved bytes.

Run from the repository root, with this machine's old-OpenBLAS overrides unset for this command only
(they pin a slower kernel for a current numpy; bench/README.md says more):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/engine_vs_torch.py [--threads N] [--quick]

Prints one JSON line on stdout, appends it to bench/results.jsonl, and writes one pass/fail line per
target on stderr. The machine is shared and noisy, so engine and torch take turns within every
repetition and the best of each is kept: the ratios are measured side by side in one run.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

try:
    import torch
    from threadpoolctl import threadpool_info, threadpool_limits
except ImportError as missing:
    sys.exit(f"bench/engine_vs_torch.py needs PyTorch and threadpoolctl as the reference ({missing}); "
             "pip install -e '.[parity]' threadpoolctl")

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the engine of this checkout
import engine  # noqa: E402
import zoo.models  # noqa: E402
from zoo.families import mobilenet_v3_small, resnet18  # noqa: E402

MLP_SIZES = (784, 1024, 1024, 10)
BATCHES = (64, 512, 4096)
SAVED_BYTES_BATCH = 512
TRAIN_BATCH = 512
TRAIN_LR = 1e-3
LOSS_STEPS = 2  # steps whose losses are compared: the first checks forward and loss, the second the Adam step too
RESULTS = Path(__file__).resolve().parent / "results.jsonl"
OPENBLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")

# The targets, one source of truth for the check and for the README's table: (figure, comparison, limit).
TARGETS = {
    "mlp_b512_throughput_vs_torch": (">=", 0.95),
    "mlp_b4096_throughput_vs_torch": (">=", 0.95),
    "mlp_b4096_fraction_of_blas_peak": (">=", 0.85),
    "add_no_grad_time_vs_torch": ("<=", 2.5),
    "add_grad_time_vs_torch": ("<=", 2.5),
    "saved_bytes_no_grad": ("==", 0),
    "mlp_outputs_agree": ("==", True),
    "zoo_convnet_b256_throughput_vs_torch": (">=", 0.5),
    "zoo_convnet_b4096_throughput_vs_torch": (">=", 0.5),
    "convnet_3x32x32_b256_throughput_vs_torch": (">=", 0.5),
    "conv_outputs_max_abs_diff": ("<=", 1e-4),
    "mlp_train_b512_throughput_vs_torch": (">=", 0.5),
    "mlp_train_loss_max_rel_diff": ("<=", 1e-5),
    "transformer_encoder_b16_throughput_vs_torch": (">=", 0.8),
    "lstm_bidirectional_b32_throughput_vs_torch": (">=", 0.8),
    "seq_outputs_max_abs_diff": ("<=", 1e-4),
    "seq_saved_bytes_no_grad": ("==", 0),
    "seq_saved_bytes_grad_vs_torch": ("<=", 1.0),
    # The convolution families (zoo/families.py), forward in eval under no_grad, and what a forward keeps for
    # backward: at most what PyTorch keeps with grad (each op keeps what its backward uses), nothing under no_grad.
    "resnet18_3x112x112_b16_throughput_vs_torch": (">=", 0.8),
    "resnet18_3x32x32_b64_throughput_vs_torch": (">=", 0.8),
    "mobilenet_v3_small_3x112x112_b32_throughput_vs_torch": (">=", 0.8),
    "conv_families_saved_bytes_vs_torch": ("<=", 1.0),
    "conv_families_saved_bytes_no_grad": ("==", 0),
}


def image_convnet(nn):
    """A small 3x32x32 ConvNet: two conv/ReLU/2x2-max-pool blocks, then one Linear to 10 logits."""
    return nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(64 * 8 * 8, 10))


# The ConvNets raced forward under no_grad: name -> (factory taking torch.nn or engine.nn, one row's shape, batches).
CONV_MODELS = {
    "zoo_convnet": (zoo.models.convnet, (1, 8, 8), (256, 4096)),
    "convnet_3x32x32": (image_convnet, (3, 32, 32), (256,)),
    "resnet18_3x112x112": (resnet18, (3, 112, 112), (16,)),
    "resnet18_3x32x32": (resnet18, (3, 32, 32), (64,)),
    "mobilenet_v3_small_3x112x112": (mobilenet_v3_small, (3, 112, 112), (32,)),
}
# The families whose saved-for-backward bytes are compared with PyTorch's: (factory, one row's shape), batch 2.
SAVED_BYTES_FAMILIES = {"resnet18": (resnet18, (3, 112, 112)),
                        "mobilenet_v3_small": (mobilenet_v3_small, (3, 112, 112))}
SAVED_BYTES_FAMILY_BATCH = 2


def transformer_encoder(nn):
    """A 4-layer Transformer encoder: d_model 256, 4 heads, feed-forward 1024, relu, post-norm, batch first."""
    return nn.TransformerEncoder(nn.TransformerEncoderLayer(256, 4, 1024, batch_first=True), 4)


def lstm_bidirectional(nn):
    """A 2-layer bidirectional LSTM, hidden 256, batch first; its forward returns the output sequence."""
    class LSTMEncoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(256, 256, num_layers=2, bidirectional=True, batch_first=True)

        def forward(self, x):
            return self.lstm(x)[0]
    return LSTMEncoder()


# The sequence models raced forward under no_grad: name -> (factory taking torch.nn or engine.nn, one row's shape
# (sequence length, features), batch).
SEQ_MODELS = {
    "transformer_encoder": (transformer_encoder, (128, 256), 16),
    "lstm_bidirectional": (lstm_bidirectional, (64, 256), 32),
}


@dataclass(frozen=True)
class Plan:
    """How much work each measurement does: the full figures, or a smoke run of a few seconds."""

    repeats: int  # turns each contender gets; the best is kept
    mlp_rows: int  # rows pushed through the MLP per turn, at every batch size (at least one call)
    add_iters: int  # tiny adds per turn
    peak_size: int  # side of the square matmul that measures the BLAS peak
    conv_rows: dict[str, int]  # rows per turn for each of CONV_MODELS, at every batch size (at least one call)
    train_steps: int  # MLP training steps per turn
    seq_calls: int = 2  # forward calls per turn for each of SEQ_MODELS


FULL = Plan(repeats=7, mlp_rows=16384, add_iters=100_000, peak_size=2048,
            conv_rows={"zoo_convnet": 8192, "convnet_3x32x32": 1024, "resnet18_3x112x112": 16, "resnet18_3x32x32": 128,
                       "mobilenet_v3_small_3x112x112": 64}, train_steps=4)
QUICK = Plan(repeats=1, mlp_rows=1, add_iters=2_000, peak_size=256, conv_rows=dict.fromkeys(CONV_MODELS, 1),
             train_steps=1, seq_calls=1)


# -- timing -----------------------------------------------------------------------------------
def race(contenders: dict[str, Callable[[int], object]], number: int, repeats: int) -> dict[str, float]:
    """Best seconds per iteration of each contender; all take turns in every repeat, first place rotating.

    A contender is `run(n)`, which does n iterations itself, so no per-iteration call is timed.
    """
    best = dict.fromkeys(contenders, math.inf)
    names = list(contenders)
    for r in range(repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:
            start = time.perf_counter()
            contenders[name](number)
            best[name] = min(best[name], (time.perf_counter() - start) / number)
    return best


def looped(fn: Callable[[], object], mode: Callable[[], contextlib.AbstractContextManager]) -> Callable[[int], None]:
    """run(n): call fn n times inside one `mode()` context."""
    def run(n: int) -> None:
        with mode():
            for _ in range(n):
                fn()
    return run


# -- the figures --------------------------------------------------------------------------------
def blas_peak(plan: Plan) -> dict:
    """GFLOP/s of a square float32 matmul in numpy (the peak the engine can reach) and in torch."""
    n = plan.peak_size
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((n, n), dtype=np.float32), rng.standard_normal((n, n), dtype=np.float32)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    best = race({"numpy": looped(lambda: a @ b, contextlib.nullcontext),
                 "torch": looped(lambda: ta @ tb, torch.no_grad)}, 1, max(plan.repeats, 3))
    flops = 2 * n ** 3
    return {"size": n, "numpy_gflops": flops / best["numpy"] / 1e9, "torch_gflops": flops / best["torch"] / 1e9}


def mlp(nn, sizes: tuple[int, ...]):
    """Linear/ReLU stack from `nn` (torch.nn or engine.nn: the same code builds both)."""
    layers = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes, sizes[1:])):
        layers += [nn.Linear(fan_in, fan_out)] + ([nn.ReLU()] if i < len(sizes) - 2 else [])
    return nn.Sequential(*layers).eval()


def twins(factory: Callable) -> tuple:
    """factory(torch.nn) with torch's seeded initialisation, and factory(engine.nn) holding copies of its weights."""
    torch.manual_seed(0)
    reference, model = factory(torch.nn), factory(engine.nn)
    model.load_state_dict({k: engine.from_numpy(v.detach().numpy()) for k, v in reference.state_dict().items()})
    return reference, model


def twin_mlps() -> tuple:
    """The torch MLP and an engine MLP holding copies of its weights."""
    return twins(lambda nn: mlp(nn, MLP_SIZES))


def mlp_flops(batch: int) -> int:
    return 2 * batch * sum(a * b for a, b in zip(MLP_SIZES, MLP_SIZES[1:]))


def mlp_throughput(plan: Plan, reference, model, peak_gflops: float) -> list[dict]:
    """Rows/s of both MLPs under no_grad at each batch size, on the same input buffer."""
    rows = []
    for batch in BATCHES:
        x = np.random.default_rng(batch).standard_normal((batch, MLP_SIZES[0]), dtype=np.float32)
        row = forward_race(reference, model, x, max(1, plan.mlp_rows // batch), plan.repeats)
        gflops = mlp_flops(batch) / (batch / row["engine_rows_per_s"]) / 1e9
        rows.append({**row, "engine_gflops": gflops, "engine_fraction_of_blas_peak": gflops / peak_gflops})
    return rows


def forward_race(reference, model, x: np.ndarray, calls: int, repeats: int) -> dict:
    """Rows/s of both models under no_grad on the same input buffer, and their outputs' largest difference."""
    tx, ex = torch.from_numpy(x), engine.from_numpy(x)
    with torch.no_grad(), engine.no_grad():
        diff = float(np.abs(reference(tx).numpy() - model(ex).numpy()).max())
    best = race({"torch": looped(lambda: reference(tx), torch.no_grad),
                 "engine": looped(lambda: model(ex), engine.no_grad)}, calls, repeats)
    batch = len(x)
    return {"batch": batch, "torch_rows_per_s": batch / best["torch"], "engine_rows_per_s": batch / best["engine"],
            "throughput_vs_torch": best["torch"] / best["engine"], "max_abs_diff": diff}


def conv_throughput(plan: Plan) -> list[dict]:
    """Rows/s of each of CONV_MODELS in eval mode under no_grad, torch vs engine with the same weights."""
    rows = []
    for name, (factory, shape, batches) in CONV_MODELS.items():
        reference, model = (m.eval() for m in twins(factory))
        for batch in batches:
            x = np.random.default_rng(batch).standard_normal((batch, *shape), dtype=np.float32)
            rows.append({"model": name, "input": list(shape),
                         **forward_race(reference, model, x, max(1, plan.conv_rows[name] // batch), plan.repeats)})
    return rows


def seq_throughput(plan: Plan) -> list[dict]:
    """Rows/s of each of SEQ_MODELS in eval mode under no_grad, torch vs engine with the same weights, and the
    bytes each keeps for backward with grad enabled (the weights require grad, the input does not)."""
    rows = []
    for name, (factory, shape, batch) in SEQ_MODELS.items():
        reference, model = (m.eval() for m in twins(factory))
        x = np.random.default_rng(batch).standard_normal((batch, *shape), dtype=np.float32)
        rows.append({"model": name, "input": list(shape), **forward_race(reference, model, x, plan.seq_calls,
                                                                          plan.repeats),
                     "saved_bytes": seq_saved_bytes(reference, model, x)})
    return rows


def seq_saved_bytes(reference, model, x: np.ndarray) -> dict:
    """One forward's bytes kept for backward: engine's gauge with grad and under no_grad, and torch's storages."""
    counted = {}
    for mode, grad in (("no_grad", False), ("grad", True)):
        before = engine.memory_stats()["saved_bytes.current"]
        engine.reset_peak_memory_stats()
        with engine.set_grad_enabled(grad):
            out = model(engine.from_numpy(x))
        counted[mode] = engine.memory_stats()["saved_bytes.peak"] - before
        del out
    theirs = _torch_saved_bytes(reference, torch.from_numpy(x))
    return {"engine_no_grad": counted["no_grad"], "engine_grad": counted["grad"], "torch_grad": theirs,
            "engine_grad_vs_torch": counted["grad"] / theirs}


def conv_saved_for_backward() -> list[dict]:
    """Bytes one forward of each SAVED_BYTES_FAMILIES model keeps for backward (distinct buffers, parameters
    included) in the engine and in PyTorch, in eval mode with grad enabled; and the engine's under no_grad."""
    rows = []
    for name, (factory, shape) in SAVED_BYTES_FAMILIES.items():
        reference, model = (m.eval() for m in twins(factory))
        x = np.random.default_rng(2).standard_normal((SAVED_BYTES_FAMILY_BATCH, *shape), dtype=np.float32)
        before = engine.memory_stats()["saved_bytes.current"]
        engine.reset_peak_memory_stats()
        with engine.no_grad():
            model(engine.from_numpy(x))
        no_grad = engine.memory_stats()["saved_bytes.peak"] - before
        out = model(engine.from_numpy(x))
        ours = sum(n for _, n in _engine_saved_buffers(out.grad_fn))
        del out  # frees the graph before the next model is measured
        theirs = _torch_saved_bytes(reference, torch.from_numpy(x))
        rows.append({"model": name, "input": list(shape), "batch": SAVED_BYTES_FAMILY_BATCH,
                     "engine_grad_distinct": ours, "torch_grad_distinct": theirs, "engine_vs_torch": ours / theirs,
                     "engine_no_grad": no_grad})
    return rows


def train_step(plan: Plan) -> dict:
    """Steps/s of the MLP's zero_grad + forward + CrossEntropyLoss + backward + Adam step, torch vs engine.

    Both start from the same weights and see the same batch every step; the first LOSS_STEPS losses are
    compared before the race (the second comes after one Adam update, so it checks backward and the step too).
    """
    reference, model = (m.train() for m in twin_mlps())
    rng = np.random.default_rng(TRAIN_BATCH)
    x = rng.standard_normal((TRAIN_BATCH, MLP_SIZES[0]), dtype=np.float32)
    y = rng.integers(0, MLP_SIZES[-1], TRAIN_BATCH)
    steps = {"torch": trainer(torch, reference, torch.from_numpy(x), torch.from_numpy(y)),
             "engine": trainer(engine, model, engine.from_numpy(x), engine.from_numpy(y))}
    losses = {name: [step().item() for _ in range(LOSS_STEPS)] for name, step in steps.items()}
    best = race({name: looped(step, contextlib.nullcontext) for name, step in steps.items()},
                plan.train_steps, plan.repeats)
    rel = max(abs(e - t) / abs(t) for t, e in zip(losses["torch"], losses["engine"]))
    return {"model": "mlp " + "-".join(map(str, MLP_SIZES)), "batch": TRAIN_BATCH, "optimizer": f"Adam(lr={TRAIN_LR})",
            "torch_steps_per_s": 1 / best["torch"], "engine_steps_per_s": 1 / best["engine"],
            "throughput_vs_torch": best["torch"] / best["engine"], "losses": losses, "loss_max_rel_diff": rel}


def trainer(lib, model, x, y) -> Callable[[], object]:
    """step(): one zero_grad, forward, cross-entropy loss, backward and Adam update of `model`; returns the loss.

    `lib` is torch or engine: the same code trains both.
    """
    loss_fn, optimizer = lib.nn.CrossEntropyLoss(), lib.optim.Adam(model.parameters(), lr=TRAIN_LR)

    def step():
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        return loss
    return step


def add_overhead(plan: Plan) -> dict:
    """Nanoseconds per 4-element float32 add: numpy, and torch vs engine under no_grad and with grad."""
    a = np.arange(4, dtype=np.float32)
    ta, ea = torch.from_numpy(a.copy()), engine.from_numpy(a.copy())
    tg, eg = ta.clone().requires_grad_(), ea.clone().requires_grad_()
    none = contextlib.nullcontext
    best = race({"numpy": looped(lambda: a + a, none),
                 "torch_no_grad": looped(lambda: ta + ta, torch.no_grad),
                 "engine_no_grad": looped(lambda: ea + ea, engine.no_grad),
                 "torch_grad": looped(lambda: tg + tg, none),
                 "engine_grad": looped(lambda: eg + eg, none)}, plan.add_iters, max(plan.repeats, 5))
    ns = {name: seconds * 1e9 for name, seconds in best.items()}
    result = {"iterations": plan.add_iters, "numpy_ns": ns["numpy"]}
    for mode in ("no_grad", "grad"):
        torch_ns, engine_ns = ns[f"torch_{mode}"], ns[f"engine_{mode}"]
        result[mode] = {"torch_ns": torch_ns, "engine_ns": engine_ns, "time_vs_torch": engine_ns / torch_ns}
    return result


def saved_for_backward(reference, model) -> dict:
    """Bytes the graph keeps for backward per MLP forward: engine's gauge with grad and under no_grad.

    For comparison, the distinct buffers those saved arrays occupy (the gauge counts an array once per
    node that saves it) split into parameters and activations, and what torch saves for the same pass.
    """
    x = np.random.default_rng(1).standard_normal((SAVED_BYTES_BATCH, MLP_SIZES[0]), dtype=np.float32)
    counted = {}
    for mode, grad in (("no_grad", False), ("grad", True)):
        before = engine.memory_stats()["saved_bytes.current"]
        engine.reset_peak_memory_stats()
        with engine.set_grad_enabled(grad):
            out = model(engine.from_numpy(x))
        counted[mode] = engine.memory_stats()["saved_bytes.peak"] - before
    params = {p._data.ctypes.data for p in model.parameters()}
    buffers = _engine_saved_buffers(out.grad_fn)  # `out` is the last pass's, made with grad
    param_bytes = sum(n for ptr, n in buffers if ptr in params)
    return {"batch": SAVED_BYTES_BATCH, "engine_no_grad": counted["no_grad"], "engine_grad": counted["grad"],
            "engine_grad_distinct": sum(n for _, n in buffers), "engine_grad_distinct_parameters": param_bytes,
            "torch_grad_distinct": _torch_saved_bytes(reference, torch.from_numpy(x))}


def _engine_saved_buffers(root) -> set[tuple[int, int]]:
    """(address, nbytes) of every distinct array the graph under `root` saved."""
    buffers, seen, stack = set(), set(), [root]
    while stack:
        fn = stack.pop()
        if fn is None or id(fn) in seen or not isinstance(fn, engine.autograd.function.Function):
            continue
        seen.add(id(fn))
        buffers |= {(a.ctypes.data, a.nbytes) for a in fn.saved or () if isinstance(a, np.ndarray)}
        stack.extend(fn.next_functions_)
    return buffers


def _torch_saved_bytes(reference, x) -> int:
    """Bytes of the distinct storages torch's autograd saves for one forward of `reference`."""
    storages = {}

    def pack(t):
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        reference(x)
    return sum(storages.values())


# -- verdicts and the record --------------------------------------------------------------------
def figures_for_targets(result: dict) -> dict:
    """The value each target in TARGETS is checked against."""
    by_batch = {row["batch"]: row for row in result["mlp"]}
    conv = {f"{row['model']}_b{row['batch']}_throughput_vs_torch": row["throughput_vs_torch"] for row in result["conv"]}
    return {
        "mlp_b512_throughput_vs_torch": by_batch[512]["throughput_vs_torch"],
        "mlp_b4096_throughput_vs_torch": by_batch[4096]["throughput_vs_torch"],
        "mlp_b4096_fraction_of_blas_peak": by_batch[4096]["engine_fraction_of_blas_peak"],
        "add_no_grad_time_vs_torch": result["add_4"]["no_grad"]["time_vs_torch"],
        "add_grad_time_vs_torch": result["add_4"]["grad"]["time_vs_torch"],
        "saved_bytes_no_grad": result["saved_for_backward"]["engine_no_grad"],
        "mlp_outputs_agree": all(row["max_abs_diff"] <= 1e-4 for row in result["mlp"]),
        **conv,
        "conv_outputs_max_abs_diff": max(row["max_abs_diff"] for row in result["conv"]),
        "mlp_train_b512_throughput_vs_torch": result["train"]["throughput_vs_torch"],
        "mlp_train_loss_max_rel_diff": result["train"]["loss_max_rel_diff"],
        **{f"{row['model']}_b{row['batch']}_throughput_vs_torch": row["throughput_vs_torch"] for row in result["seq"]},
        "seq_outputs_max_abs_diff": max(row["max_abs_diff"] for row in result["seq"]),
        "seq_saved_bytes_no_grad": max(row["saved_bytes"]["engine_no_grad"] for row in result["seq"]),
        "seq_saved_bytes_grad_vs_torch": max(row["saved_bytes"]["engine_grad_vs_torch"] for row in result["seq"]),
        "conv_families_saved_bytes_vs_torch": max(row["engine_vs_torch"] for row in result["conv_saved_for_backward"]),
        "conv_families_saved_bytes_no_grad": max(row["engine_no_grad"] for row in result["conv_saved_for_backward"]),
    }


def verdicts(result: dict) -> dict:
    """{target: {value, op, limit, pass}} for every target."""
    compare = {">=": lambda v, lim: v >= lim, "<=": lambda v, lim: v <= lim, "==": lambda v, lim: v == lim}
    figures = figures_for_targets(result)
    if figures.keys() != TARGETS.keys():  # a renamed model or batch must not drop a target silently
        raise KeyError(f"figures and TARGETS differ: {sorted(figures.keys() ^ TARGETS.keys())}")
    out = {}
    for name, value in figures.items():
        op, limit = TARGETS[name]
        out[name] = {"value": value, "op": op, "limit": limit, "pass": bool(compare[op](value, limit))}
    return out


def machine_info() -> dict:
    """CPU model, numpy's BLAS as threadpoolctl sees it, the OpenBLAS overrides in force, versions."""
    cpu = next((line.split(":", 1)[1].strip() for line in _read("/proc/cpuinfo").splitlines()
                if line.startswith("model name")), platform.processor())
    blas = [{k: info.get(k) for k in ("internal_api", "architecture", "version", "num_threads", "filepath")}
            for info in threadpool_info() if info.get("user_api") == "blas"]
    return {"cpu": cpu, "cpu_count": os.cpu_count(), "numpy_blas": blas,
            "openblas_env": {k: os.environ.get(k) for k in OPENBLAS_OVERRIDES},
            "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "versions": {"python": platform.python_version(), "numpy": np.__version__, "torch": torch.__version__,
                         "engine": engine.__version__}}


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def run(plan: Plan, threads: int) -> dict:
    """Every figure, measured in this process with `threads` threads for torch and for numpy's BLAS."""
    torch.set_num_threads(threads)
    threadpool_limits(threads)
    peak = blas_peak(plan)
    reference, model = twin_mlps()
    result = {"blas_peak": peak, "mlp": mlp_throughput(plan, reference, model, peak["numpy_gflops"]),
              "add_4": add_overhead(plan), "saved_for_backward": saved_for_backward(reference, model),
              "conv": conv_throughput(plan), "conv_saved_for_backward": conv_saved_for_backward(),
              "train": train_step(plan), "seq": seq_throughput(plan)}
    result["targets"] = verdicts(result)
    result["all_pass"] = all(v["pass"] for v in result["targets"].values())
    return result


def report(targets: dict) -> str:
    """One human-readable pass/fail line per target."""
    return "\n".join(f"{'PASS' if v['pass'] else 'FAIL'}  {name}: {_show(v['value'])} (target {v['op']} {v['limit']})"
                     for name, v in targets.items())


def _show(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="threads for torch and numpy's BLAS (default 1)")
    parser.add_argument("--quick", action="store_true", help="tiny iteration counts: a smoke run of seconds")
    parser.add_argument("--no-record", action="store_true", help=f"do not append to {RESULTS.name}")
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error(f"--threads must be at least 1, got {args.threads}")
    if any(os.environ.get(k) for k in OPENBLAS_OVERRIDES) and not args.quick:
        print(f"warning: {' and '.join(OPENBLAS_OVERRIDES)} are set and slow numpy's BLAS; "
              "run under `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE`", file=sys.stderr)
    started = datetime.datetime.now(datetime.timezone.utc)
    result = run(QUICK if args.quick else FULL, args.threads)
    command = " ".join(["bench/engine_vs_torch.py", *sys.argv[1:]])
    record = {"date": started.isoformat(timespec="seconds"), "command": command,
              "quick": args.quick, "threads": args.threads, "machine": machine_info(), **result,
              "seconds": round((datetime.datetime.now(datetime.timezone.utc) - started).total_seconds(), 1)}
    line = json.dumps(record)
    print(line)
    print(report(record["targets"]), file=sys.stderr)
    if not args.no_record:
        with RESULTS.open("a") as f:
            f.write(line + "\n")


if __name__ == "__main__":
    main()
