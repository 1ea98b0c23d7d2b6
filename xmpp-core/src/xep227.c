/* xep227.c - XEP-0227 sources read (xep227.h). Each file is mapped and scanned whole by expat
 * first: well-formed, no DTD, the format's elements where they belong, and where each <user/>
 * starts and ends, with its host and the namespaces declared around it. Only then is each
 * user's text parsed into a tree by common/'s stream parser (behind a made-up stream header
 * declaring those namespaces: its limits and checks are the ones clients meet) and turned into
 * an import document (xep227_doc.c). */
#include "xep227.h"

#include <dirent.h>
#include <errno.h>
#include <expat.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cm/buf.h"
#include "cm/crypto.h"
#include "cm/err.h"
#include "cm/xml.h"

#define NS_XINCLUDE "http://www.w3.org/2001/XInclude"
#define SEP         '\x01'
#define MAX_DEPTH   256     /* of the scan; a user's own tree keeps the parser's limit */
#define USER_NODES  8000000 /* elements and texts of one account's tree */
#define USER_DEPTH  64      /* nesting under <user/> */
#define MAX_FILES   1024    /* includes of one file */
#define FEED_CHUNK  (1u << 20)

enum root { ROOT_NONE, ROOT_SERVER, ROOT_HOST };

/* A <user/> found by the scan. */
struct user_at {
	size_t start, end; /* bytes of the file */
	char *host;        /* owned */
	char *header;      /* the stream header to parse it behind (owned) */
};

/* One file, mapped (or borrowed, for a buffer), and what the scan found in it. */
struct file {
	char *path; /* owned; the name given for a buffer */
	const char *data;
	size_t len;
	bool mapped;
	enum root root;
	struct user_at *users;
	size_t nusers;
	char **includes; /* hrefs, owned */
	size_t nincludes;
};

struct nsdecl {
	char *prefix, *uri; /* owned; prefix NULL: the default namespace */
	int depth;
};

/* The scan of one file. */
struct scan {
	struct file *f;
	XML_Parser xp;
	const char *only_host;
	int depth, host_depth, user_depth;
	char *host; /* owned */
	struct nsdecl *ns;
	size_t nns;
	int rc;
	bool peek, peeked; /* peek: stop at the root of a <host/> file */
	char *err;
	size_t errlen;
};

static void file_free(struct file *f)
{
	for (size_t i = 0; i < f->nusers; i++) {
		free(f->users[i].host);
		free(f->users[i].header);
	}
	for (size_t i = 0; i < f->nincludes; i++)
		free(f->includes[i]);
	free(f->users);
	free(f->includes);
	if (f->mapped)
		munmap((void *)f->data, f->len);
	free(f->path);
	memset(f, 0, sizeof(*f));
}

/* --- the scan --------------------------------------------------------------------------------
 */

/* Stop the scan with rc and a message naming the file and the line. Returns rc. */
static int fail(struct scan *s, int rc, const char *what, const char *detail)
{
	if (s->rc)
		return rc;
	s->rc = rc;
	cm_errf(s->err, s->errlen, rc, "%s: line %lu: %s%s%s", s->f->path,
	        (unsigned long)XML_GetCurrentLineNumber(s->xp), what, detail ? " " : "",
	        detail ? detail : "");
	XML_StopParser(s->xp, XML_FALSE);
	return rc;
}

/* name as expat gives it ("uri<SEP>local", or "local") split; *ns "" when none. */
static const char *local_name(const char *name, const char **ns, size_t *nslen)
{
	const char *sep = strchr(name, SEP);

	*ns = sep ? name : "";
	*nslen = sep ? (size_t)(sep - name) : 0;
	return sep ? sep + 1 : name;
}

static bool is(const char *name, const char *ns, const char *local)
{
	const char *n;
	size_t nl;
	const char *l = local_name(name, &n, &nl);

	return strlen(ns) == nl && !strncmp(n, ns, nl) && !strcmp(l, local);
}

static const char *attr(const char **atts, const char *name)
{
	for (; atts && atts[0]; atts += 2)
		if (!strcmp(atts[0], name))
			return atts[1];
	return NULL;
}

/* The stream header a user found at depth is parsed behind: the stream's own prefix and the
 * innermost declaration of each prefix made around it. */
