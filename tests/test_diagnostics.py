import math

import numpy as np

from sgdl_wrap.diagnostics import epoch_report


def _report(noisy, weights=None):
    return epoch_report(
        epoch=3, phase="self_guided", switched=False,
        memorized=np.array([True, True, True, False, False]), noise_rate=0.2, train_loss=0.5,
        noisy=noisy, weights=weights,
    )


def test_the_report_separates_clean_from_noisy_rows_by_hand():
    noisy = np.array([False, False, True, False, True])
    weights = np.array([0.9, np.nan, 0.2, 0.7, 0.4])
    report = _report(noisy, weights)
    assert report.memory_ratio == 0.6
    assert math.isclose(report.clean_ratio, 0.8)
    assert report.memorization_precision == 2 / 3  # rows 0, 1 of memorized 0, 1, 2
    assert report.memorization_recall == 2 / 3  # rows 0, 1 of clean 0, 1, 3
    assert report.memory_rate_clean == 2 / 3
    assert report.memory_rate_noisy == 0.5
    # Row 1 was not seen this epoch (NaN): the clean mean is over rows 0 and 3 only.
    assert math.isclose(report.weight_clean, 0.8)
    assert math.isclose(report.weight_noisy, 0.3)


def test_without_flags_or_weights_those_fields_are_none():
    report = _report(None, np.ones(5))
    assert report.memorization_precision is None and report.weight_clean is None
    flagged = _report(np.zeros(5, dtype=bool))
    assert flagged.memory_rate_noisy is None  # no noisy rows at all
    assert flagged.weight_clean is None and flagged.weight_noisy is None
    assert flagged.as_dict()["epoch"] == 3
