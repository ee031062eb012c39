"""Reference recommendation: which library image should colour this shot (He et al. 2018, §4).

Deep Exemplar-based Colorization ranks candidate references in two passes, both on lightness
only (the query is black-and-white, so library images are compared as they would look filmed in
black and white, :func:`vidcolor.color.rgb_to_gray_lightness`):

1. **Global ranking.** Cosine similarity between one descriptor per image keeps the top ``N``
   (200 in the paper). The paper uses VGG's fc6 after a class filter; the weights vidcolor can
   load are convolution-only, so the descriptor here is the mean- and max-pooled last conv layer
   (a common fc-free retrieval descriptor), and there is no class filter.
2. **Local re-ranking.** For every position ``p`` of the query's last-layer feature map, its
   nearest neighbour ``q`` in the candidate's map (cosine); the score is the mean over ``p`` of
   ``cos(F_T(p), F_R(q)) + β · corr(H_T(p), H_R(q))``, where ``H`` is the lightness histogram of
   the 16x16-pixel cell under a position and ``corr`` the correlation coefficient, β = 0.25.
   (The paper sums over ``p``; the mean ranks identically and stays readable.)

Features come from the best backbone installed: the ImageNet VGG-19 of the Deep Exemplar weights
(``vidcolor models import deepex ...``; relu5_4, as the paper), else the ImageNet EfficientNet-Lite0
trunk installed with vidcolor (stride-32 features; it found a clip's far frames better than the
alternative below). The shipped default model's own lightness encoder (:mod:`vidcolor.models.vcnet`)
can still be asked for; with its 1/8-scale maps the 16x16 cells overlap by half.

Modules: :mod:`.features` (backbones), :mod:`.cache` (the feature cache), :mod:`.library` (the
folder and its refresh), :mod:`.queries` (an image or a video's shots), :mod:`.ranking`,
:mod:`.preset` (a keyframe preset from the top suggestions).

A video is queried shot by shot (shots from a preset or from scene detection) with a few frames
spread over each shot, scores averaged, so the winner fits the whole shot; the paper queries single
images.

Library features are cached per library and backbone (see :class:`FeatureLibrary`), keyed by each
file's relative path, size and modification time, so only new or changed images are computed.
"""

from .cache import LibraryEntry, default_cache_path
from .features import (BACKBONES, CACHE_VERSION, CELL, HIST_BINS, MAX_ASPECT, Backbone, ImageFeatures, Lite0Backbone, VCNetBackbone,
                       VGGBackbone, best_backbone, cell_histograms, deepex_vgg_installed, working_lightness)
from .library import LIBRARY_EXTENSIONS, FeatureLibrary, LibraryStats, library_images
from .preset import write_preset
from .queries import (DEFAULT_FRAMES_PER_SHOT, ShotQuery, image_query, input_queries, is_image_file, query_frames, shot_bounds,
                      video_queries)
from .ranking import BETA, DEFAULT_PRESELECT, ShotSuggestions, Suggestion, local_score, rank, suggest

__all__ = [
    "BACKBONES", "BETA", "DEFAULT_FRAMES_PER_SHOT", "DEFAULT_PRESELECT", "Backbone", "FeatureLibrary", "ImageFeatures", "LibraryStats",
    "Lite0Backbone", "ShotQuery",
    "ShotSuggestions", "Suggestion", "VCNetBackbone", "VGGBackbone", "best_backbone", "deepex_vgg_installed",
    "input_queries", "library_images", "query_frames", "local_score", "rank", "suggest", "write_preset",
]
