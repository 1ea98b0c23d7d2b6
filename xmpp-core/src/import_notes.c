/* import_notes.c - the lines a converter of another server's data leaves for the operator. */
#include "import.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

int xc_import_note(struct xc_import_notes *notes, const char *fmt, ...)
{
	char **nv = realloc(notes->v, (notes->n + 1) * sizeof(*nv));
	va_list ap;
	int len;

	if (!nv)
		return -ENOMEM;
	notes->v = nv;
	va_start(ap, fmt);
	len = vasprintf(&nv[notes->n], fmt, ap);
	va_end(ap);
	if (len < 0)
		return -ENOMEM;
	notes->n++;
	return 0;
}

void xc_import_notes_free(struct xc_import_notes *notes)
{
	for (size_t i = 0; i < notes->n; i++)
		free(notes->v[i]);
	free(notes->v);
	notes->v = NULL;
	notes->n = 0;
}
