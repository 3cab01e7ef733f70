/* test_config.c - the coordinator's config file: values, units, errors with lines, flags,
 * reload. */
#include "coordinator/config.h"
#include "rf_test.h"

#include <stdio.h>
#include <string.h>

static const char s_full[] = "# a farm\n"
                             "listen: tcp://*:5555\n"
                             "api: tcp://127.0.0.1:5556\n"
                             "metrics: 127.0.0.1:9464\n"
                             "state: state\n"
                             "models: [/srv/models, more]\n"
                             "output_root: /srv/out\n"
                             "input_root: in\n"
                             "allowed_url_hosts: [CDN.example.com, \"*.example.org\"]\n"
                             "insecure: false\n"
                             "log_level: warn\n"
                             "retention: 2d\n"
                             "keys:\n"
                             "  server_secret_key: c.key_secret\n"
                             "  allowed_worker_keys: /etc/rf/workers\n"
                             "  allowed_client_keys: clients\n"
                             "limits:\n"
                             "  max_jobs: 12\n"
                             "  max_frames: 1000\n"
                             "  max_message_bytes: 64MiB\n"
                             "  max_input_bytes: 1G\n"
                             "  fetch_timeout: 90s\n"
                             "  fetch_low_speed_timeout: 2m\n"
                             "  fetch_retries: 0\n"
                             "  fetch_max_redirects: 2\n"
                             "timing:\n"
                             "  heartbeat_ms: 250\n"
                             "  liveness: 3\n"
                             "  lease_ms: 5000\n";

RF_TEST(defaults)
{
    rf_config *c = rf_config_new();
    RF_CHECK(c);
    RF_CHECK_EQ_INT(c->retention_s, 7 * 86400);
    RF_CHECK_EQ_INT(c->limits.max_input_bytes, 1 << 30);
    RF_CHECK_EQ_INT(c->limits.fetch_retries, 3);
    RF_CHECK_EQ_INT(c->url_hosts.n, 0);
    RF_CHECK(c->listen == NULL);
    rf_error err;
    RF_CHECK_EQ_INT(rf_config_check(c, &err), RF_EINVAL);
    RF_CHECK_CONTAINS(err.msg, "listen, api and state are required");
    rf_config_destroy(&c);
    rf_config_destroy(&c);
}

RF_TEST(full_file)
{
    char path[512];
    rf_test_path(path, sizeof(path), "farm.yaml");
    RF_CHECK_EQ_INT(rf_test_write_file(path, s_full, strlen(s_full)), 0);
    rf_config *c = rf_config_new();
    rf_error err;
    RF_CHECK_MSG(rf_config_load(c, path, &err) == 0, "%s", err.msg);
    RF_CHECK_EQ_STR(c->listen, "tcp://*:5555");
    RF_CHECK_EQ_STR(c->api, "tcp://127.0.0.1:5556");
    RF_CHECK_EQ_STR(c->metrics, "127.0.0.1:9464");
    char want[600];
    snprintf(want, sizeof(want), "%s/state", rf_test_tmpdir());
    RF_CHECK_EQ_STR(c->state_dir, want);
    RF_CHECK_EQ_INT(c->models.n, 2);
    RF_CHECK_EQ_STR(c->models.items[0], "/srv/models");
    snprintf(want, sizeof(want), "%s/more", rf_test_tmpdir());
    RF_CHECK_EQ_STR(c->models.items[1], want);
    RF_CHECK_EQ_STR(c->output_root, "/srv/out");
    RF_CHECK_EQ_INT(c->url_hosts.n, 2);
    RF_CHECK_EQ_STR(c->url_hosts.items[0], "cdn.example.com");
    RF_CHECK_EQ_STR(c->url_hosts.items[1], "*.example.org");
    RF_CHECK_EQ_INT(c->insecure, 0);
    RF_CHECK_EQ_STR(c->log_level, "warn");
    RF_CHECK_EQ_INT(c->retention_s, 2 * 86400);
    RF_CHECK_EQ_STR(c->allowed_worker_keys, "/etc/rf/workers");
    snprintf(want, sizeof(want), "%s/c.key_secret", rf_test_tmpdir());
    RF_CHECK_EQ_STR(c->server_secret_key, want);
    RF_CHECK_EQ_INT(c->limits.max_jobs, 12);
    RF_CHECK_EQ_INT(c->limits.max_frames, 1000);
    RF_CHECK_EQ_INT(c->limits.max_message_bytes, 64 << 20);
    RF_CHECK_EQ_INT(c->limits.max_input_bytes, 1 << 30);
    RF_CHECK_EQ_INT(c->limits.fetch_timeout_ms, 90000);
    RF_CHECK_EQ_INT(c->limits.fetch_low_speed_timeout_ms, 120000);
    RF_CHECK_EQ_INT(c->limits.fetch_retries, 0);
    RF_CHECK_EQ_INT(c->limits.fetch_max_redirects, 2);
    RF_CHECK_EQ_INT(c->timing.heartbeat_ms, 250);
    RF_CHECK_EQ_INT(c->timing.liveness, 3);
    RF_CHECK_EQ_INT(c->timing.lease_ms, 5000);
    RF_CHECK_EQ_INT(rf_config_check(c, &err), 0);
    rf_config_destroy(&c);
}

