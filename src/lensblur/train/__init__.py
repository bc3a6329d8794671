"""The shared training loop (accelerate underneath) and its checkpoints.

::

    from lensblur.baselines import CycleGAN, Pix2Pix
    from lensblur.data import open_dataset
    from lensblur.train import RandomCrops, TrainConfig, Unpaired, train

    data = RandomCrops(open_dataset("synth", "data/synth-v1"), 256)
    train(Pix2Pix(), data, "runs/p2p", TrainConfig(steps=2000, checkpoint_every=500))
    train(CycleGAN(), Unpaired(data), "runs/cyc", TrainConfig(steps=2000))   # image and target of different items

A method is a small object (:class:`TrainMethod`) that builds its networks, optimisers and losses and does
one step; the loop seeds the data, accumulates gradients, checkpoints (weights in safetensors), resumes
exactly, validates and logs.
"""

from .checkpoint import LAST, latest_checkpoint, load_weights, read_metadata
from .data import RandomCrops, Unpaired
from .loop import TrainConfig, TrainMethod, TrainResult, train

__all__ = ["LAST", "RandomCrops", "TrainConfig", "TrainMethod", "TrainResult", "Unpaired", "latest_checkpoint",
           "load_weights", "read_metadata", "train"]
