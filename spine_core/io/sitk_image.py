"""Volume <-> SimpleITK image, shared by the DICOM and file readers, the writers and resampling."""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from spine_core.errors import UnreadableFile, UnsupportedImage
from spine_core.volume import ScanMetadata, Volume

# Bytes per component of each SimpleITK pixel type (scalar and vector ids share the sizes).
_BYTES = {sitk.sitkUInt8: 1, sitk.sitkInt8: 1, sitk.sitkUInt16: 2, sitk.sitkInt16: 2, sitk.sitkUInt32: 4,
          sitk.sitkInt32: 4, sitk.sitkUInt64: 8, sitk.sitkInt64: 8, sitk.sitkFloat32: 4, sitk.sitkFloat64: 8,
          sitk.sitkVectorUInt8: 1, sitk.sitkVectorInt8: 1, sitk.sitkVectorUInt16: 2, sitk.sitkVectorInt16: 2,
          sitk.sitkVectorUInt32: 4, sitk.sitkVectorInt32: 4, sitk.sitkVectorUInt64: 8, sitk.sitkVectorInt64: 8,
          sitk.sitkVectorFloat32: 4, sitk.sitkVectorFloat64: 8, sitk.sitkComplexFloat32: 8,
          sitk.sitkComplexFloat64: 16}


@contextmanager
def quiet_itk():
    """ITK prints its own warnings on stderr ('unexpected scales in sform'); the readers' checks say it
    in the user's words instead."""
    shown = sitk.ProcessObject.GetGlobalWarningDisplay()
    sitk.ProcessObject.SetGlobalWarningDisplay(False)
    try:
        yield
    finally:
        sitk.ProcessObject.SetGlobalWarningDisplay(shown)


def bytes_per_voxel(image) -> int:
    """For an image or an ImageFileReader after ReadImageInformation."""
    return _BYTES.get(image.GetPixelID(), 8) * max(int(image.GetNumberOfComponentsPerPixel()
                                                        if isinstance(image, sitk.Image)
                                                        else image.GetNumberOfComponents()), 1)


def check_dimensions(dimension: int, size, components: int) -> None:
    """A 3D grayscale scan: refuse colour, 2D and 4D images with what to choose instead."""
    if components != 1:
        raise UnsupportedImage("This is a colour (RGB) image, not a CT or MR scan. Choose the original "
                               "grayscale series.")
    if dimension == 2 or (dimension == 3 and sum(s > 1 for s in size) < 3):
        raise UnsupportedImage(f"This is a 2D image ({' x '.join(map(str, size))}); SpinePlan needs a "
                               "3D scan. Choose the whole series or volume file.")
    if dimension != 3:
        raise UnsupportedImage(f"This is a {dimension}D image (e.g. a time series); SpinePlan needs one 3D scan.")


def affine_from_sitk(image) -> np.ndarray:
    """Index -> LPS affine of a 3D image (or of an ImageFileReader after ReadImageInformation)."""
    direction = np.array(image.GetDirection(), dtype=float).reshape(3, 3)
    affine = np.eye(4)
    affine[:3, :3] = direction * np.array(image.GetSpacing(), dtype=float)
    affine[:3, 3] = image.GetOrigin()
    return affine


def array_from_sitk(image: sitk.Image) -> np.ndarray:
    check_dimensions(image.GetDimension(), image.GetSize(), image.GetNumberOfComponentsPerPixel())
    array = sitk.GetArrayFromImage(image).transpose(2, 1, 0)
    if array.dtype == np.float64:
        array = array.astype(np.float32)
    return np.ascontiguousarray(array)


def read_image(path: Path) -> tuple[sitk.Image, np.ndarray]:
    """An image file read by ITK once its size and geometry passed the checks (validate); its affine."""
    from spine_core.io import validate

    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    unreadable = UnreadableFile(f"'{path.name}' could not be read: it is damaged, truncated or not a "
                                f"{''.join(path.suffixes[-2:]) or 'image'} file. Copy it again from the source.")
    try:
        with quiet_itk():
            reader.ReadImageInformation()
    except RuntimeError as exc:
        raise unreadable from exc
    check_dimensions(reader.GetDimension(), reader.GetSize(), reader.GetNumberOfComponents())
    validate.check_size(reader.GetSize(), bytes_per_voxel(reader), f"'{path.name}'")
    affine = affine_from_sitk(reader)
    validate.check_affine(affine, reader.GetSize(), f"'{path.name}'")
    try:
        with quiet_itk():
            image = reader.Execute()
    except RuntimeError as exc:
        raise unreadable from exc
    return image, affine


def volume_from_sitk(image: sitk.Image, metadata: ScanMetadata | None = None) -> Volume:
    return Volume(array_from_sitk(image), affine_from_sitk(image), metadata or ScanMetadata())


def volume_to_sitk(volume: Volume) -> sitk.Image:
    image = sitk.GetImageFromArray(np.ascontiguousarray(volume.array.transpose(2, 1, 0)))
    spacing = volume.spacing
    image.SetSpacing(tuple(float(s) for s in spacing))
    image.SetDirection(tuple(float(v) for v in volume.direction.ravel()))
    image.SetOrigin(tuple(float(v) for v in volume.origin))
    return image
