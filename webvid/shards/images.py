"""Still images: decode, orient, resize and re-encode one image with Pillow.

Takes a source path and the recipe's image settings (Pillow reads the file first; only what it
cannot read is handed to ffprobe to say what it is instead);
produces its display size (after the EXIF orientation), a grey analysis frame for the
perceptual hash and the black/blank score, and, when asked, the output JPEG: the original
bytes when the file is already a JPEG that meets the target (``copy``), else resized so the
short side is at most S, keeping the aspect ratio (``resize``), at a fixed JPEG quality.
The pixel-count guard runs on the header, before anything is decoded.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from webvid.shards.probe import MediaError
from webvid.shards.recipe import ImageConfig
from webvid.shards.scores import chroma_grid


@dataclass(frozen=True)
class ImageResult:
    width: int
    height: int
    frames: np.ndarray  # (1, size, size) uint8 grey
    chroma: np.ndarray  # (1, 128) mean Cb, Cr per cell of an 8x8 grid
    transform: str | None  # "copy" | "resize" | None when no output was asked for
    output: Path | None  # the resized JPEG (renamed into place); None for copy or no output
    out_width: int
    out_height: int
    format: str = ""  # Pillow's format name, lower case: jpeg, png, webp, ...
    rotation: int = 0  # degrees, from the EXIF orientation


#: EXIF orientation → clockwise rotation needed for display (mirrored variants rounded)
_ROTATION = {3: 180, 4: 180, 5: 90, 6: 90, 7: 270, 8: 270}


def _open(src: Path, max_area: int) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(src)
            if img.width * img.height > max_area:
                raise MediaError("too_large", f"{img.width}x{img.height}")
            img.load()
    except MediaError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise MediaError("too_large", str(exc)) from None
    except OSError as exc:
        reason = "truncated" if "truncated" in str(exc) else "undecodable"
        raise MediaError(reason, str(exc)[:300]) from None
    return img


def process_image(
    src: Path, cfg: ImageConfig, max_area: int, analysis_size: int, out: Path | None
) -> ImageResult:
    """Decode ``src``; write the resized JPEG to ``out`` (atomically) when given and needed."""
    img = _open(src, max_area)
    fmt = img.format
    orientation = img.getexif().get(0x0112, 1)
    oriented = ImageOps.exif_transpose(img)
    rotated = oriented.size != img.size or orientation not in (1, None)
    info = {"format": (fmt or "").lower(), "rotation": _ROTATION.get(orientation, 0)}
    rgb = _to_rgb(oriented)
    width, height = rgb.size
    small = np.asarray(
        rgb.convert("YCbCr").resize((analysis_size, analysis_size), Image.Resampling.BOX)
    )
    grey = np.ascontiguousarray(small[:, :, 0])
    chroma = chroma_grid(small[:, :, 1:].transpose(2, 0, 1)[None])
    scale = min(1.0, cfg.max_short_side / min(width, height))
    out_w, out_h = max(1, round(width * scale)), max(1, round(height * scale))
    if out is None:
        return ImageResult(width, height, grey[None], chroma, None, None, out_w, out_h, **info)
    if (
        cfg.allow_copy
        and fmt == "JPEG"
        and scale == 1.0
        and not rotated
        and img.mode in ("RGB", "L")
    ):
        return ImageResult(width, height, grey[None], chroma, "copy", None, width, height, **info)
    resized = rgb if scale == 1.0 else rgb.resize((out_w, out_h), Image.Resampling.BICUBIC)
    tmp = out.with_name(f".tmp-{out.name}")
    try:
        resized.save(tmp, format="JPEG", quality=cfg.quality, optimize=False, progressive=False)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return ImageResult(width, height, grey[None], chroma, "resize", out, out_w, out_h, **info)


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode == "RGB":
        return img
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return img.convert("RGB")
