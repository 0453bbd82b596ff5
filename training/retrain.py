"""Site retraining (``spineplan retrain``): adapt the CT vertebra segmentation or the MR body / disc
model to a hospital's own scans, and accept the result only if it is not worse.

One run adapts one modality (``--modality``; auto: CT when the site's folder holds CT scans, else MR);
scans of the other are set aside with a note. Stages (each resumes: state in OUT/work, the training
checkpointed every few steps):

1. scans: the site's studies (batch discovery), identified by voxel digests;
2. pseudo-labels: CT: the parent pipeline (the models an analysis uses now, or ``--base``) runs on
   every scan; its vertebra centres anchor the unlabelled training regions. MR: the scans are read
   onto the MR networks' grid (cross pseudo supervision needs no pipeline run); MR needs corrected MR
   cases too (without them the measured adaptation collapsed);
3. training, from the parent's weights, within the time budget, with supervised batches of generated
   phantoms and the site's corrected cases (a fixed share of the corrections is held back for the
   check): CT (training.tasks_adapt) teacher-student consistency on the site's scans; MR
   (training.tasks_mr_adapt) cross pseudo supervision between two copies of the parent;
4. export: ONNX + card;
5. check: the parent and the candidate pipelines on the held-back corrections and on a fixed set of
   generated reference phantoms (CT phantoms, or T2 MR phantoms from the same anatomy: nothing real
   ships); accepted only if neither score drops by more than ``tolerance`` on either set (CT: mean
   vertebra Dice and binary spine Dice; MR: mean structure Dice over bodies and discs and their
   binary Dice). The table is printed and saved.

An accepted model is written to OUT/models with a card naming its parent (id, sha256), the data it saw
as counts and voxel digests (never names or patient identifiers), budget, hardware and the check's
before/after figures. It is not used until the site says so (``--register``/``--activate`` here,
``spineplan models use`` or the workstation's Tools > Adapt).
"""
from __future__ import annotations

import functools
import json
import logging
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from spine_core.atomic import atomic_path
from spine_core.errors import Cancelled, SpineError

log = logging.getLogger("spineplan.retrain")
ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "training" / "configs" / "vertebra_seg_adapt.json"
MR_CONFIG = ROOT / "training" / "configs" / "mr_scar_pair.json"
MODEL_ID = "ct-vertebra-seg"
MODEL_IDS = {"CT": MODEL_ID, "MR": "mr-spine-seg"}
REFERENCE_SEEDS = (77001, 77002, 77003)
MR_REFERENCE_SEEDS = (78001, 78002, 78003)
# An MR analysis on two cores takes about this long per voxel of its MR grid (M5: 6 s for a 77 x 224 x 224
# VB3 grid, 21.5 s for a 77 x 381 x 381 VB2 grid, docs/BENCHMARKS.md "MR"), for the budget before one was timed.
MR_ANALYSIS_S_PER_VOXEL = 2.0e-6
REFERENCE_OPTIONS = {"first_level": "T10", "last_level": "sacrum", "spacing_mm": (1.0, 1.0, 1.5), "fov_mm": 220.0,
                     "centre_on_spine": True}
MIN_CONFIDENCE = 0.3          # pseudo-centres the parent pipeline was at least this sure of
STAGES = {"scans": (0.0, 0.03), "pseudo-labels": (0.03, 0.15), "training": (0.15, 0.85), "export": (0.85, 0.87),
          "check": (0.87, 1.0)}


@dataclass
class RetrainOptions:
    scans: Path
    out: Path
    corrections: Path | None = None
    modality: str = "auto"                # auto | ct | mr
    budget_minutes: float = 30.0
    device: str = "auto"                  # auto | cpu | gpu
    base: Path | None = None              # a folder of exported models to adapt instead of the active set
    hold_back: float = 0.34
    tolerance: float = 0.005
    reference_seeds: tuple[int, ...] | None = None     # default: REFERENCE_SEEDS (CT), MR_REFERENCE_SEEDS
    reference_options: dict = field(default_factory=lambda: dict(REFERENCE_OPTIONS))
    max_steps: int | None = None          # tests and smoke runs
    threads: int = 0
    config: Path | None = None            # default: CONFIG (CT) or MR_CONFIG
    overrides: list[str] = field(default_factory=list)   # --set SECTION.KEY=VALUE on the training config
    command: str = ""


