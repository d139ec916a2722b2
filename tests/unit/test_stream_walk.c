/* The registry-free stream walker: hop's golden stream, every record kind
 * in synthetic streams, the vmdesc found from the tail, and one-line
 * errors with offsets for truncation, bit flips and absurd lengths. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vmstate/stream-walk.h"
#include "tests/unit/bytebuf.h"

#define GOLDEN "tests/fixtures/golden/testset-0.1.0.stream"

static void header(struct buf *b)
{
    put_be32(b, STREAM_MAGIC);
    put_be32(b, STREAM_VERSION);
}

static void config(struct buf *b, const char *machine)
{
    put_u8(b, STREAM_CONFIGURATION);
    put_be32(b, (uint32_t)strlen(machine));
    put(b, machine, strlen(machine));
}

/* A section whose body is `body` (the test's body callback knows sizes
 * from the first body byte: n, then n bytes). */
static void section(struct buf *b, uint8_t type, uint32_t id, const char *idstr,
                    uint32_t inst, uint32_t ver, uint8_t bodylen)
{
    put_u8(b, type);
    put_be32(b, id);
    if (type == STREAM_SECTION_START || type == STREAM_SECTION_FULL) {
        put_str(b, idstr);
        put_be32(b, inst);
        put_be32(b, ver);
    }
    put_u8(b, bodylen);
    for (uint8_t i = 0; i < bodylen; i++) {
        put_u8(b, 0x7e); /* bytes that look like footers */
    }
    put_u8(b, STREAM_SECTION_FOOTER);
    put_be32(b, id);
}

static void command(struct buf *b, uint16_t cmd, const void *data, uint16_t len)
{
    put_u8(b, STREAM_COMMAND);
    put_be16(b, cmd);
    put_be16(b, len);
    put(b, data, len);
}

static void vmdesc(struct buf *b, const char *json)
{
    put_u8(b, STREAM_VMDESCRIPTION);
    put_be32(b, (uint32_t)strlen(json));
    put(b, json, strlen(json));
}

struct log {
    int n;
    char lines[64][128];
    struct stream_walk_config cfg;
    bool have_cfg;
    bool sized_bodies; /* body callback knows the test's body layout */
};

static bool log_config(void *ctx, const struct stream_walk_config *cfg,
                       Error **errp)
{
    struct log *l = ctx;
    l->cfg = *cfg;
    l->have_cfg = true;
    return true;
}

static int log_body(void *ctx, const struct stream_walk_record *rec,
                    const uint8_t *body, size_t avail, size_t *used,
                    Error **errp)
{
    struct log *l = ctx;
    if (!l->sized_bodies) {
        return STREAM_BODY_UNKNOWN;
    }
    if (avail < 1 || body[0] >= avail) {
        error_setg(errp, "body at offset %llu runs past the data",
                   (unsigned long long)rec->body_offset);
        return STREAM_BODY_ERROR;
    }
    *used = 1 + body[0];
    return STREAM_BODY_DONE;
}

static bool log_record(void *ctx, const struct stream_walk_record *rec,
                       Error **errp)
{
    struct log *l = ctx;
    assert_true(l->n < 64);
    if (rec->type == STREAM_COMMAND) {
        snprintf(l->lines[l->n++], 128, "%llu %d COMMAND %s %u",
                 (unsigned long long)rec->offset, rec->depth,
                 stream_command_name(rec->cmd), (unsigned)rec->size);
    } else if (rec->idstr) {
        snprintf(l->lines[l->n++], 128, "%llu %d %s %u %s %u %u %u",
                 (unsigned long long)rec->offset, rec->depth,
                 stream_record_name(rec->type), rec->section_id, rec->idstr,
                 rec->instance_id, rec->version_id, (unsigned)rec->size);
    } else {
        snprintf(l->lines[l->n++], 128, "%llu %d %s %u",
                 (unsigned long long)rec->offset, rec->depth,
                 stream_record_name(rec->type), (unsigned)rec->size);
    }
    return true;
}

static const struct stream_walk_ops log_ops = {
    .config = log_config,
    .body = log_body,
    .record = log_record,
};

