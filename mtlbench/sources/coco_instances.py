"""COCO instance annotations (polygons or RLE) as per-frame class masks.

Categories are matched to class names ignoring case, spaces, '_' and '-' ("FPCW-forceps" is
"FPCW Forceps"); a category named "background" maps to class 0. Unknown names are an error.

Segmentations: polygons (a list of coordinate lists), compressed RLE (`counts` a string) or
uncompressed RLE (`counts` a list), decoded with pycocotools at the image's size. An annotation
with an empty segmentation list (a box-only annotation) paints nothing and is reported.
Polygon coordinates are checked before anything is rasterised: every x must lie in
[-m * width, (1 + m) * width] and every y in [-m * height, (1 + m) * height] with the margin
m = POLYGON_MARGIN (50%). Points past the border are normal (the circular field of an endoscope
often extends beyond the sensor, and pycocotools clips polygons to the image), but a point
further out is an annotation error (another image, a doubled scale), and absurd values (1e9)
would make the rasteriser allocate without bound. The file may hold NaN and Infinity (some
exporters write them in fields mtlbench does not use, such as "area"); a non-finite coordinate is
an error naming its annotation, like one out of range.

Overlap rule: an image's instances are painted largest decoded pixel area first, ties in
increasing annotation id, so smaller objects (instruments) stay on top of the larger regions
they overlap (the COCO "area" field is not used: it is often the polygon area or missing).
Pixels no instance covers are background 0.

Video and frame of an image: the image's `video` field if present, else the first folder of
`file_name` if it has one, else the file stem up to its last '_' (`esd01_000030.png` ->
`esd01`); a stem with no '_' and no other source of a video is an error. The frame is the
image's `frame` field if present, else the stem after its last '_' (or the whole stem if it has
none). The sample id is `safe_id(f"{video}_{frame}")`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Sequence

import numpy as np
from pycocotools import mask as mask_utils

from mtlbench.dataset.manifest import safe_id
from mtlbench.dataset.writer import MaskDecoding
from mtlbench.errors import InputError
from mtlbench.jsonio import read_json
from mtlbench.taxonomies import SegClass, normalise_name

OVERLAP_RULE = (
    "instances painted largest decoded pixel area first, ties in increasing annotation id "
    "(smaller objects end on top); uncovered pixels background 0"
)
VIDEO_FRAME_RULE = (
    "video: the image's 'video' field, else the first folder of file_name, else the stem up to its last '_'; "
    "frame: the image's 'frame' field, else the stem after its last '_' (or the whole stem)"
)
CATEGORY_RULE = "COCO category names matched to class names ignoring case, spaces, '_' and '-'"
MAX_LISTED_MISSING = 10
POLYGON_MARGIN = 0.5  # of the image's width (x) or height (y) that a polygon point may lie outside it


@dataclass(frozen=True)
class Instance:
    annotation_id: int
    class_id: int
    kind: str  # "polygons", "rle" (compressed counts string) or "uncompressed_rle"
    data: tuple[tuple[float, ...], ...] | str | tuple[int, ...]

    def rle(self, height: int, width: int) -> dict:
        if self.kind == "polygons":
            return mask_utils.merge(mask_utils.frPyObjects([list(polygon) for polygon in self.data], height, width))
        if self.kind == "uncompressed_rle":
            return mask_utils.frPyObjects({"counts": list(self.data), "size": [height, width]}, height, width)
        return {"counts": self.data, "size": [height, width]}


@dataclass(frozen=True)
class CocoMask:
    """The class mask of one COCO image, rasterised from its instances when decoded."""

    coco_file: Path
    file_name: str
    width: int
    height: int
    instances: tuple[Instance, ...]

    def describe(self) -> str:
        return f"{self.coco_file} (image {self.file_name})"

    def decode(self, height: int, width: int) -> MaskDecoding:
        if (width, height) != (self.width, self.height):
            raise InputError(
                self.describe(), f"COCO gives {self.width}x{self.height} but the image file is {width}x{height}"
            )
        try:
            shapes = [(instance, instance.rle(height, width)) for instance in self.instances]
            painting_order = sorted(shapes, key=lambda pair: (-int(mask_utils.area(pair[1])), pair[0].annotation_id))
            mask = np.zeros((height, width), dtype=np.uint8)
            for instance, rle in painting_order:
                mask[mask_utils.decode(rle).astype(bool)] = instance.class_id
        except ValueError as exc:
            raise InputError(self.describe(), f"invalid segmentation ({exc})") from None
        return MaskDecoding(mask)


@dataclass(frozen=True)
class CocoImage:
    image_id: int
    file_name: str
    width: int
    height: int
    video: str
    frame: str
    sample_id: str


@dataclass(frozen=True)
class CocoAnnotations:
    path: Path
    images: tuple[CocoImage, ...]
    instances: dict[int, tuple[Instance, ...]]  # image id -> its instances
    annotation_count: int
    category_count: int
    without_segmentation: tuple[str, ...]  # "<file_name> annotation <id>" of box-only annotations

    def mask_of(self, image: CocoImage) -> CocoMask:
        return CocoMask(self.path, image.file_name, image.width, image.height, self.instances.get(image.image_id, ()))


def read_coco(path: Path, classes: Sequence[SegClass]) -> CocoAnnotations:
    """Parse and check a COCO instances file against the class list; nothing is rasterised yet."""
    path = Path(path)
    data = read_json(path, missing="COCO file not found", allow_non_finite=True)
    if not isinstance(data, dict):
        raise InputError(path, "not a COCO instances file (expected a JSON object)")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise InputError(path, f"not a COCO instances file: {key!r} missing or not a list")
    class_of_category = _category_classes(path, data["categories"], classes)
    images = _images_by_id(path, [_image(path, index, record) for index, record in enumerate(data["images"])])
    instances: dict[int, list[Instance]] = {}
    without_segmentation = []
    annotation_ids: set[int] = set()
    for index, record in enumerate(data["annotations"]):
        where = f"annotations[{index}]"
        annotation_id = _field(path, where, record, "id", int)
        if annotation_id in annotation_ids:
            raise InputError(path, f"annotation id {annotation_id} is used twice")
        annotation_ids.add(annotation_id)
        image = images.get(_field(path, where, record, "image_id", int))
        if image is None:
            raise InputError(path, f"annotation {annotation_id}: image_id {record['image_id']} is not an image")
        category_id = _field(path, where, record, "category_id", int)
        if category_id not in class_of_category:
            raise InputError(path, f"annotation {annotation_id}: category_id {category_id} is not a category")
        if "segmentation" not in record:
            raise InputError(path, f"annotation {annotation_id}: no 'segmentation'")
        if record["segmentation"] == []:
            without_segmentation.append(f"{image.file_name} annotation {annotation_id}")
            continue
        kind, shape = _segmentation(path, f"annotation {annotation_id}", record["segmentation"], image)
        instance = Instance(annotation_id, class_of_category[category_id], kind, shape)
        instances.setdefault(image.image_id, []).append(instance)
    return CocoAnnotations(
        path=path,
        images=tuple(images.values()),
        instances={image_id: tuple(items) for image_id, items in instances.items()},
        annotation_count=len(data["annotations"]),
        category_count=len(data["categories"]),
        without_segmentation=tuple(without_segmentation),
    )


def check_image_files(coco: CocoAnnotations, images_dir: Path) -> None:
    """Every image entry needs its file; lists the first missing ones and their count."""
    missing = [image.file_name for image in coco.images if not (Path(images_dir) / image.file_name).is_file()]
    if missing:
        listed = ", ".join(missing[:MAX_LISTED_MISSING]) + (", ..." if len(missing) > MAX_LISTED_MISSING else "")
        raise InputError(coco.path, f"{len(missing)} image file(s) not found in {images_dir}: {listed}")


def _field(path: Path, where: str, record, key: str, kind: type):
    value = record.get(key) if isinstance(record, dict) else None
    if not isinstance(value, kind) or isinstance(value, bool):
        raise InputError(path, f"{where}: field {key!r} missing or not {'an' if kind is int else 'a'} {kind.__name__}")
    return value


def _category_classes(path: Path, categories: list, classes: Sequence[SegClass]) -> dict[int, int]:
    """COCO category id -> class id; every category name must be a class name."""
    class_by_key = {normalise_name(cls.name): cls.id for cls in classes}
    mapping: dict[int, int] = {}
    seen: set[int] = set()
    unknown = []
    for index, record in enumerate(categories):
        category_id = _field(path, f"categories[{index}]", record, "id", int)
        name = _field(path, f"categories[{index}]", record, "name", str)
        if category_id in seen:
            raise InputError(path, f"category id {category_id} is used twice")
        seen.add(category_id)
        if normalise_name(name) in class_by_key:
            mapping[category_id] = class_by_key[normalise_name(name)]
        else:
            unknown.append(name)
    if unknown:
        known = ", ".join(cls.name for cls in classes)
        raise InputError(path, f"unknown categories {', '.join(map(repr, unknown))} (known: {known})")
    return mapping


def _image(path: Path, index: int, record) -> CocoImage:
    where = f"images[{index}]"
    image_id = _field(path, where, record, "id", int)
    file_name = _field(path, where, record, "file_name", str)
    width = _field(path, where, record, "width", int)
    height = _field(path, where, record, "height", int)
    relative = PurePosixPath(file_name)
    if not file_name or relative.is_absolute() or ".." in relative.parts:
        raise InputError(path, f"image {file_name!r}: file_name must be a path inside the images folder")
    if width <= 0 or height <= 0:
        raise InputError(path, f"image {file_name!r}: width and height must be positive")
    video, frame = _video_and_frame(path, record, relative)
    try:
        sample_id = safe_id(f"{video}_{frame}")
    except ValueError:
        problem = f"image {file_name!r}: cannot make a sample id from video {video!r} and frame {frame!r}"
        raise InputError(path, problem) from None
    return CocoImage(image_id, file_name, width, height, video, frame, sample_id)


def _video_and_frame(path: Path, record: dict, file_name: PurePosixPath) -> tuple[str, str]:
    stem_video, separator, stem_frame = file_name.stem.rpartition("_")
    if not (separator and stem_video and stem_frame):
        stem_video, stem_frame = "", file_name.stem
    folder_video = file_name.parts[0] if len(file_name.parts) > 1 else ""
    video = _text_field(path, record, "video") or folder_video or stem_video
    if not video:
        raise InputError(
            path, f"image {str(file_name)!r}: no video (give a 'video' field, a folder, or name it <video>_<frame>)"
        )
    return video, _text_field(path, record, "frame") or stem_frame


def _text_field(path: Path, record: dict, key: str) -> str:
    """An optional string or integer field as text; '' when absent."""
    value = record.get(key)
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, (str, int)) or str(value) == "":
        raise InputError(path, f"image {record['file_name']!r}: {key!r} must be a non-empty string or an integer")
    return str(value)


def _images_by_id(path: Path, images: list[CocoImage]) -> dict[int, CocoImage]:
    by_id: dict[int, CocoImage] = {}
    for image in images:
        if image.image_id in by_id:
            raise InputError(path, f"image id {image.image_id} is used twice")
        by_id[image.image_id] = image
    return by_id


def _check_polygon_points(path: Path, where: str, polygons: tuple[tuple[float, ...], ...], image: CocoImage) -> None:
    size = np.array([image.width, image.height], dtype=np.float64)
    for polygon in polygons:
        points = np.array(polygon, dtype=np.float64).reshape(-1, 2)
        inside = (points >= -POLYGON_MARGIN * size) & (points <= (1 + POLYGON_MARGIN) * size)  # False for NaN
        outside = ~inside.all(axis=1)
        if outside.any():
            x, y = points[int(np.argmax(outside))]
            raise InputError(
                path,
                f"{where}: polygon point ({x:g}, {y:g}) is not a number inside the {image.width}x{image.height} image "
                f"{image.file_name!r} or within {POLYGON_MARGIN:.0%} of its size outside it",
            )


def _segmentation(path: Path, where: str, segmentation, image: CocoImage) -> tuple[str, tuple | str]:
    """(kind, data) of an Instance, checked so that pycocotools cannot misread it."""
    if isinstance(segmentation, list):
        # pycocotools reads a 4-number list as a box, so a polygon needs at least 3 points.
        if not all(
            isinstance(polygon, list)
            and len(polygon) >= 6
            and len(polygon) % 2 == 0
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in polygon)
            for polygon in segmentation
        ):
            raise InputError(path, f"{where}: each polygon must be a list of at least 6 numbers (x, y pairs)")
        polygons = tuple(tuple(float(v) for v in polygon) for polygon in segmentation)
        _check_polygon_points(path, where, polygons, image)
        return "polygons", polygons
    if isinstance(segmentation, dict):
        if segmentation.get("size") != [image.height, image.width]:
            raise InputError(
                path, f"{where}: RLE size {segmentation.get('size')} differs from the image's [height, width] "
                f"[{image.height}, {image.width}]"
            )
        counts = segmentation.get("counts")
        if isinstance(counts, str):
            return "rle", counts
        if isinstance(counts, list) and all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts):
            if sum(counts) != image.height * image.width:
                pixels = image.height * image.width
                raise InputError(path, f"{where}: RLE counts sum to {sum(counts)}, not height*width {pixels}")
            return "uncompressed_rle", tuple(counts)
        raise InputError(path, f"{where}: RLE counts must be a string or a list of non-negative integers")
    raise InputError(path, f"{where}: segmentation must be a list of polygons or an RLE object")
