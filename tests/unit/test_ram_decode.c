/* The RAM section reader and the XBZRLE decoder: well-formed bodies, every
 * rejection, truncation at every byte, and the channel source. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ram/ram-decode.h"
#include "vmstate/channel.h"
#include "tests/unit/bytebuf.h"

#define PS RAM_PAGE_SIZE

/* ---- a byte builder ---- */

/* ---- XBZRLE, with an encoder written from the format description ---- */

static void uleb(struct buf *b, size_t v)
{
    if (v < 0x80) {
        put_u8(b, (uint8_t)v);
    } else {
        put_u8(b, (uint8_t)(v & 0x7f) | 0x80);
        put_u8(b, (uint8_t)(v >> 7));
    }
}

static void encode(struct buf *b, const uint8_t *old, const uint8_t *new)
{
    size_t i = 0;
    while (i < PS) {
        size_t z = 0;
        while (i + z < PS && old[i + z] == new[i + z]) {
            z++;
        }
        if (i + z == PS) {
            break; /* trailing unchanged bytes are not sent */
        }
        size_t nz = 0;
        while (i + z + nz < PS && old[i + z + nz] != new[i + z + nz]) {
            nz++;
        }
        uleb(b, z);
        uleb(b, nz);
        put(b, new + i + z, nz);
        i += z + nz;
    }
}

static void test_xbzrle_roundtrip_random_pages(void **state)
{
    srand(7);
    for (int round = 0; round < 200; round++) {
        uint8_t old[PS], new[PS], page[PS];
        for (size_t i = 0; i < PS; i++) {
            old[i] = (uint8_t)rand();
        }
        memcpy(new, old, PS);
        int changes = rand() % 40;
        for (int c = 0; c < changes; c++) {
            size_t at = (size_t)rand() % PS;
            size_t n = 1 + (size_t)rand() % (round % 3 == 0 ? 300 : 8);
            for (size_t k = 0; k < n && at + k < PS; k++) {
                new[at + k] = (uint8_t)(old[at + k] + 1);
            }
        }
        struct buf d = { 0 };
        encode(&d, old, new);
        memcpy(page, old, PS);
        Error *err = NULL;
        assert_true(xbzrle_decode(d.d, d.len, page, PS, &err));
        assert_memory_equal(page, new, PS);
        free(d.d);
    }
}

static void test_xbzrle_known_bytes(void **state)
{
    uint8_t page[PS] = { 0 };
    /* 0 unchanged, 2 new bytes; 200 unchanged (two-byte ULEB), 1 new. */
    const uint8_t delta[] = { 0x00, 0x02, 'h', 'i', 0xc8, 0x01, 0x01, '!' };
    Error *err = NULL;
    assert_true(xbzrle_decode(delta, sizeof(delta), page, PS, &err));
    assert_int_equal(page[0], 'h');
    assert_int_equal(page[1], 'i');
    assert_int_equal(page[2 + 200], '!');
    assert_int_equal(page[2], 0);
    assert_int_equal(page[203], 0);
    /* An empty delta changes nothing. */
    assert_true(xbzrle_decode(delta, 0, page, PS, &err));
}

static void expect_bad_delta(const uint8_t *delta, size_t len,
                             const char *words)
{
    uint8_t page[PS], before[PS];
    memset(page, 0x5a, PS);
    memcpy(before, page, PS);
    Error *err = NULL;
    assert_false(xbzrle_decode(delta, len, page, PS, &err));
    assert_non_null(err);
    if (!strstr(error_get_pretty(err), words)) {
        fail_msg("'%s' does not mention '%s'", error_get_pretty(err), words);
    }
    error_free(err);
    assert_memory_equal(page, before, PS); /* untouched */
}

