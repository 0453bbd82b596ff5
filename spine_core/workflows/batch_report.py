"""A batch run's QA report: OUT/summary.json, OUT/summary.csv and OUT/report.html, each written atomically.

report.html is one self-contained page (inline CSS and JS, thumbnails as data: URIs, no network) that
a reviewer opens in the morning: the batch's facts, counts as tiles, and a table of cases in review
order (what needs a person first) that sorts by any column and filters by text. Every text from a
file name, an error message or a reviewer's note is HTML-escaped.
"""
from __future__ import annotations

import base64
import csv
import datetime
import html
import json
import re
from dataclasses import replace
from pathlib import Path
from urllib.parse import quote

from spine_core.atomic import atomic_path
from spine_core.review import CASE_FLAG_HELP
from spine_core.workflows.batch_folder import DECISIONS, STATUS_ORDER, BatchFolder, CaseRecord

SUMMARY_JSON, SUMMARY_CSV, REPORT_HTML = "summary.json", "summary.csv", "report.html"
CSV_COLUMNS = ("case_id", "status", "state", "reason", "levels", "n_vertebrae", "seconds", "flags",
               "review_decision", "review_note", "models", "source", "series_uid")
FACT_NAMES = {"input": "Input folder", "output": "Output folder", "pipeline": "Pipeline", "device": "Device",
              "workers": "Workers", "dask": "Dask scheduler", "started": "Started", "finished": "Finished",
              "spineplan": "SpinePlan version", "version": "SpinePlan version",
              "seconds_this_run": "This run (s)", "cases_this_run": "Cases analysed this run",
              "model_load_s": "Model loading (s)", "report_written": "Report written"}


# -- data ------------------------------------------------------------------------------------------
def qa_status(record: CaseRecord) -> str:
    """ok / review / failed once finished (a failed or refused case is "failed"); "" before."""
    if record.state in ("failed", "refused"):
        return "failed"
    return record.status if record.state == "done" else ""


def batch_counts(records: list[CaseRecord]) -> dict:
    """Cases by journal state, by QA status and by review decision ("undecided": finished, no decision)."""
    statuses = [qa_status(r) for r in records]
    decisions = [(r.review or {}).get("decision") for r in records]
    counts = {"total": len(records),
              "done": sum(r.state == "done" for r in records),
              "ok": statuses.count("ok"), "review": statuses.count("review"), "failed": statuses.count("failed"),
              "refused": sum(r.state == "refused" for r in records),
              "not_finished": sum(not r.finished for r in records)}
    counts.update({d: decisions.count(d) for d in DECISIONS})
    counts["undecided"] = sum(r.finished and d is None for r, d in zip(records, decisions))
    return counts


def previous_meta(folder: BatchFolder) -> dict:
    """The batch facts of the last summary.json (a report rewritten after a review keeps them)."""
    try:
        batch = json.loads((folder.root / SUMMARY_JSON).read_text(encoding="utf-8")).get("batch")
    except (OSError, ValueError, AttributeError):
        return {}
    if not isinstance(batch, dict):
        return {}
    return {k: v for k, v in batch.items() if k not in ("counts", "report_written")}


def case_models(folder: BatchFolder, case_id: str) -> list[dict]:
    """The models that made a case's result (id, version, sha256), as its metrics.json records them."""
    try:
        models = json.loads((folder.case_dir(case_id) / "metrics.json").read_text(encoding="utf-8")).get("models")
    except (OSError, ValueError, AttributeError):
        return []
    return [m for m in models if isinstance(m, dict) and "id" in m] if isinstance(models, list) else []


def models_text(models) -> str:
    """Compact: "id sha256[:8]; ..."."""
    return "; ".join(f"{m.get('id')} {str(m.get('sha256', ''))[:8]}".strip() for m in models or ())


