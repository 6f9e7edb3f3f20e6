/*
 * log.h — JSON-lines logging on stderr.
 *
 * Every line is one JSON object written with a single write(2):
 *   {"ts":"2026-11-24T15:04:05.123456Z","level":"info","component":"kubesim",
 *    "id":"KS-LISTEN","msg":"...", <process fields>}
 * `ts` is RFC 3339 UTC with microseconds.  The component and the process
 * fields (role, worker name, shard id) are set once at startup, before any
 * thread starts; the level may be changed at any time.  The level is checked
 * before anything is formatted.  All functions are thread-safe.
 */
#ifndef MCF_COMMON_LOG_H
#define MCF_COMMON_LOG_H

#include <stdbool.h>

enum mcf_log_level {
	MCF_LOG_DEBUG = 0,
	MCF_LOG_INFO  = 1,
	MCF_LOG_WARN  = 2,
	MCF_LOG_ERROR = 3,
	MCF_LOG_OFF   = 4,
};

/* Sets the component name (copied).  Call once from main(). */
void mcf_log_init(const char *component, enum mcf_log_level level);

/* Adds a process-wide field written on every line (copied); call before any
 * thread starts.  At most 8 fields.  Setting a key again replaces its
 * value; a ninth key, or one the logger writes itself (ts, level,
 * component, id, msg, truncated), panics. */
void mcf_log_set_field(const char *key, const char *value);

void               mcf_log_set_level(enum mcf_log_level level);
enum mcf_log_level mcf_log_get_level(void);

/* Parses "debug", "info", "warn", "error", "off"; MCF_EINVAL otherwise. */
int mcf_log_parse_level(const char *s, enum mcf_log_level *out);

/* Redirects output to `fd` (default 2); for tests. */
void mcf_log_set_fd(int fd);

bool mcf_log_enabled(enum mcf_log_level level);

/* Writes one line.  `id` is a stable message ID ("KS-LISTEN"), or NULL to
 * leave it out.  A message longer than 32 KiB is cut there and the line
 * gets "truncated":true.  errno is preserved. */
void mcf_log_write(enum mcf_log_level level, const char *id, const char *fmt,
    ...) __attribute__((format(printf, 3, 4)));

#define MCF_LOG_AT(lvl, id, ...)                           \
	do {                                               \
		if (mcf_log_enabled(lvl))                  \
			mcf_log_write(lvl, id, __VA_ARGS__); \
	} while (0)
#define mcf_log_debug(id, ...) MCF_LOG_AT(MCF_LOG_DEBUG, id, __VA_ARGS__)
#define mcf_log_info(id, ...) MCF_LOG_AT(MCF_LOG_INFO, id, __VA_ARGS__)
#define mcf_log_warn(id, ...) MCF_LOG_AT(MCF_LOG_WARN, id, __VA_ARGS__)
#define mcf_log_error(id, ...) MCF_LOG_AT(MCF_LOG_ERROR, id, __VA_ARGS__)

#endif /* MCF_COMMON_LOG_H */
