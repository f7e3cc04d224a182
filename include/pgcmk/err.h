/* err.h - the one list of Azure error codes (X-macro) and the error struct every call fills.
 *
 * The list is the only place an Azure code string appears. It generates the enum, the status and
 * code tables, and docs/errors.md (`build/pgcmkd --error-table`). Tags: [V] verified in the public
 * specs, [O] observed from the real service, [I] inferred. */
#ifndef PGCMK_ERR_H
#define PGCMK_ERR_H

#include <stddef.h>

/* X(enum, http status, Azure code, evidence, what it means)
 * XI(enum, parent enum, inner code, evidence, what it means): a Key Vault inner error. It renders
 * as its parent's status and code, with the inner code as error.innererror.code. */
#define PGCMK_ERRORS(X, XI)                                                                        \
    X(PGCMK_E_OK, 200, "OK", "-", "no error")                                                      \
    X(PGCMK_E_BAD_REQUEST, 400, "BadRequest", "V", "a request the service refuses")                \
    X(PGCMK_E_INVALID_CONTENT, 400, "InvalidRequestContent", "O",                                  \
      "the body is not valid JSON or has the wrong shape")                                         \
    X(PGCMK_E_MISSING_API_VERSION, 400, "MissingApiVersionParameter", "O",                         \
      "no ?api-version= on an ARM request")                                                        \
    X(PGCMK_E_INVALID_API_VERSION, 400, "InvalidApiVersionParameter", "O",                         \
      "an api-version that a Microsoft.Resources type does not support")                           \
    X(PGCMK_E_NO_PROVIDER, 400, "NoRegisteredProviderFound", "O",                                  \
      "an api-version that a provider's resource type does not support")                           \
    X(PGCMK_E_INVALID_QUERY, 400, "InvalidQueryParameter", "I",                                    \
      "a query parameter the operation does not take")                                             \
    X(PGCMK_E_INVALID_SUBSCRIPTION_ID, 400, "InvalidSubscriptionId", "O",                          \
      "a subscription id that is not a GUID")                                                      \
    X(PGCMK_E_INVALID_RG_NAME, 400, "InvalidResourceGroupName", "I",                               \
      "a resource group name outside ARM's pattern")                                               \
    X(PGCMK_E_INVALID_RESOURCE_NAME, 400, "InvalidResourceName", "O",                              \
      "a resource name outside its type's pattern")                                                \
    X(PGCMK_E_LOCATION_NOT_AVAILABLE, 400, "LocationNotAvailableForResourceType", "O",             \
      "a location the resource type is not offered in")                                            \
    X(PGCMK_E_RG_LOCATION_NOT_AVAILABLE, 400, "LocationNotAvailableForResourceGroup", "O",         \
      "a resource group in a location that is not an Azure region")                                \
    X(PGCMK_E_LOCATION_REQUIRED, 400, "LocationRequired", "O",                                     \
      "a tracked resource created without a location")                                             \
    X(PGCMK_E_INVALID_RESOURCE_TYPE, 400, "InvalidResourceType", "O",                              \
      "a resource type the namespace does not have")                                               \
    X(PGCMK_E_INVALID_NAMESPACE, 400, "InvalidResourceNamespace", "O",                             \
      "a provider namespace the emulator does not know")                                           \
    X(PGCMK_E_INVALID_PARAMETER, 400, "InvalidParameter", "I", "a property with a wrong value")    \
    X(PGCMK_E_INVALID_IDENTITY, 400, "InvalidIdentity", "I",                                       \
      "an identity block with an unknown type or a user-assigned identity that does not exist")    \
    X(PGCMK_E_KV_BAD_PARAMETER, 400, "BadParameter", "O",                                          \
      "Key Vault data plane: a wrong parameter or api-version")                                    \
    X(PGCMK_E_UNAUTHENTICATED, 401, "AuthenticationFailed", "I", "no usable bearer token")         \
    X(PGCMK_E_INVALID_TOKEN, 401, "InvalidAuthenticationToken", "I",                               \
      "a bearer token that fails verification")                                                    \
    X(PGCMK_E_KV_UNAUTHORIZED, 401, "Unauthorized", "O",                                           \
      "Key Vault data plane: no or bad bearer token")                                              \
    X(PGCMK_E_FORBIDDEN, 403, "AuthorizationFailed", "I", "the caller may not do this")            \
    X(PGCMK_E_KV_FORBIDDEN, 403, "Forbidden", "O",                                                 \
      "Key Vault data plane: the access policy does not grant the operation")                      \
    X(PGCMK_E_NOT_FOUND, 404, "NotFound", "I", "no such route")                                    \
    X(PGCMK_E_RESOURCE_NOT_FOUND, 404, "ResourceNotFound", "O", "no such resource")                \
    X(PGCMK_E_PARENT_NOT_FOUND, 404, "ParentResourceNotFound", "O",                                \
      "a child resource whose parent does not exist")                                              \
    X(PGCMK_E_RG_NOT_FOUND, 404, "ResourceGroupNotFound", "O", "no such resource group")           \
    X(PGCMK_E_SUBSCRIPTION_NOT_FOUND, 404, "SubscriptionNotFound", "O", "no such subscription")    \
    X(PGCMK_E_OPERATION_NOT_FOUND, 404, "OperationNotFound", "I",                                  \
      "no such long-running operation")                                                            \
    X(PGCMK_E_KV_NOT_FOUND, 404, "NotFound", "O", "Key Vault data plane: no such vault or object") \
    X(PGCMK_E_GRAPH_NOT_FOUND, 404, "Request_ResourceNotFound", "O",                               \
      "Microsoft Graph: no such object")                                                           \
    X(PGCMK_E_KV_KEY_NOT_FOUND, 404, "KeyNotFound", "O", "Key Vault data plane: no such key")      \
    X(PGCMK_E_KV_VAULT_NOT_FOUND, 404, "VaultNotFound", "I",                                       \
      "Key Vault data plane: no live vault of that name")                                          \
    X(PGCMK_E_KV_CONFLICT, 409, "Conflict", "O",                                                   \
      "Key Vault data plane: the object's state forbids this (deleted but recoverable, ...)")      \
    XI(PGCMK_E_KV_FORBIDDEN_BY_POLICY, PGCMK_E_KV_FORBIDDEN, "ForbiddenByPolicy", "O",             \
       "Key Vault data plane: the vault's access policy does not grant the caller the permission") \
    XI(PGCMK_E_KV_KEY_OP_FORBIDDEN, PGCMK_E_KV_FORBIDDEN, "KeyOperationForbidden", "O",            \
       "Key Vault data plane: the operation is not in the key's key_ops")                          \
    XI(PGCMK_E_KV_KEY_DISABLED, PGCMK_E_KV_FORBIDDEN, "KeyDisabled", "O",                          \
       "Key Vault data plane: the key version is disabled")                                        \
    XI(PGCMK_E_KV_KEY_EXPIRED, PGCMK_E_KV_FORBIDDEN, "KeyExpired", "I",                            \
       "Key Vault data plane: encrypt, wrapKey or sign after the key's exp")                       \
    XI(PGCMK_E_KV_KEY_NOT_YET_VALID, PGCMK_E_KV_FORBIDDEN, "KeyNotYetValid", "I",                  \
       "Key Vault data plane: encrypt, wrapKey or sign before the key's nbf")                      \
    XI(PGCMK_E_KV_PURGE_PROTECTED, PGCMK_E_KV_FORBIDDEN, "PurgeProtectionEnabled", "I",            \
       "Key Vault data plane: a purge under purge protection (real answers may lack it)")          \
    XI(PGCMK_E_KV_DELETED_RECOVERABLE, PGCMK_E_KV_CONFLICT, "ObjectIsDeletedButRecoverable", "O",  \
       "Key Vault data plane: the name belongs to a deleted key that can still be recovered")      \
    X(PGCMK_E_METHOD_NOT_ALLOWED, 405, "MethodNotAllowed", "I",                                    \
      "the route exists but not for this HTTP method")                                             \
    X(PGCMK_E_CONFLICT, 409, "Conflict", "I", "the resource's state forbids this")                 \
    X(PGCMK_E_OPERATION_IN_PROGRESS, 409, "AnotherOperationInProgress", "I",                       \
      "another operation on the resource is still running")                                        \
    X(PGCMK_E_RESOURCE_LOCATION_CONFLICT, 409, "InvalidResourceLocation", "O",                     \
      "a resource re-created in another location")                                                 \
    X(PGCMK_E_RG_LOCATION_CONFLICT, 409, "InvalidResourceGroupLocation", "O",                      \
      "a resource group re-created in another location")                                           \
    X(PGCMK_E_RG_BEING_DELETED, 409, "ResourceGroupBeingDeleted", "O",                             \
      "the resource group is being deleted")                                                       \
    X(PGCMK_E_PRECONDITION_FAILED, 412, "PreconditionFailed", "V",                                 \
      "If-Match or If-None-Match did not hold")                                                    \
    X(PGCMK_E_TOO_LARGE, 413, "RequestEntityTooLarge", "I", "the body is over the size limit")     \
    X(PGCMK_E_UNSUPPORTED_MEDIA_TYPE, 415, "UnsupportedMediaType", "O",                            \
      "a body that is not application/json")                                                       \
    X(PGCMK_E_OAUTH_INVALID_REQUEST, 400, "invalid_request", "O",                                  \
      "token service: a missing or malformed parameter")                                           \
    X(PGCMK_E_OAUTH_INVALID_SCOPE, 400, "invalid_scope", "O",                                      \
      "token service: a client-credentials scope that is not one resource's /.default")            \
    X(PGCMK_E_OAUTH_UNAUTHORIZED_CLIENT, 400, "unauthorized_client", "O",                          \
      "token service: no application with that client id")                                         \
    X(PGCMK_E_OAUTH_UNSUPPORTED_GRANT, 400, "unsupported_grant_type", "O",                         \
      "token service: a grant type other than client_credentials")                                 \
    X(PGCMK_E_OAUTH_INVALID_CLIENT, 401, "invalid_client", "O",                                    \
      "token service: a wrong client secret")                                                      \
    X(PGCMK_E_IMDS_NO_METADATA, 400, "bad_request_102", "V",                                       \
      "managed-identity endpoint: the Metadata: true header is missing")                           \
    X(PGCMK_E_VAULT_NAME_INVALID, 400, "VaultNameNotValid", "I",                                   \
      "a vault name outside 3-24 letters, digits and single hyphens")                              \
    X(PGCMK_E_VAULT_EXISTS, 409, "VaultAlreadyExists", "I",                                        \
      "vault names are global and this one is taken")                                              \
    X(PGCMK_E_VAULT_DELETED_CONFLICT, 409, "ConflictError", "O",                                   \
      "a vault of that name is soft-deleted: recover or purge it first")                           \
    X(PGCMK_E_DELETED_VAULT_NOT_FOUND, 404, "DeletedVaultNotFound", "I",                           \
      "no soft-deleted vault of that name")                                                        \
    X(PGCMK_E_OPERATION_NOT_ALLOWED, 409, "OperationNotAllowed", "I",                              \
      "an operation the resource's protection forbids (purge under purge protection)")             \
    X(PGCMK_E_INTERNAL, 500, "InternalServerError", "I",                                           \
      "an internal failure; the log has the cause")                                                \
    X(PGCMK_E_INVALID_TEMPLATE, 400, "InvalidTemplate", "V",                                       \
      "a template that does not parse, evaluate or resolve (the message gives where)")             \
    X(PGCMK_E_INVALID_DEPLOYMENT, 400, "InvalidDeployment", "O",                                   \
      "a deployment body with a wrong shape or mode")                                              \
    X(PGCMK_E_DEPLOYMENT_FAILED, 400, "DeploymentFailed", "V",                                     \
      "at least one resource of a deployment failed; details hold each provider's error")          \
    X(PGCMK_E_DEPLOYMENT_NOT_FOUND, 404, "DeploymentNotFound", "O", "no such deployment")          \
    X(PGCMK_E_DEPLOYMENT_ACTIVE, 409, "DeploymentActive", "O",                                     \
      "a deployment of that name is still running")                                                \
    X(PGCMK_E_DEPLOYMENT_CANCELED, 409, "DeploymentCanceled", "I", "the deployment was canceled")  \
    X(PGCMK_E_PG_KEY_NOT_FOUND, 400, "AzureKeyVaultKeyNotFound", "O",                              \
      "CMK: the key URI names no existing vault, key or version")                                  \
    X(PGCMK_E_PG_KEY_URI_INVALID, 400, "AzureKeyVaultKeyUriInvalid", "I",                          \
      "CMK: the key URI is not https://{vault}.vault.azure.net/keys/{key}/{version}")              \
    X(PGCMK_E_PG_MISSING_PERMISSIONS, 400, "AzureKeyVaultMissingPermissions", "V",                 \
      "CMK: the identity lacks get, wrapKey or unwrapKey on the vault")                            \
    X(PGCMK_E_PG_KEY_DISABLED, 400, "AzureKeyVaultKeyDisabled", "V", "CMK: the key is disabled")   \
    X(PGCMK_E_PG_KEY_EXPIRED, 400, "AzureKeyVaultKeyExpired", "I",                                 \
      "CMK: the key's exp has passed or its nbf is in the future")                                 \
    X(PGCMK_E_PG_KEY_TYPE, 400, "AzureKeyVaultKeyTypeNotSupported", "I",                           \
      "CMK: the key is not RSA 2048, 3072 or 4096")                                                \
    X(PGCMK_E_PG_VAULT_RECOVERY, 400, "AzureKeyVaultRecoveryLevelInvalid", "I",                    \
      "CMK: the vault lacks soft delete, purge protection or 90-day retention")                    \
    X(PGCMK_E_PG_VAULT_UNREACHABLE, 503, "AzureKeyVaultUnreachable", "I",                          \
      "CMK: the vault did not answer (outage, not revocation)")                                    \
    X(PGCMK_E_PG_IDENTITY_NOT_FOUND, 400, "UserAssignedIdentityNotFound", "I",                     \
      "CMK: the user-assigned identity does not exist or is not assigned to the resource")         \
    X(PGCMK_E_PG_IDENTITY_REQUIRED, 400, "AzureKeyVaultIdentityRequired", "I",                     \
      "CMK: the resource has no managed identity to reach the vault with")                         \
    X(PGCMK_E_PG_ENCRYPTION_UPDATE, 400, "DataEncryptionUpdateNotSupported", "I",                  \
      "CMK is create-only: a PATCH that changes dataEncryption or the identity")                   \
    X(PGCMK_E_PG_INACCESSIBLE, 409, "ServerInaccessible", "I",                                     \
      "the database lost its key: only delete, identity and revalidation are allowed")             \
    X(PGCMK_E_PG_INVALID_RESTORE, 400, "InvalidRestorePointInTime", "I",                           \
      "a restore time outside earliestRestoreTime..now")                                           \
    X(PGCMK_E_PG_SOURCE_NOT_FOUND, 404, "SourceServerNotFound", "I",                               \
      "a restore or replica whose source does not exist")                                          \
    X(PGCMK_E_PG_NAME_EXISTS, 409, "ServerGroupNameAlreadyExists", "I",                            \
      "a cluster or server name already taken")                                                    \
    X(PGCMK_E_PG_DATA_INACCESSIBLE, 503, "DatabaseInaccessible", "I",                              \
      "modeled data plane: the database has no key (SQLSTATE 08006)")                              \
    X(PGCMK_E_PG_ROW_NOT_FOUND, 404, "RowNotFound", "I", "modeled data plane: no such row")        \
    X(PGCMK_E_PG_REVALIDATION_REQUIRED, 409, "ServerKeyRevalidationRequired", "I",                 \
      "explain: a single server's access to its key is back; it stays Inaccessible until the "     \
      "server key is revalidated (re-created)")                                                    \
    X(PGCMK_E_PG_KEY_UNCHECKED, 503, "KeyNotCheckedSinceStart", "I",                               \
      "explain: the database's key was not checked yet since the emulator started "                \
      "(POST /emulator/settle waits for the check)")                                               \
    /* KMIP clients and the KMIP listener (src/kmip/clients.c, src/kmip/listener.c) */             \
    X(PGCMK_E_KMIP_CLIENT_NOT_FOUND, 404, "KmipClientNotFound", "I",                               \
      "no KMIP client of that name")                                                               \
    X(PGCMK_E_KMIP_CLIENT_NAME_INVALID, 400, "InvalidKmipClientName", "I",                         \
      "a KMIP client name must be 1 to 64 of A-Z a-z 0-9 _ . - (not . or ..)")                     \
    /* KMIP managed objects (src/kmip/objects.c, src/kmip/ops.c) */                                \
    X(PGCMK_E_KMIP_OBJECT_NOT_FOUND, 404, "KmipObjectNotFound", "I",                               \
      "no KMIP managed object with that unique identifier")                                        \
    X(PGCMK_E_KMIP_PERMISSION_DENIED, 409, "KmipPermissionDenied", "I",                            \
      "KMIP refuses the change in the object's state (Permission Denied): destroying an Active "   \
      "object, activating one that is not Pre-Active")                                             \
    X(PGCMK_E_KMIP_ILLEGAL_OPERATION, 409, "KmipIllegalOperation", "I",                            \
      "KMIP refuses the operation (Illegal Operation): revoking an object that is not Active "     \
      "with a reason other than a compromise")                                                     \
    X(PGCMK_E_KMIP_INVALID_REVOCATION_REASON, 400, "KmipInvalidRevocationReason", "I",             \
      "a revocation reason that is not one of KMIP's Revocation Reason Codes")                     \
    /* self-managed databases and their key providers (src/tde/, src/agent/kmip.c) */              \
    X(PGCMK_E_TDE_DATABASE_NOT_FOUND, 404, "DatabaseNotFound", "I",                                \
      "no self-managed (pg_tde) database of that name")                                            \
    X(PGCMK_E_KMIP_KEY_NOT_FOUND, 400, "KmipKeyNotFound", "I",                                     \
      "KMIP: the principal key is not on the server (Item Not Found, Locate found none, or the "   \
      "key found does not unwrap the DEK)")                                                        \
    X(PGCMK_E_KMIP_KEY_REVOKED, 400, "KmipKeyRevoked", "I",                                        \
      "KMIP: the principal key is Deactivated or Compromised")                                     \
    X(PGCMK_E_KMIP_KEY_DESTROYED, 400, "KmipKeyDestroyed", "I",                                    \
      "KMIP: the principal key is Destroyed (a server that keeps destroyed objects)")              \
    X(PGCMK_E_KMIP_CREDENTIALS_REFUSED, 400, "KmipCredentialsRefused", "I",                        \
      "KMIP: the server refused the client certificate (TLS alert, Permission Denied, "            \
      "Authentication Not Successful)")                                                            \
    X(PGCMK_E_KMIP_SERVER_NOT_TRUSTED, 400, "KmipServerNotTrusted", "I",                           \
      "KMIP: the server's certificate does not verify against the provider's CA file")             \
    X(PGCMK_E_KMIP_SERVER_UNREACHABLE, 503, "KmipServerUnreachable", "I",                          \
      "KMIP: no answer (connection refused, timeout, reset, General Failure): an outage, the DEK " \
      "is kept")                                                                                   \
    X(PGCMK_E_KMIP_KEY_AMBIGUOUS, 409, "KmipKeyAmbiguous", "I",                                    \
      "KMIP: Locate found more than one key of the principal key's name (pg_tde refuses it)")      \
    X(PGCMK_E_KMIP_KEY_LENGTH_INVALID, 400, "KmipKeyLengthInvalid", "I",                           \
      "KMIP: the principal key is not 16 or 32 bytes (pg_tde accepts only those)")                 \
    X(PGCMK_E_KMIP_PROVIDER_INVALID, 400, "KmipProviderInvalid", "I",                              \
      "KMIP: the key provider's options are wrong (host, port, certificate, key or CA file)")      \
    /* the Vault-compatible API's emulator routes (src/vaultapi/) */                               \
    X(PGCMK_E_HV_NOT_FOUND, 404, "VaultApiObjectNotFound", "I",                                    \
      "/emulator/vault: no such namespace, mount, secret, token or role")                          \
    /* self-managed databases on a Vault KV v2 provider (src/agent/vault.c, src/tde/) */           \
    X(PGCMK_E_HV_PROVIDER_INVALID, 400, "VaultProviderInvalid", "I",                               \
      "Vault: the key provider's options are wrong (url, mountPath, tokenPath, caPath, "           \
      "namespace)")                                                                                \
    X(PGCMK_E_HV_KEY_NOT_FOUND, 400, "VaultKeyNotFound", "I",                                      \
      "Vault: the principal key's KV v2 secret is gone (404: deleted, destroyed, its "             \
      "metadata deleted), or the key found does not unwrap the DEK")                               \
    X(PGCMK_E_HV_PERMISSION_DENIED, 400, "VaultPermissionDenied", "I",                             \
      "Vault: 403 permission denied (a bad, expired or revoked token, or a policy that does "      \
      "not grant the path)")                                                                       \
    X(PGCMK_E_HV_SEALED, 400, "VaultSealed", "I", "Vault: 503 Vault is sealed")                    \
    X(PGCMK_E_HV_MOUNT_NOT_KV2, 400, "VaultMountNotKv2", "I",                                      \
      "Vault: the mount is not a KV version 2 engine (pg_tde refuses it)")                         \
    X(PGCMK_E_HV_MOUNT_NOT_FOUND, 400, "VaultMountNotFound", "I",                                  \
      "Vault: the mount path has no secrets engine (disabled)")                                    \
    X(PGCMK_E_HV_KEY_LENGTH_INVALID, 400, "VaultKeyLengthInvalid", "I",                            \
      "Vault: the secret's key is not base64 of 16 or 32 bytes (pg_tde accepts only those)")       \
    X(PGCMK_E_HV_REQUEST_REFUSED, 400, "VaultRequestRefused", "I",                                 \
      "Vault: another 4xx answer to the agent's request")                                          \
    X(PGCMK_E_HV_SERVER_NOT_TRUSTED, 400, "VaultServerNotTrusted", "I",                            \
      "Vault: the server's certificate does not verify against the provider's caPath")             \
    X(PGCMK_E_HV_TOKEN_FILE_UNREADABLE, 400, "VaultTokenFileUnreadable", "I",                      \
      "Vault: the provider's tokenPath cannot be read or is empty")                                \
    X(PGCMK_E_HV_SERVER_UNREACHABLE, 503, "VaultServerUnreachable", "I",                           \
      "Vault: no answer (connection refused, timeout, a 5xx other than sealed): an outage, "       \
      "the DEK is kept")                                                                           \
    /* ---- KES (issue 14). The KES API's own answers are {"message": text} (PGCMK_ENV_KES); its   \
     * codes are here so the status lives in one table. Sections: KES server (src/kes/ server,     \
     * routes, config: h-kcore), KES keystore and crypto (src/kes/ keystore, cache, crypto:        \
     * h-kstore), KES key provider of self-managed databases (src/agent/kes.c: h-kagent). */       \
    /* KES server (h-kcore) */                                                                     \
    X(PGCMK_E_KES_BAD_REQUEST, 400, "KesBadRequest", "O",                                          \
      "KES: a bad name, pattern, body or client certificate")                                      \
    X(PGCMK_E_KES_NOT_ALLOWED, 403, "KesNotAllowed", "O",                                          \
      "KES: not authorized: insufficient permissions (no policy, or the policy denies the path)")  \
    X(PGCMK_E_KES_NOT_FOUND, 404, "KesNotFound", "O", "KES: no such route, policy or identity")    \
    X(PGCMK_E_KES_METHOD, 405, "KesMethodNotAllowed", "O", "KES: the route takes another method")  \
    X(PGCMK_E_KES_NOT_ACCEPTABLE, 406, "KesNotAcceptable", "O",                                    \
      "KES: an imported key of an unknown cipher or size")                                         \
    X(PGCMK_E_KES_TOO_LARGE, 413, "KesBodyTooLarge", "O",                                          \
      "KES: a request body over the route limit (1 MiB)")                                          \
    X(PGCMK_E_KES_INTERNAL, 500, "KesInternal", "O",                                               \
      "KES: the server failed (random numbers, encryption)")                                       \
    X(PGCMK_E_KES_UNAVAILABLE, 502, "KesKeystoreUnavailable", "O",                                 \
      "KES: the keystore answered with an error (/v1/ready)")                                      \
    X(PGCMK_E_KES_UNREACHABLE, 504, "KesKeystoreUnreachable", "O",                                 \
      "KES: the keystore is not reachable (/v1/ready)")                                            \
    X(PGCMK_E_KES_CONFIG_INVALID, 400, "KesConfigInvalid", "I",                                    \
      "/emulator/kes/servers: a config KES refuses, or a server that cannot start (the reason "    \
      "KES gives)")                                                                                \
    X(PGCMK_E_KES_START_FAILED, 502, "KesServerStartFailed", "I",                                  \
      "/emulator/kes/servers: a required key of keys: cannot be created (the keystore reason)")    \
    X(PGCMK_E_KES_SERVER_NOT_FOUND, 404, "KesServerNotFound", "I",                                 \
      "/emulator/kes/servers: no such KES server")                                                 \
    X(PGCMK_E_KES_SERVER_EXISTS, 409, "KesServerExists", "I",                                      \
      "/emulator/kes/servers: a KES server of that name exists")                                   \
    /* KES keystore and crypto (h-kstore) */                                                       \
    X(PGCMK_E_KES_KEY_EXISTS, 400, "KesKeyExists", "V", "KES: key already exists")                 \
    X(PGCMK_E_KES_KEY_NOT_FOUND, 404, "KesKeyNotFound", "V", "KES: key does not exist")            \
    X(PGCMK_E_KES_NOT_AUTHENTIC, 400, "KesNotAuthentic", "V",                                      \
      "KES: decryption failed: ciphertext is not authentic (tampered, wrong key or context)")      \
    X(PGCMK_E_KES_KEY_INVALID, 400, "KesKeyInvalid", "V",                                          \
      "KES: invalid key material (not 32 bytes, unknown cipher, a stored value KES cannot parse)") \
    X(PGCMK_E_KES_NO_HMAC, 409, "KesKeyNoHmac", "V",                                               \
      "KES: key does not support HMAC (a legacy key stored without an HMAC key)")                  \
    X(PGCMK_E_KES_KEYSTORE, 502, "KesKeystoreFailure", "V",                                        \
      "KES: the keystore (Vault) failed: sealed, unreachable, login refused, permission denied, "  \
      "an answer KES cannot read")                                                                 \
    X(PGCMK_E_KES_KEYSTORE_CONFIG, 400, "KesKeystoreInvalid", "V",                                 \
      "KES: keystore.vault of the config is wrong (endpoint, version, transit key, TLS files)")    \
    /* KES key provider (h-kagent); its reason codes KesKeyNotFound (404) and KesKeystoreFailure   \
     * (502) are the KES keystore's PGCMK_E_KES_KEY_NOT_FOUND and PGCMK_E_KES_KEYSTORE */          \
    X(PGCMK_E_KES_PROVIDER_INVALID, 400, "KesProviderInvalid", "I",                                \
      "KES: the key provider's options are wrong (url, apiKey or certPath and keyPath, caPath, "   \
      "insecure, createKey)")                                                                      \
    X(PGCMK_E_KES_SERVER_NOT_TRUSTED, 400, "KesServerNotTrusted", "I",                             \
      "KES: the server's certificate does not verify against the provider's caPath, or the "       \
      "server refused the client certificate in the TLS handshake")                                \
    X(PGCMK_E_KES_PERMISSION_DENIED, 400, "KesPermissionDenied", "I",                              \
      "KES: 403 not authorized (the identity is unknown to the server or its policy does not "     \
      "allow the key operation)")                                                                  \
    X(PGCMK_E_KES_KEY_MISMATCH, 400, "KesKeyMismatch", "I",                                        \
      "KES: the stored DEK ciphertext is not authentic under the key (the key was replaced), or "  \
      "does not decrypt to a 32-byte key")                                                         \
    X(PGCMK_E_KES_REQUEST_REFUSED, 400, "KesRequestRefused", "I",                                  \
      "KES: another 4xx answer to the agent's request, or an answer that is not KES's shape")      \
    X(PGCMK_E_KES_SERVER_UNREACHABLE, 503, "KesServerUnreachable", "I",                            \
      "KES: no answer (connection refused, timeout, a 5xx other than 502): an outage, the DEK is " \
      "kept")                                                                                      \
    /* ---- real PostgreSQL (issue 15, src/pg/). Sections: supervisor (pg.c, instance.c, wire.c,   \
     * routes.c: h-pgsup), access (access.c: h-pgacc), archive, restores and replicas (archive.c,  \
     * walcmd.c: h-pgarch), at rest (atrest.c: h-pgci), providers (h-pgapi). */                    \
    /* real PostgreSQL: supervisor (h-pgsup) */                                                    \
    X(PGCMK_E_PGREAL_UNAVAILABLE, 503, "RealPostgresUnavailable", "I",                             \
      "--pg-mode real cannot run here: what to install or fix is in the message")                  \
    X(PGCMK_E_PGREAL_DOWN, 503, "ServerNotRunning", "I",                                           \
      "the database's PostgreSQL instance is not running (starting, stopped or crashed)")          \
    X(PGCMK_E_PGREAL_SQL, 400, "PostgresError", "I",                                               \
      "PostgreSQL answered an error: its text and SQLSTATE are in the message")                    \
    X(PGCMK_E_PGREAL_LIMIT, 409, "RealPostgresInstanceLimit", "I",                                 \
      "--pg-max-instances real instances run already: delete a server or raise the cap")           \
    X(PGCMK_E_PGREAL_START, 503, "ServerStartFailed", "I",                                         \
      "the PostgreSQL instance did not start: its log's last FATAL line is in the message")        \
    /* real PostgreSQL: access (h-pgacc) */                                                        \
    /* real PostgreSQL: archive, restores, replicas (h-pgarch) */                                  \
    X(PGCMK_E_PGARCH_FAILED, 409, "RealPostgresArchiveFailed", "I",                                \
      "a base backup, a restore from the encrypted archive or a replica's copy failed: the step "  \
      "and PostgreSQL's last message are in the message")                                          \
    /* real PostgreSQL: at rest (h-pgci) */                                                        \
    X(PGCMK_E_PGREAL_ATREST_NOKEY, 409, "DataDirectoryLocked", "I",                                \
      "--pg-at-rest: the database's DEK is not in memory (its key is revoked or not checked "      \
      "yet), "                                                                                     \
      "so its gocryptfs data directory stays unmounted and the instance stopped")                  \
    X(PGCMK_E_PGREAL_ATREST_MOUNT, 503, "DataDirectoryMountFailed", "I",                           \
      "--pg-at-rest: gocryptfs could not initialise or mount the data directory (its last line "   \
      "is in the message)")                                                                        \
    /* real PostgreSQL: providers and the data plane (h-pgapi) */                                  \
    /* ---- pg_tde emulation (issue 16). Sections: agent (tdeagent.c: h-tdeagent), self-managed    \
     * instances and key sources (h-tdeinst). pg_tde's own SQL errors are not here: the agent      \
     * answers them with their SQLSTATE (include/pgcmk/tdeproto.h). */                             \
    /* pg_tde: agent (h-tdeagent) */                                                               \
    X(PGCMK_E_TDE_FILE_PROVIDER_INVALID, 400, "TdeFileProviderInvalid", "I",                       \
      "keyring file provider: keyProvider needs path (pg_tde's keyring file)")                     \
    X(PGCMK_E_TDE_KEYRING_UNREADABLE, 400, "TdeKeyringUnreadable", "I",                            \
      "keyring file: the PostgreSQL user cannot read it, or it is corrupted")                      \
    X(PGCMK_E_TDE_KEYRING_KEY_NOT_FOUND, 400, "TdeKeyringKeyNotFound", "I",                        \
      "keyring file: no key of the principal key's name")                                          \
    X(PGCMK_E_TDE_KEYRING_KEY_CHANGED, 400, "TdeKeyringKeyChanged", "I",                           \
      "keyring file: the key of that name does not unwrap the database's key (it was replaced)")   \
    /* pg_tde: self-managed instances (h-tdeinst) */                                               \
    X(PGCMK_E_PGTDE_INSTANCE_NOT_FOUND, 404, "PostgresInstanceNotFound", "I",                      \
      "no self-managed PostgreSQL instance (POST /emulator/postgres/instances) has this name")     \
    X(PGCMK_E_PGTDE_INSTANCE_EXISTS, 409, "PostgresInstanceExists", "I",                           \
      "a self-managed PostgreSQL instance has this name already: delete it first")                 \
    X(PGCMK_E_UNAVAILABLE, 503, "ServiceUnavailable", "I", "busy; retry after the given time")

