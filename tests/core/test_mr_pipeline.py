"""MR analysis: routing by modality, levels counted from the L5/S1 disc, labels on the scan's grid."""
from dataclasses import replace

import numpy as np
import pytest

from spine_core.errors import UnsupportedImage
from spine_core.models.card import ModelCard
from spine_core.pipeline import segment
from spine_core.pipeline.api import SegmentOptions
from spine_core.pipeline.models import ModelSet
from spine_core.pipeline.mr import MR_MODEL, NOT_ANCHORED, count_anchor, number_levels, one_seed_per_body, split_bodies
from spine_core.pipeline.registry import MR_PIPELINES, mr_method
from spine_core.pipeline.registry import SCAR_LEVEL_TRUST as LEVEL_TRUST, SSHS_LEVEL_TRUST as M4_LEVEL_TRUST
from spine_core.volume import ScanMetadata, Volume


def test_levels_counted_from_the_disc_below_the_lowest_body():
    bodies, discs, anchored, gaps = number_levels(np.array([40.0, 10.0, 70.0]), np.array([0.0, 25.0, 55.0, 85.0]))
    assert anchored and gaps == []
    assert bodies == [23, 24, 22]
    assert discs == [124, 123, 122, 121]          # 100 + the vertebra above; the top one above L3


def test_without_the_l5_s1_disc_the_count_is_not_anchored():
    bodies, discs, anchored, _ = number_levels(np.array([10.0, 40.0]), np.array([25.0]))
    assert not anchored and bodies == [24, 23] and discs == [123]


def test_a_small_caudal_most_body_is_the_top_of_the_sacrum_not_l5():
    # five lumbar bodies of 20-35 ml and, below the L5/S1 disc, 4 ml of S1 (as the networks find it)
    body_s = np.array([180.0, 145.0, 110.0, 75.0, 40.0, 8.0])
    body_ml = np.array([22.0, 25.0, 30.0, 33.0, 35.0, 4.0])
    disc_s = np.array([162.0, 127.0, 92.0, 57.0, 24.0, -5.0])
    bodies, discs, anchored, _ = number_levels(body_s, disc_s, body_ml)
    assert bodies == [20, 21, 22, 23, 24, 26] and anchored
    assert discs == [120, 121, 122, 123, 124, 0]          # the S1/S2 'disc' below the sacrum is dropped
    # without volumes the old count stands
    assert number_levels(body_s, disc_s)[0] == [19, 20, 21, 22, 23, 24]
    # cut by the scan's lower edge it is still taken for S1, but the count is not anchored
    bodies, _, anchored, _ = number_levels(body_s, disc_s, body_ml, lowest_at_border=True)
    assert bodies == [20, 21, 22, 23, 24, 26] and not anchored
    # an L5 of ordinary size is L5
    assert number_levels(body_s[:5], disc_s[:5], body_ml[:5])[0] == [20, 21, 22, 23, 24]


def test_a_counts_trust_follows_what_anchored_it():
    assert count_anchor(True, False, [20, 24, 26]) == "sacrum"
    assert count_anchor(False, False, [20, 24, 26]) == "cut_sacrum"       # the guessed S1 may be a cut L5
    assert count_anchor(False, False, [20, 24]) == "none"
    assert count_anchor(False, True, [2, 3]) == "cervical"
    # only a count resting on the sacrum is shown over the review flag's 0.5, and never as sure
    assert 0.5 < LEVEL_TRUST["sacrum"] < 0.9
    assert max(LEVEL_TRUST["none"], LEVEL_TRUST["cut_sacrum"], LEVEL_TRUST["cervical"]) < 0.5
    # M4 counts from the same anchors less reliably (its own folds): none of its levels is shown over 0.5
    assert mr_method("mr-sshs").level_trust == M4_LEVEL_TRUST and mr_method("mr-scar").level_trust == LEVEL_TRUST
    assert mr_method("per-vertebra", "mr-sshs").level_trust == M4_LEVEL_TRUST      # the MR preference's caps
    anchors = {"sacrum", "none", "cut_sacrum", "cervical"}                       # every count_anchor outcome
    assert all(set(m.level_trust) == anchors for m in MR_PIPELINES) and max(M4_LEVEL_TRUST.values()) < 0.5
    assert all(M4_LEVEL_TRUST[a] <= LEVEL_TRUST[a] for a in LEVEL_TRUST)


