/* pg_tde.c - pgcmk's emulation of Percona pg_tde 2.2 for stock PostgreSQL 15
 * (shared_preload_libraries = 'pgcmk,pg_tde'; CREATE EXTENSION pg_tde): pg_tde's SQL surface,
 * GUCs and access method name, with its key management done for real by pgcmkd's agent
 * (include/pgcmk/tdeproto.h, agent.c): every key provider and principal key function is a thin
 * client of the agent, which talks to the KMIP server, Vault or keyring file the user named.
 *
 * What stock PostgreSQL cannot do, this does not pretend to: tde_heap is heap under another name
 * (no per-relation keys, no in-server page encryption); the data directory and the WAL are
 * encrypted only where pgcmk's at-rest mode puts the instance on an encrypted mount, and
 * pg_tde_is_encrypted says true only then (docs/pg-tde.md lists the differences). */
#include "postgres.h"

#include "access/heapam.h"
#include "access/tableam.h"
#include "catalog/pg_am.h"
#include "catalog/pg_class.h"
#include "catalog/namespace.h"
#include "catalog/pg_index.h"
#include "commands/defrem.h"
#include "commands/event_trigger.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "utils/builtins.h"
#include "utils/elog.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "pg_tde.h"
#include "pgcmk/tdeproto.h"

PG_MODULE_MAGIC;

#define TDE_VERSION "pg_tde 2.2 (pgcmk emulation for PostgreSQL 15; see docs/pg-tde.md)"
#define TDE_AM      "tde_heap"
/* pg_tde's PRINCIPAL_KEY_NAME_LEN (a key name is shorter) */
#define TDE_KEY_NAME_LEN 256
/* how long pg_tde_is_encrypted trusts the agent's last status (the at-rest mode changes only
 * with a restart) */
#define TDE_STATUS_TTL_MS 5000

void _PG_init(void);

int tde_cipher = TDE_CIPHER_AES_128;
char *tde_agent_socket = NULL;
char *tde_agent_slug = NULL;
static bool tde_wal_encrypt = false;
static bool tde_enforce_encryption = false;
static bool tde_inherit_global = true;

static emit_log_hook_type prev_emit_log_hook = NULL;

static const struct config_enum_entry cipher_options[] = {
    {"aes_128", TDE_CIPHER_AES_128, false},
    {"aes_256", TDE_CIPHER_AES_256, false},
    {NULL, 0, false},
};

/* ---- argument checks, as pg_tde answers them -------------------------------------------- */

static char *
arg_text(FunctionCallInfo fcinfo, int i, const char *what)
{
    if (PG_ARGISNULL(i))
        ereport(ERROR,
                (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("%s cannot be null", what)));
    return text_to_cstring(PG_GETARG_TEXT_PP(i));
}

/* A provider name: not NULL, not empty (its length is the agent's to check) */
static char *
arg_name(FunctionCallInfo fcinfo, int i, const char *what)
{
    char *s = arg_text(fcinfo, i, what);

    if (s[0] == '\0')
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("%s \"%s\" is too short", what, s)));
    return s;
}

/* A key from a global provider: a superuser's, and only with pg_tde.inherit_global_providers
 * (pg_tde checks both before the arguments, for every key function of the global scope) */
static void
check_global_use(void)
{
    if (!superuser())
        ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                        errmsg("must be superuser to access global key providers")));
    if (!tde_inherit_global)
        ereport(ERROR,
                (errmsg("usage of global key providers is disabled"),
                 errhint("Set \"pg_tde.inherit_global_providers = on\" in postgresql.conf.")));
}

/* ---- key providers ------------------------------------------------------------------------ */

static void
provider_op(FunctionCallInfo fcinfo, const char *op, const char *scope)
{
    StringInfoData req;
    char *type = arg_text(fcinfo, 0, "provider type");
    char *name = arg_name(fcinfo, 1, "provider name");
    char *options;

    if (PG_ARGISNULL(2))
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                        errmsg("provider options cannot be null")));
    options = text_to_cstring(PG_GETARG_TEXT_PP(2));
    tde_req_init(&req, op);
    tde_req_add(&req, "scope", scope);
    tde_req_add(&req, "name", name);
    tde_req_add(&req, "type", type);
    tde_req_add(&req, "options", options);
    (void)tde_call(&req, ERROR);
}

#define TDE_FUNC(fn)                                                                               \
    PG_FUNCTION_INFO_V1(fn);                                                                       \
    Datum fn(PG_FUNCTION_ARGS)

