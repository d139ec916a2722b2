/* accel emu: instruction semantics.  Every expected value below is
 * worked out by hand from the Intel SDM's description of the
 * instruction, not taken from the emulator. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "emu-fixture.h"

#define CF X86_CF
#define PF X86_PF
#define AF X86_AF
#define ZF X86_ZF
#define SF X86_SF
#define OF X86_OF
#define ARITH (CF | PF | AF | ZF | SF | OF)

static struct emu_fix *run_ok(const char *src)
{
    struct emu_fix *f = fix_new();
    assert_int_equal(fix_run_asm(f, src), EMU_EXIT_HLT);
    return f;
}

/* Arithmetic flags after src, restricted to mask. */
static uint32_t flags_of(const char *src, uint32_t mask)
{
    struct emu_fix *f = run_ok(src);
    uint32_t fl = f->st.eflags & mask;
    fix_free(f);
    return fl;
}

static void test_add_flags(void **state)
{
    /* 0x7f + 1 = 0x80: signed overflow, sign, carry out of bit 3, one
     * bit set (odd parity). */
    assert_int_equal(flags_of("mov al, 0x7f\n add al, 1\n hlt", ARITH),
                     OF | SF | AF);
    /* 0xff + 1 = 0x00: carry out, zero, even parity, nibble carry. */
    assert_int_equal(flags_of("mov al, 0xff\n add al, 1\n hlt", ARITH),
                     CF | ZF | AF | PF);
    /* 16-bit add leaves the upper half of EAX alone. */
    struct emu_fix *f = run_ok("mov eax, 0x1234ffff\n add ax, 1\n hlt");
    assert_int_equal(f->st.regs[R_EAX], 0x12340000);
    assert_int_equal(f->st.eflags & (CF | ZF), CF | ZF);
    fix_free(f);
}

static void test_sub_flags(void **state)
{
    /* 0 - 1 = 0xffffffff: borrow, sign, nibble borrow, low byte 0xff. */
    assert_int_equal(flags_of("mov eax, 0\n sub eax, 1\n hlt", ARITH),
                     CF | SF | AF | PF);
    /* 0x80000000 - 1 = 0x7fffffff: signed overflow. */
    assert_int_equal(flags_of("mov eax, 0x80000000\n sub eax, 1\n hlt", ARITH),
                     OF | AF | PF);
    /* CMP sets flags without writing. */
    struct emu_fix *f = run_ok("mov ecx, 5\n cmp ecx, 5\n hlt");
    assert_int_equal(f->st.regs[R_ECX], 5);
    assert_int_equal(f->st.eflags & ARITH, ZF | PF);
    fix_free(f);
}

static void test_adc_sbb(void **state)
{
    /* 0xffffffff + 0 + CF = 0 with carry. */
    assert_int_equal(
        flags_of("stc\n mov eax, 0xffffffff\n adc eax, 0\n hlt", ARITH),
        CF | ZF | AF | PF);
    /* 5 - 5 - CF = -1 with borrow. */
    assert_int_equal(flags_of("stc\n mov eax, 5\n sbb eax, 5\n hlt", ARITH),
                     CF | SF | AF | PF);
    struct emu_fix *f = run_ok("stc\n mov eax, 10\n mov ebx, 20\n"
                               "adc eax, ebx\n sbb ebx, 1\n hlt");
    assert_int_equal(f->st.regs[R_EAX], 31);
    assert_int_equal(f->st.regs[R_EBX], 19);
    fix_free(f);
}

static void test_logic_flags(void **state)
{
    /* AND/OR/XOR/TEST clear CF and OF; AF is undefined (not checked). */
    assert_int_equal(
        flags_of("stc\n mov al, 0xf0\n and al, 0x0f\n hlt", ARITH & ~AF),
        ZF | PF);
    assert_int_equal(
        flags_of("mov eax, 0x80000001\n or eax, 0\n hlt", ARITH & ~AF), SF);
    struct emu_fix *f = run_ok("mov eax, 0xff00ff00\n xor eax, 0x0f0f0f0f\n"
                               "mov ebx, eax\n test ebx, 0\n hlt");
    assert_int_equal(f->st.regs[R_EAX], 0xf00ff00f);
    assert_int_equal(f->st.eflags & (ZF | CF | OF), ZF);
    fix_free(f);
}

