/* internal.h - what the ARM engine's files share and nobody else sees. */
#ifndef PGCMK_ARM_INTERNAL_H
#define PGCMK_ARM_INTERNAL_H

#include "pgcmk/arm.h"
#include "pgcmk/store.h"

void pgcmk_arm_lro_routes(void);
void pgcmk_arm_rg_routes(void);
void pgcmk_arm_meta_routes(void);
void pgcmk_arm_generic_routes(void);
void pgcmk_arm_rg_resume_deletes(void);
/* Deletes every resource of a group, calling each type's on_delete hook (inside a tx), each
 * resource in its own savepoint. 0 all deleted; 1 when some could not be (they are rolled back
 * alone and kept, the others stay deleted; err holds the first failure); -1 store error. */
int pgcmk_arm_delete_group_resources(struct pgcmk_db *db, const char *sub, const char *rg,
                                     struct pgcmk_err *err);

#endif
