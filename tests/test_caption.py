"""Captioning: text, data readers, metrics against references, models, beam search, train/eval/predict."""
from __future__ import annotations

import itertools
import json

import pytest
import torch
from PIL import Image

import cnnlab
from cnnlab import cli
from cnnlab.data import load_dataset
from cnnlab.data.base import TensorImages
from cnnlab.data.builtin import caption_shapes
from cnnlab.data.builtin.caption_shapes import caption_scenes, names_every_object, split_scenes
from cnnlab.data.caption_text import END_ID, PAD_ID, START_ID, UNK_ID, Vocabulary, encode_references, tokenize
from cnnlab.data.formats.captions import load_captions
from cnnlab.errors import CnnlabError
from cnnlab.models import get_model
from cnnlab.models.caption_search import beam_search
from cnnlab.tasks.caption import CaptionTask
from cnnlab.tasks.caption_metrics import caption_metrics, corpus_bleu

TINY = {"encoder": "lecture_cnn", "encoder_args": {"widths": [8, 16]}, "embed_dim": 16, "hidden_dim": 32,
        "attention_dim": 16}


# ---------------------------------------------------------------------- text
def test_tokenize_vocabulary_and_references():
    assert tokenize("Two shapes: a small RED circle, and one cross.") == \
        ["two", "shapes", "a", "small", "red", "circle", "and", "one", "cross"]
    vocab = Vocabulary.build([["a", "red", "circle"], ["a", "blue", "circle"], ["a", "dog"]], min_count=2)
    assert vocab.words == ("<pad>", "<start>", "<end>", "<unk>", "a", "circle")
    assert vocab.decode([START_ID, 4, 5, END_ID, 4]) == ["a", "circle"]
    refs = encode_references([["a circle", "a red circle"], ["circle"]], list(vocab.words))
    assert refs.shape == (2, 2, 5)
    assert refs[0, 1].tolist() == [START_ID, 4, UNK_ID, 5, END_ID]
    assert refs[1, 1].tolist() == [PAD_ID] * 5  # image 1 has one reference: the second is padding
    with pytest.raises(CnnlabError, match=r"caps.json: caption 1 of image 0 is empty"):
        encode_references([["a circle", " ... "]], list(vocab.words), source="caps.json")


def test_shapes_captions_use_the_word_table_and_describe_the_scene():
    scenes = split_scenes("val", 0, 48, n=200)
    data = caption_scenes(scenes, "shapes-captions/val")
    assert data.images.shape == (200, 3, 48, 48) and data.labels.shape[:2] == (200, 6)
    assert not (data.labels == UNK_ID).any()  # every word of every caption is in the table
    assert len({s.captions[0] for s in scenes}) > 150  # captions depend on the image
    info = data.describe()
    assert info["references"] == sum(len(s.captions) for s in scenes) and info["class_counts"]["a"] > 200
    for s in scenes[:50]:
        assert names_every_object(s.captions[0], s.objects)  # the listing names every object
        wrong = s.captions[0].replace(s.objects[0].color, "purple" if s.objects[0].color != "purple" else "red")
        assert not names_every_object(wrong, s.objects)
    two = next(s for s in scenes if len(s.objects) == 2 and s.objects[0].shape != s.objects[1].shape)
    a, b = (o.shape for o in two.objects)
    assert names_every_object(f"one {a} and one {b}", two.objects)
    assert not names_every_object(f"one {a}", two.objects)  # the other object is not named


# ---------------------------------------------------------------------- metrics
def test_bleu_matches_nltk_corpus_bleu():
    nltk_bleu = pytest.importorskip("nltk.translate.bleu_score")
    hyps = ["a small red circle left of a blue square", "one circle and one star",
            "the cat sat on the mat today", "there is a large green heart"]
    refs = [["a small red circle left of a large blue square", "two shapes a small red circle"],
            ["one circle and one star", "one red shape and one blue shape"],
            ["the cat sat on a mat", "a cat is on the mat today"],
            ["a large green heart in the centre", "there is a large green heart at the top"]]
    ours = corpus_bleu(hyps, refs)
    for n in (1, 2, 3, 4):
        ref = nltk_bleu.corpus_bleu([[r.split() for r in rs] for rs in refs], [h.split() for h in hyps],
                                    weights=(1 / n,) * n)
        assert ours[f"bleu{n}"] == pytest.approx(ref, abs=1e-6)