def test_a_body_the_network_missed_is_counted_from_the_spacing_or_the_discs():
    # L1-L5 and S1 as found, with L3 missed: the spacing shows it, the levels above are not shifted
    body_s = np.array([180.0, 145.0, 75.0, 40.0, 8.0])
    body_ml = np.array([22.0, 25.0, 33.0, 35.0, 4.0])
    disc_s = np.array([162.0, 127.0, 92.0, 57.0, 24.0])
    bodies, discs, anchored, gaps = number_levels(body_s, disc_s, body_ml)
    assert bodies == [20, 21, 23, 24, 26] and anchored
    assert gaps == [(21, 23)]
    assert discs == [120, 121, 122, 123, 124]          # L2/L3 and L3/L4 around the missed L3
    # no discs found: the spacing alone counts the missed level
    assert number_levels(body_s, np.array([]), body_ml)[0] == [20, 21, 23, 24, 26]
    # two discs between two bodies a normal step apart are not a missed body (parts of one disc or noise)
    bodies, _, _, gaps = number_levels(np.array([10.0, 45.0, 80.0, 115.0]), np.array([-5.0, 25.0, 31.0, 62.0, 97.0]))
    assert bodies == [24, 23, 22, 21] and gaps == []


def test_each_counting_rule_can_be_switched_on_alone():
    from spine_core.pipeline.mr import RULES, CountingRules

    body_s = np.array([180.0, 145.0, 75.0, 40.0, 8.0])
    body_ml = np.array([22.0, 25.0, 33.0, 35.0, 4.0])
    disc_s = np.array([162.0, 127.0, 92.0, 57.0, 24.0])
    missed_l3 = [20, 21, 23, 24, 26]
    assert number_levels(body_s, disc_s, body_ml, rules=CountingRules.parse("disc_steps"))[0] == missed_l3
    assert number_levels(body_s, np.array([]), body_ml, rules=CountingRules.parse("long_steps"))[0] == missed_l3
    # neither: every step one level, so the levels above the missed body are one too low
    none = number_levels(body_s, disc_s, body_ml, rules=CountingRules.parse("none"))
    assert none[0] == [21, 22, 23, 24, 26] and none[3] == []
    pieces = (np.array([10.0, 45.0, 80.0, 108.0, 122.0, 150.0]), np.array([-5.0, 27.0, 62.0, 96.0, 136.0]))
    assert number_levels(*pieces, rules=CountingRules.parse("same_body"))[0] == [24, 23, 22, 21, 21, 20]
    assert number_levels(*pieces, rules=CountingRules.parse("disc_steps,long_steps"))[0] == [24, 23, 22, 21, 20, 19]
    two = CountingRules.parse("gap_chain,same_body")
    assert CountingRules.parse(two.named()) == two and two.gap_chain and two.same_body and not two.split_at_discs
    assert CountingRules.parse(RULES.named()) == RULES
    with pytest.raises(ValueError, match="unknown counting rule"):
        CountingRules.parse("split_at_disks")


