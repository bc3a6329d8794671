"""BGGAN's networks (Qian et al., AIM 2020): the two-stage Glass-Net generator, the multi-receptive-field
discriminator, and the frozen VGG-19 feature extractor of its perceptual loss.

What the paper says, and what is chosen here where it says nothing (``shared/research/baselines.md`` section 5;
no public code of BGGAN exists):

- *"a two-stage network, the first network learns the mapping of input image I ... and the residual R
  between input image I and ground truth O i.e. R = I - O, that infers I - R to be a rough bokeh result"*:
  stage one is a U-Net on I with a linear output R, and the rough result is ``I - R``.
- *"The second stage of the Glass-Net refines the rough bokeh results"*: stage two is a second U-Net on
  ``concat(I, rough)`` (or the rough result alone) that predicts the residual of the rough result the same way,
  ``out = rough - R2``. Both U-Nets are lensblur's pix2pix U-Net (:class:`~.networks.UnetGenerator`) with
  instance normalisation (BGGAN re-implements IN so that its TFLite model runs on phone GPUs; PyTorch's
  ``InstanceNorm2d`` computes the same thing), no dropout (a deterministic restoration network) and no final
  Tanh. Their depths and widths are not published.
- *"Multi-receptive-field Discriminator"*: PatchGAN branches (:class:`~.networks.NLayerDiscriminator`) of
  different depths on the same image, receptive fields 34, 70 and 142 px for ``n_layers`` 2, 3, 4. The
  branch count, fields and normalisation are not published. The branches are spectrally normalised
  (``norm="spectral"``, no norm layers): eq. 3 hands the critic's raw scores to the generator, and a critic
  with instance norm starts with an input gradient hundreds of times the hybrid loss's L1 term's.
- *"F(.) is the 34th layer's feature map of the VGG network which is pre-trained on ImageNet"*: torchvision's
  ``vgg19().features`` up to index 34 (``features[:35]``), which is conv5_4 before its ReLU (the ESRGAN
  convention); index 33 (relu5_3) is the other reading and ``layer=33`` gives it.

Parameter counts of the default Glass-Net (``ngf=64``, ``num_downs=8`` for both stages): stage one is exactly
the sheet's ``unet_256`` with instance norm, 54,409,603; stage two takes 6 channels, 3 x 64 x 16 = 3,072
more, 54,412,675; 108,822,278 in all. The default discriminator (3 channels, branches 2/3/4; spectral or
instance norm, neither of which adds parameters) has 662,977 + 2,764,737 + 6,959,553 = 10,387,267. BGGAN's
own counts are not published.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from ..errors import InputError, ShapeError
from .networks import NLayerDiscriminator, UnetGenerator, _check_input

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "GlassNet", "MultiReceptiveFieldDiscriminator", "VGGFeatures"]

REFINE_INPUTS = ("both", "rough")

# The normalisation torchvision's ImageNet weights expect, on display (sRGB) values in [0, 1].
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# The number of modules in torchvision's vgg19().features (16 convolutions, 16 ReLUs, 5 max-pools).
VGG19_FEATURES = 37


class GlassNet(nn.Module):
    """The Glass-Net generator: a U-Net predicts the residual ``R = I - O`` (rough result ``I - R``), a second
    U-Net refines it the same way (``out = rough - R2``).

    Args:
        num_downs: stage one's down-samplings (8: ``unet_256``).
        ngf: stage one's first width.
        refine_num_downs: stage two's down-samplings.
        refine_ngf: stage two's first width.
        norm: both U-Nets' normalisation (``"instance"``, as BGGAN; ``"batch"`` or ``"none"``).
        refine_input: what stage two sees: ``"both"`` (``concat(I, rough)``, 6 channels) or ``"rough"``.

    Raises:
        InputError: an unknown ``refine_input``, or U-Net settings it refuses.

    Example:
        >>> net = GlassNet(num_downs=5, ngf=4, refine_num_downs=5, refine_ngf=4)
        >>> [t.shape[-1] for t in net(torch.zeros(1, 3, 32, 32), stages=True)]
        [32, 32]
    """

    def __init__(self, *, num_downs: int = 8, ngf: int = 64, refine_num_downs: int = 8, refine_ngf: int = 64,
                 norm: str = "instance", refine_input: str = "both"):
        super().__init__()
        if refine_input not in REFINE_INPUTS:
            raise InputError("refine_input", expected="both or rough", got=refine_input, fix='refine_input="both"')
        self.refine_input = refine_input
        self.coarse = UnetGenerator(3, 3, num_downs=num_downs, ngf=ngf, norm=norm, dropout=False, output="linear")
        self.refine = UnetGenerator(6 if refine_input == "both" else 3, 3, num_downs=refine_num_downs,
                                    ngf=refine_ngf, norm=norm, dropout=False, output="linear")
        self.unit = 2 ** max(num_downs, refine_num_downs)

    def zero_residuals_(self) -> GlassNet:
        """Zero both stages' last layers: both residuals are then 0 and the network is the identity."""
        with torch.no_grad():
            for stage in (self.coarse, self.refine):
                stage.output_layer.weight.zero_()
                stage.output_layer.bias.zero_()
        return self

    def forward(self, x: torch.Tensor, *, stages: bool = False):
        """Render bokeh.

        Args:
            x: ``(B, 3, H, W)`` image ``I`` (display values in [-1, 1]); H and W multiples of ``unit``.
            stages: also return the rough result.

        Returns:
            ``(B, 3, H, W)``, the refined result; with ``stages``, ``(rough, refined)``. Not clamped.

        Raises:
            ShapeError: not a ``(B, 3, H, W)`` tensor, or H, W not multiples of a stage's ``2**num_downs``.
        """
        rough = x - self.coarse(x)
        source = torch.cat([x, rough], dim=1) if self.refine_input == "both" else rough
        out = rough - self.refine(source)
        return (rough, out) if stages else out


