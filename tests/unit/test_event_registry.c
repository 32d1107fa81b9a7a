/* Unit tests for the event registry (coordinator/events/event_registry.c): its check of an event,
 * and that what is published from it has not drifted: doc/events.md's table names every event and
 * every field of it and nothing else, and doc/events.schema.json is the registry's schema.
 * `test_event_registry --write doc/events.schema.json` writes the schema anew (make
 * events-schema). Run from the source tree's top. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "event_registry.h"

#define SCHEMA_FILE "doc/events.schema.json"
#define TABLE_FILE "doc/events.md"

static void test_entries(void **state)
{
    (void)state;
    size_t n = 0;
    const event_def_t *defs = event_defs(&n);
    assert_int_equal(n, EVENT_COUNT);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(defs[i].id, i);
        assert_ptr_equal(event_def(defs[i].name), &defs[i]);
        assert_non_null(defs[i].doc);
        assert_non_null(defs[i].text);
        for (size_t k = 0; defs[i].fields[k].name; k++) {
            assert_non_null(defs[i].fields[k].doc);
            assert_true(defs[i].fields[k].types != 0);
            /* A field of its own never shadows a common one, nor appears twice. */
            for (size_t c = 0; event_common_fields[c].name; c++)
                assert_string_not_equal(defs[i].fields[k].name, event_common_fields[c].name);
            for (size_t j = k + 1; defs[i].fields[j].name; j++)
                assert_string_not_equal(defs[i].fields[k].name, defs[i].fields[j].name);
        }
    }
    assert_null(event_def("nonesuch"));
    assert_null(event_def(NULL));
    /* The progress of a step is shown, never journaled; the steps are. */
    assert_false(event_def("progress")->journaled);
    assert_true(event_def("step")->journaled);
}

static json_t *stamped(const char *text)
{
    json_t *e = json_loads(text, 0, NULL);
    assert_non_null(e);
    event_stamp(e, "r20261202T120000-abcdef");
    return e;
}

static void expect(json_t *e, int want, const char *why_part)
{
    char why[256] = "";
    assert_int_equal(event_check(e, true, why, sizeof(why)), want);
    if (why_part) {
        if (!strstr(why, why_part))
            fail_msg("'%s' does not say '%s'", why, why_part);
    }
    json_decref(e);
}

static void test_check(void **state)
{
    (void)state;
    expect(stamped("{\"event\":\"halt\",\"message\":\"on_failure halt\"}"), 0, NULL);
    expect(stamped("{\"event\":\"plan\",\"batches\":[],\"max_unavailable\":null,\"maintenance\":"
                   "false,\"on_failure\":\"halt\",\"max_failures\":0,\"databases\":[],"
                   "\"message\":\"\"}"),
           0, NULL);
    expect(stamped("{\"event\":\"halted\",\"message\":\"x\"}"), -EINVAL,
           "event 'halted' is not in the registry");
    expect(stamped("{\"event\":\"halt\",\"message\":\"x\",\"why\":\"y\"}"), -EINVAL,
           "a field the registry lacks: 'why'");
    expect(stamped("{\"event\":\"halt\",\"message\":7}"), -EINVAL,
           "field 'message' has the wrong type");
    expect(stamped("{\"event\":\"halt\"}"), -EINVAL, "lacks its field 'message'");
    /* As emitted, an event carries the common fields; as built, not yet. */
    json_t *e = json_pack("{s:s, s:s}", "event", "halt", "message", "x");
    char why[256];
    assert_int_equal(event_check(e, false, why, sizeof(why)), 0);
    assert_int_equal(event_check(e, true, why, sizeof(why)), -EINVAL);
    assert_non_null(strstr(why, "lacks its field 'schema'"));
    json_decref(e);
    e = json_pack("[s]", "halt");
    assert_int_equal(event_check(e, false, why, sizeof(why)), -EINVAL);
    json_decref(e);
    e = stamped("{\"event\":\"halt\",\"message\":\"x\"}");
    assert_int_equal(json_integer_value(json_object_get(e, "schema")), EVENTS_SCHEMA);
    const char *at = json_string_value(json_object_get(e, "at"));
    assert_non_null(at);
    assert_int_equal(strlen(at), strlen("2026-12-02T12:00:00.000Z"));
    assert_int_equal(at[strlen(at) - 1], 'Z');
    json_decref(e);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        fail_msg("%s: %s (run from the source tree's top)", path, strerror(errno));
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        fwrite(chunk, 1, n, m);
    fclose(f);
    fclose(m);
    return buf;
}

