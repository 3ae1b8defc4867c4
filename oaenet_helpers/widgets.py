"""Interactive explorer of the weighted mask for JupyterLab and Colab.

:func:`mask_explorer` builds sliders for N, K and M, a mode toggle, one
checkbox per landmark group and an opacity slider. Every change recomputes the
mask and redraws one matplotlib figure into the same ``ipywidgets.Image``, so
the output updates in place without flicker and without a new figure per
change. Only core ipywidgets are used (no ipympl), which both JupyterLab and
Colab render.
"""

from __future__ import annotations

import logging
import time

import cv2
import ipywidgets as widgets
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .faces import LANDMARK_GROUPS, AlignedFace, align_and_crop, check_landmarks, detect_and_align, load_image
from .mask import MAX_ORIENTATIONS, MAX_REGIONS, MIN_FACE_SIZE, MIN_ORIENTATIONS, weighted_mask
from .plots import GROUP_COLOURS, MASK_CMAP

logger = logging.getLogger(__name__)


class MaskExplorer:
    """Widgets and figure of one mask explorer; display it as the last expression of a cell.

    Attributes:
        face: ``(S, S, 3)`` uint8 face.
        landmarks: ``(68, 2)`` float32 landmarks in the face.
        n_slider, k_slider, m_slider: N, K and M (M moves in odd steps).
        mode_toggle: ``"paper"`` or ``"official"``.
        group_boxes: one checkbox per name in ``faces.LANDMARK_GROUPS``; an
            unchecked group gets no patches.
        opacity_slider: opacity of the mask over the face, 0 to 1.
        image: the ``ipywidgets.Image`` that shows the rendered figure (PNG).
        figure: the one matplotlib figure, redrawn on every change.
        mask: the ``(S, S)`` float32 mask shown now.
        update_seconds: wall time of the last update (mask and PNG).
        widget: the container to display.
    """

    def __init__(
        self,
        face: np.ndarray,
        landmarks: np.ndarray,
        n_regions: int = 4,
        orientations: int = 8,
        patch_size: int = 15,
        mode: str = "paper",
        opacity: float = 0.5,
        dpi: int = 80,
    ) -> None:
        self.face = load_image(face)
        size = self.face.shape[0]
        if self.face.shape[1] != size or size < MIN_FACE_SIZE:
            raise ValueError(
                f"The face must be square and at least {MIN_FACE_SIZE} pixels, got {self.face.shape[:2]}; "
                "pass the photo instead and let mask_explorer align it."
            )
        self.landmarks = check_landmarks(landmarks)
        self.dpi = dpi
        largest_patch = size if size % 2 else size - 1
        self.n_slider = widgets.IntSlider(value=n_regions, min=1, max=MAX_REGIONS, description="N bands")
        self.k_slider = widgets.IntSlider(
            value=orientations, min=MIN_ORIENTATIONS, max=MAX_ORIENTATIONS, description="K bins"
        )
        self.m_slider = widgets.IntSlider(value=patch_size, min=1, max=largest_patch, step=2, description="M patch")
        self.mode_toggle = widgets.ToggleButtons(options=["paper", "official"], value=mode, description="mode")
        self.group_boxes = {
            name: widgets.Checkbox(value=True, description=name, indent=False, layout=widgets.Layout(width="90px"))
            for name in LANDMARK_GROUPS
        }
        self.opacity_slider = widgets.FloatSlider(value=opacity, min=0.0, max=1.0, step=0.05, description="opacity")
        self.image = widgets.Image(format="png")
        self.status = widgets.Label()

        self.figure = Figure(figsize=(8, 4), dpi=dpi)
        FigureCanvasAgg(self.figure)
        overlay_ax, mask_ax = self.figure.subplots(1, 2)
        overlay_ax.imshow(self.face)
        self._overlay = overlay_ax.imshow(np.zeros((size, size)), cmap=MASK_CMAP, vmin=0.0, vmax=1.0, alpha=opacity)
        self._points = {
            name: overlay_ax.scatter(*self.landmarks[span].T, s=4, c=GROUP_COLOURS[name], linewidths=0)
            for name, span in LANDMARK_GROUPS.items()
        }
        self._mask_image = mask_ax.imshow(np.zeros((size, size)), cmap=MASK_CMAP, vmin=0.0, vmax=1.0)
        self.figure.colorbar(self._mask_image, ax=mask_ax, fraction=0.046, pad=0.04)
        for ax in (overlay_ax, mask_ax):
            ax.set_axis_off()
        self._mask_ax = mask_ax
        self.figure.tight_layout()

        self.mask = np.zeros((size, size), np.float32)
        self.update_seconds = 0.0
        for control in (self.n_slider, self.k_slider, self.m_slider, self.mode_toggle, *self.group_boxes.values()):
            control.observe(self._on_change, names="value")
        self.opacity_slider.observe(self._on_opacity, names="value")
        self.widget = widgets.VBox(
            [
                widgets.HBox([self.n_slider, self.k_slider, self.m_slider]),
                widgets.HBox([self.mode_toggle, self.opacity_slider]),
                widgets.HBox([widgets.Label("patches for:"), *self.group_boxes.values()]),
                self.image,
                self.status,
            ]
        )
        self.update()

    @property
    def groups(self) -> list[str]:
        """Names of the landmark groups whose boxes are checked."""
        return [name for name, box in self.group_boxes.items() if box.value]

    def compute_mask(self) -> np.ndarray:
        """Compute the mask for the current widget values."""
        return weighted_mask(
            self.face,
            self.landmarks,
            n_regions=self.n_slider.value,
            orientations=self.k_slider.value,
            patch_size=self.m_slider.value,
            mode=self.mode_toggle.value,
            landmark_groups=self.groups,
        )

    def update(self) -> None:
        """Recompute the mask and redraw the figure into the image widget."""
        start = time.perf_counter()
        self.mask = self.compute_mask()
        low = min(0.0, float(self.mask.min()))  # official mode keeps negative correlations
        for artist in (self._overlay, self._mask_image):
            artist.set_data(self.mask)
            artist.set_clim(low, 1.0)
        self._overlay.set_alpha(self.opacity_slider.value)
        for name, points in self._points.items():
            points.set_visible(self.group_boxes[name].value)
        self._mask_ax.set_title(
            f"{self.mode_toggle.value}: N={self.n_slider.value}, K={self.k_slider.value}, M={self.m_slider.value}",
            fontsize="small",
        )
        self._render()
        self.update_seconds = time.perf_counter() - start
        self.status.value = f"mask range [{self.mask.min():.3f}, {self.mask.max():.3f}]; update {1000 * self.update_seconds:.0f} ms"

    def _render(self) -> None:
        # Agg's draw plus OpenCV's PNG encoder at compression level 1 took 57 ms
        # against 120 ms for Figure.savefig (640x320 figure, 2 busy CPU cores).
        canvas = self.figure.canvas
        canvas.draw()
        rgba = np.asarray(canvas.buffer_rgba())
        ok, png = cv2.imencode(".png", cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 1])
        if not ok:
            raise RuntimeError("OpenCV failed to encode the mask figure as PNG.")
        self.image.value = png.tobytes()

    def _on_change(self, change) -> None:
        try:
            self.update()
        except ValueError as err:
            # The sliders keep every value in range, so this is not expected. An
            # exception raised in a widget callback would only reach the log.
            logger.error("Mask update failed: %s", err)
            self.status.value = f"invalid setting: {err}"

    def _on_opacity(self, change) -> None:
        self._overlay.set_alpha(change["new"])
        self._render()

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)


