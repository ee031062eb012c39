"""A frame is matched to a user's reference near the reference's tone (vidcolor.run.tone): a shot that
opens brighter than the moment its keyframe was painted from (an archival print's exposure settling
after a splice) takes the keyframe's colours from its first frame, not smears that fade as the
exposure settles (issue 24, "Smears after cuts"); a reference that is another picture (a photo of
another person) is not toned: its mean differs because its content does."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vidcolor.color import rgb_to_gray_lightness
from vidcolor.colorizers import build_colorizer
from vidcolor.io.reader import probe
from vidcolor.references import Reference, load_reference
from vidcolor.run.chunks import ChunkPlan
from vidcolor.run.pipeline import FrameColorizer, read_lightness, read_lightness_range
from vidcolor.run.sizes import run_working_size, working_lightness, working_size_for
from vidcolor.run.tone import TONE_TOLERANCE, shows_scene, tone_matched
from vidcolor.schedule.keyframes import Keyframe, ReferenceSchedule
from vidcolor.temporal import TemporalSettings

from helpers import shared_path

#: The a-bomb clip's roadside-sign shot (frames 44-133) and its painted keyframe (presets/examples/a-bomb.toml).
FILM, SIGN, CUT = "clips/bw/a-bomb_blast_effects_part.mp4", "clips/bw/references/0000968_out.png", 44
#: The convoy shot (frames 134-298): its keyframe shows frame ~194 of a pan; frame 134 shows too
#: little of it to count as its scene (same_scene 0.39), most frames from 147 on do (151: 9 L above it).
CONVOY, CONVOY_REFERENCE = 134, "clips/bw/references/0001063_out.png"
#: bench/faces.py's pair whose face turned bluish when toned (0.000 -> 0.090): the gray photo is 22 L
#: darker than the reference, a photo of another man.
FACES = "photos/stargan_v2_faces_animals/celeba_hq_"
PHOTO, OTHER_MAN = FACES + "src_male_005735.jpg", FACES + "ref_male_038919.jpg"


def test_the_frames_after_a_cut_take_the_sky_of_the_reference() -> None:
    """Frame 44 opens with its sky at L 79, settling to 62 by frame 52; the reference's sky is at L 51
    and its sign's white border at 82. Matched at their own lightness, the first frames' sky took
    the border's yellow in streaks: 18 %, 14 % and 10 % of the sky's pixels (above the sign, at the
    working size) more than 10 ab units off the reference's sky at frames 44-46 (the CLI's default
    model and temporal check, keyframe pinned at the cut). Shifted to within TONE_TOLERANCE of the
    reference's mean lightness (26 L above it at frame 44): 0.8, 0.6 and 0.6 %."""
    info = probe(str(shared_path(FILM)))
    reference = load_reference(str(shared_path(SIGN)))
    colorizer = build_colorizer("default", temporal=TemporalSettings())
    width, height = working_size_for(info, colorizer)
    frames = FrameColorizer(colorizer, ReferenceSchedule([Keyframe(CUT, reference)], frame_count=info.frame_count),
                            (width, height))
    sky = (slice(height // 32, height * 7 // 32), slice(width // 40, width * 39 // 40))  # above the sign
    reference_sky = reference.lab_at(width, height)[sky][..., 1:]
    off = []
    for index, full in enumerate(read_lightness_range(info, CUT, CUT + 3), start=CUT):
        ab = frames.predict(index, full).ab[sky]
        off.append(round(float((np.hypot(*(ab - reference_sky).transpose(2, 0, 1)) > 10).mean()), 3))
    assert max(off) < 0.02, f"share of the sky off the reference's at frames {CUT}-{CUT + 2}: {off}"


def test_a_frame_is_shifted_to_within_the_tolerance_of_its_reference_unless_it_is_a_crop() -> None:
    """A frame whose mean lightness is 20 L above its reference's is shifted by 12 (to within
    TONE_TOLERANCE), its contrast kept; one within the tolerance, and any frame against a reference
    of another aspect (a crop, placed inside the frame), is left as it is (the same array)."""
    rng = np.random.default_rng(3)
    still = np.clip(rng.normal(0.45, 0.15, (40, 60, 3)), 0, 1).astype(np.float32)
    reference = Reference("still", still)
    target = float(reference.lightness_at(60, 40).mean())
    bright = np.clip(rng.normal(target + 20, 6, (40, 60)), 0, 100).astype(np.float32)
    matched = tone_matched(bright, reference)
    assert float(matched.mean()) == pytest.approx(float(bright.mean()) - (float(bright.mean()) - target - TONE_TOLERANCE),
                                                  abs=0.05)
    np.testing.assert_allclose(matched - matched.mean(), bright - bright.mean(), atol=1e-3)
    near = bright - np.float32(float(bright.mean()) - target - TONE_TOLERANCE / 2)
    assert tone_matched(near, reference) is near
    assert tone_matched(bright, Reference("crop", np.ascontiguousarray(still[:, :30]))) is bright


def test_a_photo_of_another_person_is_not_toned() -> None:
    """Issue 24's face case: the reference is a photo of another man, 22 L brighter on average
    because it shows other things, not another exposure. The shot's frame is coloured at its own
    lightness, as a colorizer given it directly colours it, not the 14 L shifted one."""
    rgb = cv2.cvtColor(cv2.imread(str(shared_path(PHOTO))), cv2.COLOR_BGR2RGB)
    rgb = cv2.resize(rgb, (256, 256), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    full = rgb_to_gray_lightness(rgb)
    reference = load_reference(str(shared_path(OTHER_MAN)))
    colorizer = build_colorizer("default", temporal=TemporalSettings())
    work = run_working_size(256, 256, colorizer)
    small = working_lightness(full, work)
    assert tone_matched(small, reference) is not small  # the mean shift would act here
    assert not shows_scene(small, reference)
    frames = FrameColorizer(colorizer.fork(), ReferenceSchedule([Keyframe(0, reference)], frame_count=1), work)
    colorizer.reset()
    colorizer.begin_reference(reference, work, lambda: small)
    np.testing.assert_array_equal(frames.predict(0, full).ab, colorizer.step(small, reference).ab)


def test_a_pass_from_a_chunk_decides_on_the_shots_first_frame() -> None:
    """The gate is decided on the frame the shot's recurrence starts on, whichever frame a pass
    starts from: a chunk's pass (a resumed run, a VapourSynth request) from its warm-up at frame
    147, where the reference would count as the scene, colours frames 150-157 (151 and 154 more
    than 8 L off it) as the sequential pass from frame 134, where it does not."""
    info = probe(str(shared_path(FILM)))
    schedule = ReferenceSchedule([Keyframe(CONVOY, load_reference(str(shared_path(CONVOY_REFERENCE))))],
                                 frame_count=info.frame_count)
    colorizer = build_colorizer("default", temporal=TemporalSettings())
    work = working_size_for(info, colorizer)

    def frames_of(model):
        return FrameColorizer(model, schedule, work, ChunkPlan(16, 3), frame_at=lambda index: read_lightness(info, index))

    light = dict(enumerate(read_lightness_range(info, CONVOY, CONVOY + 24), start=CONVOY))
    sequential = frames_of(colorizer)
    expected = {index: sequential.predict(index, light[index]).ab for index in sorted(light)}
    chunk = frames_of(colorizer.fork())
    begin, start, _ = chunk.chunk_bounds(CONVOY + 16, info.frame_count)
    assert (begin, start) == (CONVOY + 13, CONVOY + 16)
    reference = schedule.keyframes[0].reference
    assert [shows_scene(working_lightness(light[index], work), reference) for index in (CONVOY, begin)] == [False, True]
    got = {index: chunk.predict(index, light[index]).ab for index in range(begin, CONVOY + 24)}
    assert all(np.array_equal(got[index], expected[index]) for index in range(start, CONVOY + 24))
