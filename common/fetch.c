/* fetch.c - bounded, allow-listed http(s) downloads (libcurl) and input-root confinement.
 *
 * libcurl never follows redirects here: each 3xx is checked (scheme, host on the
 * allow-list, count) and then requested like a new URL, so an allowed host cannot bounce
 * us somewhere else. The write callback counts, hashes and writes; it stops the transfer
 * the moment the body passes the limit, whatever Content-Length said. One deadline
 * covers every attempt and backoff. It never leaves a temp file behind and never
 * prints a URL's credentials (it refuses URLs that have any).
 */
#include "fetch.h"

#include "atomic_file.h"
#include "log.h"

#include <curl/curl.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#define S_HOSTS_KEY "allowed_url_hosts"

rf_fetch_opts rf_fetch_opts_default(void)
{
    rf_fetch_opts o;
    memset(&o, 0, sizeof(o));
    o.max_bytes = 1LL << 30;
    o.timeout_ms = 300000;
    o.connect_timeout_ms = 10000;
    o.low_speed_timeout_ms = 30000;
    o.low_speed_bytes = 1024;
    o.retries = 3;
    o.backoff_ms = 500;
    o.max_redirects = 5;
    return o;
}

int rf_fetch_host_allowed(const char *const *hosts, int nhosts, const char *host)
{
    if (!host || !*host)
        return 0;
    size_t hl = strlen(host);
    for (int i = 0; i < nhosts; i++) {
        const char *p = hosts[i];
        if (!p)
            continue;
        if (strcmp(p, "*") == 0 || strcasecmp(p, host) == 0)
            return 1;
        if (strncmp(p, "*.", 2) == 0) {
            const char *suffix = p + 1; /* ".example.com" */
            size_t sl = strlen(suffix);
            if (hl > sl && strcasecmp(host + hl - sl, suffix) == 0)
                return 1;
        }
    }
    return 0;
}

static pthread_once_t s_once = PTHREAD_ONCE_INIT;
static CURLcode s_init_rc;

static void s_global_init(void)
{
    s_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void s_sleep_ms(int64_t ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Checks a URL (the first or a redirect's) before any request. */
static int s_check_url(const char *url, const rf_fetch_opts *o, const char *first, rf_error *err)
{
    CURLU *u = curl_url();
    if (!u)
        return rf_error_set(err, RF_ENOMEM, "fetch: out of memory");
    char *scheme = NULL, *host = NULL, *user = NULL, *pass = NULL;
    int rc = 0;
    const char *via = first && strcmp(first, url) != 0 ? " (redirected from " : "";
    const char *via_url = *via ? first : "";
    const char *via_end = *via ? ")" : "";
    if (curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK) {
        rc = rf_error_set(err, RF_EINVAL, "input URL %.300s%s%.300s%s: not a valid URL", url, via,
                          via_url, via_end);
        goto out;
    }
    if (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0) {
        rc = rf_error_set(err, RF_EINVAL,
                          "input URL %.300s%s%.300s%s: only http:// and https:// are fetched", url,
                          via, via_url, via_end);
        goto out;
    }
    if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host || !*host) {
        rc = rf_error_set(err, RF_EINVAL, "input URL %.300s%s%.300s%s: no host", url, via, via_url,
                          via_end);
        goto out;
    }
    curl_url_get(u, CURLUPART_USER, &user, 0);
    curl_url_get(u, CURLUPART_PASSWORD, &pass, 0);
    if (user || pass) {
        rc = rf_error_set(err, RF_EINVAL,
                          "input URL with credentials (user@host) refused: put the file on a "
                          "host that needs none, or under input_root");
        goto out;
    }
    if (!rf_fetch_host_allowed(o->hosts, o->nhosts, host)) {
        rc = rf_error_set(err, RF_EINVAL,
                          "input URL %.300s%s%.300s%s: host %s is not allowed; an operator must "
                          "add it to " S_HOSTS_KEY " in the coordinator's config (then send the "
                          "coordinator SIGHUP)%s",
                          url, via, via_url, via_end, host,
                          o->nhosts ? "" : "; no host is allowed yet");
        goto out;
    }
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(user);
    curl_free(pass);
    curl_url_cleanup(u);
    return rc;
}

typedef struct s_sink {
    CURL *h;
    rf_atomic_file *file;
    rf_blake2b_stream *hash;
    int64_t n, max;
    int over;
    int werr; /* rf_status of a failed write */
    rf_error *err;
} s_sink;

static size_t s_write(char *data, size_t size, size_t nmemb, void *ud)
{
    s_sink *s = ud;
    size_t len = size * nmemb;
    long code = 0;
    curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &code);
    if ((int64_t)len > s->max - s->n) {
        s->over = 1;
        return 0;
    }
    s->n += (int64_t)len;
    if (code < 200 || code > 299)
        return len; /* an error page or a redirect's body: counted, not kept */
    rf_blake2b_stream_update(s->hash, data, len);
    int rc = rf_atomic_file_write(s->file, data, len, s->err);
    if (rc) {
        s->werr = rc;
        return 0;
    }
    return len;
}

/* libcurl calls this about once a second and on every chunk: a nonzero return aborts. */
static int s_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                      curl_off_t ulnow)
{
    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    const volatile int *cancel = ud;
    return cancel && *cancel ? 1 : 0;
}

