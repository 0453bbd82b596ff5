"""Config overrides shared by `spineplan train` and `python -m training.profile` (plain Python)."""
from __future__ import annotations

import json


def apply_overrides(config: dict, settings: list[str]) -> dict:
    """``section.key=value`` pairs (value parsed as JSON, else kept as text) over the config: the
    ablation runs differ from the shipped config by one setting and say so in their command."""
    for item in settings or []:
        key, sep, raw = item.partition("=")
        path = [p for p in key.strip().split(".") if p]
        if not sep or len(path) < 2:
            raise ValueError(f"--set '{item}' is not SECTION.KEY=VALUE (e.g. net.long_range=transformer).")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        node = config
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"--set '{item}': '{part}' is not a section of the config.")
        node[path[-1]] = value
    return config
