import dataclasses

import pytest

from cnnlab.engine.config import TrainConfig
from cnnlab.errors import CnnlabError
from cnnlab.tasks.options import CaptionConfig, SegmentConfig


def test_defaults_yaml_and_overrides_layer(tmp_path):
    f = tmp_path / "recipe.yaml"
    f.write_text("epochs: 3\nlr: 0.1\nmodel: resnet20\nmodel_args: {widths: [8, 16]}\n")
    cfg = TrainConfig.from_sources(f, ["lr=0.02", "flip=true", "translate=2"], batch_size=64)
    assert (cfg.epochs, cfg.lr, cfg.model, cfg.flip, cfg.translate, cfg.batch_size) == \
        (3, 0.02, "resnet20", True, 2, 64)
    assert cfg.model_args == {"widths": [8, 16]}
    assert cfg.seed == TrainConfig().seed


def test_int_is_accepted_for_float_but_not_the_reverse():
    assert TrainConfig.from_dict({"lr": 1}).lr == 1.0
    assert TrainConfig.from_sources(overrides=["weight_decay=2e-3"]).weight_decay == 0.002  # YAML 1.1 reads a string
    with pytest.raises(CnnlabError, match="'epochs': expected int"):
        TrainConfig.from_dict({"epochs": 2.5})


@pytest.mark.parametrize("item, message", [
    ("epoch=3", "unknown config key 'epoch'"),
    ("epochs=three", "'epochs': expected int"),
    ("flip=maybe", "'flip': expected bool"),
    ("lr", "expected key=value"),
])
def test_bad_overrides_name_the_key(item, message):
    with pytest.raises(CnnlabError, match=message):
        TrainConfig.from_sources(overrides=[item])


def test_bad_yaml_names_the_file(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("- just\n- a list\n")
    with pytest.raises(CnnlabError, match="bad.yaml: expected a mapping"):
        TrainConfig.from_sources(f)
    with pytest.raises(CnnlabError, match="config file not found"):
        TrainConfig.from_sources(tmp_path / "missing.yaml")


def test_values_are_never_evaluated():
    with pytest.raises(CnnlabError):
        TrainConfig.from_sources(overrides=["epochs=__import__('os').getpid()"])


# ---------------------------------------------------------------------- one flat namespace, split by task
def test_a_tasks_own_keys_go_to_its_config_and_another_tasks_are_refused():
    cfg = TrainConfig.from_sources(overrides=["task=segment", "scale=0.5", "class_weights=median"])
    assert cfg.task_config == SegmentConfig(class_weights="median", scale=0.5)
    assert cfg.to_dict()["scale"] == 0.5 and "min_word_count" not in cfg.to_dict()
    assert TrainConfig(task="caption").task_config == CaptionConfig() and TrainConfig(task="detect").task_config is None
    with pytest.raises(CnnlabError, match="'min_word_count' is for --task caption; this run's task is segment"):
        TrainConfig.from_sources(overrides=["task=segment", "min_word_count=2"])
    with pytest.raises(CnnlabError, match="'scale' is for --task segment; this run's task is classify"):
        TrainConfig.from_sources(task="classify", scale=0.5)
    with pytest.raises(CnnlabError, match="config key 'class_weights': expected one of none, median, median-sqrt, inverse"):
        TrainConfig.from_sources(task="segment", class_weights="mean")


def test_with_the_task_left_to_the_data_its_keys_wait_for_it():
    cfg = TrainConfig.from_sources(scale=0.5)  # task auto: the data decides
    assert dataclasses.replace(cfg, task="segment").task_config == SegmentConfig(scale=0.5)
    with pytest.raises(CnnlabError, match="'scale' is for --task segment; this run's task is detect"):
        dataclasses.replace(cfg, task="detect")


@pytest.mark.parametrize("item, message", [
    ("task=segmnt", "'task': expected one of auto, classify, detect, segment, caption"),  # the task registry's
    ("amp=fp8", "'amp': expected one of auto, bf16, bf16-full, fp16, off"),
    ("schedule=step", "'schedule': expected one of onecycle, cosine, constant"),
    ("momentum=1.5", "'momentum': expected 0.0..0.999"),
    ("given=[lr]", "unknown config key 'given'"),  # stored with a config, never set by users
])
def test_choices_and_ranges_come_from_the_fields(item, message):
    with pytest.raises(CnnlabError, match=message):
        TrainConfig.from_sources(overrides=[item])


def test_a_value_given_is_given_even_at_its_default():
    assert TrainConfig.from_sources(overrides=["val_fraction=0.1"]).data_options() == {"val_fraction": 0.1}
    assert TrainConfig.from_sources(data="digits").data_options() == {}
    assert TrainConfig(val_fraction=0.2).data_options() == {"val_fraction": 0.2}  # set in Python: changed
    cfg = TrainConfig.from_sources(task="caption", image_size=0, min_word_count=1)
    again = TrainConfig.from_dict(cfg.to_dict())  # a checkpoint's config remembers what was given
    assert again == cfg and again.given == {"task", "image_size", "min_word_count"}
    assert again.data_options() == {"image_size": 0}


def test_an_older_flat_config_with_every_tasks_keys_still_loads():
    old = {**TrainConfig(task="classify").values(), "backbone": "", "class_weights": "none", "scale": 0.0,
           "min_word_count": 1, "attention_reg": 0.0}  # no "given": what checkpoints held before
    cfg = TrainConfig.from_dict(old)
    assert cfg.task == "classify" and cfg.task_config is None and cfg.given == frozenset()
    assert TrainConfig.from_dict({**old, "task": "segment", "scale": 0.25}).task_config == SegmentConfig(scale=0.25)
