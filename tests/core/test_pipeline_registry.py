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
    assert set(registry.choices()) == set(PIPELINES) | {"default", "m3", "m1-only", "mr-scar", "mr-sshs"}
    assert registry.offered() == ["per-vertebra", "joint"]            # Preferences: CT pipelines only
    with pytest.raises(SpineError, match="per-vertebra, joint"):
        registry.resolve("nope")


def test_mr_methods_are_chosen_by_name_and_a_ct_name_chooses_the_default():
    assert registry.resolve("mr-sshs") == "mr-sshs" and registry.resolve("mr-scar") == "mr-scar"
    assert registry.mr_pipeline("mr-sshs").models == ("mr-sshs-2d", "mr-sshs-3d")
    assert registry.mr_pipeline("per-vertebra").name == registry.mr_pipeline("joint").name == "mr-scar"
    assert registry.mr_pipeline("mr-scar").models == ("mr-spine-seg",)
    from spine_core.pipeline.mr import NETWORK_STEPS

    assert set(NETWORK_STEPS) == {m.name for m in registry.MR_PIPELINES}      # every method runs its own networks
