"""The settings of a demo site: what to generate and which faults to plant.

Takes nothing; produces :class:`SiteConfig`, a frozen dataclass read by the site
(:mod:`webvid.demo.site`), its planted faults (:mod:`webvid.demo.faults`) and the demo pipeline,
and :func:`site_catalog`, the catalogue such a site serves (with the loop's planted noise).
It lives apart from the site so that the faults can read it without importing the site.
"""

from __future__ import annotations

from dataclasses import dataclass

from webvid.synth.catalog import Catalog, build_catalog
from webvid.synth.media import MediaParams
from webvid.synth.noise import NoiseConfig, plant_noise


@dataclass(frozen=True)
class SiteConfig:
    """Everything that shapes a demo site; the same config always serves the same site."""

    seed: int = 0
    n_clips: int = 48
    n_images: int = 48
    appearances: int | None = None  # clip appearance combinations used (None: all 84)
    page_size: int = 12
    faults: bool = True
    #: with faults: one clip per opt-out signal and answer (webvid.synth.signals); the demo
    #: pipeline turns it on, ``webvid demo-site --signals`` too
    signals: bool = False
    crawl_delay_s: float | None = None
    cache_dir: str | None = None  # None: webvid.synth.media.default_cache_dir()
    width: int = 160
    height: int = 120
    fps: int = 12
    clip_seconds: float = 3.0
    retry_after_s: int = 1  # Retry-After of the planted 429 / first 503
    burst_503: int = 2  # how many 503s the 503-fault clip answers first
    slow_body_s: float = 1.5  # how long the slow-body clip takes to send
    chunk_bytes: int = 64 * 1024
    #: swapped captions and re-renders for the model-in-the-loop demo (webvid.synth.noise);
    #: None (the default, and ``webvid demo``): none planted
    noise: NoiseConfig | None = None

    def __post_init__(self) -> None:
        if self.page_size < 1:
            raise ValueError("page_size must be >= 1")
        if self.n_clips < 0 or self.n_images < 0:
            raise ValueError("n_clips and n_images must be >= 0")

    def media_params(self) -> MediaParams:
        return MediaParams(
            width=self.width, height=self.height, fps=self.fps, clip_seconds=self.clip_seconds
        )


def site_catalog(config: SiteConfig) -> Catalog:
    """The catalogue a site of ``config`` serves (before opt-out signal probes are added)."""
    catalog = build_catalog(
        config.seed,
        config.n_clips,
        config.n_images,
        faults=config.faults,
        appearances=config.appearances,
    )
    return plant_noise(catalog, config.noise) if config.noise is not None else catalog
