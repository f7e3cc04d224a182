/* test_schema.c - the JSON Schema validator (each keyword, bounds, errors) and the schemas/ tree.
 *
 *   test_schema                         the unit tests (run from the repository root)
 *   test_schema --validate DIR FILE     loads the schemas in DIR and checks each case of FILE, a
 *                                       JSON array of {"type","apiVersion","body","patch"?,
 *                                       "template"?}; prints one JSON array of {"ok","code",
 *                                       "target","message"} (tests/integration/test_schemas.py) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgcmk/err.h"
#include "pgcmk/schema.h"
#include "t.h"

static struct pgcmk_schema *
compile_text(const char *text)
{
    struct pgcmk_err err;
    json_error_t jerr;
    json_t *doc = json_loads(text, 0, &jerr);
    struct pgcmk_schema *s;

    if (doc == NULL) {
        fprintf(stderr, "bad test schema: %s\n", jerr.text);
        return NULL;
    }
    pgcmk_err_clear(&err);
    s = pgcmk_schema_compile(doc, &err);
    if (s == NULL)
        fprintf(stderr, "compile: %s\n", err.message);
    json_decref(doc);
    return s;
}

/* 0 valid, -1 invalid (err filled). */
static int
check(const struct pgcmk_schema *s, const char *ref, const char *inst, unsigned flags,
      struct pgcmk_err *err)
{
    json_t *j = json_loads(inst, JSON_DECODE_ANY, NULL);
    int rc;

    pgcmk_err_clear(err);
    if (j == NULL) {
        fprintf(stderr, "bad test instance: %s\n", inst);
        return -2;
    }
    rc = pgcmk_schema_validate(s, ref, j, flags, err);
    json_decref(j);
    return rc;
}

static int
valid(const struct pgcmk_schema *s, const char *inst)
{
    struct pgcmk_err err;
    int rc = check(s, NULL, inst, 0, &err);

    if (rc)
        fprintf(stderr, "  unexpected: %s -> %s\n", inst, err.message);
    return rc == 0;
}

/* Invalid, with the code InvalidRequestContent and the target `target` (NULL: no target). */
static int
invalid(const struct pgcmk_schema *s, const char *inst, const char *target)
{
    struct pgcmk_err err;

    if (check(s, NULL, inst, 0, &err) != -1)
        return 0;
    if (err.code != PGCMK_E_INVALID_CONTENT)
        return 0;
    if (target ? strcmp(err.target, target) != 0 : err.target[0] != '\0') {
        fprintf(stderr, "  target '%s', expected '%s' (%s)\n", err.target, target ? target : "",
                err.message);
        return 0;
    }
    return 1;
}

static void
test_types(void)
{
    struct pgcmk_schema *s = compile_text(
        "{\"type\":\"object\",\"properties\":{"
        "\"s\":{\"type\":\"string\"},\"i\":{\"type\":\"integer\"},\"n\":{\"type\":\"number\"},"
        "\"b\":{\"type\":\"boolean\"},\"z\":{\"type\":\"null\"},\"a\":{\"type\":\"array\"},"
        "\"o\":{\"type\":\"object\",\"title\":\"Thing\"},\"m\":{\"type\":[\"string\",\"null\"]}}}");
    struct pgcmk_err err;

    CHECK(s != NULL);
    CHECK(valid(s, "{}"));
    CHECK(valid(s, "{\"s\":\"x\",\"i\":3,\"n\":2.5,\"b\":true,\"z\":null,\"a\":[],\"o\":{}}"));
    CHECK(valid(s, "{\"i\":5.0}"));  /* 5.0 is an integer in JSON Schema */
    CHECK(valid(s, "{\"n\":7}"));    /* an integer is a number */
    CHECK(valid(s, "{\"m\":null}")); /* type arrays */
    CHECK(valid(s, "{\"m\":\"x\"}"));
    CHECK(valid(s, "{\"unknown\":[1,2]}")); /* unknown members are allowed by default */
    CHECK(invalid(s, "{\"s\":1}", "s"));
    CHECK(invalid(s, "{\"i\":1.5}", "i"));
    CHECK(invalid(s, "{\"i\":\"1\"}", "i"));
    CHECK(invalid(s, "{\"n\":\"1\"}", "n"));
    CHECK(invalid(s, "{\"b\":\"true\"}", "b"));
    CHECK(invalid(s, "{\"z\":0}", "z"));
    CHECK(invalid(s, "{\"a\":{}}", "a"));
    CHECK(invalid(s, "{\"o\":[]}", "o"));
    CHECK(invalid(s, "{\"m\":1}", "m"));
    CHECK(invalid(s, "[]", NULL));
    CHECK(check(s, NULL, "{\"o\":[]}", 0, &err) == -1);
    CHECK(strstr(err.message, "type 'Thing'") != NULL);
    CHECK(strstr(err.message, "Path 'o'") != NULL);
    CHECK(strncmp(err.message, "The request content was invalid and could not be deserialized",
                  61) == 0);
    CHECK(check(s, NULL, "{\"m\":1}", 0, &err) == -1);
    CHECK(strstr(err.message, "type 'string'") != NULL); /* "null" is not named */
    pgcmk_schema_free(s);
}

