"""PISA, BokehDiff's physics-inspired self-attention, as a diffusers attention processor.

On a self-attention layer whose ``N = h x w`` tokens lie on the image grid, PISA replaces
``softmax_over_keys(Q K^T / sqrt(d)) V`` with light transport from every source token ``k`` (a column)::

    A_qk  = softmax over queries q of (Q K^T / sqrt(d) + log C)_qk     each column sums to 1      (paper eq. 3, 5)
    C_qk  = sigmoid(ln(hardness) * (R_k - dist_qk))                    soft circle of confusion    (eq. 6)
    W     = A * (1 - O)                                                self-occlusion, applied after
    out   = W V                                                        normalisation (eq. 9)

``R_k`` is the CoC radius of source ``k`` and ``dist_qk`` the distance between the tokens, both in the
release's *CoC units* of 10 pixels (:data:`COC_UNIT_PX`). The radius comes from lensblur's signed CoC in
pixels, ``coc = blur * (disparity - focus_disparity)``: ``R = |coc| / 10`` (the release's CoC channel,
``|d - d_f| * K / 10``). The distance is measured one of two ways (``distance=``):

* ``"release"`` (default, what the released weights were trained with): ``51.2 * |p_q - p_k|`` with token
  positions on ``linspace(0, 1, n)`` per axis (:data:`CUTOFF`). On a 512-px tile (32 x 32 tokens) one CoC unit
  is ``10 * 31 / 32 = 9.6875`` px; on other extents it scales with the map, and non-square maps are stretched.
* ``"pixels"``: the Euclidean distance between token centres in image pixels, / 10. One CoC unit is exactly
  10 px at any size and shape, so the support of a source is the disk of radius ``|coc|`` pixels that the
  classical renderers draw.

The occlusion ``O_qk`` (the fraction of the sampled paths from source ``k`` to query ``q`` that the scene
blocks) is sampled on a 3x-resolution disparity map along the segment between the source and the point at the
camera (disparity 1) imaged at ``q``: ``segments`` points per path, ``supersamples`` paths (the first exact,
the others jittered by up to half a token). Two conventions (``occlusion=``): ``"release"`` places the sample
points with the *query's* disparity and compares with the *key's* (the released code's indexing, default);
``"paper"`` uses the source's disparity for both (eq. 7-8); ``"off"`` drops the occlusion (the paper's "w/o
occlusion" ablation). ``coc_mask=False`` and ``normalize="keys"`` are the "w/o CoC" and "w/o SoftmaxQ" ones.

The soft edge's hardness is :class:`Sharpness`: fixed at ``1e7`` for inference, or the release's training
counter (``3 + calls``, one call per PISA layer per forward), a state that checkpoints carry.

Randomness (the jittered paths and the optional dropout) draws from the ``generator`` passed with the
conditioning, so a seeded generator gives the same bytes; dropout is off unless asked for (the release applies
``p = 0.1`` even at inference: ``dropout=0.1``).
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import InputError

__all__ = [
    "CHUNK_BYTES",
    "COC_UNIT_PX",
    "CUTOFF",
    "DEFAULT_LAYERS",
    "DISTANCES",
    "NORMALIZATIONS",
    "OCCLUSIONS",
    "IgnoresBokehInputs",
    "PISAProcessor",
    "Sharpness",
    "coc_log_mask",
    "coc_radius",
    "distance_matrix",
    "install_pisa",
    "occlusion_map",
    "pisa_attention",
    "token_grid",
]

CUTOFF = 51.2
"""The release's distance scale: CoC units per normalised side of the attention map (c_i of eq. 6)."""
COC_UNIT_PX = 10.0
"""Pixels per CoC unit: the release's CoC channel is the radius in pixels / 10."""
INFERENCE_HARDNESS = 1e7
"""The soft edge's hardness at inference (sharpness ln(1e7) = 16.1 per CoC unit)."""
TRAINING_HARDNESS = 3.0
"""The release's hardness at the first training call."""
COUNTING_LIMIT = 1e6
"""The release stops counting, and stops clamping the occlusion at 0.99, once the hardness reaches this."""
TRAINING_OCCLUSION_CLAMP = 0.99
DISPARITY_LIMIT = 1.0 - 1e-3
"""Disparities are clamped below 1 (the camera): at exactly 1 the sample-point formula divides by zero."""
SEGMENT_RANGE = (0.1, 0.9)
"""Where the sample points sit along each path: fractions of the way from the camera (0) to the source (1)."""
DEFAULT_LAYERS = ("down_blocks.1.attentions.0",)
"""The released weights' PISA layers: the self-attention of the first transformer of ``down_blocks.1`` (in
SDXL its two blocks' ``attn1``, at 1/16 of the image's resolution)."""
OCCLUSIONS = ("release", "paper", "off")
DISTANCES = ("release", "pixels")
NORMALIZATIONS = ("queries", "keys")
LOGIT_RANGE = 60.0
"""Logits this far below the largest of their softmax give weight exactly 0 (e^-60 = 9e-27 of the largest)."""
CHUNK_BYTES = 64 * 2**20
"""Working memory of one chunk of queries of the occlusion sampling (the result is the same for any chunk)."""