def test_cider_rewards_the_right_captions():
    refs = [["a small red circle", "one red shape"], ["a large blue square", "one square"],
            ["a small green star", "one star"]]
    right = caption_metrics(["a small red circle", "a large blue square", "a small green star"], refs)
    wrong = caption_metrics(["a small green star", "a small red circle", "a large blue square"], refs)
    assert right["bleu4"] == pytest.approx(1.0) and right["cider"] > 3 * max(wrong["cider"], 0.1)
    assert caption_metrics(["Two shapes: a Red circle."], [["two shapes a red circle"]])["bleu4"] == 1.0


# ---------------------------------------------------------------------- models
@pytest.mark.parametrize("name", ["show_tell", "show_attend_tell"])
def test_captioner_forward_backward(name):
    torch.manual_seed(0)
    model = get_model(name, vocab_size=11, **TINY)
    images, words = torch.randn(3, 3, 32, 32), torch.randint(4, 11, (3, 5))
    logits, alphas = model(images, words)
    assert logits.shape == (3, 5, 11) and torch.isfinite(logits).all()
    if name == "show_attend_tell":
        assert alphas.shape == (3, 5, 64) and torch.allclose(alphas.sum(-1), torch.ones(3, 5))
    logits.logsumexp(-1).mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, missing


def test_frozen_pretrained_style_encoder_gets_no_gradient():
    model = get_model("show_attend_tell", vocab_size=9, encoder="resnet18", freeze_encoder=True,
                      embed_dim=8, hidden_dim=16, attention_dim=8)
    logits, _ = model(torch.randn(2, 3, 64, 64), torch.randint(4, 9, (2, 3)))
    logits.sum().backward()
    assert all(p.grad is None for p in model.encoder.parameters())
    assert model.classifier.weight.grad is not None
    with pytest.raises(CnnlabError, match="encoder"):
        get_model("show_tell", encoder="show_attend_tell")


def _sequence_logprob(model, image, ids):
    """log P(ids + <end> | image) by teacher forcing."""
    words = torch.tensor([[START_ID, *ids]])
    logp = model(image[None], words)[0].log_softmax(-1)[0]  # (T, V)
    return float(sum(logp[t, w] for t, w in enumerate([*ids, END_ID])))


@pytest.mark.parametrize("name", ["show_tell", "show_attend_tell"])
def test_beam_search_finds_the_most_likely_caption(name):
    torch.manual_seed(1)
    model = get_model(name, vocab_size=6, **TINY).eval()  # words 4 and 5 only
    image = torch.randn(3, 32, 32)
    banned = (PAD_ID, START_ID, UNK_ID)
    with torch.no_grad():
        beams = beam_search(model, image[None], start=START_ID, end=END_ID, beam=12, max_len=3, banned=banned)[0]
        exhaustive = max((_sequence_logprob(model, image, list(ids)), list(ids))
                         for n in range(3) for ids in itertools.product((4, 5), repeat=n))
        greedy = beam_search(model, image[None], start=START_ID, end=END_ID, beam=1, max_len=3, banned=banned)[0][0]
        assert beams[0]["ids"] == exhaustive[1]
        assert beams[0]["logprob"] == pytest.approx(exhaustive[0], abs=1e-4)
        assert [b["score"] for b in beams] == sorted((b["score"] for b in beams), reverse=True)
        assert greedy["logprob"] == pytest.approx(_sequence_logprob(model, image, greedy["ids"]), abs=1e-4)
        assert beams[0]["logprob"] >= greedy["logprob"] - 1e-6
        long = beam_search(model, image[None], start=START_ID, end=END_ID, beam=3, max_len=3,
                           length_penalty=2.0, banned=banned)[0][0]
        assert len(long["ids"]) >= len(beams[0]["ids"])  # a length penalty favours longer captions


# ---------------------------------------------------------------------- files on disk
def _png(path, color):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (20, 16), color).save(path)