static void
test_required_and_additional(void)
{
    struct pgcmk_schema *s = compile_text(
        "{\"type\":\"object\",\"title\":\"Top\",\"required\":[\"a\"],\"properties\":{"
        "\"a\":{\"type\":\"object\",\"title\":\"Inner\",\"required\":[\"x\"],"
        "\"additionalProperties\":false,\"properties\":{\"x\":{},\"y\":{}}},"
        "\"m\":{\"type\":\"object\",\"additionalProperties\":{\"type\":\"string\"}}}}");
    struct pgcmk_err err;

    CHECK(s != NULL);
    CHECK(valid(s, "{\"a\":{\"x\":1}}"));
    CHECK(valid(s, "{\"a\":{\"x\":1,\"y\":2},\"m\":{\"k\":\"v\"}}"));
    CHECK(invalid(s, "{}", NULL));
    CHECK(invalid(s, "{\"a\":{}}", "a"));
    CHECK(invalid(s, "{\"a\":{\"x\":1,\"z\":2}}", "a.z"));
    CHECK(invalid(s, "{\"a\":{\"x\":1},\"m\":{\"k\":1}}", "m.k"));
    CHECK(check(s, NULL, "{\"a\":{}}", 0, &err) == -1);
    CHECK(strstr(err.message, "Required property 'x' not found in JSON. Path 'a'.") != NULL);
    CHECK(check(s, NULL, "{\"a\":{\"x\":1,\"z\":2}}", 0, &err) == -1);
    CHECK(strstr(err.message, "Could not find member 'z' on object of type 'Inner'. Path 'a.z'") !=
          NULL);
    /* PATCH bodies: required is not enforced, the rest is */
    CHECK(check(s, NULL, "{}", PGCMK_SCHEMA_F_PATCH, &err) == 0);
    CHECK(check(s, NULL, "{\"a\":{\"z\":1}}", PGCMK_SCHEMA_F_PATCH, &err) == -1);
    pgcmk_schema_free(s);
}

static void
test_case_insensitive_names(void)
{
    struct pgcmk_schema *s =
        compile_text("{\"x-pgcmk-caseInsensitiveNames\":true,\"type\":\"object\",\"required\":["
                     "\"dataEncryption\"],"
                     "\"additionalProperties\":false,"
                     "\"properties\":{\"dataEncryption\":{\"type\":\"object\",\"properties\":{"
                     "\"type\":{\"type\":\"string\"}}}}}");
    struct pgcmk_schema *cs =
        compile_text("{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\"}}}");

    CHECK(s != NULL && cs != NULL);
    CHECK(valid(s, "{\"dataencryption\":{\"TYPE\":\"x\"}}"));
    CHECK(valid(s, "{\"DataEncryption\":{}}"));
    CHECK(invalid(s, "{\"dataencryption\":{\"Type\":1}}", "dataencryption.Type"));
    CHECK(invalid(s, "{\"dataencryptio\":{}}", NULL)); /* required, any case */
    /* without the flag, names are exact: "A" is another (unknown, allowed) member */
    CHECK(valid(cs, "{\"A\":1}"));
    CHECK(invalid(cs, "{\"a\":1}", "a"));
    pgcmk_schema_free(s);
    pgcmk_schema_free(cs);
}