static void test_inc_dec_neg(void **state)
{
    /* INC/DEC keep CF. */
    assert_int_equal(
        flags_of("stc\n mov eax, 0x7fffffff\n inc eax\n hlt", ARITH),
        CF | OF | SF | AF | PF);
    assert_int_equal(flags_of("clc\n mov eax, 0\n dec eax\n hlt", ARITH),
                     SF | AF | PF);
    /* NEG: CF = source non-zero. 0 - 5 = 0xfffffffb (7 bits set). */
    assert_int_equal(flags_of("mov eax, 5\n neg eax\n hlt", ARITH),
                     CF | SF | AF);
    assert_int_equal(flags_of("stc\n mov eax, 0\n neg eax\n hlt", ARITH),
                     ZF | PF);
    struct emu_fix *f = run_ok("mov byte ptr [0x100000], 0xff\n"
                               "inc byte ptr [0x100000]\n"
                               "mov eax, 3\n not eax\n hlt");
    assert_int_equal(f->ram[DATA_ADDR], 0);
    assert_int_equal(f->st.regs[R_EAX], 0xfffffffc);
    fix_free(f);
}

static void test_conditions(void **state)
{
    /* After CMP -1, 1: less (signed), not below (unsigned). */
    struct emu_fix *f = run_ok("mov eax, -1\n cmp eax, 1\n"
                               "setl bl\n setb bh\n seta cl\n setg ch\n"
                               "sete dl\n setne dh\n hlt");
    assert_int_equal(f->st.regs[R_EBX] & 0xffff, 0x0001);
    assert_int_equal(f->st.regs[R_ECX] & 0xffff, 0x0001);
    assert_int_equal(f->st.regs[R_EDX] & 0xffff, 0x0100);
    fix_free(f);
    /* After TEST of 0x80: SF=1, OF=0, so L and LE hold. */
    f = run_ok("mov eax, 0x80\n test al, al\n"
               "sets bl\n setz bh\n setl cl\n setle ch\n hlt");
    assert_int_equal(f->st.regs[R_EBX] & 0xffff, 0x0001);
    assert_int_equal(f->st.regs[R_ECX] & 0xffff, 0x0101);
    fix_free(f);
    /* After ADD 0x7f + 1: OF=1, PF=0. */
    f = run_ok("mov al, 0x7f\n add al, 1\n"
               "seto bl\n setno bh\n setp cl\n setnp ch\n hlt");
    assert_int_equal(f->st.regs[R_EBX] & 0xffff, 0x0001);
    assert_int_equal(f->st.regs[R_ECX] & 0xffff, 0x0100);
    fix_free(f);
    /* CMOV and Jcc follow the same conditions. */
    f = run_ok("mov eax, 1\n mov ebx, 2\n cmp eax, ebx\n"
               "cmovb ecx, ebx\n cmova edx, ebx\n jae 1f\n mov esi, 9\n"
               "1: hlt");
    assert_int_equal(f->st.regs[R_ECX], 2);
    assert_int_equal(f->st.regs[R_EDX], 0);
    assert_int_equal(f->st.regs[R_ESI], 9);
    fix_free(f);
}

