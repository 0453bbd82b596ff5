"""Site retraining (``spineplan retrain``): adapt the CT vertebra segmentation to a hospital's own scans,
and accept the result only if it is not worse.

Stages (each resumes: state in OUT/work, the training checkpointed every few steps):

1. scans: the site's studies (batch discovery), identified by voxel digests; MR scans are set aside
   (MR adaptation is not built yet);
2. pseudo-labels: the parent pipeline (the models an analysis uses now, or ``--base``) runs on every
   scan; its vertebra centres anchor the unlabelled training regions;
3. training (training.tasks_adapt): from the parent's weights, teacher-student consistency on the
   site's scans plus supervised batches of generated phantoms and the site's corrected cases (a fixed
   share of the corrections is held back for the check), within the time budget;
4. export: ONNX + card;
5. check: the parent and the candidate pipelines on the held-back corrections and on a fixed set of
   generated reference phantoms (nothing real ships); accepted only if neither mean vertebra Dice nor
   binary spine Dice drops by more than ``tolerance`` on either set. The table is printed and saved.

An accepted model is written to OUT/models with a card naming its parent (id, sha256), the data it saw
as counts and voxel digests (never names or patient identifiers), budget, hardware and the check's
before/after figures. It is not used until the site says so (``--register``/``--activate`` here,
``spineplan models use`` or the workstation's Tools > Adapt).
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from spine_core.errors import Cancelled, SpineError

log = logging.getLogger("spineplan.retrain")
ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "training" / "configs" / "vertebra_seg_adapt.json"
MODEL_ID = "ct-vertebra-seg"
REFERENCE_SEEDS = (77001, 77002, 77003)
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
    budget_minutes: float = 30.0
    device: str = "auto"                  # auto | cpu | gpu
    base: Path | None = None              # a folder of exported models to adapt instead of the active set
    hold_back: float = 0.34
    tolerance: float = 0.005
    reference_seeds: tuple[int, ...] = REFERENCE_SEEDS
    reference_options: dict = field(default_factory=lambda: dict(REFERENCE_OPTIONS))
    max_steps: int | None = None          # tests and smoke runs
    threads: int = 0
    config: Path = CONFIG
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

def _preset_from_folder(folder: Path, device: str) -> dict:
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
    if MODEL_ID not in preset:
        raise SpineError(f"'{folder}' holds no {MODEL_ID} model to adapt.")
    return preset


def model_set(base: Path | None, device: str, extra: dict | None = None):
    """The parent's models (the active set, or ``base``), with ``extra`` loaded models in place of theirs."""
    from spine_core.pipeline.models import ModelSet

    preset = _preset_from_folder(base, device) if base else {}
    return ModelSet(None, device, preset={**preset, **(extra or {})})


def parent_model(base: Path | None, device: str):
    """(card, ONNX path) of the vertebra segmentation model the adaptation starts from."""
    models = model_set(base, device)
    card = models.get(MODEL_ID).card
    if base:
        return card, Path(base) / f"{MODEL_ID}.onnx"
    registry = models._registry_of(MODEL_ID)
    return card, registry.onnx_path(MODEL_ID)


def load_onnx_weights(model, onnx_path: Path) -> None:
    """The parent's weights into the torch network: the exporter keeps parameter names, so every tensor
    must be found by name and shape (a network of another design is refused, never half-loaded)."""
    import onnx
    import torch
    from onnx import numpy_helper

    found = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(onnx_path)).graph.initializer}
    own = model.state_dict()
    bad = [k for k, v in own.items() if k not in found or tuple(found[k].shape) != tuple(v.shape)]
    if bad:
        raise SpineError(f"The parent model '{onnx_path.name}' does not match the adaptation network ({len(bad)} of "
                         f"{len(own)} tensors differ, e.g. '{bad[0]}'); it cannot be adapted by this version.")
    model.load_state_dict({k: torch.from_numpy(np.array(found[k])) for k in own})


# --- data ---------------------------------------------------------------------------------------------

def _state(out: Path) -> dict:
    path = out / "work" / "state.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def _save_state(out: Path, state: dict) -> None:
    from spine_core.io.writers import atomic_path

    path = out / "work" / "state.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(state, indent=2), encoding="utf-8")


