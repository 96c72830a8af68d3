"""Synthetic raw sources in the exact on-disk layouts of the real data sets.

The real EndoVis 2018, EndoVis-18-VQA, ESD, FESS and PitVQA data cannot be downloaded here; tests
and the demo build from these instead. The content is drawn so that the labels decide what is
visible (the activity, the surgical step, the landmarks), which makes the tasks learnable. The
same seed always gives byte-identical files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mtlbench.demo.endovis import write_endovis
from mtlbench.demo.esd import write_esd
from mtlbench.demo.fess import write_fess
from mtlbench.demo.pitvqa import write_pitvqa
from mtlbench.progress import ProgressFn, silent

__all__ = ["DemoSources", "write_demo_sources"]


@dataclass(frozen=True)
class DemoSources:
    endovis_root: Path  # holds the four release folders with their seq_N
    vqa_root: Path  # holds seq_N/vqa/{Classification,Sentence}
    esd_coco_file: Path
    esd_images_dir: Path
    esd_activities_file: Path
    fess_root: Path  # landmarks.txt and one folder per procedure
    pitvqa_root: Path  # images/video_XX and QA/video_XX


def write_demo_sources(out: Path, seed: int = 0, progress: ProgressFn | None = None) -> DemoSources:
    """Write EndoVis 2018 + EndoVis-18-VQA, ESD COCO, FESS and PitVQA demo sources into `out` (created if needed).

    `out` is expected to be empty. `progress(description, total)`, when given, is called once per
    source and returns the `advance()` that is called once per frame written.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    progress = progress or silent
    endovis_root, vqa_root = out / "endovis2018", out / "endovis18-vqa"
    write_endovis(endovis_root, vqa_root, seed, progress)
    coco_file, images_dir, activities_file = write_esd(out / "esd-coco", seed, progress)
    fess_root = write_fess(out / "ent-fess", seed, progress)
    pitvqa_root = write_pitvqa(out / "pitvqa", seed, progress)
    return DemoSources(endovis_root, vqa_root, coco_file, images_dir, activities_file, fess_root, pitvqa_root)