def summary(folder: BatchFolder, meta: dict | None = None) -> dict:
    """What summary.json holds: {"batch": meta + counts + report time, "cases": records in review order};
    ``meta`` None keeps the facts of the last report."""
    records = folder.sorted_for_review()
    meta = previous_meta(folder) if meta is None else meta
    batch = {**meta, "counts": batch_counts(records),
             "report_written": datetime.datetime.now().isoformat(timespec="seconds")}
    cases = [{**folder.record_dict(replace(r, status=qa_status(r))),
              "models": case_models(folder, r.case_id) if r.state == "done" else []} for r in records]
    return {"batch": batch, "cases": cases}


def _csv_text(value) -> str:
    """A cell a spreadsheet shows as text: one that would start a formula gets a leading apostrophe."""
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def csv_row(case: dict) -> list:
    review = case.get("review") or {}
    values = {**case, "flags": "; ".join(case.get("flags") or ()), "models": models_text(case.get("models")),
              "review_decision": review.get("decision", ""), "review_note": review.get("note", "")}
    return [values.get(c, "") if c in ("n_vertebrae", "seconds") else _csv_text(values.get(c, ""))
            for c in CSV_COLUMNS]


def write_reports(folder: BatchFolder, meta: dict | None = None) -> dict[str, Path]:
    """summary.json, summary.csv and report.html in the batch folder, each replaced atomically;
    returns {file name: path}. Without ``meta`` (a reviewer's decision rewrites the report) the batch
    facts of the last summary.json are kept."""
    doc = summary(folder, meta)
    paths = {name: folder.root / name for name in (SUMMARY_JSON, SUMMARY_CSV, REPORT_HTML)}
    with atomic_path(paths[SUMMARY_JSON]) as tmp:
        tmp.write_text(json.dumps(doc, indent=2, default=str) + "\n", encoding="utf-8")
    with atomic_path(paths[SUMMARY_CSV]) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(CSV_COLUMNS)
        writer.writerows(csv_row(case) for case in doc["cases"])
    with atomic_path(paths[REPORT_HTML]) as tmp:
        tmp.write_text(report_html(folder, doc), encoding="utf-8")
    return paths


