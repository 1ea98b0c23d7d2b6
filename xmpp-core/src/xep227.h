/* xep227.h - accounts in XEP-0227's portable format (urn:xmpp:pie:0) read into import documents
 * (import.h), for xmppctl import-xep227: how an ejabberd (`ejabberdctl export_piefxis`), a
 * Prosody (prosody-migrator to its xep0227 store) or another server hands its users over.
 *
 * A source is a file whose root is <server-data> (hosts written in it, or pulled in with
 * <xi:include href='name'/> of a file beside it whose root is <host>: what ejabberd writes), a
 * file whose root is <host>, or a directory, of which every *.xml file whose root is
 * <server-data> is read (Prosody writes one per account); a <host> file there is read through
 * the file that includes it, or alone when none does. Each file, with what it includes, is
 * checked whole (well-formed, no DTD, the format's elements where they belong) before any of its
 * accounts is handed on; in a directory, every file's root is checked before anything is.
 *
 * Per account, what comes over: the password (the plaintext password attribute) or the SCRAM
 * keys (<scram-credentials xmlns='urn:xmpp:pie:0#scram'>, SCRAM-SHA-1 and SCRAM-SHA-256; ejabberd
 * writes its base64 twice, which is undone), the roster (jabber:iq:roster), the requests not
 * answered (<presence type='subscribe'/>), the block list (the items of a privacy list that
 * block a JID outright: how ejabberd keeps XEP-0191's list), the offline messages (stamped by
 * the server's <delay/>), the vcard-temp vCard, the PEP nodes with their items
 * (http://jabber.org/protocol/pubsub#owner and pubsub, as Prosody writes them) and private XML
 * (the elements of <query xmlns='jabber:iq:private'/>, XEP-0049: each written again with its
 * namespace declared, one per namespace); the message archive comes after the account, through
 * the archive route (xc_xep227_archive()). The rest (other privacy rules, elements this reader
 * does not know, private elements that cannot be kept) is named in the notes with a count:
 * nothing is dropped without a word.
 */
#ifndef XC_XEP227_H
#define XC_XEP227_H

#include <stddef.h>

#include "import.h"

struct cm_xml_node;

#define XC_XEP227_NS       "urn:xmpp:pie:0"
#define XC_XEP227_NS_SCRAM "urn:xmpp:pie:0#scram"

/* One account as read. */
struct xc_xep227_account {
	const char *jid; /* user@host as the file writes it (the route normalises it) */
	const char *doc; /* the import document (JSON text; may hold a password or keys), or NULL */
	const char *err; /* why there is no document */
	const char *file; /* the file it came from */
	const struct xc_import_notes *notes;
	/* its <archive xmlns='urn:xmpp:pie:0#mam'/> (the message archive, as Prosody's xep0227
	 * store writes it), or NULL: for xc_xep227_archive() once the account is made */
	const struct cm_xml_node *archive;
};

/* Called for each account, in the order of the files and in each file's order; a nonzero return
 * stops the reading and is returned by it. The account is borrowed for the call. */
typedef int (*xc_xep227_fn)(void *arg, const struct xc_xep227_account *a);

/* Read the source at path (a file or a directory, above) and call fn for each account of host
 * (NULL: of every host). 0, fn's nonzero return, or a negative errno with err saying which file
 * and why (not there, not XEP-0227, not well-formed, an include that is not a file beside it);
 * on such an error no account has been handed on. */
int xc_xep227_read(const char *path, const char *host, xc_xep227_fn fn, void *arg, char *err,
                   size_t errlen);

/* The same for the len bytes of one file's text, named name in messages; an xi:include is an
 * error here (fuzzing and tests). */
int xc_xep227_read_buf(const char *data, size_t len, const char *name, const char *host,
                       xc_xep227_fn fn, void *arg, char *err, size_t errlen);

/* The import document of the <user/> element user (a tree in XC_XEP227_NS) of host: *doc gets
 * the JSON text (owned; wipe it), notes what is left behind. 0; -EINVAL when the account
 * cannot be carried (no name, no password and no usable keys: err says which); -ENOMEM. */
int xc_xep227_doc(const char *host, const struct cm_xml_node *user, char **doc,
                  struct xc_import_notes *notes, char *err, size_t errlen);

struct xc_prosody_mam;

/* The messages of archive (an account's <archive xmlns='urn:xmpp:pie:0#mam'/>: each a
 * <result xmlns='urn:xmpp:mam:2'> holding <forwarded xmlns='urn:xmpp:forward:0'> with the
 * <delay/> of when it was archived and the <message/>) into m, the cutter of the archive
 * route's requests (prosody.h), oldest first as the file has them, the last request included.
 * A result without its message or a time that parses is counted in *skipped. 0, -ENOMEM or the
 * cutter's callback's error. */
int xc_xep227_archive(const struct cm_xml_node *archive, struct xc_prosody_mam *m, size_t *skipped);

struct cm_buf;

/* Flags of xc_xep227_file(). */
enum {
	/* SCRAM salts and keys in base64 twice, as ejabberd (23.01) writes them and reads them
	 * back: the format's own single base64 leaves an account imported there unable to log in
	 * by SCRAM. This reader takes both. */
	XC_XEP227_EJABBERD = 1,
};

/* The XEP-0227 file of one account (the whole of it: declaration, <server-data/>, its <host/>
 * and <user/>) from its import document (xc_import_doc()), appended to out: the shapes this
 * reader reads, ejabberd's for the block list and offline messages, Prosody's for PEP, the
 * XEP's own <query xmlns='jabber:iq:private'/> for private XML (which both read). 0,
 * -EINVAL (not an account's document, or text in it that does not parse: err says), -ENOMEM. */
int xc_xep227_file(const char *doc, unsigned flags, struct cm_buf *out, char *err, size_t errlen);

#endif
