"""Island loss, Lovász-softmax and the combined OAENet loss, against hand-computed values."""

import math

import pytest
import torch

from oaenet_helpers import losses
from oaenet_helpers.losses import (
    LossParts,
    OAENetLoss,
    island_loss,
    lovasz_jaccard_gradient,
    lovasz_softmax,
    threshold_mask,
)
from oaenet_helpers.models import OAENetOutput


def logits_for_foreground_probability(probabilities: list[float]) -> torch.Tensor:
    """Two-class logits ``(1, 2, 1, N)`` whose softmax gives ``probabilities`` for class 1."""
    p = torch.tensor(probabilities, dtype=torch.float64)
    return torch.stack([torch.zeros_like(p), torch.log(p / (1 - p))]).reshape(1, 2, 1, -1)


def jaccard_loss_of_set(foreground: set[int], wrong: set[int]) -> float:
    """Jaccard loss |M| / |F ∪ M| of the set M of wrongly labelled pixels (Berman et al., Eq. 2)."""
    union = foreground | wrong
    return len(wrong) / len(union) if union else 0.0


def lovasz_reference(probabilities: torch.Tensor, labels: torch.Tensor) -> float:
    """Lovász-softmax over present classes from the definition, with Python sets and loops.

    ``probabilities``: ``(C, N)``; ``labels``: ``(N,)``.
    """
    num_classes, n = probabilities.shape
    class_losses = []
    for c in range(num_classes):
        foreground = {i for i in range(n) if int(labels[i]) == c}
        if not foreground:
            continue
        errors = [abs((1.0 if i in foreground else 0.0) - float(probabilities[c, i])) for i in range(n)]
        order = sorted(range(n), key=lambda i: -errors[i])
        total, previous = 0.0, 0.0
        for rank in range(1, n + 1):
            current = jaccard_loss_of_set(foreground, set(order[:rank]))
            total += errors[order[rank - 1]] * (current - previous)
            previous = current
        class_losses.append(total)
    return sum(class_losses) / len(class_losses)


# --------------------------------------------------------------------------
# Lovász-softmax


def test_jaccard_gradient_hand_computed():
    # sorted membership [1, 0, 1] with G = 2 foreground pixels:
    # prefix losses 1/(2+0), 2/(2+1), 3/(2+1) -> increments 1/2, 1/6, 1/3
    weights = lovasz_jaccard_gradient(torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64))
    torch.testing.assert_close(weights, torch.tensor([1 / 2, 1 / 6, 1 / 3], dtype=torch.float64))


def test_jaccard_gradient_sums_to_jaccard_loss():
    # all pixels counted as wrong: loss N / (G + background) = 1
    weights = lovasz_jaccard_gradient(torch.tensor([0.0, 1.0, 1.0, 0.0]))
    assert weights.sum().item() == pytest.approx(1.0)
    assert (weights >= 0).all()


def test_lovasz_softmax_hand_computed():
    # p(class 1) = [0.8, 0.4, 0.3], labels [1, 0, 1]; errors 0.2, 0.4, 0.7 for both classes.
    # class 1: sorted membership [1, 0, 1], weights [1/2, 1/6, 1/3] -> 0.35 + 0.4/6 + 0.2/3 = 29/60
    # class 0: sorted membership [0, 1, 0], weights [1/2, 1/2, 0]   -> 0.35 + 0.2 = 33/60
    logits = logits_for_foreground_probability([0.8, 0.4, 0.3])
    labels = torch.tensor([[[1, 0, 1]]])
    loss = lovasz_softmax(logits, labels)
    assert loss.item() == pytest.approx(31 / 60)


def test_lovasz_softmax_matches_definition_on_random_data():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(1, 3, 4, 5, generator=generator, dtype=torch.float64)
    labels = torch.randint(0, 3, (1, 4, 5), generator=generator)
    expected = lovasz_reference(logits.softmax(dim=1).reshape(3, -1), labels.reshape(-1))
    assert lovasz_softmax(logits, labels).item() == pytest.approx(expected, rel=1e-6)


