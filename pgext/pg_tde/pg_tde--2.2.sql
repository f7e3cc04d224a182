/* pg_tde--2.2.sql - pgcmk's emulation of Percona pg_tde 2.2: the same functions (names, argument
 * names and types, defaults, return types, privileges) as pg_tde's own scripts, implemented by
 * pg_tde.so as clients of pgcmkd's agent. See docs/pg-tde.md for what differs. */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION pg_tde" to load this file. \quit

-- add a database key provider
CREATE FUNCTION pg_tde_add_database_key_provider(provider_type TEXT, provider_name TEXT, options JSON)
RETURNS VOID
LANGUAGE C
AS 'MODULE_PATHNAME';
REVOKE ALL ON FUNCTION pg_tde_add_database_key_provider(TEXT, TEXT, JSON) FROM PUBLIC;

CREATE FUNCTION pg_tde_add_database_key_provider_file(provider_name TEXT,
    file_path TEXT)
RETURNS VOID
LANGUAGE SQL
BEGIN ATOMIC
    SELECT pg_tde_add_database_key_provider('file', provider_name,
        json_build_object('path', file_path));
END;

CREATE FUNCTION pg_tde_add_database_key_provider_vault_v2(provider_name TEXT,
    vault_url TEXT,
    vault_mount_path TEXT,
    vault_token_path TEXT,
    vault_ca_path TEXT)
RETURNS VOID
LANGUAGE SQL
BEGIN ATOMIC
    SELECT pg_tde_add_database_key_provider('vault-v2', provider_name,
        json_build_object('url', vault_url,
        'mountPath', vault_mount_path,
        'tokenPath', vault_token_path,
        'caPath', vault_ca_path));
END;

CREATE FUNCTION pg_tde_add_database_key_provider_vault_v2(provider_name TEXT,
    vault_url TEXT,
    vault_mount_path TEXT,
    vault_token_path TEXT,
    vault_ca_path TEXT,
    vault_namespace TEXT)
RETURNS VOID
LANGUAGE SQL
BEGIN ATOMIC
    SELECT pg_tde_add_database_key_provider('vault-v2', provider_name,
        json_build_object('url', vault_url,
        'mountPath', vault_mount_path,
        'tokenPath', vault_token_path,
        'caPath', vault_ca_path,
        'namespace', vault_namespace));
END;

CREATE FUNCTION pg_tde_add_database_key_provider_kmip(provider_name TEXT,
    kmip_host TEXT,
    kmip_port INT,
    kmip_cert_path TEXT,
    kmip_key_path TEXT,
    kmip_ca_path TEXT)
RETURNS VOID
LANGUAGE SQL
BEGIN ATOMIC
    SELECT pg_tde_add_database_key_provider('kmip', provider_name,
        json_build_object('host', kmip_host,
        'port', kmip_port,
        'certPath', kmip_cert_path,
        'keyPath', kmip_key_path,
        'caPath', kmip_ca_path));
END;

-- add a global key provider
CREATE FUNCTION pg_tde_add_global_key_provider(provider_type TEXT, provider_name TEXT, options JSON)
RETURNS VOID
LANGUAGE C
AS 'MODULE_PATHNAME';
REVOKE ALL ON FUNCTION pg_tde_add_global_key_provider(TEXT, TEXT, JSON) FROM PUBLIC;

CREATE FUNCTION pg_tde_add_global_key_provider_file(provider_name TEXT,
    file_path TEXT)
RETURNS VOID
LANGUAGE SQL
BEGIN ATOMIC
    SELECT pg_tde_add_global_key_provider('file', provider_name,
        json_build_object('path', file_path));
END;

CREATE FUNCTION pg_tde_add_global_key_provider_vault_v2(provider_name TEXT,
    vault_url TEXT,
    vault_mount_path TEXT,
    vault_token_path TEXT,
    vault_ca_path TEXT)
RETURNS VOID
LANGUAGE SQL
BEGIN ATOMIC
    SELECT pg_tde_add_global_key_provider('vault-v2', provider_name,
        json_build_object('url', vault_url,
        'mountPath', vault_mount_path,
        'tokenPath', vault_token_path,
        'caPath', vault_ca_path));
END;

CREATE FUNCTION pg_tde_add_global_key_provider_vault_v2(provider_name TEXT,
    vault_url TEXT,
    vault_mount_path TEXT,
    vault_token_path TEXT,
    vault_ca_path TEXT,
    vault_namespace TEXT)
RETURNS VOID
LANGUAGE SQL
BEGIN ATOMIC
    SELECT pg_tde_add_global_key_provider('vault-v2', provider_name,
        json_build_object('url', vault_url,
        'mountPath', vault_mount_path,
        'tokenPath', vault_token_path,
        'caPath', vault_ca_path,
        'namespace', vault_namespace));
