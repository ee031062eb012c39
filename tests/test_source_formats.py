"""A restorer's sources: what the input says about showing its frames reaches the output.

Anamorphic pixels, interlaced fields, colour tags and range, 10-bit luma, a start timecode and a
non-zero start time, each in a real file made here by FFmpeg's encoders through PyAV, through the
real CLI (``vidcolor colorize``, a resumed run, ``vidcolor batch``) and the VapourSynth filter.
Rotation and odd sizes are covered by test_io::test_rotation_metadata_is_applied and
test_cli_errors::test_odd_sized_frame_into_420_codec.
"""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from click.testing import CliRunner, Result

from vidcolor.cli import main
from vidcolor.io.writer import INTERLACE_ADVICE
from vidcolor.references import Reference, as_stored
from vidcolor.schedule.keyframes import Keyframe, ReferenceSchedule

from helpers import color_frames, decoded_video, shared_path

WIDTH, HEIGHT, COUNT = 96, 64, 6


def make_source(path: Path, *, codec: str = "libx264", pix_fmt: str = "yuv420p", sar: Fraction | None = None,
                field_order: str | None = None, color: tuple[int, int, int] | None = None, full_range: bool = False,
                timecode: str | None = None, start: int = 0, rotation: int = 0, height: int = HEIGHT) -> Path:
    """A gray clip as a transfer house would hand it over: ``sar`` (pixel aspect), ``field_order``
    (``tt`` or ``bb``: x264 codes it interlaced), ``color`` (matrix, primaries, transfer codes),
    full range, a start ``timecode`` tag, a first frame at ``start`` (frames of 1/25 s), a display
    ``rotation``, another ``height``."""
    options = {"crf": "10", "preset": "ultrafast"} if codec == "libx264" else {}
    if field_order is not None and codec == "libx264":
        options.update({"flags": "+ildct+ilme", "x264-params": "tff=1" if field_order == "tt" else "bff=1"})
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=25, options=options)
        stream.width, stream.height, stream.pix_fmt = WIDTH, height, pix_fmt
        ctx = stream.codec_context
        if sar is not None:
            ctx.sample_aspect_ratio = sar
        if field_order is not None:
            ctx.field_order = {"tt": 2, "bb": 3}[field_order]
        if color is not None:
            ctx.colorspace, ctx.color_primaries, ctx.color_trc = color
        if full_range:
            ctx.color_range = 2
        if timecode is not None:
            stream.metadata["timecode"] = timecode
        if rotation:
            stream.set_display_rotation(rotation)
        for i, rgb in enumerate(color_frames(COUNT, WIDTH, height)):
            gray = np.repeat(rgb.mean(axis=2, keepdims=True).astype(np.uint8), 3, axis=2)
            frame = av.VideoFrame.from_ndarray(gray, format="rgb24").reformat(
                format=pix_fmt, dst_color_range="JPEG" if full_range else "MPEG")
            frame.pts, frame.time_base = start + i, Fraction(1, 25)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def colorize(source: Path, output: Path, reference: Path, *args: str) -> Result:
    result = CliRunner().invoke(main, ["colorize", str(source), "-o", str(output), "--ref", str(reference),
                                       "--model", "classic", "-q", *args])
    assert result.exit_code == 0, result.output
    return result


