"""Local stand-ins for the team stack, started for real: PostgreSQL (Debian's server binaries, on
loopback), an S3 endpoint (moto's standalone server, as MLflow's own S3 tests use) and the MLflow
server started by the very script docker-compose.yml runs, docker/mlflow-server.sh."""
import glob, os, shutil, socket, subprocess, sys, tempfile, time, urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); return s.getsockname()[1]

def ray_agent_ports() -> dict:
    """Free ports for the agents beside a Ray node's raylet, as `Cluster` node arguments: the raylet then waits for no
    file with the metrics ports (it logs that no metrics agent answers: this install's agent has none, it reports -1,
    and nothing here reads Ray's metrics). It still waits for the dashboard agent's listen-port file, whatever port is
    given (Ray 2.60's Python side does not pass that port to the raylet): `start_ray_node` covers that."""
    return {name: free_port() for name in ("metrics_agent_port", "metrics_export_port", "dashboard_agent_listen_port",
                                           "runtime_env_agent_port")}

RAY_NODE_TIMED_OUT = "timed out during startup"

def start_ray_node(start, tries: int = 3):
    """`start()`, which starts a Ray node (a `Cluster` with its head, or `cluster.add_node`), and again when the node
    "timed out during startup" because its raylet died: Ray 2.60's raylet gives the dashboard agent beside it a
    hard-coded 15 s to write its listen-port file, then aborts (ray-project/ray#65983); on two cores kept busy by the
    other pytest worker the agent took longer (head and worker nodes, fresh-clone .ci/run and bench_suite runs,
    2026-12-07). What a failed head left running (its session's GCS, dashboard, client server) is stopped first; a
    worker node's agents end with its raylet. Any other failure is the test's."""
    sessions = Path(tempfile.gettempdir()) / "ray"
    for attempt in range(1, tries + 1):
        before = set(sessions.glob("session_2*"))
        try: return start()
        except Exception as e:
            if RAY_NODE_TIMED_OUT not in str(e) or attempt == tries: raise
            print(f"[tests] a Ray node timed out during startup (ray-project/ray#65983); starting it again "
                  f"({attempt + 1}/{tries})", flush=True)
            for session in set(sessions.glob("session_2*")) - before: stop_ray_session(session)

def start_ray_head(client_port: int):
    "A Ray `Cluster` whose head node has one CPU and serves Ray Client on `client_port` (`start_ray_node`)."
    from ray.cluster_utils import Cluster
    return start_ray_node(lambda: Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "ray_client_server_port": client_port, **ray_agent_ports()}))

def stop_ray_session(session: Path):
    """Kill every process of the Ray session in folder `session` (a failed head's, nobody else's): those whose command
    line names it, and those that name its GCS address (its Ray Client server, which would keep the client port)."""
    import psutil, re
    gcs = [re.escape(f"127.0.0.1:{f.read_text().strip()}") + r"(?!\d)" for f in session.glob("gcs_server_port_*")]
    doomed = []
    for p in psutil.process_iter(["cmdline"]):
        line = " ".join(p.info["cmdline"] or [])
        if session.name in line or any(re.search(a, line) for a in gcs): doomed.append(p)
    for p in doomed:
        try: p.kill()
        except psutil.NoSuchProcess: pass
    psutil.wait_procs(doomed, timeout=10)  # their ports are free again before the next start

def wait_until(check, what: str, timeout: float = 120, proc=None):
    "Poll `check()` until it is true; fail with `what` (and the process's output) after `timeout` seconds."
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what}: the process exited with {proc.returncode}")
        try:
            if check(): return
        except OSError: pass
        time.sleep(0.3)
    raise TimeoutError(f"{what}: not ready after {timeout}s")

def http_ok(url: str, auth: str | None = None) -> int:
    req = urllib.request.Request(url)
    if auth: req.add_header("Authorization", "Basic " + __import__("base64").b64encode(auth.encode()).decode())
    try:
        # 30 s: a server checking a password (a deliberately slow hash) took over 3 s on a busy 2-core machine
        with urllib.request.urlopen(req, timeout=30) as r: return r.status
    except urllib.error.HTTPError as e: return e.code

