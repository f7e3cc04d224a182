/* kmip.h - the TTLV codec of KMIP 1.0-1.4 (and the 2.0 message header): a pure module, no I/O,
 * no globals.
 *
 * A decoded message is a tree of struct pgcmk_ttlv nodes that lives in one struct pgcmk_ttlv_tree
 * (an arena of chunks owned by the caller). Decoding is strict: every length matches its type,
 * padding is to 8 bytes and zero, text is valid UTF-8, a structure's children fill it exactly,
 * nothing trails the top item, nesting stays within PGCMK_TTLV_MAX_DEPTH and the message within
 * PGCMK_TTLV_MAX_LEN. Every refusal names its reason (enum pgcmk_ttlv_reason) and the offset of
 * the item at fault, for the server's Invalid Message result. pgcmk_ttlv_tree_release wipes the
 * whole arena, so key material (Byte Strings) does not outlive the tree. */
#ifndef PGCMK_KMIP_H
#define PGCMK_KMIP_H

#include <stddef.h>
#include <stdint.h>

#define PGCMK_TTLV_MAX_DEPTH 32         /* the top item is depth 1 */
#define PGCMK_TTLV_MAX_LEN   (1u << 20) /* a whole message, header included: 1 MiB */
#define PGCMK_TTLV_HDR_LEN   8          /* tag 3, type 1, length 4 */

/* X(enum suffix, type code, name, fixed value length or 0 if variable) */
#define PGCMK_TTLV_TYPES(X)                                                                        \
    X(STRUCTURE, 0x01, "Structure", 0)                                                             \
    X(INTEGER, 0x02, "Integer", 4)                                                                 \
    X(LONG_INTEGER, 0x03, "LongInteger", 8)                                                        \
    X(BIG_INTEGER, 0x04, "BigInteger", 0)                                                          \
    X(ENUMERATION, 0x05, "Enumeration", 4)                                                         \
    X(BOOLEAN, 0x06, "Boolean", 8)                                                                 \
    X(TEXT_STRING, 0x07, "TextString", 0)                                                          \
    X(BYTE_STRING, 0x08, "ByteString", 0)                                                          \
    X(DATE_TIME, 0x09, "DateTime", 8)                                                              \
    X(INTERVAL, 0x0A, "Interval", 4)                                                               \
    X(DATE_TIME_EXTENDED, 0x0B, "DateTimeExtended", 8)

enum pgcmk_ttlv_type {

#define PGCMK_TTLV_TYPE_ENUM(n, code, name, len) PGCMK_TTLV_##n = code,
    PGCMK_TTLV_TYPES(PGCMK_TTLV_TYPE_ENUM)
#undef PGCMK_TTLV_TYPE_ENUM
};

/* Tags of KMIP 1.0-1.4: X(NAME, value), PGCMK_KMIP_TAG_<NAME> = 0x42xxxx (PyKMIP
 * kmip/core/enums.py Tags; OFFSET_ITEMS and LOCATED_ITEMS from KMIP 1.3). The name is the dump's.
 */