def described(path: Path) -> Mapping[str, object]:
    """What a player reads from a file about showing its first frame."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frame = next(container.decode(stream))
        sar = stream.sample_aspect_ratio
        return {"size": (stream.width, stream.height), "sar": Fraction(sar.numerator, sar.denominator) if sar else None,
                "field_order": stream.codec_context.field_order, "interlaced": frame.interlaced_frame,
                "matrix": frame.colorspace, "primaries": frame.color_primaries, "transfer": frame.color_trc,
                "range": frame.color_range, "start": float(frame.time),
                "timecode": next((v for k, v in stream.metadata.items() if k.lower() == "timecode"), None)}


@pytest.mark.parametrize("name, codec", [("out.mkv", "h264"), ("out.mp4", "hevc"), ("out.mov", "prores")])
def test_anamorphic_pixels_keep_their_aspect(tmp_path: Path, reference_png: Path, name: str, codec: str) -> None:
    """96x64 stored with 32:27 pixels shows 16:9 (as 720x480 NTSC widescreen): so does the output,
    in each container (it came out with square pixels, 3:2)."""
    source = make_source(tmp_path / "anamorphic.mp4", sar=Fraction(32, 27))
    result = colorize(source, tmp_path / name, reference_png, "--codec", codec)
    out = described(tmp_path / name)
    assert out["size"] == (WIDTH, HEIGHT) and out["sar"] == Fraction(32, 27), out
    assert "non-square pixels" not in result.output


def test_ffv1_output_of_anamorphic_pixels_names_the_loss_and_the_fixes(tmp_path: Path, reference_png: Path) -> None:
    """FFV1 in Matroska cannot record the pixel aspect through PyAV (FFmpeg's muxer reads it from a
    stream field PyAV cannot set): the run says so, with the exact fix, instead of silently
    writing a 3:2 picture."""
    source = make_source(tmp_path / "anamorphic.mp4", sar=Fraction(32, 27))
    result = colorize(source, tmp_path / "out.mkv", reference_png, "--codec", "ffv1")
    assert result.stderr.count("non-square pixels") == 1, result.stderr
    assert "(32:27, shown 16:9), which ffv1 in .mkv cannot record: players will show" in result.stderr
    assert "--set display-unit=3 --set display-width=16 --set display-height=9" in result.stderr


def test_image_sequence_keeps_the_pixel_aspect_both_ways(tmp_path: Path, reference_png: Path) -> None:
    """PNG frames record it (pHYs) and a sequence of them reads it back: anamorphic in, out and in again."""
    source = make_source(tmp_path / "anamorphic.mp4", sar=Fraction(32, 27))
    colorize(source, tmp_path / "frames", reference_png)
    colorize(tmp_path / "frames", tmp_path / "again.mp4", reference_png)
    assert described(tmp_path / "again.mp4")["sar"] == Fraction(32, 27)


def test_rotated_anamorphic_clip_turns_its_pixel_aspect_with_the_picture(tmp_path: Path, reference_png: Path) -> None:
    """Stored 96x64 with 32:27 pixels and a quarter turn: shown 64 wide and 96 x 32/27 high, so the
    upright 64x96 output's pixels are 27:32."""
    source = make_source(tmp_path / "phone.mp4", sar=Fraction(32, 27), rotation=90)
    colorize(source, tmp_path / "out.mkv", reference_png)
    out = described(tmp_path / "out.mkv")
    assert out["size"] == (HEIGHT, WIDTH) and out["sar"] == Fraction(27, 32), out


@pytest.mark.parametrize("order, code", [("tt", 2), ("bb", 3)])
def test_interlaced_transfer_is_named_with_the_fix_and_keeps_its_field_order(
        tmp_path: Path, reference_png: Path, order: str, code: int) -> None:
    """An interlaced TV transfer gets a warning naming the field order and the fix (deinterlace
    first, QTGMC), and the output stays flagged interlaced in the same order, coded as fields."""
    source = make_source(tmp_path / "tv.mkv", field_order=order)
    result = colorize(source, tmp_path / "out.mkv", reference_png)
    first = "top field first" if order == "tt" else "bottom field first"
    assert f"tv.mkv is interlaced ({first})" in result.stderr and result.stderr.count("is interlaced") == 1
    assert "deinterlace first (QTGMC" in result.stderr and "inverse-telecine a telecined film" in result.stderr
    assert "(PsF: flagged interlaced, no combing) needs nothing" in result.stderr  # a film transfer stored so
    out = described(tmp_path / "out.mkv")
    assert out["field_order"] == code and out["interlaced"], out


