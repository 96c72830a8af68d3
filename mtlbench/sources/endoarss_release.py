"""Reading a data set in the EndoARSS release layout.

Layout: `<root>/{train,val,test}/<activity>/{image,mask}/<name>.png`. `<activity>` is a 1-based
folder number (label = number - 1). As in the release's loader, files are enumerated from
`mask/` and only `.png` files count; hidden files (e.g. macOS `._name.png`) are ignored too. The
image is the file with the same name in `image/`. Masks are read as 8-bit grey and every value
> 0 has 1 subtracted, so raw 0 and raw 1 both become background 0; images are read as RGB and,
unlike the release's loader, never resized.

mtlbench's own exporter writes a marker file (mtlbench/endoarss_marker.py) at the root. It carries the
class and activity names and colours, and says that ignored pixels were written as raw 0: with a
marker, raw 0 (and only 0; raw 1 is background) decodes to IGNORE_INDEX, so that re-importing an
export gives back the original masks exactly.

Sample ids are the file stems; a stem's sequence is its part before the last '_' and its frame
the rest (`esd01_000030` -> `esd01`, `000030`); a stem without '_' is both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mtlbench import pngio
from mtlbench.dataset.manifest import SPLITS, safe_id
from mtlbench.dataset.writer import MaskDecoding
from mtlbench.errors import InputError
from mtlbench.taxonomies import IGNORE_INDEX

_ACTIVITY_FOLDER = re.compile(r"^[1-9][0-9]*$")


def sequence_and_frame(stem: str) -> tuple[str, str]:
    """`esd01_000030` -> (`esd01`, `000030`); a stem without a usable '_' is both."""
    sequence, separator, frame = stem.rpartition("_")
    if separator and sequence and frame:
        return sequence, frame
    return stem, stem


@dataclass(frozen=True)
class ReleaseFile:
    folder: str  # the release folder it was found in: train, val or test
    activity_id: int
    image: Path
    mask: Path
    sample_id: str
    sequence: str
    frame: str


@dataclass(frozen=True)
class ReleaseScan:
    folders: tuple[str, ...]  # release folders present, in SPLITS order
    files: tuple[ReleaseFile, ...]
    ignored: tuple[str, ...]  # paths relative to the root of entries that are not .png masks


def scan_release(root: Path) -> ReleaseScan:
    """Every (image, mask) pair of the release, checked for layout errors but not decoded."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(root, "release folder not found")
    folders = tuple(name for name in SPLITS if (root / name).is_dir())
    if not folders:
        raise InputError(root, f"not an EndoARSS release: no {'/, '.join(SPLITS)}/ folder")
    files: list[ReleaseFile] = []
    ignored: list[str] = []
    by_stem: dict[str, Path] = {}
    for folder in folders:
        for activity_dir in sorted((root / folder).iterdir()):
            if not activity_dir.is_dir() or activity_dir.name.startswith("."):
                ignored.append(activity_dir.relative_to(root).as_posix())
                continue
            if not _ACTIVITY_FOLDER.match(activity_dir.name):
                raise InputError(activity_dir, "activity folder names must be numbers from 1")
            activity_id = int(activity_dir.name) - 1
            mask_dir = activity_dir / "mask"
            if not mask_dir.is_dir():
                raise InputError(activity_dir, "no mask/ folder")
            for mask in sorted(mask_dir.iterdir()):
                if mask.name.startswith(".") or mask.suffix.lower() != ".png" or not mask.is_file():
                    ignored.append(mask.relative_to(root).as_posix())
                    continue
                if mask.stem in by_stem:
                    raise InputError(mask, f"file name {mask.stem!r} is also used by {by_stem[mask.stem]}")
                by_stem[mask.stem] = mask
                files.append(_release_file(folder, activity_id, mask))
    if not files:
        raise InputError(root, "no .png masks found under <split>/<activity>/mask/")
    return ReleaseScan(folders, tuple(files), tuple(ignored))


def _release_file(folder: str, activity_id: int, mask: Path) -> ReleaseFile:
    image = mask.parent.parent / "image" / mask.name
    if not image.is_file():
        raise InputError(mask, f"no image with the same name in {image.parent}")
    try:
        sample_id = safe_id(mask.stem)
    except ValueError:
        raise InputError(mask, "cannot make a sample id from this file name") from None
    sequence, frame = sequence_and_frame(mask.stem)
    return ReleaseFile(folder, activity_id, image, mask, sample_id, sequence, frame)


@dataclass(frozen=True)
class ReleaseMask:
    """A release mask file, decoded with release semantics or, for an mtlbench export, the marker's."""

    path: Path
    num_classes: int
    zero_is_ignore: bool

    def describe(self) -> str:
        return str(self.path)

    def decode(self, height: int, width: int) -> MaskDecoding:
        image = pngio.open_image(self.path)
        # 8-bit grey as the release's loader reads it, whatever the PNG's mode.
        raw = np.asarray(image if image.mode == "L" else image.convert("L"))
        top = int(raw.max())
        if top - 1 >= self.num_classes:
            raise InputError(
                self.path, f"raw value {top} decodes to class {top - 1}, but there are only {self.num_classes} classes"
            )
        zero_value = IGNORE_INDEX if self.zero_is_ignore else 0
        return MaskDecoding(np.where(raw > 0, raw - 1, zero_value).astype(np.uint8))
