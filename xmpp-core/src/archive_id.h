/* archive_id.h - the archive ids clients see (XEP-0359 stanza-ids, XEP-0313 result ids).
 *
 * A message's row in the archive is numbered by the store (a counter that never goes back, see
 * store.h), and its id is that number under a keyed permutation of the 64-bit numbers, written
 * as 16 lowercase hexadecimal digits. Clients see ids that tell nothing of how many messages the
 * server keeps or in which order they came, and the store turns an id back into the row's
 * number without an index of its own. The key is the database's, drawn when it was made.
 *
 * Archives made before kept a random id per row: an id that does not decode (or decodes to a row
 * of another owner) is looked up as such an older id. */
#ifndef XC_ARCHIVE_ID_H
#define XC_ARCHIVE_ID_H

#include <stdint.h>

#define XC_ARCHIVE_ID_LEN 16

/* The id of row n under key, NUL-terminated. */
void xc_archive_id_encode(const uint64_t key[2], uint64_t n, char out[XC_ARCHIVE_ID_LEN + 1]);

/* The row number of id s under key: 0, or -EINVAL when s is not 16 lowercase hex digits. */
int xc_archive_id_decode(const uint64_t key[2], const char *s, uint64_t *n);

#endif
