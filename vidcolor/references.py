"""Exemplar (reference) images: loading, validation, and cached resampling for the colorizers."""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from .color import rgb_to_gray_lightness, rgb_to_lab, to_unit_rgb
from .errors import ReferenceImageError

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class Reference:
    """A colour exemplar: float32 RGB in [0, 1], shape ``(H, W, 3)``.

    ``key`` identifies the reference for caches (reference features are computed once per key).
    """

    key: str
    rgb: np.ndarray
    _cache: dict[tuple[str, int, int], np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def fingerprint(self) -> str:
        """Digest of the pixels: tells a repainted reference saved under the same name apart."""
        if "fingerprint" not in self.__dict__:
            self.__dict__["fingerprint"] = hashlib.blake2b(np.ascontiguousarray(self.rgb).tobytes(), digest_size=16).hexdigest()
        return str(self.__dict__["fingerprint"])

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the image as loaded."""
        return self.rgb.shape[1], self.rgb.shape[0]

    def rgb_at(self, width: int, height: int) -> np.ndarray:
        """The RGB image resized to ``width x height`` (area filter when shrinking), cached."""
        key = ("rgb", width, height)
        if key not in self._cache:
            self._cache[key] = self.resized(width, height)
        return self._cache[key]

    def resized(self, width: int, height: int) -> np.ndarray:
        """As :meth:`rgb_at`, not cached: for output-size copies a long film must not keep per shot."""
        interp = cv2.INTER_AREA if width < self.rgb.shape[1] else cv2.INTER_LINEAR
        return cv2.resize(self.rgb, (width, height), interpolation=interp)

    def lab_at(self, width: int, height: int) -> np.ndarray:
        """The image as float32 Lab ``(height, width, 3)``, cached."""
        key = ("lab", width, height)
        if key not in self._cache:
            self._cache[key] = rgb_to_lab(self.rgb_at(width, height))
        return self._cache[key]

    def lightness_at(self, width: int, height: int) -> np.ndarray:
        """Lightness of the image filmed in black and white (see :func:`rgb_to_gray_lightness`):
        what to match frames against."""
        key = ("gray-l", width, height)
        if key not in self._cache:
            self._cache[key] = rgb_to_gray_lightness(self.rgb_at(width, height))
        return self._cache[key]

    @classmethod
    def from_array(cls, rgb: np.ndarray, key: str) -> Reference:
        """Wrap an RGB array (uint8, uint16 or float in [0, 1])."""
        return cls(key=key, rgb=_to_float_rgb(rgb, key))


#: Any depth, any colour layout (alpha is dropped), and the EXIF orientation applied: a phone
#: photo stores its pixels sideways with a tag saying how to turn them, and a reference must be
#: upright to match the film. (``IMREAD_UNCHANGED`` would ignore that tag.)
_READ_FLAGS = cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR


def read_rgb(path: str | os.PathLike[str]) -> np.ndarray | None:
    """An image file as upright RGB at its own depth (gray and alpha images too), or None when unreadable.

    Every reference goes through here (``--ref``, presets, the VapourSynth filter, ``refs suggest``
    libraries, reports), so all of them honour the EXIF orientation (all 8 values).
    """
    image = cv2.imread(os.fspath(path), _READ_FLAGS)
    if image is None:
        return None
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)  # ANYCOLOR gives 1 or 3 channels, never alpha


def load_reference(path: str | os.PathLike[str]) -> Reference:
    """Read a reference image (PNG, TIFF, JPEG, ... at 8 or 16 bits).

    Raises :class:`ReferenceImageError` naming the file when it is missing or unreadable. A
    grayscale image is accepted with a warning: it carries no colour, so the shot comes out gray.
    """
    path = Path(path)
    if not path.is_file():
        raise ReferenceImageError(f"reference image {str(path)!r} does not exist: check the path given to --ref")
    image = read_rgb(path)
    if image is None:
        raise ReferenceImageError(
            f"reference image {str(path)!r} cannot be read as an image: use a PNG, TIFF or JPEG file"
        )
    reference = Reference.from_array(image, key=str(path.resolve()))
    if is_grayscale(reference.rgb):
        logger.warning(
            "reference image %r is grayscale: it carries no colour, so frames using it stay gray; "
            "use a colour (painted) reference",
            str(path),
        )
    return reference


def as_stored(reference: Reference, stored_size: tuple[int, int], sample_aspect: Fraction) -> Reference:
    """``reference`` in the geometry a film stores its frames in: a still of the picture as shown
    (the aspect of ``stored_size`` times the pixel aspect ``sample_aspect``, within the 5 % of
    :func:`~vidcolor.correspondence.tracking.placement`) and not as stored is squeezed to the stored
    aspect, along the side the pixels stretch; any other reference comes back as it is.

    Frames are coloured as stored, and a square-pixel still of an anamorphic film's shown picture
    stretched onto them by a colorizer loses colour (the default model's reference memory keeps
    the still's aspect: blackswan 32.98 dB against 33.31 squeezed beforehand). Only the pixel
    aspect tells such a still from a wider view of a square-pixel film, so every front end that
    knows it passes it here, and square-pixel films keep their references untouched.
    """
    from .correspondence.tracking import placement  # noqa: PLC0415 - only films with non-square pixels need it

    if sample_aspect == 1:
        return reference
    width, height = stored_size
    shown = (width * sample_aspect.numerator, height * sample_aspect.denominator)  # the shown aspect, in integers
    if placement(reference.size, stored_size) is None or placement(reference.size, shown) is not None:
        return reference
    ref_w, ref_h = reference.size
    if sample_aspect > 1:  # wider pixels: the still is wider than the frames store it
        size = (max(1, round(ref_h * width / height)), ref_h)
    else:
        size = (ref_w, max(1, round(ref_w * height / width)))
    squeezed = cv2.resize(reference.rgb, size, interpolation=cv2.INTER_AREA)
    logger.info("reference %r shows the picture as displayed (%dx%d, pixels %s wide): squeezed to %dx%d, the "
                "frames' stored aspect", reference.key, ref_w, ref_h, sample_aspect, *size)
    return Reference(key=f"{reference.key}@stored:{size[0]}x{size[1]}", rgb=squeezed)


def is_grayscale(rgb: np.ndarray, tolerance: float = 2.0 / 255.0) -> bool:
    """True when every pixel has R = G = B within ``tolerance``."""
    spread = rgb.max(axis=-1) - rgb.min(axis=-1)
    return bool(np.percentile(spread, 99.5) <= tolerance)


def _to_float_rgb(rgb: np.ndarray, key: str) -> np.ndarray:
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ReferenceImageError(f"reference {key!r} must be an RGB image of shape (H, W, 3), got {rgb.shape}")
    return to_unit_rgb(rgb)
