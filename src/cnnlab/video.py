"""Videos in and out, one frame at a time: a video file or a folder of frames read as uint8
(3, H, W) tensors, and an H.264 MP4 written from such frames (bounded memory: never the whole video).

    clip = open_video("drive.mp4")                      # checked: a video stream, a first frame
    with write_video("out.mp4", clip.fps) as out:
        for f in clip:                                  # Frame(index, time, image)
            out.write(f.image)

PyAV (FFmpeg's libraries, ``pip install 'cnnlab[video]'``) decodes and encodes; it is imported
when a video is opened, so nothing else needs it.
"""
from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from cnnlab.errors import CnnlabError, clean
from cnnlab.files import replacing_path
from cnnlab.images import DEFAULT_MAX_PIXELS, IMAGE_SUFFIXES, read_image

if TYPE_CHECKING:
    from torch import Tensor

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm")
FOLDER_FPS = Fraction(25)  # frames/s of a folder of frames unless given
CODECS = ("h264", "mpeg4")  # the first the wheel's FFmpeg can encode (h264: its H.264 encoder, libx264 in PyPI's)
CRF = "18"  # H.264 constant rate factor: 0 lossless .. 51 worst; 18 looks lossless to most eyes


@dataclass(frozen=True)
class Frame:
    index: int      # 0, 1, ... in display order
    time: float     # seconds from the video's start
    image: Tensor   # uint8 (3, H, W)


@dataclass(frozen=True)
class Video:
    """A video file or a folder of frames, checked when opened; iterating decodes one frame at a time."""

    name: str                  # as given, for messages
    stem: str                  # for the names of files written about it
    fps: Fraction              # frames per second
    count: int | None          # frames, when the file says (an estimate) or a folder's files
    size: tuple[int, int]      # (H, W) of the first frame
    files: tuple[Path, ...] = ()  # a folder's frames in order; empty for a video file

    def __iter__(self) -> Iterator[Frame]:
        return self._folder_frames() if self.files else self._decoded()

    def _decoded(self) -> Iterator[Frame]:
        import torch

        av = _av()
        with _reading(self.name, "decoding"):
            with av.open(self.name) as container:
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"  # FFmpeg decodes on several threads
                for i, frame in enumerate(container.decode(stream)):
                    if (frame.height, frame.width) != self.size:
                        raise CnnlabError(f"{self.name}: frame {i} is {frame.width}x{frame.height} pixels, the first "
                                          f"{self.size[1]}x{self.size[0]}; a video whose size changes is not supported")
                    image = torch.from_numpy(frame.to_ndarray(format="rgb24")).permute(2, 0, 1)  # (3, H, W)
                    yield Frame(i, float(frame.time) if frame.time is not None else i / float(self.fps), image)

    def _folder_frames(self) -> Iterator[Frame]:
        for i, path in enumerate(self.files):
            image = read_image(path, channels=3)
            if tuple(image.shape[-2:]) != self.size:
                h, w = self.size
                raise CnnlabError(f"{path}: {image.shape[-1]}x{image.shape[-2]} pixels, but the first frame of "
                                  f"{self.name} is {w}x{h}; a video's frames share one size")
            yield Frame(i, i / float(self.fps), image)


