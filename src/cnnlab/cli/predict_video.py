"""``cnnlab predict CKPT VIDEO...``: a line per frame on the terminal (a JSON line with ``--json``),
or with ``--save DIR`` each video's overlay video and frame JSON lines, a progress bar on a terminal."""
from __future__ import annotations

import sys
from pathlib import Path

from cnnlab.cli.common import json_text
from cnnlab.errors import CnnlabError


def wants_video(a) -> bool:
    """Whether ``predict``'s inputs are videos: files of a video suffix, or folders of frames (``--video``)."""
    from cnnlab.video import is_video

    videos = [item for item in a.images if a.video or is_video(item)]
    if videos and len(videos) < len(a.images):
        images = [item for item in a.images if item not in videos]
        raise CnnlabError(f"{images[0]}: predict takes images or videos (and --video folders of frames), "
                          f"not both at once")
    return bool(videos) or (a.video and not a.images)


def run(lm, a, given: dict) -> int:
    from cnnlab import api
    from cnnlab.deploy.video import check_video_task
    from cnnlab.video import open_video

    check_video_task(lm)
    if "out" in given:
        raise CnnlabError("--out: a video's overlay goes to --save DIR (with its frames' JSON lines)")
    if not a.images:
        raise CnnlabError("--video: give the folders of frames to predict")
    videos = [open_video(item, a.fps) for item in a.images]  # each checked before any is predicted
    stems = [v.stem for v in videos]
    twice = next((v for v in videos if stems.count(v.stem) > 1), None)
    if a.save and twice:
        raise CnnlabError(f"{twice.name}: another video is also named {twice.stem}: their files in --save "
                          f"{a.save} would collide; predict them one at a time")
    for video in videos:
        stream = api.predict_video(lm, video, out=a.save, exist_ok=a.exist_ok, **given)
        if a.save:
            _save(video, stream, Path(a.save))
        else:
            for r in stream:
                print(json_text({"video": video.name, **r}, indent=None) if a.json
                      else f"{video.name} frame {r['frame']} {r['time']:.3f}s: {lm.task.format_frame(r)}")
    return 0


def _save(video, stream, folder: Path) -> None:
    """Read ``stream`` through (it writes the files), a progress bar (frames/s, ETA) on a terminal."""
    from tqdm.auto import tqdm

    from cnnlab.deploy.video import video_outputs

    with tqdm(total=video.count, unit="frame", desc=video.stem, file=sys.stderr, leave=False, dynamic_ncols=True,
              disable=not sys.stderr.isatty()) as bar:
        frames = 0
        for _ in stream:
            frames += 1
            bar.update(1)
    overlay, lines = video_outputs(video, folder)
    print(f"wrote {frames} frames of {video.name} to {overlay} and {lines}")
