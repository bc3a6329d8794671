"""PISA: the properties of the fact sheet's section 8 (1-15, 17, 19) on random tensors and a tiny SDXL UNet.

References are computed here independently (float64 formulas, diffusers' own attention, hand-placed scenes).
"""

from __future__ import annotations

import logging
import math

import pytest
import torch
import torch.nn.functional as F

from lensblur.bokehdiff import pisa
from lensblur.bokehdiff.pisa import (
    PISAProcessor,
    Sharpness,
    coc_log_mask,
    distance_matrix,
    install_pisa,
    occlusion_map,
    pisa_attention,
    token_grid,
)
from lensblur.errors import InputError

PISA_LAYERS = ["down_blocks.1.attentions.0.transformer_blocks.0.attn1",
               "down_blocks.1.attentions.0.transformer_blocks.1.attn1"]


def qkv(n=16, heads=2, dim=8, batch=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, heads, n, dim, generator=g) for _ in range(3)]


def weights_of(query, key, **kwargs):
    """The attention weights, read out by attending to the identity."""
    n = query.shape[-2]
    eye = torch.eye(n).expand(*query.shape[:2], n, n)
    return pisa_attention(query, key, eye, **kwargs)


def two_planes(size=32, near=0.9, far=0.1, box=(12, 20)):
    """A far plane with a near square in the middle columns (full height of rows box[0]:box[1])."""
    d = torch.full((1, 1, size, size), far)
    d[..., box[0]:box[1], box[0]:box[1]] = near
    return d


# ------------------------------------------------------------------------------------------ 1-3: normalisation
def test_columns_sum_to_one_and_rows_do_not():
    q, k, _ = qkv()
    w = weights_of(q, k)
    torch.testing.assert_close(w.sum(-2), torch.ones(1, 2, 16), rtol=0, atol=1e-6)
    assert (w.sum(-1) - 1).abs().max() > 0.1
    plain = weights_of(q, k, normalize="keys")
    torch.testing.assert_close(plain.sum(-1), torch.ones(1, 2, 16), rtol=0, atol=1e-6)
    sdpa = F.scaled_dot_product_attention(q, k, torch.eye(16).expand(1, 2, 16, 16))
    torch.testing.assert_close(plain, sdpa, rtol=0, atol=1e-6)


def test_every_source_splats_all_of_its_value():
    q, k, v = qkv()
    out = pisa_attention(q, k, v)
    torch.testing.assert_close(out.sum(-2), v.sum(-2), rtol=0, atol=1e-5)


