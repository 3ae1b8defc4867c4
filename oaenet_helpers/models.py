"""OAENet built from its parts: maintenance branch, attention branch, fusion, stack block.

The layer sizes follow the official PyTorch code of Wang, Zeng, Liu and Zeng,
"OAENet: Oriented attention ensemble for accurate facial expression recognition",
Pattern Recognition 112 (2021) 107694, repository ``Gavinic/OAENET``
(``network/oaenet.py``, ``network/mobilenet.py``, ``network/unet_like.py``).
Nothing is downloaded, and every registered parameter is used.

Data flow for a ``(B, 3, S, S)`` face, ``S`` a multiple of 32::

    image ──────────── MaintenanceBranch ── x_m (B, 32, S/4, S/4) ─┐
                                                                   ├─ Fusion ── StackBlock ── (B, 1280) ── classifier ── logits
    image × mask ───── AttentionBranch ──── x_a (B, 32, S/4, S/4) ─┘
                           └── auxiliary head (training only) ── seg_logits (B, 2, S, S)

Example:
    >>> model = oaenet(num_classes=7).eval()
    >>> image = torch.randn(2, 3, 96, 96)
    >>> model(image, image).shape
    torch.Size([2, 7])
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import NamedTuple, Optional

import numpy as np
import torch
from torch import Tensor, nn

logger = logging.getLogger(__name__)

#: MobileNetV2 stages of the maintenance branch, after its 32-channel stem.
MAINTENANCE_SETTING: tuple[tuple[int, int, int, int], ...] = (
    # t, c, n, s
    (1, 16, 1, 1),
    (6, 24, 2, 2),
)

#: MobileNetV2 stages of the stack block. The official code reuses the whole
#: ImageNet table (Sandler et al., CVPR 2018, Table 2) on the 32-channel fused
#: map, so the first two stages appear a second time here.
STACK_SETTING: tuple[tuple[int, int, int, int], ...] = (
    # t, c, n, s
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)

STEM_CHANNELS = 32
FUSED_CHANNELS = 32  # both branches end here, so their maps can be multiplied
EMBEDDING_CHANNELS = 1280
ATTENTION_CHANNELS = (64, 128, 256)  # encoder widths at S/2, S/4, S/8
ATTENTION_RESIDUAL_BLOCKS = 6
SEGMENTATION_CLASSES = 2  # auxiliary head: background, weighted region
DROPOUT = 0.2

#: The input side must be a multiple of this. The attention branch alone needs
#: a multiple of 16, so that its skips and upsampled maps have equal sizes (the
#: first residual block's 2×2 max-pool needs an even S/8). A multiple of 32 also
#: keeps every stride-2 stage of the stack block exact down to S/32.
INPUT_MULTIPLE = 32

FUSION_MODES = ("residual", "product", "concat", "none")

#: Parameter counts of the official model's parts that take part in training
#: (7 classes), counted from the modules in ``Gavinic/OAENET`` ``network/``.
OFFICIAL_PARAMETER_COUNTS: dict[str, int] = {
    "maintenance_branch": 16_624,
    "attention_branch": 9_023_106,
    "stack_block": 2_222_944,
    "classifier": 8_967,
    "total": 11_271_641,
}

#: Parameters of torchvision's ResNet-18 (1000 ImageNet classes). The official
#: ``Unet_like`` registers a whole pretrained one (``base_model``), downloading
#: its weights at construction, and ``forward`` reaches only its ``bn1``
#: (128 parameters). The other 11,689,384 never get a gradient, so the official
#: attention module reports 20,712,490 parameters in all.
RESNET18_PARAMETERS = 11_689_512
RESNET18_BN1_PARAMETERS = 128

#: Input normalisation of the official data loader (``data/dataset.py``):
#: ``(pixel / 255 - 0.456) / 0.225`` on every channel.
IMAGE_MEAN = (0.456, 0.456, 0.456)
IMAGE_STD = (0.225, 0.225, 0.225)

Setting = Sequence[Sequence[int]]


class InputShapeError(ValueError):
    """A model input has the wrong dtype, rank, channel count or spatial size."""


# --------------------------------------------------------------------------
# Building blocks


class ConvBNActivation(nn.Sequential):
    """Convolution without bias, batch norm, then an activation.

    ``padding = (kernel_size - 1) // 2``, so a stride-2 layer halves an even side
    for kernel sizes 1, 3 and 4 alike.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        groups: int = 1,
        activation: type[nn.Module] = nn.ReLU6,
    ) -> None:
        padding = (kernel_size - 1) // 2
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, groups=groups, bias=False),
            nn.BatchNorm2d(out_channels),
            activation(inplace=True),
        )
        self.out_channels = out_channels


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1×1 expansion, 3×3 depthwise, 1×1 linear projection.

    The shortcut is added only when the block keeps both size and width
    (``stride == 1`` and ``in_channels == out_channels``).

    Shapes: ``(B, in_channels, H, W)`` → ``(B, out_channels, ceil(H / stride), ceil(W / stride))``.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"InvertedResidual stride must be 1 or 2, got {stride}.")
        if expand_ratio < 1:
            raise ValueError(f"InvertedResidual expand_ratio must be at least 1, got {expand_ratio}.")
        self.stride = stride
        self.use_shortcut = stride == 1 and in_channels == out_channels
        hidden_channels = int(round(in_channels * expand_ratio))

        layers: list[nn.Module] = []
        if expand_ratio != 1:
            # pointwise expansion
            layers.append(ConvBNActivation(in_channels, hidden_channels, kernel_size=1))
        layers += [
            # depthwise
            ConvBNActivation(hidden_channels, hidden_channels, stride=stride, groups=hidden_channels),
            # pointwise-linear: no activation, so the narrow output keeps its information
            nn.Conv2d(hidden_channels, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
        ]
        self.conv = nn.Sequential(*layers)
        self.out_channels = out_channels

    def forward(self, x: Tensor) -> Tensor:
        if self.use_shortcut:
            return x + self.conv(x)
        return self.conv(x)


def check_setting(setting: Setting, name: str = "inverted residual setting") -> tuple[tuple[int, int, int, int], ...]:
    """Validate a MobileNetV2 stage table of ``(t, c, n, s)`` rows and return it as tuples.

    ``t`` is the expansion ratio, ``c`` the output channels, ``n`` the number of
    blocks and ``s`` the stride of the first block.

    Raises:
        ValueError: the table is empty, a row does not have four entries, or an
            entry is out of range; the message names the row.
    """
    rows = tuple(tuple(int(value) for value in row) for row in setting)
    if not rows:
        raise ValueError(f"The {name} is empty; give at least one (t, c, n, s) row.")
    for index, row in enumerate(rows):
        if len(row) != 4:
            raise ValueError(f"Row {index} of the {name} must be (t, c, n, s), got {row}.")
        t, c, n, s = row
        if t < 1 or c < 1 or n < 1 or s not in (1, 2):
            raise ValueError(
                f"Row {index} of the {name} is invalid: {row}; t, c and n must be at least 1 and s must be 1 or 2."
            )
    return rows


def make_inverted_residual_stages(in_channels: int, setting: Setting) -> tuple[list[nn.Module], int]:
    """Build the blocks of a ``(t, c, n, s)`` table; return them and the output channels."""
    blocks: list[nn.Module] = []
    channels = in_channels
    for t, c, n, s in check_setting(setting):
        for index in range(n):
            blocks.append(InvertedResidual(channels, c, stride=s if index == 0 else 1, expand_ratio=t))
            channels = c
    return blocks, channels


class BasicBlock(nn.Module):
    """ResNet basic block: two 3×3 conv-BN, shortcut added before the last ReLU.

    With ``stride=2`` the shortcut is a 2×2 max-pool (the channels stay equal,
    so no projection is needed). Shapes: ``(B, C, H, W)`` → ``(B, C, H / stride, W / stride)``.
    """

    def __init__(self, channels: int, stride: int = 1) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"BasicBlock stride must be 1 or 2, got {stride}.")
        self.conv1 = nn.Conv2d(channels, channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.shortcut: nn.Module = nn.MaxPool2d(kernel_size=2) if stride == 2 else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class DecoderBlock(nn.Module):
    """UNet decoder step: 4×4 transposed conv doubles the size, concatenate the skip, 3×3 conv + ReLU.

    Shapes: ``x (B, in_channels, H, W)`` and ``skip (B, skip_channels, 2H, 2W)``
    → ``(B, out_channels, 2H, 2W)``. Both convolutions have a bias and no batch
    norm, as in the official decoder.
    """

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, out_channels, kernel_size=4, stride=2, padding=1)
        self.conv = nn.Sequential(
            nn.Conv2d(out_channels + skip_channels, out_channels, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        upsampled = self.up(x)
        return self.conv(torch.cat((upsampled, skip), dim=1))


# --------------------------------------------------------------------------
# Branches


class MaintenanceBranch(nn.Module):
    """MobileNetV2's first layers on the plain face: ``(B, 3, S, S)`` → ``(B, 32, S/4, S/4)``.

    Stem (3×3 conv, stride 2, 32 channels, BN, ReLU6), the stages of
    :data:`MAINTENANCE_SETTING`, then a 1×1 conv-BN-ReLU6 to 32 channels.
    """

    def __init__(self, setting: Setting = MAINTENANCE_SETTING, out_channels: int = FUSED_CHANNELS) -> None:
        super().__init__()
        blocks, channels = make_inverted_residual_stages(STEM_CHANNELS, setting)
        self.features = nn.Sequential(
            ConvBNActivation(3, STEM_CHANNELS, stride=2),
            *blocks,
            ConvBNActivation(channels, out_channels, kernel_size=1),
        )
        self.out_channels = out_channels

    def forward(self, image: Tensor) -> Tensor:
        return self.features(image)


class AuxiliaryHead(nn.Module):
    """Decode the attention map back to full size to predict the thresholded mask.

    ``x_a (B, 32, S/4, S/4)`` and the encoder's first map ``(B, 64, S/2, S/2)``
    → ``(B, 2, S, S)`` logits. The two 3×3 convolutions follow each other with
    no activation between them, as in the official ``decode0``.
    """

    def __init__(self, in_channels: int = FUSED_CHANNELS, skip_channels: int = ATTENTION_CHANNELS[0]) -> None:
        super().__init__()
        self.decode = DecoderBlock(in_channels, skip_channels, in_channels)
        self.upsample = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
            nn.Conv2d(in_channels, in_channels, kernel_size=3, padding=1, bias=False),
            nn.Conv2d(in_channels, in_channels, kernel_size=3, padding=1, bias=False),
        )
        self.classifier = nn.Conv2d(in_channels, SEGMENTATION_CLASSES, kernel_size=1)

    def forward(self, attention_map: Tensor, skip: Tensor) -> Tensor:
        decoded = self.decode(attention_map, skip)  # (B, 32, S/2, S/2)
        return self.classifier(self.upsample(decoded))  # (B, 2, S, S)


class AttentionBranch(nn.Module):
    """UNet-like encoder/decoder on the mask-weighted face: ``(B, 3, S, S)`` → ``(B, 32, S/4, S/4)``.

    The encoder runs a 7×7 stride-2 conv to 64 channels with BN and ReLU (S/2),
    two 4×4 stride-2 conv-BN-ReLU layers to 128 (S/4) and 256 (S/8) channels,
    and six basic blocks at 256 channels, the first with stride 2 (S/16). The
    decoder goes up to 128 channels at S/8 (skip: the 256-channel map), then to
    64 at S/4 (skip: the 128-channel map), and a 1×1 conv-BN-ReLU gives 32.

    ``aux_head=True`` adds :class:`AuxiliaryHead`, which runs in training mode
    only (or through :meth:`segment`).
    """

    def __init__(self, out_channels: int = FUSED_CHANNELS, aux_head: bool = True) -> None:
        super().__init__()
        c1, c2, c3 = ATTENTION_CHANNELS
        self.stem = nn.Sequential(
            nn.Conv2d(3, c1, kernel_size=7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(c1),
            nn.ReLU(inplace=True),
        )
        self.down1 = ConvBNActivation(c1, c2, kernel_size=4, stride=2, activation=nn.ReLU)
        self.down2 = ConvBNActivation(c2, c3, kernel_size=4, stride=2, activation=nn.ReLU)
        self.bottleneck = nn.Sequential(
            BasicBlock(c3, stride=2),
            *[BasicBlock(c3) for _ in range(ATTENTION_RESIDUAL_BLOCKS - 1)],
        )
        self.up1 = DecoderBlock(c3, skip_channels=c3, out_channels=c2)
        self.up2 = DecoderBlock(c2, skip_channels=c2, out_channels=c1)
        self.head = ConvBNActivation(c1, out_channels, kernel_size=1, activation=nn.ReLU)
        self.aux_head: Optional[AuxiliaryHead] = AuxiliaryHead(out_channels, c1) if aux_head else None
        self.out_channels = out_channels

    def encode_decode(self, weighted_image: Tensor) -> tuple[Tensor, Tensor]:
        """Return the attention map ``(B, 32, S/4, S/4)`` and the first encoder map ``(B, 64, S/2, S/2)``."""
        skip_half = self.stem(weighted_image)  # (B, 64, S/2, S/2)
        skip_quarter = self.down1(skip_half)  # (B, 128, S/4, S/4)
        skip_eighth = self.down2(skip_quarter)  # (B, 256, S/8, S/8)
        bottleneck = self.bottleneck(skip_eighth)  # (B, 256, S/16, S/16)
        decoded = self.up1(bottleneck, skip_eighth)  # (B, 128, S/8, S/8)
        decoded = self.up2(decoded, skip_quarter)  # (B, 64, S/4, S/4)
        return self.head(decoded), skip_half

    def segment(self, weighted_image: Tensor) -> Tensor:
        """Run the auxiliary head in any mode: ``(B, 3, S, S)`` → ``(B, 2, S, S)`` logits.

        Raises:
            RuntimeError: the branch was built with ``aux_head=False``.
        """
        if self.aux_head is None:
            raise RuntimeError("This attention branch has no auxiliary head; build it with aux_head=True.")
        attention_map, skip_half = self.encode_decode(weighted_image)
        return self.aux_head(attention_map, skip_half)

    def forward(self, weighted_image: Tensor) -> tuple[Tensor, Optional[Tensor]]:
        """Return ``(attention_map, seg_logits)``; ``seg_logits`` is ``None`` outside training or without the head."""
        attention_map, skip_half = self.encode_decode(weighted_image)
        seg_logits: Optional[Tensor] = None
        if self.training and self.aux_head is not None:
            seg_logits = self.aux_head(attention_map, skip_half)
        return attention_map, seg_logits


class Fusion(nn.Module):
    """Combine the maintenance map ``x_m`` and the attention map ``x_a`` (both ``(B, 32, H, W)``).

    Modes:
        ``"residual"``: ``x_m * (x_a + 1)``, the official code's choice, so a
        zero attention map leaves ``x_m`` unchanged.
        ``"product"``: ``x_m * x_a``, the plain element-wise product, so a zero
        attention value erases ``x_m`` there.
        ``"concat"``: concatenate to 64 channels, then 1×1 conv-BN-ReLU6 back to 32.
        ``"none"``: ``x_m`` only (ablation without the attention branch).
    """

    def __init__(self, mode: str = "residual", channels: int = FUSED_CHANNELS) -> None:
        super().__init__()
        if mode not in FUSION_MODES:
            raise ValueError(f"Unknown fusion mode {mode!r}; choose one of {FUSION_MODES}.")
        self.mode = mode
        self.project: Optional[nn.Module] = (
            ConvBNActivation(2 * channels, channels, kernel_size=1) if mode == "concat" else None
        )

    def forward(self, maintenance_map: Tensor, attention_map: Optional[Tensor]) -> Tensor:
        if self.mode == "none":
            return maintenance_map
        if attention_map is None:
            raise ValueError(f"Fusion mode {self.mode!r} needs an attention map, got None.")
        if self.mode == "residual":
            return maintenance_map * (attention_map + 1)
        if self.mode == "product":
            return maintenance_map * attention_map
        assert self.project is not None
        return self.project(torch.cat((maintenance_map, attention_map), dim=1))

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}"


class StackBlock(nn.Module):
    """MobileNetV2 stages on the fused map, 1×1 to 1280, global average pool.

    ``(B, 32, S/4, S/4)`` → ``(B, 1280)``. The table's four stride-2 stages take
    the map to ``ceil(S/64)`` (4×4 for S = 224, where ImageNet MobileNetV2 ends at
    7×7). ``features[-1]`` (the 1×1 conv-BN-ReLU6) is the last spatial layer, a
    natural Grad-CAM target.
    """

    def __init__(
        self,
        in_channels: int = FUSED_CHANNELS,
        setting: Setting = STACK_SETTING,
        out_channels: int = EMBEDDING_CHANNELS,
    ) -> None:
        super().__init__()
        blocks, channels = make_inverted_residual_stages(in_channels, setting)
        self.features = nn.Sequential(*blocks, ConvBNActivation(channels, out_channels, kernel_size=1))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.out_channels = out_channels

    def forward(self, fused_map: Tensor) -> Tensor:
        feature_map = self.features(fused_map)  # (B, 1280, ceil(S/64), ceil(S/64))
        return torch.flatten(self.pool(feature_map), 1)


# --------------------------------------------------------------------------
# Whole model


class OAENetOutput(NamedTuple):
    """Training-mode output of :class:`OAENet`.

    Attributes:
        logits: ``(B, num_classes)`` class scores before softmax.
        embedding: ``(B, 1280)`` pooled features (the island loss acts on these).
        seg_logits: ``(B, 2, S, S)`` auxiliary mask logits, or ``None`` when the
            model has no auxiliary head.
    """

    logits: Tensor
    embedding: Tensor
    seg_logits: Optional[Tensor]


class OAENet(nn.Module):
    """Oriented attention ensemble network for facial expression recognition.

    Args:
        num_classes: number of expression classes.
        fusion: one of :data:`FUSION_MODES`; ``"none"`` builds no attention branch.
        aux_head: build the auxiliary mask head (used by the Lovász-softmax loss).
        dropout: dropout probability before the linear classifier.

    ``forward(image, weighted_image)`` takes two ``(B, 3, S, S)`` tensors
    normalised with :data:`IMAGE_MEAN` and :data:`IMAGE_STD` (``S`` a multiple of
    32). In eval mode it returns ``(B, num_classes)`` logits; in training mode an
    :class:`OAENetOutput`.
    """

    def __init__(
        self,
        num_classes: int = 7,
        fusion: str = "residual",
        aux_head: bool = True,
        dropout: float = DROPOUT,
    ) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be at least 1, got {num_classes}.")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}.")
        if fusion not in FUSION_MODES:
            raise ValueError(f"Unknown fusion mode {fusion!r}; choose one of {FUSION_MODES}.")
        if fusion == "none" and aux_head:
            logger.debug("fusion='none' builds no attention branch, so aux_head=True has no effect")
        self.num_classes = num_classes
        self.maintenance_branch = MaintenanceBranch()
        self.attention_branch: Optional[AttentionBranch] = (
            AttentionBranch(aux_head=aux_head) if fusion != "none" else None
        )
        self.fusion = Fusion(fusion)
        self.stack_block = StackBlock()
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(EMBEDDING_CHANNELS, num_classes))
        self._init_weights()

    def _init_weights(self) -> None:
        # MobileNetV2's scheme (torchvision), applied to every part. The official
        # code applies it to the MobileNetV2 parts only and leaves the UNet and
        # the classifier at PyTorch's defaults.
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.kaiming_normal_(module.weight, mode="fan_out")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0, 0.01)
                nn.init.zeros_(module.bias)

    @property
    def cam_target_layer(self) -> nn.Module:
        """Last spatial layer (``stack_block.features[-1]``, 1280 channels at ceil(S/64)), for Grad-CAM."""
        return self.stack_block.features[-1]

    def forward(self, image: Tensor, weighted_image: Optional[Tensor] = None):
        """Classify a batch of faces.

        Args:
            image: ``(B, 3, S, S)`` normalised face.
            weighted_image: ``(B, 3, S, S)`` normalised ``face × weighted mask``;
                may be ``None`` only with ``fusion="none"``.

        Returns:
            Eval mode: ``(B, num_classes)`` logits. Training mode: :class:`OAENetOutput`.

        Raises:
            InputShapeError: an input is not ``(B, 3, S, S)`` with ``S`` a multiple
                of 32, or the two inputs differ in shape.
        """
        check_input(image, "image")
        maintenance_map = self.maintenance_branch(image)  # (B, 32, S/4, S/4)

        attention_map: Optional[Tensor] = None
        seg_logits: Optional[Tensor] = None
        if self.attention_branch is not None:
            if weighted_image is None:
                raise InputShapeError(
                    f"fusion={self.fusion.mode!r} needs weighted_image (the face times its weighted mask), got None."
                )
            check_input(weighted_image, "weighted_image")
            if weighted_image.shape != image.shape:
                raise InputShapeError(
                    f"image and weighted_image must have the same shape, got {tuple(image.shape)} "
                    f"and {tuple(weighted_image.shape)}."
                )
            attention_map, seg_logits = self.attention_branch(weighted_image)  # (B, 32, S/4, S/4)

        fused_map = self.fusion(maintenance_map, attention_map)
        embedding = self.stack_block(fused_map)  # (B, 1280)
        logits = self.classifier(embedding)
        if self.training:
            return OAENetOutput(logits, embedding, seg_logits)
        return logits