def test_coco_captions_json(tmp_path):
    for i in range(10):
        _png(tmp_path / "train2017" / f"{i:03d}.png", (25 * i, 0, 0))
    images = [{"id": i, "file_name": f"{i:03d}.png"} for i in range(10)]
    anns = [{"image_id": i, "caption": f"A picture number {i}."} for i in range(10)]
    anns += [{"image_id": 0, "caption": "Another caption"}]
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "captions_train2017.json").write_text(json.dumps({"images": images, "annotations": anns}))
    train = load_captions(tmp_path, "train", image_size=24, val_fraction=0.2)
    val = load_captions(tmp_path, "val", image_size=24, val_fraction=0.2)
    assert (len(train), len(val)) == (8, 2)
    assert train.labels.shape[:2] == (8, 2) and train.classes == val.classes
    assert "picture" in train.classes and "another" in train.classes
    image, refs = train[0]
    assert image.shape == (3, 24, 24) and image.dtype == torch.uint8 and refs.shape == train.labels.shape[1:]
    with pytest.raises(CnnlabError, match="no test split"):
        load_captions(tmp_path, "test")

    bad = tmp_path / "annotations" / "captions_train2017.json"
    bad.write_text(json.dumps({"images": images, "annotations": anns + [{"image_id": 99, "caption": "x"}]}))
    with pytest.raises(CnnlabError, match=r"captions_train2017.json: annotations\[11\]: image_id 99"):
        load_captions(tmp_path, "train")
    bad.write_text(json.dumps({"images": images, "annotations": anns + [{"image_id": 3, "caption": " . "}]}))
    with pytest.raises(CnnlabError, match=r"annotations\[11\]: empty caption"):
        load_captions(tmp_path, "train")
    bad.write_text(json.dumps([1, 2]))
    with pytest.raises(CnnlabError, match="captions_train2017.json: expected a JSON object"):
        load_captions(tmp_path, "train")


def test_karpathy_split_json(tmp_path):
    entries = [{"filename": f"im{i}.png", "split": ["train", "restval", "val", "test"][i % 4],
                "sentences": [{"tokens": ["a", "dog", str(i)], "raw": f"A dog {i}."}, {"raw": "A dog runs."}]}
               for i in range(8)]
    for e in entries:
        _png(tmp_path / "Images" / e["filename"], (0, 100, 0))
    ann = tmp_path / "dataset_flickr8k.json"
    ann.write_text(json.dumps({"images": entries, "dataset": "flickr8k"}))
    sizes = {s: len(load_captions(ann, s, image_size=16)) for s in ("train", "val", "test")}
    assert sizes == {"train": 4, "val": 2, "test": 2}  # restval counts as train
    assert len(load_dataset(tmp_path, "test", task="caption")) == 2  # through the registry, by folder

    (tmp_path / "Images" / "im2.png").unlink()
    with pytest.raises(CnnlabError, match="missing image .*im2.png"):
        load_captions(ann, "val")
    assert len(load_captions(ann, "val", skip_bad=True)) == 1
    entries[5]["sentences"] = []
    ann.write_text(json.dumps({"images": entries}))
    with pytest.raises(CnnlabError, match=r"images\[5\] \(im5.png\): no sentences"):
        load_captions(ann, "train")


# ---------------------------------------------------------------------- task, trainer, CLI
def test_training_step_takes_single_references():
    task = CaptionTask(["<pad>", "<start>", "<end>", "<unk>", "red", "circle"], ["<pad>", "<start>", "<end>", "<unk>",
                       "circle"], [0.5] * 3, [0.25] * 3, (3, 32, 32))
    model = get_model("show_tell", vocab_size=5, **TINY)
    images = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    tokens = torch.tensor([[START_ID, 4, 5, END_ID]] * 4)  # (N, L): "red" is not in the vocabulary
    assert task.to_vocab(tokens)[0].tolist() == [START_ID, UNK_ID, 4, END_ID]
    losses, stats = task.training_step(model, (images, tokens), torch.Generator().manual_seed(0))
    assert losses["loss"].requires_grad and stats["count"] == 12
    TensorImages(images, tokens, task.classes)  # the in-memory format takes token labels