#define PGCMK_KMIP_TAGS(X)                                                                         \
    X(ACTIVATION_DATE, 0x420001)                                                                   \
    X(APPLICATION_DATA, 0x420002)                                                                  \
    X(APPLICATION_NAMESPACE, 0x420003)                                                             \
    X(APPLICATION_SPECIFIC_INFORMATION, 0x420004)                                                  \
    X(ARCHIVE_DATE, 0x420005)                                                                      \
    X(ASYNCHRONOUS_CORRELATION_VALUE, 0x420006)                                                    \
    X(ASYNCHRONOUS_INDICATOR, 0x420007)                                                            \
    X(ATTRIBUTE, 0x420008)                                                                         \
    X(ATTRIBUTE_INDEX, 0x420009)                                                                   \
    X(ATTRIBUTE_NAME, 0x42000A)                                                                    \
    X(ATTRIBUTE_VALUE, 0x42000B)                                                                   \
    X(AUTHENTICATION, 0x42000C)                                                                    \
    X(BATCH_COUNT, 0x42000D)                                                                       \
    X(BATCH_ERROR_CONTINUATION_OPTION, 0x42000E)                                                   \
    X(BATCH_ITEM, 0x42000F)                                                                        \
    X(BATCH_ORDER_OPTION, 0x420010)                                                                \
    X(BLOCK_CIPHER_MODE, 0x420011)                                                                 \
    X(CANCELLATION_RESULT, 0x420012)                                                               \
    X(CERTIFICATE, 0x420013)                                                                       \
    X(CERTIFICATE_IDENTIFIER, 0x420014)                                                            \
    X(CERTIFICATE_ISSUER, 0x420015)                                                                \
    X(CERTIFICATE_ISSUER_ALTERNATIVE_NAME, 0x420016)                                               \
    X(CERTIFICATE_ISSUER_DISTINGUISHED_NAME, 0x420017)                                             \
    X(CERTIFICATE_REQUEST, 0x420018)                                                               \
    X(CERTIFICATE_REQUEST_TYPE, 0x420019)                                                          \
    X(CERTIFICATE_SUBJECT, 0x42001A)                                                               \
    X(CERTIFICATE_SUBJECT_ALTERNATIVE_NAME, 0x42001B)                                              \
    X(CERTIFICATE_SUBJECT_DISTINGUISHED_NAME, 0x42001C)                                            \
    X(CERTIFICATE_TYPE, 0x42001D)                                                                  \
    X(CERTIFICATE_VALUE, 0x42001E)                                                                 \
    X(COMMON_TEMPLATE_ATTRIBUTE, 0x42001F)                                                         \
    X(COMPROMISE_DATE, 0x420020)                                                                   \
    X(COMPROMISE_OCCURRENCE_DATE, 0x420021)                                                        \
    X(CONTACT_INFORMATION, 0x420022)                                                               \
    X(CREDENTIAL, 0x420023)                                                                        \
    X(CREDENTIAL_TYPE, 0x420024)                                                                   \
    X(CREDENTIAL_VALUE, 0x420025)                                                                  \
    X(CRITICALITY_INDICATOR, 0x420026)                                                             \
    X(CRT_COEFFICIENT, 0x420027)                                                                   \
    X(CRYPTOGRAPHIC_ALGORITHM, 0x420028)                                                           \
    X(CRYPTOGRAPHIC_DOMAIN_PARAMETERS, 0x420029)                                                   \
    X(CRYPTOGRAPHIC_LENGTH, 0x42002A)                                                              \
    X(CRYPTOGRAPHIC_PARAMETERS, 0x42002B)                                                          \
    X(CRYPTOGRAPHIC_USAGE_MASK, 0x42002C)                                                          \
    X(CUSTOM_ATTRIBUTE, 0x42002D)                                                                  \
    X(D, 0x42002E)                                                                                 \
    X(DEACTIVATION_DATE, 0x42002F)                                                                 \
    X(DERIVATION_DATA, 0x420030)                                                                   \
    X(DERIVATION_METHOD, 0x420031)                                                                 \
    X(DERIVATION_PARAMETERS, 0x420032)                                                             \
    X(DESTROY_DATE, 0x420033)                                                                      \
    X(DIGEST, 0x420034)                                                                            \
    X(DIGEST_VALUE, 0x420035)                                                                      \
    X(ENCRYPTION_KEY_INFORMATION, 0x420036)                                                        \
    X(G, 0x420037)                                                                                 \
    X(HASHING_ALGORITHM, 0x420038)                                                                 \
    X(INITIAL_DATE, 0x420039)                                                                      \
    X(INITIALIZATION_VECTOR, 0x42003A)                                                             \
    X(ISSUER, 0x42003B)                                                                            \
    X(ITERATION_COUNT, 0x42003C)                                                                   \
    X(IV_COUNTER_NONCE, 0x42003D)                                                                  \
    X(J, 0x42003E)                                                                                 \
    X(KEY, 0x42003F)                                                                               \
    X(KEY_BLOCK, 0x420040)                                                                         \
    X(KEY_COMPRESSION_TYPE, 0x420041)                                                              \
    X(KEY_FORMAT_TYPE, 0x420042)                                                                   \
    X(KEY_MATERIAL, 0x420043)                                                                      \
    X(KEY_PART_IDENTIFIER, 0x420044)                                                               \
    X(KEY_VALUE, 0x420045)                                                                         \
    X(KEY_WRAPPING_DATA, 0x420046)                                                                 \
    X(KEY_WRAPPING_SPECIFICATION, 0x420047)                                                        \
    X(LAST_CHANGE_DATE, 0x420048)                                                                  \
    X(LEASE_TIME, 0x420049)                                                                        \
    X(LINK, 0x42004A)                                                                              \
    X(LINK_TYPE, 0x42004B)                                                                         \
    X(LINKED_OBJECT_IDENTIFIER, 0x42004C)                                                          \
    X(MAC_SIGNATURE, 0x42004D)                                                                     \
    X(MAC_SIGNATURE_KEY_INFORMATION, 0x42004E)                                                     \
    X(MAXIMUM_ITEMS, 0x42004F)                                                                     \
    X(MAXIMUM_RESPONSE_SIZE, 0x420050)                                                             \
    X(MESSAGE_EXTENSION, 0x420051)                                                                 \
    X(MODULUS, 0x420052)                                                                           \
    X(NAME, 0x420053)                                                                              \
    X(NAME_TYPE, 0x420054)                                                                         \
    X(NAME_VALUE, 0x420055)                                                                        \
    X(OBJECT_GROUP, 0x420056)                                                                      \
    X(OBJECT_TYPE, 0x420057)                                                                       \
    X(OFFSET, 0x420058)                                                                            \
    X(OPAQUE_DATA_TYPE, 0x420059)                                                                  \
    X(OPAQUE_DATA_VALUE, 0x42005A)                                                                 \
    X(OPAQUE_OBJECT, 0x42005B)                                                                     \
    X(OPERATION, 0x42005C)                                                                         \
    X(OPERATION_POLICY_NAME, 0x42005D)                                                             \
    X(P, 0x42005E)                                                                                 \
    X(PADDING_METHOD, 0x42005F)                                                                    \
    X(PRIME_EXPONENT_P, 0x420060)                                                                  \
    X(PRIME_EXPONENT_Q, 0x420061)                                                                  \
    X(PRIME_FIELD_SIZE, 0x420062)                                                                  \
    X(PRIVATE_EXPONENT, 0x420063)                                                                  \
    X(PRIVATE_KEY, 0x420064)                                                                       \
    X(PRIVATE_KEY_TEMPLATE_ATTRIBUTE, 0x420065)                                                    \
    X(PRIVATE_KEY_UNIQUE_IDENTIFIER, 0x420066)                                                     \
    X(PROCESS_START_DATE, 0x420067)                                                                \
    X(PROTECT_STOP_DATE, 0x420068)                                                                 \
    X(PROTOCOL_VERSION, 0x420069)                                                                  \
    X(PROTOCOL_VERSION_MAJOR, 0x42006A)                                                            \
    X(PROTOCOL_VERSION_MINOR, 0x42006B)                                                            \
    X(PUBLIC_EXPONENT, 0x42006C)                                                                   \
    X(PUBLIC_KEY, 0x42006D)                                                                        \
    X(PUBLIC_KEY_TEMPLATE_ATTRIBUTE, 0x42006E)                                                     \
    X(PUBLIC_KEY_UNIQUE_IDENTIFIER, 0x42006F)                                                      \
    X(PUT_FUNCTION, 0x420070)                                                                      \
    X(Q, 0x420071)                                                                                 \
    X(Q_STRING, 0x420072)                                                                          \
    X(QLENGTH, 0x420073)                                                                           \
    X(QUERY_FUNCTION, 0x420074)                                                                    \
    X(RECOMMENDED_CURVE, 0x420075)                                                                 \
    X(REPLACED_UNIQUE_IDENTIFIER, 0x420076)                                                        \
    X(REQUEST_HEADER, 0x420077)                                                                    \
    X(REQUEST_MESSAGE, 0x420078)                                                                   \
    X(REQUEST_PAYLOAD, 0x420079)                                                                   \
    X(RESPONSE_HEADER, 0x42007A)                                                                   \
    X(RESPONSE_MESSAGE, 0x42007B)                                                                  \
    X(RESPONSE_PAYLOAD, 0x42007C)                                                                  \
    X(RESULT_MESSAGE, 0x42007D)                                                                    \
    X(RESULT_REASON, 0x42007E)                                                                     \
    X(RESULT_STATUS, 0x42007F)                                                                     \
    X(REVOCATION_MESSAGE, 0x420080)                                                                \
    X(REVOCATION_REASON, 0x420081)                                                                 \
    X(REVOCATION_REASON_CODE, 0x420082)                                                            \
    X(KEY_ROLE_TYPE, 0x420083)                                                                     \
    X(SALT, 0x420084)                                                                              \
    X(SECRET_DATA, 0x420085)                                                                       \
    X(SECRET_DATA_TYPE, 0x420086)                                                                  \
    X(SERIAL_NUMBER, 0x420087)                                                                     \
    X(SERVER_INFORMATION, 0x420088)                                                                \
    X(SPLIT_KEY, 0x420089)                                                                         \
    X(SPLIT_KEY_METHOD, 0x42008A)                                                                  \
    X(SPLIT_KEY_PARTS, 0x42008B)                                                                   \
    X(SPLIT_KEY_THRESHOLD, 0x42008C)                                                               \
    X(STATE, 0x42008D)                                                                             \
    X(STORAGE_STATUS_MASK, 0x42008E)                                                               \
    X(SYMMETRIC_KEY, 0x42008F)                                                                     \
    X(TEMPLATE, 0x420090)                                                                          \
    X(TEMPLATE_ATTRIBUTE, 0x420091)                                                                \
    X(TIME_STAMP, 0x420092)                                                                        \
    X(UNIQUE_BATCH_ITEM_ID, 0x420093)                                                              \
    X(UNIQUE_IDENTIFIER, 0x420094)                                                                 \
    X(USAGE_LIMITS, 0x420095)                                                                      \
    X(USAGE_LIMITS_COUNT, 0x420096)                                                                \
    X(USAGE_LIMITS_TOTAL, 0x420097)                                                                \
    X(USAGE_LIMITS_UNIT, 0x420098)                                                                 \
    X(USERNAME, 0x420099)                                                                          \
    X(VALIDITY_DATE, 0x42009A)                                                                     \
    X(VALIDITY_INDICATOR, 0x42009B)                                                                \
    X(VENDOR_EXTENSION, 0x42009C)                                                                  \
    X(VENDOR_IDENTIFICATION, 0x42009D)                                                             \
    X(WRAPPING_METHOD, 0x42009E)                                                                   \
    X(X, 0x42009F)                                                                                 \
    X(Y, 0x4200A0)                                                                                 \
    X(PASSWORD, 0x4200A1)                                                                          \
    X(DEVICE_IDENTIFIER, 0x4200A2)                                                                 \
    X(ENCODING_OPTION, 0x4200A3)                                                                   \
    X(EXTENSION_INFORMATION, 0x4200A4)                                                             \
    X(EXTENSION_NAME, 0x4200A5)                                                                    \
    X(EXTENSION_TAG, 0x4200A6)                                                                     \
    X(EXTENSION_TYPE, 0x4200A7)                                                                    \
    X(FRESH, 0x4200A8)                                                                             \
    X(MACHINE_IDENTIFIER, 0x4200A9)                                                                \
    X(MEDIA_IDENTIFIER, 0x4200AA)                                                                  \
    X(NETWORK_IDENTIFIER, 0x4200AB)                                                                \
    X(OBJECT_GROUP_MEMBER, 0x4200AC)                                                               \
    X(CERTIFICATE_LENGTH, 0x4200AD)                                                                \
    X(DIGITAL_SIGNATURE_ALGORITHM, 0x4200AE)                                                       \
    X(CERTIFICATE_SERIAL_NUMBER, 0x4200AF)                                                         \
    X(DEVICE_SERIAL_NUMBER, 0x4200B0)                                                              \
    X(ISSUER_ALTERNATIVE_NAME, 0x4200B1)                                                           \
    X(ISSUER_DISTINGUISHED_NAME, 0x4200B2)                                                         \
    X(SUBJECT_ALTERNATIVE_NAME, 0x4200B3)                                                          \
    X(SUBJECT_DISTINGUISHED_NAME, 0x4200B4)                                                        \
    X(X_509_CERTIFICATE_IDENTIFIER, 0x4200B5)                                                      \
    X(X_509_CERTIFICATE_ISSUER, 0x4200B6)                                                          \
    X(X_509_CERTIFICATE_SUBJECT, 0x4200B7)                                                         \
    X(KEY_VALUE_LOCATION, 0x4200B8)                                                                \
    X(KEY_VALUE_LOCATION_VALUE, 0x4200B9)                                                          \
    X(KEY_VALUE_LOCATION_TYPE, 0x4200BA)                                                           \
    X(KEY_VALUE_PRESENT, 0x4200BB)                                                                 \
    X(ORIGINAL_CREATION_DATE, 0x4200BC)                                                            \
    X(PGP_KEY, 0x4200BD)                                                                           \
    X(PGP_KEY_VERSION, 0x4200BE)                                                                   \
    X(ALTERNATIVE_NAME, 0x4200BF)                                                                  \
    X(ALTERNATIVE_NAME_VALUE, 0x4200C0)                                                            \
    X(ALTERNATIVE_NAME_TYPE, 0x4200C1)                                                             \
    X(DATA, 0x4200C2)                                                                              \
    X(SIGNATURE_DATA, 0x4200C3)                                                                    \
    X(DATA_LENGTH, 0x4200C4)                                                                       \
    X(RANDOM_IV, 0x4200C5)                                                                         \
    X(MAC_DATA, 0x4200C6)                                                                          \
    X(ATTESTATION_TYPE, 0x4200C7)                                                                  \
    X(NONCE, 0x4200C8)                                                                             \
    X(NONCE_ID, 0x4200C9)                                                                          \
    X(NONCE_VALUE, 0x4200CA)                                                                       \
    X(ATTESTATION_MEASUREMENT, 0x4200CB)                                                           \
    X(ATTESTATION_ASSERTION, 0x4200CC)                                                             \
    X(IV_LENGTH, 0x4200CD)                                                                         \
    X(TAG_LENGTH, 0x4200CE)                                                                        \
    X(FIXED_FIELD_LENGTH, 0x4200CF)                                                                \
    X(COUNTER_LENGTH, 0x4200D0)                                                                    \
    X(INITIAL_COUNTER_VALUE, 0x4200D1)                                                             \
    X(INVOCATION_FIELD_LENGTH, 0x4200D2)                                                           \
    X(ATTESTATION_CAPABLE_INDICATOR, 0x4200D3)                                                     \
    X(OFFSET_ITEMS, 0x4200D4)                                                                      \
    X(LOCATED_ITEMS, 0x4200D5)