static struct buf read_golden(void)
{
    struct buf b = { 0 };
    FILE *fp = fopen(GOLDEN, "rb");
    assert_non_null(fp);
    uint8_t chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0) {
        put(&b, chunk, n);
    }
    fclose(fp);
    return b;
}

static void test_golden_stream(void **state)
{
    struct buf g = read_golden();
    struct log l = { 0 };
    struct stream_walk_result res;
    Error *err = NULL;
    if (!stream_walk(g.d, g.len, &log_ops, &l, &res, &err)) {
        fail_msg("%s", error_get_pretty(err));
    }
    assert_true(res.complete);
    assert_true(res.has_vmdesc);
    assert_true(l.have_cfg);
    assert_string_equal(l.cfg.machine, "hop-test-1");
    /* config, testdev 0, testdev 1, testled, EOF, vmdesc */
    assert_int_equal(l.n, 6);
    assert_non_null(strstr(l.lines[1], "FULL 0 testdev 0 3"));
    assert_non_null(strstr(l.lines[2], "FULL 1 testdev 1 3"));
    assert_non_null(strstr(l.lines[3], "FULL 2 testled 0 1"));
    assert_non_null(strstr(l.lines[4], "EOF"));
    assert_non_null(strstr(l.lines[5], "VMDESC"));
    assert_int_equal(res.end, g.len);

    uint64_t off;
    const char *json;
    size_t jlen;
    assert_true(stream_find_vmdesc(g.d, g.len, &off, &json, &jlen));
    assert_int_equal(off, res.vmdesc_offset);
    assert_int_equal(json[0], '{');
    assert_int_equal(off + 5 + jlen, g.len);
    free(g.d);
}

static struct buf every_record_stream(void)
{
    struct buf b = { 0 };
    header(&b);
    config(&b, "pc-test");
    /* configuration subsections: page bits, capabilities, uuid */
    put_u8(&b, STREAM_SUBSECTION);
    put_str(&b, "configuration/target-page-bits");
    put_be32(&b, 1);
    put_be32(&b, 12);
    put_u8(&b, STREAM_SUBSECTION);
    put_str(&b, "configuration/capabilities");
    put_be32(&b, 1);
    put_be32(&b, 1);
    put_str(&b, "x-ignore-shared");
    put_u8(&b, STREAM_SUBSECTION);
    put_str(&b, "configuration/uuid");
    put_be32(&b, 1);
    put(&b, "0123456789abcdef", 16);
    command(&b, STREAM_CMD_OPEN_RETURN_PATH, NULL, 0);
    command(&b, STREAM_CMD_PING, "\0\0\0\1", 4);
    section(&b, STREAM_SECTION_START, 2, "ram", 0, 4, 3);
    section(&b, STREAM_SECTION_PART, 2, NULL, 0, 0, 0);
    section(&b, STREAM_SECTION_END, 2, NULL, 0, 0, 2);
    /* A PACKAGED blob: LISTEN, one device, RUN. */
    struct buf blob = { 0 };
    command(&blob, STREAM_CMD_POSTCOPY_LISTEN, NULL, 0);
    section(&blob, STREAM_SECTION_FULL, 7, "serial", 0, 3, 4);
    command(&blob, STREAM_CMD_POSTCOPY_RUN, NULL, 0);
    uint8_t n[4] = { 0, 0, 0, (uint8_t)blob.len };
    command(&b, STREAM_CMD_PACKAGED, n, 4);
    put(&b, blob.d, blob.len);
    free(blob.d);
    section(&b, STREAM_SECTION_FULL, 9, "0000:00:01.1/ide", 1, 3, 1);
    put_u8(&b, STREAM_EOF);
    vmdesc(&b, "{\"page_size\": 4096, \"devices\": []}");
    return b;
}

