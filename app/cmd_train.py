"""`spineplan train` and `spineplan export-onnx` (torch is imported only when they run)."""
from __future__ import annotations

import json
import shlex
from pathlib import Path

from spine_core.errors import SpineError

# training.tasks.TASKS, named here so that `spineplan --help` does not import torch (a test keeps them equal)
MODELS = ("localizer", "joint", "detector2d", "vertebra_seg", "labeler", "mr_scar", "mr_scar_pair", "mr_sshs2d",
          "mr_sshs3d")


def _read_config(path, model: str) -> dict:
    try:
        config = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise SpineError(f"Cannot read the training config '{path}' ({exc}).") from exc
    if config.setdefault("model", model) != model:
        raise SpineError(f"The config '{path}' is for '{config['model']}', not '{model}'.")
    return config


def _require_torch() -> None:
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        raise SpineError("Training needs torch: install SpinePlan with its 'training' extra "
                         "(pip install torch==2.13.0 first, then '.[training]').") from exc


def _check_budget_left(checkpoint, config: dict) -> None:
    """optim.max_minutes is a run's whole budget, resumes included (a site's retraining budget means that
    too), so a run stopped by its cap would resume into one step and stop again without a word."""
    from training.trainer import load_checkpoint

    cap = float(config.get("optim", {}).get("max_minutes", 0) or 0)
    spent = float(load_checkpoint(checkpoint).get("wall_time_s", 0.0)) / 60
    if cap and spent >= cap:
        raise SpineError(f"The checkpoint '{checkpoint}' has already trained {spent:.1f} min, the whole of this "
                         f"run's {cap:g}-min budget (optim.max_minutes counts resumes too): pass --set "
                         f"optim.max_minutes=M with M over {spent:.1f}, or 0 for no limit.")


def cmd_train(args) -> int:
    _require_torch()
    from training.trainer import run_training

    from training.config import apply_overrides

    try:
        config = apply_overrides(_read_config(args.config, args.model), args.set)
    except ValueError as exc:
        raise SpineError(str(exc)) from exc
    for given in (args.init_from, args.resume):
        if given and not Path(given).is_file():
            raise SpineError(f"The checkpoint '{given}' does not exist.")
    if args.resume:
        _check_budget_left(args.resume, config)
    out = Path(args.out or Path("runs") / args.model)
    command = " ".join(["spineplan train", args.model, "--config", shlex.quote(str(args.config))]
                       + [f"--set {shlex.quote(s)}" for s in args.set or []]
                       + [f"--{k} {shlex.quote(str(v))}" for k, v in (("init-from", args.init_from),
                                                                      ("resume", args.resume), ("out", out)) if v])
    try:
        last = run_training(config, out, resume=args.resume, command=command, init_from=args.init_from)
    except (ValueError, FileNotFoundError) as exc:
        raise SpineError(f"Training could not start: {exc}") from exc
    print(f"Wrote {last} (metrics: {out / 'metrics.jsonl'})")
    return 0


def add_train(sub) -> None:
    p = sub.add_parser("train", help="train a network (needs torch); writes checkpoints and a metrics log")
    p.add_argument("model", choices=MODELS, help="which network")
    p.add_argument("--config", required=True, help="JSON: net, data and optim settings "
                   "(examples in training/configs/)")
    p.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE",
                   help="override one config setting (JSON value), e.g. net.long_range=transformer; repeatable")
    p.add_argument("--resume", help="checkpoint (.pt) to continue from")
    p.add_argument("--init-from", metavar="CHECKPOINT", help="start from a trained checkpoint's weights "
                   "(fine-tuning); optimizer and steps start fresh")
    p.add_argument("--out", help="output folder (default runs/MODEL)")
    p.set_defaults(func=cmd_train)


def cmd_export_onnx(args) -> int:
    _require_torch()
    from training.export import export_checkpoint

    if not Path(args.checkpoint).is_file():
        raise SpineError(f"The checkpoint '{args.checkpoint}' does not exist.")
    onnx_path, card_path, parity = export_checkpoint(args.checkpoint, args.out, args.id)
    print(f"Wrote {onnx_path} and {card_path} (torch vs onnxruntime max abs error {parity:.2e})")
    return 0


def add_export_onnx(sub) -> None:
    p = sub.add_parser("export-onnx", help="export a training checkpoint to ONNX + model card (needs torch)")
    p.add_argument("checkpoint", help="checkpoint (.pt) written by 'spineplan train'")
    p.add_argument("--out", default="resources/models", help="output folder (default resources/models)")
    p.add_argument("--id", help="model id (default spineplan-MODEL)")
    p.set_defaults(func=cmd_export_onnx)
