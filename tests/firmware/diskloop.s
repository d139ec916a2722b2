# Test kernel: keeps writing the ATA master while it runs.  It fills every
# sector once ("diskloop: filled"), then rewrites the first 4 MiB (or the
# whole drive, if smaller) over and over, each pass with its own pattern,
# printing "diskloop: pass N" after each.  Sector LBA of pass P holds
# dwords (LBA * 0x01000193) ^ i ^ (P << 16) ^ 0x5a5a0000, i = 0..127.
        .code32
        .set BUF, 0x20000               # one sector of data
        .set WINDOW, 8192               # sectors rewritten each pass

        .text
        .include "common.inc"
        .include "ata.inc"
        .section .multiboot, "a"
        multiboot_header _start

        .text
        .globl _start
_start:
        cpu_stack 0x90000
        park_other_cpus
        call serial_init
        call ata_identify
        jc io_error
        xor %esi, %esi                  # esi = pass
        call write_range
        jc io_error
        push %esi
        mov $msg_filled, %esi
        call puts
        pop %esi
        cmp $WINDOW, %ebp
        jbe pass_loop
        mov $WINDOW, %ebp
pass_loop:
        inc %esi
        call write_range
        jc io_error
        push %esi
        mov $msg_pass, %esi
        call puts
        pop %esi
        mov %esi, %eax
        call putdec
        mov $'\n', %al
        call putc
        jmp pass_loop

# Writes sectors 0..ebp-1 with pass esi's pattern; CF on error.
write_range:
        xor %ebx, %ebx
1:      cmp %ebp, %ebx
        jae 2f
        call make_pattern
        mov $0x30, %al                  # WRITE SECTORS
        call issue
        call wait_drq
        jc 3f
        push %esi
        mov $BUF, %esi
        mov $256, %ecx
        mov $ATA, %dx
        rep outsw
        pop %esi
        call wait_ready
        jc 3f
        inc %ebx
        jmp 1b
2:      clc
3:      ret

io_error:
        mov $msg_ioerr, %esi
        call puts
        mov %ebx, %eax
        call putdec
        mov $'\n', %al
        call putc
1:      cli
        hlt
        jmp 1b

msg_filled:   .asciz "diskloop: filled\n"
msg_pass:     .asciz "diskloop: pass "
msg_ioerr:    .asciz "diskloop: I/O error at sector "