TDE_FUNC(pg_tde_add_database_key_provider)
{
    provider_op(fcinfo, "provider_add", "database");
    PG_RETURN_VOID();
}

TDE_FUNC(pg_tde_add_global_key_provider)
{
    provider_op(fcinfo, "provider_add", "global");
    PG_RETURN_VOID();
}

TDE_FUNC(pg_tde_change_database_key_provider)
{
    provider_op(fcinfo, "provider_change", "database");
    PG_RETURN_VOID();
}

TDE_FUNC(pg_tde_change_global_key_provider)
{
    provider_op(fcinfo, "provider_change", "global");
    PG_RETURN_VOID();
}

static void
provider_delete(FunctionCallInfo fcinfo, const char *scope)
{
    StringInfoData req;
    char *name = arg_name(fcinfo, 0, "provider name");

    tde_req_init(&req, "provider_delete");
    tde_req_add(&req, "scope", scope);
    tde_req_add(&req, "name", name);
    (void)tde_call(&req, ERROR);
}

TDE_FUNC(pg_tde_delete_database_key_provider)
{
    provider_delete(fcinfo, "database");
    PG_RETURN_VOID();
}

TDE_FUNC(pg_tde_delete_global_key_provider)
{
    provider_delete(fcinfo, "global");
    PG_RETURN_VOID();
}

/* One "row=<id>\t<name>\t<type>\t<options JSON>" of provider_list into the tuplestore */
static void
put_provider_row(ReturnSetInfo *rsinfo, char *row)
{
    char *field[4];
    Datum values[4];
    bool nulls[4] = {false, false, false, false};
    int i;

    for (i = 0; i < 4; i++) {
        char *tab = i < 3 ? strchr(row, '\t') : NULL;

        if (i < 3 && tab == NULL)
            ereport(ERROR, (errcode(ERRCODE_PROTOCOL_VIOLATION),
                            errmsg("pgcmk's pg_tde agent answered a malformed provider row")));
        field[i] = row;
        if (tab != NULL) {
            *tab = '\0';
            row = tab + 1;
        }
    }
    values[0] = Int32GetDatum(pg_strtoint32(field[0]));
    values[1] = CStringGetTextDatum(field[1]);
    values[2] = CStringGetTextDatum(field[2]);
    values[3] = DirectFunctionCall1(json_in, CStringGetDatum(field[3]));
    tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

static void
provider_list(FunctionCallInfo fcinfo, const char *scope)
{
    ReturnSetInfo *rsinfo = (ReturnSetInfo *)fcinfo->resultinfo;
    StringInfoData req;
    TdeAnswer *a;
    int i;

    InitMaterializedSRF(fcinfo, 0);
    tde_req_init(&req, "provider_list");
    tde_req_add(&req, "scope", scope);
    a = tde_call(&req, ERROR);
    for (i = 0; i < a->n; i++)
        if (strcmp(a->keys[i], "row") == 0)
            put_provider_row(rsinfo, a->values[i]);
}

TDE_FUNC(pg_tde_list_all_database_key_providers)
{
    provider_list(fcinfo, "database");
    return (Datum)0;
}

TDE_FUNC(pg_tde_list_all_global_key_providers)
{
    provider_list(fcinfo, "global");
    return (Datum)0;
}

/* ---- principal keys ----------------------------------------------------------------------- */

static void
key_op(FunctionCallInfo fcinfo, const char *op, const char *target, const char *scope)
{
    StringInfoData req;
    char *key, *provider;

    if (strcmp(scope, "global") == 0)
        check_global_use();
    key = arg_text(fcinfo, 0, "key name");
    if (key[0] == '\0')
        ereport(ERROR,
                (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("key name \"\" is too short")));
    if (strlen(key) >= TDE_KEY_NAME_LEN)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("key name \"%s\" is too long", key),
                        errhint("Maximum length is %d bytes.", TDE_KEY_NAME_LEN - 1)));
    provider = arg_text(fcinfo, 1, "key provider name");
    tde_req_init(&req, op);
    if (target != NULL)
        tde_req_add(&req, "target", target);
    tde_req_add(&req, "scope", scope);
    tde_req_add(&req, "provider", provider);
    tde_req_add(&req, "key", key);
    (void)tde_call(&req, ERROR);
}

TDE_FUNC(pg_tde_create_key_using_database_key_provider)
{
    key_op(fcinfo, "key_create", NULL, "database");
    PG_RETURN_VOID();
}

