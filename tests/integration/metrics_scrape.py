#!/usr/bin/env python3
"""metrics_scrape.py URL [required-family ...] - scrape a NoKV /metrics page
with curl and check it is valid Prometheus text exposition format 0.0.4:

  * Content-Type text/plain; version=0.0.4, body ends with a newline;
  * every line is `# HELP name text`, `# TYPE name counter|gauge`, or a
    sample `name{labels} value` / `name value` with a numeric value;
  * HELP and TYPE appear exactly once per family, HELP then TYPE, before
    its samples; a family's samples are contiguous; every sample belongs to
    the family declared last; counters end in _total;
  * label sets are well formed (k="v" pairs, escaped values), unique per
    sample name;
  * the required families are present.
Prints the number of families and samples."""
import re
import subprocess
import sys

url = sys.argv[1]
required = sys.argv[2:]
out = subprocess.run(["curl", "-sS", "-D", "-", "--max-time", "10", url],
                     check=True, capture_output=True).stdout.decode("utf-8")
head, _, body = out.partition("\r\n\r\n")
status = head.split("\r\n")[0]
assert " 200 " in status + " ", status
ctype = [h for h in head.split("\r\n") if h.lower().startswith("content-type:")]
assert ctype and "text/plain; version=0.0.4" in ctype[0], ctype
assert body.endswith("\n"), "body must end with a newline"

name_re = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
sample_re = re.compile(r"^(" + name_re + r")(\{(.*)\})? (-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?|NaN|[+-]Inf)$")
label_re = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\\\|\\"|\\n)*)"')

help_seen, type_seen, closed = set(), {}, set()
current = None
samples = 0
seen_series = set()
for n, line in enumerate(body.split("\n")[:-1], 1):
    if line.startswith("# HELP "):
        parts = line.split(" ", 3)
        assert len(parts) == 4 and re.fullmatch(name_re, parts[2]), (n, line)
        fam = parts[2]
        assert fam not in help_seen, (n, "HELP twice", fam)
        help_seen.add(fam)
        if current is not None:
            closed.add(current)
        current = fam
        continue
    if line.startswith("# TYPE "):
        parts = line.split(" ")
        assert len(parts) == 4 and parts[2] == current, (n, "TYPE must follow its HELP", line)
        assert parts[3] in ("counter", "gauge"), (n, line)
        assert parts[2] not in type_seen, (n, "TYPE twice", line)
        type_seen[parts[2]] = parts[3]
        if parts[3] == "counter":
            assert parts[2].endswith("_total"), (n, "counter without _total", line)
        continue
    assert not line.startswith("#"), (n, "unknown comment", line)
    m = sample_re.match(line)
    assert m, (n, "malformed sample", line)
    name = m.group(1)
    assert name == current and name in type_seen, (n, "sample outside its family", line)
    assert name not in closed
    labels = m.group(3) or ""
    if labels:
        pairs = labels.split(",")
        rebuilt = ",".join(p for p in pairs)
        assert all(label_re.fullmatch(p) for p in pairs), (n, "bad labels", line)
        assert rebuilt == labels
    key = (name, labels)
    assert key not in seen_series, (n, "duplicate series", line)
    seen_series.add(key)
    samples += 1
assert help_seen == set(type_seen), "HELP and TYPE sets differ"
missing = [f for f in required if f not in type_seen]
assert not missing, "missing families: %s" % missing
print("families=%d samples=%d" % (len(type_seen), samples))
