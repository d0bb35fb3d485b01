"""Politeness as shipped for the tests that attack the crawler over loopback.

``strict(**kw)``: the shipped defaults (no ``--allow-private``) except that 127.0.0.1 stands in
for a public host (the one allow-listed address) and the rate limits are high enough not to
slow a test; every other private or loopback address (127.0.0.2, the "secret" servers) stays
forbidden. Keyword arguments override any field.
"""

from __future__ import annotations

from webvid.crawl.config import PoliteConfig


def strict(**kw: object) -> PoliteConfig:
    base: dict[str, object] = dict(
        allow_private=False,
        private_allowlist=("127.0.0.1/32",),
        per_host_rps=1000.0,
        per_host_burst=100,
        per_host_concurrency=8,
    )
    base.update(kw)
    return PoliteConfig(**base)  # type: ignore[arg-type]
