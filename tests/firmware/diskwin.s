# Test kernel: reads every sector of the ATA master and prints a checksum
# of the whole drive ("diskwin: sum XXXXXXXX": h = h * 0x01000193 + d over
# its little-endian dwords d, from h = 0), then rewrites a window of
# WINDOW sectors from LBA FIRST over and over (one sector per command, so
# every write covers part of a cluster), each pass with its own pattern,
# printing "diskwin: pass N" after each.  Sector LBA of pass P holds
# dwords (LBA * 0x01000193) ^ i ^ (P << 16) ^ 0x5a5a0000, i = 0..127.
        .code32
        .set BUF, 0x20000               # one sector of data
        .set FIRST, 2049                # 1 MiB + 512 bytes
        .set WINDOW, 2048               # 1 MiB

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

        xor %ebx, %ebx                  # ebx = lba
        xor %esi, %esi                  # esi = checksum
sum_loop:
        cmp %ebp, %ebx
        jae sum_done
        mov $0x20, %al                  # READ SECTORS
        call issue
        call wait_drq
        jc io_error
        mov $BUF, %edi
        mov $256, %ecx
        mov $ATA, %dx
        rep insw
        xor %ecx, %ecx
1:      imul $0x01000193, %esi
        add BUF(,%ecx,4), %esi
        inc %ecx
        cmp $128, %ecx
        jb 1b
        inc %ebx
        jmp sum_loop
sum_done:
        push %esi
        mov $msg_sum, %esi
        call puts
        pop %eax
        call puthex32
        mov $'\n', %al
        call putc

        xor %esi, %esi                  # esi = pass
pass_loop:
        inc %esi
        mov $FIRST, %ebx
1:      cmp $FIRST + WINDOW, %ebx
        jae 2f
        cmp %ebp, %ebx
        jae 2f
        call make_pattern
        mov $0x30, %al                  # WRITE SECTORS
        call issue
        call wait_drq
        jc io_error
        push %esi
        mov $BUF, %esi
        mov $256, %ecx
        mov $ATA, %dx
        rep outsw
        pop %esi
        call wait_ready
        jc io_error
        inc %ebx
        jmp 1b
2:      push %esi
        mov $msg_pass, %esi
        call puts
        pop %esi
        mov %esi, %eax
        call putdec
        mov $'\n', %al
        call putc
        jmp pass_loop

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

msg_sum:      .asciz "diskwin: sum "
msg_pass:     .asciz "diskwin: pass "
msg_ioerr:    .asciz "diskwin: I/O error at sector "
