"""OAENet model: parameter counts, shapes, train/eval outputs, gradients, export."""

import numpy as np
import pytest
import torch
from torch import nn

from oaenet_helpers import models
from oaenet_helpers.models import (
    AttentionBranch,
    Fusion,
    InputShapeError,
    InvertedResidual,
    MaintenanceBranch,
    OAENet,
    OAENetOutput,
    StackBlock,
)

SMALL = 64  # smallest side the model accepts with every stage above 1x1


@pytest.fixture(scope="module")
def model() -> OAENet:
    torch.manual_seed(0)
    return models.oaenet(num_classes=7)


def small_batch(side: int = SMALL, batch: int = 2, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    image = torch.randn(batch, 3, side, side, generator=generator)
    weighted = torch.randn(batch, 3, side, side, generator=generator)
    return image, weighted


# --------------------------------------------------------------------------
# Parameter counts


def test_parameter_counts_match_official(model):
    counts = models.parameter_counts(model)
    for part, official in models.OFFICIAL_PARAMETER_COUNTS.items():
        assert counts[part] == official, part


def test_parts_sum_to_total(model):
    counts = models.parameter_counts(model)
    parts = counts["maintenance_branch"] + counts["attention_branch"] + counts["stack_block"] + counts["classifier"]
    assert parts == counts["total"]


def test_resnet18_constants_match_torchvision():
    import torchvision

    resnet = torchvision.models.resnet18(weights=None)
    assert models.count_parameters(resnet) == models.RESNET18_PARAMETERS
    assert models.count_parameters(resnet.bn1) == models.RESNET18_BN1_PARAMETERS


def test_classifier_count_scales_with_classes():
    net = models.oaenet(num_classes=8)
    assert models.parameter_counts(net)["classifier"] == 1280 * 8 + 8


def test_no_aux_head_drops_its_parameters():
    with_head = AttentionBranch(aux_head=True)
    without_head = AttentionBranch(aux_head=False)
    assert without_head.aux_head is None
    assert models.count_parameters(with_head) - models.count_parameters(without_head) == models.count_parameters(
        with_head.aux_head
    )
    assert models.count_parameters(with_head.aux_head) > 0


def test_fusion_none_builds_no_attention_branch():
    net = models.oaenet(fusion="none")
    assert net.attention_branch is None
    counts = models.parameter_counts(net)
    assert counts["attention_branch"] == 0
    assert counts["total"] == 16_624 + 2_222_944 + 8_967


def test_concat_fusion_adds_projection():
    counts = models.parameter_counts(models.oaenet(fusion="concat"))
    # 1x1 conv 64 -> 32 without bias, then batch norm with 32 weights and 32 biases
    assert counts["fusion"] == 64 * 32 + 2 * 32


# --------------------------------------------------------------------------
# Shapes


def test_eval_shapes_at_224(model):
    model.eval()
    image, weighted = small_batch(side=224, batch=1)
    with torch.no_grad():
        maintenance_map = model.maintenance_branch(image)
        attention_map, seg_logits = model.attention_branch(weighted)
        logits = model(image, weighted)
    assert maintenance_map.shape == (1, 32, 56, 56)
    assert attention_map.shape == (1, 32, 56, 56)
    assert seg_logits is None
    assert logits.shape == (1, 7)


@pytest.mark.parametrize("side", [160, 96])
def test_train_shapes(model, side):
    model.train()
    image, weighted = small_batch(side=side)
    output = model(image, weighted)
    assert isinstance(output, OAENetOutput)
    assert output.logits.shape == (2, 7)
    assert output.embedding.shape == (2, 1280)
    assert output.seg_logits.shape == (2, 2, side, side)


def test_branch_shapes_follow_side():
    image, _ = small_batch(side=96)
    branch = MaintenanceBranch().eval()
    stack = StackBlock().eval()
    with torch.no_grad():
        maintenance_map = branch(image)
        embedding = stack(maintenance_map)
        cam_input = stack.features(maintenance_map)
    assert maintenance_map.shape == (2, 32, 24, 24)
    assert embedding.shape == (2, 1280)
    # four stride-2 stages: 24 -> 12 -> 6 -> 3 -> 2 (a stride-2 3x3 conv rounds up)
    assert cam_input.shape == (2, 1280, 2, 2)


def test_segment_runs_in_eval_mode(model):
    model.eval()
    _, weighted = small_batch()
    with torch.no_grad():
        seg_logits = model.attention_branch.segment(weighted)
    assert seg_logits.shape == (2, 2, SMALL, SMALL)


def test_segment_without_head_raises():
    branch = AttentionBranch(aux_head=False)
    with pytest.raises(RuntimeError, match="aux_head=True"):
        branch.segment(torch.zeros(1, 3, SMALL, SMALL))


def test_cam_target_layer_is_last_features(model):
    assert model.cam_target_layer is model.stack_block.features[-1]
    assert model.cam_target_layer.out_channels == 1280


# --------------------------------------------------------------------------
# Train and eval outputs


def test_eval_returns_tensor(model):
    model.eval()
    image, weighted = small_batch()
    with torch.no_grad():
        first = model(image, weighted)
        second = model(image, weighted)
    assert isinstance(first, torch.Tensor)
    torch.testing.assert_close(first, second, rtol=0, atol=0)


def test_train_without_aux_head_gives_no_seg_logits():
    net = models.oaenet(aux_head=False).train()
    image, weighted = small_batch()
    output = net(image, weighted)
    assert output.seg_logits is None
    assert output.logits.shape == (2, 7)


def test_fusion_none_accepts_missing_weighted_image():
    net = models.oaenet(fusion="none").eval()
    image, _ = small_batch()
    with torch.no_grad():
        logits = net(image)
    assert logits.shape == (2, 7)


def seeded_train_output(seed: int) -> OAENetOutput:
    # Training mode normalises with batch statistics, so the outputs are O(1).
    # A fresh model in eval mode gives logits near 1e-12, which any two seeds share.
    image, weighted = small_batch()
    torch.manual_seed(seed)
    net = models.oaenet().train()
    with torch.no_grad():
        return net(image, weighted)


def test_same_seed_same_output():
    first = seeded_train_output(123)
    second = seeded_train_output(123)
    torch.testing.assert_close(first.logits, second.logits, rtol=0, atol=0)
    torch.testing.assert_close(first.seg_logits, second.seg_logits, rtol=0, atol=0)


def test_different_seed_different_output():
    first = seeded_train_output(1)
    second = seeded_train_output(2)
    assert first.logits.abs().max() > 1e-3
    assert not torch.allclose(first.logits, second.logits)


# --------------------------------------------------------------------------
# Gradients, save/load, export


def test_gradients_reach_both_branches(model):
    model.train()
    model.zero_grad()
    image, weighted = small_batch()
    output = model(image, weighted)
    (output.logits.sum() + output.seg_logits.mean()).backward()
    checked = {
        "maintenance stem": model.maintenance_branch.features[0][0].weight,
        "attention stem": model.attention_branch.stem[0].weight,
        "auxiliary head": model.attention_branch.aux_head.classifier.weight,
        "stack block": model.stack_block.features[0].conv[0][0].weight,
        "classifier": model.classifier[1].weight,
    }
    for name, weight in checked.items():
        assert weight.grad is not None, name
        assert torch.isfinite(weight.grad).all(), name
        assert weight.grad.abs().sum() > 0, name


def test_every_parameter_gets_a_gradient(model):
    model.train()
    model.zero_grad()
    image, weighted = small_batch()
    output = model(image, weighted)
    (output.logits.sum() + output.seg_logits.mean()).backward()
    missing = [name for name, parameter in model.named_parameters() if parameter.grad is None]
    assert missing == []


def test_state_dict_round_trip(model, tmp_path):
    model.eval()
    path = tmp_path / "oaenet.pt"
    torch.save(model.state_dict(), path)
    restored = models.oaenet()
    restored.load_state_dict(torch.load(path, weights_only=True))
    restored.eval()
    image, weighted = small_batch()
    with torch.no_grad():
        torch.testing.assert_close(restored(image, weighted), model(image, weighted), rtol=0, atol=0)


def test_torch_export_matches_eager(model):
    model.eval()
    image, weighted = small_batch()
    exported = torch.export.export(model, (image, weighted))
    other_image, other_weighted = small_batch(seed=1)
    with torch.no_grad():
        expected = model(other_image, other_weighted)
    torch.testing.assert_close(exported.module()(other_image, other_weighted), expected)


# --------------------------------------------------------------------------
# Blocks and validation


def test_inverted_residual_shortcut_rule():
    assert InvertedResidual(24, 24, stride=1, expand_ratio=6).use_shortcut
    assert not InvertedResidual(24, 24, stride=2, expand_ratio=6).use_shortcut
    assert not InvertedResidual(16, 24, stride=1, expand_ratio=6).use_shortcut


def test_inverted_residual_without_expansion_has_no_pointwise_expansion():
    block = InvertedResidual(32, 16, stride=1, expand_ratio=1)
    # depthwise conv-BN-ReLU6, then the linear 1x1 conv and its batch norm
    assert len(block.conv) == 3
    assert block.conv[0][0].groups == 32


@pytest.mark.parametrize(
    "setting, message",
    [
        ([], "empty"),
        ([(1, 16, 1)], "must be \\(t, c, n, s\\)"),
        ([(6, 24, 2, 3)], "s must be 1 or 2"),
        ([(0, 24, 2, 2)], "at least 1"),
    ],
)
def test_check_setting_rejects_bad_tables(setting, message):
    with pytest.raises(ValueError, match=message):
        models.check_setting(setting)


def test_tables_are_data():
    assert models.check_setting(models.MAINTENANCE_SETTING) == ((1, 16, 1, 1), (6, 24, 2, 2))
    assert len(models.STACK_SETTING) == 7
    assert models.STACK_SETTING[-1] == (6, 320, 1, 1)


def test_fusion_modes_compute_documented_formulas():
    maintenance_map = torch.full((1, 32, 2, 2), 2.0)
    attention_map = torch.full((1, 32, 2, 2), 0.5)
    assert torch.equal(Fusion("residual")(maintenance_map, attention_map), torch.full((1, 32, 2, 2), 3.0))
    assert torch.equal(Fusion("product")(maintenance_map, attention_map), torch.full((1, 32, 2, 2), 1.0))
    assert Fusion("none")(maintenance_map, None) is maintenance_map
    assert Fusion("concat")(maintenance_map, attention_map).shape == (1, 32, 2, 2)


def test_fusion_rejects_unknown_mode():
    with pytest.raises(ValueError, match="'sum'"):
        Fusion("sum")
    with pytest.raises(ValueError, match="'sum'"):
        models.oaenet(fusion="sum")


def test_fusion_needs_attention_map():
    with pytest.raises(ValueError, match="needs an attention map"):
        Fusion("residual")(torch.zeros(1, 32, 2, 2), None)


@pytest.mark.parametrize("side", [100, 48])
def test_side_not_multiple_of_32_raises(model, side):
    model.eval()
    image = torch.zeros(1, 3, side, side)
    with pytest.raises(InputShapeError, match=f"multiple of 32.*{side}x{side}"):
        model(image, image)


def test_wrong_channels_raise(model):
    image = torch.zeros(1, 1, SMALL, SMALL)
    with pytest.raises(InputShapeError, match=r"\(B, 3, S, S\)"):
        model(image, image)


def test_uint8_input_raises(model):
    image = torch.zeros(1, 3, SMALL, SMALL, dtype=torch.uint8)
    with pytest.raises(InputShapeError, match="to_model_inputs"):
        model(image, image)


def test_mismatched_inputs_raise(model):
    image, _ = small_batch()
    with pytest.raises(InputShapeError, match="same shape"):
        model(image, image[:1])


def test_missing_weighted_image_raises(model):
    image, _ = small_batch()
    with pytest.raises(InputShapeError, match="weighted_image"):
        model(image)


def test_invalid_constructor_arguments():
    with pytest.raises(ValueError, match="num_classes"):
        OAENet(num_classes=0)
    with pytest.raises(ValueError, match="dropout"):
        OAENet(dropout=1.0)


# --------------------------------------------------------------------------
# Weight initialisation


def test_weight_initialisation_follows_mobilenet_v2():
    torch.manual_seed(0)
    net = models.oaenet()
    for name, module in net.named_modules():
        if isinstance(module, nn.BatchNorm2d):
            assert torch.all(module.weight == 1), name
            assert torch.all(module.bias == 0), name
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)) and module.bias is not None:
            assert torch.all(module.bias == 0), name
    linear = net.classifier[1]
    assert torch.all(linear.bias == 0)
    assert 0.008 < linear.weight.detach().std().item() < 0.012
    # Kaiming fan-out: std = sqrt(2 / (out_channels * k * k)) = sqrt(2 / 1280) for the last 1x1 conv
    last_conv = net.stack_block.features[-1][0]
    assert abs(last_conv.weight.detach().std().item() - (2 / 1280) ** 0.5) < 0.002