def test_lovasz_softmax_hard_predictions_equal_one_minus_iou():
    # At 0/1 probabilities the Lovász extension equals the Jaccard loss itself.
    labels = torch.tensor([[[0, 0, 1, 1, 1, 0]]])
    predicted = torch.tensor([0, 1, 1, 1, 0, 0])
    logits = torch.where(predicted == 1, 50.0, -50.0).to(torch.float64)
    logits = torch.stack([-logits, logits]).reshape(1, 2, 1, 6)
    # class 1: truth {2,3,4}, predicted {1,2,3}: IoU 2/4. class 0: truth {0,1,5}, predicted {0,4,5}: IoU 2/4.
    assert lovasz_softmax(logits, labels).item() == pytest.approx(0.5, abs=1e-6)


def test_lovasz_softmax_perfect_prediction_is_zero():
    labels = torch.tensor([[[0, 1], [1, 0]]])
    logits = torch.stack([(labels == 0).double(), (labels == 1).double()], dim=1) * 40.0
    assert lovasz_softmax(logits, labels).item() == pytest.approx(0.0, abs=1e-9)


def test_lovasz_softmax_all_classes_charges_absent_class():
    # Three classes, class 2 absent: its loss is its largest probability.
    logits = torch.log(torch.tensor([[0.5, 0.2], [0.3, 0.7], [0.2, 0.1]], dtype=torch.float64)).reshape(1, 3, 1, 2)
    labels = torch.tensor([[[0, 1]]])
    present = lovasz_softmax(logits, labels, classes="present")
    every = lovasz_softmax(logits, labels, classes="all")
    assert every.item() == pytest.approx((2 * present.item() + 0.2) / 3)


def test_lovasz_softmax_per_image_averages_images():
    generator = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 2, 3, 3, generator=generator, dtype=torch.float64)
    labels = torch.randint(0, 2, (2, 3, 3), generator=generator)
    separate = [lovasz_softmax(logits[i : i + 1], labels[i : i + 1]).item() for i in range(2)]
    per_image = lovasz_softmax(logits, labels, per_image=True)
    batch = lovasz_softmax(logits, labels)
    assert per_image.item() == pytest.approx(sum(separate) / 2)
    expected_batch = lovasz_reference(
        logits.softmax(dim=1).transpose(0, 1).reshape(2, -1), labels.reshape(-1)
    )
    assert batch.item() == pytest.approx(expected_batch, rel=1e-6)


def test_lovasz_softmax_ignore_index_drops_pixels():
    generator = torch.Generator().manual_seed(2)
    logits = torch.randn(1, 2, 1, 6, generator=generator, dtype=torch.float64)
    labels = torch.tensor([[[0, 1, 255, 1, 255, 0]]])
    counted = torch.tensor([0, 1, 3, 5])
    expected = lovasz_softmax(logits[..., counted], labels[..., counted])
    assert lovasz_softmax(logits, labels, ignore_index=255).item() == pytest.approx(expected.item())


def test_lovasz_softmax_all_ignored_is_zero():
    logits = torch.randn(1, 2, 2, 2, requires_grad=True)
    loss = lovasz_softmax(logits, torch.full((1, 2, 2), 255), ignore_index=255)
    loss.backward()
    assert loss.item() == 0.0
    assert torch.isfinite(logits.grad).all()


def test_lovasz_softmax_gradient_lowers_loss():
    generator = torch.Generator().manual_seed(3)
    logits = torch.randn(2, 2, 4, 4, generator=generator, requires_grad=True)
    labels = torch.randint(0, 2, (2, 4, 4), generator=generator)
    before = lovasz_softmax(logits, labels)
    before.backward()
    with torch.no_grad():
        stepped = logits - 1.0 * logits.grad
    assert lovasz_softmax(stepped, labels).item() < before.item()