static void test_shifts(void **state)
{
    const uint32_t m = CF | OF | SF | ZF | PF;
    /* SHL 0x81 by 1 = 0x02: CF = old bit 7, OF = MSB(result) ^ CF. */
    assert_int_equal(flags_of("mov al, 0x81\n shl al, 1\n hlt", m), CF | OF);
    /* SHR 0x81 by 1 = 0x40: OF = MSB of the original. */
    assert_int_equal(flags_of("mov al, 0x81\n shr al, 1\n hlt", m), CF | OF);
    /* SAR 0x81 by 1 = 0xc0: OF = 0, two bits set. */
    assert_int_equal(flags_of("mov al, 0x81\n sar al, 1\n hlt", m),
                     CF | SF | PF);
    /* ROL leaves SF/ZF/PF alone (set to ZF|PF by XOR first). */
    assert_int_equal(
        flags_of("xor ecx, ecx\n mov al, 0x81\n rol al, 1\n hlt", m),
        CF | OF | ZF | PF);
    /* ROR 0x81 by 1 = 0xc0: CF = MSB, OF = bit 7 ^ bit 6 = 0. */
    assert_int_equal(flags_of("mov al, 0x81\n ror al, 1\n hlt", CF | OF), CF);
    assert_int_equal(flags_of("clc\n mov al, 0x81\n rcl al, 1\n hlt", CF | OF),
                     CF | OF);
    /* RCR: OF = MSB(dest) ^ CF before the rotate = 0 ^ 1. */
    assert_int_equal(flags_of("stc\n mov al, 1\n rcr al, 1\n hlt", CF | OF),
                     CF | OF);

    struct emu_fix *f =
        run_ok("mov al, 0x81\n shl al, 1\n mov bl, al\n"    /* 0x02 */
               "mov al, 0x81\n sar al, 1\n mov bh, al\n"    /* 0xc0 */
               "mov al, 0x81\n rol al, 1\n mov cl, al\n"    /* 0x03 */
               "mov al, 0x81\n ror al, 1\n mov ch, al\n"    /* 0xc0 */
               "stc\n mov al, 1\n rcr al, 1\n mov dl, al\n" /* 0x80 */
               "stc\n mov al, 0x55\n mov dh, 9\n xchg cl, dh\n rcl al, cl\n"
               "xchg cl, dh\n" /* 9 mod 9: 0x55 */
               "mov esi, 1\n push ecx\n mov cl, 33\n shl esi, cl\n pop ecx\n"
               "mov edi, 0x80000000\n sar edi, 31\n"
               "hlt");
    assert_int_equal(f->st.regs[R_EBX] & 0xffff, 0xc002);
    assert_int_equal(f->st.regs[R_ECX] & 0xffff, 0xc003);
    assert_int_equal(f->st.regs[R_EDX] & 0xff, 0x80);
    assert_int_equal(f->st.regs[R_EAX] & 0xff, 0x55);
    assert_int_equal(f->st.regs[R_ESI], 2); /* count & 31 = 1 */
    assert_int_equal(f->st.regs[R_EDI], 0xffffffff);
    fix_free(f);

    /* RCL by 9 of a byte rotates by 9 mod 9 = 0: nothing changes. */
    f = run_ok("stc\n mov al, 0x55\n mov cl, 9\n rcl al, cl\n hlt");
    assert_int_equal(f->st.regs[R_EAX] & 0xff, 0x55);
    assert_int_equal(f->st.eflags & CF, CF);
    fix_free(f);

    /* A count of 0 changes nothing, flags included. */
    f = run_ok("stc\n mov al, 0x81\n mov cl, 0\n shl al, cl\n hlt");
    assert_int_equal(f->st.regs[R_EAX] & 0xff, 0x81);
    assert_int_equal(f->st.eflags & CF, CF);
    fix_free(f);
}

static void test_double_shifts(void **state)
{
    struct emu_fix *f = run_ok("mov eax, 0x12345678\n mov ebx, 0x9abcdef0\n"
                               "shld eax, ebx, 4\n hlt");
    assert_int_equal(f->st.regs[R_EAX], 0x23456789);
    assert_int_equal(f->st.eflags & CF, CF); /* old bit 28 */
    fix_free(f);
    f = run_ok("mov eax, 0x12345678\n mov ebx, 0x9abcdef0\n mov cl, 8\n"
               "shrd eax, ebx, cl\n hlt");
    assert_int_equal(f->st.regs[R_EAX], 0xf0123456);
    assert_int_equal(f->st.eflags & CF, 0); /* old bit 7 */
    fix_free(f);
}