def test_flip_mirrors_training_images_and_attention_penalty_adds_to_the_loss():
    words = ["<pad>", "<start>", "<end>", "<unk>", "circle"]
    images = torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8)
    tokens = torch.tensor([[START_ID, 4, END_ID]] * 6)
    torch.manual_seed(0)
    model = get_model("show_attend_tell", vocab_size=5, **TINY)
    seen = []
    model.encode = (lambda encode: lambda x: seen.append(x.clone()) or encode(x))(model.encode)

    def loss(**options):
        task = CaptionTask(words, words, [0.5] * 3, [0.25] * 3, (3, 32, 32), **options)
        return task.training_step(model, (images, tokens), torch.Generator().manual_seed(1))[0]["loss"]

    plain, mirrored = loss(), loss(flip=True)
    prepared = CaptionTask(words, words, [0.5] * 3, [0.25] * 3, (3, 32, 32)).prepare(images)
    assert torch.equal(seen[0], prepared)
    flipped = [i for i in range(6) if torch.equal(seen[1][i], prepared[i].flip(-1))]
    assert 0 < len(flipped) < 6 and all(torch.equal(seen[1][i], prepared[i]) for i in set(range(6)) - set(flipped))
    assert not torch.isclose(plain, mirrored)
    penalised = loss(attention_reg=1.0)
    assert penalised > plain + 1.0  # sum over the regions of (1 - attention a region got)^2: far from 0 at start
    state = CaptionTask(words, words, [0.5] * 3, [0.25] * 3, (3, 32, 32), flip=True, attention_reg=0.5).state()
    assert CaptionTask.from_state(state).state() == state


@pytest.fixture()
def tiny_shapes(monkeypatch):
    monkeypatch.setitem(caption_shapes.CAPTION_SPLIT_SIZES, "train", 192)
    monkeypatch.setitem(caption_shapes.CAPTION_SPLIT_SIZES, "val", 32)
    monkeypatch.setitem(caption_shapes.CAPTION_SPLIT_SIZES, "test", 16)


def test_train_eval_predict_through_the_cli(tmp_path, tiny_shapes, capsys):
    run = cnnlab.train(task="caption", data="shapes", model="show_attend_tell", model_args=TINY, image_size=32,
                       epochs=3, batch_size=32, optimizer="adamw", lr=1e-2, min_word_count=2, amp="off",
                       out=str(tmp_path / "run"), plots=True, log=lambda *a: None)
    losses = [r["train_loss"] for r in run.history]
    assert losses[-1] < losses[0]  # teacher forcing learns the caption language
    assert set(run.test) >= {"bleu1", "bleu2", "bleu3", "bleu4", "cider"} and run.test["count"] == 16
    assert any(p.endswith("captions.png") for p in run.plots)
    assert any(p.endswith("worst_captions.png") for p in run.plots) and (tmp_path / "run" / "worst_captions.csv").is_file()
    state = torch.load(tmp_path / "run" / "best.pt", weights_only=True)["task"]
    assert state["vocab"][:4] == ["<pad>", "<start>", "<end>", "<unk>"] and "circle" in state["vocab"]

    assert cli.main(["eval", str(tmp_path / "run" / "best.pt"), "--task", "caption", "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert 0 <= metrics["bleu4"] <= metrics["bleu1"] <= 1 and metrics["count"] == 16

    scene = split_scenes("test", 3, 32, n=1)[0]
    img = tmp_path / "scene.png"
    Image.fromarray(scene.image.permute(1, 2, 0).numpy()).save(img)
    assert cli.main(["predict", str(tmp_path / "run" / "best.pt"), "--task", "caption", str(img), "--beam", "3",
                     "--attention", "--out", str(tmp_path / "att"), "--json"]) == 0
    [r] = json.loads(capsys.readouterr().out)  # one JSON shape: a list, one result per image
    assert len(r["beams"]) == 3 and r["caption"] == r["beams"][0]["caption"]
    assert (tmp_path / "att" / "scene_attention.png").stat().st_size > 1000
    assert cli.main(["predict", str(tmp_path / "run" / "best.pt"), "--task", "caption", str(img), "--beam", "0"]) == 2
    assert "--beam 0" in capsys.readouterr().err
