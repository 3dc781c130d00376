"""Write the team stack's .env: .env.example with a fresh random value (Python's `secrets`) for every `change-me`
secret, readable by its owner alone (mode 0600). It never overwrites a .env that exists, and prints no secret.

    python3 scripts/new_env.py                # .env beside docker-compose.yml
    python3 scripts/new_env.py --out my.env   # elsewhere

Standard library only: it runs with the server's own python3, before any virtual environment exists."""
import argparse, os, secrets, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

def fresh_env(example: str) -> tuple[str, int]:
    "The text of `example` with each `NAME=change-me...` line given a fresh random value; and how many were."
    lines, fresh = [], 0
    for line in example.splitlines():
        name, sep, value = line.partition("=")
        if sep and not name.lstrip().startswith("#") and value.startswith("change-me"):
            line, fresh = f"{name}={secrets.token_urlsafe(32)}", fresh + 1
        lines.append(line)
    return "\n".join(lines) + "\n", fresh

def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--example", default=str(ROOT / ".env.example"), help="the template (default: .env.example)")
    p.add_argument("--out", default=str(ROOT / ".env"), help="the file to write (default: .env)")
    args = p.parse_args(argv)
    text, fresh = fresh_env(Path(args.example).read_text())
    try: fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # never over an existing .env
    except FileExistsError:
        print(f"new_env.py: {args.out} exists: nothing written (move it away to write a new one)", file=sys.stderr)
        return 2
    with os.fdopen(fd, "w") as f: f.write(text)
    print(f"wrote {args.out} (mode 0600) with {fresh} fresh secrets; the first MLflow user is `admin`, "
          "its password MLFLOW_AUTH_ADMIN_PASSWORD in that file")
    return 0

if __name__ == "__main__":
    sys.exit(main())
