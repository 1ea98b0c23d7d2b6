/* upload.h - HTTP File Upload (XEP-0363): how a phone sends a photo in a chat. The client asks
 * the upload service (upload.HOST, listed in the server's disco#items) for a slot for a file of
 * a name, size and type; the service answers a PUT URL and a GET URL; the client PUTs the bytes
 * there over HTTPS and sends the GET URL in its message, which the recipients fetch.
 *
 * - Slots (upload.c, on the shards): a local user's request is checked (a file name, a size up
 *   to upload.max_file_size, a media type), counted against its quota (upload.daily_quota bytes
 *   of slots in 24 hours, in the store) and the disk's free space (upload.min_free_space), and
 *   answered with the URLs. The PUT URL carries the slot's expiry and an HMAC-SHA256 of the slot
 *   id, name, size, type and expiry under a key made at start and known only to this process:
 *   the HTTP side needs no state to trust a PUT, and a slot cannot be stretched to another size,
 *   type or file.
 * - The listener (upload_http.c, on the main loop): HTTPS on upload.listen takes one PUT per
 *   slot, checked from its head before its body is read (the signature, the expiry,
 *   Content-Length equal to the size, Content-Type to the type; a second PUT is 409), and serves
 *   GET and HEAD, one byte range at most, with the type, "nosniff" and a sandboxing
 *   Content-Security-Policy. Files go upload.expire_after after they were written; an operator
 *   removes one at once with xc_upload_remove().
 * - The files on disk (upload_files.c): plain blocking calls for libuv's thread pool.
 * - Names, URLs, signatures and ranges (upload_slot.c): plain functions, unit-tested and fuzzed.
 */
#ifndef XC_UPLOAD_H
#define XC_UPLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cm/xml.h"
#include "jid.h"

#define XC_NS_UPLOAD       "urn:xmpp:http:upload:0"
#define XC_UPLOAD_SLOT_LEN 24  /* characters of a slot id: base64url of 18 random bytes */
#define XC_UPLOAD_NAME_MAX 255 /* bytes of a file name */
#define XC_UPLOAD_TYPE_MAX 127 /* bytes of a media type */
#define XC_UPLOAD_SIG_LEN  43  /* characters of a signature: base64url of 32 bytes, no padding */
#define XC_UPLOAD_KEY_LEN  32  /* bytes of the signing key */
#define XC_UPLOAD_PREFIX   "/upload/" /* the HTTP path files live under */

struct cm_buf;
struct cm_daemon;
struct cm_metrics;
struct xc_server;
struct xc_shard;

/* --- names, URLs and signatures (upload_slot.c) ---------------------------------------------- */

/* Why name cannot be a slot's file name (a constant), or NULL when it can: 1 to
 * XC_UPLOAD_NAME_MAX bytes of UTF-8 (cm/utf8.h), no control character (U+0000..U+001F,
 * U+007F), no '/' or '\', neither "." nor "..". */
const char *xc_upload_name_problem(const char *name);

/* Whether type is a media type a slot may carry: TYPE "/" SUBTYPE, each 1 to 63 characters of
 * RFC 6838's restricted-name (letters, digits, and ! # $ & - ^ _ . + after the first, which is
 * a letter or digit), at most XC_UPLOAD_TYPE_MAX bytes in all, no parameters. */
bool xc_upload_type_ok(const char *type);

/* A slot request (<request xmlns='urn:xmpp:http:upload:0' filename='' size=''
 * content-type=''/>, XEP-0363 4) checked: 0 with *name and *type (borrowed from req; *type NULL
 * when none is given) and *size (1 to max); -EFBIG when the size is over max; -EINVAL with *why
 * (a constant) for anything else (a missing or bad name, size or type). */
int xc_upload_request(const struct cm_xml_node *req, uint64_t max, const char **name,
                      uint64_t *size, const char **type, const char **why);

/* The slot's signature: base64url, without padding, of HMAC-SHA256 under key of
 * slot "\n" name "\n" size (decimal) "\n" type ("" for none) "\n" expiry (Unix seconds,
 * decimal), into out (NUL-terminated). 0 or -EIO. */
int xc_upload_sign(const unsigned char key[XC_UPLOAD_KEY_LEN], const char *slot, const char *name,
                   uint64_t size, const char *type, int64_t expiry,
                   char out[XC_UPLOAD_SIG_LEN + 1]);

