"""`spineplan models list | verify | register | use | rollback`: the shipped models, the site's registered
ones, whether their files are what was shipped or registered (spine_core.models.registry), and which of
them an analysis without `--models` runs (the site's active set, spine_core.models.site)."""
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


def _side_by_side(rows, active: list[str]) -> None:
    """One line per model id: the shipped and the site model (version, short sha256) and which one runs
    by default."""
    from spine_core.models.card import sha256_of
    from spine_core.models.registry import SHIPPED_FOLDER
    from spine_core.models.site import SiteModels

    folders = {"shipped": SHIPPED_FOLDER, "site": SiteModels().folder}
    by_id: dict[str, dict] = {}
    for row in rows:
        onnx = folders[row.source] / f"{row.model_id}.onnx"
        sha = sha256_of(onnx)[:12] if onnx.exists() else "missing"
        by_id.setdefault(row.model_id, {})[row.source] = f"{row.version} {sha}" + (" REFUSED" if row.problem else "")
    print("In use by default (without --models):")
    print(f"  {'id':22s} {'shipped (version sha256)':34s} {'site (version sha256)':34s} active")
    for model_id, found in sorted(by_id.items()):
        used = "site" if model_id in active else ("shipped" if "shipped" in found else "-")
        print(f"  {model_id:22s} {found.get('shipped', '-'):34s} {found.get('site', '-'):34s} {used}")


def cmd_models_list(args) -> int:
    from spine_core.models.registry import model_statuses
    from spine_core.models.site import SiteModels

    site = SiteModels()
    rows = model_statuses(site)
    _print_statuses(rows, site.folder)
    _side_by_side(rows, site.active())
    print("Make a site model the default with `spineplan models use ID`; run all the site's models with "
          "`spineplan segment ... --models site` (shipped ones fill the gaps).")
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
    print(f"Make it the default with `spineplan models use {card.id}`, or run the site's models with "
          "`spineplan segment ... --models site`.")
    return 0


def _print_change(before: list[str], after: list[str]) -> None:
    if before == after:
        print("No change: " + (f"active site models: {', '.join(after)}." if after else "all shipped models in use."))
        return
    print("Active site models: " + (", ".join(after) if after else "none (all shipped)")
          + f" (before: {', '.join(before) or 'none'}). `spineplan models rollback` undoes this.")


def cmd_models_use(args) -> int:
    """`use ID` makes the registered site model ID the default; `use shipped:ID` returns ID to the shipped
    model. The site model is verified before it is made active."""
    from spine_core.models.registry import ModelRegistry, TrustedModels
    from spine_core.models.site import SiteModels

    site = SiteModels()
    if args.id.startswith("shipped:"):
        _print_change(*site.use_shipped(args.id.split(":", 1)[1]))
        return 0
    if args.id in site.entries():
        ModelRegistry(site.folder, TrustedModels(site)).verify(args.id)    # an altered file is never activated
    _print_change(*site.use(args.id))
    return 0


def cmd_models_rollback(args) -> int:
    from spine_core.models.site import SiteModels

    _print_change(*SiteModels().rollback())
    return 0


def add_models(sub) -> None:
    p = sub.add_parser("models", help="list, verify, register and choose models (shipped and this site's own)")
    models = p.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    q = models.add_parser("list", help="shipped and site models, each with its verification status and which "
                          "one is in use")
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
    q = models.add_parser("use", help="make a registered site model the default for its id (segment, batch "
                          "and the workstation without --models); `shipped:ID` returns ID to the shipped model")
    q.add_argument("id", metavar="ID|shipped:ID")
    q.set_defaults(func=cmd_models_use)
    q = models.add_parser("rollback", help="restore the previous set of active models")
    q.set_defaults(func=cmd_models_rollback)
