# Real OCI containers with runc for the end-to-end tests. Source it after
# lib.sh; it defines functions only (and chains dg_runc_cleanup in front of
# dg_cleanup, so that `trap dg_cleanup EXIT` from dg_workdir stops containers
# before their bundles are removed). Needs root, runc and busybox-static.
#
# Facts these helpers rely on (runc 1.1.5, this kernel): containers run as root
# with a plain-directory busybox-static rootfs; runc's state lives under
# --root $DG_WORK/runc so tests never see each other's containers. A hook
# without "env" inherits runc's environment (host phases) or the container
# process's (createContainer, startContainer); its path must be absolute.

DG_RUNC=${DG_RUNC:-runc}
DG_BUSYBOX=${DG_BUSYBOX:-/bin/busybox}
DG_RUNC_MOUNTS=() # tmpfs mounted by dg_runc_tmpfs, unmounted at cleanup

# dg_runc_root: the runc state directory of this test.
dg_runc_root() { echo "$DG_WORK/runc"; }

# dg_runc CMD...: runc with this test's state directory.
dg_runc() { "$DG_RUNC" --root "$(dg_runc_root)" "$@"; }

# dg_runc_tmpfs DIR: mount a fresh tmpfs on DIR (made if missing). A rootfs on
# its own filesystem lets a fanotify filesystem mark watch it and nothing else
# (a mark on the filesystem of /tmp would hold every exec on the machine).
dg_runc_tmpfs() {
	mkdir -p "$1" || return 1
	mount -t tmpfs -o mode=0755,size=256m dg-runc "$1" || return 1
	DG_RUNC_MOUNTS+=("$1")
}

# The bind that gives a container the agent's workload API (the agents of the
# tests listen on $DG_WORK/wl/api.sock): add it to DG_RUNC_BINDS.
dg_runc_workload_bind() { echo "$DG_WORK/wl:/run/driftgate/workload:ro"; }

# dg_static_client: the path of a static driftgate-secret for a rootfs. A
# sanitized build links it dynamically (the sanitizer runtimes cannot be
# static), so then one is compiled here from the same source.
dg_static_client() {
	if ldd "$DG_SECRET_CLIENT" >/dev/null 2>&1; then
		[ -x "$DG_WORK/driftgate-secret" ] || cc -static -O2 -o "$DG_WORK/driftgate-secret" \
			"$DG_SOURCE_ROOT/agent/secret_client.c" || return 1
		echo "$DG_WORK/driftgate-secret"
	else
		echo "$DG_SECRET_CLIENT"
	fi
}

# dg_runc_rootfs DIR: a minimal busybox-static rootfs: bin/busybox, a symlink
# in bin/ for each applet, the workload API client bin/driftgate-secret,
# etc/passwd and etc/group, and empty mount points.
dg_runc_rootfs() {
	local dir=$1 a
	mkdir -p "$dir"/bin "$dir"/etc "$dir"/tmp "$dir"/proc "$dir"/sys "$dir"/dev "$dir"/root \
		|| return 1
	chmod 1777 "$dir/tmp"
	cp "$DG_BUSYBOX" "$dir/bin/busybox" || return 1
	cp "$(dg_static_client)" "$dir/bin/driftgate-secret" || return 1
	for a in $("$DG_BUSYBOX" --list); do
		[ "$a" = busybox ] || ln -sf busybox "$dir/bin/$a"
	done
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' \
		> "$dir/etc/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\n' > "$dir/etc/group"
}