def test_s1_found_whole_below_the_lowest_disc_is_the_sacrum_where_the_discs_are_read():
    from spine_core.pipeline.mr import CountingRules

    rule = CountingRules.parse("sacrum_below_last_disc")
    # L1-L5 with their discs (8-14 ml), and S1 found as a body 28 mm under L5 with nothing under it
    body_s = np.array([130.0, 95.0, 60.0, 25.0, -8.0, -36.0])
    body_ml = np.array([40.0, 42.0, 45.0, 47.0, 48.0, 27.0])
    disc_s = np.array([112.0, 77.0, 42.0, 8.0, -26.0])
    disc_ml = np.array([8.0, 9.0, 12.0, 14.0, 11.0])
    assert number_levels(body_s, disc_s, body_ml, rules=rule, disc_ml=disc_ml)[0] == [20, 21, 22, 23, 24, 26]
    assert number_levels(body_s, disc_s, body_ml, rules=CountingRules.parse("none"), disc_ml=disc_ml)[0] == \
        [19, 20, 21, 22, 23, 24]
    # a small disc find under the lowest body (a degenerate L5/S1): that body is L5, as before
    low = number_levels(body_s, np.append(disc_s, -50.0), body_ml, rules=rule, disc_ml=np.append(disc_ml, 0.5))
    assert low[0] == [19, 20, 21, 22, 23, 24]
    # a lowest body as large as the lumbar ones is an L5 whose L5/S1 disc the network missed
    as_large = np.append(body_ml[:-1], 46.0)
    assert number_levels(body_s, disc_s, as_large, rules=rule, disc_ml=disc_ml)[0] == [19, 20, 21, 22, 23, 24]
    # discs not read (fragments only, as on the water-fat sets): nothing to count the sacrum from
    assert number_levels(body_s, disc_s, body_ml, rules=rule, disc_ml=np.full(5, 0.4))[0] == [19, 20, 21, 22, 23, 24]


def test_a_cervical_mr_is_counted_down_from_c2_never_from_the_sacrum():
    from spine_core.pipeline.mr import cervical_evidence

    # C2-C6 bodies 15 mm apart (C4 missed), their discs; no sacrum in view
    body_s = np.array([100.0, 85.0, 55.0, 40.0])
    disc_s = np.array([92.0, 77.0, 63.0, 47.0, 32.0])
    bodies, discs, anchored, gaps = number_levels(body_s, disc_s, np.full(4, 5.0), cervical=True)
    assert bodies == [2, 3, 5, 6] and not anchored and gaps == [(3, 5)]
    assert discs == [102, 103, 104, 105, 106]
    # a 'disc' above the top body would be C1/C2, which has none: dropped
    assert number_levels(body_s, np.array([108.0]), cervical=True)[1] == [0]
    # what says cervical: the header, or bodies too small to be lumbar; lumbar-sized bodies say nothing
    assert "CSPINE" in cervical_evidence(ScanMetadata(body_part="CSPINE"), np.full(4, 30.0))
    assert "C-SPINE" in cervical_evidence(ScanMetadata(description="T2 SAG C-SPINE"), np.full(4, 30.0))
    assert "too small" in cervical_evidence(ScanMetadata(), np.array([5.0, 6.0, 7.0]))
    assert cervical_evidence(ScanMetadata(description="T2 SAG L-SPINE"), np.array([25.0, 30.0, 35.0])) == ""
    assert cervical_evidence(ScanMetadata(description="SHOWS NECKLINE"), np.array([25.0, 30.0])) == ""


def test_the_chain_goes_on_past_a_missed_body():
    from spine_core.pipeline.mr import spine_chain

    s = [0.0, 35.0, 70.0, 140.0, 175.0]                                  # the body at 105 mm was missed
    centres = np.array([[0.0, 0.0, z] for z in s])
    assert spine_chain(centres, np.full(5, 30.0), np.full(5, 35.0)) == [0, 1, 2, 3, 4]
    # two bodies missed in a row is no longer one column
    centres[3:, 2] += 60.0
    assert spine_chain(centres, np.full(5, 30.0), np.full(5, 35.0)) == [0, 1, 2]


def test_a_missed_body_is_named_in_the_warnings():
    from spine_core.pipeline.mr import missing_levels

    assert missing_levels(21, 23).startswith("L3 not found") and "between L2 and L4" in missing_levels(21, 23)


def test_centre_peaks_side_by_side_are_one_body_and_peaks_a_level_apart_are_two():
    # (L, P, S) voxels of 1 mm: two peaks of one body 30 mm apart left-right, the next body 35 mm lower
    peaks = np.array([[20, 50, 100], [50, 52, 101], [35, 50, 65]])
    seeds = one_seed_per_body(peaks, (1.0, 1.0, 1.0))
    assert seeds[0] == seeds[1] != seeds[2]
    # on a 3 mm slice grid the same peaks in mm: left-right is read in mm, not voxels
    left, right = one_seed_per_body(np.array([[7, 50, 100], [17, 52, 101]]), (3.0, 1.0, 1.0))
    assert left == right


