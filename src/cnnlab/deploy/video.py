"""A Predictor over a video: its frames streamed through the task a batch at a time, each frame's
prediction yielded as it is done and, with a folder, written to ``<stem>_overlay.mp4`` (the task's
drawing of every frame) and ``<stem>_frames.jsonl`` (a JSON line per frame). Memory holds one
batch of frames, never the video.

    clip = open_video("drive.mp4")
    for r in video_predictions(lm, clip, lm.task.options({"alpha": 0.4}), Path("out")):
        print(r["frame"], r["time"], r["shares"])
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

from cnnlab.deploy.predictor import Predictor
from cnnlab.errors import CnnlabError
from cnnlab.files import replacing
from cnnlab.video import Video, write_video

FRAME_BATCH = 8  # frames predicted together: what memory holds at once (with their drawings)


def check_video_task(lm: Predictor) -> None:
    """Refuse a model whose task does not predict videos, before any frame is read."""
    if not lm.task.video:
        raise CnnlabError(f"videos: a {lm.task.name} model predicts images only (segment and classify models "
                          f"predict videos); extract its frames (ffmpeg -i VIDEO frame%05d.png) and predict them")


def video_outputs(video: Video, folder: Path) -> tuple[Path, Path]:
    """The overlay video and the JSON lines ``video_predictions`` writes into ``folder``."""
    return folder / f"{video.stem}_overlay.mp4", folder / f"{video.stem}_frames.jsonl"


def video_predictions(lm: Predictor, video: Video, options, folder: Path | None = None,
                      batch_size: int = FRAME_BATCH) -> Iterator[dict]:
    """``{"frame", "time", ...the task's prediction}`` for each frame, in order; with ``folder``,
    also written to its ``video_outputs`` (each appears whole once the last frame is done). The
    task must predict videos (``check_video_task``)."""
    if folder is None:
        for r, _ in _frames(lm, video, options, batch_size):
            yield r
        return
    overlay, lines = video_outputs(video, folder)
    with write_video(overlay, video.fps) as encoder, replacing(lines, "w") as jsonl:
        for r, drawn in _frames(lm, video, options, batch_size):
            encoder.write(drawn)
            jsonl.write(json.dumps(r) + "\n")
            yield r


def _frames(lm: Predictor, video: Video, options, batch_size: int):
    """(prediction, drawn frame) per frame, ``batch_size`` frames decoded and predicted at a time."""
    batch = []
    for frame in video:
        batch.append(frame)
        if len(batch) == batch_size:
            yield from _predicted(lm, batch, options)
            batch = []
    if batch:
        yield from _predicted(lm, batch, options)


def _predicted(lm: Predictor, frames: list, options):
    found = lm.task.predict_frames(lm, [f.image for f in frames], options)
    for f, (r, drawn) in zip(frames, found):
        yield {"frame": f.index, "time": round(f.time, 6), **r}, drawn
