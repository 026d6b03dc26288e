"""The CRNN: a small conv stack that turns a 32-pixel-high line into one feature column per 4
input columns, a bidirectional LSTM over those columns (context: a smudged digit is read from
its neighbours' shapes and spacing), and a linear layer to the CTC classes.

Input ``N x 1 x 32 x W`` (W a multiple of 4), output ``N x W/4 x C``. The first convolution
has stride 2 and the stack pools height faster than width: training runs on one shared CPU
core, so the FLOPs per input column are kept to about 0.2 M.
"""

from __future__ import annotations

import torch
from torch import nn

from edge.vision.ocr.crnn.prep import HEIGHT, STRIDE

CHANNELS = (16, 32, 64, 96, 128)
HIDDEN = 96


def _block(cin: int, cout: int, stride: int = 1) -> list[nn.Module]:
    return [
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(),
    ]


class CrnnNet(nn.Module):
    """Conv features -> BiLSTM -> per-frame class logits."""

    def __init__(
        self, n_classes: int, channels: tuple[int, ...] = CHANNELS, hidden: int = HIDDEN
    ) -> None:
        super().__init__()
        self.spec = (n_classes, tuple(channels), hidden)  # what rebuilds it (export child)
        if HEIGHT != 32 or STRIDE != 4:
            raise ValueError("the conv stack is laid out for 32-row input and 4 columns per frame")
        c1, c2, c3, c4, c5 = channels
        self.features = nn.Sequential(
            *_block(1, c1, stride=2),  # 16 x W/2
            *_block(c1, c2),
            nn.MaxPool2d(2, 2),  # 8 x W/4
            *_block(c2, c3),
            nn.MaxPool2d((2, 1), (2, 1)),  # 4 x W/4
            *_block(c3, c4),
            nn.MaxPool2d((2, 1), (2, 1)),  # 2 x W/4
            nn.Conv2d(c4, c5, (2, 3), padding=(0, 1), bias=False),  # 1 x W/4
            nn.BatchNorm2d(c5),
            nn.ReLU(),
        )
        self.rnn = nn.LSTM(c5, hidden, batch_first=True, bidirectional=True)
        self.dropout = nn.Dropout(0.15)
        self.head = nn.Linear(2 * hidden, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``N x 1 x 32 x W`` -> logits ``N x W/4 x C``."""
        f = self.features(x).squeeze(2).transpose(1, 2)  # N x T x c5
        seq, _ = self.rnn(f)
        out: torch.Tensor = self.head(self.dropout(seq))
        return out


class SoftmaxWrapper(nn.Module):
    """What the ONNX file holds: the net followed by a softmax over classes."""

    def __init__(self, net: CrnnNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.net(x), dim=2)
