#!/usr/bin/env python3
"""Records the command lines a client (containerd's shim, podman/conmon) passes to its runtime, and
turns the log into a fixture for tests/clients/argv_fixture_test.cpp.

  argv-fixture.py wrap WRAPPER LOG RUNTIME
      writes an executable WRAPPER that appends its argv (without argv[0]) to LOG as one JSON
      array per line, then execs RUNTIME with the same arguments (fds and environment untouched).
      Point the client's runtime binary at WRAPPER and run its test suite once.
  argv-fixture.py normalize LOG... [--id REGEX]... > tests/data/client-argv/CLIENT.argv
      replaces absolute paths (whole argument, or the value after '=') with <PATH> and arguments
      matching an --id regex (default: 64 hex digits) with <ID>, drops duplicates, sorts.

Fixture format (*.argv): one JSON array of strings per line, the runtime's argv without argv[0];
empty lines and lines starting with '#' are ignored.
"""
import argparse, json, os, re, stat, sys


def wrap(args):
    log, runtime = os.path.abspath(args.log), os.path.abspath(args.runtime)
    with open(args.wrapper, "w") as f:
        f.write(f"""#!/usr/bin/python3 -S
import json, os, sys
with open({log!r}, "a") as f:
    f.write(json.dumps(sys.argv[1:]) + "\\n")
os.execv({runtime!r}, [{runtime!r}] + sys.argv[1:])
""")
    os.chmod(args.wrapper, os.stat(args.wrapper).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def normalize_arg(arg, ids):
    if any(r.fullmatch(arg) for r in ids):
        return "<ID>"
    if arg.startswith("/"):
        return "<PATH>"
    key, eq, value = arg.partition("=")
    if eq and value.startswith("/"):
        return key + "=<PATH>"
    return arg


def normalize(args):
    ids = [re.compile(r) for r in (args.id or [r"[0-9a-f]{64}"])]
    lines = set()
    for path in args.logs:
        with open(path) as f:
            for line in f:
                if line.strip():
                    lines.add(json.dumps([normalize_arg(a, ids) for a in json.loads(line)]))
    sys.stdout.write("".join(line + "\n" for line in sorted(lines)))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("wrap")
    w.add_argument("wrapper")
    w.add_argument("log")
    w.add_argument("runtime")
    n = sub.add_parser("normalize")
    n.add_argument("logs", nargs="+")
    n.add_argument("--id", action="append", help="regex of container/exec ids to replace")
    args = p.parse_args()
    wrap(args) if args.cmd == "wrap" else normalize(args)


if __name__ == "__main__":
    main()
