"""Reading and writing scans. One entry point: ``load_scan``."""
from spine_core.io.dicom import SeriesInfo, list_series
from spine_core.io.readers import load_labels, load_scan, scan_listing
from spine_core.io.writers import save_labelmap, save_volume

__all__ = ["SeriesInfo", "list_series", "load_labels", "load_scan", "save_labelmap", "save_volume",
           "scan_listing"]
