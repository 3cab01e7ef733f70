/* config.h - the coordinator's config file (`--config FILE`, YAML) and its flag overrides.
 *
 *   listen: tcp://0.0.0.0:5555         # worker endpoint (ROUTER)
 *   api: tcp://0.0.0.0:5556            # reelctl endpoint (ROUTER)
 *   metrics: 127.0.0.1:9464           # Prometheus /metrics and /healthz (absent: off)
 *   state: /var/lib/reelfarm          # durable state (local or block volume, not NFS)
 *   models: [/srv/models]             # directories searched for model names
 *   output_root: /srv/out             # outputs are confined here
 *   input_root: /srv/in               # `file` inputs are confined here
 *   allowed_url_hosts: [cdn.example.com, "*.example.org"]   # default none: URLs refused
 *   insecure: false                   # serve non-private endpoints without CURVE
 *   log_level: info
 *   retention: 7d                     # finished jobs' blobs are collected after this
 *   keys:
 *     server_secret_key: coordinator.key_secret
 *     allowed_worker_keys: allowed-worker-keys
 *     allowed_client_keys: allowed-client-keys
 *   limits:
 *     max_jobs: 10000                 # unfinished jobs
 *     max_frames: 172800              # pixel frames of one job
 *     max_message_bytes: 1GiB         # one wire message
 *     max_input_bytes: 1GiB           # one downloaded input
 *     fetch_timeout: 5m               # a whole download
 *     fetch_low_speed_timeout: 30s    # abort when under 1 KiB/s for this long
 *     fetch_retries: 3                # transient errors (5xx, refused) only
 *     fetch_max_redirects: 5
 *   timing:
 *     heartbeat_ms: 1000
 *     liveness: 5
 *     lease_ms: 30000
 *
 * Every mistake is reported as "FILE:LINE: FIELD ..." (all of them, not only the first);
 * unknown keys are errors. Relative paths in the file are relative to the file's
 * directory; values set with rf_config_set (flags) are taken as given and win over the
 * file, also on reload. Sizes take B, KiB, MiB, GiB, TiB (or K, M, G, T, same
 * meaning) and durations ms, s, m, h, d (a bare number is bytes or seconds).
 * Wiring in coordinator/main.c:
 *   startup:  cfg = rf_config_new(); if --config: rf_config_load(cfg, path, err);
 *             for each flag given: rf_config_set(cfg, "listen", value, err) (flag names
 *             are the keys with '-' for '_', sections dropped: --output-root -> output_root,
 *             --max-jobs -> limits.max_jobs; see rf_config_flag_key);
 *             rf_config_check(cfg, err); then copy the fields into rf_coord_config.
 *   SIGHUP:   rf_config_reload(cfg, err), then rf_zap_allow_file() for both domains with
 *             cfg->allowed_worker_keys / allowed_client_keys and hand cfg->url_hosts to
 *             the fetcher. Only keys and allow-lists change; other edits are logged as
 *             needing a restart.
 * It never opens the key files itself (common/curve does) and never exits.
 */
#ifndef RF_CONFIG_H
#define RF_CONFIG_H

#include "error.h"

#include <stdint.h>

#define RF_CONFIG_MAX_BYTES  (1 << 20)
#define RF_CONFIG_MAX_ITEMS  256 /* entries of a list (models, allowed_url_hosts) */
#define RF_CONFIG_MAX_ERRORS 12

typedef struct rf_config_list {
    char **items; /* owned */
    int n;
} rf_config_list;

typedef struct rf_config_limits {
    int64_t max_jobs;
    int64_t max_frames;
    int64_t max_message_bytes;
    int64_t max_input_bytes;
    int64_t fetch_timeout_ms;
    int64_t fetch_low_speed_timeout_ms;
    int64_t fetch_retries;
    int64_t fetch_max_redirects;
} rf_config_limits;

typedef struct rf_config_timing {
    int64_t heartbeat_ms; /* 0: the coordinator's default */
    int64_t liveness;
    int64_t lease_ms;
} rf_config_timing;

/* All strings are owned by the config; NULL when not given. Read the fields freely;
 * change them only through rf_config_set. */
typedef struct rf_config {
    char *path; /* the file loaded, or NULL */
    char *listen, *api, *metrics;
    char *state_dir, *output_root, *input_root;
    rf_config_list models;
    rf_config_list url_hosts; /* lowercase host names, "*.suffix" or "*" */
    char *server_secret_key, *allowed_worker_keys, *allowed_client_keys;
    int insecure;
    char *log_level;
    int64_t retention_s;
    rf_config_limits limits;
    rf_config_timing timing;
    uint64_t from_flags; /* private: which fields rf_config_set set */
} rf_config;

/* A config with the defaults: retention 7 days, max_jobs 10000, max_frames 172800,
 * max_message_bytes and max_input_bytes 1 GiB, fetch_timeout 5 min, low-speed 30 s,
 * 3 retries, 5 redirects, no hosts allowed, CURVE required on non-private endpoints.
 * NULL only when out of memory. */
rf_config *rf_config_new(void);
void rf_config_destroy(rf_config **self);

/* Reads path over the current values (fields the file does not name keep theirs).
 * On any error nothing changes and err lists every mistake, one "FILE:LINE: ..." per
 * line (up to RF_CONFIG_MAX_ERRORS). */
int rf_config_load(rf_config *self, const char *path, rf_error *err);

/* Parses text as if it were the file `name` (paths relative to base_dir, may be NULL
 * for the current directory). For tests and embedding. */
int rf_config_load_text(rf_config *self, const char *name, const char *base_dir, const char *text,
                        rf_error *err);

/* Sets one value from the command line: key is a config key ("listen",
 * "limits.max_jobs", "keys.allowed_worker_keys"); value is parsed like the file's text
 * (lists take one item per call, appended: the first call replaces the file's list).
 * The field then wins over the file, also on reload. RF_EINVAL names the flag. */
int rf_config_set(rf_config *self, const char *key, const char *value, rf_error *err);

/* Maps a long option without its dashes ("output-root", "max-jobs", "allowed-worker-keys")
 * to its config key ("output_root", "limits.max_jobs", "keys.allowed_worker_keys").
 * NULL when no key has that name. */
const char *rf_config_flag_key(const char *flag);

/* Command-line glue for main(): when argv[i] is `--config FILE` (loaded) or a config
 * flag (`--KEYFLAG VALUE`, see rf_config_flag_key; `--insecure` takes no value), applies
 * it and returns how many argv entries it used (1 or 2); returns 0 when argv[i] is not
 * one of them (main handles it), -1 on error (err says which flag). Order does not
 * matter: flags win over the file whichever comes first. */
int rf_config_arg(rf_config *self, int argc, char **argv, int i, rf_error *err);

/* The rules across fields, after the file and the flags: listen, api and state are
 * required; a server key needs at least one allowed keys file and the reverse. */
int rf_config_check(const rf_config *self, rf_error *err);

/* Re-reads self->path for SIGHUP: keys.* and allowed_url_hosts change (unless a flag set
 * them); any other difference is logged ("needs a restart") and ignored. On error
 * nothing changes. Without a file, 0 and nothing changes. */
int rf_config_reload(rf_config *self, rf_error *err);

#endif
