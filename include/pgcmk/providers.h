/* providers.h - the resource providers: each registers its rows in the ARM provider table. */
#ifndef PGCMK_PROVIDERS_H
#define PGCMK_PROVIDERS_H

/* Registers every provider's resource types (call before the server starts). */
void pgcmk_providers_init(void);
struct pgcmk_cfg;
/* Applies the configuration and starts the providers' background work (the reconciler). */
void pgcmk_providers_configure(const struct pgcmk_cfg *cfg);

#endif
