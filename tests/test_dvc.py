"""Datasets under DVC, end to end through `yolo-mlops data`: the embedded remote's round trip, a run that names its
data version and `--from-run` bringing it back, the S3 round trip against the team-stack tests' S3 stand-in (moto's
server), the two known traps of S3-compatible remotes, and every bad input: each a one-line error that leaves the
data, DVC's cache, the remotes and the runs as they were. Nothing here leaves the machine: the remotes are folders
and servers on 127.0.0.1, DVC's analytics are off, and botocore is told not to look for cloud credentials."""
import http.server, os, re, shutil, subprocess, sys, threading
from pathlib import Path
import pytest, yaml
from mlflow import MlflowClient
from conftest import BIN, tree_state, yolo_mlops
from stack import S3Server, free_port
from yolo_mlops.data_sources import make_fake_coco128
from yolo_mlops.data import read_manifest, verify_dataset

SPLIT = ["--split", "4/2/2"]

@pytest.fixture(scope="module")
def store(tmp_path_factory):
    "One MLflow store for the module's runs (creating a SQLite store takes seconds)."
    uri = f"sqlite:///{tmp_path_factory.mktemp('store')}/mlruns.db"
    MlflowClient(uri).create_experiment("dvc")
    return uri

@pytest.fixture
def home(workdir, store, monkeypatch):
    "An empty home (not a git repository) with a fake COCO128 beside its data; nothing reaches a cloud."
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no credentials lookup on a cloud's metadata address
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # an unreachable endpoint fails in 5 s, not 11 (botocore's retries)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    for name in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.setenv(name, str(workdir / "no-aws-file"))
    make_fake_coco128(workdir / "src")
    return workdir

def build(home, *extra):
    "`yolo-mlops data` on the fake COCO128, 4/2/2; the command's result."
    return yolo_mlops("data", "--source", home / "src" / "coco128", *SPLIT, *extra, cwd=home)

def dvc(home, *args):
    "DVC's own command line in the home."
    return subprocess.run([str(BIN / "dvc"), *map(str, args)], cwd=home, capture_output=True, text=True, timeout=120)

def recorded(folder: Path) -> str:
    "The md5 that a dataset's .dvc file records."
    return yaml.safe_load(folder.with_name(folder.name + ".dvc").read_text())["outs"][0]["md5"]

def logged_run(home, store: str, name: str = "tiny_coco") -> str:
    "A run in `store` that logged the dataset `data/<name>.yaml` exactly as a training run does (`_log_dataset`)."
    import mlflow
    from yolo_mlops.train import TrainConfig, _log_dataset
    yaml_path = home / "data" / f"{name}.yaml"
    mlflow.set_tracking_uri(store)
    with mlflow.start_run(experiment_id=MlflowClient(store).get_experiment_by_name("dvc").experiment_id) as run:
        _log_dataset(TrainConfig(data=str(yaml_path)), read_manifest(home / "data" / name)["digest"])
    return run.info.run_id

def state(home) -> dict:
    "Every file of the data, DVC's cache and the embedded remote: a snapshot to prove that nothing changed."
    return tree_state(*(p for p in (home / "data", home / ".dvc" / "cache", home / "dvc-remote") if p.exists()))

def run_ids(store: str) -> list[str]:
    "The ids of the module's runs."
    client = MlflowClient(store)
    return sorted(r.info.run_id for r in client.search_runs([client.get_experiment_by_name("dvc").experiment_id]))

def one_line_error(r, *says):
    "A refusal: status 2, one line on stderr (no traceback), saying each of `says`."
    assert r.returncode == 2, (r.stdout[-1500:], r.stderr[-1500:])
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    for s in says: assert s in lines[0], lines[0]
    return lines[0]


