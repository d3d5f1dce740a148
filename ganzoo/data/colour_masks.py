"""Colour-coded masks -> class-index maps and a class list (``ganzoo-labels``), and the colour lookup that
lets a ``paired_folders`` dataset read colour label maps directly (its ``palette`` key).

A palette is a list of RGB colours, index k = class k. Palette files are text, one class per line::

    R G B [name]        (also R,G,B [name] or #RRGGBB [name]; blank lines and "# comment" lines skipped)

or the name of a dataset whose colours ganzoo knows (``ade20k``, ``coco_stuff``, ``cityscapes``: the
colours of :mod:`ganzoo.data.palettes`). When two classes share a colour the lower index wins.
Without a palette the classes are the colours found in the masks, most frequent first.
"""
import os
import re

from ganzoo.data import palettes
from ganzoo.data.segmap import DONTCARE_VALUE
from ganzoo.fileio import atomic_path, write_text

MASK_EXTENSIONS = (".png", ".bmp", ".tif", ".tiff", ".gif", ".jpg", ".jpeg", ".webp")
MAX_CLASSES = 255  # index maps are uint8 and 255 means unlabeled
_HEX = re.compile(r"^#([0-9a-fA-F]{6})$")


def parse_color(text):
    """``"#ff8000"``, ``"255,128,0"`` or ``"255 128 0"`` -> (255, 128, 0); ValueError otherwise."""
    text = str(text).strip()
    match = _HEX.match(text)
    if match:
        value = int(match.group(1), 16)
        return (value >> 16, (value >> 8) & 255, value & 255)
    parts = [p for p in re.split(r"[,\s]+", text) if p]
    try:
        rgb = tuple(int(p) for p in parts)
    except ValueError:
        rgb = ()
    if len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb):
        raise ValueError(f"{text!r} is not a colour: use #RRGGBB, R,G,B or R G B with values 0..255")
    return rgb


def color_name(rgb):
    return "#%02x%02x%02x" % tuple(rgb)


def read_palette(source):
    """(colours, names) from a palette file or a dataset name; names default to the colour's hex code."""
    if source in palettes.CLASS_FILES:
        colors = palettes.palette(source)
        return colors, palettes.class_names(source)[:len(colors)]
    if not os.path.isfile(str(source)):
        raise FileNotFoundError(f"palette {source} not found (a palette file, or one of "
                                f"{', '.join(palettes.CLASS_FILES)})")
    colors, names = [], []
    with open(source) as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line or (line.startswith("#") and not _HEX.match(line.split()[0])):
                continue
            fields = line.split(None, 1) if line.startswith("#") else re.split(r"[,\s]+", line, maxsplit=3)
            color_text, name = (fields[0], fields[1:]) if line.startswith("#") else (" ".join(fields[:3]), fields[3:])
            try:
                rgb = parse_color(color_text)
            except ValueError as err:
                raise ValueError(f"{source}:{number}: {err}") from None
            colors.append(rgb)
            names.append(name[0].strip() if name else color_name(rgb))
    if not colors:
        raise ValueError(f"palette {source} lists no colours (one 'R G B [name]' line per class)")
    return colors, names


def write_palette(path, colors, names):
    write_text(path, "".join(f"{r} {g} {b} {name}\n" for (r, g, b), name in zip(colors, names)))


def config_palette(value, where="data.palette"):
    """A ``palette`` config value (file, dataset name or inline list of [R, G, B]) -> list of colours."""
    if isinstance(value, (list, tuple)):
        try:
            colors = [parse_color(",".join(str(v) for v in c)) if isinstance(c, (list, tuple)) else parse_color(c)
                      for c in value]
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from None
        if not colors:
            raise ValueError(f"{where}: the colour list is empty")
        return colors
    if isinstance(value, str):
        try:
            return read_palette(value)[0]
        except (ValueError, OSError) as err:
            raise type(err)(f"{where}: {err}") from None
    raise ValueError(f"{where} must be a palette file, a dataset name or a list of [R, G, B], got {value!r}")


def pack(rgb):
    """(H, W, 3) uint8 -> (H, W) int64 codes R * 65536 + G * 256 + B."""
    import numpy as np

    rgb = np.asarray(rgb)
    return (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]


def color_code(rgb):
    r, g, b = rgb
    return (int(r) << 16) | (int(g) << 8) | int(b)


def unpack(code):
    return (int(code) >> 16, (int(code) >> 8) & 255, int(code) & 255)


def read_colors(path):
    """A mask file as (H, W) colour codes (palette, grey and alpha images are taken as their RGB colours)."""
    from PIL import Image

    with Image.open(path) as img:
        return pack(img.convert("RGB"))


def lookup_table(colors):
    """{colour code: index}; a colour listed twice keeps its first index."""
    table = {}
    for index, rgb in enumerate(colors):
        table.setdefault(color_code(rgb), index)
    return table


def to_index_map(codes, table, unknown_value=None):
    """Colour codes -> uint8 index map; returns (map, {unknown code: pixels}). Unknown pixels get
    ``unknown_value`` (default: 255, unlabeled)."""
    import numpy as np

    values, inverse, counts = np.unique(codes.ravel(), return_inverse=True, return_counts=True)
    fill = DONTCARE_VALUE if unknown_value is None else unknown_value
    mapped = np.array([table.get(int(v), fill) for v in values], dtype=np.uint8)
    unknown = {int(v): int(n) for v, n in zip(values, counts) if int(v) not in table}
    return mapped[inverse].reshape(codes.shape), unknown


