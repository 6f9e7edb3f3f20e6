/*
 * metrics.h — a Prometheus metrics registry and its text exposition.
 *
 * A registry (mcf_metrics) holds metric families: counters, gauges and
 * histograms, each registered once with a name, a help text and a fixed
 * list of label names.  A family has one child series per combination of
 * label values; mcf_metrics_series_get() finds or creates it.  Series are
 * never removed, so a series pointer stays valid until the registry is
 * destroyed and a hot path can look it up once and keep it:
 *
 *     static mcf_metrics_series *reqs;   // looked up at startup
 *     mcf_metrics_counter_inc(reqs);     // one atomic add, no lock
 *
 * Values whose truth lives elsewhere (a work queue's depth, a cache's
 * size) are not copied into the registry: a collector callback emits them
 * through a writer at render time.  Samples of one family name are
 * grouped into one family block however many collectors (and possibly the
 * registered family of that name) contribute them, so many work queues
 * each writing `workqueue_depth{name="x"}` render under one # HELP/# TYPE
 * header.
 *
 * mcf_metrics_render() produces the Prometheus text exposition format
 * 0.0.4 (content type MCF_METRICS_CONTENT_TYPE): families sorted by name,
 * within a family the series sorted by their label text, label values
 * escaped, floats written as Prometheus parses them (integral values
 * without exponent, "+Inf", "-Inf", "NaN").
 *
 * Names are checked against Prometheus' rules: metric names
 * [a-zA-Z_:][a-zA-Z0-9_:]*, label names [a-zA-Z_][a-zA-Z0-9_]* not
 * starting with "__", histograms may not use the label "le".  Label values
 * must be valid UTF-8.  Anything else is rejected with MCF_EINVAL.
 *
 * Thread model: every function except mcf_metrics_create() and
 * mcf_metrics_destroy() is thread-safe.  The registry's mutex `mtx`
 * guards the family list and the collectors; each family has its own
 * `mtx` guarding its series table, held only while looking up or adding a
 * series.  Updates through a series pointer (inc, add, set, observe) are
 * lock-free atomics and never block, so they are fit for hot paths and NNG
 * callbacks.  Rendering takes no lock while it formats values and holds no
 * lock while a collector runs.
 *
 * Ownership: names, help texts, label names and label values passed in
 * are borrowed for the call and copied.  Families and series are owned by
 * their registry and stay valid (borrowed) until mcf_metrics_destroy().
 */
#ifndef MCF_COMMON_METRICS_H
#define MCF_COMMON_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "httpserver.h"

/* The Content-Type of mcf_metrics_render()'s output. */
#define MCF_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

typedef struct mcf_metrics        mcf_metrics;
typedef struct mcf_metrics_family mcf_metrics_family;
typedef struct mcf_metrics_series mcf_metrics_series;
typedef struct mcf_metrics_writer mcf_metrics_writer;

/* Called by mcf_metrics_render() to emit samples through `w` with the
 * mcf_metrics_write_* functions.  Runs on the rendering thread with no
 * lock held; it may call any mcf_metrics function except
 * mcf_metrics_remove_collector() of itself, mcf_metrics_render() of the
 * same registry (it would recurse) and mcf_metrics_destroy().
 * `w` is borrowed for the call only. */
typedef void (*mcf_metrics_collect_fn)(mcf_metrics_writer *w, void *arg);

/* ---- registries ---- */

/* Creates an empty registry.  *out is new: the caller destroys it. */
int mcf_metrics_create(mcf_metrics **out);

/* Frees `reg` with all its families and series.  Accepts NULL.  No other
 * thread may be using `reg` or any family or series of it, and no render
 * may be running.  Must not be given mcf_metrics_default(): that is a
 * programming error and panics. */
void mcf_metrics_destroy(mcf_metrics *reg);

/* The process-wide registry that binaries serve on /metrics and modules
 * register into.  Created on first use (thread-safe), never destroyed;
 * borrowed for the life of the process.  Tests use private registries. */
mcf_metrics *mcf_metrics_default(void);

/* ---- families ---- */

/*
 * Registers a counter, gauge or histogram family, or returns the one
 * already registered under `name`.
 *
 * `name` must be a valid metric name; `help` may be NULL or "" for no
 * # HELP line.  `label_names` is a NULL-terminated array of distinct valid
 * label names, or NULL for none.  For histograms, `bounds` holds
 * `nbounds` bucket upper bounds in strictly increasing order (NaN
 * rejected; a last bound of +Inf is dropped, the +Inf bucket is always
 * there); `bounds` may be NULL when `nbounds` is 0.
 *
 * Registering a name again with the same type, label names (in the same
 * order) and, for histograms, bounds returns the same family, so modules
 * can register lazily; the first help text stays.  A different type,
 * labels or bounds fails with MCF_EINVAL, as does a name that clashes
 * with a histogram's _bucket, _sum or _count series.  On success *out is
 * borrowed until mcf_metrics_destroy(); on failure it is untouched.
 *
 * A family without labels has its one series from the start and renders
 * as 0 before any update; a family with labels renders only the series
 * that have been created.
 */
int mcf_metrics_counter_register(mcf_metrics *reg, const char *name,
    const char *help, const char *const *label_names,
    mcf_metrics_family **out);
