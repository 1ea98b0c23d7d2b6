/* scram.h - the server side of SCRAM (RFC 5802, RFC 7677) with channel binding (RFC 5929 and
 * RFC 9266), and the stored credentials it works from.
 *
 * Passwords are never stored: an account keeps, per hash, a salt, an iteration count and the
 * two keys SCRAM needs (StoredKey, ServerKey). A SCRAM login then costs the server two HMACs and
 * a digest, never PBKDF2; PLAIN (xc_scram_creds_check()) has to run PBKDF2 once per login.
 *
 * One exchange is a struct xc_scram, fed the client's two messages:
 *     xc_scram_init() -> xc_scram_client_first() -> (look the user up) -> xc_scram_server_first()
 *     -> xc_scram_client_final() -> success with the server-final message, or failure.
 * An unknown user is answered like a known one, from decoy credentials derived from a server
 * secret (xc_scram_decoy()), so that the exchange does not tell whether an account exists.
 *
 * Channel binding: for the -PLUS mechanisms the client must bind to one of the types the
 * connection offers (tls-exporter on TLS 1.3, and tls-server-end-point always) and send its
 * data; for the
 * plain mechanisms, a client that says "y" (it could bind, but believes the server cannot) while
 * the server offered -PLUS is a downgrade and fails - unless the caller knows better (plus_offered
 * false): a client whose only channel binding type the server lacks (tls-unique on TLS 1.3) says
 * "y" honestly after its -PLUS attempt was refused.
 */
#ifndef XC_SCRAM_H
#define XC_SCRAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cm_buf;

enum xc_scram_hash {
	XC_SCRAM_SHA1,
	XC_SCRAM_SHA256,
	XC_SCRAM_NHASH,
};

#define XC_SCRAM_KEY_MAX  32   /* SHA-256 */
#define XC_SCRAM_SALT_MAX 64   /* Prosody's salts are 36-character UUIDs */
#define XC_SCRAM_MSG_MAX  4096 /* longest client message taken */

/* One hash's keys. iter 0: the account has none for this hash (an account brought over from
 * a server that kept only SCRAM-SHA-1 keys), and a login by that hash fails. */
struct xc_scram_creds {
	uint32_t iter;
	uint8_t salt_len;
	unsigned char salt[XC_SCRAM_SALT_MAX];
	unsigned char stored_key[XC_SCRAM_KEY_MAX];
	unsigned char server_key[XC_SCRAM_KEY_MAX];
};

/* "SCRAM-SHA-1", "SCRAM-SHA-256". */
const char *xc_scram_mech_name(enum xc_scram_hash h);
size_t xc_scram_key_len(enum xc_scram_hash h);

/* Credentials for a password (SASLprep'd here) with iter iterations and a fresh 16-byte random
 * salt, or the given one (salt may be NULL). 0, -EINVAL (the password is not valid text, iter
 * 0), -EIO, -ENOMEM. */
int xc_scram_creds_make(enum xc_scram_hash h, const char *password, size_t len, uint32_t iter,
                        const unsigned char *salt, size_t salt_len, struct xc_scram_creds *out);

/* Credentials for every hash (XC_SCRAM_NHASH), each with its own fresh salt: what an account
 * stores. Same returns as xc_scram_creds_make(). */
int xc_scram_creds_make_all(const char *password, size_t len, uint32_t iter,
                            struct xc_scram_creds out[XC_SCRAM_NHASH]);

/* PLAIN: 0 when password matches c, -EACCES when it does not; -EINVAL, -EIO, -ENOMEM. */
int xc_scram_creds_check(enum xc_scram_hash h, const struct xc_scram_creds *c, const char *password,
                         size_t len);

/* Credentials for a user that does not exist: a salt derived from secret and the name (the same
 * on every attempt, like a real account's), iter, and keys no proof can match. */
void xc_scram_decoy(enum xc_scram_hash h, const unsigned char *secret, size_t secret_len,
                    const char *user, uint32_t iter, struct xc_scram_creds *out);

/* One channel binding type the connection offers, and its data. */
struct xc_scram_cb {
	const char *type; /* "tls-exporter", "tls-server-end-point" */
	unsigned char data[64];
	size_t len;
};

#define XC_SCRAM_CB_MAX 2

enum xc_scram_state {
	XC_SCRAM_WANT_FIRST,
	XC_SCRAM_WANT_CREDS, /* client-first taken: look the user up */
	XC_SCRAM_WANT_FINAL,
	XC_SCRAM_DONE,
	XC_SCRAM_FAILED,
};

struct xc_scram {
	enum xc_scram_hash h;
	enum xc_scram_state st;
	bool plus;                              /* the -PLUS mechanism was chosen */
	bool plus_offered;                      /* the server advertised -PLUS mechanisms */
	struct xc_scram_cb cb[XC_SCRAM_CB_MAX]; /* what the connection offers */
	size_t ncb;
	size_t cb_used;     /* the type the client chose (-PLUS) */
	char *user;         /* owned: the user name, Nodeprep'd */
	char *authzid;      /* owned: the authorisation identity asked for, or NULL */
	char *gs2;          /* owned: the gs2 header as the client sent it */
	char *first_bare;   /* owned: client-first-message-bare */
	char *server_first; /* owned */
	char *nonce;        /* owned: client nonce + server nonce */
	struct xc_scram_creds creds;
};

/* Start an exchange for mechanism h (plus: its -PLUS form). The ncb (at most XC_SCRAM_CB_MAX)
 * types in cb are copied (none: no TLS). */
void xc_scram_init(struct xc_scram *s, enum xc_scram_hash h, bool plus, bool plus_offered,
                   const struct xc_scram_cb *cb, size_t ncb);
void xc_scram_free(struct xc_scram *s);

/* Take client-first-message. 0 (xc_scram->user is set), -EOPNOTSUPP (a channel binding type the
 * connection does not offer), -EPROTO (malformed, or channel binding not acceptable: err says
 * which), -ENOMEM. */
int xc_scram_client_first(struct xc_scram *s, const char *msg, size_t len, char *err,
                          size_t errlen);

/* Append server-first-message to out, for creds (copied; real or decoy). snonce: the server's
 * nonce part, NULL for a random one (tests pass a fixed one). 0, -ENOMEM, -EIO. */
int xc_scram_server_first(struct xc_scram *s, const struct xc_scram_creds *creds,
                          const char *snonce, struct cm_buf *out);

/* Take client-final-message and verify the proof; on success append server-final-message
 * ("v=...") to out. 0, -EACCES (wrong proof, or channel binding data that is not this
 * connection's: a man in the middle), -EPROTO (malformed, nonce mismatch: err says which),
 * -ENOMEM, -EIO. */
int xc_scram_client_final(struct xc_scram *s, const char *msg, size_t len, struct cm_buf *out,
                          char *err, size_t errlen);

#endif
