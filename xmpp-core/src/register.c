/* register.c - in-band registration (register.h). */
#include "register.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "c2s.h"
#include "cm/crypto.h"
#include "cm/log.h"
#include "cm/srclimit.h"
#include "cm/stream.h"
#include "router.h"
#include "scram.h"
#include "server.h"
#include "session.h"
#include "stanza.h"
#include "store.h"
#include "throttle.h"

#define PASSWORD_MAX 1023

/* A store request on its way for a connection, which may be gone when the answer comes. */
struct xc_register {
	struct xc_c2s *c;       /* borrowed; NULL once the connection went away */
	struct cm_xml_node *iq; /* owned: answered with the store's result */
	struct xc_shard *sh;    /* where the answer comes back */
	enum xc_store_op op;
	char src[48]; /* the client's source, counted once the account exists */
	char *bare;   /* owned: the account */
};

static const struct xc_config *cfg_of(const struct xc_c2s *c)
{
	return c->sh->srv->cfg;
}

bool xc_register_offered(const struct xc_c2s *c)
{
	const struct xc_config *cfg = cfg_of(c);

	return cfg->registration.enabled && xc_c2s_stream(c) &&
	       (xc_c2s_secured(c) || !cfg->c2s.require_tls || !c->sh->srv->tls);
}

/* Answer an IQ to an unauthenticated stream: no addresses, the stream is the context. */
static void send_to_stream(struct xc_c2s *c, struct cm_xml_node *st)
{
	if (!st)
		return;
	cm_xml_node_remove_attr(st, "to");
	cm_xml_node_remove_attr(st, "from");
	xc_c2s_send(c, st);
	cm_xml_node_free(st);
}

static void preauth_error(struct xc_c2s *c, const struct cm_xml_node *iq, const char *etype,
                          const char *cond, const char *text)
{
	send_to_stream(c, xc_stanza_error(iq, etype, cond, text, c->host));
}

/* The form: a user name and a password (XEP-0077 3.1); for a registered user, what it has. */
static struct cm_xml_node *form(const char *user)
{
	struct cm_xml_node *q = NULL, *n;
	int r = cm_xml_node_new(&q, "query", XC_NS_REGISTER);

	if (user) {
		r = r ? r : cm_xml_node_new_child(NULL, q, "registered", NULL);
		r = r ? r : cm_xml_node_new_child(&n, q, "username", NULL);
		r = r ? r : cm_xml_node_add_text(n, user, strlen(user));
	} else {
		static const char text[] = "Choose a user name and a password.";

		r = r ? r : cm_xml_node_new_child(&n, q, "instructions", NULL);
		r = r ? r : cm_xml_node_add_text(n, text, sizeof(text) - 1);
		r = r ? r : cm_xml_node_new_child(NULL, q, "username", NULL);
	}
	r = r ? r : cm_xml_node_new_child(NULL, q, "password", NULL);
	if (r) {
		cm_xml_node_free(q);
		return NULL;
	}
	return q;
}

/* The text of child name of q, or NULL. */
static const char *field(const struct cm_xml_node *q, const char *name)
{
	const struct cm_xml_node *n = cm_xml_child(q, name, XC_NS_REGISTER);

	return n ? cm_xml_text(n) : NULL;
}

/* --- the store's answers ------------------------------------------------------------------------
 */

static void reg_free(struct xc_register *g)
{
	cm_xml_node_free(g->iq);
	free(g->bare);
	free(g);
}

