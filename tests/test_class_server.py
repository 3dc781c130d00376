"""The class server, for real: docker/mlflow-server.sh with accounts (MLflow's basic-auth app, `--app-name basic-auth`)
against the local PostgreSQL, and an S3 endpoint that enforces, per user, the DVC bucket's policies exactly as
docker/minio-init.sh writes them for MinIO (moto's server with its IAM checks: no MinIO server installs here from PyPI,
npm or Debian). An instructor (`admin`) and two students, alice and bob, whose accounts `yolo-mlops class add-users`
creates. Every case of who may do what is asked of the real server; each refusal is one line, status 2, nothing
written. The servers start once for the module; the runs that need no training are MLflow runs with no training."""
import json, os, shutil, subprocess
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
import pytest, yaml
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from conftest import BIN, yolo_mlops, TINY_TRIAL
from stack import MlflowServer, Postgres, ROOT, S3Server, run_minio_init, stop_team_stack
from yolo_mlops.class_server import AccessRefused, add_users, read_credentials, refusal_line
from yolo_mlops.promotion import DEFAULT_MODEL_NAME

ADMIN_PASSWORD = "admin-test-pw"  # MlflowServer's MLFLOW_AUTH_ADMIN_PASSWORD
EXPERIMENT, MODEL = "class-grid", DEFAULT_MODEL_NAME  # the class's experiment; its model: the default dataset's

@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """PostgreSQL, the S3 endpoint with the artifact bucket and the DVC bucket (its two users given the policies that
    docker/minio-init.sh writes, then every request checked), and the MLflow server with accounts."""
    folder = tmp_path_factory.mktemp("class-server")
    r, _ = run_minio_init(folder / "minio-init")
    assert r.returncode == 0, r.stderr
    policy = lambda name: json.loads((folder / "minio-init" / f"{name}.json").read_text())
    pg = Postgres().start().create_database()
    s3 = S3Server().start().create_bucket().create_bucket("dvc")
    writer = s3.add_user("dvc-instructor", policy("dvc-readwrite"))
    reader = s3.add_user("dvc-class", policy("dvc-readonly"))
    s3.enforce_policies()
    parts, mlflow_server = [pg, s3], MlflowServer(pg, s3, folder / "mlflow", auth=True)
    mlflow_server.env["MLFLOW_WORKERS"] = "1"  # the compose file's 2 only slow its start on a 2-core machine
    try: parts.append(mlflow_server.start())
    except Exception: stop_team_stack(parts); raise
    yield SimpleNamespace(pg=pg, s3=s3, mlflow=parts[-1], uri=parts[-1].uri, writer=writer, reader=reader)
    stop_team_stack(parts)

def login(server, user=None, password=None) -> dict:
    "The environment of a command run by `user` (None: no MLFLOW_TRACKING_USERNAME at all), nothing reaching a cloud."
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_TRACKING_", "AWS_"))}
    env.update(MLFLOW_TRACKING_URI=server.uri, DVC_NO_ANALYTICS="1", AWS_EC2_METADATA_DISABLED="true",
               MLFLOW_DISABLE_TELEMETRY="true",
               AWS_MAX_ATTEMPTS="1", AWS_CONFIG_FILE="/nonexistent", AWS_SHARED_CREDENTIALS_FILE="/nonexistent")
    if user: env["MLFLOW_TRACKING_USERNAME"] = user
    if password: env["MLFLOW_TRACKING_PASSWORD"] = password
    return env

LOGIN = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")

@pytest.fixture(scope="module", autouse=True)
def login_variables():
    """MLflow's client reads the login from the environment at each request, and other threads (MLflow's own) read the
    environment too: the two variables exist, empty, for the whole module, and only their values change."""
    saved = {k: os.environ.get(k) for k in LOGIN}
    os.environ.update(dict.fromkeys(LOGIN, ""))
    yield
    for k, v in saved.items():
        if v is None: del os.environ[k]
        else: os.environ[k] = v

@contextmanager
def client_of(server, user, password):
    "An MlflowClient whose requests log in as `user`, in this process."
    os.environ.update(zip(LOGIN, (user, password)))
    try: yield MlflowClient(server.uri)
    finally: os.environ.update(dict.fromkeys(LOGIN, ""))