def test_a_body_mask_running_on_without_a_disc_is_cut_at_a_body_height_from_its_seed():
    # one column of body mask 130 mm tall, two seeds 35 mm apart near its top: the watershed would give
    # the lower seed everything below it; the part farther than a body's half height is its own part
    mask = np.zeros((20, 20, 140), bool)
    mask[5:15, 5:15, 5:135] = True
    prob = np.where(mask, 0.9, 0.0)
    centres = np.zeros(mask.shape)
    centres[10, 10, 120] = centres[10, 10, 85] = 1.0
    parts = split_bodies(mask, prob, centres, (1.0, 1.0, 1.0))
    heights = {int(v): np.flatnonzero(np.any(parts == v, axis=(0, 1))) for v in np.unique(parts[mask])}
    assert len(heights) == 3
    for seed_s in (120, 85):
        (label,) = {int(parts[10, 10, seed_s])}
        assert heights[label].min() >= seed_s - 35 and heights[label].max() <= seed_s + 35
    assert min(h.min() for h in heights.values()) == 5          # nothing of the mask is lost


class IntensityOracle:
    """Stands in for the MR network: bright is body, mid-grey is disc (the test scan is drawn so)."""
    card = ModelCard(id=MR_MODEL, version="test", sha256="", task="test", modality="MR", input_spacing_mm=[1, 1, 1],
                     patch_size=[160, 160], intensity_window=[0, 1], label_ids=[1, 2], training={}, metrics={},
                     license="test")

    def run(self, feed):
        x = feed["image"][:, 1:2]
        body = np.where(x > 0.75, 10.0, -10.0)
        disc = np.where((x > 0.2) & (x < 0.6), 10.0, -10.0)
        no_centres = np.full_like(body, -10.0)           # no key points: the bodies split by components
        return [np.concatenate([body, disc], axis=1).astype(np.float32),
                np.concatenate([no_centres, no_centres], axis=1).astype(np.float32)]


def mr_scan(with_sacrum_disc: bool = True, rows: int = 150):
    """A sagittal lumbar 'MR' stored as the shared MR sets are: i -> inferior, j -> posterior, k -> right;
    ``rows`` < 134 cuts the lowest body at the scan's lower edge."""
    shape = (150, 80, 40)                              # S-I, A-P, L-R voxels of 1 mm
    array = np.full(shape, 100.0, np.float32)
    top = 10
    for level in range(4):                             # bodies 25 mm, discs 8 mm, from the top down
        array[top:top + 25, 20:55, 12:28] = 800.0
        top += 25
        if level < 3 or with_sacrum_disc:
            array[top:top + 8, 22:53, 13:27] = 400.0
        top += 8
    affine = np.array([[0, 0, -1, 0], [0, 1, 0, 0], [-1, 0, 0, 0], [0, 0, 0, 1]], float)
    return Volume(array[:rows].astype(np.int16), affine, ScanMetadata(modality="MR"))


def test_an_mr_goes_through_the_mr_network_only():
    models = ModelSet(preset={MR_MODEL: IntensityOracle()})
    result = segment(mr_scan(), SegmentOptions(), models=models)
    ids = result.labels.ids()
    assert ids == [21, 22, 23, 24, 121, 122, 123, 124]
    assert result.labels.same_grid(mr_scan())
    centres = {v.id: v.position for v in result.vertebrae}
    assert centres[24][2] < centres[23][2] < centres[22][2]        # L5 lowest (LPS: S grows upwards)
    assert centres[124][2] < centres[24][2] < centres[123][2]
    assert NOT_ANCHORED not in result.warnings and result.anchor == "sacrum"
    # a sure segmentation, but a counted level: the confidence is the count's measured trust
    assert all(v.confidence == LEVEL_TRUST["sacrum"] for v in result.vertebrae)


def test_an_mr_without_its_lowest_disc_says_the_count_is_not_anchored():
    models = ModelSet(preset={MR_MODEL: IntensityOracle()})
    result = segment(mr_scan(with_sacrum_disc=False), SegmentOptions(), models=models)
    assert NOT_ANCHORED in result.warnings and result.anchor == "none"
    assert 24 in result.labels.ids()
    assert all(v.confidence == LEVEL_TRUST["none"] for v in result.vertebrae)