@pytest.mark.heavy  # DVC's push and pull through a remote: the slowest of the module
def test_local_remote_round_trip_and_a_run_gets_its_data_back(home, store):
    r = build(home)
    assert r.returncode == 0, r.stderr
    folder = home / "data" / "tiny_coco"
    md5, digest = recorded(folder), read_manifest(folder)["digest"]
    assert f"records md5 {md5}; pushed to DVC remote 'local' ({home / 'dvc-remote'})" in r.stdout
    assert "no-SCM mode" in r.stdout  # not a git repository: said, and it works
    assert "up to date" in dvc(home, "status").stdout  # DVC's own command line agrees
    assert (home / "dvc-remote" / "files" / "md5" / md5[:2] / md5[2:]).is_file()
    # git: a committed .dvc file is named by its commit
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(home)]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "data/tiny_coco.dvc"], check=True)
    subprocess.run([*git, "commit", "-qm", "data"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    run_id = logged_run(home, store)
    run = MlflowClient(store).get_run(run_id)
    p = run.data.params
    assert (p["data_dvc_md5"], p["data_dvc_path"], p["data_dvc_commit"]) == (md5, "data/tiny_coco", head)
    assert (p["data_dvc_remote"], p["data_dvc_remote_url"], p["dataset_digest"]) == ("local", str(home / "dvc-remote"),
                                                                                      digest)
    source = yaml.safe_load(run.inputs.dataset_inputs[0].dataset.source)["uri"]  # what the UI's dataset view shows
    assert source.endswith(f"/files/md5/{md5[:2]}/{md5[2:]}"), source
    shutil.rmtree(folder); shutil.rmtree(home / ".dvc" / "cache")  # the data and DVC's copy gone
    back = yolo_mlops("data", "--from-run", run_id, cwd=home)
    assert back.returncode == 0, back.stderr
    assert f"Restored the dataset of run {run_id} into {folder}" in back.stdout
    assert verify_dataset(folder) == digest and recorded(folder) == md5
    assert "up to date" in dvc(home, "status").stdout
    # a registered model's version names its run: the same command serves a model
    client = MlflowClient(store)
    client.create_registered_model("dvc-model")
    client.create_model_version("dvc-model", f"runs:/{run_id}/model", run_id=run_id)
    shutil.rmtree(folder)
    model = yolo_mlops("data", "--from-run", "models:/dvc-model/1", cwd=home)
    assert model.returncode == 0 and verify_dataset(folder) == digest, model.stderr


def test_the_same_data_has_the_same_md5_from_any_source_path_and_home(home, tmp_path_factory):
    "Two machines: another home, the source elsewhere and zipped; the same .dvc md5 (what the committed file needs)."
    assert build(home).returncode == 0
    other = tmp_path_factory.mktemp("another-machine") / "clone"
    shutil.copytree(home / "src" / "coco128", other.parent / "elsewhere" / "coco128")
    archive = shutil.make_archive(str(other.parent / "coco128"), "zip", other.parent / "elsewhere", "coco128")
    other.mkdir()
    r = yolo_mlops("data", "--source", archive, *SPLIT, cwd=other)
    assert r.returncode == 0, r.stderr
    assert recorded(other / "data" / "tiny_coco") == recorded(home / "data" / "tiny_coco")
    assert yaml.safe_load((other / "data" / "tiny_coco.yaml").read_text())["source"] == archive  # where it lay there


def team_remote(home, s3, name="team", endpoint=None, credentials=True, default=True, cli=False):
    """Add the team's S3 remote: with `cli`, with DVC's commands as docs/team-stack.md does (credentials in
    .dvc/config.local, never in .dvc/config); else the same configuration written through DVC's API (a DVC command
    takes a second)."""
    if cli:
        assert dvc(home, "remote", "add", *(["-d"] if default else []), name, f"s3://{s3.bucket}").returncode == 0
        if endpoint is not False:
            assert dvc(home, "remote", "modify", name, "endpointurl", endpoint or s3.url).returncode == 0
        for key in ("access_key_id", "secret_access_key") if credentials else ():
            assert dvc(home, "remote", "modify", "--local", name, key, "testing").returncode == 0
        return
    from yolo_mlops.data_versions import open_project
    with open_project(home, create=False) as repo:
        with repo.config.edit() as conf:
            conf["remote"][name] = {"url": f"s3://{s3.bucket}",
                                    **({} if endpoint is False else {"endpointurl": endpoint or s3.url})}
            if default: conf["core"]["remote"] = name
        if credentials:
            with repo.config.edit("local") as conf:
                conf["remote"][name] = {"access_key_id": "testing", "secret_access_key": "testing"}

@pytest.fixture(scope="module")
def s3():
    "moto's S3 server on 127.0.0.1 with a bucket `dvc`, as the team-stack tests start it."
    server = S3Server(bucket="dvc").start().create_bucket()
    yield server
    server.stop()

@pytest.mark.heavy
def test_s3_round_trip_against_the_team_stacks_stand_in(home, store, s3, tmp_path_factory):
    assert build(home).returncode == 0
    team_remote(home, s3, cli=True)
    assert "access_key_id" not in (home / ".dvc" / "config").read_text()  # the committed config has no secret
    r = build(home, "--remote", "team")
    assert r.returncode == 0, r.stderr
    folder = home / "data" / "tiny_coco"
    md5 = recorded(folder)
    assert f"pushed to DVC remote 'team' (s3://dvc)" in r.stdout
    assert f"files/md5/{md5[:2]}/{md5[2:]}" in s3.keys()
    run_id = logged_run(home, store)
    assert MlflowClient(store).get_run(run_id).data.params["data_dvc_remote_url"] == "s3://dvc"
    for gone in (folder, home / ".dvc" / "cache", home / "dvc-remote"): shutil.rmtree(gone)  # only the bucket has it
    back = yolo_mlops("data", "--from-run", run_id, cwd=home)
    assert back.returncode == 0, back.stderr
    assert verify_dataset(folder) == MlflowClient(store).get_run(run_id).data.params["dataset_digest"]
    # a teammate: a clone of the project (its .dvc files, the remote configured as docs/team-stack.md says),
    # no source at all
    mate = tmp_path_factory.mktemp("teammate")
    (mate / "data").mkdir()
    shutil.copytree(home / ".dvc", mate / ".dvc", ignore=shutil.ignore_patterns("cache", "tmp", "config.local"))
    shutil.copy(home / "data" / "tiny_coco.dvc", mate / "data")
    for key in ("access_key_id", "secret_access_key"):
        assert dvc(mate, "remote", "modify", "--local", "team", key, "testing").returncode == 0
    pulled = yolo_mlops("data", "--pull", "--remote", "team", cwd=mate)
    assert pulled.returncode == 0 and "train on it: yolo-mlops train -p data=" in pulled.stdout, pulled.stderr
    assert verify_dataset(mate / "data" / "tiny_coco") == verify_dataset(folder)
    assert yaml.safe_load((mate / "data" / "tiny_coco.yaml").read_text())["path"] == str(mate / "data" / "tiny_coco")


class AnswersEverything(http.server.BaseHTTPRequestHandler):
    "A web server that answers every path with a page, as MinIO's redirect to its console does; it counts uploads."
    uploads, page = [], b"<html>MinIO Console</html>\n"
    def do_HEAD(self):
        self.send_response(200); self.send_header("Content-Length", str(len(self.page))); self.end_headers()
    def do_GET(self): self.do_HEAD(); self.wfile.write(self.page)
    def do_POST(self): self.uploads.append(self.path); self.send_response(200); self.end_headers()
    do_PUT = do_POST
    def log_message(self, *args): pass

def test_https_url_instead_of_s3_is_refused_and_why(home):
    "dvc#7225: with an http(s) URL DVC speaks plain HTTP; a server that answers everything 'has' everything."
    assert build(home).returncode == 0
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), AnswersEverything)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/dvc"
        assert dvc(home, "remote", "add", "web", url).returncode == 0
        plain = dvc(home, "push", "-r", "web")  # DVC itself: nothing sent, and not a word about the URL
        said = (plain.stdout + plain.stderr).lower()
        assert AnswersEverything.uploads == [], AnswersEverything.uploads
        # DVC 2 said "Everything is up to date" (dvc#7225); DVC 3 reads its own listing back as a page: "corrupted"
        assert ("up to date" in said) or ("corrupted" in said and plain.returncode != 0), said
        assert "s3" not in said and "endpoint" not in said
        before = state(home)
        line = one_line_error(build(home, "--remote", "web"), "DVC remote 'web'", "dvc#7225", "s3://BUCKET")
        assert state(home) == before, line
        from yolo_mlops.data_versions import confirm_in_remote, open_project
        with open_project(home, create=False) as repo:  # and a push that stored nothing never passes for one
            with pytest.raises(Exception, match="reading it back gave other bytes"):
                confirm_in_remote(repo, "web", recorded(home / "data" / "tiny_coco"))
    finally: server.shutdown()