def pseudo_label_scans(options: RetrainOptions, data_cfg, report: Reporter, state: dict):
    """Every site CT on the model's grid with the parent pipeline's vertebra centres (cached by digest)."""
    from spine_core.pipeline.api import SegmentOptions
    from spine_core.pipeline.pipelines import segment
    from spine_core.pipeline.pipelines import scan_modality
    from spine_core.pipeline.preprocess import FILL_HU, canonical_grid, resample_image, scale_window
    from spine_core.workflows.batch_discovery import load_study
    from spine_core.workflows.site_data import find_scans, voxel_digest

    studies = find_scans(options.scans)
    if not studies:
        raise SpineError(f"No scans were found in '{options.scans}'. Give the folder that holds the site's CT "
                         "studies (DICOM series or NIfTI files).")
    cache = state.setdefault("scans", {})
    skipped = state.setdefault("skipped", [])
    models = None
    regions, digests = [], []
    started = time.monotonic()
    for n, study in enumerate(studies):
        report("pseudo-labels", n / len(studies), f"scan {n + 1} of {len(studies)}")
        try:
            volume = load_study(study)
            modality, _ = scan_modality(volume, "")
        except SpineError as exc:
            skipped.append(f"a scan that does not load ({exc})")
            continue
        if modality != "CT":
            skipped.append("an MR scan (MR adaptation is not built yet)")
            continue
        digest = voxel_digest(volume)
        if digest in digests:
            continue
        if digest not in cache:
            models = models or model_set(options.base, options.device)
            try:
                result = segment(volume, SegmentOptions(device=options.device), models=models)
            except SpineError as exc:
                skipped.append(f"a scan the parent pipeline refused ({exc})")
                cache[digest] = {"centres_lps": [], "refused": str(exc)}
                continue
            cache[digest] = {"centres_lps": [v.position.tolist() for v in result.vertebrae
                                             if v.confidence >= MIN_CONFIDENCE]}
            state["pseudo_s"] = state.get("pseudo_s", 0.0) + result.timings_s.get("total", 0.0)
            _save_state(options.out, state)
        centres = cache[digest]["centres_lps"]
        if not centres:
            if "refused" not in cache[digest]:
                skipped.append("a scan on which the parent pipeline found no vertebra it was sure of")
            continue
        grid = canonical_grid(volume, data_cfg.spacing_mm)
        image = scale_window(resample_image(volume, grid, fill=FILL_HU), data_cfg.window)
        regions.append((image.astype(np.float32), [grid.lps_to_index(np.asarray(c)) for c in centres]))
        digests.append(digest)
    state["pseudo_wall_s"] = state.get("pseudo_wall_s", 0.0) + (time.monotonic() - started)
    _save_state(options.out, state)
    state["skipped"] = sorted(set(skipped))
    return regions, digests


def load_corrections(options: RetrainOptions):
    """(train, held back) corrections, each (digest, image, labels), and what was skipped."""
    from spine_core.workflows.site_data import find_corrections, hold_back, voxel_digest

    if options.corrections is None:
        return [], [], []
    found, skipped = find_corrections(options.corrections)
    loaded = []
    for correction in found:
        try:
            image, labels = correction.load()
        except SpineError as exc:
            skipped.append(f"a {correction.origin} correction that does not load ({exc})")
            continue
        if not [i for i in labels.ids() if 0 < i < 100]:
            skipped.append(f"a {correction.origin} correction without vertebra labels")
            continue
        loaded.append((voxel_digest(image), image, labels))
    train, back = hold_back(loaded, [d for d, _, _ in loaded], options.hold_back)
    return train, back, skipped


# --- the check -----------------------------------------------------------------------------------------

def reference_cases(options: RetrainOptions):
    """The fixed reference set: generated phantoms (same seeds on every site: nothing real ships)."""
    from spine_core.phantom import PhantomOptions, generate_phantom

    cases = []
    for seed in options.reference_seeds:
        fixed = {k: tuple(v) if isinstance(v, list) else v for k, v in options.reference_options.items()}
        phantom = generate_phantom(PhantomOptions.sample(int(seed), **fixed))
        cases.append((f"phantom{seed}", phantom.image, phantom.labels))
    return cases


