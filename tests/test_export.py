"""Export to ONNX and TorchScript: parity with PyTorch fp32, dynamic batch, metadata inside the file."""
import json

import pytest
import torch

import cnnlab
from cnnlab.deploy import export
from cnnlab.deploy.export import export_model
from cnnlab.deploy.predictor import Predictor
from cnnlab.deploy.pytorch_model import LoadedModel
from cnnlab.engine.checkpoint import save_checkpoint
from cnnlab.engine.config import TrainConfig
from cnnlab.errors import CnnlabError
from cnnlab.tasks.classify import ClassifyTask

pytest.importorskip("onnxruntime", reason="onnxruntime not installed")
onnx = pytest.importorskip("onnx", reason="onnx not installed")
pytest.importorskip("onnxscript", reason="onnxscript (torch.onnx's exporter) not installed")

from cnnlab.deploy.onnx_model import OnnxModel  # noqa: E402  (after the skips)


@pytest.fixture(scope="module")
def digits():
    return cnnlab.load_dataset("digits", "test").images[:20]  # (20, 1, 8, 8) uint8


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """A lecture_cnn checkpoint for 8x8 digits, random weights with non-trivial BN statistics."""
    torch.manual_seed(0)
    cfg = TrainConfig(model="lecture_cnn", data="digits")
    task = ClassifyTask([str(i) for i in range(10)], [0.3], [0.4], (1, 8, 8))
    model = task.build_model(cfg).train()
    with torch.no_grad():  # a few forward passes so batch norm's running statistics are not 0/1
        for _ in range(3):
            model(task.prepare(torch.randint(0, 256, (32, 1, 8, 8), dtype=torch.uint8)))
    path = save_checkpoint({"model": model.state_dict(), "task": task.state(),
                            "config": cfg.to_dict()}, tmp_path_factory.mktemp("ckpt") / "best.pt")
    return LoadedModel.from_checkpoint(path, "cpu")