static char *header_for(struct scan *s, int depth)
{
	struct cm_buf b;
	int rc;

	cm_buf_init(&b, 0);
	rc = cm_buf_puts(&b, "<stream:stream xmlns:stream='" CM_XML_NS_STREAM "'");
	for (size_t i = s->nns; i-- > 0 && !rc;) {
		const struct nsdecl *d = &s->ns[i];
		bool shadowed = d->depth >= depth || (d->prefix && !strcmp(d->prefix, "stream"));

		for (size_t k = i + 1; k < s->nns && !shadowed; k++)
			shadowed =
			    s->ns[k].depth < depth &&
			    (d->prefix ? s->ns[k].prefix && !strcmp(s->ns[k].prefix, d->prefix)
			               : !s->ns[k].prefix);
		if (shadowed)
			continue;
		rc = cm_buf_puts(&b, d->prefix ? " xmlns:" : " xmlns");
		rc = rc ? rc : d->prefix ? cm_buf_puts(&b, d->prefix) : 0;
		rc = rc ? rc : cm_buf_puts(&b, "='");
		rc = rc ? rc : cm_xml_escape_attr(&b, d->uri, strlen(d->uri));
		rc = rc ? rc : cm_buf_puts(&b, "'");
	}
	rc = rc ? rc : cm_buf_puts(&b, ">");
	if (rc) {
		cm_buf_free(&b);
		return NULL;
	}
	return cm_buf_steal(&b);
}

static int add_user(struct scan *s)
{
	struct user_at *v = realloc(s->f->users, (s->f->nusers + 1) * sizeof(*v));
	struct user_at *u;

	if (!v)
		return -ENOMEM;
	s->f->users = v;
	u = &v[s->f->nusers];
	memset(u, 0, sizeof(*u));
	u->start = (size_t)XML_GetCurrentByteIndex(s->xp);
	u->host = strdup(s->host);
	u->header = header_for(s, s->depth);
	if (!u->host || !u->header) {
		free(u->host);
		free(u->header);
		return -ENOMEM;
	}
	s->f->nusers++;
	return 0;
}

static int add_include(struct scan *s, const char *href)
{
	char **v;

	if (!href || !*href || strchr(href, '/') || href[0] == '.')
		return -EINVAL;
	if (s->f->nincludes >= MAX_FILES)
		return -E2BIG;
	if (!(v = realloc(s->f->includes, (s->f->nincludes + 1) * sizeof(*v))))
		return -ENOMEM;
	s->f->includes = v;
	if (!(v[s->f->nincludes] = strdup(href)))
		return -ENOMEM;
	s->f->nincludes++;
	return 0;
}

/* An element starts at depth d: it must be one of the format's where it stands. */
static int start(struct scan *s, int d, const char *name, const char **atts)
{
	int rc = 0;

	if (s->rc)
		return s->rc;
	if (d > MAX_DEPTH)
		return fail(s, -EINVAL, "elements nested too deep", NULL);
	if (s->user_depth)
		return 0; /* inside a user: the stream parser checks it */
	if (d == 1 && is(name, XC_XEP227_NS, "server-data")) {
		s->f->root = ROOT_SERVER;
	} else if ((d == 1 || (d == 2 && s->f->root == ROOT_SERVER)) &&
	           is(name, XC_XEP227_NS, "host")) {
		const char *jid = attr(atts, "jid");

		if (d == 1)
			s->f->root = ROOT_HOST;
		if (d == 1 && s->peek) {
			s->peeked = true;
			XML_StopParser(s->xp, XML_FALSE);
			return 0;
		}
		if (!jid || !*jid)
			return fail(s, -EINVAL, "a <host/> without a jid", NULL);
		free(s->host);
		if (!(s->host = strdup(jid)))
			return fail(s, -ENOMEM, "out of memory", NULL);
		s->host_depth = d;
	} else if (d == 2 && s->f->root == ROOT_SERVER && is(name, NS_XINCLUDE, "include")) {
		rc = add_include(s, attr(atts, "href"));
		if (rc == -ENOMEM)
			return fail(s, rc, "out of memory", NULL);
		if (rc)
			return fail(
			    s, -EINVAL,
			    "<xi:include/> must name a file beside this one (href without a "
			    "'/', not starting with a '.'; 1024 at most):",
			    attr(atts, "href") ? attr(atts, "href") : "(no href)");
	} else if (s->host_depth && d == s->host_depth + 1 && is(name, XC_XEP227_NS, "user")) {
		s->user_depth = d;
		if ((!s->only_host || !strcmp(s->only_host, s->host)) && add_user(s) != 0)
			return fail(s, -ENOMEM, "out of memory", NULL);
	} else {
		const char *ns;
		size_t nslen;
		const char *local = local_name(name, &ns, &nslen);
		char what[CM_ERR_MAX];

		if (d == 1 && (!strcmp(local, "server-data") || !strcmp(local, "host")))
			snprintf(what, sizeof(what),
			         "not XEP-0227: <%s/> must be in the namespace " XC_XEP227_NS
			         ", not in '%.*s'",
			         local, (int)(nslen > 200 ? 200 : nslen), ns);
		else
			snprintf(what, sizeof(what), "%s %.200s",
			         d == 1 ? "not XEP-0227: the root must be <server-data "
			                  "xmlns='" XC_XEP227_NS "'/> or <host/>, not"
			                : "an element XEP-0227 has no place for here:",
			         local);
		return fail(s, -EINVAL, what, NULL);
	}
	return 0;
}

