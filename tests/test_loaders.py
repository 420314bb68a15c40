"""Opt-in real-data loaders, exercised on tiny files the tests write themselves (no network)."""

from __future__ import annotations

import csv
import hashlib

import cv2
import h5py
import numpy as np
import pytest

from lab_utils import GROUPS
from lab_utils.data import loaders

BLUE_BGR, RED_BGR = (255, 0, 0), (0, 0, 255)


def write_reference_file(path, n: int = 6, seed: int = 0) -> np.ndarray:
    """A train_face.h5 in the reference lab's schema (BGR pixels, labels (N, 1)); returns the RGB images."""
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, size=(n, 64, 64, 3), dtype=np.uint8)
    with h5py.File(path, "w") as f:
        f.create_dataset("images", data=rgb[..., ::-1])
        f.create_dataset("labels", data=(np.arange(n) % 2).reshape(-1, 1).astype(np.float32))
    return rgb


def sha256_of(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def framed_image(height: int, width: int) -> np.ndarray:
    """BGR image whose centred square is blue and whose margins are red: a correct crop shows only blue."""
    image = np.empty((height, width, 3), np.uint8)
    image[:] = RED_BGR
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    image[top:top + side, left:left + side] = BLUE_BGR
    return image


# --- reference training file -------------------------------------------------------------------------

def test_reference_local_file_is_flipped_to_rgb(tmp_path):
    path = tmp_path / "train_face.h5"
    rgb = write_reference_file(path)
    ds = loaders.load_reference_training_file(path, sha256=sha256_of(path))
    np.testing.assert_array_equal(ds.images, rgb)
    np.testing.assert_array_equal(ds.labels, np.arange(6) % 2)
    assert ds.name == "reference_train"


def test_reference_missing_argument_or_file_says_where_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="hlz8atheyozp1yx"):
        loaders.load_reference_training_file()
    with pytest.raises(FileNotFoundError, match="no such file.*train_face.h5 from https://"):
        loaders.load_reference_training_file(tmp_path / "absent.h5")


def test_reference_local_wrong_or_malformed_hash(tmp_path):
    path = tmp_path / "train_face.h5"
    write_reference_file(path)
    with pytest.raises(ValueError, match="does not match"):
        loaders.load_reference_training_file(path, sha256="0" * 64)
    with pytest.raises(ValueError, match="64 hexadecimal"):
        loaders.load_reference_training_file(path, sha256="abc")


def test_reference_url_downloads_once_into_cache(tmp_path):
    source = tmp_path / "server" / "train_face.h5"
    source.parent.mkdir()
    rgb = write_reference_file(source)
    cache = tmp_path / "cache"
    ds = loaders.load_reference_training_file(source.as_uri(), cache_dir=cache, sha256=sha256_of(source))
    np.testing.assert_array_equal(ds.images, rgb)
    assert sorted(p.name for p in cache.iterdir()) == ["train_face.h5", "train_face.h5.sha256"]

    source.unlink()  # the second call must not need the origin any more
    again = loaders.load_reference_training_file(source.as_uri(), cache_dir=cache)
    np.testing.assert_array_equal(again.images, rgb)


def test_reference_download_defaults_to_the_shared_data_dir(tmp_path, monkeypatch):
    """Without cache_dir the file lands where the benchmark cache is ($LAB_DATA_DIR here), not in the cwd."""
    source = tmp_path / "server" / "train_face.h5"
    source.parent.mkdir()
    write_reference_file(source)
    monkeypatch.setenv("LAB_DATA_DIR", str(tmp_path / "shared-data"))
    monkeypatch.chdir(tmp_path)
    loaders.load_reference_training_file(source.as_uri())
    assert (tmp_path / "shared-data" / "train_face.h5").is_file()
    assert not (tmp_path / "data").exists()


