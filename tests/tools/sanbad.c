/* sanbad: undefined behaviour on purpose (a signed overflow), built with UBSan by
 * tests/cluster/ground.sh to show that a sanitizer report anywhere, in a test node's unit or on
 * the host, reaches tests/run-tests. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    (void)argv;
    int x = INT_MAX - 1 + argc; /* INT_MAX with no argument */
    x += atoi("1");             /* overflow, not known at compile time */
    printf("%d\n", x);
    return 0;
}
