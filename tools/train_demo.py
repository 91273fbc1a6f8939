"""Trains the demo model from scratch on CPU and writes its single-file checkpoint.

    python tools/train_demo.py          # ~50 min on 2 idle cores; writes nodes/demo/sigmagraph-demo.safetensors
    python tools/train_demo.py --images 512 --vae-steps 50 --vae-object-steps 50 --unet-steps 50 --out /tmp/quick.safetensors

Stages, all deterministic from --seed (each stage draws from its own generator, seed + stage, so
resuming with --vae-from gives the same file as a full run on the same torch build and threads):

1. Render --images scenes (nodes/demo/scenes.py). 1a: train the KL autoencoder on them — L1 on
   pixels and on their horizontal and vertical differences (sharp edges without a perceptual or
   adversarial loss), plus a light KL term as in SD's autoencoder. 1b: continue with object
   pixels weighted OBJECT_WEIGHT + 1 times in the L1, so the small objects come out sharp and in
   the right colour rather than as blurred blobs.
2. Normalise the latent space (after 1a, and again after 1b): each latent channel's mean and
   standard deviation over the data are folded into quant_conv and post_quant_conv, an exact
   reparametrisation after which latents have zero mean and unit variance — so the family
   declares scale factor 1.
3. Train the text encoder and the UNet together on the latents, v-prediction on SD's discrete
   1000-step schedule (timesteps uniform), with 10% of captions replaced by the empty prompt so
   classifier-free guidance has an unconditional model to push against. The saved weights are an
   exponential moving average of the UNet's and text encoder's.

Afterwards, token-table rows of tokens no caption uses are zeroed (unknown words then add only
their position), a least-squares latent -> RGB map is fitted for previews (paste it into
families.DEMO_RGB_FACTORS / DEMO_RGB_BIAS; a test checks they agree), and everything is written
as fp16 with the configuration and the training record in the metadata.
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from sigmagraph.nodes.demo.checkpoint import DEMO_CHECKPOINT, SCHEDULE, demo_config, save_demo
from sigmagraph.nodes.demo.scenes import COLOURS, dataset, palette_names, scene_at
from sigmagraph.nodes.models.clip import CLIPTextModel
from sigmagraph.nodes.models.families import DEMO_TEXT_ENCODER, DEMO_TEXT_SETTINGS, DEMO_UNET, DEMO_VAE
from sigmagraph.nodes.models.tokenizer import CLIPTokenizer
from sigmagraph.nodes.models.unet import UNetModel
from sigmagraph.nodes.models.vae import AutoencoderKL, pixels_from_image
from sigmagraph.nodes.sampling.model_sampling import discrete_model_sampling

CAPTION_DROPOUT = 0.1
KL_WEIGHT = 1e-6  # per latent element, relative to per-pixel L1 (SD's autoencoder uses 1e-6 on sums)
EMA_DECAY = 0.999
OBJECT_WEIGHT = 4.0  # stage 1b: objects cover ~10% of a picture; weighted, they get ~30% of the L1
POSTERIOR_LOGVAR_INIT = -6.0


def log(message: str, start: float) -> None:
    print(f"[{time.perf_counter() - start:7.1f} s] {message}", flush=True)


def cosine_lr(step: int, steps: int, peak: float, warmup: int) -> float:
    """Linear warm-up to `peak`, then cosine decay to zero."""
    if step < warmup:
        return peak * (step + 1) / warmup
    return 0.5 * peak * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))


def moments(vae: AutoencoderKL, pixels: Tensor) -> tuple[Tensor, Tensor]:
    """The posterior's (mean, log-variance) of pixels [B, 3, H, W]."""
    mean, logvar = vae.quant_conv(vae.encoder(pixels)).chunk(2, dim=1)
    return mean, logvar.clamp(-30.0, 20.0)


def edge_l1(a: Tensor, b: Tensor) -> Tensor:
    """L1 between the horizontal and vertical pixel differences of two image batches."""
    return ((a.diff(dim=-1) - b.diff(dim=-1)).abs().mean() + (a.diff(dim=-2) - b.diff(dim=-2)).abs().mean())