class Reporter:
    """Stage progress: ``callback(stage, fraction_overall, message, eta_s)``; raises Cancelled when asked."""

    def __init__(self, callback=None, token=None) -> None:
        self.callback, self.token = callback, token

    def __call__(self, stage: str, within: float, message: str, eta_s: float | None = None) -> None:
        if self.token is not None and self.token.cancelled:
            raise Cancelled("retraining cancelled")
        lo, hi = STAGES.get(stage, (1.0, 1.0))
        if self.callback is not None:
            self.callback(stage, lo + (hi - lo) * min(max(within, 0.0), 1.0), message, eta_s)


# --- models -----------------------------------------------------------------------------------------

def _preset_from_folder(folder: Path, device: str, model_id: str = MODEL_ID) -> dict:
    """Every model exported into ``folder`` (``<id>.onnx`` + ``<id>.json``), its sha256 checked against its card."""
    from spine_core.models.card import ModelCard, sha256_of
    from spine_core.pipeline.models import LoadedModel
    from spine_core.pipeline.runtime import create_session

    preset = {}
    for card_path in sorted(Path(folder).glob("*.json")):
        onnx = card_path.with_suffix(".onnx")
        if not onnx.is_file():
            continue
        card = ModelCard.load(card_path)
        if card.sha256 != sha256_of(onnx):
            raise SpineError(f"'{onnx}' does not match its card (sha256); export it again.")
        session, info = create_session(onnx, device)
        preset[card.id] = LoadedModel(card, session, info.provider)
    if model_id not in preset:
        raise SpineError(f"'{folder}' holds no {model_id} model to adapt.")
    return preset


def model_set(base: Path | None, device: str, extra: dict | None = None, model_id: str = MODEL_ID):
    """The parent's models (the active set, or ``base``), with ``extra`` loaded models in place of theirs."""
    from spine_core.pipeline.models import ModelSet

    preset = _preset_from_folder(base, device, model_id) if base else {}
    return ModelSet(None, device, preset={**preset, **(extra or {})})


def parent_model(base: Path | None, device: str, model_id: str = MODEL_ID):
    """(card, ONNX path) of the model the adaptation starts from."""
    models = model_set(base, device, model_id=model_id)
    card = models.get(model_id).card
    if base:
        return card, Path(base) / f"{model_id}.onnx"
    registry = models._registry_of(model_id)
    return card, registry.onnx_path(model_id)


def start_pair(pair, onnx_path: Path, spread: float, seed: int) -> None:
    """Both networks of a cross pseudo supervision pair from the parent: the first exactly, the second
    with every weight moved by ``spread`` x that tensor's own standard deviation (seeded), so the two
    start as good as the parent but disagree where it is unsure."""
    import torch

    from training.onnx_weights import load_onnx_weights

    load_onnx_weights(pair.a, onnx_path)
    pair.b.load_state_dict(pair.a.state_dict())
    gen = torch.Generator().manual_seed(int(seed))
    with torch.no_grad():
        for p in pair.b.parameters():
            if p.numel() > 1:
                p.add_(spread * float(p.std()) * torch.randn(p.shape, generator=gen))


# --- data ---------------------------------------------------------------------------------------------

def _state(out: Path) -> dict:
    path = out / "work" / "state.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def _save_state(out: Path, state: dict) -> None:

    path = out / "work" / "state.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(state, indent=2), encoding="utf-8")