@pytest.fixture(scope="module")
def classroom(server, tmp_path_factory):
    "`yolo-mlops class add-users` run once by the instructor for alice and bob; the students' passwords."
    folder = tmp_path_factory.mktemp("classroom")
    (folder / "roster.csv").write_text("username,name,email\nalice,Alice A.,alice@example.org\nbob,Bob B.,\n")
    first = yolo_mlops("class", "add-users", folder / "roster.csv", "--experiment", EXPERIMENT, cwd=folder,
                       env=login(server, "admin", ADMIN_PASSWORD))  # the class's model: the default one
    assert first.returncode == 0, first.stdout + first.stderr
    passwords = {u: read_credentials(folder / "credentials" / f"{u}.env")["MLFLOW_TRACKING_PASSWORD"]
                 for u in ("alice", "bob")}
    return SimpleNamespace(folder=folder, first=first, passwords=passwords)

def as_student(server, classroom, user):
    return client_of(server, user, classroom.passwords[user])

def admin(server):
    return client_of(server, "admin", ADMIN_PASSWORD)

def refused(r, *says) -> str:
    "A refusal: status 2, one line on stderr (no traceback), saying each of `says`."
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert r.returncode == 2 and len(lines) == 1 and "Traceback" not in r.stderr, (r.returncode, r.stdout, r.stderr)
    for s in says: assert s in lines[0], lines[0]
    return lines[0]

def denied(call) -> MlflowException:
    "The server's 403 for `call()`."
    with pytest.raises(MlflowException) as e: call()
    assert e.value.error_code == "PERMISSION_DENIED", e.value
    return e.value

def registry_state(server) -> list:
    "The class's model and alice's: each version, and the aliases."
    with admin(server) as c:
        return [(m, sorted(v.version for v in c.search_model_versions(f"name = '{m}'")),
                 c.get_registered_model(m).aliases) for m in (MODEL, f"{MODEL}-alice")]

def experiment_runs(server) -> list:
    "Every run of the class experiment (as the admin sees them), deleted ones aside."
    with admin(server) as c:
        return c.search_runs([c.get_experiment_by_name(EXPERIMENT).experiment_id], max_results=500)


@pytest.mark.heavy
def test_add_users_creates_each_account_once_prints_no_password_and_deletes_nobody(server, classroom):
    folder, first = classroom.folder, classroom.first
    assert "alice: account created, password in" in first.stdout and "EDIT on class-grid" in first.stdout
    assert "2 accounts created" in first.stdout
    for user, password in classroom.passwords.items():
        path = folder / "credentials" / f"{user}.env"
        assert oct(path.stat().st_mode & 0o777) == "0o600" and password not in first.stdout + first.stderr
        assert read_credentials(path)["MLFLOW_TRACKING_URI"] == server.uri
    assert oct((folder / "credentials").stat().st_mode & 0o777) == "0o700"
    from mlflow.server import get_app_client
    with admin(server) as c:
        auth = get_app_client("basic-auth", tracking_uri=server.uri)
        exp = c.get_experiment_by_name(EXPERIMENT).experiment_id
        held = {(kind, name): auth.get_user_permission("alice", kind, name).permission
                for kind, name in [("experiment", exp), ("registered_model", MODEL),
                                   ("registered_model", f"{MODEL}-alice"), ("registered_model", f"{MODEL}-bob")]}
    assert held == {("experiment", exp): "EDIT", ("registered_model", MODEL): "READ",
                    ("registered_model", f"{MODEL}-alice"): "MANAGE", ("registered_model", f"{MODEL}-bob"): "READ"}
    with as_student(server, classroom, "bob") as bob:
        kept = bob.create_run(exp).info.run_id  # a run of bob's, before he leaves the roster
        bob.set_terminated(kept)
    files = {p: (p.stat().st_mtime_ns, p.read_text()) for p in (folder / "credentials").iterdir()}
    again = lambda roster, said: add_users(roster, [EXPERIMENT], MODEL, folder / "credentials", server.uri,
                                           say=said.append)
    with admin(server):  # the same command again, in this process (the command line was run above)
        said = []
        assert again(folder / "roster.csv", said).summary() == "nothing changed: 2 accounts as the roster says"
        assert said[0].startswith("alice: account exists, password kept; EDIT on class-grid")
        (folder / "short.csv").write_text("username\nalice\n")  # bob's line removed
        short = again(folder / "short.csv", [])
        assert short.summary().endswith("not in the roster, kept with their runs: bob") and not short.changed
    assert {p: (p.stat().st_mtime_ns, p.read_text()) for p in (folder / "credentials").iterdir()} == files
    with as_student(server, classroom, "bob") as bob:  # bob can still log in, and his run is there
        assert bob.get_run(kept).info.lifecycle_stage == "active"
    with as_student(server, classroom, "alice"):
        with pytest.raises(AccessRefused, match="user 'alice' is not an admin"): again(folder / "roster.csv", [])


