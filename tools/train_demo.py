"""Trains a demo model from scratch on CPU and writes its single-file checkpoint.

    python tools/train_demo.py --family flow   # ~85 min on 2 idle cores; writes nodes/demo/sigmagraph-demo-flow.safetensors
    python tools/train_demo.py --family sd     # ~50 min; writes nodes/demo/sigmagraph-demo.safetensors
    python tools/train_demo.py --family flow --images 512 --vae-steps 50 --vae-object-steps 50 --network-steps 50 --out /tmp/quick.safetensors

Two families share the data and the autoencoder's training: `sd` (SD 1.x's UNet, 4-channel
latents, v-prediction on SD's discrete schedule) and `flow` (SD3's MMDiT, 16-channel latents,
rectified flow). Stages, all deterministic from --seed (each stage draws from its own generator,
seed + stage, so resuming with --vae-from gives the same file as a full run on the same torch
build and threads):

1. Render --images scenes (nodes/demo/scenes.py). 1a: train the KL autoencoder on them — L1 on
   pixels and on their horizontal and vertical differences (sharp edges without a perceptual or
   adversarial loss), plus a light KL term as in SD's autoencoder. 1b: continue with object
   pixels weighted OBJECT_WEIGHT + 1 times in the L1, so the small objects come out sharp and in
   the right colour rather than as blurred blobs. The flow demo's autoencoder weighs objects from
   the first step, adds the squared error to the L1 (of pixels and of differences, the latter
   weighted too) and clips gradients: with L1 alone its first thousand steps drew backgrounds
   without any object (a region's L1-optimal colour is its median, the background's).
2. Normalise the latent space (after 1a, and again after 1b): each latent channel's mean and
   standard deviation over the data are folded into quant_conv and post_quant_conv, an exact
   reparametrisation after which latents have zero mean and unit variance — so the family
   declares scale factor 1.
3. Train the text encoder and the diffusion network together on the latents, with 10% of
   captions replaced by the empty prompt so classifier-free guidance has an unconditional model
   to push against. `sd`: the UNet predicts v on SD's discrete 1000-step schedule, timesteps
   uniform. `flow`: the MMDiT predicts the velocity noise - x0 at x_t = (1 - t) x0 + t noise, t
   drawn logit-normal (SD3's lognorm(0, 1)), its adaLN modulations and output zero at the start
   (DiT's adaLN-Zero). The saved weights are an exponential moving average of the networks'.

Afterwards, token-table rows of tokens no caption uses are zeroed (unknown words then add only
their position), a least-squares latent -> RGB map is fitted for previews (paste it into the
family's *_RGB_FACTORS / *_RGB_BIAS in nodes/models/families.py; a test checks they agree), and
everything is written as fp16 with the configuration and the training record in the metadata.
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

from sigmagraph.nodes.demo.checkpoint import DEMO_MODELS, SCHEDULE, DemoModel, demo_config, save_demo
from sigmagraph.nodes.demo.scenes import COLOURS, dataset, palette_names, scene_at
from sigmagraph.nodes.models.clip import CLIPTextModel, TextEncoderSettings
from sigmagraph.nodes.models.families import DEMO_FLOW, DEMO_TEXT_ENCODER
from sigmagraph.nodes.models.mmdit import MMDiT, sincos_grid
from sigmagraph.nodes.models.tokenizer import CLIPTokenizer
from sigmagraph.nodes.models.unet import UNetModel
from sigmagraph.nodes.models.vae import AutoencoderKL, VAEConfig, pixels_from_image
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


def weighted_error(error: Tensor, weight: Tensor | None, sharp: bool) -> Tensor:
    """Mean |error| (plus error² when sharp), each pixel weighted by `weight` when given."""
    per_pixel = error.abs() + error.pow(2) if sharp else error.abs()
    return per_pixel.mean() if weight is None else (weight * per_pixel).mean() / weight.mean()


def reconstruction_loss(out: Tensor, x: Tensor, weight: Tensor | None, sharp: bool) -> Tensor:
    """Error on the pixels plus error on their horizontal and vertical differences (the edges).

    Plain (the SD demo): L1, the pixels weighted, the edges not. Sharp (the flow demo): L1 + squared
    error, edges weighted like the pixels on either side — the squared term pulls in the large
    misses (small objects) first, where L1 alone settles on the background's colour, its median.
    """
    edges = []
    for dim in (-1, -2):
        size = out.shape[dim] - 1
        edge_weight = (torch.maximum(weight.narrow(dim, 1, size), weight.narrow(dim, 0, size))
                       if sharp and weight is not None else None)
        edges.append(weighted_error(out.diff(dim=dim) - x.diff(dim=dim), edge_weight, sharp))
    return weighted_error(out - x, weight, sharp) + (edges[0] + edges[1])


def new_vae(config: VAEConfig) -> AutoencoderKL:
    vae = AutoencoderKL(config)
    with torch.no_grad():  # start with the narrow posterior a trained KL autoencoder ends with (std ~0.05)
        vae.quant_conv.bias[config.embed_dim:] = POSTERIOR_LOGVAR_INIT
    return vae


def object_masks(images: np.ndarray, backgrounds: list[str]) -> Tensor:
    """Bool [N, 1, H, W]: the pixels whose nearest palette colour is not the scene's background colour."""
    masks = [palette_names(images[i:i + 500]) != np.array([COLOURS.index(b) for b in backgrounds[i:i + 500]])[:, None, None]
             for i in range(0, len(images), 500)]
    return torch.from_numpy(np.concatenate(masks))[:, None]


