"""The 3D face-alignment cascade of Bulat & Tzimiropoulos (3DFAW 2016), sized for a CPU.

Three subnetworks, each callable on its own so the task can train them stage-wise:

- detection: a pretrained encoder (factory) made fully convolutional with a learned upsampling head
  (bilinear-initialised deconvolutions, as in the paper, with encoder skips) -> N detection logits at 1/4
  resolution, plus the stride-4 image features;
- regression: a small hourglass on sigmoid(detection maps) stacked with those features -> N Gaussian
  confidence heatmaps;
- depth: a small residual CNN on the RGB crop (average-pooled to heatmap resolution) stacked with the N
  heatmaps (3 + N channels) -> N relative depths.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .encoders import Normalize, create_encoder

STRIDE = 4


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def _bilinear_deconv(channels: int) -> nn.ConvTranspose2d:
    """x2 depthwise deconvolution initialised to bilinear upsampling (the paper's initialisation)."""
    deconv = nn.ConvTranspose2d(channels, channels, 4, stride=2, padding=1, groups=channels, bias=False)
    factor = torch.tensor([0.25, 0.75, 0.75, 0.25])
    with torch.no_grad():
        deconv.weight.copy_((factor[:, None] * factor[None, :]).expand(channels, 1, 4, 4))
    return deconv


class Residual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.body = nn.Sequential(_conv(cin, cout, stride), nn.Conv2d(cout, cout, 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(cout))
        self.skip = (nn.Identity() if cin == cout and stride == 1 else
                     nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)))

    def forward(self, x):
        return F.relu(self.body(x) + self.skip(x))


class Hourglass(nn.Module):
    """Recursive hourglass (Newell et al.): residual blocks, max-pool down, nearest up, skip at every level."""

    def __init__(self, channels: int, depth: int):
        super().__init__()
        self.skip = Residual(channels, channels)
        self.down = Residual(channels, channels)
        self.inner = Hourglass(channels, depth - 1) if depth > 1 else Residual(channels, channels)
        self.up = Residual(channels, channels)

    def forward(self, x):
        low = self.up(self.inner(self.down(F.max_pool2d(x, 2))))
        return self.skip(x) + F.interpolate(low, size=x.shape[-2:], mode="nearest")


class DetectionNet(nn.Module):
    def __init__(self, num_landmarks: int, encoder: str, encoder_weights, width: int = 64, head_bias: float = -4.0):
        super().__init__()
        self.normalize = Normalize()
        self.encoder = create_encoder(encoder, encoder_weights)
        channels = self.encoder.out_channels  # strides 1, 2, 4, 8, 16, 32
        self.reduce = nn.Sequential(nn.Conv2d(channels[5], width * 2, 1, bias=False), nn.BatchNorm2d(width * 2),
                                    nn.ReLU(inplace=True))
        self.ups = nn.ModuleList([_bilinear_deconv(width * 2), _bilinear_deconv(width), _bilinear_deconv(width)])
        self.fuse = nn.ModuleList([_conv(width * 2 + channels[4], width), _conv(width + channels[3], width),
                                   _conv(width + channels[2], width)])
        self.head = nn.Conv2d(width, num_landmarks, 3, padding=1)
        nn.init.constant_(self.head.bias, head_bias)  # near-empty maps at the start: most pixels are background
        self.out_channels = width

    def freeze_stem(self) -> None:
        """Keep the ImageNet weights of the stride-2 and stride-4 blocks: their backward pass at high
        resolution is most of a CPU training step, and low-level filters transfer as they are."""
        blocks = getattr(self.encoder, "features", None)  # MobileNetV2 (torchvision layout); others: no-op
        if blocks is not None:
            for parameter in blocks[:4].parameters():
                parameter.requires_grad_(False)

    def forward(self, images):
        features = self.encoder(self.normalize(images))
        x = self.reduce(features[5])
        for up, fuse, skip in zip(self.ups, self.fuse, (features[4], features[3], features[2])):
            x = up(x)
            x = fuse(torch.cat([x[..., :skip.shape[-2], :skip.shape[-1]], skip], 1))
        return self.head(x), x


class RegressionNet(nn.Module):
    def __init__(self, num_landmarks: int, feature_channels: int, width: int = 64, depth: int = 3):
        super().__init__()
        self.stem = _conv(num_landmarks + feature_channels, width)
        self.hourglass = Hourglass(width, depth)
        self.head = nn.Sequential(_conv(width, width), nn.Conv2d(width, num_landmarks, 1))

    def forward(self, detection_logits, features):
        x = self.stem(torch.cat([torch.sigmoid(detection_logits), features], 1))
        return self.head(self.hourglass(x))


class DepthNet(nn.Module):
    def __init__(self, num_landmarks: int, widths: tuple[int, ...] = (64, 96, 128, 160)):
        super().__init__()
        layers, cin = [], 3 + num_landmarks
        for k, width in enumerate(widths):
            layers.append(Residual(cin, width, stride=1 if k == 0 else 2))
            cin = width
        self.body = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(4)  # keep a coarse layout: where a point is matters for its depth
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(cin * 16, 256), nn.ReLU(inplace=True),
                                nn.Linear(256, num_landmarks))

    def forward(self, images, heatmaps):
        # A fixed pooling window (not adaptive to the map size) keeps the graph exportable to ONNX; the same
        # average as adaptive pooling when the crop side is a multiple of the stride, as the encoder needs.
        small = F.avg_pool2d(images, STRIDE)
        if small.shape[-2:] != heatmaps.shape[-2:]:  # crop sides that are no multiple of the stride
            small = small[..., :heatmaps.shape[-2], :heatmaps.shape[-1]]
        features = self.body(torch.cat([small, heatmaps.to(small.dtype)], 1))
        pooled = _exportable_adaptive_pool(features, 4) if torch.onnx.is_in_onnx_export() else self.pool(features)
        return self.fc(pooled)


def _exportable_adaptive_pool(x: torch.Tensor, size: int) -> torch.Tensor:
    """Adaptive average pooling written out window by window, with PyTorch's window bounds. Hand-written
    because the ONNX exporter rejects adaptive pooling whose output size does not divide the input (5 -> 4
    for 160 px crops); used only while exporting, the result is the same."""
    height, width = int(x.shape[-2]), int(x.shape[-1])

    def bounds(i: int, n: int) -> slice:
        return slice(i * n // size, -(-(i + 1) * n // size))

    rows = [torch.stack([x[..., bounds(i, height), bounds(j, width)].mean((-2, -1)) for j in range(size)], -1)
            for i in range(size)]
    return torch.stack(rows, -2)


class Face3DCascade(nn.Module):
    def __init__(self, num_landmarks: int = 68, encoder: str = "mobilenet_v2", encoder_weights="imagenet",
                 detection_width: int = 64, regression_width: int = 64, hourglass_depth: int = 3):
        super().__init__()
        self.num_landmarks = num_landmarks
        self.stride = STRIDE
        self.detection = DetectionNet(num_landmarks, encoder, encoder_weights, detection_width)
        self.regression = RegressionNet(num_landmarks, detection_width, regression_width, hourglass_depth)
        self.depth = DepthNet(num_landmarks)

    def forward(self, images):
        """[0, 1] RGB crops (B, 3, H, W) -> (regression heatmaps (B, N, H/4, W/4), depths (B, N))."""
        logits, features = self.detection(images)
        heatmaps = self.regression(logits, features)
        return heatmaps, self.depth(images, heatmaps.clamp(0, 1))