enum pgcmk_kmip_tag {

#define PGCMK_KMIP_TAG_ENUM(name, value) PGCMK_KMIP_TAG_##name = value,
    PGCMK_KMIP_TAGS(PGCMK_KMIP_TAG_ENUM)
#undef PGCMK_KMIP_TAG_ENUM
};

/* X(enum suffix, value, name): the Operation enumeration (PyKMIP enums.py Operation). */
#define PGCMK_KMIP_OPERATIONS(X)                                                                   \
    X(CREATE, 0x01, "Create")                                                                      \
    X(CREATE_KEY_PAIR, 0x02, "CreateKeyPair")                                                      \
    X(REGISTER, 0x03, "Register")                                                                  \
    X(REKEY, 0x04, "ReKey")                                                                        \
    X(LOCATE, 0x08, "Locate")                                                                      \
    X(CHECK, 0x09, "Check")                                                                        \
    X(GET, 0x0A, "Get")                                                                            \
    X(GET_ATTRIBUTES, 0x0B, "GetAttributes")                                                       \
    X(GET_ATTRIBUTE_LIST, 0x0C, "GetAttributeList")                                                \
    X(ADD_ATTRIBUTE, 0x0D, "AddAttribute")                                                         \
    X(MODIFY_ATTRIBUTE, 0x0E, "ModifyAttribute")                                                   \
    X(DELETE_ATTRIBUTE, 0x0F, "DeleteAttribute")                                                   \
    X(ACTIVATE, 0x12, "Activate")                                                                  \
    X(REVOKE, 0x13, "Revoke")                                                                      \
    X(DESTROY, 0x14, "Destroy")                                                                    \
    X(QUERY, 0x18, "Query")                                                                        \
    X(DISCOVER_VERSIONS, 0x1E, "DiscoverVersions")