static void test_mul_div(void **state)
{
    struct emu_fix *f = run_ok("mov eax, 0x80000000\n mov ebx, 4\n mul ebx\n"
                               "hlt");
    assert_int_equal(f->st.regs[R_EDX], 2);
    assert_int_equal(f->st.regs[R_EAX], 0);
    assert_int_equal(f->st.eflags & (CF | OF), CF | OF);
    fix_free(f);
    f = run_ok("mov eax, 3\n mov ebx, 4\n mul ebx\n hlt");
    assert_int_equal(f->st.regs[R_EAX], 12);
    assert_int_equal(f->st.eflags & (CF | OF), 0);
    fix_free(f);
    /* IMUL r/m8: -2 * 3 = -6 fits in a byte; 100 * 3 does not. */
    f = run_ok("mov al, -2\n mov bl, 3\n imul bl\n mov ecx, eax\n"
               "mov al, 100\n imul bl\n hlt");
    assert_int_equal(f->st.regs[R_ECX] & 0xffff, 0xfffa);
    assert_int_equal(f->st.regs[R_EAX] & 0xffff, 300);
    assert_int_equal(f->st.eflags & (CF | OF), CF | OF);
    fix_free(f);
    f = run_ok("mov ebx, 5\n imul eax, ebx, -3\n"
               "mov ecx, 7\n mov edx, 6\n imul ecx, edx\n hlt");
    assert_int_equal(f->st.regs[R_EAX], (uint32_t)-15);
    assert_int_equal(f->st.regs[R_ECX], 42);
    assert_int_equal(f->st.eflags & (CF | OF), 0);
    fix_free(f);
    f = run_ok("mov edx, 1\n mov eax, 5\n mov ecx, 0x10\n div ecx\n"
               "mov esi, eax\n mov edi, edx\n"
               "mov eax, -7\n cdq\n mov ecx, 2\n idiv ecx\n"
               "mov ebx, eax\n mov ebp, edx\n"
               "mov ax, 1000\n mov cl, 7\n div cl\n hlt");
    assert_int_equal(f->st.regs[R_ESI], 0x10000000);
    assert_int_equal(f->st.regs[R_EDI], 5);
    assert_int_equal(f->st.regs[R_EBX], (uint32_t)-3);
    assert_int_equal(f->st.regs[R_EBP], (uint32_t)-1);
    assert_int_equal(f->st.regs[R_EAX] & 0xffff, 6 << 8 | 142);
    fix_free(f);
}

static void test_divide_error(void **state)
{
    struct emu_fix *f = fix_new();
    /* mov eax,1 (5 bytes) xor edx,edx (2) xor ecx,ecx (2): DIV at +9. */
    assert_int_equal(fix_run_asm(f,
                                 "mov eax, 1\n xor edx, edx\n"
                                 "xor ecx, ecx\n div ecx\n hlt"),
                     EMU_EXIT_ERROR);
    assert_string_equal(f->err, "divide error: f7 f1 at eip 0x00001009");
    assert_int_equal(f->st.eip, CODE_ADDR + 9);
    assert_int_equal(f->icount, 3);
    fix_free(f);
    /* Quotient too large for AL is a divide error too. */
    f = fix_new();
    assert_int_equal(fix_run_asm(f,
                                 "mov ax, 0x1000\n mov bl, 2\n div bl\n"
                                 "hlt"),
                     EMU_EXIT_ERROR);
    assert_non_null(strstr(f->err, "divide error"));
    fix_free(f);
}