# ----------------------------------------------------------------------------------------------- sharpness
@dataclass
class Sharpness:
    """The hardness ``H`` of the soft CoC edge ``sigmoid(ln(H) * x)``, ``x`` in CoC units.

    Args:
        start: the hardness at the first call, > 1.
        calls: PISA calls counted so far.
        counting: add 1 per call (training) until the hardness reaches 1e6; else fixed (inference).
    """

    start: float = INFERENCE_HARDNESS
    calls: int = 0
    counting: bool = False

    def __post_init__(self):
        if not (isinstance(self.start, (int, float)) and math.isfinite(self.start) and self.start > 1):
            raise InputError("start", expected="a hardness > 1 (ln(hardness) is the edge's slope)", got=self.start,
                             fix="e.g. start=3 (the release's training start) or start=1e7 (inference)")
        if not (isinstance(self.calls, int) and self.calls >= 0):
            raise InputError("calls", expected="an integer >= 0", got=self.calls, fix="e.g. calls=0")

    @classmethod
    def inference(cls) -> Sharpness:
        """The release's inference setting: hardness 1e7, fixed."""
        return cls(INFERENCE_HARDNESS)

    @classmethod
    def training(cls, start: float = TRAINING_HARDNESS, calls: int = 0) -> Sharpness:
        """The release's training schedule: ``start + calls``, one call per PISA layer per forward."""
        return cls(start, calls, True)

    @property
    def hardness(self) -> float:
        """The hardness the next call uses."""
        return self.start + self.calls if self.counting else self.start

    @property
    def slope(self) -> float:
        """``ln(hardness)``: the soft edge's slope per CoC unit."""
        return math.log(self.hardness)

    @property
    def clamps_occlusion(self) -> bool:
        """Whether occlusion is clamped at 0.99 (the release does while the hardness is below 1e6)."""
        return self.hardness < COUNTING_LIMIT

    def advance(self) -> None:
        """Count one call (only while counting, and below 1e6, as the release does)."""
        if self.counting and self.hardness < COUNTING_LIMIT:
            self.calls += 1

    def state_dict(self) -> dict:
        """The state to checkpoint (plain numbers)."""
        return {"start": float(self.start), "calls": int(self.calls), "counting": bool(self.counting)}

    def load_state_dict(self, state: dict) -> None:
        """Continue from a :meth:`state_dict`."""
        restored = Sharpness(float(state["start"]), int(state["calls"]), bool(state["counting"]))
        self.start, self.calls, self.counting = restored.start, restored.calls, restored.counting


