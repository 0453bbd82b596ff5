"""The planning report as one self-contained HTML page (Qt-free): no script, no network, pictures inlined as
PNG data URIs, every text from a file or an analysis HTML-escaped.

What it shows comes in a ``ReportContent`` (spine_core.workflows.plan_report gathers it and draws the
pictures): the facts of the analysis (SpinePlan version, date, QA status and flags, the models' ids and
sha256), the statement that every measure is only as good as the labels, the pictures, per vertebra the
body heights, wedge ratio, Genant grade and bone density, the alignment with the vertebrae and planes each
angle used, and the screws with their closest approach to the cortex and expected Gertzbein-Robbins grade.
No patient identifier (name, ID, birth date) is ever given to it, and nothing here reads one.

The page is laid out with tables only (no flex or grid), so Qt's rich text engine prints the same page to
PDF (ui/report_pdf.py) as a browser shows.
"""
from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field

from spine_core.planning import NotPlanned, Screw

REPORT_HTML, REPORT_PDF = "report.html", "report.pdf"
CHECK_STATEMENT = ("Every measure and screw in this report is computed from the vertebra labels: it is only as "
                   "good as the labels. Check the labels, the levels and each screw on the images before "
                   "using any number here. SpinePlan is a planning aid; it does not replace the surgeon's "
                   "own measurement and judgement.")
GRADE_COLOURS = {"A": "#d9f2d9", "B": "#fff3c4"}       # C, D, E: red
BAD_COLOUR, FLAG_COLOUR = "#f9d0cc", "#fff3c4"
ALIGNMENT_ROWS = (("lumbar_lordosis", "Lumbar lordosis (L1-S1)", "L1 or the sacrum is not labelled"),
                  ("thoracic_kyphosis", "Thoracic kyphosis (T4-T12)", "T4 or T12 is not labelled"),
                  ("coronal_cobb", "Coronal Cobb angle", "fewer than three vertebrae with endplates"))
STYLE = """
body { font-family: 'DejaVu Sans', Arial, sans-serif; font-size: 10pt; color: #1b1b1b; margin: 18px; }
h1 { font-size: 17pt; margin: 0 0 4px 0; } h2 { font-size: 12.5pt; margin: 18px 0 6px 0; color: #1f3f66; }
table.data { border-collapse: collapse; margin: 4px 0 8px 0; }
table.data th, table.data td { border: 1px solid #9aa5b1; padding: 3px 6px; vertical-align: top; }
table.data th { background: #e6ebf1; text-align: left; }
td.num { text-align: right; } td.mono, span.mono { font-family: 'DejaVu Sans Mono', monospace; font-size: 8.5pt; }
table.check td { border: 2px solid #b7791f; background: #fff6df; padding: 8px 10px; font-weight: bold; }
p.small, td.small { font-size: 8.5pt; color: #444; }
"""


@dataclass
class ReportContent:
    facts: list[tuple[str, str]]                           # (what, value) for the header
    case_status: str = ""                                  # ok / review / failed ("" unknown)
    case_flags: list[str] = field(default_factory=list)
    models: list[dict] = field(default_factory=list)       # {"id", "version", "sha256"}
    pictures: list[tuple[str, bytes]] = field(default_factory=list)    # (caption, PNG)
    vertebrae: list[dict] = field(default_factory=list)    # measurements.json "vertebrae" rows
    alignment: dict = field(default_factory=dict)          # measurements.json "alignment"
    screws: list[Screw] = field(default_factory=list)
    not_planned: list[NotPlanned] = field(default_factory=list)
    screw_origin: str = ""                                 # where the screws come from, said above their table
    notes: list[str] = field(default_factory=list)         # what the reader should know (no scan, ...)
    methods: dict[str, str] = field(default_factory=dict)  # how each measure was made


def _e(value) -> str:
    return html.escape("" if value is None else str(value))


def _num(value, digits: int = 1, none: str = "-") -> str:
    return none if value is None else f"{float(value):.{digits}f}"


