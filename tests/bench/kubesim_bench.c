/*
 * kubesim_bench.c — load benchmark for kubesim (docs/BENCHMARKS.md).
 *
 * The benchmark starts its own kubesim with posix_spawn (a fresh one for
 * every metric and repetition, so no measurement inherits another's
 * state), drives it from this separate process over loopback, and prints
 * one line per metric:
 *
 *	metric value unit target PASS|FAIL|smoke
 *
 * Lines starting with "# " are information (sizes, spreads, the reason
 * for an error); a parser can ignore them.  The metrics:
 *
 *   watch_rss_10k     kubesim's VmRSS holding 10,000 watch streams
 *                     (every one has had its 200 headers and
 *                     /_sim/watchers lists them all)          < 1024 MiB
 *   events_per_s_1k   watch events delivered per second, summed over
 *                     1,000 watchers of one namespace while /_sim/load
 *                     updates 1,000 objects twice; counted as complete
 *                     JSON lines read here, from the first write request
 *                     to the last event received             >= 50,000/s
 *   list_10k_ms       median time of a LIST of 10,000 ~1 KiB objects,
 *                     request sent to last body byte read      <= 100 ms
 *   load_writes_per_s /_sim/load creates per second (its own count and
 *                     seconds), no watchers                  >= 20,000/s
 *
 * --smoke runs the same code at small sizes so that CTest keeps it from
 * rotting; its verdict word is "smoke" because the targets are defined for
 * the full sizes.  --repeat N repeats every metric N times and prints the
 * median.
 *
 * Exit codes: 0 every metric was measured (and, in a full run, met its
 * target); 1 a full run measured everything but a target failed; 2 an
 * error: bad usage, kubesim would not start or died, a connection was
 * lost, a response was wrong, too few file descriptors.
 *
 * Threads: one.  Every socket is non-blocking and served by one
 * level-triggered epoll loop (client_poll), the small control requests
 * (/_sim/load, /_sim/watchers, the LISTs) included, so the watch streams
 * keep being read while a request is outstanding.  HTTP/1.1 responses are
 * parsed incrementally: head, then a Content-Length or chunked body; a
 * watch body is not kept, only its newlines are counted.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "alloc.h"
#include "err.h"
#include "flags.h"

extern char **environ;

/* Response heads larger than this are a protocol error. */
#define HEAD_MAX (64 * 1024)
/* One read buffer for every socket. */
#define RBUF_SIZE (256 * 1024)
/* Reads per readiness event, so one busy socket cannot starve others. */
#define READS_PER_EVENT 8
#define EPOLL_EVENTS 512
/* Watch connections opened but not yet answered: keeps the SYN and accept
 * queues (somaxconn 4096, tcp_max_syn_backlog 2048) from overflowing,
 * which would cost a 1 s SYN retransmission. */
#define MAX_CONNECTING 256
/* Descriptors kept spare besides the watch sockets. */
#define FD_SPARE 64
/* Deadlines, multiplied by MCF_TEST_TIMEOUT_SCALE. */
#define SPAWN_DEADLINE_MS 10000
#define STOP_DEADLINE_MS 10000
#define STALL_MS 20000
#define NAMESPACE "bench"

enum exit_code {
	EXIT_PASS  = 0,
	EXIT_FAIL  = 1,
	EXIT_ERROR = 2,
};

/* --------------------------------------------------------------------- */
/* Time and small helpers                                                */
/* --------------------------------------------------------------------- */

static int64_t
now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *) a, y = *(const double *) b;
	return x < y ? -1 : x > y ? 1 : 0;
}

/* Median of n > 0 values; sorts them. */
static double
median(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* --------------------------------------------------------------------- */
/* kubesim, the child process                                            */
/* --------------------------------------------------------------------- */

typedef struct kubesim {
	pid_t pid;
	int   out_fd; /* read end of its stdout (owned) */
	int   port;
	bool  reaped;
	int   wstatus;
	char  log[64]; /* its stderr, kept when something failed */
} kubesim;

/* Most extra arguments --kubesim-args may add. */
#define EXTRA_ARGS_MAX 16

/* Starts `path --listen 127.0.0.1:0 --history-events 200000 [extra...]`
 * with stdout on a pipe and stderr in a temporary file, and reads the port
 * from its "listening on http://127.0.0.1:PORT" line within the deadline.
 * `extra` is NULL-terminated (borrowed). */
static int
kubesim_start(kubesim *k, const char *path, char *const *extra, int scale,
    mcf_errinfo *ei)
{
	memset(k, 0, sizeof(*k));
	k->out_fd = -1;
	snprintf(k->log, sizeof(k->log), "/tmp/kubesim_bench.XXXXXX");
	int logfd = mkostemp(k->log, O_CLOEXEC);
	if (logfd < 0)
		return mcf_errinfo_set(
		    ei, MCF_EIO, "mkstemp: %s", strerror(errno));
	int p[2];
	if (pipe2(p, O_CLOEXEC) != 0) {
		close(logfd);
		return mcf_errinfo_set(
		    ei, MCF_EIO, "pipe: %s", strerror(errno));
	}
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, p[1], STDOUT_FILENO);
	posix_spawn_file_actions_adddup2(&fa, logfd, STDERR_FILENO);
	char *argv[6 + EXTRA_ARGS_MAX] = { (char *) path, "--listen",
		"127.0.0.1:0", "--history-events", "200000" };
	for (int i = 0; extra != NULL && extra[i] != NULL; i++)
		argv[5 + i] = extra[i];
	int rc = posix_spawn(&k->pid, path, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(p[1]);
	close(logfd);
	if (rc != 0) {
		close(p[0]);
		k->reaped = true;
		return mcf_errinfo_set(
		    ei, MCF_EIO, "cannot start %s: %s", path, strerror(rc));
	}
	k->out_fd = p[0];

	char    line[256];
	size_t  n = 0;
	int64_t deadline
	    = now_ns() + (int64_t) SPAWN_DEADLINE_MS * scale * 1000000;
	while (memchr(line, '\n', n) == NULL) {
		int64_t left = (deadline - now_ns()) / 1000000;
		if (left <= 0)
			return mcf_errinfo_set(ei, MCF_ETIMEDOUT,
			    "kubesim printed no listening line within %d ms "
			    "(log: %s)",
			    SPAWN_DEADLINE_MS * scale, k->log);
		struct pollfd pfd = { .fd = k->out_fd, .events = POLLIN };
		if (poll(&pfd, 1, (int) left) <= 0)
			continue;
		ssize_t r = read(k->out_fd, line + n, sizeof(line) - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0 || (n += (size_t) r) >= sizeof(line) - 1)
			return mcf_errinfo_set(ei, MCF_EPROTO,
			    "kubesim exited or wrote no listening line "
			    "(log: %s)",
			    k->log);
	}
	line[n]         = '\0';
	const char *pre = "listening on http://127.0.0.1:";
	if (strncmp(line, pre, strlen(pre)) != 0
	    || (k->port = atoi(line + strlen(pre))) <= 0)
		return mcf_errinfo_set(ei, MCF_EPROTO,
		    "unexpected first line from kubesim: %.*s",
		    (int) strcspn(line, "\n"), line);
	return MCF_OK;
}

/* True while kubesim runs; reaps it once it has exited. */
static bool
kubesim_alive(kubesim *k)
{
	if (k->reaped)
		return false;
	if (waitpid(k->pid, &k->wstatus, WNOHANG) == k->pid)
		k->reaped = true;
	return !k->reaped;
}

/* SIGTERM, then SIGKILL after the deadline.  MCF_OK when kubesim exited
 * with status 0 (it had not died before). */
static int
kubesim_stop(kubesim *k, int scale, mcf_errinfo *ei)
{
	int rc = MCF_OK;
	if (k->pid <= 0)
		return rc;
	if (!kubesim_alive(k)) {
		rc = mcf_errinfo_set(ei, MCF_EIO,
		    "kubesim died during the run (status 0x%x, log: %s)",
		    k->wstatus, k->log);
	} else {
		kill(k->pid, SIGTERM);
		int64_t deadline
		    = now_ns() + (int64_t) STOP_DEADLINE_MS * scale * 1000000;
		while (kubesim_alive(k) && now_ns() < deadline)
			usleep(5000);
		if (!k->reaped) {
			kill(k->pid, SIGKILL);
			waitpid(k->pid, &k->wstatus, 0);
			k->reaped = true;
			rc        = mcf_errinfo_set(ei, MCF_ETIMEDOUT,
			           "kubesim ignored SIGTERM for %d ms (log: %s)",
			           STOP_DEADLINE_MS * scale, k->log);
		} else if (!WIFEXITED(k->wstatus)
		    || WEXITSTATUS(k->wstatus) != 0) {
			rc = mcf_errinfo_set(ei, MCF_EIO,
			    "kubesim ended with status 0x%x (log: %s)",
			    k->wstatus, k->log);
		}
	}
	if (k->out_fd >= 0)
		close(k->out_fd);
	k->out_fd = -1;
	k->pid    = 0;
	return rc;
}

/* Removes the log unless it is needed to explain an error. */
static void
kubesim_forget_log(kubesim *k, bool keep)
{
	if (k->log[0] == '\0')
		return;
	if (keep)
		printf("# kubesim log kept: %s\n", k->log);
	else
		unlink(k->log);
	k->log[0] = '\0';
}

/* kubesim's resident set in KiB (VmRSS), -1 if unreadable. */
static long
kubesim_rss_kib(const kubesim *k, const char *field)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", (int) k->pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return -1;
	long   v  = -1;
	size_t fl = strlen(field);
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, field, fl) == 0 && line[fl] == ':') {
			v = strtol(line + fl + 1, NULL, 10);
			break;
		}
	}
	fclose(f);
	return v;
}

