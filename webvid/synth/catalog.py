"""The demo site's catalogue: which clips and images exist, their captions and planted faults.

Takes a seed, clip and image counts and a faults switch. Produces a :class:`Catalog` — pure data,
no I/O, drawn in the colours of :mod:`webvid.synth.palette` — that the media generator
(:mod:`webvid.synth.media`) renders and the site (:mod:`webvid.demo.site`) serves, and that
``/_truth.json`` publishes with the expected crawl outcome of every item.

Balance: clip ``i`` takes appearance combination ``i // 4`` (colour x shape x background, shuffled
by the seed) and one of the four directions, so every appearance is seen moving in every
direction: direction of motion cannot be predicted from colour, shape or background, only from
several frames.

Faults (only with ``faults=True``) are spread over the items by the seed; each carries the outcome
a correct crawler and curator should reach, in the status and reason vocabulary of
:mod:`webvid.contract`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from typing import Any, Final

from webvid import contract
from webvid.synth.palette import (
    BACKGROUNDS,
    COLOURS,
    DIRECTIONS,
    MIN_LUMA_CONTRAST,
    SHAPES,
    luma,
)

#: Caption templates in stock-site style. Each states colour, shape, background and direction.
_DIR_WORDS: Final[dict[str, tuple[str, str, str]]] = {
    "left": ("left", "to the left", "leftwards"),
    "right": ("right", "to the right", "rightwards"),
    "up": ("up", "upwards", "upwards"),
    "down": ("down", "downwards", "downwards"),
}
CLIP_TEMPLATES: Final[tuple[str, ...]] = (
    "{Colour} {shape} moving {d0} over a {bg} background",
    "A {colour} {shape} drifts {d1} across a plain {bg} backdrop",
    "{Colour} {shape} on a {bg} background, moving {d0}",
    "Animation of a {colour} {shape} sliding {d1} on {bg}",
    "Simple {colour} {shape} travelling {d2} over a {bg} background",
)
IMAGE_TEMPLATES: Final[tuple[str, ...]] = (
    "{Colour} {shape} on a {bg} background",
    "A {colour} {shape} isolated on a plain {bg} backdrop",
    "Simple {colour} {shape} over a {bg} background",
    "Flat illustration of a {colour} {shape}, {bg} background",
)
BOILERPLATE: Final[tuple[str, ...]] = (
    "Stock Footage 4K - {caption} - id {id} - royalty free HD video",
    "{caption}. 4K Ultra HD stock video clip #{id}, royalty-free, no watermark",
    "Stock video footage: {caption} | HD 1080p | ID {id} | Download now",
)

# Non-English captions: (language, function building the caption).
_ES = {
    "colour": {
        "red": "rojo",
        "green": "verde",
        "blue": "azul",
        "yellow": "amarillo",
        "white": "blanco",
        "purple": "morado",
    },
    "shape": {
        "circle": "Círculo",
        "square": "Cuadrado",
        "triangle": "Triángulo",
        "diamond": "Rombo",
    },
    "dir": {
        "left": "hacia la izquierda",
        "right": "hacia la derecha",
        "up": "hacia arriba",
        "down": "hacia abajo",
    },
    "bg": {"black": "negro", "grey": "gris", "white": "blanco", "blue": "azul", "green": "verde"},
}
_FR = {
    "colour": {
        "red": "rouge",
        "green": "vert",
        "blue": "bleu",
        "yellow": "jaune",
        "white": "blanc",
        "purple": "violet",
    },
    "shape": {"circle": "Cercle", "square": "Carré", "triangle": "Triangle", "diamond": "Losange"},
    "dir": {
        "left": "vers la gauche",
        "right": "vers la droite",
        "up": "vers le haut",
        "down": "vers le bas",
    },
    "bg": {"black": "noir", "grey": "gris", "white": "blanc", "blue": "bleu", "green": "vert"},
}
_DE = {
    "colour": {
        "red": "rot",
        "green": "grün",
        "blue": "blau",
        "yellow": "gelb",
        "white": "weiß",
        "purple": "lila",
    },
    "shape": {
        "circle": ("Kreis", "er"),
        "square": ("Quadrat", "es"),
        "triangle": ("Dreieck", "es"),
        "diamond": ("Raute", "e"),
    },
    "dir": {"left": "nach links", "right": "nach rechts", "up": "nach oben", "down": "nach unten"},
    "bg": {
        "black": "schwarzem",
        "grey": "grauem",
        "white": "weißem",
        "blue": "blauem",
        "green": "grünem",
    },
}


def _foreign(lang: str, colour: str, shape: str, bg: str, direction: str | None) -> str:
    if lang == "es":
        head = f"{_ES['shape'][shape]} {_ES['colour'][colour]}"
        move = f" moviéndose {_ES['dir'][direction]}" if direction else ""
        return f"{head}{move} sobre un fondo {_ES['bg'][bg]}"
    if lang == "fr":
        head = f"{_FR['shape'][shape]} {_FR['colour'][colour]}"
        move = f" se déplaçant {_FR['dir'][direction]}" if direction else ""
        return f"{head}{move} sur un fond {_FR['bg'][bg]}"
    noun, ending = _DE["shape"][shape]
    adj = _DE["colour"][colour]
    adj = adj.capitalize() if adj == "lila" else (adj + ending).capitalize()
    move = f" bewegt sich {_DE['dir'][direction]}" if direction else ""
    return f"{adj} {noun}{move} vor {_DE['bg'][bg]} Hintergrund"


@dataclass(frozen=True)
class Expected:
    """What a correct pipeline makes of an item: crawl status/reason, then curation verdict."""

    status: str
    reason: str | None = None
    verdict: str | None = None  # None: kept by curation; else a contract.VERDICT_REASONS value


#: Clip faults in priority order (first ones are planted first when the site is small).
CLIP_FAULTS: Final[dict[str, Expected]] = {
    "robots": Expected(contract.STATUS_SKIPPED_ROBOTS, "robots_disallowed"),
    "noai": Expected(contract.STATUS_SKIPPED_OPT_OUT, "x_robots_tag"),
    "http_429": Expected(contract.STATUS_SUCCESS),
    "http_503": Expected(contract.STATUS_SUCCESS),
    "redirect_loop": Expected(contract.STATUS_FAILED_TO_DOWNLOAD, "redirect_loop"),
    "truncated": Expected(contract.STATUS_FAILED_TO_DOWNLOAD, "truncated"),
    "bad_content_type": Expected(contract.STATUS_FAILED_TO_DOWNLOAD, "bad_content_type"),
    "reset_once": Expected(contract.STATUS_SUCCESS),
    "reset_always": Expected(contract.STATUS_FAILED_TO_DOWNLOAD, "connection_error"),
    "slow_body": Expected(contract.STATUS_SUCCESS),
    "corrupt": Expected(contract.STATUS_SUCCESS, verdict="undecodable"),
    "too_short": Expected(contract.STATUS_SUCCESS, verdict="duration_too_short"),
    "still": Expected(contract.STATUS_SUCCESS, verdict="still"),
    "duplicate": Expected(contract.STATUS_SUCCESS, verdict="duplicate_exact"),
    "non_english": Expected(contract.STATUS_SUCCESS, verdict="caption_language"),
    "boilerplate": Expected(contract.STATUS_SUCCESS),  # kept; curation strips the boilerplate
    # Faults added later: planted from their own random stream (see _fault_plan), so adding
    # one does not redraw every other clip of a seed's catalogue.
    "near_duplicate": Expected(contract.STATUS_SUCCESS, verdict="duplicate_near"),
}
LATER_CLIP_FAULTS: Final[tuple[str, ...]] = ("near_duplicate",)
#: Faults of rows of the CC3M-style image table.
IMAGE_FAULTS: Final[dict[str, Expected]] = {
    "http_404": Expected(contract.STATUS_FAILED_TO_DOWNLOAD, "http_404"),
    "noai": Expected(contract.STATUS_SKIPPED_OPT_OUT, "x_robots_tag"),
    "bad_content_type": Expected(contract.STATUS_FAILED_TO_DOWNLOAD, "bad_content_type"),
    "http_429": Expected(contract.STATUS_SUCCESS),
    "non_english": Expected(contract.STATUS_SUCCESS, verdict="caption_language"),
}
MARKUPS: Final[tuple[str, ...]] = ("full", "full", "full", "jsonld", "og", "video")


@dataclass(frozen=True)
class RenderSpec:
    """Everything the media generator needs to draw one clip or image (and its cache key)."""

    colour: str
    shape: str
    background: str
    direction: str | None  # None for still images
    motion: str  # "move" | "still" | "image"
    size_frac: float  # shape size as a fraction of the frame height
    offset_frac: float  # position across the direction of motion (or x for images)
    offset2_frac: float = 0.5  # y position for images
    short: bool = False  # a clip well under one second
    corrupt: bool = False  # valid mp4 header, garbage after it
    texture: int = 0  # seed of the background's faint texture (0: plain)
    reencode: bool = False  # the same picture re-encoded smaller and worse: a near-duplicate
    # a re-render of the same scene (webvid.synth.noise; defaults leave a clip as it was):
    start: float = 0.0  # fraction of the path already travelled in the first frame
    speed: float = 1.0  # fraction of the remaining path travelled over the clip
    tint: tuple[int, int, int] = (0, 0, 0)  # added to every pixel's RGB (colour jitter)


@dataclass(frozen=True)
class Item:
    """One clip or image of the site, with its planted fault and expected outcome."""

    kind: str  # "video" | "image"
    clip_id: str
    caption: str  # as served
    clean_caption: str  # the English caption without boilerplate
    language: str
    colour: str
    shape: str
    background: str
    direction: str | None
    fault: str | None
    expected: Expected
    render: RenderSpec
    markup: str = "full"
    duplicate_of: str | None = None
    #: an opt-out signal the site sends for it, "<kind>:yes" or "<kind>:no" (webvid.synth.signals)
    signal: str | None = None
    #: planted curation noise (webvid.synth.noise): for fault "caption_swap" the clip whose
    #: caption it carries, for "rerender" the clip it re-renders
    noise_of: str | None = None

    @property
    def private(self) -> bool:
        return self.fault == "robots"

    @property
    def page_path(self) -> str:
        return f"/private/clip/{self.clip_id}" if self.private else f"/clip/{self.clip_id}"

    @property
    def media_path(self) -> str:
        return f"/cdn/{self.clip_id}.mp4" if self.kind == "video" else f"/img/{self.clip_id}.jpg"

    @property
    def thumb_path(self) -> str:
        return f"/thumb/{self.clip_id}.jpg"

    def truth(self, base_url: str = "") -> dict[str, Any]:
        """The item's entry in ``/_truth.json`` (URLs absolute when ``base_url`` is given)."""
        row: dict[str, Any] = {
            "kind": self.kind,
            "clip_id": self.clip_id,
            "caption": self.caption,
            "clean_caption": self.clean_caption,
            "language": self.language,
            "colour": self.colour,
            "shape": self.shape,
            "background": self.background,
            "direction": self.direction,
            "fault": self.fault,
            "expected_status": self.expected.status,
            "expected_reason": self.expected.reason,
            "expected_verdict": self.expected.verdict,
            "duplicate_of": self.duplicate_of,
            "signal": self.signal,
            "media_url": base_url + self.media_path,
        }
        if self.noise_of is not None:
            row["noise_of"] = self.noise_of
        if self.kind == "video":
            row.update(
                page_url=base_url + self.page_path,
                thumbnail_url=base_url + self.thumb_path,
                markup=self.markup,
            )
        return row


