/*
 * ks_spawn.h — starting and stopping a kubesim child process for tests
 * that talk to a real server (kclient_test, leaderelect_test).
 *
 * The binary comes from the KUBESIM environment variable (CTest sets it).
 * kubesim is started with posix_spawn (never fork without exec: STYLE.md
 * §8) on 127.0.0.1:0, its "listening on URL" line is read with a deadline,
 * and it is stopped by PID only.
 */
#ifndef KS_SPAWN_H
#define KS_SPAWN_H

#include <stdint.h>
#include <sys/types.h>

typedef struct ks_spawn {
	pid_t pid;      /* 0 when not running */
	int   out_fd;   /* kubesim's stdout, -1 when closed */
	char  url[128]; /* "http://127.0.0.1:PORT" */
} ks_spawn;

/* Milliseconds on the monotonic clock. */
int64_t ks_spawn_now_ms(void);

/* Starts kubesim with `extra` flags (NULL-terminated, may be NULL) and
 * waits up to 20 s × `scale` for its URL.  Returns 0 or -1. */
int ks_spawn_start(ks_spawn *ks, const char *const *extra, int scale);

/* SIGTERM by PID, waits up to 10 s × `scale` (then SIGKILL); returns the
 * wait status, or -1 when it had to be killed or was not running. */
int ks_spawn_stop(ks_spawn *ks, int scale);

#endif /* KS_SPAWN_H */