enum pgcmk_kmip_operation {

#define PGCMK_KMIP_OP_ENUM(n, v, name) PGCMK_KMIP_OP_##n = v,
    PGCMK_KMIP_OPERATIONS(PGCMK_KMIP_OP_ENUM)
#undef PGCMK_KMIP_OP_ENUM
};

/* X(enum suffix, value, name): Result Reason of KMIP 1.x (PyKMIP enums.py ResultReason). */
#define PGCMK_KMIP_RESULT_REASONS(X)                                                               \
    X(ITEM_NOT_FOUND, 0x01, "Item Not Found")                                                      \
    X(RESPONSE_TOO_LARGE, 0x02, "Response Too Large")                                              \
    X(AUTHENTICATION_NOT_SUCCESSFUL, 0x03, "Authentication Not Successful")                        \
    X(INVALID_MESSAGE, 0x04, "Invalid Message")                                                    \
    X(OPERATION_NOT_SUPPORTED, 0x05, "Operation Not Supported")                                    \
    X(MISSING_DATA, 0x06, "Missing Data")                                                          \
    X(INVALID_FIELD, 0x07, "Invalid Field")                                                        \
    X(FEATURE_NOT_SUPPORTED, 0x08, "Feature Not Supported")                                        \
    X(OPERATION_CANCELED_BY_REQUESTER, 0x09, "Operation Canceled By Requester")                    \
    X(CRYPTOGRAPHIC_FAILURE, 0x0A, "Cryptographic Failure")                                        \
    X(ILLEGAL_OPERATION, 0x0B, "Illegal Operation")                                                \
    X(PERMISSION_DENIED, 0x0C, "Permission Denied")                                                \
    X(OBJECT_ARCHIVED, 0x0D, "Object Archived")                                                    \
    X(INDEX_OUT_OF_BOUNDS, 0x0E, "Index Out Of Bounds")                                            \
    X(APPLICATION_NAMESPACE_NOT_SUPPORTED, 0x0F, "Application Namespace Not Supported")            \
    X(KEY_FORMAT_TYPE_NOT_SUPPORTED, 0x10, "Key Format Type Not Supported")                        \
    X(KEY_COMPRESSION_TYPE_NOT_SUPPORTED, 0x11, "Key Compression Type Not Supported")              \
    X(GENERAL_FAILURE, 0x100, "General Failure")