static void test_every_record_kind(void **state)
{
    struct buf b = every_record_stream();
    for (int sized = 0; sized < 2; sized++) {
        struct log l = { .sized_bodies = sized };
        struct stream_walk_result res;
        Error *err = NULL;
        if (!stream_walk(b.d, b.len, &log_ops, &l, &res, &err)) {
            fail_msg("%s", error_get_pretty(err));
        }
        assert_true(res.complete && res.has_vmdesc);
        assert_true(l.cfg.has_page_bits);
        assert_int_equal(l.cfg.page_bits, 12);
        assert_int_equal(l.cfg.ncaps, 1);
        assert_string_equal(l.cfg.caps[0], "x-ignore-shared");
        assert_true(l.cfg.has_uuid);
        assert_memory_equal(l.cfg.uuid, "0123456789abcdef", 16);
        const char *want[] = {
            "CONFIG",
            "COMMAND OPEN_RETURN_PATH 5",
            "COMMAND PING 9",
            "0 START 2 ram 0 4",
            "0 PART 2 ram 0 4",
            "0 END 2 ram 0 4",
            "0 COMMAND PACKAGED",
            "1 COMMAND POSTCOPY_LISTEN",
            "1 FULL 7 serial 0 3",
            "1 COMMAND POSTCOPY_RUN",
            "0 FULL 9 0000:00:01.1/ide 1 3",
            "EOF",
            "VMDESC",
        };
        assert_int_equal(l.n, sizeof(want) / sizeof(want[0]));
        for (int i = 0; i < l.n; i++) {
            if (!strstr(l.lines[i], want[i])) {
                fail_msg("record %d: '%s', expected '%s'", i, l.lines[i],
                         want[i]);
            }
        }
    }
    free(b.d);
}

/* Walks data and expects an error mentioning words (and an offset). */
static void expect_error_as(const uint8_t *data, size_t len, const char *words,
                            bool sized)
{
    uint8_t *copy = malloc(len ? len : 1); /* exact size for ASan */
    memcpy(copy, data, len);
    struct log l = { .sized_bodies = sized };
    Error *err = NULL;
    assert_false(stream_walk(copy, len, &log_ops, &l, NULL, &err));
    assert_non_null(err);
    const char *msg = error_get_pretty(err);
    if ((words && !strstr(msg, words)) || strchr(msg, '\n')) {
        fail_msg("'%s' does not mention '%s'", msg, words);
    }
    error_free(err);
    free(copy);
}

static void expect_error(const uint8_t *data, size_t len, const char *words)
{
    expect_error_as(data, len, words, true);
}

static void test_truncation_everywhere(void **state)
{
    struct buf b = every_record_stream();
    size_t vmdesc_at = b.len - 5 -
        strlen("{\"page_size\": 4096, "
               "\"devices\": []}");
    for (size_t cut = 0; cut < b.len; cut++) {
        if (cut == vmdesc_at) {
            continue; /* a stream without vmdesc is complete */
        }
        expect_error(b.d, cut, "offset");
    }
    struct buf g = read_golden();
    for (size_t cut = 0; cut < g.len; cut++) {
        uint8_t *copy = malloc(cut ? cut : 1);
        memcpy(copy, g.d, cut);
        Error *err = NULL;
        struct stream_walk_result res;
        bool ok = stream_walk(copy, cut, NULL, NULL, &res, &err);
        /* Only the cut right after EOF leaves a whole stream. */
        if (ok) {
            assert_int_equal(cut, res.vmdesc_offset ? 0 : cut);
            assert_false(res.has_vmdesc);
            assert_int_equal(g.d[cut - 1], STREAM_EOF);
        } else {
            assert_non_null(strstr(error_get_pretty(err), "offset"));
            error_free(err);
        }
        free(copy);
    }
    free(g.d);
    free(b.d);
}

static void test_header_rejections(void **state)
{
    struct buf b = every_record_stream();
    b.d[0] ^= 0x01;
    expect_error(b.d, b.len, "not a migration stream");
    b.d[0] ^= 0x01;
    b.d[7] = 2;
    expect_error(b.d, b.len, "version 2");
    b.d[7] = 3;
    /* An absurd machine name length. */
    b.d[9] = 0x7f;
    expect_error(b.d, b.len, "machine name");
    free(b.d);
}

static void test_bit_flips_in_headers_never_crash(void **state)
{
    struct buf g = read_golden();
    /* Flip every bit of every byte outside the vmdesc JSON text: the walk
     * either succeeds (a flip inside a body it cannot see) or fails with
     * a one-line error. */
    uint64_t off;
    const char *json;
    size_t jlen;
    assert_true(stream_find_vmdesc(g.d, g.len, &off, &json, &jlen));
    int failures = 0;
    for (size_t i = 0; i < off + 5; i++) {
        for (int bit = 0; bit < 8; bit++) {
            g.d[i] ^= (uint8_t)(1u << bit);
            Error *err = NULL;
            if (!stream_walk(g.d, g.len, NULL, NULL, NULL, &err)) {
                assert_null(strchr(error_get_pretty(err), '\n'));
                error_free(err);
                failures++;
            }
            g.d[i] ^= (uint8_t)(1u << bit);
        }
    }
    assert_true(failures > 0);
    free(g.d);
}