def test_missing_or_misspelt_endpointurl_is_refused_before_anything_goes_to_aws(home, s3):
    "dvc#3442: an s3:// remote without an endpoint DVC can see goes to Amazon S3, with the team's credentials."
    assert build(home).returncode == 0
    team_remote(home, s3, endpoint=False)
    from yolo_mlops.data_versions import open_project
    with open_project(home, create=False) as repo:  # DVC's S3 client for it: no endpoint, so Amazon's
        assert "endpoint_url" not in str(repo.cloud.get_remote_odb("team").fs.fs_args)
    before, sent = state(home), s3.keys()
    one_line_error(build(home, "--remote", "team"), "has no endpointurl", "Amazon S3", "dvc#3442")
    with open(home / ".dvc" / "config.local", "a") as f: f.write(f"    endpoint_url = {s3.url}\n")  # misspelt
    one_line_error(build(home, "--remote", "team"), "'endpoint_url'", "did you mean 'endpointurl'?")
    assert state(home) == before and s3.keys() == sent


def test_unreachable_remote_and_missing_credentials(home, s3):
    assert build(home).returncode == 0
    team_remote(home, s3, name="down", endpoint=f"http://127.0.0.1:{free_port()}", default=False)
    team_remote(home, s3, name="nocreds", credentials=False, default=False)
    before = state(home)
    one_line_error(build(home, "--remote", "down"), "DVC remote 'down'", "it cannot be reached")
    one_line_error(build(home, "--remote", "nocreds"), "DVC remote 'nocreds'", "it has no credentials",
                   ".dvc/config.local")
    assert state(home) == before

