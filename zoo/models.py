"""The zoo's architectures: an MLP over 64 pixels and a small ConvNet over 1x8x8 images, 10 classes each.

Layers have names (not Sequential's 0, 1, 2 ...) so state dict keys say what they are. Each factory takes the
layer library as `nn`: the engine's by default, or `torch.nn`, which builds the same model in PyTorch with the
same state dict keys (the interop fixtures and parity tests do that, so the architecture is written once).
"""

from __future__ import annotations

from collections import OrderedDict
from types import ModuleType

import engine.nn

CLASSES = 10


def mlp(nn: ModuleType = engine.nn):
    """64 pixels -> 128 -> 64 -> 10 logits, ReLU between, dropout before the last layer in training."""
    return nn.Sequential(OrderedDict([
        ("fc1", nn.Linear(64, 128)),
        ("relu1", nn.ReLU()),
        ("fc2", nn.Linear(128, 64)),
        ("relu2", nn.ReLU()),
        ("dropout", nn.Dropout(0.2)),
        ("fc3", nn.Linear(64, CLASSES)),
    ]))


def convnet(nn: ModuleType = engine.nn):
    """(1, 8, 8) image -> two 3x3 conv/batch-norm/ReLU blocks -> 2x2 max pool -> 512 -> 64 -> 10 logits."""
    return nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(1, 16, kernel_size=3, padding=1)),
        ("bn1", nn.BatchNorm2d(16)),
        ("relu1", nn.ReLU()),
        ("conv2", nn.Conv2d(16, 32, kernel_size=3, padding=1)),
        ("bn2", nn.BatchNorm2d(32)),
        ("relu2", nn.ReLU()),
        ("pool", nn.MaxPool2d(2)),
        ("flatten", nn.Flatten()),
        ("dropout", nn.Dropout(0.25)),
        ("fc1", nn.Linear(32 * 4 * 4, 64)),
        ("relu3", nn.ReLU()),
        ("fc2", nn.Linear(64, CLASSES)),
    ]))
