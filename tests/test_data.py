"""The dataset stage end to end, through the `yolo-mlops data` command: a real build from COCO128,
the no-op rebuild, and every bad input the foundation issue lists, each leaving existing data untouched."""
import hashlib, os, shutil, subprocess, sys, zipfile
from pathlib import Path
import pytest
from conftest import yolo_mlops, tree_state
from yolo_mlops.config import coco128_source
from yolo_mlops.data import read_coco128, read_manifest, parse_yolo_labels

@pytest.fixture(scope="module")
def coco128_folder(tmp_path_factory):
    "A local COCO128 folder (the configured one, or the download unpacked)."
    source = coco128_source()
    if Path(source).is_dir(): return Path(source)
    items = read_coco128(source)
    root = tmp_path_factory.mktemp("src") / "coco128"
    for sub in ("images", "labels"): (root / sub / "train2017").mkdir(parents=True)
    for it in items:
        (root / "images" / "train2017" / it.name).write_bytes(it.data)
        if it.label_text is not None: (root / "labels" / "train2017" / f"{Path(it.name).stem}.txt").write_text(it.label_text)
    return root

@pytest.fixture
def built(workdir, coco128_folder):
    "A dataset built by the CLI in the working folder; returns (folder, yaml)."
    r = yolo_mlops("data", "--source", coco128_folder)
    assert r.returncode == 0, r.stderr
    return workdir / "data" / "tiny_coco", workdir / "data" / "tiny_coco.yaml"

def test_build_then_noop(built, coco128_folder):
    folder, yaml_path = built
    manifest = read_manifest(folder)
    assert manifest["counts"] == {"train": 40, "val": 10, "test": 10}
    for split, n in manifest["counts"].items():
        assert len(list((folder / "images" / split).iterdir())) == n
        for label in (folder / "labels" / split).glob("*.txt"):
            boxes = parse_yolo_labels(label.read_text(), str(label))
            assert boxes and all(b[0] == 0 for b in boxes)  # person only, never empty
    # images are the source's bytes: same size, same aspect ratio
    img = next((folder / "images" / "train").iterdir())
    assert img.read_bytes() == (coco128_folder / "images" / "train2017" / img.name).read_bytes()
    assert f"path: {folder}" in yaml_path.read_text()
    before = tree_state(folder, yaml_path)
    again = yolo_mlops("data", "--source", coco128_folder)
    assert again.returncode == 0 and "Unchanged" in again.stdout and manifest["digest"] in again.stdout
    assert tree_state(folder, yaml_path) == before

def test_same_digest_from_zip_and_folder(built, coco128_folder, tmp_path):
    folder, _ = built
    archive = tmp_path / "coco128.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in sorted(coco128_folder.rglob("*")):
            if f.is_file(): zf.write(f, Path("coco128") / f.relative_to(coco128_folder))
    r = yolo_mlops("data", "--source", archive, "--out", tmp_path / "other", "--yaml", tmp_path / "other.yaml")
    assert r.returncode == 0, r.stderr
    assert read_manifest(tmp_path / "other")["digest"] == read_manifest(folder)["digest"]

def test_import_from_outside_the_repository(tmp_path):
    r = subprocess.run([sys.executable, "-c", "import yolo_mlops.data as d; print(d.build_tiny_person_dataset.__name__)"],
                       cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0 and "build_tiny_person_dataset" in r.stdout, r.stderr

def _bad_zip_truncated(tmp, src):
    good = shutil.make_archive(str(tmp / "good"), "zip", src.parent, src.name)
    data = Path(good).read_bytes()
    (tmp / "truncated.zip").write_bytes(data[: len(data) // 2])
    return tmp / "truncated.zip"

def _bad_zip_flipped(tmp, src):
    good = Path(shutil.make_archive(str(tmp / "good2"), "zip", src.parent, src.name))
    data = bytearray(good.read_bytes())
    with zipfile.ZipFile(good) as zf:
        info = next(i for i in zf.infolist() if i.filename.endswith(".jpg"))
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    data[start + 100: start + 140] = bytes(40)  # damage the compressed bytes of one image
    (tmp / "flipped.zip").write_bytes(bytes(data))
    return tmp / "flipped.zip"

def _zip_without_layout(tmp, src):
    with zipfile.ZipFile(tmp / "other.zip", "w") as zf: zf.writestr("readme.txt", "not coco128")
    return tmp / "other.zip"

def _malformed_label(tmp, src):
    copy = tmp / "coco128"
    shutil.copytree(src, copy)
    label = sorted((copy / "labels" / "train2017").glob("*.txt"))[3]
    lines = label.read_text().splitlines()
    lines.insert(1, "0 0.5 0.5 0.25")
    label.write_text("\n".join(lines) + "\n")
    return copy

BAD_INPUTS = {  # name: (make the source, extra CLI args, what the message must say)
    "missing source": (lambda tmp, src: tmp / "nowhere", [], "COCO128 source not found"),
    "truncated zip": (_bad_zip_truncated, [], "is not a zip file"),
    "corrupted zip": (_bad_zip_flipped, [], "is corrupted"),
    "zip without COCO128 layout": (_zip_without_layout, [], "expected COCO128's layout"),
    "too few person images": (lambda tmp, src: src, ["--train", "60"], "images with a person, but the split asks for 80"),
    "malformed label line": (_malformed_label, [], "line 2: expected 5 fields"),
    "different data without --force": (lambda tmp, src: src, ["--seed", "7"], "--force"),
}

@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_refused_and_touches_nothing(case, built, coco128_folder, tmp_path_factory):
    make, extra, message = BAD_INPUTS[case]
    folder, yaml_path = built
    before = tree_state(folder, yaml_path)
    source = make(tmp_path_factory.mktemp("bad"), coco128_folder)
    r = yolo_mlops("data", "--source", source, *extra)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert message in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert tree_state(folder, yaml_path) == before

def test_malformed_label_names_the_file(built, coco128_folder, tmp_path):
    r = yolo_mlops("data", "--source", _malformed_label(tmp_path, coco128_folder))
    label = sorted((coco128_folder / "labels" / "train2017").glob("*.txt"))[3].name
    assert label in r.stderr and "line 2" in r.stderr

def test_force_replaces(built, coco128_folder):
    folder, yaml_path = built
    old = read_manifest(folder)["digest"]
    r = yolo_mlops("data", "--source", coco128_folder, "--seed", "7", "--force")
    assert r.returncode == 0 and "Rebuilt" in r.stdout
    new = read_manifest(folder)["digest"]
    assert new != old and new in yaml_path.read_text()
    assert not list(folder.parent.glob(".tiny_coco*"))  # no temporary folders left behind
