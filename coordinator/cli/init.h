/* init: `baton init [FILE]`, a commented starter rollout file for an operator's first rollout
 * (as `nomad job init`): every key the loader knows, the required ones with placeholders, the
 * optional ones commented out at their defaults. */
#ifndef BATON_INIT_H
#define BATON_INIT_H

#include <stdio.h>

#include "err.h"

#define INIT_DEFAULT_FILE "rollout.yml"

/* The starter file's text. */
const char *init_template(void);

/* Writes the starter file to `path`, mode 0644, never over an existing file: 0, -EEXIST
 * ("rollout.yml: exists, left as it is") or another negative errno, in err. */
int init_write(const char *path, baton_err_t *err);

/* What to fill in next, for a file written at `path`, to f. */
void init_next_steps(FILE *f, const char *path);

#endif
