"""engine.load reads what torch.save writes (zip and legacy) and safetensors with BF16/F16, never running the file."""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from collections import OrderedDict

import numpy as np
import pytest
from torch_checkpoints import FORMATS, torch_state_dicts

import engine
import engine.nn as nn

torch = pytest.importorskip("torch", reason="checkpoint tests write files with PyTorch (pip install '.[parity]')")
pytestmark = pytest.mark.parity

LEGACY = {"_use_new_zipfile_serialization": False}
WRITERS = {"zip": {}, "legacy": LEGACY}


def saved(obj, tmp_path, writer: str = "zip", name: str = "model.pt"):
    """`obj` written by torch.save (zip or legacy) and read back by engine.load."""
    torch.save(obj, tmp_path / name, **WRITERS[writer])
    return engine.load(tmp_path / name)


def same(engine_tensor, torch_tensor) -> None:
    """Same dtype (bfloat16 widened to float32), shape and exact values."""
    expected = torch_tensor.detach()
    expected = expected.float() if expected.dtype == torch.bfloat16 else expected
    assert engine_tensor.dtype.name == str(expected.dtype).removeprefix("torch.")
    np.testing.assert_array_equal(engine_tensor.numpy(), expected.numpy())


# -- nothing in the file runs --------------------------------------------------------------------------------
class RunsACommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class Custom:
    def __init__(self):
        self.value = 1


@pytest.mark.parametrize("writer", WRITERS)
def test_pickle_that_would_run_a_command_is_refused_naming_file_and_global_and_nothing_runs(tmp_path, writer):
    marker = tmp_path / "ran"
    torch.save({"weight": torch.ones(2), "payload": RunsACommand(marker)}, tmp_path / "evil.pt", **WRITERS[writer])
    with pytest.raises(pickle.UnpicklingError, match=r"evil\.pt.*refusing.*'posix\.system'"):
        engine.load(tmp_path / "evil.pt")
    assert not marker.exists()


def test_custom_class_is_refused_naming_it(tmp_path):
    torch.save({"state": Custom()}, tmp_path / "custom.pt")
    with pytest.raises(ValueError, match=r"custom\.pt.*refusing.*'test_checkpoints\.Custom'"):
        engine.load(tmp_path / "custom.pt")


def test_whole_model_saved_with_torch_save_is_refused_asking_for_its_state_dict(tmp_path):
    torch.save(torch.nn.Linear(2, 3), tmp_path / "whole.pt")
    with pytest.raises(ValueError, match=r"whole\.pt holds 'torch\.nn\.modules\.linear\.Linear'.*state_dict"):
        engine.load(tmp_path / "whole.pt")


def test_tensor_reaching_outside_its_storage_is_refused(tmp_path):
    class OutOfBounds:
        def __reduce__(self):
            storage = torch.ones(4).untyped_storage()
            return torch._utils._rebuild_tensor_v3, (storage, 2, (100,), (1,), False, OrderedDict(), torch.float32)

    torch.save({"w": OutOfBounds()}, tmp_path / "bounds.pt")
    with pytest.raises(ValueError, match=r"bounds\.pt.*reaches outside its storage"):
        engine.load(tmp_path / "bounds.pt")


# -- what torch.save writes comes back exactly ---------------------------------------------------------------
@pytest.mark.parametrize("writer", WRITERS)
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16", "int64", "int32", "int16", "int8",
                                   "uint8", "bool"])
def test_every_dtype_round_trips_with_exact_values(tmp_path, writer, dtype):
    value = (torch.randn(3, 5, generator=torch.Generator().manual_seed(0)) * 50).to(getattr(torch, dtype))
    same(saved({"t": value}, tmp_path, writer)["t"], value)


@pytest.mark.parametrize("writer", WRITERS)
def test_tensors_sharing_a_storage_keep_their_offsets_strides_and_dtypes(tmp_path, writer):
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    half = torch.arange(6, dtype=torch.float16)
    views = {"base": base, "rows": base[1:3], "columns": base[:, 2::2], "transposed": base.t(), "row": base[3],
             "expanded": base[0, :1].expand(3, 4), "empty": base[4:], "half": half, "half_tail": half[4:]}
    loaded = saved(views, tmp_path, writer)
    for key, value in views.items():
        same(loaded[key], value)
        assert loaded[key].numpy().strides == tuple(s * value.element_size() for s in value.stride())


def test_views_saved_together_still_share_memory(tmp_path):
    base = torch.zeros(2, 3)
    loaded = saved({"base": base, "row": base[1]}, tmp_path)
    loaded["row"].numpy()[:] = 7
    assert loaded["base"].numpy()[1].tolist() == [7, 7, 7]


@pytest.mark.parametrize("writer", WRITERS)
def test_nested_dicts_and_plain_values_come_back_as_saved(tmp_path, writer):
    model = torch.nn.Linear(2, 3)
    loaded = saved({"model": model.state_dict(), "epoch": 3, "lr": 0.5, "name": "run-1", "betas": (0.9, 0.99),
                    "steps": [1, 2], "done": None, "tag": b"xy"}, tmp_path, writer)
    assert {k: v for k, v in loaded.items() if k != "model"} == {
        "epoch": 3, "lr": 0.5, "name": "run-1", "betas": (0.9, 0.99), "steps": [1, 2], "done": None, "tag": b"xy"}
    for key, value in model.state_dict().items():
        same(loaded["model"][key], value)


