"""ganzoo-labels (colour masks -> index maps + class list) and colour label maps in paired_folders."""
import hashlib
import os

import numpy as np
import pytest
import torch
from PIL import Image

from ganzoo.cli import labels as labels_cli
from ganzoo.data import colour_masks
from ganzoo.data.paired import PairedFolders

RED, GREEN, BLUE, BLACK = (255, 0, 0), (0, 255, 0), (0, 0, 255), (0, 0, 0)


def paint(rows):
    return np.array(rows, np.uint8)


# two 3 x 4 masks: red 13 px, green 7 px, blue 4 px in all
MASK_A = paint([[RED, RED, RED, RED], [RED, RED, GREEN, GREEN], [BLUE, BLUE, GREEN, GREEN]])
MASK_B = paint([[RED, RED, RED, RED], [RED, RED, RED, GREEN], [BLUE, BLUE, GREEN, GREEN]])


def write_masks(folder, masks=(("a", MASK_A), ("b", MASK_B))):
    os.makedirs(folder, exist_ok=True)
    for stem, mask in masks:
        Image.fromarray(mask).save(os.path.join(folder, f"{stem}.png"))
    return folder


def fingerprint(folder):
    return {n: (hashlib.sha256(open(os.path.join(folder, n), "rb").read()).hexdigest(),
                os.stat(os.path.join(folder, n)).st_mtime_ns) for n in sorted(os.listdir(folder))}


def index_map(path):
    return np.asarray(Image.open(path))


def test_colours_found_become_classes_most_frequent_first(tmp_path, capsys):
    masks = write_masks(str(tmp_path / "masks"))
    before = fingerprint(masks)
    assert labels_cli.main([masks, str(tmp_path / "labels")]) == 0
    assert fingerprint(masks) == before  # inputs untouched
    np.testing.assert_array_equal(index_map(tmp_path / "labels" / "a.png"), [[0, 0, 0, 0], [0, 0, 1, 1], [2, 2, 1, 1]])
    assert Image.open(tmp_path / "labels" / "b.png").mode == "L"
    assert (tmp_path / "labels" / "classes.txt").read_text() == "#ff0000\n#00ff00\n#0000ff\n"
    assert (tmp_path / "labels" / "palette.txt").read_text() == "255 0 0 #ff0000\n0 255 0 #00ff00\n0 0 255 #0000ff\n"
    out = capsys.readouterr().out
    assert "label_nc: 3, contain_dontcare_label: false" in out and "13 px" in out


def test_palette_file_unknown_colours_are_reported_with_pixel_counts(tmp_path, capsys):
    masks = write_masks(str(tmp_path / "masks"))
    palette = tmp_path / "palette.txt"
    palette.write_text("# my classes\n0,0,255 water\n#ff0000 brick wall\n")
    out_dir = str(tmp_path / "labels")
    assert labels_cli.main([masks, out_dir, "--palette", str(palette)]) == 2
    captured = capsys.readouterr()
    assert "unknown colour #00ff00 (0, 255, 0): 7 pixels (first in a.png)" in captured.out
    assert len(captured.err.strip().splitlines()) == 1 and "not in the palette" in captured.err
    assert not os.path.exists(out_dir)  # nothing written

    assert labels_cli.main([masks, out_dir, "--palette", str(palette), "--unknown", "unlabeled"]) == 0
    np.testing.assert_array_equal(index_map(f"{out_dir}/a.png"), [[1, 1, 1, 1], [1, 1, 255, 255], [0, 0, 255, 255]])
    assert open(f"{out_dir}/classes.txt").read() == "water\nbrick wall\n"
    assert "contain_dontcare_label: true (7 unlabeled pixels = 255)" in capsys.readouterr().out


def test_classes_file_and_unlabeled_colour(tmp_path):
    masks = write_masks(str(tmp_path / "masks"), [("m", paint([[BLACK, RED, RED], [GREEN, RED, BLACK]]))])
    (tmp_path / "names.txt").write_text("brick\ngrass\n")
    out_dir = str(tmp_path / "labels")
    assert labels_cli.main([masks, out_dir, "--classes", str(tmp_path / "names.txt"), "--unlabeled", "0,0,0"]) == 0
    np.testing.assert_array_equal(index_map(f"{out_dir}/m.png"), [[255, 0, 0], [1, 0, 255]])
    assert open(f"{out_dir}/palette.txt").read() == "255 0 0 brick\n0 255 0 grass\n"


