#!/usr/bin/env bash
# `driftgate-verifier replay FILE`: both kernel formats, detected or named,
# PCR values equal to an independent python3 replay, and a malformed log named
# by entry and byte offset with a non-zero exit.
set -u
. "$(dirname "$0")/lib.sh"
dg_workdir

# A kernel-layout log built by python3 (not by driftgate), with its expected PCRs.
python3 - "$DG_WORK" <<'PY'
import hashlib, struct, sys
work = sys.argv[1]
entries = [(10, "/usr/bin/bash", b"bash"), (10, "/etc/passwd", b"root:x:0:0"), (11, "/opt/app", b"app")]
log, ascii_lines, pcrs, starts = b"", [], {}, []
for pcr, path, content in entries:
    digest = hashlib.sha256(content).digest()
    d = b"sha256:\0" + digest
    n = path.encode() + b"\0"
    data = struct.pack("<I", len(d)) + d + struct.pack("<I", len(n)) + n
    th1 = hashlib.sha1(data).digest()
    starts.append(len(log))
    log += struct.pack("<I", pcr) + th1 + struct.pack("<I", 6) + b"ima-ng" + struct.pack("<I", len(data)) + data
    ascii_lines.append("%2d %s ima-ng sha256:%s %s\n" % (pcr, th1.hex(), digest.hex(), path))
    s1, s256 = pcrs.get(pcr, (b"\0" * 20, b"\0" * 32))
    pcrs[pcr] = (hashlib.sha1(s1 + th1).digest(), hashlib.sha256(s256 + hashlib.sha256(data).digest()).digest())
open(work + "/log.bin", "wb").write(log)
open(work + "/log.txt", "w").write("".join(ascii_lines))
with open(work + "/expected", "w") as f:
    for pcr in sorted(pcrs):
        f.write("pcr%d sha1 %s\npcr%d sha256 %s\n" % (pcr, pcrs[pcr][0].hex(), pcr, pcrs[pcr][1].hex()))
# Where the second entry starts: the truncation case cuts inside it.
open(work + "/offset", "w").write(str(starts[1]))
PY

for args in "log.bin" "log.txt" "--format binary log.bin" "--format ascii log.txt"; do
	set -- $args
	"$DG_VERIFIER" replay "${@:1:$#-1}" "$DG_WORK/${!#}" > "$DG_WORK/out" || dg_fail "replay $args failed"
	diff -u "$DG_WORK/expected" "$DG_WORK/out" || dg_fail "replay $args differs from python3"
done
echo "# replay of both formats (detected and named) equals an independent python3 replay"

# Truncated inside entry 1: exit 3, and the message names the entry and its offset.
off=$(cat "$DG_WORK/offset")
head -c $((off + 10)) "$DG_WORK/log.bin" > "$DG_WORK/cut.bin"
"$DG_VERIFIER" replay "$DG_WORK/cut.bin" > /dev/null 2> "$DG_WORK/err"; rc=$?
[ "$rc" -eq 3 ] || dg_fail "truncated log: exit $rc, expected 3"
grep -q "entry 1 at byte offset $off" "$DG_WORK/err" || { cat "$DG_WORK/err"; dg_fail "error does not name entry 1 at offset $off"; }
# A tampered digest in the ascii log no longer matches its template hash.
sed '2s/sha256:\(.\)/sha256:f/' "$DG_WORK/log.txt" > "$DG_WORK/bad.txt"
cmp -s "$DG_WORK/bad.txt" "$DG_WORK/log.txt" && sed -i '2s/sha256:f/sha256:0/' "$DG_WORK/bad.txt"
"$DG_VERIFIER" replay "$DG_WORK/bad.txt" > /dev/null 2> "$DG_WORK/err"; rc=$?
[ "$rc" -eq 3 ] || dg_fail "tampered ascii log: exit $rc, expected 3"
grep -q "entry 1 at byte offset" "$DG_WORK/err" || { cat "$DG_WORK/err"; dg_fail "tampered entry not named"; }
# Usage errors.
"$DG_VERIFIER" replay --format nope "$DG_WORK/log.bin" 2>/dev/null; [ $? -eq 2 ] || dg_fail "bad --format should exit 2"
"$DG_VERIFIER" replay "$DG_WORK/missing" 2>/dev/null; [ $? -eq 1 ] || dg_fail "missing file should exit 1"
echo "# malformed logs are named by entry and offset (exit 3); usage errors exit 2"
