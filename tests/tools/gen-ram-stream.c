/* Writes a hop stream with RAM for tests and benchmarks, through hop's own
 * stream writer: the test device set plus a "ram" live handler with two
 * blocks whose pages follow a fixed recipe.
 *
 *   gen-ram-stream OUT MIB [--second-pass] [--expect DIR]
 *
 * pc.ram has MIB MiB, "/rom@etc/x" 64 KiB.  Pass one sends every page
 * (every 4th page zero, the others pseudo-random).  --second-pass then
 * resends some pages: a few bytes changed (as XBZRLE deltas), pages that
 * became zero, zero pages that got data.  --expect DIR writes each block's
 * final contents to DIR/<name> (named as hop inspect --extract-ram names
 * them), computed from the recipe, not from the stream. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/inspect.h"
#include "ram/ram-format.h"
#include "tests/unit/testdev.h"
#include "vmstate/stream.h"

#define PS RAM_PAGE_SIZE
#define CHUNK_PAGES 16384 /* pages per PART section */

struct gen_block {
    const char *name;
    uint64_t pages;
};

struct gen {
    struct gen_block blocks[2];
    bool second_pass;
    int pass;     /* 1, 2, then done */
    size_t block; /* iteration position */
    uint64_t page;
    uint8_t buf[PS];
    uint8_t old[PS];
    uint8_t delta[PS];
};

/* Page contents after pass one. */
static bool page_gen1(uint64_t idx, size_t block, uint8_t *p)
{
    if (idx % 4 == 0) {
        memset(p, 0, PS);
        return false;
    }
    uint64_t x = (idx + 1) * 0x9e3779b97f4a7c15ull + block * 7919;
    for (size_t i = 0; i < PS; i += 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        memcpy(p + i, &x, 8);
    }
    return true;
}

enum change { SAME, TWEAKED, ZEROED, FILLED };

static enum change page_change(uint64_t idx)
{
    switch (idx % 16) {
    case 1:
        return TWEAKED;
    case 2:
        return ZEROED;
    case 4:
        return FILLED;
    default:
        return SAME;
    }
}

/* Final contents (after pass two when second is set). */
static void page_final(uint64_t idx, size_t block, bool second, uint8_t *p)
{
    page_gen1(idx, block, p);
    if (!second) {
        return;
    }
    switch (page_change(idx)) {
    case TWEAKED:
        for (int i = 100; i < 108; i++) {
            p[i] ^= 0xff;
        }
        p[PS - 1] ^= 0x01;
        break;
    case ZEROED:
        memset(p, 0, PS);
        break;
    case FILLED:
        memset(p, 0xc3, PS);
        p[0] = (uint8_t)idx;
        break;
    case SAME:
        break;
    }
}

static size_t put_uleb(uint8_t *d, size_t v)
{
    if (v < 0x80) {
        d[0] = (uint8_t)v;
        return 1;
    }
    d[0] = (uint8_t)((v & 0x7f) | 0x80);
    d[1] = (uint8_t)(v >> 7);
    return 2;
}

/* XBZRLE delta of new against old (runs below 0x3fff, as pages are). */
static size_t xbzrle_encode(const uint8_t *old, const uint8_t *new, uint8_t *d)
{
    size_t i = 0, n = 0;
    while (i < PS) {
        size_t z = 0, nz = 0;
        while (i + z < PS && old[i + z] == new[i + z]) {
            z++;
        }
        if (i + z == PS) {
            break;
        }
        while (i + z + nz < PS && old[i + z + nz] != new[i + z + nz]) {
            nz++;
        }
        n += put_uleb(d + n, z);
        n += put_uleb(d + n, nz);
        memcpy(d + n, new + i + z, nz);
        n += nz;
        i += z + nz;
    }
    return n;
}

static void put_page_header(Channel *f, struct gen *g, uint64_t idx,
                            unsigned flags, bool *named)
{
    if (*named) {
        flags |= RAM_FLAG_CONTINUE;
    }
    chan_put_be64(f, idx * PS | flags);
    if (!*named) {
        chan_put_counted_string(f, g->blocks[g->block].name);
        *named = true;
    }
}

static bool gen_setup(Channel *f, void *opaque, Error **errp)
{
    struct gen *g = opaque;
    uint64_t total = 0;
    for (size_t b = 0; b < 2; b++) {
        total += g->blocks[b].pages * PS;
    }
    chan_put_be64(f, total | RAM_FLAG_MEM_SIZE);
    for (size_t b = 0; b < 2; b++) {
        chan_put_counted_string(f, g->blocks[b].name);
        chan_put_be64(f, g->blocks[b].pages * PS);
    }
    chan_put_be64(f, RAM_FLAG_EOS);
    return chan_check(f, errp);
}

/* One record for the current page of the current pass; false if this
 * pass sends nothing for it. */
