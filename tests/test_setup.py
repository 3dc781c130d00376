"""scripts/setup.sh installs with uv, which reads no pip configuration: scripts/pip_config_for_uv.py carries over the
settings that say where packages come from, so that uv installs what pip would on a machine whose pip takes packages
from a local index or caps a release (as this one caps PyTorch)."""
import os, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_pip_settings_become_uv_options_variables_first(tmp_path):
    conf = tmp_path / "pip.conf"  # read after pip's other configuration files: its settings win over theirs
    conf.write_text("[global]\nindex-url = https://mirror.example/simple\n"
                    "extra-index-url = file:///srv/one/simple\n    file:///srv/two/simple\n"
                    "find-links = /srv/global-wheels\nconstraint = /etc/caps.txt\ntrusted-host = mirror.example\n"
                    "no-index = false\ntimeout = 60\n"
                    "[install]\nfind-links = /srv/install-wheels\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PIP_CONFIG_FILE=str(conf), PIP_CONSTRAINT="/srv/from-variable.txt")
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "pip_config_for_uv.py")], env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "--index-url", "https://mirror.example/simple",
        "--extra-index-url", "file:///srv/one/simple", "--extra-index-url", "file:///srv/two/simple",
        "--find-links", "/srv/install-wheels",          # [install] wins over [global] for `pip install`
        "--constraint", "/srv/from-variable.txt",       # a PIP_ variable wins over every file
        "--allow-insecure-host", "mirror.example",
    ]  # no --no-index (false), and pip's timeout is not about where packages come from