def _table(headers, rows, cls: str = "data") -> str:
    """``headers``: the column titles (none: no title row); ``rows``: lists of cells, each a str (escaped here) or (html, attributes) for a cell built by the caller."""
    # <thead>: the title row repeats on every page of the PDF
    head = "<thead><tr>" + "".join(f"<th>{_e(h)}</th>" for h in headers) + "</tr></thead>" if headers else ""
    body = []
    for row in rows:
        cells = [f"<td{c[1]}>{c[0]}</td>" if isinstance(c, tuple) else f"<td>{_e(c)}</td>" for c in row]
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f'<table class="{cls}" cellspacing="0" cellpadding="3">{head}<tbody>{"".join(body)}</tbody></table>'


def _cell(text: str, cls: str = "", colour: str = "") -> tuple[str, str]:
    attrs = (f' class="{cls}"' if cls else "") + (f' bgcolor="{colour}"' if colour else "")
    return _e(text), attrs


def _header(c: ReportContent) -> str:
    status = c.case_status or "not recorded"
    colour = {"ok": "#d9f2d9", "review": FLAG_COLOUR, "failed": BAD_COLOUR}.get(c.case_status, "")
    rows = [[what, value] for what, value in c.facts]
    rows.append(["QA status", _cell(status, colour=colour)])
    rows.append(["QA flags", ("<br>".join(_e(f) for f in c.case_flags) or "none", "")])
    out = [_table([], rows)]
    if c.models:
        out.append("<p class=\"small\">Models that made the labels (sha256 of each ONNX file, checked before it ran):</p>")
        out.append(_table(["model", "version", "sha256"],
                          [[m.get("id", ""), m.get("version", ""), _cell(m.get("sha256", ""), "mono")]
                           for m in c.models]))
    else:
        out.append('<p class="small">Models: not recorded in this result (made before SpinePlan recorded them, '
                   "or labels not made by the analysis).</p>")
    return "\n".join(out)


def _pictures(c: ReportContent) -> str:
    out = []
    for caption, png in c.pictures:
        data = base64.b64encode(png).decode("ascii")
        out.append(f'<p><img src="data:image/png;base64,{data}" width="780" alt="{_e(caption)}"><br>'
                   f'<span class="small">{_e(caption)}</span></p>')
    return "\n".join(out) or '<p class="small">No pictures.</p>'


def _vertebra_rows(rows: list[dict]) -> list[list]:
    out = []
    for r in rows:
        flags = list(r.get("flags") or [])
        grade = r.get("genant_grade")
        hu = r.get("core_hu")
        low = any(f.startswith("low bone density") for f in flags)
        out.append([r.get("name", ""), _cell(_num(r.get("volume_ml")), "num"),
                    _cell(_num(r.get("anterior_height_mm")), "num"), _cell(_num(r.get("middle_height_mm")), "num"),
                    _cell(_num(r.get("posterior_height_mm")), "num"), _cell(_num(r.get("wedge_ratio"), 2), "num"),
                    _cell(f"grade {grade}" if grade else ("n/g" if any("not graded" in n for n in r.get("notes") or [])
                                                          else "-"), colour=BAD_COLOUR if grade else ""),
                    _cell(_num(hu, 0) + (" (low)" if low else ""), "num", FLAG_COLOUR if low else ""),
                    "; ".join(flags + ([] if r.get("body_found", True) else list(r.get("notes") or [])[:1]))])
    return out


def _vertebrae(c: ReportContent) -> str:
    if not c.vertebrae:
        return '<p class="small">No vertebra was measured.</p>'
    headers = ["level", "volume (ml)", "anterior (mm)", "middle (mm)", "posterior (mm)", "wedge ratio",
               "Genant", "core HU", "flags"]
    return ('<p class="small">Body heights in the vertebra\'s mid-sagittal strip at 15 %, 50 % and 85 % of its '
            'depth; wedge ratio = anterior / posterior; Genant n/g: a loss measured but not graded (too small for '
            'the slices to show, or a label that is not one body); core HU: mean of the body eroded 3 mm from its '
            'surface (below 110 HU: low bone density).</p>' + _table(headers, _vertebra_rows(c.vertebrae)))


