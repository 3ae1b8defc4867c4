"""Matplotlib diagrams of OAENet's building blocks, drawn from the sizes in :mod:`oaenet_helpers.models`.

Tensors are boxes whose height grows with the channel count; operations are
labelled arrows. Both functions return the figure and draw nothing else, so a
chapter can save or show it.
"""

from __future__ import annotations

import math
from typing import Optional

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from oaenet_helpers.models import ATTENTION_CHANNELS, FUSED_CHANNELS, SEGMENTATION_CLASSES

TENSOR_COLOUR = "#cfe2f3"
EXPANDED_COLOUR = "#f9cb9c"
AUXILIARY_COLOUR = "#d9d2e9"
SKIP_COLOUR = "#6aa84f"


def _box(ax: Axes, x: float, y: float, width: float, height: float, label: str, colour: str, dashed: bool = False) -> None:
    patch = FancyBboxPatch(
        (x - width / 2, y - height / 2),
        width,
        height,
        boxstyle="round,pad=0.02,rounding_size=0.08",
        facecolor=colour,
        edgecolor="black",
        linestyle="--" if dashed else "-",
        linewidth=1.0,
    )
    ax.add_patch(patch)
    ax.text(x, y, label, ha="center", va="center", fontsize=8)


def _arrow(ax: Axes, start: tuple[float, float], end: tuple[float, float], label: str = "", colour: str = "black",
           curve: float = 0.0, dashed: bool = False, label_offset: tuple[float, float] = (0.0, 0.15)) -> None:
    arrow = FancyArrowPatch(
        start,
        end,
        arrowstyle="-|>",
        mutation_scale=10,
        color=colour,
        linestyle="--" if dashed else "-",
        connectionstyle=f"arc3,rad={curve}",
        linewidth=1.2,
    )
    ax.add_patch(arrow)
    if label:
        middle = ((start[0] + end[0]) / 2 + label_offset[0], (start[1] + end[1]) / 2 + label_offset[1])
        ax.text(*middle, label, ha="center", va="bottom", fontsize=7.5, color=colour)


