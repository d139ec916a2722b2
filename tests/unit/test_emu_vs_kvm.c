/* accel emu against KVM: random short sequences of the supported
 * instructions (ALU, shifts, multiply/divide, bit operations, moves,
 * strings, conditionals, calls and loops), each ending in HLT, run under both
 * accelerators from identical registers and memory; registers, flags and
 * memory must agree.
 *
 * Flags the SDM leaves undefined are not compared: the generator tracks,
 * instruction by instruction, which flags are undefined at that point
 * (AF after AND/OR/XOR/TEST and shifts; OF after shifts and rotates by
 * more than 1; CF after 8/16-bit SHL/SHR/SAR by at least the operand
 * width; SF/ZF/AF/PF after MUL/IMUL; all six after DIV/IDIV; OF/SF/AF/PF
 * after BT*; CF/OF/SF/AF/PF after BSF/BSR) and masks what is still
 * undefined at the end.  Before an instruction that reads flags it first
 * makes them all defined again with a CMP, so no undefined value can
 * leak into a register.  Sequences avoid the remaining undefined results
 * (BSF/BSR of zero, 16-bit SHLD/SHRD by more than 16) and faults (the
 * divisor is forced into 2..255 with a zero or sign-extended upper half).
 *
 * KVM on the machines this runs on may have no hardware virtualization
 * beneath it and run at a fraction of a million instructions per second,
 * so the sequences are short. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "machine/accel.h"
#include "x86-asm.h"

#define RAM_SIZE (2u << 20)
#define DATA_ADDR 0x10000u /* random data, EBP points here */
#define STACK_PAGE 0x1f000u
#define STACK_INIT 0x1f800u
#define CODE_ADDR 0x30000u
#define SLOT 0x1000u /* code bytes per sequence */
#define NSEQ 250     /* sequences per round */
#define ROUNDS 8
#define SEQ_LEN 32 /* generated instructions per sequence */

#define F_CF X86_CF
#define F_PF X86_PF
#define F_AF X86_AF
#define F_ZF X86_ZF
#define F_SF X86_SF
#define F_OF X86_OF
#define F_ALL (F_CF | F_PF | F_AF | F_ZF | F_SF | F_OF)

/* ---- Generator ---- */

struct gen {
    uint64_t s;
    char *text;
    size_t len, cap;
    uint32_t undef; /* flags undefined at this point */
};

static uint32_t rnd(struct gen *g)
{
    g->s ^= g->s << 13;
    g->s ^= g->s >> 7;
    g->s ^= g->s << 17;
    return (uint32_t)(g->s >> 11);
}

static uint32_t below(struct gen *g, uint32_t n)
{
    return rnd(g) % n;
}