def train_vae(vae: AutoencoderKL, pixels: Tensor, objects: Tensor | None, steps: int, batch: int, lr: float,
              generator: torch.Generator, start: float, name: str, sharp: bool = False) -> list[float]:
    """Trains in place; with `objects`, object pixels weigh OBJECT_WEIGHT + 1 times a background pixel.

    `sharp` is the flow demo's recipe: the sharp reconstruction_loss and gradients clipped to norm 1.
    """
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
        weight = None if objects is None else 1.0 + OBJECT_WEIGHT * objects[index].float()
        loss = reconstruction_loss(out, x, weight, sharp) + KL_WEIGHT * kl
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if sharp:
            torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
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


def token_ids(captions: list[str], settings: TextEncoderSettings) -> Tensor:
    """One token window per caption, padded as the family reads prompts."""
    tokenizer = CLIPTokenizer(settings.pad_token, settings.min_length)
    unique = sorted(set(captions))
    table = {caption: tokenizer.tokenize_with_weights(caption).ids[0] for caption in unique}
    return torch.tensor([table[caption] for caption in captions], dtype=torch.long)


def zero_init_outputs(unet: UNetModel) -> None:
    """Zero the UNet's final convolution, so training starts from a network that predicts v = 0."""
    final = unet.out[-1]
    nn.init.zeros_(final.weight)
    nn.init.zeros_(final.bias)


def init_mmdit(mmdit: MMDiT) -> None:
    """adaLN-Zero (DiT): every modulation and the output start at zero, so each block starts as the identity
    and the network predicts velocity 0; the positional grid is the fixed sin-cos one SD3's files hold."""
    config = mmdit.config
    with torch.no_grad():
        for name, module in mmdit.named_modules():
            if name.endswith("adaLN_modulation"):
                nn.init.zeros_(module[-1].weight)
                nn.init.zeros_(module[-1].bias)
        nn.init.zeros_(mmdit.final_layer.linear.weight)
        nn.init.zeros_(mmdit.final_layer.linear.bias)
        mmdit.pos_embed.copy_(sincos_grid(config.hidden_size, config.pos_embed_max_size)[None])


def unet_loss(unet: nn.Module, x0: Tensor, context: Tensor, pooled: Tensor, generator: torch.Generator) -> Tensor:
    """SD's v-prediction loss on its discrete schedule, timesteps uniform."""
    sampling = discrete_model_sampling("v_prediction", SCHEDULE["beta_schedule"], SCHEDULE["linear_start"],
                                       SCHEDULE["linear_end"], SCHEDULE["timesteps"])
    timestep = torch.randint(len(sampling.sigmas), (len(x0),), generator=generator)
    sigma = sampling.sigmas[timestep][:, None, None, None]
    x = x0 + sigma * torch.randn(x0.shape, generator=generator)
    c_skip, c_out, c_in = sampling.scalings(sigma)
    return F.mse_loss(unet(x * c_in, timestep.float(), context), (x0 - c_skip * x) / c_out)