END;

CREATE FUNCTION pg_tde_add_global_key_provider_kmip(provider_name TEXT,
    kmip_host TEXT,
    kmip_port INT,
    kmip_cert_path TEXT,
    kmip_key_path TEXT,
    kmip_ca_path TEXT)
RETURNS VOID
LANGUAGE SQL
BEGIN ATOMIC
    SELECT pg_tde_add_global_key_provider('kmip', provider_name,
        json_build_object('host', kmip_host,
        'port', kmip_port,
        'certPath', kmip_cert_path,
        'keyPath', kmip_key_path,
        'caPath', kmip_ca_path));
END;

-- change a database key provider
CREATE FUNCTION pg_tde_change_database_key_provider(provider_type TEXT, provider_name TEXT, options JSON)
RETURNS VOID
LANGUAGE C
AS 'MODULE_PATHNAME';
REVOKE ALL ON FUNCTION pg_tde_change_database_key_provider(TEXT, TEXT, JSON) FROM PUBLIC;

CREATE FUNCTION pg_tde_change_database_key_provider_file(provider_name TEXT,
    file_path TEXT)
RETURNS VOID
LANGUAGE SQL
BEGIN ATOMIC
    SELECT pg_tde_change_database_key_provider('file', provider_name,
        json_build_object('path', file_path));
END;

CREATE FUNCTION pg_tde_change_database_key_provider_vault_v2(provider_name TEXT,
    vault_url TEXT,
    vault_mount_path TEXT,
    vault_token_path TEXT,
    vault_ca_path TEXT)
RETURNS VOID
LANGUAGE SQL
BEGIN ATOMIC
    SELECT pg_tde_change_database_key_provider('vault-v2', provider_name,
        json_build_object('url', vault_url,
        'mountPath', vault_mount_path,
        'tokenPath', vault_token_path,
        'caPath', vault_ca_path));
END;

CREATE FUNCTION pg_tde_change_database_key_provider_vault_v2(provider_name TEXT,
    vault_url TEXT,
    vault_mount_path TEXT,
    vault_token_path TEXT,
    vault_ca_path TEXT,
    vault_namespace TEXT)
RETURNS VOID
LANGUAGE SQL
BEGIN ATOMIC
    SELECT pg_tde_change_database_key_provider('vault-v2', provider_name,
        json_build_object('url', vault_url,
        'mountPath', vault_mount_path,
        'tokenPath', vault_token_path,
        'caPath', vault_ca_path,
        'namespace', vault_namespace));
END;

CREATE FUNCTION pg_tde_change_database_key_provider_kmip(provider_name TEXT,
    kmip_host TEXT,
    kmip_port INT,
    kmip_cert_path TEXT,
    kmip_key_path TEXT,
    kmip_ca_path TEXT)
RETURNS VOID
LANGUAGE SQL
BEGIN ATOMIC
    SELECT pg_tde_change_database_key_provider('kmip', provider_name,
        json_build_object('host', kmip_host,
        'port', kmip_port,
        'certPath', kmip_cert_path,
        'keyPath', kmip_key_path,
        'caPath', kmip_ca_path));
END;

-- change a global key provider
CREATE FUNCTION pg_tde_change_global_key_provider(provider_type TEXT, provider_name TEXT, options JSON)
RETURNS VOID
LANGUAGE C
AS 'MODULE_PATHNAME';
REVOKE ALL ON FUNCTION pg_tde_change_global_key_provider(TEXT, TEXT, JSON) FROM PUBLIC;

CREATE FUNCTION pg_tde_change_global_key_provider_file(provider_name TEXT,
    file_path TEXT)
RETURNS VOID
LANGUAGE SQL
BEGIN ATOMIC
    SELECT pg_tde_change_global_key_provider('file', provider_name,
        json_build_object('path', file_path));
END;

CREATE FUNCTION pg_tde_change_global_key_provider_vault_v2(provider_name TEXT,
    vault_url TEXT,
    vault_mount_path TEXT,
    vault_token_path TEXT,
    vault_ca_path TEXT)
RETURNS VOID
LANGUAGE SQL
BEGIN ATOMIC
    SELECT pg_tde_change_global_key_provider('vault-v2', provider_name,
        json_build_object('url', vault_url,
        'mountPath', vault_mount_path,
        'tokenPath', vault_token_path,
        'caPath', vault_ca_path));
END;

