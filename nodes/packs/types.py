"""The socket types of the diffusion domain, with their canvas colours (ComfyUI's palette)."""

from sigmagraph.engine import SocketType

SOCKET_TYPES = [
    SocketType(name="MODEL", color="#b39ddb", description="a diffusion model (network + parametrization)"),
    SocketType(name="CLIP", color="#ffd500", description="a text encoder with its tokenizer"),
    SocketType(name="VAE", color="#ff6e6e", description="a latent autoencoder"),
    SocketType(name="CONDITIONING", color="#ffa931", description="[[embedding, options], ...]"),
    SocketType(name="LATENT", color="#ff9cf9", description="{'samples': [B, C, H/8, W/8], ...}, unscaled"),
    SocketType(name="IMAGE", color="#64b5f6", description="[B, H, W, C] floats in 0..1"),
    SocketType(name="MASK", color="#81c784", description="[B, H, W] floats in 0..1"),
    SocketType(name="SIGMAS", color="#cddc39", description="noise levels, steps + 1 values ending in 0"),
    SocketType(name="SAMPLER", color="#ecb4b4", description="a sampler function with its parameters"),
    SocketType(name="NOISE", color="#b0b0b0", description="a seeded initial-noise generator"),
    SocketType(name="GUIDER", color="#66ffff", description="a model with its conditioning and guidance"),
    # Widget values that nodes also output (primitives, sizes, text), linked to inputs of the same kind.
    SocketType(name="INT", description="an integer"),
    SocketType(name="FLOAT", description="a number"),
    SocketType(name="STRING", description="text"),
    SocketType(name="BOOLEAN", description="true or false"),
]

MAX_RESOLUTION = 16384  # the largest image side a size widget accepts (ComfyUI's nodes.MAX_RESOLUTION)
