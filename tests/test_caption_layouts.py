"""Caption data in the layouts users have: Kaggle captions.txt, Flickr8k.token.txt with the official
split lists, Karpathy's dataset_*.json, COCO captions with the images elsewhere; tokenisation of real
text; the vocabulary's minimum count; the real Flickr8k photos when they are here."""
from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import pytest
from PIL import Image

import cnnlab
from cnnlab.data import load_dataset
from cnnlab.data.caption_text import UNK_ID, Vocabulary, tokenize
from cnnlab.data.formats.captions import load_captions
from cnnlab.engine.config import TrainConfig
from cnnlab.errors import CnnlabError
from cnnlab.tasks.caption import CaptionTask
from cnnlab.tasks.options import CaptionConfig

FLICKR8K = Path(__file__).resolve().parents[2] / "shared" / "data" / "flickr8k"
TINY = {"encoder": "lecture_cnn", "encoder_args": {"widths": [8, 16]}, "embed_dim": 16, "hidden_dim": 32,
        "attention_dim": 16}
NAMES = [f"{1000 + i}_ab{i}c.jpg" for i in range(12)]
CAPTIONS = ['A dog, brown and white, runs on "grass" .', "Two children play  in the\tsnow .",
            "A man's bike leans on a wall", "Three dogs run , jump and play .", "a DOG runs."]


def _jpg(folder: Path, name: str, i: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (24 + i, 18), (20 * i, 90, 200 - 10 * i)).save(folder / name)


def _split_lists(folder: Path, names=NAMES) -> None:
    """8 train, 2 dev, 1 test, 1 in none; the lists also name photos that are not here (as the real ones do)."""
    folder.mkdir(parents=True, exist_ok=True)
    parts = {"train": names[:8] + ["9999_other.jpg"], "dev": names[8:10], "test": names[10:11]}
    for split, listed in parts.items():
        (folder / f"Flickr_8k.{split}Images.txt").write_text("\n".join(listed) + "\n")


def _train_one_epoch(tmp_path: Path, data, **options):
    return cnnlab.train(task="caption", data=str(data), model="show_attend_tell", model_args=TINY, image_size=32,
                        epochs=1, batch_size=4, workers=0, amp="off", optimizer="adamw", lr=3e-3,
                        out=str(tmp_path / "run"), plots=False, log=None, **options)


# ---------------------------------------------------------------------- the layouts
def test_kaggle_captions_csv_with_split_lists_loads_and_trains(tmp_path):
    root = tmp_path / "flickr8k"
    with open(root.mkdir() or root / "captions.txt", "w", newline="") as f:
        w = csv.writer(f)  # quotes the captions that hold commas and quotes, as Kaggle's file does
        w.writerow(["image", "caption"])
        for i, name in enumerate(NAMES):
            _jpg(root / "Images", name, i)
            for j in range(5):
                w.writerow([name, CAPTIONS[(i + j) % 5]])
    _split_lists(root / "splits")
    sizes = {s: len(load_captions(root, s, image_size=16)) for s in ("train", "val", "test")}
    assert sizes == {"train": 8, "val": 2, "test": 1}  # dev is val; the photo in no list is left out
    train = load_captions(root, "train", image_size=16)
    assert train.labels.shape[:2] == (8, 5) and {"brown", "grass", "man's"} <= set(train.classes)
    assert train.files[0] == root / "Images" / NAMES[0]
    run = _train_one_epoch(tmp_path, root)
    assert run.test["count"] == 1 and 0 <= run.test["bleu4"] <= 1


def test_flickr8k_token_txt_in_the_original_folders_loads_and_trains(tmp_path):
    text, photos = tmp_path / "Flickr8k_text", tmp_path / "Flicker8k_Dataset"
    lines = [f"{name}#{j}\t{CAPTIONS[(i + j) % 5]}" for i, name in enumerate(NAMES) for j in range(5)]
    lines.append("2258277193_586949ec62.jpg.1#0\tA photo that is in no list and not on disk .")
    text.mkdir()
    (text / "Flickr8k.token.txt").write_text("\n".join(lines) + "\n\n")
    (text / "Flickr8k.lemma.token.txt").write_text("not read\n")
    _split_lists(text)
    for i, name in enumerate(NAMES):
        _jpg(photos, name, i)
    val = load_captions(text, "val")
    assert len(val) == 2 and val.files[0] == photos / NAMES[8]
    assert len(load_dataset(tmp_path, "train", task="caption")) == 8  # the parent folder finds Flickr8k_text/
    run = _train_one_epoch(tmp_path, text)
    assert run.test["count"] == 1