def new_vae() -> AutoencoderKL:
    vae = AutoencoderKL(DEMO_VAE)
    with torch.no_grad():  # start with the narrow posterior a trained KL autoencoder ends with (std ~0.05)
        vae.quant_conv.bias[DEMO_VAE.embed_dim:] = POSTERIOR_LOGVAR_INIT
    return vae


def object_masks(images: np.ndarray, backgrounds: list[str]) -> Tensor:
    """Bool [N, 1, H, W]: the pixels whose nearest palette colour is not the scene's background colour."""
    masks = [palette_names(images[i:i + 500]) != np.array([COLOURS.index(b) for b in backgrounds[i:i + 500]])[:, None, None]
             for i in range(0, len(images), 500)]
    return torch.from_numpy(np.concatenate(masks))[:, None]


def train_vae(vae: AutoencoderKL, pixels: Tensor, objects: Tensor | None, steps: int, batch: int, lr: float,
              generator: torch.Generator, start: float, name: str) -> list[float]:
    """Trains in place; with `objects`, object pixels weigh OBJECT_WEIGHT + 1 times a background pixel in L1."""
    optimizer = torch.optim.Adam(vae.parameters(), lr=lr)
    losses = []
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = cosine_lr(step, steps, lr, warmup=50)
        index = torch.randint(len(pixels), (batch,), generator=generator)
        x = pixels[index]
        mean, logvar = moments(vae, x)
        z = mean + (0.5 * logvar).exp() * torch.randn(mean.shape, generator=generator)
        out = vae.decode(z)
        kl = 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).mean()
        if objects is None:
            l1 = (out - x).abs().mean()
        else:
            weight = 1.0 + OBJECT_WEIGHT * objects[index].float()
            l1 = (weight * (out - x).abs()).mean() / weight.mean()
        loss = l1 + edge_l1(out, x) + KL_WEIGHT * kl
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if step % 100 == 0 or step == steps - 1:
            log(f"{name} step {step}/{steps} loss {np.mean(losses[-100:]):.4f}", start)
    return losses


@torch.no_grad()
def encode_all(vae: AutoencoderKL, pixels: Tensor, batch: int = 256) -> tuple[Tensor, Tensor]:
    parts = [moments(vae, pixels[i:i + batch]) for i in range(0, len(pixels), batch)]
    return torch.cat([m for m, _ in parts]), torch.cat([v for _, v in parts])


@torch.no_grad()
def normalise_latents(vae: AutoencoderKL, mean: Tensor, logvar: Tensor) -> tuple[Tensor, Tensor]:
    """Folds per-channel mean m and std s into the autoencoder so latents become (z - m) / s; returns new moments.

    quant_conv's mean rows map to (row - m) / s and its log-variance rows shift by -2 log s;
    post_quant_conv sees s z' + m again, so decode(encode(x)) is unchanged.
    """
    channels = mean.shape[1]
    m = mean.mean(dim=(0, 2, 3))
    s = mean.std(dim=(0, 2, 3))
    quant, post = vae.quant_conv, vae.post_quant_conv
    quant.weight[:channels] /= s[:, None, None, None]
    quant.bias[:channels] = (quant.bias[:channels] - m) / s
    quant.bias[channels:] -= 2.0 * s.log()
    post.bias += (post.weight[:, :, 0, 0] * m).sum(dim=1)
    post.weight *= s[None, :, None, None]
    return (mean - m[:, None, None]) / s[:, None, None], logvar - 2.0 * s.log()[:, None, None]


def token_ids(captions: list[str]) -> Tensor:
    """One 77-token window per caption, padded as the demo family reads prompts."""
    tokenizer = CLIPTokenizer(DEMO_TEXT_SETTINGS.pad_token)
    unique = sorted(set(captions))
    table = {caption: tokenizer.tokenize_with_weights(caption).ids[0] for caption in unique}
    return torch.tensor([table[caption] for caption in captions], dtype=torch.long)


