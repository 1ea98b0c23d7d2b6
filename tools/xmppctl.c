/* xmppctl.c - manage xmpp-core's accounts and sessions through its admin API (xmppctl(8)).
 *
 * It talks to the running server over HTTP on the admin port (loopback by default), with the
 * bearer token from the api_token file; it never opens xmpp-core's database itself
 * (import-prosody reads Prosody's, read-only; import-xep227 export files). Passwords are read from
 * a file or standard input, never from the command line.
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "cm/buf.h"
#include "cm/crypto.h"
#include "cm/err.h"
#include "xmpp-core/src/prosody.h"
#include "xmpp-core/src/xep227.h"

#define DEFAULT_URL   "http://127.0.0.1:5280"
#define DEFAULT_TOKEN "/etc/xmpp-core/api.token"
#define LINE_MAX_PW   1024

enum {
	EXIT_REFUSED = 1, /* the server said no */
	EXIT_USAGE = 2,
	EXIT_UNREACHABLE = 3,
};

struct ctl {
	const char *url;
	const char *token_file;
	const char *password_file;
	const char *redirect; /* kick: see-other-host */
	char token[512];
	bool json;
	bool dry_run;        /* import-prosody: read and check, send nothing */
	size_t max_stanza;   /* import-*: bytes of an archived message (c2s.max_stanza) */
	bool max_stanza_set; /* given with --max-stanza, else asked of the server */
	bool ejabberd;       /* export-xep227: SCRAM values as ejabberd reads them */
	const char *subject; /* announce: NULL or the subject */
	const char *host;    /* announce: NULL (every host) or the one told */
	long timeout;        /* seconds a request may take (0: 60) */
};

static void usage(FILE *f)
{
	fprintf(f,
	        "Usage: xmppctl [OPTIONS] COMMAND [ARGS]\n"
	        "Manage the accounts and sessions of a running xmpp-core.\n"
	        "\n"
	        "Commands:\n"
	        "  register JID      create an account (password from --password-file or stdin)\n"
	        "  unregister JID    delete an account, its roster and offline messages; its\n"
	        "                    sessions are closed\n"
	        "  passwd JID        set a new password (from --password-file or stdin)\n"
	        "  accounts [HOST]   list the accounts of HOST (needed when several are served)\n"
	        "  sessions          list the connected sessions\n"
	        "  kick JID          close the sessions of JID (bare) or that one (full)\n"
	        "  stats             accounts per host (and those without keys for every\n"
	        "                    SCRAM hash: imported, not yet logged in with PLAIN) and\n"
	        "                    sessions\n"
	        "  fast-revoke JID [AGENT-ID]\n"
	        "                    revoke the FAST tokens (XEP-0484) of an account, or of one\n"
	        "                    of its clients: its next login needs the password\n"
	        "  export-xep227 DIR [HOST]\n"
	        "                    write each account (of HOST, or all) as an XEP-0227 file\n"
	        "                    DIR/JID.xml, for import-xep227, ejabberd or Prosody\n"
	        "  backup [NAME]     a copy of the database, made while the server runs, in\n"
	        "                    storage.backup_dir (NAME.db, or one with the time)\n"
	        "  announce TEXT     send TEXT as a headline message to every session connected\n"
	        "                    now (of --host, or of every host), from the server\n"
	        "  upload-delete URL|SLOT\n"
	        "                    remove an uploaded file (XEP-0363) at once, by its link\n"
	        "                    or its slot id\n"
	        "  import-prosody FILE [HOST]\n"
	        "                    bring the accounts of a Prosody SQLite store over, with\n"
	        "                    their passwords (SCRAM-SHA-1 keys), rosters, block lists,\n"
	        "                    offline messages, PEP, vCards and message archives\n"
	        "                    (mod_mam); accounts that exist already are left as they\n"
	        "                    are, archive included (see xmppctl(8))\n"
	        "  import-xep227 PATH [HOST]\n"
	        "                    the same from XEP-0227 files (ejabberd's export_piefxis,\n"
	        "                    Prosody's xep0227 store): a file, or a directory of them\n"
	        "\n"
	        "Options:\n"
	        "  -u, --url URL            the admin port (default: $XMPPCTL_URL or " DEFAULT_URL
	        ")\n"
	        "  -t, --token-file FILE    the api_token file (default: $XMPPCTL_TOKEN_FILE or\n"
	        "                           " DEFAULT_TOKEN ")\n"
	        "  -p, --password-file FILE read the password from FILE (first line)\n"
	        "      --json               print the server's JSON answer as it is\n"
	        "  -n, --dry-run            import-*: read and check, send nothing\n"
	        "      --max-stanza BYTES   import-*: archived messages over BYTES are left\n"
	        "                           behind (default: the server's c2s.max_stanza, as it\n"
	        "                           says; 256k in a dry run)\n"
	        "  -E, --ejabberd           export-xep227: SCRAM salts and keys as ejabberd reads\n"
	        "                           them (base64 twice)\n"
	        "  -s, --subject TEXT       announce: the message's subject\n"
	        "      --host HOST          announce: only the sessions of HOST\n"
	        "  -h, --help               print this help and exit\n"
	        "  -V, --version            print the version and exit\n"
	        "\n"
	        "Exit status: 0 done, 1 refused by the server, 2 usage, 3 server unreachable.\n"
	        "See xmppctl(8).\n");
}

/* The first line of f, without its newline, into buf. 0, or -1 when there is none. */
static int read_line(FILE *f, char *buf, size_t size)
{
	size_t n;

	if (!fgets(buf, (int)size, f))
		return -1;
	n = strcspn(buf, "\r\n");
	if (n == size - 1 && buf[n] == '\0') {
		cm_crypto_wipe(buf, size);
		return -1; /* too long: refuse rather than cut */
	}
	buf[n] = '\0';
	return 0;
}

