"""safetensors export: weights only, config and task as metadata, for every task; read back by cnnlab."""
from __future__ import annotations

import json

import pytest
import torch

import cnnlab
from cnnlab import api, cli
from cnnlab.engine.checkpoint import save_checkpoint
from cnnlab.engine.config import TrainConfig
from cnnlab.deploy.pytorch_model import LoadedModel
from cnnlab.errors import CnnlabError
from cnnlab.tasks.classify import ClassifyTask
from cnnlab.tasks.detect import DetectTask

st = pytest.importorskip("safetensors.torch", reason="safetensors not installed")


def checkpoint(tmp_path, task, cfg, name="best.pt"):
    torch.manual_seed(0)
    model = task.build_model(cfg).train()
    if isinstance(task, ClassifyTask):
        with torch.no_grad():  # batch norm statistics that are not 0/1
            model(task.prepare(torch.randint(0, 256, (16, *task.input_shape), dtype=torch.uint8)))
    return save_checkpoint({"model": model.state_dict(), "task": task.state(), "config": cfg.to_dict()},
                           tmp_path / name)


@pytest.fixture
def classifier(tmp_path):
    task = ClassifyTask([str(i) for i in range(10)], [0.3], [0.4], (1, 8, 8))
    return checkpoint(tmp_path, task, TrainConfig(model="lecture_cnn", data="digits"))


def test_a_classifier_round_trips_exactly_and_predicts_as_before(classifier, capsys):
    assert cli.main(["export", str(classifier), "--format", "safetensors"]) == 0
    path = classifier.with_suffix(".safetensors")
    assert f"wrote {path} (safetensors)" in capsys.readouterr().out
    before, after = LoadedModel.from_checkpoint(classifier, "cpu"), api.load(path, device="cpu")
    assert after.task.classes == before.task.classes and after.name == "lecture_cnn"
    images = torch.randint(0, 256, (5, 1, 8, 8), dtype=torch.uint8)
    assert torch.equal(after.logits(images), before.logits(images))
    assert cnnlab.predict(path, [images[0]])[0]["top"] == cnnlab.predict(classifier, [images[0]])[0]["top"]
    meta = json.loads(st.safe_open(str(path), "pt").metadata()["cnnlab"])
    assert meta["task"]["name"] == "classify" and meta["config"]["model"] == "lecture_cnn"
    assert set(st.load_file(str(path))) == set(before.model.state_dict())  # other tools read plain tensors


def test_a_detector_exports_too_though_onnx_refuses_it(tmp_path):
    task = DetectTask(["circle", "square"], (3, 64, 64))
    ckpt = checkpoint(tmp_path, task, TrainConfig(task="detect", model="fasterrcnn", data="shapes"))
    with pytest.raises(CnnlabError, match="cannot be exported yet"):
        api.export(ckpt, format="onnx")
    r = api.export(ckpt, format="safetensors", out=tmp_path / "det.safetensors")
    assert r["max_abs_diff"] == 0.0 and r["tensors"] > 10
    before, after = LoadedModel.from_checkpoint(ckpt, "cpu"), api.load(tmp_path / "det.safetensors", device="cpu")
    x = task.prepare(torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8))
    with torch.no_grad():
        a, b = before.model(x), after.model(x)
    assert all(torch.equal(p["boxes"], q["boxes"]) for p, q in zip(a, b))


def test_files_that_are_not_cnnlab_safetensors_are_refused_naming_them(tmp_path, classifier):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(CnnlabError, match=f"{junk}: not a readable safetensors file"):
        api.load(junk)
    bare = tmp_path / "bare.safetensors"
    st.save_file({"w": torch.zeros(2)}, str(bare))
    with pytest.raises(CnnlabError, match="without cnnlab's metadata"):
        api.load(bare)
    damaged = tmp_path / "damaged.safetensors"
    st.save_file({"w": torch.zeros(2)}, str(damaged), metadata={"cnnlab": "{not json"})
    with pytest.raises(CnnlabError, match="metadata is damaged"):
        api.load(damaged)
    good = api.export(classifier, format="safetensors")["path"]
    tensors, meta = st.load_file(good), st.safe_open(good, "pt").metadata()
    tensors[next(iter(tensors))] = torch.zeros(3)
    wrong = tmp_path / "wrong.safetensors"
    st.save_file(tensors, str(wrong), metadata=meta)
    with pytest.raises(CnnlabError, match="weights do not fit model 'lecture_cnn'"):
        api.load(wrong)
    with pytest.raises(CnnlabError, match="no such file"):
        api.load(tmp_path / "absent.safetensors")
    assert cli.main(["export", str(classifier), "--format", "safetensors", "--out", str(tmp_path)]) == 2
