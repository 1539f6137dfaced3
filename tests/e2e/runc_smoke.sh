#!/usr/bin/env bash
# Real containers with runc, through tests/e2e/lib_runc.sh: a container runs
# `echo hello`; OCI hooks run in the documented order, createRuntime sees the
# state JSON (id, pid, bundle, annotations) while the container's init already
# has its own mount namespace; a long-running container takes `runc exec`;
# cleanup leaves no container behind. Needs root.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_runc.sh"
[ "$(id -u)" -eq 0 ] || dg_fail "runc_smoke needs root"
command -v "$DG_RUNC" >/dev/null || dg_fail "runc is not installed"
[ -x "$DG_BUSYBOX" ] || dg_fail "busybox-static is not installed ($DG_BUSYBOX)"
dg_workdir

# 1. echo hello.
dg_runc_bundle "$DG_WORK/hello" /bin/echo hello || dg_fail "bundle"
dg_runc_run hello "$DG_WORK/hello" || { cat "$DG_WORK/runc-hello.err" >&2; dg_fail "runc run"; }
[ "$(cat "$DG_WORK/runc-hello.out")" = hello ] || dg_fail "output: $(cat "$DG_WORK/runc-hello.out")"
[ -z "$(dg_runc list -q)" ] || dg_fail "runc run should delete the container when it exits"
dg_note "echo hello in a container: ok"

# 2. Hooks: each phase records what it sees. Host-side phases run a python3
# recorder; startContainer runs inside the container after pivot_root, so its
# command must exist in the rootfs.
hooks="$DG_WORK/hooks"
mkdir -p "$hooks"
cat > "$DG_WORK/record-hook" <<'EOF'
#!/usr/bin/python3
# record-hook PHASE DIR: save the OCI state from stdin and what this process
# can see of the container's init, then append PHASE to DIR/order.
import json, os, sys, time
phase, out = sys.argv[1], sys.argv[2]
state = json.load(sys.stdin)
def link(p):
    try:
        return os.readlink(p)
    except OSError as e:
        return "error: " + e.strerror
pid = state.get("pid", 0)
rec = {"phase": phase, "state": state, "hook_pid": os.getpid(),
       "hook_mnt_ns": link("/proc/self/ns/mnt"),
       "pid_mnt_ns": link("/proc/%d/ns/mnt" % pid) if pid else None,
       "pid_root": link("/proc/%d/root" % pid) if pid else None,
       "pid_exe": link("/proc/%d/exe" % pid) if pid else None,
       "env": dict(os.environ), "cwd": os.getcwd(), "time_ns": time.monotonic_ns()}
if pid:
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            rec["pid_cmdline"] = f.read().split(b"\0")[0].decode()
    except OSError as e:
        rec["pid_cmdline"] = "error: " + e.strerror
with open(os.path.join(out, phase + ".json"), "w") as f:
    json.dump(rec, f, indent=1)
with open(os.path.join(out, "order"), "a") as f:
    f.write(phase + "\n")
EOF
chmod 755 "$DG_WORK/record-hook"
rec="$DG_WORK/record-hook"
export DG_WORKLOAD=smoke DG_CONTAINER=web DG_IMAGE_REF=example.org/web:1 \
	DG_IMAGE_DIGEST=sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
export DG_RUNC_HOOK_PRESTART="$rec prestart $hooks" \
	DG_RUNC_HOOK_CREATE_RUNTIME="$rec createRuntime $hooks" \
	DG_RUNC_HOOK_CREATE_CONTAINER="$rec createContainer $hooks" \
	DG_RUNC_HOOK_START_CONTAINER="/bin/sh -c 'cat > /startContainer.json'" \
	DG_RUNC_HOOK_POSTSTART="$rec poststart $hooks" \
	DG_RUNC_HOOK_POSTSTOP="$rec poststop $hooks"
dg_runc_bundle "$DG_WORK/hooked" /bin/sh -c 'echo started' || dg_fail "bundle"
unset DG_RUNC_HOOK_PRESTART DG_RUNC_HOOK_CREATE_RUNTIME DG_RUNC_HOOK_CREATE_CONTAINER \
	DG_RUNC_HOOK_START_CONTAINER DG_RUNC_HOOK_POSTSTART DG_RUNC_HOOK_POSTSTOP
dg_runc_run hooked "$DG_WORK/hooked" || { cat "$DG_WORK/runc-hooked.err" >&2; dg_fail "runc run (hooks)"; }
[ "$(cat "$DG_WORK/runc-hooked.out")" = started ] || dg_fail "hooked container output"
order=$(tr '\n' ' ' < "$hooks/order")
[ "$order" = "prestart createRuntime createContainer poststart poststop " ] \
	|| dg_fail "hook order: $order"
[ -s "$DG_WORK/hooked/rootfs/startContainer.json" ] \
	|| dg_fail "the startContainer hook did not run inside the container"
python3 - "$hooks" "$DG_WORK/hooked" "$(readlink /proc/self/ns/mnt)" \
	"$DG_WORK/hooked/rootfs/startContainer.json" <<'EOF' || dg_fail "hook state checks"