def mask_explorer(image_or_face, landmarks=None, size: int = 224, align: bool | None = None, **initial) -> MaskExplorer:
    """Build a :class:`MaskExplorer` for a photo or a face crop.

    Args:
        image_or_face: an :class:`~oaenet_helpers.faces.AlignedFace`, a photo
            (anything ``faces.load_image`` accepts), or a face crop.
        landmarks: ``(68, 2)`` landmarks of ``image_or_face``, for images in
            which dlib finds no face (AffectNet ships 68 points).
            ``None`` detects them.
        size: side of the aligned face in pixels.
        align: whether to rotate and crop with ``faces.align_and_crop``.
            ``None`` aligns unless landmarks are given with a square image,
            which is then taken as the face crop itself.
        **initial: starting values: ``n_regions``, ``orientations``,
            ``patch_size``, ``mode``, ``opacity``.

    Raises:
        faces.NoFaceError: no landmarks given and no face found.
    """
    if isinstance(image_or_face, AlignedFace):
        return MaskExplorer(image_or_face.image, image_or_face.landmarks, **initial)
    image = load_image(image_or_face)
    if landmarks is None:
        aligned = detect_and_align(image, size=size)
        return MaskExplorer(aligned.image, aligned.landmarks, **initial)
    if align is None:
        align = image.shape[0] != image.shape[1]
    if align:
        aligned = align_and_crop(image, landmarks, size=size)
        return MaskExplorer(aligned.image, aligned.landmarks, **initial)
    return MaskExplorer(image, landmarks, **initial)
