/*
 * mcfleetctl — operator's view of a fleet.
 *
 *   mcfleetctl status --coordinator http://HOST:PORT [--output table|json]
 *
 * Reads the coordinator's /status document (`--coordinator` may be the
 * base URL or the /status URL itself).  When that coordinator is a
 * standby, it follows the document's leader.status_url once, so the shard
 * map shown is the leader's.  `--output table` (the default) prints the
 * workers (state, weight, project count, load relative to the weighted
 * fair share, last heartbeat) and then each worker's projects with their
 * states; `--output json` prints the raw document.
 *
 * Exit codes: 0 printed, 1 the coordinator (or the leader it names)
 * cannot be reached or answers something that is not a status document,
 * 2 usage error.
 *
 * Threads: only the main thread.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "alloc.h"
#include "flags.h"
#include "log.h"

#define PROG "mcfleetctl"

typedef struct buf {
	char  *p;
	size_t n;
} buf;

static size_t
on_data(char *data, size_t size, size_t nmemb, void *arg)
{
	buf   *b = arg;
	size_t n = size * nmemb;
	if (b->n + n > 256u * 1024 * 1024)
		return 0;
	b->p = mcf_realloc(b->p, b->n + n + 1);
	memcpy(b->p + b->n, data, n);
	b->n += n;
	b->p[b->n] = '\0';
	return n;
}

/* GETs `url`; on success returns the parsed document (new), else NULL
 * with a sentence in `err`. */
static json_t *
fetch(const char *url, long timeout_ms, char *err, size_t errcap)
{
	CURL *c = curl_easy_init();
	if (c == NULL) {
		snprintf(err, errcap, "cannot initialise libcurl");
		return NULL;
	}
	buf  b = { 0 };
	char ua[64];
	snprintf(ua, sizeof(ua), PROG "/%s", MCF_VERSION);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_USERAGENT, ua);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	CURLcode rc   = curl_easy_perform(c);
	long     code = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_cleanup(c);
	json_t *doc = NULL;
	if (rc != CURLE_OK) {
		snprintf(err, errcap, "%s", curl_easy_strerror(rc));
	} else if (code != 200) {
		snprintf(err, errcap, "HTTP %ld: %.200s", code,
		    b.p != NULL ? b.p : "");
	} else {
		json_error_t je;
		doc = json_loadb(b.p ? b.p : "", b.n, 0, &je);
		if (doc == NULL || !json_is_object(doc)
		    || json_object_get(doc, "role") == NULL) {
			snprintf(err, errcap,
			    "the answer is not a status "
			    "document");
			json_decref(doc);
			doc = NULL;
		}
	}
	free(b.p);
	return doc;
}

static char *
status_url_of(const char *base)
{
	size_t n = strlen(base);
	while (n > 0 && base[n - 1] == '/')
		n--;
	if (n >= 7 && strncmp(base + n - 7, "/status", 7) == 0)
		return mcf_strndup(base, n);
	return mcf_asprintf("%.*s/status", (int) n, base);
}

static const char *
str(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s != NULL ? s : "";
}

static long long
num(const json_t *o, const char *k)
{
	return (long long) json_integer_value(json_object_get(o, k));
}

static int
width(json_t *arr, const char *key, int min)
{
	size_t  i;
	json_t *o;
	int     w = min;
	json_array_foreach(arr, i, o)
	{
		int n = (int) strlen(str(o, key));
		if (n > w)
			w = n;
	}
	return w;
}

