/* test_template.c - the ARM template language: JSONC and the az CLI body, expressions and every
 * built-in function, parameters, variables, user functions, copy loops, child resources,
 * dependencies and cycles, nested deployments (inner/outer), outputs, bounds, uniqueString/guid
 * against published values, and the seed 003 templates. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgcmk/core.h"
#include "pgcmk/deploy.h"
#include "pgcmk/err.h"

#include "t.h"

#define SUB        "00000000-0000-4000-8000-000000000001"
#define GUID_ABC   "a98fa280-e03f-5afa-8d8e-92d0a9c201e8" /* uuid.uuid5(ns, "a-b-c") */
#define GUID_HELLO "520f8434-fe3a-5d99-888d-450a827486a1" /* uuid.uuid5(ns, "hello") */

static const struct pgcmk_tpl_scope scope = {
    SUB, "72f98800-0000-4000-8000-00000000cafe", "rg1", "eastus", "dep1", 1700000000123LL};

static json_t *
host_ref(void *ctx, const char *id, const char *api, int full, struct pgcmk_err *err)
{
    (void)ctx;
    if (strstr(id, "missing"))
        return pgcmk_err_set(err, PGCMK_E_RESOURCE_NOT_FOUND, NULL, "no %s", id), NULL;
    if (full)
        return json_pack("{s:s, s:s, s:{s:s}, s:{s:s, s:s}}", "id", id, "apiVersion", api,
                         "identity", "principalId", "p-123", "properties", "vaultUri",
                         "https://kv1.vault.azure.net/", "state", "Ready");
    return json_pack("{s:s, s:s}", "vaultUri", "https://kv1.vault.azure.net/", "state", "Ready");
}

static json_t *
host_list(void *ctx, const char *id, const char *fn, const char *api, const json_t *body,
          struct pgcmk_err *err)
{
    (void)ctx, (void)err, (void)body;
    return json_pack("{s:s, s:s, s:s}", "fn", fn, "id", id, "api", api);
}

static const struct pgcmk_tpl_host host = {host_ref, host_list, NULL};