static void emit(struct gen *g, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void emit(struct gen *g, const char *fmt, ...)
{
    va_list ap;
    if (g->cap - g->len < 256) {
        g->cap = g->cap * 2 + 4096;
        g->text = realloc(g->text, g->cap);
    }
    va_start(ap, fmt);
    g->len += (size_t)vsnprintf(g->text + g->len, g->cap - g->len, fmt, ap);
    va_end(ap);
    g->text[g->len++] = '\n';
    g->text[g->len] = '\0';
}

/* The instruction just emitted defines `def` and leaves `undef`. */
static void flags(struct gen *g, uint32_t def, uint32_t undef)
{
    g->undef = (g->undef & ~def) | undef;
}

/* About to read flags: make every one defined. */
static void need_flags(struct gen *g)
{
    if (g->undef) {
        emit(g, "cmp eax, edx");
        g->undef = 0;
    }
}

static const char *const r32[] = { "eax", "ecx", "edx", "ebx",
                                   "esp", "ebp", "esi", "edi" };
static const char *const r16[] = { "ax", "cx", "dx", "bx",
                                   "sp", "bp", "si", "di" };
static const char *const r8[] = {
    "al", "cl", "dl", "bl", "ah", "ch", "dh", "bh"
};
static const int writable[] = { 0, 1, 2, 3, 6, 7 }; /* not ESP, EBP */

static int pick_size(struct gen *g)
{
    static const int sizes[] = { 1, 2, 4, 4 };
    return sizes[below(g, 4)];
}

/* A register of size sz that may be written; avoid names one of its
 * bytes (ECX when the count is in CL), or -1. */
static int pick_reg(struct gen *g, int sz, int avoid)
{
    for (;;) {
        int r = sz == 1 ? (int)below(g, 8) : writable[below(g, 6)];
        int whole = sz == 1 ? r & 3 : r;
        if (whole != avoid)
            return r;
    }
}

static const char *reg_name(int sz, int r)
{
    return sz == 1 ? r8[r] : sz == 2 ? r16[r] : r32[r];
}

static const char *ptr_name(int sz)
{
    return sz == 1 ? "byte" : sz == 2 ? "word" : "dword";
}

/* An r/m operand: a register or [ebp+disp] inside the data page. */
static void rm_operand(struct gen *g, int sz, int avoid, char *buf, size_t n,
                       bool *is_mem)
{
    *is_mem = below(g, 3) == 0;
    if (*is_mem)
        snprintf(buf, n, "%s ptr [ebp+%u]", ptr_name(sz), below(g, 0xff0));
    else
        snprintf(buf, n, "%s", reg_name(sz, pick_reg(g, sz, avoid)));
}

static uint32_t imm_of(struct gen *g, int sz)
{
    static const uint32_t special[] = { 0,          1,         0x7f,
                                        0x80,       0xff,      0x7fff,
                                        0x8000,     0xffff,    0x7fffffff,
                                        0x80000000, 0xffffffff };
    uint32_t v = below(g, 3) == 0 ? special[below(g, 11)] : rnd(g);
    return sz == 4 ? v : v & (sz == 2 ? 0xffff : 0xff);
}

static void gen_alu(struct gen *g)
{
    static const char *const ops[] = { "add", "or",  "adc", "sbb",
                                       "and", "sub", "xor", "cmp" };
    int k = (int)below(g, 8), sz = pick_size(g);
    char rm[64];
    bool mem;
    if (k == 2 || k == 3)
        need_flags(g);
    rm_operand(g, sz, -1, rm, sizeof(rm), &mem);
    switch (below(g, 3)) {
    case 0:
        emit(g, "%s %s, %s", ops[k], rm, reg_name(sz, pick_reg(g, sz, -1)));
        break;
    case 1:
        emit(g, "%s %s, 0x%x", ops[k], rm, imm_of(g, sz));
        break;
    default:
        emit(g, "%s %s, %s", ops[k], reg_name(sz, pick_reg(g, sz, -1)), rm);
        break;
    }
    bool logic = k == 1 || k == 4 || k == 6;
    flags(g, F_ALL, logic ? F_AF : 0);
}

static void gen_unary(struct gen *g)
{
    static const char *const ops[] = { "inc", "dec", "neg", "not", "test" };
    int k = (int)below(g, 5), sz = pick_size(g);
    char rm[64];
    bool mem;
    rm_operand(g, sz, -1, rm, sizeof(rm), &mem);
    if (k == 4) {
        emit(g, "test %s, 0x%x", rm, imm_of(g, sz));
        flags(g, F_ALL, F_AF);
        return;
    }
    emit(g, "%s %s", ops[k], rm);
    if (k < 2)
        flags(g, F_ALL & ~F_CF, 0);
    else if (k == 2)
        flags(g, F_ALL, 0);
}

static void gen_shift(struct gen *g)
{
    static const char *const ops[] = { "rol", "ror", "rcl", "rcr",
                                       "shl", "shr", "sar" };
    int k = (int)below(g, 7), sz = pick_size(g), bits = 8 * sz;
    unsigned form = below(g, 3), cnt;
    char rm[64];
    bool mem;
    if (k == 2 || k == 3)
        need_flags(g);
    cnt = form == 0 ? 1 : below(g, 4) == 0 ? below(g, 32) : below(g, 9);
    rm_operand(g, sz, form == 2 ? R_ECX : -1, rm, sizeof(rm), &mem);
    if (form == 2) {
        emit(g, "mov cl, %u", cnt | (below(g, 2) ? 0x20u : 0)); /* masked */
        emit(g, "%s %s, cl", ops[k], rm);
    } else {
        emit(g, "%s %s, %u", ops[k], rm, cnt);
    }
    cnt &= 31;
    if (cnt == 0)
        return;
    if (k < 4) {
        flags(g, F_CF | F_OF, cnt != 1 ? F_OF : 0);
        return;
    }
    uint32_t u = F_AF;
    if (cnt != 1)
        u |= F_OF;
    if (cnt >= (unsigned)bits)
        u |= F_CF;
    flags(g, F_ALL, u);
}

static void gen_double_shift(struct gen *g)
{
    char rm[64];
    bool mem;
    bool left = below(g, 2), by_cl = below(g, 2);
    unsigned cnt = below(g, 32);
    rm_operand(g, 4, by_cl ? R_ECX : -1, rm, sizeof(rm), &mem);
    const char *src = r32[pick_reg(g, 4, by_cl ? R_ECX : -1)];
    if (by_cl) {
        emit(g, "mov cl, %u", cnt);
        emit(g, "%s %s, %s, cl", left ? "shld" : "shrd", rm, src);
    } else {
        emit(g, "%s %s, %s, %u", left ? "shld" : "shrd", rm, src, cnt);
    }
    if (cnt)
        flags(g, F_ALL, F_AF | (cnt != 1 ? F_OF : 0));
}

static void gen_mul(struct gen *g)
{
    int sz = pick_size(g);
    char rm[64];
    bool mem;
    rm_operand(g, sz, -1, rm, sizeof(rm), &mem);
    switch (below(g, 4)) {
    case 0:
        emit(g, "mul %s", rm);
        break;
    case 1:
        emit(g, "imul %s", rm);
        break;
    case 2:
        if (sz == 1)
            sz = 4;
        rm_operand(g, sz, -1, rm, sizeof(rm), &mem);
        emit(g, "imul %s, %s", reg_name(sz, pick_reg(g, sz, -1)), rm);
        break;
    default:
        if (sz == 1)
            sz = 2;
        rm_operand(g, sz, -1, rm, sizeof(rm), &mem);
        emit(g, "imul %s, %s, %d", reg_name(sz, pick_reg(g, sz, -1)), rm,
             (int)(int8_t)rnd(g) * (below(g, 2) ? 100 : 1));
        break;
    }
    flags(g, F_ALL, F_SF | F_ZF | F_AF | F_PF);
}

static void gen_div(struct gen *g)
{
    static const int divisors[] = { R_EBX, R_ECX, R_ESI, R_EDI };
    int d = divisors[below(g, 4)];
    emit(g, "and %s, 0xff", r32[d]);
    emit(g, "or %s, 2", r32[d]);
    if (below(g, 2)) {
        emit(g, "xor edx, edx");
        emit(g, "div %s", r32[d]);
    } else {
        emit(g, "cdq");
        emit(g, "idiv %s", r32[d]);
    }
    flags(g, 0, F_ALL);
}

static void gen_bits(struct gen *g)
{
    static const char *const ops[] = { "bt", "bts", "btr", "btc" };
    int sz = below(g, 2) ? 4 : 2;
    int dst = pick_reg(g, sz, -1);
    switch (below(g, 4)) {
    case 0:
        emit(g, "%s %s, %s", ops[below(g, 4)], reg_name(sz, dst),
             reg_name(sz, pick_reg(g, sz, -1)));
        flags(g, F_CF, F_OF | F_SF | F_AF | F_PF);
        break;
    case 1:
        if (below(g, 2))
            emit(g, "%s %s ptr [ebp+%u], %u", ops[below(g, 4)], ptr_name(sz),
                 below(g, 0xff0), below(g, 64));
        else
            emit(g, "%s %s, %u", ops[below(g, 4)], reg_name(sz, dst),
                 below(g, 64));
        flags(g, F_CF, F_OF | F_SF | F_AF | F_PF);
        break;
    default: {
        int src = pick_reg(g, sz, -1);
        emit(g, "or %s, 0x%x", reg_name(sz, src), 1u << below(g, 8 * sz));
        emit(g, "%s %s, %s", below(g, 2) ? "bsf" : "bsr", reg_name(sz, dst),
             reg_name(sz, src));
        flags(g, F_ALL, F_CF | F_OF | F_SF | F_AF | F_PF);
        break;
    }
    }
}

static void gen_exchange(struct gen *g)
{
    int sz = pick_size(g);
    char rm[64];
    bool mem;
    rm_operand(g, sz, -1, rm, sizeof(rm), &mem);
    const char *r = reg_name(sz, pick_reg(g, sz, -1));
    switch (below(g, 3)) {
    case 0:
        emit(g, "%sxadd %s, %s", mem && below(g, 2) ? "lock " : "", rm, r);
        flags(g, F_ALL, 0);
        break;
    case 1:
        emit(g, "%scmpxchg %s, %s", mem && below(g, 2) ? "lock " : "", rm, r);
        flags(g, F_ALL, 0);
        break;
    default:
        emit(g, "xchg %s, %s", rm, r);
        break;
    }
}

static void gen_move(struct gen *g)
{
    int sz = pick_size(g);
    char rm[64];
    bool mem;
    rm_operand(g, sz, -1, rm, sizeof(rm), &mem);
    switch (below(g, 8)) {
    case 0:
        emit(g, "mov %s, 0x%x", rm, imm_of(g, sz));
        break;
    case 1:
        emit(g, "mov %s, %s", rm, reg_name(sz, pick_reg(g, sz, -1)));
        break;
    case 2:
        emit(g, "mov %s, %s", reg_name(sz, pick_reg(g, sz, -1)), rm);
        break;
    case 3: {
        int ssz = below(g, 2) ? 1 : 2;
        rm_operand(g, ssz, -1, rm, sizeof(rm), &mem);
        emit(g, "%s %s, %s", below(g, 2) ? "movzx" : "movsx",
             r32[pick_reg(g, 4, -1)], rm);
        break;
    }
    case 4:
        emit(g, "lea %s, [%s+%s*%u+%d]", r32[pick_reg(g, 4, -1)],
             r32[below(g, 8)], r32[writable[below(g, 6)]], 1u << below(g, 4),
             (int)rnd(g));
        break;
    case 5:
        emit(g, "bswap %s", r32[pick_reg(g, 4, -1)]);
        break;
    case 6: {
        static const char *const ext[] = { "cbw", "cwde", "cwd", "cdq" };
        emit(g, "%s", ext[below(g, 4)]);
        break;
    }
    default:
        if (below(g, 2)) {
            if (below(g, 2))
                emit(g, "push %s", r32[below(g, 8)]);
            else
                emit(g, "push dword ptr [ebp+%u]", below(g, 0xff0));
        } else {
            emit(g, "pop %s", r32[pick_reg(g, 4, -1)]);
        }
        break;
    }
}

static void gen_conditional(struct gen *g)
{
    static const char *const cc[] = { "o",  "no", "b",  "ae", "e", "ne",
                                      "be", "a",  "s",  "ns", "p", "np",
                                      "l",  "ge", "le", "g" };
    const char *c = cc[below(g, 16)];
    char rm[64];
    bool mem;
    need_flags(g);
    switch (below(g, 6)) {
    case 0:
        rm_operand(g, 1, -1, rm, sizeof(rm), &mem);
        emit(g, "set%s %s", c, rm);
        break;
    case 1: {
        int sz = below(g, 2) ? 4 : 2;
        rm_operand(g, sz, -1, rm, sizeof(rm), &mem);
        emit(g, "cmov%s %s, %s", c, reg_name(sz, pick_reg(g, sz, -1)), rm);
        break;
    }
    case 2:
        emit(g, "j%s 1f", c);
        emit(g, "mov %s, 0x%x", r32[pick_reg(g, 4, -1)], rnd(g));
        emit(g, "1:");
        break;
    case 3:
        emit(g, "lahf");
        break;
    case 4:
        emit(g, "sahf");
        flags(g, F_CF | F_PF | F_AF | F_ZF | F_SF, 0);
        break;
    default: {
        static const char *const f[] = { "clc", "stc", "cmc" };
        emit(g, "%s", f[below(g, 3)]);
        flags(g, F_CF, 0);
        break;
    }
    }
}

static void gen_string(struct gen *g)
{
    static const char *const ops[] = { "movs", "stos", "lods", "cmps", "scas" };
    static const char suffix[] = { 'b', 'w', 'd' };
    int k = (int)below(g, 5);
    unsigned n = below(g, 17);
    bool back = below(g, 3) == 0;
    emit(g, "%s", back ? "std" : "cld");
    emit(g, "lea esi, [ebp+%u]", 0x200 + below(g, 0xa00));
    emit(g, "lea edi, [ebp+%u]", 0x200 + below(g, 0xa00));
    emit(g, "mov ecx, %u", n);
    const char *rep = k < 3 ? "rep " : below(g, 2) ? "repe " : "repne ";
    if (below(g, 4) == 0)
        rep = "";
    emit(g, "%s%s%c", rep, ops[k], suffix[below(g, 3)]);
    emit(g, "cld");
    if (k >= 3 && (n || !*rep))
        flags(g, F_ALL, 0);
}

static void gen_control(struct gen *g)
{
    int r = pick_reg(g, 4, R_ECX);
    switch (below(g, 6)) {
    case 0: /* CALL, RET and RET n */
        if (below(g, 2)) {
            emit(g, "call 7f\n jmp 8f\n7: ret\n8:");
        } else {
            emit(g, "push 0x%x\n call 7f\n jmp 8f\n7: ret 4\n8:", rnd(g));
        }
        break;
    case 1:
        emit(g, "pushad\n mov %s, 0x%x\n popad", r32[r], rnd(g));
        break;
    case 2:
        need_flags(g);
        emit(g, "pushfd\n pop %s", r32[r]);
        break;
    case 3:
        emit(g, "push 0x%x\n popfd", 0x2u | (rnd(g) & F_ALL));
        flags(g, F_ALL, 0);
        break;
    case 4: /* LOOP over an ADD */
        emit(g, "mov ecx, %u\n7: add %s, 0x%x\n loop 7b", 1 + below(g, 5),
             r32[r], rnd(g));
        flags(g, F_ALL, 0);
        break;
    default:
        emit(g, "mov ecx, %u\n jecxz 7f\n mov %s, 0x%x\n7:", below(g, 2),
             r32[r], rnd(g));
        break;
    }
}

/* One sequence: SEQ_LEN random instructions, then HLT.  Returns the mask
 * of flags undefined at the end. */
static uint32_t gen_sequence(struct gen *g)
{
    static void (*const kinds[])(struct gen *) = {
        gen_alu,     gen_alu,         gen_alu,          gen_unary,
        gen_shift,   gen_shift,       gen_double_shift, gen_mul,
        gen_div,     gen_bits,        gen_exchange,     gen_move,
        gen_move,    gen_conditional, gen_conditional,  gen_string,
        gen_control,
    };
    g->undef = 0;
    for (int i = 0; i < SEQ_LEN; i++)
        kinds[below(g, sizeof(kinds) / sizeof(kinds[0]))](g);
    emit(g, "hlt");
    return g->undef;
}

/* ---- Running ---- */

struct side {
    const struct accel_ops *ops;
    uint8_t *ram;
    _Atomic unsigned long *dirty;
    struct accel *acc;
    struct accel_vcpu *vcpu;
};

static uint32_t no_in(void *opaque, uint16_t port, int size)
{
    return 0xffffffffu;
}

static void no_out(void *opaque, uint16_t port, int size, uint32_t val)
{
}

static bool side_open(struct side *s, const struct accel_ops *ops, Error **errp)
{
    s->ops = ops;
    s->ram = aligned_alloc(4096, RAM_SIZE);
    memset(s->ram, 0, RAM_SIZE);
    s->dirty = calloc(RAM_SIZE / 4096 / 64 + 1, sizeof(unsigned long));
    struct accel_mem_region r = {
        .gpa = 0,
        .size = RAM_SIZE,
        .host = s->ram,
        .dirty = s->dirty,
    };
    struct accel_io_ops io = { .pio_in = no_in, .pio_out = no_out };
    s->acc = ops->create(&r, 1, &io, errp);
    if (!s->acc)
        return false;
    s->vcpu = ops->vcpu_create(s->acc, 0, errp);
    return s->vcpu != NULL;
}

static void side_close(struct side *s)
{
    if (s->vcpu)
        s->ops->vcpu_destroy(s->vcpu);
    if (s->acc)
        s->ops->destroy(s->acc);
    free(s->ram);
    free((void *)s->dirty);
}

static enum accel_exit side_run(struct side *s, const struct x86_state *in,
                                struct x86_state *out, char *err, size_t errlen)
{
    Error *e = NULL;
    atomic_int stop = 0;
    assert_true(s->ops->set_state(s->vcpu, in, &e));
    enum accel_exit x = s->ops->vcpu_run(s->vcpu, &stop, err, errlen);
    assert_true(s->ops->get_state(s->vcpu, out, &e));
    return x;
}

static void fill_random(uint8_t *p, size_t n, uint64_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        p[i] = (uint8_t)(seed >> 56);
    }
}

