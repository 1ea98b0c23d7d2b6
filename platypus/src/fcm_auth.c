/* fcm_auth.c - the FCM service account: key file, RS256 assertion, access-token cache. */
#include "fcm_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "cm/err.h"
#include "cm/buf.h"
#include "cm/jwt.h"

static int take_str(json_t *root, const char *key, bool required, char **out, char *err,
                    size_t errlen)
{
	json_t *v = json_object_get(root, key);

	*out = NULL;
	if (!v && !required)
		return 0;
	if (!json_is_string(v) || !json_string_length(v)) {
		return cm_errf(err, errlen, -EINVAL, "%s: missing or not a non-empty string", key);
	}
	*out = strdup(json_string_value(v));
	return *out ? 0 : -ENOMEM;
}

int pp_fcm_account_load(struct pp_fcm_account *a, const char *json, size_t len, char *err,
                        size_t errlen)
{
	json_error_t je;
	json_t *root;
	char *pem = NULL;
	int r;

	memset(a, 0, sizeof(*a));
	root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
	if (!json_is_object(root)) {
		json_decref(root);
		return cm_errf(err, errlen, -EINVAL, "not a JSON object (line %d: %s)", je.line,
		               je.text);
	}
	if (!json_is_string(json_object_get(root, "type")) ||
	    strcmp(json_string_value(json_object_get(root, "type")), "service_account")) {
		r = cm_errf(err, errlen, -EINVAL, "type: must be \"service_account\"");
		goto out;
	}
	if ((r = take_str(root, "project_id", true, &a->project_id, err, errlen)) ||
	    (r = take_str(root, "client_email", true, &a->client_email, err, errlen)) ||
	    (r = take_str(root, "private_key_id", false, &a->private_key_id, err, errlen)) ||
	    (r = take_str(root, "token_uri", true, &a->token_uri, err, errlen)) ||
	    (r = take_str(root, "private_key", true, &pem, err, errlen)))
		goto out;
	for (const char *p = a->project_id; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' ||
		      *p == ':' || *p == '.')) {
			r = cm_errf(err, errlen, -EINVAL, "project_id: not a Google project id");
			goto out;
		}
	if (strncmp(a->token_uri, "https://", 8)) {
		r = cm_errf(err, errlen, -EINVAL, "token_uri: must be an https:// URL");
		goto out;
	}
	{
		char kerr[200];

		r = cm_jwt_key_load(&a->key, CM_JWT_RS256, pem, strlen(pem), kerr, sizeof(kerr));
		if (r)
			cm_errf(err, errlen, r, "private_key: %s", kerr);
	}
out:
	if (pem) {
		/* The key text is a secret: do not leave it in freed memory. */
		memset(pem, 0, strlen(pem));
		free(pem);
	}
	json_decref(root);
	if (r)
		pp_fcm_account_close(a);
	return r;
}

void pp_fcm_account_close(struct pp_fcm_account *a)
{
	free(a->project_id);
	free(a->client_email);
	free(a->private_key_id);
	free(a->token_uri);
	cm_jwt_key_free(a->key);
	free(a->access_token);
	memset(a, 0, sizeof(*a));
}

int pp_fcm__assertion_form(const struct pp_fcm_account *a, time_t now, struct cm_buf *out)
{
	struct cm_buf claims, jwt;
	size_t start = out->len;
	int r;

	cm_buf_init(&claims, 0);
	cm_buf_init(&jwt, 0);
	r = cm_buf_puts(&claims, "{\"iss\":\"");
	r = r ? r : cm_buf_json_escape(&claims, a->client_email, strlen(a->client_email));
	r = r ? r : cm_buf_printf(&claims, "\",\"scope\":\"%s\",\"aud\":\"", PP_FCM_SCOPE);
	r = r ? r : cm_buf_json_escape(&claims, a->token_uri, strlen(a->token_uri));
	r = r ? r
	      : cm_buf_printf(&claims, "\",\"iat\":%lld,\"exp\":%lld}", (long long)now,
	                      (long long)now + 3600);
	r = r ? r : cm_jwt_sign(&jwt, a->key, a->private_key_id, claims.data);
	/* The JWT is base64url and dots: nothing to percent-encode. */
	r = r ? r
	      : cm_buf_printf(
	            out,
	            "grant_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Agrant-type%%3Ajwt-bearer"
	            "&assertion=%s",
	            jwt.data);
	if (r && out->data) {
		out->len = start;
		out->data[start] = 0;
	}
	cm_buf_free(&claims);
	cm_buf_free(&jwt);
	return r;
}

int pp_fcm__account_grant(struct pp_fcm_account *a, int status, const char *body, size_t len,
                          time_t now, char *err, size_t errlen)
{
	json_t *root = body && len ? json_loadb(body, len, 0, NULL) : NULL;
	json_t *tok, *exp;
	long long life;
	char *t;
	int r = 0;

	if (status != 200) {
		const char *e = json_string_value(json_object_get(root, "error"));
		const char *d = json_string_value(json_object_get(root, "error_description"));

		r = cm_errf(
		    err, errlen, status == 429 || status >= 500 || status == 0 ? -EAGAIN : -EACCES,
		    "token endpoint %d: %s%s%s", status, e ? e : "?", d ? ": " : "", d ? d : "");
		goto out;
	}
	tok = json_object_get(root, "access_token");
	exp = json_object_get(root, "expires_in");
	if (!json_is_string(tok) || !json_string_length(tok) || !json_is_integer(exp) ||
	    json_integer_value(exp) <= 0 || strpbrk(json_string_value(tok), "\r\n")) {
		r = cm_errf(err, errlen, -EBADMSG,
		            "token endpoint: no access_token/expires_in in the answer");
		goto out;
	}
	t = strdup(json_string_value(tok));
	if (!t) {
		r = cm_errf(err, errlen, -ENOMEM,
		            "token endpoint: out of memory for the access token");
		goto out;
	}
	free(a->access_token);
	a->access_token = t;
	life = json_integer_value(exp);
	if (life > 86400)
		life = 86400;
	/* Short lives (600 s or less: tests, odd servers): the margin would leave nothing, so half
	 * of it, and at least the second it was granted in, or a queue waiting for a token would
	 * ask for one again and again. */
	a->expires =
	    now + (life > 2 * PP_FCM_TOKEN_MARGIN ? life - PP_FCM_TOKEN_MARGIN : (life + 1) / 2);
	a->grants++;
out:
	json_decref(root);
	return r;
}

const char *pp_fcm__access_token(const struct pp_fcm_account *a, time_t now)
{
	return a->access_token && now < a->expires ? a->access_token : NULL;
}

void pp_fcm__account_forget(struct pp_fcm_account *a)
{
	free(a->access_token);
	a->access_token = NULL;
	a->expires = 0;
}