static char *
slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    if (fread(buf, 1, (size_t)n, f) != (size_t)n)
        n = 0;
    buf[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* Loads a template text (JSONC) with parameters text; NULL on error (err filled). */
static struct pgcmk_tpl *
load(const char *tpl, const char *params, struct pgcmk_err *err)
{
    struct pgcmk_jsonc_pos *pos = NULL;
    json_t *t = pgcmk_jsonc_parse_pos(tpl, strlen(tpl), &pos, err);
    json_t *p = params ? json_loads(params, 0, NULL) : NULL;
    struct pgcmk_tpl *out;

    if (!t)
        return NULL;
    out = pgcmk_tpl_load_pos(t, p, &scope, pos, err);
    json_decref(t);
    json_decref(p);
    pgcmk_jsonc_pos_free(pos);
    return out;
}

/* Evaluates one expression as the output "o" of a template with a few parameters/variables. */
static char *
ev(const char *expr, struct pgcmk_err *err)
{
    char *tpl = pgcmk_xasprintf(
        "{\"$schema\":\"x\",\"contentVersion\":\"1.0.0.0\","
        "\"parameters\":{\"name\":{\"type\":\"string\",\"defaultValue\":\"kv1\"},"
        "\"n\":{\"type\":\"int\",\"defaultValue\":3},"
        "\"obj\":{\"type\":\"object\",\"defaultValue\":{\"a\":{\"b\":[1,2,{\"c\":\"deep\"}]}}}},"
        "\"variables\":{\"v\":\"[concat(parameters('name'), '-v')]\",\"arr\":[1,2,3]},"
        "\"resources\":[],"
        "\"outputs\":{\"o\":{\"type\":\"object\",\"value\":{\"r\":\"%s\"}}}}",
        expr);
    struct pgcmk_tpl *t = load(tpl, NULL, err);
    json_t *o;
    char *s = NULL;

    free(tpl);
    if (!t)
        return NULL;
    o = pgcmk_tpl_outputs(t, &host, err);
    if (o)
        s = json_dumps(json_object_get(json_object_get(json_object_get(o, "o"), "value"), "r"),
                       JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(o);
    pgcmk_tpl_free(t);
    return s;
}

#define EV(expr, want)                                                                             \
    do {                                                                                           \
        struct pgcmk_err e_;                                                                       \
        char *got_ = ev(expr, &e_);                                                                \
        if (!got_)                                                                                 \
            fprintf(stderr, "  %s -> error %s\n", expr, e_.message);                               \
        CHECK_STR(got_, want);                                                                     \
        free(got_);                                                                                \
    } while (0)

#define EV_ERR(expr, needle)                                                                       \
    do {                                                                                           \
        struct pgcmk_err e_;                                                                       \
        char *got_ = ev(expr, &e_);                                                                \
        CHECK(got_ == NULL);                                                                       \
        if (!got_) {                                                                               \
            CHECK(e_.code == PGCMK_E_INVALID_TEMPLATE);                                            \
            if (!strstr(e_.message, needle))                                                       \
                fprintf(stderr, "  %s: '%s' not in '%s'\n", expr, needle, e_.message);             \
            CHECK(strstr(e_.message, needle) != NULL);                                             \
        }                                                                                          \
        free(got_);                                                                                \
    } while (0)

/* ---- uniqueString and guid --------------------------------------------------------------------
 */

static void
test_unique_string(void)
{
    /* Published input -> output pairs:
     * - "tyeth" -> zcztcwvu6iyg6: StackOverflow 43295720, computed with Microsoft's own
     *   Azure.Deployments.Expression package.
     * - "hello","world" -> a7wkljktk6wne (hash 571013382255652050):
     * JasonWhall/go-azure-uniquestring.
     * - "test", "abc", an RG id, "foo","bar","baz": uniquestring.sh self-test ("verified against
     *   Bicep uniqueString() output"). */
    static const struct {
        const char *parts[3];
        size_t n;
        const char *want;
    } cases[] = {
        {{"tyeth"}, 1, "zcztcwvu6iyg6"},
        {{"hello", "world"}, 2, "a7wkljktk6wne"},
        {{"test"}, 1, "rbgf3xv4ufgzg"},
        {{"abc"}, 1, "cgtzqvhu4i23s"},
        {{"/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/my-rg"},
         1,
         "bmg7c6xu4tw46"},
        {{"foo", "bar", "baz"}, 3, "xzi4ioaxtmth4"},
    };

    char out[14];

    for (size_t i = 0; i < PGCMK_ARRAY_LEN(cases); i++) {
        pgcmk_tpl_unique_string(cases[i].parts, cases[i].n, out);
        CHECK_STR(out, cases[i].want);
    }
    EV("[uniqueString('hello', 'world')]", "\"a7wkljktk6wne\"");
    EV("[uniqueString('tyeth')]", "\"zcztcwvu6iyg6\"");
}

static void
test_guid(void)
{
    /* guid() is uuid v5 in namespace 11fb06fb-712d-4ddd-98c7-e71bbd588830 over the arguments
     * joined with '-' (Bicep docs; the same as terraform's uuidv5(...) used to match Bicep role
     * assignment names). Expected values computed with Python's uuid.uuid5. */
    const char *p1[] = {"a", "b", "c"};
    const char *p2[] = {"a-b-c"};
    char g1[37], g2[37];

    pgcmk_tpl_guid(p1, 3, g1);
    pgcmk_tpl_guid(p2, 1, g2);
    CHECK_STR(g1, g2);
    CHECK(g1[14] == '5');
    CHECK(strchr("89ab", g1[19]) != NULL);
    CHECK_STR(g1, GUID_ABC);
    EV("[guid('a', 'b', 'c')]", "\"" GUID_ABC "\"");
    EV("[guid('hello')]", "\"" GUID_HELLO "\"");
}

/* ---- expressions and functions ----------------------------------------------------------------
 */

static void
test_expressions(void)
{
    EV("plain", "\"plain\"");
    EV("[[notexpr]", "\"[notexpr]\"");
    EV("[concat('it''s', ' ', 'x')]", "\"it's x\"");
    EV("[parameters('obj').a.b[2].c]", "\"deep\"");
    EV("[parameters('OBJ')['a']['b'][0]]", "1");
    EV("[PARAMETERS('name')]", "\"kv1\"");
    EV("[variables('v')]", "\"kv1-v\"");
    EV("[variables('arr')[1]]", "2");
    EV("[ concat( 'a' , 'b' ) ]", "\"ab\"");
    EV("[concat(variables('arr'), createArray(4))]", "[1,2,3,4]");
    EV("[concat('a', 1, true())]", "\"a1True\"");
    EV("[format('{0}-{1}', 'a', 2)]", "\"a-2\"");
    EV("[format('{0:D3}|{{x}}', 7)]", "\"007|{x}\"");
    EV("[format('{0:N0}', 1234567)]", "\"1,234,567\"");
    EV("[toLower('AbC')]", "\"abc\"");
    EV("[toUpper('AbC')]", "\"ABC\"");
    EV("[string(parameters('n'))]", "\"3\"");
    EV("[string(createObject('a', 1))]", "\"{\\\"a\\\":1}\"");
    EV("[string(true())]", "\"True\"");
    EV("[int('42')]", "42");
    EV("[bool('TRUE')]", "true");
    EV("[bool(0)]", "false");
    EV("[json('{\\\"x\\\": [1]}').x[0]]", "1");
    EV("[json('null')]", "null");
    EV("[if(equals(1, 1), 'yes', fail())]", "\"yes\""); /* lazy */
    EV("[equals(createArray(1, 'a'), createArray(1, 'a'))]", "true");
    EV("[equals('a', 'A')]", "false");
    EV("[not(false())]", "true");
    EV("[and(true(), true(), false())]", "false");
    EV("[or(false(), true())]", "true");
    EV("[empty('')]", "true");
    EV("[empty(createObject())]", "true");
    EV("[empty(createArray(1))]", "false");
    EV("[contains('abc', 'b')]", "true");
    EV("[contains(createArray('a', 'b'), 'b')]", "true");
    EV("[contains(createObject('Key', 1), 'key')]", "true");
    EV("[length('héllo')]", "5");
    EV("[length(variables('arr'))]", "3");
    EV("[length(parameters('obj'))]", "1");
    EV("[union(createObject('a', 1, 'n', createObject('x', 1)), createObject('b', 2, 'n', "
       "createObject('y', 2)))]",
       "{\"a\":1,\"n\":{\"x\":1,\"y\":2},\"b\":2}");
    EV("[union(createArray(1, 2), createArray(2, 3))]", "[1,2,3]");
    EV("[intersection(createArray(1, 2, 3), createArray(2, 3, 4))]", "[2,3]");
    EV("[createObject('k', createArray(1))]", "{\"k\":[1]}");
    EV("[split('a,b;c', createArray(',', ';'))]", "[\"a\",\"b\",\"c\"]");
    EV("[split('a--b', '-')]", "[\"a\",\"\",\"b\"]");
    EV("[replace('aXbX', 'X', 'yy')]", "\"ayybyy\"");
    EV("[substring('hello', 1, 3)]", "\"ell\"");
    EV("[substring('hello', 2)]", "\"llo\"");
    EV("[indexOf('abcABC', 'B')]", "1");
    EV("[lastIndexOf('abcABC', 'b')]", "4");
    EV("[indexOf('abc', 'z')]", "-1");
    EV("[startsWith('Microsoft.KeyVault', 'microsoft')]", "true");
    EV("[endsWith('abc', 'BC')]", "true");
    EV("[trim('  x y  ')]", "\"x y\"");
    EV("[padLeft(7, 3, '0')]", "\"007\"");
    EV("[padLeft('ab', 4)]", "\"  ab\"");
    EV("[last('abc')]", "\"c\"");
    EV("[first(variables('arr'))]", "1");
    EV("[last(variables('arr'))]", "3");
    EV("[take(variables('arr'), 2)]", "[1,2]");
    EV("[skip(variables('arr'), 2)]", "[3]");
    EV("[take('abc', 10)]", "\"abc\"");
    EV("[skip('abc', 1)]", "\"bc\"");
    EV("[range(5, 3)]", "[5,6,7]");
    EV("[min(3, 1, 2)]", "1");
    EV("[max(variables('arr'))]", "3");
    EV("[add(1, 2)]", "3");
    EV("[sub(1, 2)]", "-1");
    EV("[mul(-3, 4)]", "-12");
    EV("[div(7, 2)]", "3");
    EV("[mod(7, 2)]", "1");
    EV("[less(1, 2)]", "true");
    EV("[greaterOrEquals('b', 'a')]", "true");
    EV("[coalesce(null(), null(), 'x')]", "\"x\"");
    EV("[base64('hi there')]", "\"aGkgdGhlcmU=\"");
    EV("[base64ToString('aGkgdGhlcmU=')]", "\"hi there\"");
    EV("[base64ToJson(base64('{\\\"a\\\":1}')).a]", "1");
    EV("[uriComponent('a b/c')]", "\"a%20b%2Fc\"");
    EV("[uriComponentToString('a%20b%2Fc')]", "\"a b/c\"");
    EV("[uri('https://x.example/a/b', 'c')]", "\"https://x.example/a/c\"");
    EV("[uri('https://x.example/a/b', '/d')]", "\"https://x.example/d\"");
    EV("[dataUri('hello')]", "\"data:text/plain;charset=utf8;base64,aGVsbG8=\"");
    EV("[dataUriToString('data:text/plain;charset=utf8;base64,aGVsbG8=')]", "\"hello\"");
    EV("[items(createObject('b', 2, 'a', 1))[0].key]", "\"a\"");
    EV("[resourceId('Microsoft.KeyVault/vaults', 'kv1')]",
       "\"/subscriptions/" SUB "/resourceGroups/rg1/providers/Microsoft.KeyVault/vaults/kv1\"");
    EV("[resourceId('Microsoft.KeyVault/vaults/', 'kv1')]",
       "\"/subscriptions/" SUB "/resourceGroups/rg1/providers/Microsoft.KeyVault/vaults/kv1\"");
    EV("[resourceId('other', 'Microsoft.KeyVault/vaults/keys', 'kv1', 'k1')]",
       "\"/subscriptions/" SUB
       "/resourceGroups/other/providers/Microsoft.KeyVault/vaults/kv1/keys/k1\"");
    EV("[resourceId('s2', 'rg2', 'Microsoft.KeyVault/vaults', 'kv1')]",
       "\"/subscriptions/s2/resourceGroups/rg2/providers/Microsoft.KeyVault/vaults/kv1\"");
    /* a resource group's id has no /providers/ part (it is what PUT and dependsOn need) */
    EV("[subscriptionResourceId('Microsoft.Resources/resourceGroups', 'rgx')]",
       "\"/subscriptions/" SUB "/resourceGroups/rgx\"");
    EV("[tenantResourceId('Microsoft.Management/managementGroups', 'mg')]",
       "\"/providers/Microsoft.Management/managementGroups/mg\"");
    EV("[extensionResourceId('/subscriptions/s/resourceGroups/r', 'Microsoft.Authorization/locks', "
       "'l')]",
       "\"/subscriptions/s/resourceGroups/r/providers/Microsoft.Authorization/locks/l\"");
    EV("[resourceGroup().name]", "\"rg1\"");
    EV("[resourceGroup().location]", "\"eastus\"");
    EV("[resourceGroup().properties.provisioningState]", "\"Succeeded\"");
    EV("[resourceGroup().id]", "\"/subscriptions/" SUB "/resourceGroups/rg1\"");
    EV("[subscription().subscriptionId]", "\"" SUB "\"");
    EV("[subscription().tenantId]", "\"72f98800-0000-4000-8000-00000000cafe\"");
    EV("[subscription().id]", "\"/subscriptions/" SUB "\"");
    EV("[deployment().name]", "\"dep1\"");
    EV("[reference('/subscriptions/s/resourceGroups/r/providers/Microsoft.KeyVault/vaults/kv9', "
       "'2019-09-01').vaultUri]",
       "\"https://kv1.vault.azure.net/\"");
    EV("[reference('/subscriptions/s/resourceGroups/r/providers/Microsoft.KeyVault/vaults/kv9', "
       "'2019-09-01', 'Full').identity.principalId]",
       "\"p-123\"");
    EV("[listKeys('/subscriptions/s/x', '2020-01-01').fn]", "\"listKeys\"");
    EV("[listSecrets('/subscriptions/s/x', '2020-01-01').api]", "\"2020-01-01\"");

    /* errors */
    EV_ERR("[foo()]", "'foo' is not valid");
    EV("[concat('a')", "\"[concat('a')\""); /* no closing ']': a literal */
    EV_ERR("[concat('a']", "Expression '[concat('a']'");
    EV_ERR("[concat(,)]", "not valid");
    EV_ERR("[substring('abc')]", "expects 2 to 3 argument(s), 1 given");
    EV_ERR("[toLower(1)]", "type 'String'");
    EV_ERR("[parameters('nope')]", "parameter 'nope' is not found");
    EV_ERR("[variables('nope')]", "variable 'nope' is not found");
    EV_ERR("[parameters('obj').zzz]", "property 'zzz' doesn't exist");
    EV_ERR("[variables('arr')[9]]", "out of bounds");
    EV_ERR("[div(1, 0)]", "divide by zero");
    EV_ERR("[substring('abc', 2, 5)]", "within the string");
    EV_ERR("[utcNow()]", "only valid in a parameter");
    EV_ERR("[copyIndex()]", "copyIndex");
    EV_ERR("[reference('missing-in-template')]", "not defined in the template");
    EV_ERR("[range(0, 100000)]", "range()");
    EV_ERR("[bareword]", "not a function call");
    EV_ERR("[add(9223372036854775807, 1)]", "overflows");
}

/* ---- JSONC and the az CLI body ----------------------------------------------------------------
 */

static void
test_jsonc(void)
{
    struct pgcmk_err err;
    const char *txt = "// lead\n{ /* block\n */ \"a\": [1, 2.5, \"x\\u00e9\"], // tail\n"
                      "\"b\": {\"c\": null, \"d\": true}}\n";
    json_t *v = pgcmk_jsonc_parse(txt, strlen(txt), &err), *body;
    const char *cli;

    CHECK(v && json_array_size(json_object_get(v, "a")) == 3);
    CHECK(json_is_real(json_array_get(json_object_get(v, "a"), 1)));
    CHECK_STR(json_string_value(json_array_get(json_object_get(v, "a"), 2)), "x\xc3\xa9");
    json_decref(v);

    v = pgcmk_jsonc_parse("{\"a\": 1,\n  }", 12, &err);
    CHECK(!v && err.code == PGCMK_E_INVALID_CONTENT && strstr(err.message, "line 2, column 3"));
    v = pgcmk_jsonc_parse("{\"a\": 1 /* open", 15, &err);
    CHECK(!v && strstr(err.message, "Unterminated comment"));
    v = pgcmk_jsonc_parse("{\"a\": 1, \"a\": 2}", 16, &err);
    CHECK(!v && strstr(err.message, "Duplicate"));
    v = pgcmk_jsonc_parse("[1] x", 5, &err);
    CHECK(!v);
    v = pgcmk_jsonc_parse("{template: 1}", 13, &err);
    CHECK(!v); /* unquoted keys only in the deployment body */

    /* the az CLI body: json.dumps(data)[:-2] + ", template:" + raw file + "}}" */
    cli = "{\"properties\": {\"parameters\": {\"idName\": {\"value\": \"id3\"}}, \"mode\": "
          "\"Incremental\", template:{\n  // comment\n  \"$schema\": \"s\", /* c */\n"
          "  \"contentVersion\": \"1.0.0.0\", \"resources\": []\n}\n}}";
    body = pgcmk_deploy_parse_body(cli, strlen(cli), &err);
    CHECK(body != NULL);
    CHECK_STR(json_string_value(json_object_get(
                  json_object_get(json_object_get(body, "properties"), "template"), "$schema")),
              "s");
    json_decref(body);

    /* an error inside the raw template: line/column relative to the template file */
    cli = "{\"properties\": {\"mode\": \"Incremental\", template:{\n  \"a\": 1,\n  \"b\" 2\n}\n}}";
    body = pgcmk_deploy_parse_body(cli, strlen(cli), &err);
    CHECK(!body && err.code == PGCMK_E_INVALID_TEMPLATE);
    CHECK(strstr(err.message, "line 3, column 7") != NULL);

    /* template as a JSON string */
    cli =
        "{\"properties\": {\"mode\": \"Incremental\", \"template\": \"{\\\"resources\\\": []}\"}}";
    body = pgcmk_deploy_parse_body(cli, strlen(cli), &err);
    CHECK(body && json_is_object(json_object_get(json_object_get(body, "properties"), "template")));
    json_decref(body);
    cli = "{\"properties\": {\"template\": \"{\\\"resources\\\": [}\"}}";
    body = pgcmk_deploy_parse_body(cli, strlen(cli), &err);
    CHECK(!body && err.code == PGCMK_E_INVALID_TEMPLATE && strstr(err.message, "line 1"));
    body = pgcmk_deploy_parse_body("{\"properties\": ", 15, &err);
    CHECK(!body && err.code == PGCMK_E_INVALID_CONTENT);

    /* deep nesting is refused, not a stack overflow */
    {
        char *deep = malloc(20001);

        memset(deep, '[', 20000);
        deep[20000] = '\0';
        v = pgcmk_jsonc_parse(deep, 20000, &err);
        CHECK(!v && strstr(err.message, "nested too deeply"));
        free(deep);
    }
}

/* ---- parameters -------------------------------------------------------------------------------
 */

static const char *param_tpl =
    "{\"$schema\":\"s\",\"contentVersion\":\"1.0.0.0\",\"parameters\":{"
    "\"s\":{\"type\":\"String\",\"allowedValues\":[\"a\",\"b\"]},"
    "\"pw\":{\"type\":\"secureString\",\"minLength\":3},"
    "\"i\":{\"type\":\"INT\",\"minValue\":1,\"maxValue\":5,\"defaultValue\":2},"
    "\"b\":{\"type\":\"bool\",\"defaultValue\":true},"
    "\"o\":{\"type\":\"object\",\"defaultValue\":{\"k\":\"[parameters('s')]\"}},"
    "\"so\":{\"type\":\"secureObject\",\"defaultValue\":{}},"
    "\"arr\":{\"type\":\"array\",\"defaultValue\":[\"a\"],\"allowedValues\":[\"a\",\"b\",\"c\"]},"
    "\"t\":{\"type\":\"string\",\"defaultValue\":\"[utcNow('yyyy-MM-dd')]\"},"
    "\"d\":{\"type\":\"string\",\"defaultValue\":\"[concat(parameters('s'), '-', "
    "string(parameters('i')))]\"}},"
    "\"resources\":[]}";

static void
test_parameters(void)
{
    struct pgcmk_err err;
    struct pgcmk_tpl *t;
    json_t *p;

    t = load(param_tpl, "{\"s\":{\"value\":\"a\"},\"pw\":{\"value\":\"secret\"}}", &err);
    if (!t)
        fprintf(stderr, "  %s\n", err.message);
    CHECK(t != NULL);
    p = pgcmk_tpl_parameters(t);
    CHECK_STR(json_string_value(json_object_get(json_object_get(p, "s"), "type")), "String");
    CHECK(json_object_get(json_object_get(p, "pw"), "value") == NULL); /* never echoed */
    CHECK_STR(json_string_value(json_object_get(json_object_get(p, "pw"), "type")), "SecureString");
    CHECK(json_object_get(json_object_get(p, "so"), "value") == NULL);
    CHECK(json_integer_value(json_object_get(json_object_get(p, "i"), "value")) == 2);
    CHECK_STR(
        json_string_value(json_object_get(json_object_get(json_object_get(p, "o"), "value"), "k")),
        "a");
    CHECK_STR(json_string_value(json_object_get(json_object_get(p, "t"), "value")), "2023-11-14");
    CHECK_STR(json_string_value(json_object_get(json_object_get(p, "d"), "value")), "a-2");
    json_decref(p);
    pgcmk_tpl_free(t);

    /* plain {"name": value} form, int given as a string */
    t = load(param_tpl, "{\"s\":\"b\",\"pw\":\"xyz\",\"i\":\"5\"}", &err);
    CHECK(t != NULL);
    pgcmk_tpl_free(t);

    t = load(param_tpl, "{\"pw\":{\"value\":\"secret\"}}", &err);
    CHECK(!t && strstr(err.message, "The value for the template parameter 's'") &&
          strstr(err.message, "line '1'"));
    t = load(param_tpl, "{\"s\":{\"value\":\"zz\"},\"pw\":{\"value\":\"secret\"}}", &err);
    CHECK(!t && strstr(err.message, "not part of the allowed value(s)"));
    t = load(param_tpl, "{\"s\":\"a\",\"pw\":\"secret\",\"i\":9}", &err);
    CHECK(!t && strstr(err.message, "less than or equal to 5"));
    t = load(param_tpl, "{\"s\":\"a\",\"pw\":\"secret\",\"i\":0}", &err);
    CHECK(!t && strstr(err.message, "greater than or equal to 1"));
    t = load(param_tpl, "{\"s\":\"a\",\"pw\":\"no\"}", &err);
    CHECK(!t && strstr(err.message, "greater than or equal to '3'") && !strstr(err.message, "no'"));
    t = load(param_tpl, "{\"s\":\"a\",\"pw\":\"secret\",\"arr\":[\"a\",\"z\"]}", &err);
    CHECK(!t && strstr(err.message, "allowed value"));
    t = load(param_tpl, "{\"s\":\"a\",\"pw\":\"secret\",\"b\":\"maybe\"}", &err);
    CHECK(!t && strstr(err.message, "Expected a value of type 'Bool'"));
    t = load(param_tpl, "{\"s\":\"a\",\"pw\":\"secret\",\"extra\":1}", &err);
    CHECK(!t && strstr(err.message, "'extra'") && strstr(err.message, "not present"));
    t = load("{\"parameters\":{\"x\":{\"type\":\"float\"}}}", NULL, &err);
    CHECK(!t && strstr(err.message, "type must be one of"));
    t = load("{\"parameters\":{\"x\":{\"type\":\"string\",\"defaultValue\":\"[parameters('y')]\"},"
             "\"y\":{\"type\":\"string\",\"defaultValue\":\"\"}}}",
             NULL, &err);
    if (t || !strstr(err.message, "before its value is known"))
        fprintf(stderr, "  %s\n", t ? "loaded" : err.message);
    CHECK(!t && strstr(err.message, "before its value is known"));
    t = load("{\"parameters\":{\"x\":{\"type\":\"string\",\"defaultValue\":\"[variables('v')]\"}},"
             "\"variables\":{\"v\":\"1\"}}",
             NULL, &err);
    CHECK(!t);
    t = load("{\"bogus\":1}", NULL, &err);
    CHECK(!t && strstr(err.message, "Could not find member 'bogus'"));
    t = load("{\"contentVersion\":\"one\"}", NULL, &err);
    CHECK(!t && strstr(err.message, "content version"));
}

/* ---- variables and user functions -------------------------------------------------------------
 */

static void
test_variables_functions(void)
{
    struct pgcmk_err err;
    struct pgcmk_tpl *t;
    json_t *o;
    const char *tpl =
        "{\"parameters\":{\"p\":{\"type\":\"string\",\"defaultValue\":\"x\"}},"
        "\"functions\":[{\"namespace\":\"my\",\"members\":{\"name\":{\"parameters\":[{\"name\":"
        "\"base\",\"type\":\"string\"}],\"output\":{\"type\":\"string\",\"value\":\"[concat("
        "parameters('base'), '-', uniqueString(parameters('base')))]\"}}}}],"
        "\"variables\":{\"b\":\"[variables('a')]\",\"a\":\"[my.name(parameters('p'))]\","
        "\"copy\":[{\"name\":\"disks\",\"count\":3,\"input\":{\"lun\":\"[copyIndex('disks')]\"}}],"
        "\"nested\":{\"copy\":[{\"name\":\"items\",\"count\":2,\"input\":\"[concat('i', "
        "string(copyIndex('items', 1)))]\"}]}},"
        "\"outputs\":{\"a\":{\"type\":\"string\",\"value\":\"[variables('b')]\"},"
        "\"d\":{\"type\":\"array\",\"value\":\"[variables('disks')]\"},"
        "\"n\":{\"type\":\"object\",\"value\":\"[variables('nested')]\"},"
        "\"skip\":{\"condition\":false,\"type\":\"string\",\"value\":\"x\"},"
        "\"c\":{\"type\":\"array\",\"copy\":{\"count\":2,\"input\":\"[copyIndex()]\"}},"
        "\"sec\":{\"type\":\"securestring\",\"value\":\"s3cret\"}}}";
    char want[64];
    const char *part = "x";

    t = load(tpl, NULL, &err);
    if (!t)
        fprintf(stderr, "  %s\n", err.message);
    CHECK(t != NULL);
    o = t ? pgcmk_tpl_outputs(t, &host, &err) : NULL;
    CHECK(o != NULL);
    pgcmk_tpl_unique_string(&part, 1, want + 2);
    want[0] = 'x', want[1] = '-';
    CHECK_STR(json_string_value(json_object_get(json_object_get(o, "a"), "value")), want);
    CHECK(json_array_size(json_object_get(json_object_get(o, "d"), "value")) == 3);
    CHECK(json_integer_value(json_object_get(
              json_array_get(json_object_get(json_object_get(o, "d"), "value"), 2), "lun")) == 2);
    CHECK_STR(json_string_value(json_array_get(
                  json_object_get(json_object_get(json_object_get(o, "n"), "value"), "items"), 1)),
              "i2");
    CHECK(json_object_get(o, "skip") == NULL);
    CHECK(json_array_size(json_object_get(json_object_get(o, "c"), "value")) == 2);
    CHECK(json_object_get(json_object_get(o, "sec"), "value") == NULL);
    CHECK_STR(json_string_value(json_object_get(json_object_get(o, "a"), "type")), "String");
    json_decref(o);
    pgcmk_tpl_free(t);

    t = load("{\"variables\":{\"a\":\"[variables('b')]\",\"b\":\"[variables('a')]\"}}", NULL, &err);
    CHECK(!t && strstr(err.message, "circular"));
    t = load("{\"variables\":{\"a\":\"[reference('x')]\"}}", NULL, &err);
    CHECK(!t && strstr(err.message, "not expected at this location"));
    t = load("{\"outputs\":{\"o\":{\"type\":\"int\",\"value\":\"x\"}}}", NULL, &err);
    CHECK(t != NULL);
    o = t ? pgcmk_tpl_outputs(t, &host, &err) : NULL;
    CHECK(!o && strstr(err.message, "does not match"));
    pgcmk_tpl_free(t);
}

/* ---- resources: names, ids, children, copy, dependencies --------------------------------------
 */

static const struct pgcmk_tpl_resource *
find(struct pgcmk_tpl *t, const char *name)
{
    for (size_t i = 0; i < pgcmk_tpl_count(t); i++)
        if (strcmp(pgcmk_tpl_resource(t, i)->name, name) == 0)
            return pgcmk_tpl_resource(t, i);
    return NULL;
}

static int
depends(struct pgcmk_tpl *t, const char *a, const char *b)
{
    const struct pgcmk_tpl_resource *ra = find(t, a), *rb = find(t, b);

    for (size_t i = 0; ra && rb && i < ra->n_deps; i++)
        if (pgcmk_tpl_resource(t, ra->deps[i]) == rb)
            return 1;
    return 0;
}

static void
test_resources(void)
{
    struct pgcmk_err err;
    struct pgcmk_tpl *t;
    json_t *b;
    const char *tpl =
        "{\"parameters\":{\"kv\":{\"type\":\"string\",\"defaultValue\":\"kv1\"},\"n\":{\"type\":"
        "\"int\",\"defaultValue\":3}},\"resources\":["
        "{\"type\":\"Microsoft.KeyVault/"
        "vaults\",\"apiVersion\":\"2022-07-01\",\"name\":\"[parameters("
        "'kv')]\",\"location\":\"[resourceGroup().location]\",\"properties\":{\"tenantId\":\"["
        "subscription().tenantId]\",\"copy\":[{\"name\":\"accessPolicies\",\"count\":2,\"input\":{"
        "\"objectId\":\"[concat('o', copyIndex('accessPolicies'))]\"}}]},"
        "\"resources\":[{\"type\":\"keys\",\"apiVersion\":\"2022-07-01\",\"name\":\"k1\","
        "\"properties\":{\"kty\":\"RSA\"}}]},"
        "{\"type\":\"Microsoft.KeyVault/vaults/"
        "accessPolicies\",\"apiVersion\":\"2022-07-01\",\"name\":"
        "\"[concat(parameters('kv'), '/add')]\",\"dependsOn\":[\"[resourceId('Microsoft.KeyVault/"
        "vaults', parameters('kv'))]\"],\"properties\":{}},"
        "{\"type\":\"Microsoft.ManagedIdentity/"
        "userAssignedIdentities\",\"apiVersion\":\"2023-01-31\","
        "\"name\":\"[concat('id', copyIndex(1))]\",\"copy\":{\"name\":\"ids\",\"count\":\"["
        "parameters('n')]\",\"mode\":\"serial\",\"batchSize\":2},\"location\":\"eastus\"},"
        "{\"type\":\"Microsoft.DBforPostgreSQL/"
        "serverGroupsv2\",\"apiVersion\":\"2023-03-02-preview\","
        "\"name\":\"pg1\",\"dependsOn\":[\"ids\",\"add\"],\"properties\":{\"uri\":\"[reference("
        "parameters('kv')).vaultUri]\",\"k\":\"[reference(resourceId('Microsoft.KeyVault/vaults/"
        "keys', 'kv1', 'k1'), '2022-07-01', 'Full').properties.vaultUri]\"}},"
        "{\"condition\":\"[equals(parameters('n'), 0)]\",\"type\":\"Microsoft.KeyVault/vaults\","
        "\"apiVersion\":\"2022-07-01\",\"name\":\"off\"}]}";

    t = load(tpl, NULL, &err);
    if (!t)
        fprintf(stderr, "  %s\n", err.message);
    CHECK(t != NULL);
    if (!t)
        return;
    CHECK(pgcmk_tpl_count(t) == 8);
    CHECK(find(t, "kv1/k1") != NULL);
    CHECK_STR(find(t, "kv1/k1")->type, "Microsoft.KeyVault/vaults/keys");
    CHECK_STR(find(t, "kv1/k1")->id,
              "/subscriptions/" SUB "/resourceGroups/rg1/providers/Microsoft.KeyVault/vaults/kv1/"
              "keys/k1");
    CHECK(depends(t, "kv1/k1", "kv1"));  /* child waits for its parent */
    CHECK(depends(t, "kv1/add", "kv1")); /* dependsOn by resourceId() */
    CHECK(find(t, "id1") && find(t, "id3") && !find(t, "id0"));
    CHECK(depends(t, "id3", "id1") && depends(t, "id3", "id2") && !depends(t, "id2", "id1"));
    CHECK(depends(t, "pg1", "id1") && depends(t, "pg1", "id3")); /* by copy loop name */
    CHECK(depends(t, "pg1", "kv1/add"));                         /* by short child name */
    CHECK(depends(t, "pg1", "kv1"));                             /* implicit: reference(name) */
    CHECK(depends(t, "pg1", "kv1/k1")); /* implicit: reference(resourceId()) */
    CHECK(find(t, "off") && find(t, "off")->condition == 0);
    CHECK(find(t, "kv1")->condition == 1);
    CHECK_STR(find(t, "id2")->symbol, "resources[2][copyIndex 1]");

    b = pgcmk_tpl_render(t, 0, &host, &err);
    CHECK(b != NULL);
    CHECK_STR(json_string_value(json_object_get(b, "location")), "eastus");
    CHECK(json_object_get(b, "type") == NULL && json_object_get(b, "resources") == NULL);
    CHECK(json_array_size(json_object_get(json_object_get(b, "properties"), "accessPolicies")) ==
          2);
    json_decref(b);
    for (size_t i = 0; i < pgcmk_tpl_count(t); i++)
        if (strcmp(pgcmk_tpl_resource(t, i)->name, "pg1") == 0) {
            b = pgcmk_tpl_render(t, i, &host, &err);
            CHECK(b && strcmp(json_string_value(
                                  json_object_get(json_object_get(b, "properties"), "uri")),
                              "https://kv1.vault.azure.net/") == 0);
            json_decref(b);
        }
    pgcmk_tpl_free(t);

    /* errors */
    t = load("{\"resources\":[{\"type\":\"A.B/c\",\"apiVersion\":\"1\",\"name\":\"x\","
             "\"dependsOn\":[\"y\"]},{\"type\":\"A.B/c\",\"apiVersion\":\"1\",\"name\":\"y\","
             "\"dependsOn\":[\"x\"]}]}",
             NULL, &err);
    CHECK(!t && strstr(err.message, "Circular dependency"));
    t = load("{\"resources\":[{\"type\":\"A.B/c\",\"apiVersion\":\"1\",\"name\":\"x\","
             "\"dependsOn\":[\"ghost\"]}]}",
             NULL, &err);
    CHECK(!t && strstr(err.message, "'ghost' is not defined"));
    t = load("{\"resources\":[{\"type\":\"A.B/c/d\",\"apiVersion\":\"1\",\"name\":\"x\"}]}", NULL,
             &err);
    CHECK(!t && strstr(err.message, "segment"));
    t = load("{\"resources\":[\n  {\"type\":\"A.B/c\",\"apiVersion\":\"1\",\n   "
             "\"name\":\"[nope()]\"}]}",
             NULL, &err);
    CHECK(!t && strstr(err.message, "line '2' and column '3'") &&
          strstr(err.message, "'[nope()]'"));
    t = load("{\"resources\":[{\"type\":\"A.B/c\",\"apiVersion\":\"1\",\"name\":\"x\",\"copy\":{"
             "\"name\":\"l\",\"count\":801}}]}",
             NULL, &err);
    CHECK(!t && strstr(err.message, "0 to 800"));
    t = load("{\"resources\":[{\"type\":\"A.B/c\",\"apiVersion\":\"1\",\"name\":\"[concat('x', "
             "copyIndex())]\",\"copy\":{\"name\":\"l\",\"count\":800}},{\"type\":\"A.B/c\","
             "\"apiVersion\":\"1\",\"name\":\"y\"}]}",
             NULL, &err);
    CHECK(!t && strstr(err.message, "more than 800 resources"));
    t = load("{\"resources\":[{\"type\":\"A.B/c\",\"apiVersion\":\"1\",\"name\":\"x\","
             "\"properties\":{\"a\":\"[reference('x').b]\"}}]}",
             NULL, &err);
    CHECK(t != NULL); /* self-reference is no dependency */
    pgcmk_tpl_free(t);
}

/* ---- nested deployments -----------------------------------------------------------------------
 */

static void
test_nested(void)
{
    struct pgcmk_err err;
    struct pgcmk_tpl *t;
    json_t *b, *inner, *p;
    const char *tpl =
        "{\"parameters\":{\"kv\":{\"type\":\"string\",\"defaultValue\":\"kv1\"}},"
        "\"variables\":{\"pol\":\"add\"},\"resources\":["
        "{\"type\":\"Microsoft.Resources/deployments\",\"apiVersion\":\"2021-04-01\",\"name\":"
        "\"outerDep\",\"resourceGroup\":\"kvrg\",\"properties\":{\"mode\":\"Incremental\","
        "\"template\":{\"$schema\":\"s\",\"contentVersion\":\"1.0.0.0\",\"resources\":[{\"type\":"
        "\"Microsoft.KeyVault/vaults/accessPolicies\",\"apiVersion\":\"2018-02-14\",\"name\":\"["
        "concat(parameters('kv'), '/', variables('pol'))]\",\"properties\":{\"rg\":\"["
        "resourceGroup().name]\",\"lit\":\"[[x]\"}},{\"type\":\"A.B/"
        "c\",\"apiVersion\":\"1\",\"name\":"
        "\"[concat('c', copyIndex())]\",\"copy\":{\"name\":\"l\",\"count\":2}}]}}},"
        "{\"type\":\"Microsoft.Resources/deployments\",\"apiVersion\":\"2021-04-01\",\"name\":"
        "\"innerDep\",\"dependsOn\":[\"outerDep\"],\"properties\":{\"mode\":\"Incremental\","
        "\"expressionEvaluationOptions\":{\"scope\":\"inner\"},\"parameters\":{\"kvName\":{"
        "\"value\":\"[parameters('kv')]\"}},\"template\":{\"parameters\":{\"kvName\":{\"type\":"
        "\"string\"}},\"resources\":[{\"type\":\"A.B/c\",\"apiVersion\":\"1\",\"name\":\"["
        "parameters('kvName')]\"}]}}}]}";

    t = load(tpl, NULL, &err);
    if (!t)
        fprintf(stderr, "  %s\n", err.message);
    CHECK(t != NULL);
    if (!t)
        return;
    CHECK(find(t, "outerDep")->nested_deployment);
    CHECK_STR(find(t, "outerDep")->resource_group, "kvrg");
    CHECK_STR(find(t, "outerDep")->id,
              "/subscriptions/" SUB "/resourceGroups/kvrg/providers/Microsoft.Resources/"
              "deployments/outerDep");
    CHECK(depends(t, "innerDep", "outerDep"));

    /* outer: the inner template evaluated with the outer parameters/variables and scope */
    b = pgcmk_tpl_render(t, 0, &host, &err);
    CHECK(b != NULL);
    CHECK_STR(json_string_value(json_object_get(b, "resourceGroup")), "kvrg");
    inner = json_object_get(json_object_get(b, "properties"), "template");
    CHECK_STR(json_string_value(
                  json_object_get(json_array_get(json_object_get(inner, "resources"), 0), "name")),
              "kv1/add");
    CHECK_STR(
        json_string_value(json_object_get(
            json_object_get(json_array_get(json_object_get(inner, "resources"), 0), "properties"),
            "rg")),
        "rg1");
    CHECK_STR(
        json_string_value(json_object_get(
            json_object_get(json_array_get(json_object_get(inner, "resources"), 0), "properties"),
            "lit")),
        "[[x]"); /* still escaped for the inner run */
    CHECK_STR(json_string_value(
                  json_object_get(json_array_get(json_object_get(inner, "resources"), 1), "name")),
              "[concat('c', copyIndex())]");
    /* and the rendered inner template loads on its own */
    {
        struct pgcmk_tpl *t2 = pgcmk_tpl_load(inner, NULL, &scope, &err);

        CHECK(t2 && pgcmk_tpl_count(t2) == 3 && find(t2, "c1") && find(t2, "kv1/add"));
        pgcmk_tpl_free(t2);
    }
    json_decref(b);

    /* inner: the template verbatim, its parameter values evaluated outside */
    b = pgcmk_tpl_render(t, 1, &host, &err);
    CHECK(b != NULL);
    p = json_object_get(json_object_get(b, "properties"), "parameters");
    CHECK_STR(json_string_value(json_object_get(json_object_get(p, "kvName"), "value")), "kv1");
    inner = json_object_get(json_object_get(b, "properties"), "template");
    CHECK_STR(json_string_value(
                  json_object_get(json_array_get(json_object_get(inner, "resources"), 0), "name")),
              "[parameters('kvName')]");
    {
        struct pgcmk_tpl *t2 = pgcmk_tpl_load(inner, p, &scope, &err);

        CHECK(t2 && find(t2, "kv1"));
        pgcmk_tpl_free(t2);
    }
    json_decref(b);
    pgcmk_tpl_free(t);
}

/* ---- bounds -----------------------------------------------------------------------------------
 */

static void
test_bounds(void)
{
    struct pgcmk_err err;
    struct pgcmk_tpl *t;
    char *tpl, *deep;
    size_t n = 0;

    /* exponential growth through variables is stopped by the size cap */
    tpl = pgcmk_xstrdup("{\"variables\":{\"v0\":\"[createArray(1,2,3,4)]\"");
    for (int i = 1; i < 40; i++) {
        char *nt = pgcmk_xasprintf("%s,\"v%d\":\"[concat(variables('v%d'), variables('v%d'))]\"",
                                   tpl, i, i - 1, i - 1);

        free(tpl);
        tpl = nt;
    }
    {
        char *nt = pgcmk_xasprintf("%s}}", tpl);

        free(tpl);
        tpl = nt;
    }
    t = load(tpl, NULL, &err);
    CHECK(!t && (strstr(err.message, "larger than") || strstr(err.message, "steps")));
    free(tpl);

    /* string growth */
    tpl = pgcmk_xstrdup("{\"variables\":{\"v0\":\"[padLeft('x', 16000)]\"");
    for (int i = 1; i < 30; i++) {
        char *nt = pgcmk_xasprintf("%s,\"v%d\":\"[concat(variables('v%d'), variables('v%d'))]\"",
                                   tpl, i, i - 1, i - 1);

        free(tpl);
        tpl = nt;
    }
    {
        char *nt = pgcmk_xasprintf("%s}}", tpl);

        free(tpl);
        tpl = nt;
    }
    t = load(tpl, NULL, &err);
    CHECK(!t && strstr(err.message, "longer than"));
    free(tpl);

    /* expression nesting */
    deep = pgcmk_xmalloc(4000);
    n = (size_t)snprintf(deep, 4000, "{\"variables\":{\"v\":\"[");
    for (int i = 0; i < 200; i++)
        n += (size_t)snprintf(deep + n, 4000 - n, "not(");
    n += (size_t)snprintf(deep + n, 4000 - n, "true()");
    for (int i = 0; i < 200; i++)
        n += (size_t)snprintf(deep + n, 4000 - n, ")");
    snprintf(deep + n, 4000 - n, "]\"}}");
    t = load(deep, NULL, &err);
    CHECK(!t && strstr(err.message, "nested"));
    free(deep);
}

/* ---- the seed 003 templates -------------------------------------------------------------------
 */

static void
test_seeds(void)
{
    struct pgcmk_err err;
    size_t len;
    char *txt = slurp("tests/data/templates/seed003-cluster-cmk.json", &len);
    struct pgcmk_tpl *t;
    json_t *b, *params;

    CHECK(txt != NULL);
    if (txt) {
        params = json_pack(
            "{s:{s:s}, s:{s:s}, s:{s:s}, s:{s:b}, s:{s:s}, s:{s:i}, s:{s:i}, s:{s:i}, s:{s:i}, "
            "s:{s:i}, s:{s:b}, s:{s:b}, s:{s:{s:s}}, s:{s:s}, s:{s:s}}",
            "serverGroupName", "value", "cmk1", "location", "value", "eastus",
            "administratorLoginPassword", "value", "P4ss!word", "previewFeatures", "value", 1,
            "postgresqlVersion", "value", "15", "coordinatorVcores", "value", 4,
            "coordinatorStorageSizeMB", "value", 131072, "numWorkers", "value", 2, "workerVcores",
            "value", 4, "workerStorageSizeMB", "value", 131072, "enableHa", "value", 0,
            "enablePublicIpAccess", "value", 1, "serverGroupTags", "value", "env", "test",
            "userAssignedIdentityUrl", "value", "/subscriptions/" SUB "/x", "encryptionKeyUrl",
            "value", "https://kv1.vault.azure.net/keys/k/0123");
        {
            json_t *tj = pgcmk_jsonc_parse(txt, len, &err);

            t = tj ? pgcmk_tpl_load(tj, params, &scope, &err) : NULL;
            json_decref(tj);
        }
        if (!t)
            fprintf(stderr, "  %s\n", err.message);
        CHECK(t && pgcmk_tpl_count(t) == 1);
        b = t ? pgcmk_tpl_render(t, 0, &host, &err) : NULL;
        CHECK(b != NULL);
        CHECK_STR(json_string_value(json_object_get(b, "kind")), "CosmosDBForPostgreSQL");
        CHECK_STR(json_string_value(json_object_get(
                      json_object_get(json_object_get(b, "properties"), "dataencryption"),
                      "primaryKeyUri")),
                  "https://kv1.vault.azure.net/keys/k/0123");
        CHECK(json_integer_value(json_object_get(
                  json_array_get(
                      json_object_get(json_object_get(b, "properties"), "serverRoleGroups"), 1),
                  "serverCount")) == 2);
        CHECK_STR(json_string_value(json_object_get(json_object_get(b, "tags"), "env")), "test");
        CHECK_STR(pgcmk_tpl_resource(t, 0)->id,
                  "/subscriptions/" SUB "/resourceGroups/rg1/providers/Microsoft.DBforPostgreSQL/"
                  "serverGroupsv2/cmk1");
        {
            json_t *ep = pgcmk_tpl_parameters(t);

            CHECK(json_object_get(json_object_get(ep, "administratorLoginPassword"), "value") ==
                  NULL);
            json_decref(ep);
        }
        json_decref(b);
        json_decref(params);
        pgcmk_tpl_free(t);
        free(txt);
    }

    /* published PITR template: a trailing comma after dataencryption{} and no comma before
     * "type": the parse fails with the line and column of the first problem */
    txt = slurp("tests/data/templates/seed003-pitr-published-invalid.json", &len);
    CHECK(txt != NULL);
    if (txt) {
        json_t *tj = pgcmk_jsonc_parse(txt, len, &err);
        char *body;

        CHECK(!tj && err.code == PGCMK_E_INVALID_CONTENT);
        CHECK(strstr(err.message, "line 64, column 13") != NULL);
        /* the same file through the az CLI body */
        body = pgcmk_xasprintf("{\"properties\": {\"mode\": \"Incremental\", template:%s}}", txt);
        tj = pgcmk_deploy_parse_body(body, strlen(body), &err);
        CHECK(!tj && err.code == PGCMK_E_INVALID_TEMPLATE &&
              strstr(err.message, "line 64, column 13") &&
              strstr(err.message, "Deployment template parse failed"));
        free(body);
        free(txt);
    }
}

int
main(void)
{
    test_unique_string();
    test_guid();
    test_expressions();
    test_jsonc();
    test_parameters();
    test_variables_functions();
    test_resources();
    test_nested();
    test_bounds();
    test_seeds();
    return t_done("test_template");
}