TDE_FUNC(pg_tde_create_key_using_global_key_provider)
{
    key_op(fcinfo, "key_create", NULL, "global");
    PG_RETURN_VOID();
}

TDE_FUNC(pg_tde_set_key_using_database_key_provider)
{
    key_op(fcinfo, "key_set", "database", "database");
    PG_RETURN_VOID();
}

TDE_FUNC(pg_tde_set_key_using_global_key_provider)
{
    key_op(fcinfo, "key_set", "database", "global");
    PG_RETURN_VOID();
}

TDE_FUNC(pg_tde_set_server_key_using_global_key_provider)
{
    ereport(WARNING, (errmsg("The WAL encryption feature is currently in beta and may be unstable. "
                             "Do not use it in production environments!")));
    key_op(fcinfo, "key_set", "server", "global");
    PG_RETURN_VOID();
}

TDE_FUNC(pg_tde_set_default_key_using_global_key_provider)
{
    key_op(fcinfo, "key_set", "default", "global");
    PG_RETURN_VOID();
}

static void
target_op(const char *op, const char *target)
{
    StringInfoData req;

    tde_req_init(&req, op);
    tde_req_add(&req, "target", target);
    (void)tde_call(&req, ERROR);
}

TDE_FUNC(pg_tde_delete_key)
{
    target_op("key_delete", "database");
    PG_RETURN_VOID();
}

TDE_FUNC(pg_tde_delete_default_key)
{
    target_op("key_delete", "default");
    PG_RETURN_VOID();
}

TDE_FUNC(pg_tde_verify_key)
{
    target_op("key_verify", "database");
    PG_RETURN_VOID();
}

TDE_FUNC(pg_tde_verify_server_key)
{
    target_op("key_verify", "server");
    PG_RETURN_VOID();
}

TDE_FUNC(pg_tde_verify_default_key)
{
    target_op("key_verify", "default");
    PG_RETURN_VOID();
}

/* key_info: (key_name, key_provider_name, key_provider_id, key_creation_time), a row of NULLs
 * when the target has no key (as pg_tde answers) */
static Datum
key_info(FunctionCallInfo fcinfo, const char *target)
{
    StringInfoData req;
    TupleDesc desc;
    TdeAnswer *a;
    const char *key, *provider, *id, *created;
    Datum values[4];
    bool nulls[4] = {false, false, false, false};

    if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
        elog(ERROR, "return type must be a row type");
    tde_req_init(&req, "key_info");
    tde_req_add(&req, "target", target);
    a = tde_call(&req, ERROR);
    key = tde_answer_get(a, "key");
    provider = tde_answer_get(a, "provider");
    id = tde_answer_get(a, "provider_id");
    created = tde_answer_get(a, "created");
    if (key == NULL || key[0] == '\0')
        PG_RETURN_NULL();
    values[0] = CStringGetTextDatum(key);
    nulls[1] = provider == NULL;
    values[1] = provider ? CStringGetTextDatum(provider) : (Datum)0;
    nulls[2] = id == NULL || id[0] == '\0';
    values[2] = nulls[2] ? (Datum)0 : Int32GetDatum(pg_strtoint32(id));
    nulls[3] = created == NULL || created[0] == '\0';
    values[3] = nulls[3] ? (Datum)0
                         : DirectFunctionCall3(timestamptz_in, CStringGetDatum(created),
                                               ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
    desc = BlessTupleDesc(desc);
    PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}

TDE_FUNC(pg_tde_key_info)
{
    return key_info(fcinfo, "database");
}

TDE_FUNC(pg_tde_server_key_info)
{
    return key_info(fcinfo, "server");
}

TDE_FUNC(pg_tde_default_key_info)
{
    return key_info(fcinfo, "default");
}

/* ---- what is encrypted -------------------------------------------------------------------- */

/* The agent's status: at_rest=1 when the data directory is on pgcmk's encrypted mount */
static bool
at_rest_encrypted(void)
{
    static TimestampTz checked = 0;
    static bool at_rest = false;
    TimestampTz now = GetCurrentTimestamp();

    if (checked == 0 || TimestampDifferenceExceeds(checked, now, TDE_STATUS_TTL_MS)) {
        StringInfoData req;
        const char *v;

        tde_req_init(&req, "status");
        v = tde_answer_get(tde_call(&req, ERROR), "at_rest");
        at_rest = v != NULL && strcmp(v, "1") == 0;
        checked = now;
    }
    return at_rest;
}

/* The access method of relid's data (an index: its table's); InvalidOid when there is none */
static Oid
relation_am(Oid relid)
{
    HeapTuple tp = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
    Form_pg_class rel;
    Oid am, heap = InvalidOid;

    if (!HeapTupleIsValid(tp))
        return InvalidOid;
    rel = (Form_pg_class)GETSTRUCT(tp);
    am = rel->relam;
    if (rel->relkind == RELKIND_INDEX) {
        HeapTuple ix = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(relid));

        if (HeapTupleIsValid(ix)) {
            heap = ((Form_pg_index)GETSTRUCT(ix))->indrelid;
            ReleaseSysCache(ix);
        }
    } else if (rel->relkind != RELKIND_RELATION && rel->relkind != RELKIND_TOASTVALUE &&
               rel->relkind != RELKIND_MATVIEW)
        am = InvalidOid;
    ReleaseSysCache(tp);
    return OidIsValid(heap) ? relation_am(heap) : am;
}

