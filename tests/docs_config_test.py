#!/usr/bin/python3
"""docs/configuration.md against the binaries' --help, so it cannot drift.

    docs_config_test.py DOC COORDINATOR WORKER MCFLEETCTL

For each binary (mcfleet-coordinator --help, mcfleet-worker --help,
mcfleetctl status --help) the flags, their metavariables and their
defaults are read from --help, whatever they are today; the doc's table for
that binary (the section whose heading names it) must then list exactly
those flags, with:
  - the same metavariable in the flag cell (`--listen URL`);
  - the config key: the flag name without "--", or "—" for the built-in
    --config, --help and --version, which are not keys of the file
    (common/flags.c);
  - the default: `D` exactly when --help prints "(default: D)", otherwise a
    cell starting with "—" (no built-in value; the text says what applies).
Also: deploy/local/up's table lists the flags of `up --help`; the usage
line of `mcfleetctl --help` names the status command; each binary prints
its version with --version.  Every mismatch is listed,
then the test fails.
"""

import os
import re
import subprocess
import sys

DOC, COORD, WORKER, CTL = sys.argv[1:5]
BUILTIN = {"config", "help", "version"}
BINARIES = [
    ("mcfleet-coordinator", [COORD, "--help"]),
    ("mcfleet-worker", [WORKER, "--help"]),
    ("mcfleetctl status", [CTL, "status", "--help"]),
]


def run(argv):
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=30)
    if r.returncode != 0:
        raise SystemExit("FAIL %s exited %d: %s"
                         % (" ".join(argv), r.returncode, r.stderr))
    return r.stdout


def parse_help(text):
    """{name: (metavar, default or None, help)} from mcf_flags_usage():
    "  --name METAVAR<pad>help (default: D)"; the help starts in one column
    for every flag (found from the --help line), or on the next line when
    the flag and its metavariable fill that column."""
    lines = text.splitlines()
    col = None
    for l in lines:
        m = re.match(r"  --help( +)\S", l)
        if m:
            col = len("  --help") + len(m.group(1))
    if col is None:
        raise SystemExit("FAIL no --help line in:\n" + text)
    flags = {}
    i = 0
    while i < len(lines):
        l = lines[i]
        i += 1
        if not l.startswith("  --"):
            continue
        nxt = lines[i] if i < len(lines) else ""
        if nxt.startswith(" " * col) and nxt.strip():
            head, help_text = l.strip(), nxt.strip()   # wrapped
            i += 1
        elif len(l) > col and l[col - 1] == " ":
            head, help_text = l[:col].strip(), l[col:].strip()
        else:
            raise SystemExit("FAIL cannot split the help line %r" % l)
        parts = head.split()
        name = parts[0][2:]
        metavar = parts[1] if len(parts) > 1 else ""
        default = None
        m = re.search(r" \(default: (.*)\)$", help_text)
        if m:
            default = m.group(1)
        flags[name] = (metavar, default, help_text)
    return flags


def doc_tables(text):
    """{section heading: [row cells]} for the tables under ## headings."""
    out = {}
    cur = None
    for l in text.splitlines():
        if l.startswith("## "):
            cur = l[3:].strip().strip("`")
            out.setdefault(cur, [])
        elif cur and l.startswith("| `--"):
            cells = [c.strip() for c in l.strip().strip("|").split(" | ")]
            out[cur].append(cells)
    return out


def main():
    with open(DOC) as f:
        tables = doc_tables(f.read())
    errors = []
    for binary, argv in BINARIES:
        flags = parse_help(run(argv))
        rows = tables.get(binary)
        if rows is None:
            errors.append("%s: the doc has no section \"## `%s`\""
                          % (binary, binary))
            continue
        documented = {}
        for cells in rows:
            m = re.fullmatch(r"`--([a-z0-9-]+)(?: ([^`]+))?`", cells[0])
            if not m:
                errors.append("%s: cannot read the flag cell %r"
                              % (binary, cells[0]))
                continue
            if m.group(1) in documented:
                errors.append("%s: --%s listed twice" % (binary, m.group(1)))
            documented[m.group(1)] = (m.group(2) or "", cells)
        for name in flags:
            if name not in documented:
                errors.append("%s: --%s (in --help) is not in the doc"
                              % (binary, name))
        for name in documented:
            if name not in flags:
                errors.append("%s: the doc lists --%s, which --help does not"
                              % (binary, name))
        for name, (metavar, default, _) in flags.items():
            if name not in documented:
                continue
            dmeta, cells = documented[name]
            if len(cells) < 4:
                errors.append("%s: --%s row has %d cells"
                              % (binary, name, len(cells)))
                continue
            if dmeta != metavar:
                errors.append("%s: --%s takes %r per --help, the doc says "
                              "%r" % (binary, name, metavar, dmeta))
            key = "—" if name in BUILTIN else "`%s`" % name
            if cells[1] != key:
                errors.append("%s: --%s config key should be %s, the doc "
                              "says %s" % (binary, name, key, cells[1]))
            dcell = cells[2]
            if default is not None:
                m = re.match(r"`([^`]*)`", dcell)
                if not m or m.group(1) != default:
                    errors.append("%s: --%s default is `%s` per --help, the "
                                  "doc says %s" % (binary, name, default,
                                                   dcell))
            elif not dcell.startswith("—"):
                errors.append("%s: --%s has no default in --help, but the "
                              "doc's default cell is %r (start it with "
                              "\"—\")" % (binary, name, dcell))
            if not cells[-1]:
                errors.append("%s: --%s has no meaning" % (binary, name))
        print("ok %s: %d flags in --help, %d rows in the doc"
              % (binary, len(flags), len(documented)), flush=True)

    # deploy/local/up (a script): the same set of flags in its --help and
    # in its table.
    up = os.path.join(os.path.dirname(os.path.abspath(DOC)), "..", "deploy",
                      "local", "up")
    up_flags = set(re.findall(r"^  (--[a-z-]+)", run(["bash", up, "--help"]),
                              re.M))
    doc_up = set(re.match(r"`(--[a-z-]+)", c[0]).group(1)
                 for c in tables.get("deploy/local/up", []))
    for f in sorted(up_flags - doc_up - {"--help"}):
        errors.append("deploy/local/up: %s (in --help) is not in the doc" % f)
    for f in sorted(doc_up - up_flags):
        errors.append("deploy/local/up: the doc lists %s, which --help does "
                      "not" % f)
    print("ok deploy/local/up: %d flags in --help, %d rows in the doc"
          % (len(up_flags), len(doc_up)), flush=True)

    usage = run([CTL, "--help"])
    if "mcfleetctl status" not in usage:
        errors.append("mcfleetctl --help does not name the status command")
    for b in (COORD, WORKER, CTL):
        v = run([b, "--version"]).strip()
        if not re.fullmatch(r"\S+ \d+\.\d+\.\d+\S*", v):
            errors.append("%s --version printed %r" % (b, v))
    if errors:
        print("FAIL docs/configuration.md drifted from the binaries:\n  " +
              "\n  ".join(errors), flush=True)
        return 1
    print("ok docs/configuration.md matches every flag and default",
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