/* Append the URL of a slot's file to out: base (its trailing '/' ignored), XC_UPLOAD_PREFIX,
 * slot, "/", name percent-encoded (RFC 3986: every byte but ALPHA, DIGIT, "-", ".", "_", "~"),
 * then, when sig is not NULL (the PUT URL), "?e=" expiry "&s=" sig. 0, -ENOMEM. */
int xc_upload_url(struct cm_buf *out, const char *base, const char *slot, const char *name,
                  int64_t expiry, const char *sig);

/* A request path's part after XC_UPLOAD_PREFIX, SLOT "/" NAME (percent-encoded): slot (of
 * base64url characters, XC_UPLOAD_SLOT_LEN of them) into slot, the decoded name into *name
 * (owned). 0, -EINVAL (any other shape, an escape that does not decode, or a decoded name
 * xc_upload_name_problem() refuses), -ENOMEM. */
int xc_upload_path(const char *rest, char slot[XC_UPLOAD_SLOT_LEN + 1], char **name);

/* Whether slot is a slot id: XC_UPLOAD_SLOT_LEN base64url characters. */
bool xc_upload_slot_ok(const char *slot);

/* A PUT URL's query: "e=EXPIRY&s=SIG" in either order, nothing else. 0 or -EINVAL. */
int xc_upload_query(const char *query, int64_t *expiry, char sig[XC_UPLOAD_SIG_LEN + 1]);

/* A GET's Range header (RFC 9110 14.1.2) against a file of len bytes: 1 with the bytes *first to
 * *last (inclusive) for one satisfiable range ("bytes=A-B", "bytes=A-", "bytes=-N"); 0 to send
 * the whole file (no header, another unit, several ranges, one that does not parse: a range a
 * server may ignore; or an empty file); -1 when the one range starts past the end (416). */
int xc_upload_range(const char *range, size_t len, size_t *first, size_t *last);

/* --- the service (upload.c, upload_http.c) ---------------------------------------------------- */

/* The HTTP side: the listener, the files, the expiry. */
struct xc_upload;

/* Make it for srv (its configuration's upload section; borrowed) on the daemon's main loop, its
 * metrics registered in metrics. With upload.enabled false *out is NULL and 0 is returned.
 * 0 or a negative errno with a message logged. */
int xc_upload_alloc(struct xc_upload **out, struct xc_server *srv, struct cm_daemon *d,
                    struct cm_metrics *metrics);
/* Make the files' directory and listen on upload.listen (u NULL: nothing to do). 0 or a
 * negative errno, logged. */
int xc_upload_start(struct xc_upload *u);
/* Re-read the TLS certificate (SIGHUP). 0 or the reload's error. */
int xc_upload_reload(struct xc_upload *u);
/* Stop listening, close the connections and the expiry timer, and wait for the file jobs and
 * store requests on their way; done(arg) runs then (at once for u NULL). On the main loop. */
void xc_upload_close(struct xc_upload *u, void (*done)(void *arg), void *arg);
/* Release what is left, once closed and the workers are gone. Accepts NULL. */
void xc_upload_free(struct xc_upload *u);

/* Remove slot's file now (an operator's call: the admin API's DELETE /api/v1/uploads/SLOT), on
 * the main loop: done(arg, err) runs there once it is gone (0), or -ENOENT when there is no such
 * file, or another negative errno. -EINVAL (not a slot id) or -ENOMEM at once, done not run. */
int xc_upload_remove(struct xc_upload *u, const char *slot, void (*done)(void *arg, int err),
                     void *arg);

/* Whether the domain (len bytes) is an upload service of this server: "upload." and one of its
 * hosts, when upload.enabled. */
bool xc_upload_domain(const struct xc_server *srv, const char *domain, size_t len);

/* The disco#items entry of host's upload service: its JID written into out (size bytes), true;
 * false when there is none (off, or it does not fit). */
bool xc_upload_service(const struct xc_server *srv, const char *host, char *out, size_t size);

/* A stanza to an upload service (to, borrowed), on any shard: disco#info, disco#items and
 * slot requests from local users are answered; other IQs get service-unavailable, other
 * stanzas are dropped. Takes st. */
void xc_upload_stanza(struct xc_shard *sh, struct cm_xml_node *st, const struct xc_jid *to);

#endif
