"""Volume <-> SimpleITK image, shared by the DICOM and file readers, the writers and resampling."""
from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from spine_core.errors import UnsupportedImage
from spine_core.volume import ScanMetadata, Volume


def volume_from_sitk(image: sitk.Image, metadata: ScanMetadata | None = None) -> Volume:
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise UnsupportedImage("This is a colour (RGB) image, not a CT or MR scan. Choose the original "
                               "grayscale series.")
    size = image.GetSize()
    if image.GetDimension() == 2 or (image.GetDimension() == 3 and sum(s > 1 for s in size) < 3):
        raise UnsupportedImage(f"This is a 2D image ({' x '.join(map(str, size))}); SpinePlan needs a "
                               "3D scan. Choose the whole series or volume file.")
    if image.GetDimension() == 4:
        raise UnsupportedImage("This is a 4D image (a time series); SpinePlan needs one 3D scan.")
    array = sitk.GetArrayFromImage(image).transpose(2, 1, 0)
    if array.dtype == np.float64:
        array = array.astype(np.float32)
    direction = np.array(image.GetDirection()).reshape(3, 3)
    affine = np.eye(4)
    affine[:3, :3] = direction * np.array(image.GetSpacing())
    affine[:3, 3] = image.GetOrigin()
    return Volume(np.ascontiguousarray(array), affine, metadata or ScanMetadata())


def volume_to_sitk(volume: Volume) -> sitk.Image:
    image = sitk.GetImageFromArray(np.ascontiguousarray(volume.array.transpose(2, 1, 0)))
    spacing = volume.spacing
    image.SetSpacing(tuple(float(s) for s in spacing))
    image.SetDirection(tuple(float(v) for v in volume.direction.ravel()))
    image.SetOrigin(tuple(float(v) for v in volume.origin))
    return image