static void on_start(void *arg, const char *name, const char **atts)
{
	struct scan *s = arg;
	int d = ++s->depth;

	(void)start(s, d, name, atts);
}

static void on_end(void *arg, const char *name)
{
	struct scan *s = arg;

	(void)name;
	if (!s->rc && s->user_depth == s->depth) {
		if (s->f->nusers && (!s->only_host || !strcmp(s->only_host, s->host)))
			s->f->users[s->f->nusers - 1].end = (size_t)XML_GetCurrentByteIndex(s->xp) +
			                                    (size_t)XML_GetCurrentByteCount(s->xp);
		s->user_depth = 0;
	}
	if (s->depth == s->host_depth)
		s->host_depth = 0;
	s->depth--;
}

static void on_ns_start(void *arg, const char *prefix, const char *uri)
{
	struct scan *s = arg;
	struct nsdecl *v;

	if (s->rc)
		return;
	if (!(v = realloc(s->ns, (s->nns + 1) * sizeof(*v)))) {
		(void)fail(s, -ENOMEM, "out of memory", NULL);
		return;
	}
	s->ns = v;
	v[s->nns].depth = s->depth + 1;
	v[s->nns].prefix = prefix ? strdup(prefix) : NULL;
	v[s->nns].uri = strdup(uri ? uri : "");
	if ((prefix && !v[s->nns].prefix) || !v[s->nns].uri) {
		free(v[s->nns].prefix);
		free(v[s->nns].uri);
		(void)fail(s, -ENOMEM, "out of memory", NULL);
		return;
	}
	s->nns++;
}

static void on_ns_end(void *arg, const char *prefix)
{
	struct scan *s = arg;

	(void)prefix;
	if (s->nns && s->ns[s->nns - 1].depth > s->depth) {
		s->nns--;
		free(s->ns[s->nns].prefix);
		free(s->ns[s->nns].uri);
	}
}

static void on_doctype(void *arg, const char *name, const char *sysid, const char *pubid,
                       int has_internal)
{
	(void)name, (void)sysid, (void)pubid, (void)has_internal;
	(void)fail(arg, -EINVAL, "a document type declaration (DTD) is refused", NULL);
}

/* Scan f whole (peek: only the root of a <host/> file); only_host NULL: every host's users. 0
 * or a negative errno with err. */
