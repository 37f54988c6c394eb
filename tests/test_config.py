import pytest

from cnnlab.engine.config import TrainConfig
from cnnlab.errors import CnnlabError


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
