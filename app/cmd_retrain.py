"""`spineplan retrain`: adapt the CT vertebra segmentation or the MR model to the site's own scans
(training.retrain), guarded by a check on held-back corrections and the reference phantoms. Exit 0: the retrained model passed the check;
4: it was refused (nothing changes); 2: bad input; 130/143: cancelled or stopped (the last checkpoint is
kept: the same command with the same -o resumes)."""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

from app.cmd_train import _require_torch
from spine_core.errors import SpineError

EXIT_REFUSED = 4


class _Printer:
    """Progress as JSON lines (for the workstation's dialog) or as a line of text every few seconds."""

    def __init__(self, as_json: bool) -> None:
        self.as_json, self.last = as_json, 0.0

    def __call__(self, stage: str, fraction: float, message: str, eta_s: float | None) -> None:
        if self.as_json:
            print(json.dumps({"event": "progress", "fraction": round(fraction, 4), "stage": stage, "message": message,
                              "eta_s": None if eta_s is None else round(eta_s)}), flush=True)
            return
        now = time.monotonic()
        if now - self.last >= 5 or fraction >= 1.0:
            self.last = now
            left = "" if eta_s is None else f", about {eta_s / 60:.0f} min left"
            print(f"[{100 * fraction:5.1f} %] {message}{left}", file=sys.stderr, flush=True)


def cmd_retrain(args) -> int:
    _require_torch()   # the same message as `spineplan train`
    from training.retrain import RetrainOptions, Reporter, run_retrain, table_text

    scans = Path(args.scans)
    if not scans.is_dir():
        raise SpineError(f"'{scans}' is not a folder. Give the folder that holds the site's scans (--scans).")
    if args.corrections and not Path(args.corrections).is_dir():
        raise SpineError(f"'{args.corrections}' is not a folder. Give the folder of saved plans or batch reviews "
                         "(--corrections), or leave it out.")
    if args.budget_minutes <= 0:
        raise SpineError("--budget-minutes must be more than 0.")
    if args.base and not Path(args.base).is_dir():
        raise SpineError(f"'{args.base}' is not a folder of exported models (--base).")
    command = _recorded_command(args)
    options = RetrainOptions(scans=scans, out=Path(args.out), corrections=Path(args.corrections) if args.corrections
                             else None, modality=args.modality, budget_minutes=args.budget_minutes, device=args.device,
                             base=Path(args.base) if args.base else None, hold_back=args.hold_back,
                             tolerance=args.tolerance, max_steps=args.max_steps, threads=args.threads,
                             overrides=args.set or [], command=command,
                             **({"reference_seeds": tuple(args.reference_seeds)} if args.reference_seeds else {}))
    outcome = run_retrain(options, Reporter(_Printer(args.progress == "json")))
    stream = sys.stderr if args.progress == "json" else sys.stdout
    print(table_text(outcome["comparison"]), file=stream)
    print(("Accepted: " if outcome["accepted"] else "Refused: ") + outcome["reason"], file=stream)
    if outcome["accepted"]:
        _register(outcome, args)
    if args.progress == "json":
        print(json.dumps({"event": "result", "path": str(Path(args.out) / "retrain.json")}), flush=True)
    else:
        print(f"Wrote {Path(args.out) / 'retrain.json'} and comparison.md")
    return 0 if outcome["accepted"] else EXIT_REFUSED


def _recorded_command(args) -> str:
    """The command for the model card, the site's folders left out: folder names can hold patient names."""
    named = {"scans": "SITE_SCANS", "corrections": "CORRECTIONS", "out": "OUT", "base": "BASE_MODELS"}
    parts = ["spineplan retrain"]
    for key, value in sorted(vars(args).items()):
        if key in ("func", "command", "verbose", "progress") or value in (None, False, []):
            continue
        flag = "-o" if key == "out" else "--" + key.replace("_", "-")
        if value is True:
            parts.append(flag)
        elif key == "set":
            parts += [f"{flag} {shlex.quote(str(v))}" for v in value]
        elif isinstance(value, list):
            parts.append(flag + "".join(f" {shlex.quote(str(v))}" for v in value))
        else:
            parts.append(f"{flag} {named.get(key) or shlex.quote(str(value))}")
    return " ".join(parts)


def _register(outcome: dict, args) -> None:
    from spine_core.models.site import SiteModels

    out = sys.stderr if args.progress == "json" else sys.stdout
    if not (args.register or args.activate):
        print(f"The adapted model is in {Path(outcome['card']).parent}. Use it with `spineplan retrain ... --activate`,"
              " the workstation's Tools > Adapt, or `spineplan models register` then `spineplan models use "
              f"{outcome['model_id']}`.", file=out)
        return
    site = SiteModels()
    site.register(outcome["onnx"], outcome["card"])
    print(f"Registered {outcome['model_id']} in {site.folder}.", file=out)
    if args.activate:
        site.use(outcome["model_id"])
        print("New analyses use it; `spineplan models rollback` goes back.", file=out)


def add_retrain(sub) -> None:
    p = sub.add_parser("retrain", help="adapt the CT or MR models to this site's scans (needs torch); a worse model "
                       "is refused")
    p.add_argument("--scans", required=True, help="folder of the site's studies (DICOM series, NIfTI files)")
    p.add_argument("--modality", choices=["auto", "ct", "mr"], default="auto",
                   help="which model to adapt; auto: CT when the folder holds CT scans, else MR (one per run)")
    p.add_argument("--corrections", help="folder of saved plans / batch review folders / image+labels pairs: the "
                   "site's corrected cases (a share is held back for the check)")
    p.add_argument("--budget-minutes", type=float, default=30.0, help="time for the whole run (default 30)")
    p.add_argument("--device", choices=["auto", "cpu", "gpu"], default="auto")
    p.add_argument("-o", "--out", required=True, help="output folder (run again with the same one to resume)")
    p.add_argument("--base", help="a folder of exported models to adapt instead of those in use (benchmarks)")
    p.add_argument("--hold-back", type=float, default=0.34, help="share of corrections kept for the check")
    p.add_argument("--tolerance", type=float, default=0.005, help="largest Dice drop still called 'not worse'")
    p.add_argument("--register", action="store_true", help="register an accepted model in the site registry")
    p.add_argument("--activate", action="store_true", help="register an accepted model and use it by default")
    p.add_argument("--progress", choices=["text", "json"], default="text", help="json: one line per update")
    p.add_argument("--max-steps", type=int, help=argparse.SUPPRESS)
    p.add_argument("--threads", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--reference-seeds", type=int, nargs="+", help=argparse.SUPPRESS)
    p.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE", help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_retrain)