class MultiReceptiveFieldDiscriminator(nn.Module):
    """PatchGAN branches of different depths (receptive fields) that score the same image.

    Args:
        in_channels: 3 (the output alone, ``D(G(I))`` as BGGAN's adversarial loss is written) or 6 (the
            input and the output, as pix2pix's).
        ndf: every branch's first width.
        n_layers: the branches' stride-2 layer counts; 2, 3, 4 give receptive fields 34, 70, 142 px.
        norm: ``"spectral"`` (default: spectral normalisation of every convolution), ``"instance"``,
            ``"batch"`` or ``"none"``.

    Raises:
        InputError: no branch, or settings :class:`~.networks.NLayerDiscriminator` refuses.

    Example:
        >>> d = MultiReceptiveFieldDiscriminator(ndf=4, n_layers=(1, 2))
        >>> [s.shape[-1] for s in d(torch.zeros(1, 3, 32, 32))]
        [15, 6]
    """

    def __init__(self, in_channels: int = 3, ndf: int = 64, n_layers: tuple[int, ...] = (2, 3, 4),
                 norm: str = "spectral"):
        super().__init__()
        if len(n_layers) == 0:
            raise InputError("n_layers", expected="at least one branch depth", got=n_layers, fix="n_layers=(2, 3, 4)")
        self.in_channels = in_channels
        self.branches = nn.ModuleList(NLayerDiscriminator(in_channels, ndf=ndf, n_layers=n, norm=norm)
                                      for n in n_layers)
        self.min_size = max(branch.min_size for branch in self.branches)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Score every patch of the input at every receptive field.

        Args:
            x: ``(B, in_channels, H, W)``, at least ``min_size`` on each side.

        Returns:
            One ``(B, 1, H', W')`` map of raw scores per branch.

        Raises:
            ShapeError: another shape, or an input smaller than the deepest branch takes.
        """
        _check_input(x, self.in_channels)
        if min(x.shape[-2:]) < self.min_size:
            raise ShapeError("x", expected=f"H and W at least {self.min_size} px for the deepest branch",
                             got=tuple(x.shape), fix="train on larger crops, or use shallower branches (d_layers)")
        return [branch(x) for branch in self.branches]


class VGGFeatures(nn.Module):
    """A frozen ImageNet VGG-19 cut after ``features[layer]``, on display values in [0, 1].

    The input is normalised with ImageNet's mean and standard deviation (:data:`IMAGENET_MEAN`,
    :data:`IMAGENET_STD`), which torchvision's weights expect on sRGB values. The weights come only from a
    local file (:func:`~lensblur.metrics.perceptual.load_backbone_state`); nothing is ever downloaded and a
    random network is never used.

    Args:
        layer: the last module kept, an index of torchvision's ``vgg19().features`` (34: conv5_4 before ReLU;
            33: relu5_3).
        weights: a safetensors or torchvision ``.pth`` file of VGG-19 weights (keys ``features.N.weight`` /
            ``features.N.bias``, or ``N.weight``), or None for the torch hub cache
            (``$TORCH_HOME/hub/checkpoints/vgg19-dcbba9e9.pth``).
        hub_dir: the torch hub folder to look in, or None for torch's own.

    Raises:
        InputError: ``layer`` outside 0..36, or a file without the needed weights.
        ModelNotFoundError: no weights file.
        MissingDependencyError: torchvision is not installed.
    """

    def __init__(self, layer: int = 34, *, weights: str | os.PathLike | None = None, hub_dir=None):
        super().__init__()
        if isinstance(layer, bool) or not isinstance(layer, int) or not 0 <= layer < VGG19_FEATURES:
            raise InputError("vgg_layer", expected=f"an index of vgg19().features, 0..{VGG19_FEATURES - 1}",
                             got=layer, fix="vgg_layer=34 (conv5_4)")
        from ..metrics.perceptual import load_torchvision_features

        self.features = load_torchvision_features(
            "vgg19", what="BGGAN's VGG-19 perceptual loss", argument="vgg_weights", path=weights, hub_dir=hub_dir,
            otherwise="or pass use_vgg=False (lensblur train bggan --no-vgg) to train without the VGG term",
            upto=layer)
        self.layer = layer
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> VGGFeatures:
        """Stays in evaluation mode: the loss network is frozen."""
        return super().train(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The feature map of ``(B, 3, H, W)`` display values in [0, 1]."""
        return self.features((x - self.mean) / self.std)