@pytest.mark.parametrize("writer", WRITERS)
def test_ordered_dict_keeps_its_key_order(tmp_path, writer):
    keys = ["z", "b", "10", "2", "a"]
    loaded = saved(OrderedDict((k, torch.zeros(1)) for k in keys), tmp_path, writer)
    assert isinstance(loaded, OrderedDict) and list(loaded) == keys


def test_parameters_come_back_as_parameters_with_their_requires_grad(tmp_path):
    loaded = saved({"p": torch.nn.Parameter(torch.ones(2)), "frozen": torch.nn.Parameter(torch.ones(2), False)},
                   tmp_path)
    assert isinstance(loaded["p"], nn.Parameter) and loaded["p"].requires_grad
    assert isinstance(loaded["frozen"], nn.Parameter) and not loaded["frozen"].requires_grad


def test_dtype_size_and_device_values_come_back_as_the_engines(tmp_path):
    loaded = saved({"dtype": torch.float16, "size": torch.Size([2, 3]), "device": torch.device("cpu")}, tmp_path)
    assert loaded == {"dtype": engine.float16, "size": engine.Size([2, 3]), "device": engine.device("cpu")}


def test_loaded_tensors_are_writable_and_writes_never_reach_the_file(tmp_path):
    torch.save({"w": torch.zeros(3)}, tmp_path / "model.pt")
    engine.load(tmp_path / "model.pt")["w"].add_(1)
    assert engine.load(tmp_path / "model.pt")["w"].tolist() == [0, 0, 0]


def test_format_is_told_by_content_not_by_extension(tmp_path):
    from safetensors.torch import save_file
    save_file({"w": torch.ones(2)}, str(tmp_path / "really_safetensors.pt"))
    torch.save({"w": torch.ones(2)}, tmp_path / "really_torch.safetensors")
    assert engine.load(tmp_path / "really_safetensors.pt")["w"].tolist() == [1, 1]
    assert engine.load(tmp_path / "really_torch.safetensors")["w"].tolist() == [1, 1]


def test_file_objects_and_bytes_load_like_paths(tmp_path):
    buffer = io.BytesIO()
    torch.save({"w": torch.ones(2)}, buffer)
    assert engine.load(io.BytesIO(buffer.getvalue()))["w"].tolist() == [1, 1]
    assert engine.serialization.load_bytes(buffer.getvalue(), name="s3://b/m.pt")["w"].tolist() == [1, 1]


def test_torchscript_archive_is_refused_naming_it(tmp_path):
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), tmp_path / "scripted.pt")
    with pytest.raises(ValueError, match=r"scripted\.pt is a TorchScript archive"):
        engine.load(tmp_path / "scripted.pt")


def test_truncated_zip_checkpoint_is_refused_naming_the_file(tmp_path):
    torch.save({"w": torch.ones(1000)}, tmp_path / "whole.pt")
    (tmp_path / "cut.pt").write_bytes((tmp_path / "whole.pt").read_bytes()[:3000])
    with pytest.raises(ValueError, match=r"cut\.pt"):
        engine.load(tmp_path / "cut.pt")


def test_compressed_zip_records_still_load(tmp_path):
    torch.save({"w": torch.arange(5.0)}, tmp_path / "model.pt")
    with zipfile.ZipFile(tmp_path / "model.pt") as source, \
            zipfile.ZipFile(tmp_path / "rezipped.pt", "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            target.writestr(info.filename, source.read(info.filename))
    assert engine.load(tmp_path / "rezipped.pt")["w"].tolist() == [0, 1, 2, 3, 4]


def test_big_endian_checkpoint_loads_in_native_order(tmp_path):
    value = torch.tensor([1.5, -2.0, 3.25], dtype=torch.float32)
    torch.save({"w": value}, tmp_path / "little.pt")
    with zipfile.ZipFile(tmp_path / "little.pt") as source, zipfile.ZipFile(tmp_path / "big.pt", "w") as target:
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename.endswith("/byteorder"):
                data = b"big"
            elif info.filename.endswith("/data/0"):
                data = np.frombuffer(data, "<f4").astype(">f4").tobytes()
            target.writestr(info.filename, data)
    same(engine.load(tmp_path / "big.pt")["w"], value)


# -- safetensors with low-precision floats -------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_safetensors_low_precision_floats_give_torch_values_exactly(tmp_path, dtype):
    from safetensors.torch import save_file
    value = torch.tensor([1.0, -2.5, 3.14159, 65504.0, 1e-3, float("inf")]).to(getattr(torch, dtype))
    save_file({"t": value}, str(tmp_path / "low.safetensors"))
    loaded = engine.load(tmp_path / "low.safetensors")["t"]
    np.testing.assert_array_equal(loaded.float().numpy(), value.float().numpy())


@pytest.mark.parametrize("fmt", FORMATS)
def test_bfloat16_checkpoint_loads_into_float32_parameters_as_torch_does(tmp_path, fmt):
    source = torch.nn.Linear(3, 2).to(torch.bfloat16)
    reference = torch.nn.Linear(3, 2)
    reference.load_state_dict(source.state_dict())
    model = nn.Linear(3, 2)
    model.load_state_dict(torch_state_dicts(source, tmp_path)[fmt])
    assert model.weight.dtype == engine.float32
    np.testing.assert_array_equal(model.weight.detach().numpy(), reference.weight.detach().numpy())
    np.testing.assert_array_equal(model.bias.detach().numpy(), reference.bias.detach().numpy())


def test_shared_helper_gives_both_formats_with_the_torch_state_dict_keys(tmp_path):
    source = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    states = torch_state_dicts(source, tmp_path)
    assert set(states) == set(FORMATS)
    for state in states.values():
        assert sorted(state) == sorted(source.state_dict())