def test_large_logits_match_a_float64_reference_without_max_subtraction():
    q, k, v = qkv(n=64)
    q = q * 100.0
    grid = (8, 8)
    radius = torch.rand(1, 64, generator=torch.Generator().manual_seed(1)) * 40
    distance = distance_matrix(grid, (32, 32))
    log_mask = coc_log_mask(radius, distance, math.log(1e7))
    out = pisa_attention(q, k, v, log_mask=log_mask)
    assert torch.isfinite(out).all()
    logits = q.double() @ k.double().transpose(-1, -2) / math.sqrt(8)
    assert logits.abs().max() > 200                      # exp would overflow float32
    c = torch.sigmoid(math.log(1e7) * (radius.double()[:, None, None, :] - distance.double()))
    e = torch.exp(logits) * c
    expected = (e / e.sum(-2, keepdim=True)) @ v.double()
    torch.testing.assert_close(out.double(), expected, rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------------------------------ 4-6: the CoC
def test_no_weight_outside_the_coc_at_high_sharpness():
    q, k, _v = qkv(n=64)
    radius = torch.rand(1, 64, generator=torch.Generator().manual_seed(2)) * 30
    distance = distance_matrix((8, 8), (32, 32))
    w = weights_of(q, k, log_mask=coc_log_mask(radius, distance, math.log(1e7)))
    outside = (distance[None, None] > radius[:, None, None, :] + 1.5).expand_as(w)
    assert outside.sum() > 1000
    assert w[outside].max() < 1e-6
    torch.testing.assert_close(w.sum(-2), torch.ones(1, 2, 64), rtol=0, atol=1e-5)


def test_the_support_of_a_source_is_a_disk_that_grows_with_its_radius():
    n = 9
    distance = distance_matrix((n, n), (36, 36))
    centre = (n * n) // 2
    sizes = []
    for c in (0.0, 8.0, 15.0, 30.0):
        radius = torch.full((1, n * n), c)
        inside = coc_log_mask(radius, distance, math.log(1e7))[0, 0, :, centre].exp() > 0.5
        yy, xx = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
        tokens = ((yy - n // 2) ** 2 + (xx - n // 2) ** 2).float().sqrt().flatten()
        assert torch.equal(inside, tokens < c / 51.2 * (n - 1))  # radius c / 51.2 * (n - 1) tokens
        sizes.append(int(inside.sum()))
    assert sizes == sorted(sizes) and sizes[0] == 0 and sizes[-1] > sizes[1]


def test_in_focus_every_source_stays_where_it_is():
    n = 32
    q, k, v = qkv(n=n * n, heads=2)
    distance = distance_matrix((n, n), (512, 512))
    log_mask = coc_log_mask(torch.zeros(1, n * n), distance, math.log(1e7))
    assert log_mask[0, 0, 5, 5].exp().item() == 0.5                        # C_kk = sigmoid(0)
    one_token = torch.sigmoid(torch.tensor(-math.log(1e7) * 51.2 / 31, dtype=torch.float64)).item()
    assert math.isclose(log_mask[0, 0, 5, 6].exp().item(), one_token, rel_tol=1e-3)
    assert 1e-12 < one_token < 5e-12
    w = weights_of(q[..., :64, :], k[..., :64, :], log_mask=coc_log_mask(torch.zeros(1, 64),
                                                                         distance_matrix((8, 8), (512, 512)), 16.1))
    off = w - torch.diag_embed(torch.diagonal(w, dim1=-2, dim2=-1))
    assert off.abs().max() < 1e-6
    out = pisa_attention(q, k, v, log_mask=log_mask)
    torch.testing.assert_close(out, v, rtol=0, atol=1e-5)


def test_release_and_pixel_distances_on_a_512_px_tile():
    """One CoC unit is 10 * 31/32 px under the release's 51.2 per normalised side (32 tokens of 16 px), and
    exactly 10 px when distances are measured in pixels."""
    release = distance_matrix((32, 32), (512, 512))
    pixels = distance_matrix((32, 32), (512, 512), distance="pixels")
    assert math.isclose(release[0, 1].item(), 51.2 / 31, rel_tol=1e-6)     # one token, in CoC units
    assert math.isclose(pixels[0, 1].item(), 1.6, rel_tol=1e-6)            # 16 px / 10
    assert math.isclose(16 / release[0, 1].item(), 9.6875, rel_tol=1e-6)       # px per CoC unit


# ------------------------------------------------------------------------------------------ 7-8: masks, dropout
def test_occlusion_is_applied_after_normalisation_and_broadcast_over_heads():
    q, k, _v = qkv(n=16, heads=3)
    occlusion = torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(3))
    w = weights_of(q, k)
    wo = weights_of(q, k, occlusion=occlusion)
    torch.testing.assert_close(wo, w * (1 - occlusion), rtol=0, atol=1e-7)
    assert (wo.sum(-2) <= 1 + 1e-6).all() and (wo.sum(-2) < 0.9).any()


def test_dropout_is_off_by_default_and_seeded_when_on():
    q, k, v = qkv(n=64)
    assert torch.equal(pisa_attention(q, k, v), pisa_attention(q, k, v))
    a = weights_of(q, k, dropout=0.1, generator=torch.Generator().manual_seed(4))
    b = weights_of(q, k, dropout=0.1, generator=torch.Generator().manual_seed(4))
    c = weights_of(q, k, dropout=0.1, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b) and not torch.equal(a, c)
    zeroed = (a == 0).float().mean().item()
    assert 0.08 < zeroed < 0.12
    kept = a != 0
    torch.testing.assert_close(a[kept], weights_of(q, k)[kept] / 0.9, rtol=1e-5, atol=0)


# ------------------------------------------------------------------------------------------ the backward
def reference_pisa(q, k, v, log_mask, occlusion, keep, normalize):
    """PISA written out in float64, query-major, for autograd to differentiate."""
    logits = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]) + log_mask
    weights = torch.softmax(logits, dim=-2 if normalize == "queries" else -1) * (1 - occlusion)
    return (weights * keep) @ v