RF_TEST(every_mistake_with_its_line)
{
    const char *text = "listen: http://x\n"                      /* 1 */
                       "api: tcp://*:1\n"                        /* 2 */
                       "lisen: tcp://*:2\n"                      /* 3 */
                       "retention: forever\n"                    /* 4 */
                       "limits:\n"                               /* 5 */
                       "  max_jobs: 0\n"                         /* 6 */
                       "  max_input_bytes: 12 parsecs\n"         /* 7 */
                       "  bogus: 1\n"                            /* 8 */
                       "allowed_url_hosts: [\"ex ample.com\"]\n" /* 9 */
                       "insecure: yes\n"                         /* 10 */
                       "api: tcp://*:3\n"                        /* 11 */
                       "metrics: nocolon\n"                      /* 12 */
                       "keys: [a]\n";                            /* 13 */
    rf_config *c = rf_config_new();
    rf_error err;
    RF_CHECK_EQ_INT(rf_config_load_text(c, "bad.yaml", NULL, text, &err), RF_EINVAL);
    RF_CHECK_CONTAINS(err.msg, "bad.yaml:1: listen must be a ZeroMQ endpoint");
    RF_CHECK_CONTAINS(err.msg, "bad.yaml:3: unknown key lisen; did you mean listen?");
    RF_CHECK_CONTAINS(err.msg, "bad.yaml:4: retention must be a duration");
    RF_CHECK_CONTAINS(err.msg, "bad.yaml:6: limits.max_jobs must be between 1 and");
    RF_CHECK_CONTAINS(err.msg, "bad.yaml:7: limits.max_input_bytes must be a size");
    RF_CHECK_CONTAINS(err.msg, "bad.yaml:8: unknown key limits.bogus");
    RF_CHECK_CONTAINS(err.msg, "bad.yaml:9: allowed_url_hosts: 'ex ample.com' is not a host");
    RF_CHECK_CONTAINS(err.msg, "bad.yaml:10: insecure allowed true or false, got yes");
    RF_CHECK_CONTAINS(err.msg, "bad.yaml:11: api is given twice");
    RF_CHECK_CONTAINS(err.msg, "bad.yaml:12: metrics must be HOST:PORT");
    /* nothing changed */
    RF_CHECK(c->listen == NULL);
    RF_CHECK(c->api == NULL);
    RF_CHECK_EQ_INT(c->retention_s, 7 * 86400);
    rf_config_destroy(&c);
}

