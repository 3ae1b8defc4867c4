"""Diagrams and feature-map views used by the network chapters."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from oaenet_helpers import diagrams, model_views, models


def figure_texts(figure) -> list[str]:
    return [text.get_text() for ax in figure.axes for text in ax.texts] + [
        ax.get_title() for ax in figure.axes
    ]


def test_inverted_residual_diagram_labels():
    figure = diagrams.draw_inverted_residual(in_channels=24, out_channels=24, expand_ratio=6, stride=1, side=56)
    texts = figure_texts(figure)
    assert "56×56\n×144" in texts
    assert any("shortcut" in text for text in texts)
    plt.close(figure)


def test_strided_block_diagram_has_no_shortcut():
    figure = diagrams.draw_inverted_residual(in_channels=16, out_channels=24, expand_ratio=6, stride=2, side=112)
    texts = figure_texts(figure)
    assert "56×56\n×24" in texts
    assert not any("shortcut" in text for text in texts)
    plt.close(figure)


def test_attention_branch_diagram_sizes():
    figure = diagrams.draw_attention_branch(size=224)
    texts = figure_texts(figure)
    for expected in ("3 × 224²", "64 × 112²", "256 × 14²", "32 × 56²", "2 × 224²"):
        assert expected in texts, expected
    plt.close(figure)


def test_strongest_channels_orders_by_variance():
    maps = torch.zeros(3, 4, 4)
    maps[1, 0, 0] = 1.0
    maps[2] = torch.arange(16.0).reshape(4, 4)
    assert model_views.strongest_channels(maps, 2) == [2, 1]


def test_show_feature_maps_draws_requested_count():
    figure = model_views.show_feature_maps(torch.rand(1, 10, 6, 6), max_maps=5, title="test", columns=4)
    drawn = [ax for ax in figure.axes if ax.images]
    assert len(drawn) == 5
    assert "10×6×6" in figure._suptitle.get_text()
    plt.close(figure)


def test_show_feature_maps_rejects_bad_input():
    with pytest.raises(ValueError, match="one image"):
        model_views.show_feature_maps(torch.rand(2, 3, 4, 4))
    with pytest.raises(ValueError, match="NaN"):
        model_views.show_feature_maps(torch.full((3, 4, 4), float("nan")))


def test_show_channel_means_panels():
    face = np.zeros((8, 8, 3), dtype=np.uint8)
    figure = model_views.show_channel_means({"a": torch.rand(3, 4, 4), "b": torch.rand(4, 4)}, face=face)
    titles = [ax.get_title() for ax in figure.axes if ax.images]
    assert titles == ["face", "a", "b"]
    plt.close(figure)


def test_load_sample_batch_rejects_bad_size():
    with pytest.raises(ValueError, match="multiple of 32, got 100"):
        model_views.load_sample_batch(100)


def test_load_sample_batch_builds_inputs():
    batch = model_views.load_sample_batch(64, names=("astronaut",))
    assert batch.faces.shape == (1, 64, 64, 3)
    assert batch.masks.shape == (1, 64, 64)
    assert batch.landmarks.shape == (1, 68, 2)
    assert batch.image.shape == (1, 3, 64, 64)
    expected_image, expected_weighted = models.to_model_inputs(batch.faces, batch.masks)
    torch.testing.assert_close(batch.image, expected_image)
    torch.testing.assert_close(batch.weighted_image, expected_weighted)