@pytest.mark.parametrize("normalize", ["queries", "keys"])
def test_the_gradients_match_a_float64_reference(normalize):
    g = torch.Generator().manual_seed(11)
    q, k, v = (t.requires_grad_() for t in qkv(n=36, heads=3, batch=2, seed=2))
    radius = torch.rand(2, 36, generator=g) * 2
    log_mask = coc_log_mask(radius, distance_matrix((6, 6), (24, 24), distance="pixels"), 3.0).requires_grad_()
    occlusion = (torch.rand(2, 1, 36, 36, generator=g) * 0.5).requires_grad_()
    weights = torch.randn(2, 3, 36, 8, generator=g)
    inputs = (q, k, v, log_mask, occlusion)
    got = pisa_attention(q, k, v, log_mask=log_mask, occlusion=occlusion, normalize=normalize, dropout=0.2,
                         generator=torch.Generator().manual_seed(4))
    grads = torch.autograd.grad((got * weights).sum(), inputs)
    # The same dropout draws: the kept weights are the nonzero ones of the identity read-out.
    eye = torch.eye(36).expand(2, 3, 36, 36)
    with torch.no_grad():
        drawn = pisa_attention(q, k, eye, log_mask=log_mask, dropout=0.2, normalize=normalize,
                               generator=torch.Generator().manual_seed(4))
    keep = (drawn != 0).double() / 0.8
    inputs64 = [t.detach().double().requires_grad_() for t in inputs]
    expected = reference_pisa(*inputs64, keep, normalize)
    torch.testing.assert_close(got.double(), expected, rtol=0, atol=1e-5)
    for name, a, b in zip(["q", "k", "v", "mask", "occlusion"], grads,
                          torch.autograd.grad((expected * weights.double()).sum(), inputs64)):
        assert b.abs().max() > 0.1 and (a.double() - b).abs().max() < 1e-5 * b.abs().max(), name


def test_weights_far_below_the_largest_are_exactly_zero_not_subnormal():
    # At hardness 1e7 the mask reaches -16 per CoC unit: sources far outside their CoC get weights that
    # float32 can only hold as subnormal numbers, unless they are dropped.
    q, k, _ = qkv(n=256, heads=2)
    log_mask = coc_log_mask(torch.full((1, 256), 0.5), distance_matrix((16, 16), (160, 160)), math.log(1e7))
    w = weights_of(q, k, log_mask=log_mask)
    tiny = torch.finfo(torch.float32).tiny
    assert ((w > 0) & (w < tiny)).sum() == 0
    assert (w == 0).float().mean() > 0.5
    reference = torch.softmax(q.double() @ k.double().transpose(-1, -2) / math.sqrt(8) + log_mask.double(), dim=-2)
    assert (w.double() - reference).abs().max() < 1e-6
    torch.testing.assert_close(w.sum(-2), torch.ones(1, 2, 256), rtol=0, atol=1e-5)

# ------------------------------------------------------------------------------------------ 9-14: occlusion
def test_a_flat_scene_occludes_nothing():
    for d in (0.0, 0.3, 0.95):
        o = occlusion_map(torch.full((1, 1, 32, 32), d), (8, 8), generator=torch.Generator().manual_seed(0))
        assert o.abs().max() == 0


@pytest.mark.parametrize("convention", ["release", "paper"])
def test_no_token_occludes_itself(convention):
    tokens = torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(6)) * 0.98
    disparity = F.interpolate(tokens, size=(32, 32), mode="nearest")     # constant over each token
    o = occlusion_map(disparity, (8, 8), convention=convention, supersamples=1)
    assert torch.diagonal(o[0, 0]).abs().max() == 0


@pytest.mark.parametrize("convention", ["release", "paper"])
def test_two_planes(convention):
    """A near square (0.9) in front of a far plane (0.1), 16 x 16 tokens of 2 px: far pairs across the square
    are hidden, far pairs beside it are not, and no near source is hidden by anything."""
    disparity = two_planes(size=32, box=(12, 20))              # tokens 6..9 are near
    o = occlusion_map(disparity, (16, 16), convention=convention, generator=torch.Generator().manual_seed(0))[0, 0]
    token = lambda y, x: y * 16 + x
    assert o[token(7, 11), token(7, 0)] == 1                   # the path from (7, 0) to (7, 11) crosses the square
    assert o[token(1, 11), token(1, 0)] == 0                   # the same pair two rows above the square
    near = [token(y, x) for y in range(6, 10) for x in range(6, 10)]
    assert o[:, near].abs().max() == 0
    assert o.max() == 1 and ((o * 5) - (o * 5).round()).abs().max() < 1e-5      # multiples of 1/5


def test_disparity_one_is_no_nan_and_the_near_plane_still_occludes():
    disparity = two_planes(size=32, near=1.0, box=(12, 20))
    o = occlusion_map(disparity, (16, 16), generator=torch.Generator().manual_seed(0))[0, 0]
    assert torch.isfinite(o).all()
    assert o[7 * 16 + 11, 7 * 16 + 0] == 1


