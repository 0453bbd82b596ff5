"""The analysis pipelines by name, as data: what the CLI offers (``choices``), what Preferences lists
and what the docs describe. Importing this module loads no model runtime; the stages are built by
``spine_core.pipeline.pipelines``.

Names say what a pipeline does. The names of the first release (``default``, ``m3``, ``m1-only``,
from the planning documents) are still accepted as aliases, and resolve to these.
"""
from __future__ import annotations

from dataclasses import dataclass

from spine_core.errors import SpineError


@dataclass(frozen=True)
class Pipeline:
    name: str
    description: str
    aliases: tuple[str, ...] = ()
    in_preferences: bool = True      # offered to clinicians; False: for comparison in benchmarks


PIPELINES: tuple[Pipeline, ...] = (
    Pipeline("per-vertebra", "Localize, detect, segment each vertebra, label (M1 + M2)", ("default",)),
    Pipeline("joint", "Joint segmentation + identification network (M1 + M3)", ("m3",)),
    Pipeline("localizer-components", "The localizer's spine mask split into components (M1 only)",
             ("m1-only",), in_preferences=False),
)
DEFAULT = PIPELINES[0].name


def resolve(name: str) -> str:
    """The pipeline's name for ``name`` (a name or an old alias); SpineError if there is none."""
    for p in PIPELINES:
        if name == p.name or name in p.aliases:
            return p.name
    raise SpineError(f"Unknown pipeline '{name}'; choose one of {', '.join(p.name for p in PIPELINES)}.")


def choices() -> list[str]:
    """Every accepted value: names, then the old aliases."""
    return [p.name for p in PIPELINES] + [a for p in PIPELINES for a in p.aliases]


def offered() -> list[str]:
    """The pipelines Preferences offers clinicians."""
    return [p.name for p in PIPELINES if p.in_preferences]


def normalise(name: str) -> str:
    """A known name or alias as its pipeline's name; anything else unchanged (for the caller to refuse)."""
    return resolve(name) if name in choices() else name