@dataclass(frozen=True)
class Catalog:
    seed: int
    clips: tuple[Item, ...]
    images: tuple[Item, ...]
    by_id: dict[str, Item] = field(repr=False, compare=False, default_factory=dict)
    #: extra clips that carry an opt-out signal and are never kept (webvid.synth.signals);
    #: listed after the clips, never rendered (they borrow a clip's media)
    probes: tuple[Item, ...] = ()

    def __post_init__(self) -> None:
        self.by_id.update({it.clip_id: it for it in (*self.clips, *self.probes, *self.images)})

    @property
    def listed(self) -> tuple[Item, ...]:
        """The clips the listing pages show, in order: the catalogue's, then the probes."""
        return (*self.clips, *self.probes)

    def truth(self, base_url: str = "") -> list[dict[str, Any]]:
        return [it.truth(base_url) for it in (*self.clips, *self.probes, *self.images)]


def appearance_combos() -> list[tuple[str, str, str]]:
    """Every (colour, shape, background) whose shape stands out from its background.

    The colour must differ from the background's by name and by at least
    ``MIN_LUMA_CONTRAST`` in luma, so that motion (and so direction) is visible even to a
    grey-scale motion or still-frame detector.
    """
    return [
        (c, s, b)
        for c in COLOURS
        for s in SHAPES
        for b in BACKGROUNDS
        if b != c and abs(luma(COLOURS[c]) - luma(BACKGROUNDS[b])) >= MIN_LUMA_CONTRAST
    ]


