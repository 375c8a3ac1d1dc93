"""Reference convolutional architectures with torchvision's layouts and state dict keys: ResNet-18, a
MobileNetV3-small-style network and a small UNet.

Each factory takes the layer library as `nn` (the engine's by default, or `torch.nn`), so one definition
builds both twins of a parity test or a benchmark race, with the same keys. No torchvision is needed.
"""

from __future__ import annotations

import functools
import importlib
from types import ModuleType

import engine.nn


def _library(nn: ModuleType) -> ModuleType:
    """The top-level package of a layer library: engine for engine.nn, torch for torch.nn (for cat)."""
    return importlib.import_module(nn.__name__.partition(".")[0])


# -- ResNet-18 (torchvision.models.resnet18) ------------------------------------------------------------
@functools.cache
def _resnet_classes(nn: ModuleType) -> tuple[type, type]:
    class BasicBlock(nn.Module):
        """Two 3x3 conv/batch-norm pairs and a shortcut (a strided 1x1 conv/batch-norm when the shape changes)."""

        def __init__(self, inplanes: int, planes: int, stride: int = 1):
            super().__init__()
            self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.relu = nn.ReLU(inplace=True)
            self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.downsample = None
            if stride != 1 or inplanes != planes:
                self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride=stride, bias=False),
                                                nn.BatchNorm2d(planes))

        def forward(self, x):
            identity = x if self.downsample is None else self.downsample(x)
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            out += identity
            return self.relu(out)

    class ResNet(nn.Module):
        """Stem (7x7 stride-2 conv, 3x3 stride-2 max pool), four stages of two BasicBlocks, pool, fc."""

        def __init__(self, num_classes: int = 1000):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
            widths, inplanes = (64, 128, 256, 512), 64
            for i, planes in enumerate(widths, 1):
                stride = 1 if i == 1 else 2
                setattr(self, f"layer{i}", nn.Sequential(BasicBlock(inplanes, planes, stride),
                                                         BasicBlock(planes, planes)))
                inplanes = planes
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.fc = nn.Linear(512, num_classes)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(self.avgpool(x).flatten(1))

    return BasicBlock, ResNet


def resnet18(nn: ModuleType = engine.nn, num_classes: int = 1000):
    """torchvision's ResNet-18: same modules, same state dict keys (conv1, bn1, layer1.0.conv1, ..., fc)."""
    return _resnet_classes(nn)[1](num_classes)


# -- MobileNetV3-small layout (torchvision.models.mobilenet_v3_small) ------------------------------------
# (input channels, kernel, expanded channels, output channels, squeeze-excitation, activation, stride)
MOBILENET_V3_SMALL = (
    (16, 3, 16, 16, True, "RE", 2), (16, 3, 72, 24, False, "RE", 2), (24, 3, 88, 24, False, "RE", 1),
    (24, 5, 96, 40, True, "HS", 2), (40, 5, 240, 40, True, "HS", 1), (40, 5, 240, 40, True, "HS", 1),
    (40, 5, 120, 48, True, "HS", 1), (48, 5, 144, 48, True, "HS", 1), (48, 5, 288, 96, True, "HS", 2),
    (96, 5, 576, 96, True, "HS", 1), (96, 5, 576, 96, True, "HS", 1),
)


def _make_divisible(v: float, divisor: int = 8) -> int:
    """torchvision's channel rounding: to a multiple of divisor, never below 90% of v."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


def _conv_norm_act(nn: ModuleType, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1,
                   activation=None):
    """torchvision's Conv2dNormActivation: conv (no bias) -> BatchNorm2d(eps 1e-3, momentum 0.01) -> activation."""
    layers = [nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
              nn.BatchNorm2d(cout, eps=0.001, momentum=0.01)]
    if activation is not None:
        layers.append(activation(inplace=True))
    return nn.Sequential(*layers)