class Postgres:
    "A throw-away PostgreSQL server on 127.0.0.1 with a database and a password-protected user."
    def __init__(self, user="mlflow", password="pw-test", db="mlflow"):
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not found: raise RuntimeError("PostgreSQL server binaries not found: install Debian's `postgresql` (.ci/run does)")
        self.bin, self.user, self.password, self.db = Path(found[-1]).parent, user, password, db
        # outside pytest's private temporary folders, which the postgres user cannot enter
        self.folder, self.port = Path(tempfile.mkdtemp(prefix="yolo-mlops-pg-")), free_port()
        self.data, self.sock = self.folder / "pgdata", self.folder / "sock"
        self.sock.mkdir(parents=True, exist_ok=True)
        self.as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if os.geteuid() == 0: shutil.chown(self.folder, "postgres"); shutil.chown(self.sock, "postgres")
        self._run([self.bin / "initdb", "-D", self.data, "-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256"])

    def _run(self, cmd, **kw):
        return subprocess.run([*self.as_postgres, *map(str, cmd)], check=True, capture_output=True, text=True, **kw)

    def start(self):
        self._run([self.bin / "pg_ctl", "-D", self.data, "-w", "-l", self.folder / "pg.log", "-o",
                   f"-p {self.port} -k {self.sock} -c listen_addresses=127.0.0.1", "start"])
        return self

    def create_database(self):
        self.sql(f"CREATE USER {self.user} PASSWORD '{self.password}'", db="postgres")
        self.sql(f"CREATE DATABASE {self.db} OWNER {self.user}", db="postgres")
        return self

    def sql(self, query: str, db: str | None = None) -> str:
        return self._run(["psql", "-h", self.sock, "-p", str(self.port), "-U", "postgres", "-d", db or self.db,
                          "-At", "-c", query]).stdout

    def stop(self):
        try: self._run([self.bin / "pg_ctl", "-D", self.data, "-m", "immediate", "stop"])  # thrown away: no checkpoint
        except subprocess.CalledProcessError: pass
        shutil.rmtree(self.folder, ignore_errors=True)

# moto authorises an S3 request by its API operation's name (s3:ListObjectsV2, s3:HeadObject, ...), where AWS and MinIO
# check the IAM action that covers the operation (s3:ListBucket, s3:GetObject): a policy given to moto also names the
# operations each of its actions covers, so that the very policy the compose file gives MinIO is the one enforced here.
MOTO_OPERATIONS = {"s3:ListBucket": ["s3:ListObjects", "s3:ListObjectsV2", "s3:HeadBucket"],
                   "s3:GetObject": ["s3:HeadObject"], "s3:DeleteObject": ["s3:DeleteObjects"],
                   "s3:PutObject": ["s3:CreateMultipartUpload", "s3:UploadPart", "s3:CompleteMultipartUpload"],
                   "s3:ListMultipartUploadParts": ["s3:ListParts"]}