enum pgcmk_errc {

#define PGCMK_X_ENUM(e, st, code, ev, doc) e,
    PGCMK_ERRORS(PGCMK_X_ENUM, PGCMK_X_ENUM)
#undef PGCMK_X_ENUM
        PGCMK_E__COUNT
};

#define PGCMK_ERR_MSG_LEN 512

struct pgcmk_err {
    enum pgcmk_errc code;
    char target[64];
    char message[PGCMK_ERR_MSG_LEN];
    int cause; /* a library result code, for the log only */
};

/* Fills err (when not NULL) and returns -1, so callers write `return pgcmk_err_set(...)`.
 * Echo user input with a bound: '%.128s'. */
int pgcmk_err_set(struct pgcmk_err *err, enum pgcmk_errc code, const char *target, const char *fmt,
                  ...) __attribute__((format(printf, 4, 5)));
void pgcmk_err_clear(struct pgcmk_err *err);

/* The HTTP status; an inner code answers with its parent's. */
int pgcmk_err_status(enum pgcmk_errc code);
/* The entry's own code: "KeyDisabled" for PGCMK_E_KV_KEY_DISABLED. */
const char *pgcmk_err_code(enum pgcmk_errc code);
/* The code an envelope's error.code carries: the parent's for an inner code, else the entry. */
enum pgcmk_errc pgcmk_err_parent(enum pgcmk_errc code);
/* The innererror.code of an inner entry, else NULL. */
const char *pgcmk_err_inner(enum pgcmk_errc code);
/* The first enum with this Azure code (codes such as "Conflict" repeat), else INTERNAL. Inner
 * codes are found too: "KeyDisabled" gives PGCMK_E_KV_KEY_DISABLED. */
