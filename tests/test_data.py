"""The dataset stage end to end, through the `yolo-mlops data` command: a real build from COCO128,
the no-op rebuild, a dataset of other classes (from COCO128, and from a generated shapes dataset given
as a YAML, a folder or a zip), and every bad input, each refused with a message that names the fault
and leaving existing data untouched."""
import hashlib, os, re, shutil, subprocess, sys, zipfile
from pathlib import Path
import pytest, yaml
from conftest import yolo_mlops, tree_state
from yolo_mlops.config import coco128_source
from yolo_mlops.data_sources import read_coco128, parse_yolo_labels, make_shapes_dataset
from yolo_mlops.data import read_manifest

DEFAULT_DIGEST = "d56a5b9f3049"  # the course dataset from the official COCO128, as it has always been

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
    assert manifest["digest"].startswith(DEFAULT_DIGEST), "the default dataset must keep its digest"
    assert manifest["name"] == "tiny_coco_person" and manifest["classes"] == [{"name": "person", "source_id": 0}]
    assert yaml.safe_load(yaml_path.read_text())["names"] == {0: "person"}
    for split, n in manifest["counts"].items():
        assert len(list((folder / "images" / split).iterdir())) == n
        for label in (folder / "labels" / split).glob("*.txt"):
            boxes = parse_yolo_labels(label.read_text(), str(label))
            assert boxes and all(b[0] == 0 for b in boxes)  # person only, never empty
    # images are the source's bytes: same size, same aspect ratio
    img = next((folder / "images" / "train").iterdir())
    assert img.read_bytes() == (coco128_folder / "images" / "train2017" / img.name).read_bytes()
    assert f"path: {folder}" in yaml_path.read_text()
    # the same md5 as the checkout's committed data/tiny_coco.dvc: built here, from this copy of COCO128 (DVC)
    md5 = lambda dvc_file: yaml.safe_load(dvc_file.read_text())["outs"][0]["md5"]
    assert md5(folder.parent / "tiny_coco.dvc") == md5(Path(__file__).resolve().parent.parent / "data" / "tiny_coco.dvc")
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
    "missing source": (lambda tmp, src: tmp / "nowhere", [], "Dataset source not found"),
    "truncated zip": (_bad_zip_truncated, [], "is not a zip file"),
    "corrupted zip": (_bad_zip_flipped, [], "is corrupted"),
    "zip without COCO128 layout": (_zip_without_layout, [], "expected Ultralytics' layout"),
    "too few person images": (lambda tmp, src: src, ["--train", "60"], "images with a person, but the split asks for 80"),
    "malformed label line": (_malformed_label, [], "line 2: expected 5 fields"),
    "different data without --force": (lambda tmp, src: src, ["--seed", "7"], "--force"),
    "other classes without --force": (lambda tmp, src: src, ["--classes", "person,car"], "--force"),
    "unknown class name": (lambda tmp, src: src, ["--classes", "persn"], "Unknown class 'persn' (did you mean 'person'?)"),
    "split and --train together": (lambda tmp, src: src, ["--split", "40/10/10", "--train", "30"], "--split replaces --train"),
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


def _coco_label_lines(coco128_folder, name: str) -> list[str]:
    return (coco128_folder / "labels" / "train2017" / f"{Path(name).stem}.txt").read_text().split("\n")

