"""The numpy arithmetic of 2-D convolution: forward, and the gradients for the input and the weight.

Forward is im2col plus GEMM, a chunk of samples at a time so that the column matrix stays in cache and
each GEMM is wide enough for BLAS; the layout of the columns is picked by shape (channels-last for many
channels over small maps, channels-first otherwise). Depthwise convolution has its own path (a sum over
kernel taps: im2col over one channel would be all copying and no arithmetic). Kernel rows or columns that
only ever see padding are dropped first: a 3x3 conv over a 1x1 map is a 1x1 conv.

The gradient for the input is col2im (a sum over kernel offsets); it is also ConvTranspose2d's forward,
and conv_forward is ConvTranspose2d's gradient for its input, so one set of kernels serves both ops.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import as_strided

# Columns (output positions) per GEMM: wide enough for BLAS, small enough for the column matrix to stay in cache.
GEMM_COLUMNS = 2048
# Channels-last columns copy runs of C floats instead of runs of Wo: better from this many input channels on,
# while the weight's K = C*kh*kw stays moderate (beyond it the channels-first GEMM shape is faster) and the
# kernel is more than 1x1 (a strided 1x1 conv's columns are a plain strided copy either way).
CHANNELS_LAST_MIN_CHANNELS = 16
CHANNELS_LAST_MAX_K = 2304
# A 1x1 conv runs one GEMM per sample straight on the input from this many positions on; below, each sample's
# GEMM would re-read the whole weight for a few columns, and the channels-last path's single GEMM is faster.
POINTWISE_MIN_POSITIONS = 32
# Depthwise with dilated strided columns: channels-last einsum from this many channels on (its inner loop runs
# over channels); below, a sum of per-tap products over NCHW windows, in chunks of about this many outputs.
DEPTHWISE_CHANNELS_LAST_MIN_CHANNELS = 32
DEPTHWISE_CHUNK_ELEMENTS = 1 << 16
# Depthwise over small maps: one dense (H*W, Ho*Wo) matrix per channel and BLAS, when the cost model in
# _spatial_matrix_pays says the matrices' zeros cost less than the einsum's multiply-adds (ns per multiply-add
# of the einsum paths, whole rows and strided windows; the preference scales the matrices' side).
DEPTHWISE_EINSUM_NS = 0.25
DEPTHWISE_EINSUM_NS_STRIDED = 0.45
DEPTHWISE_MATRIX_PREFERENCE = 1.0


class Geometry(NamedTuple):
    """A convolution's numbers: stride, ((top, bottom), (left, right)) pads, dilation, groups, output size."""

    stride: tuple
    pads: tuple
    dilation: tuple
    groups: int
    out_hw: tuple


def output_hw(in_hw, kernel, stride, pads, dilation) -> tuple:
    """The output size of a convolution over an input of size in_hw."""
    return tuple((n + lo + hi - d * (k - 1) - 1) // s + 1
                 for n, k, s, (lo, hi), d in zip(in_hw, kernel, stride, pads, dilation))


# -- windows over the last two axes, shared with pooling ------------------------------------------------
def pad_spatial(x: np.ndarray, pads, value=0) -> np.ndarray:
    """x with its last two axes padded by ((top, bottom), (left, right)) of `value`; x itself if none."""
    (top, bottom), (left, right) = pads
    if not (top or bottom or left or right):
        return x
    *lead, h, w = x.shape
    out = np.empty((*lead, h + top + bottom, w + left + right), x.dtype)
    # Fill only the border: the interior is overwritten by x right after.
    out[..., :top, :] = value
    out[..., top + h:, :] = value
    out[..., top:top + h, :left] = value
    out[..., top:top + h, left + w:] = value
    out[..., top:top + h, left:left + w] = x
    return out


def unpad_spatial(xp: np.ndarray, pads, shape) -> np.ndarray:
    """The inverse of pad_spatial for a gradient: the interior of `xp`, as its own contiguous array."""
    (top, _), (left, _) = pads
    h, w = shape[-2:]
    if xp.shape[-2:] == (h, w):
        return xp
    return np.ascontiguousarray(xp[..., top:top + h, left:left + w])


