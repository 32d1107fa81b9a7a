/* term: what the coordinator's terminal can show. Decided once per process from stdout and
 * the environment, the way most command-line tools do: colour only on a terminal, never with
 * NO_COLOR set (https://no-color.org) or TERM=dumb; the live view (cursor movement) only on a
 * terminal that is not dumb, and not with BATON_PLAIN. */
#ifndef BATON_TERM_H
#define BATON_TERM_H

#include <stdbool.h>

typedef enum term_paint {
    PAINT_OFF = 0, /* back to plain */
    PAINT_OK,      /* green: done, ok */
    PAINT_FAIL,    /* bold red: FAIL, ROLLBACK FAILED, LOST */
    PAINT_WARN,    /* yellow: rolled back, interrupted, paused */
    PAINT_DIM,     /* faint: waiting, not started */
    PAINT_BOLD,
} term_paint_t;

/* True when stdout is a terminal that can redraw in place (the live view). */
bool term_live(void);
/* The escape sequence for `p`, or "" when colour is off. */
const char *term_paint(term_paint_t p);

#endif
