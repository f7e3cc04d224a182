/* monitor.c - the monitor module's entry points: its routes and .NET ticks. Resource Health is
 * in health.c, the Activity Log in activity.c and its $filter parser in filter.c. */
#include <stdint.h>

#include "pgcmk/monitor.h"

#include "monitor/internal.h"

#define TICKS_AT_EPOCH INT64_C(621355968000000000)

int64_t
pgcmk_monitor_ticks(int64_t ms)
{
    return TICKS_AT_EPOCH + ms * 10000;
}

void
pgcmk_monitor_init(void)
{
    monitor_health_init();
    monitor_activity_init();
}
