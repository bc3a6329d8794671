"""What one 512-px BokehDiff tile costs: measured on a tiny model on this CPU, counted for the full SDXL UNet.

1. The full-size model is built on PyTorch's meta device (no memory, no weights) and run once under
   ``FlopCounterMode``: the FLOPs of the RealVisXL/SDXL UNet and VAE per tile (the fact sheet: ~1.6 TFLOP for
   the UNet).
2. A tiny model of the same shape (SDXL's block layout, PISA on ``down_blocks.1.attentions.0``'s two blocks, an
   8x VAE) renders the tile for real (encode, one UNet pass, decode): seconds and counted FLOPs. A model this
   small is bound by per-operation overhead, so its FLOP rate says little about the full size.
3. This CPU's dense rate is measured on layers of the full size (a 640-channel 3x3 convolution on 32 x 32, a
   4096 x 640 x 640 matmul), and PISA itself at the full size (10 heads of 64, (tile / 16)^2 tokens, the
   release's 5 x 7 occlusion paths): PISA's cost does not depend on the UNet's width.
4. The full-size tile on this CPU is estimated as its FLOPs over the dense rate, plus PISA's measured time;
   on a GPU, at an assumed sustained rate (--gpu-tflops).

    python bench/bokehdiff_tile.py                     # 512-px tile, 3 repeats
    python bench/bokehdiff_tile.py --tile 128 --repeats 1  # a quick check
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

SDXL_UNET = {
    "in_channels": 4, "out_channels": 4, "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D",
                                                              "CrossAttnDownBlock2D"),
    "up_block_types": ("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"), "block_out_channels": (320, 640, 1280),
    "layers_per_block": 2, "transformer_layers_per_block": (1, 2, 10), "attention_head_dim": (5, 10, 20),
    "cross_attention_dim": 2048, "use_linear_projection": True, "addition_embed_type": "text_time",
    "addition_time_embed_dim": 256, "projection_class_embeddings_input_dim": 2816,
}
SDXL_VAE = {"in_channels": 3, "out_channels": 3, "latent_channels": 4, "block_out_channels": (128, 256, 512, 512),
            "down_block_types": ("DownEncoderBlock2D",) * 4, "up_block_types": ("UpDecoderBlock2D",) * 4,
            "layers_per_block": 2}
# The same layout, about 1/10 of the width (heads of 8 instead of 64) and 1/5 of the depth in the last block.
TINY_UNET = {**SDXL_UNET, "block_out_channels": (32, 64, 128), "attention_head_dim": (4, 8, 16),
             "transformer_layers_per_block": (1, 2, 2), "cross_attention_dim": 64, "addition_time_embed_dim": 16,
             "projection_class_embeddings_input_dim": 6 * 16 + 32, "norm_num_groups": 16}
TINY_VAE = {**SDXL_VAE, "block_out_channels": (8, 16, 32, 32), "layers_per_block": 1, "norm_num_groups": 8}


def unet_inputs(config: dict, latent: int, device="cpu"):
    text = config["projection_class_embeddings_input_dim"] - 6 * config["addition_time_embed_dim"]
    g = torch.Generator().manual_seed(0)

    def rand(*shape):
        return torch.empty(shape, device=device) if device == "meta" else torch.randn(*shape, generator=g)

    added = {"text_embeds": rand(1, text), "time_ids": rand(1, 6)}
    return rand(1, 4, latent, latent), {"encoder_hidden_states": rand(1, 77, config["cross_attention_dim"]),
                                        "added_cond_kwargs": added}


def count(fn) -> float:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        fn()
    return counter.get_total_flops()


def timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        with torch.no_grad():
            fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tile", type=int, default=512, help="tile side in pixels (512: the release's)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--gpu-tflops", type=float, default=100.0,
                        help="assumed sustained GPU rate for the estimate (default 100 TFLOP/s, fp16)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from diffusers import AutoencoderKL, UNet2DConditionModel

    from lensblur.bokehdiff.pisa import PISAProcessor, install_pisa, occlusion_map, pisa_attention
    from lensblur.bokehdiff.tiles import tiles

    latent = args.tile // 8
    tokens = (args.tile // 16) ** 2
    print(f"tile {args.tile}x{args.tile} px: latent {latent}x{latent}, PISA on {tokens} tokens; "
          f"{torch.get_num_threads()} CPU thread(s)")

    # 1. The full-size model, counted on the meta device
    with torch.device("meta"):
        full_unet, full_vae = UNet2DConditionModel(**SDXL_UNET), AutoencoderKL(**SDXL_VAE)
    z, kwargs = unet_inputs(SDXL_UNET, latent, device="meta")
    pixels = torch.empty(1, 3, args.tile, args.tile, device="meta")
    unet_flops = count(lambda: full_unet(z, 499, **kwargs))
    vae_flops = count(lambda: full_vae.decode(full_vae.encode(pixels).latent_dist.mode()))
    params = sum(p.numel() for p in full_unet.parameters())
    print(f"full SDXL UNet: {params / 1e9:.4f} B parameters, {unet_flops / 1e12:.3f} TFLOP per tile "
          f"(fact sheet: ~1.6 at 512 px); VAE encode + decode of the tile's area {vae_flops / 1e12:.3f} TFLOP")

    # 2. The tiny model of the same shape, for real
    torch.manual_seed(0)
    unet, vae = UNet2DConditionModel(**TINY_UNET).eval(), AutoencoderKL(**TINY_VAE).eval()
    layers = install_pisa(unet, PISAProcessor.released_inference())
    z, kwargs = unet_inputs(TINY_UNET, latent)
    disparity = torch.rand(1, 1, 4, 4).repeat_interleave(args.tile // 4, -1).repeat_interleave(args.tile // 4, -2)
    cross = {"disparity": disparity, "coc": 30.0 * (disparity - 0.5)}
    image = torch.rand(1, 3, args.tile, args.tile) * 2 - 1

    def tile():
        latents = vae.encode(image).latent_dist.mode()
        eps = unet(latents, 499, cross_attention_kwargs={**cross, "generator": torch.Generator().manual_seed(0)},
                   **kwargs).sample
        vae.decode((latents - 0.85 * eps) / 0.527)

    tiny_params = sum(p.numel() for p in unet.parameters())
    tiny_flops = count(tile)
    timed(tile, 2)                           # warm-up: the first calls on the CPU are several times slower
    seconds = timed(tile, args.repeats)
    print(f"tiny model ({tiny_params / 1e6:.2f} M UNet parameters, PISA on {len(layers)} layers): "
          f"{seconds:.3f} s per tile, {tiny_flops / 1e9:.2f} GFLOP counted ({tiny_flops / seconds / 1e9:.1f} GFLOP/s)")

    # 3a. This CPU's dense rate on full-size layers
    conv, features = torch.nn.Conv2d(640, 640, 3, padding=1), torch.randn(1, 640, 32, 32)
    a, b = torch.randn(4096, 640), torch.randn(640, 640)
    timed(lambda: (conv(features), a @ b), 1)
    dense_s = timed(lambda: (conv(features), a @ b), args.repeats)
    rate = (2 * 640 * 640 * 9 * 32 * 32 + 2 * 4096 * 640 * 640) / dense_s
    print(f"dense rate on full-size layers: {rate / 1e9:.1f} GFLOP/s")

    # 3b. PISA at the full size: one occlusion map per tile, two layers of 10 heads of 64
    side = args.tile // 16
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 10, tokens, 64, generator=g) for _ in range(3))
    d = torch.rand(1, 1, 8, 8, generator=g).repeat_interleave(args.tile // 8, -1).repeat_interleave(args.tile // 8, -2)
    occlusion_s = timed(lambda: occlusion_map(d, (side, side), generator=torch.Generator().manual_seed(0)),
                        args.repeats)
    o = occlusion_map(d, (side, side))
    attention_s = timed(lambda: pisa_attention(q, k, v, occlusion=o), args.repeats)
    pisa_s = occlusion_s + 2 * attention_s
    pisa_mib = ((2 * 10 + 3) * tokens ** 2 * 4 + min(64 * 2**20, 35 * tokens ** 2 * 16)) / 2**20
    print(f"PISA at full size: occlusion {occlusion_s:.3f} s + 2 layers x {attention_s:.3f} s attention = "
          f"{pisa_s:.3f} s per tile; working memory ~{pisa_mib:.0f} MiB per tile")

    # 4. The estimate: the UNet and PISA run per tile, the VAE once over the image's area
    unet_s, vae_s = unet_flops / rate + pisa_s, vae_flops / rate
    n = len(tiles(2 * latent, 2 * latent, latent))
    print(f"full-size tile on this CPU: ~{unet_s + vae_s:.0f} s = UNet {unet_flops / rate:.0f} s + PISA {pisa_s:.1f} s "
          f"+ VAE {vae_s:.0f} s (at {rate / 1e9:.1f} GFLOP/s)")
    print(f"a {2 * args.tile}x{2 * args.tile} image: {n} UNet tiles + the VAE over 4 tiles' area: "
          f"~{(n * unet_s + 4 * vae_s) / 60:.1f} min on this CPU")
    gpu = args.gpu_tflops * 1e12
    print(f"on a GPU at an assumed {args.gpu_tflops:g} TFLOP/s sustained: ~{unet_flops / gpu * 1e3:.0f} ms UNet + "
          f"~{vae_flops / gpu * 1e3:.0f} ms VAE per tile (PISA's occlusion sampling is memory-bound, not in this figure)")

if __name__ == "__main__":
    main()