def test_a_lowest_body_cut_by_the_scans_edge_is_said_to_be_perhaps_s1():
    """Two thirds of the lowest body in view, no disc below: too large for the sacral top, taken as L5,
    and the warning says why that may be one level off."""
    from spine_core.pipeline.mr import CUT_LOWEST

    models = ModelSet(preset={MR_MODEL: IntensityOracle()})
    result = segment(mr_scan(with_sacrum_disc=False, rows=125), SegmentOptions(), models=models)
    assert result.anchor == "none" and 24 in result.labels.ids()
    assert CUT_LOWEST in result.warnings and NOT_ANCHORED not in result.warnings


def test_a_ct_never_reaches_the_mr_network_and_an_mr_never_the_ct_networks(tmp_path):
    from spine_core.pipeline.models import ModelUnavailable

    class Boom:
        card = IntensityOracle.card

        def run(self, feed):
            raise AssertionError("the MR model ran on a CT")

    scan = mr_scan()
    ct = replace(scan, array=(scan.array.astype(np.int16) - 1100), metadata=ScanMetadata(modality="CT"))
    with pytest.raises(ModelUnavailable, match="ct-"):     # asks for the CT models, never runs the MR one
        segment(ct, SegmentOptions(models_dir=tmp_path), models=ModelSet(tmp_path, preset={MR_MODEL: Boom()}))
    with pytest.raises(UnsupportedImage, match="MR analysis needs the model"):
        segment(scan, SegmentOptions(), models=ModelSet(tmp_path))


def test_the_spine_is_the_chain_of_bodies_not_the_gut_or_the_abdominal_wall():
    from spine_core.pipeline.mr import spine_chain

    bodies = [([0, 0, 30.0 * k], 30.0, 35.0) for k in range(5)]          # L5 .. L1, 30 mm apart
    decoys = [([5, -60, 45.0], 20.0, 30.0),                               # bowel, 60 mm in front
              ([0, -90, 60.0], 60.0, 220.0),                              # the abdominal wall: too long
              ([0, 0, 300.0], 25.0, 30.0)]                                # far above: no neighbour
    centres, volumes, extents = (np.array(x, float) for x in zip(*(bodies + decoys)))
    assert spine_chain(centres, volumes, extents) == [0, 1, 2, 3, 4]