static void
print_table(json_t *doc)
{
	json_t     *leader   = json_object_get(doc, "leader");
	json_t     *workers  = json_object_get(doc, "workers");
	json_t     *projects = json_object_get(doc, "projects");
	const char *role     = str(doc, "role");

	printf("COORDINATOR  %s (%s)\n", str(doc, "identity"), role);
	if (json_is_object(leader)) {
		json_t *t = json_object_get(leader, "term");
		printf("LEADER       %s  term %s/%lld\n",
		    str(leader, "identity"), str(t, "uid"),
		    num(t, "transitions"));
		printf("FLEET        %s\n", str(leader, "address"));
		printf("STATUS       %s\n", str(leader, "status_url"));
	} else {
		printf("LEADER       (none known)\n");
	}
	if (strcmp(role, "leader") != 0)
		printf("(a standby lists no projects)\n");

	/* Load: projects over the weighted fair share among workers that
	 * are not gone. */
	double    wsum  = 0;
	long long total = 0;
	size_t    i;
	json_t   *w;
	json_array_foreach(workers, i, w)
	{
		if (strcmp(str(w, "state"), "gone") != 0) {
			wsum += (double) num(w, "weight");
			total += num(w, "projects");
		}
	}
	int nw = width(workers, "name", 6), ns = width(workers, "state", 5);
	printf("\n%-*s  %-*s  %6s  %8s  %5s  %s\n", nw, "WORKER", ns, "STATE",
	    "WEIGHT", "PROJECTS", "LOAD", "LAST HEARTBEAT");
	json_array_foreach(workers, i, w)
	{
		char        load[16] = "-";
		long long   n        = num(w, "projects");
		double      share    = wsum > 0
		            ? (double) total * (double) num(w, "weight") / wsum
		            : 0;
		const char *hb       = str(w, "last_heartbeat");
		if (strcmp(str(w, "state"), "gone") != 0 && share > 0)
			snprintf(
			    load, sizeof(load), "%.2f", (double) n / share);
		printf("%-*s  %-*s  %6lld  %8lld  %5s  %s\n", nw,
		    str(w, "name"), ns, str(w, "state"), num(w, "weight"), n,
		    load, hb[0] ? hb : "-");
	}

	if (!json_is_array(projects) || json_array_size(projects) == 0) {
		if (strcmp(role, "leader") == 0)
			printf("\nno projects\n");
		return;
	}
	size_t            np     = json_array_size(projects);
	int               pw     = width(projects, "name", 7);
	int               cnt[4] = { 0 };
	json_t           *p;
	const char *const states[]
	    = { "synced", "engaging", "failing", "pending" };
	json_array_foreach(projects, i, p)
	{
		for (int k = 0; k < 4; k++)
			if (strcmp(str(p, "state"), states[k]) == 0)
				cnt[k]++;
	}
	printf("\nPROJECTS (%zu: %d synced, %d engaging, %d failing, %d "
	       "pending)\n",
	    np, cnt[0], cnt[1], cnt[2], cnt[3]);
	/* Per worker, in the workers' order, then the unassigned. */
	size_t nwk = json_array_size(workers);
	for (size_t k = 0; k <= nwk; k++) {
		const char *owner
		    = k < nwk ? str(json_array_get(workers, k), "name") : NULL;
		size_t n = 0;
		json_array_foreach(projects, i, p)
		{
			const char *o
			    = json_string_value(json_object_get(p, "owner"));
			if (owner != NULL ? o != NULL && strcmp(o, owner) == 0
			                  : o == NULL)
				n++;
		}
		if (n == 0)
			continue;
		printf(
		    "\n%s (%zu)\n", owner != NULL ? owner : "unassigned", n);
		json_array_foreach(projects, i, p)
		{
			const char *o
			    = json_string_value(json_object_get(p, "owner"));
			if (owner != NULL ? o == NULL || strcmp(o, owner) != 0
			                  : o != NULL)
				continue;
			const char *since  = str(p, "since");
			const char *reason = str(p, "reason");
			printf("  %-*s  %-8s  %s%s%s\n", pw, str(p, "name"),
			    str(p, "state"), since[0] ? since : "-",
			    reason[0] ? "  " : "", reason);
		}
	}
}

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: " PROG " status --coordinator http://HOST:PORT "
	    "[--output table|json] [--timeout DURATION]\n"
	    "       " PROG " --version | --help\n"
	    "\n"
	    "Prints the fleet's shard map from a coordinator's /status "
	    "(following a standby to the leader).\n");
}