@pytest.mark.heavy
def test_a_student_logs_and_reads_but_deletes_nothing_and_never_moves_the_class_champion(server, classroom):
    with admin(server) as c:
        exp = c.get_experiment_by_name(EXPERIMENT).experiment_id
    with as_student(server, classroom, "alice") as alice:
        run = alice.create_run(exp, run_name="alice-run").info.run_id
        alice.log_param(run, "lr0", "0.01"); alice.log_metric(run, "final_test_mAP50", 0.5)
        alice.set_terminated(run)
        denied(lambda: alice.delete_run(run))  # not even her own: deleting is MANAGE
        from yolo_mlops.ledger import discard_run  # so a launcher that lost a race ends its run KILLED instead
        lost = alice.create_run(exp, tags={"grid_parent": "true", "grid_key": "k", "stage": "train"}).info.run_id
        discard_run(alice, lost, "another launcher was first")
        gone = alice.get_run(lost)
        assert gone.info.status == "KILLED" and gone.data.tags["discarded"] == "another launcher was first"
        assert gone.data.tags["grid_parent"] == gone.data.tags["stage"] == "discarded"  # out of every search
    with as_student(server, classroom, "bob") as bob:
        assert bob.get_run(run).data.params == {"lr0": "0.01"}  # bob reads alice's run
        error = denied(lambda: bob.delete_run(run))
        assert "user 'bob' may not delete runs" in refusal_line(error, server.uri)
    with admin(server) as c:  # the instructor registers a version of the class's model and makes it the champion
        champion = c.create_model_version(MODEL, f"runs:/{run}/model", run).version
        c.set_registered_model_alias(MODEL, "champion", champion)
    with as_student(server, classroom, "bob") as bob:
        assert bob.get_model_version_by_alias(MODEL, "champion").version == champion  # read, and loaded, by all
        error = denied(lambda: bob.set_registered_model_alias(MODEL, "champion", champion))
        assert "may not move a registered model's alias (its champion)" in refusal_line(error, server.uri)
        denied(lambda: bob.create_model_version(MODEL, f"runs:/{run}/model", run))
        denied(lambda: bob.delete_registered_model_alias(MODEL, "champion"))
        own = bob.create_model_version(f"{MODEL}-bob", f"runs:/{run}/model", run).version  # his own model: his
        bob.set_registered_model_alias(f"{MODEL}-bob", "champion", own)
        denied(lambda: bob.set_registered_model_alias(f"{MODEL}-alice", "champion", own))  # not alice's
    with admin(server) as c:
        assert c.get_model_version_by_alias(MODEL, "champion").version == champion
        assert [v.version for v in c.search_model_versions(f"name = '{MODEL}'")] == [champion]
        assert c.get_run(run).info.lifecycle_stage == "active"


@pytest.fixture(scope="module")
def grid_run(server, classroom, tmp_path_factory):
    """alice's and bob's launchers, started together on the same two-trial grid (4 training images, imgsz 32, one
    epoch) in the class experiment, each in a folder of their own; their results. Two workers each: a launcher claims
    the trials it will train as it starts them, so with one worker the first would train both trials in turn."""
    from yolo_mlops.data import build_dataset
    folder = tmp_path_factory.mktemp("class-grid")
    built = build_dataset(split=(4, 2, 2), out=folder / "data" / "tiny_coco", yaml_path=folder / "tiny_coco.yaml")
    grid = folder / "pair.yaml"
    grid.write_text(yaml.safe_dump({"name": "pair", "experiment": EXPERIMENT, "grid": {"lr0": [0.002, 0.02]},
                                    "fixed": {**TINY_TRIAL, "imgsz": 32, "data": str(built.yaml)}}))
    procs = {}
    for user in ("alice", "bob"):
        (folder / user).mkdir()
        procs[user] = subprocess.Popen([str(BIN / "yolo-mlops"), "grid", "--grid", str(grid), "--workers", "2"],
                                       cwd=folder / user,
                                       env=login(server, user, classroom.passwords[user]), stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True)
    out = {user: (p.wait(timeout=600), *p.communicate()) for user, p in procs.items()}
    return SimpleNamespace(folder=folder, out=out)

