/* pp_uv.h - libuv helpers shared by platypus's modules (private). */
#ifndef PP_UV_H
#define PP_UV_H

#include <uv.h>

/* Close h with cb. When someone else already closed it (the daemon framework closes every
 * handle left open before it calls the daemon's free(), with no callback), cb runs now so that
 * the owner's bookkeeping still completes. */
static inline void pp_uv_close(uv_handle_t *h, uv_close_cb cb)
{
	if (uv_is_closing(h)) {
		if (cb)
			cb(h);
		return;
	}
	uv_close(h, cb);
}

#endif
