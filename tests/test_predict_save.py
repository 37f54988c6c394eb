"""predict --save DIR: a JSON line per image, streamed in batches, unreadable files counted."""
from __future__ import annotations

import json

import torch
from PIL import Image

import cnnlab
from cnnlab import api, cli
from cnnlab.engine.checkpoint import save_checkpoint
from cnnlab.engine.config import TrainConfig
from cnnlab.tasks.classify import ClassifyTask


def classifier(tmp_path):
    torch.manual_seed(0)
    task = ClassifyTask([str(i) for i in range(10)], [0.3], [0.4], (1, 8, 8))
    model = task.build_model(TrainConfig(model="lecture_cnn", data="digits"))
    return save_checkpoint({"model": model.state_dict(), "task": task.state(),
                            "config": TrainConfig(model="lecture_cnn", data="digits").to_dict()},
                           tmp_path / "best.pt")


def test_a_folder_of_images_streams_to_json_lines_and_bad_files_are_counted(tmp_path, capsys):
    ckpt = classifier(tmp_path)
    photos = tmp_path / "photos" / "nested"
    photos.mkdir(parents=True)
    digits = cnnlab.load_dataset("digits", "test").images[:70]
    for i, img in enumerate(digits):
        Image.fromarray(img[0].numpy()).save(photos / f"{i:03d}.png")
    (photos / "broken.png").write_bytes(b"not a png")
    out = tmp_path / "saved"
    assert cli.main(["predict", str(ckpt), str(tmp_path / "photos"), "--save", str(out), "--topk", "2"]) == 0
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(lines) == 70 and f"wrote 70 predictions to {out / 'predictions.jsonl'}" in captured.out
    assert "skipped 1 of 71 images" in captured.err and "broken.png" in captured.err
    assert all(len(r["top"]) == 2 for r in lines)
    # the same answers as the in-memory API, in the same order
    expected = api.predict(ckpt, sorted(str(p) for p in photos.glob("0*.png")), topk=2)
    assert [r["top"] for r in lines] == [r["top"] for r in expected]


def test_the_stream_checks_options_before_reading_any_image_and_save_refuses_a_file(tmp_path, capsys):
    ckpt = classifier(tmp_path)
    assert cli.main(["predict", str(ckpt), str(tmp_path / "absent.png"), "--topk", "0", "--save",
                     str(tmp_path / "s")]) == 2
    assert "--topk" in capsys.readouterr().err
    in_the_way = tmp_path / "file"
    in_the_way.write_text("x")
    img = tmp_path / "d.png"
    Image.new("L", (8, 8)).save(img)
    assert cli.main(["predict", str(ckpt), str(img), "--save", str(in_the_way)]) == 2
    assert "--save" in capsys.readouterr().err and in_the_way.read_text() == "x"
