/*
 * Container records: OCI config.json to canonical text, the strict parser,
 * round trips and diffs. Known answers: a python3 writer of container.h's
 * format run on a `runc spec` bundle, records written out by hand, and the
 * FIPS 180-2 SHA-256 vectors of "abc" and "".
 */
#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "driftgate/container.h"
#include "driftgate/err.h"
#include "testutil.h"

/* SHA-256("abc") and SHA-256("") (FIPS 180-2 appendix B.1; the empty string). */
#define SHA_ABC "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define SHA_EMPTY "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* JSON written with ' for " (none of these texts needs a real '). */
static char *
json_of(const char *single_quoted)
{
	char *s = strdup(single_quoted);
	ck_assert_ptr_nonnull(s);
	for (char *p = s; *p != '\0'; p++) {
		if (*p == '\'')
			*p = '"';
	}
	return s;
}

static struct dg_container *
must_from_json(const char *single_quoted)
{
	struct dg_container *c = NULL;
	char err[256] = "", *json = json_of(single_quoted);
	int rc = dg_container_from_oci_json(json, strlen(json), &c, err, sizeof err);
	ck_assert_msg(rc == DG_OK, "from_oci_json failed (%d): %s", rc, err);
	free(json);
	return c;
}

static char *
must_encode(const struct dg_container *c, size_t *len)
{
	char *text = NULL;
	size_t n = 0;
	ck_assert_int_eq(dg_container_encode(c, &text, &n), DG_OK);
	ck_assert_uint_eq(strlen(text), n);
	if (len != NULL)
		*len = n;
	return text;
}

static char *
record_of(const char *single_quoted)
{
	struct dg_container *c = must_from_json(single_quoted);
	char *text = must_encode(c, NULL);
	dg_container_free(c);
	return text;
}

/* got equals want, or a failure quoting where they part: whole records are too
 * long for Check's messages. */
static void
expect_text(const char *got, size_t got_len, const char *want, size_t want_len)
{
	size_t i = 0, from;

	while (i < got_len && i < want_len && got[i] == want[i])
		i++;
	from = i > 40 ? i - 40 : 0;
	ck_assert_msg(i == got_len && i == want_len, "texts part at offset %zu:\n got: %.*s\nwant: %.*s",
	              i, (int)(got_len - from < 80 ? got_len - from : 80), got + from,
	              (int)(want_len - from < 80 ? want_len - from : 80), want + from);
}

/* parse(text) succeeds and encodes back to exactly text. */
static void
expect_round_trip(const char *text, size_t len)
{
	struct dg_container *c = NULL;
	char *again;
	size_t again_len;

	ck_assert_int_eq(dg_container_parse(text, len, &c), DG_OK);
	again = must_encode(c, &again_len);
	expect_text(again, again_len, text, len);
	free(again);
	dg_container_free(c);
}

static void
expect_json_error(const char *json, size_t len, int want_rc, const char *want_err)
{
	struct dg_container *sentinel = (struct dg_container *)&sentinel, *c = sentinel;
	char err[256] = "";
	int rc = dg_container_from_oci_json(json, len, &c, err, sizeof err);
	ck_assert_msg(rc == want_rc, "%.80s: rc %d, want %d (%s)", json, rc, want_rc, err);
	ck_assert_ptr_eq(c, sentinel); /* *out untouched */
	ck_assert_str_eq(err, want_err);
}

static void
expect_json_error_q(const char *single_quoted, int want_rc, const char *want_err)
{
	char *json = json_of(single_quoted);
	expect_json_error(json, strlen(json), want_rc, want_err);
	free(json);
}

static void
expect_parse_error(const char *text, int want_rc)
{
	struct dg_container *sentinel = (struct dg_container *)&sentinel, *c = sentinel;
	int rc = dg_container_parse(text, strlen(text), &c);
	ck_assert_msg(rc == want_rc, "parse accepted or misjudged (%d):\n%s", rc, text);
	ck_assert_ptr_eq(c, sentinel);
}

/* ---- OCI config.json to record ---- */

/*
 * A python3 writer of the record format, from container.h and the escaping
 * rules alone, applied to a `runc spec` bundle edited like a real workload.
 */
static const char python_record[] =
	"import hashlib, json, sys\n"
	"d = sys.argv[1]\n"
	"spec = json.load(open(d + '/config.json'))\n"
	"p = spec['process']\n"
	"p['args'] = ['/app/server', '--listen', '0.0.0.0:8080', 'two words', 'caf\\u00e9']\n"
	"p['env'] += ['API_KEY=s3cr3t-do-not-log', 'DB_URL=postgres://u:pw@db/app', 'EMPTY=',\n"
	"             ' LEAD=x']\n"
	"p['cwd'] = '/app'\n"
	"p['user'] = {'uid': 1000, 'gid': 1000, 'additionalGids': [27, 4]}\n"
	"p['capabilities']['bounding'] += ['CAP_CHOWN', 'CAP_KILL']\n"
	"spec['annotations'] = {'io.driftgate.workload': 'web', 'io.driftgate.container': 'api',\n"
	"    'org.opencontainers.image.ref.name': 'registry.example/web/api:1.4',\n"
	"    'io.driftgate.image.digest': 'sha256:' + hashlib.sha256(b'image').hexdigest()}\n"
	"spec['mounts'].append({'destination': '/run/secrets', 'type': 'bind',\n"
	"    'source': '/srv/secrets/api', 'options': ['rbind', 'ro', 'x-opt=a,b']})\n"
	"spec['hooks'] = {'poststop': [{'path': '/usr/bin/cleanup'}],\n"
	"    'prestart': [{'path': '/usr/bin/netns', 'args': ['netns', '--bridge', 'br0'],\n"
	"                  'timeout': 5}, {'path': '/usr/bin/log'}]}\n"
	"json.dump(spec, open(d + '/config.json', 'w'), indent=1)\n"
	"def esc(v, in_options=False):\n"
	"    b = v.encode()\n"
	"    if b == b'': return '-'\n"
	"    if b == b'-': return '\\\\x2d'\n"
	"    out = ''\n"
	"    for x in b:\n"
	"        if x == 0x5c: out += '\\\\\\\\'\n"
	"        elif x <= 0x20 or x >= 0x7f or (in_options and x == 0x2c): out += '\\\\x%02x' % x\n"
	"        else: out += chr(x)\n"
	"    return out\n"
	"a = spec['annotations']\n"
	"lines = ['driftgate-container 1', 'workload web', 'name api',\n"
	"         'image-ref ' + esc(a['org.opencontainers.image.ref.name']),\n"
	"         'image-digest ' + esc(a['io.driftgate.image.digest'])]\n"
	"lines += ['arg ' + esc(x) for x in p['args']]\n"
	"env = sorted((e.split('=', 1) for e in p['env']), key=lambda kv: kv[0].encode())\n"
	"lines += ['env %s sha256:%s' % (esc(k), hashlib.sha256(v.encode()).hexdigest())\n"
	"          for k, v in env]\n"
	"u = p['user']\n"
	"lines += ['cwd ' + esc(p['cwd']),\n"
	"          'user %d %d' % (u['uid'], u['gid']) + ''.join(' %d' % g for g in u['additionalGids']),\n"
	"          'no-new-privileges ' + str(p['noNewPrivileges']).lower(),\n"
	"          'readonly-rootfs ' + str(spec['root']['readonly']).lower()]\n"
	"for s in ['bounding', 'effective', 'inheritable', 'permitted', 'ambient']:\n"
	"    names = sorted(set(p['capabilities'].get(s, [])), key=lambda n: n.encode())\n"
	"    lines += ['cap %s %s' % (s, esc(n)) for n in names]\n"
	"for m in spec['mounts']:\n"
	"    opts = ','.join(esc(o, True) for o in m.get('options', [])) or '-'\n"
	"    lines.append('mount %s %s %s %s' % (esc(m['destination']), esc(m.get('type', '')),\n"
	"                                         esc(m.get('source', '')), opts))\n"
	"for ns in sorted(spec['linux']['namespaces'], key=lambda n: n['type'].encode()):\n"
	"    lines.append('namespace %s %s' % (esc(ns['type']), esc(ns.get('path', ''))))\n"
	"for st in ['prestart', 'createRuntime', 'createContainer', 'startContainer',\n"
	"           'poststart', 'poststop']:\n"
	"    for h in spec['hooks'].get(st, []):\n"
	"        words = ['hook', st, h['path']] + h.get('args', [])\n"
	"        lines.append(' '.join(words[:2] + [esc(x) for x in words[2:]]))\n"
	"open(d + '/expected.txt', 'w').write(''.join(l + '\\n' for l in lines))\n";