static int scan_file(struct file *f, const char *only_host, bool peek, char *err, size_t errlen)
{
	struct scan s = {
	    .f = f, .only_host = only_host, .peek = peek, .err = err, .errlen = errlen};
	size_t off = 0;
	int rc;

	if (f->len == 0)
		return cm_errf(err, errlen, -EINVAL, "%s: empty: not XEP-0227", f->path);
	if (!(s.xp = XML_ParserCreateNS("UTF-8", SEP)))
		return -ENOMEM;
	XML_SetUserData(s.xp, &s);
	XML_SetElementHandler(s.xp, on_start, on_end);
	XML_SetNamespaceDeclHandler(s.xp, on_ns_start, on_ns_end);
	XML_SetStartDoctypeDeclHandler(s.xp, on_doctype);
	XML_SetParamEntityParsing(s.xp, XML_PARAM_ENTITY_PARSING_NEVER);
	do {
		size_t n = f->len - off > INT_MAX / 2 ? INT_MAX / 2 : f->len - off;
		bool last = off + n == f->len;

		if (XML_Parse(s.xp, f->data + off, (int)n, last) != XML_STATUS_OK && !s.rc &&
		    !s.peeked) {
			s.rc = -EINVAL;
			cm_errf(err, errlen, -EINVAL, "%s: line %lu, column %lu: %s", f->path,
			        (unsigned long)XML_GetCurrentLineNumber(s.xp),
			        (unsigned long)XML_GetCurrentColumnNumber(s.xp),
			        XML_ErrorString(XML_GetErrorCode(s.xp)));
		}
		off += n;
	} while (!s.rc && !s.peeked && off < f->len);
	rc = s.rc;
	XML_ParserFree(s.xp);
	while (s.nns--) {
		free(s.ns[s.nns].prefix);
		free(s.ns[s.nns].uri);
	}
	free(s.ns);
	free(s.host);
	return rc;
}

/* --- files -------------------------------------------------------------------------------- */

static int map_file(struct file *f, const char *path, char *err, size_t errlen)
{
	struct stat st;
	void *m;
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc;

	memset(f, 0, sizeof(*f));
	if (!(f->path = strdup(path))) {
		if (fd >= 0)
			close(fd);
		return -ENOMEM;
	}
	if (fd < 0 || fstat(fd, &st) != 0) {
		rc = -errno;
		if (fd >= 0)
			close(fd);
		return cm_errf(err, errlen, rc, "%s: %s", path, strerror(-rc));
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return cm_errf(err, errlen, -EINVAL, "%s: not a file", path);
	}
	f->len = (size_t)st.st_size;
	if (f->len) {
		m = mmap(NULL, f->len, PROT_READ, MAP_PRIVATE, fd, 0);
		if (m == MAP_FAILED) {
			rc = -errno;
			close(fd);
			return cm_errf(err, errlen, rc, "%s: %s", path, strerror(-rc));
		}
		f->data = m;
		f->mapped = true;
	}
	close(fd);
	return 0;
}

/* What a source holds: its files (the first one given, then those it includes). */
struct source {
	struct file *files;
	size_t n;
};

static void source_free(struct source *src)
{
	for (size_t i = 0; i < src->n; i++)
		file_free(&src->files[i]);
	free(src->files);
	src->files = NULL;
	src->n = 0;
}

static struct file *source_add(struct source *src)
{
	struct file *v = realloc(src->files, (src->n + 1) * sizeof(*v));

	if (!v)
		return NULL;
	src->files = v;
	memset(&v[src->n], 0, sizeof(*v));
	return &v[src->n++];
}

/* The files f includes, from dir, each scanned (a <host/> file each). */
static int includes(struct source *src, size_t fi, const char *dir, const char *only_host,
                    char *err, size_t errlen)
{
	for (size_t i = 0; i < src->files[fi].nincludes; i++) {
		const char *href = src->files[fi].includes[i];
		struct file *f;
		char *path = NULL;
		int rc;

		if (!dir)
			return cm_errf(err, errlen, -EINVAL,
			               "%s: <xi:include href='%s'/>: not here", src->files[fi].path,
			               href);
		if (asprintf(&path, "%s/%s", dir, href) < 0)
			return -ENOMEM;
		if (!(f = source_add(src))) {
			free(path);
			return -ENOMEM;
		}
		rc = map_file(f, path, err, errlen);
		free(path);
		rc = rc ? rc : scan_file(f, only_host, false, err, errlen);
		if (!rc && f->root != ROOT_HOST)
			rc = cm_errf(err, errlen, -EINVAL,
			             "%s: an included file must hold one <host/>", f->path);
		if (rc)
			return rc;
	}
	return 0;
}

/* --- accounts ----------------------------------------------------------------------------- */