@pytest.mark.heavy
def test_two_students_launchers_train_each_trial_once_under_authentication(server, grid_run):
    for user, (status, stdout, stderr) in grid_run.out.items():
        assert status == 0, (user, stdout[-2000:], stderr[-3000:])
    runs = [r for r in experiment_runs(server) if r.data.tags.get("grid_name") == "pair"]
    trained = [r for r in runs if r.data.tags.get("stage") == "train" and r.info.status == "FINISHED"]
    assert len(trained) == 2 == len({r.data.tags["grid_trial_key"] for r in trained})  # each trial once
    assert not [r for r in runs if r.info.status == "RUNNING"]
    for r in runs:  # a launcher that lost a race could not delete its run (EDIT): it is discarded instead
        if r.data.tags.get("discarded"): assert r.info.status == "KILLED" and r.data.tags.get("stage") != "train"
    parents = [r for r in runs if r.data.tags.get("grid_parent") == "true"]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"

@pytest.mark.heavy
def test_a_student_promotes_into_their_own_model_not_the_class_champion(server, classroom, grid_run):
    "What `yolo-mlops promote` does with the runs table (its notebook's report, here in this process): alice's login."
    from yolo_mlops.analysis import runs_table
    from yolo_mlops.promotion import PromotionCriteria, promote
    with admin(server) as c:
        before = c.get_registered_model(MODEL).aliases
    with as_student(server, classroom, "alice"):
        decision = promote(runs_table(EXPERIMENT, "pair", server.uri),
                           PromotionCriteria(rule="point", min_gain_over_baseline=-1.0), tracking_uri=server.uri)
    assert decision.promoted and decision.model_name == f"{MODEL}-alice", decision.summary()
    with admin(server) as c:
        mine = c.get_model_version_by_alias(f"{MODEL}-alice", "champion")
        assert mine.run_id == decision.candidate["run_id"] and mine.version == decision.version
        assert c.get_registered_model(MODEL).aliases == before  # the class's champion unmoved


@pytest.mark.heavy
def test_every_refusal_is_one_line_status_2_and_writes_nothing(server, classroom, grid_run):
    alice = login(server, "alice", classroom.passwords["alice"])
    folder = grid_run.folder / "alice"
    run = next(r.info.run_id for r in experiment_runs(server) if r.data.tags.get("stage") == "train"
               and r.info.status == "FINISHED")
    before = (len(experiment_runs(server)), registry_state(server))
    cases = [
        (("promote", "--experiment", EXPERIMENT), login(server, "alice", "wrong-password"),
         ["refused the password of user 'alice'", "check MLFLOW_TRACKING_PASSWORD"]),
        (("grid", "--grid", grid_run.folder / "pair.yaml"), login(server, None, None),
         ["requires an account, and no user was given: set MLFLOW_TRACKING_USERNAME"]),
        (("promote", "--experiment", EXPERIMENT, "--model-name", MODEL), alice,
         [f"user 'alice' has READ on registered model '{MODEL}' and needs EDIT", f"own model '{MODEL}-alice'"]),
        (("register", "--run-id", run, "--model-name", MODEL), alice,
         [f"user 'alice' has READ on registered model '{MODEL}' and needs EDIT"]),
    ]
    for args, env, says in cases:
        refused(yolo_mlops(*args, cwd=folder, env=env), *says)
    after = (len(experiment_runs(server)), registry_state(server))
    assert after == before  # no run, no version, no alias: each was refused before anything was written
    assert not [r for r in experiment_runs(server) if r.info.status == "RUNNING"]


def dvc_home(home, server, keys):
    "A DVC project in `home` with the team's S3 remote `team` (the dvc bucket) and the access key `keys`."
    from yolo_mlops.data_versions import open_project
    home.mkdir(parents=True, exist_ok=True)
    with open_project(home) as repo:
        with repo.config.edit() as conf: conf["remote"]["team"] = {"url": "s3://dvc", "endpointurl": server.s3.url}
        with repo.config.edit("local") as conf:
            conf["remote"]["team"] = {"access_key_id": keys[0], "secret_access_key": keys[1]}
    return home

