"""What a run directory shows: sample grids (PNG), loss curves (PNG via matplotlib when installed)
and ``index.html``, a static page (config, metrics, curves, samples over time) opened without a server.
"""
import html
import json
import math
import os

import torch

from ganzoo.fileio import atomic_path, write_text


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


def plot_losses(records, path):
    """Loss curves to ``path``; returns False when matplotlib is not installed (the page omits them)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    names = sorted({name for r in records for name in r.get("losses", {})})
    if not names:
        return False
    fig, ax = plt.subplots(figsize=(8, 4))
    for name in names:
        points = [(r["step"], r["losses"][name]) for r in records if name in r.get("losses", {})]
        ax.plot(*zip(*points), label=name)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(path, ".png") as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    return True


def _svg_curves(records, width=640, height=220):
    """A dependency-free SVG of the loss curves (each loss scaled to its own range)."""
    names = sorted({name for r in records for name in r.get("losses", {})})
    if not names or len(records) < 2:
        return ""
    colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]
    steps = [r["step"] for r in records]
    s0, s1 = min(steps), max(steps) or 1
    parts = [f'<svg width="{width}" height="{height + 20 * len(names)}" xmlns="http://www.w3.org/2000/svg">',
             f'<rect width="{width}" height="{height}" fill="none" stroke="#ccc"/>']
    for i, name in enumerate(names):
        pts = [(r["step"], r["losses"][name]) for r in records
               if name in r.get("losses", {}) and math.isfinite(r["losses"][name])]
        if not pts:
            continue
        lo, hi = min(v for _, v in pts), max(v for _, v in pts)
        span = (hi - lo) or 1.0
        xy = " ".join(f"{(s - s0) / max(s1 - s0, 1) * (width - 10) + 5:.1f},"
                      f"{height - 5 - (v - lo) / span * (height - 10):.1f}" for s, v in pts)
        color = colors[i % len(colors)]
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{xy}"/>')
        parts.append(f'<text x="5" y="{height + 15 + 20 * i}" fill="{color}" font-size="12">'
                     f'{html.escape(name)}: {lo:.4g} .. {hi:.4g}</text>')
    parts.append("</svg>")
    return "".join(parts)


def write_index(run_dir, config_text, records, metrics, title="ganzoo run"):
    """(Re)write ``run_dir/index.html`` from the files in the run directory."""
    plot = "losses.png" if plot_losses(records, os.path.join(run_dir, "losses.png")) else None
    samples_dir = os.path.join(run_dir, "samples")
    samples = sorted(f for f in os.listdir(samples_dir) if f.endswith(".png")) if os.path.isdir(samples_dir) else []
    out = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
           "<style>body{font-family:sans-serif;margin:2em}pre{background:#f4f4f4;padding:1em}"
           "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px}"
           "figure{display:inline-block;margin:4px}img{image-rendering:pixelated;max-width:512px}</style>",
           f"</head><body><h1>{html.escape(title)}</h1>"]
    if records:
        last = records[-1]
        out.append(f"<p>step {last['step']}, stage {last.get('stage', 0)}, epoch {last.get('epoch', 0)}</p>")
    out.append("<h2>Losses</h2>")
    if plot:
        out.append(f"<img src='{plot}' alt='loss curves'>")
    else:
        out.append(_svg_curves(records) or "<p>no log records yet</p>")
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
        caption = html.escape(name[:-4].replace("_", " "))
        out.append(f"<figure><img src='samples/{name}' alt='{caption}'><figcaption>{caption}</figcaption></figure>")
    out.append(f"<h2>Config</h2><pre>{html.escape(config_text)}</pre></body></html>")
    write_text(os.path.join(run_dir, "index.html"), "\n".join(out))