def colors_to_indices(img, colors, path="label map"):
    """A colour PIL image -> PIL 'L' index map through ``colors``; ValueError naming unknown colours."""
    from PIL import Image

    index, unknown = to_index_map(pack(img.convert("RGB")), lookup_table(colors))
    if unknown:
        largest = sorted(unknown.items(), key=lambda kv: -kv[1])[:4]
        shown = ", ".join(f"{color_name(unpack(c))} ({n} px)" for c, n in largest)
        raise ValueError(f"{path}: {len(unknown)} colour(s) not in the palette: {shown}; add them to data.palette "
                         "or convert the masks with ganzoo-labels")
    return Image.fromarray(index, mode="L")


def list_masks(masks_dir):
    if not os.path.isdir(masks_dir):
        raise FileNotFoundError(f"mask folder {masks_dir} not found")
    files = {}
    for name in sorted(os.listdir(masks_dir)):
        stem, ext = os.path.splitext(name)
        if ext.lower() in MASK_EXTENSIONS and not name.startswith("."):
            if stem in files:
                raise ValueError(f"{masks_dir}: two masks with the stem {stem!r} "
                                 f"({os.path.basename(files[stem])}, {name})")
            files[stem] = os.path.join(masks_dir, name)
    if not files:
        raise FileNotFoundError(f"mask folder {masks_dir} has no {'/'.join(MASK_EXTENSIONS)} files")
    return files


def count_colors(masks):
    """{code: pixels} and {code: [first file]} over all masks."""
    import numpy as np

    totals, first = {}, {}
    for path in masks.values():
        values, counts = np.unique(read_colors(path), return_counts=True)
        for v, n in zip(values.tolist(), counts.tolist()):
            totals[v] = totals.get(v, 0) + n
            first.setdefault(v, path)
    return totals, first


def convert_folder(masks_dir, out_dir, palette=None, classes=None, unlabeled=(), unknown="error", log=print):
    """Write ``out_dir/<stem>.png`` index maps, ``classes.txt`` and ``palette.txt``; return the class names.

    ``palette``: a palette file or dataset name (else the colours found, most frequent first); ``classes``: a
    class-list file naming the classes in index order; ``unlabeled``: colours written as 255;
    ``unknown``: ``"error"`` (nothing written) or ``"unlabeled"`` (written as 255) for colours not in the palette.
    """
    if unknown not in ("error", "unlabeled"):
        raise ValueError(f"unknown must be 'error' or 'unlabeled', got {unknown!r}")
    if os.path.exists(out_dir) and os.path.samefile(out_dir, masks_dir):
        raise ValueError(f"the output folder {out_dir} is the mask folder: choose another one (inputs stay untouched)")
    masks = list_masks(masks_dir)
    totals, first = count_colors(masks)
    skip = {color_code(c) for c in unlabeled}
    if palette is not None:
        colors, names = read_palette(palette)
    else:
        found = sorted((c for c in totals if c not in skip), key=lambda c: (-totals[c], c))
        colors = [unpack(c) for c in found]
        names = [color_name(c) for c in colors]
    if classes is not None:
        given = palettes.read_class_list(classes)
        if len(given) < len(colors):
            raise ValueError(f"{classes} names {len(given)} classes but there are {len(colors)} colours")
        names = given[:len(colors)]
    if len(colors) > MAX_CLASSES:
        raise ValueError(f"{len(colors)} colours in {masks_dir}: at most {MAX_CLASSES} classes; anti-aliased or JPEG "
                         "masks blend colours, give the real ones with --palette")
    table = {code: index for code, index in lookup_table(colors).items() if code not in skip}
    unknown_colors = {c: n for c, n in totals.items() if c not in table and c not in skip}
    for code, pixels in sorted(unknown_colors.items(), key=lambda kv: -kv[1])[:20]:
        log(f"unknown colour {color_name(unpack(code))} {unpack(code)}: {pixels:,} pixels (first in "
            f"{os.path.basename(first[code])})")
    if len(unknown_colors) > 20:
        log(f"... and {len(unknown_colors) - 20} more unknown colours")
    if unknown_colors and unknown == "error":
        raise ValueError(f"{len(unknown_colors)} colour(s) of {masks_dir} are not in the palette (listed above): add "
                         "them to it, or write them as unlabeled (255) with --unknown unlabeled")

    from PIL import Image
    os.makedirs(out_dir, exist_ok=True)
    for stem, path in masks.items():
        index, _ = to_index_map(read_colors(path), table)
        with atomic_path(os.path.join(out_dir, stem + ".png"), ".png") as tmp:
            Image.fromarray(index, mode="L").save(tmp)
    write_text(os.path.join(out_dir, "classes.txt"), "".join(f"{name}\n" for name in names))
    write_palette(os.path.join(out_dir, "palette.txt"), colors, names)

    pixels = [sum(totals.get(c, 0) for c, i in table.items() if i == k) for k in range(len(colors))]
    dontcare = sum(totals.get(c, 0) for c in skip) + (sum(unknown_colors.values()) if unknown == "unlabeled" else 0)
    log(f"{len(masks)} masks -> {out_dir}: {len(colors)} classes (classes.txt, palette.txt)")
    for k, (name, rgb) in enumerate(zip(names, colors)):
        log(f"  {k:3d}  {color_name(rgb)}  {pixels[k]:>12,} px  {name}")
    log(f"config: label_nc: {len(colors)}, contain_dontcare_label: {'true' if dontcare else 'false'}"
        + (f" ({dontcare:,} unlabeled pixels = 255)" if dontcare else ""))
    return names