/* CPU seconds used so far by kubesim (from /proc/PID/stat) and by this
 * process, with the time they were read: two marks tell which side was
 * busy during a measurement. */
typedef struct cpu_mark {
	int64_t t_ns;
	double  ks_user, ks_sys;
	double  me_user, me_sys;
} cpu_mark;

static void
cpu_mark_take(const kubesim *k, cpu_mark *m)
{
	memset(m, 0, sizeof(*m));
	m->t_ns = now_ns();
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int) k->pid);
	FILE *f = fopen(path, "r");
	if (f != NULL) {
		size_t n = fread(buf, 1, sizeof(buf) - 1, f);
		buf[n]   = '\0';
		fclose(f);
		/* Fields 14 and 15 (utime, stime) count from the state,
		 * field 3, which follows the last ')'. */
		char              *p  = strrchr(buf, ')');
		unsigned long long ut = 0, st = 0;
		if (p != NULL
		    && sscanf(p + 2,
		           "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u "
		           "%*u %llu %llu",
		           &ut, &st)
		        == 2) {
			double hz  = (double) sysconf(_SC_CLK_TCK);
			m->ks_user = (double) ut / hz;
			m->ks_sys  = (double) st / hz;
		}
	}
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	m->me_user
	    = (double) ru.ru_utime.tv_sec + (double) ru.ru_utime.tv_usec / 1e6;
	m->me_sys
	    = (double) ru.ru_stime.tv_sec + (double) ru.ru_stime.tv_usec / 1e6;
}

/* "# what: kubesim CPU ..., bench CPU ..." between two marks. */
static void
cpu_mark_print(const char *what, const cpu_mark *a, const cpu_mark *b)
{
	double wall = (double) (b->t_ns - a->t_ns) / 1e9;
	double ku = b->ks_user - a->ks_user, ks = b->ks_sys - a->ks_sys;
	double mu = b->me_user - a->me_user, ms = b->me_sys - a->me_sys;
	printf("# %s: %.3f s wall; kubesim CPU %.2f s (user %.2f, sys "
	       "%.2f, %.0f%% of a core); bench CPU %.2f s (user %.2f, sys "
	       "%.2f, %.0f%%)\n",
	    what, wall, ku + ks, ku, ks, 100 * (ku + ks) / wall, mu + ms, mu,
	    ms, 100 * (mu + ms) / wall);
}

/* --------------------------------------------------------------------- */
/* HTTP/1.1 client connections on one epoll loop                         */
/* --------------------------------------------------------------------- */

enum conn_state {
	C_CONNECTING, /* connect() in progress, request queued */
	C_HEAD,       /* request sent (or being sent), reading the head */
	C_BODY,       /* reading the body */
	C_IDLE,       /* response complete; may send another request */
	C_DEAD,       /* failed or closed; see err */
};

enum body_mode {
	B_LENGTH,  /* Content-Length */
	B_CHUNKED, /* Transfer-Encoding: chunked */
	B_EOF,     /* until the peer closes */
};

enum chunk_state {
	CK_SIZE,    /* hex digits of the chunk size */
	CK_EXT,     /* extensions, up to the LF */
	CK_DATA,    /* chunk data */
	CK_DATA_LF, /* the CRLF after the data */
	CK_TRAILER, /* trailer lines, at a line start */
	CK_SKIP,    /* inside a trailer line */
};

typedef struct client client;

typedef struct conn {
	client  *cl; /* borrowed: the client outlives its conns */
	int      fd;
	int      state;
	bool     watch;    /* a watch stream: count lines, keep nothing */
	bool     want_out; /* EPOLLOUT armed */
	char    *out;      /* request bytes (owned) */
	size_t   out_len, out_off;
	char    *head; /* response head so far (owned) */
	size_t   head_len, head_cap;
	int      status;
	int      mode;
	uint64_t remaining; /* B_LENGTH bytes left, or chunk bytes left */
	int      ck;
	uint64_t ck_size;
	int      ck_digits;
	char    *body; /* response body of a non-watch request (owned) */
	size_t   body_len, body_cap;
	uint64_t lines;   /* newlines received on a watch */
	int64_t  sent_ns; /* request handed to the socket */
	int64_t  done_ns; /* response complete */
	char     err[160];
} conn;