int
main(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "--help") == 0
	    || strcmp(argv[1], "-h") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf(PROG " %s\n", MCF_VERSION);
		return 0;
	}
	if (strcmp(argv[1], "status") != 0) {
		fprintf(stderr, PROG ": unknown command \"%s\"\n", argv[1]);
		usage(stderr);
		return 2;
	}
	char          *coord = NULL, *output = NULL;
	int64_t        timeout_ms = 0;
	const mcf_flag flags[]    = {
		   { "coordinator", MCF_FLAG_STRING, "URL", NULL,
		       "A coordinator's status address (http://HOST:PORT).",
		       &coord },
		   { "output", MCF_FLAG_STRING, "FORMAT", "table",
		       "table, or json (the raw /status document).", &output },
		   { "timeout", MCF_FLAG_DURATION, "DURATION", "5s",
		       "How long to wait for each answer.", &timeout_ms },
	};
	mcf_flagset fs = {
		.prog    = PROG " status",
		.summary = "Prints the fleet's shard map.",
		.flags   = flags,
		.count   = sizeof(flags) / sizeof(flags[0]),
	};
	enum mcf_flags_result res;
	mcf_errinfo           ei = { 0 };
	mcf_alloc_init_libs();
	mcf_log_init(PROG, MCF_LOG_WARN);
	if (mcf_flags_parse(&fs, argc - 1, argv + 1, &res, &ei) != MCF_OK) {
		fprintf(stderr, PROG ": %s\n", ei.msg);
		return 2;
	}
	if (res == MCF_FLAGS_EXIT) {
		mcf_flags_free(&fs);
		return 0;
	}
	int rc = 2;
	if (coord == NULL || coord[0] == '\0') {
		fprintf(stderr, PROG ": --coordinator is required\n");
		goto out;
	}
	if (strncmp(coord, "http://", 7) != 0
	    && strncmp(coord, "https://", 8) != 0) {
		fprintf(stderr,
		    PROG ": --coordinator: \"%s\" is not an http(s) URL\n",
		    coord);
		goto out;
	}
	if (strcmp(output, "table") != 0 && strcmp(output, "json") != 0) {
		fprintf(stderr,
		    PROG ": --output: \"%s\" is neither table nor json\n",
		    output);
		goto out;
	}
	if (timeout_ms <= 0)
		timeout_ms = 5000;

	rc = 1;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	char   *url = status_url_of(coord);
	char    err[512];
	json_t *doc = fetch(url, (long) timeout_ms, err, sizeof(err));
	if (doc == NULL) {
		fprintf(stderr,
		    PROG ": cannot read the coordinator status at "
		         "%s: %s\n",
		    url, err);
		free(url);
		curl_global_cleanup();
		goto out;
	}
	if (strcmp(str(doc, "role"), "leader") != 0) {
		const char *lurl
		    = str(json_object_get(doc, "leader"), "status_url");
		if (lurl[0] != '\0' && strcmp(lurl, url) != 0) {
			json_t *ld
			    = fetch(lurl, (long) timeout_ms, err, sizeof(err));
			if (ld == NULL) {
				fprintf(stderr,
				    PROG ": %s is a standby; cannot read the "
				         "leader's status at %s: %s\n",
				    url, lurl, err);
				json_decref(doc);
				free(url);
				curl_global_cleanup();
				goto out;
			}
			json_decref(doc);
			doc = ld;
		} else {
			fprintf(stderr,
			    PROG ": %s is a standby and names no leader; "
			         "showing its own view\n",
			    url);
		}
	}
	if (strcmp(output, "json") == 0) {
		char *txt = json_dumps(doc, JSON_INDENT(2));
		printf("%s\n", txt);
		free(txt);
	} else {
		print_table(doc);
	}
	json_decref(doc);
	free(url);
	curl_global_cleanup();
	rc = 0;
out:
	mcf_flags_free(&fs);
	return rc;
}
