"""The fine-tuning defaults (issue 10): epochs follow the data, towers frozen, head and tower learning rates."""
import torch

from trainer.config import FINETUNE_DEFAULTS, resolve_config
from trainer.loop import epoch_schedule
from trainer.optim import param_groups


def test_finetune_without_flags_gets_the_recipe_and_steps_replace_epochs():
    cfg = resolve_config(None, {"mode": "finetune", "out": "x"})
    assert cfg.epochs == FINETUNE_DEFAULTS["epochs"] and cfg.optim.tower_lr_scale == 0.0
    assert cfg.optim.lr == FINETUNE_DEFAULTS["optim.lr"]
    given = resolve_config(None, {"mode": "finetune", "steps": 7, "optim.lr": 1e-5})
    assert given.epochs is None and given.steps == 7 and given.optim.lr == 1e-5
    pretrain = resolve_config(None, {"mode": "pretrain"})
    assert pretrain.epochs is None and pretrain.optim.tower_lr_scale == 1.0


def test_finetune_weighs_the_kl_at_a_tenth_unless_told_and_pretraining_keeps_the_papers_weight():
    assert resolve_config(None, {"mode": "finetune", "out": "x"}).model["loss"]["w_kl"] == 0.1
    told = resolve_config(None, {"mode": "finetune", "out": "x"}, sets=["model.loss.w_kl=1.0"])
    assert told.model["loss"]["w_kl"] == 1.0
    assert "w_kl" not in (resolve_config(None, {"mode": "pretrain"}).model.get("loss") or {})


def test_epoch_schedule_counts_optimizer_steps_and_validates_every_epoch():
    cfg = resolve_config(None, {"mode": "finetune", "batch_size": 32, "epochs": 10})
    scheduled = epoch_schedule(cfg, n_train=170)  # 6 batches per epoch
    assert (scheduled.steps, scheduled.eval_every, scheduled.epochs) == (60, 6, None)


def test_towers_learn_at_a_fraction_of_the_head_rate():
    model = torch.nn.Module()
    model.image_encoder = torch.nn.Linear(3, 3)
    model.image_projection = torch.nn.Linear(3, 2)
    groups = param_groups(model, 0.02, lr=1e-3, tower_lr_scale=0.1)
    rates = {(id(p)): g["lr"] for g in groups for p in g["params"]}
    assert rates[id(model.image_encoder.weight)] == rates[id(model.image_encoder.bias)] == 1e-4
    assert rates[id(model.image_projection.weight)] == 1e-3


def test_finetune_can_switch_on_the_residual_path_and_nothing_else_architectural(tmp_path):
    import pytest

    from cots_core import COTS, CotsError, ModelConfig
    from trainer.build import build_model

    config = ModelConfig.preset("tiny").replace(vision={"projection": "conse", "num_classes": 10})
    COTS(config).save_pretrained(tmp_path / "m", inference_only=True)
    cfg = resolve_config(None, {"mode": "finetune", "init_from": str(tmp_path / "m")},
                         ["model.vision.conse_residual_scale=0.03"])
    model = build_model(cfg, log=lambda _: None)
    assert model.image_projection.residual_scale == model.image_projection_m.residual_scale == 0.03 and model.config.vision.conse_residual_scale == 0.03
    bad = resolve_config(None, {"mode": "finetune", "init_from": str(tmp_path / "m")},
                         ["model.vision.model_name=resnet50"])
    with pytest.raises(CotsError, match="conse_residual_scale"):
        build_model(bad, log=lambda _: None)
