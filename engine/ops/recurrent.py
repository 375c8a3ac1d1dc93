"""Recurrent networks (LSTM, GRU, Elman RNN): a whole stack of layers as one fused op, both directions at once.

Forward, per layer: one GEMM gives every timestep's input contribution (all directions) up front; each
step then does the small (directions, N, H) x (H, gates * H) recurrent GEMM and the gate math on raw
arrays, in place, with PyTorch's weight arrays as they are (no copies). An LSTM's gates come from one
exp pass: sigmoid(z) = 1 / (1 + exp(-z)), and tanh(z) = 2 * sigmoid(2z) - 1 for g. Both directions of a
bidirectional layer advance in the same step (direction 1 walks the sequence backwards). Dropout
between layers multiplies by masks the module draws.

Backward: backpropagation through time by hand, layer by layer from the top, from what the forward
kept when recording (each layer's input and output, the activated gates and, for LSTM, the cell
states): each step's pre-activation gradients go into one array, and the weight and input gradients
are then a few large GEMMs over all timesteps.

The op returns one flat array: the last layer's output sequence (in the input's layout, directions
side by side), then h_n (layers * directions, N, H), then (LSTM) c_n; `recurrent` slices it into tensors.
"""

from __future__ import annotations

import numpy as np

from engine.autograd.function import Function
from engine.tensor import Tensor

GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}
# LSTM gates (PyTorch's order i, f, g, o) come from one exp of the pre-activations times these factors:
# sigmoid(z) = 1 / (1 + exp(-z)), and tanh(z) = 2 * sigmoid(2z) - 1 for g.
_LSTM_SCALES = (-1.0, -1.0, -2.0, -1.0)


def _at(a: np.ndarray, t: int, batch_first: bool) -> np.ndarray:
    """Timestep t of a (T, N, ...) or (N, T, ...) array."""
    return a[:, t] if batch_first else a[t]


def _time(d: int, s: int, steps: int) -> int:
    """The timestep direction d is at on step s."""
    return s if d == 0 else steps - 1 - s


class _Prepared:
    """One layer's weights as the forward uses them: PyTorch's own arrays (no copies), the two biases
    summed (for GRU, all but b_hn, which acts inside r * (W_hn h + b_hn)), and the LSTM gate factors."""

    def __init__(self, mode: str, hidden: int, weights: list):
        self.mode = mode
        self.w_ih = [w_ih for w_ih, _, _, _ in weights]
        self.w_hh_t = [w_hh.T for _, w_hh, _, _ in weights]  # BLAS reads the row-major weight transposed
        self.bias = [None if b_ih is None else self._bias(mode, hidden, b_ih, b_hh) for _, _, b_ih, b_hh in weights]
        dtype = weights[0][0].dtype
        self.b_hn = None
        if mode == "GRU":
            self.b_hn = np.stack([(b_hh[2 * hidden:] if b_hh is not None else np.zeros(hidden, dtype))[None]
                                  for _, _, _, b_hh in weights])
        self.scale = np.repeat(np.asarray(_LSTM_SCALES, dtype), hidden) if mode == "LSTM" else None

    @staticmethod
    def _bias(mode: str, hidden: int, b_ih: np.ndarray, b_hh: np.ndarray) -> np.ndarray:
        """b_ih + b_hh, but for GRU's n gate only b_in."""
        total = b_ih.copy()
        joined = slice(0, 2 * hidden) if mode == "GRU" else slice(None)
        total[joined] += b_hh[joined]
        return total


