"""predict on videos: a clip (or a folder of frames) in, an overlay video and a JSON line per frame
out, one frame batch in memory at a time; bad videos refused in one line naming the file."""
from __future__ import annotations

import json
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

av = pytest.importorskip("av", reason="PyAV is not installed (the video extra)")

sys.path.insert(0, str(Path(__file__).parent))
import web_checkpoints  # noqa: E402  (tests/web_checkpoints.py: small random-weight checkpoints)

from cnnlab import api, cli  # noqa: E402
from cnnlab.errors import CnnlabError  # noqa: E402
from cnnlab.video import open_video  # noqa: E402

ALPHA = 0.5  # the default mask opacity


def moving_square(i: int, h: int = 48, w: int = 64) -> np.ndarray:
    """(H, W, 3) uint8: a grey scene with a red square moving right by 4 pixels a frame."""
    a = np.full((h, w, 3), 200, np.uint8)
    a[10:26, 4 + 4 * i:20 + 4 * i] = (230, 80, 60)
    return a


def write_clip(path: Path, frames: int = 12, h: int = 48, w: int = 64, fps: int = 12, container: str = "mp4",
               codec: str = "libx264") -> Path:
    with av.open(str(path), "w", format=container) as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for i in range(frames):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(moving_square(i % 12, h, w), format="rgb24")))
        out.mux(stream.encode(None))
    return path