static int load_token(struct ctl *c)
{
	FILE *f = fopen(c->token_file, "r");
	int r;

	if (!f) {
		fprintf(stderr, "xmppctl: cannot read the token file %s: %s\n", c->token_file,
		        strerror(errno));
		return -1;
	}
	r = read_line(f, c->token, sizeof(c->token));
	fclose(f);
	if (r || !c->token[0]) {
		fprintf(stderr, "xmppctl: %s holds no token on its first line\n", c->token_file);
		return -1;
	}
	return 0;
}

/* The password, from --password-file or standard input (without echo on a terminal). */
static int read_password(const struct ctl *c, char *pw, size_t size)
{
	struct termios old, quiet;
	bool tty = false;
	FILE *f = stdin;
	int r;

	if (c->password_file) {
		f = fopen(c->password_file, "r");
		if (!f) {
			fprintf(stderr, "xmppctl: cannot read %s: %s\n", c->password_file,
			        strerror(errno));
			return -1;
		}
	} else if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &old) == 0) {
		tty = true;
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
		fprintf(stderr, "Password: ");
	}
	r = read_line(f, pw, size);
	if (tty) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
		fputc('\n', stderr);
	}
	if (f != stdin)
		fclose(f);
	if (r || !pw[0]) {
		fprintf(stderr, "xmppctl: no password given (or longer than %d bytes)\n",
		        LINE_MAX_PW - 2);
		return -1;
	}
	return 0;
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
	return cm_buf_append(arg, data, size * n) == 0 ? size * n : 0;
}

/* Percent-encode a JID for a path segment. */
static int path_escape(struct cm_buf *b, const char *s)
{
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		int r = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		                (ch >= '0' && ch <= '9') || strchr("-._~@", ch)
		            ? cm_buf_append(b, s, 1)
		            : cm_buf_printf(b, "%%%02X", ch);

		if (r)
			return r;
	}
	return 0;
}

/* One request; *answer gets the parsed JSON body (NULL when empty). Returns the HTTP status, or
 * -1 when the server could not be reached (said on stderr). */
static long call(const struct ctl *c, const char *method, const char *path, const char *body,
                 json_t **answer)
{
	CURL *h = curl_easy_init();
	struct curl_slist *hdr = NULL;
	struct cm_buf url, auth, out;
	long status = -1;
	CURLcode rc;

	*answer = NULL;
	cm_buf_init(&url, 0);
	cm_buf_init(&auth, 0);
	cm_buf_init(&out, 1 << 24);
	if (!h || cm_buf_printf(&url, "%s/api/v1/%s", c->url, path) ||
	    cm_buf_printf(&auth, "Authorization: Bearer %s", c->token)) {
		fprintf(stderr, "xmppctl: out of memory\n");
		goto done;
	}
	hdr = curl_slist_append(hdr, auth.data);
	if (body)
		hdr = curl_slist_append(hdr, "Content-Type: application/json");
	curl_easy_setopt(h, CURLOPT_URL, url.data);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &out);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, c->timeout ? c->timeout : 60L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	if (body) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	}
	rc = curl_easy_perform(h);
	if (rc != CURLE_OK) {
		fprintf(stderr,
		        "xmppctl: %s: %s (is xmpp-core running, with admin.listen there?)\n",
		        c->url, curl_easy_strerror(rc));
		goto done;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	if (out.len)
		*answer = json_loadb(out.data, out.len, 0, NULL);
	if (out.len && !*answer) {
		fprintf(stderr, "xmppctl: the server's answer (HTTP %ld) is not JSON: %.200s\n",
		        status, out.data);
		if (status < 400)
			status = -1; /* an error keeps its status: the text said why */
	}
done:
	curl_slist_free_all(hdr);
	curl_easy_cleanup(h);
	cm_crypto_wipe(auth.data, auth.len);
	cm_buf_free(&url);
	cm_buf_free(&auth);
	cm_buf_free(&out);
	return status;
}

/* Say what the server refused; the exit status. */
static int refused(long status, json_t *answer)
{
	const char *why = json_string_value(json_object_get(answer, "error"));

	if (status < 0)
		return EXIT_UNREACHABLE;
	fprintf(stderr, "xmppctl: %s (HTTP %ld)\n", why ? why : "refused", status);
	return EXIT_REFUSED;
}

static int print_json(json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);

	if (s)
		puts(s);
	free(s);
	return 0;
}

/* register and passwd */
static int set_password(struct ctl *c, const char *jid, bool create)
{
	char pw[LINE_MAX_PW];
	struct cm_buf path;
	json_t *req, *answer;
	char *body;
	long st;
	int r = 0;

	if (read_password(c, pw, sizeof(pw)) != 0)
		return EXIT_USAGE;
	req = create ? json_pack("{ss ss}", "jid", jid, "password", pw)
	             : json_pack("{ss}", "password", pw);
	cm_crypto_wipe(pw, sizeof(pw));
	body = req ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	cm_buf_init(&path, 0);
	if (!body || (create ? cm_buf_puts(&path, "accounts")
	                     : (cm_buf_puts(&path, "accounts/") || path_escape(&path, jid) ||
	                        cm_buf_puts(&path, "/password")))) {
		fprintf(stderr, "xmppctl: out of memory\n");
		free(body);
		cm_buf_free(&path);
		return EXIT_REFUSED;
	}
	st = call(c, create ? "POST" : "PUT", path.data, body, &answer);
	cm_crypto_wipe(body, strlen(body));
	free(body);
	cm_buf_free(&path);
	if (st == 201 || st == 204)
		printf(create ? "%s registered\n" : "password of %s changed\n", jid);
	else
		r = refused(st, answer);
	json_decref(answer);
	return r;
}

