"""The defect CNN (PyTorch; training only, never imported at inference).

A plain 7-conv network, about 170 M multiply-adds on a 192x144 frame (300 M at 256x192, the
input from defect-2026.12.07-s9) with widths 24-48-96-192 (the 16-32-64-128 net of
defect-2026.12.06-s3 and earlier, about 75 M, underfitted), optionally behind a stem: one
stride-1 conv at full input resolution (``stem`` channels; 8 add about 14 M multiply-adds)
before the first stride-2 conv. Without the stem (up to s4) the net never learned
hairline cracks, a sub-pixel line at 192x144: s4 scores ok and cracked bottles alike (0.58 and
0.59 on average). In short bottle-only runs (741 frames, 12 epochs) neither the stem alone nor
the per-cell loss of ``train.py`` alone learned them (average precision 0.72 either way on
validation bottles, ok vs crack); both together did (0.85 with a 16-channel stem, 0.95 with 8;
one seed each). Its head
is a 1x1 conv that turns the last feature map into one score map per class (a class activation
map); the class logits pool each map with a blend of mean and max. The same maps are exported as
the model's second output, so the operator's heat map is exactly what produced the score, not a
post-hoc explanation. Max pooling keeps a small crack from being averaged away over a large frame.
"""

from __future__ import annotations

import torch
from torch import nn

# ImageNet-like normalisation baked into the graph so inference feeds plain [0, 1] RGB.
MEAN = (0.45, 0.42, 0.38)
STD = (0.25, 0.25, 0.25)
WIDTHS: tuple[int, int, int, int] = (24, 48, 96, 192)
STEM = 8


def _block(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class DefectNet(nn.Module):
    """Input (N, 3, H, W) RGB in [0, 1]; outputs logits (N, C) and class maps (N, C, H/16, W/16)."""

    def __init__(
        self,
        num_classes: int,
        widths: tuple[int, int, int, int] = WIDTHS,
        max_weight: float = 0.5,
        stem: int = 0,
    ):
        super().__init__()
        c1, c2, c3, c4 = widths
        # stem > 0: a stride-1 conv at full resolution first (``stem`` channels); 0: none.
        first = nn.Sequential(_block(3, stem, 1), _block(stem, c1, 2)) if stem else _block(3, c1, 2)
        self.features = nn.Sequential(
            first,
            _block(c1, c2, 2),
            _block(c2, c2, 1),
            _block(c2, c3, 2),
            _block(c3, c3, 1),
            _block(c3, c4, 2),
            _block(c4, c4, 1),
        )
        self.dropout = nn.Dropout2d(0.1)
        self.head = nn.Conv2d(c4, num_classes, 1)
        self.max_weight = max_weight
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = (x - self.get_buffer("mean")) / self.get_buffer("std")
        maps = self.head(self.dropout(self.features(x)))
        pooled_mean = maps.mean(dim=(2, 3))
        pooled_max = maps.amax(dim=(2, 3))
        logits = (1 - self.max_weight) * pooled_mean + self.max_weight * pooled_max
        return logits, maps


class FlipAveraged(nn.Module):
    """``net`` scored on the frame and on its mirror image, averaged: the exported model.

    Damage has no handedness, but a small net trained on generated frames does: on the held-out
    frames of bench/defects.py, defect-2026.12.07-s6's recall at <= 1 % false freezes was 0.61
    on the frame alone and 0.74 averaged with its mirror (AP 0.980 -> 0.984), for twice the
    inference (s7: p50 11.1 ms per 1280x720 frame, letterbox included, on one core of a busy
    machine; s6 alone 4.2 ms; the goal is 15). The class maps of the mirror image are mirrored
    back before averaging, so the heat map still points at the damage.
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n = x.shape[0]
        logits, maps = self.net(torch.cat([x, torch.flip(x, dims=[3])], dim=0))
        mirrored = torch.flip(maps[n:], dims=[3])
        return (logits[:n] + logits[n:]) * 0.5, (maps[:n] + mirrored) * 0.5