def test_reference_url_with_wrong_hash_leaves_nothing_behind(tmp_path):
    source = tmp_path / "train_face.h5"
    write_reference_file(source)
    cache = tmp_path / "cache"
    with pytest.raises(ValueError, match="was deleted.*sha256"):
        loaders.load_reference_training_file(source.as_uri(), cache_dir=cache, sha256="0" * 64)
    assert list(cache.iterdir()) == []
    # Without the hash, nothing stale is picked up: the file is fetched afresh and is fine.
    assert len(loaders.load_reference_training_file(source.as_uri(), cache_dir=cache)) == 6


def test_reference_url_serving_html_leaves_nothing_behind(tmp_path):
    source = tmp_path / "train_face.h5"
    source.write_text("<html>Dropbox sign-in page</html>")
    cache = tmp_path / "cache"
    with pytest.raises(ValueError, match="not a valid training file.*dl=1"):
        loaders.load_reference_training_file(source.as_uri(), cache_dir=cache)
    assert list(cache.iterdir()) == []


def test_reference_cached_file_with_wrong_hash_is_replaced(tmp_path):
    source = tmp_path / "train_face.h5"
    rgb = write_reference_file(source, seed=1)
    cache = tmp_path / "cache"
    cache.mkdir()
    write_reference_file(cache / "train_face.h5", seed=2)  # an outdated copy
    ds = loaders.load_reference_training_file(source.as_uri(), cache_dir=cache, sha256=sha256_of(source))
    np.testing.assert_array_equal(ds.images, rgb)
    assert sha256_of(cache / "train_face.h5") == sha256_of(source)


def test_reference_unreachable_url_leaves_nothing_behind(tmp_path):
    cache = tmp_path / "cache"
    with pytest.raises(ConnectionError, match="Could not download .*pass its local path"):
        loaders.load_reference_training_file((tmp_path / "absent.h5").as_uri(), cache_dir=cache)
    assert list(cache.iterdir()) == []


# --- PPB-style folders -------------------------------------------------------------------------------

@pytest.fixture
def ppb_root(tmp_path):
    root = tmp_path / "ppb"
    specs = {
        "LF": [("a.png", framed_image(80, 120))],
        "LM": [("b.jpg", framed_image(64, 64)), ("c.png", framed_image(300, 90))],
        "DF": [("d.png", cv2.cvtColor(framed_image(50, 70), cv2.COLOR_BGR2GRAY))],  # grayscale file
        "DM": [("e.png", np.dstack([framed_image(40, 40), np.full((40, 40), 255, np.uint8)]))],  # with alpha
    }
    for code, files in specs.items():
        (root / code).mkdir(parents=True)
        for name, image in files:
            assert cv2.imwrite(str(root / code / name), image)
    (root / "LF" / "README.txt").write_text("not an image, skipped")
    return root


def test_ppb_folders(ppb_root):
    ds = loaders.load_ppb_folders(ppb_root)
    assert ds.images.shape == (5, 64, 64, 3) and ds.images.dtype == np.uint8
    assert (ds.labels == 1).all()
    np.testing.assert_array_equal(ds.attributes["group"], [0, 1, 1, 2, 3])
    np.testing.assert_array_equal(ds.attributes["darker"], [0, 0, 0, 1, 1])
    np.testing.assert_array_equal(ds.attributes["male"], [0, 1, 1, 0, 1])
    colour = [0, 0, 255]  # blue as RGB; red margins would mean a wrong crop, red pixels a wrong channel order
    for i in (0, 1, 2, 4):
        np.testing.assert_allclose(ds.images[i].reshape(-1, 3).mean(axis=0), colour, atol=4)
    assert np.ptp(ds.images[3]) <= 2  # the grayscale image stays gray, without a frame
    assert len(ds.group_idx("LM")) == 2


def test_ppb_errors(tmp_path, ppb_root):
    with pytest.raises(FileNotFoundError, match="no such folder"):
        loaders.load_ppb_folders(tmp_path / "absent")
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "x.png").write_bytes(b"")
    with pytest.raises(ValueError, match="none of the group folders.*x.png"):
        loaders.load_ppb_folders(tmp_path / "flat")
    (tmp_path / "empty" / "DF").mkdir(parents=True)
    with pytest.raises(ValueError, match="hold no images"):
        loaders.load_ppb_folders(tmp_path / "empty")
    with pytest.raises(ValueError, match="size must be 64"):
        loaders.load_ppb_folders(ppb_root, size=32)
    (ppb_root / "DM" / "broken.jpg").write_bytes(b"not really a jpeg")
    with pytest.raises(ValueError, match="broken.jpg.*cannot read"):
        loaders.load_ppb_folders(ppb_root)