class Recurrence(Function):
    """A whole stack of recurrent layers (one or two directions each) over a sequence; see the module docstring.

    Inputs: x, h0 and c0 (layers * directions, N, H; c0 None but for LSTM), then (w_ih, w_hh, b_ih, b_hh)
    for each layer and direction. `masks` holds the dropout multipliers applied between layers (or None).
    """

    def forward(self, x, h0, c0, *flat, mode, batch_first, layers, masks):
        directions = len(flat) // (4 * layers)
        steps, n = (x.shape[1], x.shape[0]) if batch_first else (x.shape[0], x.shape[1])
        hidden = h0.shape[-1]
        self.mode, self.batch_first, self.steps, self.hidden = mode, batch_first, steps, hidden
        self.layers, self.directions, self.masks = layers, directions, masks
        lead = (n, steps) if batch_first else (steps, n)
        self.sizes = [int(np.prod(lead)) * directions * hidden, h0.size, c0.size if c0 is not None else 0]
        packed = np.empty(sum(self.sizes), x.dtype)
        out_last, h_n, c_n = self._unpack(packed, n)
        recording = bool(self.needs_input_grad)
        kept = {"inputs": [], "outputs": [], "gates": [], "cells": []}
        layer_input = x
        for layer in range(layers):
            rows = slice(layer * directions, (layer + 1) * directions)
            out = out_last if layer == layers - 1 else np.empty(lead + (directions * hidden,), x.dtype)
            prep = _Prepared(mode, hidden, [flat[4 * k:4 * k + 4] for k in range(rows.start, rows.stop)])
            state = _run(mode, prep, _input_gates(layer_input, prep, directions), h0[rows],
                         c0[rows] if c0 is not None else None, out, batch_first, recording)
            h_n[rows] = state["h"]
            if c_n is not None:
                c_n[rows] = state["c"]
            for key, value in (("inputs", layer_input), ("outputs", out), ("gates", state["gates"]),
                               ("cells", state["cells"])):
                kept[key].append(value)
            layer_input = out * masks[layer] if masks is not None and layer < layers - 1 else out
        if recording:
            self._keep(x, h0, c0, packed, flat, kept)
        return packed

    def _unpack(self, packed: np.ndarray, n: int) -> tuple:
        """(last layer's output, h_n, c_n or None) as views of the packed result."""
        out_size, h_size, c_size = self.sizes
        lead = (n, self.steps) if self.batch_first else (self.steps, n)
        out = packed[:out_size].reshape(lead + (self.directions * self.hidden,))
        h_n = packed[out_size:out_size + h_size].reshape(-1, n, self.hidden)
        c_n = packed[out_size + h_size:].reshape(-1, n, self.hidden) if c_size else None
        return out, h_n, c_n

    def _keep(self, x, h0, c0, packed, flat, kept) -> None:
        """Save what backward uses: x only for the first layer's w_ih gradients, that w_ih only for x's."""
        need = self.needs_input_grad
        need_x, need_w_ih0 = need[0], any(need[3 + 4 * d] for d in range(self.directions))
        inputs = [x if need_w_ih0 else None] + kept["inputs"][1:]
        outputs = kept["outputs"][:-1] + [packed]  # the last layer's output is the result itself
        weights = [w if (k % 4 != 0 or need_x or k >= 4 * self.directions) else None for k, w in enumerate(flat)]
        self.save(h0, c0, *inputs, *outputs, *kept["gates"], *kept["cells"], *weights, *(self.masks or ()))
        self.masks = None  # kept in `saved`, so that the gauge counts them and backward's release frees them

    def backward(self, g):
        h0, c0, *rest = self.saved_arrays()
        layers, directions, mode = self.layers, self.directions, self.mode
        inputs, outputs = rest[:layers], rest[layers:2 * layers]
        gates, cells = rest[2 * layers:3 * layers], rest[3 * layers:4 * layers]
        flat, masks = rest[4 * layers:4 * layers * (1 + directions)], rest[4 * layers * (1 + directions):]
        n = h0.shape[1]
        g_out, g_hn, g_cn = self._unpack(g, n)
        outputs = list(outputs[:-1]) + [self._unpack(outputs[-1], n)[0]]
        grads = [None] * len(flat)
        dh0, dc0 = np.empty_like(h0), (np.empty_like(c0) if c0 is not None else None)
        for layer in range(layers - 1, -1, -1):
            rows = slice(layer * directions, (layer + 1) * directions)
            weights = flat[4 * rows.start:4 * rows.stop]
            prev = self._previous(outputs[layer], h0[rows])
            steps_grads = _bptt(mode, g_out, g_hn[rows].copy(), g_cn[rows].copy() if g_cn is not None else None,
                                gates[layer], cells[layer], c0[rows] if c0 is not None else None, prev,
                                outputs[layer], weights, self.batch_first)
            dh0[rows] = steps_grads["h0"]
            if dc0 is not None:
                dc0[rows] = steps_grads["c0"]
            grads[4 * rows.start:4 * rows.stop] = self._weight_grads(steps_grads, inputs[layer], prev, rows.start)
            if layer or self.needs_input_grad[0]:
                g_out = self._input_grad(steps_grads["input"], weights)
                if layer and masks:
                    g_out *= masks[layer - 1]
        need = self.needs_input_grad
        return (g_out if need[0] else None, dh0 if need[1] else None, dc0 if need[2] else None, *grads)

    def _previous(self, out: np.ndarray, h0: np.ndarray) -> list:
        """Each direction's hidden states before each timestep, in the layout."""
        hidden = self.hidden
        return [_previous(out[..., d * hidden:(d + 1) * hidden], h0[d], d, self.batch_first)
                for d in range(self.directions)]

    def _input_grad(self, d_in: np.ndarray, weights) -> np.ndarray:
        """The gradient of a layer's input: the input-side step gradients through each direction's w_ih."""
        total = sum(_flat(d_in[d]) @ weights[4 * d] for d in range(self.directions))
        return total.reshape(d_in.shape[1:-1] + (weights[0].shape[1],))

    def _weight_grads(self, grads: dict, layer_input, h_prev: list, first: int) -> list:
        """(w_ih, w_hh, b_ih, b_hh) gradients of each direction of one layer, None where not wanted."""
        need = self.needs_input_grad
        d_in, d_rec = grads["input"], grads["recurrent"]
        out = []
        for d in range(self.directions):
            k = 3 + 4 * (first + d)
            out += [_flat(d_in[d]).T @ _flat(layer_input) if need[k] else None,
                    _flat(d_rec[d]).T @ _flat(h_prev[d]) if need[k + 1] else None,
                    _flat(d_in[d]).sum(axis=0) if need[k + 2] else None,
                    _flat(d_rec[d]).sum(axis=0) if need[k + 3] else None]
        return out