static void test_record_rejections(void **state)
{
    struct buf b = { 0 };
    header(&b);
    config(&b, "m");
    size_t base = b.len;

    /* Unknown record type. */
    put_u8(&b, 0x42);
    expect_error(b.d, b.len, "0x42");
    /* A subsection marker at top level. */
    b.len = base;
    section(&b, STREAM_SECTION_FULL, 5, "dev", 0, 1, 0);
    put_u8(&b, STREAM_SUBSECTION);
    expect_error(b.d, b.len, "SUBSECTION");
    /* PART for a section no START opened. */
    b.len = base;
    section(&b, STREAM_SECTION_PART, 5, NULL, 0, 0, 0);
    expect_error(b.d, b.len, "no START");
    /* Footer naming another id. */
    b.len = base;
    section(&b, STREAM_SECTION_FULL, 5, "dev", 0, 1, 0);
    b.d[b.len - 1] = 6;
    put_u8(&b, STREAM_EOF);
    expect_error(b.d, b.len, "footer");
    /* A body that is longer than its footer position says. */
    b.len = base;
    section(&b, STREAM_SECTION_FULL, 5, "dev", 0, 1, 2);
    b.d[base + 1 + 4 + 4 + 8] = 1; /* body claims 1 byte, has 2 */
    b.d[base + 1 + 4 + 4 + 8 + 2] = 0x55;
    put_u8(&b, STREAM_EOF);
    expect_error(b.d, b.len, "expected the footer");
    /* Section id used twice. */
    b.len = base;
    section(&b, STREAM_SECTION_FULL, 5, "a", 0, 1, 0);
    section(&b, STREAM_SECTION_FULL, 5, "b", 0, 1, 0);
    expect_error(b.d, b.len, "reuses section id 5");
    /* Empty section name. */
    b.len = base;
    section(&b, STREAM_SECTION_FULL, 5, "", 0, 1, 0);
    expect_error(b.d, b.len, "empty");
    /* Commands: invalid, unknown, bad lengths, nested PACKAGED. */
    b.len = base;
    command(&b, 0, NULL, 0);
    expect_error(b.d, b.len, "expected a command");
    b.len = base;
    command(&b, 99, NULL, 0);
    expect_error(b.d, b.len, "expected a command");
    b.len = base;
    command(&b, STREAM_CMD_PING, "\0\0", 2);
    expect_error(b.d, b.len, "PING");
    b.len = base;
    command(&b, STREAM_CMD_POSTCOPY_ADVISE, "12345678", 8);
    expect_error(b.d, b.len, "0 or 16");
    b.len = base;
    command(&b, STREAM_CMD_PACKAGED, "\xff\xff\xff\xff", 4);
    expect_error(b.d, b.len, "PACKAGED blob");
    b.len = base;
    command(&b, STREAM_CMD_PACKAGED, "\0\0\0\x09", 4);
    command(&b, STREAM_CMD_PACKAGED, "\0\0\0\0", 4);
    put_u8(&b, STREAM_EOF);
    expect_error(b.d, b.len, "inside a PACKAGED");
    /* Trailing data after the vmdesc; a vmdesc that is not JSON; an
     * absurd vmdesc length; something other than vmdesc after EOF. */
    b.len = base;
    put_u8(&b, STREAM_EOF);
    vmdesc(&b, "{}");
    put_u8(&b, 0);
    expect_error(b.d, b.len, "after the vmdesc");
    b.len = base;
    put_u8(&b, STREAM_EOF);
    vmdesc(&b, "{nope");
    expect_error(b.d, b.len, "JSON");
    b.len = base;
    put_u8(&b, STREAM_EOF);
    put_u8(&b, STREAM_VMDESCRIPTION);
    put_be32(&b, 0xfffffff0u);
    expect_error(b.d, b.len, "claims");
    b.len = base;
    put_u8(&b, STREAM_EOF);
    put_u8(&b, 0x01);
    expect_error(b.d, b.len, "vmdesc trailer");
    /* Unknown configuration subsection. */
    b.len = 0;
    header(&b);
    config(&b, "m");
    put_u8(&b, STREAM_SUBSECTION);
    put_str(&b, "configuration/new-thing");
    put_be32(&b, 1);
    expect_error(b.d, b.len, "configuration/new-thing");
    /* Absurd capability count. */
    b.len = 0;
    header(&b);
    config(&b, "m");
    put_u8(&b, STREAM_SUBSECTION);
    put_str(&b, "configuration/capabilities");
    put_be32(&b, 1);
    put_be32(&b, 100000);
    expect_error(b.d, b.len, "capabilities");
    free(b.d);
}

