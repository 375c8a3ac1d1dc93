"""PyTorch's tensor repr for numpy data: a port of torch/_tensor_str.py with the default print options."""

from __future__ import annotations

import math

import numpy as np

# torch's default PRINT_OPTS; sci_mode=None means "decide from the data".
PRECISION = 4
THRESHOLD = 1000
EDGEITEMS = 3
LINEWIDTH = 80
PREFIX = "tensor("


class _Formatter:
    """Picks one notation and one cell width for every printed element (torch's _Formatter)."""

    def __init__(self, values: np.ndarray):
        self.floating = values.dtype.kind == "f"
        self.int_mode = True
        self.sci_mode = False
        self.max_width = 1
        flat = values.reshape(-1)
        if not self.floating:
            self.max_width = max((len(str(v)) for v in flat.tolist()), default=1)
            return
        # Zeros, nan and inf take no part in choosing the notation or the width.
        vals = flat[np.isfinite(flat) & (flat != 0)]
        if vals.size == 0:
            return
        # The ceil test runs in the original dtype; the ratio tests in float64 (half overflows at 1e8).
        self.int_mode = bool(np.all(vals == np.ceil(vals)))
        absvals = np.abs(vals).astype(np.float64)
        lo, hi = float(absvals.min()), float(absvals.max())
        self.sci_mode = hi / lo > 1000.0 or hi > 1.0e8 or lo < 1.0e-4
        if self.sci_mode:
            spec, extra = f".{PRECISION}e", 0
        elif self.int_mode:
            spec, extra = ".0f", 1  # +1 for the trailing "." that marks a float
        else:
            spec, extra = f".{PRECISION}f", 0
        self.max_width = max(len(format(v, spec)) + extra for v in vals.tolist())

    def format(self, value) -> str:
        """One element, right-aligned to the common width."""
        if not self.floating:
            ret = str(value)
        elif self.sci_mode:
            ret = f"{value:{self.max_width}.{PRECISION}e}"
        elif self.int_mode:
            ret = f"{value:.0f}" + ("" if math.isinf(value) or math.isnan(value) else ".")
        else:
            ret = f"{value:.{PRECISION}f}"
        return ret.rjust(self.max_width)


def _summarized_data(a: np.ndarray) -> np.ndarray:
    """Only the edge items that a summarized print shows, so they alone set the format."""
    if a.ndim == 0:
        return a
    if a.shape[0] > 2 * EDGEITEMS:
        a = np.concatenate((a[:EDGEITEMS], a[-EDGEITEMS:]))
    if a.ndim == 1:
        return a
    return np.stack([_summarized_data(x) for x in a])


def _vector_str(a: np.ndarray, indent: int, summarize: bool, fmt: _Formatter) -> str:
    # Each element costs its width plus ", "; rows wrap under the opening bracket.
    per_line = max(1, math.floor((LINEWIDTH - indent) / (fmt.max_width + 2)))
    if summarize and a.shape[0] > 2 * EDGEITEMS:
        cells = ([fmt.format(v) for v in a[:EDGEITEMS].tolist()] + [" ..."]
                 + [fmt.format(v) for v in a[-EDGEITEMS:].tolist()])
    else:
        cells = [fmt.format(v) for v in a.tolist()]
    lines = [", ".join(cells[i:i + per_line]) for i in range(0, len(cells), per_line)]
    return "[" + (",\n" + " " * (indent + 1)).join(lines) + "]"


def _tensor_str_with_formatter(a: np.ndarray, indent: int, summarize: bool, fmt: _Formatter) -> str:
    if a.ndim == 0:
        return fmt.format(a.item())
    if a.ndim == 1:
        return _vector_str(a, indent, summarize, fmt)
    if summarize and a.shape[0] > 2 * EDGEITEMS:
        rows = [*range(EDGEITEMS), None, *range(a.shape[0] - EDGEITEMS, a.shape[0])]
    else:
        rows = list(range(a.shape[0]))
    slices = ["..." if i is None else _tensor_str_with_formatter(a[i], indent + 1, summarize, fmt)
              for i in rows]
    # Sub-blocks of a rank-k tensor are separated by k-1 newlines (blank lines between matrices).
    return "[" + ("," + "\n" * (a.ndim - 1) + " " * (indent + 1)).join(slices) + "]"


def _tensor_str(a: np.ndarray, indent: int) -> str:
    if a.size == 0:
        return "[]"
    summarize = a.size > THRESHOLD
    fmt = _Formatter(_summarized_data(a) if summarize else a)
    return _tensor_str_with_formatter(a, indent, summarize, fmt)


def _add_suffixes(tensor_str: str, suffixes: list[str], indent: int) -> str:
    # torch's line-length bookkeeping, off-by-some quirks included, so wrapping matches exactly.
    parts = [tensor_str]
    last_line_len = len(tensor_str) - tensor_str.rfind("\n") + 1
    for suffix in suffixes:
        if last_line_len + len(suffix) + 2 > LINEWIDTH:
            parts.append(",\n" + " " * indent + suffix)
            last_line_len = indent + len(suffix)
        else:
            parts.append(", " + suffix)
            last_line_len += len(suffix) + 2
    return "".join(parts) + ")"


def format_tensor(data: np.ndarray, *, default_float: np.dtype, extras: list[str]) -> str:
    """PyTorch's repr of a tensor holding `data`, e.g. 'tensor([1., 2., 3.], requires_grad=True)'."""
    data = np.asarray(data)
    default_float = np.dtype(default_float)
    # Lay out with torch's spelling so line breaks fall exactly where PyTorch's do, then rename.
    dtype_suffix = f"dtype=torch.{data.dtype.name}"
    suffixes = []
    if data.size == 0:
        # Nothing to infer the dtype from, so torch shows it unless it is the default float.
        if data.ndim != 1:
            suffixes.append(f"size={tuple(data.shape)}")
        if data.dtype != default_float:
            suffixes.append(dtype_suffix)
        body = "[]"
    else:
        if data.dtype not in (default_float, np.dtype(np.int64), np.dtype(np.bool_)):
            suffixes.append(dtype_suffix)
        body = _tensor_str(data, len(PREFIX))
    text = _add_suffixes(PREFIX + body, suffixes + list(extras), len(PREFIX))
    # The dtype suffix precedes the caller's extras, so the first match is it.
    return text.replace("dtype=torch.", "dtype=engine.", 1) if dtype_suffix in suffixes else text