struct client {
	int                epfd;
	struct sockaddr_in addr;
	kubesim           *ks; /* borrowed: to notice that it died */
	int                scale;
	char              *rbuf;        /* owned */
	int64_t            progress_ns; /* last byte received from anyone */
	int64_t            alive_check_ns;
	/* Watch bookkeeping, summed over the client's watch conns. */
	size_t   watch_heads; /* got a 200 head */
	size_t   watch_dead;
	uint64_t lines_total;
	int64_t  last_line_ns;
	char     first_err[200];
};

static void
client_init(client *cl, kubesim *ks, int scale)
{
	memset(cl, 0, sizeof(*cl));
	cl->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (cl->epfd < 0)
		mcf_panic("epoll_create1 failed");
	cl->addr.sin_family      = AF_INET;
	cl->addr.sin_port        = htons((uint16_t) ks->port);
	cl->addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cl->ks                   = ks;
	cl->scale                = scale;
	cl->rbuf                 = mcf_malloc(RBUF_SIZE);
	cl->progress_ns          = now_ns();
}

static void
client_fini(client *cl)
{
	close(cl->epfd);
	free(cl->rbuf);
	cl->rbuf = NULL;
}

static void conn_fail(conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
conn_fail(conn *c, const char *fmt, ...)
{
	if (c->state == C_DEAD)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->err, sizeof(c->err), fmt, ap);
	va_end(ap);
	c->state = C_DEAD;
	if (c->fd >= 0) {
		epoll_ctl(c->cl->epfd, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
		c->fd = -1;
	}
	if (c->watch) {
		c->cl->watch_dead++;
		if (c->cl->first_err[0] == '\0')
			snprintf(c->cl->first_err, sizeof(c->cl->first_err),
			    "watch stream lost: %s", c->err);
	}
}

static void
conn_arm(conn *c, bool out)
{
	if (c->fd < 0 || c->want_out == out)
		return;
	struct epoll_event ev
	    = { .events         = EPOLLIN | EPOLLRDHUP | (out ? EPOLLOUT : 0),
		      .data.ptr = c };
	epoll_ctl(c->cl->epfd, EPOLL_CTL_MOD, c->fd, &ev);
	c->want_out = out;
}

/* Opens a non-blocking connection to kubesim; the request follows with
 * conn_request().  A conn that cannot be opened comes back C_DEAD. */
static conn *
conn_open(client *cl, bool watch)
{
	conn *c  = mcf_calloc(1, sizeof(*c));
	c->cl    = cl;
	c->watch = watch;
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	c->state = C_CONNECTING;
	if (c->fd < 0) {
		conn_fail(c, "socket: %s", strerror(errno));
		return c;
	}
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, (struct sockaddr *) &cl->addr, sizeof(cl->addr))
	        != 0
	    && errno != EINPROGRESS) {
		conn_fail(c, "connect: %s", strerror(errno));
		return c;
	}
	struct epoll_event ev
	    = { .events = EPOLLIN | EPOLLRDHUP | EPOLLOUT, .data.ptr = c };
	if (epoll_ctl(cl->epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
		conn_fail(c, "epoll_ctl: %s", strerror(errno));
		return c;
	}
	c->want_out = true;
	return c;
}

static void
conn_free(conn *c)
{
	if (c == NULL)
		return;
	if (c->fd >= 0) {
		epoll_ctl(c->cl->epfd, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
	}
	free(c->out);
	free(c->head);
	free(c->body);
	free(c);
}

static void
conn_flush(conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t w = send(c->fd, c->out + c->out_off,
		    c->out_len - c->out_off, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN) {
			conn_arm(c, true);
			return;
		}
		if (w < 0) {
			conn_fail(c, "send: %s", strerror(errno));
			return;
		}
		c->out_off += (size_t) w;
	}
	conn_arm(c, false);
}

/* Queues a request on an open or idle connection.  `body` may be NULL. */
static void
conn_request(conn *c, const char *method, const char *path, const char *body)
{
	if (c->state == C_DEAD)
		return;
	free(c->out);
	/* The body buffer keeps its capacity: repeated LISTs do not pay for
	 * growing it again. */
	c->body_len = 0;
	if (c->body != NULL)
		c->body[0] = '\0';
	c->head_len = 0;
	c->status   = 0;
	if (body != NULL)
		c->out = mcf_asprintf("%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
		                      "User-Agent: kubesim_bench\r\n"
		                      "Content-Type: application/json\r\n"
		                      "Content-Length: %zu\r\n\r\n%s",
		    method, path, strlen(body), body);
	else
		c->out = mcf_asprintf("%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
		                      "User-Agent: kubesim_bench\r\n"
		                      "Accept: application/json\r\n\r\n",
		    method, path);
	c->out_len = strlen(c->out);
	c->out_off = 0;
	c->sent_ns = now_ns();
	if (c->state == C_IDLE) {
		c->state = C_HEAD;
		conn_flush(c);
	}
}

static void
conn_done(conn *c)
{
	c->done_ns = now_ns();
	if (c->watch) {
		conn_fail(c, "kubesim ended the stream after %llu events",
		    (unsigned long long) c->lines);
		return;
	}
	c->state = C_IDLE;
}

/* Body bytes, chunk framing removed. */
static void
conn_data(conn *c, const char *p, size_t n)
{
	if (c->watch) {
		const char *end = p + n;
		uint64_t    k   = 0;
		while ((p = memchr(p, '\n', (size_t) (end - p))) != NULL) {
			k++;
			p++;
		}
		if (k > 0) {
			c->lines += k;
			c->cl->lines_total += k;
			c->cl->last_line_ns = now_ns();
		}
		return;
	}
	if (c->body_len + n + 1 > c->body_cap) {
		c->body_cap = (c->body_len + n + 1) * 2;
		c->body     = mcf_realloc(c->body, c->body_cap);
	}
	memcpy(c->body + c->body_len, p, n);
	c->body_len += n;
	c->body[c->body_len] = '\0';
}