enum pgcmk_kmip_result_reason {

#define PGCMK_KMIP_RR_ENUM(n, v, name) PGCMK_KMIP_RR_##n = v,
    PGCMK_KMIP_RESULT_REASONS(PGCMK_KMIP_RR_ENUM)
#undef PGCMK_KMIP_RR_ENUM
};

/* Why a decode or encode was refused: X(enum suffix, text). */
#define PGCMK_TTLV_REASONS(X)                                                                      \
    X(OK, "no error")                                                                              \
    X(TRUNCATED, "truncated item")                                                                 \
    X(UNKNOWN_TYPE, "unknown item type")                                                           \
    X(BAD_LENGTH, "length does not match the item type")                                           \
    X(BAD_PADDING, "padding runs past the end of the enclosing item")                              \
    X(NONZERO_PADDING, "non-zero padding byte")                                                    \
    X(BAD_BOOLEAN, "boolean value is neither 0 nor 1")                                             \
    X(BAD_UTF8, "text string is not valid UTF-8")                                                  \
    X(NUL_IN_TEXT, "text string contains a NUL byte")                                              \
    X(STRUCT_OVERRUN, "child item runs past the end of its structure")                             \
    X(TOO_DEEP, "nesting deeper than PGCMK_TTLV_MAX_DEPTH")                                        \
    X(TOO_LARGE, "message longer than PGCMK_TTLV_MAX_LEN")                                         \
    X(TRAILING, "bytes after the top-level item")                                                  \
    X(EMPTY, "no input")                                                                           \
    X(NO_SPACE, "output buffer too small")                                                         \
    X(BAD_TREE, "tree node inconsistent with its type")

