"""The Jupyter kernel `yolo-mlops` belongs to its checkout: scripts/setup.sh registers it inside the checkout's .venv
(`ipykernel install --sys-prefix`), where that venv's JupyterLab and papermill look first. Two checkouts set up one
after the other each find their own kernel, even with an old kernel of the same name in the user's folder (where
`--user` used to put it, and where the last setup won for every checkout on the machine).

Two full virtual environments would cost minutes of installing. Each checkout here is a folder with the setup
script and the files its install step hashes, and a real venv (`python -m venv --without-pip`, a second) whose
packages are this project's .venv's (a `.pth` line that adds its site-packages): its own `sys.prefix`, the setup
script's own kernel step, and the resolution JupyterLab and papermill use (jupyter_client, run by that venv's
Python)."""
import hashlib, json, os, shutil, subprocess, sys, sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INSTALL_INPUTS = ("settings.ini", "setup.py", "pyproject.toml")  # what scripts/setup.sh hashes to skip its install


def checkout_with_venv(folder: Path) -> Path:
    """A folder set up as a checkout whose .venv is installed: the setup script, the files whose hash marks the
    install done (as scripts/setup.sh writes it), and a venv that sees this project's packages."""
    (folder / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "setup.sh", folder / "scripts" / "setup.sh")
    for name in INSTALL_INPUTS: shutil.copy(ROOT / name, folder / name)
    venv = folder / ".venv"
    subprocess.run([sys._base_executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    packages = Path(sysconfig.get_paths(vars={"base": str(venv), "platbase": str(venv)})["purelib"])
    # `import` lines of a .pth run at start-up: addsitedir also reads the .pth files there (the editable install's)
    ours = sysconfig.get_paths()["purelib"]
    (packages / "_yolo_mlops_packages.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
    (venv / ".yolo-mlops-setup").write_text(hashlib.sha256(b"".join((ROOT / n).read_bytes() for n in INSTALL_INPUTS))
                                            .hexdigest() + "\n")
    return venv


def test_two_checkouts_each_run_their_own_kernel(tmp_path):
    user_data = tmp_path / "user-data"  # the user's Jupyter folder, with a kernel an old `--user` setup left there
    stale = user_data / "kernels" / "yolo-mlops"
    stale.mkdir(parents=True)
    (stale / "kernel.json").write_text(json.dumps({"argv": ["/elsewhere/.venv/bin/python", "-m", "ipykernel_launcher",
                                                            "-f", "{connection_file}"], "display_name": "old",
                                                   "language": "python"}))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "VIRTUAL_ENV", "PYTHON"))}
    env["JUPYTER_DATA_DIR"] = str(user_data)
    venvs = [checkout_with_venv(tmp_path / name) for name in ("first", "second")]
    for venv in venvs:  # set up one after the other, as two clones would be
        r = subprocess.run(["bash", str(venv.parent / "scripts" / "setup.sh")], env=env, capture_output=True, text=True,
                           timeout=300)
        assert r.returncode == 0 and "[setup] .venv is up to date" in r.stdout, r.stdout + r.stderr
    for venv in venvs:
        r = subprocess.run([str(venv / "bin" / "python"), "-m", "jupyter_client.kernelspecapp", "list", "--json"],
                           env=env, cwd=venv.parent, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        spec = json.loads(r.stdout)["kernelspecs"]["yolo-mlops"]
        assert Path(spec["resource_dir"]) == venv / "share" / "jupyter" / "kernels" / "yolo-mlops", spec
        assert spec["spec"]["argv"][0] == str(venv / "bin" / "python"), spec  # this checkout's Python, not the other's
    assert json.loads((stale / "kernel.json").read_text())["display_name"] == "old"  # the user's folder untouched
