/* cfg_errors.c - the list of configuration errors and the key path they are reported under. */
#include "cfg_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cm_cfg_errors_init(struct cm_cfg_errors *e)
{
	e->msgs = NULL;
	e->n = 0;
}

void cm_cfg_errors_free(struct cm_cfg_errors *e)
{
	if (!e)
		return;
	for (size_t i = 0; i < e->n; i++)
		free(e->msgs[i]);
	free(e->msgs);
	e->msgs = NULL;
	e->n = 0;
}

/* Append the finished message in b (taken over) to the list. */
static void push(struct cfg_loader *ld, struct cm_buf *b)
{
	char **v;

	v = realloc(ld->errs->msgs, (ld->errs->n + 1) * sizeof(*v));
	if (!v) {
		cm_buf_free(b);
		ld->err = -ENOMEM;
		return;
	}
	ld->errs->msgs = v;
	v[ld->errs->n++] = cm_buf_steal(b);
	ld->nerrs++;
}

/* Past the limit, one last message says that the list is incomplete. */
static bool room(struct cfg_loader *ld)
{
	struct cm_buf b;

	if (ld->err || ld->full)
		return false;
	if (ld->nerrs < CFG_MAX_ERRORS)
		return true;
	ld->full = true;
	cm_buf_init(&b, 0);
	if (cm_buf_printf(&b, "%s: too many errors, giving up", ld->name)) {
		cm_buf_free(&b);
		ld->err = -ENOMEM;
		return false;
	}
	push(ld, &b);
	return false;
}

void cm_cfg__verror(struct cfg_loader *ld, unsigned long line, const char *fmt, va_list ap)
{
	const char *path = ld->path.data ? ld->path.data : "";
	struct cm_buf b;
	int err;

	if (!room(ld))
		return;
	cm_buf_init(&b, 0);
	if (ld->def)
		err = cm_buf_printf(&b, "<default>: %s: bad default \"%s\": ", path, ld->def);
	else if (*path)
		err = cm_buf_printf(&b, "%s:%lu: %s: ", ld->name, line, path);
	else
		err = cm_buf_printf(&b, "%s:%lu: ", ld->name, line);
	if (!err)
		err = cm_buf_vprintf(&b, fmt, ap);
	if (err) {
		cm_buf_free(&b);
		ld->err = -ENOMEM;
		return;
	}
	push(ld, &b);
}

void cm_cfg__error(struct cfg_loader *ld, unsigned long line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cm_cfg__verror(ld, line, fmt, ap);
	va_end(ap);
}

void cm_cfg__error_raw(struct cfg_loader *ld, const char *fmt, ...)
{
	struct cm_buf b;
	va_list ap;
	int err;

	if (!room(ld))
		return;
	cm_buf_init(&b, 0);
	err = cm_buf_printf(&b, "%s: ", ld->name);
	va_start(ap, fmt);
	if (!err)
		err = cm_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	if (err) {
		cm_buf_free(&b);
		ld->err = -ENOMEM;
		return;
	}
	push(ld, &b);
}

size_t cm_cfg__path_push_key(struct cfg_loader *ld, const char *key, size_t len)
{
	size_t mark = ld->path.len;
	int err = 0;

	if (mark)
		err = cm_buf_append(&ld->path, ".", 1);
	/* An empty key would vanish from the message, a NUL would cut it short, and other control
	 * characters could forge log lines. */
	if (!err && !len)
		err = cm_buf_puts(&ld->path, "\"\"");
	for (size_t i = 0; i < len && !err; i++) {
		unsigned char c = (unsigned char)key[i];

		err = cm_buf_append(&ld->path, c < 0x20 || c == 0x7f ? "?" : &key[i], 1);
	}
	if (err) {
		ld->err = -ENOMEM;
		cm_cfg__path_pop(ld, mark);
	}
	return mark;
}

size_t cm_cfg__path_push_index(struct cfg_loader *ld, size_t i)
{
	size_t mark = ld->path.len;

	if (cm_buf_printf(&ld->path, "[%zu]", i)) {
		ld->err = -ENOMEM;
		cm_cfg__path_pop(ld, mark);
	}
	return mark;
}

void cm_cfg__path_pop(struct cfg_loader *ld, size_t mark)
{
	ld->path.len = mark;
	if (ld->path.data)
		ld->path.data[mark] = '\0';
}
