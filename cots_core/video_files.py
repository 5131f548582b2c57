"""Video files through OpenCV (imported when a video is read): frames sampled at even times, each frame
within the image size limits, the container's frame size checked before a frame is decoded."""
from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

from PIL import Image

from cots_core.image_files import downscale
from cots_core.media_checks import (
    DEFAULT_MAX_PIXELS,
    REASON_VIDEO_EMPTY,
    REASON_VIDEO_OPEN,
    DecodedMedia,
    MediaError,
    check_dimensions,
    require_regular_file,
)

_VIDEO_FRAME = "video frame"


def open_video(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS):
    """An opened ``cv2.VideoCapture`` (the caller releases it); MediaError when OpenCV cannot open it, or
    when the frame size the container declares is over ``max_pixels`` (the image limit: a 1.7 MB AVI of
    12000x12000 frames cost 1.1 GB per file while its frames were decoded whole; issue 30). Checked before
    a frame is read; ``_checked_frame`` bounds a container whose header says less than its frames hold."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        capture.release()
        raise MediaError("video could not be opened (corrupt, or a codec OpenCV lacks)", REASON_VIDEO_OPEN)
    width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH) or 0)
    height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
    if width > 0 and height > 0:  # 0: the container does not say; each frame is checked as it comes
        try:
            check_dimensions(width, height, max_pixels, _VIDEO_FRAME)
        except MediaError:
            capture.release()
            raise
    return capture


def _checked_frame(frame, max_pixels: int):
    """A decoded BGR frame within the limits (MediaError otherwise), so at most one oversized frame is ever
    held, even when the container's header understates the frame size."""
    height, width = frame.shape[:2]
    check_dimensions(width, height, max_pixels, _VIDEO_FRAME)
    return frame


def frame_to_image(frame) -> Image.Image:
    """An OpenCV BGR frame as an RGB PIL image."""
    import cv2

    return Image.fromarray(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))


def video_frame_at(path: str | Path, seconds: float, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """The video frame at ``seconds`` (the first frame when seeking fails); frames over ``max_pixels`` are
    refused, as ``read_video`` refuses them."""
    import cv2

    if require_regular_file(path) == 0:
        raise MediaError("empty file (0 bytes)", REASON_VIDEO_EMPTY)
    capture = open_video(path, max_pixels)
    try:
        capture.set(cv2.CAP_PROP_POS_MSEC, max(0.0, seconds) * 1000.0)
        ok, frame = capture.read()
        if not ok:
            capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = capture.read()
        if not ok or frame is None:
            raise MediaError("video has no readable frames", REASON_VIDEO_EMPTY)
        return frame_to_image(_checked_frame(frame, max_pixels))
    finally:
        capture.release()


def video_frames_at(path: str | Path, seconds: list[float], long_side: int | None = None,
                    max_pixels: int = DEFAULT_MAX_PIXELS) -> list[tuple[float, Image.Image]]:
    """(second, RGB frame) of the frames at ``seconds`` (times ``read_video`` sampled, e.g. a video's stored
    segment starts), found by the same frame index ``read_video`` seeks to; each brought down to ``long_side``
    (None: full size) as soon as it is decoded, so at most one full-size frame is held. A frame that does not
    decode (a file cut short midway) is left out; MediaError when the video cannot be opened or a frame is
    over ``max_pixels``."""
    capture, fps, count = _open_counted(path, max_pixels)
    try:
        samples = [(min(max(count - 1, 0), int(round(second * fps))) if fps > 0 else 0, float(second))
                   for second in seconds]
        out = []
        for second, frame in _frames_by_seeking(capture, samples, max_pixels):
            image = frame_to_image(frame)
            if long_side and max(image.size) > long_side:
                image.thumbnail((long_side, long_side), Image.Resampling.BILINEAR)
            out.append((second, image))
        return out
    finally:
        capture.release()


def _open_counted(path: str | Path, max_pixels: int):
    """(capture, frames per second, frame count) of an opened video (0: the container does not say); the caller
    releases the capture. MediaError for an empty file or one OpenCV cannot open (``open_video``)."""
    import cv2

    if require_regular_file(path) == 0:
        raise MediaError("empty file (0 bytes)", REASON_VIDEO_EMPTY)
    capture = open_video(path, max_pixels)
    return capture, capture.get(cv2.CAP_PROP_FPS) or 0.0, int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)


def video_sample_times(duration: float, every_s: float = 2.0, max_frames: int = 32) -> list[float]:
    """One frame every ``every_s`` seconds, spread evenly over the video when that exceeds ``max_frames``."""
    if duration <= 0:
        return [0.0]
    count = max(1, math.ceil(duration / every_s))
    if count <= max_frames:
        return [i * every_s for i in range(count)]
    step = duration / max_frames
    return [i * step for i in range(max_frames)]


