"""Frames by time from a video (PyAV) or a frames folder, and the integer YUV -> RGB conversion."""

from __future__ import annotations

import zlib
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from av.video.reformatter import ColorRange, Colorspace, Interpolation
from PIL import Image

from mtlbench.errors import InputError
from mtlbench.sources import video
from mtlbench.sources.video import VideoFrame, frame_rgb, read_frame_folder, yuv_to_rgb

W, H = 64, 48
FPS = 10
BLOCK = 16  # the frame index is written in binary, one bit per 16x16 block (4 x 3 blocks: 12 bits)
BITS = (W // BLOCK) * (H // BLOCK)
DARK, LIGHT = 16, 235  # luma of a 0 bit and of a 1 bit: far apart, so lossy coding cannot confuse them
LONG_FRAMES = 250  # 25 s at 10 fps, longer than SEEK_AFTER_S twice over
GOP = 30  # a keyframe every 3 s


def index_luma(index: int) -> np.ndarray:
    """The Y plane that shows `index` in binary."""
    y = np.full((H, W), DARK, np.uint8)
    for bit in range(BITS):
        if index >> bit & 1:
            row, column = divmod(bit, W // BLOCK)
            y[row * BLOCK : (row + 1) * BLOCK, column * BLOCK : (column + 1) * BLOCK] = LIGHT
    return y


def read_index(rgb: np.ndarray) -> int:
    """The index a frame of index_luma shows (grey: all three channels carry it)."""
    assert rgb.shape == (H, W, 3) and rgb.dtype == np.uint8
    index = 0
    for bit in range(BITS):
        row, column = divmod(bit, W // BLOCK)
        if rgb[row * BLOCK : (row + 1) * BLOCK, column * BLOCK : (column + 1) * BLOCK].mean() > 128:
            index |= 1 << bit
    return index


def write_index_video(path: Path, frames: int, codec: str = "mpeg4", gop: int = GOP) -> Path:
    """`frames` frames at FPS, frame i showing i (grey, U = V = 128), a keyframe every `gop` frames."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=FPS)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.codec_context.gop_size = gop
        for index in range(frames):
            planes = np.concatenate([index_luma(index), np.full((H // 2, W), 128, np.uint8)])
            frame = av.VideoFrame.from_ndarray(planes, format="yuv420p")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


CODECS = [c for c in ("mpeg4", "libx264") if c in av.codecs_available]


@pytest.fixture(scope="module", params=CODECS)
def long_video(request, tmp_path_factory) -> Path:
    """25 s; libx264 adds B-frames (decode order differs from presentation order)."""
    return write_index_video(tmp_path_factory.mktemp(request.param) / "video.mp4", LONG_FRAMES, request.param)


def shown(path: Path, time_ms: int) -> int:
    return read_index(VideoFrame(path, time_ms).load())


def test_index_pattern_survives_the_codec(long_video: Path):
    """The check of the checks: every frame decodes (plainly, with PyAV) to its own index."""
    with av.open(str(long_video)) as container:
        stream = container.streams.video[0]
        indices = [read_index(frame.to_ndarray(format="rgb24")) for frame in container.decode(stream)]
    assert indices == list(range(LONG_FRAMES))


def test_frame_at_exact_and_between_frame_times(long_video: Path):
    # Frame i is shown over [i / 10 s, (i + 1) / 10 s): the frame at t is floor(10 t).
    requests = [0, 100, 200, 300, 150, 199, 201, 250, 999, 1000, 1001, 2345]
    expected = [0, 1, 2, 3, 1, 1, 2, 2, 9, 10, 10, 23]
    assert [shown(long_video, t) for t in requests] == expected


def test_frame_at_in_reverse_order_restarts_the_decoder(long_video: Path):
    requests = [3000, 2900, 2950, 1000, 0, 5000, 4999, 100]
    assert [shown(long_video, t) for t in requests] == [30, 29, 29, 10, 0, 50, 49, 1]


def test_long_gap_seeks_and_still_finds_the_exact_frame(long_video: Path, monkeypatch):
    assert shown(long_video, 0) == 0  # the decoder of this file at its start, whatever came before
    seeks = []
    original = video._Decoder._seek

    def spy(self, time):
        seeks.append(time)
        return original(self, time)

    monkeypatch.setattr(video._Decoder, "_seek", spy)
    # 0 -> 20.35 s: more than SEEK_AFTER_S ahead, so it seeks (to the keyframe of 18 s) and decodes on
    assert video.SEEK_AFTER_S < 20.35
    assert shown(long_video, 20350) == 203
    assert seeks == [Fraction(2035, 100)]
    # a short step forward decodes on without seeking
    assert shown(long_video, 24990) == 249
    assert len(seeks) == 1
    # backwards: start again, then far ahead of frame 0 once more, so it seeks again
    assert shown(long_video, 12000) == 120
    assert seeks[1:] == [Fraction(12)]
    # a time on a keyframe, after a gap
    assert shown(long_video, 24000) == 240
    assert [shown(long_video, t) for t in (500, 11900, 23456)] == [5, 119, 234]


def test_time_after_the_end_is_refused_naming_the_file(long_video: Path):
    assert shown(long_video, 24999) == 249  # the last frame is shown until 25 s
    with pytest.raises(InputError) as refused:
        VideoFrame(long_video, 25000).load()
    assert str(refused.value) == f"{long_video} at 25.000 s: after the end of the video (24.900 s is its last frame)"
    # also when it is reached by seeking from the start
    assert shown(long_video, 0) == 0
    with pytest.raises(InputError, match=r"at 40\.000 s: after the end of the video") as refused:
        VideoFrame(long_video, 40000).load()
    assert str(long_video) in str(refused.value)
    assert shown(long_video, 100) == 1  # the decoder is still usable


def test_short_video_from_a_new_file(tmp_path: Path):
    """Switching between files: each request is answered from its own file."""
    first = write_index_video(tmp_path / "a.mp4", 5)
    second = write_index_video(tmp_path / "b.mkv", 12)
    assert [shown(first, 300), shown(second, 1100), shown(first, 400), shown(second, 0)] == [3, 11, 4, 0]
    with pytest.raises(InputError, match=r"a\.mp4 at 0\.500 s: after the end"):
        VideoFrame(first, 500).load()


def test_a_file_replaced_at_the_same_path_is_read_anew(tmp_path: Path, monkeypatch):
    """A rebuild in the same process after a new export must not show frames of the old file."""
    path = write_index_video(tmp_path / "video.mp4", 30)
    assert shown(path, 100) == 1
    monkeypatch.setattr(f"{__name__}.index_luma", lambda index, plain=index_luma: plain(index + 100))
    write_index_video(tmp_path / "new.mp4", 30).replace(path)
    assert shown(path, 200) == 102  # forward from the last request: the old decoder would go on
    assert shown(path, 300) == 103


def test_a_missing_video_is_refused_naming_it(tmp_path: Path):
    with pytest.raises(InputError, match=r"^.*missing\.mp4: cannot be read as a video \("):
        VideoFrame(tmp_path / "missing.mp4", 0).load()


# --- frames folders -----------------------------------------------------------------------


def write_frames(folder: Path, count: int) -> list[np.ndarray]:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(count)
    images = [rng.integers(0, 256, (6, 8, 3), dtype=np.uint8) for _ in range(count)]
    for index, image in enumerate(images):
        Image.fromarray(image).save(folder / f"{index:06d}.png")
    return images


def test_frame_folder_frame_at(tmp_path: Path):
    images = write_frames(tmp_path / "frames", 25)
    frames = read_frame_folder(tmp_path / "frames", 12.5, tmp_path / "frames.json")
    assert (frames.fps, frames.count, frames.duration) == (Fraction(25, 2), 25, Fraction(2))
    # frame i is shown from i / 12.5 s = 80 i ms: the frame at t is floor(12.5 t)
    requests = [0, 79, 80, 200, 1999, 1000, 960, 0, 1920, 1919]
    expected = [0, 0, 1, 2, 24, 12, 12, 0, 24, 23]
    assert [frames.frame_at(t).path.name for t in requests] == [f"{i:06d}.png" for i in expected]
    for t, i in zip(requests, expected):
        np.testing.assert_array_equal(frames.frame_at(t).load(), images[i])


def test_frame_folder_integer_fps(tmp_path: Path):
    write_frames(tmp_path / "frames", 3)
    frames = read_frame_folder(tmp_path / "frames", 10, tmp_path / "frames.json")
    assert [frames.frame_at(t).path.name for t in (0, 150, 299)] == ["000000.png", "000001.png", "000002.png"]


def test_frame_folder_time_after_the_end_is_refused_naming_the_folder(tmp_path: Path):
    write_frames(tmp_path / "frames", 25)
    frames = read_frame_folder(tmp_path / "frames", 12.5, tmp_path / "frames.json")
    with pytest.raises(InputError) as refused:
        frames.frame_at(2000)
    assert str(refused.value) == f"{tmp_path / 'frames'}: no frame at 2.000 s: after the end of the frames (1.920 s is the last one)"
    assert frames.frame_at(1999).path.name == "000024.png"


@pytest.mark.parametrize(
    "files, fps, message",
    [
        (["000000.png", "000001.png", "notes.txt"], 10, "holds 'notes.txt': a frames folder holds NNNNNN.png files only"),
        (["000000.png", "1.png"], 10, "holds '1.png': a frames folder holds NNNNNN.png files only"),
        (["000000.png", "000001.PNG"], 10, "holds '000001.PNG': a frames folder holds NNNNNN.png files only"),
        (["000000.png", "000001.png", "000003.png"], 10, "frames must be numbered from 000000 without gaps: 000002.png is missing"),
        (["000001.png", "000002.png"], 10, "frames must be numbered from 000000 without gaps: 000000.png is missing"),
        ([], 10, "holds no frames"),
    ],
)
def test_read_frame_folder_refuses_bad_folders(tmp_path: Path, files, fps, message):
    folder = tmp_path / "frames"
    folder.mkdir()
    for name in files:
        Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(folder / name, format="PNG")
    with pytest.raises(InputError) as refused:
        read_frame_folder(folder, fps, tmp_path / "frames.json")
    assert str(refused.value) == f"{folder}: {message}"


@pytest.mark.parametrize("fps", [0, -5, 0.0, "10", None, True, float("nan"), [10]])
def test_read_frame_folder_refuses_bad_fps(tmp_path: Path, fps):
    write_frames(tmp_path / "frames", 2)
    with pytest.raises(InputError) as refused:
        read_frame_folder(tmp_path / "frames", fps, tmp_path / "frames.json")
    assert str(refused.value) == f"{tmp_path / 'frames.json'}: fps must be a positive number, got {fps!r}"


# --- YUV -> RGB ----------------------------------------------------------------------------

# libswscale in its accurate mode, chroma taken per pixel without interpolation (POINT with
# FULL_CHR_H_INT): the same upsampling by repetition, so the two may differ by rounding only.
# (Its default fast path, as in frame.to_ndarray(format="rgb24"), is biased by up to 3 levels.)
ACCURATE = Interpolation.POINT | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT
SWS = {
    ("bt601", "limited"): (Colorspace.ITU601, ColorRange.MPEG),
    ("bt601", "full"): (Colorspace.ITU601, ColorRange.JPEG),
    ("bt709", "limited"): (Colorspace.ITU709, ColorRange.MPEG),
    ("bt709", "full"): (Colorspace.ITU709, ColorRange.JPEG),
}


def yuv_frame(y: np.ndarray, u: np.ndarray, v: np.ndarray, pixel_format: str) -> av.VideoFrame:
    frame = av.VideoFrame(y.shape[1], y.shape[0], pixel_format)
    for plane, values in zip(frame.planes, (y, u, v)):
        assert (plane.height, plane.width) == values.shape
        buffer = np.zeros((plane.height, plane.line_size), np.uint8)
        buffer[:, : plane.width] = values
        plane.update(buffer.tobytes())
    return frame


def legal_planes(seed: int, chroma_shape: tuple[int, int], height: int = H, width: int = W):
    """Random planes in the legal ranges (Y 16..235, U and V 16..240)."""
    rng = np.random.default_rng(seed)
    return (
        rng.integers(16, 236, (height, width), dtype=np.uint8),
        rng.integers(16, 241, chroma_shape, dtype=np.uint8),
        rng.integers(16, 241, chroma_shape, dtype=np.uint8),
    )


def libswscale_rgb(frame: av.VideoFrame, matrix: str, value_range: str) -> np.ndarray:
    colorspace, color_range = SWS[(matrix, value_range)]
    return frame.reformat(
        format="rgb24",
        src_colorspace=colorspace,
        dst_colorspace=colorspace,
        src_color_range=color_range,
        dst_color_range=ColorRange.JPEG,
        interpolation=ACCURATE,
    ).to_ndarray()


@pytest.mark.parametrize("matrix, value_range", list(SWS))
@pytest.mark.parametrize("pixel_format, chroma_shape", [("yuv420p", (H // 2, W // 2)), ("yuv422p", (H, W // 2)), ("yuv444p", (H, W))])
def test_yuv_to_rgb_agrees_with_libswscale(matrix, value_range, pixel_format, chroma_shape):
    y, u, v = legal_planes(zlib.crc32(f"{matrix} {value_range} {pixel_format}".encode()), chroma_shape)
    frame = yuv_frame(y, u, v, pixel_format)
    ours = yuv_to_rgb(y, u, v, matrix, value_range).astype(int)
    reference = libswscale_rgb(frame, matrix, value_range).astype(int)
    assert ours.shape == reference.shape == (H, W, 3)
    difference = np.abs(ours - reference)
    assert difference.max() <= 2
    assert difference.mean() < 0.5


def test_frame_rgb_of_a_decoded_frame_agrees_with_libswscale(tmp_path: Path):
    """A real decoded frame (colour unspecified in the stream: BT.601, limited range)."""
    rng = np.random.default_rng(7)
    path = tmp_path / "colour.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        for index in range(3):
            rgb = np.repeat(np.repeat(rng.integers(30, 220, (H // 8, W // 8, 3), dtype=np.uint8), 8, 0), 8, 1)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    with av.open(str(path)) as container:
        decoded = list(container.decode(container.streams.video[0]))
    assert len(decoded) == 3
    for frame in decoded:
        # PyAV's own reading of the planes, into a fresh frame: libswscale would otherwise place
        # the chroma samples by the stream's chroma location (interpolating), not repeat them.
        planes = frame.to_ndarray()
        y, u, v = planes[:H], planes[H : H + H // 4].reshape(H // 2, W // 2), planes[H + H // 4 :].reshape(H // 2, W // 2)
        reference = libswscale_rgb(yuv_frame(y, u, v, "yuv420p"), "bt601", "limited")
        difference = np.abs(frame_rgb(frame, "here").astype(int) - reference.astype(int))
        assert difference.max() <= 2


# Hand-computed values. With Kr, Kb the matrix's luma weights (BT.601: 0.299, 0.114; BT.709:
# 0.2126, 0.0722) and Kg = 1 - Kr - Kb:
#   R = Y' + 2(1-Kr) V'
#   G = Y' - 2(1-Kb)Kb/Kg U' - 2(1-Kr)Kr/Kg V'
#   B = Y' + 2(1-Kb) U'
# limited range: Y' = (Y-16) 255/219, U' = (U-128) 255/224, V' = (V-128) 255/224;
# full range:    Y' = Y, U' = U-128, V' = V-128.
# The results are clipped to 0..255 and rounded; the fixed-point coefficients (1/256 steps) may
# be 1 off.
HAND = {
    ("bt601", "limited"): {
        (100, 90, 200): (212.72, 54.16, 21.15),
        (180, 160, 60): (82.43, 233.70, 255.51),
        (235, 128, 128): (255, 255, 255),
        (16, 128, 128): (0, 0, 0),
        (60, 200, 100): (6.54, 45.79, 196.47),
    },
    ("bt601", "full"): {
        (100, 90, 200): (200.94, 61.66, 32.66),
        (180, 160, 60): (84.66, 217.55, 236.70),
        (235, 128, 128): (235, 235, 235),
        (60, 200, 100): (20.74, 55.22, 187.58),
        (50, 240, 16): (-107.02, 91.44, 248.46),
    },
    ("bt709", "limited"): {
        (100, 90, 200): (226.89, 67.54, 17.54),
        (180, 160, 60): (69.05, 220.37, 258.56),
        (126, 128, 128): (128.08, 128.08, 128.08),
        (60, 200, 100): (1.04, 50.80, 203.33),
    },
    ("bt709", "full"): {
        (100, 90, 200): (213.39, 73.41, 29.49),
        (180, 160, 60): (72.91, 205.84, 239.38),
        (16, 128, 128): (16, 16, 16),
        (60, 200, 100): (15.91, 59.62, 193.60),
    },
}


@pytest.mark.parametrize("matrix, value_range", list(HAND))
def test_yuv_to_rgb_hand_computed(matrix, value_range):
    for (y, u, v), expected in HAND[(matrix, value_range)].items():
        got = yuv_to_rgb(np.array([[y]], np.uint8), np.array([[u]], np.uint8), np.array([[v]], np.uint8), matrix, value_range)
        ideal = np.clip(np.floor(np.array(expected) + 0.5), 0, 255)
        assert np.abs(got[0, 0].astype(int) - ideal).max() <= 1, ((y, u, v), got[0, 0], expected)


def test_hand_values_tell_the_coefficient_sets_apart():
    """The tolerance of 1 is far below the differences between the four sets."""
    for (y, u, v) in [(100, 90, 200), (60, 200, 100)]:
        results = [
            tuple(yuv_to_rgb(np.array([[y]], np.uint8), np.array([[u]], np.uint8), np.array([[v]], np.uint8), *key)[0, 0])
            for key in SWS
        ]
        for i in range(len(results)):
            for j in range(i + 1, len(results)):
                assert np.abs(np.array(results[i], int) - np.array(results[j], int)).max() > 5


def test_odd_sized_420_frame_repeats_each_chroma_sample_over_2x2(tmp_path: Path):
    """A 63x47 4:2:0 frame has 32x24 chroma samples: the last row and column take half a block."""
    y, u, v = legal_planes(3, (24, 32), height=47, width=63)
    odd = frame_rgb(yuv_frame(y, u, v, "yuv420p"), "here")
    padded = np.pad(y, ((0, 1), (0, 1)), constant_values=16)
    np.testing.assert_array_equal(odd, yuv_to_rgb(padded, u, v, "bt601", "limited")[:47, :63])
    expected = yuv_to_rgb(y[46:47, 62:63], u[23:24, 31:32], v[23:24, 31:32], "bt601", "limited")
    np.testing.assert_array_equal(odd[46:47, 62:63], expected)


def test_frame_rgb_reads_the_matrix_and_range_from_the_frame():
    y, u, v = legal_planes(5, (H // 2, W // 2))
    frame = yuv_frame(y, u, v, "yuv420p")
    np.testing.assert_array_equal(frame_rgb(frame, "here"), yuv_to_rgb(y, u, v, "bt601", "limited"))
    frame.colorspace = 1  # AVCOL_SPC_BT709
    np.testing.assert_array_equal(frame_rgb(frame, "here"), yuv_to_rgb(y, u, v, "bt709", "limited"))
    frame.color_range = 2  # AVCOL_RANGE_JPEG
    np.testing.assert_array_equal(frame_rgb(frame, "here"), yuv_to_rgb(y, u, v, "bt709", "full"))
    frame.colorspace = 6  # SMPTE 170M: BT.601
    np.testing.assert_array_equal(frame_rgb(frame, "here"), yuv_to_rgb(y, u, v, "bt601", "full"))
    full_range = yuv_frame(y, u, v, "yuvj420p")  # the j formats are full range
    np.testing.assert_array_equal(frame_rgb(full_range, "here"), yuv_to_rgb(y, u, v, "bt601", "full"))


@pytest.mark.parametrize("pixel_format", ["rgb24", "yuv420p10le", "nv12", "gray"])
def test_unsupported_pixel_formats_are_refused_with_the_re_encode_hint(pixel_format):
    with pytest.raises(InputError) as refused:
        frame_rgb(av.VideoFrame(W, H, pixel_format), "clip.mkv at 1.000 s")
    assert str(refused.value) == (
        f"clip.mkv at 1.000 s: pixel format {pixel_format} is not read (8-bit planar YUV only): "
        "re-encode with ffmpeg -pix_fmt yuv420p"
    )


def test_unsupported_pixel_format_of_a_video_file_is_refused(tmp_path: Path):
    path = tmp_path / "video.mkv"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p10le"
        for index in range(2):
            frame = av.VideoFrame.from_ndarray(np.zeros((H, W, 3), np.uint8), format="rgb24").reformat(format="yuv420p10le")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    with pytest.raises(InputError) as refused:
        VideoFrame(path, 100).load()
    assert str(refused.value) == (
        f"{path} at 0.100 s: pixel format yuv420p10le is not read (8-bit planar YUV only): re-encode with ffmpeg -pix_fmt yuv420p"
    )