def test_karpathy_json_with_the_images_elsewhere(tmp_path):
    entries = [{"filename": name, "split": ["train", "restval", "train", "val", "test"][i % 5],
                "sentences": [{"raw": CAPTIONS[(i + j) % 5], "tokens": tokenize(CAPTIONS[(i + j) % 5])}
                              for j in range(3)]} for i, name in enumerate(NAMES)]
    ann = tmp_path / "karpathy" / "dataset_flickr8k.json"
    ann.parent.mkdir()
    ann.write_text(json.dumps({"images": entries, "dataset": "flickr8k"}))
    for i, name in enumerate(NAMES):
        _jpg(tmp_path / "photos", name, i)
    with pytest.raises(CnnlabError, match="missing image .*--images DIR"):
        load_captions(ann, "train")
    train = load_captions(ann, "train", images=tmp_path / "photos")
    assert len(train) == 8 and train.files[0] == tmp_path / "photos" / NAMES[0]
    assert len(load_captions(ann, "test", images=str(tmp_path / "photos"))) == 2
    if "images" in {f.name for f in dataclasses.fields(TrainConfig)}:  # --images as a config key
        assert _train_one_epoch(tmp_path, ann, images=str(tmp_path / "photos")).test["count"] == 2


def test_coco_captions_with_the_images_elsewhere(tmp_path):
    images = [{"id": i, "file_name": name} for i, name in enumerate(NAMES)]
    anns = [{"image_id": i, "caption": CAPTIONS[(i + j) % 5]} for i in range(len(NAMES)) for j in range(2)]
    (tmp_path / "coco" / "annotations").mkdir(parents=True)
    (tmp_path / "coco" / "annotations" / "captions_train2017.json").write_text(
        json.dumps({"images": images, "annotations": anns}))
    for i, name in enumerate(NAMES):
        _jpg(tmp_path / "elsewhere", name, i)
    train = load_captions(tmp_path / "coco", "train", images=tmp_path / "elsewhere", val_fraction=0.25)
    val = load_captions(tmp_path / "coco", "val", images=tmp_path / "elsewhere", val_fraction=0.25)
    assert (len(train), len(val)) == (9, 3) and train.files[0].parent == tmp_path / "elsewhere"
    with pytest.raises(CnnlabError, match="--images .*nowhere: no such folder"):
        load_captions(tmp_path / "coco", "train", images=tmp_path / "nowhere")
    if "images" in {f.name for f in dataclasses.fields(TrainConfig)}:
        run = _train_one_epoch(tmp_path, tmp_path / "coco", images=str(tmp_path / "elsewhere"), val_fraction=0.25)
        assert run.history and run.test is None  # no test split in a train-only COCO file


# ---------------------------------------------------------------------- malformed layouts
@pytest.mark.parametrize("name, text, match", [
    ("captions.txt", "file,text\na.jpg,a dog\n", r"captions.txt: expected a CSV with a header line 'image,caption'"),
    ("captions.txt", "image,caption\n", r"captions.txt: no captions below the header"),
    ("captions.txt", "image,caption\na.jpg, . \n", r"captions.txt: line 2: empty caption for a.jpg"),
    ("captions.csv", "caption,image\na dog,x,y\n", r"captions.csv: line 2: 3 fields where the header has 2"),
    ("Flickr8k.token.txt", "a.jpg#0\ta dog\nb.jpg\ta cat\n", r"Flickr8k.token.txt: line 2: expected lines of 'image.jpg#N<TAB>caption'"),
    ("captions.txt", b"image,caption\na.jpg,caf\xe9\n", r"captions.txt: not UTF-8 text"),
])
def test_malformed_caption_files_name_the_file_and_the_layout(tmp_path, name, text, match):
    file = tmp_path / name
    file.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(CnnlabError, match=match) as e:
        load_captions(tmp_path, "train")
    assert "\n" not in str(e.value)


def test_missing_annotations_images_and_overlapping_split_lists(tmp_path):
    with pytest.raises(CnnlabError, match="no caption annotations found; expected Kaggle captions.txt"):
        load_captions(tmp_path, "train")
    (tmp_path / "captions.txt").write_text("image,caption\n" + "".join(f"{n},a dog runs\n" for n in NAMES))
    with pytest.raises(CnnlabError, match=r"missing image .*1000_ab0c.jpg .*--images DIR"):
        load_captions(tmp_path, "train")
    with pytest.raises(CnnlabError, match="the train split has no images"):
        load_captions(tmp_path, "train", skip_bad=True)
    _split_lists(tmp_path / "splits")
    (tmp_path / "splits" / "Flickr_8k.testImages.txt").write_text(NAMES[0] + "\n")
    with pytest.raises(CnnlabError, match=r"Flickr_8k.\w+Images.txt: 1000_ab0c.jpg is also in the \w+ list"):
        load_captions(tmp_path, "train")


