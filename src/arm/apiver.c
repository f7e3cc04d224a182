/* apiver.c - api-version checks with Azure's codes and texts (azure-api.md 1.2). */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "pgcmk/arm.h"

/* Microsoft.Resources: resource groups, subscriptions, providers, resources, deployments. */
static const char *const resources_versions[] = {
    "2014-04-01", "2015-01-01", "2015-11-01", "2016-02-01", "2016-06-01", "2016-07-01",
    "2016-09-01", "2017-05-10", "2018-02-01", "2018-05-01", "2019-03-01", "2019-05-01",
    "2019-05-10", "2019-06-01", "2019-07-01", "2019-08-01", "2019-10-01", "2019-11-01",
    "2020-01-01", "2020-06-01", "2020-08-01", "2020-10-01", "2021-01-01", "2021-04-01",
    "2022-01-01", "2022-09-01", "2022-12-01", "2023-07-01", "2024-03-01", "2024-07-01",
    "2024-11-01", "2025-04-01", NULL};

int
pgcmk_arm_version_listed(const char *v, const char *const *versions)
{
    for (int i = 0; versions[i]; i++)
        if (strcasecmp(v, versions[i]) == 0)
            return 1;
    return 0;
}

/* "a, b, c" newest first, as ARM prints them. */
static void
apiver_join(const char *const *versions, const char *sep, char *out, size_t cap)
{
    int n = 0;
    size_t len = 0;

    while (versions[n])
        n++;
    out[0] = '\0';
    for (int i = n - 1; i >= 0 && len < cap; i--)
        len += (size_t)snprintf(out + len, cap - len, "%s%s", versions[i], i ? sep : "");
}

int
pgcmk_arm_check_resources_version(struct pgcmk_req *rq, struct pgcmk_resp *rs,
                                  struct pgcmk_err *err)
{
    char list[1024];

    if (rq->api_version == NULL || *rq->api_version == '\0')
        return pgcmk_err_set(err, PGCMK_E_MISSING_API_VERSION, NULL,
                             "The api-version query parameter (?api-version=) is required for "
                             "all requests.");
    if (pgcmk_arm_version_listed(rq->api_version, resources_versions))
        return 0;
    apiver_join(resources_versions, ",", list, sizeof(list));
    pgcmk_resp_header(rs, "x-ms-failure-cause", "gateway");
    return pgcmk_err_set(err, PGCMK_E_INVALID_API_VERSION, NULL,
                         "The api-version '%.32s' is invalid. The supported versions are '%s'.",
                         rq->api_version, list);
}

int
pgcmk_arm_check_version(struct pgcmk_req *rq, const char *type_name, const char *const *versions,
                        struct pgcmk_err *err)
{
    char list[1024];
    const char *slash;

    if (rq->api_version == NULL || *rq->api_version == '\0')
        return pgcmk_err_set(err, PGCMK_E_MISSING_API_VERSION, NULL,
                             "The api-version query parameter (?api-version=) is required for "
                             "all requests.");
    if (pgcmk_arm_version_listed(rq->api_version, versions))
        return 0;
    apiver_join(versions, ", ", list, sizeof(list));
    slash = strchr(type_name, '/');
    return pgcmk_err_set(err, PGCMK_E_NO_PROVIDER, NULL,
                         "No registered resource provider found for location '%s' and API "
                         "version '%.32s' for type '%s'. The supported api-versions are '%s'. "
                         "The supported locations are '%s'.",
                         "eastus", rq->api_version, slash ? slash + 1 : type_name, list,
                         "eastus, eastus2, westus, westus2, westeurope, northeurope");
}