def test_the_conventions_agree_where_query_and_source_share_a_disparity():
    disparity = two_planes(size=32, near=0.7, box=(10, 22))
    kwargs = {"segments": 7, "supersamples": 3}
    release = occlusion_map(disparity, (16, 16), convention="release", generator=torch.Generator().manual_seed(9),
                            **kwargs)[0, 0]
    paper = occlusion_map(disparity, (16, 16), convention="paper", generator=torch.Generator().manual_seed(9),
                          **kwargs)[0, 0]
    d = F.interpolate(disparity, size=(16, 16), mode="bilinear", align_corners=False).flatten()
    same = d[:, None] == d[None, :]
    assert torch.equal(release[same], paper[same])
    assert not torch.equal(release[~same], paper[~same])


def test_path_zero_is_exact_and_the_jitter_is_within_half_a_token(monkeypatch):
    seen = []
    original = F.grid_sample

    def spy(inp, grid, **kwargs):
        seen.append(grid.clone())
        return original(inp, grid, **kwargs)

    monkeypatch.setattr(pisa.F, "grid_sample", spy)
    occlusion_map(two_planes(size=32), (8, 8), segments=3, supersamples=4, generator=torch.Generator().manual_seed(0))
    points = torch.cat(seen, dim=1).reshape(4, 3, -1, 64, 2)   # one chunk: (supersamples, segments, N, N, 2)
    offset = points[1:] - points[:1]
    assert offset.abs().max() <= 1 / 8 + 1e-6 and offset.abs().max() > 0.1 / 8
    seen.clear()
    occlusion_map(two_planes(size=32), (8, 8), segments=3, supersamples=1)
    torch.testing.assert_close(seen[0].reshape(1, 3, -1, 64, 2), points[:1], rtol=0, atol=0)


def test_occlusion_is_clamped_only_while_training():
    disparity = two_planes(size=32)
    grid = (8, 8)
    infer = PISAProcessor.released_inference()._visibility(disparity, grid, torch.Generator().manual_seed(0))
    train = PISAProcessor.released_training()._visibility(disparity, grid, torch.Generator().manual_seed(0))
    assert infer.min() == 0 and math.isclose(train.min().item(), 0.01, rel_tol=1e-4)


def test_chunking_does_not_change_the_occlusion():
    disparity = two_planes(size=32, near=0.6)
    whole = occlusion_map(disparity, (8, 8), supersamples=1)
    chunked = occlusion_map(disparity, (8, 8), supersamples=1, chunk_bytes=1)
    assert torch.equal(whole, chunked)


# ------------------------------------------------------------------------------------------ 15: sharpness
def test_sharpness_counts_and_resumes():
    s = Sharpness.training()
    assert s.hardness == 3 and s.clamps_occlusion
    for _ in range(5):
        s.advance()
    assert s.hardness == 8 and math.isclose(s.slope, math.log(8))
    resumed = Sharpness.training()
    resumed.load_state_dict(s.state_dict())
    assert resumed == s
    fixed = Sharpness.inference()
    fixed.advance()
    assert fixed.hardness == 1e7 and not fixed.clamps_occlusion
    with pytest.raises(InputError, match="start"):
        Sharpness(1.0)


# ------------------------------------------------------------------------------------------ 17, 19: wiring
def conditioning(size=32, batch=1, blur=8.0, focus=0.5, seed=0):
    g = torch.Generator().manual_seed(seed)
    d = F.interpolate(torch.rand(batch, 1, 4, 4, generator=g), size=(size, size), mode="bilinear")
    return {"disparity": d, "coc": blur * (d - focus)}


def unet_inputs(unet, size=32, batch=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    latent = size // 2
    kwargs = {"encoder_hidden_states": torch.randn(batch, 77, 64, generator=g),
              "added_cond_kwargs": {"text_embeds": torch.randn(batch, 32, generator=g),
                                    "time_ids": torch.tensor([[size, size, 0, 0, size, size]] * batch).float()}}
    return torch.randn(batch, 4, latent, latent, generator=g), kwargs


def test_pisa_runs_on_exactly_the_two_self_attention_layers(xl_unet):
    installed = install_pisa(xl_unet)
    assert installed == PISA_LAYERS
    processors = xl_unet.attn_processors
    pisa_layers = [k for k, p in processors.items() if isinstance(p, PISAProcessor)]
    assert pisa_layers == [f"{name}.processor" for name in PISA_LAYERS]
    assert len({id(processors[k]) for k in pisa_layers}) == 1           # one shared instance
    others = [p for k, p in processors.items() if k not in pisa_layers]
    assert others and all(isinstance(p, pisa.IgnoresBokehInputs) for p in others)
    assert "down_blocks.1.attentions.0.transformer_blocks.0.attn2.processor" in processors
    with pytest.raises(InputError, match="layers"):
        install_pisa(xl_unet, layers=["down_blocks.1.attentions.0.transformer_blocks.0.attn2"])
    with pytest.raises(InputError, match="layers"):
        install_pisa(xl_unet, layers=["mid_block.nothing"])


class Recording(PISAProcessor):
    """PISA that records the conditioning it receives."""

    received: list

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None,
                 disparity=None, coc=None, generator=None, **kwargs):
        self.received.append((disparity, coc))
        return super().__call__(attn, hidden_states, encoder_hidden_states, attention_mask, temb, disparity=disparity,
                                coc=coc, generator=generator)