@pytest.fixture(scope="module")
def onnx_export(loaded, digits, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "digits.onnx"
    return export_model(loaded, out, "onnx", samples=digits), out


def fp32_logits(lm, images):
    """The reference: PyTorch fp32 on NCHW, no autocast."""
    with torch.no_grad():
        return lm.model(lm.task.prepare(images).contiguous()).float()


def test_onnx_export_meets_parity_and_reports_it(onnx_export):
    result, out = onnx_export
    assert result["path"] == str(out) and out.is_file() and result["format"] == "onnx"
    assert 0 <= result["max_abs_diff"] <= result["atol"] == 1e-4
    assert result["batch_sizes"] == [1, 4, 8]  # 8 random + 20 samples, in batches of 8, and one of 1
    assert [p.name for p in out.parent.iterdir()] == ["digits.onnx"]  # one file: no external data, no temp


def test_onnx_file_carries_the_task(onnx_export, loaded):
    _, out = onnx_export
    props = {p.key: p.value for p in onnx.load(out).metadata_props}
    meta = json.loads(props["cnnlab"])
    assert meta["task"]["classes"] == loaded.task.classes
    assert meta["task"]["mean"] == [0.3] and meta["task"]["input_shape"] == [1, 8, 8]
    assert meta["version"] == cnnlab.__version__ and meta["model"] == "lecture_cnn"


@pytest.mark.parametrize("batch", [1, 5])
def test_onnx_model_predicts_like_the_pytorch_model(onnx_export, loaded, digits, batch):
    om = OnnxModel.from_file(onnx_export[1])
    assert om.task.classes == loaded.task.classes and om.name == "lecture_cnn"
    images = digits[:batch]
    got, want = om.logits(images), fp32_logits(loaded, images)
    assert got.shape == (batch, 10) and got.dtype == torch.float32
    torch.testing.assert_close(got, want, atol=1e-4, rtol=0)
    assert torch.equal(got.argmax(1), want.argmax(1))


def test_both_model_handles_are_predictors_that_say_what_they_can_do(onnx_export, loaded):
    om = OnnxModel.from_file(onnx_export[1])
    assert isinstance(loaded, Predictor) and isinstance(om, Predictor)
    assert (loaded.runtime, loaded.explainable, loaded.exportable, loaded.evaluable) == ("pytorch", True, True, True)
    assert (om.runtime, om.explainable, om.exportable, om.evaluable) == ("onnxruntime", False, False, False)
    for refused in (cnnlab.export, cnnlab.evaluate):
        with pytest.raises(CnnlabError, match="export"):
            refused(om)


def test_onnx_model_reads_images_at_its_input_size(onnx_export, tmp_path):
    from PIL import Image

    Image.new("RGB", (40, 30), (200, 10, 10)).save(tmp_path / "red.png")
    assert OnnxModel.from_file(onnx_export[1]).read(tmp_path / "red.png").shape == (1, 8, 8)


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated")
def test_torchscript_export_meets_parity_and_carries_the_task(loaded, digits, tmp_path):
    result = export_model(loaded, tmp_path / "digits.pt", "torchscript", samples=digits[:3])
    assert result["max_abs_diff"] <= 1e-4 and result["batch_sizes"] == [1, 3, 8]
    extra = {"cnnlab.json": ""}
    module = torch.jit.load(str(tmp_path / "digits.pt"), _extra_files=extra)
    assert json.loads(extra["cnnlab.json"])["task"]["classes"] == loaded.task.classes
    for batch in (1, 5):
        x = loaded.task.prepare(digits[:batch]).contiguous()
        torch.testing.assert_close(module(x), fp32_logits(loaded, digits[:batch]), atol=1e-4, rtol=0)


def test_broken_parity_refuses_and_leaves_no_file_claiming_success(loaded, tmp_path, monkeypatch):
    real = export._onnx_runner

    def off_by_a_little(path):  # an exporter bug that shifts every logit by 1e-3
        run = real(path)
        return lambda x: run(x) + 1e-3

    monkeypatch.setattr(export, "_onnx_runner", off_by_a_little)
    out = tmp_path / "bad.onnx"
    with pytest.raises(CnnlabError, match=r"bad\.onnx.*0\.001.*atol=0\.0001"):
        export_model(loaded, out, "onnx")
    assert not out.exists()
    assert (tmp_path / "bad.onnx.failed").is_file()
    assert not list(tmp_path.glob("*.tmp"))


def test_unknown_format_and_bad_samples_are_refused(loaded, tmp_path):
    with pytest.raises(CnnlabError, match="--format 'tflite'"):
        export_model(loaded, tmp_path / "m.tflite", "tflite")
    with pytest.raises(CnnlabError, match=r"samples: expected uint8 \(B, 1, 8, 8\)"):
        export_model(loaded, tmp_path / "m.onnx", samples=torch.rand(2, 1, 8, 8))
    assert not list(tmp_path.iterdir())


def test_a_file_that_is_not_onnx_is_refused_naming_it(tmp_path):
    fake = tmp_path / "notes.onnx"
    fake.write_text("these are not the weights you are looking for")
    with pytest.raises(CnnlabError, match="notes.onnx: not a readable ONNX model"):
        OnnxModel.from_file(fake)
    with pytest.raises(CnnlabError, match="missing.onnx: ONNX model not found"):
        OnnxModel.from_file(tmp_path / "missing.onnx")


def test_an_onnx_model_without_cnnlab_metadata_is_refused(tmp_path):
    h = onnx.helper
    graph = h.make_graph([h.make_node("Identity", ["x"], ["y"])], "plain",
                         [h.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3])],
                         [h.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 3])])
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, tmp_path / "plain.onnx")
    with pytest.raises(CnnlabError, match="plain.onnx: ONNX model without cnnlab metadata"):
        OnnxModel.from_file(tmp_path / "plain.onnx")