CREATE FUNCTION pg_tde_change_global_key_provider_vault_v2(provider_name TEXT,
    vault_url TEXT,
    vault_mount_path TEXT,
    vault_token_path TEXT,
    vault_ca_path TEXT,
    vault_namespace TEXT)
RETURNS VOID
LANGUAGE SQL
BEGIN ATOMIC
    SELECT pg_tde_change_global_key_provider('vault-v2', provider_name,
        json_build_object('url', vault_url,
        'mountPath', vault_mount_path,
        'tokenPath', vault_token_path,
        'caPath', vault_ca_path,
        'namespace', vault_namespace));
END;

CREATE FUNCTION pg_tde_change_global_key_provider_kmip(provider_name TEXT,
    kmip_host TEXT,
    kmip_port INT,
    kmip_cert_path TEXT,
    kmip_key_path TEXT,
    kmip_ca_path TEXT)
RETURNS VOID
LANGUAGE SQL
BEGIN ATOMIC
    SELECT pg_tde_change_global_key_provider('kmip', provider_name,
        json_build_object('host', kmip_host,
        'port', kmip_port,
        'certPath', kmip_cert_path,
        'keyPath', kmip_key_path,
        'caPath', kmip_ca_path));
END;

CREATE FUNCTION pg_tde_list_all_database_key_providers(
    OUT id INT,
    OUT provider_name TEXT,
    OUT provider_type TEXT,
    OUT options JSON)
RETURNS SETOF RECORD
LANGUAGE C
AS 'MODULE_PATHNAME';
REVOKE ALL ON FUNCTION pg_tde_list_all_database_key_providers() FROM PUBLIC;

CREATE FUNCTION pg_tde_list_all_global_key_providers(
    OUT id INT,
    OUT provider_name TEXT,
    OUT provider_type TEXT,
    OUT options JSON)
RETURNS SETOF RECORD
LANGUAGE C
AS 'MODULE_PATHNAME';
REVOKE ALL ON FUNCTION pg_tde_list_all_global_key_providers() FROM PUBLIC;

CREATE FUNCTION pg_tde_delete_database_key_provider(provider_name TEXT)
RETURNS VOID
LANGUAGE C
AS 'MODULE_PATHNAME';
REVOKE ALL ON FUNCTION pg_tde_delete_database_key_provider(TEXT) FROM PUBLIC;

CREATE FUNCTION pg_tde_delete_global_key_provider(provider_name TEXT)
RETURNS VOID
LANGUAGE C
AS 'MODULE_PATHNAME';
REVOKE ALL ON FUNCTION pg_tde_delete_global_key_provider(TEXT) FROM PUBLIC;

-- principal keys
CREATE FUNCTION pg_tde_create_key_using_database_key_provider(key_name TEXT, provider_name TEXT)
RETURNS VOID
LANGUAGE C
AS 'MODULE_PATHNAME';
REVOKE ALL ON FUNCTION pg_tde_create_key_using_database_key_provider(TEXT, TEXT) FROM PUBLIC;

CREATE FUNCTION pg_tde_create_key_using_global_key_provider(key_name TEXT, provider_name TEXT)
RETURNS VOID
LANGUAGE C
AS 'MODULE_PATHNAME';
REVOKE ALL ON FUNCTION pg_tde_create_key_using_global_key_provider(TEXT, TEXT) FROM PUBLIC;

CREATE FUNCTION pg_tde_set_key_using_database_key_provider(key_name TEXT, provider_name TEXT)
RETURNS VOID
LANGUAGE C
AS 'MODULE_PATHNAME';
REVOKE ALL ON FUNCTION pg_tde_set_key_using_database_key_provider(TEXT, TEXT) FROM PUBLIC;

CREATE FUNCTION pg_tde_set_key_using_global_key_provider(key_name TEXT, provider_name TEXT)
RETURNS VOID
LANGUAGE C
AS 'MODULE_PATHNAME';
REVOKE ALL ON FUNCTION pg_tde_set_key_using_global_key_provider(TEXT, TEXT) FROM PUBLIC;

CREATE FUNCTION pg_tde_set_server_key_using_global_key_provider(key_name TEXT, provider_name TEXT)
RETURNS VOID
LANGUAGE C
AS 'MODULE_PATHNAME';
REVOKE ALL ON FUNCTION pg_tde_set_server_key_using_global_key_provider(TEXT, TEXT) FROM PUBLIC;

CREATE FUNCTION pg_tde_set_default_key_using_global_key_provider(key_name TEXT, provider_name TEXT)
RETURNS VOID
LANGUAGE C
AS 'MODULE_PATHNAME';
REVOKE ALL ON FUNCTION pg_tde_set_default_key_using_global_key_provider(TEXT, TEXT) FROM PUBLIC;