def pseudo_label_scans(options: RetrainOptions, data_cfg, report: Reporter, state: dict, wanted=("CT", "MR")):
    """The site's scans of the ``wanted`` modalities: per modality (training inputs, digests). CT: each
    scan on the model's grid with the parent pipeline's vertebra centres (``_pseudo_labelled_ct``). MR: each
    scan on the MR networks' grid, unlabelled. Scans of another modality are counted in
    ``state["set_aside"]``."""
    from spine_core.pipeline.pipelines import scan_modality
    from spine_core.workflows.batch_discovery import load_study
    from spine_core.workflows.site_data import find_scans, voxel_digest
    from training.mr_data import unlabelled_mr_case

    studies = find_scans(options.scans)
    if not studies:
        raise SpineError(f"No scans were found in '{options.scans}'. Give the folder that holds the site's CT "
                         "or MR studies (DICOM series or NIfTI files).")
    state.setdefault("scans", {})
    skipped = state.setdefault("skipped", [])
    set_aside = {"CT": 0, "MR": 0}
    seen = {"CT": 0, "MR": 0}
    parent_models = functools.cache(lambda: model_set(options.base, options.device))
    found = {"CT": ([], []), "MR": ([], [])}
    started = time.monotonic()
    for n, study in enumerate(studies):
        report("pseudo-labels", n / len(studies), f"scan {n + 1} of {len(studies)}")
        try:
            volume = load_study(study)
            modality, _ = scan_modality(volume, "")
        except SpineError as exc:
            skipped.append(f"a scan that does not load ({exc})")
            continue
        if modality not in wanted:
            set_aside[modality] = set_aside.get(modality, 0) + 1
            continue
        seen[modality] += 1
        digest = voxel_digest(volume)
        inputs, digests = found[modality]
        if digest in digests:
            continue
        if modality == "MR":
            item = unlabelled_mr_case(f"site-{digest}", volume)
        else:
            item = _pseudo_labelled_ct(volume, digest, options, data_cfg, state, parent_models)
        if item is not None:
            inputs.append(item)
            digests.append(digest)
    state["pseudo_wall_s"] = state.get("pseudo_wall_s", 0.0) + (time.monotonic() - started)
    state["set_aside"], state["seen"] = set_aside, seen
    _save_state(options.out, state)
    state["skipped"] = sorted(set(skipped))
    return found


def _pseudo_labelled_ct(volume, digest: str, options: RetrainOptions, data_cfg, state: dict, parent_models):
    """(image on the model's grid, the parent pipeline's sure vertebra centres as indices) of a site CT, or
    None when the parent found none it was sure of. The centres are cached in ``state`` by digest, so a
    resumed run does not analyse the scan again."""
    from spine_core.pipeline.api import SegmentOptions
    from spine_core.pipeline.pipelines import segment
    from spine_core.pipeline.preprocess import FILL_HU, canonical_grid, resample_image, scale_window

    cache, skipped = state["scans"], state["skipped"]
    if digest not in cache:
        try:
            result = segment(volume, SegmentOptions(device=options.device), models=parent_models())
        except SpineError as exc:
            skipped.append(f"a scan the parent pipeline refused ({exc})")
            cache[digest] = {"centres_lps": [], "refused": str(exc)}
            return None
        cache[digest] = {"centres_lps": [v.position.tolist() for v in result.vertebrae
                                         if v.confidence >= MIN_CONFIDENCE]}
        state["pseudo_s"] = state.get("pseudo_s", 0.0) + result.timings_s.get("total", 0.0)
        _save_state(options.out, state)
    centres = cache[digest]["centres_lps"]
    if not centres:
        if "refused" not in cache[digest]:
            skipped.append("a scan on which the parent pipeline found no vertebra it was sure of")
        return None
    grid = canonical_grid(volume, data_cfg.spacing_mm)
    image = scale_window(resample_image(volume, grid, fill=FILL_HU), data_cfg.window)
    return image.astype(np.float32), [grid.lps_to_index(np.asarray(c)) for c in centres]


