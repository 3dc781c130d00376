"""The settings of pip's configuration that say where packages come from, as uv's options, one per line.

scripts/setup.sh installs the project with uv, which reads no pip configuration: a machine whose pip takes packages
from a local index or caps a release (an index, find-links, a constraints file, in pip.conf or PIP_* variables) would
see uv install something else. This prints those settings as uv's options, for setup.sh to pass on:

    .venv/bin/python scripts/pip_config_for_uv.py    # e.g. --find-links, /opt/wheels, --constraint, /etc/...

The settings are what `pip config list` prints (every configuration file pip reads, and the PIP_* variables); for
`pip install`, a variable wins over the [install] section, which wins over [global], as in pip. Standard library only:
it runs with the new virtual environment's python before anything is installed in it."""
import ast, subprocess, sys

# pip's setting -> uv's option; a list setting holds several values separated by white space
LIST_OPTIONS = {"index-url": "--index-url", "extra-index-url": "--extra-index-url", "find-links": "--find-links",
                "constraint": "--constraint", "trusted-host": "--allow-insecure-host"}
FLAG_OPTIONS = {"no-index": "--no-index"}
PRECEDENCE = (":env:", "install", "global")  # the section of pip's listing that wins, first


def pip_settings(listing: str) -> dict:
    "pip's settings by name, from the lines of `pip config list` (`section.name='value'`), the winning section's value."
    by_name = {}
    for line in listing.splitlines():
        key, eq, value = line.partition("=")
        if not eq: continue
        section, _, name = key.rpartition(".")
        by_name.setdefault(name, {})[section] = ast.literal_eval(value)
    return {name: next(sections[s] for s in PRECEDENCE if s in sections)
            for name, sections in by_name.items() if any(s in sections for s in PRECEDENCE)}


def uv_options(settings: dict) -> list:
    "uv's options for the settings of `pip_settings` that choose what is installed and from where; the others dropped."
    options = []
    for name, option in LIST_OPTIONS.items():
        for value in settings.get(name, "").split(): options += [option, value]
    for name, option in FLAG_OPTIONS.items():
        if settings.get(name, "").strip().lower() in ("1", "true", "yes", "on"): options.append(option)
    return options


if __name__ == "__main__":
    listing = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, check=True)
    print("\n".join(uv_options(pip_settings(listing.stdout))))