static void test_unknown_bodies_find_their_footer(void **state)
{
    /* Body bytes that hold 0x7e and even the id, but no record after. */
    struct buf b = { 0 };
    header(&b);
    put_u8(&b, STREAM_SECTION_FULL);
    put_be32(&b, 3);
    put_str(&b, "dev");
    put_be32(&b, 0);
    put_be32(&b, 1);
    uint8_t tricky[] = { 0x7e, 0, 0, 0, 3, 0x99, 0x7e, 0x7e };
    put(&b, tricky, sizeof(tricky));
    put_u8(&b, STREAM_SECTION_FOOTER);
    put_be32(&b, 3);
    put_u8(&b, STREAM_EOF);
    struct log l = { 0 };
    struct stream_walk_result res;
    Error *err = NULL;
    if (!stream_walk(b.d, b.len, &log_ops, &l, &res, &err)) {
        fail_msg("%s", error_get_pretty(err));
    }
    assert_false(res.has_config);
    assert_false(res.has_vmdesc);
    char want[64];
    snprintf(want, sizeof(want), "FULL 3 dev 0 1 %zu",
             1 + 4 + 4 + 8 + sizeof(tricky) + 5);
    assert_non_null(strstr(l.lines[0], want));
    /* Without any footer: a clear error. */
    b.len -= 6;
    put_u8(&b, STREAM_EOF);
    expect_error_as(b.d, b.len, "no footer", false);
    free(b.d);
}

static void test_find_vmdesc_with_awkward_lengths(void **state)
{
    /* A JSON of 0x0600 + 6 bytes: its length holds 0x06 bytes. */
    size_t jl = 0x0606;
    char *json = malloc(jl + 1);
    memset(json, ' ', jl);
    json[0] = '{';
    json[jl - 1] = '}';
    json[jl] = '\0';
    struct buf b = { 0 };
    header(&b);
    put_u8(&b, STREAM_EOF);
    vmdesc(&b, json);
    uint64_t off;
    const char *j;
    size_t len;
    assert_true(stream_find_vmdesc(b.d, b.len, &off, &j, &len));
    assert_int_equal(off, 9);
    assert_int_equal(len, jl);
    /* Trailing bytes: no trailer is claimed. */
    put_u8(&b, 0);
    assert_false(stream_find_vmdesc(b.d, b.len, &off, &j, &len));
    free(json);
    free(b.d);
}

/* Data that ends exactly at an unmapped page, as a mapped file whose
 * size is a multiple of the page size does: one byte read past the end
 * faults. */