static void test_xbzrle_rejects_malformed(void **state)
{
    /* Unchanged run past the page: 0x3fff > 4096? no: 0x1001 = 4097. */
    const uint8_t past_page[] = { 0x81, 0x20, 0x01, 0xaa };
    expect_bad_delta(past_page, sizeof(past_page), "past the page");
    /* Changed run longer than the delta. */
    const uint8_t past_delta[] = { 0x00, 0x05, 1, 2 };
    expect_bad_delta(past_delta, sizeof(past_delta), "past the delta");
    /* Changed run of zero. */
    const uint8_t empty_nz[] = { 0x01, 0x00 };
    expect_bad_delta(empty_nz, sizeof(empty_nz), "changed-run");
    /* Zero unchanged run after the first pair. */
    const uint8_t zero_z[] = { 0x00, 0x01, 0xaa, 0x00, 0x01, 0xbb };
    expect_bad_delta(zero_z, sizeof(zero_z), "empty unchanged run");
    /* A lone run length at the end. */
    const uint8_t lone[] = { 0x00, 0x01, 0xaa, 0x05 };
    expect_bad_delta(lone, sizeof(lone), "unchanged-run");
    /* A ULEB128 with a third byte. */
    const uint8_t long_uleb[] = { 0x80, 0x80, 0x01, 0x01, 0xaa };
    expect_bad_delta(long_uleb, sizeof(long_uleb), "unchanged-run");
    /* A valid first pair, then the second one runs past the page. */
    const uint8_t second[] = { 0x00, 0x01, 0xaa, 0xff, 0x1f, 0x01, 0xbb };
    expect_bad_delta(second, sizeof(second), "past the page");
}

/* ---- section bodies ---- */

struct seen {
    size_t nblocks;
    char names[8][256];
    uint64_t lengths[8];
    size_t npages;
    struct ram_page pages[64];
    uint8_t first_bytes[64];
};

static bool seen_block(void *ctx, size_t i, const struct ram_block_info *b,
                       Error **errp)
{
    struct seen *s = ctx;
    assert_int_equal(i, s->nblocks);
    strcpy(s->names[i], b->name);
    s->lengths[i] = b->length;
    s->nblocks++;
    return true;
}

static bool seen_page(void *ctx, const struct ram_page *p, Error **errp)
{
    struct seen *s = ctx;
    s->first_bytes[s->npages] = p->data ? p->data[0] : p->fill;
    s->pages[s->npages++] = *p;
    s->pages[s->npages - 1].data = NULL; /* not valid after the call */
    return true;
}

static const struct ram_decode_ops seen_ops = {
    .block = seen_block,
    .page = seen_page,
};

/* START body: two blocks, then EOS. */
static void start_body(struct buf *b)
{
    put_be64(b, (0x4000 + 0x2000) | RAM_FLAG_MEM_SIZE);
    put_str(b, "pc.ram");
    put_be64(b, 0x4000);
    put_str(b, "/rom@etc/x");
    put_be64(b, 0x2000);
    put_be64(b, RAM_FLAG_EOS);
}

/* PART body: a page of 0x11, a zero page (CONTINUE), a page of the other
 * block, an XBZRLE page, a compressed page, EOS. */
static void part_body(struct buf *b)
{
    uint8_t page[PS];
    memset(page, 0x11, PS);
    put_be64(b, 0x1000 | RAM_FLAG_PAGE);
    put_str(b, "pc.ram");
    put(b, page, PS);
    put_be64(b, 0x2000 | RAM_FLAG_ZERO | RAM_FLAG_CONTINUE);
    put_u8(b, 0);
    put_be64(b, 0x1000 | RAM_FLAG_PAGE);
    put_str(b, "/rom@etc/x");
    memset(page, 0x22, PS);
    put(b, page, PS);
    put_be64(b, 0x1000 | RAM_FLAG_XBZRLE | RAM_FLAG_CONTINUE);
    put_u8(b, RAM_XBZRLE_ENCODING);
    put_be16(b, 3);
    put_u8(b, 0x00);
    put_u8(b, 0x01);
    put_u8(b, 0x33);
    put_be64(b, 0x3000 | RAM_FLAG_COMPRESS_PAGE);
    put_str(b, "pc.ram");
    put_be32(b, 5);
    put(b, "zzzzz", 5);
    put_be64(b, RAM_FLAG_EOS);
}