def decoded(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    return {"segment": web_checkpoints.segmenter(folder),
            "classify": web_checkpoints.classifier(folder, "rgb", (3, 16, 16), [0.5, 0.4, 0.3], [0.25, 0.2, 0.3])}


def test_a_clip_becomes_an_overlay_video_and_a_json_line_per_frame(tmp_path, checkpoints, capsys):
    clip = write_clip(tmp_path / "drive.mp4")
    out = tmp_path / "saved"
    assert cli.main(["predict", str(checkpoints["segment"]), str(clip), "--save", str(out)]) == 0
    overlay, lines = out / "drive_overlay.mp4", out / "drive_frames.jsonl"
    assert f"wrote 12 frames of {clip} to {overlay} and {lines}" in capsys.readouterr().out
    rows = [json.loads(line) for line in lines.read_text().splitlines()]
    assert [r["frame"] for r in rows] == list(range(12))
    assert [r["time"] for r in rows] == pytest.approx([i / 12 for i in range(12)], abs=1e-3)
    assert all(sum(r["shares"].values()) == pytest.approx(1, abs=1e-4) and r["size"] == [48, 64] for r in rows)
    with av.open(str(overlay)) as c:
        assert c.streams.video[0].average_rate == 12
    frames, given = decoded(overlay), decoded(clip)
    assert len(frames) == 12 and all(f.shape[1] == 64 and f.shape[0] > 48 and f.shape[0] % 2 == 0 for f in frames)
    classes, colors = ["background", "circle", "square"], np.array([(0, 0, 0), (230, 80, 60), (60, 120, 230)])
    for frame, source, row in zip(frames, given, rows):
        top = frame[:48].astype(float)
        assert np.abs(top - source).mean() > 10  # the mask is drawn over the frame
        mask = (top - (1 - ALPHA) * source) / ALPHA  # (H, W, 3): the colour blended in at each pixel
        nearest = np.linalg.norm(mask[:, :, None] - colors, axis=-1).argmin(-1)  # (H, W) class ids
        for k, name in enumerate(classes):  # the colours drawn are the shares the JSON line reports
            assert (nearest == k).mean() == pytest.approx(row["shares"].get(name, 0), abs=0.1)
        assert (frame[48:] > 200).all(-1).mean() > 0.5  # the legend: a white strip with swatches and names


def test_a_folder_of_frames_plays_in_name_order_and_prints_a_line_per_frame(tmp_path, checkpoints, capsys):
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(1, 12):  # frame2 before frame10: numbers in names sort as numbers
        Image.fromarray(np.full((30, 40, 3), 20 * i, np.uint8)).save(frames / f"frame{i}.png")
    out = tmp_path / "saved"
    assert cli.main(["predict", str(checkpoints["segment"]), str(frames), "--video", "--fps", "5", "--alpha", "0",
                     "--save", str(out)]) == 0
    drawn = decoded(out / "frames_overlay.mp4")
    assert len(drawn) == 11 and drawn[0].shape[:2][1] == 40  # 30x40: an even size already
    brightness = [float(f[:30].mean()) for f in drawn]  # alpha 0: the frames themselves
    assert brightness == pytest.approx([20 * i for i in range(1, 12)], abs=3)
    rows = [json.loads(line) for line in (out / "frames_frames.jsonl").read_text().splitlines()]
    assert [r["time"] for r in rows] == pytest.approx([i / 5 for i in range(11)])
    capsys.readouterr()
    assert cli.main(["predict", str(checkpoints["segment"]), str(frames), "--video"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 11 and printed[1].startswith(f"{frames} frame 1 0.040s: ")
    assert cli.main(["predict", str(checkpoints["segment"]), str(frames), "--video", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 11 and rows[3]["video"] == str(frames) and rows[3]["frame"] == 3


def test_a_classifier_names_each_frame(tmp_path, checkpoints, capsys):
    clip = write_clip(tmp_path / "clip.mkv", frames=5, container="matroska")
    out = tmp_path / "saved"
    assert cli.main(["predict", str(checkpoints["classify"]), str(clip), "--save", str(out), "--topk", "2"]) == 0
    rows = [json.loads(line) for line in (out / "clip_frames.jsonl").read_text().splitlines()]
    assert len(rows) == 5 and all(len(r["top"]) == 2 for r in rows)
    frames = decoded(out / "clip_overlay.mp4")
    assert len(frames) == 5 and frames[0].shape == (48 + 16, 64, 3)  # a strip below naming the classes
    # the same answer as predicting the frame as an image
    [image] = api.predict(checkpoints["classify"], [decoded(clip)[2]], topk=2)
    assert [t["class"] for t in rows[2]["top"]] == [t["class"] for t in image["top"]]
    assert cli.main(["predict", str(checkpoints["classify"]), str(clip), "--save", str(out)]) == 2
    assert "--exist-ok" in capsys.readouterr().err
    assert cli.main(["predict", str(checkpoints["classify"]), str(clip), "--save", str(out), "--exist-ok"]) == 0


def test_memory_holds_a_batch_of_frames_not_the_video(tmp_path, checkpoints):
    clip = write_clip(tmp_path / "long.mp4", frames=96, h=240, w=320)
    video_bytes = 96 * 240 * 320 * 3
    tracemalloc.start()  # NumPy's buffers (each decoded and drawn frame) are traced
    try:
        stream = api.predict_video(checkpoints["segment"], clip, out=tmp_path, batch_size=4)
        tracemalloc.reset_peak()
        assert sum(1 for _ in stream) == 96
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < video_bytes / 4, f"peak {peak / 1e6:.1f} MB for a {video_bytes / 1e6:.1f} MB video"
    assert len(decoded(tmp_path / "long_overlay.mp4")) == 96


def test_bad_videos_are_refused_in_one_line_naming_the_file(tmp_path, checkpoints, capsys):
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    no_frames = tmp_path / "none.avi"
    with av.open(str(no_frames), "w", format="avi") as out:
        stream = out.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        out.start_encoding()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(write_clip(tmp_path / "whole.mp4").read_bytes()[:600])
    cases = [(text, "not a video FFmpeg can read"), (empty, "not a video FFmpeg can read"),
             (no_frames, "a video with no frames"), (cut, "not a video FFmpeg can read"),
             (tmp_path / "absent.mp4", "no such file")]
    for path, said in cases:
        save = tmp_path / f"saved_{path.stem}"
        assert cli.main(["predict", str(checkpoints["segment"]), str(path), "--save", str(save)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"cnnlab: error: {path}: {said}") and err.count("\n") == 1, err
        assert not save.exists()  # refused before anything is written
    clip = write_clip(tmp_path / "clip.mp4", frames=2)
    image = tmp_path / "still.png"
    Image.fromarray(moving_square(0)).save(image)
    assert cli.main(["predict", str(checkpoints["segment"]), str(clip), str(image)]) == 2
    assert "images or videos" in capsys.readouterr().err
    assert cli.main(["predict", str(checkpoints["segment"]), str(clip), "--fps", "10"]) == 2
    assert "its own frame rate" in capsys.readouterr().err
    (tmp_path / "empty_folder").mkdir()
    with pytest.raises(CnnlabError, match="a folder with no frames"):
        open_video(tmp_path / "empty_folder")


def test_a_detector_refuses_videos_and_a_missing_pyav_is_named(tmp_path, monkeypatch, capsys):
    detector = web_checkpoints.detector(tmp_path)
    clip = write_clip(tmp_path / "clip.mp4", frames=2)
    assert cli.main(["predict", str(detector), str(clip)]) == 2
    assert "a detect model predicts images only" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "av", None)  # `import av` raises ImportError
    with pytest.raises(CnnlabError, match=r"pip install 'cnnlab\[video\]'"):
        open_video(clip)