# ----------------------------------------------------------------------------------------------- geometry
def token_grid(tokens: int, height: int, width: int) -> tuple[int, int]:
    """The ``(h, w)`` token grid of an attention layer, from the pixel size of its conditioning maps.

    Every down-sampling of the VAE and the UNet halves a side, rounding up (stride-2 convolutions); the grid
    is the first halving of ``(height, width)`` with ``h * w == tokens``.

    Args:
        tokens: the layer's sequence length ``N``.
        height: the conditioning maps' height in pixels; ``width`` their width.

    Returns:
        ``(h, w)``.

    Raises:
        InputError: no halving of the map gives ``tokens`` (the map is not the image's size).
    """
    h, w = int(height), int(width)
    while h * w > tokens and (h > 1 or w > 1):
        h, w = -(-h // 2), -(-w // 2)
    if h * w != tokens:
        raise InputError("disparity", expected=f"a map whose size halves to the attention layer's {tokens} tokens",
                         got=f"a {height}x{width} map", fix="pass the disparity and CoC at the image's size")
    return h, w


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resampling as the release does it (half-pixel centres, no antialiasing)."""
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def coc_radius(coc: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Each token's CoC radius in CoC units: ``|coc| / 10`` resampled to the token grid.

    Args:
        coc: ``(B, 1, H, W)`` signed CoC radius in pixels.
        grid: the token grid ``(h, w)``.

    Returns:
        ``(B, h * w)`` float32.
    """
    return _resize(coc.abs().float(), grid).flatten(1) / COC_UNIT_PX


def distance_matrix(grid: tuple[int, int], size: tuple[int, int], *, distance: str = "release",
                    device=None) -> torch.Tensor:
    """Distances between the tokens, in CoC units.

    Args:
        grid: the token grid ``(h, w)``.
        size: the map's size in pixels ``(H, W)`` (only ``"pixels"`` reads it).
        distance: ``"release"`` (51.2 per normalised side) or ``"pixels"`` (pixel distance / 10).
        device: where the matrix is made.

    Returns:
        ``(h * w, h * w)`` float32, tokens in row-major order.
    """
    h, w = grid
    if distance == "release":
        ys = torch.linspace(0.0, 1.0, h, device=device) * CUTOFF
        xs = torch.linspace(0.0, 1.0, w, device=device) * CUTOFF
    else:
        ys = (torch.arange(h, device=device, dtype=torch.float32) + 0.5) * (size[0] / h / COC_UNIT_PX)
        xs = (torch.arange(w, device=device, dtype=torch.float32) + 0.5) * (size[1] / w / COC_UNIT_PX)
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    yy, xx = yy.flatten(), xx.flatten()
    return torch.sqrt((yy[:, None] - yy[None, :]) ** 2 + (xx[:, None] - xx[None, :]) ** 2)


def coc_log_mask(radius: torch.Tensor, distance: torch.Tensor, slope: float, *,
                 by_source: bool = False) -> torch.Tensor:
    """``log C_qk = log sigmoid(slope * (R_k - dist_qk))``: the soft CoC of each source (column).

    Kept as a logarithm so that it adds to the logits: the softmax over queries of the sum is exactly
    ``exp(S) C / sum(exp(S) C)`` and cannot overflow or divide by zero.

    Args:
        radius: ``(B, N)`` CoC units.
        distance: ``(N, N)`` CoC units, symmetric (as :func:`distance_matrix` makes it).
        slope: ``ln(hardness)``.
        by_source: lay the mask out by source (rows the sources ``k``): its transpose.

    Returns:
        ``(B, 1, N, N)``.
    """
    if by_source:
        return F.logsigmoid(slope * (radius[:, None, :, None] - distance))
    return F.logsigmoid(slope * (radius[:, None, None, :] - distance))


def _grid_positions(grid: tuple[int, int], device) -> torch.Tensor:
    """Token centres in grid_sample coordinates, ``(N, 2)`` as ``(x, y)``, tokens in row-major order."""
    h, w = grid
    ys = torch.linspace(-1 + 1 / h, 1 - 1 / h, h, device=device)
    xs = torch.linspace(-1 + 1 / w, 1 - 1 / w, w, device=device)
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([xx.flatten(), yy.flatten()], dim=-1)


def _uniform(shape, generator, device) -> torch.Tensor:
    """Uniform [0, 1) draws from ``generator`` (on its own device), moved to ``device``."""
    if generator is None:
        return torch.rand(shape, device=device)
    return torch.rand(shape, generator=generator, device=generator.device).to(device)


def occlusion_map(disparity: torch.Tensor, grid: tuple[int, int], *, convention: str = "release",
                  segments: int = 7, supersamples: int = 5, generator: torch.Generator | None = None,
                  chunk_bytes: int = CHUNK_BYTES) -> torch.Tensor:
    """``O_qk``: the fraction of the sampled paths from source ``k`` to query ``q`` that the scene blocks.

    A path from source ``k`` (disparity ``D_k``) to the point at the camera imaged at ``q`` passes, at ray
    disparity ``r`` between ``D_k`` and 1, the image point ``P_q + f (P_k - P_q)`` with
    ``f = (1 - r) D_k / (r (1 - D_k))`` (eq. 7); it is blocked where the scene there is nearer than ``r``
    (eq. 8). ``r = p D + 1 - p`` for ``p`` in ``linspace(0.1, 0.9, segments)``, ``D`` the source's disparity
    (``"paper"``) or, for the point's position only, the query's (``"release"``). The scene's disparity is
    read bilinearly from a 3x-resolution map, as zero (never blocking) outside the image. Path 0 is exact;
    paths 1.. are jittered uniformly by up to half a token on each axis.

    Args:
        disparity: ``(B, 1, H, W)`` in [0, 1], 1 = nearest; clamped to ``1 - 1e-3``.
        grid: the token grid ``(h, w)``.
        convention: ``"release"`` or ``"paper"``.
        segments: sample points per path, >= 1.
        supersamples: paths per pair, >= 1.
        generator: the jitter's random source (None: torch's global one).
        chunk_bytes: working memory per chunk of queries.

    Returns:
        ``(B, 1, N, N)`` float32 in ``{0, 1/supersamples, ..., 1}``; rows are queries, columns sources.
    """
    h, w = grid
    n = h * w
    device = disparity.device
    disparity = disparity.float().clamp(0.0, DISPARITY_LIMIT)
    low = _resize(disparity, grid).flatten(1)                         # (B, N): each token's disparity
    high = _resize(disparity, (3 * h, 3 * w))                          # (B, 1, 3h, 3w): the scene, sampled
    positions = _grid_positions(grid, device)                          # (N, 2)
    p = torch.linspace(*SEGMENT_RANGE, segments, device=device)[:, None]
    half_token = torch.tensor([1.0 / w, 1.0 / h], device=device)
    per_query = supersamples * segments * n * 16
    chunk = max(1, min(n, chunk_bytes // per_query))
    out = torch.empty(disparity.shape[0], 1, n, n, device=device)
    for b in range(disparity.shape[0]):
        d = low[b][None, None, :]                                      # (1, 1, N): the source's disparity
        ray = p * low[b][None, :] + (1 - p)                            # (S, N): ray disparities of each token
        threshold = ray[None, :, None, :]                              # (1, S, 1, N): indexed by source
        for start in range(0, n, chunk):
            rows = slice(start, min(n, start + chunk))
            at = ray[:, rows, None] if convention == "release" else ray[:, None, :]
            f = (1 - at) * d / (at * (1 - d))                          # (S, c, N)
            origin = positions[rows][None, :, None, :]                 # (1, c, 1, 2): the query
            points = origin + f[..., None] * (positions[None, None, :, :] - origin)   # (S, c, N, 2)
            points = points.unsqueeze(0).repeat(supersamples, 1, 1, 1, 1)
            if supersamples > 1:
                jitter = _uniform((supersamples - 1, *points.shape[1:]), generator, device)
                points[1:] += (jitter * 2 - 1) * half_token
            sampled = F.grid_sample(high[b:b + 1], points.reshape(1, -1, n, 2), mode="bilinear",
                                    padding_mode="zeros", align_corners=False)
            sampled = sampled.reshape(supersamples, segments, -1, n)
            out[b, 0, rows] = (sampled > threshold).any(dim=1).float().mean(dim=0)
    return out


# ----------------------------------------------------------------------------------------------- attention
def _reduce_to(grad: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """``grad`` summed over the axes along which a tensor of ``shape`` was broadcast."""
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    return grad.sum(dim=axes, keepdim=True) if axes else grad


class _TransportBySource(torch.autograd.Function):
    """``out = (softmax(K Q^T s + bias, dim) * factor)^T V`` on ``(B, heads, N, d)`` tensors, the ``(N, N)``
    maps laid out by source (rows are keys, columns queries), with its backward written out.

    Laid out this way PISA's softmax over queries runs along contiguous memory, and every product of the
    backward is a plain batched matrix product: autograd's backward of the query-major form runs strided
    ones that cost up to 50 times as much on the CPU (the miniature's 256-token layers).
    """

    @staticmethod
    def forward(ctx, query, key, value, bias, factor, dim: int, scale: float):
        logits = torch.matmul(key, query.transpose(-1, -2)).mul_(scale)       # (B, heads, sources, queries)
        if bias is not None:
            logits.add_(bias)
        # Weights below e^-60 of their softmax's largest are dropped (set to exactly 0): they are far below
        # float32's rounding of the sum, and left in they become subnormal numbers, on which the CPU's
        # products run 10 to 60 times slower (the CoC mask at hardness 1e7 makes many of them).
        floor = logits.amax(dim=dim, keepdim=True).sub_(LOGIT_RANGE)
        logits.masked_fill_(logits < floor, -math.inf)
        del floor
        weights = torch.softmax(logits, dim=dim)
        del logits
        if not any(ctx.needs_input_grad):
            transport = weights.mul_(factor) if factor is not None else weights
            return torch.matmul(transport.transpose(-1, -2), value)
        transport = weights * factor if factor is not None else weights
        out = torch.matmul(transport.transpose(-1, -2), value)
        ctx.save_for_backward(query, key, value, weights, factor)
        ctx.dim, ctx.scale = dim, scale
        ctx.bias_shape = None if bias is None else bias.shape
        return out

    @staticmethod
    def backward(ctx, grad):
        query, key, value, weights, factor = ctx.saved_tensors
        need_q, need_k, need_v, need_bias, need_factor = ctx.needs_input_grad[:5]
        grad = grad.contiguous()
        grad_q = grad_k = grad_v = grad_bias = grad_factor = None
        if need_v:
            transport = weights * factor if factor is not None else weights
            grad_v = torch.matmul(transport, grad)
            del transport
        if need_q or need_k or need_bias or need_factor:
            d_weights = torch.matmul(value, grad.transpose(-1, -2))           # d loss / d transport
            if need_factor:
                grad_factor = _reduce_to(d_weights * weights, factor.shape)
            if factor is not None:
                d_weights.mul_(factor)
            d_logits = d_weights.mul_(weights)                                 # the softmax's backward, in place
            d_logits.sub_(weights * d_logits.sum(dim=ctx.dim, keepdim=True))
            if need_bias:
                grad_bias = _reduce_to(d_logits, ctx.bias_shape)
            d_logits.mul_(ctx.scale)
            if need_k:
                grad_k = torch.matmul(d_logits, query)
            if need_q:
                grad_q = torch.matmul(d_logits.transpose(-1, -2), key)
        return grad_q, grad_k, grad_v, grad_bias, grad_factor, None, None


def _attention_by_source(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, *,
                         log_mask: torch.Tensor | None, visibility: torch.Tensor | None, normalize: str,
                         dropout: float, generator: torch.Generator | None) -> torch.Tensor:
    """:func:`pisa_attention` with the log mask and the visibility ``1 - O`` given by source: ``(B, 1, N, N)``
    with rows the keys (the transposes of :func:`coc_log_mask` and :func:`occlusion_map`)."""
    factor = visibility
    if dropout > 0:
        # Drawn in the query-major layout, as before, so that a seed keeps its pattern.
        shape = (*query.shape[:2], query.shape[-2], key.shape[-2])
        keep = (_uniform(shape, generator, query.device) >= dropout).transpose(-1, -2)
        factor = keep / (1 - dropout) if factor is None else factor * keep / (1 - dropout)
    dim = -1 if normalize == "queries" else -2
    log_mask = None if log_mask is None else log_mask.float()
    factor = None if factor is None else factor.float()
    out = _TransportBySource.apply(query.float(), key.float(), value.float(), log_mask, factor, dim,
                                   query.shape[-1] ** -0.5)
    return out.to(value.dtype)


def pisa_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, *,
                   log_mask: torch.Tensor | None = None, occlusion: torch.Tensor | None = None,
                   normalize: str = "queries", dropout: float = 0.0,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """PISA's attention on split heads, in float32.

    Args:
        query: ``(B, heads, N, d)``; ``key`` and ``value`` the same shape.
        log_mask: ``(B, 1, N, N)`` log CoC mask added to the logits, or None (no CoC).
        occlusion: ``(B, 1, N, N)`` occlusion multiplied in as ``1 - O`` after normalisation, or None.
        normalize: ``"queries"`` (each column sums to 1, PISA) or ``"keys"`` (each row: plain attention).
        dropout: the fraction of weights zeroed (the rest scaled by ``1 / (1 - dropout)``), in [0, 1).
        generator: the dropout's random source.

    Returns:
        ``(B, heads, N, d)`` in ``value``'s dtype.
    """
    by_source = None if log_mask is None else log_mask.transpose(-1, -2).contiguous()
    visibility = None if occlusion is None else (1 - occlusion).transpose(-1, -2).contiguous()
    return _attention_by_source(query, key, value, log_mask=by_source, visibility=visibility, normalize=normalize,
                                dropout=dropout, generator=generator)


def _check_choice(name: str, value, choices) -> None:
    if value not in choices:
        raise InputError(name, expected=f"one of {', '.join(choices)}", got=value, fix=f"e.g. {name}={choices[0]}")


class PISAProcessor:
    """PISA as a diffusers attention processor (see the module doc). Install it with :func:`install_pisa`.

    The conditioning reaches it through the UNet's ``cross_attention_kwargs``: ``disparity`` and ``coc``,
    each ``(B, 1, H, W)`` at the pixel size of the image (or tile) the latents encode, ``coc`` the signed CoC
    radius in pixels; and optionally ``generator``, the random source of the jitter and dropout. One instance
    may serve several layers: they share its :attr:`sharpness` (the release's shared counter), and the
    occlusion of one conditioning map is computed once per grid and reused by every layer of that forward.

    Args:
        occlusion: ``"release"`` (default), ``"paper"`` or ``"off"``.
        distance: ``"release"`` (default) or ``"pixels"``.
        normalize: ``"queries"`` (default) or ``"keys"``.
        coc_mask: apply the soft CoC mask.
        segments: sample points per occlusion path (the release: 7 at inference, 5 in training).
        supersamples: occlusion paths per pair (5 at inference, 4 in training).
        dropout: dropout on the attention weights, in [0, 1) (the release: 0.1, always on); 0 = deterministic.
        sharpness: the soft edge's hardness (default :meth:`Sharpness.inference`).
        cache_occlusion: reuse the occlusion map across the layers of one forward (the release recomputes
            it, with fresh jitter, in each).
        chunk_bytes: working memory of the occlusion sampling.

    Raises:
        InputError: a value outside its choices or range.
    """

    def __init__(self, *, occlusion: str = "release", distance: str = "release", normalize: str = "queries",
                 coc_mask: bool = True, segments: int = 7, supersamples: int = 5, dropout: float = 0.0,
                 sharpness: Sharpness | None = None, cache_occlusion: bool = True, chunk_bytes: int = CHUNK_BYTES):
        _check_choice("occlusion", occlusion, OCCLUSIONS)
        _check_choice("distance", distance, DISTANCES)
        _check_choice("normalize", normalize, NORMALIZATIONS)
        for name, value in (("segments", segments), ("supersamples", supersamples), ("chunk_bytes", chunk_bytes)):
            if not (isinstance(value, int) and value >= 1):
                raise InputError(name, expected="an integer >= 1", got=value, fix=f"e.g. {name}=5")
        if not (isinstance(dropout, (int, float)) and 0.0 <= dropout < 1.0):
            raise InputError("dropout", expected="a fraction in [0, 1)", got=dropout,
                             fix="dropout=0 (deterministic) or dropout=0.1 (the release)")
        self.occlusion = occlusion
        self.distance = distance
        self.normalize = normalize
        self.coc_mask = bool(coc_mask)
        self.segments = segments
        self.supersamples = supersamples
        self.dropout = float(dropout)
        self.sharpness = sharpness if sharpness is not None else Sharpness.inference()
        self.cache_occlusion = bool(cache_occlusion)
        self.chunk_bytes = chunk_bytes
        self._distances: dict = {}
        self._occlusion_cache: tuple | None = None
        self._mask_cache: tuple | None = None

    @classmethod
    def released_inference(cls, **options) -> PISAProcessor:
        """The release's inference processor (hardness 1e7, 5 x 7 occlusion samples), without its dropout
        unless ``dropout=0.1`` is passed; ``options`` override the other settings."""
        settings = {"segments": 7, "supersamples": 5, "sharpness": Sharpness.inference()}
        return cls(**{**settings, **options})

    @classmethod
    def released_training(cls, **options) -> PISAProcessor:
        """The release's training processor: hardness ``3 + calls``, 4 x 5 occlusion samples clamped at 0.99,
        dropout 0.1; ``options`` override any of them."""
        settings = {"segments": 5, "supersamples": 4, "dropout": 0.1, "sharpness": Sharpness.training()}
        return cls(**{**settings, **options})

    def state_dict(self) -> dict:
        """What a checkpoint must carry to continue exactly: the sharpness counter."""
        return {"sharpness": self.sharpness.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        """Continue from a :meth:`state_dict`."""
        self.sharpness.load_state_dict(state["sharpness"])

    # -- the parts of one call ------------------------------------------------------------------------------
    def _distance(self, grid, size, device) -> torch.Tensor:
        key = (grid, tuple(size) if self.distance == "pixels" else None, self.distance, str(device))
        if key not in self._distances:
            self._distances[key] = distance_matrix(grid, size, distance=self.distance, device=device)
        return self._distances[key]

    @staticmethod
    def _cached(cache: tuple | None, tensor: torch.Tensor, key: tuple):
        """The value in ``cache`` if it was made from this very ``tensor``, unchanged, with ``key``."""
        if cache is not None and cache[0]() is tensor and cache[1] == tensor._version and cache[2] == key:
            return cache[3]
        return None

    def _visibility(self, disparity: torch.Tensor, grid, generator) -> torch.Tensor:
        """``1 - O`` laid out by source, ``(B, 1, N, N)`` rows the keys (clamped as the sharpness says)."""
        found = self._cached(self._occlusion_cache, disparity, (grid,)) if self.cache_occlusion else None
        if found is None:
            found = {"occlusion": occlusion_map(disparity, grid, convention=self.occlusion, segments=self.segments,
                                                supersamples=self.supersamples, generator=generator,
                                                chunk_bytes=self.chunk_bytes)}
            if self.cache_occlusion:
                self._occlusion_cache = (weakref.ref(disparity), disparity._version, (grid,), found)
        clamp = self.sharpness.clamps_occlusion
        if clamp not in found:
            occlusion = found["occlusion"]
            occlusion = occlusion.clamp(max=TRAINING_OCCLUSION_CLAMP) if clamp else occlusion
            found[clamp] = (1 - occlusion).transpose(-1, -2).contiguous()
        return found[clamp]

    def _log_mask(self, coc: torch.Tensor, grid, size) -> torch.Tensor:
        """:func:`coc_log_mask` laid out by source (its transpose: the distances are symmetric), made once per
        conditioning map, grid and slope."""
        slope = self.sharpness.slope
        key = (grid, tuple(size), slope)
        found = self._cached(self._mask_cache, coc, key)
        if found is not None:
            return found
        mask = coc_log_mask(coc_radius(coc, grid), self._distance(grid, size, coc.device), slope, by_source=True)
        self._mask_cache = (weakref.ref(coc), coc._version, key, mask)
        return mask

    @staticmethod
    def _conditioning(value, name: str, batch: int) -> torch.Tensor:
        if not (isinstance(value, torch.Tensor) and value.ndim == 4 and value.shape[1] == 1):
            raise InputError(name, expected="a (B, 1, H, W) tensor in cross_attention_kwargs",
                             got=f"shape {tuple(value.shape)}" if isinstance(value, torch.Tensor) else repr(value),
                             fix="pass cross_attention_kwargs={'disparity': d, 'coc': blur * (d - focus_disparity)}")
        if value.shape[0] == 1 and batch > 1:
            value = value.expand(batch, -1, -1, -1)
        elif value.shape[0] != batch:
            raise InputError(name, expected=f"a batch of 1 or {batch} maps", got=f"{value.shape[0]} maps",
                             fix="pass one map per image")
        return value

    def __call__(self, attn, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor | None = None,
                 attention_mask: torch.Tensor | None = None, temb: torch.Tensor | None = None,
                 disparity: torch.Tensor | None = None, coc: torch.Tensor | None = None,
                 generator: torch.Generator | None = None, **kwargs) -> torch.Tensor:
        if encoder_hidden_states is not None:
            raise InputError("layers", expected="self-attention layers only", got="a cross-attention call",
                             fix="install PISA with install_pisa, which picks the self-attention layers")
        if disparity is None or coc is None:
            raise InputError("cross_attention_kwargs", expected="disparity and coc for the PISA layers",
                             got="none", fix="pass cross_attention_kwargs={'disparity': d, 'coc': c} to the UNet")
        if attention_mask is not None:
            raise InputError("attention_mask", expected="None on a PISA layer", got="a mask",
                             fix="PISA's masks come from the disparity and CoC")
        residual = hidden_states
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)
        input_ndim = hidden_states.ndim
        if input_ndim == 4:
            batch, channel, height, width = hidden_states.shape
            hidden_states = hidden_states.view(batch, channel, height * width).transpose(1, 2)
        batch, tokens, _ = hidden_states.shape
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)

        query, key, value = attn.to_q(hidden_states), attn.to_k(hidden_states), attn.to_v(hidden_states)
        head_dim = key.shape[-1] // attn.heads
        query, key, value = (t.view(batch, -1, attn.heads, head_dim).transpose(1, 2) for t in (query, key, value))
        if attn.norm_q is not None:
            query = attn.norm_q(query)
        if attn.norm_k is not None:
            key = attn.norm_k(key)

        disparity = self._conditioning(disparity, "disparity", batch)
        coc = self._conditioning(coc, "coc", batch)
        size = tuple(disparity.shape[-2:])
        grid = token_grid(tokens, *size)
        log_mask = self._log_mask(coc, grid, size) if self.coc_mask else None
        visibility = None if self.occlusion == "off" else self._visibility(disparity, grid, generator)
        out = _attention_by_source(query, key, value, log_mask=log_mask, visibility=visibility,
                                   normalize=self.normalize, dropout=self.dropout, generator=generator)
        self.sharpness.advance()

        out = out.transpose(1, 2).reshape(batch, -1, attn.heads * head_dim).to(query.dtype)
        out = attn.to_out[1](attn.to_out[0](out))
        if input_ndim == 4:
            out = out.transpose(-1, -2).reshape(batch, channel, height, width)
        if attn.residual_connection:
            out = out + residual
        return out / attn.rescale_output_factor


class IgnoresBokehInputs:
    """Another layer's processor, made to accept (and ignore) PISA's ``cross_attention_kwargs``.

    diffusers drops, with a warning per call, any keyword a processor does not name; the layers that keep
    their default attention are wrapped in this so the conditioning passes them silently.

    Args:
        processor: the processor that does the work.
    """

    def __init__(self, processor):
        self.processor = processor

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None,
                 disparity=None, coc=None, generator=None, **kwargs):
        return self.processor(attn, hidden_states, encoder_hidden_states=encoder_hidden_states,
                              attention_mask=attention_mask, temb=temb, **kwargs)


def install_pisa(unet, processor: PISAProcessor | None = None, layers=DEFAULT_LAYERS) -> list[str]:
    """Put ``processor`` on the self-attention layers named by ``layers``; every other attention layer keeps
    its processor, wrapped to ignore the conditioning. Installing again replaces the previous choice.

    Args:
        unet: a diffusers ``UNet2DConditionModel``.
        processor: the PISA processor, shared by the layers (default :meth:`PISAProcessor.released_inference`).
        layers: module names or name prefixes; under each, the self-attention layers are taken.

    Returns:
        The names of the layers that run PISA.

    Raises:
        InputError: an entry of ``layers`` names no self-attention layer.
    """
    from diffusers.models.attention_processor import Attention, AttnProcessor2_0

    processor = processor if processor is not None else PISAProcessor.released_inference()
    modules = {name: m for name, m in unet.named_modules() if isinstance(m, Attention)}
    chosen: list[str] = []
    for entry in ([layers] if isinstance(layers, str) else list(layers)):
        hits = [n for n, m in modules.items() if (n == entry or n.startswith(entry + ".")) and not m.is_cross_attention]
        if not hits:
            selfs = [n for n, m in modules.items() if not m.is_cross_attention]
            raise InputError("layers", expected="names or prefixes of self-attention layers of the UNet", got=entry,
                             fix=f"e.g. layers={DEFAULT_LAYERS!r}; this UNet's: {', '.join(selfs[:6])}"
                                 f"{', ...' if len(selfs) > 6 else ''}")
        chosen += [n for n in hits if n not in chosen]
    for name, module in modules.items():
        current = module.processor
        if isinstance(current, IgnoresBokehInputs):
            current = current.processor
        elif isinstance(current, PISAProcessor):
            current = AttnProcessor2_0()
        module.set_processor(processor if name in chosen else IgnoresBokehInputs(current))
    return chosen