def test_interlaced_4_2_0_of_a_height_x264_cannot_code_as_fields_is_coded_progressive(tmp_path: Path,
                                                                                      reference_png: Path) -> None:
    """An NTSC D1 transfer (486 lines, here 66: not a multiple of 4) in 4:2:0 H.264: x264 refuses
    to code its fields (the run crashed at the first encode), so the frames are coded progressive,
    still flagged bottom field first, and the warning says so."""
    source = make_source(tmp_path / "ntsc.mkv", codec="ffv1", field_order="bb", height=66)
    result = colorize(source, tmp_path / "out.mkv", reference_png)
    assert "coded as progressive frames" in result.stderr and "a multiple of 4" in result.stderr, result.stderr
    out = described(tmp_path / "out.mkv")
    assert out["size"] == (WIDTH, 66) and out["field_order"] == 3, out


def test_progressive_film_gets_no_interlace_warning(tmp_path: Path, reference_png: Path) -> None:
    result = colorize(make_source(tmp_path / "film.mkv"), tmp_path / "out.mkv", reference_png)
    assert "interlaced" not in result.output
    assert described(tmp_path / "out.mkv")["field_order"] in (0, 1)  # unknown or progressive


@pytest.mark.parametrize("codec, name", [("h264", "out.mkv"), ("prores", "out.mov")])
@pytest.mark.parametrize("color", [(1, 1, 1), (5, 5, 5)], ids=["bt709", "bt470bg-pal"])
def test_colour_tags_of_the_input_are_kept(tmp_path: Path, reference_png: Path, color: tuple[int, int, int],
                                           codec: str, name: str) -> None:
    """Matrix, primaries and transfer as the input states them (primaries and transfer were dropped;
    ProRes writes the frame's tags, not the stream's, and gave 2/2)."""
    source = make_source(tmp_path / "tagged.mkv", color=color)
    colorize(source, tmp_path / name, reference_png, "--codec", codec)
    out = described(tmp_path / name)
    assert (out["matrix"], out["primaries"], out["transfer"]) == color, out


def test_a_colour_code_the_encoder_refuses_is_left_unstated(tmp_path: Path, reference_png: Path) -> None:
    """x265 takes no EBU 3213 primaries (22; x264 does): an hevc output leaves them unstated and keeps
    the transfer (the run crashed in x265's setup)."""
    source = make_source(tmp_path / "ebu.mkv", codec="ffv1", color=(5, 22, 6))
    colorize(source, tmp_path / "out.mkv", reference_png, "--codec", "hevc")
    out = described(tmp_path / "out.mkv")
    assert (out["primaries"], out["transfer"]) == (2, 6), out


def test_untagged_gray_input_claims_only_the_matrix_its_chroma_was_made_with(tmp_path: Path,
                                                                            reference_png: Path) -> None:
    """No tags in: the output states limited range and the matrix vidcolor made the chroma with
    (BT.601 below 720 lines, what players assume too), and leaves primaries and transfer unstated."""
    source = make_source(tmp_path / "plain.mkv")
    colorize(source, tmp_path / "out.mkv", reference_png)
    out = described(tmp_path / "out.mkv")
    assert (out["range"], out["matrix"], out["primaries"], out["transfer"]) == (1, 6, 2, 2), out


@pytest.mark.parametrize("codec, pix_fmt, full_range",
                         [("prores_ks", "yuv422p10le", False), ("ffv1", "yuv420p10le", True)],
                         ids=["prores-422-10bit", "ffv1-full-range-10bit"])
def test_ten_bit_luma_stays_bit_exact_in_its_range(tmp_path: Path, reference_png: Path, codec: str, pix_fmt: str,
                                                   full_range: bool) -> None:
    source = make_source(tmp_path / ("scan.mov" if codec == "prores_ks" else "scan.mkv"), codec=codec,
                         pix_fmt=pix_fmt, full_range=full_range)
    colorize(source, tmp_path / "out.mkv", reference_png, "--codec", "ffv1")
    src, out = decoded_video(source), decoded_video(tmp_path / "out.mkv")
    assert len(out) == len(src) == COUNT and out[0][1].dtype == np.uint16
    for (_, a), (_, b) in zip(src, out, strict=True):
        np.testing.assert_array_equal(a, b)
    assert described(tmp_path / "out.mkv")["range"] == (2 if full_range else 1)