static void test_section_bodies(void **state)
{
    struct buf s = { 0 }, p = { 0 };
    start_body(&s);
    part_body(&p);
    struct seen seen = { 0 };
    struct ram_decoder d;
    ram_decoder_init(&d, &seen_ops, &seen);
    struct ram_reader r;
    struct ram_mem_source src;
    Error *err = NULL;

    ram_reader_init_mem(&r, &src, s.d, s.len, 100);
    assert_true(ram_decode_section(&d, &r, &err));
    assert_int_equal(src.pos, s.len);
    assert_int_equal(seen.nblocks, 2);
    assert_string_equal(seen.names[1], "/rom@etc/x");
    assert_int_equal(seen.lengths[0], 0x4000);

    ram_reader_init_mem(&r, &src, p.d, p.len, 1000);
    assert_true(ram_decode_section(&d, &r, &err));
    assert_int_equal(src.pos, p.len);
    assert_int_equal(seen.npages, 5);
    assert_int_equal(seen.pages[0].kind, RAM_PAGE_NORMAL);
    assert_int_equal(seen.pages[0].block, 0);
    assert_int_equal(seen.pages[0].offset, 0x1000);
    assert_int_equal(seen.pages[0].at, 1000);
    assert_int_equal(seen.pages[0].size, 8 + 7 + PS);
    assert_int_equal(seen.first_bytes[0], 0x11);
    assert_int_equal(seen.pages[1].kind, RAM_PAGE_ZERO);
    assert_int_equal(seen.pages[1].block, 0);
    assert_int_equal(seen.pages[1].offset, 0x2000);
    assert_int_equal(seen.pages[2].block, 1);
    assert_int_equal(seen.first_bytes[2], 0x22);
    assert_int_equal(seen.pages[3].kind, RAM_PAGE_XBZRLE);
    assert_int_equal(seen.pages[3].block, 1);
    assert_int_equal(seen.pages[3].len, 3);
    assert_int_equal(seen.pages[4].kind, RAM_PAGE_COMPRESSED);
    assert_int_equal(seen.pages[4].len, 5);
    assert_int_equal(seen.pages[4].block, 0);
    ram_decoder_cleanup(&d);
    free(s.d);
    free(p.d);
}

static void test_channel_source_reads_the_same(void **state)
{
    struct buf b = { 0 };
    start_body(&b);
    part_body(&b);
    Channel *f = chan_new_mem_reader(b.d, b.len, "test");
    struct seen seen = { 0 };
    struct ram_decoder d;
    ram_decoder_init(&d, &seen_ops, &seen);
    struct ram_reader r;
    struct ram_chan_source *src = malloc(sizeof(*src));
    ram_reader_init_chan(&r, src, f);
    Error *err = NULL;
    assert_true(ram_decode_section(&d, &r, &err));
    assert_true(ram_decode_section(&d, &r, &err));
    assert_int_equal(chan_tell(f), b.len);
    assert_int_equal(seen.npages, 5);
    assert_int_equal(seen.first_bytes[2], 0x22);
    ram_decoder_cleanup(&d);
    chan_close(f, NULL);
    free(src);
    free(b.d);
}

/* Decodes START then body; expects failure mentioning words. */
static void expect_bad_body(const struct buf *body, const char *words)
{
    struct buf s = { 0 };
    start_body(&s);
    struct ram_decoder d;
    ram_decoder_init(&d, NULL, NULL);
    struct ram_reader r;
    struct ram_mem_source src;
    Error *err = NULL;
    ram_reader_init_mem(&r, &src, s.d, s.len, 0);
    assert_true(ram_decode_section(&d, &r, &err));
    ram_reader_init_mem(&r, &src, body->d, body->len, 500);
    assert_false(ram_decode_section(&d, &r, &err));
    assert_non_null(err);
    if (!strstr(error_get_pretty(err), words)) {
        fail_msg("'%s' does not mention '%s'", error_get_pretty(err), words);
    }
    error_free(err);
    ram_decoder_cleanup(&d);
    free(s.d);
}