enum pgcmk_ttlv_reason {

#define PGCMK_TTLV_R_ENUM(n, text) PGCMK_TTLV_R_##n,
    PGCMK_TTLV_REASONS(PGCMK_TTLV_R_ENUM)
#undef PGCMK_TTLV_R_ENUM
};

/* A refusal: the reason, the offset of the offending item (or byte) and the tag of that item
 * (0 when the header itself was cut short), plus one human line for logs and Result Message. */
struct pgcmk_ttlv_err {
    enum pgcmk_ttlv_reason reason;
    size_t offset;
    uint32_t tag;
    char message[160];
};

/* One item. Structures hold their children as a singly linked list (first/last, next). Text and
 * byte strings (and Big Integers, as two's-complement big-endian bytes) point into the arena;
 * text is also NUL-terminated there for convenience. */
struct pgcmk_ttlv {
    uint32_t tag;
    enum pgcmk_ttlv_type type;
    uint32_t len; /* value length without padding, as on the wire (structures: at decode only) */

    union {
        int32_t i32;          /* Integer */
        uint32_t u32;         /* Enumeration, Interval */
        int64_t i64;          /* Long Integer, Date-Time, Date-Time Extended */
        int boolean;          /* Boolean: 0 or 1 */
        const uint8_t *bytes; /* Text String, Byte String, Big Integer */
    } v;
    struct pgcmk_ttlv *first, *last; /* Structure children */
    struct pgcmk_ttlv *next;         /* next sibling */
};