def diffusers_warnings(caplog, run) -> list[str]:
    """The messages diffusers logs (its loggers do not propagate to the root) while ``run()`` runs."""
    logger = logging.getLogger("diffusers")
    logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.WARNING, logger="diffusers"), torch.no_grad():
            run()
    finally:
        logger.removeHandler(caplog.handler)
    return [r.getMessage() for r in caplog.records]


def test_the_conditioning_reaches_pisa_and_passes_the_other_layers_silently(xl_unet, caplog):
    cond = conditioning()
    latents, kwargs = unet_inputs(xl_unet)
    # the control: diffusers' own processors complain about the extra keywords
    warned = diffusers_warnings(caplog, lambda: xl_unet(latents, 499, cross_attention_kwargs=cond, **kwargs))
    assert any("not expected" in m for m in warned)
    caplog.clear()
    processor = Recording.released_training()
    processor.received = []
    install_pisa(xl_unet, processor)
    warned = diffusers_warnings(caplog, lambda: xl_unet(latents, 499, cross_attention_kwargs=cond, **kwargs))
    assert not [m for m in warned if "not expected" in m]
    assert len(processor.received) == 2
    assert all(d is cond["disparity"] and c is cond["coc"] for d, c in processor.received)
    assert processor.sharpness.hardness == 3 + 2                          # one count per PISA layer


def test_masks_off_with_key_normalisation_is_diffusers_attention(xl_unet):
    latents, kwargs = unet_inputs(xl_unet, batch=2)
    cond = conditioning(batch=2)
    with torch.no_grad():
        expected = xl_unet(latents, 499, **kwargs).sample
        install_pisa(xl_unet, PISAProcessor(normalize="keys", coc_mask=False, occlusion="off"))
        got = xl_unet(latents, 499, cross_attention_kwargs=cond, **kwargs).sample
        install_pisa(xl_unet, PISAProcessor.released_inference())
        pisa_out = xl_unet(latents, 499, cross_attention_kwargs=cond, **kwargs).sample
    assert (got - expected).abs().max() < 1e-5
    assert (pisa_out - expected).abs().max() > 1e-3


def test_the_occlusion_is_computed_once_per_forward(xl_unet, monkeypatch):
    calls = []
    original = pisa.occlusion_map
    monkeypatch.setattr(pisa, "occlusion_map", lambda *a, **k: calls.append(1) or original(*a, **k))
    install_pisa(xl_unet)
    latents, kwargs = unet_inputs(xl_unet)
    with torch.no_grad():
        xl_unet(latents, 499, cross_attention_kwargs=conditioning(), **kwargs)
        xl_unet(latents, 499, cross_attention_kwargs=conditioning(), **kwargs)
    assert len(calls) == 2


def test_pisa_needs_its_conditioning(xl_unet):
    install_pisa(xl_unet)
    latents, kwargs = unet_inputs(xl_unet)
    with pytest.raises(InputError, match="cross_attention_kwargs"):
        xl_unet(latents, 499, **kwargs)
    bad = conditioning(size=24)
    with pytest.raises(InputError, match="disparity"):
        xl_unet(latents, 499, cross_attention_kwargs=bad, **kwargs)


def test_token_grid_follows_the_halvings():
    assert token_grid(32 * 32, 512, 512) == (32, 32)
    assert token_grid(13 * 7, 200, 104) == (13, 7)            # 200 -> 100 -> 50 -> 25 -> 13; 104 -> ... -> 7
    with pytest.raises(InputError, match="disparity"):
        token_grid(100, 512, 512)


def test_processor_options_are_checked():
    with pytest.raises(InputError, match="occlusion"):
        PISAProcessor(occlusion="both")
    with pytest.raises(InputError, match="dropout"):
        PISAProcessor(dropout=1.0)
    with pytest.raises(InputError, match="segments"):
        PISAProcessor(segments=0)