static void on_stored(struct xc_store_req *r)
{
	struct xc_register *g = r->arg;
	struct xc_c2s *c = g->c;
	struct xc_server *srv = g->sh->srv;
	struct cm_xml_node *res;
	struct xc_jid j;

	if (c)
		c->reg = NULL;
	switch (g->op) {
	case XC_STORE_ACCOUNT_CREATE:
		if (r->err == 0) {
			CM_LOGI("register", "%s registered from %s", g->bare, g->src);
			xc_throttle_fail(srv->reg_throttle, g->src, uv_now(g->sh->loop->uv));
		}
		if (!c)
			break;
		if (r->err == -EEXIST)
			preauth_error(c, g->iq, "cancel", "conflict", "this user name is taken");
		else if (r->err)
			preauth_error(c, g->iq, "wait", "internal-server-error", NULL);
		else
			send_to_stream(c, xc_iq_result(g->iq, NULL));
		break;
	case XC_STORE_ACCOUNT_SET_CREDS:
		if (!c)
			break;
		if (r->err)
			xc_bounce(g->sh, g->iq, "wait", "internal-server-error");
		else if ((res = xc_iq_result(g->iq, NULL)) != NULL)
			xc_route(g->sh, res);
		if (!r->err)
			CM_LOGI("register", "%s changed its password", g->bare);
		break;
	case XC_STORE_ACCOUNT_DELETE:
		if (r->err) {
			if (c)
				xc_bounce(g->sh, g->iq, "wait", "internal-server-error");
			break;
		}
		CM_LOGI("register", "%s removed its account", g->bare);
		if (c && (res = xc_iq_result(g->iq, NULL)) != NULL)
			xc_route(g->sh, res);
		/* every session of the account ends (XEP-0077 3.2) */
		if (xc_jid_parse(&j, g->bare, strlen(g->bare), NULL, 0) == 0) {
			xc_session_kick(g->sh, &j, "not-authorized", "the account was removed");
			xc_jid_free(&j);
		}
		break;
	default:
		break;
	}
	reg_free(g);
	xc_store_req_free(r);
}

/* Submit op for g's account; creds from password when given. 0, -EINVAL (the password is not
 * acceptable), or another negative errno. g is then the request's. */
static int submit(struct xc_c2s *c, struct xc_register *g, enum xc_store_op op,
                  const char *password)
{
	struct xc_store_req *r = xc_store_req_new(op, c->sh->loop, on_stored, g);
	int rc = r ? xc_store_req_set(&r->user, g->bare) : -ENOMEM;

	if (!rc && password)
		rc = xc_scram_creds_make_all(password, strlen(password),
		                             (uint32_t)cfg_of(c)->auth.scram_iterations, r->creds);
	rc = rc ? rc : xc_store_submit(c->sh->srv->store, r);
	if (rc) {
		xc_store_req_free(r);
		return rc;
	}
	g->op = op;
	g->sh = c->sh;
	g->c = c;
	c->reg = g;
	return 0;
}

static struct xc_register *reg_new(struct cm_xml_node *iq, const char *user, const char *host)
{
	struct xc_register *g = calloc(1, sizeof(*g));
	size_t n = strlen(user) + strlen(host) + 2;

	if (!g || !(g->bare = malloc(n))) {
		free(g);
		return NULL;
	}
	snprintf(g->bare, n, "%s@%s", user, host);
	g->iq = iq;
	return g;
}

static bool password_ok(const char *pw)
{
	return pw && *pw && strlen(pw) <= PASSWORD_MAX;
}

/* --- before authentication ----------------------------------------------------------------------
 */