static void test_data_movement(void **state)
{
    struct emu_fix *f =
        run_ok("mov dword ptr [0x100010], 0x80ff7f01\n"
               "movzx eax, byte ptr [0x100011]\n" /* 0x7f */
               "movsx ebx, byte ptr [0x100012]\n" /* 0xff -> -1 */
               "movsx ecx, word ptr [0x100012]\n" /* 0x80ff */
               "movzx edx, word ptr [0x100012]\n"
               "mov esi, 0x11223344\n bswap esi\n"
               "mov edi, 0x100000\n lea ebp, [edi+eax*4+8]\n"
               "hlt");
    assert_int_equal(f->st.regs[R_EAX], 0x7f);
    assert_int_equal(f->st.regs[R_EBX], 0xffffffff);
    assert_int_equal(f->st.regs[R_ECX], 0xffff80ff);
    assert_int_equal(f->st.regs[R_EDX], 0x80ff);
    assert_int_equal(f->st.regs[R_ESI], 0x44332211);
    assert_int_equal(f->st.regs[R_EBP], 0x100000 + 0x7f * 4 + 8);
    fix_free(f);

    f = run_ok("mov eax, 0x8000\n cwde\n mov ebx, eax\n"
               "mov al, 0x80\n cbw\n mov ecx, eax\n"
               "mov eax, 0x80000000\n cdq\n mov esi, edx\n"
               "mov eax, 1\n mov edx, 2\n xchg eax, edx\n"
               "mov dword ptr [0x100000], 7\n xchg [0x100000], eax\n"
               "mov [0x100004], eax\n mov ebp, [0x100000]\n"
               "xor eax, eax\n mov eax, [0x100004]\n hlt");
    assert_int_equal(f->st.regs[R_EBX], 0xffff8000);
    assert_int_equal(f->st.regs[R_ECX] & 0xffff, 0xff80);
    assert_int_equal(f->st.regs[R_ESI], 0xffffffff);
    assert_int_equal(f->st.regs[R_EAX], 7);
    assert_int_equal(f->st.regs[R_EDX], 1);
    assert_int_equal(f->st.regs[R_EBP], 2);
    assert_int_equal(f->ram[DATA_ADDR + 4], 7);
    fix_free(f);
}

static void test_stack_and_calls(void **state)
{
    struct emu_fix *f =
        run_ok("push 0x11223344\n push -1\n pop ebx\n pop ecx\n"
               "call func\n jmp 2f\n"
               "func: mov edx, 7\n ret\n"
               "2: push 5\n push 6\n call func2\n jmp 3f\n"
               "func2: ret 8\n"
               "3: mov eax, 1\n mov esi, 2\n pushad\n mov eax, 0\n mov esi, 0\n"
               "popad\n"
               "push ebp\n mov ebp, esp\n push 1\n push 2\n leave\n"
               "lea eax, [func]\n call eax\n hlt");
    assert_int_equal(f->st.regs[R_EBX], 0xffffffff);
    assert_int_equal(f->st.regs[R_ECX], 0x11223344);
    assert_int_equal(f->st.regs[R_EDX], 7);
    assert_int_equal(f->st.regs[R_ESI], 2);
    assert_int_equal(f->st.regs[R_ESP], STACK_TOP);
    fix_free(f);
}

static void test_flag_instructions(void **state)
{
    struct emu_fix *f =
        run_ok("stc\n cmc\n setc bl\n stc\n setc bh\n clc\n setc cl\n"
               "std\n cld\n cli\n sti\n"
               "mov ah, 0xd5\n sahf\n lahf\n mov dl, ah\n"
               "pushfd\n pop esi\n"
               "push 0x8d5\n popfd\n hlt");
    assert_int_equal(f->st.regs[R_EBX] & 0xffff, 0x0100);
    assert_int_equal(f->st.regs[R_ECX] & 0xff, 0);
    assert_int_equal(f->st.regs[R_EDX] & 0xff, 0xd7);   /* bit 1 reads 1 */
    assert_int_equal(f->st.regs[R_ESI] & 0xfff, 0x2d7); /* IF, SZAPC, bit 1 */
    assert_int_equal(f->st.eflags & 0xfff, 0x8d7);
    fix_free(f);
}