def window_slice(i: int, j: int, stride, dilation, out_hw) -> tuple:
    """The index of the padded input that kernel offset (i, j) sees, one element per output position."""
    (sh, sw), (dh, dw), (ho, wo) = stride, dilation, out_hw
    return (..., slice(i * dh, i * dh + sh * (ho - 1) + 1, sh), slice(j * dw, j * dw + sw * (wo - 1) + 1, sw))


def padded_shape(shape, pads) -> tuple:
    (top, bottom), (left, right) = pads
    *lead, h, w = shape
    return (*lead, h + top + bottom, w + left + right)


def _columns(xp: np.ndarray, kernel, geo: Geometry) -> np.ndarray:
    """The im2col view (N, C, kh, kw, Ho, Wo) of a padded NCHW input; no copy is made."""
    (sh, sw), (dh, dw) = geo.stride, geo.dilation
    s_n, s_c, s_h, s_w = xp.strides
    return as_strided(xp, (*xp.shape[:2], *kernel, *geo.out_hw), (s_n, s_c, s_h * dh, s_w * dw, s_h * sh, s_w * sw),
                      writeable=False)


def _chunk(n: int, positions: int) -> int:
    """Samples per GEMM: enough output positions to fill GEMM_COLUMNS."""
    return max(1, min(n, -(-GEMM_COLUMNS // max(positions, 1))))


# -- forward --------------------------------------------------------------------------------------------
def conv_forward(x: np.ndarray, w: np.ndarray, bias: np.ndarray | None, geo: Geometry) -> np.ndarray:
    """Cross-correlation of (N, C, H, W) with (O, C/groups, kh, kw) weights, plus bias: (N, O, Ho, Wo)."""
    w, geo = _pruned(w, geo, x.shape[2:])
    out = np.empty((x.shape[0], w.shape[0], *geo.out_hw), np.result_type(x, w))
    if geo.groups > 1 and geo.groups == x.shape[1] == w.shape[0]:
        _forward_depthwise(x, w, geo, out)
    elif _pointwise(w, geo) and x.shape[2:] == geo.out_hw == (1, 1):  # 1x1 maps: (N, C) @ (C, O), as Linear
        np.matmul(x.reshape(x.shape[:2]), w.reshape(w.shape[:2]).T, out=out.reshape(out.shape[:2]))
    elif _pointwise(w, geo) and x.shape[2:] == geo.out_hw and x[0, 0].size >= POINTWISE_MIN_POSITIONS:
        # The input is already the column matrix: one GEMM per sample, no copy at all.
        np.matmul(w.reshape(w.shape[0], -1), x.reshape(*x.shape[:2], -1), out=out.reshape(*out.shape[:2], -1))
    elif (geo.groups == 1 and x.shape[1] >= CHANNELS_LAST_MIN_CHANNELS and w[0].size <= CHANNELS_LAST_MAX_K
          and w.shape[2] * w.shape[3] > 1):
        _forward_channels_last(x, w, geo, out)
    else:
        _forward_channels_first(x, w, geo, out)
    if bias is not None:
        out += bias.reshape(-1, 1, 1)
    return out


def _pruned(w: np.ndarray, geo: Geometry, in_hw) -> tuple[np.ndarray, Geometry]:
    """The weight without the kernel rows and columns that read only padding at every output, and its geometry."""
    keep, pads = [], []
    for n, k, s, (lo, _), d, o in zip(in_hw, w.shape[2:], geo.stride, geo.pads, geo.dilation, geo.out_hw):
        # Tap i reads positions i*d - lo + s*[0, o): drop it when they all fall before 0 or all from n on.
        first = max(0, -(-(lo - (o - 1) * s) // d))
        last = min(k - 1, (n - 1 + lo) // d)
        new_lo = lo - first * d
        if first > last or new_lo < 0:  # all padding, or the kept taps would start inside the input
            return w, geo
        keep.append(slice(first, last + 1))
        pads.append((new_lo, max((o - 1) * s + (last - first) * d + 1 - n - new_lo, 0)))
    if all(sl.start == 0 and sl.stop == k for sl, k in zip(keep, w.shape[2:])):
        return w, geo
    return w[:, :, keep[0], keep[1]], geo._replace(pads=tuple(pads))


def _pointwise(w: np.ndarray, geo: Geometry) -> bool:
    """Whether the conv is a plain 1x1 one: no groups, stride, padding or dilation to take into account."""
    return (w.shape[2:] == (1, 1) and geo.groups == 1 and geo.stride == (1, 1)
            and geo.pads == ((0, 0), (0, 0)))


def _forward_channels_first(x, w, geo: Geometry, out) -> None:
    """Columns (G, C/G*kh*kw, positions) copied from NCHW, one batched GEMM over groups per chunk of samples."""
    n, groups = x.shape[0], geo.groups
    out_c, kh, kw = w.shape[0], *w.shape[2:]
    ho, wo = geo.out_hw
    view = _columns(pad_spatial(x, geo.pads), (kh, kw), geo)
    view = view.reshape(n, groups, x.shape[1] // groups, kh, kw, ho, wo)
    wg = w.reshape(groups, out_c // groups, -1)
    step = _chunk(n, ho * wo)
    for n0 in range(0, n, step):
        m = min(step, n - n0)
        cols = view[n0:n0 + m].transpose(1, 2, 3, 4, 0, 5, 6).reshape(groups, wg.shape[2], m * ho * wo)
        if m == 1:  # the GEMM writes the sample's output in place
            np.matmul(wg, cols, out=out[n0].reshape(groups, out_c // groups, ho * wo))
        else:
            out[n0:n0 + m] = np.matmul(wg, cols).reshape(out_c, m, ho, wo).transpose(1, 0, 2, 3)


def _forward_channels_last(x, w, geo: Geometry, out) -> None:
    """Columns (positions, kh*kw*C) from a channels-last copy of each chunk of samples, one GEMM per chunk."""
    n, c, h, wd = x.shape
    out_c, kh, kw = w.shape[0], *w.shape[2:]
    ho, wo = geo.out_hw
    (top, bottom), (left, right) = geo.pads
    (sh, sw), (dh, dw) = geo.stride, geo.dilation
    wt = w.transpose(2, 3, 1, 0).reshape(-1, out_c)
    step = _chunk(n, ho * wo)
    buf = np.zeros((step, h + top + bottom, wd + left + right, c), x.dtype)  # the border stays zero
    s_n, s_h, s_w, s_c = buf.strides
    for n0 in range(0, n, step):
        m = min(step, n - n0)
        buf[:m, top:top + h, left:left + wd] = x[n0:n0 + m].transpose(0, 2, 3, 1)
        cols = as_strided(buf, (m, ho, wo, kh, kw, c), (s_n, s_h * sh, s_w * sw, s_h * dh, s_w * dw, s_c),
                          writeable=False).reshape(m * ho * wo, -1)
        out[n0:n0 + m] = (cols @ wt).reshape(m, ho, wo, out_c).transpose(0, 3, 1, 2)


def _forward_depthwise(x, w, geo: Geometry, out) -> None:
    """One filter per channel: a sum over kernel taps, in the layout whose inner loop is the longest.

    einsum runs the multiply-add over taps in one pass; its inner loop is contiguous channels-last memory:
    a whole output row (columns and channels) when the column stride is 1 or columns split by phase make it 1,
    the channels otherwise (dilated and strided columns).
    """
    if _spatial_matrix_pays(x.shape[0], x.shape[2] * x.shape[3], w.shape[2] * w.shape[3], geo.stride[1] > 1):
        _depthwise_spatial_matrix(x, w, geo, out)
    elif geo.stride[1] == 1:
        _depthwise_channels_last(x, w, geo, out, whole_rows=True)
    elif geo.dilation[1] == 1:
        _depthwise_column_phases(x, w, geo, out)
    elif x.shape[1] >= DEPTHWISE_CHANNELS_LAST_MIN_CHANNELS:
        _depthwise_channels_last(x, w, geo, out, whole_rows=False)
    else:
        _depthwise_channels_first(x, w, geo, out)


def _padded_channels_last(x: np.ndarray, pads) -> np.ndarray:
    """(N, C, H, W) x as a fresh (N, H', W', C) array with zeros around it: ((top, bottom), (left, right))."""
    n, c, h, w = x.shape
    (top, bottom), (left, right) = pads
    xp = np.zeros((n, h + top + bottom, w + left + right, c), x.dtype)
    xp[:, top:top + h, left:left + w] = x.transpose(0, 2, 3, 1)
    return xp


def _depthwise_channels_last(x, w, geo: Geometry, out, whole_rows: bool) -> None:
    n, c = x.shape[:2]
    kh, kw = w.shape[2:]
    ho, wo = geo.out_hw
    (sh, sw), (dh, dw) = geo.stride, geo.dilation
    xp = _padded_channels_last(x, geo.pads)
    s_n, s_h, s_w, s_c = xp.strides
    taps = w[:, 0].transpose(1, 2, 0)  # (kh, kw, C)
    if whole_rows:  # tap (i, j) of output row y reads one contiguous run of wo * c values
        windows = as_strided(xp, (n, ho, kh, kw, wo * c), (s_n, s_h * sh, s_h * dh, s_w * dw, s_c), writeable=False)
        taps = np.ascontiguousarray(np.broadcast_to(taps[:, :, None, :], (kh, kw, wo, c))).reshape(kh, kw, -1)
        result = np.einsum("nyijq,ijq->nyq", windows, taps).reshape(n, ho, wo, c)
    else:
        windows = as_strided(xp, (n, ho, wo, kh, kw, c), (s_n, s_h * sh, s_w * sw, s_h * dh, s_w * dw, s_c),
                             writeable=False)
        result = np.einsum("nyxijc,ijc->nyxc", windows, np.ascontiguousarray(taps))
    out[...] = result.transpose(0, 3, 1, 2)


def _depthwise_column_phases(x, w, geo: Geometry, out) -> None:
    """Few channels and a column stride s: s stride-1 problems over the input's columns split by their position
    modulo s, where each tap reads one phase at a column offset, so a tap's output row is one contiguous run."""
    n, c = x.shape[:2]
    kh, kw = w.shape[2:]
    ho, wo = geo.out_hw
    (sh, sw), (dh, _) = geo.stride, geo.dilation
    xp = _padded_channels_last(x, geo.pads)
    taps = w[:, 0].transpose(1, 2, 0)  # (kh, kw, C)
    total = None
    for phase in range(min(sw, kw)):
        columns = np.ascontiguousarray(xp[:, :, phase::sw])  # tap j = phase + m * sw reads column x + m here
        s_n, s_h, s_w, s_c = columns.strides
        count = len(range(phase, kw, sw))
        windows = as_strided(columns, (n, ho, kh, count, wo * c), (s_n, s_h * sh, s_h * dh, s_w, s_c),
                             writeable=False)
        weights = np.ascontiguousarray(np.broadcast_to(taps[:, phase::sw, None, :], (kh, count, wo, c)))
        part = np.einsum("nyijq,ijq->nyq", windows, weights.reshape(kh, count, -1))
        total = part if total is None else np.add(total, part, out=total)
    out[...] = total.reshape(n, ho, wo, c).transpose(0, 3, 1, 2)


def _spatial_matrix_pays(n: int, positions: int, taps: int, strided: bool) -> bool:
    """Whether dense per-channel matrices beat the einsum paths, by costs measured on numpy (ns per element):
    building a matrix about 1 per entry and its GEMM n/30 per entry, against the einsum's per multiply-add."""
    per_multiply_add = DEPTHWISE_EINSUM_NS_STRIDED if strided else DEPTHWISE_EINSUM_NS
    return positions * (1 + n / 30) * DEPTHWISE_MATRIX_PREFERENCE < n * taps * per_multiply_add


def _depthwise_spatial_matrix(x, w, geo: Geometry, out) -> None:
    """Small maps: each channel's whole convolution as one (H*W, Ho*Wo) matrix, one GEMM per channel.

    The matrices hold only products that read the input (padding is left out), so the extra arithmetic of
    the zeros they also hold stays small while the map is small, and BLAS does the multiply-adds.
    """
    n, c, h, wd = x.shape
    kh, kw = w.shape[2:]
    ho, wo = geo.out_hw
    (top, _), (left, _) = geo.pads
    (sh, sw), (dh, dw) = geo.stride, geo.dilation
    out_y, out_x = np.divmod(np.arange(ho * wo), wo)
    tap_i, tap_j = np.divmod(np.arange(kh * kw), kw)
    rows = out_y * sh + tap_i[:, None] * dh - top  # (taps, outputs): the input row each product reads
    cols = out_x * sw + tap_j[:, None] * dw - left
    reads = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < wd)
    tap, position = np.nonzero(reads)
    matrices = np.zeros((c, h * wd, ho * wo), np.result_type(x, w))
    matrices[:, rows[reads] * wd + cols[reads], position] = w.reshape(c, -1)[:, tap]
    result = np.matmul(x.reshape(n, c, -1).transpose(1, 0, 2), matrices)  # (C, N, Ho*Wo)
    out[...] = result.transpose(1, 0, 2).reshape(out.shape)


def _depthwise_channels_first(x, w, geo: Geometry, out) -> None:
    """Few channels over large maps: each tap's window times its per-channel weight, added up a chunk of
    samples at a time so that the running sum stays in cache."""
    n = x.shape[0]
    kh, kw = w.shape[2:]
    xp = pad_spatial(x, geo.pads)
    step = max(1, DEPTHWISE_CHUNK_ELEMENTS // out[0].size)
    term = np.empty((min(step, n), *out.shape[1:]), out.dtype)
    for n0 in range(0, n, step):
        acc, part = out[n0:n0 + step], term[:min(step, n - n0)]
        for i in range(kh):
            for j in range(kw):
                window = xp[n0:n0 + step][window_slice(i, j, geo.stride, geo.dilation, geo.out_hw)]
                np.multiply(window, w[:, 0, i, j, None, None], out=acc if i == j == 0 else part)
                if i or j:
                    acc += part


# -- gradients ------------------------------------------------------------------------------------------
def conv_input_grad(g: np.ndarray, w: np.ndarray, geo: Geometry, x_shape) -> np.ndarray:
    """d(conv)/d(input) applied to g (N, O, Ho, Wo): each kernel offset's columns summed back (col2im)."""
    n, out_c = g.shape[:2]
    groups, (kh, kw) = geo.groups, w.shape[2:]
    g = g.reshape(n, groups, out_c // groups, -1)
    cols = np.matmul(w.reshape(groups, out_c // groups, -1).swapaxes(-1, -2), g)  # (N, G, C/G*kh*kw, L)
    cols = cols.reshape(n, x_shape[1], kh, kw, *geo.out_hw)
    gxp = np.zeros(padded_shape(x_shape, geo.pads), cols.dtype)
    for i in range(kh):
        for j in range(kw):
            gxp[window_slice(i, j, geo.stride, geo.dilation, geo.out_hw)] += cols[:, :, i, j]
    return unpad_spatial(gxp, geo.pads, x_shape)


def conv_weight_grad(x: np.ndarray, g: np.ndarray, geo: Geometry, w_shape) -> np.ndarray:
    """d(conv)/d(weight) applied to g: g times the input's columns, summed over samples."""
    n, out_c = g.shape[:2]
    groups, (kh, kw) = geo.groups, w_shape[2:]
    g = g.reshape(n, groups, out_c // groups, -1)
    view = _columns(pad_spatial(x, geo.pads), (kh, kw), geo)
    cols = view.reshape(n, groups, x.shape[1] // groups * kh * kw, -1)
    return np.matmul(g, cols.swapaxes(-1, -2)).sum(axis=0).reshape(w_shape)
