"""OAENet's training loss: cross-entropy + λ·island loss + Lovász-softmax on the auxiliary head.

* Island loss (Cai et al., "Island loss for learning discriminative features in
  facial expression recognition", IEEE FG 2018): pulls each embedding towards
  its class centre and pushes the centres of different classes apart in angle.
* Lovász-softmax (Berman, Triki and Blaschko, "The Lovász-Softmax loss: a
  tractable surrogate for the optimization of the intersection-over-union
  measure in neural networks", CVPR 2018): a convex surrogate of the Jaccard
  (IoU) loss, here on the auxiliary mask prediction.

The weights default to the official training code (``Gavinic/OAENET``,
``utils/ohem.py``): island weight 0.1, pairwise weight λ1 = 0.1, Lovász weight
1.0 and mask threshold 0.5. Every function is vectorised (no loop over samples
or classes) and runs on whatever device its inputs are on.
"""

from __future__ import annotations

import logging
from typing import NamedTuple, Optional, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from oaenet_helpers.models import OAENetOutput

logger = logging.getLogger(__name__)

ISLAND_WEIGHT = 0.1
ISLAND_PAIR_WEIGHT = 0.1
LOVASZ_WEIGHT = 1.0
MASK_THRESHOLD = 0.5
LOVASZ_CLASS_MODES = ("present", "all")


class LossParts(NamedTuple):
    """The combined loss and its terms, each a scalar tensor.

    ``total = cross_entropy + island_weight * island + lovasz_weight * lovasz``.
    """

    total: Tensor
    cross_entropy: Tensor
    island: Tensor
    lovasz: Tensor


# --------------------------------------------------------------------------
# Island loss


def _check_labels(labels: Tensor, batch_size: int, num_classes: int, name: str = "labels") -> None:
    if labels.dim() != 1 or labels.shape[0] != batch_size:
        raise ValueError(f"{name} must have shape ({batch_size},), got {tuple(labels.shape)}.")
    if labels.dtype not in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
        raise ValueError(f"{name} must be integer class indices, got dtype {labels.dtype}.")
    if batch_size and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise ValueError(
            f"{name} must lie in [0, {num_classes - 1}], got values from {int(labels.min())} "
            f"to {int(labels.max())}; check num_classes and the label map."
        )


def class_means(embedding: Tensor, labels: Tensor, num_classes: int) -> tuple[Tensor, Tensor]:
    """Average the embeddings of each class in the batch.

    Args:
        embedding: ``(B, D)`` features.
        labels: ``(B,)`` class indices in ``[0, num_classes)``.

    Returns:
        ``means`` ``(num_classes, D)`` (zero rows for absent classes) and
        ``counts`` ``(num_classes,)`` samples per class.
    """
    one_hot = F.one_hot(labels.long(), num_classes).to(embedding.dtype)  # (B, K)
    counts = one_hot.sum(dim=0)  # (K,)
    sums = one_hot.t() @ embedding  # (K, D)
    means = sums / counts.clamp_min(1.0)[:, None]
    return means, counts


def island_loss(
    embedding: Tensor,
    labels: Tensor,
    num_classes: int,
    pair_weight: float = ISLAND_PAIR_WEIGHT,
    eps: float = 1e-8,
) -> Tensor:
    """Compute the island loss of one batch.

    The loss is ``pull + pair_weight * Σ_{j≠k} (cos(c_j, c_k) + 1)``, where
    ``c_k`` is the mean embedding of class ``k`` in this batch. ``pull`` is the
    mean squared difference between each embedding and its class mean, taken
    over all ``B × D`` entries. The sum runs over ordered pairs of classes
    present in the batch, so each unordered pair counts twice, as in Cai et al.

    Gradients flow through the class means too, as in the official code.
    Absent classes are left out of the pairwise term. The official code instead
    gives them the constant vector ``1e-9 · 1``, which adds a constant 2 (before
    λ1) per ordered pair of absent classes and pulls every present mean away from the all-ones
    direction.

    Args:
        embedding: ``(B, D)`` features.
        labels: ``(B,)`` class indices in ``[0, num_classes)``.
        num_classes: number of classes ``K``.
        pair_weight: λ1, the weight of the pairwise term.
        eps: smallest norm used when normalising a class mean, so an all-zero
            mean gives cosine 0 instead of NaN.

    Returns:
        A scalar tensor; 0 for an empty batch.
    """
    if embedding.dim() != 2:
        raise ValueError(f"embedding must have shape (B, D), got {tuple(embedding.shape)}.")
    _check_labels(labels, embedding.shape[0], num_classes)
    if embedding.shape[0] == 0:
        return embedding.sum()

    means, counts = class_means(embedding, labels, num_classes)
    pull = F.mse_loss(embedding, means[labels.long()])

    directions = means / means.norm(dim=1, keepdim=True).clamp_min(eps)  # (K, D)
    cosine = directions @ directions.t()  # (K, K)
    present = counts > 0
    pair_mask = present[:, None] & present[None, :]
    pair_mask &= ~torch.eye(num_classes, dtype=torch.bool, device=embedding.device)
    pairwise = ((cosine + 1.0) * pair_mask).sum()
    return pull + pair_weight * pairwise