typedef enum { S_DONE, S_REDIRECT, S_RETRY, S_FAIL } s_outcome;

/* One request of url. Fills *loc with a redirect target (caller frees). */
static s_outcome s_attempt(const char *url, const char *dest, const rf_fetch_opts *o,
                           int64_t deadline, rf_hash *hash, int64_t *bytes, char **loc, int *rc,
                           rf_error *err)
{
    *loc = NULL;
    int64_t left = deadline - s_now_ms();
    if (left <= 0) {
        *rc = rf_error_set(err, RF_EAGAIN,
                           "input URL %.300s: timed out after %lld ms in all "
                           "(limits.fetch_timeout)",
                           url, (long long)o->timeout_ms);
        return S_FAIL;
    }
    CURL *h = curl_easy_init();
    s_sink sink;
    memset(&sink, 0, sizeof(sink));
    sink.h = h;
    sink.max = o->max_bytes;
    sink.err = err;
    sink.hash = rf_blake2b_stream_new();
    sink.file = h && sink.hash ? rf_atomic_file_begin(dest, err) : NULL;
    if (!sink.file) {
        if (!h || !sink.hash)
            *rc = rf_error_set(err, RF_ENOMEM, "fetch: out of memory");
        else
            *rc = err ? err->code : RF_EIO;
        rf_blake2b_stream_destroy(&sink.hash);
        if (h)
            curl_easy_cleanup(h);
        return S_FAIL;
    }
    long low_s = (long)((o->low_speed_timeout_ms + 999) / 1000);
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "reelfarm-fetch/1");
    curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)o->max_bytes);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)left);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)(o->connect_timeout_ms < left ? o->connect_timeout_ms : left));
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, (long)o->low_speed_bytes);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, low_s < 1 ? 1L : low_s);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, s_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    if (o->cancel) {
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, s_progress);
        curl_easy_setopt(h, CURLOPT_XFERINFODATA, (void *)o->cancel);
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    }
    CURLcode cc = curl_easy_perform(h);
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    s_outcome out = S_FAIL;
    const char *why = errbuf[0] ? errbuf : curl_easy_strerror(cc);
    if (o->cancel && *o->cancel) {
        *rc = rf_error_set(err, RF_ECANCELED, "input URL %.300s: download canceled", url);
    } else if (sink.werr) {
        *rc = sink.werr; /* err already says which file */
    } else if (sink.over || cc == CURLE_FILESIZE_EXCEEDED) {
        *rc = rf_error_set(err, RF_ENOMEM,
                           "input URL %.300s: larger than the limit of %lld bytes "
                           "(limits.max_input_bytes in the coordinator's config)",
                           url, (long long)o->max_bytes);
    } else if (cc == CURLE_OPERATION_TIMEDOUT) {
        if (s_now_ms() >= deadline) {
            *rc = rf_error_set(err, RF_EAGAIN,
                               "input URL %.300s: timed out after %lld ms in all "
                               "(limits.fetch_timeout)",
                               url, (long long)o->timeout_ms);
        } else {
            *rc = rf_error_set(err, RF_EAGAIN,
                               "input URL %.300s: the server stalled (under %lld bytes/s for "
                               "%ld s, limits.fetch_low_speed_timeout): %s",
                               url, (long long)o->low_speed_bytes, low_s, why);
            out = S_RETRY;
        }
    } else if (cc == CURLE_COULDNT_CONNECT || cc == CURLE_RECV_ERROR || cc == CURLE_SEND_ERROR ||
               cc == CURLE_GOT_NOTHING || cc == CURLE_PARTIAL_FILE) {
        *rc = rf_error_set(err, RF_EIO, "input URL %.300s: %s", url, why);
        out = S_RETRY;
    } else if (cc != CURLE_OK) {
        *rc = rf_error_set(err, RF_EIO, "input URL %.300s: %s", url, why);
    } else if (code >= 200 && code <= 299) {
        rf_hash hh;
        rf_blake2b_stream_final(sink.hash, &hh);
        *rc = rf_atomic_file_commit(&sink.file, err);
        if (!*rc) {
            if (hash)
                *hash = hh;
            if (bytes)
                *bytes = sink.n;
            out = S_DONE;
        }
    } else if (code >= 300 && code <= 399) {
        char *target = NULL;
        curl_easy_getinfo(h, CURLINFO_REDIRECT_URL, &target);
        if (target) {
            *loc = strdup(target);
            out = *loc ? S_REDIRECT : S_FAIL;
            *rc = *loc ? 0 : rf_error_set(err, RF_ENOMEM, "fetch: out of memory");
        } else {
            *rc = rf_error_set(err, RF_EPROTO, "input URL %.300s: HTTP %ld without a Location", url,
                               code);
        }
    } else if (code == 404 || code == 410) {
        *rc = rf_error_set(err, RF_ENOTFOUND,
                           "input URL %.300s: HTTP %ld, no such file on the server; check the URL",
                           url, code);
    } else if (code >= 500 || code == 408 || code == 429) {
        *rc = rf_error_set(err, RF_EPROTO, "input URL %.300s: HTTP %ld from the server", url, code);
        out = S_RETRY;
    } else {
        *rc = rf_error_set(err, RF_EPROTO,
                           "input URL %.300s: HTTP %ld (the server refused the request; check "
                           "the URL and that it needs no login)",
                           url, code);
    }
    rf_atomic_file_abort(&sink.file);
    rf_blake2b_stream_destroy(&sink.hash);
    curl_easy_cleanup(h);
    return out;
}

