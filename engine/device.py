"""Devices: the engine computes on the CPU; `device` and `engine.cuda` exist so ported code runs."""

from __future__ import annotations


class device:  # noqa: N801 (PyTorch's name)
    """A device name such as 'cpu' or 'cpu:0'. Any name can be made; only the CPU can hold tensors."""

    def __init__(self, type: str = "cpu", index: int | None = None):  # noqa: A002 (PyTorch's keyword)
        if isinstance(type, device):
            type, index = type.type, type.index
        name, _, number = str(type).partition(":")
        self.type = name
        self.index = int(number) if number else index

    def __eq__(self, other) -> bool:
        other = device(other) if isinstance(other, str) else other
        return isinstance(other, device) and (self.type, self.index) == (other.type, other.index)

    def __hash__(self) -> int:
        return hash((self.type, self.index))

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self) -> str:
        index = "" if self.index is None else f", index={self.index}"
        return f"device(type='{self.type}'{index})"


cpu = device("cpu")


def check_device(target) -> None:
    """Accept 'cpu' in any spelling; anything else is a clear error."""
    if device(target).type != "cpu":
        raise RuntimeError(f"the engine computes on the CPU only; cannot move a tensor to device '{target}'")