def test_people_and_cars_from_coco128(workdir, coco128_folder):
    "Two COCO classes: ids remapped to 0, 1 in the order given, other classes' boxes dropped, the YAML names them."
    r = yolo_mlops("data", "--source", coco128_folder, "--classes", "person,car", "--split", "30/8/8", "--name", "people-cars")
    assert r.returncode == 0, r.stderr
    folder, yaml_path = workdir / "data" / "people-cars", workdir / "data" / "people-cars.yaml"
    assert yaml.safe_load(yaml_path.read_text())["names"] == {0: "person", 1: "car"}
    manifest = read_manifest(folder)
    assert manifest["name"] == "people-cars" and manifest["counts"] == {"train": 30, "val": 8, "test": 8}
    assert manifest["classes"] == [{"name": "person", "source_id": 0}, {"name": "car", "source_id": 2}]
    new_id = {"0": "0", "2": "1"}
    for label in (folder / "labels").rglob("*.txt"):
        expected = [new_id[l.split()[0]] + l[len(l.split()[0]):] for l in _coco_label_lines(coco128_folder, label.name)
                    if l.strip() and l.split()[0] in new_id]
        assert label.read_text().splitlines() == expected, label
    assert re.search(r"^car\s+1\s+2\s", r.stdout, re.M), r.stdout  # the per-class table: name, id, source id, boxes...
    before = tree_state(folder, yaml_path)
    again = yolo_mlops("data", "--source", coco128_folder, "--classes", "person,car", "--split", "30/8/8", "--name", "people-cars")
    assert again.returncode == 0 and "Unchanged" in again.stdout and tree_state(folder, yaml_path) == before

@pytest.fixture(scope="module")
def shapes_yaml(tmp_path_factory):
    "A generated two-class dataset (rectangles, ellipses; 40 images with shapes, 8 with neither): its data.yaml."
    return make_shapes_dataset(tmp_path_factory.mktemp("shapes") / "shapes", n=40)

SHAPES = ["--classes", "rectangle,ellipse", "--split", "0.7/0.15/0.15", "--name", "shapes"]

@pytest.fixture
def built_shapes(workdir, shapes_yaml):
    "The shapes dataset built by the CLI from its YAML with a split in fractions; returns (folder, yaml)."
    r = yolo_mlops("data", "--source", shapes_yaml, *SHAPES)
    assert r.returncode == 0, r.stderr
    return workdir / "data" / "shapes", workdir / "data" / "shapes.yaml"

def test_yaml_source_and_fraction_split(built_shapes, shapes_yaml):
    folder, yaml_path = built_shapes
    manifest = read_manifest(folder)
    assert manifest["counts"] == {"train": 28, "val": 6, "test": 6}  # 0.7/0.15/0.15 of the 40 images with a shape
    assert manifest["split"] == "0.7/0.15/0.15" and manifest["source"] == "shapes"  # its name: the same everywhere
    assert yaml.safe_load(yaml_path.read_text())["source"] == str(shapes_yaml)  # where it lay on this machine
    assert manifest["classes"] == [{"name": "rectangle", "source_id": 0}, {"name": "ellipse", "source_id": 1}]
    assert yaml.safe_load(yaml_path.read_text())["names"] == {0: "rectangle", 1: "ellipse"}
    assert not any(f["path"].endswith(("_0040.jpg", "_0047.jpg")) for f in manifest["files"])  # no shape: left out

def test_folder_and_zip_sources_give_the_yaml_sources_dataset(built_shapes, shapes_yaml, tmp_path):
    "The folder and a zip of it find the names in their data.yaml: the same dataset, so nothing is written."
    folder, yaml_path = built_shapes
    before = tree_state(folder, yaml_path)
    archive = Path(shutil.make_archive(str(tmp_path / "shapes"), "zip", shapes_yaml.parent.parent, shapes_yaml.parent.name))
    for source in (shapes_yaml.parent, archive):
        r = yolo_mlops("data", "--source", source, *SHAPES)
        assert r.returncode == 0 and "Unchanged" in r.stdout, r.stdout + r.stderr
    assert tree_state(folder, yaml_path) == before

