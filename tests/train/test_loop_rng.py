"""The loop takes nothing from torch's global generator, so a method's own draws from it (dropout, CycleGAN's
image pools) are the same in a resumed run as in an uninterrupted one."""

from __future__ import annotations

import torch

from lensblur.train import TrainConfig, train


class _Draws:
    """A one-weight method whose step adds a draw of torch's global generator to its weight."""

    name = "draws"

    def __init__(self):
        self.net = torch.nn.Linear(1, 1, bias=False)
        torch.nn.init.zeros_(self.net.weight)
        self.opt = torch.optim.SGD(self.net.parameters(), lr=1.0)

    def config(self):
        return {}

    def modules(self):
        return {"net": self.net}

    def optimizers(self):
        return {"net": self.opt}

    def schedulers(self):
        return {}

    def prepare(self, accelerator):
        pass

    def training_step(self, batch, accelerator):
        with torch.no_grad():
            self.net.weight.add_(torch.rand(()))
        return {"weight": float(self.net.weight.detach())}

    def predict(self, image):
        return image


def test_a_methods_global_draws_survive_a_resume(tmp_path):
    items = [{"image": torch.zeros(3, 2, 2), "target": torch.zeros(3, 2, 2)} for _ in range(4)]
    config = {"batch_size": 1, "checkpoint_every": 2, "progress": False}
    methods = [_Draws() for _ in range(3)]     # built first: a Linear's initialisation draws from the generator
    torch.manual_seed(0)
    whole = train(methods[0], items, tmp_path / "a", TrainConfig(steps=4, **config))
    torch.manual_seed(0)
    expected = sum(float(torch.rand(())) for _ in range(4))    # the steps' draws are the only ones taken
    torch.manual_seed(0)
    train(methods[1], items, tmp_path / "b", TrainConfig(steps=2, **config))
    torch.manual_seed(7)
    resumed = train(methods[2], items, tmp_path / "b", TrainConfig(steps=4, **config), resume=True)
    assert whole.losses["weight"] == resumed.losses["weight"]
    assert abs(whole.losses["weight"] - expected) < 1e-6