def _input_gates(x: np.ndarray, prep: _Prepared, directions: int) -> list:
    """x @ W_ih^T (+ bias) for every timestep at once, in x's layout: one GEMM per direction."""
    flat = x.reshape(-1, x.shape[-1])
    gates = []
    for w_ih, bias in zip(prep.w_ih, prep.bias):
        g = flat @ w_ih.T
        if bias is not None:
            g += bias
        gates.append(g.reshape(x.shape[:-1] + (w_ih.shape[0],)))
    return gates


def _flat(a: np.ndarray) -> np.ndarray:
    return a.reshape(-1, a.shape[-1])


def _previous(out_d: np.ndarray, h0_d: np.ndarray, d: int, bf: bool) -> np.ndarray:
    """Direction d's hidden state before each timestep (h0 first in its walking order), in the layout."""
    prev = np.empty_like(out_d)
    steps = out_d.shape[1] if bf else out_d.shape[0]
    first, rest_dst, rest_src = (0, slice(1, None), slice(None, -1)) if d == 0 else (
        steps - 1, slice(None, -1), slice(1, None))
    if bf:
        prev[:, first], prev[:, rest_dst] = h0_d, out_d[:, rest_src]
    else:
        prev[first], prev[rest_dst] = h0_d, out_d[rest_src]
    return prev


# -- forward steps -------------------------------------------------------------------------------
def _run(mode, prep, xg, h0, c0, out, bf, recording) -> dict:
    """Walk the sequence, writing each step's hidden state into out; returns the final states (and what
    backward needs when recording)."""
    directions, n, hidden = h0.shape
    steps = out.shape[1] if bf else out.shape[0]
    gates = GATES[mode]
    width = 4 * hidden if mode == "GRU" else gates * hidden  # GRU keeps r, z, W_hn h + b_hn, n
    # An Elman RNN's backward needs only its outputs: nothing per step is kept.
    kept = np.empty((steps, directions, n, width), out.dtype) if recording and mode in ("LSTM", "GRU") else None
    scratch = np.empty((directions, n, width), out.dtype)
    h = h0.copy()
    c = c0.copy() if mode == "LSTM" else None
    cells = np.empty((steps, directions, n, hidden), out.dtype) if recording and mode == "LSTM" else None
    tmp = np.empty((directions, n, hidden), out.dtype)
    step = {"LSTM": _lstm_step, "GRU": _gru_step}.get(mode, _rnn_step)
    with np.errstate(over="ignore"):  # exp(large) = inf is a saturated gate, not an error
        for s in range(steps):
            a = kept[s] if kept is not None else scratch
            times = [_time(d, s, steps) for d in range(directions)]
            c_next = cells[s] if cells is not None else c
            step(a, h, c, c_next, [_at(xg[d], t, bf) for d, t in enumerate(times)], prep, tmp, hidden)
            c = c_next
            for d, t in enumerate(times):
                _at(out, t, bf)[:, d * hidden:(d + 1) * hidden] = h[d]
    return {"h": h, "c": c, "gates": kept, "cells": cells}