static void
test_enum(void)
{
    struct pgcmk_schema *s = compile_text(
        "{\"type\":\"object\",\"properties\":{"
        "\"e\":{\"type\":\"string\",\"title\":\"SkuName\",\"enum\":[\"standard\",\"premium\"]},"
        "\"c\":{\"enum\":[\"Abc\"],\"x-pgcmk-caseSensitive\":true},"
        "\"n\":{\"enum\":[1,2,null]}}}");
    struct pgcmk_err err;

    CHECK(s != NULL);
    CHECK(valid(s, "{\"e\":\"standard\"}"));
    CHECK(valid(s, "{\"e\":\"Premium\"}")); /* Azure compares enum strings in any case */
    CHECK(valid(s, "{\"c\":\"Abc\"}"));
    CHECK(valid(s, "{\"n\":2}"));
    CHECK(valid(s, "{\"n\":2.0}"));
    CHECK(valid(s, "{\"n\":null}"));
    CHECK(invalid(s, "{\"e\":\"gold\"}", "e"));
    CHECK(invalid(s, "{\"c\":\"abc\"}", "c"));
    CHECK(invalid(s, "{\"n\":3}", "n"));
    CHECK(check(s, NULL, "{\"e\":\"gold\"}", 0, &err) == -1);
    CHECK(strstr(err.message, "Error converting value \"gold\" to type 'SkuName'") != NULL);
    CHECK(strstr(err.message, "standard, premium") != NULL);
    pgcmk_schema_free(s);
}

static void
test_pattern_and_lengths(void)
{
    struct pgcmk_schema *s =
        compile_text("{\"type\":\"object\",\"properties\":{"
                     "\"g\":{\"type\":\"string\",\"pattern\":\"^[0-9a-f]{4}-[0-9a-f]{2}$\"},"
                     "\"l\":{\"type\":\"string\",\"minLength\":2,\"maxLength\":3}}}");
    struct pgcmk_err err;

    CHECK(s != NULL);
    CHECK(valid(s, "{\"g\":\"abcd-01\"}"));
    CHECK(invalid(s, "{\"g\":\"abcd-012\"}", "g"));
    CHECK(invalid(s, "{\"g\":\"ABCD-01\"}", "g"));
    CHECK(valid(s, "{\"l\":\"ab\"}"));
    CHECK(valid(s, "{\"l\":\"abc\"}"));
    CHECK(valid(s, "{\"l\":\"\xc3\xa9\xc3\xa9\xc3\xa9\"}")); /* 3 code points, 6 bytes */
    CHECK(invalid(s, "{\"l\":\"a\"}", "l"));
    CHECK(invalid(s, "{\"l\":\"abcd\"}", "l"));
    CHECK(check(s, NULL, "{\"g\":\"zz\"}", 0, &err) == -1);
    CHECK(strstr(err.message, "does not match the pattern") != NULL);
    pgcmk_schema_free(s);
    /* a pattern that is not POSIX ERE fails at load, not at request time */
    CHECK(compile_text("{\"type\":\"string\",\"pattern\":\"([a-z\"}") == NULL);
}

static void
test_numbers_and_items(void)
{
    struct pgcmk_schema *s =
        compile_text("{\"type\":\"object\",\"properties\":{"
                     "\"d\":{\"type\":\"integer\",\"minimum\":7,\"maximum\":90},"
                     "\"r\":{\"type\":\"number\",\"minimum\":0.5},"
                     "\"a\":{\"type\":\"array\",\"minItems\":1,\"maxItems\":2,"
                     "\"items\":{\"type\":\"string\",\"enum\":[\"get\",\"wrapKey\"]}}}}");

    CHECK(s != NULL);
    CHECK(valid(s, "{\"d\":7}"));
    CHECK(valid(s, "{\"d\":90}"));
    CHECK(invalid(s, "{\"d\":6}", "d"));
    CHECK(invalid(s, "{\"d\":91}", "d"));
    CHECK(invalid(s, "{\"d\":-9223372036854775808}", "d"));
    CHECK(valid(s, "{\"r\":0.5}"));
    CHECK(invalid(s, "{\"r\":0.49}", "r"));
    CHECK(valid(s, "{\"a\":[\"get\"]}"));
    CHECK(valid(s, "{\"a\":[\"GET\",\"wrapkey\"]}"));
    CHECK(invalid(s, "{\"a\":[]}", "a"));
    CHECK(invalid(s, "{\"a\":[\"get\",\"get\",\"get\"]}", "a"));
    CHECK(invalid(s, "{\"a\":[\"get\",\"sing\"]}", "a[1]"));
    CHECK(invalid(s, "{\"a\":[\"get\",5]}", "a[1]"));
    pgcmk_schema_free(s);
}

