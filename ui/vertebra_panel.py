"""The right-hand panel: a warnings banner (what needs review) above the vertebra table."""
from __future__ import annotations

from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from spine_core.labels import count_structures
from spine_core.review import VertebraRow, review_summary
from ui.results_panel import ResultsPanel

MAX_LINES = 8


class VertebraPanel(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        self.banner = QLabel()
        self.banner.setObjectName("WarningsBanner")
        self.banner.setWordWrap(True)
        self.banner.setVisible(False)
        self.table = ResultsPanel()
        layout.addWidget(self.banner)
        layout.addWidget(self.table, 1)

    def set_warnings(self, warnings: list[str], rows: list[VertebraRow]) -> None:
        """Pipeline warnings and the table's flagged vertebrae and discs; the banner hides when there is
        nothing."""
        lines = [f"\u26a0 {w}" for w in warnings]
        flagged = review_summary(rows)
        if flagged:
            lines.append(f"\u26a0 {count_structures(r.label_id for r in rows if r.flags)} to review:")
            lines.extend(f"   \u2022 {line}" for line in flagged[:MAX_LINES])
            if len(flagged) > MAX_LINES:
                lines.append(f"   \u2022 ... and {len(flagged) - MAX_LINES} more (see Flags)")
        self.banner.setText("\n".join(lines))
        self.banner.setVisible(bool(lines))

    def warnings_text(self) -> str:
        return self.banner.text() if self.banner.isVisible() or self.banner.text() else ""
