/* providers.h - the resource providers: each registers its rows in the ARM provider table. */
#ifndef PGCMK_PROVIDERS_H
#define PGCMK_PROVIDERS_H

/* Registers every provider's resource types (call before the server starts). */
void pgcmk_providers_init(void);

#endif