enum pgcmk_errc pgcmk_err_from_code(const char *code);
/* The enum of a Key Vault error body: the inner code when it is one of the table's inner entries
 * under that outer code, else the outer code's entry (NULLs allowed), else INTERNAL. */
enum pgcmk_errc pgcmk_err_from_codes(const char *code, const char *inner);
const char *pgcmk_err_evidence(enum pgcmk_errc code);
const char *pgcmk_err_doc(enum pgcmk_errc code);

/* X(HTTP status, .NET HttpStatusCode name): how deployment operations and the Activity Log name
 * a status (statusCode). */
#define PGCMK_HTTP_STATUS_NAMES(X)                                                                 \
    X(200, "OK")                                                                                   \
    X(201, "Created")                                                                              \
    X(202, "Accepted")                                                                             \
    X(204, "NoContent")                                                                            \
    X(400, "BadRequest")                                                                           \
    X(401, "Unauthorized")                                                                         \
    X(403, "Forbidden")                                                                            \
    X(404, "NotFound")                                                                             \
    X(405, "MethodNotAllowed")                                                                     \
    X(409, "Conflict")                                                                             \
    X(412, "PreconditionFailed")                                                                   \
    X(413, "RequestEntityTooLarge")                                                                \
    X(415, "UnsupportedMediaType")                                                                 \
    X(429, "TooManyRequests")                                                                      \
    X(500, "InternalServerError")                                                                  \
    X(502, "BadGateway")                                                                           \
    X(503, "ServiceUnavailable")                                                                   \
    X(504, "GatewayTimeout")

/* The status's name; an unlisted one falls back to InternalServerError, BadRequest or OK. */
const char *pgcmk_err_status_name(int status);

/* Errors by code since start (redis errorstats), for /emulator/stats. */
void pgcmk_err_count(enum pgcmk_errc code);
unsigned long pgcmk_err_counted(enum pgcmk_errc code);

#endif
