/* unit: start, stop and inspect a systemd unit over D-Bus (sd-bus), the way systemctl does.
 *
 * A job is queued with StartUnit/StopUnit and then waited for: the JobRemoved signal for that
 * job's path, with a deadline, never a sleep. Afterwards ActiveState is checked, and a failed
 * start is explained with the unit's Result ("start of gamesrv.service failed: exit-code"). */
#ifndef BATON_UNIT_H
#define BATON_UNIT_H

#include <stdint.h>

#include <systemd/sd-bus.h>

#include "err.h"

/* Connects to the system manager: its private socket when we are root and it exists (no
 * dbus-daemon needed), the system bus otherwise. */
int unit_bus_open(sd_bus **ret_bus, baton_err_t *err);

/* Starts or stops `unit` and waits up to timeout_ms for the job; tick runs while waiting. */
int unit_start(sd_bus *bus, const char *unit, uint64_t timeout_ms, void (*tick)(void *),
               void *userdata, baton_err_t *err);
int unit_stop(sd_bus *bus, const char *unit, uint64_t timeout_ms, void (*tick)(void *),
              void *userdata, baton_err_t *err);

/* A string property of the unit's org.freedesktop.systemd1.Unit interface ("ActiveState",
 * "LoadState"), or of Service ("Result" with iface "Service"). *ret is the caller's. */
int unit_property(sd_bus *bus, const char *unit, const char *iface, const char *property,
                  char **ret, baton_err_t *err);

/* A uint32 property ("MainPID", "NRestarts" of iface "Service"). */
int unit_property_u32(sd_bus *bus, const char *unit, const char *iface, const char *property,
                      uint32_t *ret, baton_err_t *err);
/* Why the unit's service failed, for a message: its Result and how its main process ended
 * ("signal (killed by SIGSEGV, core dumped)", "exit-code (status 1)"); "?" when unreadable. */
void unit_why_failed(sd_bus *bus, const char *unit, char *buf, size_t len);

/* `systemctl daemon-reload`: the manager reads every unit file and drop-in again; its reply
 * comes once it has. */
int unit_daemon_reload(sd_bus *bus, baton_err_t *err);

/* The unit's journal lines (at most `max`) since `since_usec` (the time baton started it; 0:
 * since it last left "inactive"), as `systemctl status` shows them: what the service printed, and
 * what systemd said of it ("Main process exited, code=exited, status=1/FAILURE"). "HH:MM:SS
 * IDENT[PID]: MESSAGE" each, oldest first; the lines are the caller's. More than `max`: the first
 * three (a bad flag is said there, before a usage text), "... (N lines) ...", and the last ones (a
 * crash is said there). A journal that cannot be read gives no lines, not an error. */
#define UNIT_LOG_LINES 10
int unit_journal_tail(sd_bus *bus, const char *unit, uint64_t since_usec, size_t max,
                      char ***ret_lines, size_t *ret_n);
/* CLOCK_REALTIME in µs, the journal's clock. */
uint64_t realtime_usec(void);

/* Checks that `unit` exists (LoadState "loaded") and returns its ActiveState (the caller's). */
int unit_check_loaded(sd_bus *bus, const char *unit, char **ret_active, baton_err_t *err);
#endif