@functools.cache
def _mobilenet_classes(nn: ModuleType) -> tuple[type, type, type]:
    class SqueezeExcitation(nn.Module):
        """Channel gates: global average pool, 1x1 conv, ReLU, 1x1 conv, Hardsigmoid, times the input."""

        def __init__(self, channels: int, squeeze: int):
            super().__init__()
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.fc1 = nn.Conv2d(channels, squeeze, 1)
            self.fc2 = nn.Conv2d(squeeze, channels, 1)
            self.activation = nn.ReLU()
            self.scale_activation = nn.Hardsigmoid()

        def forward(self, x):
            scale = self.fc2(self.activation(self.fc1(self.avgpool(x))))
            return self.scale_activation(scale) * x

    class InvertedResidual(nn.Module):
        """1x1 expansion, depthwise kxk, optional squeeze-excitation, 1x1 projection; a residual when shapes allow."""

        def __init__(self, cin: int, kernel: int, expanded: int, cout: int, use_se: bool, act: str, stride: int):
            super().__init__()
            activation = nn.Hardswish if act == "HS" else nn.ReLU6
            layers = []
            if expanded != cin:
                layers.append(_conv_norm_act(nn, cin, expanded, 1, activation=activation))
            layers.append(_conv_norm_act(nn, expanded, expanded, kernel, stride, groups=expanded,
                                         activation=activation))
            if use_se:
                layers.append(SqueezeExcitation(expanded, _make_divisible(expanded // 4)))
            layers.append(_conv_norm_act(nn, expanded, cout, 1))
            self.block = nn.Sequential(*layers)
            self.use_res_connect = stride == 1 and cin == cout

        def forward(self, x):
            result = self.block(x)
            if self.use_res_connect:
                result += x
            return result

    class MobileNetV3(nn.Module):
        """Stem, the inverted residual blocks, a 1x1 conv to 6x the last width, pool, a two-layer classifier."""

        def __init__(self, num_classes: int = 1000, last_channel: int = 1024):
            super().__init__()
            layers = [_conv_norm_act(nn, 3, 16, 3, 2, activation=nn.Hardswish)]
            layers += [InvertedResidual(*config) for config in MOBILENET_V3_SMALL]
            last_conv = 6 * MOBILENET_V3_SMALL[-1][3]
            layers.append(_conv_norm_act(nn, MOBILENET_V3_SMALL[-1][3], last_conv, 1, activation=nn.Hardswish))
            self.features = nn.Sequential(*layers)
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.classifier = nn.Sequential(nn.Linear(last_conv, last_channel), nn.Hardswish(inplace=True),
                                            nn.Dropout(0.2, inplace=True), nn.Linear(last_channel, num_classes))

        def forward(self, x):
            return self.classifier(self.avgpool(self.features(x)).flatten(1))

    return SqueezeExcitation, InvertedResidual, MobileNetV3


def mobilenet_v3_small(nn: ModuleType = engine.nn, num_classes: int = 1000):
    """torchvision's MobileNetV3-small layout and keys, with ReLU6 (MobileNetV2's) where V3 has ReLU."""
    return _mobilenet_classes(nn)[2](num_classes)


# -- a small UNet ---------------------------------------------------------------------------------------
def _double_conv(nn: ModuleType, cin: int, cout: int, norm: str):
    """Two 3x3 conv/norm/ReLU layers; norm is 'group' (GroupNorm of 4 groups) or 'instance' (InstanceNorm2d)."""
    def norm_layer():
        return nn.GroupNorm(4, cout) if norm == "group" else nn.InstanceNorm2d(cout, affine=True)
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), norm_layer(), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, padding=1), norm_layer(), nn.ReLU(inplace=True))


@functools.cache
def _unet_class(nn: ModuleType) -> type:
    cat = _library(nn).cat

    class UNet(nn.Module):
        """Two down steps and two up steps (a transposed conv, then bilinear upsampling), with skip concatenation."""

        def __init__(self, in_channels: int = 3, classes: int = 2, width: int = 16):
            super().__init__()
            w = width
            self.inc = _double_conv(nn, in_channels, w, "group")
            self.down1 = nn.Sequential(nn.MaxPool2d(2), _double_conv(nn, w, 2 * w, "group"))
            self.down2 = nn.Sequential(nn.MaxPool2d(2), _double_conv(nn, 2 * w, 4 * w, "instance"))
            self.up1 = nn.ConvTranspose2d(4 * w, 2 * w, 2, stride=2)
            self.conv1 = _double_conv(nn, 4 * w, 2 * w, "instance")
            self.up2 = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
            self.conv2 = _double_conv(nn, 3 * w, w, "group")
            self.outc = nn.Conv2d(w, classes, 1)

        def forward(self, x):
            x1 = self.inc(x)
            x2 = self.down1(x1)
            x = self.conv1(cat([self.up1(self.down2(x2)), x2], 1))
            x = self.conv2(cat([self.up2(x), x1], 1))
            return self.outc(x)

    return UNet


def unet(nn: ModuleType = engine.nn, in_channels: int = 3, classes: int = 2, width: int = 16):
    """A small UNet: GroupNorm and InstanceNorm, ConvTranspose2d and bilinear Upsample, skip concatenation."""
    return _unet_class(nn)(in_channels, classes, width)