def oaenet(num_classes: int = 7, **kwargs) -> OAENet:
    """Build an :class:`OAENet` with freshly initialised weights (nothing is downloaded).

    Keyword arguments go to :class:`OAENet` (``fusion``, ``aux_head``, ``dropout``).
    """
    return OAENet(num_classes=num_classes, **kwargs)


# --------------------------------------------------------------------------
# Inputs and bookkeeping


def check_input(tensor: Tensor, name: str = "input") -> None:
    """Raise :class:`InputShapeError` unless ``tensor`` is floating ``(B, 3, S, S)`` with ``S`` a multiple of 32."""
    if not tensor.is_floating_point():
        raise InputShapeError(
            f"{name} must be a floating-point tensor, got {tensor.dtype}; convert uint8 faces and masks "
            "with models.to_model_inputs(face_images, masks), which also normalises them."
        )
    if tensor.dim() != 4 or tensor.shape[1] != 3:
        raise InputShapeError(f"{name} must have shape (B, 3, S, S), got {tuple(tensor.shape)}.")
    height, width = int(tensor.shape[2]), int(tensor.shape[3])
    if height != width or height % INPUT_MULTIPLE or height == 0:
        raise InputShapeError(
            f"{name} must be square with a side that is a multiple of {INPUT_MULTIPLE} "
            f"(for example 96, 160 or 224), got {height}x{width}; resize or crop the face first."
        )


