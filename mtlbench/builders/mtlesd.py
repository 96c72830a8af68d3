"""MTLESD: robot-assisted ESD frames, each with an activity label and a segmentation mask.

Two inputs:
- COCO mode: the user's own annotations (COCO instances, an activity CSV and the frames folder);
  see mtlbench/sources/coco_instances.py and activity_table.py for the parsing rules. Frames
  without an activity are skipped and reported. Splits keep videos whole: a split file, or
  `default_video_split` (whole videos in hash order of the seed: 20% test, 10% val, at least
  one each, the rest train).
- Release mode: the EndoARSS authors' built folders (or an mtlbench export of them), see
  mtlbench/builders/endoarss_release.py.

ASSUMED CLASS ORDER FOR THE AUTHORS' RELEASE: its mask values are not mapped to names anywhere
public. Without an export marker or explicit names, release mode assumes the ESD_CLASSES order
(background, Marking Area, Electric Knife, Incision Area, Mucosal Flaps, FPCW Forceps, FPCW Knife)
and activity folders 1, 2, 3 = Marking, Circumferential Incision, Submucosal Dissection. Check a few
masks of your copy and pass class names if they differ; dataset.json records the assumption.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from mtlbench.builders import BUILDERS
from mtlbench.builders.endoarss_release import ReleaseDefaults, import_release
from mtlbench.builders.options import BuildOptions, endoarss_tasks, write_dataset
from mtlbench.dataset.manifest import SPLITS
from mtlbench.dataset.writer import DatasetSpec, FileImage, SampleJob, Skip
from mtlbench.endoarss_marker import read_marker
from mtlbench.errors import InputError
from mtlbench.outputs import sha256_file
from mtlbench.sources.activity_table import ActivityTable, read_activity_table
from mtlbench.sources.coco_instances import (
    CATEGORY_RULE,
    OVERLAP_RULE,
    VIDEO_FRAME_RULE,
    CocoAnnotations,
    CocoImage,
    check_image_files,
    read_coco,
)
from mtlbench.splits import split_of, whole_sequence_splits
from mtlbench.taxonomies import ESD_ACTIVITIES, ESD_CLASSES

NAME = "mtlesd"
VERSION = "1.0.0"
BUILDER_VERSION = "1.0.0"
RELEASE_DEFAULTS = ReleaseDefaults(
    class_names=tuple(cls.name for cls in ESD_CLASSES),
    class_note="ASSUMED ESD_CLASSES order: the EndoARSS release does not publish which mask value is which class",
    activity_names=ESD_ACTIVITIES,
    activity_note="ASSUMED procedure order for activity folders 1, 2, 3 (not published with the release)",
)


@BUILDERS.register("mtlesd-coco")
def build_mtlesd_from_coco(
    coco: Path,
    images: Path,
    activities: Path,
    out: Path,
    *,
    split_file: Path | None = None,
    seed: int = 0,
    options: BuildOptions = BuildOptions(),
) -> Path:
    coco, images, activities = Path(coco), Path(images), Path(activities)
    annotations = read_coco(coco, ESD_CLASSES)
    check_image_files(annotations, images)
    table = read_activity_table(activities, ESD_ACTIVITIES)
    labelled, skips = _label_frames(annotations, table)
    labelled_videos = {image.video for image, _ in labelled}
    splits, split_record = whole_sequence_splits(split_file, labelled_videos, seed, coco, "videos", "default_video_split")
    split_of_video = split_of(splits)
    skips += [Skip("video not in the split file", video) for video in sorted(labelled_videos - split_of_video.keys())]
    skips += [
        Skip("split file names a video without labelled frames", video)
        for video in sorted(split_of_video.keys() - labelled_videos)
    ]
    jobs = [
        SampleJob(
            sample_id=image.sample_id,
            split=split_of_video[image.video],
            sequence=image.video,
            frame=image.frame,
            image=FileImage(images / image.file_name),
            labels={"activity": activity_id},
            mask=annotations.mask_of(image),
        )
        for image, activity_id in labelled
        if image.video in split_of_video
    ]
    inputs_sha256 = {"coco": sha256_file(coco), "activities": sha256_file(activities)}
    if split_file is not None:
        inputs_sha256["split_file"] = sha256_file(split_file)
    spec = DatasetSpec(
        name=NAME,
        version=VERSION,
        builder_version=BUILDER_VERSION,
        source={
            "description": "ESD frames annotated as COCO instances, with a per-frame activity table",
            "inputs_sha256": inputs_sha256,
            "counts": {
                "coco_images": len(annotations.images),
                "coco_annotations": annotations.annotation_count,
                "coco_categories": annotations.category_count,
                "activity_rows": table.rows,
                "videos": len({image.video for image in annotations.images}),
            },
        },
        tasks=endoarss_tasks(ESD_ACTIVITIES, ESD_CLASSES),
        splits=SPLITS,
        build_parameters={
            "input_mode": "coco",
            "class_order": [cls.name for cls in ESD_CLASSES],
            "category_matching": CATEGORY_RULE,
            "overlap_rule": OVERLAP_RULE,
            "video_frame_rule": VIDEO_FRAME_RULE,
            "activity_rule": table.rule,
            "split": split_record,
            "seed": seed,
        },
        splits_from=str(split_file) if split_file else f"{coco} (default video split, seed {seed})",
    )
    return write_dataset(spec, jobs, skips, out, options)


def _label_frames(annotations: CocoAnnotations, table: ActivityTable) -> tuple[list[tuple[CocoImage, int]], list[Skip]]:
    """(image, activity id) of every image with an activity; what was left out, and why."""
    skips = [Skip("annotation without segmentation (paints nothing)", item) for item in annotations.without_segmentation]
    labelled = []
    for image in annotations.images:
        activity_id = table.activity_of(image.video, image.frame, image.file_name)
        if activity_id is None:
            skips.append(Skip("no activity label", image.file_name))
        else:
            labelled.append((image, activity_id))
    if not labelled:
        raise InputError(table.path, f"no image of {annotations.path.name} has an activity")
    videos = {image.video for image in annotations.images}
    file_names = {image.file_name for image in annotations.images}
    skips += [Skip("activity row names no image", item) for item in table.unknown_references(videos, file_names)]
    return labelled, skips


@BUILDERS.register("mtlesd-release")
def build_mtlesd_from_release(
    release: Path,
    out: Path,
    *,
    class_names: Sequence[str] | None = None,
    activity_names: Sequence[str] | None = None,
    seed: int = 0,
    options: BuildOptions = BuildOptions(),
) -> Path:
    return import_release(
        release,
        out,
        marker=read_marker(release),
        name=NAME,
        version=VERSION,
        builder_version=BUILDER_VERSION,
        class_names=class_names,
        activity_names=activity_names,
        defaults=RELEASE_DEFAULTS,
        seed=seed,
        options=options,
    )