RF_TEST(hostile_text)
{
    rf_config *c = rf_config_new();
    rf_error err;
    RF_CHECK_EQ_INT(rf_config_load_text(c, "x.yaml", NULL, "listen: [unclosed\n", &err), RF_EINVAL);
    RF_CHECK_CONTAINS(err.msg, "x.yaml:");
    RF_CHECK_CONTAINS(err.msg, "not valid YAML");
    RF_CHECK_EQ_INT(rf_config_load_text(c, "x.yaml", NULL, "- a\n- b\n", &err), RF_EINVAL);
    RF_CHECK_CONTAINS(err.msg, "must be a mapping");
    RF_CHECK_EQ_INT(rf_config_load_text(c, "x.yaml", NULL, "a: 1\n---\nb: 2\n", &err), RF_EINVAL);
    RF_CHECK_CONTAINS(err.msg, "more than one YAML document");
    RF_CHECK_EQ_INT(
        rf_config_load_text(c, "x.yaml", NULL, "limits: {max_jobs: 99999999999999999999}\n", &err),
        RF_EINVAL);
    RF_CHECK_EQ_INT(rf_config_load_text(c, "x.yaml", NULL, "limits: {max_jobs: -1}\n", &err),
                    RF_EINVAL);
    RF_CHECK_EQ_INT(
        rf_config_load_text(c, "x.yaml", NULL, "limits: {max_input_bytes: 99999999999TiB}\n", &err),
        RF_EINVAL);
    RF_CHECK_EQ_INT(rf_config_load_text(c, "x.yaml", NULL, "listen: {a: b}\n", &err), RF_EINVAL);
    RF_CHECK_CONTAINS(err.msg, "listen must be a single value");
    /* an alias used as a value is a node like any other; a self-reference cannot exist */
    RF_CHECK_EQ_INT(
        rf_config_load_text(c, "x.yaml", NULL, "models: &m [a, b]\nallowed_url_hosts: *m\n", &err),
        0);
    RF_CHECK_EQ_INT(c->url_hosts.n, 2);
    /* many errors: the rest are counted */
    char big[4096] = "";
    for (int i = 0; i < 30; i++)
        snprintf(big + strlen(big), sizeof(big) - strlen(big), "k%d: 1\n", i);
    RF_CHECK_EQ_INT(rf_config_load_text(c, "x.yaml", NULL, big, &err), RF_EINVAL);
    RF_CHECK_CONTAINS(err.msg, "more");
    RF_CHECK_EQ_INT(rf_config_load(c, "/nonexistent/farm.yaml", &err), RF_ENOTFOUND);
    RF_CHECK_CONTAINS(err.msg, "/nonexistent/farm.yaml");
    RF_CHECK_EQ_INT(rf_config_load(c, rf_test_tmpdir(), &err), RF_EINVAL);
    /* an empty file is a valid config with the defaults */
    RF_CHECK_EQ_INT(rf_config_load_text(c, "x.yaml", NULL, "", &err), 0);
    rf_config_destroy(&c);
}

RF_TEST(flags_win_over_the_file)
{
    rf_config *c = rf_config_new();
    rf_error err;
    RF_CHECK_EQ_STR(rf_config_flag_key("output-root"), "output_root");
    RF_CHECK_EQ_STR(rf_config_flag_key("max-jobs"), "limits.max_jobs");
    RF_CHECK_EQ_STR(rf_config_flag_key("allowed-worker-keys"), "keys.allowed_worker_keys");
    RF_CHECK(rf_config_flag_key("nope") == NULL);
    RF_CHECK_EQ_INT(rf_config_set(c, "listen", "ipc:///run/rf/w", &err), 0);
    RF_CHECK_EQ_INT(rf_config_set(c, "limits.max_jobs", "5", &err), 0);
    RF_CHECK_EQ_INT(rf_config_set(c, "models", "a", &err), 0);
    RF_CHECK_EQ_INT(rf_config_set(c, "models", "b", &err), 0);
    RF_CHECK_EQ_INT(rf_config_set(c, "limits.max_jobs", "lots", &err), RF_EINVAL);
    RF_CHECK_CONTAINS(err.msg, "--max-jobs: limits.max_jobs must be a whole number");
    RF_CHECK_EQ_INT(rf_config_set(c, "nope", "1", &err), RF_EINVAL);
    RF_CHECK_EQ_INT(rf_config_load_text(c, "f.yaml", "/etc",
                                        "listen: tcp://*:1\nmodels: [m]\nlimits:\n"
                                        "  max_jobs: 9\napi: tcp://*:2\nstate: s\n",
                                        &err),
                    0);
    RF_CHECK_EQ_STR(c->listen, "ipc:///run/rf/w");
    RF_CHECK_EQ_INT(c->limits.max_jobs, 5);
    RF_CHECK_EQ_INT(c->models.n, 2);
    RF_CHECK_EQ_STR(c->models.items[1], "b");
    RF_CHECK_EQ_STR(c->api, "tcp://*:2");
    RF_CHECK_EQ_STR(c->state_dir, "/etc/s");
    RF_CHECK_EQ_INT(rf_config_check(c, &err), 0);
    RF_CHECK_EQ_INT(rf_config_set(c, "keys.server_secret_key", "k", &err), 0);
    RF_CHECK_EQ_INT(rf_config_check(c, &err), RF_EINVAL);
    RF_CHECK_CONTAINS(err.msg, "keys.allowed_worker_keys");
    rf_config_destroy(&c);
}