/* upload-delete: DELETE on the slot of an upload's link (".../upload/SLOT/NAME"), or of arg
 * itself. */
static int upload_delete(struct ctl *c, const char *arg)
{
	const char *p = strstr(arg, "/upload/");
	char slot[32];
	struct cm_buf path;
	json_t *answer;
	size_t n;
	long st;
	int r = 0;

	p = p ? p + 8 : arg;
	n = strcspn(p, "/?#");
	if (n >= sizeof(slot)) {
		fprintf(stderr, "xmppctl: no slot id in \"%s\"\n", arg);
		return EXIT_USAGE;
	}
	memcpy(slot, p, n);
	slot[n] = '\0';
	cm_buf_init(&path, 0);
	if (cm_buf_puts(&path, "uploads/") || path_escape(&path, slot)) {
		cm_buf_free(&path);
		return EXIT_REFUSED;
	}
	st = call(c, "DELETE", path.data, NULL, &answer);
	cm_buf_free(&path);
	if (st == 204)
		printf("upload %s removed\n", slot);
	else
		r = refused(st, answer);
	json_decref(answer);
	return r;
}

/* unregister and kick: DELETE on a JID */
static int delete_jid(struct ctl *c, const char *what, const char *jid)
{
	struct cm_buf path;
	json_t *answer;
	long st;
	int r = 0;

	cm_buf_init(&path, 0);
	if (cm_buf_printf(&path, "%s/", what) || path_escape(&path, jid) ||
	    (c->redirect && strcmp(what, "sessions") == 0 &&
	     (cm_buf_puts(&path, "?see_other_host=") || path_escape(&path, c->redirect)))) {
		cm_buf_free(&path);
		return EXIT_REFUSED;
	}
	st = call(c, "DELETE", path.data, NULL, &answer);
	cm_buf_free(&path);
	if (st == 204)
		printf("%s unregistered\n", jid);
	else if (st == 200 && c->json)
		print_json(answer);
	else if (st == 200)
		printf("%lld session(s) of %s closed\n",
		       (long long)json_integer_value(json_object_get(answer, "kicked")), jid);
	else
		r = refused(st, answer);
	json_decref(answer);
	return r;
}

/* fast-revoke: DELETE fast-tokens/JID[?agent=ID] */
static int fast_revoke(struct ctl *c, const char *jid, const char *agent)
{
	struct cm_buf path;
	json_t *answer;
	long st;
	int r = 0;

	cm_buf_init(&path, 0);
	if (cm_buf_puts(&path, "fast-tokens/") || path_escape(&path, jid) ||
	    (agent && (cm_buf_puts(&path, "?agent=") || path_escape(&path, agent)))) {
		cm_buf_free(&path);
		return EXIT_REFUSED;
	}
	st = call(c, "DELETE", path.data, NULL, &answer);
	cm_buf_free(&path);
	if (st == 200 && c->json)
		print_json(answer);
	else if (st == 200)
		printf("%lld FAST token(s) of %s%s%s revoked\n",
		       (long long)json_integer_value(json_object_get(answer, "revoked")), jid,
		       agent ? ", client " : "", agent ? agent : "");
	else
		r = refused(st, answer);
	json_decref(answer);
	return r;
}

/* announce TEXT: a headline message to every session bound now. */
static int announce(struct ctl *c, const char *text)
{
	json_t *answer, *body = json_pack("{ss}", "body", text);
	char *req = NULL;
	long st;
	int r = 0;

	if (body && c->subject && json_object_set_new(body, "subject", json_string(c->subject)))
		json_decref(body), body = NULL;
	if (body && c->host && json_object_set_new(body, "host", json_string(c->host)))
		json_decref(body), body = NULL;
	req = body ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	if (!req) {
		fprintf(stderr, "xmppctl: the text must be UTF-8 (and memory was short?)\n");
		return EXIT_USAGE;
	}
	st = call(c, "POST", "announce", req, &answer);
	free(req);
	if (st == 200 && c->json)
		print_json(answer);
	else if (st == 200)
		printf("announced to %lld session(s)\n",
		       (long long)json_integer_value(json_object_get(answer, "sent")));
	else
		r = refused(st, answer);
	json_decref(answer);
	return r;
}

/* backup [NAME]: a copy of the database, written by the server beside its writes. */
static int backup(struct ctl *c, const char *name)
{
	json_t *answer, *body = name ? json_pack("{ss}", "name", name) : json_object();
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	long st;
	int r = 0;

	json_decref(body);
	if (!text) {
		fprintf(stderr, "xmppctl: out of memory\n");
		return EXIT_REFUSED;
	}
	c->timeout = 3600; /* the copy of a large database takes a while */
	st = call(c, "POST", "backup", text, &answer);
	free(text);
	if (st == 201 && c->json)
		print_json(answer);
	else if (st == 201)
		printf("backup written: %s (%lld bytes in %lld ms)\n",
		       json_string_value(json_object_get(answer, "path")),
		       (long long)json_integer_value(json_object_get(answer, "bytes")),
		       (long long)json_integer_value(json_object_get(answer, "ms")));
	else
		r = refused(st, answer);
	json_decref(answer);
	return r;
}

/* import-prosody's tally */
struct tally {
	size_t done, there, failed, sha1_only, sha256_only, notes;
	size_t archived; /* messages of archives (mod_mam) sent, or that would be */
	bool unreachable;
};