class SSHSStage1Oracle:
    """Stands in for M4's 2D network: the intensity oracle's logits, plus empty decoder features."""
    card = replace(IntensityOracle.card, id="mr-sshs-2d", patch_size=[64, 64])

    def __init__(self):
        self.calls = 0

    def run(self, feed):
        image = feed["image"]
        assert image.shape[1] == 3 and image.shape[2] % 32 == 0 and image.shape[3] % 32 == 0
        self.calls += 1
        seg = IntensityOracle().run(feed)[0]
        return [seg, np.zeros((image.shape[0], 4, image.shape[2] // 4, image.shape[3] // 4), np.float32)]


class SSHSStage2Oracle:
    """Stands in for M4's 3D network: passes stage 1's probabilities (input channels 1-2) on as logits,
    so the result proves they reached it; checks the features match the window."""
    card = replace(IntensityOracle.card, id="mr-sshs-3d", patch_size=[16, 64, 64])

    def __init__(self):
        self.windows = 0

    def run(self, feed):
        from spine_core.pipeline.mr_sshs import WINDOW_BATCH

        image, features = feed["image"], feed["features2d"]
        batch = image.shape[0]
        assert 1 <= batch <= WINDOW_BATCH and image.shape[1] == 3 and tuple(image.shape[2:]) == (16, 64, 64)
        assert features.shape == (batch, 4, 16, 16, 16)
        self.windows += batch
        return [(20.0 * (image[:, 1:3] - 0.5)).astype(np.float32)]


def test_the_mr_sshs_method_runs_both_m4_networks_and_the_shared_numbering():
    stage1, stage2 = SSHSStage1Oracle(), SSHSStage2Oracle()
    models = ModelSet(preset={"mr-sshs-2d": stage1, "mr-sshs-3d": stage2})     # no M5 model: never asked
    result = segment(mr_scan(), SegmentOptions(pipeline="mr-sshs"), models=models)
    assert result.labels.ids() == [21, 22, 23, 24, 121, 122, 123, 124]
    assert stage1.calls > 0 and stage2.windows > 1
    assert max(v.confidence for v in result.vertebrae) <= M4_LEVEL_TRUST[result.anchor] < 0.5     # M4's own caps
    assert result.pipeline == "mr-sshs"
    # the workstation's MR preference beside a CT pipeline chooses the same method on an MR
    again = segment(mr_scan(), SegmentOptions(pipeline="per-vertebra", mr_method="mr-sshs"), models=models)
    assert again.pipeline == "mr-sshs" and again.labels.ids() == result.labels.ids()
    assert [m["id"] for m in result.models] == ["mr-sshs-2d", "mr-sshs-3d"]
    assert NOT_ANCHORED not in result.warnings
    centres = {v.id: v.position for v in result.vertebrae}
    assert centres[124][2] < centres[24][2] < centres[123][2] < centres[23][2]


def test_a_missing_m4_model_is_named_and_the_default_stays_m5(tmp_path):
    from spine_core.pipeline.pipelines import required_models

    only_2d = ModelSet(tmp_path, preset={"mr-sshs-2d": SSHSStage1Oracle()})
    with pytest.raises(UnsupportedImage, match="needs the model 'mr-sshs-3d'") as refused:
        segment(mr_scan(), SegmentOptions(pipeline="mr-sshs"), models=only_2d)
    assert "'mr-sshs-2d'" not in str(refused.value)
    with pytest.raises(UnsupportedImage, match="needs the models 'mr-sshs-2d' and 'mr-sshs-3d'"):
        segment(mr_scan(), SegmentOptions(pipeline="mr-sshs"), models=ModelSet(tmp_path))
    m4 = ModelSet(tmp_path, preset={"mr-sshs-2d": SSHSStage1Oracle(), "mr-sshs-3d": SSHSStage2Oracle()})
    with pytest.raises(UnsupportedImage, match=f"needs the model '{MR_MODEL}'"):
        segment(mr_scan(), SegmentOptions(), models=m4)                       # default: M5
    assert required_models(SegmentOptions(pipeline="mr-sshs")) == ["mr-sshs-2d", "mr-sshs-3d"]


def test_an_mr_method_on_a_ct_is_refused(tmp_path):
    scan = mr_scan()
    ct = replace(scan, array=(scan.array.astype(np.int16) - 1100), metadata=ScanMetadata(modality="CT"))
    with pytest.raises(UnsupportedImage, match="'mr-sshs' analyses MR scans"):
        segment(ct, SegmentOptions(pipeline="mr-sshs"), models=ModelSet(tmp_path))


def test_a_body_mask_bridging_a_disc_is_cut_at_the_disc_and_separate_bodies_are_left_alone():
    from spine_core.pipeline.mr import split_at_discs

    bodies = np.zeros((30, 40, 90), np.int32)        # L, P, S at 1 mm
    bodies[5:25, 5:35, 10:40] = 1                    # a lower body ...
    bodies[5:25, 5:35, 46:76] = 1                    # ... and the one above, one component through a rim:
    bodies[5:7, 5:35, 40:46] = 1
    discs = np.zeros_like(bodies)
    discs[8:25, 5:35, 41:45] = 1                     # the disc between them
    split, n = split_at_discs(bodies, 1, discs, 1, (1.0, 1.0, 1.0))
    assert n == 2
    assert np.unique(split[:, :, 10:40][bodies[:, :, 10:40] > 0]).tolist() == [1]
    assert np.unique(split[:, :, 46:76][bodies[:, :, 46:76] > 0]).tolist() == [2]
    # a 0.4 ml fragment of disc signal (a network that barely finds this scan's discs) cuts nothing
    fragment = np.zeros_like(bodies)
    fragment[12:20, 12:24, 41:45] = 1
    assert split_at_discs(bodies, 1, fragment, 1, (1.0, 1.0, 1.0))[1] == 1
    # two bodies already apart: nothing to cut
    apart = np.where(bodies > 0, 1, 0)
    apart[5:7, 5:35, 40:46] = 0
    apart[:, :, 46:] *= 2
    same, n = split_at_discs(apart, 2, discs, 1, (1.0, 1.0, 1.0))
    assert n == 2 and np.array_equal(same, apart)


def test_pieces_of_one_body_with_no_disc_between_are_one_level():
    # L1, L2 in two pieces 14 mm apart (no disc between; discs read above and below), L3-L5
    body_s = np.array([10.0, 45.0, 80.0, 108.0, 122.0, 150.0])
    disc_s = np.array([-5.0, 27.0, 62.0, 96.0, 136.0])
    bodies, discs, anchored, gaps = number_levels(body_s, disc_s)
    assert bodies == [24, 23, 22, 21, 21, 20] and anchored and gaps == []


def test_m4_stage_2_refines_only_windows_where_stage_1_found_something():
    from spine_core.pipeline.mr_sshs import _windows, stage2_probabilities
    from spine_core.progress import NullProgress

    volume = np.zeros((3, 16, 192, 192), np.float32)
    volume[1, 4:12, 20:60, 20:60] = 0.9                  # stage 1 found a body in one corner only
    features = np.zeros((4, 16, 48, 48), np.float32)
    stage2 = SSHSStage2Oracle()
    prob = stage2_probabilities(volume, features, stage2, NullProgress())
    assert 0 < stage2.windows < len(_windows((16, 192, 192), (16, 64, 64), 4))
    assert prob[0, 8, 40, 40] > 0.99 and prob[:, :, 150:, 150:].max() < 0.01


def test_m4_stage_2_runs_over_the_spinal_column_only():
    from spine_core.pipeline.mr_sshs import column_box, sshs_probabilities
    from spine_core.progress import NullProgress

    body = np.zeros((40, 200, 64), np.float32)
    body[10:30, 120:150, 5:28] = 0.9                   # the lower bodies ...
    body[12:28, 140:170, 32:60] = 0.9                  # ... and, apart, the upper ones further back (lordosis)
    body[18:22, 20:30, 30:34] = 0.9                    # a small find in the gut, far in front
    along_l, along_p = column_box(body, (6, 24), 4, piece_voxels=1000)
    assert (along_l.start, along_l.stop) == (4, 36)
    assert along_p.start == 96 and along_p.stop == 196 and along_p.start % 4 == along_p.stop % 4 == 0
    assert column_box(body, (6, 24), 4, piece_voxels=100)[1] == slice(0, 196)      # the gut's find counted
    assert column_box(np.zeros_like(body), (6, 24), 4) == (slice(0, 40), slice(0, 200))    # nothing: all of it
    # through both stages: the column is found, the gut's find is left out
    image = np.zeros((40, 200, 64), np.float32)
    image[10:30, 120:150, 5:28] = image[12:28, 140:170, 32:60] = image[18:22, 20:30, 30:34] = 0.8
    stage2 = SSHSStage2Oracle()
    prob = sshs_probabilities(image, SSHSStage1Oracle(), stage2, NullProgress(), (1.0, 1.0, 1.0))
    assert prob.shape == (4, 40, 200, 64) and stage2.windows > 0
    assert prob[0, 20, 135, 15] > 0.9 and prob[0, 20, 160, 45] > 0.9 and prob[:, 18:22, 20:30, 30:34].max() == 0.0


def test_m4_stage_2_gives_the_same_probabilities_in_batches_of_windows(monkeypatch):
    from spine_core.pipeline import mr_sshs
    from spine_core.progress import NullProgress

    rng = np.random.default_rng(3)
    volume = rng.random((3, 16, 160, 128)).astype(np.float32)
    features = rng.random((4, 16, 40, 32)).astype(np.float32)
    batched = mr_sshs.stage2_probabilities(volume, features, SSHSStage2Oracle(), NullProgress())
    monkeypatch.setattr(mr_sshs, "WINDOW_BATCH", 1)
    single = mr_sshs.stage2_probabilities(volume, features, SSHSStage2Oracle(), NullProgress())
    assert np.allclose(batched, single, atol=1e-6)


def test_a_small_piece_far_below_the_column_is_not_chained_over_a_gap():
    from spine_core.pipeline.mr import spine_chain

    s = [0.0, 90.0, 125.0, 160.0, 195.0]               # a 9 ml piece 90 mm below the lowest body
    centres = np.array([[0.0, 0.0, z] for z in s])
    volumes = np.array([9.0, 40.0, 42.0, 45.0, 44.0])
    assert spine_chain(centres, volumes, np.full(5, 35.0)) == [1, 2, 3, 4]
    volumes[0] = 38.0                                  # a whole body there: a missed body between
    assert spine_chain(centres, volumes, np.full(5, 35.0)) == [0, 1, 2, 3, 4]


def test_an_mr_whose_header_says_cervical_is_named_from_c2_with_the_reason():
    scan = mr_scan()
    neck = replace(scan, metadata=ScanMetadata(modality="MR", body_part="CSPINE"))
    result = segment(neck, SegmentOptions(), models=ModelSet(preset={MR_MODEL: IntensityOracle()}))
    assert result.labels.ids() == [2, 3, 4, 5, 102, 103, 104, 105]
    assert any("cervical spine (the series' header says 'CSPINE')" in w for w in result.warnings)
    assert all(v.confidence == LEVEL_TRUST["cervical"] < 0.5 for v in result.vertebrae)
    assert result.anchor == "cervical"


def test_a_small_disc_find_walled_in_by_a_body_is_that_body_and_a_disc_between_bodies_stays():
    from spine_core.pipeline.mr import absorb_enclosed_discs

    bodies = np.zeros((30, 40, 90), np.int32)        # L, P, S at 1 mm: two bodies and the disc between
    bodies[5:25, 5:35, 10:40] = 1
    bodies[5:25, 5:35, 46:76] = 2
    discs = np.zeros_like(bodies)
    discs[5:25, 5:35, 41:45] = 1
    discs[12:18, 15:22, 22:28] = 2                   # 0.25 ml of 'disc' signal in the lower body's centre
    bodies[discs == 2] = 0
    filled, kept, n = absorb_enclosed_discs(bodies, discs, 2, (1.0, 1.0, 1.0))
    assert n == 1 and np.array_equal(kept > 0, discs == 1)
    assert np.all(filled[12:18, 15:22, 22:28] == 1)
    assert np.array_equal(filled[bodies > 0], bodies[bodies > 0])     # nothing else moved
    # the same patch at the body's front edge is half outside it: not walled in, kept
    edge = np.zeros_like(discs)
    edge[12:18, 2:8, 22:28] = 1
    assert absorb_enclosed_discs(np.where(edge > 0, 0, bodies), edge, 1, (1.0, 1.0, 1.0))[2] == 1


def test_a_hole_walled_in_by_a_body_is_filled_and_a_notch_or_a_disc_is_not():
    from spine_core.pipeline.mr import fill_body_holes

    bodies = np.zeros((30, 40, 80), np.int32)        # L, P, S at 1 mm: two bodies, a disc between
    bodies[5:25, 5:35, 10:35] = 1
    bodies[5:25, 5:35, 41:70] = 2
    discs = np.zeros_like(bodies)
    discs[5:25, 5:35, 36:40] = 1
    bodies[12:18, 15:22, 12:33] = 0                  # a marrow hole through most of the lower body's height
    bodies[12:18, 0:10, 50:60] = 0                   # a notch open at the upper body's front
    bodies[10:20, 25:32, 41:45] = 0                  # open through the upper body's lower endplate
    out = fill_body_holes(bodies, 2, discs)
    assert np.all(out[12:18, 15:22, 12:30] == 1)
    assert np.all(out[12:18, 5:10, 50:60] == 0)
    assert np.all(out[10:20, 25:32, 41:45] == 0)
    assert np.all(out[discs > 0] == 0)
    assert np.array_equal(out[bodies > 0], bodies[bodies > 0])