static void test_bit_ops(void **state)
{
    struct emu_fix *f =
        run_ok("mov eax, 0x10\n bt eax, 4\n setc bl\n"
               "bts eax, 0\n setc bh\n"     /* eax = 0x11 */
               "btr eax, 4\n btc eax, 31\n" /* eax = 0x80000001 */
               "mov dword ptr [0x100000], 0\n mov ecx, 35\n"
               "bts dword ptr [0x100000], ecx\n" /* bit 3 of the next dword */
               "mov edx, 0x00f0\n bsf esi, edx\n bsr edi, edx\n hlt");
    assert_int_equal(f->st.regs[R_EBX] & 0xffff, 0x0001);
    assert_int_equal(f->st.regs[R_EAX], 0x80000001);
    assert_int_equal(f->ram[DATA_ADDR + 4], 0x08);
    assert_int_equal(f->st.regs[R_ESI], 4);
    assert_int_equal(f->st.regs[R_EDI], 7);
    assert_int_equal(f->st.eflags & ZF, 0);
    fix_free(f);
    /* BSF of 0: ZF set, destination unchanged. */
    f = run_ok("mov esi, 0x55\n xor edx, edx\n bsf esi, edx\n hlt");
    assert_int_equal(f->st.regs[R_ESI], 0x55);
    assert_int_equal(f->st.eflags & ZF, ZF);
    fix_free(f);
}

static void test_atomics(void **state)
{
    struct emu_fix *f = run_ok(
        "mov dword ptr [0x100000], 10\n mov eax, 5\n"
        "lock xadd [0x100000], eax\n" /* mem 15, eax 10 */
        "mov eax, 15\n mov ebx, 99\n"
        "lock cmpxchg [0x100000], ebx\n setz cl\n" /* equal: mem 99 */
        "mov eax, 1\n lock cmpxchg [0x100000], ebx\n setz ch\n" /* eax 99 */
        "lock inc dword ptr [0x100000]\n"                       /* 100 */
        "lock add dword ptr [0x100000], 11\n"                   /* 111 */
        "mov esi, [0x100000]\n hlt");
    assert_int_equal(f->st.regs[R_ECX] & 0xffff, 0x0001);
    assert_int_equal(f->st.regs[R_EAX], 99);
    assert_int_equal(f->st.regs[R_ESI], 111);
    fix_free(f);
}

static void test_loops(void **state)
{
    struct emu_fix *f =
        run_ok("mov ecx, 10\n xor eax, eax\n"
               "1: add eax, 2\n loop 1b\n"
               "mov ecx, 5\n xor ebx, ebx\n"
               "2: inc ebx\n cmp ebx, 3\n loopne 2b\n" /* stops at ebx 3 */
               "mov edx, ecx\n xor ecx, ecx\n jecxz 3f\n mov esi, 1\n"
               "3: hlt");
    assert_int_equal(f->st.regs[R_EAX], 20);
    assert_int_equal(f->st.regs[R_EBX], 3);
    assert_int_equal(f->st.regs[R_EDX], 2);
    assert_int_equal(f->st.regs[R_ESI], 0);
    fix_free(f);
}

