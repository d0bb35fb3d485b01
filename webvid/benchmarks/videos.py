"""Finding a benchmark's video files by id.

Takes a dataset root (or an explicit ``--videos`` folder) and video ids; produces each id's file.
Folders searched, first hit wins: ``--videos`` alone when given, else ``ROOT/videos/all``,
``ROOT/videos`` and ``ROOT`` (those that exist). A video is ``<id>.<ext>`` with ``ext`` one of
:data:`VIDEO_EXTENSIONS` (any case), or the list entry's own file name (DiDeMo lists keep their
original suffixes). LSMDC clips live in one folder per movie, ``<folder>/<movie>/<clip>.avi``
(the movie is the clip id up to its last underscore, :func:`lsmdc_movie`); a flat
``<folder>/<clip>.<ext>`` is accepted too. Each folder is listed once, not stat-ed per id.
A missing video is an :class:`~webvid.errors.InputError` that counts the missing ones and names
the first few, unless the caller asked to keep them (:class:`VideoQuery` ``keep_missing``, used by
``webvid prepare``, which records each missing video as a ``missing_media`` row and goes on): then
a missing id gets the path it would have had (``<first folder>/<id>.mp4``), which does not exist.
Every video missing is an error in both modes (a wrong folder, not a few lost downloads).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from webvid.errors import InputError

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov")
#: DiDeMo's originals also come as these (its lists keep them: ``.3gp``, ``.mpg``, …)
EXTRA_EXTENSIONS = (".m4v", ".mpg", ".mpeg", ".3gp", ".3g2", ".wmv", ".mts", ".flv")


def lsmdc_movie(clip_id: str) -> str:
    """The movie folder of an LSMDC clip: ``1001_Flight_00.00.51.110-00.00.54.515`` → ``1001_Flight``.

    LSMDC clip ids are ``<movie>_<start>-<end>`` with ``hh.mm.ss.mmm`` times, which hold no
    underscore, so the movie is everything before the last one.
    """
    movie, sep, _ = clip_id.rpartition("_")
    if not sep or not movie:
        raise InputError(f"LSMDC clip id {clip_id!r} has no '<movie>_<times>' form")
    return movie


@dataclass(frozen=True)
class VideoQuery:
    """Where to look (``folder``: ``--videos``, None for the defaults) and what a missing video
    is: an error (the default, and always for evaluation) or kept with a non-existent path."""

    folder: str | Path | None = None
    keep_missing: bool = False


def video_folders(root: Path, videos: str | Path | VideoQuery | None) -> list[Path]:
    """Where videos are looked for, in order (see the module docstring)."""
    if isinstance(videos, VideoQuery):
        videos = videos.folder
    if videos is not None:
        folder = Path(videos)
        if not folder.is_dir():
            raise InputError(f"{folder}: --videos is not a folder")
        return [folder]
    found = [d for d in (root / "videos" / "all", root / "videos", root) if d.is_dir()]
    if not found:
        raise InputError(f"{root}: not a folder")
    return found


class VideoFinder:
    """Resolves ids to files under :func:`video_folders`, listing each folder at most once."""

    def __init__(
        self, root: Path, videos: str | Path | VideoQuery | None, *, extra: bool = False
    ) -> None:
        self.folders = video_folders(root, videos)
        self.keep_missing = isinstance(videos, VideoQuery) and videos.keep_missing
        self.suffixes = VIDEO_EXTENSIONS + (EXTRA_EXTENSIONS if extra else ())
        self._listings: dict[Path, tuple[dict[str, Path], dict[str, Path]]] = {}

    def _listing(self, folder: Path) -> tuple[dict[str, Path], dict[str, Path]]:
        """``(by file name, by stem)`` of ``folder``'s video files."""
        if folder not in self._listings:
            names: dict[str, Path] = {}
            stems: dict[str, Path] = {}
            if folder.is_dir():
                for p in sorted(folder.iterdir()):
                    if p.suffix.lower() in self.suffixes and p.is_file():
                        names[p.name] = p
                        stems.setdefault(p.stem, p)
            self._listings[folder] = (names, stems)
        return self._listings[folder]

    def find(self, vid: str, *, entry: str | None = None, movie: str | None = None) -> Path | None:
        """The file of video ``vid`` (``entry``: the list's file name; ``movie``: LSMDC folder)."""
        for base in self.folders:
            for folder in ([base / movie] if movie else []) + [base]:
                names, stems = self._listing(folder)
                if entry and entry in names:
                    return names[entry]
                if vid in stems:
                    return stems[vid]
        return None

    def resolve(
        self,
        ids: Sequence[str],
        *,
        entries: Sequence[str] | None = None,
        movies: Sequence[str] | None = None,
    ) -> list[Path]:
        """Every id's file, in order; an InputError listing the missing ones if any is absent
        (with ``keep_missing``: their would-be ``<first folder>/<id>.mp4`` instead)."""
        paths: list[Path] = []
        missing: list[str] = []
        for i, vid in enumerate(ids):
            p = self.find(
                vid,
                entry=entries[i] if entries else None,
                movie=movies[i] if movies else None,
            )
            if p is None:
                missing.append(vid)
                paths.append(self.folders[0] / f"{vid}.mp4")
            else:
                paths.append(p)
        if missing and (not self.keep_missing or len(missing) == len(ids)):
            where = ", ".join(str(f) for f in self.folders)
            raise InputError(
                f"{len(missing)} of {len(ids)} videos not found under {where} "
                f"(looked for <id>{{{','.join(self.suffixes)}}}"
                + (", <movie>/<id>.*" if movies else "")
                + f"): {', '.join(missing[:5])}"
                + (", …" if len(missing) > 5 else "")
                + "; pass --videos DIR if they live elsewhere"
            )
        return paths
