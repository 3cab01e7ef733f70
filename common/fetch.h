/* fetch.h - getting a job's inputs: http(s) downloads with libcurl, and `file` paths
 * confined to an input root.
 *
 * A download is refused unless the URL's host (and every redirect's host) is on the
 * operator's allow-list (default: empty, so every URL is refused until an operator sets
 * allowed_url_hosts in the coordinator's config). It is bounded in size (the body, also
 * when Content-Length lies or is absent), in total time and in stall time (a server that
 * hangs), in redirects; transient failures (5xx, 408, 429, refused or dropped
 * connections, stalls) are retried with doubling backoff, 4xx never. The body is
 * written atomically (common/atomic_file) and hashed on the way (BLAKE2b-256, the blob
 * name), so the caller stores it by content. It never follows a redirect it has not
 * checked, never sends credentials, and never leaves a partial file at dest.
 *
 * Wiring in the coordinator (issue 12), once per job input at submit:
 *   opts = rf_fetch_opts_default(); opts.hosts = cfg->url_hosts.items (n), and the
 *   limits.* values; rf_fetch_url(url, "<state>/tmp/fetch-<job>", &opts, &hash, &n, err);
 *   then store the file as blob `hash` (reuse when the store has it) and delete the temp;
 *   for `file` inputs: rf_fetch_confine(cfg->input_root, path, real, sizeof real, err).
 *   On SIGHUP, the next download simply uses the reloaded cfg->url_hosts.
 */
#ifndef RF_FETCH_H
#define RF_FETCH_H

#include "error.h"
#include "hash.h"

#include <stddef.h>
#include <stdint.h>

typedef struct rf_fetch_opts {
    const char *const *hosts; /* allowed host patterns: "name", "*.suffix", "*" (borrowed) */
    int nhosts;
    int64_t max_bytes;            /* body limit (default 1 GiB) */
    int64_t timeout_ms;           /* whole download, retries included (default 300000) */
    int64_t connect_timeout_ms;   /* one connection attempt (default 10000) */
    int64_t low_speed_timeout_ms; /* abort an attempt below low_speed_bytes/s this long
                                     (default 30000; whole seconds, at least 1000) */
    int64_t low_speed_bytes;      /* default 1024 */
    int retries;                  /* extra attempts after a transient failure (default 3) */
    int64_t backoff_ms;           /* before the first retry, doubled each time (default 500) */
    int max_redirects;            /* default 5 */
    const volatile int *cancel;   /* when it points at nonzero, the download stops soon
                                     with RF_ECANCELED (NULL: never) */
} rf_fetch_opts;

/* The defaults above, with no host allowed. */
rf_fetch_opts rf_fetch_opts_default(void);

/* 1 when host (a URL's host, any case) matches a pattern: equal ignoring case, "*.suffix"
 * for a proper subdomain of suffix, or "*" for any host; else 0. */
int rf_fetch_host_allowed(const char *const *hosts, int nhosts, const char *host);

/* Downloads url (http:// or https://) into dest (written atomically, mode 0644) and
 * returns its BLAKE2b-256 in *hash and its size in *bytes (either may be NULL).
 * Errors (dest untouched, no temp left), each naming the URL and what to do:
 *   RF_EINVAL    not http(s), credentials in the URL, a host (or a redirect's host) not
 *                allowed ("add it to allowed_url_hosts"), too many redirects;
 *   RF_ENOTFOUND HTTP 404 or 410;
 *   RF_EPROTO    another HTTP 4xx, or 5xx after the retries;
 *   RF_ENOMEM    the body is larger than max_bytes;
 *   RF_EAGAIN    timed out (total or stalled) after the retries;
 *   RF_EIO       connection failures after the retries, or writing dest failed
 *                (RF_ENOSPC for a full disk);
 *   RF_ECANCELED *opts->cancel became nonzero. */
int rf_fetch_url(const char *url, const char *dest, const rf_fetch_opts *opts, rf_hash *hash,
                 int64_t *bytes, rf_error *err);

/* The checks rf_fetch_url makes before any request (scheme, no credentials, host on
 * opts->hosts), without a request: for refusing a job at submit. */
int rf_fetch_check_url(const char *url, const rf_fetch_opts *opts, rf_error *err);

/* Resolves a job's `file` input inside root: path relative to root, or absolute and
 * inside it. Refuses (RF_EINVAL) a ".." component, a path whose real location (symlinks
 * followed) is outside root, an unset root ("set input_root"); RF_ENOTFOUND when it does
 * not exist; RF_EINVAL when it is not a regular file. Writes the real path into out. */
int rf_fetch_confine(const char *root, const char *path, char *out, size_t cap, rf_error *err);

#endif