static void test_rejections(void **state)
{
    struct {
        uint64_t word;
        const char *name;
        const char *words;
    } cases[] = {
        { 0x1000 | RAM_FLAG_ZERO | RAM_FLAG_CONTINUE, NULL,
          "no block was named" },
        { 0x1000 | RAM_FLAG_ZERO, "nosuch", "'nosuch'" },
        { 0x4000 | RAM_FLAG_ZERO, "pc.ram", "past the end" },
        { 0x1000, NULL, "no flags" },
        { 0x1000 | RAM_FLAG_ZERO | RAM_FLAG_PAGE, "pc.ram", "exactly one" },
        { 0x1000 | 0x400, NULL, "unknown flags" },
        { RAM_FLAG_HOOK, NULL, "RDMA" },
        { RAM_FLAG_CONTINUE, NULL, "no page type" },
        { 0x1000 | RAM_FLAG_MEM_SIZE, "pc.ram", "second RAM block list" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct buf b = { 0 };
        put_be64(&b, cases[i].word);
        if (cases[i].name) {
            put_str(&b, cases[i].name);
        }
        put_u8(&b, 0);
        put_be64(&b, RAM_FLAG_EOS);
        expect_bad_body(&b, cases[i].words);
        free(b.d);
    }
    /* XBZRLE with a bad encoding byte, and a delta longer than a page. */
    struct buf b = { 0 };
    put_be64(&b, RAM_FLAG_XBZRLE);
    put_str(&b, "pc.ram");
    put_u8(&b, 0x02);
    put_be16(&b, 1);
    put_u8(&b, 0);
    expect_bad_body(&b, "encoding flag");
    b.len = 0;
    put_be64(&b, RAM_FLAG_XBZRLE);
    put_str(&b, "pc.ram");
    put_u8(&b, RAM_XBZRLE_ENCODING);
    put_be16(&b, PS + 1);
    expect_bad_body(&b, "longer than a page");
    b.len = 0;
    put_be64(&b, RAM_FLAG_COMPRESS_PAGE);
    put_str(&b, "pc.ram");
    put_be32(&b, 0x7fffffff);
    expect_bad_body(&b, "impossible");
    free(b.d);
}

static void test_block_list_rejections(void **state)
{
    const struct {
        uint64_t total;
        uint64_t len;
        const char *words;
    } cases[] = {
        { 0x1000, 0x2000, "more than" },
        { 0x2000, 0x1800, "multiple of the page size" },
    };
    for (size_t i = 0; i < 2; i++) {
        struct buf b = { 0 };
        put_be64(&b, cases[i].total | RAM_FLAG_MEM_SIZE);
        put_str(&b, "pc.ram");
        put_be64(&b, cases[i].len);
        put_be64(&b, RAM_FLAG_EOS);
        struct ram_decoder d;
        ram_decoder_init(&d, NULL, NULL);
        struct ram_reader r;
        struct ram_mem_source src;
        Error *err = NULL;
        ram_reader_init_mem(&r, &src, b.d, b.len, 0);
        assert_false(ram_decode_section(&d, &r, &err));
        assert_non_null(strstr(error_get_pretty(err), cases[i].words));
        error_free(err);
        ram_decoder_cleanup(&d);
        free(b.d);
    }
}

static void test_names_in_errors_are_escaped(void **state)
{
    struct buf b = { 0 };
    start_body(&b);
    b.len -= 8; /* no EOS */
    put_be64(&b, RAM_FLAG_ZERO);
    put_str(&b, "\x1b]0;x\x07");
    put_u8(&b, 0);
    put_be64(&b, RAM_FLAG_EOS);
    struct ram_decoder d;
    ram_decoder_init(&d, NULL, NULL);
    struct ram_reader r;
    struct ram_mem_source src;
    Error *err = NULL;
    ram_reader_init_mem(&r, &src, b.d, b.len, 0);
    assert_false(ram_decode_section(&d, &r, &err));
    const char *msg = error_get_pretty(err);
    if (strchr(msg, '\x1b') || strchr(msg, '\x07') ||
        !strstr(msg, "'\\x1b]0;x\\x07'")) {
        fail_msg("not escaped: %s", msg);
    }
    error_free(err);
    ram_decoder_cleanup(&d);
    free(b.d);
}

static void test_many_blocks_are_found_by_name(void **state)
{
    /* 200000 blocks of one page; a page of each, named, backwards: a
     * decoder that scans its block list per name takes minutes. */
    enum { N = 200000 };
    alarm(120); /* seconds; it takes about one */
    struct buf b = { 0 };
    put_be64(&b, (uint64_t)N * PS | RAM_FLAG_MEM_SIZE);
    char name[32];
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof(name), "b%d", i);
        put_str(&b, name);
        put_be64(&b, PS);
    }
    for (int i = N - 1; i >= 0; i--) {
        snprintf(name, sizeof(name), "b%d", i);
        put_be64(&b, RAM_FLAG_ZERO);
        put_str(&b, name);
        put_u8(&b, (uint8_t)i);
    }
    put_be64(&b, RAM_FLAG_EOS);
    struct ram_decoder d;
    ram_decoder_init(&d, NULL, NULL);
    struct ram_reader r;
    struct ram_mem_source src;
    Error *err = NULL;
    ram_reader_init_mem(&r, &src, b.d, b.len, 0);
    assert_true(ram_decode_section(&d, &r, &err));
    assert_int_equal(d.nblocks, N);
    assert_int_equal(ram_decoder_find_block(&d, "b12345"), 12345);
    assert_int_equal(ram_decoder_find_block(&d, "b200000"), -1);
    ram_decoder_cleanup(&d);
    free(b.d);
    alarm(0);
}

