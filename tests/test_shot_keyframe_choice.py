"""No-reference mode keeps a shot's middle frame unless another candidate is clearly surer (review finding 3),
and among candidates equally sure within the margin it takes the one nearest the middle."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest


@pytest.fixture(scope="module")
def auto():  # noqa: ANN201 - a Colorizer
    from vidcolor.colorizers import get_colorizer

    return get_colorizer("autocolor", keyframe=True)


@pytest.fixture(scope="module")
def confidence(auto) -> Callable[[np.ndarray], float]:  # noqa: ANN001
    def mean_confidence(lightness: np.ndarray) -> float:
        auto.reset()
        return float(np.mean(auto.step(lightness, None).confidence))

    return mean_confidence


@pytest.fixture(scope="module")
def pictures() -> list[np.ndarray]:
    import cv2
    import skimage.data

    from vidcolor.color import rgb_to_gray_lightness

    photos = [skimage.data.chelsea(), skimage.data.coffee(), skimage.data.astronaut(), skimage.data.rocket()]
    return [rgb_to_gray_lightness(cv2.resize(p, (96, 64), interpolation=cv2.INTER_AREA).astype(np.float32) / 255)
            for p in photos]


def near_twin(picture: np.ndarray, confidence: Callable[[np.ndarray], float], surer: bool) -> np.ndarray:
    """``picture`` with one pixel nudged, whose confidence differs from its own by at most half the
    margin (``surer``: above it, else below): the same frame as another decoder might give it."""
    from vidcolor.run.shots import CONFIDENCE_MARGIN

    own = confidence(picture)
    for n in range(40):
        nudged = picture.copy()
        nudged[(3 * n) % 64, (7 * n) % 96] += 0.5 if n % 2 else -0.5
        gain = confidence(nudged) - own
        if 0 < (gain if surer else -gain) <= CONFIDENCE_MARGIN / 2:
            return nudged
    raise AssertionError("no nudged frame is slightly " + ("surer" if surer else "less sure"))


def test_a_candidate_within_the_margin_does_not_replace_the_middle_frame(auto, confidence, pictures) -> None:  # noqa: ANN001
    """A near-tie in the automatic model's confidence (float noise, another decoder) must not give
    the shot another reference: a candidate surer than the middle frame by CONFIDENCE_MARGIN or less
    leaves the middle frame chosen, one surer by more replaces it."""
    from vidcolor.run.shots import CONFIDENCE_MARGIN, most_confident_frame, most_confident_reference

    scores = [confidence(p) for p in pictures]
    middle = pictures[int(np.argmin(scores))]
    twin = near_twin(middle, confidence, surer=True)
    sure = pictures[int(np.argmax(scores))]
    assert max(scores) - min(scores) > 2 * CONFIDENCE_MARGIN  # a clearly surer candidate

    assert most_confident_frame(auto, [(3, twin), (5, middle)])[0] == 3  # without a middle: the surest
    assert most_confident_frame(auto, [(3, twin), (5, middle), (9, twin)], middle=5)[0] == 5
    assert most_confident_frame(auto, [(3, twin), (5, middle), (9, sure)], middle=5)[0] == 9
    frame, reference = most_confident_reference(auto, [(3, twin), (5, middle)], key="k", middle=5)
    assert (frame, reference.key) == (5, "k:5")


def test_a_near_tie_between_two_other_candidates_takes_the_one_nearest_the_middle(auto, confidence, pictures
                                                                                  ) -> None:  # noqa: ANN001
    """Two candidates both clearly surer than the middle frame but within CONFIDENCE_MARGIN of each
    other (basketball's frames 8 and 13 differ by 9e-6): whichever of them the model rates higher on
    this machine, the one nearer the middle is chosen, the earlier of two as near."""
    from vidcolor.run.shots import CONFIDENCE_MARGIN, most_confident_frame

    scores = [confidence(p) for p in pictures]
    middle = pictures[int(np.argmin(scores))]
    sure = pictures[int(np.argmax(scores))]
    assert max(scores) - min(scores) > 2 * CONFIDENCE_MARGIN
    for twin in (near_twin(sure, confidence, surer=True), near_twin(sure, confidence, surer=False)):
        # the nearer one is chosen whether it is the slightly surer or the slightly less sure
        assert most_confident_frame(auto, [(2, sure), (8, middle), (11, twin)], middle=8)[0] == 11
        assert most_confident_frame(auto, [(2, twin), (8, middle), (11, sure)], middle=8)[0] == 11
        assert most_confident_frame(auto, [(5, twin), (8, middle), (11, sure)], middle=8)[0] == 5  # as near: earlier
        assert most_confident_frame(auto, [(5, sure), (8, middle), (11, twin)], middle=8)[0] == 5
