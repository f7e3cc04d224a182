/* kv_stub.c - stand-ins for h-kv's registration hooks until src/vaultapi/kv.c and transit.c
 * replace this file: no kv or transit row yet. */
#include "pgcmk/vaultapi.h"

void
pgcmk_hv_kv_register(void)
{
}

void
pgcmk_hv_transit_register(void)
{
}