static int
hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* Consumes chunked framing; returns the bytes used. */
static size_t
conn_chunked(conn *c, const char *p, size_t n)
{
	size_t i = 0;
	while (i < n && c->state == C_BODY) {
		char ch = p[i];
		switch (c->ck) {
		case CK_SIZE:
			i++;
			if (hexval(ch) >= 0 && c->ck_digits < 15) {
				c->ck_size
				    = c->ck_size * 16 + (uint64_t) hexval(ch);
				c->ck_digits++;
			} else if (ch == ';' || ch == ' ' || ch == '\t') {
				c->ck = CK_EXT;
			} else if (ch == '\r') {
				/* the LF follows */
			} else if (ch == '\n' && c->ck_digits > 0) {
				c->remaining = c->ck_size;
				c->ck = c->ck_size == 0 ? CK_TRAILER : CK_DATA;
			} else {
				conn_fail(c, "bad chunk size line");
			}
			break;
		case CK_EXT:
			i++;
			if (ch == '\n') {
				c->remaining = c->ck_size;
				c->ck = c->ck_size == 0 ? CK_TRAILER : CK_DATA;
			}
			break;
		case CK_DATA: {
			size_t take = n - i < c->remaining
			    ? n - i
			    : (size_t) c->remaining;
			conn_data(c, p + i, take);
			i += take;
			c->remaining -= take;
			if (c->remaining == 0)
				c->ck = CK_DATA_LF;
			break;
		}
		case CK_DATA_LF:
			i++;
			if (ch == '\n') {
				c->ck        = CK_SIZE;
				c->ck_size   = 0;
				c->ck_digits = 0;
			} else if (ch != '\r') {
				conn_fail(c, "no CRLF after chunk data");
			}
			break;
		case CK_TRAILER:
			i++;
			if (ch == '\n')
				conn_done(c);
			else if (ch != '\r')
				c->ck = CK_SKIP;
			break;
		case CK_SKIP:
			i++;
			if (ch == '\n')
				c->ck = CK_TRAILER;
			break;
		}
	}
	return i;
}

/* Parses a complete head (`len` bytes, ending in the blank line). */
static void
conn_parse_head(conn *c, const char *h, size_t len)
{
	if (len < 12 || strncmp(h, "HTTP/1.", 7) != 0) {
		conn_fail(c, "not an HTTP/1.x response");
		return;
	}
	c->status               = atoi(h + 9);
	c->mode                 = B_EOF;
	bool        have_length = false;
	const char *end         = h + len;
	const char *line        = (const char *) memchr(h, '\n', len) + 1;
	while (line < end) {
		const char *eol = memchr(line, '\n', (size_t) (end - line));
		if (eol == NULL)
			break;
		if (strncasecmp(line, "content-length:", 15) == 0) {
			c->remaining = strtoull(line + 15, NULL, 10);
			have_length  = true;
		} else if (strncasecmp(line, "transfer-encoding:", 18) == 0
		    && memmem(line, (size_t) (eol - line), "chunked", 7)
		        != NULL) {
			c->mode = B_CHUNKED;
		}
		line = eol + 1;
	}
	if (c->mode != B_CHUNKED && have_length)
		c->mode = B_LENGTH;
	c->ck        = CK_SIZE;
	c->ck_size   = 0;
	c->ck_digits = 0;
	c->state     = C_BODY;
	if (c->watch) {
		if (c->status != 200 || c->mode != B_CHUNKED) {
			conn_fail(c, "watch answered HTTP %d%s", c->status,
			    c->mode != B_CHUNKED ? " without chunking" : "");
			return;
		}
		c->cl->watch_heads++;
	}
	if (c->mode == B_LENGTH && c->remaining == 0)
		conn_done(c);
}

/* Everything read from the socket goes through here. */
static void
conn_feed(conn *c, const char *p, size_t n)
{
	while (n > 0 && c->state != C_DEAD) {
		if (c->state == C_IDLE || c->state == C_CONNECTING) {
			conn_fail(c, "%zu unexpected bytes from kubesim", n);
			return;
		}
		if (c->state == C_HEAD) {
			size_t from = c->head_len > 3 ? c->head_len - 3 : 0;
			size_t take = n;
			if (c->head_len + take > HEAD_MAX)
				take = HEAD_MAX - c->head_len;
			if (c->head_len + take + 1 > c->head_cap) {
				c->head_cap = c->head_len + take + 1;
				c->head = mcf_realloc(c->head, c->head_cap);
			}
			memcpy(c->head + c->head_len, p, take);
			c->head_len += take;
			/* Terminated, so that atoi and strtoull stop. */
			c->head[c->head_len] = '\0';
			char *e              = memmem(
			                 c->head + from, c->head_len - from, "\r\n\r\n", 4);
			if (e == NULL) {
				if (c->head_len >= HEAD_MAX)
					conn_fail(c, "response head too long");
				return;
			}
			size_t hl   = (size_t) (e + 4 - c->head);
			size_t used = take - (c->head_len - hl);
			conn_parse_head(c, c->head, hl);
			c->head_len = 0;
			if (c->watch) {
				free(c->head);
				c->head     = NULL;
				c->head_cap = 0;
			}
			p += used;
			n -= used;
			continue;
		}
		/* C_BODY */
		if (c->mode == B_CHUNKED) {
			size_t used = conn_chunked(c, p, n);
			p += used;
			n -= used;
		} else {
			size_t take = n;
			if (c->mode == B_LENGTH && take > c->remaining)
				take = (size_t) c->remaining;
			conn_data(c, p, take);
			p += take;
			n -= take;
			if (c->mode == B_LENGTH && (c->remaining -= take) == 0)
				conn_done(c);
		}
	}
}

