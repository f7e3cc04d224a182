/* main.c - pgcmkd: flags and environment, start, wait for a signal, stop. Nothing else. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pgcmk/agent.h"
#include "pgcmk/arm.h"
#include "pgcmk/auth.h"
#include "pgcmk/cfg.h"
#include "pgcmk/clock.h"
#include "pgcmk/crypto.h"
#include "pgcmk/deploy.h"
#include "pgcmk/emulator.h"
#include "pgcmk/http.h"
#include "pgcmk/kes.h"
#include "pgcmk/kmip_listener.h"
#include "pgcmk/kmip_server.h"
#include "pgcmk/vaultapi.h"
#include "pgcmk/log.h"
#include "pgcmk/monitor.h"
#include "pgcmk/pg.h"
#include "pgcmk/pkey.h"
#include "pgcmk/providers.h"
#include "pgcmk/schema.h"
#include "pgcmk/static.h"
#include "pgcmk/store.h"
#include "pgcmk/vault.h"
#include "pgcmk/wellknown.h"
#include "pgcmk/work.h"

/* Writes "port\n" to path atomically, so a reader never sees a partial file. */
static int
write_port_file(const char *path, int port)
{
    char tmp[4096];
    FILE *f;

    snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
    f = fopen(tmp, "w");
    if (f == NULL)
        return -1;
    fprintf(f, "%d\n", port);
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

static void
print_banner(const struct pgcmk_cfg *cfg, int port, int http_port, const char *ca, int kmip_port,
             const char *kmip_ca, int vault_port, int vault_http_port)
{
    /* The portal is the one URL here a browser opens: it must answer 200 (the root is a 404). */
    printf("pgcmkd is ready\n"
           "  portal:                      https://localhost:%d/portal/\n"
           "  ARM, token service:          https://localhost:%d\n"
           "  Key Vault data plane:        https://{vault}." PGCMK_VAULT_DNS_SUFFIX ":%d/\n",
           port, port, port);
    if (http_port >= 0)
        printf("  plain HTTP:                  http://localhost:%d/portal/\n", http_port);
    if (kmip_port >= 0)
        printf("  KMIP (mutual TLS):           localhost:%d, server CA file %s\n"
               "  KMIP client credentials:     %s/<name>/ (POST /emulator/kmip/clients "
               "{\"name\":...})\n",
               kmip_port, kmip_ca, pgcmk_kmip_clients_dir());
    else
        printf("  KMIP:                        off\n");
    if (vault_port >= 0) {
        /* as `vault server -dev` prints them: the address, the root token, the unseal key */
        printf("  HashiCorp Vault API:         https://127.0.0.1:%d\n", vault_port);
        if (vault_http_port >= 0)
            printf("  Vault API (plain HTTP):      http://127.0.0.1:%d\n", vault_http_port);
        printf("  Unseal Key:                  %s\n", PGCMK_HV_UNSEAL_KEY);
        printf("  Root Token:                  %s\n", PGCMK_HV_ROOT_TOKEN);
        printf("VAULT_ADDR=https://127.0.0.1:%d\nVAULT_TOKEN=%s\n", vault_port,
               PGCMK_HV_ROOT_TOKEN);
        if (ca)
            printf("VAULT_CACERT=%s\n", ca);
    } else {
        printf("  HashiCorp Vault API:         off\n");
    }
    pgcmk_kes_banner();
    printf("  data directory:              %s\n", cfg->data_dir);
    printf("  subscription %s, tenant %s\n", PGCMK_SUBSCRIPTION_ID, PGCMK_TENANT_ID);
    if (ca) {
        printf("  CA certificate:              %s\n"
               "Trust it:\n"
               "  curl --cacert %s https://localhost:%d/emulator/info\n"
               "  export REQUESTS_CA_BUNDLE=%s   # Azure SDK for Python, az CLI\n"
               "  sudo cp %s /usr/local/share/ca-certificates/pgcmk.crt && sudo "
               "update-ca-certificates\n",
               ca, ca, port, ca, ca);
    }
    fflush(stdout);
}

int
main(int argc, char **argv)
{
    struct pgcmk_cfg cfg;
    struct pgcmk_tls tls;
    struct pgcmk_err err;
    struct pgcmk_server *srv = NULL;
    struct pgcmk_kmip_tls ktls;
    struct pgcmk_kmip_listener *kmip = NULL;
    struct pgcmk_server *vsrv = NULL;
    struct pgcmk_server_plane vplane;
    int vault_port = -1, vault_http_port = -1;
    char *data_abs = NULL;
    int kmip_port = -1;
    struct pgcmk_emulator_info info;
    char *db_path = NULL, *key_path = NULL, *ca_abs = NULL;
    int64_t t0 = pgcmk_wall_ms();
    sigset_t sigs;
    int rc, sig = 0, status = 1;

    memset(&tls, 0, sizeof(tls));
    memset(&ktls, 0, sizeof(ktls));
    pgcmk_err_clear(&err);
    if (pgcmk_pg_is_walcmd(argc, argv)) /* run by PostgreSQL's archiver: no daemon here */
        return pgcmk_pg_walcmd(argc, argv);
    rc = pgcmk_cfg_load(&cfg, argc, argv, stderr);
    if (rc != 0) {
        if (rc == 2)
            pgcmk_cfg_print(stdout, &cfg);
        else if (rc == 3)
            pgcmk_emulator_error_table(stdout);
        pgcmk_cfg_release(&cfg);
        return rc < 0 ? 2 : 0;
    }
    /* Signals are taken by sigwait below; every thread inherits the mask. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    pgcmk_clock_init();

    if (mkdir(cfg.data_dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "pgcmkd: cannot create data directory %s: %s\n", cfg.data_dir,
                strerror(errno));
        goto out;
    }
    if (pgcmk_tls_bootstrap(cfg.data_dir, *cfg.tls_cert ? cfg.tls_cert : NULL,
                            *cfg.tls_key ? cfg.tls_key : NULL, &tls, &err)) {
        fprintf(stderr, "pgcmkd: tls: %s\n", err.message);
        goto out;
    }
    if (strcmp(cfg.db, ":memory:") == 0) {
        db_path = pgcmk_xstrdup(":memory:");
    } else {
        db_path =
            *cfg.db ? pgcmk_xstrdup(cfg.db) : pgcmk_xasprintf("%s/pgcmk.sqlite", cfg.data_dir);
        key_path = pgcmk_xasprintf("%s/master.key", cfg.data_dir);
    }
    if (pgcmk_store_open(db_path, key_path, cfg.sync_full, &err)) {
        fprintf(stderr, "pgcmkd: store: %s\n", err.message);
        goto out;
    }
    pgcmk_work_start(cfg.workers);
    pgcmk_providers_init();
    pgcmk_arm_init();
    if (pgcmk_schema_init(cfg.schemas_dir, argv[0]) < 0) {
        fprintf(stderr, "pgcmkd: a schema in %s does not load (see the log)\n", cfg.schemas_dir);
        goto out_store;
    }
    pgcmk_monitor_init();
    pgcmk_emulator_faults_init();
    pgcmk_deploy_init(&cfg);
    pgcmk_http_set_observer(pgcmk_monitor_record_request);
    pgcmk_vault_init();
    pgcmk_kmip_init();
    /* KMIP: the listener's certificates (the RSA one is made in the background when missing)
     * and the client credentials' routes; paths shown to clients are absolute. */
    data_abs = realpath(cfg.data_dir, NULL);
    if (data_abs == NULL || pgcmk_tls_kmip_bootstrap(data_abs, 0, &ktls, &err) ||
        pgcmk_kmip_clients_init(data_abs, ktls.bundle_pem)) {
        fprintf(stderr, "pgcmkd: kmip: %s\n", data_abs ? err.message : strerror(errno));
        goto out_store;
    }
    if (pgcmk_vaultapi_init()) {
        fprintf(stderr, "pgcmkd: the Vault API's state does not load (see the log)\n");
        goto out_store;
    }
    pgcmk_static_init(&cfg);
    if (pgcmk_auth_init(&err)) {
        fprintf(stderr, "pgcmkd: token service: %s\n", err.message);
        goto out_store;
    }
    /* Clients are told an absolute CA path (REQUESTS_CA_BUNDLE is read from anywhere). */
    if (tls.ca_path && (ca_abs = realpath(tls.ca_path, NULL)) != NULL) {
        free(tls.ca_path);
        tls.ca_path = ca_abs;
    }
    /* KES servers without tls: in their config serve pgcmk's certificate (clients trust ca.pem) */
    if (pgcmk_kes_init(tls.cert_pem, tls.key_pem, tls.ca_path)) {
        fprintf(stderr, "pgcmkd: the KES servers cannot start\n");
        goto out_store;
    }
    info = (struct pgcmk_emulator_info){
        0, -1, tls.ca_path, cfg.data_dir, cfg.auth == PGCMK_AUTH_STRICT ? "strict" : "open", t0};
    if (pgcmk_emulator_init(&info)) {
        fprintf(stderr, "pgcmkd: cannot restore the emulator state\n");
        goto out_store;
    }
    /* Every route is registered by now: the check seals the table before anything serves it. */
    if (pgcmk_router_check()) {
        fprintf(stderr, "pgcmkd: the route table is ambiguous\n");
        goto out_store;
    }
    srv = pgcmk_server_start(&cfg, tls.cert_pem, tls.key_pem, &err);
    if (srv == NULL) {
        fprintf(stderr, "pgcmkd: %s\n", err.message);
        goto out_store;
    }
    info.https_port = pgcmk_server_port(srv);
    info.http_port = pgcmk_server_http_port(srv);
    pgcmk_emulator_set_ports(info.https_port, info.http_port);
    pgcmk_auth_set_port(info.https_port);
    pgcmk_set_public_port(info.https_port);
    /* The agent verifies the daemon like any client: against our CA, or with --tls-cert, against
     * that file (append your CA chain to it when the certificate is not self-signed). */
    if (pgcmk_agent_init(info.https_port, tls.ca_path ? tls.ca_path : cfg.tls_cert)) {
        fprintf(stderr, "pgcmkd: the encryption agent cannot start\n");
        goto out_server;
    }
    pgcmk_providers_configure(&cfg);
    if (cfg.kmip_port >= 0) {
        struct pgcmk_kmip_listener_cfg kc = {
            cfg.listen,       cfg.kmip_port,   cfg.timeout_s,     cfg.kmip_max_conns, ktls.ca_path,
            ktls.ec_cert_pem, ktls.ec_key_pem, ktls.rsa_cert_pem, ktls.rsa_key_pem,   data_abs};

        kmip = pgcmk_kmip_listener_start(&kc, &err);
        if (kmip == NULL && cfg.kmip_port != PGCMK_KMIP_DEFAULT_PORT) {
            fprintf(stderr, "pgcmkd: %s\n", err.message);
            goto out_server;
        }
        /* The default port may be taken (another pgcmkd, a KMIP server): go on without. */
        if (kmip == NULL)
            LOG_WARN("%s: the KMIP server is off (use --kmip-port)", err.message);
        kmip_port = pgcmk_kmip_listener_port(kmip);
    }
    pgcmk_emulator_set_kmip(kmip_port, ktls.bundle_path, pgcmk_kmip_clients_dir());
    if (cfg.vault_port >= 0) {
        struct pgcmk_err verr;

        vplane = (struct pgcmk_server_plane){cfg.vault_port, cfg.vault_http_port,
                                             pgcmk_vaultapi_handle, pgcmk_vaultapi_too_large};
        vsrv = pgcmk_server_start_plane(&cfg, tls.cert_pem, tls.key_pem, &vplane, &verr);
        if (vsrv == NULL && cfg.vault_port != PGCMK_HV_DEFAULT_PORT) {
            fprintf(stderr, "pgcmkd: vault: %s\n", verr.message);
            goto out_server;
        }
        /* The default port may be taken (a real Vault, another pgcmkd): go on without. */
        if (vsrv == NULL) {
            LOG_WARN("%s: the Vault API is off (use --vault-port)", verr.message);
        } else {
            vault_port = pgcmk_server_port(vsrv);
            vault_http_port = pgcmk_server_http_port(vsrv);
        }
    }
    pgcmk_emulator_set_vault(vault_port, vault_http_port, tls.ca_path);
    /* KES servers come after the Vault API: their keys: are created in their keystore at start */
    pgcmk_kes_start_stored();
    for (char *p = cfg.kes_configs, *nl; p && *p; p = nl ? nl + 1 : NULL) {
        nl = strchr(p, '\n');
        if (nl)
            *nl = '\0';
        if (pgcmk_kes_start_file(p, &err)) {
            fprintf(stderr, "pgcmkd: kes: %s: %s\n", p, err.message);
            goto out_server;
        }
    }
    /* Real PostgreSQL instances come after the reconciler's first checks (each starts with its
     * database's access) and after the key-provider planes. */
    if (pgcmk_pg_init(&cfg, &err)) {
        fprintf(stderr, "pgcmkd: %s\n", err.message);
        goto out_server;
    }
    if (pgcmk_clock_tick_start(1000))
        LOG_WARN("the clock's tick did not start: rules fall due only when the clock is changed");
    if ((*cfg.port_file && write_port_file(cfg.port_file, info.https_port)) ||
        (*cfg.http_port_file && info.http_port >= 0 &&
         write_port_file(cfg.http_port_file, info.http_port)) ||
        (*cfg.kmip_port_file && kmip_port >= 0 && write_port_file(cfg.kmip_port_file, kmip_port)) ||
        (*cfg.vault_port_file && vault_port >= 0 &&
         write_port_file(cfg.vault_port_file, vault_port))) {
        fprintf(stderr, "pgcmkd: cannot write the port file: %s\n", strerror(errno));
        goto out_server;
    }
    print_banner(&cfg, info.https_port, info.http_port, tls.ca_path, kmip_port, ktls.bundle_path,
                 vault_port, vault_http_port);
    LOG_INFO("listening https=%d http=%d kmip=%d vault=%d startup_ms=%lld", info.https_port,
             info.http_port, kmip_port, vault_port, (long long)(pgcmk_wall_ms() - t0));
    while (sigwait(&sigs, &sig) == 0 && sig != SIGTERM && sig != SIGINT)
        ;
    LOG_INFO("signal %d: finishing in-flight requests", sig);
    status = 0;
out_server:
    pgcmk_kmip_listener_stop(kmip); /* first: no KMIP request runs on a stopping daemon */
    pgcmk_kes_shutdown();           /* before the Vault API its keystores call */
    pgcmk_pg_shutdown();            /* instances stop while the agent still holds their DEKs */
    pgcmk_server_stop(vsrv, 10000);
    pgcmk_server_stop(srv, 10000);
out_store:
    pgcmk_clock_tick_stop();
    pgcmk_work_drain();
    pgcmk_work_stop();
    pgcmk_agent_shutdown();
    pgcmk_pkey_rsa_pool_stop();
    pgcmk_store_close();
    pgcmk_auth_shutdown();
    pgcmk_vault_shutdown();
    pgcmk_kmip_clients_shutdown();
    pgcmk_vaultapi_shutdown();
out:
    pgcmk_tls_kmip_release(&ktls);
    free(data_abs);
    pgcmk_tls_release(&tls);
    free(db_path);
    free(key_path);
    pgcmk_cfg_release(&cfg);
    return status;
}
