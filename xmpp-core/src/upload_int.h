/* upload_int.h - what upload.c (slots, on the shards) and upload_http.c (files, on the main
 * loop) share; private to the upload module. */
#ifndef XC_UPLOAD_INT_H
#define XC_UPLOAD_INT_H

#include "upload.h"

struct cm_counter;

/* Counted from every thread (the counters are atomic). */
struct upload_metrics {
	struct cm_counter *slot_ok, *slot_too_large, *slot_quota, *slot_bad, *slot_refused,
	    *slot_disk_full;
	struct cm_counter *put_ok, *put_bad_sig, *put_expired, *put_mismatch, *put_exists,
	    *put_failed;
	struct cm_counter *get_ok, *get_missing;
	struct cm_counter *bytes_in, *bytes_out, *expired;
};

/* The service's metrics, registered by xc_upload_alloc (upload_http.c); NULL when upload is off. */
struct upload_metrics *xc_upload__metrics(const struct xc_server *srv);

/* The files' directory (upload_http.c; fixed once allocated), or NULL when upload is off. */
const char *xc_upload__dir(const struct xc_server *srv);

#endif