static void test_strings(void **state)
{
    struct emu_fix *f = fix_new();
    for (int i = 0; i < 100; i++)
        f->ram[DATA_ADDR + i] = (uint8_t)i;
    assert_int_equal(
        fix_run_asm(
            f,
            "cld\n mov esi, 0x100000\n mov edi, 0x100200\n mov ecx, 100\n"
            "rep movsb\n hlt"),
        EMU_EXIT_HLT);
    assert_memory_equal(f->ram + DATA_ADDR, f->ram + DATA_ADDR + 0x200, 100);
    assert_int_equal(f->st.regs[R_ECX], 0);
    assert_int_equal(f->st.regs[R_ESI], 0x100064);
    assert_int_equal(f->st.regs[R_EDI], 0x100264);
    fix_free(f);

    /* Overlapping forward MOVSB replicates the first byte. */
    f = fix_new();
    for (int i = 0; i < 16; i++)
        f->ram[DATA_ADDR + i] = (uint8_t)(0xa0 + i);
    assert_int_equal(
        fix_run_asm(f,
                    "mov esi, 0x100000\n mov edi, 0x100001\n mov ecx, 10\n"
                    "rep movsb\n hlt"),
        EMU_EXIT_HLT);
    for (int i = 0; i <= 10; i++)
        assert_int_equal(f->ram[DATA_ADDR + i], 0xa0);
    assert_int_equal(f->ram[DATA_ADDR + 11], 0xab);
    fix_free(f);

    /* STOSD, backwards MOVSB, LODSD. */
    f = fix_new();
    memcpy(f->ram + DATA_ADDR, "0123456789", 10);
    assert_int_equal(
        fix_run_asm(
            f,
            "mov edi, 0x100400\n mov eax, 0xdeadbeef\n mov ecx, 10\n rep "
            "stosd\n"
            "mov ebx, edi\n"
            "std\n mov esi, 0x100009\n mov edi, 0x100309\n mov ecx, 10\n"
            "rep movsb\n cld\n mov ebp, esi\n mov edx, edi\n"
            "mov esi, 0x100400\n lodsd\n hlt"),
        EMU_EXIT_HLT);
    for (int i = 0; i < 10; i++)
        assert_int_equal(*(uint32_t *)(f->ram + DATA_ADDR + 0x400 + 4 * i),
                         0xdeadbeef);
    assert_int_equal(*(uint32_t *)(f->ram + DATA_ADDR + 0x428), 0);
    assert_int_equal(f->st.regs[R_EBX], 0x100428);
    assert_memory_equal(f->ram + DATA_ADDR + 0x300, "0123456789", 10);
    assert_int_equal(f->st.regs[R_EBP], 0x0fffff);
    assert_int_equal(f->st.regs[R_EDX], 0x1002ff);
    assert_int_equal(f->st.regs[R_EAX], 0xdeadbeef);
    assert_int_equal(f->st.regs[R_ESI], 0x100404);
    fix_free(f);

    /* REPNE SCASB finds 'l' at index 2; REPE CMPSB stops at the
     * mismatch 'x' < 'y' (borrow). */
    f = fix_new();
    memcpy(f->ram + DATA_ADDR, "hello", 6);
    memcpy(f->ram + DATA_ADDR + 0x10, "abcx", 4);
    memcpy(f->ram + DATA_ADDR + 0x20, "abcy", 4);
    assert_int_equal(
        fix_run_asm(
            f,
            "mov edi, 0x100000\n mov al, 'l'\n mov ecx, 6\n repne scasb\n"
            "setz bl\n mov edx, edi\n mov ebp, ecx\n"
            "mov esi, 0x100010\n mov edi, 0x100020\n mov ecx, 4\n repe cmpsb\n"
            "hlt"),
        EMU_EXIT_HLT);
    assert_int_equal(f->st.regs[R_EBX] & 0xff, 1);
    assert_int_equal(f->st.regs[R_EDX], 0x100003);
    assert_int_equal(f->st.regs[R_EBP], 3);
    assert_int_equal(f->st.regs[R_ECX], 0);
    assert_int_equal(f->st.regs[R_ESI], 0x100014);
    assert_int_equal(f->st.eflags & (ZF | CF), CF);
    fix_free(f);
}

static void test_cpuid(void **state)
{
    struct emu_fix *f = fix_new();
    emu_cpu_set_topology(f->cpu, 2, 4);
    assert_int_equal(
        fix_run_asm(
            f,
            "xor eax, eax\n cpuid\n mov [0x100000], ebx\n mov [0x100004], edx\n"
            "mov [0x100008], ecx\n mov esi, eax\n"
            "mov eax, 1\n cpuid\n hlt"),
        EMU_EXIT_HLT);
    assert_memory_equal(f->ram + DATA_ADDR, "hopHOPhopHOP", 12);
    assert_int_equal(f->st.regs[R_ESI], 1);
    assert_int_equal(f->st.regs[R_EBX] >> 24, 2);
    assert_int_equal((f->st.regs[R_EBX] >> 16) & 0xff, 4);
    assert_int_equal(f->st.regs[R_EDX] & (1u << 4), 1u << 4);
    fix_free(f);
}