int rf_fetch_url(const char *url, const char *dest, const rf_fetch_opts *opts, rf_hash *hash,
                 int64_t *bytes, rf_error *err)
{
    rf_fetch_opts o = opts ? *opts : rf_fetch_opts_default();
    if (!url || !dest)
        return rf_error_set(err, RF_EINVAL, "fetch: no URL or destination");
    pthread_once(&s_once, s_global_init);
    if (s_init_rc != CURLE_OK)
        return rf_error_set(err, RF_EIO, "fetch: libcurl failed to initialise: %s",
                            curl_easy_strerror(s_init_rc));
    int rc = s_check_url(url, &o, NULL, err);
    if (rc)
        return rc;
    char *cur = strdup(url);
    if (!cur)
        return rf_error_set(err, RF_ENOMEM, "fetch: out of memory");
    int64_t deadline = s_now_ms() + o.timeout_ms;
    int64_t backoff = o.backoff_ms;
    int redirects = 0, attempt = 0;
    for (;;) {
        char *loc = NULL;
        s_outcome out = s_attempt(cur, dest, &o, deadline, hash, bytes, &loc, &rc, err);
        if (out == S_DONE || out == S_FAIL)
            break;
        if (out == S_REDIRECT) {
            if (++redirects > o.max_redirects) {
                rc = rf_error_set(err, RF_EINVAL,
                                  "input URL %.300s: more than %d redirects "
                                  "(limits.fetch_max_redirects; a redirect loop?), last to "
                                  "%.300s",
                                  url, o.max_redirects, loc);
                free(loc);
                break;
            }
            rc = s_check_url(loc, &o, url, err);
            if (rc) {
                free(loc);
                break;
            }
            free(cur);
            cur = loc;
            continue;
        }
        /* S_RETRY */
        if (attempt >= o.retries || s_now_ms() + backoff >= deadline) {
            rf_error_prefix(err, "after %d attempt%s", attempt + 1, attempt ? "s" : "");
            break;
        }
        attempt++;
        rf_log_kv(RF_LOG_INFO, "fetch", "retrying after a transient failure",
                  "attempt=%d backoff_ms=%lld error=\"%s\"", attempt, (long long)backoff,
                  err ? err->msg : "");
        for (int64_t slept = 0; slept < backoff && !(o.cancel && *o.cancel); slept += 50)
            s_sleep_ms(backoff - slept < 50 ? backoff - slept : 50);
        if (o.cancel && *o.cancel) {
            rc = rf_error_set(err, RF_ECANCELED, "input URL %.300s: download canceled", url);
            break;
        }
        backoff *= 2;
    }
    free(cur);
    return rc;
}