def test_lovasz_softmax_rejects_bad_inputs():
    logits = torch.zeros(1, 2, 2, 2)
    with pytest.raises(ValueError, match=r"\(1, 2, 2\)"):
        lovasz_softmax(logits, torch.zeros(1, 3, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\[0, 1\].*from 0 to 2"):
        lovasz_softmax(logits, torch.tensor([[[0, 2], [1, 0]]]))
    with pytest.raises(ValueError, match="'some'"):
        lovasz_softmax(logits, torch.zeros(1, 2, 2, dtype=torch.long), classes="some")


# --------------------------------------------------------------------------
# Island loss


def island_batch() -> tuple[torch.Tensor, torch.Tensor]:
    # class 0 at (1, 0) and (3, 0), mean (2, 0); class 1 at (0, 1) and (0, 3), mean (0, 2)
    embedding = torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, 1.0], [0.0, 3.0]])
    return embedding, torch.tensor([0, 0, 1, 1])


def test_island_loss_hand_computed():
    # pull: squared differences 1 per sample over 8 entries = 0.5
    # pairs: cos = 0 for both orders, (0 + 1) * 2 = 2, times 0.1 = 0.2
    embedding, labels = island_batch()
    assert island_loss(embedding, labels, num_classes=2).item() == pytest.approx(0.7)


def test_island_loss_leaves_absent_classes_out():
    embedding, labels = island_batch()
    assert island_loss(embedding, labels, num_classes=7).item() == pytest.approx(0.7)


def test_island_loss_opposite_centres_cost_nothing():
    embedding = torch.tensor([[2.0, 0.0], [-2.0, 0.0]])
    loss = island_loss(embedding, torch.tensor([0, 1]), num_classes=2)
    assert loss.item() == pytest.approx(0.0, abs=1e-7)


def test_island_loss_three_classes_hand_computed():
    # one sample per class, so the pull is 0; cos(e0, e1) = 0, cos(e0, e2) = 1/sqrt(2), cos(e1, e2) = 1/sqrt(2)
    embedding = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    expected = 0.1 * 2 * ((0 + 1) + 2 * (1 / math.sqrt(2) + 1))
    loss = island_loss(embedding, torch.tensor([0, 1, 2]), num_classes=3)
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_island_loss_pair_weight_scales_pairs():
    embedding, labels = island_batch()
    assert island_loss(embedding, labels, 2, pair_weight=1.0).item() == pytest.approx(0.5 + 2.0)


def test_island_loss_single_class_is_pull_only():
    embedding = torch.tensor([[1.0, 0.0], [3.0, 0.0]])
    assert island_loss(embedding, torch.tensor([1, 1]), num_classes=3).item() == pytest.approx(0.5)


def test_island_loss_zero_class_mean_is_finite():
    embedding = torch.tensor([[1.0, 1.0], [-1.0, -1.0], [0.0, 2.0]], requires_grad=True)
    loss = island_loss(embedding, torch.tensor([0, 0, 1]), num_classes=2)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(embedding.grad).all()


def test_island_loss_matches_loop_reference():
    generator = torch.Generator().manual_seed(0)
    embedding = torch.randn(12, 5, generator=generator, dtype=torch.float64)
    labels = torch.tensor([0, 0, 1, 3, 3, 3, 4, 4, 1, 0, 6, 6])
    means = {k: embedding[labels == k].mean(dim=0) for k in labels.unique().tolist()}
    pull = sum(((embedding[i] - means[int(labels[i])]) ** 2).sum() for i in range(12)) / embedding.numel()
    pairs = sum(
        torch.nn.functional.cosine_similarity(means[j], means[k], dim=0) + 1
        for j in means
        for k in means
        if j != k
    )
    expected = pull + 0.1 * pairs
    assert island_loss(embedding, labels, num_classes=7).item() == pytest.approx(expected.item())


def test_island_loss_rejects_bad_labels():
    embedding = torch.zeros(2, 3)
    with pytest.raises(ValueError, match=r"\[0, 6\].*from 0 to 7"):
        island_loss(embedding, torch.tensor([0, 7]), num_classes=7)
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        island_loss(embedding, torch.tensor([0, 1, 2]), num_classes=7)
    with pytest.raises(ValueError, match="integer"):
        island_loss(embedding, torch.tensor([0.0, 1.0]), num_classes=7)


