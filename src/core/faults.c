/* faults.c - the injected-fault table (see faults.h). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <strings.h>

#include "pgcmk/core.h"
#include "pgcmk/faults.h"

#define FAULTS_MAX 64

static pthread_mutex_t faults_mu = PTHREAD_MUTEX_INITIALIZER;

static struct {
    char vault[32];
    enum pgcmk_fault_mode mode;
} faults[FAULTS_MAX];

static atomic_int faults_n;

int
pgcmk_fault_set_vault(const char *vault, enum pgcmk_fault_mode mode)
{
    int free_slot = -1, rc = 0;

    pthread_mutex_lock(&faults_mu);
    for (int i = 0; i < FAULTS_MAX; i++) {
        if (faults[i].mode != PGCMK_FAULT_NONE && strcasecmp(faults[i].vault, vault) == 0) {
            faults[i].mode = mode;
            if (mode == PGCMK_FAULT_NONE)
                atomic_fetch_sub(&faults_n, 1);
            goto out;
        }
        if (faults[i].mode == PGCMK_FAULT_NONE && free_slot < 0)
            free_slot = i;
    }
    if (mode == PGCMK_FAULT_NONE)
        goto out;
    if (free_slot < 0) {
        rc = -1;
        goto out;
    }
    snprintf(faults[free_slot].vault, sizeof(faults[free_slot].vault), "%s", vault);
    faults[free_slot].mode = mode;
    atomic_fetch_add(&faults_n, 1);
out:
    pthread_mutex_unlock(&faults_mu);
    return rc;
}

enum pgcmk_fault_mode
pgcmk_fault_vault(const char *vault)
{
    enum pgcmk_fault_mode m = PGCMK_FAULT_NONE;

    if (atomic_load(&faults_n) == 0 || !vault)
        return m;
    pthread_mutex_lock(&faults_mu);
    for (int i = 0; i < FAULTS_MAX; i++)
        if (faults[i].mode != PGCMK_FAULT_NONE && strcasecmp(faults[i].vault, vault) == 0)
            m = faults[i].mode;
    pthread_mutex_unlock(&faults_mu);
    return m;
}

void
pgcmk_fault_clear(void)
{
    pthread_mutex_lock(&faults_mu);
    for (int i = 0; i < FAULTS_MAX; i++)
        faults[i].mode = PGCMK_FAULT_NONE;
    atomic_store(&faults_n, 0);
    pthread_mutex_unlock(&faults_mu);
}

int
pgcmk_fault_count(void)
{
    return atomic_load(&faults_n);
}