# --- CSV tables --------------------------------------------------------------------------------------

@pytest.fixture
def table(tmp_path):
    images = tmp_path / "imgs"
    images.mkdir()
    rows = [
        {"file": "p0.png", "is_face": "1", "race_gender": "black_f", "age": "31", "source": "web"},
        {"file": "p1.jpg", "is_face": "1", "race_gender": "white_m", "age": "", "source": "lab"},
        {"file": "p2.png", "is_face": "0", "race_gender": "", "age": "7", "source": "web"},
    ]
    for i, row in enumerate(rows):
        assert cv2.imwrite(str(images / row["file"]), framed_image(60 + 10 * i, 90))
    path = tmp_path / "meta" / "table.csv"
    path.parent.mkdir()
    write_csv(path, rows)
    return path, images


def write_csv(path, rows) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


GROUP_MAP = {"black_f": "DF", "white_m": "LM"}


def test_image_table(table):
    path, images = table
    ds = loaders.load_image_table(path, image_column="file", image_root=images, group_column="race_gender",
                                  group_map=GROUP_MAP, label_column="is_face")
    assert ds.name == "table" and ds.images.shape == (3, 64, 64, 3)
    np.testing.assert_array_equal(ds.labels, [1, 1, 0])
    np.testing.assert_array_equal(ds.group, [GROUPS.index("DF"), GROUPS.index("LM"), -1])
    np.testing.assert_array_equal(ds.attributes["darker"], [1, 0, -1])
    np.testing.assert_array_equal(ds.attributes["male"], [0, 1, -1])
    age = ds.attributes["age"]
    assert age.dtype == np.float32 and age[0] == 31 and np.isnan(age[1]) and age[2] == 7
    assert ds.attributes["source"].tolist() == ["web", "lab", "web"]
    assert set(ds.attributes) == {"age", "source", "group", "darker", "male"}
    # JPEG ringing moves a few values; uncropped red margins would move the red mean by ~50.
    np.testing.assert_allclose(ds.images.reshape(3, -1, 3).mean(axis=1), [[0, 0, 255]] * 3, atol=8)


def test_image_table_defaults_paths_relative_to_csv(table):
    path, images = table
    write_csv(path.parent / "local.csv", [{"image": "../imgs/p0.png", "note": "x"}])
    ds = loaders.load_image_table(path.parent / "local.csv", attribute_columns=[])
    assert len(ds) == 1 and ds.labels.tolist() == [1.0] and ds.attributes == {}
    assert (ds.group == -1).all()


def test_image_table_errors(table):
    path, images = table
    with pytest.raises(FileNotFoundError, match="no such CSV"):
        loaders.load_image_table(path.parent / "absent.csv")
    with pytest.raises(ValueError, match=r"no column 'image' \(image_column\).*\['file', 'is_face'"):
        loaders.load_image_table(path, image_root=images)
    with pytest.raises(ValueError, match="no column 'skin'"):
        loaders.load_image_table(path, image_column="file", image_root=images, attribute_columns=["skin"])
    with pytest.raises(FileNotFoundError, match="3 of 3 images not found.*image_root"):
        loaders.load_image_table(path, image_column="file")
    with pytest.raises(ValueError, match=r"unknown group values \['black_f', 'white_m'\].*group_map"):
        loaders.load_image_table(path, image_column="file", image_root=images, group_column="race_gender")
    with pytest.raises(ValueError, match="'source' must hold 1 .*row 1 has 'web'"):
        loaders.load_image_table(path, image_column="file", image_root=images, label_column="source")
    write_csv(path.parent / "clash.csv", [{"image": "../imgs/p0.png", "group": "DF"}])
    with pytest.raises(ValueError, match="clashes.*group_column='group'"):
        loaders.load_image_table(path.parent / "clash.csv")
    assert len(loaders.load_image_table(path.parent / "clash.csv", group_column="group")) == 1
    (path.parent / "empty.csv").write_text("image,label\n")
    with pytest.raises(ValueError, match="no data rows"):
        loaders.load_image_table(path.parent / "empty.csv")