/* What the stream parser hands over: the <user/> tree. */
static int on_open(void *arg, const struct cm_xml_node *header)
{
	(void)arg, (void)header;
	return 0;
}

static int on_tree(void *arg, struct cm_xml_node *tree)
{
	struct cm_xml_node **out = arg;

	if (*out) {
		cm_xml_node_free(tree);
		return -EINVAL; /* cannot be: the scan found one element */
	}
	*out = tree;
	return 0;
}

static int on_close(void *arg)
{
	(void)arg;
	return 0;
}

/* The k-th user of host (its len bytes at text, to parse behind header) read, converted and
 * handed to fn. */
static int one_user(const char *file, const char *text, size_t len, const char *header,
                    const char *host, size_t k, xc_xep227_fn fn, void *arg)
{
	struct cm_xml_node *tree = NULL;
	struct cm_xml_parser_cfg pc = {.max_stanza = len + strlen(header) + 1,
	                               .max_depth = USER_DEPTH,
	                               .max_nodes = USER_NODES,
	                               .open_cb = on_open,
	                               .stanza_cb = on_tree,
	                               .close_cb = on_close,
	                               .arg = &tree};
	struct xc_import_notes notes = {0};
	struct xc_xep227_account a = {.file = file, .notes = &notes};
	struct cm_xml_parser *p;
	char err[CM_ERR_MAX] = "", *doc = NULL, *jid = NULL;
	const char *name;
	int rc;

	if ((rc = cm_xml_parser_alloc(&p, &pc)) != 0)
		return rc;
	rc = cm_xml_parser_feed(p, header, strlen(header));
	for (size_t off = 0; !rc && off < len; off += FEED_CHUNK)
		rc = cm_xml_parser_feed(p, text + off,
		                        len - off > FEED_CHUNK ? FEED_CHUNK : len - off);
	if (rc == -EBADMSG) {
		const char *detail = NULL, *cond = cm_xml_parser_error(p, &detail);

		cm_errf(err, sizeof(err), -EINVAL, "its XML is refused: %s (%s)",
		        detail ? detail : "", cond ? cond : "");
		rc = -EINVAL;
	}
	cm_xml_parser_free(p);
	if (!rc && !tree)
		rc = cm_errf(err, sizeof(err), -EINVAL, "its XML is refused: incomplete");
	name = tree ? cm_xml_attr(tree, "name") : NULL;
	if (name ? asprintf(&jid, "%s@%s", name, host) < 0
	         : asprintf(&jid, "(account %zu of %s)", k + 1, host) < 0)
		rc = -ENOMEM;
	if (!rc)
		rc = xc_xep227_doc(host, tree, &doc, &notes, err, sizeof(err));
	if (rc == 0 || rc == -EINVAL) {
		a.jid = jid;
		a.doc = doc;
		a.err = err;
		a.archive = tree ? cm_xml_child(tree, "archive", XC_XEP227_NS "#mam") : NULL;
		rc = fn(arg, &a);
	}
	if (doc)
		cm_crypto_wipe(doc, strlen(doc));
	free(doc);
	free(jid);
	xc_import_notes_free(&notes);
	cm_xml_node_free(tree);
	return rc;
}

/* Each account of the scanned files to fn. */
static int hand_on(const struct source *src, xc_xep227_fn fn, void *arg)
{
	int rc = 0;

	for (size_t i = 0; i < src->n && !rc; i++) {
		const struct file *f = &src->files[i];

		for (size_t u = 0; u < f->nusers && !rc; u++)
			rc = one_user(f->path, f->data + f->users[u].start,
			              f->users[u].end - f->users[u].start, f->users[u].header,
			              f->users[u].host, u, fn, arg);
	}
	return rc;
}

/* src's first file (set up) scanned with its includes from dir, then handed on. */
static int read_source(struct source *src, const char *dir, const char *only_host, xc_xep227_fn fn,
                       void *arg, char *err, size_t errlen)
{
	int rc = scan_file(&src->files[0], only_host, false, err, errlen);

	rc = rc ? rc : includes(src, 0, dir, only_host, err, errlen);
	return rc ? rc : hand_on(src, fn, arg);
}

