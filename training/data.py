"""Training data: real shared CTs, generated phantoms, toy volumes; preprocessing; a level-balanced patch sampler.

Preprocessing follows the model card: resample onto an LPS-aligned grid at the card's input spacing
(array axes i -> L, j -> P, k -> S, whatever the scan's orientation), clip HU to the card's window and
scale to [0, 1]. Labels follow VerSe ids (spine_core.labels); discs (>= 100) are not vertebrae.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# The preprocessing itself lives in spine_core so that inference applies exactly the same steps.
from spine_core.pipeline.preprocess import FILL_HU, canonical_grid, crop, resample_image, scale_window  # noqa: F401
from spine_core.resample import resample_to_grid
from spine_core.volume import LabelMap, Volume, affine_from_geometry

REPO = Path(__file__).resolve().parents[1]
log = logging.getLogger("spineplan.training")
SOURCES = {"verse": "VerSe CC BY-SA 4.0", "ts_dicom": "TotalSegmentator Apache-2.0",
           "tptbox": "TPTBox Apache-2.0", "phantom": "phantoms", "toy": "toy volumes"}


@dataclass
class DataConfig:
    spacing_mm: list[float] = field(default_factory=lambda: [3.0, 3.0, 3.0])
    patch_size: list[int] = field(default_factory=lambda: [64, 64, 64])   # array order (L, P, S)
    window: list[float] = field(default_factory=lambda: [-1000.0, 2000.0])
    shared_root: str = ""                     # default: $SPINEPLAN_SHARED/data/ct or ../shared/data/ct
    train_cases: list[str] = field(default_factory=lambda: ["verse006", "tptbox_lumbar", "ts_dicom"])
    val_cases: list[str] = field(default_factory=lambda: ["verse007"])
    phantom_train_seeds: list[int] = field(default_factory=lambda: list(range(1000, 1016)))
    phantom_val_seeds: list[int] = field(default_factory=lambda: [9001, 9002])
    phantom_options: dict = field(default_factory=dict)   # PhantomOptions overrides, e.g. spacing_mm
    phantom_partial_fov: float = 0.0          # share of phantoms showing only a random run of 3-12 levels
    phantom_real_shapes: float = 0.0          # share of phantom vertebrae drawn from real VerSe shapes
    shape_root: str = ""                      # their masks; default $SPINEPLAN_SHARED/data/masks or ../shared/data/masks
    phantom_stream: int = 0                   # fresh random phantoms kept in the training pool
    phantom_stream_every: int = 25            # batches between replacing the oldest streamed phantom
    unlabelled_cases: list[str] = field(default_factory=list)   # scans without labels (M3 semi-supervised):
    # NIfTI/NRRD/MHA files, DICOM folders, folders of such files (a site's own studies), or the names
    # of shared cases (their labels are never read)
    unlabelled_phantom_seeds: list[int] = field(default_factory=list)   # phantoms used without their labels
    toy_unlabelled: int = 0
    toy_train: int = 0                        # synthetic cylinder spines (tests, smoke runs)
    toy_val: int = 0
    foreground_fraction: float = 0.7
    level_weights: dict = field(default_factory=lambda: {"cervical": 3.0, "T1": 3.0, "T9": 3.0})
    val_patches: int = 8
    real_pack: str = ""                       # folder of real cases already on the model grid (training/pack.py):
    # read instead of the shared scans, for hosts without the data or SimpleITK (the GPU machine)
    phantom_cache: str = ""                   # folder keeping prepared phantoms between runs (same seed, options
    # and grid: the same phantom), so parallel runs and folds generate each one once


@dataclass
class Case:
    name: str
    image: Volume
    labels: LabelMap
    source: str = ""


@dataclass
class Prepared:
    """A case on the model's grid: image scaled to [0, 1], labels, per-level voxels and centroids."""
    name: str
    image: np.ndarray
    labels: np.ndarray
    grid: Volume
    level_voxels: dict[int, np.ndarray]
    centroids: dict[int, np.ndarray]          # voxel index on ``grid``
    source: str = ""


def shared_ct_root(config: DataConfig) -> Path:
    if config.shared_root:
        return Path(config.shared_root)
    base = Path(os.environ.get("SPINEPLAN_SHARED", REPO.parent / "shared"))
    return base / "data" / "ct"