static void test_truncation_at_every_byte(void **state)
{
    struct buf b = { 0 };
    start_body(&b);
    size_t start_len = b.len;
    part_body(&b);
    for (size_t cut = 0; cut < b.len; cut++) {
        struct ram_decoder d;
        ram_decoder_init(&d, NULL, NULL);
        struct ram_reader r;
        struct ram_mem_source src;
        Error *err = NULL;
        /* A copy of exactly cut bytes, so ASan sees any over-read. */
        uint8_t *copy = malloc(cut ? cut : 1);
        memcpy(copy, b.d, cut);
        ram_reader_init_mem(&r, &src, copy, cut, 0);
        bool ok = ram_decode_section(&d, &r, &err);
        if (ok) {
            assert_true(cut >= start_len); /* a whole START, then less */
            assert_false(ram_decode_section(&d, &r, &err));
        }
        assert_non_null(err);
        assert_non_null(strstr(error_get_pretty(err), "offset"));
        error_free(err);
        ram_decoder_cleanup(&d);
        free(copy);
    }
    free(b.d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_xbzrle_roundtrip_random_pages),
        cmocka_unit_test(test_xbzrle_known_bytes),
        cmocka_unit_test(test_xbzrle_rejects_malformed),
        cmocka_unit_test(test_section_bodies),
        cmocka_unit_test(test_channel_source_reads_the_same),
        cmocka_unit_test(test_rejections),
        cmocka_unit_test(test_block_list_rejections),
        cmocka_unit_test(test_truncation_at_every_byte),
        cmocka_unit_test(test_names_in_errors_are_escaped),
        cmocka_unit_test(test_many_blocks_are_found_by_name),
    };
    return cmocka_run_group_tests_name("ram decode", tests, NULL, NULL);
}
