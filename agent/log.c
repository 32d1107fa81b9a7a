/* log: see log.h. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include <systemd/sd-journal.h>

void log_event(const char *service, const char *rollout_id, const char *step, int priority,
               const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (getenv("JOURNAL_STREAM") || getenv("INVOCATION_ID")) {
        sd_journal_send("MESSAGE=%s", msg, "PRIORITY=%d", priority, "SYSLOG_IDENTIFIER=baton-agent",
                        "BATON_SERVICE=%s", service ? service : "", "BATON_ROLLOUT_ID=%s",
                        rollout_id ? rollout_id : "", "BATON_STEP=%s", step ? step : "", NULL);
    } else {
        fprintf(stderr, "baton-agent: %s%s%s%s%s\n", service ? service : "", service ? " " : "",
                step ? step : "", service || step ? ": " : "", msg);
    }
}
