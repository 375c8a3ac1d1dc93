"""A forward may return a tuple, a dict or a dataclass of tensors: calls and hooks pass them through unchanged."""

from dataclasses import dataclass

import engine
import engine.nn as nn


@dataclass
class Prediction:
    logits: engine.Tensor
    hidden: engine.Tensor


class Returns(nn.Module):
    """A module whose forward returns whatever `make(x)` builds."""

    def __init__(self, make):
        super().__init__()
        self.make = make

    def forward(self, x):
        return self.make(x)


def test_a_tuple_output_comes_back_as_the_same_tuple():
    out = (engine.ones(1), engine.zeros(2))
    assert Returns(lambda x: out)(engine.ones(1)) is out


def test_a_dict_output_comes_back_as_the_same_dict():
    out = {"logits": engine.ones(1), "hidden": engine.zeros(2)}
    assert Returns(lambda x: out)(engine.ones(1)) is out


def test_a_dataclass_output_comes_back_as_the_same_object():
    out = Prediction(engine.ones(1), engine.zeros(2))
    assert Returns(lambda x: out)(engine.ones(1)) is out


def test_a_forward_hook_sees_the_dataclass_and_returning_none_keeps_it():
    out, seen = Prediction(engine.ones(1), engine.zeros(2)), []
    module = Returns(lambda x: out)
    module.register_forward_hook(lambda m, args, output: seen.append(output))
    assert module(engine.ones(1)) is out and seen == [out]


def test_a_forward_hook_may_replace_a_dict_output():
    module = Returns(lambda x: {"logits": x})
    module.register_forward_hook(lambda m, args, output: {**output, "extra": output["logits"] * 2})
    assert set(module(engine.ones(1))) == {"logits", "extra"}


def test_sequential_hands_a_tuple_to_the_next_module_whole():
    first = Returns(lambda x: (x, x * 2))
    second = Returns(lambda pair: pair[0] + pair[1])
    assert nn.Sequential(first, second)(engine.ones(1)).item() == 3.0