# ---------------------------------------------------------------------- text and vocabulary
@pytest.mark.parametrize("text, tokens", [
    ("A Dog runs.", ["a", "dog", "runs"]),
    ("  two   dogs\t\tplay\n", ["two", "dogs", "play"]),
    ('A "happy" dog , running !', ["a", "happy", "dog", "running"]),
    ("A man\u2019s hat; the dogs' bowls", ["a", "man's", "hat", "the", "dogs", "bowls"]),
    ("A t-shirt with 2 stripes at 3.5 m, 1,000 people, the 3rd man", ["a", "t", "shirt", "with", "2", "stripes", "at",
                                                                     "3.5", "m", "1,000", "people", "the", "3rd", "man"]),
    ("Caf\u00e9 in Z\u00fcrich\u00a0at  night", ["café", "in", "zürich", "at", "night"]),
    (" . , ! ", []),
])
def test_tokenize_real_caption_text(text, tokens):
    assert tokenize(text) == tokens


def test_min_count_keeps_training_words_seen_often_enough(tmp_path):
    vocab = Vocabulary.build([tokenize(c) for c in ["a dog runs", "a dog sits", "a cat"]], min_count=2)
    assert vocab.words[4:] == ("a", "dog")  # commonest first; runs, sits and cat become <unk>
    root = tmp_path / "f8k"
    root.mkdir()
    rows = [(n, "a dog runs on the grass" if i < 8 else "a zebra runs") for i, n in enumerate(NAMES) for _ in range(2)]
    (root / "captions.txt").write_text("image,caption\n" + "".join(f"{n},{c}\n" for n, c in rows))
    _split_lists(root / "splits")
    for i, n in enumerate(NAMES):
        _jpg(root / "Images", n, i)
    train = load_captions(root, "train")
    task = CaptionTask.from_data(TrainConfig(task="caption", task_config=CaptionConfig(min_word_count=3)), train)
    assert set(task.vocab.words[4:]) == {"a", "dog", "runs", "on", "the", "grass"}  # from train captions only
    val = load_captions(root, "val")
    assert "zebra" in val.classes  # the data's word table has every word; the model's vocabulary does not
    assert int(task.to_vocab(val.labels)[0, 0, 2]) == UNK_ID


# ---------------------------------------------------------------------- the real photos
@pytest.mark.skipif(not FLICKR8K.is_dir(), reason=f"the Flickr8k sample is not on this machine ({FLICKR8K})")
def test_real_flickr8k_kaggle_layout():
    sizes = {s: len(load_captions(FLICKR8K, s, image_size=32)) for s in ("train", "val", "test")}
    assert sizes == {"train": 753, "val": 113, "test": 125}
    test = load_dataset(FLICKR8K, "test", task="caption", image_size=32)
    assert test.labels.shape[:2] == (125, 5)
    image, refs = test[0]
    assert image.shape == (3, 32, 32) and (refs[:, 0] == 1).all()
    info = test.describe()
    assert info["references"] == 625 and "dog" in info["class_counts"]


# ---------------------------------------------------------------------- a frozen encoder's feature cache
def test_a_frozen_encoders_features_are_computed_once_per_image():
    import torch

    from cnnlab.data.caption_text import END_ID, START_ID
    from cnnlab.models import get_model

    words = ["<pad>", "<start>", "<end>", "<unk>", "dog"]
    task = CaptionTask(words, words, [0.5] * 3, [0.25] * 3, (3, 32, 32), max_len=3, label_smoothing=0.1)
    assert CaptionTask.from_state(task.state()).label_smoothing == 0.1
    model = get_model("show_attend_tell", vocab_size=5, freeze_encoder=True, **TINY)
    images = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    tokens = torch.tensor([[START_ID, 4, END_ID]] * 4)
    cache = task.new_cache()  # the run's: the trainer holds it across epochs
    for _ in range(2):
        losses, _ = task.training_step(model, (images, tokens), torch.Generator().manual_seed(0), cache=cache)
        losses["loss"].backward()
    assert (cache.misses, cache.hits) == (4, 4) and model.embed.weight.grad is not None
    model.eval()
    assert torch.allclose(cache.features(model, images.flip(0), task.prepare), model.encode(task.prepare(images.flip(0))),
                          rtol=1e-4, atol=1e-5)  # the cache computes them with BatchNorm folded
    cached = task.generate(model, images, beam=2, cache=cache)
    assert [b[0]["ids"] for b in cached] == [b[0]["ids"] for b in task.generate(model, images, beam=2)]
    model.encoder.load_state_dict(model.encoder.state_dict())  # new weights: the cache starts again
    cache.features(model, images, task.prepare)
    assert cache.misses == 8
