/* cmd_keygen.c - `reelctl keygen BASE`: a CURVE key pair for a worker, a client or the
 * coordinator. Never overwrites an existing key. */
#include "curve.h"
#include "output.h"
#include "reelctl.h"

#include <stdio.h>
#include <string.h>

int rf_ctl_keygen(rf_ctl *ctl, int argc, char **argv)
{
    static const char *usage =
        "usage: reelctl keygen BASE\n\n"
        "Writes a fresh CurveZMQ key pair: BASE.key (the public key, to share: add it to the\n"
        "coordinator's allowed-worker-keys or allowed-client-keys file) and BASE.key_secret\n"
        "(mode 0600, keep it on this machine: pass it as --key). Existing keys are never\n"
        "overwritten.\n";
    if (argc != 2 || argv[1][0] == '-') {
        int help = argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"));
        fprintf(help ? stdout : stderr, "%s", usage);
        return help ? 0 : 2;
    }
    rf_curve_keypair kp;
    rf_error err;
    if (rf_curve_keygen_files(argv[1], &kp, &err))
        return rf_ctl_fail("keygen", &err);
    if (ctl->json) {
        char pub[4200], sec[4200];
        snprintf(pub, sizeof(pub), "%s.key", argv[1]);
        snprintf(sec, sizeof(sec), "%s.key_secret", argv[1]);
        rf_json_print(json_pack("{s:s, s:s, s:s}", "public_key", kp.public_z85, "public_file", pub,
                                "secret_file", sec));
    } else {
        printf("public key:  %s\n", kp.public_z85);
        printf("written:     %s.key (public), %s.key_secret (secret, mode 0600)\n", argv[1],
               argv[1]);
    }
    return 0;
}