@pytest.mark.heavy
def test_the_class_dvc_key_pulls_and_never_pushes_or_deletes(server, tmp_path):
    from yolo_mlops.data_sources import make_fake_coco128
    from yolo_mlops.data import verify_dataset
    source = make_fake_coco128(tmp_path / "src")
    env = login(server)
    teacher = dvc_home(tmp_path / "teacher", server, server.writer)
    pushed = yolo_mlops("data", "--source", source, "--split", "4/2/2", "--remote", "team", cwd=teacher, env=env)
    assert pushed.returncode == 0 and "pushed to DVC remote 'team'" in pushed.stdout, pushed.stderr
    objects = lambda: sorted(o["Key"] for o in server.s3.client().list_objects_v2(Bucket="dvc").get("Contents", []))
    stored = objects()
    student = tmp_path / "student"
    shutil.copytree(teacher / ".dvc", student / ".dvc", ignore=shutil.ignore_patterns("cache", "tmp", "config.local"))
    (student / "data").mkdir()
    shutil.copy(teacher / "data" / "tiny_coco.dvc", student / "data")
    dvc_home(student, server, server.reader)
    pulled = yolo_mlops("data", "--pull", "--remote", "team", cwd=student, env=env)
    assert pulled.returncode == 0, pulled.stderr
    assert verify_dataset(student / "data" / "tiny_coco") == verify_dataset(teacher / "data" / "tiny_coco")
    push = yolo_mlops("data", "--source", source, "--split", "3/2/2", "--name", "mine", "--remote", "team", cwd=student,
                      env=env)
    refused(push, f"DVC remote 'team' (s3://dvc): access key '{server.reader[0]}' may not write to it",
            "Ask the instructor")
    from botocore.exceptions import ClientError
    with pytest.raises(ClientError, match="AccessDenied"):  # nor delete what is there (`dvc gc -c`, by hand)
        server.s3.client(keys=server.reader).delete_object(Bucket="dvc", Key=stored[0])
    assert objects() == stored  # nothing uploaded, nothing deleted


def fake_mlflow(folder: Path) -> Path:
    "A stand-in `mlflow` that records its arguments: the server script's last step, reached only if it does not refuse."
    (folder / "bin").mkdir(parents=True, exist_ok=True)
    (folder / "bin" / "mlflow").write_text('#!/bin/sh\necho "$*" > "$RAN"\n')
    (folder / "bin" / "mlflow").chmod(0o755)
    return folder / "bin"

def run_server_script(folder: Path, env: dict):
    "docker/mlflow-server.sh with `env` only (and the stand-in mlflow): its result, and the mlflow command it ran."
    ran = folder / "ran"
    ran.unlink(missing_ok=True)
    r = subprocess.run(["sh", str(ROOT / "docker" / "mlflow-server.sh")], cwd=folder, capture_output=True, text=True,
                       env={"PATH": f"{fake_mlflow(folder)}:/usr/bin:/bin", "RAN": str(ran), **env})
    return r, (ran.read_text() if ran.exists() else None)

SAFE = {"POSTGRES_USER": "mlflow", "POSTGRES_PASSWORD": "pg-secret", "POSTGRES_DB": "mlflow", "POSTGRES_HOST": "db",
        "MLFLOW_BUCKET": "mlflow", "MLFLOW_S3_ENDPOINT_URL": "http://minio:9000", "AWS_SECRET_ACCESS_KEY": "s3-secret",
        "MLFLOW_HOST": "0.0.0.0", "BIND_ADDRESS": "127.0.0.1", "MLFLOW_AUTH": "1",
        "MLFLOW_AUTH_ADMIN_PASSWORD": "admin-secret", "MLFLOW_FLASK_SERVER_SECRET_KEY": "flask-secret"}