int mcf_metrics_gauge_register(mcf_metrics *reg, const char *name,
    const char *help, const char *const *label_names,
    mcf_metrics_family **out);
int mcf_metrics_histogram_register(mcf_metrics *reg, const char *name,
    const char *help, const char *const *label_names, const double *bounds,
    size_t nbounds, mcf_metrics_family **out);

/* Finds or creates the series of `fam` with the given label values.
 * `label_values` holds exactly one value per label name, in the order of
 * registration (any UTF-8, including ""); NULL when the family has no
 * labels.  MCF_EINVAL for a NULL value or invalid UTF-8.  On success *out
 * is borrowed until mcf_metrics_destroy(); look it up once and keep it on
 * hot paths.  Takes the family's mutex briefly. */
int mcf_metrics_series_get(mcf_metrics_family *fam,
    const char *const *label_values, mcf_metrics_series **out);

/* ---- updates: lock-free, any thread ---- */

/* Adds 1 to a counter series.  Panics on a series of another type (a
 * programming error), as do the other update functions. */
void mcf_metrics_counter_inc(mcf_metrics_series *s);

/* Adds `v` to a counter series.  MCF_EINVAL, and no change, when `v` is
 * negative or NaN: counters only go up. */
int mcf_metrics_counter_add(mcf_metrics_series *s, double v);

/* Sets a gauge series to `v`, or adds `v` (which may be negative). */
void mcf_metrics_gauge_set(mcf_metrics_series *s, double v);
void mcf_metrics_gauge_add(mcf_metrics_series *s, double v);

/* Records one observation in a histogram series: the first bucket whose
 * upper bound is >= v (NaN goes to +Inf only), _sum and _count. */
void mcf_metrics_histogram_observe(mcf_metrics_series *s, double v);

/* Current value of a counter or gauge series (for tests and status
 * pages); for a histogram, its _sum. */
double mcf_metrics_series_value(const mcf_metrics_series *s);

/* ---- collectors ---- */

/* Adds a collector: `fn(w, arg)` runs at every render.  Collectors run in
 * the order they were added.  The pair (fn, arg) identifies it:
 * MCF_EEXIST if it is there already.  `arg` is borrowed until the
 * collector is removed. */
int mcf_metrics_add_collector(
    mcf_metrics *reg, mcf_metrics_collect_fn fn, void *arg);

/* Removes the collector (fn, arg), waiting until no render is running it,
 * so `arg` may be freed as soon as this returns.  MCF_ENOENT if there is
 * no such collector.  Must not be called from inside that collector. */
int mcf_metrics_remove_collector(
    mcf_metrics *reg, mcf_metrics_collect_fn fn, void *arg);

/*
 * Emit one sample (one series) from a collector.  `name` and `help` as
 * for registration (the first non-empty help of a family name wins);
 * `labels` is a NULL-terminated array of name/value pairs
 * ({"name", "x", NULL}), or NULL for none; label values are escaped on
 * output.  For a histogram, `bounds` holds `nbounds` strictly increasing
 * upper bounds (NaN rejected, a last bound of +Inf is dropped with its
 * bucket), `buckets` the cumulative count of observations <= each bound
 * (non-decreasing; NULL when `nbounds` is 0), and `count` the total, which
 * is the +Inf bucket and must be at least the last cumulative count.
 *
 * Returns MCF_EINVAL, and drops the sample, for invalid names, labels or
 * histogram data, a counter value that is negative or NaN, or a name
 * already used in this render with another type (or clashing with a
 * histogram's series names).  When two samples of a family carry the same
 * labels, the first one emitted is kept and later ones are dropped
 * silently.
 */
int mcf_metrics_write_counter(mcf_metrics_writer *w, const char *name,
    const char *help, const char *const *labels, double value);
int mcf_metrics_write_gauge(mcf_metrics_writer *w, const char *name,
    const char *help, const char *const *labels, double value);
int mcf_metrics_write_histogram(mcf_metrics_writer *w, const char *name,
    const char *help, const char *const *labels, const double *bounds,
    const uint64_t *buckets, size_t nbounds, uint64_t count, double sum);

/* ---- exposition ---- */

/* Renders every family of `reg` and every collector's samples in the text
 * format 0.0.4.  *out is new (NUL-terminated, free() it) and *len gets its
 * length without the NUL (`len` may be NULL).  MCF_OK, or MCF_EINVAL for
 * a NULL `reg` or `out`; running out of memory aborts (alloc.h).  May run
 * concurrently with updates, registrations and other renders; a histogram's
 * buckets and _count are always consistent with each other, its _sum may
 * include an observation they do not. */
int mcf_metrics_render(mcf_metrics *reg, char **out, size_t *len);

/* An httpserver handler for GET /metrics: renders `arg` (a registry, or
 * NULL for mcf_metrics_default()) as text format 0.0.4. */
int mcf_metrics_serve(
    const mcf_httpserver_req *req, mcf_httpserver_resp *resp, void *arg);

/* Validators used by the functions above, exported for config checks:
 * true when `s` is a valid metric name / label name. */
bool mcf_metrics_name_valid(const char *s);
bool mcf_metrics_label_name_valid(const char *s);

#endif /* MCF_COMMON_METRICS_H */
