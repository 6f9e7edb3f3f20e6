/*
 * ks_spawn.c — a kubesim child process for tests (see ks_spawn.h).
 */
#include "ks_spawn.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

int64_t
ks_spawn_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
ks_spawn_start(ks_spawn *ks, const char *const *extra, int scale)
{
	memset(ks, 0, sizeof(*ks));
	ks->out_fd      = -1;
	const char *bin = getenv("KUBESIM");
	if (bin == NULL || bin[0] == '\0') {
		fprintf(stderr, "KUBESIM is not set\n");
		return -1;
	}
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) != 0)
		return -1;
	const char *argv[16]
	    = { bin, "--listen", "127.0.0.1:0", "--log-level", "warn" };
	int ac = 5;
	for (int i = 0; extra != NULL && extra[i] != NULL && ac < 15; i++)
		argv[ac++] = extra[i];
	argv[ac] = NULL;
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
	int rc = posix_spawn(
	    &ks->pid, bin, &fa, NULL, (char *const *) argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(pfd[1]);
	ks->out_fd = pfd[0];
	if (rc != 0) {
		ks->pid = 0;
		return -1;
	}
	int64_t deadline = ks_spawn_now_ms() + 20000LL * scale;
	char    line[256];
	size_t  n = 0;
	while (ks_spawn_now_ms() < deadline) {
		struct pollfd p = { .fd = ks->out_fd, .events = POLLIN };
		if (poll(&p, 1, 100) <= 0)
			continue;
		ssize_t r = read(ks->out_fd, line + n, sizeof(line) - 1 - n);
		if (r <= 0)
			return -1;
		n += (size_t) r;
		line[n]  = '\0';
		char *nl = strchr(line, '\n');
		if (nl != NULL) {
			*nl = '\0';
			if (sscanf(line, "listening on %127s", ks->url) != 1)
				return -1;
			return 0;
		}
		if (n == sizeof(line) - 1)
			return -1;
	}
	return -1;
}

int
ks_spawn_stop(ks_spawn *ks, int scale)
{
	int status = -1;
	if (ks->pid > 0) {
		kill(ks->pid, SIGTERM);
		int64_t deadline = ks_spawn_now_ms() + 10000LL * scale;
		bool    reaped   = false;
		while (ks_spawn_now_ms() < deadline) {
			if (waitpid(ks->pid, &status, WNOHANG) == ks->pid) {
				reaped = true;
				break;
			}
			struct timespec ts = { 0, 10000000L };
			nanosleep(&ts, NULL);
		}
		if (!reaped) {
			kill(ks->pid, SIGKILL);
			waitpid(ks->pid, &status, 0);
			status = -1;
		}
		ks->pid = 0;
	}
	if (ks->out_fd >= 0)
		close(ks->out_fd);
	ks->out_fd = -1;
	return status;
}
