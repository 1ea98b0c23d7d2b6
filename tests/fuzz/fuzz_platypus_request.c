/* fuzz_platypus_request.c - libFuzzer target: a MongoosePush v3 request body through the whole
 * outbound preparation: pp_notif_from_mongoosepush(), pp_notif_validate(), then the APNs request
 * (pp_apns__msg_build: payload limits) or the FCM v1 message (pp_fcm__message), and the copy the
 * dispatcher takes. Invariants: errors are the documented codes with a message; a valid APNs
 * payload is JSON within its limit; an FCM message is JSON whose data values are strings. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "cm/buf.h"
#include "platypus/src/apns_int.h"
#include "platypus/src/fcm_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define TOKEN "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void check_apns(const struct pp_notif *n)
{
	struct pp_apns_msg m;
	char err[160] = "";
	json_t *j;
	int r = pp_apns__msg_build(&m, n, "com.example.app", 1700000000, err, sizeof(err));

	if (r == -EMSGSIZE || r == -EINVAL) {
		if (!err[0] || m.body)
			abort();
		return;
	}
	if (r)
		abort();
	if (m.body_len > (n->voip ? PP_APNS_PAYLOAD_MAX_VOIP : PP_APNS_PAYLOAD_MAX))
		abort();
	j = json_loadb(m.body, m.body_len, 0, NULL);
	if (!json_is_object(json_object_get(j, "aps")))
		abort();
	json_decref(j);
	pp_apns__msg_free(&m);
}

static void check_fcm(const struct pp_notif *n)
{
	struct cm_buf b;
	json_t *j, *d, *v, *an;
	const char *k;

	cm_buf_init(&b, 0);
	if (pp_fcm__message(n, &b))
		abort();
	j = json_loads(b.data, 0, NULL);
	d = json_object_get(json_object_get(j, "message"), "data");
	json_object_foreach(d, k, v)
	{
		if (!json_is_string(v))
			abort();
	}
	/* No empty objects (FCM takes them as wishes), no data hidden from iOS and web apps. */
	an = json_object_get(json_object_get(json_object_get(j, "message"), "android"),
	                     "notification");
	if ((an && !json_object_size(an)) ||
	    json_object_get(json_object_get(json_object_get(j, "message"), "android"), "data"))
		abort();
	if (!json_is_object(j))
		abort();
	json_decref(j);
	cm_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pp_notif n, copy;
	char err[256] = "";
	const char *token;
	int r;

	/* The first byte picks the device id: a valid APNs token, an FCM-like one, or junk. */
	if (size < 1)
		return 0;
	token = data[0] % 3 == 0 ? TOKEN : data[0] % 3 == 1 ? "fcm-token_ABC:def-123" : "zz";
	r = pp_notif_from_mongoosepush(&n, token, (const char *)data + 1, size - 1, err,
	                               sizeof(err));
	if (r) {
		if (r != -EINVAL || !err[0] || n.token)
			abort();
		return 0;
	}
	if (pp_notif_validate(&n, err, sizeof(err)) == 0) {
		if (n.service == PP_SVC_APNS)
			check_apns(&n);
		else
			check_fcm(&n);
		if (pp_notif_copy(&copy, &n))
			abort();
		pp_notif_free(&copy);
	} else if (!err[0])
		abort();
	pp_notif_free(&n);
	return 0;
}