@pytest.mark.parametrize("name", ["out.mov", "out.mkv", "out.mp4"])
def test_start_time_and_timecode_are_kept(tmp_path: Path, reference_png: Path, name: str) -> None:
    """A reel that starts 4 s in, at timecode 10:00:00:12: the output's first frame is at 4 s with
    the same timecode (a QuickTime timecode track in .mov/.mp4, a tag in .mkv; it was dropped)."""
    source = make_source(tmp_path / "reel.mov", timecode="10:00:00:12", start=100)
    result = colorize(source, tmp_path / name, reference_png)
    out = described(tmp_path / name)
    assert out["start"] == pytest.approx(4.0) and out["timecode"] == "10:00:00:12", out
    assert "timecode" not in result.stderr


@pytest.mark.parametrize("name, kind", [("out.avi", "a .avi file"), ("frames", "an image sequence")])
def test_an_output_that_cannot_hold_the_timecode_says_so_once(tmp_path: Path, reference_png: Path, name: str,
                                                             kind: str) -> None:
    """AVI has no place for a start timecode, nor have PNG frames: the run says it is lost and which
    containers keep it, once (it was dropped silently)."""
    source = make_source(tmp_path / "reel.mov", timecode="10:00:00:12")
    result = colorize(source, tmp_path / name, reference_png)
    assert result.stderr.count("timecode") == 1, result.stderr
    assert f"reel.mov starts at timecode 10:00:00:12, which {kind} cannot record" in result.stderr
    assert "Write .mov, .mp4 or .mkv to keep it" in result.stderr


@pytest.mark.parametrize("timecode", ["01:00:00;00", "reel 3"], ids=["drop-frame-at-25", "not-a-timecode"])
def test_a_timecode_a_quicktime_file_cannot_take_is_named(tmp_path: Path, reference_png: Path, timecode: str) -> None:
    """FFmpeg's mov muxer drops a drop-frame timecode at 25 fps and text that is no timecode: the
    run says so and names .mkv (they were dropped silently); an .mkv keeps the text as a tag."""
    source = make_source(tmp_path / "reel.mkv", timecode=timecode)
    result = colorize(source, tmp_path / "out.mov", reference_png)
    assert result.stderr.count("starts at timecode") == 1 and "Write .mkv to keep it as a tag" in result.stderr, result.stderr
    assert f"reel.mkv starts at timecode {timecode}, which a .mov file cannot record as it is" in result.stderr
    assert described(tmp_path / "out.mov")["timecode"] is None
    assert "starts at timecode" not in colorize(source, tmp_path / "out.mkv", reference_png).stderr


@pytest.mark.parametrize("codec, joined, batched", [("h264", "resumed.mkv", "reel.mp4"),
                                                     ("prores", "resumed.mov", "reel.mov")])
def test_resumed_and_batch_runs_keep_the_same(tmp_path: Path, reference_png: Path, codec: str, joined: str,
                                              batched: str) -> None:
    """A run encoded in chunks (joined by stream copy) and a batch job keep the pixel aspect, field
    order, colour tags and timecode too (a joined ProRes .mov came out with square pixels: its
    bitstream states no aspect, and the join did not copy the container's)."""
    folder = tmp_path / "reels"
    folder.mkdir()
    source = make_source(folder / "reel.mkv", sar=Fraction(16, 15), field_order="tt", color=(5, 5, 5),
                         timecode="01:00:00:00")
    colorize(source, tmp_path / joined, reference_png, "--resume", "--chunk-length", "2", "--codec", codec)
    batch = CliRunner().invoke(main, ["batch", str(folder), "-o", str(tmp_path / "batch"), "--ref", str(reference_png),
                                      "--model", "classic", "-q", "--codec", codec])
    assert batch.exit_code == 0, batch.output
    for output in (tmp_path / joined, tmp_path / "batch" / batched):
        out = described(output)
        assert (out["sar"], out["field_order"], out["timecode"]) == (Fraction(16, 15), 2, "01:00:00:00"), (
            output.name, out)
        assert (out["primaries"], out["transfer"]) == (5, 5), (output.name, out)