def flow_loss(mmdit: nn.Module, x0: Tensor, context: Tensor, pooled: Tensor, generator: torch.Generator) -> Tensor:
    """Rectified flow (SD3): velocity noise - x0 at x_t = (1 - t) x0 + t noise, t logit-normal(0, 1)."""
    t = torch.sigmoid(torch.randn(len(x0), generator=generator))
    noise = torch.randn(x0.shape, generator=generator)
    x = (1.0 - t[:, None, None, None]) * x0 + t[:, None, None, None] * noise
    return F.mse_loss(mmdit(x, t * DEMO_FLOW.flow.multiplier, context, pooled), noise - x0)


def train_network(model: DemoModel, latent_mean: Tensor, latent_logvar: Tensor, ids: Tensor, empty_ids: Tensor,
                  steps: int, batch: int, lr: float, generator: torch.Generator,
                  start: float) -> tuple[nn.Module, CLIPTextModel, list[float]]:
    """Trains the diffusion network and the text encoder together; returns their moving averages and the losses."""
    if model.family.flow is None:
        network, loss_of = UNetModel(model.family.network), unet_loss
        zero_init_outputs(network)
    else:
        network, loss_of = MMDiT(model.family.network), flow_loss
        init_mmdit(network)
    text_encoder = CLIPTextModel(DEMO_TEXT_ENCODER)
    ema_network, ema_text = copy.deepcopy(network).eval(), copy.deepcopy(text_encoder).eval()
    parameters = list(network.parameters()) + list(text_encoder.parameters())
    ema_parameters = list(ema_network.parameters()) + list(ema_text.parameters())
    optimizer = torch.optim.AdamW(parameters, lr=lr, weight_decay=0.0)
    settings = model.family.text_encoders[0].settings
    losses = []
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = cosine_lr(step, steps, lr, warmup=200)
        index = torch.randint(len(latent_mean), (batch,), generator=generator)
        std = (0.5 * latent_logvar[index]).exp()
        x0 = latent_mean[index] + std * torch.randn(std.shape, generator=generator)
        drop = torch.rand(batch, generator=generator) < CAPTION_DROPOUT
        tokens = torch.where(drop[:, None], empty_ids, ids[index])
        text = text_encoder(tokens, settings.layer, settings.norm_hidden)
        loss = loss_of(network, x0, text.hidden, text.pooled, generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        with torch.no_grad():
            torch._foreach_lerp_(ema_parameters, parameters, 1.0 - EMA_DECAY)
        losses.append(loss.item())
        if step % 200 == 0 or step == steps - 1:
            log(f"network step {step}/{steps} loss {np.mean(losses[-200:]):.4f}", start)
    return ema_network, ema_text, losses


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
    rgb = F.avg_pool2d(pixels, pixels.shape[-1] // latent_mean.shape[-1]).movedim(1, -1).reshape(-1, 3).double()
    latent = latent_mean.movedim(1, -1).reshape(-1, latent_mean.shape[1]).double()
    design = torch.cat([latent, torch.ones(len(latent), 1, dtype=torch.float64)], dim=1)
    solution = torch.linalg.lstsq(design, rgb).solution
    return ([[round(float(v), 4) for v in row] for row in solution[:-1]],
            [round(float(v), 4) for v in solution[-1]])


# Each family's defaults: the shipped files were trained with these.
DEFAULTS = {
    "sd": {"vae_steps": 3000, "vae_object_steps": 1500, "vae_lr": 1e-4, "network_steps": 6000, "network_lr": 3e-4},
    "flow": {"vae_steps": 2000, "vae_object_steps": 1000, "vae_lr": 3e-4, "network_steps": 10000, "network_lr": 3e-4},
}
# The flow demo's autoencoder weighs objects from its first step and trains with the sharp loss.
SHARP_VAE = {"sd": False, "flow": True}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--family", choices=sorted(DEMO_MODELS), default="flow", help="which demo model")
    parser.add_argument("--out", type=Path, help="checkpoint to write (default: the family's packaged file)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--images", type=int, default=20000, help="scenes rendered for training")
    parser.add_argument("--vae-steps", type=int, help="stage 1a steps (sd 3000, flow 2000)")
    parser.add_argument("--vae-batch", type=int, default=16)
    parser.add_argument("--vae-object-steps", type=int, help="stage 1b steps (sd 1500, flow 1000)")
    parser.add_argument("--vae-lr", type=float, help="autoencoder learning rate (sd 1e-4, flow 3e-4)")
    parser.add_argument("--network-steps", type=int, help="diffusion network steps (sd 6000, flow 10000)")
    parser.add_argument("--network-batch", type=int, default=64)
    parser.add_argument("--network-lr", type=float, help="diffusion network learning rate (3e-4)")
    parser.add_argument("--work-dir", type=Path, default=Path("build/demo-training"),
                        help="where stage 1a leaves its autoencoder (vae-stage1[-flow].safetensors)")
    parser.add_argument("--vae-from", type=Path, help="skip stage 1a: reuse the stage-1a autoencoder a run left")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch CPU threads")
    args = parser.parse_args(argv)
    for name, value in DEFAULTS[args.family].items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    model = DEMO_MODELS[args.family]
    out = args.out or model.path
    family = model.family

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    start = time.perf_counter()

    images, captions = dataset(args.seed, args.images)
    pixels = pixels_from_image(torch.from_numpy(images).float() / 255.0).contiguous()
    log(f"rendered {len(images)} scenes ({len(set(captions))} distinct captions)", start)

    objects = object_masks(images, [scene_at(args.seed, i).background for i in range(args.images)])
    sharp = SHARP_VAE[args.family]
    stage_1 = args.work_dir / ("vae-stage1.safetensors" if args.family == "sd"
                               else f"vae-stage1-{args.family}.safetensors")
    if args.vae_from:
        vae, vae_losses = AutoencoderKL(family.vae), []
        vae.load_state_dict(load_file(str(args.vae_from)))
    else:
        vae = new_vae(family.vae)
        vae_losses = train_vae(vae, pixels, objects if sharp else None, args.vae_steps, args.vae_batch, args.vae_lr,
                               torch.Generator().manual_seed(args.seed), start, "vae 1a", sharp)
        normalise_latents(vae, *encode_all(vae.eval(), pixels))
        args.work_dir.mkdir(parents=True, exist_ok=True)
        save_file(vae.state_dict(), str(stage_1))
    vae_losses += train_vae(vae.train(), pixels, objects, args.vae_object_steps, args.vae_batch, args.vae_lr,
                            torch.Generator().manual_seed(args.seed + 1), start, "vae 1b (objects weighted)", sharp)
    latent_mean, latent_logvar = normalise_latents(vae.eval(), *encode_all(vae.eval(), pixels))
    for parameter in vae.parameters():
        parameter.requires_grad_(False)
    with torch.no_grad():
        reconstruction = torch.cat([vae.decode(latent_mean[i:i + 256]) for i in range(0, 512, 256)])
    vae_l1 = float((reconstruction - pixels[:len(reconstruction)]).abs().mean())
    factors, bias = fit_latent_rgb(latent_mean, pixels)
    log(f"latents normalised; reconstruction L1 {vae_l1:.4f} (pixels in [-1, 1]); "
        f"latent rgb factors {factors} bias {bias}", start)

    settings = family.text_encoders[0].settings
    ids, empty_ids = token_ids(captions, settings), token_ids([""], settings)
    network, text_encoder, network_losses = train_network(model, latent_mean, latent_logvar, ids, empty_ids,
                                                          args.network_steps, args.network_batch, args.network_lr,
                                                          torch.Generator().manual_seed(args.seed + 2), start)
    kept = zero_unused_tokens(text_encoder, ids, empty_ids)
    wall = time.perf_counter() - start
    training = {
        "seed": args.seed, "images": args.images, "threads": args.threads, "torch": torch.__version__,
        "vae_steps": args.vae_steps, "vae_object_steps": args.vae_object_steps, "vae_batch": args.vae_batch, "vae_lr": args.vae_lr,
        "network_steps": args.network_steps, "network_batch": args.network_batch, "network_lr": args.network_lr,
        "caption_dropout": CAPTION_DROPOUT, "ema_decay": EMA_DECAY,
        "vae_final_loss": round(float(np.mean(vae_losses[-100:])), 5), "vae_reconstruction_l1": round(vae_l1, 5),
        "network_final_loss": round(float(np.mean(network_losses[-200:])), 5), "token_rows_kept": kept,
        "wall_seconds": round(wall, 1),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    save_demo(out, model, network, vae, text_encoder, demo_config(model, factors, bias, training))
    log(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)", start)


if __name__ == "__main__":
    main()