def score_set(cases, models, options: RetrainOptions, report: Reporter, done: list, total: int) -> dict:
    """Mean vertebra Dice (misnumbered = 0) and binary spine Dice of one pipeline over ``cases``."""
    from spine_core.metrics.evaluate import evaluate
    from spine_core.pipeline.api import SegmentOptions
    from spine_core.pipeline.pipelines import segment

    vertebra, binary = [], []
    for _, image, labels in cases:
        started = time.monotonic()
        try:
            result = segment(image, SegmentOptions(device=options.device), models=models)
            summary = evaluate(result.labels, labels).summary
            vertebra.append(summary.mean_dice)
            binary.append(summary.binary_dice)
        except SpineError as exc:        # a model so bad that the analysis fails scores nothing
            log.info("the check's analysis failed: %s", exc)
            vertebra.append(0.0)
            binary.append(0.0)
        done.append(time.monotonic() - started)
        left = (total - len(done)) * float(np.mean(done))
        report("check", len(done) / total, f"checking: {len(done)} of {total} analyses", left)
    return {"mean vertebra Dice": float(np.mean(vertebra)), "binary spine Dice": float(np.mean(binary))}


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

def _training_config(options: RetrainOptions, minutes: float) -> dict:
    from training.config import apply_overrides

    config = json.loads(Path(options.config).read_text(encoding="utf-8"))
    config = apply_overrides(config, options.overrides)
    optim = config["optim"]
    optim["max_minutes"] = max(minutes, 0.05)
    optim["device"] = {"gpu": "cuda", "cpu": "cpu"}.get(options.device, "auto")
    if options.max_steps:
        optim["max_steps"] = int(options.max_steps)
    if options.threads:
        optim["threads"] = int(options.threads)
    return config