def test_a_remote_without_the_data_and_an_unknown_run(home, store):
    assert build(home).returncode == 0
    run_id = logged_run(home, store)
    folder = home / "data" / "tiny_coco"
    runs_before = run_ids(store)
    for gone in (folder, home / ".dvc" / "cache", home / "dvc-remote"): shutil.rmtree(gone)
    dvc_file = (home / "data" / "tiny_coco.dvc").read_text()
    one_line_error(yolo_mlops("data", "--from-run", run_id, cwd=home), "DVC remote 'local'", "does not have this data")
    assert not folder.exists() and (home / "data" / "tiny_coco.dvc").read_text() == dvc_file
    one_line_error(yolo_mlops("data", "--from-run", "0123456789abcdef", cwd=home), "0123456789abcdef")
    one_line_error(yolo_mlops("data", "--from-run", run_id, "--seed", "3", cwd=home), "--seed would build one")
    assert run_ids(store) == runs_before  # no run made, none changed

def test_a_dataset_changed_by_hand_is_refused_by_training(home, store):
    "The run refuses it before anything is trained, naming the files; the data, cache and runs stay as they were."
    from yolo_mlops.train import TrainConfig, TrainParameterError, check_train_config
    assert build(home).returncode == 0
    folder = home / "data" / "tiny_coco"
    label = sorted((folder / "labels" / "train").iterdir())[0]
    original = label.read_text()
    label.write_text(original)  # rewritten, unchanged: fine
    (folder / "labels" / "train.cache").write_bytes(b"written by Ultralytics when it trains: not a change")
    cfg = TrainConfig(data=str(home / "data" / "tiny_coco.yaml"), weights="yolov8n.pt", tracking_uri=store)
    assert check_train_config(cfg).data == cfg.data
    before, runs_before = state(home), run_ids(store)
    (folder / "notes.txt").write_text("added by hand")
    with pytest.raises(TrainParameterError, match=r"changed by hand after DVC tracked it .*: added notes\.txt"):
        check_train_config(cfg)
    label.write_text("0 0.5 0.5 0.1 0.1\n")  # a label edited too: the manifest check names it first
    with pytest.raises(TrainParameterError, match=rf"labels/train/{label.name} was modified"):
        check_train_config(cfg)
    label.write_text(original); (folder / "notes.txt").unlink()
    assert state(home) == before  # the data and DVC's cache as they were
    assert run_ids(store) == runs_before  # no run

