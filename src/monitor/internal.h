/* internal.h - what the files of src/monitor/ share (not part of the public face).
 *
 *   monitor.c   pgcmk_monitor_init, .NET ticks
 *   health.c    Resource Health: pgcmk_health_set/_forget and the availabilityStatuses routes
 *   activity.c  the Activity Log: pgcmk_activity_add, the request observer, the batched writer,
 *               $select and the eventtypes/management/values route
 *   filter.c    the $filter parser, a pure function (pgcmk_activity_filter_parse_buf) */
#ifndef PGCMK_MONITOR_INTERNAL_H
#define PGCMK_MONITOR_INTERNAL_H

/* Each adds its routes (health first, as the coverage table lists them). */
void monitor_health_init(void);
void monitor_activity_init(void);

#endif