def load_shared_case(root: Path, name: str) -> Case:
    """One shared CT; ts_dicom's labels lie on a flipped grid and are resampled onto the scan."""
    from spine_core.io import load_labels, load_scan

    folder = Path(root) / name
    if (folder / "dicom").is_dir():
        image = load_scan(folder / "dicom")
        labels = resample_to_grid(load_labels(folder / "labels.nii.gz"), image)
    else:
        image = load_scan(folder / "image.nii.gz")
        labels = load_labels(folder / "labels.nii.gz", grid=image)
    source = next((v for k, v in SOURCES.items() if name.startswith(k)), "")
    return Case(name, image, labels, source)


def phantom_case(seed: int, options: dict | None = None, partial_fov: float = 0.0,
                 real_shapes: float = 0.0, shape_root: str = "") -> Case:
    """A generated phantom (spine_core.phantom, imported lazily: it may not be installed yet).

    With probability ``partial_fov`` (decided by the seed) the scan covers only a random run of 3-12
    levels, cut anywhere: real scans rarely show C1 to the sacrum, and a network that only saw whole
    spines learns to number from the top of the scan. With ``real_shapes`` > 0 that share of the
    vertebrae (chosen from the seed) takes a real VerSe vertebra's shape from the masks under
    ``shape_root`` (training.shapes); without masks they stay analytic, with a warning."""
    from dataclasses import replace

    from spine_core.phantom import PhantomOptions, generate_phantom

    fixed = {k: tuple(v) if isinstance(v, list) else v for k, v in (options or {}).items()}
    if hasattr(PhantomOptions, "sample"):          # a varied patient and scan drawn from the seed
        opts = PhantomOptions.sample(int(seed), **fixed)
    else:
        opts = PhantomOptions(**{"seed": int(seed), **fixed})
    rng = np.random.default_rng(int(seed) + 31337)
    if rng.random() < partial_fov:
        names = opts.levels()
        count = int(rng.integers(3, min(12, len(names)) + 1))
        first = int(rng.integers(0, len(names) - count + 1))
        opts = replace(opts, first_level=names[first], last_level=names[first + count - 1],
                       margin_mm=float(rng.uniform(-8.0, 25.0)))
    library = None
    if real_shapes > 0:
        from training.shapes import load_shape_library

        library = load_shape_library(str(shape_root or ""))
        if library is not None:
            opts = replace(opts, real_shape_p=float(real_shapes))
    phantom = generate_phantom(opts, shapes=library)
    return Case(f"phantom{seed}", phantom.image, phantom.labels, SOURCES["phantom"])


def toy_spine_case(seed: int, shape=(40, 40, 96), spacing=2.0, first_level: int | None = None) -> Case:
    """A crude synthetic spine: stacked bony cylinders (body + rim) along S, discs between, noise."""
    rng = np.random.default_rng(seed)
    i, j, k = np.meshgrid(*[np.arange(s) for s in shape], indexing="ij")
    image = rng.normal(40, 20, shape)
    image[((i - shape[0] / 2) / (0.45 * shape[0])) ** 2 + ((j - shape[1] / 2) / (0.45 * shape[1])) ** 2 > 1] = -1000
    labels = np.zeros(shape, np.int16)
    ci, cj = shape[0] / 2 + rng.uniform(-2, 2), shape[1] * 0.55 + rng.uniform(-2, 2)
    radius, height, gap = rng.uniform(5, 7), int(rng.integers(9, 12)), 3
    level = int(first_level if first_level is not None else rng.integers(1, 12))
    z = int(rng.integers(0, 4))
    while z + height <= shape[2] and level <= 24:
        r2 = (i - ci) ** 2 + (j - cj) ** 2
        body = (r2 <= radius ** 2) & (k >= z) & (k < z + height)
        labels[body] = level
        image[body] = 300 + rng.normal(0, 30, body.sum())
        image[body & (r2 >= (radius - 1.2) ** 2)] = 900
        z, level = z + height + gap, level + 1
    # The array's k axis points up (superior): flip so label ids grow downwards as in a body.
    affine = affine_from_geometry([spacing] * 3, np.diag([1.0, 1.0, -1.0]), (0.0, 0.0, 0.0))
    vol = Volume(image.astype(np.float32), affine)
    return Case(f"toy{seed}", vol, LabelMap.on_grid(vol, labels), SOURCES["toy"])


def vertebra_ids(labels: np.ndarray) -> list[int]:
    return [int(v) for v in np.unique(labels) if 0 < v < 100]


