/* schema.h - JSON Schema (a draft 2020-12 subset) checks of ARM request bodies, per resource type
 * and api-version. The schemas live in schemas/ (one file per type, see schemas/README.md), are
 * loaded once at start and are read-only afterwards, so any thread may validate. A body that
 * breaks a schema gets 400 InvalidRequestContent naming the JSON path and the rule; the
 * providers keep the business rules. */
#ifndef PGCMK_SCHEMA_H
#define PGCMK_SCHEMA_H

#include <jansson.h>

#include "pgcmk/core.h"
#include "pgcmk/err.h"

/* Validation flags. PATCH: a PATCH body (`required` is not enforced, oneOf reads as anyOf).
 * TEMPLATE: ARM template text, where a string "[expression]" stands for any value. */
#define PGCMK_SCHEMA_F_PATCH    0x01u
#define PGCMK_SCHEMA_F_TEMPLATE 0x02u

/* One compiled schema document (patterns compiled, $refs resolved and checked). */
struct pgcmk_schema;

/* Compiles a document: checks keywords, compiles every `pattern` (POSIX ERE) and resolves every
 * `$ref` (only "#" and "#/$defs/NAME"). NULL with err (500-class text) when the document is bad.
 * The document is copied; the caller keeps `doc`. */
struct pgcmk_schema *pgcmk_schema_compile(const json_t *doc, struct pgcmk_err *err) PGCMK_WUR;
void pgcmk_schema_free(struct pgcmk_schema *s);
/* Validates `inst` against the schema at `ref` ("#" or NULL for the root, "#/$defs/NAME").
 * 0, or -1 with err (InvalidRequestContent, target = the JSON path). */
int pgcmk_schema_validate(const struct pgcmk_schema *s, const char *ref, const json_t *inst,
                          unsigned flags, struct pgcmk_err *err) PGCMK_WUR;

/* ---- the registry of request-body schemas ------------------------------------------------ */

/* Loads every *.json under `dir` (recursively). Returns the number of type files loaded, or -1
 * with err when a file does not parse or compile (the daemon then refuses to start). */
int pgcmk_schema_load_dir(const char *dir, struct pgcmk_err *err) PGCMK_WUR;
/* Startup: finds the directory (`dir` as given; when it does not exist and is relative, also
 * next to the binary: <bindir>/../schemas and <bindir>/../../schemas), loads it and logs what it
 * found. A missing directory is a warning (no validation); a broken schema file is -1. */
int pgcmk_schema_init(const char *dir, const char *argv0) PGCMK_WUR;
/* Forgets every loaded schema. */
void pgcmk_schema_reset(void);
/* The directory in use ("" when none). */
const char *pgcmk_schema_dir(void);

/* 1 when a schema covers `type` ("Microsoft.KeyVault/vaults") at `api_version`. */
int pgcmk_schema_has(const char *type, const char *api_version);
/* Checks a request body of `type` at `api_version` (PUT, or PATCH with PGCMK_SCHEMA_F_PATCH).
 * 0 when valid or when no schema covers the pair; -1 with err otherwise. */
int pgcmk_schema_check(const char *type, const char *api_version, const json_t *body,
                       unsigned flags, struct pgcmk_err *err) PGCMK_WUR;

#endif