def test_one_class_is_renumbered_and_the_others_dropped(workdir, shapes_yaml):
    "Ellipses only: source id 1 becomes 0, rectangles' boxes are dropped, images with rectangles only are left out."
    r = yolo_mlops("data", "--source", shapes_yaml, "--classes", "ellipse", "--split", "10/3/3", "--name", "ellipses")
    assert r.returncode == 0, r.stderr
    labels = list((workdir / "data" / "ellipses" / "labels").rglob("*.txt"))
    assert len(labels) == 16
    for label in labels:
        source = next(shapes_yaml.parent.glob(f"labels/*/{label.name}"))
        expected = ["0" + l[1:] for l in source.read_text().splitlines() if l.startswith("1 ")]
        assert expected and label.read_text().splitlines() == expected, label

def _shapes_copy(tmp, shapes_yaml):
    copy = tmp / "shapes"
    shutil.copytree(shapes_yaml.parent, copy)
    (copy / "data.yaml").write_text(shapes_yaml.read_text().replace(str(shapes_yaml.parent), str(copy)))
    return copy

def _label_outside_names(tmp, shapes_yaml):
    copy = _shapes_copy(tmp, shapes_yaml)
    label = copy / "labels" / "train" / "shape_0003.txt"
    label.write_text(label.read_text() + "7 0.5 0.5 0.2 0.2\n")
    return copy / "data.yaml"

def _folder_without_names(tmp, shapes_yaml):
    copy = _shapes_copy(tmp, shapes_yaml)
    (copy / "data.yaml").unlink()
    return copy

def _yaml_without_names(tmp, shapes_yaml):
    (tmp / "data.yaml").write_text(f"path: {shapes_yaml.parent}\ntrain: images/train\nval: images/val\n")
    return tmp / "data.yaml"

SHAPES_BAD = {  # name: (make the source, the CLI arguments, what the message must say: a string, or a pattern)
    "unknown class": (lambda tmp, y: y, ["--classes", "rectangle,circle", "--name", "shapes"],
                      "Unknown class 'circle': the dataset's classes"),
    "split larger than the images": (lambda tmp, y: y, ["--classes", "rectangle,ellipse", "--split", "40/10/10", "--name", "shapes"],
                                     "The source has 40 images with a rectangle or ellipse, but the split asks for 60"),
    "fractions leaving a split empty": (lambda tmp, y: y, ["--classes", "ellipse", "--split", "0.98/0.01/0.01", "--name", "shapes"],
                                        "every split needs at least one image"),
    "split not three parts": (lambda tmp, y: y, ["--split", "20/5", "--classes", "ellipse", "--name", "shapes"], "--split must be"),
    "class id outside names": (_label_outside_names, SHAPES,
                               re.compile(r"shape_0003\.txt line \d: class id 7 is not in the dataset's names \(ids 0 to 1\)")),
    "folder without names": (_folder_without_names, SHAPES,
                             re.compile(r"shapes has no class names .* Pass --source with the dataset's YAML \(with its `names`\)")),
    "yaml without names": (_yaml_without_names, SHAPES, "has no `names`"),
    "other classes without --force": (lambda tmp, y: y, ["--classes", "ellipse", "--split", "10/3/3", "--name", "shapes"], "--force"),
    "yaml of another dataset": (lambda tmp, y: y, ["--classes", "ellipse", "--name", "x", "--split", "10/3/3",
                                                   "--yaml", "data/shapes.yaml"], "would repoint it"),
}

@pytest.mark.parametrize("case", list(SHAPES_BAD))
def test_bad_dataset_request_is_refused_and_touches_nothing(case, built_shapes, shapes_yaml, tmp_path):
    make, args, message = SHAPES_BAD[case]
    folder, yaml_path = built_shapes
    before = tree_state(folder.parent)
    r = yolo_mlops("data", "--source", make(tmp_path, shapes_yaml), *args)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert (message.search(r.stderr) if isinstance(message, re.Pattern) else message in r.stderr), r.stderr
    assert "Traceback" not in r.stderr
    assert tree_state(folder.parent) == before
    assert sorted(p.name for p in folder.parent.iterdir()) == ["shapes", "shapes.dvc", "shapes.yaml"]  # nothing else