class IslandLoss(nn.Module):
    """Module form of :func:`island_loss`."""

    def __init__(self, num_classes: int, pair_weight: float = ISLAND_PAIR_WEIGHT) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.pair_weight = pair_weight

    def forward(self, embedding: Tensor, labels: Tensor) -> Tensor:
        return island_loss(embedding, labels, self.num_classes, self.pair_weight)

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, pair_weight={self.pair_weight}"


# --------------------------------------------------------------------------
# Lovász-softmax


def lovasz_jaccard_gradient(sorted_foreground: Tensor) -> Tensor:
    """Compute the Lovász extension's weights for pixels sorted by decreasing error.

    For one class with ``G`` foreground pixels, the Jaccard loss of the set made
    of the first ``i`` sorted pixels is ``i / (G + number of background pixels
    among them)`` (Berman et al., CVPR 2018, Eq. 2 with every listed pixel counted
    as wrong). The Lovász extension weighs the ``i``-th largest error by the
    increase of that loss from ``i - 1`` to ``i`` pixels (their Eq. 8-9).

    Args:
        sorted_foreground: ``(..., N)`` float, 1 where a pixel belongs to the
            class, in the order of decreasing error.

    Returns:
        ``(..., N)`` weights, each in ``[0, 1]``, summing to the Jaccard loss of all N pixels.
    """
    n = sorted_foreground.shape[-1]
    foreground_total = sorted_foreground.sum(dim=-1, keepdim=True)  # G
    background_seen = torch.cumsum(1.0 - sorted_foreground, dim=-1)
    rank = torch.arange(1, n + 1, device=sorted_foreground.device, dtype=sorted_foreground.dtype)
    # The denominator is at least the rank i >= 1, so it never divides by zero.
    jaccard_of_prefix = rank / (foreground_total + background_seen)
    return torch.diff(jaccard_of_prefix, dim=-1, prepend=torch.zeros_like(jaccard_of_prefix[..., :1]))