/* "N contact(s), ..." of a document (dry run) or of the server's answer, which count alike. */
static void counts(const char *jid, const char *what, json_t *j, bool answer)
{
	static const char *const keys[] = {"roster", "requests", "blocklist", "offline"};
	json_t *priv = json_object_get(j, "private");
	long long n[5] = {0}, np = answer ? (long long)json_integer_value(priv)
	                                  : (long long)json_array_size(priv);
	char more[64] = "";

	for (int i = 0; i < 4; i++) {
		json_t *v = json_object_get(j, keys[i]);

		n[i] = answer ? (long long)json_integer_value(v) : (long long)json_array_size(v);
	}
	if (answer)
		n[4] = (long long)json_integer_value(json_object_get(j, "pep_items"));
	for (size_t i = 0; !answer && i < json_array_size(json_object_get(j, "pep")); i++)
		n[4] += (long long)json_array_size(
		    json_object_get(json_array_get(json_object_get(j, "pep"), i), "items"));
	if (np)
		snprintf(more, sizeof(more), ", %lld private XML element(s)", np);
	printf("%s\t%s: %lld contact(s), %lld request(s), %lld blocked, %lld offline message(s), "
	       "%lld PEP item(s)%s%s\n",
	       jid, what, n[0], n[1], n[2], n[3], n[4],
	       (answer ? json_is_true(json_object_get(j, "vcard")) : !!json_object_get(j, "vcard"))
	           ? ", a vCard"
	           : "",
	       more);
}

/* One account's document (NULL: it could not be made, why says why) sent unless a dry run,
 * and told with its notes. true when the import route made the account (in a dry run: when the
 * document was made). */
static bool send_doc(struct ctl *c, const char *jid, const char *text, const char *why,
                     const struct xc_import_notes *notes, struct tally *t)
{
	json_t *answer = NULL, *doc = NULL;
	bool made = false;
	long st = 0;

	if (!text) {
		printf("%s\tnot imported: %s\n", jid, why);
		t->failed++;
	} else {
		doc = json_loads(text, 0, NULL);
		if (!c->dry_run)
			st = call(c, "POST", "import", text, &answer);
		if (c->dry_run || st == 201) {
			counts(jid, c->dry_run ? "would be imported" : "imported",
			       c->dry_run ? doc : answer, !c->dry_run);
			t->done++;
			made = true;
			if (!json_object_get(doc, "password")) {
				json_t *k = json_object_get(doc, "scram");

				t->sha1_only += !json_object_get(k, "SCRAM-SHA-256");
				t->sha256_only += !json_object_get(k, "SCRAM-SHA-1");
			}
		} else if (st == 409) {
			printf("%s\talready there: left as it is\n", jid);
			t->there++;
		} else if (st < 0) {
			t->unreachable = true; /* said on stderr: the next accounts are not tried */
			t->failed++;
		} else if (st == 413) {
			printf("%s\tnot imported: its document (%zu bytes) is over what the admin "
			       "port reads\n",
			       jid, strlen(text));
			t->failed++;
		} else {
			const char *e = json_string_value(json_object_get(answer, "error"));

			printf("%s\tnot imported: %s (HTTP %ld)\n", jid, e ? e : "refused", st);
			t->failed++;
		}
	}
	for (size_t i = 0; i < notes->n; i++)
		printf("  note: %s\n", notes->v[i]);
	t->notes += notes->n;
	json_decref(doc);
	json_decref(answer);
	return made;
}

/* import-prosody: the requests of one account's archive (xc_prosody_mam_cb) */
struct archive_run {
	struct ctl *c;
	long status;    /* of the request refused (-1: the server could not be reached) */
	json_t *answer; /* its answer */
};

static int send_archive(void *arg, const char *body, size_t len, size_t n)
{
	struct archive_run *run = arg;
	json_t *answer = NULL;
	long st;

	(void)len;
	if (run->c->dry_run)
		return 0;
	st = call(run->c, "POST", "archive", body, &answer);
	if (st == 201 && json_integer_value(json_object_get(answer, "archived")) == (json_int_t)n) {
		json_decref(answer);
		return 0;
	}
	run->status = st == 201 ? 0 : st; /* 0: it said it archived another count */
	run->answer = answer;
	return -ECANCELED;
}

/* Where an account's archive is read from: feed(src, m, err, errlen) hands every message to m
 * (the last request included); *skipped counts those it could not read as messages. */
struct archive_src {
	int (*feed)(void *src, struct xc_prosody_mam *m, size_t *skipped, char *err, size_t errlen);
	void *src;
};

/* One account's archive, right after the import route made the account (the archive route
 * appends: never for an account that was there): sent in requests, or counted in a dry run,
 * and told on a line of its own with its notes. A refused request fails the account. */
static void import_archive(struct ctl *c, const struct archive_src *src, const char *jid,
                           struct tally *t)
{
	const struct xc_prosody_mam_limits lim = {c->max_stanza, XC_PROSODY_MAM_MAX_MESSAGES,
	                                          XC_PROSODY_MAM_MAX_BODY};
	struct archive_run run = {.c = c};
	struct xc_import_notes notes = {0};
	struct xc_prosody_mam *m = NULL;
	char err[CM_ERR_MAX] = "out of memory";
	size_t sent = 0, left = 0, skipped = 0;
	int rc = xc_prosody_mam_alloc(&m, jid, &lim, send_archive, &run);

