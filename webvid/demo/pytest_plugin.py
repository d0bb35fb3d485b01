"""pytest fixtures serving the demo stock site on loopback.

Takes nothing. Produces the fixtures ``demo_site`` (session-scoped: one small site with every
fault planted, shared by all tests) and ``demo_site_fresh`` (per test: the same site with fresh
request counters, for tests that must see the "first request" faults — 429, 503, reset — fire).
Both yield a :class:`DemoSite`. Register with ``pytest_plugins = ["webvid.demo.pytest_plugin"]``.

Media come from the shared demo cache (``webvid.synth.media.default_cache_dir``), so only the
first session on a machine renders them (about a second).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from webvid.demo.site import SiteConfig, SiteState, start_in_thread

#: The test site: 34 clips (3 listing pages of 12) so that every clip fault fits, 16 images.
TEST_SITE_CONFIG = SiteConfig(seed=7, n_clips=34, n_images=16, page_size=12, faults=True)


@dataclass
class DemoSite:
    """A running demo site: ``url`` (base), ``truth`` (one dict per clip and image), ``config``."""

    url: str
    truth: list[dict[str, Any]]
    config: SiteConfig
    state: SiteState

    def reset(self) -> None:
        """Make every "first request" fault fire again (429, 503 burst, reset once)."""
        self.state.reset()

    def items(self, kind: str | None = None, fault: str | None = None) -> list[dict[str, Any]]:
        """Truth rows filtered by kind ("video"/"image") and fault name."""
        return [
            t
            for t in self.truth
            if (kind is None or t["kind"] == kind) and (fault is None or t["fault"] == fault)
        ]


def _start(config: SiteConfig) -> Iterator[DemoSite]:
    running = start_in_thread(config)
    try:
        yield DemoSite(running.url, running.state.catalog.truth(running.url), config, running.state)
    finally:
        running.stop()


@pytest.fixture(scope="session")
def demo_site() -> Iterator[DemoSite]:
    yield from _start(TEST_SITE_CONFIG)


@pytest.fixture()
def demo_site_fresh() -> Iterator[DemoSite]:
    yield from _start(TEST_SITE_CONFIG)