def test_vapoursynth_reads_the_range_as_the_cli_and_keeps_the_frame_properties(tmp_path: Path,
                                                                               reference_png: Path) -> None:
    """The filter took VapourSynth's ``_Range`` backwards (1 is full range): a tagged limited or
    full-range clip got other chroma than the CLI's (up to 63 codes). Its output frames now carry
    the clip's pixel aspect, field order and colour properties (they had none)."""
    vs = pytest.importorskip("vapoursynth", reason="the vs extra is not installed: pip install -e .[vs]")
    import vsvidcolor  # noqa: PLC0415

    for name, full_range in (("limited.mp4", False), ("full.mp4", True)):
        source = make_source(tmp_path / name, color=(1, 1, 1), full_range=full_range, sar=Fraction(64, 45))
        colorize(source, tmp_path / f"cli-{name}.mkv", reference_png, "--codec", "ffv1")
        with av.open(str(tmp_path / f"cli-{name}.mkv")) as container:
            expected = [f.to_ndarray(format="yuv444p") for f in container.decode(video=0)]
        clip = vs.core.bs.VideoSource(str(source))
        out = vsvidcolor.colorize(clip, ref=str(reference_png), model="classic")
        frame = out.get_frame(COUNT - 1)
        planes = np.stack([np.asarray(frame[p]) for p in range(3)])
        np.testing.assert_array_equal(planes, expected[COUNT - 1], err_msg=name)
        props = frame.props
        assert (props["_SARNum"], props["_SARDen"], props["_Matrix"], props["_Primaries"], props["_Transfer"]) == (
            64, 45, 1, 1, 1), dict(props)
        assert int(props["_Range"]) == int(vs.RANGE_FULL if full_range else vs.RANGE_LIMITED)


def test_a_still_of_the_shown_picture_is_squeezed_to_the_stored_aspect_only_for_non_square_pixels() -> None:
    """The rule, on a still and a schedule: a still of the shown picture (wide pixels: wider; tall
    pixels: taller) is squeezed along that side to the stored aspect; a still of the stored aspect,
    one of neither (a detail) and every still of a square-pixel film stay the very same objects."""
    stored = color_frames(1, 72, 48)[0]
    wide = Reference.from_array(np.repeat(stored, 2, axis=1), "wide")
    tall = Reference.from_array(np.repeat(stored, 2, axis=0), "tall")
    for still, aspect in ((wide, Fraction(2)), (tall, Fraction(1, 2))):
        squeezed = as_stored(still, (72, 48), aspect)
        assert squeezed.size == (72, 48) and squeezed.key != still.key, (still.key, squeezed.size)
        np.testing.assert_array_equal(squeezed.rgb, Reference.from_array(stored, "stored").rgb, err_msg=still.key)
    as_is = Reference.from_array(stored, "as stored")
    detail = Reference.from_array(stored[:, :36], "a detail")
    assert as_stored(as_is, (72, 48), Fraction(2)) is as_is and as_stored(detail, (72, 48), Fraction(2)) is detail
    schedule = ReferenceSchedule([Keyframe(0, wide, end_reference=as_is, end_frame=3), Keyframe(4, detail)], [2], 8)
    assert schedule.as_stored((144, 48), Fraction(1)) is schedule  # square pixels: a 3:1 still of a 3:1 film
    changed = schedule.as_stored((72, 48), Fraction(2))
    assert [k.reference.size for k in changed.keyframes] == [(72, 48), (36, 48)]
    assert changed.keyframes[0].end_reference is as_is and changed.keyframes[1].reference is detail
    assert (changed.cuts, changed.frame_count) == (schedule.cuts, 8)


