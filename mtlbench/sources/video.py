"""Frames of a recorded procedure by time: from a video file (PyAV) or from a folder of numbered PNGs.

The frame shown at time t is the last frame whose presentation time is at or before t (times
are compared exactly, as fractions: pts x time_base for a video, index / fps for a folder).

Decoded YUV is turned into RGB here, in integer arithmetic, instead of by libswscale: the result
then depends on the decoded planes alone, so a rebuild writes the same bytes with any FFmpeg
build and any thread count. 8-bit planar YUV (4:2:0, 4:2:2, 4:4:4) is read; chroma is
upsampled by repetition; the matrix is BT.709 when the stream says so and BT.601 otherwise
(FFmpeg's default for an unspecified matrix), in limited range unless the stream is full range.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from mtlbench.dataset.writer import FileImage
from mtlbench.errors import InputError

VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".avi", ".webm")
FRAME_RULE = "the last frame whose presentation time is at or before the sampling time (exact comparison)"
COLOUR_RULE = (
    "8-bit planar YUV to RGB in integer arithmetic: BT.709 when the stream says so, else BT.601; limited "
    "range unless the stream is full range; chroma upsampled by repetition"
)
FRAME_NAME = re.compile(r"^([0-9]{6})\.png$")
# Decoding forward is exact and cheap over short gaps; beyond this the decoder seeks to a keyframe.
SEEK_AFTER_S = 10
PLANAR_YUV = {"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p"}
AVCOL_SPC_BT709 = 1
AVCOL_RANGE_JPEG = 2
# (luma gain, V->R, U->G, V->G, U->B) in 1/256 units: the fixed-point YUV -> RGB coefficients
COEFFICIENTS = {
    ("bt601", "limited"): (298, 409, 100, 208, 516),
    ("bt709", "limited"): (298, 459, 55, 136, 541),
    ("bt601", "full"): (256, 359, 88, 183, 454),
    ("bt709", "full"): (256, 403, 48, 120, 475),
}


def yuv_to_rgb(y: np.ndarray, u: np.ndarray, v: np.ndarray, matrix: str, value_range: str) -> np.ndarray:
    """(H, W, 3) uint8 RGB of 8-bit Y, U, V planes (U and V possibly subsampled by an integer factor)."""
    # Subsampled planes round up (a 47-row 4:2:0 frame has 24 chroma rows): the factor is the ceiling.
    rows, columns = -(-y.shape[0] // u.shape[0]), -(-y.shape[1] // u.shape[1])
    u = np.repeat(np.repeat(u, rows, axis=0), columns, axis=1)[: y.shape[0], : y.shape[1]].astype(np.int32) - 128
    v = np.repeat(np.repeat(v, rows, axis=0), columns, axis=1)[: y.shape[0], : y.shape[1]].astype(np.int32) - 128
    gain, v_red, u_green, v_green, u_blue = COEFFICIENTS[(matrix, value_range)]
    luma = gain * (y.astype(np.int32) - (16 if value_range == "limited" else 0)) + 128
    rgb = np.stack([luma + v_red * v, luma - u_green * u - v_green * v, luma + u_blue * u], axis=-1) >> 8
    return np.clip(rgb, 0, 255).astype(np.uint8)


def _plane(plane) -> np.ndarray:
    return np.frombuffer(memoryview(plane), dtype=np.uint8).reshape(plane.height, plane.line_size)[:, : plane.width]


def frame_rgb(frame, where: str) -> np.ndarray:
    """RGB of a decoded PyAV video frame (see the module docstring for the conversion)."""
    name = frame.format.name
    if name not in PLANAR_YUV:
        raise InputError(where, f"pixel format {name} is not read (8-bit planar YUV only): re-encode with ffmpeg -pix_fmt yuv420p")
    matrix = "bt709" if frame.colorspace == AVCOL_SPC_BT709 else "bt601"
    value_range = "full" if name.startswith("yuvj") or frame.color_range == AVCOL_RANGE_JPEG else "limited"
    y, u, v = (_plane(plane) for plane in frame.planes)
    return yuv_to_rgb(y, u, v, matrix, value_range)


@dataclass(frozen=True)
class VideoInfo:
    duration: Fraction | None  # seconds, from the container; None when it does not say
    fps: Fraction | None
    width: int
    height: int


def probe_video(path: Path) -> VideoInfo:
    import av  # PyAV: only builders of video sources need it

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise InputError(path, "has no video stream")
            stream = container.streams.video[0]
            if stream.duration is not None:
                duration = stream.duration * stream.time_base
            elif container.duration is not None:
                duration = Fraction(container.duration, av.time_base)
            else:
                duration = None
            rate = stream.average_rate or stream.guessed_rate
            return VideoInfo(duration, Fraction(rate) if rate else None, stream.codec_context.width, stream.codec_context.height)
    except av.error.FFmpegError as exc:
        raise InputError(path, f"cannot be read as a video ({exc.strerror or exc})") from None


class _Decoder:
    """One open video, decoding forward; a request before the current frame starts again."""

    def __init__(self, path: Path):
        import av

        self.path = path
        self.av = av
        self.container = None
        self._open()

    def _open(self) -> None:
        if self.container is not None:
            self.container.close()
        try:
            self.container = self.av.open(str(self.path))
        except self.av.error.FFmpegError as exc:
            raise InputError(self.path, f"cannot be read as a video ({exc.strerror or exc})") from None
        self.stream = self.container.streams.video[0]
        self.frames = self.container.decode(self.stream)
        self.current = None
        self.upcoming = self._next()

    def _next(self):
        try:
            return next(self.frames, None)
        except self.av.error.FFmpegError as exc:
            raise InputError(self.path, f"cannot be decoded ({exc.strerror or exc})") from None

    def _time(self, frame) -> Fraction:
        return frame.pts * self.stream.time_base

    def _seek(self, time: Fraction) -> None:
        """Start decoding at the keyframe at or before `time`; from the start if that failed."""
        self.container.seek(int(time / self.stream.time_base), stream=self.stream, backward=True, any_frame=False)
        self.frames = self.container.decode(self.stream)
        self.current, self.upcoming = None, self._next()
        if self.upcoming is None or self._time(self.upcoming) > time:
            self._open()

    def frame_at(self, time: Fraction, where: str) -> np.ndarray:
        if self.current is not None and self._time(self.current) > time:
            self._open()
        if self.upcoming is not None and self._time(self.upcoming) + SEEK_AFTER_S < time:
            self._seek(time)
        while self.upcoming is not None and self._time(self.upcoming) <= time:
            self.current, self.upcoming = self.upcoming, self._next()
        if self.current is None:
            raise InputError(where, "no frame at or before this time")
        if self.upcoming is None and self.current.duration and time >= self._time(self.current) + self.current.duration * self.stream.time_base:
            raise InputError(where, f"after the end of the video ({float(self._time(self.current)):.3f} s is its last frame)")
        return frame_rgb(self.current, where)


_open_decoder: dict[tuple, _Decoder] = {}


def _decoder(path: Path) -> _Decoder:
    """The decoder of `path` in this process; one video is open at a time, as samples come in order.
    A file replaced or rewritten since it was opened (a rebuild in the same process) is opened anew."""
    try:
        status = path.stat()
        key = (path, status.st_ino, status.st_size, status.st_mtime_ns)
    except OSError:
        key = (path,)  # opening it says what is wrong
    if key not in _open_decoder:
        for other in _open_decoder.values():
            other.container.close()
        _open_decoder.clear()
        _open_decoder[key] = _Decoder(path)
    return _open_decoder[key]


@dataclass(frozen=True)
class VideoFrame:
    """An image source: the frame of a video file shown at `time_ms`."""

    path: Path
    time_ms: int

    def describe(self) -> str:
        return f"{self.path} at {self.time_ms / 1000:.3f} s"

    def load(self) -> np.ndarray:
        return _decoder(self.path).frame_at(Fraction(self.time_ms, 1000), self.describe())


@dataclass(frozen=True)
class FrameFolder:
    """`frames/NNNNNN.png` from 000000, with the frame rate: frame i is shown from i / fps."""

    folder: Path
    fps: Fraction
    count: int

    @property
    def duration(self) -> Fraction:
        return self.count / self.fps

    def frame_at(self, time_ms: int) -> FileImage:
        index = int(Fraction(time_ms, 1000) * self.fps)  # floor: the last frame shown at or before t
        if index >= self.count:
            last = float((self.count - 1) / self.fps)
            raise InputError(self.folder, f"no frame at {time_ms / 1000:.3f} s: after the end of the frames ({last:.3f} s is the last one)")
        return FileImage(self.folder / f"{index:06d}.png")


def read_frame_folder(folder: Path, fps: object, where: Path) -> FrameFolder:
    """A frames folder: only NNNNNN.png files, numbered 000000.. without a gap."""
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not fps > 0:
        raise InputError(where, f"fps must be a positive number, got {fps!r}")
    names = sorted(path.name for path in folder.iterdir())
    strays = [name for name in names if not FRAME_NAME.match(name)]
    if strays:
        raise InputError(folder, f"holds {strays[0]!r}: a frames folder holds NNNNNN.png files only")
    if not names:
        raise InputError(folder, "holds no frames")
    numbers = [int(FRAME_NAME.match(name).group(1)) for name in names]
    if numbers != list(range(len(numbers))):
        gap = next(i for i, number in enumerate(numbers) if number != i)
        raise InputError(folder, f"frames must be numbered from 000000 without gaps: {gap:06d}.png is missing")
    return FrameFolder(folder, Fraction(str(fps)), len(numbers))
