/* emulator.h - the /emulator control plane: info, clock, health, stats. */
#ifndef PGCMK_EMULATOR_H
#define PGCMK_EMULATOR_H

#include <stdio.h>

#include "pgcmk/core.h"

struct pgcmk_emulator_info {
    int https_port;
    int http_port;       /* -1 when off */
    const char *ca_path; /* NULL with a user-supplied certificate */
    const char *data_dir;
    const char *auth_mode;
    int64_t started_ms;
};

/* Restores the persisted clock and adds the /emulator routes. */
int pgcmk_emulator_init(const struct pgcmk_emulator_info *info) PGCMK_WUR;
/* The listeners' ports, once bound (shown by /emulator/info). */
void pgcmk_emulator_set_ports(int https_port, int http_port);
/* The KMIP listener's port (-1 = off), the server certificate + CA file its clients verify it
 * with, and the directory of the client credentials (shown by /emulator/info as ports.kmip and
 * "kmip"). */
void pgcmk_emulator_set_kmip(int port, const char *server_cert, const char *clients_dir);
/* The Vault API listener's ports (-1 = off) and the CA file its clients trust (shown by
 * /emulator/info as ports.vault and "vault"). */
void pgcmk_emulator_set_vault(int port, int http_port, const char *ca_cert);
/* Prints the Markdown error table (docs/errors.md). */
void pgcmk_emulator_error_table(FILE *out);

/* Adds /emulator/faults (see faults.h). */
void pgcmk_emulator_faults_init(void);

#endif