def zero_init_outputs(unet: UNetModel) -> None:
    """Zero the UNet's final convolution, so training starts from a network that predicts v = 0."""
    final = unet.out[-1]
    nn.init.zeros_(final.weight)
    nn.init.zeros_(final.bias)


def train_unet(latent_mean: Tensor, latent_logvar: Tensor, ids: Tensor, empty_ids: Tensor, steps: int, batch: int,
               lr: float, generator: torch.Generator, start: float) -> tuple[UNetModel, CLIPTextModel, list[float]]:
    unet, text_encoder = UNetModel(DEMO_UNET), CLIPTextModel(DEMO_TEXT_ENCODER)
    zero_init_outputs(unet)
    ema_unet, ema_text = copy.deepcopy(unet).eval(), copy.deepcopy(text_encoder).eval()
    parameters = list(unet.parameters()) + list(text_encoder.parameters())
    ema_parameters = list(ema_unet.parameters()) + list(ema_text.parameters())
    optimizer = torch.optim.AdamW(parameters, lr=lr, weight_decay=0.0)
    sampling = discrete_model_sampling("v_prediction", SCHEDULE["beta_schedule"], SCHEDULE["linear_start"],
                                       SCHEDULE["linear_end"], SCHEDULE["timesteps"])
    table = sampling.sigmas
    settings = DEMO_TEXT_SETTINGS
    losses = []
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = cosine_lr(step, steps, lr, warmup=200)
        index = torch.randint(len(latent_mean), (batch,), generator=generator)
        std = (0.5 * latent_logvar[index]).exp()
        x0 = latent_mean[index] + std * torch.randn(std.shape, generator=generator)
        drop = torch.rand(batch, generator=generator) < CAPTION_DROPOUT
        tokens = torch.where(drop[:, None], empty_ids, ids[index])
        timestep = torch.randint(len(table), (batch,), generator=generator)
        sigma = table[timestep][:, None, None, None]
        x = x0 + sigma * torch.randn(x0.shape, generator=generator)
        c_skip, c_out, c_in = sampling.scalings(sigma)
        target = (x0 - c_skip * x) / c_out
        context = text_encoder(tokens, settings.layer, settings.norm_hidden).hidden
        loss = F.mse_loss(unet(x * c_in, timestep.float(), context), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        with torch.no_grad():
            torch._foreach_lerp_(ema_parameters, parameters, 1.0 - EMA_DECAY)
        losses.append(loss.item())
        if step % 200 == 0 or step == steps - 1:
            log(f"unet step {step}/{steps} loss {np.mean(losses[-200:]):.4f}", start)
    return ema_unet, ema_text, losses


@torch.no_grad()
def zero_unused_tokens(text_encoder: CLIPTextModel, ids: Tensor, empty_ids: Tensor) -> int:
    """Zeroes the token-table rows no training prompt uses; returns how many rows stay."""
    table = text_encoder.text_model.embeddings.token_embedding.weight
    used = torch.zeros(len(table), dtype=torch.bool)
    used[ids.unique()] = True
    used[empty_ids.unique()] = True
    table[~used] = 0.0
    return int(used.sum())


@torch.no_grad()
def fit_latent_rgb(latent_mean: Tensor, pixels: Tensor) -> tuple[list[list[float]], list[float]]:
    """Least-squares rgb (in [-1, 1], pooled to the latent grid) = latent @ factors + bias."""
    rgb = F.avg_pool2d(pixels, DEMO_VAE.downscale).movedim(1, -1).reshape(-1, 3).double()
    latent = latent_mean.movedim(1, -1).reshape(-1, latent_mean.shape[1]).double()
    design = torch.cat([latent, torch.ones(len(latent), 1, dtype=torch.float64)], dim=1)
    solution = torch.linalg.lstsq(design, rgb).solution
    return ([[round(float(v), 4) for v in row] for row in solution[:-1]],
            [round(float(v), 4) for v in solution[-1]])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=Path, default=DEMO_CHECKPOINT, help="checkpoint to write")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--images", type=int, default=20000, help="scenes rendered for training")
    parser.add_argument("--vae-steps", type=int, default=3000)
    parser.add_argument("--vae-batch", type=int, default=16)
    parser.add_argument("--vae-object-steps", type=int, default=1500)
    parser.add_argument("--vae-lr", type=float, default=1e-4)
    parser.add_argument("--unet-steps", type=int, default=6000)
    parser.add_argument("--unet-batch", type=int, default=64)
    parser.add_argument("--unet-lr", type=float, default=3e-4)
    parser.add_argument("--work-dir", type=Path, default=Path("build/demo-training"),
                        help="where stage 1a leaves its autoencoder (vae-stage1.safetensors)")
    parser.add_argument("--vae-from", type=Path, help="skip stage 1a: reuse the vae-stage1.safetensors a run left")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch CPU threads")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    start = time.perf_counter()

    images, captions = dataset(args.seed, args.images)
    pixels = pixels_from_image(torch.from_numpy(images).float() / 255.0).contiguous()
    log(f"rendered {len(images)} scenes ({len(set(captions))} distinct captions)", start)

    stage_1 = args.work_dir / "vae-stage1.safetensors"
    if args.vae_from:
        vae, vae_losses = AutoencoderKL(DEMO_VAE), []
        vae.load_state_dict(load_file(str(args.vae_from)))
    else:
        vae = new_vae()
        vae_losses = train_vae(vae, pixels, None, args.vae_steps, args.vae_batch, args.vae_lr,
                               torch.Generator().manual_seed(args.seed), start, "vae 1a")
        normalise_latents(vae, *encode_all(vae.eval(), pixels))
        args.work_dir.mkdir(parents=True, exist_ok=True)
        save_file(vae.state_dict(), str(stage_1))
    objects = object_masks(images, [scene_at(args.seed, i).background for i in range(args.images)])
    vae_losses += train_vae(vae.train(), pixels, objects, args.vae_object_steps, args.vae_batch, args.vae_lr,
                            torch.Generator().manual_seed(args.seed + 1), start, "vae 1b (objects weighted)")
    latent_mean, latent_logvar = normalise_latents(vae.eval(), *encode_all(vae.eval(), pixels))
    for parameter in vae.parameters():
        parameter.requires_grad_(False)
    with torch.no_grad():
        reconstruction = torch.cat([vae.decode(latent_mean[i:i + 256]) for i in range(0, 512, 256)])
    vae_l1 = float((reconstruction - pixels[:len(reconstruction)]).abs().mean())
    log(f"latents normalised; reconstruction L1 {vae_l1:.4f} (pixels in [-1, 1])", start)

    ids = token_ids(captions)
    empty_ids = token_ids([""])
    unet, text_encoder, unet_losses = train_unet(latent_mean, latent_logvar, ids, empty_ids, args.unet_steps,
                                                 args.unet_batch, args.unet_lr,
                                                 torch.Generator().manual_seed(args.seed + 2), start)
    kept = zero_unused_tokens(text_encoder, ids, empty_ids)
    factors, bias = fit_latent_rgb(latent_mean, pixels)
    wall = time.perf_counter() - start
    training = {
        "seed": args.seed, "images": args.images, "threads": args.threads, "torch": torch.__version__,
        "vae_steps": args.vae_steps, "vae_object_steps": args.vae_object_steps, "vae_batch": args.vae_batch, "vae_lr": args.vae_lr,
        "unet_steps": args.unet_steps, "unet_batch": args.unet_batch, "unet_lr": args.unet_lr,
        "caption_dropout": CAPTION_DROPOUT, "ema_decay": EMA_DECAY,
        "vae_final_loss": round(float(np.mean(vae_losses[-100:])), 5), "vae_reconstruction_l1": round(vae_l1, 5),
        "unet_final_loss": round(float(np.mean(unet_losses[-200:])), 5), "token_rows_kept": kept,
        "wall_seconds": round(wall, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_demo(args.out, unet, vae, text_encoder, demo_config(factors, bias, training))
    log(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB); latent rgb factors {factors} bias {bias}", start)


if __name__ == "__main__":
    main()