START_TEST(test_runc_spec_matches_python)
{
	char *dir = tu_tmpdir(), path[512], err[256] = "";
	struct dg_container *c = NULL;
	uint8_t *json, *expected;
	size_t json_len, expected_len, len;
	char *text;
	FILE *f;

	snprintf(path, sizeof path, "%s/record.py", dir);
	ck_assert_ptr_nonnull(f = fopen(path, "w"));
	fputs(python_record, f);
	fclose(f);
	ck_assert_int_eq(tu_sh("cd %s && runc spec --bundle . && python3 record.py .", dir), 0);
	snprintf(path, sizeof path, "%s/config.json", dir);
	ck_assert_ptr_nonnull(json = tu_read_file(path, &json_len));
	snprintf(path, sizeof path, "%s/expected.txt", dir);
	ck_assert_ptr_nonnull(expected = tu_read_file(path, &expected_len));

	ck_assert_msg(dg_container_from_oci_json((char *)json, json_len, &c, err, sizeof err) ==
	                  DG_OK,
	              "%s", err);
	text = must_encode(c, &len);
	expect_text(text, len, (const char *)expected, expected_len);
	/* Spot checks written by hand, in case both writers share a mistake. */
	ck_assert_ptr_nonnull(strstr(text, "\narg two\\x20words\narg caf\\xc3\\xa9\n"));
	ck_assert_ptr_nonnull(strstr(text, "\nenv \\x20LEAD sha256:"));
	ck_assert_ptr_nonnull(strstr(text, "\nenv EMPTY sha256:" SHA_EMPTY "\n"));
	ck_assert_ptr_nonnull(strstr(text, "\nuser 1000 1000 27 4\n"));
	ck_assert_ptr_nonnull(strstr(text, "\nno-new-privileges true\nreadonly-rootfs true\n"));
	ck_assert_ptr_nonnull(strstr(text, "\ncap bounding CAP_AUDIT_WRITE\ncap bounding CAP_CHOWN\n"
	                                   "cap bounding CAP_KILL\ncap bounding CAP_NET_BIND_SERVICE\n"
	                                   "cap effective CAP_AUDIT_WRITE\n"));
	ck_assert_ptr_nonnull(strstr(text, "\nmount /dev tmpfs tmpfs nosuid,strictatime,mode=755,"
	                                   "size=65536k\n"));
	ck_assert_ptr_nonnull(strstr(text, "\nmount /run/secrets bind /srv/secrets/api "
	                                   "rbind,ro,x-opt=a\\x2cb\n"));
	ck_assert_ptr_nonnull(strstr(text, "\nnamespace ipc -\nnamespace mount -\nnamespace network -\n"
	                                   "namespace pid -\nnamespace uts -\nhook "));
	ck_assert_ptr_nonnull(strstr(text, "\nhook prestart /usr/bin/netns netns --bridge br0\n"
	                                   "hook prestart /usr/bin/log\n"
	                                   "hook poststop /usr/bin/cleanup\n"));
	/* Env values are hashed, never carried. */
	ck_assert_ptr_null(strstr(text, "s3cr3t"));
	ck_assert_ptr_null(strstr(text, "pw@db"));
	ck_assert_str_eq(dg_container_workload(c), "web");
	ck_assert_str_eq(dg_container_name(c), "api");
	expect_round_trip(text, len);
	free(text);
	free(json);
	free(expected);
	dg_container_free(c);
	tu_sh("rm -rf %s", dir);
	free(dir);
}
END_TEST

/* Sorting, escaping and the "-" conventions, against a record written by hand. */
START_TEST(test_sorting_and_escaping)
{
	char *text = record_of(
		"{'ociVersion': '1.0.2',"
		" 'annotations': {'io.driftgate.workload': 'web.v2_x-1', 'io.driftgate.container': 'api',"
		"   'io.kubernetes.cri.image-name': 'reg/x:1',"
		"   'org.opencontainers.image.base.digest': 'sha256:abcd', 'other': 5},"
		" 'process': {'args': ['/bin/sh', '-c', 'echo a\\tb', '-', '', 'caf\\u00e9',"
		"   'back\\\\slash'],"
		"   'env': ['ZED=abc', 'B=', 'A=abc', 'sp ace=abc', ' lead=', 'Z=abc'],"
		"   'cwd': '/w d', 'user': {'uid': 4294967295, 'gid': 100, 'additionalGids': [27, 4]},"
		"   'noNewPrivileges': false,"
		"   'capabilities': {'ambient': ['CAP_B'], 'bounding': ['CAP_Z', 'CAP_A', 'CAP_Z'],"
		"     'permitted': ['CAP_A']}},"
		" 'root': {'path': 'rootfs', 'readonly': true},"
		" 'mounts': [{'destination': '/data dir', 'type': 'bind', 'source': '/srv/a,b',"
		"   'options': ['rbind', 'ro', 'x,y', '-']}, {'destination': '/tmp'},"
		"   {'destination': '/tmp', 'type': null, 'options': []}],"
		" 'linux': {'namespaces': [{'type': 'pid'}, {'type': 'network', 'path': '/proc/1/ns/net'},"
		"   {'type': 'mount', 'path': ''}]},"
		" 'hooks': {'poststop': [{'path': '/bin/clean'}],"
		"   'prestart': [{'path': '/bin/net', 'args': ['net', 'up']}, {'path': '/bin/log'}]}}");

	static const char want[] =
		"driftgate-container 1\n"
		"workload web.v2_x-1\n"
		"name api\n"
		"image-ref reg/x:1\n"
		"image-digest sha256:abcd\n"
		"arg /bin/sh\n"
		"arg -c\n"
		"arg echo\\x20a\\x09b\n"
		"arg \\x2d\n"
		"arg -\n"
		"arg caf\\xc3\\xa9\n"
		"arg back\\\\slash\n"
		/* raw byte order: ' ' < 'A' < 'B' < 'Z' < 'ZED' < 's' */
		"env \\x20lead sha256:" SHA_EMPTY "\n"
		"env A sha256:" SHA_ABC "\n"
		"env B sha256:" SHA_EMPTY "\n"
		"env Z sha256:" SHA_ABC "\n"
		"env ZED sha256:" SHA_ABC "\n"
		"env sp\\x20ace sha256:" SHA_ABC "\n"
		"cwd /w\\x20d\n"
		"user 4294967295 100 27 4\n"
		"no-new-privileges false\n"
		"readonly-rootfs true\n"
		"cap bounding CAP_A\n"
		"cap bounding CAP_Z\n"
		"cap permitted CAP_A\n"
		"cap ambient CAP_B\n"
		"mount /data\\x20dir bind /srv/a,b rbind,ro,x\\x2cy,\\x2d\n"
		"mount /tmp - - -\n"
		"mount /tmp - - -\n"
		"namespace mount -\n"
		"namespace network /proc/1/ns/net\n"
		"namespace pid -\n"
		"hook prestart /bin/net net up\n"
		"hook prestart /bin/log\n"
		"hook poststop /bin/clean\n";
	expect_text(text, strlen(text), want, strlen(want));
	expect_round_trip(text, strlen(text));
	free(text);
}
END_TEST

START_TEST(test_defaults)
{
	static const char empty_record[] = "driftgate-container 1\n"
	                                   "workload -\nname -\nimage-ref -\nimage-digest -\n"
	                                   "cwd -\nuser 0 0\n"
	                                   "no-new-privileges false\nreadonly-rootfs false\n";
	const char *variants[] = {
		"{}",
		" {\n} \r\n\t",
		"{'process': null, 'root': null, 'mounts': null, 'linux': null, 'hooks': null,"
		" 'annotations': null}",
		"{'process': {'args': [], 'env': [], 'user': {}, 'capabilities': {}}, 'root': {},"
		" 'mounts': [], 'linux': {'namespaces': null}, 'hooks': {'prestart': []},"
		" 'annotations': {'io.driftgate.workload': null, 'io.driftgate.container': '',"
		"   'k:x': 'a\\\":b', 'y': ':', 'Process': 'not ours'},"
		" 'hostname': 'x', 'extra': [[[1]]]}",
	};
	for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++) {
		struct dg_container *c = must_from_json(variants[i]);
		char *text = must_encode(c, NULL);
		ck_assert_str_eq(text, empty_record);
		ck_assert_str_eq(dg_container_workload(c), "-");
		ck_assert_str_eq(dg_container_name(c), "-");
		free(text);
		dg_container_free(c);
	}
	expect_round_trip(empty_record, strlen(empty_record));
}
END_TEST