def reoriented(volume: Volume, grid: Volume) -> np.ndarray | None:
    """``volume``'s array on ``grid`` when the grid's voxels are exactly the volume's, in another axis
    order or direction (phantoms are drawn on their model grid, then acquired flipped or feet-first):
    a transpose and flips, exact and free, and possible without SimpleITK (the GPU host). Else None."""
    m = np.linalg.inv(volume.affine) @ grid.affine
    rot, shift = m[:3, :3], m[:3, 3]
    signed = np.round(rot)
    if not (np.allclose(rot, signed, atol=1e-6) and (np.abs(signed).sum(axis=0) == 1).all()
            and (np.abs(signed).sum(axis=1) == 1).all()):
        return None
    perm = [int(np.flatnonzero(signed[:, j])[0]) for j in range(3)]
    array = np.transpose(volume.array, perm)
    if array.shape != tuple(grid.shape):
        return None
    for j, i in enumerate(perm):
        first = 0 if signed[i, j] > 0 else volume.shape[i] - 1
        if abs(shift[i] - first) > 1e-3:
            return None
        if signed[i, j] < 0:
            array = np.flip(array, axis=j)
    return np.ascontiguousarray(array)


def prepare(case: Case, config: DataConfig, max_voxels_per_level: int = 2000) -> Prepared:
    grid = canonical_grid(case.image, config.spacing_mm)
    image, labels = reoriented(case.image, grid), reoriented(case.labels, grid)
    if image is None or labels is None:
        image = resample_image(case.image, grid, fill=FILL_HU)
        labels = resample_to_grid(case.labels, grid).array
    labels = labels.astype(np.int16)
    labels[labels >= 100] = 0
    rng = np.random.default_rng(0)
    voxels, centroids = {}, {}
    for vid in vertebra_ids(labels):
        idx = np.argwhere(labels == vid)
        centroids[vid] = idx.mean(axis=0)
        take = rng.choice(len(idx), min(len(idx), max_voxels_per_level), replace=False)
        voxels[vid] = idx[take]
    return Prepared(case.name, scale_window(image, config.window), labels, grid, voxels, centroids,
                    case.source)


def _grid_tag(config: DataConfig) -> str:
    spacing = "x".join(f"{float(v):g}" for v in config.spacing_mm)
    return f"{spacing}mm_w{float(config.window[0]):g}_{float(config.window[1]):g}"


def prepared_path(folder, name: str, config: DataConfig) -> Path:
    """Where a case prepared for ``config``'s grid and window is kept in a pack or cache folder."""
    return Path(folder) / f"{name}@{_grid_tag(config)}.npz"


def save_prepared(case: Prepared, path: Path, compress: bool = False) -> None:
    """One prepared case in one .npz (image as float16: ~0.5 HU steps in a 3,000 HU window), written
    atomically so parallel runs filling one cache never read half a file; ``compress`` for a pack
    that travels (4x smaller, slower to write)."""
    ids = sorted(case.level_voxels)
    arrays = {"image": case.image.astype(np.float16), "labels": case.labels.astype(np.int16),
              "affine": case.grid.affine, "ids": np.asarray(ids, np.int64),
              "counts": np.asarray([len(case.level_voxels[v]) for v in ids], np.int64),
              "voxels": (np.concatenate([case.level_voxels[v] for v in ids]) if ids else np.zeros((0, 3))).astype(np.int32),
              "centroid_ids": np.asarray(sorted(case.centroids), np.int64),
              "centroids": np.asarray([case.centroids[v] for v in sorted(case.centroids)], float).reshape(-1, 3),
              "name": np.asarray(case.name), "source": np.asarray(case.source)}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        (np.savez_compressed if compress else np.savez)(fh, **arrays)
    os.replace(tmp, path)


def load_prepared(path: Path) -> Prepared:
    with np.load(path) as f:
        image, labels = f["image"].astype(np.float32), f["labels"]
        split = np.cumsum(f["counts"])[:-1]
        voxels = dict(zip((int(v) for v in f["ids"]), np.split(f["voxels"].astype(np.int64), split)))
        centroids = {int(v): c for v, c in zip(f["centroid_ids"], f["centroids"])}
        grid = Volume(np.broadcast_to(np.uint8(0), image.shape), f["affine"])
        return Prepared(str(f["name"]), image, labels, grid, voxels, centroids, str(f["source"]))


def _packed_real(config: DataConfig, name: str) -> Prepared:
    path = prepared_path(config.real_pack, name, config)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is not in the real-case pack: build it with "
                                f"'python -m training.pack --out {config.real_pack}'")
    return load_prepared(path)