def _new_axes(ax: Optional[Axes], figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    if ax is None:
        figure, ax = plt.subplots(figsize=figsize)
    else:
        figure = ax.figure
    ax.set_axis_off()
    ax.set_aspect("equal")
    return figure, ax


def draw_inverted_residual(
    in_channels: int = 24,
    out_channels: int = 24,
    expand_ratio: int = 6,
    stride: int = 1,
    side: int = 56,
    ax: Optional[Axes] = None,
) -> Figure:
    """Draw one MobileNetV2 inverted residual block as four tensors and three layers.

    Args:
        in_channels, out_channels, expand_ratio, stride: the block's settings
            (``t`` is ``expand_ratio``, ``s`` is ``stride``).
        side: input height and width in pixels, for the size labels.
        ax: axes to draw on; a new figure is made when ``None``.

    Returns:
        The figure. The shortcut arc appears only when the block has one
        (``stride == 1`` and equal channels).
    """
    figure, ax = _new_axes(ax, (9, 3.6))
    hidden = in_channels * expand_ratio
    out_side = math.ceil(side / stride)
    widest = max(hidden, out_channels, in_channels)

    def height(channels: int) -> float:
        return 0.5 + 2.2 * channels / widest

    tensors = [
        (0.0, in_channels, side, TENSOR_COLOUR),
        (4.0, hidden, side, EXPANDED_COLOUR),
        (8.0, hidden, out_side, EXPANDED_COLOUR),
        (12.0, out_channels, out_side, TENSOR_COLOUR),
    ]
    for x, channels, tensor_side, colour in tensors:
        _box(ax, x, 0.0, 1.2, height(channels), f"{tensor_side}×{tensor_side}\n×{channels}", colour)

    layers = [
        f"1×1 conv, BN, ReLU6\nexpand ×{expand_ratio}",
        f"3×3 depthwise, stride {stride}\nBN, ReLU6",
        "1×1 conv, BN\nlinear (no ReLU)",
    ]
    for (x_start, *_), (x_end, *_), label in zip(tensors, tensors[1:], layers):
        _arrow(ax, (x_start + 0.7, 0.0), (x_end - 0.7, 0.0), label, label_offset=(0.0, 0.08))

    if stride == 1 and in_channels == out_channels:
        top = height(widest) / 2 + 0.5
        _arrow(ax, (0.0, height(in_channels) / 2), (12.0, height(out_channels) / 2), colour=SKIP_COLOUR, curve=-0.2)
        ax.text(6.0, top + 0.9, "shortcut: output = input + block(input)", ha="center", fontsize=8, color=SKIP_COLOUR)
    ax.set_xlim(-1.0, 13.0)
    ax.set_ylim(-1.8, 3.2)
    ax.set_title(f"Inverted residual block (t={expand_ratio}, c={out_channels}, s={stride})", fontsize=10)
    return figure


def draw_attention_branch(size: int = 224, ax: Optional[Axes] = None) -> Figure:
    """Draw the attention branch as a U: encoder down the left, decoder up the right, skips across.

    Args:
        size: input side ``S`` in pixels, for the size labels.
        ax: axes to draw on; a new figure is made when ``None``.

    Returns:
        The figure. The auxiliary head (training only) is dashed.
    """
    figure, ax = _new_axes(ax, (11, 6.2))
    c1, c2, c3 = ATTENTION_CHANNELS
    level_y = [4.0, 3.0, 2.0, 1.0, 0.0]  # input side divided by 1, 2, 4, 8, 16

    def label(channels: int, level: int) -> str:
        side = size // 2**level
        return f"{channels} × {side}²"

    def width(channels: int) -> float:
        return 0.6 + 0.25 * math.log2(channels)

    encoder = [(3, 0), (c1, 1), (c2, 2), (c3, 3), (c3, 4)]
    encoder_x = [0.0, 0.6, 1.2, 1.8, 4.5]
    for (channels, level), x in zip(encoder, encoder_x):
        colour = EXPANDED_COLOUR if level == 4 else TENSOR_COLOUR
        _box(ax, x, level_y[level], width(channels), 0.55, label(channels, level), colour)
    encoder_steps = ["7×7 conv s2, BN, ReLU", "4×4 conv s2, BN, ReLU", "4×4 conv s2, BN, ReLU", "6 basic blocks\n(first: stride 2,\n2×2 max-pool shortcut)"]
    for index, step in enumerate(encoder_steps):
        start = (encoder_x[index], level_y[index] - 0.3)
        end = (encoder_x[index + 1] - (0.9 if index == 3 else 0.0), level_y[index + 1] + 0.3)
        _arrow(ax, start, end)
        text_y = level_y[4] if index == 3 else (start[1] + end[1]) / 2
        ax.text(start[0] - 0.25, text_y, step, ha="right", va="center", fontsize=7.5)

    decoder = [(c2, 3, 7.2), (c1, 2, 7.8), (FUSED_CHANNELS, 2, 11.2)]
    for channels, level, x in decoder:
        _box(ax, x, level_y[level], width(channels), 0.55, label(channels, level), TENSOR_COLOUR)
    _arrow(ax, (5.4, 0.2), (7.2, level_y[3] - 0.3), "4×4 transposed conv s2,\nconcat skip, 3×3 conv, ReLU",
           label_offset=(1.2, -0.45))
    _arrow(ax, (7.2, level_y[3] + 0.3), (7.8, level_y[2] - 0.3), "same, up again", label_offset=(1.0, -0.15))
    _arrow(ax, (8.9, level_y[2]), (10.2, level_y[2]), "1×1 conv,\nBN, ReLU", label_offset=(0.0, 0.05))
    ax.text(11.2, level_y[2] - 0.55, "x_a (to the fusion)", ha="center", va="top", fontsize=8, fontweight="bold")

    # Skip connections: encoder maps feed the decoder at the same size.
    _arrow(ax, (encoder_x[3] + 0.9, level_y[3]), (7.2 - 0.9, level_y[3]), f"skip {c3} ch", colour=SKIP_COLOUR)
    _arrow(ax, (encoder_x[2] + 0.9, level_y[2]), (7.8 - 0.9, level_y[2]), f"skip {c2} ch", colour=SKIP_COLOUR)

    # Auxiliary head, training only.
    _box(ax, 11.2, level_y[1], width(FUSED_CHANNELS), 0.55, label(FUSED_CHANNELS, 1), AUXILIARY_COLOUR, dashed=True)
    _box(ax, 11.2, level_y[0], width(SEGMENTATION_CLASSES) + 0.4, 0.55, label(SEGMENTATION_CLASSES, 0),
         AUXILIARY_COLOUR, dashed=True)
    _arrow(ax, (11.2, level_y[2] + 0.3), (11.2, level_y[1] - 0.3), dashed=True)
    _arrow(ax, (11.2, level_y[1] + 0.3), (11.2, level_y[0] - 0.3), dashed=True)
    # Notes start right of the widest auxiliary box so they never overlap it.
    note_x = 11.2 + max(width(FUSED_CHANNELS), width(SEGMENTATION_CLASSES) + 0.4) / 2 + 0.15
    ax.text(note_x, 2.5, "decoder step\n(skip: 64 ch)", ha="left", va="center", fontsize=7.5)
    ax.text(note_x, 3.5, "bilinear ×2,\ntwo 3×3 convs,\n1×1 conv to 2", ha="left", va="center", fontsize=7.5)
    ax.text(11.2, level_y[0] + 0.45, "auxiliary head (training only): mask logits", ha="center", va="bottom",
            fontsize=8, color="#674ea7")
    _arrow(ax, (encoder_x[1] + 0.9, level_y[1]), (11.2 - 0.9, level_y[1]), f"skip {c1} ch", colour=SKIP_COLOUR,
           dashed=True)

    ax.set_xlim(-3.2, 14.0)
    ax.set_ylim(-0.8, 5.0)
    ax.set_title(f"Attention branch on a {size}×{size} weighted face (channels × side²)", fontsize=10)
    return figure