static void
test_refs_and_combinators(void)
{
    struct pgcmk_schema *s = compile_text(
        "{\"$defs\":{"
        "\"P\":{\"type\":\"object\",\"discriminator\":{\"propertyName\":\"createMode\"},"
        "\"anyOf\":[{\"properties\":{\"createMode\":false}},{\"$ref\":\"#/$defs/D\"},"
        "{\"$ref\":\"#/$defs/R\"}]},"
        "\"D\":{\"required\":[\"createMode\",\"login\"],\"properties\":{\"createMode\":{\"enum\":["
        "\"Default\"]},\"login\":{\"type\":\"string\"}}},"
        "\"R\":{\"required\":[\"createMode\",\"source\"],\"properties\":{\"createMode\":{\"enum\":["
        "\"Replica\"]},\"source\":{\"type\":\"string\"}}},"
        "\"One\":{\"oneOf\":[{\"type\":\"string\"},{\"type\":\"string\",\"minLength\":3}]},"
        "\"All\":{\"allOf\":[{\"type\":\"integer\"},{\"minimum\":1}]},"
        "\"Loop\":{\"type\":\"object\",\"properties\":{\"next\":{\"$ref\":\"#/$defs/Loop\"}}}},"
        "\"type\":\"object\",\"properties\":{\"properties\":{\"$ref\":\"#/$defs/P\"}}}");
    struct pgcmk_err err;
    char deep[8192];
    size_t n = 0;

    CHECK(s != NULL);
    CHECK(valid(s, "{\"properties\":{}}"));
    CHECK(valid(s, "{\"properties\":{\"createMode\":\"Default\",\"login\":\"a\"}}"));
    CHECK(valid(s, "{\"properties\":{\"createMode\":\"replica\",\"source\":\"x\"}}"));
    /* the discriminator picks the branch, so the error names its missing member */
    CHECK(check(s, NULL, "{\"properties\":{\"createMode\":\"Replica\"}}", 0, &err) == -1);
    CHECK(strstr(err.message, "Required property 'source'") != NULL);
    CHECK_STR(err.target, "properties");
    CHECK(check(s, NULL, "{\"properties\":{\"createMode\":\"Default\",\"login\":1}}", 0, &err) ==
          -1);
    CHECK_STR(err.target, "properties.login");
    CHECK(check(s, NULL, "{\"properties\":{\"createMode\":\"Geo\"}}", 0, &err) == -1);
    CHECK_STR(err.target, "properties.createMode");
    CHECK(strstr(err.message, "Default, Replica") != NULL);
    pgcmk_schema_free(s);
    /* a catch-all branch (no enum) takes the values no branch names; named ones stay strict */
    s = compile_text("{\"type\":\"object\",\"discriminator\":{\"propertyName\":\"m\"},"
                     "\"anyOf\":[{\"required\":[\"a\"],\"properties\":{\"m\":{\"enum\":[\"A\"]}}},"
                     "{\"properties\":{\"m\":{\"type\":\"string\"}}}]}");
    CHECK(s != NULL);
    CHECK(valid(s, "{\"m\":\"Other\"}"));
    CHECK(valid(s, "{\"m\":\"A\",\"a\":1}"));
    CHECK(invalid(s, "{\"m\":\"a\"}", NULL));
    CHECK(invalid(s, "{\"m\":5}", "m"));
    pgcmk_schema_free(s);
    s = compile_text(
        "{\"$defs\":{\"One\":{\"oneOf\":[{\"type\":\"string\"},{\"type\":\"string\",\"minLength\":"
        "3}]},"
        "\"All\":{\"allOf\":[{\"type\":\"integer\"},{\"minimum\":1}]},"
        "\"Loop\":{\"type\":\"object\",\"properties\":{\"next\":{\"$ref\":\"#/$defs/Loop\"}}}}}");
    CHECK(s != NULL);
    /* oneOf: exactly one; "abcd" matches both branches */
    CHECK(check(s, "#/$defs/One", "\"ab\"", 0, &err) == 0);
    CHECK(check(s, "#/$defs/One", "\"abcd\"", 0, &err) == -1);
    CHECK(check(s, "#/$defs/One", "\"abcd\"", PGCMK_SCHEMA_F_PATCH, &err) == 0);
    CHECK(check(s, "#/$defs/One", "5", 0, &err) == -1);
    CHECK(check(s, "#/$defs/All", "1", 0, &err) == 0);
    CHECK(check(s, "#/$defs/All", "0", 0, &err) == -1);
    CHECK(check(s, "#/$defs/All", "1.5", 0, &err) == -1);
    CHECK(check(s, "#/$defs/Nope", "1", 0, &err) == -1);
    CHECK(err.code == PGCMK_E_INTERNAL);
    /* bounded recursion: a body nested deeper than the limit fails cleanly */
    for (int i = 0; i < 200; i++)
        n += (size_t)snprintf(deep + n, sizeof(deep) - n, "{\"next\":");
    n += (size_t)snprintf(deep + n, sizeof(deep) - n, "{}");
    for (int i = 0; i < 200; i++)
        n += (size_t)snprintf(deep + n, sizeof(deep) - n, "}");
    CHECK(check(s, "#/$defs/Loop", deep, 0, &err) == -1);
    CHECK(strstr(err.message, "nested too deeply") != NULL);
    pgcmk_schema_free(s);
    /* an unresolved $ref fails at load */
    CHECK(compile_text("{\"$ref\":\"#/$defs/missing\"}") == NULL);
    CHECK(compile_text("{\"$ref\":\"other.json#/x\"}") == NULL);
    CHECK(compile_text("{\"type\":\"strin\"}") == NULL);
    CHECK(compile_text("{\"anyOf\":[]}") == NULL);
    CHECK(compile_text("{\"minimum\":\"1\"}") == NULL);
}

