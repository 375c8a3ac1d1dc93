"""Twin modules for parity tests: one built with torch.nn, one with engine.nn, holding the same weights.

Imported by parity tests only (they skip without PyTorch); torch is imported when a helper runs.
"""

from __future__ import annotations

import gc

import numpy as np

import engine


def twins(factory, seed: int = 0, dtype: str = "float32", randomize: bool = True) -> tuple:
    """(torch module, engine module) from factory(torch or engine), the engine one loaded with the torch weights.

    With `randomize`, every torch parameter is redrawn first (normal, std 0.3) so that weights PyTorch
    initialises to constants (LayerNorm's ones and zeros, MHA's zero biases) take part in the comparison.
    """
    import torch
    torch.manual_seed(seed)
    reference = factory(torch).to(getattr(torch, dtype))
    if randomize:
        with torch.no_grad():
            for p in reference.parameters():
                p.normal_(0, 0.3)
    model = factory(engine).to(getattr(engine, dtype))
    model.load_state_dict({k: to_engine(v) for k, v in reference.state_dict().items()})
    return reference, model


def to_engine(t, requires_grad: bool = False):
    """A torch tensor's values as an engine tensor (a copy)."""
    return engine.tensor(t.detach().numpy(), requires_grad=requires_grad)


def assert_close(ours, theirs, atol: float = 1e-5, rtol: float = 1e-4) -> None:
    """An engine tensor (or array) equal to a torch tensor within tolerances, in shape and value."""
    ours = ours.detach().numpy() if isinstance(ours, engine.Tensor) else np.asarray(ours)
    theirs = theirs.detach().numpy()
    assert ours.shape == theirs.shape, (ours.shape, theirs.shape)
    np.testing.assert_allclose(ours, theirs, atol=atol, rtol=rtol)


def torch_saved_bytes(run) -> int:
    """Bytes of the distinct storages torch's autograd saves while run() builds its graph."""
    import torch
    storages = {}

    def pack(t):
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        kept = run()
    del kept
    return sum(storages.values())


def engine_saved_bytes(run) -> tuple:
    """(bytes the engine's graph holds for backward after run(), run's result)."""
    gc.collect()
    before = engine.memory_stats()["saved_bytes.current"]
    result = run()
    return engine.memory_stats()["saved_bytes.current"] - before, result
