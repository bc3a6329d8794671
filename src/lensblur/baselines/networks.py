"""The pix2pix and CycleGAN networks: U-Net and ResNet generators, the PatchGAN discriminator, N(0, 0.02) init.

The layer layout, the bias rule and the dropout placement follow the reference implementation
(``junyanz/pytorch-CycleGAN-and-pix2pix``, ``models/networks.py``) so that the parameter counts are the ones
worked out in ``shared/research/baselines.md`` sections 3 and 4:

=====================================  ==========
network                                parameters
=====================================  ==========
``UnetGenerator()`` (unet_256, batch)  54,413,955
``UnetGenerator(num_downs=7)``         41,828,995
``NLayerDiscriminator()`` (6 ch)       2,768,705
``NLayerDiscriminator(3, norm="instance")``  2,764,737
``ResnetGenerator()`` (9 blocks)       11,378,179
=====================================  ==========

Normalisation names: ``"batch"`` is ``BatchNorm2d`` (affine, running statistics), ``"instance"`` is
``InstanceNorm2d`` without affine parameters or running statistics, ``"none"`` is no normalisation. As in the
reference, a convolution that is followed by a BatchNorm has no bias (the norm's shift replaces it); with
any other choice it has one. The discriminator also takes ``"spectral"``: no normalisation layer, and every
convolution's weight divided by its largest singular value (``torch.nn.utils.parametrizations.spectral_norm``,
Miyato et al. 2018), which bounds how fast its scores can change with its input; the parameter count is that
of ``"none"``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from ..errors import InputError, ShapeError, check_integer

__all__ = ["NLayerDiscriminator", "ResnetGenerator", "UnetGenerator", "check_training_size", "init_weights",
           "make_norm"]

NORMS = ("batch", "instance", "none")
D_NORMS = (*NORMS, "spectral")     # the discriminator's: the three, or spectral normalisation of its convolutions


def _check_norm(norm: str, names: tuple[str, ...] = NORMS) -> str:
    if norm not in names:
        raise InputError("norm", expected=f"one of {', '.join(names)}", got=norm, fix='pass norm="batch"')
    return norm


def make_norm(norm: str, channels: int) -> nn.Module:
    """The normalisation layer called ``norm`` for ``channels`` feature maps.

    Args:
        norm: ``"batch"`` (``BatchNorm2d``, affine, running statistics), ``"instance"`` (``InstanceNorm2d``,
            no affine parameters, no running statistics, as in current reference versions) or ``"none"``.
        channels: number of channels ``C`` of the ``(B, C, H, W)`` input it will see.

    Returns:
        The layer (``nn.Identity`` for ``"none"``).

    Raises:
        InputError: ``norm`` is not one of the three names.
    """
    _check_norm(norm)
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    return nn.Identity()


def _check_input(x: torch.Tensor, channels: int, name: str = "x") -> None:
    if x.ndim != 4 or x.shape[1] != channels:
        raise ShapeError(name, expected=f"a (B, {channels}, H, W) tensor", got=tuple(x.shape))


def check_training_size(height: int, width: int, multiple: int, why: str, *, smallest: int = 1,
                        smallest_why: str = "") -> None:
    """Refuse training items of ``height x width`` that a method's networks cannot take: sides that are not
    multiples of ``multiple`` (``why`` says whose), or below ``smallest`` (``smallest_why`` says why). The
    networks themselves refuse them only at the first step, under their own argument's name; the training
    loop asks before it starts (a method's ``check_size``), and the items' size is the crop's.

    Raises:
        InputError: naming ``crop``, with the nearest crop the networks take.
    """
    if height % multiple or width % multiple or min(height, width) < smallest:
        fit = max(-(-smallest // multiple), min(height, width) // multiple) * multiple
        at_least = f" of at least {smallest} px{smallest_why}" if smallest > multiple else ""
        raise InputError("crop", expected=f"training items whose sides are multiples of {multiple} ({why}){at_least}",
                         got=f"{width}x{height}", fix=f"crop={fit}")


def _check_positive(name: str, value: int, minimum: int = 1) -> None:
    check_integer(name, value, minimum)


class _UnetLevel(nn.Module):
    """One level of the U-Net: down-convolution, the inner levels, up-convolution, skip concatenation.

    ``outer`` channels come in (``in_channels`` at the outermost level), ``inner`` channels leave the
    down-convolution. An inner level returns ``2 * outer`` channels (the skip and the up path); the outermost
    returns ``outer`` channels through Tanh and has no skip.
    """

    def __init__(
        self,
        outer: int,
        inner: int,
        *,
        inner_level: nn.Module | None,
        in_channels: int | None = None,
        norm: str = "batch",
        dropout: bool = False,
        tanh: bool = True,
    ):
        super().__init__()
        bias = norm != "batch"
        self.outermost = in_channels is not None
        self.innermost = inner_level is None
        source = in_channels if self.outermost else outer
        # The outermost level takes the image as it is; the others activate their input first.
        self.down_act = nn.Identity() if self.outermost else nn.LeakyReLU(0.2)
        down: list[nn.Module] = [nn.Conv2d(source, inner, kernel_size=4, stride=2, padding=1, bias=bias)]
        if not (self.outermost or self.innermost):
            down.append(make_norm(norm, inner))
        self.down = nn.Sequential(*down)
        self.inner = inner_level if inner_level is not None else nn.Identity()
        up_in = inner if self.innermost else 2 * inner
        up: list[nn.Module] = [nn.ReLU()]
        if self.outermost:
            up += [nn.ConvTranspose2d(up_in, outer, kernel_size=4, stride=2, padding=1, bias=True)]
            if tanh:
                up.append(nn.Tanh())
        else:
            up += [
                nn.ConvTranspose2d(up_in, outer, kernel_size=4, stride=2, padding=1, bias=bias),
                make_norm(norm, outer),
            ]
            if dropout:
                up.append(nn.Dropout(0.5))
        self.up = nn.Sequential(*up)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The reference's down activation is in place, so its skip carries LeakyReLU(x), not x; so does this.
        x = self.down_act(x)
        y = self.up(self.inner(self.down(x)))
        return y if self.outermost else torch.cat([x, y], dim=1)


class UnetGenerator(nn.Module):
    """The pix2pix U-Net generator (``unet_256`` with ``num_downs=8``, ``unet_128`` with ``num_downs=7``).

    ``num_downs`` 4x4 stride-2 convolutions take the image down to ``H / 2**num_downs``; channels go
    ``ngf, 2 ngf, 4 ngf, 8 ngf, 8 ngf, ...``. Down blocks are LeakyReLU(0.2) then convolution then norm (no
    activation before the first, no norm after the first and the last); up blocks are ReLU then a 4x4
    stride-2 transposed convolution then norm, and every level but the outermost concatenates its input to
    its output. The outermost up block ends in Tanh. With ``dropout``, Dropout(0.5) follows the norm in the
    ``num_downs - 5`` intermediate ``8 ngf -> 8 ngf`` levels (not the innermost), as in the reference.
    ``output="linear"`` drops the final Tanh, for a network that predicts an unbounded correction (BGGAN's
    residual); the parameter count is the same.

    Args:
        in_channels: channels of the input image.
        out_channels: channels of the output image.
        num_downs: number of down-samplings, at least 5; H and W must be multiples of ``2**num_downs``.
        ngf: channels after the first convolution.
        norm: ``"batch"`` (pix2pix default), ``"instance"`` or ``"none"``.
        dropout: Dropout(0.5) in the intermediate levels (pix2pix default True; CycleGAN uses False).
        output: ``"tanh"`` (the reference: values in [-1, 1]) or ``"linear"`` (no final activation).

    Raises:
        InputError: ``num_downs < 5``, a non-positive channel count, an unknown ``norm`` or ``output``.

    Example:
        >>> net = UnetGenerator(num_downs=5, ngf=8)
        >>> net(torch.zeros(1, 3, 32, 32)).shape
        torch.Size([1, 3, 32, 32])
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        num_downs: int = 8,
        ngf: int = 64,
        norm: str = "batch",
        dropout: bool = True,
        output: str = "tanh",
    ):
        super().__init__()
        _check_positive("in_channels", in_channels)
        _check_positive("out_channels", out_channels)
        _check_positive("ngf", ngf)
        _check_positive("num_downs", num_downs, minimum=5)
        _check_norm(norm)
        if output not in ("tanh", "linear"):
            raise InputError("output", expected="tanh or linear", got=output, fix='pass output="tanh"')
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.num_downs = num_downs
        level = _UnetLevel(8 * ngf, 8 * ngf, inner_level=None, norm=norm)
        for _ in range(num_downs - 5):
            level = _UnetLevel(8 * ngf, 8 * ngf, inner_level=level, norm=norm, dropout=dropout)
        for outer, inner in ((4 * ngf, 8 * ngf), (2 * ngf, 4 * ngf), (ngf, 2 * ngf)):
            level = _UnetLevel(outer, inner, inner_level=level, norm=norm)
        self.model = _UnetLevel(out_channels, ngf, inner_level=level, in_channels=in_channels, norm=norm,
                                tanh=output == "tanh")

    @property
    def output_layer(self) -> nn.ConvTranspose2d:
        """The last convolution (the outermost up-convolution), e.g. to zero it."""
        return self.model.up[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Translate an image.

        Args:
            x: ``(B, in_channels, H, W)``, H and W multiples of ``2**num_downs`` (256 for unet_256),
                conventionally in [-1, 1].

        Returns:
            ``(B, out_channels, H, W)``, in [-1, 1] unless ``output="linear"``.

        Raises:
            ShapeError: ``x`` is not 4-D with ``in_channels`` channels, or H or W is not a multiple of
                ``2**num_downs``.
        """
        _check_input(x, self.in_channels)
        step = 2**self.num_downs
        if x.shape[-2] % step or x.shape[-1] % step:
            raise ShapeError(
                "x",
                expected=f"H and W multiples of {step} (2**num_downs, num_downs={self.num_downs})",
                got=tuple(x.shape),
                fix="crop or resize the input, or use fewer num_downs (7 for 128 px inputs)",
            )
        return self.model(x)


class NLayerDiscriminator(nn.Module):
    """The PatchGAN discriminator (``basic`` in the reference: ``n_layers=3`` is the 70x70 PatchGAN).

    C(ndf) k4 s2 with bias and no norm, LeakyReLU(0.2); then ``n_layers - 1`` blocks of k4 s2 convolution,
    norm, LeakyReLU with channels doubling up to ``8 ndf``; one more such block with stride 1; a final k4 s1
    convolution to one channel (with bias). Padding 1 everywhere, no sigmoid: the output is a map of logits.
    Receptive field: 16, 34, 70, 142, 286 px for ``n_layers`` 1..5. Output side for a 256 px input with
    ``n_layers=3``: 30. An input side ``s`` gives ``floor(s / 2**n_layers) - 2`` outputs, so it must be at least
    ``min_size = 3 * 2**n_layers`` (24 px for the 70x70 PatchGAN).

    Args:
        in_channels: input channels; 6 for pix2pix (input and output concatenated), 3 for CycleGAN.
        ndf: channels of the first convolution.
        n_layers: number of stride-2 convolutions (at least 1).
        norm: ``"batch"`` (pix2pix default), ``"instance"`` (CycleGAN default), ``"none"``, or ``"spectral"``
            (no norm layers; spectral normalisation of every convolution, for a critic whose raw scores the
            generator's loss uses, as BGGAN's).

    Raises:
        InputError: a non-positive count or an unknown ``norm``.

    Example:
        >>> NLayerDiscriminator(ndf=8)(torch.zeros(2, 6, 64, 64)).shape
        torch.Size([2, 1, 6, 6])
    """

    def __init__(self, in_channels: int = 6, ndf: int = 64, n_layers: int = 3, norm: str = "batch"):
        super().__init__()
        _check_positive("in_channels", in_channels)
        _check_positive("ndf", ndf)
        _check_positive("n_layers", n_layers)
        _check_norm(norm, D_NORMS)
        self.in_channels = in_channels
        self.min_size = 3 * 2**n_layers
        bias = norm != "batch"
        spectral = norm == "spectral"
        norm = "none" if spectral else norm
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, ndf, kernel_size=4, stride=2, padding=1),
            nn.LeakyReLU(0.2),
        ]
        channels = ndf
        for n in range(1, n_layers + 1):
            out = ndf * min(2**n, 8)
            stride = 2 if n < n_layers else 1
            layers += [
                nn.Conv2d(channels, out, kernel_size=4, stride=stride, padding=1, bias=bias),
                make_norm(norm, out),
                nn.LeakyReLU(0.2),
            ]
            channels = out
        layers.append(nn.Conv2d(channels, 1, kernel_size=4, stride=1, padding=1))
        if spectral:        # its power iteration's start vectors come from init_weights, not the global generator
            with torch.random.fork_rng(devices=[]):
                layers = [nn.utils.parametrizations.spectral_norm(m) if isinstance(m, nn.Conv2d) else m
                          for m in layers]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Score every patch of the input.

        Args:
            x: ``(B, in_channels, H, W)``; for pix2pix ``torch.cat([input, output], 1)``.

        Returns:
            ``(B, 1, H', W')`` logits (``H' = 30`` for ``H = 256`` with ``n_layers=3``).

        Raises:
            ShapeError: ``x`` is not 4-D with ``in_channels`` channels, or smaller than ``min_size``.
        """
        _check_input(x, self.in_channels)
        if min(x.shape[-2:]) < self.min_size:
            raise ShapeError("x", expected=f"H and W at least {self.min_size} px (3 * 2**n_layers) for this PatchGAN",
                             got=tuple(x.shape), fix="train on larger crops, or use fewer n_layers")
        return self.model(x)


class _ResnetBlock(nn.Module):
    """``x + [pad, conv3, norm, ReLU, (dropout), pad, conv3, norm](x)`` at constant width."""

    def __init__(self, channels: int, norm: str, dropout: bool, padding: str):
        super().__init__()
        bias = norm != "batch"
        layers: list[nn.Module] = []
        for second in (False, True):
            if padding == "zeros":
                layers.append(nn.Conv2d(channels, channels, kernel_size=3, padding=1, bias=bias))
            else:
                pad = nn.ReflectionPad2d(1) if padding == "reflect" else nn.ReplicationPad2d(1)
                layers += [pad, nn.Conv2d(channels, channels, kernel_size=3, bias=bias)]
            layers.append(make_norm(norm, channels))
            if not second:
                layers.append(nn.ReLU())
                if dropout:
                    layers.append(nn.Dropout(0.5))
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class ResnetGenerator(nn.Module):
    """The CycleGAN ResNet generator (``resnet_9blocks`` with ``n_blocks=9``, ``resnet_6blocks`` with 6).

    c7s1-ngf (reflection pad 3), two k3 s2 down-samplings (``2 ngf``, ``4 ngf``), ``n_blocks`` residual
    blocks at ``4 ngf``, two k3 s2 transposed convolutions (output padding 1) back to ``ngf``, then a 7x7
    convolution (reflection pad 3, with bias) and Tanh. Every convolution but the last is followed by the
    norm and ReLU.

    Args:
        in_channels: channels of the input image.
        out_channels: channels of the output image.
        ngf: channels after the first convolution.
        n_blocks: number of residual blocks (0 or more).
        norm: ``"instance"`` (CycleGAN default), ``"batch"`` or ``"none"``.
        dropout: Dropout(0.5) inside each residual block (CycleGAN default False).
        padding: padding inside the residual blocks: ``"reflect"`` (default), ``"replicate"`` or ``"zeros"``.

    Raises:
        InputError: a non-positive count, a negative ``n_blocks``, an unknown ``norm`` or ``padding``.

    Example:
        >>> ResnetGenerator(ngf=8, n_blocks=2)(torch.zeros(1, 3, 32, 32)).shape
        torch.Size([1, 3, 32, 32])
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        ngf: int = 64,
        n_blocks: int = 9,
        norm: str = "instance",
        dropout: bool = False,
        padding: str = "reflect",
    ):
        super().__init__()
        _check_positive("in_channels", in_channels)
        _check_positive("out_channels", out_channels)
        _check_positive("ngf", ngf)
        _check_positive("n_blocks", n_blocks, minimum=0)
        _check_norm(norm)
        if padding not in ("reflect", "replicate", "zeros"):
            raise InputError("padding", expected="reflect, replicate or zeros", got=padding)
        self.in_channels = in_channels
        bias = norm != "batch"
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_channels, ngf, kernel_size=7, bias=bias),
            make_norm(norm, ngf),
            nn.ReLU(),
        ]
        for mult in (1, 2):
            layers += [
                nn.Conv2d(ngf * mult, ngf * mult * 2, kernel_size=3, stride=2, padding=1, bias=bias),
                make_norm(norm, ngf * mult * 2),
                nn.ReLU(),
            ]
        layers += [_ResnetBlock(4 * ngf, norm, dropout, padding) for _ in range(n_blocks)]
        for mult in (4, 2):
            layers += [
                nn.ConvTranspose2d(
                    ngf * mult,
                    ngf * mult // 2,
                    kernel_size=3,
                    stride=2,
                    padding=1,
                    output_padding=1,
                    bias=bias,
                ),
                make_norm(norm, ngf * mult // 2),
                nn.ReLU(),
            ]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_channels, kernel_size=7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Translate an image.

        Args:
            x: ``(B, in_channels, H, W)``, H and W multiples of 4 (and larger than 3 px for the 7x7 padding).

        Returns:
            ``(B, out_channels, H, W)`` in [-1, 1].

        Raises:
            ShapeError: ``x`` is not 4-D with ``in_channels`` channels, or H or W is not a multiple of 4.
        """
        _check_input(x, self.in_channels)
        if x.shape[-2] % 4 or x.shape[-1] % 4:
            raise ShapeError("x", expected="H and W multiples of 4", got=tuple(x.shape), fix="crop the input")
        return self.model(x)


def _init_parametrized(m: nn.Module, gain: float, generator: torch.Generator | None) -> None:
    """Draw a parametrised (spectrally normalised) weight's original, then restart its power iteration."""
    nn.init.normal_(m.parametrizations.weight.original, 0.0, gain, generator=generator)
    for p in m.parametrizations.weight:
        if hasattr(p, "_u"):
            for name in ("_u", "_v"):
                vector = getattr(p, name)
                vector.copy_(F.normalize(torch.randn(vector.shape, generator=generator).to(vector), dim=0))
    training = m.training
    m.train()
    for _ in range(15):       # each read of the weight in training mode is one power iteration (15: as torch starts)
        m.weight  # noqa: B018
    m.train(training)


def init_weights(
    module: nn.Module, gain: float = 0.02, *, generator: torch.Generator | None = None
) -> nn.Module:
    """The reference ``normal`` initialisation, in place.

    Convolution, transposed convolution and linear weights are drawn from N(0, gain), normalisation weights
    (BatchNorm, affine InstanceNorm, GroupNorm, LayerNorm) from N(1, gain); all biases are set to 0. A
    spectrally normalised weight has its unnormalised weight drawn, and its power iteration restarted from
    vectors drawn from the same generator, so that the whole state follows ``generator``.

    Args:
        module: the network; every sub-module is visited.
        gain: standard deviation of the draws (0.02 in pix2pix and CycleGAN).
        generator: random generator for reproducible draws, or None for the global one.

    Returns:
        ``module`` itself, initialised.

    Raises:
        InputError: ``gain`` is negative.
    """
    if not gain >= 0:
        raise InputError("gain", expected="a standard deviation >= 0", got=gain, fix="gain=0.02")
    norm_types = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (nn.modules.conv._ConvNd, nn.Linear)):
                if parametrize.is_parametrized(m, "weight"):
                    _init_parametrized(m, gain, generator)
                else:
                    nn.init.normal_(m.weight, 0.0, gain, generator=generator)
            elif isinstance(m, norm_types) and getattr(m, "weight", None) is not None:
                nn.init.normal_(m.weight, 1.0, gain, generator=generator)
            else:
                continue
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)
    return module