RF_TEST(reload_changes_only_keys_and_allow_lists)
{
    char path[512];
    rf_test_path(path, sizeof(path), "reload.yaml");
    const char *v1 = "listen: tcp://*:1\napi: tcp://*:2\nstate: /s\n"
                     "allowed_url_hosts: [a.example]\n"
                     "keys: {server_secret_key: /k/s, allowed_worker_keys: /k/w1, "
                     "allowed_client_keys: /k/c}\n";
    RF_CHECK_EQ_INT(rf_test_write_file(path, v1, strlen(v1)), 0);
    rf_config *c = rf_config_new();
    rf_error err;
    RF_CHECK_MSG(rf_config_load(c, path, &err) == 0, "%s", err.msg);
    RF_CHECK_EQ_INT(rf_config_set(c, "keys.allowed_client_keys", "/flag/c", &err), 0);
    const char *v2 = "listen: tcp://*:9\napi: tcp://*:2\nstate: /s\n"
                     "allowed_url_hosts: [a.example, b.example]\n"
                     "keys: {server_secret_key: /k/s, allowed_worker_keys: /k/w2, "
                     "allowed_client_keys: /k/c2}\n";
    RF_CHECK_EQ_INT(rf_test_write_file(path, v2, strlen(v2)), 0);
    RF_CHECK_MSG(rf_config_reload(c, &err) == 0, "%s", err.msg);
    RF_CHECK_EQ_STR(c->listen, "tcp://*:1"); /* needs a restart */
    RF_CHECK_EQ_INT(c->url_hosts.n, 2);
    RF_CHECK_EQ_STR(c->url_hosts.items[1], "b.example");
    RF_CHECK_EQ_STR(c->allowed_worker_keys, "/k/w2");
    RF_CHECK_EQ_STR(c->allowed_client_keys, "/flag/c"); /* the flag still wins */
    /* hosts removed from the file are removed */
    const char *v3 = "listen: tcp://*:1\napi: tcp://*:2\nstate: /s\n"
                     "keys: {server_secret_key: /k/s, allowed_worker_keys: /k/w2}\n";
    RF_CHECK_EQ_INT(rf_test_write_file(path, v3, strlen(v3)), 0);
    RF_CHECK_MSG(rf_config_reload(c, &err) == 0, "%s", err.msg);
    RF_CHECK_EQ_INT(c->url_hosts.n, 0);
    /* a broken file changes nothing */
    RF_CHECK_EQ_INT(rf_test_write_file(path, "allowed_url_hosts: [x y]\n", 25), 0);
    RF_CHECK_EQ_INT(rf_config_reload(c, &err), RF_EINVAL);
    RF_CHECK_CONTAINS(err.msg, "nothing changed");
    RF_CHECK_CONTAINS(err.msg, "reload.yaml:1:");
    RF_CHECK_EQ_STR(c->allowed_worker_keys, "/k/w2");
    rf_config_destroy(&c);
}

RF_TEST(command_line_glue)
{
    char path[512];
    rf_test_path(path, sizeof(path), "cli.yaml");
    const char *text = "listen: tcp://*:1\napi: tcp://*:2\nstate: /s\nlimits: {max_jobs: 3}\n";
    RF_CHECK_EQ_INT(rf_test_write_file(path, text, strlen(text)), 0);
    char *argv[] = {"coord",      "--listen", "ipc:///x", "--config", path,    "--insecure",
                    "--max-jobs", "7",        "--concat", "bytes",    "--api", NULL};
    int argc = 11;
    rf_config *c = rf_config_new();
    rf_error err;
    int used[11] = {0};
    for (int i = 1; i < argc; i++) {
        int n = rf_config_arg(c, argc, argv, i, &err);
        if (n < 0) {
            used[i] = -1;
            break;
        }
        used[i] = n;
        if (n > 1)
            i += n - 1;
    }
    RF_CHECK_EQ_INT(used[1], 2);   /* --listen */
    RF_CHECK_EQ_INT(used[3], 2);   /* --config */
    RF_CHECK_EQ_INT(used[5], 1);   /* --insecure */
    RF_CHECK_EQ_INT(used[6], 2);   /* --max-jobs */
    RF_CHECK_EQ_INT(used[8], 0);   /* --concat: not ours */
    RF_CHECK_EQ_INT(used[9], 0);   /* "bytes" */
    RF_CHECK_EQ_INT(used[10], -1); /* --api without a value */
    RF_CHECK_CONTAINS(err.msg, "--api needs a value");
    RF_CHECK_EQ_STR(c->listen, "ipc:///x");
    RF_CHECK_EQ_STR(c->api, "tcp://*:2");
    RF_CHECK_EQ_INT(c->insecure, 1);
    RF_CHECK_EQ_INT(c->limits.max_jobs, 7);
    char *bad[] = {"coord", "--config", "/nonexistent.yaml"};
    RF_CHECK_EQ_INT(rf_config_arg(c, 3, bad, 1, &err), -1);
    RF_CHECK_CONTAINS(err.msg, "/nonexistent.yaml");
    rf_config_destroy(&c);
}