int xc_xep227_read_buf(const char *data, size_t len, const char *name, const char *host,
                       xc_xep227_fn fn, void *arg, char *err, size_t errlen)
{
	struct source src = {0};
	struct file *f = source_add(&src);
	int rc;

	if (!f || !(f->path = strdup(name))) {
		source_free(&src);
		return -ENOMEM;
	}
	f->data = data;
	f->len = len;
	rc = read_source(&src, NULL, host, fn, arg, err, errlen);
	source_free(&src);
	return rc;
}

/* One file, its includes beside it. */
static int read_file(const char *path, const char *host, xc_xep227_fn fn, void *arg, char *err,
                     size_t errlen)
{
	struct source src = {0};
	struct file *f = source_add(&src);
	char *dir = strdup(path), *slash;
	int rc;

	if (!f || !dir) {
		free(dir);
		source_free(&src);
		return -ENOMEM;
	}
	slash = strrchr(dir, '/');
	if (!slash)
		strcpy(dir, ".");
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	rc = map_file(f, path, err, errlen);
	rc = rc ? rc : read_source(&src, dir, host, fn, arg, err, errlen);
	source_free(&src);
	free(dir);
	return rc;
}

static int xml_name(const struct dirent *e)
{
	size_t n = strlen(e->d_name);

	return e->d_name[0] != '.' && n > 4 && !strcmp(e->d_name + n - 4, ".xml");
}

/* A directory: first each file's root (a <server-data/> file is scanned whole, for the files it
 * includes; that scan is expat's alone and is made again when the file is read), so that
 * nothing is handed on from a directory with a file that is not XEP-0227; then, in name order,
 * the <server-data/> files and the <host/> files none of them includes. */
static int read_dir(const char *dir, const char *host, xc_xep227_fn fn, void *arg, char *err,
                    size_t errlen)
{
	struct dirent **names = NULL;
	enum root *roots = NULL;
	char **included = NULL;
	size_t nincl = 0;
	int n = scandir(dir, &names, xml_name, alphasort), rc = 0;

	if (n < 0)
		return cm_errf(err, errlen, -errno, "%s: %s", dir, strerror(errno));
	if (n == 0)
		rc = cm_errf(err, errlen, -ENOENT, "%s: no *.xml file", dir);
	if (!rc && !(roots = calloc((size_t)n, sizeof(*roots))))
		rc = -ENOMEM;
	for (int i = 0; i < n && !rc; i++) {
		struct file f;
		char *path = NULL;

		if (asprintf(&path, "%s/%s", dir, names[i]->d_name) < 0) {
			rc = -ENOMEM;
			break;
		}
		rc = map_file(&f, path, err, errlen);
		free(path);
		rc = rc ? rc : scan_file(&f, host, true, err, errlen);
		roots[i] = f.root;
		for (size_t k = 0; !rc && k < f.nincludes; k++) {
			char **v = realloc(included, (nincl + 1) * sizeof(*v));

			if (!v || !(v[nincl] = strdup(f.includes[k]))) {
				rc = -ENOMEM;
				if (v)
					included = v;
				break;
			}
			included = v;
			nincl++;
		}
		file_free(&f);
	}
	for (int i = 0; i < n && !rc; i++) {
		bool skip = false;
		char *path = NULL;

		for (size_t k = 0; k < nincl && roots[i] == ROOT_HOST && !skip; k++)
			skip = !strcmp(included[k], names[i]->d_name);
		if (skip)
			continue;
		if (asprintf(&path, "%s/%s", dir, names[i]->d_name) < 0) {
			rc = -ENOMEM;
			break;
		}
		rc = read_file(path, host, fn, arg, err, errlen);
		free(path);
	}
	for (size_t k = 0; k < nincl; k++)
		free(included[k]);
	free(included);
	free(roots);
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return rc;
}

int xc_xep227_read(const char *path, const char *host, xc_xep227_fn fn, void *arg, char *err,
                   size_t errlen)
{
	struct stat st;

	if (stat(path, &st) != 0)
		return cm_errf(err, errlen, -errno, "%s: %s", path, strerror(errno));
	return S_ISDIR(st.st_mode) ? read_dir(path, host, fn, arg, err, errlen)
	                           : read_file(path, host, fn, arg, err, errlen);
}