# dg_runc_bundle DIR ARGS...: an OCI bundle in DIR (rootfs in DIR/rootfs, made
# by dg_runc_rootfs if missing) whose process runs ARGS. config.json comes from
# `runc spec`, then: no terminal, a writable root, and from the environment
#   DG_WORKLOAD, DG_CONTAINER   -> annotations io.driftgate.workload / .container
#   DG_IMAGE_REF                -> org.opencontainers.image.ref.name
#   DG_IMAGE_DIGEST             -> io.driftgate.image.digest
#   DG_RUNC_ENV                 -> extra "K=V" entries for process.env, one a line
#   DG_RUNC_BINDS               -> bind mounts "SRC:DST[:ro]", one a line
#   DG_RUNC_HOOK_<PHASE>        -> a hook command line (split like a shell
#     would, no expansion), PHASE one of PRESTART CREATE_RUNTIME
#     CREATE_CONTAINER START_CONTAINER POSTSTART POSTSTOP; the first word
#     must be an absolute path (for START_CONTAINER, inside the rootfs).
dg_runc_bundle() {
	local dir=$1; shift
	[ $# -gt 0 ] || { echo "dg_runc_bundle: no process args" >&2; return 1; }
	mkdir -p "$dir" || return 1
	[ -x "$dir/rootfs/bin/busybox" ] || dg_runc_rootfs "$dir/rootfs" || return 1
	rm -f "$dir/config.json"
	"$DG_RUNC" spec --bundle "$dir" || return 1
	python3 - "$dir/config.json" "$@" <<-'EOF'
	import json, os, shlex, sys
	path, args = sys.argv[1], sys.argv[2:]
	with open(path) as f:
	    c = json.load(f)
	p = c["process"]
	p["terminal"] = False
	p["args"] = args
	p["env"] += [l for l in os.environ.get("DG_RUNC_ENV", "").splitlines() if l]
	c["root"]["readonly"] = False
	ann = c.setdefault("annotations", {})
	for var, key in (("DG_WORKLOAD", "io.driftgate.workload"),
	                 ("DG_CONTAINER", "io.driftgate.container"),
	                 ("DG_IMAGE_REF", "org.opencontainers.image.ref.name"),
	                 ("DG_IMAGE_DIGEST", "io.driftgate.image.digest")):
	    if os.environ.get(var):
	        ann[key] = os.environ[var]
	for line in os.environ.get("DG_RUNC_BINDS", "").splitlines():
	    if not line:
	        continue
	    parts = line.split(":")
	    opts = ["rbind", "ro" if parts[2:] == ["ro"] else "rw"]
	    c["mounts"].append({"destination": parts[1], "type": "bind", "source": parts[0],
	                        "options": opts})
	hooks = {}
	for var, phase in (("PRESTART", "prestart"), ("CREATE_RUNTIME", "createRuntime"),
	                   ("CREATE_CONTAINER", "createContainer"),
	                   ("START_CONTAINER", "startContainer"), ("POSTSTART", "poststart"),
	                   ("POSTSTOP", "poststop")):
	    cmd = os.environ.get("DG_RUNC_HOOK_" + var)
	    if cmd:
	        argv = shlex.split(cmd)
	        hooks[phase] = [{"path": argv[0], "args": argv, "timeout": 30}]
	if hooks:
	    c["hooks"] = hooks
	if not ann:
	    c.pop("annotations", None)
	with open(path, "w") as f:
	    json.dump(c, f, indent=2)
	EOF
}

# dg_runc_run ID BUNDLE: run the container in the foreground; its stdout goes
# to $DG_WORK/runc-ID.out, stderr (runc's and the container's) to
# $DG_WORK/runc-ID.err. Returns the container process's exit status.
dg_runc_run() {
	local id=$1 bundle=$2
	mkdir -p "$(dg_runc_root)"
	dg_runc run --bundle "$bundle" "$id" </dev/null \
		>"$DG_WORK/runc-$id.out" 2>"$DG_WORK/runc-$id.err"
}

# dg_runc_run_bg ID BUNDLE: the same in the background; sets RUNC_PID (the
# `runc run` process, which exits with the container) and waits (10 s) until
# runc reports the container running.
dg_runc_run_bg() {
	local id=$1 bundle=$2
	mkdir -p "$(dg_runc_root)"
	dg_runc run --bundle "$bundle" "$id" </dev/null \
		>"$DG_WORK/runc-$id.out" 2>"$DG_WORK/runc-$id.err" &
	RUNC_PID=$!
	dg_runc_wait_status "$id" running
}

# dg_runc_status ID: print the container's status (creating, created,
# running, stopped), or nothing if runc does not know it.
dg_runc_status() {
	dg_runc state "$1" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])' \
		2>/dev/null
}

# dg_runc_wait_status ID STATUS: wait (10 s) for the container to reach STATUS.
dg_runc_wait_status() {
	for _ in $(seq 1 200); do
		[ "$(dg_runc_status "$1")" = "$2" ] && return 0
		sleep 0.05
	done
	echo "container $1 never reached '$2' (now '$(dg_runc_status "$1")')" >&2
	cat "$DG_WORK/runc-$1.err" >&2 2>/dev/null
	return 1
}

# dg_runc_cleanup: kill and delete every container of this test, then unmount
# the tmpfs made by dg_runc_tmpfs. Safe to call more than once.
dg_runc_cleanup() {
	local id root m
	root=$(dg_runc_root 2>/dev/null)
	if [ -n "${DG_WORK:-}" ] && [ -d "$root" ]; then
		for id in $("$DG_RUNC" --root "$root" list -q 2>/dev/null); do
			"$DG_RUNC" --root "$root" kill "$id" KILL >/dev/null 2>&1
			"$DG_RUNC" --root "$root" delete --force "$id" >/dev/null 2>&1
		done
	fi
	for m in "${DG_RUNC_MOUNTS[@]}"; do umount -l "$m" 2>/dev/null; done
	DG_RUNC_MOUNTS=()
}

# Chain: dg_cleanup (lib.sh) runs dg_runc_cleanup first, then what it did before.
if ! declare -F dg_cleanup_before_runc >/dev/null; then
	eval "dg_cleanup_before_runc() $(declare -f dg_cleanup | tail -n +2)"
	dg_cleanup() {
		dg_runc_cleanup
		dg_cleanup_before_runc
	}
fi