import json, os, sys
hooks, bundle, host_ns, start_path = sys.argv[1:]
def load(phase):
    with open(os.path.join(hooks, phase + ".json")) as f:
        return json.load(f)
cr = load("createRuntime")
st = cr["state"]
errors = []
def check(cond, what):
    if not cond:
        errors.append(what)
check(st.get("id") == "hooked", "id %r" % st.get("id"))
check(isinstance(st.get("pid"), int) and st["pid"] > 0, "pid %r" % st.get("pid"))
check(st.get("bundle") == bundle, "bundle %r" % st.get("bundle"))
check(st.get("status") == "creating", "status %r" % st.get("status"))
check(st.get("annotations", {}).get("io.driftgate.workload") == "smoke", "annotations")
check(st.get("annotations", {}).get("io.driftgate.image.digest", "").startswith("sha256:"),
      "image digest annotation")
# The hook runs on the host, while the container's init already has its own
# mount namespace.
check(cr["hook_mnt_ns"] == host_ns, "createRuntime runs in the host mount namespace")
check(cr["pid_mnt_ns"].startswith("mnt:[") and cr["pid_mnt_ns"] != host_ns,
      "init's mount namespace %r should differ from the host's %r" % (cr["pid_mnt_ns"], host_ns))
check(cr["state"] == load("prestart")["state"], "prestart and createRuntime see the same state")
# createContainer runs in the container's mount and pid namespaces, before
# pivot_root: its state names init as pid 1 (the container's pid namespace)
# while /proc there is still the host's.
cc = load("createContainer")
check(cc["hook_mnt_ns"] == cr["pid_mnt_ns"], "createContainer runs in the container's mount ns")
check(cc["state"]["pid"] == 1, "createContainer state pid %r" % cc["state"]["pid"])
check(cc["cwd"] == os.path.join(bundle, "rootfs"), "createContainer cwd %r" % cc["cwd"])
# startContainer: inside the container, after pivot_root, init is pid 1.
with open(start_path) as f:
    sc = json.load(f)
check(sc["pid"] == 1 and sc["status"] == "created", "startContainer state %r" % sc)
# runc 1.1 runs poststart before it records "running".
ps = load("poststart")
check(ps["state"]["status"] in ("created", "running"), "poststart status %r" % ps["state"]["status"])
check(ps["state"]["pid"] == st["pid"], "poststart pid")
stop = load("poststop")
check(stop["state"]["status"] == "stopped" and "pid" not in stop["state"],
      "poststop state %r" % stop["state"])
for e in errors:
    print("hook check failed:", e, file=sys.stderr)
sys.exit(1 if errors else 0)
EOF
unset DG_WORKLOAD DG_CONTAINER DG_IMAGE_REF DG_IMAGE_DIGEST
dg_note "hooks in order with the expected state: ok"

# 3. A long-running container, and runc exec into it.
dg_runc_bundle "$DG_WORK/sleeper" /bin/sleep 60 || dg_fail "bundle"
dg_runc_run_bg sleeper "$DG_WORK/sleeper" || dg_fail "sleeper did not start"
out=$(dg_runc exec sleeper /bin/echo inside 2>&1) || dg_fail "runc exec: $out"
[ "$out" = inside ] || dg_fail "runc exec output: $out"
# The exec'd process joins the container's mount namespace.
init=$(dg_runc state sleeper | python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])')
[ "$(readlink "/proc/$init/ns/mnt")" != "$(readlink /proc/self/ns/mnt)" ] \
	|| dg_fail "the container shares the host mount namespace"
inside_ns=$(dg_runc exec sleeper /bin/readlink /proc/self/ns/mnt) || dg_fail "runc exec readlink"
[ "$inside_ns" = "$(readlink "/proc/$init/ns/mnt")" ] \
	|| dg_fail "runc exec runs in $inside_ns, the container is in $(readlink "/proc/$init/ns/mnt")"
# Drift after start: write a binary inside the running container and run it.
dg_runc exec sleeper /bin/sh -c 'cp /bin/busybox /tmp/busybox && /tmp/busybox echo dropped-ran' \
	> "$DG_WORK/dropped.out" 2>&1 || dg_fail "exec of a dropped binary: $(cat "$DG_WORK/dropped.out")"
grep -qx dropped-ran "$DG_WORK/dropped.out" || dg_fail "dropped binary output"
[ -x "$DG_WORK/sleeper/rootfs/tmp/busybox" ] \
	|| dg_fail "the dropped binary should be visible from the host in the bundle's rootfs"
dg_note "runc exec into a running container: ok"

# 4. Cleanup kills what is still running.
dg_runc_cleanup
wait "$RUNC_PID" 2>/dev/null
[ -z "$(dg_runc list -q)" ] || dg_fail "containers left after dg_runc_cleanup"
kill -0 "$init" 2>/dev/null && dg_fail "container init $init still alive"
dg_note "runc smoke: all ok"
exit 0
