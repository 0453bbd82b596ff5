"""Ship a checked candidate model: its ONNX file and card copied into resources/models, and the table of
shipped sha256 in spine_core/models/shipped.py rewritten to match (without it the product refuses the new
file). Training scripts export into runs/candidates, never over a shipped model; this is the one step that
replaces one, to be taken only after the candidate passed its written checks (docs/BENCHMARKS.md).

    python -m training.ship runs/candidates/ct-vertebra-seg [more candidates ...]

Each argument is a path without suffix: PATH.onnx and PATH.json must both exist, and the card's id must be
the file name. Then run tests/core/test_model_integrity.py and commit the models, the table and the
measurements together.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from spine_core.atomic import atomic_path
from spine_core.models.card import card_digest, sha256_of
from spine_core.models.registry import SHIPPED_FOLDER

TABLE = Path(__file__).resolve().parents[1] / "spine_core" / "models" / "shipped.py"


def shipped_table(folder: Path = SHIPPED_FOLDER) -> dict:
    """What shipped.py must say about ``folder``."""
    return {p.stem: {"onnx": sha256_of(p), "card": card_digest(p.with_suffix(".json"))}
            for p in sorted(folder.glob("*.onnx"))}


def table_source(table: dict) -> str:
    rows = [f'    "{k}": {{"onnx": "{v["onnx"]}",\n{" " * (9 + len(k))}"card": "{v["card"]}"}},'
            for k, v in table.items()]
    return "SHIPPED_SHA256 = {\n" + "\n".join(rows) + "\n}"


def rewrite_table(path: Path, table: dict) -> None:
    """Replace the SHIPPED_SHA256 literal in ``path`` (the docstring above it stays), atomically."""
    text = path.read_text()
    start = text.index("SHIPPED_SHA256 = {")
    end = text.index("\n}", start) + 2
    with atomic_path(path) as tmp:
        tmp.write_text(text[:start] + table_source(table) + text[end:])


def check_candidate(stem: Path) -> str:
    """The candidate's model id; raises ValueError with what is wrong."""
    onnx, card = stem.with_suffix(".onnx"), stem.with_suffix(".json")
    for f in (onnx, card):
        if not f.is_file():
            raise ValueError(f"{f} does not exist: give the candidate as PATH without suffix, beside its card")
    data = json.loads(card.read_text())
    if data.get("id") != stem.name:
        raise ValueError(f"{card} is the card of {data.get('id')!r}, not of {stem.name!r}")
    if data.get("sha256") != sha256_of(onnx):
        raise ValueError(f"{card}'s sha256 is not that of {onnx}: the two do not belong together")
    return stem.name


def ship(stems: list[Path], folder: Path = SHIPPED_FOLDER, table_path: Path = TABLE) -> list[str]:
    ids = [check_candidate(s) for s in stems]        # every candidate checked before anything is copied
    for stem in stems:
        for suffix in (".onnx", ".json"):
            with atomic_path(folder / f"{stem.name}{suffix}") as tmp:
                shutil.copyfile(stem.with_suffix(suffix), tmp)
    rewrite_table(table_path, shipped_table(folder))
    return ids


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("candidates", nargs="+", type=Path, help="PATH without suffix (PATH.onnx, PATH.json)")
    args = parser.parse_args(argv)
    try:
        ids = ship(args.candidates)
    except ValueError as error:
        print(f"Nothing shipped: {error}", file=sys.stderr)
        return 2
    print(f"Shipped {', '.join(ids)} into {SHIPPED_FOLDER} and updated {TABLE}. Run "
          "tests/core/test_model_integrity.py, then commit the models, the table and their measurements.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
