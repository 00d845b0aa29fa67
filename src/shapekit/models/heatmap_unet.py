"""U-Net heatmap network: pretrained encoder, decoder up to stride 4, one heatmap per landmark.

The decoder is assembled from segmentation_models_pytorch's U-Net blocks but stops at 1/4 of the
input resolution (the garment paper's 512 -> 128 design): smp's own Unet always decodes to full
resolution, which would cost two extra high-resolution stages for no use here.
"""

from __future__ import annotations

import torch
from segmentation_models_pytorch.decoders.unet.decoder import UnetDecoderBlock
from torch import nn

from .crop_refiner import CropRefiner, RefineHead
from .encoders import Normalize, create_encoder, encoder_stem, freeze

HEATMAP_STRIDE = 4


class HeatmapUNet(nn.Module):
    def __init__(self, num_landmarks: int, encoder: str = "mobilenet_v2", encoder_weights="imagenet",
                 decoder_channels: tuple[int, int, int] = (128, 96, 64), head_bias: float = -4.0,
                 refine_crop: int | None = None, refine_head: RefineHead = "heatmap", freeze_stem: bool = False):
        super().__init__()
        self.num_landmarks = num_landmarks
        self.stride = HEATMAP_STRIDE
        self.normalize = Normalize()
        self.encoder = create_encoder(encoder, encoder_weights)
        if freeze_stem:
            freeze(encoder_stem(self.encoder, encoder))
        channels = self.encoder.out_channels  # strides 1, 2, 4, 8, 16, 32
        in_channels = channels[5]
        skips = (channels[4], channels[3], channels[2])
        blocks = []
        for skip, out in zip(skips, decoder_channels):
            blocks.append(UnetDecoderBlock(in_channels, skip, out))
            in_channels = out
        self.decoder = nn.ModuleList(blocks)
        self.head = nn.Conv2d(in_channels, num_landmarks, kernel_size=3, padding=1)
        # Start with near-empty heatmaps (sigmoid(-4) ~ 0.02): most pixels are background.
        nn.init.constant_(self.head.bias, head_bias)
        # Optional second stage on crops of the original image (see models/crop_refiner.py).
        self.refiner = (CropRefiner(num_landmarks, refine_crop, refine_head, encoder_weights, freeze_stem)
                        if refine_crop else None)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """[0, 1] RGB images (B, 3, H, W) -> heatmap logits (B, N, H/4, W/4)."""
        features = self.encoder(self.normalize(images))
        x = features[5]
        for block, skip in zip(self.decoder, (features[4], features[3], features[2])):
            x = block(x, skip.shape[-2], skip.shape[-1], skip)
        return self.head(x)

    def refine(self, crops: torch.Tensor) -> torch.Tensor:
        """Crops (B, N, 3, S, S) around the coarse landmarks -> refined positions (B, N, 2) in crop pixels."""
        return self.refiner(crops)
