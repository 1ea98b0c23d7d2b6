/* archive_import.h - messages of an account's archive brought over from another server, as the
 * admin API's archive route takes them (POST /api/v1/archive; xmppctl import-prosody sends
 * them after the account):
 *
 *   {"jid": "alice@example.org",
 *    "messages": [{"stamp_ms": 1796533960000,
 *                  "stanza": "<message from='alice@example.org/phone' to='bob@example.org'
 *                             type='chat' id='x'><body>hi</body></message>"}, ...]}
 *
 * Oldest first, 1 to XC_ARCHIVE_IMPORT_MAX of them. Each stanza is one <message/> in
 * jabber:client whose 'from' or 'to' has the account's bare JID: the other side is the peer the
 * archive files it under. The document is untrusted input: every member is checked, stanza-ids
 * in the server's name are removed (the server gives new ones), and each message is written
 * again by our own writer, as the archive keeps what clients send. */
#ifndef XC_ARCHIVE_IMPORT_H
#define XC_ARCHIVE_IMPORT_H

#include <stddef.h>
#include <stdint.h>

struct xc_server;

#define XC_ARCHIVE_IMPORT_MAX 5000 /* messages in one request */

/* One message for the archive. */
struct xc_archive_row {
	int64_t stamp_ms; /* when it was archived by the other server (Unix ms) */
	char *with;       /* owned: the peer (a JID, full or bare, normalised) */
	char *stanza;     /* owned: the message as XML text, in the stream's scope */
	size_t len;       /* of stanza */
};

struct xc_archive_batch {
	char *user; /* owned: the account (a bare JID, normalised, on a host srv serves) */
	struct xc_archive_row *rows; /* owned array, oldest first */
	size_t n;
};

/* Check the len bytes of text against srv (its hosts, and its scope to write messages in) and
 * max_stanza (bytes of one message), into b (cleared first). 0; -EINVAL with err naming the
 * member and why (b holds nothing then); -ENOMEM. */
int xc_archive_import_parse(const char *text, size_t len, const struct xc_server *srv,
                            size_t max_stanza, struct xc_archive_batch *b, char *err,
                            size_t errlen);

/* Release what b holds (b itself is the caller's). */
void xc_archive_batch_clear(struct xc_archive_batch *b);

#endif