def to_model_inputs(
    face_images: np.ndarray,
    masks: np.ndarray,
    mean: Sequence[float] = IMAGE_MEAN,
    std: Sequence[float] = IMAGE_STD,
) -> tuple[Tensor, Tensor]:
    """Turn aligned faces and their weighted masks into the two model inputs.

    Args:
        face_images: ``(S, S, 3)`` or ``(B, S, S, 3)`` uint8 RGB.
        masks: ``(S, S)`` or ``(B, S, S)`` float weights, one per pixel.
        mean, std: per-channel normalisation applied after scaling to ``[0, 1]``.

    Returns:
        ``image`` and ``weighted_image``, each ``(B, 3, S, S)`` float32:
        ``(face / 255 - mean) / std`` and ``(face × mask / 255 - mean) / std``.

    Raises:
        ValueError: wrong dtype or shapes, mismatched sizes, or a non-finite mask value.
    """
    faces = np.asarray(face_images)
    weights = np.asarray(masks, dtype=np.float32)
    if faces.dtype != np.uint8:
        raise ValueError(f"face_images must be uint8 RGB, got dtype {faces.dtype}; use faces.load_image first.")
    if faces.ndim == 3:
        faces = faces[None]
    if weights.ndim == 2:
        weights = weights[None]
    if faces.ndim != 4 or faces.shape[-1] != 3:
        raise ValueError(f"face_images must have shape (S, S, 3) or (B, S, S, 3), got {faces.shape}.")
    if weights.shape != faces.shape[:3]:
        raise ValueError(
            f"masks must have shape {faces.shape[:3]} to match the faces (one weight per pixel), got {weights.shape}."
        )
    if not np.all(np.isfinite(weights)):
        raise ValueError("masks contain NaN or infinite values; recompute the weighted mask.")

    scaled = torch.from_numpy(faces).permute(0, 3, 1, 2).float() / 255.0  # (B, 3, S, S) in [0, 1]
    weight_map = torch.from_numpy(weights)[:, None]  # (B, 1, S, S)
    mean_t = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    image = (scaled - mean_t) / std_t
    weighted_image = (scaled * weight_map - mean_t) / std_t
    return image.contiguous(), weighted_image.contiguous()


def count_parameters(module: Optional[nn.Module]) -> int:
    """Return the number of parameters in ``module`` (0 for ``None``)."""
    if module is None:
        return 0
    return sum(parameter.numel() for parameter in module.parameters())


def parameter_counts(model: OAENet) -> dict[str, int]:
    """Count parameters per part, keyed like :data:`OFFICIAL_PARAMETER_COUNTS`.

    ``"fusion"`` is added when the fusion has weights (``"concat"``).
    """
    counts = {
        "maintenance_branch": count_parameters(model.maintenance_branch),
        "attention_branch": count_parameters(model.attention_branch),
        "stack_block": count_parameters(model.stack_block),
        "classifier": count_parameters(model.classifier),
    }
    fusion_count = count_parameters(model.fusion)
    if fusion_count:
        counts["fusion"] = fusion_count
    counts["total"] = count_parameters(model)
    return counts