START_TEST(test_json_errors)
{
	static const struct {
		const char *json;
		int rc;
		const char *err;
	} cases[] = {
		{"[]", DG_ERR_FORMAT, "top level: expected object, not array"},
		{"'x'", DG_ERR_FORMAT, "top level: expected object, not string"},
		{"", DG_ERR_FORMAT, "JSON text ends early"},
		{"{'a':", DG_ERR_FORMAT, "JSON text ends early"},
		{"{} x", DG_ERR_FORMAT, "bytes after the JSON value at offset 3"},
		{"{}{}", DG_ERR_FORMAT, "bytes after the JSON value at offset 2"},
		{"{'process': []}", DG_ERR_FORMAT, "process: expected object, not array"},
		{"{'process': {'args': 'sh'}}", DG_ERR_FORMAT, "process.args: expected array, not string"},
		{"{'process': {'args': ['a', 1]}}", DG_ERR_FORMAT,
		 "process.args[1]: expected string, not int"},
		{"{'process': {'args': ['a\\u0000b']}}", DG_ERR_FORMAT,
		 "process.args[0]: contains a NUL byte"},
		{"{'process': {'env': ['A=1', 'NOEQ']}}", DG_ERR_FORMAT,
		 "process.env[1]: no '=' (want NAME=value)"},
		{"{'process': {'env': ['=x']}}", DG_ERR_FORMAT, "process.env[0]: empty name"},
		{"{'process': {'env': ['A=1', 'B=2', 'A=1']}}", DG_ERR_FORMAT,
		 "process.env: 'A' is set twice"},
		{"{'process': {'env': {}}}", DG_ERR_FORMAT, "process.env: expected array, not object"},
		{"{'process': {'cwd': 5}}", DG_ERR_FORMAT, "process.cwd: expected string, not int"},
		{"{'process': {'user': []}}", DG_ERR_FORMAT, "process.user: expected object, not array"},
		{"{'process': {'user': {'uid': -1}}}", DG_ERR_FORMAT,
		 "process.user.uid: expected an integer 0..4294967295"},
		{"{'process': {'user': {'gid': 4294967296}}}", DG_ERR_FORMAT,
		 "process.user.gid: expected an integer 0..4294967295"},
		{"{'process': {'user': {'uid': '0'}}}", DG_ERR_FORMAT,
		 "process.user.uid: expected int, not string"},
		{"{'process': {'user': {'uid': 1.0}}}", DG_ERR_FORMAT,
		 "process.user.uid: expected int, not double"},
		{"{'process': {'user': {'additionalGids': [1, true]}}}", DG_ERR_FORMAT,
		 "process.user.additionalGids[1]: expected an integer 0..4294967295"},
		{"{'process': {'noNewPrivileges': 'yes'}}", DG_ERR_FORMAT,
		 "process.noNewPrivileges: expected boolean, not string"},
		{"{'process': {'capabilities': {'bounding': ['']}}}", DG_ERR_FORMAT,
		 "process.capabilities.bounding[0]: empty"},
		{"{'process': {'capabilities': {'ambient': 'CAP_KILL'}}}", DG_ERR_FORMAT,
		 "process.capabilities.ambient: expected array, not string"},
		{"{'root': {'readonly': 1}}", DG_ERR_FORMAT, "root.readonly: expected boolean, not int"},
		{"{'mounts': {}}", DG_ERR_FORMAT, "mounts: expected array, not object"},
		{"{'mounts': [5]}", DG_ERR_FORMAT, "mounts[0]: expected object, not int"},
		{"{'mounts': [{'destination': '/a'}, {'type': 'bind'}]}", DG_ERR_FORMAT,
		 "mounts[1].destination: missing"},
		{"{'mounts': [{'destination': ''}]}", DG_ERR_FORMAT, "mounts[0].destination: empty"},
		{"{'mounts': [{'destination': '/x', 'options': ['ro', '']}]}", DG_ERR_FORMAT,
		 "mounts[0].options[1]: empty"},
		{"{'mounts': [{'destination': '/x', 'source': ['a']}]}", DG_ERR_FORMAT,
		 "mounts[0].source: expected string, not array"},
		{"{'linux': {'namespaces': [{'type': 'pid'}, {'type': 'pid', 'path': '/p'}]}}",
		 DG_ERR_FORMAT, "linux.namespaces: type 'pid' given twice"},
		{"{'linux': {'namespaces': [{'path': '/p'}]}}", DG_ERR_FORMAT,
		 "linux.namespaces[0].type: missing"},
		{"{'linux': {'namespaces': ['pid']}}", DG_ERR_FORMAT,
		 "linux.namespaces[0]: expected object, not string"},
		{"{'hooks': {'prestart': {}}}", DG_ERR_FORMAT,
		 "hooks.prestart: expected array, not object"},
		{"{'hooks': {'poststart': [{'args': ['x']}]}}", DG_ERR_FORMAT,
		 "hooks.poststart[0].path: missing"},
		{"{'hooks': {'createRuntime': [{'path': '/h', 'args': [null]}]}}", DG_ERR_FORMAT,
		 "hooks.createRuntime[0].args[0]: expected string, not null"},
		{"{'annotations': []}", DG_ERR_FORMAT, "annotations: expected object, not array"},
		{"{'annotations': {'io.driftgate.workload': 7}}", DG_ERR_FORMAT,
		 "annotations.io.driftgate.workload: expected string, not int"},
		{"{'annotations': {'io.driftgate.workload': '../etc'}}", DG_ERR_FORMAT,
		 "annotations.io.driftgate.workload: bad name (want [A-Za-z0-9._-]{1,64}, not \"-\")"},
		{"{'annotations': {'io.driftgate.container': '-'}}", DG_ERR_FORMAT,
		 "annotations.io.driftgate.container: bad name (want [A-Za-z0-9._-]{1,64}, not \"-\")"},
		{"{'annotations': {'io.driftgate.container': "
		 "'a234567890123456789012345678901234567890123456789012345678901234X'}}",
		 DG_ERR_FORMAT,
		 "annotations.io.driftgate.container: bad name (want [A-Za-z0-9._-]{1,64}, not \"-\")"},
		{"{'annotations': {'org.opencontainers.image.ref.name': false}}", DG_ERR_FORMAT,
		 "annotations.org.opencontainers.image.ref.name: expected string, not boolean"},
		/* What runc's Go decoder reads differently from json-c: names matched
		 * regardless of case (U+017F, U+212A fold to s, k), repeated members merged. */
		{"{'process': {'args': ['/app'], 'Args': ['/evil']}}", DG_ERR_FORMAT,
		 "process: member 'Args' would be read as 'args' by runc"},
		{"{'PROCESS': {}}", DG_ERR_FORMAT,
		 "top level: member 'PROCESS' would be read as 'process' by runc"},
		{"{'hoo\\u212As': {}}", DG_ERR_FORMAT,
		 "top level: member 'hoo???s' would be read as 'hooks' by runc"},
		{"{'process': {'user': {'UID': 0}}}", DG_ERR_FORMAT,
		 "process.user: member 'UID' would be read as 'uid' by runc"},
		{"{'process': {'capabilities': {'Ambient': []}}}", DG_ERR_FORMAT,
		 "process.capabilities: member 'Ambient' would be read as 'ambient' by runc"},
		{"{'root': {'readOnly': false}}", DG_ERR_FORMAT,
		 "root: member 'readOnly' would be read as 'readonly' by runc"},
		{"{'mounts': [{'destination': '/a', 'Source': '/x'}]}", DG_ERR_FORMAT,
		 "mounts[0]: member 'Source' would be read as 'source' by runc"},
		{"{'linux': {'Namespaces': []}}", DG_ERR_FORMAT,
		 "linux: member 'Namespaces' would be read as 'namespaces' by runc"},
		{"{'mounts': [{'destination': '/a', '\\u017fource': '/x'}]}", DG_ERR_FORMAT,
		 "mounts[0]: member '??ource' would be read as 'source' by runc"},
		{"{'linux': {'namespaces': [{'type': 'pid', 'Path': '/x'}]}}", DG_ERR_FORMAT,
		 "linux.namespaces[0]: member 'Path' would be read as 'path' by runc"},
		{"{'hooks': {'PreStart': []}}", DG_ERR_FORMAT,
		 "hooks: member 'PreStart' would be read as 'prestart' by runc"},
		{"{'hooks': {'poststop': [{'path': '/h', 'ARGS': []}]}}", DG_ERR_FORMAT,
		 "hooks.poststop[0]: member 'ARGS' would be read as 'args' by runc"},
		{"{'process': {'args': ['/app']}, 'process': {'cwd': '/'}}", DG_ERR_FORMAT,
		 "a JSON object repeats a member name"},
		{"{'annotations': {'a': '1', 'b': '2', 'a': '3'}}", DG_ERR_FORMAT,
		 "a JSON object repeats a member name"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		expect_json_error_q(cases[i].json, cases[i].rc, cases[i].err);

	/* A NUL byte in the text itself, not escaped. */
	expect_json_error("{}\0", 3, DG_ERR_FORMAT, "NUL byte in JSON text");
	/* json-c takes single quotes for strings; JSON (and runc) does not. */
	expect_json_error("{'a': 1}", 8, DG_ERR_FORMAT, "single quote at offset 1 (not JSON)");
	/* Not JSON at all: json-c's own description follows the offset. */
	struct dg_container *c = NULL;
	char err[256];
	ck_assert_int_eq(dg_container_from_oci_json("{\"a\" 1}", 7, &c, err, sizeof err),
	                 DG_ERR_FORMAT);
	ck_assert_ptr_null(c);
	ck_assert_msg(strncmp(err, "bad JSON at offset 5: ", 22) == 0, "%s", err);
	/* Invalid UTF-8 (Go would turn it into U+FFFD before runc used it). */
	ck_assert_int_eq(dg_container_from_oci_json("{\"a\": \"\xff\"}", 10, &c, err, sizeof err),
	                 DG_ERR_FORMAT);
	ck_assert_msg(strncmp(err, "bad JSON at offset ", 19) == 0, "%s", err);
	ck_assert_int_eq(dg_container_from_oci_json(NULL, 0, &c, err, sizeof err), DG_ERR_INVAL);
}
END_TEST

/* '{"x":' + depth-1 arrays + '}': depth objects and arrays deep in all. */
static char *
nested_json(size_t depth)
{
	char *s = malloc(2 * depth + 8);
	size_t n = 0;

	ck_assert_ptr_nonnull(s);
	n += (size_t)sprintf(s, "{\"x\":");
	for (size_t i = 1; i < depth; i++)
		s[n++] = '[';
	for (size_t i = 1; i < depth; i++)
		s[n++] = ']';
	s[n++] = '}';
	s[n] = '\0';
	return s;
}

START_TEST(test_json_depth)
{
	struct dg_container *c = NULL;
	char err[256] = "", *json = nested_json(32);

	ck_assert_msg(dg_container_from_oci_json(json, strlen(json), &c, err, sizeof err) == DG_OK,
	              "%s", err);
	dg_container_free(c);
	free(json);
	json = nested_json(33);
	expect_json_error(json, strlen(json), DG_ERR_FORMAT, "JSON nested deeper than 32");
	free(json);
	json = nested_json(100000);
	expect_json_error(json, strlen(json), DG_ERR_FORMAT, "JSON nested deeper than 32");
	free(json);
}
END_TEST

/* {"process": {key: [item x count]}} or {"mounts": [...]}, built with json-c. */
static char *
json_with_list(const char *outer, const char *key, struct json_object *item, size_t count)
{
	struct json_object *root = json_object_new_object(), *list = json_object_new_array();
	char *text;

	for (size_t i = 0; i < count; i++)
		json_object_array_add(list, json_object_get(item));
	json_object_put(item);
	if (outer != NULL) {
		struct json_object *inner = json_object_new_object();
		json_object_object_add(inner, key, list);
		json_object_object_add(root, outer, inner);
	} else {
		json_object_object_add(root, key, list);
	}
	ck_assert_ptr_nonnull(text = strdup(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN)));
	json_object_put(root);
	return text;
}

static struct json_object *
string_of(char fill, size_t len, const char *prefix)
{
	size_t plen = strlen(prefix);
	char *s = malloc(plen + len + 1);
	struct json_object *o;

	ck_assert_ptr_nonnull(s);
	memcpy(s, prefix, plen);
	memset(s + plen, fill, len);
	s[plen + len] = '\0';
	o = json_object_new_string(s);
	free(s);
	return o;
}

static struct json_object *
mount_at(const char *destination)
{
	struct json_object *m = json_object_new_object();
	json_object_object_add(m, "destination", json_object_new_string(destination));
	return m;
}

static int
try_json(char *json, char *err, size_t cap)
{
	struct dg_container *c = NULL;
	int rc = dg_container_from_oci_json(json, strlen(json), &c, err, cap);
	dg_container_free(c);
	free(json);
	return rc;
}

#define NAME_16 "NNNNNNNNNNNNNNNN"
#define NAME_256 NAME_16 NAME_16 NAME_16 NAME_16 NAME_16 NAME_16 NAME_16 NAME_16 \
	NAME_16 NAME_16 NAME_16 NAME_16 NAME_16 NAME_16 NAME_16 NAME_16
#define NAME_4096 NAME_256 NAME_256 NAME_256 NAME_256 NAME_256 NAME_256 NAME_256 NAME_256 \
	NAME_256 NAME_256 NAME_256 NAME_256 NAME_256 NAME_256 NAME_256 NAME_256

START_TEST(test_json_bounds)
{
	char err[256];
	char *big;

	/* 4096 args fit the count; 4097 do not. */
	ck_assert_int_eq(try_json(json_with_list("process", "args", string_of('a', 1, ""), 4096), err,
	                          sizeof err),
	                 DG_OK);
	ck_assert_int_eq(try_json(json_with_list("process", "args", string_of('a', 1, ""), 4097), err,
	                          sizeof err),
	                 DG_ERR_TOOBIG);
	ck_assert_str_eq(err, "process.args: more than 4096 entries");
	/* The record bound: 4096 args of 20 bytes make about 102 KB of text. */
	ck_assert_int_eq(try_json(json_with_list("process", "args", string_of('a', 20, ""), 4096), err,
	                          sizeof err),
	                 DG_ERR_TOOBIG);
	ck_assert_str_eq(err, "record larger than 65536 bytes");
	/* Strings: 4096 bytes fit, 4097 do not. */
	ck_assert_int_eq(try_json(json_with_list("process", "args", string_of('a', 4096, ""), 1), err,
	                          sizeof err),
	                 DG_OK);
	ck_assert_int_eq(try_json(json_with_list("process", "args", string_of('a', 4097, ""), 1), err,
	                          sizeof err),
	                 DG_ERR_TOOBIG);
	ck_assert_str_eq(err, "process.args[0]: longer than 4096 bytes");
	/* Env values are only hashed: up to execve's 128 KiB per string. */
	ck_assert_int_eq(try_json(json_with_list("process", "env",
	                                         string_of('v', 128 * 1024 - 2, "K="), 1),
	                          err, sizeof err),
	                 DG_OK);
	ck_assert_int_eq(try_json(json_with_list("process", "env",
	                                         string_of('v', 128 * 1024 - 1, "K="), 1),
	                          err, sizeof err),
	                 DG_ERR_TOOBIG);
	ck_assert_str_eq(err, "process.env[0]: longer than 131072 bytes");
	/* Env names are carried, so they have the string bound: 4096 fits, 4097 not. */
	ck_assert_int_eq(try_json(json_with_list("process", "env", string_of('=', 1, NAME_4096), 1),
	                          err, sizeof err),
	                 DG_OK);
	ck_assert_int_eq(try_json(json_with_list("process", "env",
	                                         string_of('=', 1, NAME_4096 "N"), 1),
	                          err, sizeof err),
	                 DG_ERR_TOOBIG);
	ck_assert_str_eq(err, "process.env[0]: name longer than 4096 bytes");
	ck_assert_int_eq(try_json(json_with_list(NULL, "mounts", mount_at("/m"), 1024), err,
	                          sizeof err),
	                 DG_OK);
	ck_assert_int_eq(try_json(json_with_list(NULL, "mounts", mount_at("/m"), 1025), err,
	                          sizeof err),
	                 DG_ERR_TOOBIG);
	ck_assert_str_eq(err, "mounts: more than 1024 entries");
	ck_assert_int_eq(try_json(json_with_list("process", "env", string_of('v', 1, "K="), 5000),
	                          err, sizeof err),
	                 DG_ERR_TOOBIG);
	ck_assert_str_eq(err, "process.env: more than 4096 entries");

	/* The whole text: 4 MiB of whitespace around {} is refused unread. */
	ck_assert_ptr_nonnull(big = malloc(DG_CONTAINER_MAX_JSON + 2));
	memset(big, ' ', DG_CONTAINER_MAX_JSON + 1);
	big[0] = '{';
	big[1] = '}';
	big[DG_CONTAINER_MAX_JSON + 1] = '\0';
	expect_json_error(big, DG_CONTAINER_MAX_JSON + 1, DG_ERR_TOOBIG,
	                  "config larger than 4194304 bytes");
	ck_assert_int_eq(try_json(strndup(big, DG_CONTAINER_MAX_JSON), err, sizeof err), DG_OK);
	free(big);
}
END_TEST

/* ---- the strict parser ---- */

static const char good_record[] =
	"driftgate-container 1\n"
	"workload web\n"
	"name api\n"
	"image-ref reg/x:1\n"
	"image-digest sha256:abcd\n"
	"arg /app\n"
	"arg -\n"
	"env A sha256:" SHA_ABC "\n"
	"env B sha256:" SHA_EMPTY "\n"
	"cwd /w\n"
	"user 1000 100 27 4\n"
	"no-new-privileges true\n"
	"readonly-rootfs false\n"
	"cap bounding CAP_A\n"
	"cap bounding CAP_Z\n"
	"cap ambient CAP_A\n"
	"mount /data bind /srv ro,x\\x2cy\n"
	"mount /tmp - - -\n"
	"namespace mount -\n"
	"namespace pid /proc/1/ns/pid\n"
	"hook prestart /h2 a\n"
	"hook prestart /h1\n"
	"hook poststop /h3\n";

/* good_record with line `from` (a whole line, "\n" included) replaced. */
static char *
edited(const char *from, const char *to)
{
	const char *at = strstr(good_record, from);
	size_t head, from_len = strlen(from), to_len = strlen(to);
	char *s;

	ck_assert_ptr_nonnull(at);
	head = (size_t)(at - good_record);
	ck_assert_ptr_nonnull(s = malloc(sizeof good_record + to_len));
	memcpy(s, good_record, head);
	memcpy(s + head, to, to_len);
	strcpy(s + head + to_len, at + from_len);
	return s;
}

static void
expect_edit_rejected(const char *from, const char *to, int want_rc)
{
	char *s = edited(from, to);
	expect_parse_error(s, want_rc);
	free(s);
}

static void
expect_edit_accepted(const char *from, const char *to)
{
	char *s = edited(from, to);
	expect_round_trip(s, strlen(s));
	free(s);
}

START_TEST(test_parse_accepts_canonical)
{
	expect_round_trip(good_record, strlen(good_record));
	expect_edit_accepted("arg -\n", "arg caf\\xc3\\xa9\\x20\\\\\narg \\x2d\n");
	expect_edit_accepted("user 1000 100 27 4\n", "user 0 4294967295\n");
	expect_edit_accepted("mount /tmp - - -\n", "mount /tmp - - \\x2d,-x\n");
	expect_edit_accepted("cwd /w\n", "cwd -\n");
	expect_edit_accepted("hook poststop /h3\n", "hook poststop /h3 - \\x2d\n");
	expect_edit_accepted("env B sha256:" SHA_EMPTY "\n",
	                     "env B sha256:" SHA_EMPTY "\nenv \\xff sha256:" SHA_EMPTY "\n");
}
END_TEST

START_TEST(test_parse_rejects)
{
	/* Order, duplicates, missing lines, unknown keys. */
	expect_edit_rejected("workload web\nname api\n", "name api\nworkload web\n", DG_ERR_FORMAT);
	expect_edit_rejected("arg -\nenv A sha256:" SHA_ABC "\n", "env A sha256:" SHA_ABC "\narg -\n",
	                     DG_ERR_FORMAT);
	expect_edit_rejected("env A sha256:" SHA_ABC "\nenv B sha256:" SHA_EMPTY "\n",
	                     "env B sha256:" SHA_EMPTY "\nenv A sha256:" SHA_ABC "\n", DG_ERR_FORMAT);
	expect_edit_rejected("env B sha256:" SHA_EMPTY "\n", "env A sha256:" SHA_EMPTY "\n",
	                     DG_ERR_FORMAT);
	expect_edit_rejected("cap bounding CAP_A\ncap bounding CAP_Z\n",
	                     "cap bounding CAP_Z\ncap bounding CAP_A\n", DG_ERR_FORMAT);
	expect_edit_rejected("cap bounding CAP_Z\n", "cap bounding CAP_A\n", DG_ERR_FORMAT);
	expect_edit_rejected("cap ambient CAP_A\n", "cap ambient CAP_A\ncap permitted CAP_A\n",
	                     DG_ERR_FORMAT);
	expect_edit_rejected("cap ambient CAP_A\n", "cap inherited CAP_A\n", DG_ERR_FORMAT);
	expect_edit_rejected("namespace mount -\nnamespace pid /proc/1/ns/pid\n",
	                     "namespace pid /proc/1/ns/pid\nnamespace mount -\n", DG_ERR_FORMAT);
	expect_edit_rejected("hook prestart /h1\nhook poststop /h3\n",
	                     "hook poststop /h3\nhook prestart /h1\n", DG_ERR_FORMAT);
	expect_edit_rejected("hook poststop /h3\n", "hook later /h3\n", DG_ERR_FORMAT);
	expect_edit_rejected("mount /tmp - - -\n", "namespace ipc -\nmount /tmp - - -\n",
	                     DG_ERR_FORMAT);
	expect_edit_rejected("cwd /w\n", "cwd /w\ncwd /w\n", DG_ERR_FORMAT);
	expect_edit_rejected("cwd /w\n", "", DG_ERR_FORMAT);
	expect_edit_rejected("readonly-rootfs false\n", "", DG_ERR_FORMAT);
	expect_edit_rejected("name api\n", "", DG_ERR_FORMAT);
	expect_edit_rejected("cwd /w\n", "cwd /w\nfrob x\n", DG_ERR_FORMAT);
	expect_edit_rejected("cwd /w\n", "Cwd /w\n", DG_ERR_FORMAT);
	expect_edit_rejected("driftgate-container 1\n", "", DG_ERR_FORMAT);
	expect_edit_rejected("driftgate-container 1\n", "driftgate-container 2\n", DG_ERR_FORMAT);
	expect_edit_rejected("driftgate-container 1\n", "driftgate-container 1\ndriftgate-container 1\n",
	                     DG_ERR_FORMAT);
	/* Line and token shape. */
	expect_edit_rejected("hook poststop /h3\n", "hook poststop /h3", DG_ERR_FORMAT);
	expect_edit_rejected("cwd /w\n", "\ncwd /w\n", DG_ERR_FORMAT);
	expect_edit_rejected("cwd /w\n", "cwd /w\r\n", DG_ERR_FORMAT);
	expect_edit_rejected("cwd /w\n", "cwd  /w\n", DG_ERR_FORMAT);
	expect_edit_rejected("cwd /w\n", "cwd /w \n", DG_ERR_FORMAT);
	expect_edit_rejected("cwd /w\n", "cwd\n", DG_ERR_FORMAT);
	expect_edit_rejected("cwd /w\n", "cwd /w /x\n", DG_ERR_FORMAT);
	expect_edit_rejected("cwd /w\n", "cwd\t/w\n", DG_ERR_FORMAT);
	expect_edit_rejected("arg /app\n", "arg\n", DG_ERR_FORMAT);
	expect_edit_rejected("namespace mount -\n", "namespace mount\n", DG_ERR_FORMAT);
	expect_edit_rejected("mount /tmp - - -\n", "mount /tmp - -\n", DG_ERR_FORMAT);
	expect_edit_rejected("mount /tmp - - -\n", "mount /tmp - - - -\n", DG_ERR_FORMAT);
	/* Escapes encode would not write. */
	static const char *const bad_values[] = {
		"/\\x41", "/\\X20", "/\\x2", "/\\x", "/\\", "/\\q", "/\\x00", "/\\x0A", "/\\x5c",
		"/\\x2c", "a\\x2d", "/\tb", "/caf\xc3\xa9", "/\x7f", "\\x2D",
	};
	char line[64];
	for (size_t i = 0; i < sizeof bad_values / sizeof bad_values[0]; i++) {
		snprintf(line, sizeof line, "cwd %s\n", bad_values[i]);
		expect_edit_rejected("cwd /w\n", line, DG_ERR_FORMAT);
	}
	/* Field values. */
	expect_edit_rejected("workload web\n", "workload ../x\n", DG_ERR_FORMAT);
	expect_edit_rejected("workload web\n", "workload \\x2d\n", DG_ERR_FORMAT);
	expect_edit_rejected("name api\n", "name a\\x20b\n", DG_ERR_FORMAT);
	expect_edit_rejected("env A sha256:" SHA_ABC "\n", "env - sha256:" SHA_ABC "\n",
	                     DG_ERR_FORMAT);
	expect_edit_rejected("env A sha256:" SHA_ABC "\n", "env A sha256:BA7816BF8F01CFEA414140DE5DA"
	                     "E2223B00361A396177A9CB410FF61F20015AD\n", DG_ERR_FORMAT);
	expect_edit_rejected("env A sha256:" SHA_ABC "\n", "env A sha256:ba78\n", DG_ERR_FORMAT);
	expect_edit_rejected("env A sha256:" SHA_ABC "\n", "env A sha1:" SHA_ABC "\n", DG_ERR_FORMAT);
	expect_edit_rejected("env A sha256:" SHA_ABC "\n", "env A\n", DG_ERR_FORMAT);
	expect_edit_rejected("env A sha256:" SHA_ABC "\n", "env A sha256:" SHA_ABC " x\n",
	                     DG_ERR_FORMAT);
	expect_edit_rejected("user 1000 100 27 4\n", "user 1000\n", DG_ERR_FORMAT);
	expect_edit_rejected("user 1000 100 27 4\n", "user 01000 100\n", DG_ERR_FORMAT);
	expect_edit_rejected("user 1000 100 27 4\n", "user -1 100\n", DG_ERR_FORMAT);
	expect_edit_rejected("user 1000 100 27 4\n", "user +1 100\n", DG_ERR_FORMAT);
	expect_edit_rejected("user 1000 100 27 4\n", "user 4294967296 100\n", DG_ERR_FORMAT);
	expect_edit_rejected("user 1000 100 27 4\n", "user 99999999999 100\n", DG_ERR_FORMAT);
	expect_edit_rejected("no-new-privileges true\n", "no-new-privileges True\n", DG_ERR_FORMAT);
	expect_edit_rejected("no-new-privileges true\n", "no-new-privileges 1\n", DG_ERR_FORMAT);
	expect_edit_rejected("mount /tmp - - -\n", "mount - - - -\n", DG_ERR_FORMAT);
	expect_edit_rejected("mount /tmp - - -\n", "mount /tmp - - ,ro\n", DG_ERR_FORMAT);
	expect_edit_rejected("mount /tmp - - -\n", "mount /tmp - - ro,\n", DG_ERR_FORMAT);
	expect_edit_rejected("mount /tmp - - -\n", "mount /tmp - - ro,,rw\n", DG_ERR_FORMAT);
	expect_edit_rejected("mount /tmp - - -\n", "mount /tmp - - ro,-\n", DG_ERR_FORMAT);
	expect_edit_rejected("mount /tmp - - -\n", "mount /tmp - /a\\x2cb -\n", DG_ERR_FORMAT);
	expect_edit_rejected("hook poststop /h3\n", "hook poststop -\n", DG_ERR_FORMAT);
	expect_edit_rejected("hook poststop /h3\n", "hook poststop\n", DG_ERR_FORMAT);
	expect_edit_rejected("cap ambient CAP_A\n", "cap ambient -\n", DG_ERR_FORMAT);
	expect_edit_rejected("namespace mount -\n", "namespace - -\n", DG_ERR_FORMAT);
	expect_parse_error("", DG_ERR_FORMAT);
	ck_assert_int_eq(dg_container_parse(good_record, sizeof good_record, NULL), DG_ERR_INVAL);
}
END_TEST

/* good_record's head plus count copies of line. */
static char *
with_lines(const char *line, size_t count)
{
	size_t line_len = strlen(line), base = strlen(good_record);
	char *s = malloc(base + count * line_len + 1), *p;

	ck_assert_ptr_nonnull(s);
	memcpy(s, good_record, base);
	p = s + base;
	for (size_t i = 0; i < count; i++, p += line_len)
		memcpy(p, line, line_len);
	*p = '\0';
	return s;
}

START_TEST(test_parse_bounds)
{
	/* Lists are bounded in the text as in JSON: 64 hooks per stage, 64 options. */
	char *s = with_lines("hook poststop /h\n", 63);
	expect_round_trip(s, strlen(s));
	free(s);
	s = with_lines("hook poststop /h\n", 64);
	expect_parse_error(s, DG_ERR_TOOBIG);
	free(s);
	s = with_lines("hook poststop /h a a a a\n", 2);
	expect_round_trip(s, strlen(s));
	free(s);

	/* A record longer than DG_CONTAINER_MAX_RECORD is refused unread. */
	s = with_lines("hook poststop /h\n", 5000);
	ck_assert_uint_gt(strlen(s), DG_CONTAINER_MAX_RECORD);
	expect_parse_error(s, DG_ERR_TOOBIG);
	free(s);

	/* 1024 mounts fit, 1025 do not (written in place of the two mounts). */
	char *many = malloc(1026 * 16 + sizeof good_record), *p;
	const char *mounts = strstr(good_record, "mount /data");
	const char *after = strstr(good_record, "namespace mount");
	ck_assert_ptr_nonnull(many);
	for (size_t count = 1024; count <= 1025; count++) {
		p = many + (mounts - good_record);
		memcpy(many, good_record, (size_t)(mounts - good_record));
		for (size_t i = 0; i < count; i++)
			p += sprintf(p, "mount /m - - -\n");
		strcpy(p, after);
		if (count == 1024)
			expect_round_trip(many, strlen(many));
		else
			expect_parse_error(many, DG_ERR_TOOBIG);
	}
	free(many);
}
END_TEST

/* ---- round trips of random records ---- */

/* A random string from bytes the escaping must handle; never empty if asked. */
static struct json_object *
random_string(unsigned *seed, bool non_empty)
{
	static const char *const pool[] = {"a", "-", "/", " ", "\\", ",", "=", "\t", "\x7f",
	                                   "\xc3\xa9", "\xe2\x82\xac", ".", "Z", "0"};
	char s[64] = "";
	size_t len = (size_t)(rand_r(seed) % 9) + (non_empty ? 1 : 0);

	for (size_t i = 0; i < len; i++)
		strcat(s, pool[(size_t)rand_r(seed) % (sizeof pool / sizeof pool[0])]);
	return json_object_new_string(s);
}

static struct json_object *
random_strings(unsigned *seed, size_t max, bool non_empty)
{
	struct json_object *list = json_object_new_array();
	size_t n = (size_t)rand_r(seed) % (max + 1);
	for (size_t i = 0; i < n; i++)
		json_object_array_add(list, random_string(seed, non_empty));
	return list;
}

static char *
random_config(unsigned *seed)
{
	static const char *const sets[] = {"bounding", "effective", "inheritable", "permitted",
	                                   "ambient"};
	static const char *const stages[] = {"prestart", "createRuntime", "poststop"};
	struct json_object *root = json_object_new_object(), *process = json_object_new_object();
	struct json_object *env = json_object_new_array(), *caps = json_object_new_object();
	struct json_object *user = json_object_new_object(), *gids = json_object_new_array();
	struct json_object *mounts = json_object_new_array(), *hooks = json_object_new_object();
	struct json_object *ann = json_object_new_object(), *rootfs = json_object_new_object();
	char *text, name[8];
	size_t n;

	json_object_object_add(process, "args", random_strings(seed, 5, false));
	n = (size_t)rand_r(seed) % 5;
	for (size_t i = 0; i < n; i++) { /* distinct names */
		char kv[32];
		snprintf(kv, sizeof kv, "%c%zu=%c", "Ab z"[rand_r(seed) % 4], i, "xy"[rand_r(seed) % 2]);
		json_object_array_add(env, json_object_new_string(kv));
	}
	json_object_object_add(process, "env", env);
	json_object_object_add(process, "cwd", random_string(seed, false));
	json_object_object_add(user, "uid", json_object_new_int64(rand_r(seed) % 3));
	json_object_object_add(user, "gid", json_object_new_int64((int64_t)UINT32_MAX - rand_r(seed) % 2));
	n = (size_t)rand_r(seed) % 3;
	for (size_t i = 0; i < n; i++)
		json_object_array_add(gids, json_object_new_int(rand_r(seed) % 4));
	json_object_object_add(user, "additionalGids", gids);
	json_object_object_add(process, "user", user);
	json_object_object_add(process, "noNewPrivileges", json_object_new_boolean(rand_r(seed) % 2));
	for (size_t i = 0; i < 5; i++) {
		if (rand_r(seed) % 2)
			json_object_object_add(caps, sets[i], random_strings(seed, 3, true));
	}
	json_object_object_add(process, "capabilities", caps);
	json_object_object_add(root, "process", process);
	json_object_object_add(rootfs, "readonly", json_object_new_boolean(rand_r(seed) % 2));
	json_object_object_add(root, "root", rootfs);
	n = (size_t)rand_r(seed) % 4;
	for (size_t i = 0; i < n; i++) {
		struct json_object *m = json_object_new_object();
		json_object_object_add(m, "destination", random_string(seed, true));
		if (rand_r(seed) % 2)
			json_object_object_add(m, "source", random_string(seed, false));
		json_object_object_add(m, "options", random_strings(seed, 3, true));
		json_object_array_add(mounts, m);
	}
	json_object_object_add(root, "mounts", mounts);
	for (size_t i = 0; i < 3; i++) {
		struct json_object *list = json_object_new_array();
		n = (size_t)rand_r(seed) % 3;
		for (size_t k = 0; k < n; k++) {
			struct json_object *h = json_object_new_object();
			json_object_object_add(h, "path", random_string(seed, true));
			json_object_object_add(h, "args", random_strings(seed, 2, false));
			json_object_array_add(list, h);
		}
		json_object_object_add(hooks, stages[i], list);
	}
	json_object_object_add(root, "hooks", hooks);
	snprintf(name, sizeof name, "w%d", rand_r(seed) % 2);
	json_object_object_add(ann, "io.driftgate.workload", json_object_new_string(name));
	json_object_object_add(ann, "io.driftgate.image.digest", random_string(seed, false));
	json_object_object_add(root, "annotations", ann);
	ck_assert_ptr_nonnull(text = strdup(json_object_to_json_string(root)));
	json_object_put(root);
	return text;
}

START_TEST(test_random_round_trips)
{
	unsigned seed = 20240601;
	struct dg_container *prev = NULL;
	char *prev_text = NULL;
	size_t differing = 0;

	for (int iter = 0; iter < 400; iter++) {
		struct dg_container *c = NULL, *again = NULL;
		struct dg_reason reasons[DG_VERDICT_MAX_REASONS];
		char err[256] = "", *json = random_config(&seed), *text, *text2;
		size_t len, len2, n = 99;

		ck_assert_msg(dg_container_from_oci_json(json, strlen(json), &c, err, sizeof err) ==
		                  DG_OK,
		              "%s: %s", json, err);
		text = must_encode(c, &len);
		ck_assert_int_eq(dg_container_parse(text, len, &again), DG_OK);
		text2 = must_encode(again, &len2);
		expect_text(text2, len2, text, len);
		ck_assert_int_eq(dg_container_diff(c, again, reasons, DG_VERDICT_MAX_REASONS, &n),
		                 DG_OK);
		ck_assert_uint_eq(n, 0);
		if (prev != NULL) {
			/* Reasons exactly when the records differ, each way round. */
			bool same = strcmp(prev_text, text) == 0;
			ck_assert_int_eq(dg_container_diff(prev, c, reasons, DG_VERDICT_MAX_REASONS, &n),
			                 DG_OK);
			ck_assert_msg((n == 0) == same, "%zu reasons between\n%s\nand\n%s", n, prev_text,
			              text);
			ck_assert_int_eq(dg_container_diff(c, prev, reasons, DG_VERDICT_MAX_REASONS, &n),
			                 DG_OK);
			ck_assert((n == 0) == same);
			for (size_t i = 0; i < n; i++)
				ck_assert_str_eq(reasons[i].code, "spec-changed");
			differing += !same;
		}
		dg_container_free(prev);
		free(prev_text);
		prev = c;
		prev_text = text;
		dg_container_free(again);
		free(text2);
		free(json);
	}
	ck_assert_uint_gt(differing, 300);
	dg_container_free(prev);
	free(prev_text);
}
END_TEST

/* ---- diff ---- */

#define BASE_PROCESS                                                                               \
	"'args': ['/app/server', '--port', '8080'],"                                               \
	" 'env': ['API_KEY=abc', 'PATH=/bin', 'TOKEN=s3cret'], 'cwd': '/app',"                     \
	" 'user': {'uid': 1000, 'gid': 1000}, 'noNewPrivileges': true"
#define BASE_ANNOTATIONS                                                                           \
	"'annotations': {'io.driftgate.workload': 'web', 'io.driftgate.container': 'api',"        \
	" 'org.opencontainers.image.ref.name': 'reg/web/api:1.4',"                                 \
	" 'io.driftgate.image.digest': 'sha256:aaaa'}"
#define BASE_MOUNTS                                                                                \
	"'mounts': [{'destination': '/proc', 'type': 'proc', 'source': 'proc'},"                    \
	" {'destination': '/run/secrets', 'type': 'bind', 'source': '/srv/a',"                      \
	"  'options': ['rbind', 'ro']}]"
#define BASE_REST                                                                                  \
	"'linux': {'namespaces': [{'type': 'pid'}, {'type': 'network'}]},"                         \
	" 'hooks': {'prestart': [{'path': '/bin/net', 'args': ['net', 'up']}]}"

static const char base_json[] =
	"{" BASE_ANNOTATIONS ", 'process': {" BASE_PROCESS ","
	" 'capabilities': {'bounding': ['CAP_KILL', 'CAP_CHOWN'], 'ambient': ['CAP_KILL']}},"
	" 'root': {'readonly': true}, " BASE_MOUNTS ", " BASE_REST "}";

/* diff(approved, seen) must give exactly the want reasons, in order. */
static void
expect_diff(const char *approved_json, const char *seen_json, const char *const *want,
            size_t n_want)
{
	struct dg_container *a = must_from_json(approved_json), *s = must_from_json(seen_json);
	struct dg_reason reasons[DG_VERDICT_MAX_REASONS];
	size_t n = 99;

	ck_assert_int_eq(dg_container_diff(a, s, reasons, DG_VERDICT_MAX_REASONS, &n), DG_OK);
	for (size_t i = 0; i < n && i < n_want; i++) {
		ck_assert_str_eq(reasons[i].code, "spec-changed");
		ck_assert_str_eq(reasons[i].detail, want[i]);
	}
	ck_assert_uint_eq(n, n_want);
	dg_container_free(a);
	dg_container_free(s);
}

/* base_json with one fragment replaced. */
static char *
base_with(const char *from, const char *to)
{
	const char *at = strstr(base_json, from);
	size_t head, to_len = strlen(to);
	char *s;

	ck_assert_ptr_nonnull(at);
	head = (size_t)(at - base_json);
	ck_assert_ptr_nonnull(s = malloc(sizeof base_json + to_len));
	memcpy(s, base_json, head);
	memcpy(s + head, to, to_len);
	strcpy(s + head + to_len, at + strlen(from));
	return s;
}

#define DIFF_CASE(from, to, ...)                                                                   \
	do {                                                                                       \
		static const char *const want_[] = {__VA_ARGS__};                                  \
		char *seen_ = base_with(from, to);                                                 \
		expect_diff(base_json, seen_, want_, sizeof want_ / sizeof want_[0]);              \
		free(seen_);                                                                       \
	} while (0)

START_TEST(test_diff_identical)
{
	/* Same spec written differently: key order, whitespace, unread fields. */
	static const char reordered[] =
		"{ 'hostname': 'other', " BASE_REST ", " BASE_MOUNTS ",\n"
		"  'root': {'path': 'elsewhere', 'readonly': true},"
		"  'process': {'capabilities': {'ambient': ['CAP_KILL'], 'bounding': ['CAP_CHOWN',"
		"  'CAP_KILL', 'CAP_CHOWN']}, 'env': ['TOKEN=s3cret', 'API_KEY=abc', 'PATH=/bin'],"
		"  'noNewPrivileges': true, 'terminal': true, 'user': {'gid': 1000, 'uid': 1000},"
		"  'cwd': '/app', 'args': ['/app/server', '--port', '8080']}, " BASE_ANNOTATIONS "}";
	char *a = record_of(base_json), *b = record_of(reordered);

	ck_assert_str_eq(a, b);
	expect_diff(base_json, base_json, NULL, 0);
	expect_diff(base_json, reordered, NULL, 0);
	free(a);
	free(b);
}
END_TEST

START_TEST(test_diff_fields)
{
	/* A wrapped entrypoint shifts every argument. */
	DIFF_CASE("'args': ['/app/server'", "'args': ['/wrap.sh', '/app/server'",
	          "arg[0]: /app/server -> /wrap.sh", "arg[1]: --port -> /app/server",
	          "arg[2]: 8080 -> --port", "arg[3] added: 8080");
	DIFF_CASE("'--port', '8080'", "'--port'", "arg[2] removed: 8080");
	DIFF_CASE("'--port', '8080'", "'--port', '80 80'", "arg[2]: 8080 -> 80\\x2080");
	/* A repointed tag: same reference, another digest. */
	DIFF_CASE("'sha256:aaaa'", "'sha256:bbbb'", "image-digest: sha256:aaaa -> sha256:bbbb");
	DIFF_CASE("'reg/web/api:1.4'", "'reg/web/api:1.5'",
	          "image-ref: reg/web/api:1.4 -> reg/web/api:1.5");
	DIFF_CASE("'io.driftgate.workload': 'web'", "'io.driftgate.workload': 'db'",
	          "workload: web -> db");
	DIFF_CASE("'io.driftgate.container': 'api', ", "", "name: api -> -");
	/* Env: hashes of "abc" and "" (see SHA_ABC, SHA_EMPTY), never values. */
	DIFF_CASE("'API_KEY=abc'", "'API_KEY='",
	          "env API_KEY: sha256:ba7816bf8f01.. -> sha256:e3b0c44298fc..");
	DIFF_CASE("'TOKEN=s3cret'", "'TOKEN=s3cret', 'DEBUG=1'", "env DEBUG added");
	DIFF_CASE("'PATH=/bin', ", "", "env PATH removed");
	DIFF_CASE("'cwd': '/app'", "'cwd': '/'", "cwd: /app -> /");
	DIFF_CASE("'gid': 1000}", "'gid': 0, 'additionalGids': [0]}", "user: 1000 1000 -> 1000 0 0");
	DIFF_CASE("'noNewPrivileges': true", "'noNewPrivileges': false",
	          "no-new-privileges: true -> false");
	DIFF_CASE("'readonly': true", "'readonly': false", "readonly-rootfs: true -> false");
	/* Capabilities and namespaces as added or removed entries. */
	DIFF_CASE("'bounding': ['CAP_KILL', 'CAP_CHOWN'], 'ambient': ['CAP_KILL']",
	          "'bounding': ['CAP_SYS_ADMIN', 'CAP_KILL', 'CAP_CHOWN'], 'effective': ['CAP_NET_RAW']",
	          "cap bounding CAP_SYS_ADMIN added", "cap effective CAP_NET_RAW added",
	          "cap ambient CAP_KILL removed");
	DIFF_CASE("{'type': 'pid'}, {'type': 'network'}", "{'type': 'pid'}",
	          "namespace network removed");
	DIFF_CASE("{'type': 'network'}", "{'type': 'network', 'path': '/proc/1/ns/net'}",
	          "namespace network: path - -> /proc/1/ns/net");
	DIFF_CASE("{'type': 'pid'}, ", "{'type': 'user'}, {'type': 'ipc'}, ",
	          "namespace ipc added", "namespace pid removed", "namespace user added");
}
END_TEST

START_TEST(test_diff_mounts_and_hooks)
{
	/* The secret mount repointed, remounted writable, retyped. */
	DIFF_CASE("'source': '/srv/a'", "'source': '/srv/b'",
	          "mount /run/secrets: source /srv/a -> /srv/b");
	DIFF_CASE("['rbind', 'ro']", "['rbind', 'rw']", "mount /run/secrets: options rbind,ro -> rbind,rw");
	DIFF_CASE("['rbind', 'ro']", "[]", "mount /run/secrets: options rbind,ro -> -");
	DIFF_CASE("'type': 'bind', 'source': '/srv/a'", "'type': 'tmpfs', 'source': '/srv/b'",
	          "mount /run/secrets: type bind -> tmpfs", "mount /run/secrets: source /srv/a -> /srv/b");
	DIFF_CASE("'mounts': [", "'mounts': [{'destination': '/host', 'source': '/'}, ",
	          "mount /host added"); /* the others keep their order */
	DIFF_CASE("'options': ['rbind', 'ro']}]",
	          "'options': ['rbind', 'ro']}, {'destination': '/proc', 'type': 'proc'}]",
	          "mount /proc added");
	DIFF_CASE("{'destination': '/proc', 'type': 'proc', 'source': 'proc'}, ", "",
	          "mount /proc removed");
	DIFF_CASE("{'destination': '/proc', 'type': 'proc', 'source': 'proc'}, "
	          "{'destination': '/run/secrets', 'type': 'bind', 'source': '/srv/a',"
	          "  'options': ['rbind', 'ro']}",
	          "{'destination': '/run/secrets', 'type': 'bind', 'source': '/srv/a',"
	          "  'options': ['rbind', 'ro']}, "
	          "{'destination': '/proc', 'type': 'proc', 'source': 'proc'}",
	          "mount order changed");
	/* Hooks as whole entries. */
	DIFF_CASE("'prestart': [{'path': '/bin/net', 'args': ['net', 'up']}]",
	          "'prestart': [{'path': '/bin/net', 'args': ['net', 'up']}],"
	          " 'createRuntime': [{'path': '/tmp/evil', 'args': ['evil', 'x y']}]",
	          "hook createRuntime /tmp/evil evil x\\x20y added");
	DIFF_CASE("'prestart': [{'path': '/bin/net', 'args': ['net', 'up']}]", "'prestart': []",
	          "hook prestart /bin/net net up removed");
	DIFF_CASE("'args': ['net', 'up']", "'args': ['net', 'down']",
	          "hook prestart /bin/net net up removed", "hook prestart /bin/net net down added");
	DIFF_CASE("'prestart': [{'path': '/bin/net', 'args': ['net', 'up']}]",
	          "'prestart': [{'path': '/bin/log'}, {'path': '/bin/net', 'args': ['net', 'up']}]",
	          "hook prestart /bin/log added");
	DIFF_CASE("'prestart': [{'path': '/bin/net', 'args': ['net', 'up']}]",
	          "'poststop': [{'path': '/bin/net', 'args': ['net', 'up']}]",
	          "hook prestart /bin/net net up removed", "hook poststop /bin/net net up added");

	static const char two_hooks[] =
		"{'hooks': {'prestart': [{'path': '/a'}, {'path': '/b'}, {'path': '/a'}]}}";
	static const char *const swapped[] = {"hook order changed"};
	expect_diff(two_hooks, "{'hooks': {'prestart': [{'path': '/b'}, {'path': '/a'}, {'path': '/a'}]}}",
	            swapped, 1);
	static const char *const one_less[] = {"hook prestart /a removed"};
	expect_diff(two_hooks, "{'hooks': {'prestart': [{'path': '/a'}, {'path': '/b'}]}}", one_less, 1);
}
END_TEST

START_TEST(test_diff_bounds_and_secrets)
{
	struct dg_container *a = must_from_json(base_json);
	struct dg_container *s = must_from_json(
		"{'process': {'args': ['x', 'y', 'z'], 'env': ['TOKEN=hunter2-longer-secret']}}");
	struct dg_reason reasons[4];
	size_t n = 99, all;

	/* Count them all first, then cap at 2: the rest of the array stays untouched. */
	struct dg_reason many[DG_VERDICT_MAX_REASONS];
	ck_assert_int_eq(dg_container_diff(a, s, many, DG_VERDICT_MAX_REASONS, &all), DG_OK);
	ck_assert_uint_gt(all, 4);
	memset(reasons, 'Q', sizeof reasons);
	ck_assert_int_eq(dg_container_diff(a, s, reasons, 2, &n), DG_OK);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(reasons[0].detail, many[0].detail);
	ck_assert_str_eq(reasons[1].detail, many[1].detail);
	ck_assert_int_eq(reasons[2].code[0], 'Q');
	ck_assert_int_eq(dg_container_diff(a, s, NULL, 0, &n), DG_OK);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(dg_container_diff(a, s, NULL, 1, &n), DG_ERR_INVAL);
	for (size_t i = 0; i < all; i++) {
		ck_assert_ptr_null(strstr(many[i].detail, "hunter2"));
		ck_assert_ptr_null(strstr(many[i].detail, "s3cret"));
	}
	ck_assert_str_eq(many[0].detail, "workload: web -> -");
	dg_container_free(a);
	dg_container_free(s);

	/* Long values are cut in reasons, with "..". */
	char json[5000];
	snprintf(json, sizeof json, "{'process': {'cwd': '/%0300d'}}", 0);
	a = must_from_json("{}");
	s = must_from_json(json);
	ck_assert_int_eq(dg_container_diff(a, s, reasons, 4, &n), DG_OK);
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(strlen(reasons[0].detail), strlen("cwd: - -> ") + 127);
	ck_assert_str_eq(reasons[0].detail + strlen(reasons[0].detail) - 3, "0..");
	dg_container_free(a);
	dg_container_free(s);
}
END_TEST

static Suite *
container_suite(void)
{
	Suite *s = suite_create("container");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_runc_spec_matches_python);
	tcase_add_test(tc, test_sorting_and_escaping);
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_json_errors);
	tcase_add_test(tc, test_json_depth);
	tcase_add_test(tc, test_json_bounds);
	tcase_add_test(tc, test_parse_accepts_canonical);
	tcase_add_test(tc, test_parse_rejects);
	tcase_add_test(tc, test_parse_bounds);
	tcase_add_test(tc, test_random_round_trips);
	tcase_add_test(tc, test_diff_identical);
	tcase_add_test(tc, test_diff_fields);
	tcase_add_test(tc, test_diff_mounts_and_hooks);
	tcase_add_test(tc, test_diff_bounds_and_secrets);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(container_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
