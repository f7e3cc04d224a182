/* clock.h - the one virtual clock behind every time-based rule (DESIGN.md section 8).
 *
 * It follows real time by default: now = wall + offset. Frozen, it stands still at `frozen_at`.
 * Advancing or setting it wakes the listeners (purges, expiries, periodic checks) at once. */
#ifndef PGCMK_CLOCK_H
#define PGCMK_CLOCK_H

#include <stdint.h>

#include "pgcmk/core.h"

void pgcmk_clock_init(void);
int64_t pgcmk_clock_now(void); /* ms since the epoch, virtual */
int pgcmk_clock_frozen(void);
void pgcmk_clock_advance(int64_t ms);
/* Sets the virtual time; frozen clocks stay frozen at the new time. */
void pgcmk_clock_set(int64_t ms);
void pgcmk_clock_freeze(void);
void pgcmk_clock_resume(void);
/* The offset from the wall clock (for persistence across restarts) and its restore. */
int64_t pgcmk_clock_offset(void);
void pgcmk_clock_restore(int64_t offset_ms, int frozen, int64_t frozen_at_ms);
int64_t pgcmk_clock_frozen_at(void);

/* Called (from the thread that changed the clock) after every set/advance/freeze/resume, and,
 * once the tick is started, every second of wall time while the clock runs (from the tick's
 * thread), so rules that fall due as time passes fire without anybody touching the clock. A
 * listener tells a change from a tick by pgcmk_clock_generation(), which only changes bump. */
typedef void (*pgcmk_clock_listener_fn)(int64_t now_ms, void *arg);
int pgcmk_clock_listen(pgcmk_clock_listener_fn fn, void *arg) PGCMK_WUR;
int pgcmk_clock_tick_start(int64_t interval_ms) PGCMK_WUR;
void pgcmk_clock_tick_stop(void); /* joins the tick's thread; safe when it never started */

/* A counter bumped by every change, so pollers can tell that time jumped. */
unsigned long pgcmk_clock_generation(void);

#endif