int rf_fetch_check_url(const char *url, const rf_fetch_opts *opts, rf_error *err)
{
    rf_fetch_opts o = opts ? *opts : rf_fetch_opts_default();
    if (!url)
        return rf_error_set(err, RF_EINVAL, "fetch: no URL");
    pthread_once(&s_once, s_global_init);
    return s_check_url(url, &o, NULL, err);
}

/* ---- file inputs --------------------------------------------------------------------- */

int rf_fetch_confine(const char *root, const char *path, char *out, size_t cap, rf_error *err)
{
    if (!root || !*root)
        return rf_error_set(err, RF_EINVAL,
                            "input %s: file inputs are refused until an operator sets input_root "
                            "in the coordinator's config",
                            path ? path : "");
    if (!path || !*path)
        return rf_error_set(err, RF_EINVAL, "input: empty path");
    for (const char *p = path; *p;) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (n == 2 && p[0] == '.' && p[1] == '.')
            return rf_error_set(err, RF_EINVAL,
                                "input %s: '..' is not allowed; give a path inside input_root",
                                path);
        p += n;
        while (*p == '/')
            p++;
    }
    char rroot[PATH_MAX], joined[PATH_MAX], real[PATH_MAX];
    if (!realpath(root, rroot))
        return rf_error_set(err, RF_EINVAL, "input_root %s: %s", root, strerror(errno));
    int n = path[0] == '/' ? snprintf(joined, sizeof(joined), "%s", path)
                           : snprintf(joined, sizeof(joined), "%s/%s", rroot, path);
    if (n < 0 || n >= (int)sizeof(joined))
        return rf_error_set(err, RF_EINVAL, "input %s: path too long", path);
    if (!realpath(joined, real)) {
        int e = errno;
        return rf_error_set(err, e == ENOENT ? RF_ENOTFOUND : RF_EIO, "input %s: %s (under %s)",
                            path, strerror(e), rroot);
    }
    size_t rl = strlen(rroot);
    int inside = strcmp(rroot, "/") == 0 || (strncmp(real, rroot, rl) == 0 && real[rl] == '/');
    if (!inside)
        return rf_error_set(err, RF_EINVAL,
                            "input %s: outside input_root %s (it resolves to %s); inputs must "
                            "live under input_root",
                            path, rroot, real);
    struct stat st;
    if (stat(real, &st) != 0 || !S_ISREG(st.st_mode))
        return rf_error_set(err, RF_EINVAL, "input %s: not a regular file", path);
    if (strlen(real) >= cap)
        return rf_error_set(err, RF_EINVAL, "input %s: path too long", path);
    memcpy(out, real, strlen(real) + 1);
    return 0;
}
