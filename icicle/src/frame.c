/* frame.c - stream framing of STUN and ChannelData (see frame.h). */
#include "frame.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "attrs.h"

void icicle_framer_init(struct icicle_framer *f)
{
	memset(f, 0, sizeof(*f));
}

void icicle_framer_close(struct icicle_framer *f)
{
	free(f->buf);
	memset(f, 0, sizeof(*f));
}

int icicle_framer_feed(struct icicle_framer *f, const void *data, size_t n)
{
	if (f->off > 0) {
		memmove(f->buf, f->buf + f->off, f->len - f->off);
		f->len -= f->off;
		f->off = 0;
	}
	if (n > ICICLE_FRAMER_MAX - f->len)
		return -ENOBUFS;
	if (f->len + n > f->cap) {
		size_t ncap = f->cap ? f->cap : 2048;
		uint8_t *nb;

		while (ncap < f->len + n)
			ncap *= 2;
		if (ncap > ICICLE_FRAMER_MAX)
			ncap = ICICLE_FRAMER_MAX;
		nb = realloc(f->buf, ncap);
		if (!nb)
			return -ENOMEM;
		f->buf = nb;
		f->cap = ncap;
	}
	if (n)
		memcpy(f->buf + f->len, data, n);
	f->len += n;
	return 0;
}

size_t icicle_framer_pending(const struct icicle_framer *f)
{
	return f->len - f->off;
}

int icicle_framer_next(struct icicle_framer *f, uint8_t **p, size_t *len)
{
	uint8_t *s = f->buf + f->off;
	size_t avail = f->len - f->off;
	long flen = f->buf ? icicle_frame_len(s, avail) : 0;

	if (flen < 0)
		return -EBADMSG;
	if (flen == 0 || (size_t)flen > avail)
		return 0;
	*p = s;
	if ((s[0] & 0xc0) == 0x40)
		*len = ICICLE_CHDATA_HDR + (size_t)((s[2] << 8) | s[3]);
	else
		*len = (size_t)flen;
	f->off += (size_t)flen;
	return 1;
}