def is_video(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def open_video(path: str | Path, fps: float | None = None) -> Video:
    """A video file (at its own frame rate), or a folder of frames (``fps``, default 25) taken in
    name order (``frame2`` before ``frame10``). Refused unless a first frame decodes."""
    path = Path(path)
    if path.is_dir():
        if fps is not None and not 0 < fps <= 1000:
            raise CnnlabError(f"--fps {fps}: expected 0..1000 frames per second")
        return _frame_folder(path, Fraction(fps).limit_denominator(1001) if fps else FOLDER_FPS)
    if fps is not None:
        raise CnnlabError(f"--fps {fps}: {path} is a video file, played at its own frame rate; --fps is for "
                          f"a folder of frames")
    if not path.is_file():
        raise CnnlabError(f"{path}: {'not a file' if path.exists() else 'no such file'}")
    av = _av()
    with _reading(str(path), "opening"):
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise CnnlabError(f"{path}: holds no video stream")
            stream = container.streams.video[0]
            h, w = stream.codec_context.height, stream.codec_context.width
            if h * w > DEFAULT_MAX_PIXELS:
                raise CnnlabError(f"{path}: {w}x{h} frames, over {DEFAULT_MAX_PIXELS:,} pixels each")
            first = next(iter(container.decode(stream)), None)
            if first is None:
                raise CnnlabError(f"{path}: a video with no frames")
            rate = Fraction(stream.average_rate or stream.guessed_rate or FOLDER_FPS)
            seconds = float(stream.duration * stream.time_base) if stream.duration else (container.duration or 0) / 1e6
            count = stream.frames or round(seconds * rate) or None  # the header's count, else from the duration
    return Video(str(path), path.stem, rate, count, (first.height, first.width))


def _frame_folder(path: Path, fps: Fraction) -> Video:
    files = sorted((p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()),
                   key=lambda p: [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", p.name)])
    if not files:
        raise CnnlabError(f"{path}: a folder with no frames (image files: {', '.join(IMAGE_SUFFIXES)})")
    size = tuple(read_image(files[0], channels=3).shape[-2:])
    return Video(str(path), path.name, fps, len(files), size, tuple(files))


@contextlib.contextmanager
def write_video(path: str | Path, fps: Fraction) -> Iterator["Encoder"]:
    """An MP4 to ``write(image)`` frames to, through a temporary file renamed over ``path`` when
    the block ends without an error (deleted otherwise)."""
    av = _av()
    with replacing_path(path) as tmp, av.open(str(tmp), mode="w", format="mp4") as container:
        encoder = Encoder(av, container, fps)
        yield encoder
        encoder.flush()


class Encoder:
    """H.264 (MPEG-4 Part 2 where the wheel's FFmpeg has no H.264 encoder), 4:2:0 colour. Every
    frame has the first frame's size; odd sides are padded by a black row or column (4:2:0 needs even)."""

    def __init__(self, av, container, fps: Fraction):
        self.av, self.container, self.fps = av, container, fps
        self.stream, self.frames = None, 0

    def write(self, image: Tensor) -> None:
        """Encode one uint8 (3, H, W) frame."""
        import torch.nn.functional as F

        h, w = image.shape[-2:]
        if self.stream is None:
            self.stream = self._open_stream(h + h % 2, w + w % 2)
        if (h + h % 2, w + w % 2) != (self.stream.height, self.stream.width):
            raise ValueError(f"frame {self.frames} is {w}x{h}; the video's frames are "
                             f"{self.stream.width}x{self.stream.height}")
        image = F.pad(image, (0, w % 2, 0, h % 2))  # (3, H + H % 2, W + W % 2)
        frame = self.av.VideoFrame.from_ndarray(image.permute(1, 2, 0).contiguous().numpy(), format="rgb24")
        self.container.mux(self.stream.encode(frame))
        self.frames += 1

    def flush(self) -> None:
        """Encode the frames the encoder still holds (its lookahead)."""
        if self.stream is not None:
            self.container.mux(self.stream.encode(None))

    def _open_stream(self, h: int, w: int):
        codec = _encoder(self.av)
        stream = self.container.add_stream(codec, rate=self.fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": CRF, "preset": "fast"}
        else:  # 1 bit per pixel and frame: about what H.264 spends at CRF 18 on a detailed scene
            stream.bit_rate = round(w * h * float(self.fps))
        return stream


# ---------------------------------------------------------------------- PyAV
def _av():
    try:
        import av
    except ImportError:
        raise CnnlabError("videos need PyAV: pip install 'cnnlab[video]'") from None
    return av


def _encoder(av) -> str:
    """The name of the first of CODECS this FFmpeg can encode (mpeg4 is in every build)."""
    for name in CODECS:
        try:
            return av.codec.Codec(name, "w").name
        except ValueError:  # UnknownCodecError: no encoder of that name
            continue
    raise CnnlabError(f"writing a video: this FFmpeg encodes none of {', '.join(CODECS)}")


class _reading:
    """PyAV's errors while opening or decoding ``name`` as one CnnlabError naming the file."""

    def __init__(self, name: str, doing: str):
        self.name, self.doing = name, doing

    def __enter__(self):
        return self

    def __exit__(self, kind, error, trace) -> bool:
        if kind is None or not issubclass(kind, _av().error.FFmpegError):
            return False
        if issubclass(kind, FileNotFoundError):
            raise CnnlabError(f"{self.name}: no such file") from None
        if issubclass(kind, EOFError):
            raise CnnlabError(f"{self.name}: ends unexpectedly while {self.doing} (empty or cut short)") from None
        raise CnnlabError(f"{self.name}: not a video FFmpeg can read ({self.doing}: "
                          f"{clean(getattr(error, 'strerror', None) or error)})") from None