	if (rc == -EINVAL)
		snprintf(err, sizeof(err), "not an account's JID");
	rc = rc ? rc : src->feed(src->src, m, &skipped, err, sizeof(err));
	if (skipped &&
	    xc_import_note(&notes,
	                   "%s: the message archive: %zu item(s) left behind: no message, or no "
	                   "time it was archived at",
	                   jid, skipped) != 0)
		rc = rc ? rc : -ENOMEM;
	xc_prosody_mam_counts(m, &sent, &left);
	t->archived += sent;
	if (!rc && (sent || left || skipped)) {
		printf("%s\tarchive: %zu message(s)%s\n", jid, sent,
		       c->dry_run ? " to import" : "");
	} else if (rc == -ECANCELED && run.status == 409) {
		/* the operator turned the archive off: nothing of it is wanted, the account is */
		printf("%s\tarchive left behind: the server's archive is off (archive.enabled)\n",
		       jid);
		t->archived -= sent;
	} else if (rc) {
		const char *why = json_string_value(json_object_get(run.answer, "error"));

		if (rc != -ECANCELED)
			printf("%s\tarchive not imported: %s\n", jid, err);
		else if (run.status < 0)
			printf("%s\tarchive not imported: the server could not be reached\n", jid);
		else if (run.status == 0)
			printf("%s\tarchive not imported: the server archived another count than "
			       "was sent\n",
			       jid);
		else
			printf("%s\tarchive not imported: %s (HTTP %ld)\n", jid,
			       why ? why : "refused", run.status);
		if (!c->dry_run)
			printf("%s\tthe account was imported with %zu of its archived messages: "
			       "unregister it and import it again to bring the whole archive\n",
			       jid, sent);
		t->unreachable = rc == -ECANCELED && run.status < 0;
		t->done--;
		t->failed++;
	}
	if (m && xc_prosody_mam_notes(m, &notes) != 0)
		printf("  note: out of memory for the notes of the archive\n");
	for (size_t i = 0; i < notes.n; i++)
		printf("  note: %s\n", notes.v[i]);
	t->notes += notes.n;
	xc_import_notes_free(&notes);
	xc_prosody_mam_free(m);
	json_decref(run.answer);
}

/* import-prosody's archive source: mod_mam's rows of user@host */
struct prosody_src {
	struct xc_prosody *p;
	const char *host, *user;
};

static int prosody_feed(void *arg, struct xc_prosody_mam *m, size_t *skipped, char *err,
                        size_t errlen)
{
	struct prosody_src *s = arg;

	*skipped = 0; /* (the cutter counts what it leaves behind) */
	return xc_prosody_mam_read(s->p, s->host, s->user, m, err, errlen);
}

/* One Prosody account: read, sent, told; then its archive. */
static void import_one(struct ctl *c, struct xc_prosody *p, const char *host, const char *user,
                       struct tally *t)
{
	struct xc_import_notes notes = {0};
	char err[CM_ERR_MAX], jid[2048];
	char *text = NULL;
	bool made;

	snprintf(jid, sizeof(jid), "%s@%s", user, host);
	if (xc_prosody_account(p, host, user, &text, &notes, err, sizeof(err)) != 0)
		text = NULL;
	made = send_doc(c, jid, text, err, &notes, t);
	if (text)
		cm_crypto_wipe(text, strlen(text));
	xc_import_notes_free(&notes);
	free(text);
	if (made) {
		struct prosody_src ps = {p, host, user};
		const struct archive_src src = {prosody_feed, &ps};

		import_archive(c, &src, jid, t);
	}
}

/* The last lines of an import, and its exit status. */
static int summary(const struct ctl *c, const struct tally *t, const char *sha1_why)
{
	printf("%zu %s, %zu already there, %zu not imported; %zu note(s)\n", t->done,
	       c->dry_run ? "to import" : "imported", t->there, t->failed, t->notes);
	if (t->archived)
		printf("%zu archived message(s) %s\n", t->archived,
		       c->dry_run ? "to import" : "imported");
	if (t->sha1_only)
		printf("%zu account(s) came with SCRAM-SHA-1 keys only (%s): until each has logged "
		       "in once with PLAIN (or had its password changed), set\n"
		       "  auth: { disabled_mechanisms: [SCRAM-SHA-256, SCRAM-SHA-256-PLUS] }\n"
		       "so that clients choose SCRAM-SHA-1; `xmppctl stats` counts the accounts "
		       "still without SCRAM-SHA-256 keys.\n",
		       t->sha1_only, sha1_why);
	if (t->sha256_only)
		printf("%zu account(s) came with SCRAM-SHA-256 keys only: they log in with "
		       "SCRAM-SHA-256, or with PLAIN, which stores their SCRAM-SHA-1 keys%s\n",
		       t->sha256_only,
		       t->sha1_only ? "; while SCRAM-SHA-256 is disabled for the accounts above, "
		                      "PLAIN is all they have"
		                    : "");
	return t->failed ? EXIT_REFUSED : 0;
}

/* import-xep227: each account as read */
struct xep227_run {
	struct ctl *c;
	struct tally t;
};

/* import-xep227's archive source: the account's <archive/> */
static int xep227_feed(void *arg, struct xc_prosody_mam *m, size_t *skipped, char *err,
                       size_t errlen)
{
	(void)err, (void)errlen;
	return xc_xep227_archive(arg, m, skipped);
}

static int xep227_account(void *arg, const struct xc_xep227_account *a)
{
	struct xep227_run *run = arg;

	if (send_doc(run->c, a->jid, a->doc, a->err, a->notes, &run->t) && a->archive) {
		const struct archive_src src = {xep227_feed, (void *)a->archive};

		import_archive(run->c, &src, a->jid, &run->t);
	}
	return run->t.unreachable ? -EHOSTUNREACH : 0;
}

/* import-xep227: the accounts of an XEP-0227 file or directory (of host, or all) sent to the
 * import route. Exit status 1 when one or more could not be imported. */
static int import_xep227(struct ctl *c, const char *path, const char *host)
{
	struct xep227_run run = {.c = c};
	char err[CM_ERR_MAX];
	int rc = xc_xep227_read(path, host, xep227_account, &run, err, sizeof(err));

	if (run.t.unreachable)
		return EXIT_UNREACHABLE;
	if (rc) {
		fprintf(stderr, "xmppctl: %s\n", rc == -ENOMEM ? "out of memory" : err);
		return EXIT_USAGE;
	}
	if (run.t.done + run.t.there + run.t.failed == 0)
		fprintf(stderr, "xmppctl: no accounts%s%s in %s\n", host ? " of " : "",
		        host ? host : "", path);
	return summary(c, &run.t, "the file holds no others");
}