def evenly_spaced(count: int, n: int) -> list[int]:
    """n frame indices spread evenly over [0, count), centred in their segments."""
    if count <= 0:
        return []
    n = max(1, min(n, count))
    return [min(count - 1, int((i + 0.5) * count / n)) for i in range(n)]


def video_samples(count: int, fps: float, every_s: float = 2.0, max_frames: int = 32) -> list[tuple[int, float]]:
    """(frame index, second) of each frame ``read_video`` takes from a video of ``count`` frames at ``fps``:
    those at ``video_sample_times`` (the last index clipped to the video), or ``max_frames`` evenly spaced
    (second 0: unknown) when the frame rate is unknown."""
    if count <= 0:
        return []
    if fps <= 0:
        return [(index, 0.0) for index in evenly_spaced(count, max_frames)]
    return [(min(count - 1, int(round(t * fps))), float(t))
            for t in video_sample_times(count / fps, every_s, max(1, max_frames))]


def video_frame_indices(count: int, fps: float, every_s: float = 2.0, max_frames: int = 32) -> list[int]:
    """The frame indices of ``video_samples``."""
    return [index for index, _ in video_samples(count, fps, every_s, max_frames)]


def _count_frames(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> int:
    """How many frames a video has, by decoding it through (for containers that do not say)."""
    capture = open_video(path, max_pixels)
    try:
        count = 0
        while capture.grab():
            count += 1
        return count
    finally:
        capture.release()


def _pick(samples: list, pick: int | None) -> list:
    return [samples[pick % len(samples)]] if pick is not None and samples else samples


def _frames_by_seeking(capture, samples: list[tuple[int, float]],
                       max_pixels: int = DEFAULT_MAX_PIXELS) -> Iterator[tuple[float, object]]:
    """(second, BGR frame) for each sample whose frame decodes, seeking to each; one frame at a time, so a
    caller that shrinks each as it comes holds at most one full-size frame."""
    import cv2

    for position, (index, seconds) in enumerate(samples):
        if position or index:  # a fresh capture is at frame 0: no seek needed
            capture.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, frame = capture.read()
        if ok and frame is not None:
            yield seconds, _checked_frame(frame, max_pixels)


def _frames_in_order(path: str | Path, samples: list[tuple[int, float]],
                     max_pixels: int = DEFAULT_MAX_PIXELS) -> list[tuple[float, object]]:
    """``_frames_by_seeking``'s result read in one pass from the start, for containers where seeking is
    unreliable. Only the wanted frames are kept in memory."""
    wanted = dict(samples)
    frames = []
    capture = open_video(path, max_pixels)
    try:
        for index in range(max(wanted, default=-1) + 1):
            if not capture.grab():
                break
            if index in wanted:
                ok, frame = capture.retrieve()
                if ok and frame is not None:
                    frames.append((wanted[index], _checked_frame(frame, max_pixels)))
    finally:
        capture.release()
    return frames


def read_video(
    path: str | Path,
    target_size: int | None = 224,
    every_s: float = 2.0,
    max_frames: int = 32,
    *,
    pick: int | None = None,
    sample_unknown_length: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> DecodedMedia:
    """Sample frames with OpenCV (``video_samples``); segment i spans [times[i], times[i+1]) (the last
    ends at the end). ``target_size`` None keeps the full resolution.

    ``pick``: only the pick-th of those frames (modulo their number), without decoding the others (one
    training sample). ``sample_unknown_length``: when the container gives no frame count (or seeking fails),
    count the frames by decoding the video through and sample them anyway, as training does; otherwise (the
    indexer, which would not decode a whole video twice) such a video is its first frame. ``max_pixels``:
    the limit on a frame's size, as on an image's (checked from the container before a frame is decoded).
    """
    import cv2

    capture, fps, count = _open_counted(path, max_pixels)
    try:
        width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH) or 0)
        height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
        duration = count / fps if fps > 0 and count > 0 else 0.0
        if duration or (sample_unknown_length and count > 0):
            samples = video_samples(count, fps, every_s, max_frames)
        else:  # no length: the first frame stands for the video, unless it is counted below
            samples = [] if sample_unknown_length else [(0, 0.0)]
        frames = list(_frames_by_seeking(capture, _pick(samples, pick), max_pixels))
    finally:
        capture.release()
    if not frames and sample_unknown_length:
        counted = _count_frames(path, max_pixels)
        duration = counted / fps if fps > 0 and counted > 0 else 0.0
        frames = _frames_in_order(path, _pick(video_samples(counted, fps, every_s, max_frames), pick), max_pixels)
    if not frames:
        raise MediaError("video has no readable frames", REASON_VIDEO_EMPTY)
    images = [frame_to_image(frame) for _, frame in frames]
    if target_size:
        images = [downscale(image, target_size) for image in images]
    return DecodedMedia("video", images, width, height, times=[seconds for seconds, _ in frames],
                        duration=duration or None)


def verify_video(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
    """The video opens and its first frame decodes (``read_video``'s errors otherwise)."""
    read_video(path, max_frames=1, max_pixels=max_pixels)