# --------------------------------------------------------------------------
# Model inputs


def test_to_model_inputs_normalises():
    face = np.zeros((SMALL, SMALL, 3), dtype=np.uint8)
    face[0, 0] = 255
    mask = np.ones((SMALL, SMALL), dtype=np.float32)
    mask[0, 1] = 0.0
    mask[0, 0] = 0.5
    image, weighted = models.to_model_inputs(face, mask)
    assert image.shape == (1, 3, SMALL, SMALL)
    assert weighted.shape == (1, 3, SMALL, SMALL)
    assert image.dtype == torch.float32
    mean, std = 0.456, 0.225
    assert float(image[0, 0, 0, 0]) == pytest.approx((1 - mean) / std)
    assert float(image[0, 1, 5, 5]) == pytest.approx(-mean / std)
    assert float(weighted[0, 2, 0, 0]) == pytest.approx((0.5 - mean) / std)
    assert float(weighted[0, 0, 0, 1]) == pytest.approx(-mean / std)


def test_to_model_inputs_batches():
    faces = np.full((3, SMALL, SMALL, 3), 128, dtype=np.uint8)
    masks = np.ones((3, SMALL, SMALL), dtype=np.float32)
    image, weighted = models.to_model_inputs(faces, masks)
    assert image.shape == (3, 3, SMALL, SMALL)
    torch.testing.assert_close(image, weighted)


def test_to_model_inputs_rejects_bad_inputs():
    face = np.zeros((SMALL, SMALL, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="uint8"):
        models.to_model_inputs(face.astype(np.float32), np.ones((SMALL, SMALL)))
    with pytest.raises(ValueError, match=r"\(1, 64, 64\)"):
        models.to_model_inputs(face, np.ones((32, 32)))
    bad_mask = np.ones((SMALL, SMALL))
    bad_mask[3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        models.to_model_inputs(face, bad_mask)
