"""Seeing inside a CNN: filters, feature maps, classic kernels, receptive fields, pooling.

Every plot is drawn headless (matplotlib's Agg canvas, no pyplot, no display), written as PNG
to the path given and returned as a ``Path``. The ``cnnjax viz ...`` command draws the same
figures from the command line (``cnnjax.viz.cli``).

* :func:`plot_filters` — first-layer filters as a grid (the lectures' AlexNet figure).
* :func:`plot_feature_maps` — activations after each conv/pool stage for one input.
* :func:`classic_kernels`, :func:`plot_classic_kernels` — blur, Laplacian, sharpen and
  vertical-edge 3x3 kernels applied with ``cnnjax.conv`` to a photo.
* :func:`plot_receptive_field` — receptive-field size per layer and the input region one unit
  sees.
* :func:`pooling_information`, :func:`plot_pooling_information` — Rippel et al. 2015, Fig. 4:
  reconstruction error against the fraction of values kept by spectral/max/avg/Lp pooling.
* :func:`plot_ablation` — the pooling ablation study's plots from its results file.

Example:
  >>> import cnnjax.viz as viz
  >>> viz.plot_pooling_information(None, None, 'pooling_information.png')  # doctest: +SKIP
"""
from cnnjax.viz._common import require_matplotlib, sample_photos

require_matplotlib()

from cnnjax.ablation.plots import plot_ablation  # noqa: E402
from cnnjax.viz._feature_maps import feature_maps, plot_feature_maps  # noqa: E402
from cnnjax.viz._filters import filter_mosaic, first_conv_kernel, plot_filters  # noqa: E402
from cnnjax.viz._kernels import (  # noqa: E402
    apply_classic_kernels,
    classic_kernels,
    plot_classic_kernels,
)
from cnnjax.viz._pooling_information import (  # noqa: E402
    pooling_information,
    pooling_reconstruction,
    plot_pooling_information,
)
from cnnjax.viz._receptive_field import plot_receptive_field, receptive_field_table  # noqa: E402

__all__ = [
    "apply_classic_kernels",
    "classic_kernels",
    "feature_maps",
    "filter_mosaic",
    "first_conv_kernel",
    "plot_ablation",
    "plot_classic_kernels",
    "plot_feature_maps",
    "plot_filters",
    "plot_pooling_information",
    "plot_receptive_field",
    "pooling_information",
    "pooling_reconstruction",
    "receptive_field_table",
    "sample_photos",
]