def test_dataset_palette_by_name(tmp_path):
    road, car = (128, 64, 128), (0, 0, 142)  # Cityscapes labelIds 7 and 26 (car's colour is also id 34's)
    masks = write_masks(str(tmp_path / "masks"), [("c", paint([[road, car], [BLACK, road]]))])
    assert labels_cli.main([masks, str(tmp_path / "labels"), "--palette", "cityscapes"]) == 0
    np.testing.assert_array_equal(index_map(tmp_path / "labels" / "c.png"), [[7, 26], [0, 7]])
    assert open(tmp_path / "labels" / "classes.txt").read().splitlines()[7] == "road"


@pytest.mark.parametrize("argv, message", [
    (["MASKS", "MASKS"], "is the mask folder"),
    (["MASKS", "OUT", "--palette", "nope.txt"], "palette nope.txt not found"),
    (["MASKS", "OUT", "--unlabeled", "300,0,0"], "is not a colour"),
    (["EMPTY", "OUT"], "has no"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, argv, message):
    write_masks(str(tmp_path / "MASKS"))
    (tmp_path / "EMPTY").mkdir()
    argv = [str(tmp_path / a) if a.isupper() else a for a in argv]
    assert labels_cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_palette_file_round_trip_and_parse_errors(tmp_path):
    path = str(tmp_path / "p.txt")
    colour_masks.write_palette(path, [RED, (1, 2, 3)], ["brick wall", "x"])
    assert colour_masks.read_palette(path) == ([RED, (1, 2, 3)], ["brick wall", "x"])
    (tmp_path / "bad.txt").write_text("1 2 3 ok\n1 2 x no\n")
    with pytest.raises(ValueError, match="bad.txt:2"):
        colour_masks.read_palette(str(tmp_path / "bad.txt"))


# ---------------------------------------------------------------------------- paired_folders with colour labels

def paired_tree(root):
    os.makedirs(f"{root}/images")
    for stem, mask in (("a", MASK_A), ("b", MASK_B)):
        Image.fromarray(np.full((3, 4, 3), 100, np.uint8)).save(f"{root}/images/{stem}.jpg")
    write_masks(f"{root}/colour")
    assert labels_cli.main([f"{root}/colour", f"{root}/index"]) == 0


def dataset(root, label_dir, **extra):
    return PairedFolders(root=root, image_dir="images", label_dir=label_dir, label_nc=3, preprocess_mode="none",
                         crop_size=32, load_size=32, flip=False, **extra)


def test_paired_folders_read_colour_labels_through_a_palette(tmp_path):
    root = str(tmp_path)
    paired_tree(root)
    index = dataset(root, "index")
    palettes = (f"{root}/index/palette.txt", "index/palette.txt", [[255, 0, 0], [0, 255, 0], [0, 0, 255]],
                ["#ff0000", "0,255,0", "0 0 255"])
    for palette in palettes:
        colour = dataset(root, "colour", palette=palette)
        for i in range(2):
            assert torch.equal(colour[i]["label"], index[i]["label"])
    assert index[0]["label"].unique().tolist() == [0, 1, 2]

    with pytest.raises(ValueError, match="colour label maps|mode RGB"):
        dataset(root, "colour")[0]  # colour maps without a palette: the one-line error
    with pytest.raises(ValueError, match=r"a\.png: 1 colour\(s\) not in the palette: #0000ff \(2 px\)"):
        dataset(root, "colour", palette=[[255, 0, 0], [0, 255, 0]])[0]
    with pytest.raises(ValueError, match="data.palette has 4 colours but label_nc is 3"):
        dataset(root, "colour", palette=[[0, 0, 0]] * 4)
    with pytest.raises(ValueError, match="data.palette: '1,2' is not a colour"):
        dataset(root, "colour", palette=[[1, 2]])
    with pytest.raises(FileNotFoundError, match="data.palette: palette missing.txt not found"):
        dataset(root, "colour", palette="missing.txt")