/* All of len bytes to fd, then to disk. 0 or -1 with errno. */
static int write_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			errno = n < 0 ? errno : EIO;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return fsync(fd);
}

/* export-xep227: one account's file, DIR/JID.xml, made here (never over one that exists). */
/* export-xep227: jid's archive, page by page, into doc's "archive" (the messages with their
 * ids and times, oldest first). The HTTP status that stopped it (200 when all came; -1: the
 * server could not be reached), why in *why (owned by the caller, may be NULL). */
static long fetch_archive(struct ctl *c, const char *jid, json_t *doc, json_t **why)
{
	json_t *all = json_array(), *page = NULL;
	const char *after = NULL;
	struct cm_buf path;
	long st = 200;

	cm_buf_init(&path, 0);
	*why = NULL;
	for (bool done = false; all && !done && st == 200;) {
		const json_t *msgs;

		path.len = 0;
		if (cm_buf_puts(&path, "archive/") || path_escape(&path, jid) ||
		    (after && cm_buf_printf(&path, "?after=%s", after))) {
			st = 500;
			break;
		}
		json_decref(page);
		page = NULL;
		st = call(c, "GET", path.data, NULL, &page);
		msgs = json_object_get(page, "messages");
		if (st != 200 || !json_is_array(msgs))
			break;
		json_array_extend(all, (json_t *)msgs);
		done = json_is_true(json_object_get(page, "complete")) || !json_array_size(msgs);
		after = json_string_value(
		    json_object_get(json_array_get(msgs, json_array_size(msgs) - 1), "id"));
	}
	if (st == 200 && json_array_size(all) && json_object_set(doc, "archive", all))
		st = 500;
	if (st != 200)
		*why = json_incref(json_object_get(page, "error"));
	json_decref(page);
	json_decref(all);
	cm_buf_free(&path);
	return st;
}

static int export_one(struct ctl *c, const char *dir, const char *jid, struct tally *t)
{
	struct cm_buf path, xml;
	json_t *answer = NULL;
	char err[CM_ERR_MAX], *doc = NULL;
	long st;
	int fd = -1, rc = 0;

	cm_buf_init(&path, 0);
	cm_buf_init(&xml, 0);
	if (cm_buf_puts(&path, "export/") || path_escape(&path, jid)) {
		cm_buf_free(&path);
		return -ENOMEM;
	}
	st = call(c, "GET", path.data, NULL, &answer);
	if (st == 200 && !c->ejabberd) {
		json_t *why = NULL;
		long ast = fetch_archive(c, jid, answer, &why);

		if (ast != 200) {
			printf("%s\tnot exported: its archive: %s (HTTP %ld)\n", jid,
			       json_string_value(why) ? json_string_value(why) : "refused", ast);
			st = ast < 0 ? ast : 0; /* told */
		}
		json_decref(why);
	}
	if (st < 0) {
		t->unreachable = true;
		rc = -EHOSTUNREACH;
	} else if (st == 0) {
		t->failed++;
	} else if (st != 200) {
		const char *why = json_string_value(json_object_get(answer, "error"));

		printf("%s\tnot exported: %s (HTTP %ld)\n", jid, why ? why : "refused", st);
		t->failed++;
	} else if (!(doc = json_dumps(answer, JSON_COMPACT)) ||
	           xc_xep227_file(doc, c->ejabberd ? XC_XEP227_EJABBERD : 0, &xml, err,
	                          sizeof(err)) != 0) {
		printf("%s\tnot exported: %s\n", jid, doc ? err : "out of memory");
		t->failed++;
	} else {
		path.len = 0;
		if (cm_buf_printf(&path, "%s/%s.xml", dir, jid) == 0)
			fd = open(path.data, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0 || write_all(fd, xml.data, xml.len) != 0) {
			printf("%s\tnot exported: %s: %s\n", jid, path.data, strerror(errno));
			t->failed++;
		} else {
			counts(jid, "exported", answer, false);
			if (json_array_size(json_object_get(answer, "archive")))
				printf("%s\tarchive: %zu message(s)\n", jid,
				       json_array_size(json_object_get(answer, "archive")));
			t->done++;
		}
		if (fd >= 0)
			close(fd);
	}
	if (doc)
		cm_crypto_wipe(doc, strlen(doc));
	if (xml.data)
		cm_crypto_wipe(xml.data, xml.len);
	free(doc);
	cm_buf_free(&xml);
	cm_buf_free(&path);
	json_decref(answer);
	return rc;
}

/* export-xep227 DIR [HOST]: every account of HOST (or of every host served) written as an
 * XEP-0227 file of its own in DIR (made, mode 0700, when missing), the way Prosody lays them
 * out: what import-xep227, ejabberd's import_piefxis and prosody-migrator read. */
