# disk: writes a pattern to every sector of the ATA master drive (LBA28
# PIO, one sector per command), flushes, reads everything back and prints
# "disk: OK" or "disk: bad sector N"; then halts.
        .code32
        .set ATA, 0x1f0
        .set ATA_STATUS, 0x1f7
        .set ST_BSY, 0x80
        .set ST_DRQ, 0x08
        .set ST_ERR, 0x01
        .set BUF, 0x20000               # one sector of data
        .set ID, 0x21000                # IDENTIFY data

        .text
        .include "common.inc"
        .section .multiboot, "a"
        multiboot_header _start

        .text
        .globl _start
_start:
        cpu_stack 0x90000
        park_other_cpus
        call serial_init
        mov $msg_start, %esi
        call puts
        # IDENTIFY DEVICE on the master.
        mov $ATA+6, %dx
        mov $0xe0, %al
        outb %al, %dx
        mov $ATA_STATUS, %dx
        mov $0xec, %al
        outb %al, %dx
        inb %dx, %al
        test %al, %al
        jz no_drive
        cmp $0xff, %al
        je no_drive
        call wait_drq
        jc no_drive
        mov $ID, %edi
        mov $256, %ecx
        mov $ATA, %dx
        cld
        rep insw
        mov ID+120, %ebp                # words 60-61: LBA28 sectors
        mov $msg_sectors1, %esi
        call puts
        mov %ebp, %eax
        call putdec
        mov $msg_sectors2, %esi
        call puts

        xor %ebx, %ebx                  # ebx = lba
write_loop:
        cmp %ebp, %ebx
        jae write_done
        call make_pattern
        mov $0x30, %al
        call issue
        call wait_drq
        jc io_error
        mov $BUF, %esi
        mov $256, %ecx
        mov $ATA, %dx
        rep outsw
        call wait_ready
        jc io_error
        inc %ebx
        jmp write_loop
write_done:
        mov $ATA_STATUS, %dx
        mov $0xe7, %al                  # FLUSH CACHE
        outb %al, %dx
        call wait_ready
        jc io_error
        mov $msg_written, %esi
        call puts

        xor %ebx, %ebx
read_loop:
        cmp %ebp, %ebx
        jae all_ok
        mov $0x20, %al
        call issue
        call wait_drq
        jc io_error
        mov $BUF + 512, %edi
        mov $256, %ecx
        mov $ATA, %dx
        rep insw
        call make_pattern
        mov $BUF, %esi
        mov $BUF + 512, %edi
        mov $128, %ecx
        repe cmpsl
        jne bad_sector
        inc %ebx
        jmp read_loop

all_ok:
        mov $msg_ok, %esi
        call puts
        jmp halt
bad_sector:
        mov $msg_bad, %esi
        call puts
        mov %ebx, %eax
        call putdec
        mov $'\n', %al
        call putc
        jmp halt
io_error:
        mov $msg_ioerr, %esi
        call puts
        mov %ebx, %eax
        call putdec
        mov $'\n', %al
        call putc
        jmp halt
no_drive:
        mov $msg_nodrive, %esi
        call puts
halt:
        cli
        hlt
        jmp halt

# The expected contents of sector ebx at BUF.
make_pattern:
        push %ecx
        push %eax
        push %edi
        mov $BUF, %edi
        xor %ecx, %ecx
1:      mov %ebx, %eax
        imul $0x01000193, %eax
        xor %ecx, %eax
        xor $0x5a5a0000, %eax
        mov %eax, (%edi,%ecx,4)
        inc %ecx
        cmp $128, %ecx
        jb 1b
        pop %edi
        pop %eax
        pop %ecx
        ret

# Issue command al for one sector at LBA ebx.
issue:
        push %eax
        call wait_ready
        mov $ATA+2, %dx
        mov $1, %al
        outb %al, %dx
        mov %ebx, %eax
        mov $ATA+3, %dx
        outb %al, %dx
        shr $8, %eax
        mov $ATA+4, %dx
        outb %al, %dx
        shr $8, %eax
        mov $ATA+5, %dx
        outb %al, %dx
        shr $8, %eax
        and $0x0f, %al
        or $0xe0, %al
        mov $ATA+6, %dx
        outb %al, %dx
        pop %eax
        mov $ATA_STATUS, %dx
        outb %al, %dx
        ret

# Wait for BSY clear; CF set if ERR.
wait_ready:
        mov $ATA_STATUS, %dx
1:      inb %dx, %al
        test $ST_BSY, %al
        jnz 1b
        test $ST_ERR, %al
        jnz 2f
        clc
        ret
2:      stc
        ret

# Wait for DRQ; CF set if ERR (or the command ended without data).
wait_drq:
        mov $ATA_STATUS, %dx
1:      inb %dx, %al
        test $ST_BSY, %al
        jnz 1b
        test $ST_ERR, %al
        jnz 2f
        test $ST_DRQ, %al
        jz 2f
        clc
        ret
2:      stc
        ret

msg_start:    .asciz "disk: start\n"
msg_sectors1: .asciz "disk: "
msg_sectors2: .asciz " sectors\n"
msg_written:  .asciz "disk: written\n"
msg_ok:       .asciz "disk: OK\n"
msg_bad:      .asciz "disk: bad sector "
msg_ioerr:    .asciz "disk: I/O error at sector "
msg_nodrive:  .asciz "disk: no drive\n"