static void
test_boolean_and_template(void)
{
    struct pgcmk_schema *s =
        compile_text("{\"type\":\"object\",\"properties\":{\"yes\":true,\"no\":false,"
                     "\"i\":{\"type\":\"integer\",\"maximum\":3},\"e\":{\"enum\":[\"a\"]},"
                     "\"o\":{\"type\":\"object\",\"required\":[\"k\"]}}}");
    struct pgcmk_err err;

    CHECK(s != NULL);
    CHECK(valid(s, "{\"yes\":[1,{}]}"));
    CHECK(invalid(s, "{\"no\":1}", "no"));
    /* template text: "[expression]" stands for any value, "[[" is a literal */
    CHECK(check(s, NULL, "{\"i\":\"[parameters('n')]\"}", PGCMK_SCHEMA_F_TEMPLATE, &err) == 0);
    CHECK(check(s, NULL, "{\"e\":\"[variables('e')]\"}", PGCMK_SCHEMA_F_TEMPLATE, &err) == 0);
    CHECK(check(s, NULL, "{\"o\":\"[json('{}')]\"}", PGCMK_SCHEMA_F_TEMPLATE, &err) == 0);
    CHECK(check(s, NULL, "{\"e\":\"[[literal]\"}", PGCMK_SCHEMA_F_TEMPLATE, &err) == -1);
    CHECK(check(s, NULL, "{\"i\":\"[parameters('n')]\"}", 0, &err) == -1);
    CHECK(check(s, NULL, "{\"i\":4}", PGCMK_SCHEMA_F_TEMPLATE, &err) == -1);
    pgcmk_schema_free(s);
}