TDE_FUNC(pg_tde_is_encrypted)
{
    Oid am = relation_am(PG_GETARG_OID(0));
    Oid tde = get_am_oid(TDE_AM, true);

    PG_RETURN_BOOL(OidIsValid(am) && am == tde && at_rest_encrypted());
}

TDE_FUNC(pg_tde_version)
{
    PG_RETURN_TEXT_P(cstring_to_text(TDE_VERSION));
}

/* tde_heap: heap's routine under pg_tde's name */
TDE_FUNC(pg_tdeam_handler)
{
    PG_RETURN_POINTER(GetHeapamTableAmRoutine());
}

/* ---- DDL: pg_tde.enforce_encryption and a key for tde_heap --------------------------------- */

/* The access method of an existing table (NULL when there is none) */
static const char *
table_am_name(RangeVar *rv)
{
    Oid relid = RangeVarGetRelid(rv, AccessShareLock, true);
    Oid am = OidIsValid(relid) ? relation_am(relid) : InvalidOid;

    return OidIsValid(am) ? get_am_name(am) : NULL;
}

/* What pg_tde's DDL capture looks at: the access method the statement's table gets or has
 * (NULL: the statement makes no table data), and whether pg_tde.enforce_encryption applies
 * (an index or a sequence follows its table without being refused). */
static const char *
statement_am(Node *stmt, bool *enforced)
{
    *enforced = true;
    if (IsA(stmt, CreateStmt)) {
        CreateStmt *cs = (CreateStmt *)stmt;

        return cs->accessMethod ? cs->accessMethod : default_table_access_method;
    }
    if (IsA(stmt, CreateTableAsStmt)) {
        CreateTableAsStmt *ct = (CreateTableAsStmt *)stmt;

        return ct->into->accessMethod ? ct->into->accessMethod : default_table_access_method;
    }
    if (IsA(stmt, AlterTableStmt)) {
        AlterTableStmt *at = (AlterTableStmt *)stmt;
        ListCell *lc;

        if (!OidIsValid(RangeVarGetRelid(at->relation, AccessShareLock, true)))
            return NULL;
        foreach(lc, at->cmds)
        {
            AlterTableCmd *cmd = (AlterTableCmd *)lfirst(lc);

            if (cmd->subtype == AT_SetAccessMethod)
                return cmd->name ? cmd->name : default_table_access_method;
        }
        return table_am_name(at->relation);
    }
    *enforced = false;
    if (IsA(stmt, IndexStmt))
        return table_am_name(((IndexStmt *)stmt)->relation);
    return NULL;
}

/* pg_tde refuses to encrypt before a principal key is configured (the database's or the
 * default key) */
static void
require_principal_key(void)
{
    static const char *targets[] = {"database", "default"};
    int i;

    for (i = 0; i < 2; i++) {
        StringInfoData req;
        const char *key;

        tde_req_init(&req, "key_info");
        tde_req_add(&req, "target", targets[i]);
        key = tde_answer_get(tde_call(&req, ERROR), "key");
        if (key != NULL && key[0] != '\0')
            return;
    }
    ereport(ERROR, (errmsg("principal key not configured"),
                    errhint("create one using pg_tde_set_key before using encrypted tables")));
}

static void
require_event_trigger(FunctionCallInfo fcinfo)
{
    if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
        ereport(ERROR, (errmsg("Function can only be fired by event trigger manager")));
}