def test_a_still_of_the_shown_picture_colours_anamorphic_frames_as_if_squeezed_beforehand(tmp_path: Path) -> None:
    """Real footage stored anamorphic (DAVIS blackswan, 8 frames at 144x162 with pixels twice as
    wide: shown 16:9), coloured by the default model from frame 0 as a player shows it (every
    column twice, square pixels): the CLI and the VapourSynth filter (which reads ``_SARNum`` and
    ``_SARDen``) give the frames of the same still squeezed beforehand. Before, it was stretched
    by the colorizer, whose reference memory kept the still's own aspect: other frames, and 0.3 dB
    less on blackswan at 640x480 with 4:3 pixels (33.0 against 33.3, 20 frames)."""
    files = sorted(shared_path("clips/davis/blackswan/JPEGImages").glob("*.jpg"))[:8]
    stored = [cv2.resize(cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB), (144, 162), interpolation=cv2.INTER_AREA)
              for f in files]
    source = tmp_path / "anamorphic.mp4"  # x264 records the pixel aspect (FFV1 in .mkv cannot, see above)
    with av.open(str(source), "w") as container:
        stream = container.add_stream("libx264", rate=25, options={"crf": "10", "preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = 144, 162, "yuv444p"
        stream.codec_context.sample_aspect_ratio = Fraction(2)
        for i, rgb in enumerate(stored):
            gray = np.repeat(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
            frame = av.VideoFrame.from_ndarray(gray, format="rgb24").reformat(format="yuv444p")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    frames = {}
    for name, still in (("shown", np.repeat(stored[0], 2, axis=1)), ("squeezed", stored[0])):
        reference = tmp_path / f"{name}.png"
        cv2.imwrite(str(reference), cv2.cvtColor(still, cv2.COLOR_RGB2BGR))
        output = tmp_path / f"{name}.mkv"
        result = CliRunner().invoke(main, ["colorize", str(source), "-o", str(output), "--ref", str(reference),
                                           "--codec", "ffv1", "-q"])
        assert result.exit_code == 0, result.output
        with av.open(str(output)) as container:
            frames[name] = np.stack([f.to_ndarray(format="yuv444p") for f in container.decode(video=0)])
    np.testing.assert_array_equal(frames["shown"], frames["squeezed"])
    vs = pytest.importorskip("vapoursynth", reason="the vs extra is not installed: pip install -e .[vs]")
    import vsvidcolor  # noqa: PLC0415

    clip = vs.core.bs.VideoSource(str(source))
    assert (clip.get_frame(0).props["_SARNum"], clip.get_frame(0).props["_SARDen"]) == (2, 1)
    out = vsvidcolor.colorize(clip, ref=str(tmp_path / "shown.png"))
    for n in (5, 0):
        frame = out.get_frame(n)
        np.testing.assert_array_equal(np.stack([np.asarray(frame[p]) for p in range(3)]), frames["squeezed"][n],
                                      err_msg=f"VapourSynth frame {n}")


def test_vapoursynth_warns_once_about_an_interlaced_clip_in_its_log(reference_png: Path) -> None:
    """``_FieldBased`` passed through silently; the filter now says in VapourSynth's log what the
    CLI says, once per call whichever frames are asked for, and nothing for a progressive clip."""
    vs = pytest.importorskip("vapoursynth", reason="the vs extra is not installed: pip install -e .[vs]")
    import vsvidcolor  # noqa: PLC0415

    warnings: list[str] = []

    def keep_warnings(kind: int, text: str) -> None:
        if kind == vs.MESSAGE_TYPE_WARNING:
            warnings.append(text)

    handle = vs.core.add_log_handler(keep_warnings)
    try:
        for field_based in (2, 0, 1):
            clip = vs.core.std.BlankClip(format=vs.GRAY8, width=WIDTH, height=HEIGHT, length=4, color=100)
            clip = vs.core.std.SetFrameProps(clip, _FieldBased=field_based)
            out = vsvidcolor.colorize(clip, ref=str(reference_png), model="classic")
            for n in (2, 0, 3):
                assert out.get_frame(n).props["_FieldBased"] == field_based
    finally:
        vs.core.remove_log_handler(handle)
    said = [text for text in warnings if "interlaced" in text]
    assert len(said) == 2, warnings
    assert said[0].startswith("vsvidcolor.colorize: frame 2 is interlaced (_FieldBased=2, top field first)")
    assert "bottom field first" in said[1] and INTERLACE_ADVICE in said[1]  # the CLI's words, written once
