/*
 * alloc.h — allocation wrappers that never return NULL.
 *
 * Decision (STYLE.md §5): running out of memory is fatal.  These wrappers
 * log one line and abort(); the kubelet restarts the pod.  Nobody writes
 * half-tested recovery code for ENOMEM, and no caller checks these for NULL.
 * Libraries that allocate on their own (jansson) are pointed at the same
 * wrappers by mcf_alloc_init_libs(), so their NULLs are fatal too.
 */
#ifndef MCF_COMMON_ALLOC_H
#define MCF_COMMON_ALLOC_H

#include <stdarg.h>
#include <stddef.h>

void *mcf_malloc(size_t n);
void *mcf_calloc(size_t count, size_t size);
void *mcf_realloc(void *p, size_t n);
char *mcf_strdup(const char *s);
char *mcf_strndup(const char *s, size_t n);
/* printf into a new string (caller frees). */
char *mcf_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *mcf_vasprintf(const char *fmt, va_list ap)
    __attribute__((format(printf, 1, 0)));

/* Programming error: logs `msg` with the call site and aborts. */
_Noreturn void mcf_panic_at(const char *file, int line, const char *msg);
#define mcf_panic(msg) mcf_panic_at(__FILE__, __LINE__, (msg))

/* Points jansson's allocator at the aborting wrappers.  Call once in main()
 * before any thread starts. */
void mcf_alloc_init_libs(void);

#endif /* MCF_COMMON_ALLOC_H */