TDE_FUNC(pg_tde_ddl_command_start_capture)
{
    const char *am;
    bool enforced;

    require_event_trigger(fcinfo);
    am = statement_am(((EventTriggerData *)fcinfo->context)->parsetree, &enforced);
    if (am != NULL && strcmp(am, TDE_AM) == 0)
        require_principal_key();
    else if (am != NULL && enforced && tde_enforce_encryption)
        ereport(ERROR, (errmsg("pg_tde.enforce_encryption is ON, only the tde_heap access method "
                               "is allowed.")));
    PG_RETURN_VOID();
}

TDE_FUNC(pg_tde_ddl_command_end_capture)
{
    require_event_trigger(fcinfo);
    PG_RETURN_VOID();
}

/* ---- seed 000's function that pg_tde does not have ------------------------------------------ */

/* PostgreSQL's own "function ... does not exist" (what pg_tde answers), with a hint naming the
 * function that does exist */
static void
tde_emit_log(ErrorData *edata)
{
    if (edata->elevel == ERROR && edata->sqlerrcode == ERRCODE_UNDEFINED_FUNCTION &&
        edata->message != NULL &&
        strstr(edata->message, "pg_tde_add_key_using_global_key_provider_kmip(") != NULL) {
        MemoryContext old = MemoryContextSwitchTo(ErrorContext);

        edata->hint =
            pstrdup("pg_tde has no such function; a global KMIP key provider is added with "
                    "pg_tde_add_global_key_provider_kmip(provider_name, kmip_host, kmip_port, "
                    "kmip_cert_path, kmip_key_path, kmip_ca_path).");
        MemoryContextSwitchTo(old);
    }
    if (prev_emit_log_hook)
        prev_emit_log_hook(edata);
}

/* ---- start-up ------------------------------------------------------------------------------ */

/* With pg_tde.wal_encrypt = on the server key must be fetchable now, or the server does not
 * start (the agent answers pg_tde's message, raised as FATAL) */
static void
server_key_check(void)
{
    StringInfoData req;

    tde_req_init(&req, "server_key_check");
    (void)tde_call(&req, FATAL);
    ereport(LOG, (errmsg("pg_tde: the server key is available; WAL encryption is on")));
}

static void
define_gucs(void)
{
    DefineCustomBoolVariable("pg_tde.inherit_global_providers",
                             "Allow using global key providers for databases.", NULL,
                             &tde_inherit_global, true, PGC_SUSET, 0, NULL, NULL, NULL);
    DefineCustomBoolVariable("pg_tde.wal_encrypt", "Enable/Disable encryption of WAL.", NULL,
                             &tde_wal_encrypt, false, PGC_POSTMASTER, 0, NULL, NULL, NULL);
    DefineCustomBoolVariable("pg_tde.enforce_encryption",
                             "Only allow the creation of encrypted tables.", NULL,
                             &tde_enforce_encryption, false, PGC_SUSET, 0, NULL, NULL, NULL);
    DefineCustomEnumVariable("pg_tde.cipher", "TDE encryption algorithm.", NULL, &tde_cipher,
                             TDE_CIPHER_AES_128, cipher_options, PGC_SUSET, 0, NULL, NULL, NULL);
    DefineCustomStringVariable(PGTDE_GUC_SOCKET, "pgcmkd's pg_tde agent socket.",
                               "Set by pgcmkd in pgcmk.conf.", &tde_agent_socket, "",
                               PGC_POSTMASTER, GUC_SUPERUSER_ONLY | GUC_NOT_IN_SAMPLE, NULL, NULL,
                               NULL);
    DefineCustomStringVariable(PGTDE_GUC_SLUG, "This instance's name for pgcmkd's agent.",
                               "Set by pgcmkd in pgcmk.conf.", &tde_agent_slug, "", PGC_POSTMASTER,
                               GUC_SUPERUSER_ONLY | GUC_NOT_IN_SAMPLE, NULL, NULL, NULL);
    MarkGUCPrefixReserved("pg_tde");
}

void
_PG_init(void)
{
    if (!process_shared_preload_libraries_in_progress)
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("pg_tde can only be loaded at server startup. Restart required.")));
    define_gucs();
    prev_emit_log_hook = emit_log_hook;
    emit_log_hook = tde_emit_log;
    if (IsPostmasterEnvironment && !IsUnderPostmaster && tde_wal_encrypt)
        server_key_check();
}