/* The shipped schemas: they load, and real-client bodies pass. */
static void
test_registry(void)
{
    struct pgcmk_err err;
    json_t *b;
    int n;

    pgcmk_err_clear(&err);
    n = pgcmk_schema_load_dir("schemas", &err);
    if (n < 0)
        fprintf(stderr, "  schemas: %s\n", err.message);
    CHECK(n >= 8);
    CHECK(pgcmk_schema_has("Microsoft.KeyVault/vaults", "2022-07-01"));
    CHECK(pgcmk_schema_has("microsoft.keyvault/VAULTS", "2019-09-01")); /* "*" */
    CHECK(pgcmk_schema_has("Microsoft.DBforPostgreSQL/serverGroupsv2", "2022-11-08"));
    CHECK(!pgcmk_schema_has("Microsoft.DBforPostgreSQL/serverGroupsv2", "2019-01-01"));
    CHECK(!pgcmk_schema_has("Microsoft.Nope/things", "2022-07-01"));
    b = json_object();
    CHECK(pgcmk_schema_check("Microsoft.Nope/things", "1", b, 0, &err) == 0);
    json_decref(b);
    b = json_pack("{s:s, s:{s:s, s:{s:s, s:s}}}", "location", "eastus", "properties", "tenantId",
                  "72f98800-0000-4000-8000-00000000cafe", "sku", "family", "A", "name", "standard");
    CHECK(pgcmk_schema_check("Microsoft.KeyVault/vaults", "2022-07-01", b, 0, &err) == 0);
    json_object_set_new(json_object_get(b, "properties"), "softDeleteRetentionInDays",
                        json_integer(91));
    CHECK(pgcmk_schema_check("Microsoft.KeyVault/vaults", "2022-07-01", b, 0, &err) == -1);
    CHECK_STR(err.target, "properties.softDeleteRetentionInDays");
    json_decref(b);
    b = json_pack("{s:{s:s}}", "properties", "createMode", "recover");
    CHECK(pgcmk_schema_check("Microsoft.KeyVault/vaults", "2022-07-01", b, PGCMK_SCHEMA_F_PATCH,
                             &err) == 0);
    json_decref(b);
    b = json_loads("{\"location\":\"eastus\",\"properties\":{\"createMode\":\"Default\","
                   "\"administratorLogin\":\"a\"}}",
                   0, NULL);
    CHECK(pgcmk_schema_check("Microsoft.DBforPostgreSQL/servers", "2017-12-01", b, 0, &err) == -1);
    CHECK(strstr(err.message, "administratorLoginPassword") != NULL);
    json_decref(b);
    b = json_loads("{\"location\":\"eastus\",\"properties\":{\"DATAENCRYPTION\":{\"type\":"
                   "\"AzureKeyVault\"},\"createmode\":\"pointintimerestore\"}}",
                   0, NULL);
    CHECK(pgcmk_schema_check("Microsoft.DBforPostgreSQL/serverGroupsv2",
                             "2020-10-05-privatepreview", b, 0, &err) == 0);
    json_decref(b);
    pgcmk_schema_reset();
    CHECK(!pgcmk_schema_has("Microsoft.KeyVault/vaults", "2022-07-01"));
    CHECK(pgcmk_schema_load_dir("/nonexistent/schemas", &err) == -1);
}

/* --validate DIR FILE */
static int
validate_cases(const char *dir, const char *file)
{
    struct pgcmk_err err;
    json_error_t jerr;
    json_t *cases, *out = json_array(), *c;
    size_t i;
    char *text;

    pgcmk_err_clear(&err);
    if (pgcmk_schema_load_dir(dir, &err) < 0) {
        fprintf(stderr, "schemas: %s\n", err.message);
        return 2;
    }
    cases = json_load_file(file, 0, &jerr);
    if (!json_is_array(cases)) {
        fprintf(stderr, "%s: %s\n", file, jerr.text);
        return 2;
    }
    json_array_foreach(cases, i, c) {
        const char *type = json_string_value(json_object_get(c, "type"));
        const char *av = json_string_value(json_object_get(c, "apiVersion"));
        unsigned flags =
            (json_is_true(json_object_get(c, "patch")) ? PGCMK_SCHEMA_F_PATCH : 0) |
            (json_is_true(json_object_get(c, "template")) ? PGCMK_SCHEMA_F_TEMPLATE : 0);
        int covered = type && pgcmk_schema_has(type, av);
        int rc;

        pgcmk_err_clear(&err);
        rc = type ? pgcmk_schema_check(type, av, json_object_get(c, "body"), flags, &err) : -1;
        json_array_append_new(out, json_pack("{s:b, s:b, s:s, s:s, s:s}", "ok", rc == 0, "covered",
                                             covered, "code", rc ? pgcmk_err_code(err.code) : "",
                                             "target", err.target, "message", err.message));
    }
    text = json_dumps(out, JSON_COMPACT);
    puts(text);
    free(text);
    json_decref(out);
    json_decref(cases);
    pgcmk_schema_reset();
    return 0;
}

int
main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "--validate") == 0)
        return validate_cases(argv[2], argv[3]);
    test_types();
    test_required_and_additional();
    test_case_insensitive_names();
    test_enum();
    test_pattern_and_lengths();
    test_numbers_and_items();
    test_refs_and_combinators();
    test_boolean_and_template();
    test_registry();
    return t_done("test_schema");
}