void xc_register_preauth(struct xc_c2s *c, struct cm_xml_node *iq)
{
	const struct xc_config *cfg = cfg_of(c);
	const char *type = cm_xml_attr(iq, "type");
	const struct cm_xml_node *q = cm_xml_child(iq, "query", XC_NS_REGISTER);
	const char *user, *pw;
	char *node = NULL;
	struct xc_register *g;
	struct sockaddr_storage ss;
	socklen_t len;
	char src[48] = "?";
	int rc;

	if (!xc_register_offered(c)) {
		preauth_error(c, iq, "cancel", "service-unavailable", NULL);
		cm_xml_node_free(iq);
		return;
	}
	if (!type || !cm_xml_attr(iq, "id") || !q) {
		preauth_error(c, iq, "modify", "bad-request", NULL);
		cm_xml_node_free(iq);
		return;
	}
	if (strcmp(type, "get") == 0) {
		send_to_stream(c, xc_iq_result(iq, form(NULL)));
		cm_xml_node_free(iq);
		return;
	}
	if (strcmp(type, "set") != 0 || c->reg) {
		preauth_error(c, iq, "modify", "bad-request", NULL);
		cm_xml_node_free(iq);
		return;
	}
	if (xc_c2s_stream(c) && cm_stream_peer(xc_c2s_stream(c), &ss, &len) == 0)
		cm_srclimit_format((struct sockaddr *)&ss, src, sizeof(src));
	if (xc_throttle_blocked(c->sh->srv->reg_throttle, src,
	                        (unsigned)cfg->registration.per_ip_per_hour,
	                        uv_now(c->sh->loop->uv))) {
		CM_LOGI("register",
		        "%s: registration refused: registration.per_ip_per_hour reached", src);
		preauth_error(c, iq, "wait", "policy-violation",
		              "too many accounts registered from this address; try later");
		cm_xml_node_free(iq);
		return;
	}
	user = field(q, "username");
	pw = field(q, "password");
	if (!user || !password_ok(pw) || xc_jid_nodeprep(user, strlen(user), &node, NULL, 0) != 0) {
		preauth_error(c, iq, "modify", "not-acceptable",
		              "a valid user name and a password of 1 to 1023 bytes are needed");
		cm_xml_node_free(iq);
		return;
	}
	g = reg_new(iq, node, c->host);
	free(node);
	if (!g) {
		preauth_error(c, iq, "wait", "resource-constraint", NULL);
		cm_xml_node_free(iq);
		return;
	}
	snprintf(g->src, sizeof(g->src), "%s", src);
	rc = submit(c, g, XC_STORE_ACCOUNT_CREATE, pw);
	if (rc) {
		preauth_error(c, iq, rc == -EINVAL ? "modify" : "wait",
		              rc == -EINVAL ? "not-acceptable" : "internal-server-error",
		              rc == -EINVAL ? "the password has characters SASLprep prohibits"
		                            : NULL);
		reg_free(g);
	}
}

/* --- a session's own account --------------------------------------------------------------------
 */

void xc_register_iq(struct xc_shard *sh, struct xc_c2s *c, struct cm_xml_node *iq)
{
	const char *type = cm_xml_attr(iq, "type");
	const struct cm_xml_node *q = cm_xml_child(iq, "query", XC_NS_REGISTER);
	struct cm_xml_node *res;
	struct xc_register *g;
	const char *user, *pw;
	char *node = NULL;
	int rc;

	if (!q) {
		xc_bounce(sh, iq, "modify", "bad-request");
		cm_xml_node_free(iq);
		return;
	}
	if (strcmp(type, "get") == 0) {
		res = xc_iq_result(iq, form(c->user));
		if (res)
			xc_route(sh, res);
		cm_xml_node_free(iq);
		return;
	}
	if (c->reg) {
		xc_bounce(sh, iq, "wait", "resource-constraint"); /* one change at a time */
		cm_xml_node_free(iq);
		return;
	}
	g = reg_new(iq, c->user, c->host);
	if (!g) {
		xc_bounce(sh, iq, "wait", "resource-constraint");
		cm_xml_node_free(iq);
		return;
	}
	if (cm_xml_child(q, "remove", XC_NS_REGISTER)) {
		rc = submit(c, g, XC_STORE_ACCOUNT_DELETE, NULL);
	} else {
		/* a new password (XEP-0077 3.3): the user name must be the account's own */
		user = field(q, "username");
		pw = field(q, "password");
		rc = -EPERM;
		if (user && xc_jid_nodeprep(user, strlen(user), &node, NULL, 0) == 0 &&
		    strcmp(node, c->user) == 0 && password_ok(pw))
			rc = submit(c, g, XC_STORE_ACCOUNT_SET_CREDS, pw);
		free(node);
	}
	if (rc) {
		xc_bounce(sh, iq, "modify",
		          rc == -EPERM || rc == -EINVAL ? "not-acceptable"
		                                        : "internal-server-error");
		reg_free(g);
	}
}

void xc_register_detach(struct xc_c2s *c)
{
	if (c->reg) {
		c->reg->c = NULL;
		c->reg = NULL;
	}
}