def test_the_server_script_refuses_example_secrets_no_login_on_the_network_and_no_flask_key(tmp_path):
    r, ran = run_server_script(tmp_path, SAFE)  # the safe settings start the server, with accounts
    assert r.returncode == 0 and ran and "--app-name basic-auth" in ran, r.stderr
    ini = tmp_path / "basic_auth.ini"
    assert oct(ini.stat().st_mode & 0o777) == "0o600"
    assert "database_uri = postgresql://mlflow:pg-secret@db:5432/mlflow" in ini.read_text()
    assert "default_permission = READ" in ini.read_text()
    r, ran = run_server_script(tmp_path, {**SAFE, "MLFLOW_AUTH": "0", "BIND_ADDRESS": "127.0.0.1"})
    assert r.returncode == 0 and ran and "--app-name" not in ran  # no login, on this machine only: allowed
    for change, says in [({"POSTGRES_PASSWORD": "change-me-pg"}, "POSTGRES_PASSWORD still holds its example value"),
                         ({"MLFLOW_AUTH_ADMIN_PASSWORD": "change-me-admin"}, "MLFLOW_AUTH_ADMIN_PASSWORD still holds"),
                         ({"MLFLOW_AUTH": "0", "BIND_ADDRESS": "0.0.0.0"}, "MLFLOW_AUTH=0 (no login) while the server "
                                                                           "is reachable at 0.0.0.0"),
                         ({"MLFLOW_AUTH": "0", "BIND_ADDRESS": ""}, "reachable at 0.0.0.0"),  # bare, on all addresses
                         ({"MLFLOW_FLASK_SERVER_SECRET_KEY": ""}, "MLFLOW_FLASK_SERVER_SECRET_KEY is not set")]:
        r, ran = run_server_script(tmp_path, {k: v for k, v in {**SAFE, **change}.items() if v != ""})
        lines = r.stderr.strip().splitlines()
        assert r.returncode != 0 and ran is None and len(lines) == 1, (change, r.stderr)
        assert lines[0].startswith("mlflow-server.sh: refusing to start: ") and says in lines[0], lines[0]
    r, calls = run_minio_init(tmp_path / "minio", DVC_READER_SECRET_ACCESS_KEY="change-me-dvc-reader")
    assert r.returncode != 0 and calls == [] and "DVC_READER_SECRET_ACCESS_KEY still holds" in r.stderr


def compose_config(env_file: Path) -> dict:
    "`podman-compose config`: a Compose implementation (from PyPI) resolving docker-compose.yml with `env_file`."
    r = subprocess.run([str(BIN / "podman-compose"), "--dry-run", "-f", str(ROOT / "docker-compose.yml"),
                        "--env-file", str(env_file), "config"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return yaml.safe_load(r.stdout)

def test_the_shipped_env_example_turns_accounts_on_and_the_stack_refuses_its_secrets(tmp_path):
    services = compose_config(ROOT / ".env.example")["services"]
    mlflow = services["mlflow"]["environment"]
    assert mlflow["MLFLOW_AUTH"] == "1" and mlflow["BIND_ADDRESS"] == "127.0.0.1"
    without = tmp_path / "no-auth-line.env"  # a .env that does not say: accounts on all the same
    without.write_text("".join(l + "\n" for l in (ROOT / ".env.example").read_text().splitlines()
                               if not l.startswith("MLFLOW_AUTH=")))
    assert compose_config(without)["services"]["mlflow"]["environment"]["MLFLOW_AUTH"] == "1"
    r, ran = run_server_script(tmp_path, {k: str(v) for k, v in mlflow.items()})  # the mlflow container's settings
    assert r.returncode != 0 and ran is None and "still holds its example value (change-me...)" in r.stderr
    fresh = tmp_path / ".env"
    made = subprocess.run([str(BIN / "python"), str(ROOT / "scripts" / "new_env.py"), "--out", str(fresh)],
                          capture_output=True, text=True)
    assert made.returncode == 0 and oct(fresh.stat().st_mode & 0o777) == "0o600", made.stderr
    text = fresh.read_text()
    values = lambda text: dict(l.split("=", 1) for l in text.splitlines() if "=" in l and not l.startswith("#"))
    fresh_values = [values(text)[k] for k, v in values((ROOT / ".env.example").read_text()).items()
                    if v.startswith("change-me")]
    assert len(fresh_values) == 6 and not [v for v in values(text).values() if v.startswith("change-me")]
    assert all(len(v) >= 32 and v not in made.stdout + made.stderr for v in fresh_values)  # printed nowhere
    again = subprocess.run([str(BIN / "python"), str(ROOT / "scripts" / "new_env.py"), "--out", str(fresh)],
                           capture_output=True, text=True)
    assert again.returncode == 2 and "exists: nothing written" in again.stderr and fresh.read_text() == text
    config = compose_config(fresh)["services"]
    r, ran = run_server_script(tmp_path, {k: str(v) for k, v in config["mlflow"]["environment"].items()})
    assert r.returncode == 0 and "--app-name basic-auth" in ran, r.stderr  # fresh secrets: it starts, with accounts
    r, _ = run_minio_init(tmp_path / "minio", **{k: str(v) for k, v in config["minio-init"]["environment"].items()})
    assert r.returncode == 0, r.stderr