static void
conn_ready(conn *c, uint32_t events)
{
	client *cl = c->cl;
	if (c->state == C_CONNECTING && (events & (EPOLLOUT | EPOLLERR))) {
		int       err = 0;
		socklen_t len = sizeof(err);
		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (err != 0) {
			conn_fail(c, "connect: %s", strerror(err));
			return;
		}
		c->state = C_HEAD;
	}
	if (c->state == C_HEAD && c->out_off < c->out_len
	    && (events & EPOLLOUT))
		conn_flush(c);
	if (!(events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
		return;
	for (int i = 0; i < READS_PER_EVENT && c->state != C_DEAD; i++) {
		ssize_t r = recv(c->fd, cl->rbuf, RBUF_SIZE, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN)
			return;
		if (r < 0) {
			conn_fail(c, "recv: %s", strerror(errno));
			return;
		}
		if (r == 0) {
			if (c->state == C_BODY && c->mode == B_EOF) {
				conn_done(c);
				if (c->state != C_DEAD)
					conn_fail(
					    c, "closed after the response");
			} else {
				conn_fail(c, "kubesim closed the connection");
			}
			return;
		}
		cl->progress_ns = now_ns();
		conn_feed(c, cl->rbuf, (size_t) r);
		if ((size_t) r < RBUF_SIZE)
			return;
	}
}

/* One round of the loop: waits up to `timeout_ms` for readiness.  Returns
 * MCF_OK, or an error when nothing arrived for STALL_MS or kubesim died. */
static int
client_poll(client *cl, int timeout_ms, mcf_errinfo *ei)
{
	struct epoll_event evs[EPOLL_EVENTS];
	int n = epoll_wait(cl->epfd, evs, EPOLL_EVENTS, timeout_ms);
	if (n < 0 && errno != EINTR)
		return mcf_errinfo_set(
		    ei, MCF_EIO, "epoll_wait: %s", strerror(errno));
	for (int i = 0; i < n; i++)
		conn_ready(evs[i].data.ptr, evs[i].events);
	int64_t t = now_ns();
	if (t - cl->alive_check_ns > 200000000) {
		cl->alive_check_ns = t;
		if (!kubesim_alive(cl->ks))
			return mcf_errinfo_set(ei, MCF_EIO,
			    "kubesim died (status 0x%x, log: %s)",
			    cl->ks->wstatus, cl->ks->log);
	}
	if (t - cl->progress_ns > (int64_t) STALL_MS * cl->scale * 1000000)
		return mcf_errinfo_set(ei, MCF_ETIMEDOUT,
		    "nothing received from kubesim for %d ms",
		    STALL_MS * cl->scale);
	return MCF_OK;
}

/* Runs the loop until `c` has its complete response. */
static int
conn_wait(conn *c, mcf_errinfo *ei)
{
	client *cl      = c->cl;
	cl->progress_ns = now_ns();
	while (c->state != C_IDLE) {
		if (c->state == C_DEAD)
			return mcf_errinfo_set(
			    ei, MCF_EIO, "request: %s", c->err);
		int rc = client_poll(cl, 100, ei);
		if (rc != MCF_OK)
			return rc;
	}
	return MCF_OK;
}

/* A request on `c` (a fresh one when NULL), waited for; the reply's JSON
 * object comes back as new in *out when `out` is not NULL.  Fails unless
 * the status is 200. */
static int
http_json(client *cl, conn *c, const char *method, const char *path,
    const char *body, json_t **out, mcf_errinfo *ei)
{
	bool own = c == NULL;
	if (own) {
		c = conn_open(cl, false);
		/* The request goes out once connected. */
	}
	conn_request(c, method, path, body);
	int rc = conn_wait(c, ei);
	if (rc == MCF_OK && c->status != 200)
		rc = mcf_errinfo_set(ei, MCF_EPROTO, "%s %s: HTTP %d: %.200s",
		    method, path, c->status, c->body ? c->body : "");
	if (rc == MCF_OK && out != NULL) {
		json_error_t je;
		*out = json_loadb(c->body ? c->body : "", c->body_len, 0, &je);
		if (*out == NULL)
			rc = mcf_errinfo_set(ei, MCF_EPROTO,
			    "%s %s: bad JSON: %s", method, path, je.text);
	}
	if (own)
		conn_free(c);
	return rc;
}

/* POST /_sim/load; returns its count and seconds. */
static int
sim_load(client *cl, conn *c, const char *op, int count, int size,
    int64_t *done, double *secs, uint64_t *last_rv, mcf_errinfo *ei)
{
	char body[300];
	snprintf(body, sizeof(body),
	    "{\"plane\":\"\",\"group\":\"\",\"version\":\"v1\","
	    "\"resource\":\"configmaps\",\"namespace\":\"" NAMESPACE "\","
	    "\"op\":\"%s\",\"count\":%d,\"size\":%d,\"rate\":0}",
	    op, count, size);
	json_t *ans = NULL;
	int     rc  = http_json(cl, c, "POST", "/_sim/load", body, &ans, ei);
	if (rc != MCF_OK)
		return rc;
	json_int_t  n  = json_integer_value(json_object_get(ans, "count"));
	double      s  = json_number_value(json_object_get(ans, "seconds"));
	const char *rv = json_string_value(json_object_get(ans, "last_rv"));
	if (n != count || s <= 0 || rv == NULL)
		rc = mcf_errinfo_set(ei, MCF_EPROTO,
		    "/_sim/load %s of %d answered count %lld, seconds %g", op,
		    count, (long long) n, s);
	if (done != NULL)
		*done = n;
	if (secs != NULL)
		*secs = s;
	if (last_rv != NULL && rv != NULL)
		*last_rv = strtoull(rv, NULL, 10);
	json_decref(ans);
	return rc;
}

/* Number of watches /_sim/watchers lists on the bench namespace. */
static int
sim_watchers(client *cl, size_t *count, mcf_errinfo *ei)
{
	json_t *ans = NULL;
	int rc = http_json(cl, NULL, "GET", "/_sim/watchers", NULL, &ans, ei);
	if (rc != MCF_OK)
		return rc;
	json_t *items = json_object_get(ans, "items");
	size_t  i, n = 0;
	json_t *w;
	json_array_foreach(items, i, w)
	{
		const char *ns = json_string_value(json_object_get(w, "ns"));
		if (ns != NULL && strcmp(ns, NAMESPACE) == 0)
			n++;
	}
	*count = n;
	json_decref(ans);
	return MCF_OK;
}

/* Opens `n` watch streams on the bench namespace (from `rv`, or with
 * synthetic ADDED events for what exists when rv is 0), at most
 * MAX_CONNECTING unanswered at a time, and waits until every one has its
 * 200 head and /_sim/watchers lists them all. */
static int
open_watches(client *cl, conn **ws, size_t n, uint64_t rv, mcf_errinfo *ei)
{
	char path[200];
	if (rv > 0)
		snprintf(path, sizeof(path),
		    "/api/v1/namespaces/" NAMESPACE "/configmaps?watch=true"
		    "&resourceVersion=%llu",
		    (unsigned long long) rv);
	else
		snprintf(path, sizeof(path),
		    "/api/v1/namespaces/" NAMESPACE "/configmaps?watch=true");
	size_t opened   = 0;
	cl->progress_ns = now_ns();
	while (cl->watch_heads < n) {
		if (cl->watch_dead > 0)
			return mcf_errinfo_set(ei, MCF_EIO,
			    "%zu of %zu watches failed to open; first: %s",
			    cl->watch_dead, n, cl->first_err);
		while (opened < n
		    && opened - cl->watch_heads - cl->watch_dead
		        < MAX_CONNECTING) {
			ws[opened] = conn_open(cl, true);
			conn_request(ws[opened], "GET", path, NULL);
			opened++;
		}
		int rc = client_poll(cl, 100, ei);
		if (rc != MCF_OK)
			return rc;
	}
	int64_t deadline = now_ns() + (int64_t) 10000 * cl->scale * 1000000;
	for (;;) {
		size_t listed = 0;
		int    rc     = sim_watchers(cl, &listed, ei);
		if (rc != MCF_OK)
			return rc;
		if (listed == n)
			break;
		if (now_ns() > deadline)
			return mcf_errinfo_set(ei, MCF_EPROTO,
			    "/_sim/watchers lists %zu watches, %zu were "
			    "answered",
			    listed, n);
		client_poll(cl, 50, ei);
	}
	if (cl->watch_dead > 0)
		return mcf_errinfo_set(ei, MCF_EIO, "%s", cl->first_err);
	return MCF_OK;
}

/* --------------------------------------------------------------------- */
/* The metrics                                                           */
/* --------------------------------------------------------------------- */

typedef struct sizes {
	int rss_watchers; /* watch_rss_10k */
	int ev_watchers;  /* events_per_s_1k */
	int ev_objects;
	int ev_passes;    /* updates of every object */
	int list_objects; /* list_10k_ms */
	int list_size;
	int list_runs;
	int load_writes; /* load_writes_per_s */
	int load_size;
} sizes;

static const sizes full_sizes = {
	.rss_watchers = 10000,
	.ev_watchers  = 1000,
	.ev_objects   = 1000,
	.ev_passes    = 2,
	.list_objects = 10000,
	.list_size    = 1024,
	.list_runs    = 7,
	.load_writes  = 20000,
	.load_size    = 1024,
};

static const sizes smoke_sizes = {
	.rss_watchers = 200,
	.ev_watchers  = 100,
	.ev_objects   = 1000,
	.ev_passes    = 1,
	.list_objects = 1000,
	.list_size    = 1024,
	.list_runs    = 7,
	.load_writes  = 2000,
	.load_size    = 1024,
};

typedef struct bench {
	const char *kubesim_path;
	sizes       sz;
	bool        smoke;
	int         scale;
	rlim_t      nofile; /* soft RLIMIT_NOFILE after raising it */
	char       *extra[EXTRA_ARGS_MAX + 1]; /* more kubesim arguments,
	                                          NULL-terminated (borrowed) */
} bench;

/* State one measurement owns: kubesim, the loop and its connections. */
typedef struct run {
	kubesim ks;
	client  cl;
	bool    started;
	conn  **ws;
	size_t  nws;
} run;

static int
run_start(run *r, const bench *b, mcf_errinfo *ei)
{
	memset(r, 0, sizeof(*r));
	int rc
	    = kubesim_start(&r->ks, b->kubesim_path, b->extra, b->scale, ei);
	if (rc != MCF_OK) {
		kubesim_stop(&r->ks, b->scale, NULL);
		kubesim_forget_log(&r->ks, true);
		return rc;
	}
	client_init(&r->cl, &r->ks, b->scale);
	r->started = true;
	return MCF_OK;
}

/* Stops kubesim, then closes the connections.  `rc` is the measurement's
 * result so far; a failing stop turns success into an error. */
static int
run_end(run *r, const bench *b, int rc, mcf_errinfo *ei)
{
	if (!r->started)
		return rc;
	mcf_errinfo sei;
	int         src = kubesim_stop(&r->ks, b->scale, &sei);
	if (src != MCF_OK && rc == MCF_OK) {
		rc  = src;
		*ei = sei;
	}
	kubesim_forget_log(&r->ks, rc != MCF_OK);
	for (size_t i = 0; i < r->nws; i++)
		conn_free(r->ws[i]);
	free(r->ws);
	r->ws = NULL;
	client_fini(&r->cl);
	r->started = false;
	return rc;
}

static void
run_alloc_watches(run *r, size_t n)
{
	r->ws  = mcf_calloc(n, sizeof(*r->ws));
	r->nws = n;
}

/* watch_rss_10k: MiB resident in kubesim with the watches open. */
static int
measure_rss(const bench *b, double *mib, mcf_errinfo *ei)
{
	size_t n = (size_t) b->sz.rss_watchers;
	if (b->nofile < n + FD_SPARE)
		return mcf_errinfo_set(ei, MCF_ERANGE,
		    "cannot hold %zu watch sockets: RLIMIT_NOFILE hard limit "
		    "is %llu, %zu needed (raise it: ulimit -Hn, or "
		    "/etc/security/limits.conf)",
		    n, (unsigned long long) b->nofile, n + FD_SPARE);
	run r;
	int rc = run_start(&r, b, ei);
	if (rc != MCF_OK)
		return rc;
	long idle = kubesim_rss_kib(&r.ks, "VmRSS");
	run_alloc_watches(&r, n);
	int64_t t0    = now_ns();
	rc            = open_watches(&r.cl, r.ws, n, 0, ei);
	double open_s = (double) (now_ns() - t0) / 1e9;
	if (rc == MCF_OK) {
		long rss = kubesim_rss_kib(&r.ks, "VmRSS");
		if (rss < 0) {
			rc = mcf_errinfo_set(ei, MCF_EIO,
			    "cannot read VmRSS of kubesim (pid %d)",
			    (int) r.ks.pid);
		} else {
			*mib = (double) rss / 1024.0;
			printf("# watch_rss: %zu watches opened in %.2f s; "
			       "kubesim VmRSS %.1f MiB idle, %.1f MiB with "
			       "them (%.1f KiB per watch)\n",
			    n, open_s, (double) idle / 1024.0, *mib,
			    (double) (rss - idle) / (double) n);
		}
	}
	return run_end(&r, b, rc, ei);
}

/* events_per_s_1k: events per second summed over the watchers. */
static int
measure_events(const bench *b, double *rate, mcf_errinfo *ei)
{
	size_t   nw = (size_t) b->sz.ev_watchers;
	int      no = b->sz.ev_objects, passes = b->sz.ev_passes;
	uint64_t rv = 0;
	if (b->nofile < nw + FD_SPARE)
		return mcf_errinfo_set(ei, MCF_ERANGE,
		    "RLIMIT_NOFILE hard limit %llu is below the %zu needed",
		    (unsigned long long) b->nofile, nw + FD_SPARE);
	run r;
	int rc = run_start(&r, b, ei);
	if (rc != MCF_OK)
		return rc;
	client *cl = &r.cl;
	rc         = sim_load(cl, NULL, "create", no, 0, NULL, NULL, &rv, ei);
	run_alloc_watches(&r, nw);
	if (rc == MCF_OK)
		rc = open_watches(cl, r.ws, nw, rv, ei);
	if (rc != MCF_OK)
		return run_end(&r, b, rc, ei);

	/* The writer: `passes` sequential update requests on one
	 * connection, while the loop keeps reading every watch. */
	uint64_t want    = (uint64_t) nw * (uint64_t) no * (uint64_t) passes;
	conn    *wr      = conn_open(cl, false);
	int      sent    = 1;
	double   write_s = 0;
	char     body[300];
	snprintf(body, sizeof(body),
	    "{\"plane\":\"\",\"group\":\"\",\"version\":\"v1\","
	    "\"resource\":\"configmaps\",\"namespace\":\"" NAMESPACE "\","
	    "\"op\":\"update\",\"count\":%d,\"rate\":0}",
	    no);
	cl->lines_total = 0;
	cpu_mark m0, m1;
	cpu_mark_take(&r.ks, &m0);
	int64_t t0      = now_ns();
	cl->progress_ns = t0;
	conn_request(wr, "POST", "/_sim/load", body);
	bool writes_done = false;
	while (rc == MCF_OK && (cl->lines_total < want || !writes_done)) {
		if (cl->watch_dead > 0) {
			rc = mcf_errinfo_set(ei, MCF_EIO,
			    "%zu of %zu watches lost during the writes; "
			    "first: %s",
			    cl->watch_dead, nw, cl->first_err);
			break;
		}
		if (wr->state == C_DEAD) {
			rc = mcf_errinfo_set(
			    ei, MCF_EIO, "writer: %s", wr->err);
			break;
		}
		if (!writes_done && wr->state == C_IDLE) {
			json_t *ans = json_loadb(
			    wr->body ? wr->body : "", wr->body_len, 0, NULL);
			json_int_t got = json_integer_value(
			    json_object_get(ans, "count"));
			write_s += json_number_value(
			    json_object_get(ans, "seconds"));
			json_decref(ans);
			if (wr->status != 200 || got != no) {
				rc = mcf_errinfo_set(ei, MCF_EPROTO,
				    "/_sim/load update: HTTP %d, count %lld",
				    wr->status, (long long) got);
				break;
			}
			if (sent < passes) {
				conn_request(wr, "POST", "/_sim/load", body);
				sent++;
			} else {
				writes_done = true;
			}
		}
		if (cl->lines_total >= want && writes_done)
			break;
		rc = client_poll(cl, 100, ei);
	}
	if (rc == MCF_OK) {
		/* Every watcher must have had exactly its events. */
		for (size_t i = 0; i < nw; i++) {
			uint64_t each = (uint64_t) no * (uint64_t) passes;
			if (r.ws[i]->lines != each) {
				rc = mcf_errinfo_set(ei, MCF_EPROTO,
				    "watch %zu got %llu events, expected %llu",
				    i, (unsigned long long) r.ws[i]->lines,
				    (unsigned long long) each);
				break;
			}
		}
	}
	cpu_mark_take(&r.ks, &m1);
	if (rc == MCF_OK) {
		double secs = (double) (cl->last_line_ns - t0) / 1e9;
		*rate       = (double) want / secs;
		printf("# events: %llu events (%zu watchers x %d objects x %d "
		       "updates) in %.3f s; kubesim's writes took %.3f s\n",
		    (unsigned long long) want, nw, no, passes, secs, write_s);
		cpu_mark_print("events", &m0, &m1);
	}
	conn_free(wr);
	return run_end(&r, b, rc, ei);
}

/* list_10k_ms: every LIST's milliseconds go to samples[0..list_runs). */
static int
measure_list(const bench *b, double *samples, mcf_errinfo *ei)
{
	int no = b->sz.list_objects;
	run r;
	int rc = run_start(&r, b, ei);
	if (rc != MCF_OK)
		return rc;
	client *cl = &r.cl;
	rc         = sim_load(
	            cl, NULL, "create", no, b->sz.list_size, NULL, NULL, NULL, ei);
	conn    *c     = conn_open(cl, false);
	size_t   bytes = 0;
	cpu_mark m0, m1;
	cpu_mark_take(&r.ks, &m0);
	for (int i = 0; rc == MCF_OK && i < b->sz.list_runs; i++) {
		conn_request(c, "GET",
		    "/api/v1/namespaces/" NAMESPACE "/configmaps", NULL);
		rc = conn_wait(c, ei);
		if (rc != MCF_OK)
			break;
		samples[i] = (double) (c->done_ns - c->sent_ns) / 1e6;
		if (c->status != 200) {
			rc = mcf_errinfo_set(
			    ei, MCF_EPROTO, "LIST: HTTP %d", c->status);
			break;
		}
		if (i == 0) {
			/* Checked once, outside the timing. */
			json_t *l = json_loadb(c->body, c->body_len, 0, NULL);
			size_t  items
			    = json_array_size(json_object_get(l, "items"));
			json_decref(l);
			bytes = c->body_len;
			if (items != (size_t) no)
				rc = mcf_errinfo_set(ei, MCF_EPROTO,
				    "LIST returned %zu items, expected %d",
				    items, no);
		}
	}
	cpu_mark_take(&r.ks, &m1);
	if (rc == MCF_OK) {
		printf("# list: %d objects, %.2f MiB body, runs in order (ms, "
		       "the first is cold):",
		    no, (double) bytes / 1048576.0);
		for (int i = 0; i < b->sz.list_runs; i++)
			printf(" %.1f", samples[i]);
		printf("\n");
		cpu_mark_print("list", &m0, &m1);
	}
	conn_free(c);
	return run_end(&r, b, rc, ei);
}

/* load_writes_per_s: creates per second as /_sim/load reports them. */
static int
measure_load(const bench *b, double *rate, mcf_errinfo *ei)
{
	run r;
	int rc = run_start(&r, b, ei);
	if (rc != MCF_OK)
		return rc;
	int64_t  done = 0;
	double   secs = 0;
	cpu_mark m0, m1;
	cpu_mark_take(&r.ks, &m0);
	rc = sim_load(&r.cl, NULL, "create", b->sz.load_writes,
	    b->sz.load_size, &done, &secs, NULL, ei);
	cpu_mark_take(&r.ks, &m1);
	double wall = (double) (m1.t_ns - m0.t_ns) / 1e9;
	if (rc == MCF_OK) {
		*rate = (double) done / secs;
		printf("# load: %lld creates of %d B in %.3f s (kubesim), "
		       "%.3f s with the request (%.0f/s)\n",
		    (long long) done, b->sz.load_size, secs, wall,
		    (double) done / wall);
		cpu_mark_print("load", &m0, &m1);
	}
	return run_end(&r, b, rc, ei);
}

/* --------------------------------------------------------------------- */
/* Driver                                                                */
/* --------------------------------------------------------------------- */

enum cmp {
	CMP_LT, /* value < target */
	CMP_LE, /* value <= target */
	CMP_GE, /* value >= target */
};

typedef struct metric {
	const char *name;
	const char *unit;
	const char *target_text; /* as printed */
	double      target;
	enum cmp    cmp;
} metric;

static const metric metrics[] = {
	{ "watch_rss_10k", "MiB", "<1024", 1024, CMP_LT },
	{ "events_per_s_1k", "events/s", ">=50000", 50000, CMP_GE },
	{ "list_10k_ms", "ms", "<=100", 100, CMP_LE },
	{ "load_writes_per_s", "writes/s", ">=20000", 20000, CMP_GE },
};

enum { M_RSS, M_EVENTS, M_LIST, M_LOAD, M_COUNT };

/* Runs metric `m` `repeat` times; prints its line.  Returns the exit code
 * it contributes. */
static int
run_metric(const bench *b, int m, int repeat)
{
	const metric *mt  = &metrics[m];
	size_t        per = m == M_LIST ? (size_t) b->sz.list_runs : 1;
	double       *v   = mcf_calloc((size_t) repeat * per, sizeof(double));
	int           rc  = MCF_OK;
	mcf_errinfo   ei;
	mcf_errinfo_clear(&ei);
	for (int i = 0; rc == MCF_OK && i < repeat; i++) {
		switch (m) {
		case M_RSS:
			rc = measure_rss(b, &v[i], &ei);
			break;
		case M_EVENTS:
			rc = measure_events(b, &v[i], &ei);
			break;
		case M_LIST:
			rc = measure_list(b, &v[(size_t) i * per], &ei);
			break;
		default:
			rc = measure_load(b, &v[i], &ei);
			break;
		}
		fflush(stdout);
	}
	int code;
	if (rc != MCF_OK) {
		printf("# %s: error: %s\n", mt->name, ei.msg);
		printf(
		    "%s - %s %s FAIL\n", mt->name, mt->unit, mt->target_text);
		code = EXIT_ERROR;
	} else {
		size_t n   = (size_t) repeat * per;
		double med = median(v, n);
		bool   ok  = mt->cmp == CMP_LT ? med < mt->target
		       : mt->cmp == CMP_LE     ? med <= mt->target
		                               : med >= mt->target;
		if (n > 1)
			printf("# %s: median of %zu, min %.1f, max %.1f\n",
			    mt->name, n, v[0], v[n - 1]);
		printf("%s %.1f %s %s %s\n", mt->name, med, mt->unit,
		    mt->target_text,
		    b->smoke ? "smoke"
		        : ok ? "PASS"
		             : "FAIL");
		code = b->smoke || ok ? EXIT_PASS : EXIT_FAIL;
	}
	fflush(stdout);
	free(v);
	return code;
}

/* The kubesim next to this binary in the build tree. */
static char *
default_kubesim(void)
{
	char    self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return mcf_strdup("kubesim");
	self[n]     = '\0';
	char *slash = strrchr(self, '/');
	if (slash != NULL)
		*slash = '\0';
	return mcf_asprintf("%s/../kubesim/kubesim", self);
}

static int
metric_index(const char *name)
{
	for (int i = 0; i < M_COUNT; i++)
		if (strcmp(name, metrics[i].name) == 0)
			return i;
	return -1;
}

int
main(int argc, char **argv)
{
	char          *ks_path = NULL, *only = NULL, *ks_args = NULL;
	int64_t        repeat  = 1;
	bool           smoke   = false;
	const mcf_flag flags[] = {
		{ "smoke", MCF_FLAG_BOOL, NULL, "false",
		    "small sizes, for CTest: exit 0 when every metric was "
		    "measured",
		    &smoke },
		{ "kubesim", MCF_FLAG_STRING, "PATH", NULL,
		    "kubesim binary (default: ../kubesim/kubesim next to this "
		    "one)",
		    &ks_path },
		{ "repeat", MCF_FLAG_INT, "N", "1",
		    "run every metric N times and print the median", &repeat },
		{ "only", MCF_FLAG_STRING, "METRIC[,METRIC]", NULL,
		    "run only these metrics (watch_rss_10k, events_per_s_1k, "
		    "list_10k_ms, load_writes_per_s)",
		    &only },
		{ "kubesim-args", MCF_FLAG_STRING, "\"ARGS\"", NULL,
		    "more kubesim flags, separated by spaces, for experiments "
		    "(say so when publishing such figures)",
		    &ks_args },
	};
	mcf_flagset fs = {
		.prog    = "kubesim_bench",
		.summary = "load benchmark for kubesim: prints `metric value "
		           "unit target PASS|FAIL` per metric",
		.flags   = flags,
		.count   = sizeof(flags) / sizeof(flags[0]),
	};
	enum mcf_flags_result res;
	mcf_errinfo           ei;
	mcf_alloc_init_libs();
	if (mcf_flags_parse(&fs, argc, argv, &res, &ei) != MCF_OK) {
		fprintf(stderr, "kubesim_bench: %s\n", ei.msg);
		mcf_flags_free(&fs);
		return EXIT_ERROR;
	}
	if (res == MCF_FLAGS_EXIT) {
		mcf_flags_free(&fs);
		return EXIT_PASS;
	}
	int  code = EXIT_PASS;
	bool want[M_COUNT];
	for (int i = 0; i < M_COUNT; i++)
		want[i] = only == NULL;
	if (only != NULL) {
		char *save = NULL;
		for (char *t = strtok_r(only, ",", &save); t != NULL;
		     t       = strtok_r(NULL, ",", &save)) {
			int i = metric_index(t);
			if (i < 0) {
				fprintf(stderr,
				    "kubesim_bench: --only: unknown metric "
				    "\"%s\"\n",
				    t);
				code = EXIT_ERROR;
				goto out;
			}
			want[i] = true;
		}
	}
	if (repeat < 1 || repeat > 1000) {
		fprintf(stderr, "kubesim_bench: --repeat wants 1..1000\n");
		code = EXIT_ERROR;
		goto out;
	}
	signal(SIGPIPE, SIG_IGN);

	bench b = { .sz = smoke ? smoke_sizes : full_sizes, .smoke = smoke };
	if (ks_args != NULL) {
		int   n    = 0;
		char *save = NULL;
		for (char *t = strtok_r(ks_args, " ", &save); t != NULL;
		     t       = strtok_r(NULL, " ", &save)) {
			if (n == EXTRA_ARGS_MAX) {
				fprintf(stderr,
				    "kubesim_bench: --kubesim-args: "
				    "more than %d arguments\n",
				    EXTRA_ARGS_MAX);
				code = EXIT_ERROR;
				goto out;
			}
			b.extra[n++] = t;
		}
	}
	char *def      = ks_path == NULL ? default_kubesim() : NULL;
	b.kubesim_path = ks_path != NULL ? ks_path : def;
	const char *sc = getenv("MCF_TEST_TIMEOUT_SCALE");
	b.scale        = sc != NULL && atoi(sc) > 0 ? atoi(sc) : 1;
	if (access(b.kubesim_path, X_OK) != 0) {
		fprintf(stderr, "kubesim_bench: cannot run %s: %s\n",
		    b.kubesim_path, strerror(errno));
		free(def);
		code = EXIT_ERROR;
		goto out;
	}
	/* Every watch is a descriptor here and one in kubesim, which
	 * inherits this limit (and raises its own too). */
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	b.nofile = rl.rlim_cur;

	printf(
	    "# kubesim_bench: %s run, %lld repetition%s, RLIMIT_NOFILE "
	    "%llu, kubesim: %s --listen 127.0.0.1:0 --history-events 200000",
	    smoke ? "smoke" : "full", (long long) repeat,
	    repeat == 1 ? "" : "s", (unsigned long long) b.nofile,
	    b.kubesim_path);
	for (int i = 0; b.extra[i] != NULL; i++)
		printf(" %s", b.extra[i]);
	printf("\n");
	printf("# sizes: %d watches (rss); %d watchers x %d objects x %d "
	       "updates (events); LIST of %d x %d B, %d runs; %d creates "
	       "of %d B (load)\n",
	    b.sz.rss_watchers, b.sz.ev_watchers, b.sz.ev_objects,
	    b.sz.ev_passes, b.sz.list_objects, b.sz.list_size, b.sz.list_runs,
	    b.sz.load_writes, b.sz.load_size);
	fflush(stdout);
	for (int m = 0; m < M_COUNT; m++) {
		if (!want[m])
			continue;
		int c = run_metric(&b, m, (int) repeat);
		if (c > code)
			code = c;
	}
	free(def);
out:
	mcf_flags_free(&fs);
	return code;
}
