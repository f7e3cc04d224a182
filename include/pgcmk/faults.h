/* faults.h - faults a test injects on purpose (POST /emulator/faults): a vault that does not
 * answer its data plane, so that an outage can be told from a revocation. In memory only. */
#ifndef PGCMK_FAULTS_H
#define PGCMK_FAULTS_H

/* Modes of a vault fault. */
enum pgcmk_fault_mode { PGCMK_FAULT_NONE = 0, PGCMK_FAULT_UNAVAILABLE = 1 };

/* Sets (or, with NONE, clears) the fault of a vault (case-insensitive name). -1 when the table
 * is full. */
int pgcmk_fault_set_vault(const char *vault, enum pgcmk_fault_mode mode);
/* The fault of a vault; NONE when there is none. */
enum pgcmk_fault_mode pgcmk_fault_vault(const char *vault);
/* Clears every fault. */
void pgcmk_fault_clear(void);
/* The number of faults set (cheap: lets hot paths skip the look-up). */
int pgcmk_fault_count(void);

#endif