# --------------------------------------------------------------------------
# Combined loss


def fake_output(batch: int = 4, side: int = 8, num_classes: int = 7, seed: int = 0) -> OAENetOutput:
    generator = torch.Generator().manual_seed(seed)
    return OAENetOutput(
        logits=torch.randn(batch, num_classes, generator=generator, requires_grad=True),
        embedding=torch.randn(batch, 16, generator=generator, requires_grad=True),
        seg_logits=torch.randn(batch, 2, side, side, generator=generator, requires_grad=True),
    )


def test_combined_loss_is_weighted_sum():
    output = fake_output()
    labels = torch.tensor([0, 3, 3, 6])
    mask = torch.rand(4, 8, 8, generator=torch.Generator().manual_seed(1))
    parts = OAENetLoss()(output, labels, mask, return_parts=True)
    assert isinstance(parts, LossParts)
    cross_entropy = torch.nn.functional.cross_entropy(output.logits, labels)
    island = island_loss(output.embedding, labels, 7)
    lovasz = lovasz_softmax(output.seg_logits, (mask > 0.5).long())
    assert parts.cross_entropy.item() == pytest.approx(cross_entropy.item())
    assert parts.island.item() == pytest.approx(island.item())
    assert parts.lovasz.item() == pytest.approx(lovasz.item())
    assert parts.total.item() == pytest.approx((cross_entropy + 0.1 * island + lovasz).item())


def test_combined_loss_backward_reaches_every_output():
    output = fake_output()
    mask = torch.rand(4, 1, 8, 8)
    OAENetLoss()(output, torch.tensor([1, 2, 2, 5]), mask).backward()
    for tensor in output:
        assert tensor.grad is not None
        assert tensor.grad.abs().sum() > 0


def test_combined_loss_without_lovasz_accepts_missing_head():
    output = fake_output()._replace(seg_logits=None)
    loss = OAENetLoss(lovasz_weight=0)(output, torch.tensor([0, 1, 2, 3]), return_parts=True)
    assert loss.lovasz.item() == 0.0
    assert loss.total.item() == pytest.approx(loss.cross_entropy.item() + 0.1 * loss.island.item())


def test_combined_loss_errors():
    criterion = OAENetLoss()
    labels = torch.tensor([0, 1, 2, 3])
    with pytest.raises(TypeError, match="model.train"):
        criterion(torch.zeros(4, 7), labels, torch.zeros(4, 8, 8))
    with pytest.raises(ValueError, match="aux_head=True"):
        criterion(fake_output()._replace(seg_logits=None), labels, torch.zeros(4, 8, 8))
    with pytest.raises(ValueError, match="pass the"):
        criterion(fake_output(), labels)
    with pytest.raises(ValueError, match=r"input resolution \(8, 8\)"):
        criterion(fake_output(), labels, torch.zeros(4, 16, 16))
    with pytest.raises(ValueError, match=r"\(B, 7\)"):
        criterion(fake_output(num_classes=5), labels, torch.zeros(4, 8, 8))
    with pytest.raises(ValueError, match=r"shape \(7,\)"):
        OAENetLoss(class_weights=torch.ones(5))


def test_threshold_mask_is_strictly_greater():
    mask = torch.tensor([[[0.5, 0.51], [0.0, 1.0]]])
    assert threshold_mask(mask).tolist() == [[[0, 1], [0, 1]]]
    assert threshold_mask(mask[:, None]).shape == (1, 2, 2)
    with pytest.raises(ValueError, match="mask must have shape"):
        threshold_mask(torch.zeros(2, 2))


def test_official_default_weights():
    assert losses.ISLAND_WEIGHT == 0.1
    assert losses.ISLAND_PAIR_WEIGHT == 0.1
    assert losses.LOVASZ_WEIGHT == 1.0
    assert losses.MASK_THRESHOLD == 0.5
