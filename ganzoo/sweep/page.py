"""``SWEEP_DIR/index.html``: a row per setting (its sample grid, metrics, time, parameters) and a plot of each
metric against each swept key, a static page opened without a server."""
import html
import math
import os

from ganzoo.engine.report import svg_panel
from ganzoo.fileio import write_text

#: row columns that are not metrics
INFO = ("name", "overrides", "state", "samples", "train_seconds", "parameters", "image")


def metric_names(rows, keys):
    return sorted({k for row in rows for k, v in row.items() if k not in INFO and k not in keys
                   and isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)})


def plot(rows, key, metric):
    """``metric`` against ``key``: every run as a dot, the mean over runs with the same value as a line;
    numeric values on a numeric axis, others as categories in order of appearance."""
    values = [(row.get(key), row[metric]) for row in rows
              if isinstance(row.get(metric), (int, float)) and math.isfinite(row[metric])]
    values = [(v, m) for v, m in values if v is not None]
    if not values:
        return ""
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v, _ in values)
    order = sorted({v for v, _ in values}) if numeric else list(dict.fromkeys(str(v) for v, _ in values))
    position = (lambda v: v) if numeric else (lambda v: order.index(str(v)))  # noqa: E731
    dots = [(position(v), m) for v, m in values]
    line = []
    for v in order:
        same = [m for x, m in dots if x == position(v)]
        line.append((position(v), sum(same) / len(same)))
    names = None if numeric else {i: v for i, v in enumerate(order)}
    return svg_panel(f"{metric} vs {key}", line, key, dots=dots, x_names=names, width=420, height=180)


def write_index(out, rows, keys, title="ganzoo sweep"):
    """(Re)write ``out/index.html`` from the sweep's rows and its swept ``keys``."""
    metrics = metric_names(rows, keys)
    head = ["setting", *keys, "state", *metrics, "train s", "G params", "samples"]
    page = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
            "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:2px 8px;vertical-align:top}img{image-rendering:pixelated;"
            "max-width:320px}</style></head><body>",
            f"<h1>{html.escape(title)}</h1><p>{len(rows)} settings; sweep.csv and sweep.json hold the same numbers.</p>"]
    if metrics and keys:
        page.append("<h2>Metrics against swept keys</h2>")
        page.extend(panel for key in keys for metric in metrics if (panel := plot(rows, key, metric)))
    page.append("<h2>Settings</h2><table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>")
    for row in rows:
        cells = [f"<a href='{html.escape(row['name'])}/index.html'>{html.escape(row['name'])}</a>",
                 *(html.escape(str(row.get(k, ""))) for k in keys), html.escape(row["state"]),
                 *(f"{row[m]:.4g}" if isinstance(row.get(m), (int, float)) else "" for m in metrics),
                 f"{row['train_seconds']:.0f}" if row.get("train_seconds") is not None else "",
                 f"{row['parameters']:,}" if row.get("parameters") is not None else "",
                 f"<img src='{html.escape(row['name'])}/{html.escape(row['samples'])}' alt='samples'>"
                 if row.get("samples") else ""]
        page.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    page.append("</table></body></html>")
    write_text(os.path.join(out, "index.html"), "\n".join(page))