static int run_round(struct side *emu_side, struct side *kvm_side,
                     uint64_t seed0);

static void test_emu_vs_kvm(void **state)
{
    Error *err = NULL;
    if (!accel_kvm_ops.available(&err)) {
        print_message("# skip: %s\n", error_get_pretty(err));
        error_free(err);
        skip();
    }
    struct side emu = { 0 }, kvm = { 0 };
    assert_true(side_open(&emu, &accel_emu_ops, &err));
    if (!side_open(&kvm, &accel_kvm_ops, &err)) {
        print_message("# skip: %s\n", error_get_pretty(err));
        error_free(err);
        side_close(&emu);
        side_close(&kvm);
        skip();
    }

    /* HOP_DIFF_ROUNDS=N runs N rounds (more seeds) instead. */
    int rounds = ROUNDS;
    const char *env = getenv("HOP_DIFF_ROUNDS");
    if (env && atoi(env) > 0)
        rounds = atoi(env);
    int failures = 0;
    for (int round = 0; round < rounds && !failures; round++)
        failures +=
            run_round(&emu, &kvm, 0x9e3779b97f4a7c15ull + (uint64_t)round);
    side_close(&emu);
    side_close(&kvm);
    assert_int_equal(failures, 0);
}

/* NSEQ sequences from seed; returns how many differed (stops at 3). */
static int run_round(struct side *emu_side, struct side *kvm_side,
                     uint64_t seed0)
{
    struct side emu = *emu_side, kvm = *kvm_side;
    /* All sequences in one assembly, each in its own SLOT. */
    struct gen g = { .s = seed0 };
    uint32_t undef[NSEQ];
    size_t starts[NSEQ + 1];
    for (int i = 0; i < NSEQ; i++) {
        emit(&g, ".org 0x%x", (unsigned)i * SLOT);
        starts[i] = g.len;
        undef[i] = gen_sequence(&g);
    }
    starts[NSEQ] = g.len;
    size_t code_len;
    uint8_t *code = x86_asm32(g.text, CODE_ADDR, &code_len);
    assert_non_null(code);
    assert_true(CODE_ADDR + code_len <= RAM_SIZE);
    memcpy(emu.ram + CODE_ADDR, code, code_len);
    memcpy(kvm.ram + CODE_ADDR, code, code_len);
    accel_emu_ops.invalidate(emu.acc, CODE_ADDR, code_len);

    int failures = 0;
    for (int i = 0; i < NSEQ && failures < 3; i++) {
        struct x86_state in, a, b;
        x86_state_reset_flat(&in, CODE_ADDR + (uint32_t)i * SLOT, 0, 0);
        for (int r = 0; r < X86_NR_REGS; r++)
            in.regs[r] = rnd(&g);
        in.regs[R_EBP] = DATA_ADDR;
        in.regs[R_ESP] = STACK_INIT;
        in.eflags = X86_EFLAGS_FIXED | (rnd(&g) & F_ALL);
        uint64_t seed = rnd(&g);
        fill_random(emu.ram + DATA_ADDR, 4096, seed);
        fill_random(kvm.ram + DATA_ADDR, 4096, seed);
        fill_random(emu.ram + STACK_PAGE, 4096, ~seed);
        fill_random(kvm.ram + STACK_PAGE, 4096, ~seed);

        char ea[256] = "", eb[256] = "";
        enum accel_exit xa = side_run(&emu, &in, &a, ea, sizeof(ea));
        enum accel_exit xb = side_run(&kvm, &in, &b, eb, sizeof(eb));
        uint32_t fmask = (F_ALL | X86_DF) & ~undef[i];
        bool same = xa == ACCEL_EXIT_HLT && xb == ACCEL_EXIT_HLT &&
            memcmp(a.regs, b.regs, sizeof(a.regs)) == 0 && a.eip == b.eip &&
            (a.eflags & fmask) == (b.eflags & fmask) &&
            memcmp(emu.ram + DATA_ADDR, kvm.ram + DATA_ADDR, 4096) == 0 &&
            memcmp(emu.ram + STACK_PAGE, kvm.ram + STACK_PAGE, 4096) == 0;
        if (same)
            continue;
        failures++;
        fprintf(stderr,
                "sequence %d differs (exits emu %d '%s', kvm %d '%s'):\n"
                "%.*s",
                i, xa, ea, xb, eb, (int)(starts[i + 1] - starts[i]),
                g.text + starts[i]);
        for (int r = 0; r < X86_NR_REGS; r++)
            if (a.regs[r] != b.regs[r])
                fprintf(stderr, "  %s: emu 0x%08x kvm 0x%08x\n", r32[r],
                        a.regs[r], b.regs[r]);
        if (a.eip != b.eip)
            fprintf(stderr, "  eip: emu 0x%08x kvm 0x%08x\n", a.eip, b.eip);
        if ((a.eflags & fmask) != (b.eflags & fmask))
            fprintf(stderr, "  eflags (mask 0x%x): emu 0x%08x kvm 0x%08x\n",
                    fmask, a.eflags, b.eflags);
        for (uint32_t o = 0; o < 4096; o++) {
            if (emu.ram[DATA_ADDR + o] != kvm.ram[DATA_ADDR + o]) {
                fprintf(stderr, "  first data difference at ebp+0x%x\n", o);
                break;
            }
        }
        for (uint32_t o = 0; o < 4096; o++) {
            if (emu.ram[STACK_PAGE + o] != kvm.ram[STACK_PAGE + o]) {
                fprintf(stderr, "  first stack difference at 0x%x\n",
                        STACK_PAGE + o);
                break;
            }
        }
    }
    free(code);
    free(g.text);
    return failures;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_emu_vs_kvm),
    };
    return cmocka_run_group_tests_name("emu vs kvm", tests, NULL, NULL);
}