static int export_xep227(struct ctl *c, const char *dir, const char *host)
{
	json_t *stats = NULL, *hosts, *list = NULL;
	struct tally t = {0};
	const char *h;
	json_t *v;
	long st;

	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		fprintf(stderr, "xmppctl: %s: %s\n", dir, strerror(errno));
		return EXIT_USAGE;
	}
	if (host) {
		hosts = json_pack("{si}", host, 1);
	} else {
		if ((st = call(c, "GET", "stats", NULL, &stats)) != 200)
			return st < 0 ? EXIT_UNREACHABLE : refused(st, stats);
		hosts = json_incref(json_object_get(stats, "accounts"));
	}
	json_object_foreach(hosts, h, v)
	{
		struct cm_buf path;

		cm_buf_init(&path, 0);
		if (cm_buf_puts(&path, "accounts?host=") || path_escape(&path, h)) {
			cm_buf_free(&path);
			break;
		}
		st = call(c, "GET", path.data, NULL, &list);
		cm_buf_free(&path);
		if (st != 200) {
			int r = st < 0 ? EXIT_UNREACHABLE : refused(st, list);

			json_decref(list);
			json_decref(hosts);
			json_decref(stats);
			return r;
		}
		for (size_t i = 0;
		     i < json_array_size(json_object_get(list, "accounts")) && !t.unreachable; i++)
			(void)export_one(
			    c, dir,
			    json_string_value(json_array_get(json_object_get(list, "accounts"), i)),
			    &t);
		json_decref(list);
		list = NULL;
		if (t.unreachable)
			break;
	}
	json_decref(hosts);
	json_decref(stats);
	if (t.unreachable)
		return EXIT_UNREACHABLE;
	printf("%zu exported, %zu not exported, into %s\n", t.done, t.failed, dir);
	return t.failed ? EXIT_REFUSED : 0;
}

/* import-prosody: each account of each host (or of host) read from Prosody's store and sent to
 * the import route. Exit status 1 when one or more could not be imported. */
static int import_prosody(struct ctl *c, const char *file, const char *host)
{
	struct tally t = {0};
	struct xc_prosody *p;
	char err[CM_ERR_MAX];
	char **hosts = NULL, **users = NULL;
	size_t nhosts = 0, nusers = 0;

	if (xc_prosody_open(&p, file, err, sizeof(err)) != 0) {
		fprintf(stderr, "xmppctl: %s\n", err);
		return EXIT_USAGE;
	}
	if (host) {
		hosts = calloc(1, sizeof(*hosts));
		if (hosts && (hosts[0] = strdup(host)) != NULL)
			nhosts = 1;
	} else if (xc_prosody_hosts(p, &hosts, &nhosts, err, sizeof(err)) != 0) {
		fprintf(stderr, "xmppctl: %s\n", err);
		t.failed++;
	}
	if (host && !nhosts) {
		fprintf(stderr, "xmppctl: out of memory\n");
		t.failed++;
	}
	for (size_t h = 0; h < nhosts && !t.unreachable; h++) {
		if (xc_prosody_users(p, hosts[h], &users, &nusers, err, sizeof(err)) != 0) {
			fprintf(stderr, "xmppctl: %s\n", err);
			t.failed++;
			continue;
		}
		if (nusers == 0)
			fprintf(stderr, "xmppctl: %s has no accounts in %s\n", hosts[h], file);
		for (size_t u = 0; u < nusers && !t.unreachable; u++)
			import_one(c, p, hosts[h], users[u], &t);
		xc_prosody_list_free(users, nusers);
	}
	xc_prosody_list_free(hosts, nhosts);
	xc_prosody_close(p);
	if (t.unreachable)
		return EXIT_UNREACHABLE;
	return summary(c, &t, "Prosody keeps no others");
}

static int get(struct ctl *c, const char *path, const char *cmd)
{
	json_t *answer, *v;
	const char *k;
	size_t i;
	long st = call(c, "GET", path, NULL, &answer);
	int r = 0;

	if (st != 200) {
		r = refused(st, answer);
	} else if (c->json) {
		print_json(answer);
	} else if (strcmp(cmd, "accounts") == 0) {
		json_array_foreach(json_object_get(answer, "accounts"), i, v)
		    puts(json_string_value(v));
	} else if (strcmp(cmd, "sessions") == 0) {
		json_array_foreach(json_object_get(answer, "sessions"), i, v)
		{
			time_t since = (time_t)json_integer_value(json_object_get(v, "since"));
			char when[32];

			strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime(&since));
			printf("%s\t%s\t%s\t%s\n", json_string_value(json_object_get(v, "jid")),
			       json_string_value(json_object_get(v, "address")),
			       json_is_true(json_object_get(v, "tls")) ? "tls" : "plain", when);
		}
	} else {
		printf("sessions\t%lld\n",
		       (long long)json_integer_value(json_object_get(answer, "sessions")));
		json_object_foreach(json_object_get(answer, "accounts"), k, v)
		    printf("accounts\t%s\t%lld\n", k, (long long)json_integer_value(v));
		json_object_foreach(json_object_get(answer, "accounts_missing_keys"), k, v) printf(
		    "accounts_missing_keys\t%s\t%lld\n", k, (long long)json_integer_value(v));
	}
	json_decref(answer);
	return r;
}

/* import-*: the server's c2s.max_stanza (its limits route), which archived messages are cut
 * to, unless --max-stanza said. A server that does not say keeps the default. */
static void learn_limits(struct ctl *c)
{
	json_t *answer = NULL, *v;

	if (c->max_stanza_set || c->dry_run)
		return;
	if (call(c, "GET", "limits", NULL, &answer) == 200 &&
	    json_is_integer(v = json_object_get(answer, "max_stanza")) &&
	    json_integer_value(v) >= 4096)
		c->max_stanza = (size_t)json_integer_value(v);
	json_decref(answer);
}

/* A size as the configuration writes them ("262144", "256k", "1m") within what c2s.max_stanza
 * takes. 0 or -1. */