CREATE FUNCTION pg_tde_verify_key()
RETURNS VOID
LANGUAGE C
AS 'MODULE_PATHNAME';
REVOKE ALL ON FUNCTION pg_tde_verify_key() FROM PUBLIC;

CREATE FUNCTION pg_tde_verify_server_key()
RETURNS VOID
LANGUAGE C
AS 'MODULE_PATHNAME';
REVOKE ALL ON FUNCTION pg_tde_verify_server_key() FROM PUBLIC;

CREATE FUNCTION pg_tde_verify_default_key()
RETURNS VOID
LANGUAGE C
AS 'MODULE_PATHNAME';
REVOKE ALL ON FUNCTION pg_tde_verify_default_key() FROM PUBLIC;

CREATE FUNCTION pg_tde_delete_key()
RETURNS VOID
LANGUAGE C
AS 'MODULE_PATHNAME';
REVOKE ALL ON FUNCTION pg_tde_delete_key() FROM PUBLIC;

CREATE FUNCTION pg_tde_delete_default_key()
RETURNS VOID
LANGUAGE C
AS 'MODULE_PATHNAME';
REVOKE ALL ON FUNCTION pg_tde_delete_default_key() FROM PUBLIC;

CREATE FUNCTION pg_tde_key_info()
RETURNS TABLE (key_name TEXT,
    key_provider_name TEXT,
    key_provider_id INT,
    key_creation_time TIMESTAMP WITH TIME ZONE)
LANGUAGE C
AS 'MODULE_PATHNAME';
REVOKE ALL ON FUNCTION pg_tde_key_info() FROM PUBLIC;

CREATE FUNCTION pg_tde_server_key_info()
RETURNS TABLE (key_name TEXT,
    key_provider_name TEXT,
    key_provider_id INT,
    key_creation_time TIMESTAMP WITH TIME ZONE)
LANGUAGE C
AS 'MODULE_PATHNAME';
REVOKE ALL ON FUNCTION pg_tde_server_key_info() FROM PUBLIC;

CREATE FUNCTION pg_tde_default_key_info()
RETURNS TABLE (key_name TEXT,
    key_provider_name TEXT,
    key_provider_id INT,
    key_creation_time TIMESTAMP WITH TIME ZONE)
LANGUAGE C
AS 'MODULE_PATHNAME';
REVOKE ALL ON FUNCTION pg_tde_default_key_info() FROM PUBLIC;

-- what is encrypted (pgcmk: a tde_heap relation of an instance whose data directory is on the
-- encrypted mount of pgcmk's at-rest mode)
CREATE FUNCTION pg_tde_is_encrypted(relation REGCLASS)
RETURNS BOOLEAN
STRICT
LANGUAGE C
AS 'MODULE_PATHNAME';

CREATE FUNCTION pg_tde_version()
RETURNS TEXT
LANGUAGE C
AS 'MODULE_PATHNAME';

-- the table access method: heap's, under pg_tde's name
CREATE FUNCTION pg_tdeam_handler(internal)
RETURNS TABLE_AM_HANDLER
LANGUAGE C
AS 'MODULE_PATHNAME';
REVOKE ALL ON FUNCTION pg_tdeam_handler(internal) FROM PUBLIC;

CREATE ACCESS METHOD tde_heap TYPE TABLE HANDLER pg_tdeam_handler;
COMMENT ON ACCESS METHOD tde_heap IS 'tde_heap table access method (pgcmk: heap under pg_tde''s name)';

-- DDL capture: pg_tde.enforce_encryption, and a principal key before a tde_heap table
CREATE FUNCTION pg_tde_ddl_command_start_capture()
RETURNS EVENT_TRIGGER
LANGUAGE C
AS 'MODULE_PATHNAME';
REVOKE ALL ON FUNCTION pg_tde_ddl_command_start_capture() FROM PUBLIC;

CREATE FUNCTION pg_tde_ddl_command_end_capture()
RETURNS EVENT_TRIGGER
LANGUAGE C
AS 'MODULE_PATHNAME';
REVOKE ALL ON FUNCTION pg_tde_ddl_command_end_capture() FROM PUBLIC;

CREATE EVENT TRIGGER pg_tde_ddl_start
ON ddl_command_start
EXECUTE FUNCTION pg_tde_ddl_command_start_capture();
ALTER EVENT TRIGGER pg_tde_ddl_start ENABLE ALWAYS;

CREATE EVENT TRIGGER pg_tde_ddl_end
ON ddl_command_end
EXECUTE FUNCTION pg_tde_ddl_command_end_capture();
ALTER EVENT TRIGGER pg_tde_ddl_end ENABLE ALWAYS;