/* The table row of an event: the line "| `a`, `b` | ..." whose first cell names it. */
static const char *row_of(const char *doc, const char *name, char *buf, size_t len)
{
    char want[64];
    snprintf(want, sizeof(want), "`%s`", name);
    for (const char *p = strstr(doc, "\n| `"); p; p = strstr(p + 1, "\n| `")) {
        const char *line = p + 1, *end = strchr(line, '\n');
        size_t n = end ? (size_t)(end - line) : strlen(line);
        const char *cell_end = strstr(line + 2, " | ");
        if (!cell_end || cell_end > line + n)
            continue;
        const char *hit = strstr(line, want);
        if (hit && hit < cell_end) {
            snprintf(buf, len, "%.*s", (int)(n < len ? n : len - 1), line);
            return buf;
        }
    }
    return NULL;
}

static void test_table_in_the_docs(void **state)
{
    (void)state;
    char *doc = slurp(TABLE_FILE);
    size_t n = 0;
    const event_def_t *defs = event_defs(&n);
    static char row[8192];
    for (size_t i = 0; i < n; i++) {
        if (!row_of(doc, defs[i].name, row, sizeof(row)))
            fail_msg("%s: no row for the event '%s'", TABLE_FILE, defs[i].name);
        /* Field names count where the row lists them, not inside another's "(...)". */
        char *top = row;
        int depth = 0;
        for (char *r = row; *r; r++) {
            depth += *r == '(' ? 1 : *r == ')' && depth > 0 ? -1 : 0;
            if (depth == 0 && *r != ')')
                *top++ = *r;
        }
        *top = '\0';
        for (size_t k = 0; defs[i].fields[k].name; k++) {
            char want[96];
            snprintf(want, sizeof(want), "`%s`", defs[i].fields[k].name);
            if (!strstr(row, want))
                fail_msg("%s: the row of '%s' does not name its field %s", TABLE_FILE, defs[i].name,
                         want);
        }
    }
    for (size_t c = 0; event_common_fields[c].name; c++) {
        char want[96];
        snprintf(want, sizeof(want), "`%s`", event_common_fields[c].name);
        if (!strstr(doc, want))
            fail_msg("%s does not name the common field %s", TABLE_FILE, want);
    }
    /* Every event a row names is one of the registry. */
    for (const char *p = strstr(doc, "\n| `"); p; p = strstr(p + 1, "\n| `")) {
        /* The names before a "(" (what follows says which command prints it). */
        const char *cell_end = strstr(p + 3, " | "), *paren = strchr(p + 3, '(');
        if (paren && cell_end && paren < cell_end)
            cell_end = paren;
        for (const char *q = strchr(p + 1, '`'); q && cell_end && q < cell_end;
             q = strchr(q + 1, '`')) {
            char name[64];
            if (sscanf(q, "`%63[a-z_]`", name) == 1 && !event_def(name))
                fail_msg("%s has a row for '%s', which the registry lacks", TABLE_FILE, name);
            q = strchr(q + 1, '`'); /* past its closing quote */
            if (!q)
                break;
        }
    }
    free(doc);
}

static void test_schema_file(void **state)
{
    (void)state;
    json_error_t jerr;
    json_t *file = json_load_file(SCHEMA_FILE, 0, &jerr);
    if (!file)
        fail_msg("%s: %s (line %d)", SCHEMA_FILE, jerr.text, jerr.line);
    json_t *now = event_schema_json();
    if (!json_equal(file, now))
        fail_msg("%s is not the registry's schema: make events-schema", SCHEMA_FILE);
    json_decref(file);
    json_decref(now);
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--write")) {
        json_t *schema = event_schema_json();
        int r = json_dump_file(schema, argv[2], JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        json_decref(schema);
        return r == 0 ? 0 : 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_entries),
        cmocka_unit_test(test_check),
        cmocka_unit_test(test_table_in_the_docs),
        cmocka_unit_test(test_schema_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
