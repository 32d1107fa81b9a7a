/* term: see term.h. */
#include "term.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int colour = -1; /* -1: not decided yet */

static bool dumb(void)
{
    const char *t = getenv("TERM");
    return t && !strcmp(t, "dumb");
}

bool term_live(void)
{
    return isatty(STDOUT_FILENO) && !dumb() && !getenv("BATON_PLAIN");
}

const char *term_paint(term_paint_t p)
{
    static const char *const codes[] = {
        [PAINT_OFF] = "\033[0m",   [PAINT_OK] = "\033[32m", [PAINT_FAIL] = "\033[1;31m",
        [PAINT_WARN] = "\033[33m", [PAINT_DIM] = "\033[2m", [PAINT_BOLD] = "\033[1m",
    };
    if (colour < 0) {
        const char *no = getenv("NO_COLOR");
        colour = isatty(STDOUT_FILENO) && !dumb() && !(no && *no);
    }
    return colour ? codes[p] : "";
}