# -- the page --------------------------------------------------------------------------------------
def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _fact_value(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        shown = ", ".join(_fact_value(v) for v in value[:8])
        return shown + (f", … ({len(value)})" if len(value) > 8 else "")
    return str(value)


def _facts_html(batch: dict) -> str:
    items = [(FACT_NAMES.get(k, k.replace("_", " ").capitalize()), _fact_value(v)) for k, v in batch.items()
             if k != "counts" and v not in ("", None, [], ())]
    return "".join(f"<div><dt>{_e(name)}</dt><dd>{_e(text)}</dd></div>" for name, text in items)


def _tiles_html(counts: dict) -> str:
    tiles = (("total", "Cases", ""), ("ok", "OK", "ok"), ("review", "Review", "review"),
             ("failed", "Failed", "failed"), ("refused", "of them refused", "idle"),
             ("not_finished", "Not finished", "idle"), ("accepted", "Accepted", "decided gap"),
             ("corrected", "Corrected", "decided"), ("rejected", "Rejected", "decided"),
             ("undecided", "Undecided", "idle"))
    return "".join(f'<div class="tile {cls}"><b>{counts.get(key, 0)}</b><span>{_e(name)}</span></div>'
                   for key, name, cls in tiles)


def _thumbnail_html(folder: BatchFolder, case_id: str) -> str:
    try:
        data = folder.thumbnail(case_id).read_bytes()
    except OSError:
        return '<div class="nothumb">no picture</div>'
    uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    return (f'<img class="thumb" loading="lazy" decoding="async" alt="sagittal picture of {_e(case_id)}" '
            f'title="click to enlarge" src="{uri}">')


def _flags_html(flags, reason: str = "") -> str:
    """One line per flag, its kind in bold with the kind's help as a tooltip; a detail that repeats
    the case's reason (failed, refused) is left to the reason column."""
    lines = []
    for flag in flags or ():
        kind, sep, detail = str(flag).partition(":")
        if reason and detail.strip() == reason.strip():
            detail = ""
        help_text = CASE_FLAG_HELP.get(kind.strip(), "")
        tip = f' title="{_e(help_text)}"' if help_text else ""
        body = f"<b>{_e(kind)}</b>" + (_e(sep + detail) if detail else "") if sep else _e(kind)
        lines.append(f"<li{tip}>{body}</li>")
    return f'<ul class="flags">{"".join(lines)}</ul>' if lines else ""


def _review_html(review: dict | None) -> str:
    if not review:
        return '<span class="muted">undecided</span>'
    parts = [f'<span class="decision {_e(review.get("decision", ""))}">{_e(review.get("decision", ""))}</span>']
    if review.get("note"):
        parts.append(f'<div class="note">{_e(review["note"])}</div>')
    who = " · ".join(str(review[k]) for k in ("reviewer", "time") if review.get(k))
    if who:
        parts.append(f'<div class="muted small">{_e(who)}</div>')
    return "".join(parts)


def _row_html(folder: BatchFolder, case: dict, rank: int) -> str:
    status = case.get("status") or case.get("state", "")
    order = STATUS_ORDER.get(status, 3)
    decision = (case.get("review") or {}).get("decision", "")
    link = (f'<a href="{_e(quote(case["result"]) + "/")}">result folder</a>' if case.get("result")
            else '<span class="muted">—</span>')
    if case.get("models"):      # folded: most cases of a batch share one set of models
        link += ('<details class="small"><summary>models</summary>'
                 + "<br>".join(_e(models_text([m])) for m in case["models"]) + "</details>")
    seconds = f'{case.get("seconds") or 0:.1f}' if case.get("seconds") else ""
    cells = (
        (str(rank), "thumbcell", _thumbnail_html(folder, case["case_id"])),
        (case["case_id"], "case", _e(case["case_id"]).replace("_", "_<wbr>")      # break long ids at "_"
         + f'<div class="muted small">{_e(case.get("kind", ""))}</div>'),
        (f"{order + 0.5 * bool(decision)}", "", f'<span class="badge {_e(status)}">{_e(status or "—")}</span>'),
        (case.get("levels", ""), "", _e(case.get("levels", ""))),
        (str(case.get("n_vertebrae") or 0), "num", _e(case.get("n_vertebrae", "")) if case.get("result") else ""),
        (str(len(case.get("flags") or ())), "flagcell", _flags_html(case.get("flags"), case.get("reason", ""))),
        (case.get("reason", ""), "reason", _e(case.get("reason", ""))),
        (str(case.get("seconds") or 0), "num", seconds),
        (decision or "~", "", _review_html(case.get("review"))),
        (case.get("result", ""), "nowrap", link),
    )
    tds = "".join(f'<td data-sort="{_e(key)}"' + (f' class="{cls}"' if cls else "") + f">{body}</td>"
                  for key, cls, body in cells)
    return f'<tr class="{_e(status)}">{tds}</tr>'


# (header, sort type); sorting by the picture column restores the review order
COLUMNS = (("Picture", "num"), ("Case", "text"), ("Status", "num"), ("Levels", "text"),
           ("Vertebrae", "num"), ("Flags", "num"), ("Reason", "text"), ("Time (s)", "num"),
           ("Review", "text"), ("Result", "text"))


def report_html(folder: BatchFolder, doc: dict) -> str:
    """The whole page for a summary ``doc`` (see ``summary``)."""
    batch, cases = doc["batch"], doc["cases"]
    title = "SpinePlan batch QA report"
    where = Path(str(batch.get("input", ""))).name if batch.get("input") else folder.root.name
    heads = "".join(f'<th data-type="{kind}" tabindex="0" aria-sort="none"'
                    + (' title="sort in review order"' if name == "Picture" else "") + f">{_e(name)}</th>"
                    for name, kind in COLUMNS)
    rows = "\n".join(_row_html(folder, case, rank) for rank, case in enumerate(cases))
    empty = "" if cases else '<p class="muted">This batch holds no cases yet.</p>'
    parts = {"TITLE": _e(f"{title} — {where}"), "H1": _e(title), "WHERE": _e(where), "FACTS": _facts_html(batch),
             "TILES": _tiles_html(batch["counts"]), "HEADS": heads, "EMPTY": empty, "N": str(len(cases)),
             "ROWS": rows}
    # one pass: a "%ROWS%" inside a case id or a path is text, never a slot
    return re.sub(r"%([A-Z0-9]+)%", lambda m: parts[m.group(1)], PAGE)


CSS = """
:root{--ok:#1b7f3b;--okbg:#e3f4e8;--review:#9a5b00;--reviewbg:#fff1d6;--failed:#b3261e;--failedbg:#fbe3e1;
--ink:#1d2733;--muted:#667085;--line:#d9dee5;--head:#f3f5f8}
*{box-sizing:border-box}
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--ink);
margin:0;padding:24px 32px;background:#fff}
h1{font-size:22px;margin:0 0 2px;font-weight:600}
.sub{color:var(--muted);margin:0 0 16px}
dl.facts{display:grid;grid-template-columns:repeat(auto-fill,minmax(220px,1fr));gap:6px 24px;margin:0 0 18px}
dl.facts div{border-left:3px solid var(--line);padding-left:8px}
dt{font-size:11px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted)}
dd{margin:0;word-break:break-all}
.tiles{display:flex;flex-wrap:wrap;gap:10px;margin:0 0 18px}
.tile{min-width:104px;padding:10px 14px;border:1px solid var(--line);border-radius:8px;background:var(--head)}
.tile b{display:block;font-size:24px;font-weight:600}
.tile span{font-size:12px;color:var(--muted)}
.tile.ok{background:var(--okbg);border-color:#b7e0c3}.tile.ok b{color:var(--ok)}
.tile.review{background:var(--reviewbg);border-color:#f0d29a}.tile.review b{color:var(--review)}
.tile.failed{background:var(--failedbg);border-color:#f1b8b3}.tile.failed b{color:var(--failed)}
.tile.decided{background:#fff}.tile.gap{margin-left:18px}
.bar{display:flex;gap:12px;align-items:center;margin:0 0 8px}
.bar input{font:inherit;padding:5px 9px;border:1px solid var(--line);border-radius:6px;width:300px}
table{border-collapse:collapse;width:100%}
th{position:sticky;top:0;background:var(--head);text-align:left;font-size:12px;font-weight:600;padding:8px;
border-bottom:2px solid var(--line);cursor:pointer;user-select:none;white-space:nowrap;z-index:1}
th:after{content:" \\2195";color:#b0b8c4}
th[aria-sort=ascending]:after{content:" \\2191";color:var(--ink)}
th[aria-sort=descending]:after{content:" \\2193";color:var(--ink)}
td{padding:6px 8px;border-bottom:1px solid var(--line);vertical-align:top}
tr:hover td{background:#f8fafc}
td.num{text-align:right;font-variant-numeric:tabular-nums}
td.case{font-weight:600;overflow-wrap:anywhere;min-width:150px;max-width:240px}
td.nowrap{white-space:nowrap}
td.reason{max-width:220px;color:var(--failed)}
td.flagcell{min-width:340px}
.thumb{height:140px;width:auto;max-width:180px;object-fit:contain;border-radius:4px;background:#000;cursor:zoom-in;
display:block}
.thumb.big{height:380px;max-width:none;cursor:zoom-out}
.nothumb{width:80px;height:44px;border:1px dashed var(--line);border-radius:4px;color:var(--muted);
font-size:11px;display:flex;align-items:center;justify-content:center}
.badge{display:inline-block;padding:2px 9px;border-radius:10px;font-size:12px;font-weight:600;
border:1px solid currentColor;background:var(--head);color:var(--muted)}
.badge.ok{color:var(--ok);background:var(--okbg)}
.badge.review{color:var(--review);background:var(--reviewbg)}
.badge.failed{color:var(--failed);background:var(--failedbg)}
ul.flags{margin:0;padding:0;list-style:none;font-size:12px}
ul.flags li{padding:1px 0}
ul.flags li[title]{cursor:help}
ul.flags li[title] b{text-decoration:underline dotted #98a2b3}
.decision{font-weight:600;text-transform:capitalize}
.decision.accepted{color:var(--ok)}.decision.corrected{color:var(--review)}.decision.rejected{color:var(--failed)}
.note{font-size:12px}
.muted{color:var(--muted)}.small{font-size:11px}
footer{margin-top:18px;font-size:12px;color:var(--muted)}
a{color:#1f5fbf}
@media print{body{padding:0;font-size:11px}.bar{display:none}th{position:static}th:after{content:""}
tr{break-inside:avoid}.thumb{height:90px}.thumb.big{height:90px}
.tile{min-width:76px;padding:5px 9px}.tile b{font-size:17px}
*{-webkit-print-color-adjust:exact;print-color-adjust:exact}a{color:inherit;text-decoration:none}}
"""

JS = """
(function(){
var table=document.getElementById('cases'),body=table.tBodies[0],heads=table.tHead.rows[0].cells;
var count=document.getElementById('shown');
function key(row,i,num){var v=row.cells[i].getAttribute('data-sort');if(num){v=parseFloat(v);return isNaN(v)?0:v}
return v.toLowerCase()}
function sortBy(i){var th=heads[i],num=th.getAttribute('data-type')==='num';
var dir=th.getAttribute('aria-sort')==='ascending'?-1:1;
for(var h=0;h<heads.length;h++)heads[h].setAttribute('aria-sort','none');
th.setAttribute('aria-sort',dir>0?'ascending':'descending');
var rows=Array.prototype.slice.call(body.rows),keyed=rows.map(function(r,n){return [key(r,i,num),key(r,1,false),n,r]});
keyed.sort(function(a,b){return a[0]<b[0]?-dir:a[0]>b[0]?dir:a[1]<b[1]?-1:a[1]>b[1]?1:a[2]-b[2]});
var frag=document.createDocumentFragment();keyed.forEach(function(k){frag.appendChild(k[3])});body.appendChild(frag)}
for(var i=0;i<heads.length;i++)(function(i){heads[i].addEventListener('click',function(){sortBy(i)});
heads[i].addEventListener('keydown',function(ev){if(ev.key==='Enter'||ev.key===' '){ev.preventDefault();sortBy(i)}})})(i);
document.getElementById('filter').addEventListener('input',function(ev){var q=ev.target.value.toLowerCase(),n=0;
Array.prototype.forEach.call(body.rows,function(r){var hit=!q||r.textContent.toLowerCase().indexOf(q)>=0;
r.style.display=hit?'':'none';n+=hit?1:0});count.textContent=n});
body.addEventListener('click',function(ev){if(ev.target.classList.contains('thumb'))ev.target.classList.toggle('big')});
})();
"""

PAGE = ("""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>%TITLE%</title>
<style>""" + CSS + """</style></head>
<body>
<h1>%H1%</h1>
<p class="sub">%WHERE%</p>
<dl class="facts">%FACTS%</dl>
<div class="tiles">%TILES%</div>
<div class="bar"><input id="filter" type="search" placeholder="Filter cases, flags, reasons…">
<span class="muted"><span id="shown">%N%</span> of %N% cases · click a column header to sort</span></div>
<table id="cases"><thead><tr>%HEADS%</tr></thead>
<tbody>
%ROWS%
</tbody></table>
%EMPTY%
<footer>Cases needing a person come first: review, then failed, then ok; undecided before decided.
Automatic results support, never replace, a clinician's reading: check and correct every case before use.</footer>
<script>""" + JS + """</script>
</body></html>
""")