static int parse_size(const char *s, size_t *out)
{
	char *end = NULL;
	unsigned long long v;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || v > (16ULL << 20))
		return -1;
	if (*end == 'k' || *end == 'K')
		v <<= 10, end++;
	else if (*end == 'm' || *end == 'M')
		v <<= 20, end++;
	if (*end || v < 4096 || v > (16ULL << 20))
		return -1;
	*out = (size_t)v;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"url", required_argument, NULL, 'u'},
	    {"token-file", required_argument, NULL, 't'},
	    {"password-file", required_argument, NULL, 'p'},
	    {"json", no_argument, NULL, 'j'},
	    {"see-other-host", required_argument, NULL, 'r'},
	    {"dry-run", no_argument, NULL, 'n'},
	    {"max-stanza", required_argument, NULL, 'M'},
	    {"ejabberd", no_argument, NULL, 'E'},
	    {"subject", required_argument, NULL, 's'},
	    {"host", required_argument, NULL, 'H'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	struct ctl c = {
	    .url = getenv("XMPPCTL_URL") ? getenv("XMPPCTL_URL") : DEFAULT_URL,
	    .token_file =
	        getenv("XMPPCTL_TOKEN_FILE") ? getenv("XMPPCTL_TOKEN_FILE") : DEFAULT_TOKEN,
	    .max_stanza = 256 << 10,
	};
	const char *cmd, *arg;
	struct cm_buf path;
	int o, r, nargs;

	while ((o = getopt_long(argc, argv, "u:t:p:nEs:hV", opts, NULL)) != -1) {
		switch (o) {
		case 'u':
			c.url = optarg;
			break;
		case 't':
			c.token_file = optarg;
			break;
		case 'p':
			c.password_file = optarg;
			break;
		case 'j':
			c.json = true;
			break;
		case 'r':
			c.redirect = optarg;
			break;
		case 'n':
			c.dry_run = true;
			break;
		case 'M':
			c.max_stanza_set = true;
			if (parse_size(optarg, &c.max_stanza) != 0) {
				fprintf(stderr,
				        "xmppctl: --max-stanza takes bytes from 4096 to 16m (a "
				        "number, k or m after it), not \"%s\"\n",
				        optarg);
				return EXIT_USAGE;
			}
			break;
		case 'E':
			c.ejabberd = true;
			break;
		case 's':
			c.subject = optarg;
			break;
		case 'H':
			c.host = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("xmppctl %s\n", SUITE_VERSION);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	cmd = argv[optind];
	arg = optind + 1 < argc ? argv[optind + 1] : NULL;
	nargs = argc - optind - 1;
	if ((nargs > 1 &&
	     !(nargs == 2 && (!strcmp(cmd, "fast-revoke") || !strcmp(cmd, "import-prosody") ||
	                      !strcmp(cmd, "import-xep227") || !strcmp(cmd, "export-xep227")))) ||
	    (!arg &&
	     (!strcmp(cmd, "register") || !strcmp(cmd, "unregister") || !strcmp(cmd, "passwd") ||
	      !strcmp(cmd, "kick") || !strcmp(cmd, "fast-revoke") || !strcmp(cmd, "announce") ||
	      !strcmp(cmd, "upload-delete") || !strcmp(cmd, "import-prosody") ||
	      !strcmp(cmd, "import-xep227"))) ||
	    (arg && (!strcmp(cmd, "sessions") || !strcmp(cmd, "stats")))) {
		fprintf(stderr, "xmppctl: wrong arguments for %s (see --help)\n", cmd);
		return EXIT_USAGE;
	}
	if (!strcmp(cmd, "import-prosody") && c.dry_run)
		return import_prosody(&c, arg, nargs == 2 ? argv[optind + 2] : NULL);
	if (!strcmp(cmd, "import-xep227") && c.dry_run)
		return import_xep227(&c, arg, nargs == 2 ? argv[optind + 2] : NULL);
	if (load_token(&c) != 0)
		return EXIT_USAGE;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return EXIT_UNREACHABLE;
	if (!strcmp(cmd, "register") || !strcmp(cmd, "passwd")) {
		r = set_password(&c, arg, cmd[0] == 'r');
	} else if (!strcmp(cmd, "unregister")) {
		r = delete_jid(&c, "accounts", arg);
	} else if (!strcmp(cmd, "kick")) {
		r = delete_jid(&c, "sessions", arg);
	} else if (!strcmp(cmd, "fast-revoke")) {
		r = fast_revoke(&c, arg, nargs == 2 ? argv[optind + 2] : NULL);
	} else if (!strcmp(cmd, "import-prosody")) {
		learn_limits(&c);
		r = import_prosody(&c, arg, nargs == 2 ? argv[optind + 2] : NULL);
	} else if (!strcmp(cmd, "export-xep227")) {
		r = export_xep227(&c, arg, nargs == 2 ? argv[optind + 2] : NULL);
	} else if (!strcmp(cmd, "backup")) {
		r = backup(&c, arg);
	} else if (!strcmp(cmd, "announce")) {
		r = announce(&c, arg);
	} else if (!strcmp(cmd, "upload-delete")) {
		r = upload_delete(&c, arg);
	} else if (!strcmp(cmd, "import-xep227")) {
		learn_limits(&c);
		r = import_xep227(&c, arg, nargs == 2 ? argv[optind + 2] : NULL);
	} else if (!strcmp(cmd, "accounts")) {
		cm_buf_init(&path, 0);
		r = cm_buf_puts(&path, "accounts");
		if (!r && arg)
			r = cm_buf_puts(&path, "?host=") || path_escape(&path, arg);
		r = r ? EXIT_REFUSED : get(&c, path.data, cmd);
		cm_buf_free(&path);
	} else if (!strcmp(cmd, "sessions") || !strcmp(cmd, "stats")) {
		r = get(&c, cmd, cmd);
	} else {
		fprintf(stderr, "xmppctl: unknown command \"%s\" (see --help)\n", cmd);
		r = EXIT_USAGE;
	}
	cm_crypto_wipe(c.token, sizeof(c.token));
	curl_global_cleanup();
	return r;
}
