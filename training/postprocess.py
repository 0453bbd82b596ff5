"""M2 post-processing now lives in ``spine_core.pipeline.clustering`` (inference uses it too);
re-exported here for training code and its tests."""
from spine_core.pipeline.clustering import (cluster_centres, dbscan, main_size_class, peaks_to_points,  # noqa: F401
                                            slice_peaks)
