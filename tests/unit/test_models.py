"""Models: shapes from the data, the CIFAR ResNets, shared build options, the warm-up schedule."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf
from torchvision.models import ResNet

from lossbench.config import CONFIG_DIR, group_options
from lossbench.errors import ConfigError
from lossbench.models import CNN, CifarResNet, build_model
from lossbench.schedulers import warmup_multistep


def _cfg(name, **overrides):
    cfg = OmegaConf.load(CONFIG_DIR / "model" / f"{name}.yaml")
    return OmegaConf.merge(cfg, overrides)


@pytest.mark.parametrize("name", ["mlp", "cnn", "resnet32", "resnet18"])
@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_every_model_takes_its_shape_from_the_data(name, shape):
    model = build_model(_cfg(name), input_shape=shape, num_outputs=7)
    model.eval()
    assert model(torch.randn(3, *shape)).shape == (3, 7)


def test_required_models_exist():
    assert {"mlp", "cnn", "resnet32", "resnet18"} <= set(group_options("model"))


def test_resnet32_is_the_paper_network():
    model = CifarResNet((3, 32, 32), 10)  # option A: 0.46M parameters (He et al. 2016, Table 6)
    assert abs(sum(p.numel() for p in model.parameters()) - 0.46e6) < 0.01e6
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) + 1 == 32  # 31 convolutions + the linear layer
    assert sorted({c.out_channels for c in convs}) == [16, 32, 64]
    b = CifarResNet((3, 32, 32), 10, shortcut="B")
    assert sum(isinstance(m, torch.nn.Conv2d) for m in b.modules()) == 33  # two 1x1 projections
    assert b(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    with pytest.raises(ConfigError, match="not 6n\\+2"):
        CifarResNet((3, 32, 32), 10, depth=30)


def test_resnet18_has_the_cifar_stem():
    model = build_model(_cfg("resnet18"), input_shape=(3, 32, 32), num_outputs=100)
    assert isinstance(model, ResNet) and model.fc.out_features == 100
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)
    assert isinstance(model.maxpool, torch.nn.Identity)


def test_conv_nets_reject_tabular_input_and_images_too_small_to_pool():
    with pytest.raises(ConfigError, match="use model=mlp"):
        CNN((64,), 10)
    from lossbench.models import CifarResNet, resnet18_cifar

    for name, make in (("resnet32", CifarResNet), ("resnet18", resnet18_cifar)):  # conv2d tracebacks before
        with pytest.raises(ConfigError, match=f"model={name} needs images"):
            make((64,), 10)
    with pytest.raises(ConfigError, match=r"pools its input down 4-fold, but the images are 3x3"):
        CNN((1, 3, 3), 10)
    CNN((1, 4, 4), 10)


@pytest.mark.slow
def test_build_options_channels_last_and_compile():
    model = build_model(_cfg("resnet32", channels_last=True), input_shape=(3, 32, 32), num_outputs=10)
    assert model.stem[0].weight.is_contiguous(memory_format=torch.channels_last)
    compiled = build_model(_cfg("cnn", compile=True), input_shape=(1, 28, 28), num_outputs=10)
    assert isinstance(compiled, torch._dynamo.eval_frame.OptimizedModule)


def test_warmup_multistep_schedule():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    sched = warmup_multistep(opt, warmup_epochs=5, milestones=[160, 180], gamma=0.1)
    lrs = []
    for _ in range(200):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[:5] == pytest.approx([0.02, 0.04, 0.06, 0.08, 0.1])
    assert lrs[5] == lrs[159] == pytest.approx(0.1)
    assert lrs[160] == lrs[179] == pytest.approx(0.01) and lrs[180] == lrs[199] == pytest.approx(0.001)
    assert "lr_lambdas" in sched.state_dict()  # checkpointable