class S3Server:
    "moto's standalone S3 server on 127.0.0.1, with one bucket; `enforce_policies` makes it check IAM users' policies."
    def __init__(self, bucket="mlflow"):
        self.bucket, self.port, self.proc = bucket, free_port(), None
        self.url = f"http://127.0.0.1:{self.port}"
        self.access_key = self.secret_key = "testing"  # any key works until `enforce_policies`

    def start(self):
        self.proc = subprocess.Popen([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(self.port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: http_ok(self.url) < 500, "moto S3 server", 60, self.proc)
        return self

    def client(self, service="s3", keys: tuple[str, str] | None = None):
        import boto3
        key, secret = keys or (self.access_key, self.secret_key)
        return boto3.client(service, endpoint_url=self.url, aws_access_key_id=key, aws_secret_access_key=secret,
                            region_name="us-east-1")

    def create_bucket(self, name: str | None = None):
        self.client().create_bucket(Bucket=name or self.bucket)
        return self

    def add_user(self, name: str, policy: dict) -> tuple[str, str]:
        "An IAM user who may do what `policy` (an IAM policy document, as MinIO takes it) allows; its (key, secret)."
        import json
        moto_policy = {**policy, "Statement": [
            {**s, "Action": sorted({a for act in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
                                    for a in [act, *MOTO_OPERATIONS.get(act, [])]})} for s in policy["Statement"]]}
        iam = self.client("iam")
        iam.create_user(UserName=name)
        iam.put_user_policy(UserName=name, PolicyName=f"{name}-policy", PolicyDocument=json.dumps(moto_policy))
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return key["AccessKeyId"], key["SecretAccessKey"]

    def enforce_policies(self):
        """From now on every request is checked against its user's policies (moto's `reset-auth`); this object's own
        requests (and the MLflow server's, which takes its keys) become those of an IAM user who may do everything."""
        import urllib.request
        keys = self.add_user("root", {"Version": "2012-10-17",
                                      "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
        urllib.request.urlopen(urllib.request.Request(f"{self.url}/moto-api/reset-auth", data=b"0", method="POST",
                                                      headers={"Content-Type": "text/plain"}))
        self.access_key, self.secret_key = keys
        return self

    def keys(self) -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket)
        return [o["Key"] for p in pages for o in p.get("Contents", [])]

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate(); self.proc.wait(timeout=30)

class MlflowServer:
    "The MLflow server, started exactly as the compose file starts it: docker/mlflow-server.sh."
    def __init__(self, pg: Postgres, s3: S3Server, folder: Path, auth: bool = False):
        self.port, self.folder, self.proc = free_port(), folder, None
        self.uri = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
                    "POSTGRES_USER": pg.user, "POSTGRES_PASSWORD": pg.password, "POSTGRES_DB": pg.db,
                    "POSTGRES_HOST": "127.0.0.1", "POSTGRES_PORT": str(pg.port), "MLFLOW_BUCKET": s3.bucket,
                    "MLFLOW_S3_ENDPOINT_URL": s3.url, "AWS_ACCESS_KEY_ID": s3.access_key,
                    "AWS_SECRET_ACCESS_KEY": s3.secret_key,
                    "MLFLOW_HOST": "127.0.0.1", "MLFLOW_PORT": str(self.port), "MLFLOW_AUTH": "1" if auth else "0", "MLFLOW_AUTH_ADMIN_PASSWORD": "admin-test-pw",
                    "MLFLOW_FLASK_SERVER_SECRET_KEY": "test-secret"}
        self.env.pop("MLFLOW_TRACKING_URI", None)

    def start(self):
        self.folder.mkdir(parents=True, exist_ok=True)
        self.log = open(self.folder / "mlflow-server.log", "a")
        self.proc = subprocess.Popen(["sh", str(ROOT / "docker" / "mlflow-server.sh")], env=self.env, cwd=self.folder,
                                     stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_until(lambda: http_ok(f"{self.uri}/health") == 200, "mlflow server", 180, self.proc)
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
            self.proc.wait(timeout=60)
        self.log.close()


def start_team_stack(folder: Path):
    "PostgreSQL, the S3 endpoint and the MLflow server in front of them, started in that order; returns the three."
    pg = Postgres().start().create_database()
    s3 = S3Server().start().create_bucket()
    return pg, s3, MlflowServer(pg, s3, folder / "mlflow").start()

def stop_team_stack(parts):
    "Stop what `start_team_stack` started, the server first."
    for part in reversed(parts):
        try: part.stop()
        except Exception: pass


def run_minio_init(folder: Path, **env):
    """docker/minio-init.sh, run by sh as the compose file's minio-init service runs it, against a stand-in `mc` that
    records its calls (no MinIO server installs here: no package of PyPI, npm or Debian has one); the policies it
    gives MinIO are left in `folder`, to give moto's S3 server. Returns (the result, the `mc` calls)."""
    (folder / "bin").mkdir(parents=True, exist_ok=True)
    fake = folder / "bin" / "mc"  # `policy attach` fails once attached, as MinIO's does; `user info` names the policy
    fake.write_text('#!/bin/sh\necho "$*" >> "$LOG"\n'
                    'case "$*" in "admin policy attach"*) [ -e "$LOG.$5" ] && exit 1; touch "$LOG.$5";; '
                    '"admin user info"*) echo "PolicyName: dvc-readwrite dvc-readonly";; esac\n')
    fake.chmod(0o755)
    settings = {"PATH": f"{folder / 'bin'}:{os.environ['PATH']}", "LOG": str(folder / "calls"),
                "POLICY_DIR": str(folder), "MINIO_ROOT_USER": "root", "MINIO_ROOT_PASSWORD": "root-secret",
                "MLFLOW_BUCKET": "mlflow", "DVC_BUCKET": "dvc", "DVC_WRITER_ACCESS_KEY_ID": "dvc-instructor",
                "DVC_WRITER_SECRET_ACCESS_KEY": "w-secret", "DVC_READER_ACCESS_KEY_ID": "dvc-class",
                "DVC_READER_SECRET_ACCESS_KEY": "r-secret", **env}
    r = subprocess.run(["sh", str(ROOT / "docker" / "minio-init.sh")], env=settings, capture_output=True, text=True)
    calls = (folder / "calls").read_text().splitlines() if (folder / "calls").exists() else []
    return r, calls
