"""JPEG rows in the engine: decoded on its device (nvJPEG on CUDA) into the crops a front would have sent.

From the crops on, a request whose images the engine decoded is treated like one whose front decoded them:
the same normalisation, the same batcher. Whatever goes wrong here (no torchvision, an image the decoder
refuses, device memory) is a DeviceDecodeRefused, which the front answers by decoding the request with
Pillow as it does for every other image: never a failed request.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from ..model_record import Preprocessing
from ..nvjpeg_route import device_preprocessing_reason, within_size_limits
from .base import DeviceDecodeRefused

log = logging.getLogger(__name__)


def device_crops(datas: Sequence[bytes], device: str, max_pixels: int, preprocessing: Preprocessing) -> np.ndarray:
    """uint8 crops [N, crop, crop, 3] in host memory, decoded on ``device``; raises DeviceDecodeRefused."""
    # The fronts route by these rules; checking again keeps a misbehaving front from spending device memory,
    # or from getting crops that differ from Pillow's more than measured.
    reason = device_preprocessing_reason(preprocessing)
    if reason is not None:
        raise DeviceDecodeRefused(f"this model's images are prepared with Pillow: {reason}")
    oversized = [index for index, data in enumerate(datas) if not within_size_limits(data, max_pixels, preprocessing)]
    if oversized:
        raise DeviceDecodeRefused(f"image(s) {oversized} are not JPEGs within the size limits")
    try:
        from .. import gpu_decode  # PyTorch and torchvision: only engines that decode JPEGs need them
    except ImportError as exc:
        raise DeviceDecodeRefused(f"this engine cannot decode JPEGs ({exc})") from exc
    try:
        return gpu_decode.host_crops(datas, device, preprocessing)
    except gpu_decode.UndecodedImages as exc:
        raise DeviceDecodeRefused(f"the decoder on {device} refused image(s) {exc.indices}") from exc
    except Exception as exc:  # noqa: BLE001 - out of device memory, a driver error...: the CPU path still answers
        log.warning("decoding %d JPEGs on %s failed: %s", len(datas), device, exc)
        raise DeviceDecodeRefused(f"decoding on {device} failed: {exc}") from exc