def lovasz_softmax(
    logits: Tensor,
    labels: Tensor,
    classes: str = "present",
    per_image: bool = False,
    ignore_index: Optional[int] = None,
) -> Tensor:
    """Compute the Lovász-softmax loss (Berman et al., CVPR 2018) of segmentation logits.

    For every class ``c`` the pixel errors ``|[y = c] - p_c|`` are sorted in
    decreasing order and weighted by :func:`lovasz_jaccard_gradient`. The class
    losses are averaged, and with ``per_image`` so are the images' losses.

    Args:
        logits: ``(B, C, H, W)`` scores; softmax over ``C`` is taken in float32.
        labels: ``(B, H, W)`` integer classes in ``[0, C)`` (or ``ignore_index``).
        classes: ``"present"`` averages over the classes that occur in the
            labels. ``"all"`` averages over every class, and an absent class
            then costs its largest predicted probability.
        per_image: compute the loss per image and average it, instead of once
            over all pixels of the batch (the official OAENet code uses the batch).
        ignore_index: label value whose pixels are left out.

    Returns:
        A scalar tensor in ``[0, 1]``; 0 when no pixel is counted.
    """
    if logits.dim() != 4:
        raise ValueError(f"logits must have shape (B, C, H, W), got {tuple(logits.shape)}.")
    batch, num_classes, height, width = logits.shape
    if labels.shape != (batch, height, width):
        raise ValueError(
            f"labels must have shape {(batch, height, width)} to match the logits, got {tuple(labels.shape)}."
        )
    if classes not in LOVASZ_CLASS_MODES:
        raise ValueError(f"classes must be one of {LOVASZ_CLASS_MODES}, got {classes!r}.")
    labels = labels.long()
    valid = torch.ones_like(labels, dtype=torch.bool) if ignore_index is None else labels != ignore_index
    if labels.numel():
        counted = labels[valid]
        if counted.numel() and (int(counted.min()) < 0 or int(counted.max()) >= num_classes):
            raise ValueError(
                f"labels must lie in [0, {num_classes - 1}] (or equal ignore_index={ignore_index}), "
                f"got values from {int(counted.min())} to {int(counted.max())}."
            )

    groups = batch if per_image else 1
    # (G, C, N): one row of N pixels per group and class, pixels in (b, h, w) order.
    probabilities = logits.float().softmax(dim=1)
    if per_image:
        probabilities = probabilities.reshape(batch, num_classes, -1)
    else:
        probabilities = probabilities.transpose(0, 1).reshape(1, num_classes, -1)
    valid = valid.reshape(groups, 1, -1)  # (G, 1, N)
    safe_labels = torch.where(valid[:, 0], labels.reshape(groups, -1), 0)
    foreground = F.one_hot(safe_labels, num_classes).permute(0, 2, 1).to(probabilities.dtype)
    foreground = foreground * valid  # (G, C, N)

    errors = (foreground - probabilities).abs() * valid
    # Ignored pixels sort after every counted one (errors are >= 0), so the
    # Jaccard weights of counted pixels are the same as without them.
    sort_keys = torch.where(valid, errors, torch.full_like(errors, -1.0))
    order = torch.argsort(sort_keys.detach(), dim=-1, descending=True)
    errors_sorted = errors.gather(-1, order)
    with torch.no_grad():
        weights = lovasz_jaccard_gradient(foreground.gather(-1, order))
    class_losses = (errors_sorted * weights).sum(dim=-1)  # (G, C)

    has_pixels = valid.any(dim=-1)  # (G, 1)
    if classes == "present":
        counted_classes = foreground.sum(dim=-1) > 0  # (G, C)
    else:
        counted_classes = has_pixels.expand(groups, num_classes)
    counted_classes = counted_classes.to(class_losses.dtype)
    group_losses = (class_losses * counted_classes).sum(dim=-1) / counted_classes.sum(dim=-1).clamp_min(1.0)
    counted_groups = (counted_classes.sum(dim=-1) > 0).to(group_losses.dtype)
    return (group_losses * counted_groups).sum() / counted_groups.sum().clamp_min(1.0)


class LovaszSoftmax(nn.Module):
    """Module form of :func:`lovasz_softmax`."""

    def __init__(self, classes: str = "present", per_image: bool = False, ignore_index: Optional[int] = None) -> None:
        super().__init__()
        if classes not in LOVASZ_CLASS_MODES:
            raise ValueError(f"classes must be one of {LOVASZ_CLASS_MODES}, got {classes!r}.")
        self.classes = classes
        self.per_image = per_image
        self.ignore_index = ignore_index

    def forward(self, logits: Tensor, labels: Tensor) -> Tensor:
        return lovasz_softmax(logits, labels, self.classes, self.per_image, self.ignore_index)

    def extra_repr(self) -> str:
        return f"classes={self.classes!r}, per_image={self.per_image}, ignore_index={self.ignore_index}"


# --------------------------------------------------------------------------
# Combined loss


def threshold_mask(mask: Tensor, threshold: float = MASK_THRESHOLD) -> Tensor:
    """Turn weighted masks ``(B, S, S)`` or ``(B, 1, S, S)`` into ``(B, S, S)`` int64 labels (1 where > threshold)."""
    if mask.dim() == 4 and mask.shape[1] == 1:
        mask = mask[:, 0]
    if mask.dim() != 3:
        raise ValueError(f"mask must have shape (B, S, S) or (B, 1, S, S), got {tuple(mask.shape)}.")
    return (mask > threshold).long()