def train_candidate(options, config, regions, train_corrections, parent_onnx: Path, report: Reporter,
                    budget_s: float):
    from training.data import Case, prepare
    from training.tasks import data_config
    from training.tasks_adapt import AdaptSegTask, UnlabelledRegions
    from training.data import load_datasets
    from training.trainer import Trainer

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
    work = options.out / "work" / "training"
    trainer = Trainer(task, config, work, options.command, progress_bar=False)
    last = work / "last.pt"
    if last.exists():
        trainer.resume(last)
    else:
        load_onnx_weights(trainer.model, parent_onnx)
    task.start_teacher(trainer.model)
    limit_s = 60 * float(config["optim"]["max_minutes"])
    max_steps = int(config["optim"]["max_steps"])

    def on_step(step: int, wall_s: float) -> None:
        within = max(wall_s / limit_s, step / max_steps)
        report("training", within, f"training: step {step}, {wall_s / 60:.1f} of {limit_s / 60:.1f} min",
               max(limit_s - wall_s, 0.0) + budget_s)

    trainer.on_step = on_step
    return trainer.fit(), trainer


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
    state = _state(out)
    state.setdefault("started", datetime.now(timezone.utc).isoformat(timespec="seconds"))
    report("scans", 0.0, "finding the site's scans and corrections")
    parent_card, parent_onnx = parent_model(options.base, options.device)
    config = _training_config(options, options.budget_minutes)
    data = data_config(config)
    train_corr, back_corr, skipped_corr = load_corrections(options)
    regions, digests = pseudo_label_scans(options, data, report, state)
    if not regions:
        raise SpineError("The parent pipeline found no vertebra on any of the site's CT scans, so there is nothing "
                         "to adapt to. Check that the folder holds spine CTs.")
    references = reference_cases(options)
    # the check runs after training; keep the whole run within the budget using the measured analysis time
    per_analysis = state.get("pseudo_s", 0.0) / max(len(state.get("scans", {})), 1) or 30.0
    check_s = 2 * per_analysis * (len(back_corr) + len(references))
    train_minutes = (60 * options.budget_minutes - state.get("pseudo_wall_s", 0.0) - check_s) / 60
    config = _training_config(options, train_minutes)
    last, trainer = train_candidate(options, config, regions, train_corr, parent_onnx, report, check_s)
    report("export", 0.0, "exporting the candidate model")
    candidate_dir = out / "work" / "candidate"
    onnx_path, card_path, parity = export_checkpoint(last, candidate_dir, MODEL_ID)

    from spine_core.models.card import ModelCard
    from spine_core.pipeline.models import LoadedModel
    from spine_core.pipeline.runtime import create_session

    card = ModelCard.load(card_path)
    session, info = create_session(onnx_path, options.device)
    candidate = {MODEL_ID: LoadedModel(card, session, info.provider)}
    sets = {f"reference phantoms ({len(references)})": references}
    if back_corr:
        sets[f"held-back corrections ({len(back_corr)})"] = [(d, i, lab) for d, i, lab in back_corr]
    total, done, scores = 2 * sum(len(c) for c in sets.values()), [], {}
    parent_models = model_set(options.base, options.device)
    candidate_models = model_set(options.base, options.device, candidate)
    for name, cases in sets.items():
        before = score_set(cases, parent_models, options, report, done, total)
        after = score_set(cases, candidate_models, options, report, done, total)
        scores[name] = (before, after)
    accepted, rows, reason = compare(scores, options.tolerance)
    outcome = {"accepted": accepted, "model_id": MODEL_ID, "onnx": None, "card": None, "reason": reason,
               "tolerance": options.tolerance, "comparison": rows, "budget_minutes": options.budget_minutes,
               "steps": trainer.step, "wall_s": round(trainer.wall_s + state.get("pseudo_wall_s", 0.0), 1),
               "parent": {"id": parent_card.id, "version": parent_card.version, "sha256": parent_card.sha256},
               "data": {"site_scans": len(digests), "site_scan_digests": digests,
                        "corrections_trained": len(train_corr), "corrections_held_back": len(back_corr),
                        "held_back_digests": [d for d, _, _ in back_corr],
                        "skipped": sorted(set(state.get("skipped", []) + skipped_corr))},
               "hardware": hardware(), "finished": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    if accepted:
        final = write_model(out / "models", onnx_path, card, parent_card, outcome, parity)
        outcome["onnx"], outcome["card"] = str(final.with_suffix(".onnx")), str(final)
    write_outcome(out, outcome)
    report("check", 1.0, reason, 0.0)
    return outcome


def write_model(folder: Path, onnx_path: Path, card, parent_card, outcome: dict, parity: float) -> Path:
    """The accepted model and its full card: parent, data as counts and digests, budget, hardware, the check."""
    import shutil

    from spine_core.io.writers import atomic_path

    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    training = dict(card.training)
    training["site_adaptation"] = {k: outcome[k] for k in ("parent", "data", "budget_minutes", "steps", "wall_s",
                                                           "hardware", "tolerance", "comparison")}
    training["parent_training"] = parent_card.training
    training["site_adaptation"]["method"] = ("teacher-student consistency on the site's scans around the parent "
                                             "pipeline's vertebra centres + supervised phantoms and corrections")
    metrics = {**card.metrics, "onnx_parity_max_abs_error": parity,
               "site_check": {r["set"] + ": " + r["metric"]: {"parent": r["parent"], "candidate": r["candidate"]}
                              for r in outcome["comparison"]}}
    final = replace(card, version=f"{outcome['parent']['version'].split('+')[0]}+site{stamp}", training=training,
                    metrics=metrics, license=parent_card.license + "; adapted on the site's own scans and generated phantoms",
                    notes=card.notes + f" Adapted at a site from {outcome['parent']['id']} "
                                       f"(sha256 {outcome['parent']['sha256'][:12]}...).")
    target = folder / f"{MODEL_ID}.onnx"
    with atomic_path(target) as tmp:
        shutil.copyfile(onnx_path, tmp)
    return final.save(folder / f"{MODEL_ID}.json")


def write_outcome(out: Path, outcome: dict) -> None:
    from spine_core.io.writers import atomic_path

    for name, text in (("comparison.md", table_text(outcome["comparison"]) + "\n\n" + outcome["reason"] + "\n"),
                       ("retrain.json", json.dumps(outcome, indent=2) + "\n")):
        with atomic_path(out / name) as tmp:
            tmp.write_text(text, encoding="utf-8")
