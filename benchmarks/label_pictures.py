"""A sagittal and a coronal picture of a label map over its scan, for looking at real results."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from spine_core.pipeline.preprocess import canonical_grid, resample_image
from spine_core.resample import resample_to_grid
from spine_core.volume import LabelMap, Volume

PICTURE_SPACING_MM = 1.5


def _lps_arrays(scan: Volume, labels: LabelMap) -> tuple[np.ndarray, np.ndarray]:
    grid = canonical_grid(scan, PICTURE_SPACING_MM)
    image = resample_image(scan, grid).astype(np.float32)
    ids = resample_to_grid(labels, grid, labels=True, fill=0).array
    return image, ids


def save_sagittal_coronal(scan: Volume, labels: LabelMap, path: Path, title: str = "") -> Path:
    """Sagittal (through the labels' median left-right position) and coronal (median anterior-posterior)
    slices, bone window, labels coloured and named at their centroids; superior up."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy import ndimage

    image, ids = _lps_arrays(scan, labels)
    found = np.argwhere(ids > 0)
    centre = np.median(found, axis=0).astype(int) if len(found) else np.array(image.shape) // 2
    fig, axes = plt.subplots(1, 2, figsize=(12, 9))
    views = (("sagittal", image[centre[0]], ids[centre[0]]), ("coronal", image[:, centre[1]], ids[:, centre[1]]))
    for ax, (name, img, lab) in zip(axes, views):
        ax.imshow(np.clip(img.T[::-1], -250, 1250), cmap="gray", interpolation="nearest")
        shown = np.where(lab.T[::-1] > 0, lab.T[::-1] % 20, np.nan)
        ax.imshow(shown, cmap="tab20", alpha=0.45, vmin=0, vmax=19, interpolation="nearest")
        present = [int(v) for v in np.unique(lab) if v]
        for vid, com in zip(present, ndimage.center_of_mass(lab > 0, lab, present)):
            ax.text(img.shape[0] - 1 if name == "sagittal" else com[0], img.shape[1] - 1 - com[1],
                    labels.names.get(vid, str(vid)), color="yellow", fontsize=8, ha="right", va="center")
        ax.set_title(f"{title} {name}".strip())
        ax.axis("off")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=70)
    plt.close(fig)
    return path