static uint8_t *at_page_end(const void *data, size_t len, void **map,
                            size_t *maplen)
{
    size_t ps = (size_t)sysconf(_SC_PAGESIZE);
    size_t pages = (len + ps - 1) / ps;
    *maplen = (pages + 1) * ps;
    *map = mmap(NULL, *maplen, PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(*map != MAP_FAILED);
    uint8_t *guard = (uint8_t *)*map + pages * ps;
    assert_int_equal(mprotect(guard, ps, PROT_NONE), 0);
    memcpy(guard - len, data, len);
    return guard - len;
}

static void test_find_vmdesc_stays_inside_the_data(void **state)
{
    /* EOF, then 0x06 and a zero length: the last five bytes. */
    struct buf b = { 0 };
    header(&b);
    section(&b, STREAM_SECTION_FULL, 0, "pad", 0, 1, 4);
    put_u8(&b, STREAM_EOF);
    put_u8(&b, STREAM_VMDESCRIPTION);
    put_be32(&b, 0);
    void *map;
    size_t maplen;
    uint8_t *d = at_page_end(b.d, b.len, &map, &maplen);
    uint64_t off;
    const char *j;
    size_t len;
    assert_false(stream_find_vmdesc(d, b.len, &off, &j, &len));
    expect_error(d, b.len, "vmdesc");
    /* The same at every length of the tail. */
    for (size_t cut = 1; cut <= b.len; cut++) {
        assert_false(stream_find_vmdesc(d + b.len - cut, cut, &off, &j, &len));
    }
    /* One byte of JSON: still not a trailer, still in bounds. */
    munmap(map, maplen);
    b.d[b.len - 1] = 1;
    put_u8(&b, '{');
    d = at_page_end(b.d, b.len, &map, &maplen);
    assert_false(stream_find_vmdesc(d, b.len, &off, &j, &len));
    munmap(map, maplen);
    free(b.d);
}

/* Bodies of section(): a length byte, then that many bytes. */
static int sized_body(void *ctx, const struct stream_walk_record *rec,
                      const uint8_t *body, size_t avail, size_t *used,
                      Error **errp)
{
    assert_true(avail >= 1 && body[0] < avail);
    *used = 1 + body[0];
    return STREAM_BODY_DONE;
}

/* Counts records and checks each PART got its START's name. */
static bool count_record(void *ctx, const struct stream_walk_record *rec,
                         Error **errp)
{
    size_t *n = ctx;
    if (rec->type == STREAM_SECTION_PART) {
        char want[32];
        snprintf(want, sizeof(want), "s%u", rec->section_id ^ 0x5a5a5a5au);
        assert_string_equal(rec->idstr, want);
    }
    (*n)++;
    return true;
}

static void test_many_sections_are_found_by_id(void **state)
{
    /* 200000 live sections, then a PART for each, in reverse: a walker
     * that scans its section list per record takes hours. */
    enum { N = 200000 };
    alarm(120); /* seconds; it takes about one */
    struct buf b = { 0 };
    header(&b);
    char name[32];
    for (uint32_t i = 0; i < N; i++) {
        uint32_t id = i ^ 0x5a5a5a5au;
        snprintf(name, sizeof(name), "s%u", i);
        section(&b, STREAM_SECTION_START, id, name, 0, 1, 0);
    }
    for (uint32_t i = N; i-- > 0;) {
        section(&b, STREAM_SECTION_PART, i ^ 0x5a5a5a5au, NULL, 0, 0, 0);
    }
    put_u8(&b, STREAM_EOF);
    static const struct stream_walk_ops ops = { .body = sized_body,
                                                .record = count_record };
    size_t n = 0;
    struct stream_walk_result res;
    Error *err = NULL;
    bool ok = stream_walk(b.d, b.len, &ops, &n, &res, &err);
    if (!ok) {
        fail_msg("%s", error_get_pretty(err));
    }
    assert_int_equal(n, 2 * N + 1);
    /* A reused id is still refused. */
    b.len -= 1;
    section(&b, STREAM_SECTION_START, 7 ^ 0x5a5a5a5au, "again", 0, 1, 0);
    put_u8(&b, STREAM_EOF);
    assert_false(stream_walk(b.d, b.len, &ops, &n, &res, &err));
    assert_non_null(strstr(error_get_pretty(err), "reuses section id"));
    error_free(err);
    free(b.d);
    alarm(0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_stream),
        cmocka_unit_test(test_every_record_kind),
        cmocka_unit_test(test_truncation_everywhere),
        cmocka_unit_test(test_header_rejections),
        cmocka_unit_test(test_bit_flips_in_headers_never_crash),
        cmocka_unit_test(test_record_rejections),
        cmocka_unit_test(test_unknown_bodies_find_their_footer),
        cmocka_unit_test(test_find_vmdesc_with_awkward_lengths),
        cmocka_unit_test(test_find_vmdesc_stays_inside_the_data),
        cmocka_unit_test(test_many_sections_are_found_by_id),
    };
    return cmocka_run_group_tests_name("stream walk", tests, NULL, NULL);
}