def _phantom_key(seed: int, config: DataConfig, partial: float) -> str:
    recipe = json.dumps([int(seed), config.phantom_options, float(partial), float(config.phantom_real_shapes)],
                        sort_keys=True)
    return f"phantom{int(seed)}-{hashlib.sha1(recipe.encode()).hexdigest()[:12]}"


def prepared_phantom(seed: int, config: DataConfig, partial: float = 0.0) -> Prepared:
    """A phantom on ``config``'s grid, from the cache folder when one is set and holds it."""
    def make() -> Prepared:
        return prepare(phantom_case(seed, config.phantom_options, partial, config.phantom_real_shapes,
                                    config.shape_root), config)

    if not config.phantom_cache:
        return make()
    path = prepared_path(config.phantom_cache, _phantom_key(seed, config, partial), config)
    if path.is_file():
        return load_prepared(path)
    case = make()
    save_prepared(case, path)
    return case


def level_weight(vid: int, weights: dict) -> float:
    from spine_core.labels import vertebra_name

    name = vertebra_name(vid)
    w = float(weights.get(name, 1.0))
    return w * float(weights.get("cervical", 1.0)) if 1 <= vid <= 7 else w


@dataclass
class Patch:
    image: np.ndarray                 # (1, *patch) float32 in [0, 1]
    labels: np.ndarray                # (*patch) int16 VerSe ids
    centroids: dict[int, np.ndarray]  # voxel index inside the patch (may lie outside it)
    case: str


class PatchSampler:
    """Random patches; a ``foreground_fraction`` of them centred on a level chosen with rare levels
    (cervical, T1, T9 by default) oversampled, the rest anywhere in the volume."""

    def __init__(self, cases: list[Prepared], config: DataConfig, seed: int = 0) -> None:
        if not cases:
            raise ValueError("no training cases: check the data section of the config")
        self.cases, self.config = list(cases), config
        self.rng = np.random.default_rng(seed)
        self.size = np.asarray(config.patch_size, int)
        self._index_levels()

    def _index_levels(self) -> None:
        self.pairs = [(c, v) for c, case in enumerate(self.cases) for v in case.level_voxels]
        w = np.array([level_weight(v, self.config.level_weights) if v else 1.0 for _, v in self.pairs], float)
        self.pair_p = w / w.sum() if len(w) else None

    def put(self, case: Prepared, slot: int | None = None) -> None:
        """Add a case, or replace the one at ``slot`` (the phantom stream's rolling pool)."""
        if slot is None or slot >= len(self.cases):
            self.cases.append(case)
        else:
            self.cases[slot] = case
        self._index_levels()

    def _centre(self) -> tuple[int, np.ndarray]:
        if self.pairs and self.rng.random() < self.config.foreground_fraction:
            c, vid = self.pairs[self.rng.choice(len(self.pairs), p=self.pair_p)]
            voxels = self.cases[c].level_voxels[vid]
            jitter = self.rng.integers(-self.size // 4, self.size // 4 + 1)
            return c, voxels[self.rng.integers(len(voxels))] + jitter
        c = int(self.rng.integers(len(self.cases)))
        return c, np.array([self.rng.integers(0, max(n, 1)) for n in self.cases[c].labels.shape])

    def sample(self) -> Patch:
        c, centre = self._centre()
        case = self.cases[c]
        origin = np.asarray(centre, int) - self.size // 2
        image = crop(case.image, origin, self.size)[None]
        labels = crop(case.labels, origin, self.size)
        cents = {v: p - origin for v, p in case.centroids.items()}
        return Patch(image, labels, cents, case.name)


class PhantomStream:
    """Fresh random phantoms (anatomy, variants and acquisition drawn from a new seed each time) in a
    rolling pool of ``phantom_stream`` slots appended to the sampler's cases: every
    ``phantom_stream_every`` batches the oldest is replaced, so training sees an unbounded variety."""

    FIRST_SEED = 1_000_000      # far from the fixed train (1000+) and validation (7000+, 9000+) seeds

    def __init__(self, sampler: PatchSampler, config: DataConfig, seed: int = 0) -> None:
        self.sampler, self.config = sampler, config
        self.next_seed = self.FIRST_SEED + 100_000 * int(seed)
        self.slots: list[int] = []
        self.batches = 0
        for _ in range(config.phantom_stream):
            self.sampler.put(self._fresh())
            self.slots.append(len(self.sampler.cases) - 1)
        self.oldest = 0

    def _fresh(self) -> Prepared:
        config = self.config
        case = prepare(phantom_case(self.next_seed, config.phantom_options, config.phantom_partial_fov,
                                    config.phantom_real_shapes, config.shape_root), config)
        self.next_seed += 1
        return case

    def tick(self) -> None:
        self.batches += 1
        if not self.slots or self.batches % max(self.config.phantom_stream_every, 1):
            return
        self.sampler.put(self._fresh(), self.slots[self.oldest])
        self.oldest = (self.oldest + 1) % len(self.slots)


def _load_all(config: DataConfig, names, seeds, toys, toy_offset, partial: float = 0.0) -> list[Prepared]:
    if config.real_pack:
        prepared = [_packed_real(config, n) for n in names]
    else:
        root = shared_ct_root(config)
        prepared = [prepare(load_shared_case(root, n), config) for n in names if (root / n).exists()]
    if seeds:
        try:
            prepared += [prepared_phantom(s, config, partial) for s in seeds]
        except ImportError as exc:   # spine_core.phantom not available: train on what there is
            log.warning("phantoms skipped (%s)", exc)
    return prepared + [prepare(toy_spine_case(toy_offset + s), config) for s in range(toys)]


def load_datasets(config: DataConfig) -> tuple[list[Prepared], list[Prepared]]:
    """(train, validation): the real cases named in the config (validation holds out verse007 by
    default), fixed phantom seeds, and toy volumes; absent sources are skipped."""
    train = _load_all(config, config.train_cases, config.phantom_train_seeds, config.toy_train, 0,
                      config.phantom_partial_fov)
    val = _load_all(config, config.val_cases, config.phantom_val_seeds, config.toy_val, 10_000)
    overlap = {c.name for c in train} & {c.name for c in val}
    if overlap:
        raise ValueError(f"cases in both training and validation: {', '.join(sorted(overlap))}")
    return train, val


IMAGE_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".mha", ".mhd")