def test_without_dvc_the_data_stage_works_and_says_what_to_install(home):
    "The extra missing: `yolo-mlops data` builds and says in one line what to install; asked to push, it refuses."
    def without_dvc(*args):
        code = ("import sys; sys.modules['dvc.repo'] = None\n"
                "from yolo_mlops.cli import main; sys.exit(main(sys.argv[1:]))")
        return subprocess.run([sys.executable, "-c", code, "data", "--source", str(home / "src" / "coco128"), *SPLIT,
                               *args], cwd=home, capture_output=True, text=True, timeout=300)
    r = without_dvc()
    assert r.returncode == 0, r.stderr
    assert "dvc:    not versioned: DVC is not installed: pip install 'yolo-mlops[dvc]'" in r.stdout
    assert (home / "data" / "tiny_coco" / "manifest.json").exists() and not (home / ".dvc").exists()
    one_line_error(without_dvc("--remote", "team"), "pip install 'yolo-mlops[dvc]'")


def test_minio_init_creates_private_buckets_and_the_two_dvc_users(tmp_path):
    "docker/minio-init.sh, which the compose file's minio-init runs, run by sh with a stand-in `mc` (no Docker), twice."
    from stack import ROOT, run_minio_init
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    init = compose["services"]["minio-init"]
    assert init["entrypoint"] == ["/bin/sh", "/usr/local/share/yolo-mlops/minio-init.sh"]
    assert "./docker:/usr/local/share/yolo-mlops:ro" in init["volumes"]  # the script, and the check it sources
    keys = {"DVC_BUCKET", "DVC_WRITER_ACCESS_KEY_ID", "DVC_WRITER_SECRET_ACCESS_KEY", "DVC_READER_ACCESS_KEY_ID",
            "DVC_READER_SECRET_ACCESS_KEY"}
    assert keys <= set(init["environment"])
    ports = compose["services"]["minio"]["ports"]
    assert any(p.endswith(":9000") and p.startswith("${BIND_ADDRESS:-127.0.0.1}:") for p in ports)  # S3 API, for DVC
    example = (ROOT / ".env.example").read_text()
    for key in (*keys, "MINIO_API_PORT"): assert f"\n{key}=" in example
    for _ in range(2):  # `docker compose up -d` again: the same script succeeds again
        r, calls = run_minio_init(tmp_path)
        assert r.returncode == 0, r.stderr
    for call in ("mb --ignore-existing local/dvc", "anonymous set none local/dvc", "anonymous set none local/mlflow",
                 "admin user add local dvc-instructor w-secret",
                 "admin policy attach local dvc-readwrite --user dvc-instructor",
                 "admin user add local dvc-class r-secret", "admin policy attach local dvc-readonly --user dvc-class"):
        assert call in calls, calls
    actions = {}
    for name in ("dvc-readwrite", "dvc-readonly"):
        policy = __import__("json").loads((tmp_path / f"{name}.json").read_text())
        resources = {r for s in policy["Statement"] for r in s["Resource"]}
        assert resources == {"arn:aws:s3:::dvc", "arn:aws:s3:::dvc/*"}  # the DVC bucket and nothing else
        actions[name] = {a for s in policy["Statement"] for a in s["Action"]}
    assert {"s3:PutObject", "s3:DeleteObject", "s3:GetObject"} <= actions["dvc-readwrite"]
    assert actions["dvc-readonly"] == {"s3:GetBucketLocation", "s3:ListBucket", "s3:GetObject"}  # never a write
    assert not any(a in ("s3:*", "admin:*") for a in actions["dvc-readwrite"])


def test_the_checkout_is_a_dvc_project_that_sees_its_committed_dataset():
    "What a clone gets: DVC's config (the embedded remote, no analytics, no secret), data/tiny_coco.dvc seen by DVC."
    from stack import ROOT
    from dvc.repo import Repo
    files = subprocess.run(["git", "-C", str(ROOT), "ls-files"], capture_output=True, text=True).stdout.split()
    assert {".dvc/config", ".dvcignore", "data/tiny_coco.dvc"} <= set(files)
    config = (ROOT / ".dvc" / "config").read_text()
    assert "url = ../dvc-remote" in config and "analytics = false" in config and "secret" not in config
    assert "/config.local" in (ROOT / ".dvc" / ".gitignore").read_text()  # credentials stay out of git
    with Repo(str(ROOT)) as repo:  # git's ignore rules must not hide data/*.dvc from DVC (.gitignore says why)
        assert "data/tiny_coco.dvc" in {s.relpath for s in repo.index.stages}
