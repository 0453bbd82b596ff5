"""`spineplan models list | verify | register`: the shipped models, the site's registered ones, and
whether their files are what was shipped or registered (spine_core.models.registry)."""
from __future__ import annotations

from pathlib import Path


def _print_statuses(rows, site_folder: Path) -> int:
    from spine_core.models.registry import SHIPPED_FOLDER

    failed = 0
    for source, folder in (("shipped", SHIPPED_FOLDER), ("site", site_folder)):
        mine = [r for r in rows if r.source == source]
        print(f"{source.capitalize()} models ({folder}):")
        if not mine:
            print("  none" + ("; register one with `spineplan models register MODEL.onnx MODEL.json`"
                              if source == "site" else ""))
        for row in mine:
            failed += bool(row.problem)
            status = f"REFUSED: {row.problem}" if row.problem else "verified"
            print(f"  {row.model_id:22s} {row.version:16s} {row.task:38s} {status}")
    return failed


def cmd_models_list(args) -> int:
    from spine_core.models.registry import model_statuses
    from spine_core.models.site import SiteModels

    site = SiteModels()
    _print_statuses(model_statuses(site), site.folder)
    print("Run the site's models with `spineplan segment ... --models site` (shipped ones fill the gaps).")
    return 0


def cmd_models_verify(args) -> int:
    from spine_core.models.registry import model_statuses
    from spine_core.models.site import SiteModels

    site = SiteModels()
    failed = _print_statuses(model_statuses(site), site.folder)
    if failed:
        print(f"{failed} model(s) failed verification; they will not run. Reinstall SpinePlan for shipped "
              "models, register site models again.")
        return 2
    print("All models verified.")
    return 0


def _check_loads(onnx: Path) -> None:
    """A file onnxruntime cannot open is refused before it is registered."""
    from spine_core.errors import SpineError
    from spine_core.pipeline.runtime import create_session

    try:
        create_session(onnx, device="cpu")
    except Exception as exc:  # noqa: BLE001 - onnxruntime's own errors say little to a user
        raise SpineError(f"'{onnx}' is not a model onnxruntime can load ({type(exc).__name__}); export it "
                         "again with `spineplan export-onnx`.") from exc


def cmd_models_register(args) -> int:
    from spine_core.models.site import SiteModels

    _check_loads(Path(args.onnx))
    site = SiteModels()
    card, replaced = site.register(args.onnx, args.card, args.id)
    print(f"{'Replaced' if replaced else 'Registered'} site model '{card.id}' {card.version} in {site.folder} "
          f"(sha256 {card.sha256[:12]}...).")
    print("Run it with `spineplan segment ... --models site`.")
    return 0


def add_models(sub) -> None:
    p = sub.add_parser("models", help="list, verify and register models (shipped and this site's own)")
    models = p.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    q = models.add_parser("list", help="shipped and site models, each with its verification status")
    q.set_defaults(func=cmd_models_list)
    q = models.add_parser("verify", help="check every model's files (exit 2 if any was altered)")
    q.set_defaults(func=cmd_models_verify)
    q = models.add_parser("register", help="copy a retrained model (ONNX + card) into the site folder and "
                          "record its sha256, so that `--models site` runs it")
    q.add_argument("onnx", help="the model file (.onnx)")
    q.add_argument("card", help="its model card (.json), as `spineplan export-onnx` wrote it")
    q.add_argument("--id", help="the id to register it as (default: the card's id; the pipelines run "
                   "ct-spine-localizer, ct-vertebra-detector, ct-vertebra-seg, ct-vertebra-labeler, "
                   "ct-joint-seg-id)")
    q.set_defaults(func=cmd_models_register)