def _sigmoid_of_negated(a: np.ndarray) -> None:
    """a <- 1 / (1 + exp(a)), in place: the sigmoid of -a (exp overflowing to inf gives 0, as it should)."""
    np.exp(a, out=a)
    a += 1
    np.divide(1, a, out=a)


def _recurrent_gemm(h: np.ndarray, prep: _Prepared, a: np.ndarray, x_t: list, columns: slice = slice(None)) -> None:
    """a[d][:, columns] <- h[d] @ W_hh[d]^T (+ x_t[d]) for each direction."""
    for d, w_hh_t in enumerate(prep.w_hh_t):
        np.matmul(h[d], w_hh_t, out=a[d, :, columns])
        if x_t is not None:
            a[d] += x_t[d]


def _lstm_step(a, h, c, c_next, x_t, prep, tmp, hidden) -> None:
    """a <- [i, f, g, o] activated; c_next <- f * c + i * g; h <- o * tanh(c_next)."""
    _recurrent_gemm(h, prep, a, x_t)
    a *= prep.scale
    _sigmoid_of_negated(a)
    g = a[..., 2 * hidden:3 * hidden]  # sigmoid(2z): tanh(z) = 2 sigmoid(2z) - 1
    g *= 2
    g -= 1
    np.multiply(a[..., hidden:2 * hidden], c, out=c_next)
    np.multiply(a[..., :hidden], g, out=tmp)
    c_next += tmp
    np.tanh(c_next, out=tmp)
    np.multiply(a[..., 3 * hidden:], tmp, out=h)


def _gru_step(a, h, c, c_next, x_t, prep, tmp, hidden) -> None:
    """a <- [r, z, W_hn h + b_hn, n]; h <- n + z * (h - n), with n = tanh(x_n + r * (W_hn h + b_hn))."""
    _recurrent_gemm(h, prep, a, None, slice(0, 3 * hidden))
    a[..., 2 * hidden:3 * hidden] += prep.b_hn
    rz = a[..., :2 * hidden]
    for d, xd in enumerate(x_t):
        rz[d] += xd[:, :2 * hidden]
    np.negative(rz, out=rz)
    _sigmoid_of_negated(rz)
    new = a[..., 3 * hidden:]
    np.multiply(a[..., :hidden], a[..., 2 * hidden:3 * hidden], out=new)
    for d, xd in enumerate(x_t):
        new[d] += xd[:, 2 * hidden:]
    np.tanh(new, out=new)
    np.subtract(h, new, out=tmp)
    tmp *= a[..., hidden:2 * hidden]
    np.add(new, tmp, out=h)


def _rnn_step(a, h, c, c_next, x_t, prep, tmp, hidden) -> None:
    """h <- tanh or relu(x W_ih^T + h W_hh^T + b)."""
    _recurrent_gemm(h, prep, a, x_t)
    if prep.mode == "RNN_TANH":
        np.tanh(a, out=h)
    else:
        np.maximum(a, 0, out=h)


