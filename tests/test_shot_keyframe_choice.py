"""No-reference mode keeps a shot's middle frame unless another candidate is clearly surer (review finding 3)."""
from __future__ import annotations

import numpy as np


def test_a_candidate_within_the_margin_does_not_replace_the_middle_frame() -> None:
    """A near-tie in the automatic model's confidence (float noise, another decoder) must not give
    the shot another reference: a candidate surer than the middle frame by CONFIDENCE_MARGIN or less
    leaves the middle frame chosen, one surer by more replaces it."""
    import cv2
    import skimage.data

    from vidcolor.color import rgb_to_gray_lightness
    from vidcolor.colorizers import get_colorizer
    from vidcolor.run.shots import CONFIDENCE_MARGIN, most_confident_frame, most_confident_reference

    auto = get_colorizer("autocolor", keyframe=True)

    def confidence(lightness: np.ndarray) -> float:
        auto.reset()
        return float(np.mean(auto.step(lightness, None).confidence))

    photos = [skimage.data.chelsea(), skimage.data.coffee(), skimage.data.astronaut(), skimage.data.rocket()]
    pictures = [rgb_to_gray_lightness(cv2.resize(p, (96, 64), interpolation=cv2.INTER_AREA).astype(np.float32) / 255)
                for p in photos]
    scores = [confidence(p) for p in pictures]
    middle = pictures[int(np.argmin(scores))]
    # nearly the same frame, slightly surer: the middle frame with one pixel nudged
    nudged = [middle.copy() for _ in range(12)]
    for n, picture in enumerate(nudged):
        picture[n % 64, (7 * n) % 96] += 0.5 if n % 2 else -0.5
    near = [(confidence(p) - min(scores), p) for p in nudged]
    near = [(gain, p) for gain, p in near if 0 < gain <= CONFIDENCE_MARGIN / 2]
    assert near, "no nudged frame is slightly surer than the middle one"
    twin = max(near, key=lambda item: item[0])[1]
    sure = pictures[int(np.argmax(scores))]
    assert max(scores) - min(scores) > 2 * CONFIDENCE_MARGIN  # a clearly surer candidate

    assert most_confident_frame(auto, [(3, twin), (5, middle)])[0] == 3  # without a middle: the surest
    assert most_confident_frame(auto, [(3, twin), (5, middle), (9, twin)], middle=5)[0] == 5
    assert most_confident_frame(auto, [(3, twin), (5, middle), (9, sure)], middle=5)[0] == 9
    frame, reference = most_confident_reference(auto, [(3, twin), (5, middle)], key="k", middle=5)
    assert (frame, reference.key) == (5, "k:5")