class OAENetLoss(nn.Module):
    """``cross_entropy + island_weight · island + lovasz_weight · lovasz(seg_logits, mask > threshold)``.

    Args:
        num_classes: expression classes ``K``.
        island_weight: λ, weight of the island loss (official: 0.1).
        island_pair_weight: λ1 inside the island loss (official: 0.1).
        lovasz_weight: weight of the Lovász-softmax term (official: 1.0); set it
            to 0 for a model built with ``aux_head=False``.
        mask_threshold: weighted-mask value above which a pixel is foreground
            for the auxiliary head (official: 0.5).
        class_weights: optional ``(K,)`` cross-entropy weights.
        lovasz_classes: ``"present"`` or ``"all"``, see :func:`lovasz_softmax`.
            The official code averages over both mask classes whether present or not,
            which is the same for any batch that contains both.

    Call it with the training-mode model output, the ``(B,)`` labels and the
    ``(B, S, S)`` weighted masks at the input resolution.
    """

    def __init__(
        self,
        num_classes: int = 7,
        island_weight: float = ISLAND_WEIGHT,
        island_pair_weight: float = ISLAND_PAIR_WEIGHT,
        lovasz_weight: float = LOVASZ_WEIGHT,
        mask_threshold: float = MASK_THRESHOLD,
        class_weights: Optional[Tensor] = None,
        lovasz_classes: str = "present",
    ) -> None:
        super().__init__()
        if class_weights is not None and tuple(class_weights.shape) != (num_classes,):
            raise ValueError(f"class_weights must have shape ({num_classes},), got {tuple(class_weights.shape)}.")
        self.num_classes = num_classes
        self.island_weight = island_weight
        self.lovasz_weight = lovasz_weight
        self.mask_threshold = mask_threshold
        self.island = IslandLoss(num_classes, island_pair_weight)
        self.lovasz = LovaszSoftmax(classes=lovasz_classes)
        self.register_buffer("class_weights", class_weights, persistent=False)

    def forward(
        self,
        output: OAENetOutput,
        labels: Tensor,
        mask: Optional[Tensor] = None,
        return_parts: bool = False,
    ) -> Union[Tensor, LossParts]:
        """Return the scalar loss, or :class:`LossParts` when ``return_parts`` is set.

        Raises:
            TypeError: ``output`` is a plain logits tensor (the model was in eval mode).
            ValueError: shapes or labels do not match, or the Lovász term is
                requested without auxiliary logits or without a mask.
        """
        if isinstance(output, Tensor):
            raise TypeError(
                "OAENetLoss needs the training-mode output (logits, embedding, seg_logits); "
                "call model.train() first, or use cross-entropy alone on eval-mode logits."
            )
        logits, embedding, seg_logits = output
        if logits.dim() != 2 or logits.shape[1] != self.num_classes:
            raise ValueError(f"logits must have shape (B, {self.num_classes}), got {tuple(logits.shape)}.")
        _check_labels(labels, logits.shape[0], self.num_classes)

        cross_entropy = F.cross_entropy(logits, labels.long(), weight=self.class_weights)
        island = self.island(embedding, labels)
        lovasz = cross_entropy.new_zeros(())
        if self.lovasz_weight:
            if seg_logits is None:
                raise ValueError(
                    "lovasz_weight is set but the output has no seg_logits; build the model with "
                    "aux_head=True, or use OAENetLoss(lovasz_weight=0)."
                )
            if mask is None:
                raise ValueError("lovasz_weight is set, so pass the (B, S, S) weighted masks as mask.")
            targets = threshold_mask(mask, self.mask_threshold).to(seg_logits.device)
            if targets.shape != (seg_logits.shape[0], *seg_logits.shape[2:]):
                raise ValueError(
                    f"mask must be at the input resolution {tuple(seg_logits.shape[2:])} for batch "
                    f"{seg_logits.shape[0]}, got {tuple(mask.shape)}; resize the mask with the face."
                )
            lovasz = self.lovasz(seg_logits, targets)

        total = cross_entropy + self.island_weight * island + self.lovasz_weight * lovasz
        if return_parts:
            return LossParts(total, cross_entropy.detach(), island.detach(), lovasz.detach())
        return total

    def extra_repr(self) -> str:
        return (
            f"num_classes={self.num_classes}, island_weight={self.island_weight}, "
            f"lovasz_weight={self.lovasz_weight}, mask_threshold={self.mask_threshold}"
        )