static void send_page(Channel *f, struct gen *g, bool *named)
{
    uint64_t idx = g->page;
    size_t b = g->block;
    if (g->pass == 1) {
        if (page_gen1(idx, b, g->buf)) {
            put_page_header(f, g, idx, RAM_FLAG_PAGE, named);
            chan_put_buffer(f, g->buf, PS);
        } else {
            put_page_header(f, g, idx, RAM_FLAG_ZERO, named);
            chan_put_u8(f, 0);
        }
        return;
    }
    enum change c = page_change(idx);
    if (c == SAME || (c != FILLED && idx % 4 == 0)) {
        return;
    }
    page_final(idx, b, true, g->buf);
    if (c == ZEROED) {
        put_page_header(f, g, idx, RAM_FLAG_ZERO, named);
        chan_put_u8(f, 0);
    } else if (c == FILLED) {
        put_page_header(f, g, idx, RAM_FLAG_PAGE, named);
        chan_put_buffer(f, g->buf, PS);
    } else {
        page_gen1(idx, b, g->old);
        size_t n = xbzrle_encode(g->old, g->buf, g->delta);
        put_page_header(f, g, idx, RAM_FLAG_XBZRLE, named);
        chan_put_u8(f, RAM_XBZRLE_ENCODING);
        chan_put_be16(f, (uint16_t)n);
        chan_put_buffer(f, g->delta, n);
    }
}

static int gen_iterate(Channel *f, void *opaque, Error **errp)
{
    struct gen *g = opaque;
    bool named = false;
    for (int n = 0; n < CHUNK_PAGES && g->pass <= (g->second_pass ? 2 : 1);
         n++) {
        send_page(f, g, &named);
        if (++g->page == g->blocks[g->block].pages) {
            g->page = 0;
            named = false;
            if (++g->block == 2) {
                g->block = 0;
                g->pass++;
            }
        }
    }
    chan_put_be64(f, RAM_FLAG_EOS);
    if (!chan_check(f, errp)) {
        return -1;
    }
    return g->pass > (g->second_pass ? 2 : 1);
}

static bool gen_complete(Channel *f, void *opaque, Error **errp)
{
    chan_put_be64(f, RAM_FLAG_EOS);
    return chan_check(f, errp);
}

static const struct live_handler_ops gen_ops = {
    .save_setup = gen_setup,
    .save_iterate = gen_iterate,
    .save_complete = gen_complete,
};

static int write_expect(struct gen *g, const char *dir)
{
    if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
        perror(dir);
        return 1;
    }
    for (size_t b = 0; b < 2; b++) {
        char name[800], path[1200];
        inspect_ram_file_name(g->blocks[b].name, name, sizeof(name));
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        FILE *fp = fopen(path, "wb");
        if (!fp) {
            perror(path);
            return 1;
        }
        for (uint64_t i = 0; i < g->blocks[b].pages; i++) {
            page_final(i, b, g->second_pass, g->buf);
            fwrite(g->buf, 1, PS, fp);
        }
        if (fclose(fp) != 0) {
            perror(path);
            return 1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr,
                "usage: gen-ram-stream OUT MIB [--second-pass] "
                "[--expect DIR]\n");
        return 2;
    }
    struct gen *g = calloc(1, sizeof(*g));
    const char *expect = NULL;
    for (int i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--second-pass") == 0) {
            g->second_pass = true;
        } else if (strcmp(argv[i], "--expect") == 0 && i + 1 < argc) {
            expect = argv[++i];
        } else {
            fprintf(stderr, "gen-ram-stream: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    g->blocks[0] =
        (struct gen_block){ "pc.ram", strtoull(argv[2], NULL, 0) * 256 };
    g->blocks[1] = (struct gen_block){ "/rom@etc/x", 16 };
    g->pass = 1;

    struct testset set;
    testset_init(&set);
    testset_fill(&set);
    struct section_registry *reg = section_registry_new(TESTSET_MACHINE);
    Error *err = NULL;
    section_register_live(reg, "ram", 0, RAM_SECTION_VERSION, &gen_ops, g,
                          &err);
    testset_register(&set, reg);
    int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        perror(argv[1]);
        return 1;
    }
    Channel *f = chan_new_fd(fd, true, true, argv[1]);
    bool ok = !err && stream_save_setup(reg, f, &err);
    int r = 0;
    while (ok && (r = stream_save_iterate(reg, f, &err)) == 0) {
    }
    ok = ok && r > 0 && stream_save_complete(reg, f, &err);
    stream_save_cleanup(reg);
    ok = chan_close(f, ok ? &err : NULL) && ok;
    section_registry_free(reg);
    if (!ok) {
        error_report_err(err);
        return 1;
    }
    int rc = expect ? write_expect(g, expect) : 0;
    free(g);
    return rc;
}