def unlabelled_scan_paths(entries) -> list[Path]:
    """Each entry: an image file, a DICOM folder, or a folder holding image files (one scan each)."""
    paths = []
    for entry in entries:
        entry = Path(entry)
        if not entry.exists():
            raise FileNotFoundError(f"unlabelled scan '{entry}' does not exist")
        files = sorted(p for p in entry.iterdir() if p.name.lower().endswith(IMAGE_SUFFIXES)) if entry.is_dir() else []
        paths += files or [entry]
    return paths


def prepare_unlabelled(image: Volume, name: str, config: DataConfig, max_voxels: int = 4000) -> Prepared:
    """A scan without labels on the model's grid; patches are centred on bone (``level_voxels[0]``)."""
    grid = canonical_grid(image, config.spacing_mm)
    scaled = scale_window(resample_image(image, grid, fill=FILL_HU), config.window)
    bone = (150.0 - config.window[0]) / (config.window[1] - config.window[0])   # 150 HU
    idx = np.argwhere(scaled > bone)
    if len(idx) > max_voxels:
        idx = idx[np.random.default_rng(0).choice(len(idx), max_voxels, replace=False)]
    return Prepared(name, scaled, np.zeros(scaled.shape, np.int16), grid, {0: idx} if len(idx) else {}, {},
                    "unlabelled")


def load_unlabelled(config: DataConfig) -> list[Prepared]:
    """The unlabelled pool: the configured scans (their labels, if any, are never used), phantoms
    stripped of labels, toy volumes."""
    from spine_core.io import load_scan

    root = shared_ct_root(config)
    shared = [n for n in config.unlabelled_cases if not Path(n).exists() and (root / n).is_dir()]
    cases = [prepare_unlabelled(load_shared_case(root, n).image, n, config) for n in shared]
    paths = unlabelled_scan_paths([n for n in config.unlabelled_cases if n not in shared])
    cases += [prepare_unlabelled(load_scan(p), p.name, config) for p in paths]
    if config.unlabelled_phantom_seeds:
        cases += [prepare_unlabelled(phantom_case(s, config.phantom_options, 0.0, config.phantom_real_shapes,
                                                  config.shape_root).image, f"phantom{s}", config)
                  for s in config.unlabelled_phantom_seeds]
    cases += [prepare_unlabelled(toy_spine_case(20_000 + s).image, f"toy{20_000 + s}", config)
              for s in range(config.toy_unlabelled)]
    return cases


def describe(cases: list[Prepared]) -> dict:
    return {"cases": [c.name for c in cases], "sources": sorted({c.source for c in cases if c.source})}
