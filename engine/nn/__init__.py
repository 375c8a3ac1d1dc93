"""engine.nn: modules with PyTorch's names, registration rules and numerics."""

from engine.nn import functional, init  # noqa: F401
from engine.nn.activation import GELU, LeakyReLU, LogSoftmax, ReLU, Sigmoid, SiLU, Softmax, Tanh
from engine.nn.attention import MultiheadAttention
from engine.nn.containers import ModuleDict, ModuleList, Sequential
from engine.nn.conv import Conv1d, Conv2d
from engine.nn.dropout import Dropout
from engine.nn.embedding import Embedding
from engine.nn.flatten import Flatten, Unflatten
from engine.nn.layers import Identity, Linear
from engine.nn.loss import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, L1Loss, MSELoss, NLLLoss
from engine.nn.module import Module
from engine.nn.normalization import BatchNorm1d, BatchNorm2d, BatchNorm3d, LayerNorm
from engine.nn.parameter import Parameter
from engine.nn.pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d
from engine.nn.rnn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNBase, RNNCell, RNNCellBase
from engine.nn.transformer import (
    Transformer,
    TransformerDecoder,
    TransformerDecoderLayer,
    TransformerEncoder,
    TransformerEncoderLayer,
)