struct pgcmk_ttlv_chunk;

/* The arena every node and string of one tree lives in. Embed by value: _init, then _release. */
struct pgcmk_ttlv_tree {
    struct pgcmk_ttlv *root;
    struct pgcmk_ttlv_chunk *chunks;
};

void pgcmk_ttlv_tree_init(struct pgcmk_ttlv_tree *t);
/* Wipes and frees every chunk (key material included); the tree is empty and reusable after. */
void pgcmk_ttlv_tree_release(struct pgcmk_ttlv_tree *t);

/* Decodes exactly one item filling buf[0..len) into t (released first). 0, or -1 with *err. */
int pgcmk_ttlv_decode(const uint8_t *buf, size_t len, struct pgcmk_ttlv_tree *t,
                      struct pgcmk_ttlv_err *err);
/* The encoded size of node (header and padding included), or 0 if it breaks a limit. */
size_t pgcmk_ttlv_encoded_len(const struct pgcmk_ttlv *node);
/* Encodes node into buf (cap bytes); *out_len gets the size. 0, or -1 with *err. */
int pgcmk_ttlv_encode(const struct pgcmk_ttlv *node, uint8_t *buf, size_t cap, size_t *out_len,
                      struct pgcmk_ttlv_err *err);

/* Builders: a new node in t's arena (abort on out of memory); append it with _append. */
struct pgcmk_ttlv *pgcmk_ttlv_new_struct(struct pgcmk_ttlv_tree *t, uint32_t tag);
struct pgcmk_ttlv *pgcmk_ttlv_new_int(struct pgcmk_ttlv_tree *t, uint32_t tag, int32_t v);
struct pgcmk_ttlv *pgcmk_ttlv_new_long(struct pgcmk_ttlv_tree *t, uint32_t tag, int64_t v);
struct pgcmk_ttlv *pgcmk_ttlv_new_enum(struct pgcmk_ttlv_tree *t, uint32_t tag, uint32_t v);
struct pgcmk_ttlv *pgcmk_ttlv_new_bool(struct pgcmk_ttlv_tree *t, uint32_t tag, int v);
struct pgcmk_ttlv *pgcmk_ttlv_new_datetime(struct pgcmk_ttlv_tree *t, uint32_t tag, int64_t v);
/* KMIP 2.0 Date-Time Extended: microseconds since the epoch. */
struct pgcmk_ttlv *pgcmk_ttlv_new_datetime_ext(struct pgcmk_ttlv_tree *t, uint32_t tag,
                                               int64_t usec);