static void test_segments(void **state)
{
    /* A GDT with a flat code segment (0x08) and a data segment whose base
     * is 0x100000 (0x10); a far jump reloads CS, MOV DS makes [0] mean
     * linear 0x100000. */
    struct emu_fix *f = fix_new();
    f->ram[DATA_ADDR] = 0x5a;
    assert_int_equal(
        fix_run_asm(f,
                    "lgdt [gdtr]\n"
                    "ljmp 0x08, offset 1f\n"
                    "1: mov ax, 0x10\n mov ds, ax\n mov bl, [0]\n"
                    "mov cx, ds\n sgdt [0x10]\n hlt\n"
                    ".p2align 3\n"
                    "gdt: .quad 0\n"
                    ".quad 0x00cf9a000000ffff\n" /* code, base 0 */
                    ".quad 0x00cf92100000ffff\n" /* data, base 0x100000 */
                    "gdtr: .word 23\n .long gdt\n"),
        EMU_EXIT_HLT);
    assert_int_equal(f->st.regs[R_EBX] & 0xff, 0x5a);
    assert_int_equal(f->st.regs[R_ECX] & 0xffff, 0x10);
    assert_int_equal(f->st.seg[S_DS].base, 0x100000);
    assert_int_equal(f->st.seg[S_DS].limit, 0xffffffff);
    assert_int_equal(f->st.seg[S_CS].selector, 0x08);
    assert_int_equal(f->st.gdt.limit, 23);
    /* SGDT went through DS: linear 0x100010. */
    assert_int_equal(*(uint16_t *)(f->ram + DATA_ADDR + 0x10), 23);
    fix_free(f);
}

static void test_control_registers(void **state)
{
    struct emu_fix *f = run_ok("mov eax, 0x12345000\n mov cr3, eax\n"
                               "mov ecx, 0x10\n mov cr4, ecx\n"
                               "mov edx, cr0\n mov esi, cr3\n hlt");
    assert_int_equal(f->st.cr3, 0x12345000);
    assert_int_equal(f->st.cr4, 0x10);
    assert_int_equal(f->st.regs[R_ESI], 0x12345000);
    assert_int_equal(f->st.regs[R_EDX], 0x11); /* PE | ET at reset */
    fix_free(f);
}

static void test_icount(void **state)
{
    struct emu_fix *f = run_ok("nop\n mov eax, 1\n add eax, eax\n"
                               "mov ecx, 3\n 1: loop 1b\n hlt");
    /* nop, mov, add, mov, loop x3, hlt */
    assert_int_equal(f->icount, 8);
    fix_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_flags),
        cmocka_unit_test(test_sub_flags),
        cmocka_unit_test(test_adc_sbb),
        cmocka_unit_test(test_logic_flags),
        cmocka_unit_test(test_inc_dec_neg),
        cmocka_unit_test(test_conditions),
        cmocka_unit_test(test_shifts),
        cmocka_unit_test(test_double_shifts),
        cmocka_unit_test(test_mul_div),
        cmocka_unit_test(test_divide_error),
        cmocka_unit_test(test_data_movement),
        cmocka_unit_test(test_stack_and_calls),
        cmocka_unit_test(test_flag_instructions),
        cmocka_unit_test(test_bit_ops),
        cmocka_unit_test(test_atomics),
        cmocka_unit_test(test_loops),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_cpuid),
        cmocka_unit_test(test_segments),
        cmocka_unit_test(test_control_registers),
        cmocka_unit_test(test_icount),
    };
    return cmocka_run_group_tests_name("emu instructions", tests, NULL, NULL);
}
