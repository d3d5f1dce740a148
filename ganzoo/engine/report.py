"""What a run directory shows: sample grids (PNG) and ``index.html``, a static page opened without a
server (config, metrics, loss curves as inline SVG with axes, the training data and samples over time).
"""
import html
import json
import math
import os

import torch

from ganzoo.fileio import atomic_path, write_text

TRAINING_DATA = "training_data.png"  # the real images of the fixed sample batch, shown first


def image_grid(images, nrow=None, pad=2):
    """(N, C, H, W) in [-1, 1] -> uint8 (H', W', 3) tiled grid with ``pad`` white pixels between tiles."""
    images = images.detach().float().cpu().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    images = images[:, :3]
    n, c, h, w = images.shape
    nrow = nrow or max(1, math.ceil(math.sqrt(n)))
    rows = math.ceil(n / nrow)
    grid = torch.full((c, rows * (h + pad) + pad, nrow * (w + pad) + pad), 255, dtype=torch.uint8)
    for i in range(n):
        y, x = pad + (i // nrow) * (h + pad), pad + (i % nrow) * (w + pad)
        grid[:, y:y + h, x:x + w] = images[i]
    return grid.permute(1, 2, 0).contiguous()


def save_grid(images, path):
    from PIL import Image

    with atomic_path(path, ".png") as tmp:
        Image.fromarray(image_grid(images).numpy()).save(tmp)


def read_log(path):
    if not os.path.isfile(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def _nice_ticks(lo, hi, count=4):
    """About ``count`` round tick values covering [lo, hi]."""
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / count
    step = 10 ** math.floor(math.log10(raw))
    step *= next(m for m in (1, 2, 5, 10) if m * step >= raw)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def svg_panel(title, line, x_label, dots=(), x_names=None, width=640, height=160):
    """One dependency-free SVG panel with axes and tick labels: ``line`` [(x, y)] as a polyline, ``dots``
    [(x, y)] as points; ``x_names`` {x: text} labels those x positions instead of numeric ticks."""
    left, right, top, bottom = 56, 12, 18, 30
    xs = [p[0] for p in (*line, *dots)]
    ys = [p[1] for p in (*line, *dots)]
    first, last = min(xs), max(xs)
    last = last if last > first else first + 1  # one x value: a unit-wide axis
    margin = 0.05 * (last - first) if dots else 0  # keep points off the frame
    x0, x1 = first - margin, last + margin
    lo, hi = min(ys), max(ys)
    if hi - lo < 1e-12:
        lo, hi = lo - 0.5, hi + 0.5
    x = lambda v: left + (v - x0) / (x1 - x0) * (width - left - right)  # noqa: E731
    y = lambda v: top + (hi - v) / (hi - lo) * (height - top - bottom)  # noqa: E731
    parts = [f'<svg width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg" font-size="11">',
             f'<text x="{left}" y="12" font-weight="bold">{html.escape(title)}</text>',
             f'<rect x="{left}" y="{top}" width="{width - left - right}" height="{height - top - bottom}" '
             'fill="none" stroke="#999"/>']
    for tick in _nice_ticks(lo, hi):
        parts.append(f'<line x1="{left - 4}" x2="{width - right}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" '
                     f'stroke="#eee"/><text x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">{tick:.4g}</text>')
    x_ticks = x_names.items() if x_names else ((t, f"{t:g}") for t in _nice_ticks(first, last))
    for tick, text in x_ticks:
        parts.append(f'<line x1="{x(tick):.1f}" x2="{x(tick):.1f}" y1="{height - bottom}" y2="{height - bottom + 4}" '
                     f'stroke="#999"/><text x="{x(tick):.1f}" y="{height - bottom + 15}" '
                     f'text-anchor="middle">{html.escape(str(text))}</text>')
    parts.append(f'<text x="{width - right}" y="{height - 2}" text-anchor="end">{html.escape(x_label)}</text>')
    if line:
        xy = " ".join(f"{x(a):.1f},{y(b):.1f}" for a, b in line)
        parts.append(f'<polyline fill="none" stroke="#1f77b4" stroke-width="1.5" points="{xy}"/>')
    parts.extend(f'<circle cx="{x(a):.1f}" cy="{y(b):.1f}" r="3" fill="#ff7f0e"/>' for a, b in dots)
    return "".join(parts) + "</svg>"


def svg_curves(records, width=640, height=160):
    """One SVG panel per loss over the steps of ``records``."""
    names = sorted({name for r in records for name in r.get("losses", {})})
    if not names or len(records) < 2:
        return ""
    panels = []
    for name in names:
        pts = [(r["step"], r["losses"][name]) for r in records
               if name in r.get("losses", {}) and math.isfinite(r["losses"][name])]
        if pts:
            panels.append(svg_panel(name, pts, "step", width=width, height=height))
    return "<br>".join(panels)


def write_index(run_dir, config_text, records, metrics, title="ganzoo run", show_epoch=True):
    """(Re)write ``run_dir/index.html`` from the run's config text, log records and metric records (held in
    memory by the trainer) and the sample grids in ``samples/``; ``samples/training_data.png`` comes first."""
    samples_dir = os.path.join(run_dir, "samples")
    samples = sorted(f for f in os.listdir(samples_dir) if f.endswith(".png")) if os.path.isdir(samples_dir) else []
    if TRAINING_DATA in samples:
        samples.remove(TRAINING_DATA)
        samples.insert(0, TRAINING_DATA)
    out = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
           "<style>body{font-family:sans-serif;margin:2em}pre{background:#f4f4f4;padding:1em}"
           "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px}"
           "figure{display:inline-block;margin:4px}img{image-rendering:pixelated;max-width:512px}</style>",
           f"</head><body><h1>{html.escape(title)}</h1>"]
    if records:
        last = records[-1]
        where = f"step {last['step']}, stage {last.get('stage', 0)} ({html.escape(str(last.get('stage_name', '')))})"
        if show_epoch:  # not for one-image runs, where every step is an "epoch"
            where += f", epoch {last.get('epoch', 0)}"
        out.append(f"<p>{where}</p>")
    out.append("<h2>Losses</h2>")
    out.append(svg_curves(records) or "<p>no log records yet</p>")
    out.append("<h2>Metrics</h2>")
    if metrics:
        keys = sorted({k for m in metrics for k in m if k not in ("step", "stage")})
        out.append("<table><tr><th>step</th>" + "".join(f"<th>{html.escape(k)}</th>" for k in keys) + "</tr>")
        for m in metrics:
            cells = "".join(f"<td>{m[k]:.5g}</td>" if isinstance(m.get(k), (int, float)) else
                            f"<td>{html.escape(str(m.get(k, '')))}</td>" for k in keys)
            out.append(f"<tr><td>{m['step']}</td>{cells}</tr>")
        out.append("</table>")
    else:
        out.append("<p>none (set eval.every and eval.metrics)</p>")
    out.append("<h2>Samples</h2>")
    for name in samples:
        caption = html.escape(name[:-4].replace("_", " "))  # "training data", "step 00001000"
        out.append(f"<figure><img src='samples/{name}' alt='{caption}'><figcaption>{caption}</figcaption></figure>")
    out.append(f"<h2>Config</h2><pre>{html.escape(config_text)}</pre></body></html>")
    write_text(os.path.join(run_dir, "index.html"), "\n".join(out))