struct pgcmk_ttlv *pgcmk_ttlv_new_interval(struct pgcmk_ttlv_tree *t, uint32_t tag, uint32_t v);
struct pgcmk_ttlv *pgcmk_ttlv_new_text(struct pgcmk_ttlv_tree *t, uint32_t tag, const char *s,
                                       size_t n);
struct pgcmk_ttlv *pgcmk_ttlv_new_bytes(struct pgcmk_ttlv_tree *t, uint32_t tag, const void *p,
                                        size_t n);
/* Big Integer: n must be a multiple of 8 (else NULL). */
struct pgcmk_ttlv *pgcmk_ttlv_new_bigint(struct pgcmk_ttlv_tree *t, uint32_t tag, const void *p,
                                         size_t n);
/* Appends child to parent (a Structure) and returns child. */
struct pgcmk_ttlv *pgcmk_ttlv_append(struct pgcmk_ttlv *parent, struct pgcmk_ttlv *child);

/* Getters: the first child of parent with tag (and, for _get_*, of the right type), else NULL
 * or -1. _get_long reads a Long Integer or a Date-Time; text is NUL-terminated in the arena. */
const struct pgcmk_ttlv *pgcmk_ttlv_find(const struct pgcmk_ttlv *parent, uint32_t tag);
/* The next sibling after node with the same tag, or NULL. */
const struct pgcmk_ttlv *pgcmk_ttlv_find_next(const struct pgcmk_ttlv *node);
int pgcmk_ttlv_get_int(const struct pgcmk_ttlv *parent, uint32_t tag, int32_t *out);
int pgcmk_ttlv_get_enum(const struct pgcmk_ttlv *parent, uint32_t tag, uint32_t *out);
int pgcmk_ttlv_get_long(const struct pgcmk_ttlv *parent, uint32_t tag, int64_t *out);
int pgcmk_ttlv_get_text(const struct pgcmk_ttlv *parent, uint32_t tag, const char **s, size_t *n);
int pgcmk_ttlv_get_bytes(const struct pgcmk_ttlv *parent, uint32_t tag, const uint8_t **p,
                         size_t *n);

/* Names: "REQUEST_MESSAGE", "Structure", "Register", "Item Not Found", the reason text; NULL
 * (names) when unknown. */
const char *pgcmk_kmip_tag_name(uint32_t tag);
const char *pgcmk_ttlv_type_name(enum pgcmk_ttlv_type type);
const char *pgcmk_kmip_operation_name(uint32_t op);
const char *pgcmk_kmip_result_reason_name(uint32_t rr);
const char *pgcmk_ttlv_reason_text(enum pgcmk_ttlv_reason r);

/* A readable dump, one item a line, two spaces per level: `TAG Type = value`. Byte strings show
 * only their length (key material never reaches a log). Returns the length it would need, as
 * snprintf does; buf is always NUL-terminated when cap > 0. */
size_t pgcmk_ttlv_dump(const struct pgcmk_ttlv *node, char *buf, size_t cap);

#endif
