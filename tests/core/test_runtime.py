import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from spine_core.models import ModelCard, ModelRegistry, sha256_of
from spine_core.models.registry import ModelUnavailable
from spine_core.pipeline.runtime import DeviceUnavailable, create_session


def _tiny_model(path):
    """y = x * 2, built by hand: no torch needed in core tests."""
    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 1, None, None, None])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 1, None, None, None])
    two = helper.make_tensor("two", TensorProto.FLOAT, [], [2.0])
    graph = helper.make_graph([helper.make_node("Mul", ["image", "two"], ["logits"])], "tiny", [x], [y], [two])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def _card(model_id, sha):
    return ModelCard(id=model_id, version="0.0.1", sha256=sha, task="test", modality="CT",
                     input_spacing_mm=[4, 4, 4], patch_size=[8, 8, 8], intensity_window=[-1000, 2000],
                     label_ids=[0, 1], training={"data": "none"}, metrics={}, license="test")


def test_cpu_session_runs_and_reports_its_provider(tmp_path):
    session, info = create_session(_tiny_model(tmp_path / "m.onnx"), device="auto")
    out = session.run(None, {"image": np.ones((1, 1, 3, 4, 5), np.float32)})[0]
    assert np.allclose(out, 2.0)
    assert info.provider in session.get_providers()
    session, info = create_session(tmp_path / "m.onnx", device="cpu")
    assert info.provider == "CPUExecutionProvider" and not info.on_gpu


def test_gpu_request_without_cuda_is_a_clear_error(tmp_path):
    _tiny_model(tmp_path / "m.onnx")
    try:
        _, info = create_session(tmp_path / "m.onnx", device="gpu")
    except DeviceUnavailable as exc:
        assert "--device auto or cpu" in str(exc)
    else:
        assert info.on_gpu  # a machine with a working GPU
    with pytest.raises(DeviceUnavailable):
        create_session(tmp_path / "m.onnx", device="tpu")


def test_registry_verifies_sha256(tmp_path):
    path = _tiny_model(tmp_path / "tiny.onnx")
    _card("tiny", sha256_of(path)).save(tmp_path / "tiny.json")
    registry = ModelRegistry(tmp_path)
    assert registry.onnx_path("tiny") == path
    assert [c.id for c in registry.cards()] == ["tiny"]
    path.write_bytes(path.read_bytes() + b"tampered")
    with pytest.raises(ModelUnavailable, match="integrity check"):
        ModelRegistry(tmp_path).onnx_path("tiny")
    path.unlink()
    with pytest.raises(ModelUnavailable, match="missing"):
        ModelRegistry(tmp_path).onnx_path("tiny")
    with pytest.raises(ModelUnavailable, match="not installed"):
        registry.card("other")
