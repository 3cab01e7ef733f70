/* secure.c - glue between the coordinator's sockets and common/curve.
 *
 * Decides per endpoint between CURVE (key + that domain's allowed keys) and the
 * private-or-insecure rule, and keeps a one-line description of what it decided for
 * status output. It holds the server's secret key in memory only as long as it lives
 * and wipes it on destroy.
 */
#include "secure.h"

#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rf_secure {
    rf_curve_keypair server;
    int have_key;
    int insecure;
    rf_zap *zap;
    int allow_workers, allow_api; /* an allowed keys file was given for the domain */
    char desc_workers[160], desc_api[160];
    char desc[400];
};

rf_secure *rf_secure_new(void *zctx, const char *server_secret_key, const char *allowed_worker_keys,
                         const char *allowed_client_keys, int insecure, rf_error *err)
{
    int any_allowed = allowed_worker_keys || allowed_client_keys;
    if (server_secret_key && !any_allowed)
        return rf_error_set(err, RF_EINVAL,
                            "keys.server_secret_key is set but no allowed keys file: set "
                            "keys.allowed_worker_keys and/or keys.allowed_client_keys"),
               NULL;
    if (!server_secret_key && any_allowed)
        return rf_error_set(err, RF_EINVAL,
                            "an allowed keys file is set but keys.server_secret_key is not "
                            "(make the coordinator's key pair with reelctl keygen)"),
               NULL;
    rf_secure *self = calloc(1, sizeof(*self));
    if (!self)
        return rf_error_set(err, RF_ENOMEM, "out of memory"), NULL;
    self->insecure = insecure;
    snprintf(self->desc_workers, sizeof(self->desc_workers), "not bound");
    snprintf(self->desc_api, sizeof(self->desc_api), "not bound");
    if (server_secret_key) {
        if (rf_curve_keypair_load(server_secret_key, &self->server, err))
            goto fail;
        self->have_key = 1;
        self->zap = rf_zap_new(zctx, err);
        if (!self->zap)
            goto fail;
        if (allowed_worker_keys) {
            if (rf_zap_allow_file(self->zap, RF_CURVE_DOMAIN_WORKERS, allowed_worker_keys, err))
                goto fail;
            self->allow_workers = 1;
        }
        if (allowed_client_keys) {
            if (rf_zap_allow_file(self->zap, RF_CURVE_DOMAIN_API, allowed_client_keys, err))
                goto fail;
            self->allow_api = 1;
        }
        rf_log_kv(RF_LOG_INFO, "secure", "CURVE server key loaded", "public_key=%s",
                  self->server.public_z85);
    }
    return self;
fail:
    rf_secure_destroy(&self);
    return NULL;
}

int rf_secure_prepare(rf_secure *self, void *sock, const char *domain, const char *flag,
                      const char *endpoint, rf_error *err)
{
    int is_api = strcmp(domain, RF_CURVE_DOMAIN_API) == 0;
    int curve = self->have_key && (is_api ? self->allow_api : self->allow_workers);
    char *desc = is_api ? self->desc_api : self->desc_workers;
    size_t cap = sizeof(self->desc_api);
    if (curve) {
        int rc = rf_curve_server_apply(sock, &self->server, domain, err);
        if (rc)
            return rf_error_prefix(err, "%s %s", flag, endpoint);
        snprintf(desc, cap, "curve");
        return 0;
    }
    int rc = rf_curve_bind_check(flag, endpoint, 0, self->insecure, err);
    if (rc)
        return rc;
    char why[256];
    int priv = rf_curve_endpoint_private(endpoint, why, sizeof(why));
    snprintf(desc, cap, priv ? "private" : "INSECURE (no CURVE, --insecure)");
    return 0;
}

int rf_secure_reload(rf_secure *self, const char *allowed_worker_keys,
                     const char *allowed_client_keys, rf_error *err)
{
    if (!self->zap) {
        if (allowed_worker_keys || allowed_client_keys)
            rf_log_kv(RF_LOG_WARN, "secure",
                      "allowed keys files need a server key and a restart to take effect", NULL);
        return 0;
    }
    /* Given paths are (re)read per domain; a domain without one re-reads its file. */
    int rc = 0;
    if (self->allow_workers && allowed_worker_keys)
        rc = rf_zap_allow_file(self->zap, RF_CURVE_DOMAIN_WORKERS, allowed_worker_keys, err);
    if (!rc && self->allow_api && allowed_client_keys)
        rc = rf_zap_allow_file(self->zap, RF_CURVE_DOMAIN_API, allowed_client_keys, err);
    if (!rc && !allowed_worker_keys && !allowed_client_keys)
        rc = rf_zap_reload(self->zap, err);
    return rc ? rf_error_prefix(err, "reloading keys") : 0;
}

const char *rf_secure_describe(const rf_secure *self)
{
    rf_secure *s = (rf_secure *)self;
    snprintf(s->desc, sizeof(s->desc), "workers: %s, api: %s", self->desc_workers, self->desc_api);
    return s->desc;
}

void rf_secure_counts(rf_secure *self, uint64_t *accepted, uint64_t *rejected)
{
    if (accepted)
        *accepted = 0;
    if (rejected)
        *rejected = 0;
    if (self->zap)
        rf_zap_counts(self->zap, accepted, rejected);
}

void rf_secure_destroy(rf_secure **pself)
{
    if (!pself || !*pself)
        return;
    rf_secure *self = *pself;
    rf_zap_destroy(&self->zap);
    memset(&self->server, 0, sizeof(self->server));
    free(self);
    *pself = NULL;
}
