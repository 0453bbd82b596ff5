import pytest

from spine_core.errors import Cancelled
from spine_core.progress import CallbackProgress, CancelToken, NullProgress, SubProgress


def test_cancel_raises_at_next_update():
    token = CancelToken()
    progress = NullProgress(token)
    progress.update(0.1, "fine")
    token.cancel()
    with pytest.raises(Cancelled):
        progress.update(0.2, "stop here")


def test_sub_progress_maps_fractions():
    seen = []
    parent = CallbackProgress(lambda f, m: seen.append((round(f, 3), m)))
    SubProgress(parent, 0.5, 0.75).update(0.5, "half of the second quarter")
    assert seen == [(0.625, "half of the second quarter")]
