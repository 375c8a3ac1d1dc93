"""A PyTorch module's state dict, written the two ways PyTorch users write it and read back by engine.load.

Family parity tests load both into an engine model strictly:

    for fmt, state in torch_state_dicts(torch_model, tmp_path).items():
        engine_model.load_state_dict(state)  # strict: same keys, shapes and buffers as PyTorch's

Call it only where torch is importable (after `pytest.importorskip("torch")`).
"""

from __future__ import annotations

from pathlib import Path

import engine

FORMATS = ("safetensors", "torch.save")


def torch_state_dicts(torch_module, tmp_path: Path) -> dict[str, dict]:
    """{"safetensors": ..., "torch.save": ...}: `torch_module.state_dict()` saved each way, read by engine.load."""
    import torch
    from safetensors.torch import save_file

    state = torch_module.state_dict()
    # safetensors refuses tensors that share memory (tied weights, views): it gets independent copies.
    save_file({key: value.detach().clone().contiguous() for key, value in state.items()},
              str(tmp_path / "model.safetensors"))
    torch.save(state, tmp_path / "model.pt")
    return {"safetensors": engine.load(tmp_path / "model.safetensors"),
            "torch.save": engine.load(tmp_path / "model.pt")}
