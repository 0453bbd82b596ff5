"""Stage 2 (M2): vertebra centres from a 2D detector run on every sagittal slice of the spine crop:
per-slice heatmap peaks -> 3D points (LPS mm) -> DBSCAN -> one mean centre per cluster.

Two detectors, chosen by how thick the scan's slices are along S: on thick axial slices (clinical body
CT at 3-5 mm) the discs blur into the bodies on every sagittal slice, and the detector trained on thin
slices splits or loses vertebrae; the one trained with thick slices simulated lost the discs of thin
cervical spines instead (docs/BENCHMARKS.md, "Thick slices"), so each reads the scans it suits. The
thick-slice model does not ship (it did worse on a whole real scan): it runs only where a fold or a site
installs it."""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from spine_core.pipeline.api import DETECTOR_ID, THICK_DETECTOR_ID
from spine_core.pipeline.clustering import cluster_centres, slice_peaks
from spine_core.pipeline.instance_ops import sigmoid
from spine_core.pipeline.stages import Context, ModelStage, SpineNotFound
from spine_core.volume import Volume

log = logging.getLogger(__name__)

# Slices at least this thick along S go to the thick-slice detector (trained on 2.5-6 mm slabs).
THICK_SLICES_MM = 3.0


@dataclass(frozen=True)
class DetectOptions:
    threshold: float = 0.3         # heatmap probability of a peak
    peak_radius: int = 2           # pixels: one peak per (2r+1)^2 neighbourhood
    eps_mm: float = 6.0            # DBSCAN neighbourhood
    min_samples: int = 3
    min_fraction: float = 0.2      # clusters below this x the largest are dropped (M2)
    size_eps_px: float = 0.0       # > 0: keep the main class of box sizes (M2's second DBSCAN)
    # Sagittal slices through pedicles and transverse processes peak too: one vertebra spans
    # ~+-40 mm left-right but neighbours are only ~25-35 mm apart cranio-caudally, so DBSCAN
    # counts left-right distance at a quarter (measured: 23 -> 11 centres on an 11-level phantom).
    lateral_scale: float = 0.25
    # Iliac wings and ribs also peak; vertebrae lie on a midline that may curve (scoliosis), so a
    # centre is compared with the median of its neighbours within +-60 mm cranio-caudally.
    max_off_midline_mm: float = 20.0
    batch: int = 8                 # slices per onnxruntime call
    divisor: int = 8               # the detector's total down-sampling


def slice_thickness_s(volume: Volume) -> float:
    """How thick the scan is along S (mm): the spacing of the array axis nearest S, or the DICOM
    SliceThickness where that axis is the stack's and the slices are thicker than their step."""
    axis = int(np.argmax(np.abs(volume.direction[2])))
    thickness = float(volume.spacing[axis])
    if axis == 2:
        thickness = max(thickness, float(volume.metadata.slice_thickness_mm))
    return thickness


def detector_for(ctx: Context) -> str:
    """The detector this scan's slices call for (the thin-slice one where the other is not installed)."""
    thickness = slice_thickness_s(ctx.volume)
    if thickness < THICK_SLICES_MM:
        return DETECTOR_ID
    if not ctx.models.has(THICK_DETECTOR_ID):
        log.info("slices %.1f mm thick along S; %s is not installed, so %s reads them", thickness,
                 THICK_DETECTOR_ID, DETECTOR_ID)
        return DETECTOR_ID
    log.info("slices %.1f mm thick along S: %s", thickness, THICK_DETECTOR_ID)
    return THICK_DETECTOR_ID


def _pad_to(array: np.ndarray, divisor: int) -> np.ndarray:
    pads = [(0, 0)] * (array.ndim - 2) + [(0, (-s) % divisor) for s in array.shape[-2:]]
    return np.pad(array, pads)


class DetectStage(ModelStage):
    name = "detect"
    weight = 1.0
    model_id = DETECTOR_ID
    optional_model_ids = (THICK_DETECTOR_ID,)

    def __init__(self, options: DetectOptions | None = None) -> None:
        self.options = options or DetectOptions()

    def preprocess(self, ctx: Context, progress):
        self.model_id = detector_for(ctx)
        return super().preprocess(ctx, progress)

    def predict(self, ctx: Context, inputs, progress):
        """Peaks per sagittal slice i (array axes j -> P, k -> S as in training)."""
        grid, image = inputs
        model = ctx.models.get(self.model_id)
        name = model.card.inputs[0] if model.card.inputs else "image"
        step = 2 if ctx.options.fast else 1
        slices = list(range(0, image.shape[0], step))
        rows, sizes = [], []
        for n in range(0, len(slices), self.options.batch):
            progress.update(n / len(slices), f"sagittal slice {n + 1} of {len(slices)}")
            chunk = slices[n:n + self.options.batch]
            batch = _pad_to(image[chunk][:, None], self.options.divisor)
            outputs = model.run({name: batch})
            heat = sigmoid(outputs[0][:, 0, :image.shape[1], :image.shape[2]])
            size = outputs[1][:, :, :image.shape[1], :image.shape[2]] if len(outputs) > 1 else None
            for b, i in enumerate(chunk):
                peaks = slice_peaks(heat[b], self.options.threshold, self.options.peak_radius)
                rows.append(np.column_stack([np.full(len(peaks), i), peaks[:, :2]]))
                if size is not None:
                    j, k = peaks[:, 0].astype(int), peaks[:, 1].astype(int)
                    sizes.append(size[b][:, j, k].T)
        points = np.concatenate(rows) if rows else np.zeros((0, 3))
        box_sizes = np.concatenate(sizes) if sizes and len(sizes) == len(rows) else None
        return grid.index_to_lps(points) if len(points) else points, box_sizes

    def postprocess(self, ctx: Context, outputs, progress) -> None:
        points, sizes = outputs
        o = self.options
        use_sizes = sizes if o.size_eps_px > 0 else None
        # DBSCAN's radius is in mm; at a coarser detector spacing neighbours lie further apart
        spacing = float(np.max(ctx.models.get(self.model_id).card.input_spacing_mm))
        eps = max(o.eps_mm, 2.5 * spacing * (2 if ctx.options.fast else 1))
        centres = cluster_centres(points, eps, o.min_samples, o.min_fraction, use_sizes, o.size_eps_px or None,
                                  axis_scale=(o.lateral_scale, 1.0, 1.0))
        centres = drop_off_midline(centres, o.max_off_midline_mm)
        if not len(centres):
            raise SpineNotFound("No vertebra was found in this scan (the detector found no vertebra centres "
                                "in the spine region). Check that the series shows the spine.")
        ctx.centres_mm = centres


def drop_off_midline(centres: np.ndarray, max_off_mm: float, reach_mm: float = 60.0) -> np.ndarray:
    """Centres (k, 3) in LPS mm without those lying left or right of the local spine midline."""
    if len(centres) < 3:
        return centres
    keep = []
    for c in centres:
        near = centres[np.abs(centres[:, 2] - c[2]) <= reach_mm]
        keep.append(abs(c[0] - np.median(near[:, 0])) <= max_off_mm)
    return centres[np.asarray(keep)]
