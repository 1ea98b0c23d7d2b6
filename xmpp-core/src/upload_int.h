/* upload_int.h - what upload.c (slots, on the shards) and upload_http.c (files, on the main
 * loop) share; private to the upload module. */
#ifndef XC_UPLOAD_INT_H
#define XC_UPLOAD_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

/* --- the files on disk (upload_files.c): blocking calls, for libuv's thread pool ------------ */

/* Write slot's file into dir: its type and name lines, then the len bytes of body, under
 * ".SLOT.part", then linked to SLOT. 0, -EEXIST (the slot has its file, or one is being
 * written), or another negative errno (the disk). */
int xc_upload__file_put(const char *dir, const char *slot, const char *type, const char *name,
                        const char *body, size_t len);

/* Read slot's file whole, if its name is name and it holds at most cap bytes: 0 with *data (owned,
 * NUL-terminated), the file's bytes at *off, *len of them, and its type. With head_only (a HEAD),
 * only the type and name lines are read: *len is still the bytes' count, *data holds none of
 * them. -ENOENT (no such file, or another name), -EIO (not a file of ours: a link, another kind,
 * too large, its lines missing), -ENOMEM is -EIO too. */
int xc_upload__file_get(const char *dir, const char *slot, const char *name, size_t cap,
                        bool head_only, char **data, size_t *off, size_t *len,
                        char type[XC_UPLOAD_TYPE_MAX + 1]);

/* Remove slot's file from dir (its unfinished one too). 0, -ENOENT (none), or another negative
 * errno. */
int xc_upload__file_remove(const char *dir, const char *slot);

/* Remove the files of dir last written before cutoff_ms (Unix ms) and the unfinished ones
 * (".*") before part_cutoff_ms; nothing else (links, directories) is touched. *removed: how many
 * finished files went. 0 or the last error. */
int xc_upload__file_sweep(const char *dir, int64_t cutoff_ms, int64_t part_cutoff_ms,
                          size_t *removed);

#endif