# -- backward through time -----------------------------------------------------------------------
def _bptt(mode, g_out, dh, dc, gates, cells, c0, h_prev, out, weights, bf) -> dict:
    """Walk one layer's steps backwards: the gradients of every step's pre-activations, and of h0 (and c0)."""
    directions, n, hidden = dh.shape
    steps = out.shape[1] if bf else out.shape[0]
    w_hh = np.stack([weights[4 * d + 1] for d in range(directions)])
    width = GATES[mode] * hidden
    lead = g_out.shape[:2]
    d_in = np.empty((directions,) + lead + (width,), dh.dtype)
    d_rec = d_in if mode != "GRU" else np.empty_like(d_in)  # GRU's n gate differs between the two sides
    step = {"LSTM": _lstm_back, "GRU": _gru_back}.get(mode, _rnn_back)
    for s in range(steps - 1, -1, -1):
        times = [_time(d, s, steps) for d in range(directions)]
        for d, t in enumerate(times):
            dh[d] += _at(g_out, t, bf)[:, d * hidden:(d + 1) * hidden]
        prev = np.stack([_at(h_prev[d], t, bf) for d, t in enumerate(times)]) if mode == "GRU" else None
        c_prev = (cells[s - 1] if s else c0) if mode == "LSTM" else None
        here = None
        if mode.startswith("RNN"):
            here = np.stack([_at(out, t, bf)[:, d * hidden:(d + 1) * hidden] for d, t in enumerate(times)])
        da_in, da_rec, dc = step(gates[s] if gates is not None else None, cells[s] if cells is not None else None,
                                 c_prev, dh, dc, prev, here, hidden, mode)
        for d, t in enumerate(times):
            _at(d_in[d], t, bf)[...] = da_in[d]
            if d_rec is not d_in:
                _at(d_rec[d], t, bf)[...] = da_rec[d]
        dh = np.matmul(da_rec, w_hh) + (dh * gates[s][..., hidden:2 * hidden] if mode == "GRU" else 0)
    grads = {"input": d_in, "recurrent": d_rec, "h0": dh}
    if mode == "LSTM":
        grads["c0"] = dc
    return grads


def _lstm_back(a, c, c_prev, dh, dc, prev, here, hidden, mode):
    """Pre-activation gradients (PyTorch's i, f, g, o order) of one step, and dc for the step before."""
    i, f, g, o = a[..., :hidden], a[..., hidden:2 * hidden], a[..., 2 * hidden:3 * hidden], a[..., 3 * hidden:]
    tc = np.tanh(c)
    dc = dc + dh * o * (1 - tc * tc)
    da = np.empty(a.shape, a.dtype)
    da[..., :hidden] = dc * g * i * (1 - i)
    da[..., hidden:2 * hidden] = dc * c_prev * f * (1 - f)
    da[..., 2 * hidden:3 * hidden] = dc * i * (1 - g * g)
    da[..., 3 * hidden:] = dh * tc * o * (1 - o)
    return da, da, dc * f


def _gru_back(a, c, c_prev, dh, dc, prev, here, hidden, mode):
    """Pre-activation gradients of one step: input side (r, z, n) and recurrent side (r, z, W_hn h + b_hn)."""
    r, z, hn, new = a[..., :hidden], a[..., hidden:2 * hidden], a[..., 2 * hidden:3 * hidden], a[..., 3 * hidden:]
    dn = dh * (1 - z) * (1 - new * new)
    dr = dn * hn * r * (1 - r)
    dz = dh * (prev - new) * z * (1 - z)
    da_in = np.concatenate([dr, dz, dn], axis=-1)
    da_rec = np.concatenate([dr, dz, dn * r], axis=-1)
    return da_in, da_rec, None


def _rnn_back(a, c, c_prev, dh, dc, prev, here, hidden, mode):
    """The pre-activation gradient of one step, from the step's output."""
    da = dh * (1 - here * here) if mode == "RNN_TANH" else dh * (here > 0)
    return da, da, None


# -- the op --------------------------------------------------------------------------------------
def recurrent(mode: str, x: Tensor, h0: Tensor, c0: Tensor | None, weights: list, layers: int, batch_first: bool,
              masks: list | None = None) -> tuple:
    """A stack of recurrent layers over the sequence x: (output, h_n, c_n or None).

    x is (T, N, I), or (N, T, I) with batch_first; h0 and c0 are (layers * directions, N, H); weights holds
    (w_ih, w_hh, b_ih, b_hh) per layer and direction, in that order (biases may be None). masks, when
    given, multiply each layer's output but the last before it feeds the next layer (dropout). The output
    keeps x's layout.
    """
    directions = len(weights) // layers
    flat = [w for direction in weights for w in direction]
    packed = Recurrence.apply(x, h0, c0, *flat, mode=mode, batch_first=batch_first, layers=layers, masks=masks)
    steps, n, hidden = (x.shape[1] if batch_first else x.shape[0]), h0.shape[1], h0.shape[2]
    out_size = n * steps * directions * hidden
    lead = (n, steps) if batch_first else (steps, n)
    output = packed[:out_size].reshape(*lead, directions * hidden)
    h_n = packed[out_size:out_size + h0.numel()].reshape(h0.shape)
    c_n = packed[out_size + h0.numel():].reshape(c0.shape) if c0 is not None else None
    return output, h_n, c_n
