"""The pipeline registry: domain names, the first release's names as aliases, one list for the CLI,
Preferences and the stage lists."""
import pytest

from spine_core.errors import SpineError
from spine_core.pipeline import registry
from spine_core.pipeline.pipelines import PIPELINES


def test_every_registered_pipeline_has_stages_and_old_names_resolve():
    assert {p.name for p in registry.PIPELINES} == set(PIPELINES)
    assert registry.resolve("default") == registry.DEFAULT == "per-vertebra"
    assert registry.resolve("m3") == "joint" and registry.resolve("m1-only") == "localizer-components"
    assert set(registry.choices()) == set(PIPELINES) | {"default", "m3", "m1-only"}
    with pytest.raises(SpineError, match="per-vertebra, joint"):
        registry.resolve("nope")
