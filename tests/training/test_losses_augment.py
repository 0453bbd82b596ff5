"""Losses behave; augmentations keep image, labels and centroids aligned; DBSCAN finds centres."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from training import augment  # noqa: E402
from training.losses import (deep_supervision_loss, dice_bce_loss, focal_heatmap_loss,  # noqa: E402
                             gaussian_heatmaps, heatmap_kl_loss, instance_dice_loss, soft_dice_loss)
from spine_core.pipeline.clustering import cluster_centres, dbscan, peaks_to_points, slice_peaks  # noqa: E402


def _blob_target(shape=(1, 1, 16, 16, 16)):
    t = torch.zeros(shape)
    t[..., 4:12, 5:11, 3:13] = 1
    return t


def test_perfect_prediction_gives_near_zero_dice_loss():
    t = _blob_target()
    assert float(soft_dice_loss(t, t)) < 1e-6
    logits = (t * 2 - 1) * 30
    assert float(dice_bce_loss(logits, t)) < 1e-4
    assert float(dice_bce_loss(-logits, t)) > 1.0
    ds = [(torch.nn.functional.max_pool3d(t, k) * 2 - 1) * 30 for k in (1, 2, 4)]
    assert float(deep_supervision_loss(ds, t)) < 0.05


def test_heatmap_kl_is_nonnegative_and_zero_at_the_target():
    gen = torch.Generator().manual_seed(0)
    cents = torch.tensor([[[3.0, 4.0, 5.0], [6.0, 2.0, 1.0]]])
    present = torch.tensor([[True, False]])
    target = gaussian_heatmaps(cents, present, (8, 8, 8), sigma=1.5)
    assert torch.allclose(target[0, 0].sum(), torch.tensor(1.0)) and float(target[0, 1].sum()) == 0
    assert float(heatmap_kl_loss(torch.log(target.clamp_min(1e-30)), target, present)) < 1e-4
    for _ in range(3):
        assert float(heatmap_kl_loss(torch.randn((1, 2, 8, 8, 8), generator=gen), target, present)) >= 0


def test_instance_dice_punishes_merged_vertebrae():
    inst = torch.zeros(1, 2, 8, 8, 8)
    inst[:, 0, :, :, :4], inst[:, 1, :, :, 4:] = 1, 1
    fg, present = torch.ones(1, 1, 8, 8, 8), torch.tensor([[True, True]])
    good = instance_dice_loss((inst * 2 - 1) * 20, fg, inst, present)
    merged = torch.zeros(1, 2, 8, 8, 8)
    merged[:, 0] = 20                                  # every voxel claimed by the first vertebra
    assert float(good) < 0.01 and float(instance_dice_loss(merged, fg, inst, present)) > 0.4


def test_focal_heatmap_loss_prefers_the_right_peak():
    target = torch.zeros(1, 1, 16, 16)
    target[0, 0, 8, 8] = 1
    good = torch.full((1, 1, 16, 16), -8.0)
    good[0, 0, 8, 8] = 8
    assert float(focal_heatmap_loss(good, target)) < float(focal_heatmap_loss(torch.zeros(1, 1, 16, 16), target))


def test_geometric_augmentation_keeps_labels_on_the_image():
    gen = torch.Generator().manual_seed(3)
    labels = torch.zeros(2, 24, 24, 24, dtype=torch.long)
    labels[:, 6:18, 8:16, 4:20] = 1
    labels[:, 10:14, 10:14, 10:14] = 2
    image = labels.float()[:, None] / 2
    aug = augment.GeometryAug(max_rotation_deg=(15, 15, 15), scale_range=(0.85, 1.15), elastic_alpha=1.5)
    out_img, out_lab, grid = augment.geometric(image, labels, aug, gen)
    assert out_lab.dtype == labels.dtype and set(out_lab.unique().tolist()) <= {0, 1, 2}
    agree = (torch.round(out_img[:, 0] * 2).long() == out_lab).float().mean()
    assert agree > 0.97
    centre = torch.tensor([[[11.5, 11.5, 11.5]]]).repeat(2, 1, 1)
    moved, inside = augment.transform_points(grid, centre)
    assert inside.all()
    for b in range(2):   # the label-2 cube's centroid lands where the moved centroid says
        got = torch.nonzero(out_lab[b] == 2).float().mean(0)
        assert torch.linalg.norm(got - moved[b, 0]) < 1.5


def test_intensity_ops_keep_range_and_shape():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(2, 1, 12, 12, 12, generator=gen)
    for op in augment.STRONG_OPS:
        y = op(x, gen)
        assert y.shape == x.shape and float(y.min()) >= 0 and float(y.max()) <= 1, op.__name__
    assert augment.strong_photometric(x, gen).shape == x.shape
    assert augment.random_spacing(x, gen).shape == x.shape
    img, lab, _ = augment.weak_view(x, (x > 0.5).long()[:, 0], gen)
    assert img.shape == x.shape and lab.shape == (2, 12, 12, 12)


def test_median_removes_salt_and_pepper_and_clahe_raises_slice_contrast():
    gen = torch.Generator().manual_seed(0)
    x = torch.full((1, 1, 10, 10, 6), 0.5)
    x[0, 0, 4, 4, 2] = 1.0
    assert torch.allclose(augment.median(x), torch.full_like(x, 0.5))
    ramp = 0.4 + 0.1 * torch.linspace(0, 1, 32).repeat(32, 1)           # a low-contrast axial slice
    y = augment.slice_clahe(ramp.expand(1, 1, 32, 32)[..., None].expand(1, 1, 32, 32, 3).contiguous(), gen)
    assert float(y[0, 0, :, :, 1].std()) > float(ramp.std())
    assert torch.allclose(y[..., 0], y[..., 2])                         # each slice on its own, same slices


def test_dbscan_clusters_detections_into_vertebra_centres():
    rng = np.random.default_rng(0)
    truth = np.array([[40.0, 60.0, 200.0], [41.0, 62.0, 172.0], [42.0, 63.0, 145.0], [42.0, 63.0, 118.0]])
    points = [t + rng.normal(0, 1.2, (25, 3)) for t in truth]
    points.append(truth[0] + np.array([0, 0, 60]) + rng.normal(0, 1, (3, 3)))   # a small stray cluster
    points.append(rng.uniform(0, 250, (8, 3)))                                  # noise
    centres = cluster_centres(np.concatenate(points), eps_mm=5.0, min_samples=4, min_fraction=0.2)
    assert centres.shape == (4, 3)
    assert np.abs(centres - truth).max() < 1.0
    assert (dbscan(np.zeros((0, 3)), 1.0) == np.zeros(0)).all()


def test_slice_peaks_to_3d_points():
    heat = np.zeros((20, 20))
    heat[5, 6], heat[14, 12] = 0.9, 0.6
    peaks = slice_peaks(heat, threshold=0.5)
    assert peaks[:, :2].tolist() == [[5, 6], [14, 12]]
    pts = peaks_to_points({3: peaks}, [2.0, 2.0, 2.0])
    assert pts.tolist() == [[6.0, 10.0, 12.0], [6.0, 28.0, 24.0]]


@pytest.mark.parametrize("model", ["localizer", "vertebra_seg"])
def test_ct_batches_are_augmented_on_the_training_device(model):
    """On a GPU the CT tasks resample their batches there (the CPU then only crops). The meta device
    stands in for it: any tensor left on the CPU and mixed into the augmentation raises."""
    from training.data import DataConfig, prepare, toy_spine_case
    from training.tasks import task_class

    data = {"spacing_mm": [4.0] * 3, "patch_size": [16, 16, 16], "train_cases": [], "val_cases": [],
            "phantom_train_seeds": [], "phantom_val_seeds": []}
    config = {"model": model, "data": data, "optim": {"batch_size": 2}}
    task = task_class(model)(config, [prepare(toy_spine_case(0), DataConfig(spacing_mm=[4.0] * 3))], [], seed=0)
    task.device = torch.device("meta")
    for _ in range(4):                    # random spacing is drawn 30 % of the time: several batches
        batch = task.batch()
        assert batch["image"].device.type == "meta" and batch["target"].device.type == "meta"
        assert batch["image"].shape[2:] == (16, 16, 16)
    for name in ("gamma", "gaussian_noise", "salt_pepper", "speckle", "blur"):
        x = getattr(augment, name)(torch.zeros(2, 1, 8, 8, 8, device="meta"), torch.Generator().manual_seed(0))
        assert x.device.type == "meta"


def test_thick_slices_blur_along_the_spine_only():
    """An endplate one voxel thick, seen on 6 mm slices of a 1.5 mm grid, spreads along S (the last axis)
    and keeps its mean; nothing moves across the slice."""
    from training.augment import thick_slices

    x = torch.zeros(2, 1, 8, 8, 32)
    x[:, :, :, :, 16] = 1.0
    x[:, :, 2:4, :, :] += 0.5                      # an edge across the slice plane
    out = thick_slices(x, torch.Generator().manual_seed(0), spacing_mm=1.5, thickness_mm=(6.0, 6.0))
    assert out.shape == x.shape
    column = out[0, 0, 5, 5]
    assert column.max() < 0.5 and (column > 0.05).sum() >= 4          # spread over several voxels
    assert abs(float(column.sum()) - 1.0) < 0.15                         # and not lost
    assert torch.allclose(out[:, :, 2:4, :, 8], torch.full_like(out[:, :, 2:4, :, 8], 0.5))   # in-plane edge kept
    thin = thick_slices(x, torch.Generator().manual_seed(0), spacing_mm=1.5, thickness_mm=(2.0, 2.0))
    assert torch.equal(thin, x)                    # under two voxels: as it was


def test_thick_slices_reach_the_segmentation_and_detector_batches_only_when_set():
    """task.thick_slices blurs the CT along S in both networks' batches (never the segmentation's centre
    map); without the setting a batch is as before."""
    from training.data import Patch
    from training.tasks import VertebraSegTask
    from training.tasks_m2 import Detector2DTask

    image = np.zeros((1, 32, 32, 32), np.float32)
    image[0, :, :, 16] = 1.0
    labels = np.zeros((32, 32, 32), np.int16)
    labels[10:20, 10:20, 10:22] = 20
    patch = Patch(image, labels, {20: np.array([15, 15, 16])}, "x")
    data = {"spacing_mm": [1.5, 1.5, 1.5], "patch_size": [32, 32, 32]}
    thick = {"thick_slices": {"p": 1.0, "mm": [6.0, 6.0]}, "geometry": {"max_rotation_deg": [0, 0, 0],
                                                                      "scale_range": [1.0, 1.0], "flip_p": [0, 0, 0]}}
    plain = {"geometry": thick["geometry"]}
    seg = {k: VertebraSegTask({"data": data, "task": t}, [], []).make_batch([(patch, 20)], train=True)["image"]
           for k, t in (("thick", thick), ("plain", plain))}
    assert seg["plain"][0, 0, 16, 16].max() > 0.8 > 0.5 > seg["thick"][0, 0, 16, 16].max()
    assert torch.allclose(seg["thick"][0, 1], seg["plain"][0, 1])               # the centre map untouched
    flat = Patch(image[:, :1], labels[:1], {20: np.array([0, 15, 16])}, "x")
    det = {k: Detector2DTask({"data": {**data, "patch_size": [1, 32, 32]}, "task": t}, [], [])
           .make_batch([flat], train=True)["image"] for k, t in (("thick", thick), ("plain", plain))}
    assert det["plain"][0, 0, 16].max() > 0.8 > 0.5 > det["thick"][0, 0, 16].max()


def _vertebra_mask():
    """A boxed mask as the labeler sees it (L, P, S = 48, 48, 24): a body in front, an arch behind."""
    m = torch.zeros(1, 48, 48, 24)
    m[0, 4:44, 3:20, 2:22] = 1          # body
    m[0, 20:28, 20:45, 8:16] = 1        # arch
    return m


def test_mask_noise_looks_like_a_predicted_mask_boxed_again():
    """Erosion thins, dilation thickens; a cut end is boxed again with the clean mask's margin (the
    remaining part fills the box as inference would box it; a few voxels of rounding where a small
    remainder is stretched); always binary, same shape."""
    m = _vertebra_mask()
    box = lambda x: (torch.nonzero(x[0]).min(0).values.tolist(), torch.nonzero(x[0]).max(0).values.tolist())  # noqa: E731
    for seed in range(20):
        out = augment.mask_noise(m, np.random.default_rng(seed))
        assert out.shape == m.shape and set(out.unique().tolist()) <= {0.0, 1.0}
        assert np.abs(np.subtract(box(out), box(m))).max() <= 2      # the margin, up to rounding
    thin = augment.mask_noise(m, np.random.default_rng(0), p_morph=1.0, p_cut=0.0)
    thick = augment.mask_noise(m, np.random.default_rng(1), p_morph=1.0, p_cut=0.0)
    assert {int(thin.sum()), int(thick.sum())} != {int(m.sum())}
    no_arch = augment.mask_noise(m, np.random.default_rng(3), p_morph=0.0, p_cut=1.0, axis_p=(0, 1, 0), cut=(0.4, 0.41))
    # the front of the body was cut (this seed cuts the low end of P): what is left is stretched to the box
    assert int(no_arch.sum()) != int(m.sum()) and box(no_arch) == box(m)
    assert torch.equal(augment.mask_noise(m, np.random.default_rng(0), p_morph=0.0, p_cut=0.0), m)


def test_labeler_batches_get_mask_noise_only_when_set():
    from training.tasks_m2 import LabelerTask

    def collate(settings):
        task = LabelerTask.__new__(LabelerTask)
        task.settings, task.rng, task.size, task.label_ids = settings, np.random.default_rng(0), [48, 48, 24], [20, 21]
        return task._collate([[(20, _vertebra_mask()), (21, _vertebra_mask())]] * 8, train=True)["masks"]

    clean = _vertebra_mask()
    plain = collate({})
    assert all(torch.equal(x, clean) or torch.equal(x, clean.flip(1)) for x in plain.flatten(0, 1))
    noisy = collate({"mask_noise": {"p": 1.0}})
    assert sum(not (torch.equal(x, clean) or torch.equal(x, clean.flip(1))) for x in noisy.flatten(0, 1)) >= 8
