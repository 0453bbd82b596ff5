"""Every network: output shapes, configurability, and torch vs onnxruntime parity (dynamic sizes)."""
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from training.export import export_onnx, parity_error  # noqa: E402
from training.nets import build_model  # noqa: E402
from training.nets.sequence import SSMBlock, reference_scan, ssd_scan  # noqa: E402

TINY = {
    "localizer": ({"base_channels": 4}, (1, 1, 16, 16, 16), (2, 1, 24, 16, 20)),
    "vertebra_seg": ({"base_channels": 4, "levels": 3}, (1, 2, 16, 16, 16), (1, 2, 24, 16, 20)),
    "detector2d": ({"base_channels": 4, "levels": 3}, (1, 1, 32, 32), (2, 1, 40, 24)),
    "labeler": ({"base_channels": 4, "feature_dim": 16, "heads": 2, "mask_size": [16, 16, 8]},
                (1, 5, 1, 16, 16, 8), (2, 7, 1, 16, 16, 8)),
    "joint-ssm": ({"channels": [4, 8, 8, 16], "id_channels": 8, "ssm_head_dim": 8, "long_range": "ssm"},
                  (1, 1, 16, 16, 32), (1, 1, 24, 16, 16)),
    "joint-transformer": ({"channels": [4, 8, 8, 16], "id_channels": 8, "long_range": "transformer"},
                          (1, 1, 16, 16, 32), (1, 1, 24, 16, 16)),
    "joint-none": ({"channels": [4, 8, 8, 16], "id_channels": 8, "long_range": "none", "cbam": False},
                   (1, 1, 16, 16, 32), (1, 1, 24, 16, 16)),
}


def _model(key):
    torch.manual_seed(0)
    cfg, shape, alt = TINY[key]
    return build_model(key.split("-")[0], cfg).eval(), shape, alt


@pytest.mark.parametrize("key", sorted(TINY))
def test_onnx_matches_torch_at_traced_and_other_sizes(key, tmp_path):
    model, shape, alt = _model(key)
    gen = torch.Generator().manual_seed(1)
    inputs = (torch.rand(shape, generator=gen),)
    path = export_onnx(model, inputs, tmp_path / f"{key}.onnx")
    assert parity_error(model, path, inputs) < 1e-4
    assert parity_error(model, path, (torch.rand(alt, generator=gen),)) < 1e-4


@torch.no_grad()
def test_output_shapes():
    loc, _, _ = _model("localizer")
    assert loc(torch.rand(1, 1, 16, 24, 20)).shape == (1, 1, 16, 24, 20)
    seg, _, _ = _model("vertebra_seg")
    assert seg(torch.rand(2, 2, 16, 16, 16)).shape == (2, 1, 16, 16, 16)
    det, _, _ = _model("detector2d")
    heat, size = det(torch.rand(3, 1, 32, 40))
    assert heat.shape == (3, 1, 32, 40) and size.shape == (3, 2, 32, 40)
    lab, _, _ = _model("labeler")
    assert lab(torch.rand(2, 6, 1, 16, 16, 8)).shape == (2, 6, 27)
    joint, _, _ = _model("joint-ssm")
    seg_out, heat = joint(torch.rand(1, 1, 16, 16, 32))
    assert seg_out.shape == (1, 1, 16, 16, 32) and heat.shape == (1, 27, 4, 4, 8)
    joint.train()
    outs = joint(torch.rand(2, 1, 16, 16, 32))
    assert [tuple(o.shape[2:]) for o in outs[2:]] == [(8, 8, 16), (4, 4, 8)]   # deep supervision 1/2, 1/4


def test_aspp_dilations_are_configurable():
    model = build_model("localizer", {"base_channels": 4, "dilations": [1, 2, 3]})
    assert [b.dilation for b in model.context.branches] == [(1, 1, 1), (2, 2, 2), (3, 3, 3)]
    assert build_model("localizer", {}).context.dilations == (1, 2, 4, 8)
    with pytest.raises(ValueError, match="unknown localizer net settings: dilation"):
        build_model("localizer", {"dilation": [1]})


def test_label_ids_map_channels_to_verse_ids():
    joint = build_model("joint", {"channels": [4, 8, 8, 16]})
    assert joint.label_ids[:24] == list(range(1, 25)) and joint.label_ids[24:] == [25, 26, 28]
    assert joint.id_head.out_channels == 27
    small = build_model("joint", {"channels": [4, 8, 8, 16], "label_ids": [20, 21, 22, 23, 24]})
    assert small.id_head.out_channels == 5


def test_chunked_selective_scan_equals_the_sequential_recurrence():
    gen = torch.Generator().manual_seed(0)
    b, c, t, h, p, n = 2, 3, 5, 2, 4, 3
    u, bm, cm = (torch.randn(s, generator=gen) for s in [(b, c, t, h, p), (b, c, t, n), (b, c, t, n)])
    a = -2 * torch.rand((b, c, t, h), generator=gen)
    fast = ssd_scan(u, a, bm, cm).reshape(b, -1, h, p)
    slow = reference_scan(u.reshape(b, -1, h, p), a.reshape(b, -1, h), bm.reshape(b, -1, n), cm.reshape(b, -1, n))
    assert torch.allclose(fast, slow, atol=1e-4)


def test_ssm_block_is_causal_one_way_and_exports(tmp_path):
    torch.manual_seed(0)
    block = SSMBlock(16, state=4, head_dim=8, bidirectional=False).eval()
    x = torch.randn(1, 4, 6, 16)
    y = block(x)
    x2 = x.clone()
    x2[:, 3] += 1.0                                   # change only the last chunk
    assert torch.allclose(block(x2)[:, :3], y[:, :3], atol=1e-6)

    class Wrap(torch.nn.Module):
        input_names, output_names = ("tokens",), ("out",)
        dynamic_axes = {"tokens": {1: "c", 2: "t"}, "out": {1: "c", 2: "t"}}

        def __init__(self):
            super().__init__()
            self.block = SSMBlock(16, state=4, head_dim=8)

        def forward(self, tokens):
            return self.block(tokens)

    wrap = Wrap().eval()
    path = export_onnx(wrap, (x,), tmp_path / "ssm.onnx")
    assert parity_error(wrap, path, (x,)) < 1e-4
    assert parity_error(wrap, path, (torch.randn(1, 7, 3, 16),)) < 1e-4