def mr_analysis_s(image) -> float:
    """The expected seconds of one MR analysis of ``image``, from the size of the grid the MR networks read."""
    from spine_core.pipeline.mr_input import mr_grid

    return MR_ANALYSIS_S_PER_VOXEL * float(np.prod(mr_grid(image).shape))


def load_corrections(options: RetrainOptions, modality: str = "CT"):
    """(train, held back) corrections of ``modality``, each (digest, image, labels), and what was skipped."""
    from spine_core.pipeline.pipelines import scan_modality
    from spine_core.workflows.site_data import find_corrections, hold_back, voxel_digest

    if options.corrections is None:
        return [], [], []
    found, skipped = find_corrections(options.corrections)
    loaded = []
    for correction in found:
        try:
            image, labels = correction.load()
            kind, _ = scan_modality(image, "")
        except SpineError as exc:
            skipped.append(f"a {correction.origin} correction that does not load ({exc})")
            continue
        if kind != modality:
            skipped.append(f"a {correction.origin} correction of an {kind} scan (this run adapts the {modality} model)")
            continue
        if not [i for i in labels.ids() if 0 < i < 100 or (modality == "MR" and i > 0)]:
            skipped.append(f"a {correction.origin} correction without vertebra labels")
            continue
        loaded.append((voxel_digest(image), image, labels))
    train, back = hold_back(loaded, [d for d, _, _ in loaded], options.hold_back)
    return train, back, skipped


# --- the check -----------------------------------------------------------------------------------------

def reference_cases(options: RetrainOptions, modality: str = "CT"):
    """The fixed reference set: generated phantoms (same seeds on every site: nothing real ships). MR: T2
    phantoms of the same generated anatomy (spine_core.phantom.mr)."""
    from spine_core.phantom import PhantomOptions, generate_phantom
    from spine_core.phantom.mr import MRPhantomOptions, generate_mr_phantom

    cases = []
    seeds = options.reference_seeds or (MR_REFERENCE_SEEDS if modality == "MR" else REFERENCE_SEEDS)
    for seed in seeds:
        if modality == "MR":
            phantom = generate_mr_phantom(MRPhantomOptions(seed=int(seed)))
            cases.append((f"mr-phantom{seed}", phantom.image, phantom.labels))
            continue
        fixed = {k: tuple(v) if isinstance(v, list) else v for k, v in options.reference_options.items()}
        phantom = generate_phantom(PhantomOptions.sample(int(seed), **fixed))
        cases.append((f"phantom{seed}", phantom.image, phantom.labels))
    return cases


CHECK_METRICS = {"CT": ("mean vertebra Dice", "binary spine Dice"),
                 "MR": ("mean body/disc Dice", "binary body/disc Dice")}