def _angle_used(angle: dict) -> str:
    return f"{angle['upper']} {angle['upper_plane']} to {angle['lower']} {angle['lower_plane']}"


def _alignment(c: ReportContent) -> str:
    rows = []
    for key, title, missing in ALIGNMENT_ROWS:
        angle = c.alignment.get(key)
        if angle:
            rows.append([title, _cell(f"{angle['degrees']:.1f}", "num"), _angle_used(angle), angle.get("note") or ""])
        else:
            rows.append([title, _cell("-", "num"), "not measured", missing])
    out = [_table(["measure", "degrees", "vertebrae and planes used", "note"], rows)]
    segmental = c.alignment.get("segmental") or []
    if segmental:
        listed = ", ".join(f"{a['name']} {a['degrees']:.1f}" for a in segmental)
        out.append(f'<p class="small">Segmental angles (degrees, superior endplate of the upper to inferior '
                   f'endplate of the lower vertebra, positive lordotic): {_e(listed)}.</p>')
    return "\n".join(out)


def _point(p) -> str:
    return "(" + ", ".join(f"{float(v):.1f}" for v in p) + ")"


def _screws(c: ReportContent) -> str:
    out = [f'<p class="small">{_e(c.screw_origin)}</p>'] if c.screw_origin else []
    if c.screws:
        rows = []
        for s in c.screws:
            grade = s.grade or "-"
            colour = GRADE_COLOURS.get(grade, BAD_COLOUR if s.grade else "")
            rows.append([s.vertebra, s.side, _cell(f"{s.diameter_mm:g}", "num"), _cell(f"{s.length_mm:g}", "num"),
                         _cell(_point(s.entry_lps), "mono"), _cell(_point(s.tip_lps), "mono"),
                         _cell(_num(s.min_cortex_distance_mm), "num"), _cell(grade, colour=colour), s.source,
                         "; ".join(s.notes)])
        out.append(_table(["level", "side", "diameter (mm)", "length (mm)", "entry LPS (mm)", "tip LPS (mm)",
                           "min. to cortex (mm)", "G-R grade", "source", "notes"], rows))
        out.append('<p class="small">Min. to cortex: least distance from the screw\'s surface to the label\'s '
                   "surface (negative: a breach by that much). G-R grade: the Gertzbein-Robbins grade it predicts "
                   "(A none, B &lt; 2 mm, C 2-4 mm, D 4-6 mm, E &gt; 6 mm).</p>")
    else:
        out.append('<p class="small">No screws planned.</p>')
    if c.not_planned:
        out.append("<p>Sides without a screw:</p>")
        out.append(_table(["level", "side", "reason"], [[n.vertebra, n.side, n.reason] for n in c.not_planned]))
    return "\n".join(out)


def _methods(c: ReportContent) -> str:
    items = "".join(f"<li><b>{_e(k)}</b>: {_e(v)}</li>" for k, v in c.methods.items())
    return f'<ul class="small">{items}</ul>' if items else ""


def report_html(c: ReportContent) -> str:
    """The whole page (UTF-8 text)."""
    notes = "".join(f"<li>{_e(n)}</li>" for n in c.notes)
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; img-src data:; '
        "style-src 'unsafe-inline'\">",
        f"<title>SpinePlan planning report</title><style>{STYLE}</style></head><body>",
        "<h1>SpinePlan planning report</h1>",
        _header(c),
        f'<table class="check" cellspacing="0" cellpadding="8" width="100%"><tr><td>{_e(CHECK_STATEMENT)}</td>'
        "</tr></table>",
        f'<ul class="small">{notes}</ul>' if notes else "",
        "<h2>Pictures</h2>", _pictures(c),
        "<h2>Vertebrae</h2>", _vertebrae(c),
        "<h2>Alignment</h2>", _alignment(c),
        "<h2>Pedicle screws</h2>", _screws(c),
        "<h2>How it was measured</h2>", _methods(c),
        '<p class="small">Coordinates: LPS millimetres of the scan\'s patient coordinate system (x to the '
        "patient's left, y posterior, z superior), as DICOM and navigation systems use them.</p>",
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p) + "\n"