# --- bad files a user may hand over ----------------------------------------------------------------------

def test_a_folder_where_a_file_is_expected_is_named_as_such(tmp_path):
    with pytest.raises(ValueError, match="is a folder; pass the path of the training file itself"):
        loaders.load_reference_training_file(tmp_path)
    with pytest.raises(ValueError, match="is a folder; pass the path of the CSV file itself"):
        loaders.load_image_table(tmp_path)


def test_a_broken_link_in_a_group_folder_is_reported_not_skipped(ppb_root):
    (ppb_root / "DF" / "lost.png").symlink_to(ppb_root / "nowhere.png")
    with pytest.raises(FileNotFoundError, match=r"DF: 1 broken symbolic link\(s\), e.g. \['lost.png'\]"):
        loaders.load_ppb_folders(ppb_root)


@pytest.mark.parametrize("content, message", [
    ("image,group,group\np0.png,DF,LM\n", r"column name\(s\) \['group'\] appear more than once"),
    ("image,group\np0.png,DF\np1.jpg,LM,extra\n", "line 3: 3 fields but the header has 2"),
    ("image,group\np0.png\n", "line 2: 1 fields but the header has 2"),
])
def test_a_malformed_table_is_refused_with_the_line_to_fix(table, content, message):
    path, _ = table
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        loaders.load_image_table(path, group_column="group")


def test_a_table_not_in_utf8_names_the_file_and_the_fix(table):
    path, _ = table
    path.write_bytes("image,name\np0.png,Jos\xe9\n".encode("latin-1"))
    with pytest.raises(ValueError, match="table.csv: not UTF-8 text.*save the table as UTF-8"):
        loaders.load_image_table(path)


def test_a_downloaded_reference_file_is_checked_against_its_first_checksum(tmp_path, capsys):
    source = tmp_path / "server" / "train_face.h5"
    source.parent.mkdir()
    write_reference_file(source)
    cache = tmp_path / "cache"
    loaders.load_reference_training_file(source.as_uri(), cache_dir=cache)
    recorded = cache / "train_face.h5.sha256"
    assert recorded.read_text().strip() == sha256_of(source)
    cached = cache / "train_face.h5"
    cached.write_bytes(cached.read_bytes()[:-10] + b"0123456789")  # damaged since
    again = loaders.load_reference_training_file(source.as_uri(), cache_dir=cache)
    assert "not the" in capsys.readouterr().out and sha256_of(cached) == sha256_of(source)
    assert len(again) == 6


def test_ppb_folders_the_loader_would_skip_are_errors(tmp_path):
    import cv2

    face = np.full((80, 80, 3), 128, np.uint8)
    (tmp_path / "lf").mkdir()
    cv2.imwrite(str(tmp_path / "lf" / "a.png"), face)
    with pytest.raises(ValueError, match="only in case"):
        loaders.load_ppb_folders(tmp_path)
    (tmp_path / "lf").rename(tmp_path / "LF")
    (tmp_path / "LF" / "sub").mkdir()
    cv2.imwrite(str(tmp_path / "LF" / "sub" / "b.png"), face)
    with pytest.raises(ValueError, match="sub-folder"):
        loaders.load_ppb_folders(tmp_path)


def test_a_sliver_is_not_read_as_a_face(tmp_path):
    import cv2

    (tmp_path / "LF").mkdir()
    cv2.imwrite(str(tmp_path / "LF" / "strip.png"), np.full((3, 1000, 3), 90, np.uint8))
    with pytest.raises(ValueError, match="1000x3 pixels is not a photo of a face"):
        loaders.load_ppb_folders(tmp_path)
