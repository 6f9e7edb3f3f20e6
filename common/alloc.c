/*
 * alloc.c — allocation wrappers that abort on failure (see alloc.h for the
 * decision and its reason).
 *
 * The failure path writes with write(2) rather than the logger: the logger
 * itself allocates, and we are out of memory.
 */
#include "alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "log.h"

static _Noreturn void
oom(size_t n)
{
	char buf[160];
	int  len = snprintf(buf, sizeof(buf),
	     "{\"level\":\"error\",\"id\":\"MCF-OOM\",\"msg\":\"out of memory "
	     "allocating %zu bytes\"}\n",
	     n);
	if (len > 0)
		(void) !write(2, buf, (size_t) len);
	abort();
}

void *
mcf_malloc(size_t n)
{
	void *p = malloc(n == 0 ? 1 : n);
	if (p == NULL)
		oom(n);
	return p;
}

void *
mcf_calloc(size_t count, size_t size)
{
	void *p = calloc(count == 0 ? 1 : count, size == 0 ? 1 : size);
	if (p == NULL)
		oom(count * size);
	return p;
}

void *
mcf_realloc(void *p, size_t n)
{
	void *q = realloc(p, n == 0 ? 1 : n);
	if (q == NULL)
		oom(n);
	return q;
}

char *
mcf_strdup(const char *s)
{
	return mcf_strndup(s, strlen(s));
}

char *
mcf_strndup(const char *s, size_t n)
{
	size_t len = strnlen(s, n);
	char  *p   = mcf_malloc(len + 1);
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

char *
mcf_vasprintf(const char *fmt, va_list ap)
{
	va_list ap2;
	va_copy(ap2, ap);
	int n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		mcf_panic("vsnprintf: bad format");
	char *p = mcf_malloc((size_t) n + 1);
	vsnprintf(p, (size_t) n + 1, fmt, ap);
	return p;
}

char *
mcf_asprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *p = mcf_vasprintf(fmt, ap);
	va_end(ap);
	return p;
}

_Noreturn void
mcf_panic_at(const char *file, int line, const char *msg)
{
	/* The logger escapes the message; a panic is not out of memory, so
	 * it may allocate. */
	mcf_log_write(MCF_LOG_ERROR, "MCF-PANIC", "%s (%s:%d)", msg, file,
	    line);
	abort();
}

static void *
json_alloc(size_t n)
{
	return mcf_malloc(n);
}

void
mcf_alloc_init_libs(void)
{
	json_set_alloc_funcs(json_alloc, free);
}