def clip_caption(template: str, colour: str, shape: str, bg: str, direction: str) -> str:
    d0, d1, d2 = _DIR_WORDS[direction]
    return template.format(
        Colour=colour.capitalize(), colour=colour, shape=shape, bg=bg, d0=d0, d1=d1, d2=d2
    )


def image_caption(template: str, colour: str, shape: str, bg: str) -> str:
    return template.format(Colour=colour.capitalize(), colour=colour, shape=shape, bg=bg)


def _fault_plan(
    rng: random.Random,
    faults: dict[str, Expected],
    n: int,
    later: tuple[str, ...] = (),
    later_rng: random.Random | None = None,
) -> list[str | None]:
    """Per-item fault names: each fault ``max(1, n // 100)`` times, at most half the items faulty.

    Faults named in ``later`` take free slots drawn from ``later_rng`` after the others, so
    the others' slots (and everything else drawn from ``rng``) stay as they were without them.
    """
    copies = max(1, n // 100)
    cap = max(0, min(n // 2, n - 2))
    # the first two items stay clean so that a duplicate always has an earlier clean twin
    wanted = [name for name in faults if name not in later for _ in range(copies)][:cap]
    slots = rng.sample(range(2, n), len(wanted))
    plan: list[str | None] = [None] * n
    for slot, name in zip(slots, wanted, strict=True):
        plan[slot] = name
    extra = [name for name in later for _ in range(copies)][: cap - len(wanted)]
    if extra:
        free = [i for i in range(2, n) if plan[i] is None]
        for slot, name in zip((later_rng or rng).sample(free, len(extra)), extra, strict=True):
            plan[slot] = name
    return plan


def _twin(clips: list[Item], cid: str, used: set[str], rng: random.Random) -> tuple[Item, str]:
    """The clean clip a duplicate copies, and the duplicate's clip id.

    Curation keeps the first of a set of duplicates in clip-id order, so the twin must sort
    before the copy: the latest clean clip with a smaller id, else the copy gets a fresh id
    above the latest clean clip's — whatever the seed, the planted copy is the one rejected.
    """
    clean = [c for c in clips if c.fault is None]
    earlier = [c for c in clean if c.clip_id < cid]
    if earlier:
        return earlier[-1], cid
    twin = clean[-1]
    while (new := str(rng.randrange(int(twin.clip_id) + 1, 10_000_000))) in used:
        pass
    used.add(new)
    return twin, new


def _unique_ids(rng: random.Random, n: int, prefix: str, low: int, high: int) -> list[str]:
    return [f"{prefix}{v}" for v in rng.sample(range(low, high), n)]


def build_catalog(
    seed: int, n_clips: int, n_images: int, *, faults: bool = True, appearances: int | None = None
) -> Catalog:
    """The deterministic catalogue of a demo site.

    ``appearances`` limits the clips to that many (colour, shape, background) combinations
    (each still seen moving in all four directions): fewer appearances mean more clips that look
    alike in one frame and differ only in motion — the negatives that teach direction.
    """
    if n_clips < 0 or n_images < 0:
        raise ValueError("clip and image counts must be >= 0")
    if appearances is not None and appearances < 1:
        raise ValueError("appearances must be >= 1")
    rng = random.Random(seed)
    combos = appearance_combos()
    rng.shuffle(combos)
    if appearances is not None:
        combos = combos[:appearances]
    clip_ids = _unique_ids(rng, n_clips, "", 1_000_000, 10_000_000)
    plan = (
        _fault_plan(rng, CLIP_FAULTS, n_clips, LATER_CLIP_FAULTS, random.Random(f"{seed}/later"))
        if faults
        else [None] * n_clips
    )
    used_ids = set(clip_ids)
    clips: list[Item] = []
    directions: list[str] = []
    direction: str | None
    for i, cid in enumerate(clip_ids):
        if i % 4 == 0:  # a fresh permutation of the four directions for every appearance
            directions = list(DIRECTIONS)
            rng.shuffle(directions)
        colour, shape, bg = combos[(i // 4) % len(combos)]
        direction = directions[i % 4]
        fault = plan[i]
        english = clip_caption(rng.choice(CLIP_TEMPLATES), colour, shape, bg, direction)
        caption, language, duplicate_of = english, "en", None
        render = RenderSpec(
            colour,
            shape,
            bg,
            direction,
            "move",
            size_frac=round(rng.uniform(0.26, 0.34), 3),
            offset_frac=round(rng.uniform(0.2, 0.8), 3),
            texture=rng.randrange(1, 2**31),
        )
        if fault == "non_english":
            language = rng.choice(("es", "fr", "de"))
            caption = _foreign(language, colour, shape, bg, direction)
        elif fault == "boilerplate":
            caption = rng.choice(BOILERPLATE).format(caption=english, id=cid)
        elif fault == "still":
            render = replace(render, motion="still")
            # a motionless clip cannot honestly claim a direction
            english = caption = image_caption(rng.choice(IMAGE_TEMPLATES), colour, shape, bg)
            direction = None
        elif fault == "too_short":
            render = replace(render, short=True)
        elif fault == "corrupt":
            render = replace(render, corrupt=True)
        elif fault in ("duplicate", "near_duplicate"):
            twin, cid = _twin(clips, cid, used_ids, rng)
            duplicate_of, render = (
                twin.clip_id,
                replace(twin.render, reencode=fault == "near_duplicate"),
            )
            colour, shape, bg, twin_dir = twin.colour, twin.shape, twin.background, twin.direction
            assert twin_dir is not None
            direction = twin_dir
            english = caption = clip_caption(
                rng.choice(CLIP_TEMPLATES), colour, shape, bg, twin_dir
            )
        markup = MARKUPS[i % len(MARKUPS)] if fault is None else "full"
        expected = CLIP_FAULTS[fault] if fault else Expected(contract.STATUS_SUCCESS)
        clips.append(
            Item(
                "video",
                cid,
                caption,
                english,
                language,
                colour,
                shape,
                bg,
                direction,
                fault,
                expected,
                render,
                markup,
                duplicate_of,
            )
        )
    images = _build_images(rng, n_images, faults)
    return Catalog(seed, tuple(clips), tuple(images))


def _build_images(rng: random.Random, n: int, faults: bool) -> list[Item]:
    combos = appearance_combos()
    rng.shuffle(combos)
    ids = _unique_ids(rng, n, "p", 100_000, 1_000_000)
    plan = _fault_plan(rng, IMAGE_FAULTS, n) if faults else [None] * n
    images: list[Item] = []
    for i, iid in enumerate(ids):
        colour, shape, bg = combos[i % len(combos)]
        fault = plan[i]
        english = image_caption(rng.choice(IMAGE_TEMPLATES), colour, shape, bg)
        caption, language = english, "en"
        if fault == "non_english":
            language = rng.choice(("es", "fr", "de"))
            caption = _foreign(language, colour, shape, bg, None)
        render = RenderSpec(
            colour,
            shape,
            bg,
            None,
            "image",
            size_frac=round(rng.uniform(0.3, 0.45), 3),
            offset_frac=round(rng.uniform(0.25, 0.75), 3),
            offset2_frac=round(rng.uniform(0.25, 0.75), 3),
            texture=rng.randrange(1, 2**31),
        )
        expected = IMAGE_FAULTS[fault] if fault else Expected(contract.STATUS_SUCCESS)
        images.append(
            Item(
                "image",
                iid,
                caption,
                english,
                language,
                colour,
                shape,
                bg,
                None,
                fault,
                expected,
                render,
            )
        )
    return images
