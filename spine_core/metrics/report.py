"""The evaluation report: one row per reference vertebra (and disc) plus a summary.

``to_dict()`` gives plain JSON types (None where a value does not exist, e.g. the surface distance
of a vertebra the prediction misses); ``format_report`` the table the CLI prints.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from spine_core.labels import label_name


@dataclass(frozen=True)
class OverlapRow:
    """Overlap and surface distances of one reference structure (distances in mm)."""

    id: int
    name: str
    dice: float
    iou: float
    hd: float | None
    hd95: float | None
    assd: float | None
    volume_ref_mm3: float
    volume_pred_mm3: float


@dataclass(frozen=True)
class VertebraRow(OverlapRow):
    """A reference vertebra: overlap plus identification (see ``metrics.identification``)."""

    centroid_error_mm: float | None = None    # to the predicted vertebra with the same id
    identified: bool = False                  # VerSe: nearest predicted centroid has its id, <= 20 mm
    instance_correct: bool = False            # matched instance (IoU > 0.5) carries its id
    localization_error_mm: float | None = None  # to the matched instance, whatever its id


@dataclass(frozen=True)
class EvalSummary:
    mean_dice: float                  # over reference vertebrae; a missing one counts as 0
    binary_dice: float                # vertebrae-only spine mask
    binary_iou: float
    identification_rate: float
    instance_accuracy: float
    mean_centroid_error_mm: float | None      # vertebrae found under their own id
    mean_localization_error_mm: float | None  # matched instances
    acc_1_5mm: float                  # share of reference vertebrae localized within 1.5 mm
    acc_2mm: float
    acc_3mm: float
    pixel_accuracy: float
    fpd: float | None                 # FP / (FP + TN)
    fnd: float | None                 # FN / (TP + FN)
    level_shift: int | None           # predicted minus reference level; +1 = called one too low
    n_ref: int
    n_pred: int
    missing: tuple[int, ...]          # reference vertebrae absent from the prediction
    extra: tuple[int, ...]            # predicted vertebrae absent from the reference
    mean_disc_dice: float | None = None


@dataclass(frozen=True)
class EvalReport:
    vertebrae: tuple[VertebraRow, ...]
    summary: EvalSummary
    discs: tuple[OverlapRow, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict:
        summary = asdict(self.summary)
        summary["missing"] = list(self.summary.missing)
        summary["extra"] = list(self.summary.extra)
        summary["missing_names"] = [label_name(i) for i in self.summary.missing]
        summary["extra_names"] = [label_name(i) for i in self.summary.extra]
        return {"summary": summary,
                "vertebrae": [asdict(row) for row in self.vertebrae],
                "discs": [asdict(row) for row in self.discs],
                "notes": list(self.notes)}


def _num(value, digits: int = 2, width: int = 7) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.{digits}f}"


def _row_line(row: OverlapRow) -> str:
    line = (f"{row.name:<8}{_num(row.dice, 3)}{_num(row.iou, 3)}{_num(row.hd, 1)}"
            f"{_num(row.hd95, 1)}{_num(row.assd, 2)}")
    if isinstance(row, VertebraRow):
        line += f"{_num(row.centroid_error_mm, 1, 9)}  {'yes' if row.identified else 'no':<4}"
    else:
        line += f"{'':>9}  {'':<4}"
    return line + f"{row.volume_ref_mm3:>11.0f}{row.volume_pred_mm3:>11.0f}"


def _shift_text(shift: int | None) -> str:
    if shift is None:
        return "undetermined (no consistent pairing)"
    if shift == 0:
        return "0 (levels agree)"
    direction = "lower (more caudal)" if shift > 0 else "higher (more cranial)"
    return f"{shift:+d} (predicted labels are {abs(shift)} level(s) {direction} than the reference)"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _frac(value: float | None) -> str:
    return "-" if value is None else f"{value:.5f}"


def format_report(report: EvalReport) -> str:
    head = (f"{'level':<8}{'dice':>7}{'iou':>7}{'HD':>7}{'HD95':>7}{'ASSD':>7}"
            f"{'centr.mm':>9}  {'id':<4}{'ref mm3':>11}{'pred mm3':>11}")
    lines = [head, "-" * len(head)]
    lines += [_row_line(row) for row in report.vertebrae]
    if report.discs:
        lines += ["discs (overlap only, not used for identification):"]
        lines += [_row_line(row) for row in report.discs]
    s = report.summary
    mm = lambda v: "-" if v is None else f"{v:.2f} mm"  # noqa: E731
    lines += ["", "Summary",
              f"  vertebrae:            {s.n_ref} reference, {s.n_pred} predicted",
              f"  missing:              {', '.join(label_name(i) for i in s.missing) or 'none'}",
              f"  extra:                {', '.join(label_name(i) for i in s.extra) or 'none'}",
              f"  mean Dice:            {s.mean_dice:.4f} (missing vertebrae count as 0)",
              f"  binary Dice / IoU:    {s.binary_dice:.4f} / {s.binary_iou:.4f}",
              f"  identification rate:  {_pct(s.identification_rate)} (VerSe, 20 mm)",
              f"  instance accuracy:    {_pct(s.instance_accuracy)} (IoU > 0.5 and same id)",
              f"  mean centroid error:  {mm(s.mean_centroid_error_mm)} (same id)",
              f"  localization error:   {mm(s.mean_localization_error_mm)} (matched instances); "
              f"Acc@1.5/2/3 mm {_pct(s.acc_1_5mm)} / {_pct(s.acc_2mm)} / {_pct(s.acc_3mm)}",
              f"  PA / FPD / FND:       {_frac(s.pixel_accuracy)} / {_frac(s.fpd)} / {_frac(s.fnd)}"
              " (binary vertebra mask)",
              f"  level shift:          {_shift_text(s.level_shift)}"]
    if s.mean_disc_dice is not None:
        lines.append(f"  mean disc Dice:       {s.mean_disc_dice:.4f}")
    lines += [f"  note: {note}" for note in report.notes]
    return "\n".join(lines)