def mr_scores(pred: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
    """(mean Dice over the reference's bodies and discs, misnumbered = 0; Dice of bodies and discs at any
    level, over the kinds the reference holds: a body-only reference does not count predicted discs)."""
    from spine_core.labels import DISC_OFFSET, SACRUM
    from spine_core.metrics.overlap import mask_dice

    def kind(a):
        return np.where(a >= DISC_OFFSET, 2, np.where((a > 0) & (a != SACRUM), 1, 0))

    ids = [int(i) for i in np.unique(ref) if i]
    structures = float(np.mean([mask_dice(pred == i, ref == i) for i in ids])) if ids else 0.0
    held = [k for k in (1, 2) if np.any(kind(ref) == k)]
    return structures, mask_dice(np.isin(kind(pred), held), kind(ref) > 0)


def score_set(cases, models, options: RetrainOptions, report: Reporter, done: list, total: int,
              modality: str = "CT") -> dict:
    """The check's two scores (CHECK_METRICS) of one pipeline over ``cases``: CT mean vertebra Dice
    (misnumbered = 0) and binary spine Dice; MR ``mr_scores``."""
    from spine_core.metrics.evaluate import evaluate
    from spine_core.pipeline.api import SegmentOptions
    from spine_core.pipeline.pipelines import segment

    first, second = [], []
    for _, image, labels in cases:
        started = time.monotonic()
        try:
            result = segment(image, SegmentOptions(device=options.device, modality=modality), models=models)
            if modality == "MR":
                scores = mr_scores(np.asarray(result.labels.array), np.asarray(labels.array))
            else:
                summary = evaluate(result.labels, labels).summary
                scores = (summary.mean_dice, summary.binary_dice)
        except SpineError as exc:        # a model so bad that the analysis fails scores nothing
            log.info("the check's analysis failed: %s", exc)
            scores = (0.0, 0.0)
        first.append(scores[0])
        second.append(scores[1])
        done.append(time.monotonic() - started)
        left = (total - len(done)) * float(np.mean(done))
        report("check", len(done) / total, f"checking: {len(done)} of {total} analyses", left)
    names = CHECK_METRICS[modality]
    return {names[0]: float(np.mean(first)), names[1]: float(np.mean(second))}


def reference_set_name(modality: str, n: int) -> str:
    return f"reference {'MR ' if modality == 'MR' else ''}phantoms ({n})"


def check(sets: dict, parent_models, candidate_models, options: RetrainOptions, report: Reporter,
          modality: str = "CT") -> tuple[bool, list[dict], str]:
    """``sets``: name -> cases. The parent's and the candidate's pipelines on every set, compared."""
    total, done, scores = 2 * sum(len(c) for c in sets.values()), [], {}
    for name, cases in sets.items():
        before = score_set(cases, parent_models, options, report, done, total, modality)
        after = score_set(cases, candidate_models, options, report, done, total, modality)
        scores[name] = (before, after)
    return compare(scores, options.tolerance)


def compare(sets: dict, tolerance: float) -> tuple[bool, list[dict], str]:
    """``sets``: name -> (parent scores, candidate scores). Accepted only if no score drops by more than
    ``tolerance`` on any set."""
    rows, worse = [], []
    for name, (before, after) in sets.items():
        for metric in before:
            drop = before[metric] - after[metric]
            verdict = "better" if drop < -tolerance else "not worse" if drop <= tolerance else "WORSE"
            rows.append({"set": name, "metric": metric, "parent": round(before[metric], 4),
                         "candidate": round(after[metric], 4), "verdict": verdict})
            if verdict == "WORSE":
                worse.append(f"{metric} on {name} {before[metric]:.3f} -> {after[metric]:.3f}")
    if worse:
        return False, rows, "the retrained model is worse than its parent (" + "; ".join(worse) + ")"
    return True, rows, f"not worse than its parent on any check (tolerance {tolerance})"


def table_text(rows: list[dict]) -> str:
    lines = [f"{'set':34s} {'metric':20s} {'parent':>8s} {'candidate':>10s}  verdict"]
    lines += [f"{r['set']:34s} {r['metric']:20s} {r['parent']:8.3f} {r['candidate']:10.3f}  {r['verdict']}"
              for r in rows]
    return "\n".join(lines)


# --- the whole run ---------------------------------------------------------------------------------------

def _config_path(options: RetrainOptions, modality: str) -> Path:
    return Path(options.config or (MR_CONFIG if modality == "MR" else CONFIG))


def _training_config(options: RetrainOptions, minutes: float, modality: str = "CT") -> dict:
    from training.config import apply_overrides

    config = json.loads(_config_path(options, modality).read_text(encoding="utf-8"))
    config = apply_overrides(config, options.overrides)
    optim = config["optim"]
    optim["max_minutes"] = max(minutes, 0.05)
    optim["device"] = {"gpu": "cuda", "cpu": "cpu"}.get(options.device, "auto")
    if options.max_steps:
        optim["max_steps"] = int(options.max_steps)
    if options.threads:
        optim["threads"] = int(options.threads)
    return config


def _ct_task(config, regions, train_corrections):
    from training.data import Case, load_datasets, prepare
    from training.tasks import data_config
    from training.tasks_adapt import AdaptSegTask, UnlabelledRegions

    data = data_config(config)
    train, _ = load_datasets(replace(data, val_cases=[], phantom_val_seeds=[]))
    train += [prepare(Case(f"site-{digest}", image, labels, "site corrections"), data)
              for digest, image, labels in train_corrections]
    task = AdaptSegTask(config, train, [], int(config["optim"].get("seed", 0)),
                        unlabelled=UnlabelledRegions(regions, data.patch_size))
    task.data_description = {
        "train": {"phantoms": sum(c.source == "phantoms" for c in train), "site_corrections": len(train_corrections),
                  "site_correction_digests": [d for d, _, _ in train_corrections]},
        "unlabelled": {"site_scans": len(regions), "pseudo_centres": sum(len(c) for _, c in regions)}}
    return task


def _mr_task(config, site_cases, train_corrections):
    from spine_core.phantom.mr import MRPhantomOptions, generate_mr_phantom
    from training.mr_data import mr_case
    from training.tasks_mr_adapt import MRAdaptTask

    phantoms = []
    for seed in config["data"].get("phantom_train_seeds", []):
        phantom = generate_mr_phantom(MRPhantomOptions(seed=int(seed)))
        phantoms.append(mr_case(f"mr-phantom{seed}", phantom.image, phantom.labels))
    corrected = [mr_case(f"site-{digest}", image, labels) for digest, image, labels in train_corrections]
    task = MRAdaptTask(config, phantoms + corrected, [], int(config["optim"].get("seed", 0)), unlabelled=site_cases)
    task.data_description = {
        "train": {"phantoms": len(phantoms), "site_corrections": len(corrected),
                  "site_correction_digests": [d for d, _, _ in train_corrections]},
        "unlabelled": {"site_scans": len(site_cases), "slices": int(sum(len(c.slices) for c in site_cases))}}
    return task


def train_candidate(options, config, inputs, train_corrections, parent_onnx: Path, report: Reporter,
                    budget_s: float, modality: str = "CT"):
    """Train the candidate from the parent's weights (resuming OUT/work/training/last.pt if there is one)."""
    from training.trainer import Trainer

    if modality == "MR":
        task = _mr_task(config, inputs, train_corrections)
    else:
        task = _ct_task(config, inputs, train_corrections)
    work = options.out / "work" / "training"
    trainer = Trainer(task, config, work, options.command, progress_bar=False)
    last = work / "last.pt"
    if last.exists():
        trainer.resume(last)
    elif modality == "MR":
        start_pair(trainer.model, parent_onnx, float(config.get("task", {}).get("perturb", 0.05)),
                   int(config["net"].get("pair_seed", 1)))
    else:
        from training.onnx_weights import load_onnx_weights

        load_onnx_weights(trainer.model, parent_onnx)
    if modality == "CT":
        task.start_teacher(trainer.model)
    limit_s = 60 * float(config["optim"]["max_minutes"])
    max_steps = int(config["optim"]["max_steps"])

    def on_step(step: int, wall_s: float) -> None:
        within = max(wall_s / limit_s, step / max_steps)
        report("training", within, f"training: step {step}, {wall_s / 60:.1f} of {limit_s / 60:.1f} min",
               max(limit_s - wall_s, 0.0) + budget_s)

    trainer.on_step = on_step
    return trainer.fit(), trainer


WANTED = {"auto": ("CT", "MR"), "ct": ("CT",), "mr": ("MR",)}


def _adapted_modality(options: RetrainOptions, state: dict) -> str:
    """The modality this run adapts: the one asked for, else CT when the site has CT scans, else MR."""
    wanted = WANTED[options.modality]
    if len(wanted) == 1:
        return wanted[0]
    seen = state.get("seen", {})
    return "MR" if not seen.get("CT") and seen.get("MR") else "CT"


def _set_aside_notes(state: dict, found: dict, modality: str) -> list[str]:
    notes = []
    other = "MR" if modality == "CT" else "CT"
    count = state.get("set_aside", {}).get(other, 0) + len(found.get(other, ([], []))[1])
    if count:
        notes.append(f"{count} {other} scan(s) set aside: this run adapts the {modality} model "
                     f"(run again with --modality {other.lower()})")
    return notes


def run_retrain(options: RetrainOptions, report: Reporter | None = None) -> dict:
    """The whole adaptation; returns (and writes to OUT/retrain.json) the outcome."""
    from training.export import export_checkpoint
    from training.tasks import data_config
    from training.trainer import hardware

    report = report or Reporter()
    # the pipeline's per-scan review warnings would bury the progress: only errors are shown here
    logging.getLogger("spine_core").setLevel(logging.ERROR)
    out = options.out
    out.mkdir(parents=True, exist_ok=True)
    if (out / "retrain.json").exists():
        return json.loads((out / "retrain.json").read_text(encoding="utf-8"))
    if options.modality not in WANTED:
        raise SpineError(f"--modality must be one of {', '.join(WANTED)}, not '{options.modality}'.")
    state = _state(out)
    state.setdefault("started", datetime.now(timezone.utc).isoformat(timespec="seconds"))
    report("scans", 0.0, "finding the site's scans and corrections")
    wanted = WANTED[options.modality]
    if len(wanted) == 1:      # a base folder without the model is refused before any scan is read
        parent_model(options.base, options.device, MODEL_IDS[wanted[0]])
    found = pseudo_label_scans(options, data_config(_training_config(options, options.budget_minutes)), report,
                               state, wanted)
    modality = _adapted_modality(options, state)
    model_id = MODEL_IDS[modality]
    inputs, digests = found[modality]
    if not inputs:
        other = "MR" if modality == "CT" else "CT"
        if not state.get("seen", {}).get(modality):
            aside = state.get("set_aside", {}).get(other, 0)
            raise SpineError(f"No {modality} scan that loads was found in '{options.scans}', so there is nothing to "
                             f"adapt the {modality} model to" + (f"; it holds {aside} {other} scan(s): adapt the "
                                                                 f"{other} model with --modality {other.lower()}."
                                                                 if aside else "."))
        raise SpineError("The parent pipeline found no vertebra on any of the site's CT scans, so there is nothing "
                         "to adapt to. Check that the folder holds spine CTs.")
    parent_card, parent_onnx = parent_model(options.base, options.device, model_id)
    train_corr, back_corr, skipped_corr = load_corrections(options, modality)
    if modality == "MR" and not train_corr:
        raise SpineError("Adapting the MR model needs the site's corrected MR cases (--corrections: at least two, "
                         "a third are held back for the check). Cross pseudo supervision on unlabelled MR scans "
                         "alone lost every vertebral body when measured (docs/BENCHMARKS.md \"Site adaptation\"); "
                         "the check would refuse such a model.")
    references = reference_cases(options, modality)
    # the check runs after training; keep the whole run within the budget using the measured analysis time
    if modality == "MR":
        check_s = 2 * sum(mr_analysis_s(image) for _, image, _ in (*back_corr, *references))
    else:
        per_analysis = state.get("pseudo_s", 0.0) / max(len(state.get("scans", {})), 1) or 30.0
        check_s = 2 * per_analysis * (len(back_corr) + len(references))
    train_minutes = (60 * options.budget_minutes - state.get("pseudo_wall_s", 0.0) - check_s) / 60
    config = _training_config(options, train_minutes, modality)
    last, trainer = train_candidate(options, config, inputs, train_corr, parent_onnx, report, check_s, modality)
    report("export", 0.0, "exporting the candidate model")
    candidate_dir = out / "work" / "candidate"
    onnx_path, card_path, parity = export_checkpoint(last, candidate_dir, model_id)

    from spine_core.models.card import ModelCard
    from spine_core.pipeline.models import LoadedModel
    from spine_core.pipeline.runtime import create_session

    card = ModelCard.load(card_path)
    session, info = create_session(onnx_path, options.device)
    candidate = {model_id: LoadedModel(card, session, info.provider)}
    sets = {reference_set_name(modality, len(references)): references}
    if back_corr:
        sets[f"held-back corrections ({len(back_corr)})"] = back_corr
    accepted, rows, reason = check(sets, model_set(options.base, options.device, model_id=model_id),
                                   model_set(options.base, options.device, candidate, model_id=model_id),
                                   options, report, modality)
    skipped = sorted(set(state.get("skipped", []) + skipped_corr + _set_aside_notes(state, found, modality)))
    outcome = {"accepted": accepted, "model_id": model_id, "modality": modality, "onnx": None, "card": None,
               "reason": reason, "tolerance": options.tolerance, "comparison": rows,
               "budget_minutes": options.budget_minutes,
               "steps": trainer.step, "wall_s": round(trainer.wall_s + state.get("pseudo_wall_s", 0.0), 1),
               "parent": {"id": parent_card.id, "version": parent_card.version, "sha256": parent_card.sha256},
               "data": {"site_scans": len(digests), "site_scan_digests": digests,
                        "corrections_trained": len(train_corr), "corrections_held_back": len(back_corr),
                        "held_back_digests": [d for d, _, _ in back_corr], "skipped": skipped},
               "hardware": hardware(), "finished": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    if accepted:
        final = write_model(out / "models", onnx_path, card, parent_card, outcome, parity)
        outcome["onnx"], outcome["card"] = str(final.with_suffix(".onnx")), str(final)
    write_outcome(out, outcome)
    report("check", 1.0, reason, 0.0)
    return outcome


METHODS = {"CT": ("teacher-student consistency on the site's scans around the parent pipeline's vertebra "
                  "centres + supervised phantoms and corrections"),
           "MR": ("cross pseudo supervision between two copies of the parent on the site's MR slices (CutMix) + "
                  "supervised generated T2 MR phantoms and corrections")}


def write_model(folder: Path, onnx_path: Path, card, parent_card, outcome: dict, parity: float) -> Path:
    """The accepted model and its full card: parent, data as counts and digests, budget, hardware, the check."""
    import shutil


    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    model_id = outcome.get("model_id", MODEL_ID)
    training = dict(card.training)
    training["site_adaptation"] = {k: outcome[k] for k in ("parent", "data", "budget_minutes", "steps", "wall_s",
                                                           "hardware", "tolerance", "comparison")}
    training["parent_training"] = parent_card.training
    training["site_adaptation"]["method"] = METHODS[outcome.get("modality", "CT")]
    metrics = {**card.metrics, "onnx_parity_max_abs_error": parity,
               "site_check": {r["set"] + ": " + r["metric"]: {"parent": r["parent"], "candidate": r["candidate"]}
                              for r in outcome["comparison"]}}
    final = replace(card, version=f"{outcome['parent']['version'].split('+')[0]}+site{stamp}", training=training,
                    metrics=metrics, license=parent_card.license + "; adapted on the site's own scans and generated phantoms",
                    notes=card.notes + f" Adapted at a site from {outcome['parent']['id']} "
                                       f"(sha256 {outcome['parent']['sha256'][:12]}...).")
    target = folder / f"{model_id}.onnx"
    with atomic_path(target) as tmp:
        shutil.copyfile(onnx_path, tmp)
    return final.save(folder / f"{model_id}.json")


def write_outcome(out: Path, outcome: dict) -> None:

    for name, text in (("comparison.md", table_text(outcome["comparison"]) + "\n\n" + outcome["reason"] + "\n"),
                       ("retrain.json", json.dumps(outcome, indent=2) + "\n")):
        with atomic_path(out / name) as tmp:
            tmp.write_text(text, encoding="utf-8")
