# memtest: fills every page from 1 MiB to the end of RAM with non-zero
# data whose first byte (the counter) is 1 in every page, then forever
# increments the counter byte of every page and prints '.' on COM1 after
# each pass.  The vCPUs (CPUID leaf 1 EBX: index and count) split the
# pages into equal chunks, the last one taking the remainder, and meet
# at a barrier after every pass, so when the machine stops every page
# holds the same value v except a prefix of each chunk that holds v+1.
#
# The entry at 1 MiB copies the code below (.low, linked at 0x10000)
# down there first, so the whole range above 1 MiB can be tested.
        .code32
        .set LOW_STACKS, 0x80000        # vCPU i: stack below 0x80000-i*4K
        .set PAGE, 4096

        .section .low, "awx"
        .include "common.inc"

        .section .multiboot, "a"
        multiboot_header _start

        .text
        .globl _start
_start:
        mov %eax, boot_magic
        mov %ebx, boot_info
        mov $1, %eax
        cpuid
        shr $24, %ebx
        jnz wait_release                # only vCPU 0 copies
        mov $_low_load, %esi
        mov $_low_start, %edi
        mov $_low_size, %ecx
        shr $2, %ecx
        cld
        rep movsl
        # Top of tested RAM from the multiboot info (1 MiB + mem_upper).
        mov $0x200000, %eax             # without info: 1 MiB of pages
        cmpl $MB_BOOT_MAGIC, boot_magic
        jne 1f
        mov boot_info, %ebp
        testl $1, (%ebp)
        jz 1f
        mov 8(%ebp), %eax               # mem_upper, KiB
        shl $10, %eax
        add $0x100000, %eax
1:      and $~(PAGE - 1), %eax
        mov %eax, ram_end
        movl $1, released
        jmp low_main
wait_release:
        pause
        cmpl $0, released
        je wait_release
        jmp low_main

released:   .long 0
boot_magic: .long 0
boot_info:  .long 0

# ---- everything below runs at 0x10000 ----
        .section .low, "awx"
low_main:
        mov $1, %eax
        cpuid
        mov %ebx, %ebp
        shr $24, %ebx                   # ebx = index
        shr $16, %ebp
        and $0xff, %ebp                 # ebp = count
        jnz 1f
        inc %ebp
1:
        mov %ebx, %esp
        shl $12, %esp
        neg %esp
        add $LOW_STACKS, %esp
        lock incl arrived
1:      pause
        cmp arrived, %ebp               # all vCPUs left the 1 MiB code?
        ja 1b
        test %ebx, %ebx
        jnz 2f
        call serial_init
        mov $msg_start, %esi
        call puts
        mov ram_end, %eax
        sub $0x100000, %eax
        shr $12, %eax
        call putdec
        mov $msg_pages, %esi
        call puts
        mov %ebp, %eax
        call putdec
        mov $msg_cpus, %esi
        call puts
2:
        # This vCPU's chunk: [chunk_start, chunk_end).
        mov ram_end, %eax
        sub $0x100000, %eax
        shr $12, %eax                   # pages
        xor %edx, %edx
        div %ebp                        # eax = pages per chunk
        mov %eax, %ecx
        imul %ebx, %eax
        shl $12, %eax
        add $0x100000, %eax
        mov %eax, chunk_start(,%ebx,4)
        shl $12, %ecx
        add %ecx, %eax
        lea 1(%ebx), %edx
        cmp %edx, %ebp
        jne 3f
        mov ram_end, %eax               # the last chunk takes the rest
3:      mov %eax, chunk_end(,%ebx,4)

        # Fill: a non-zero pattern, counter byte 1.
        mov chunk_start(,%ebx,4), %edi
fill:
        cmp chunk_end(,%ebx,4), %edi
        jae filled
        mov %edi, %edx
        mov %edi, %eax
        xor $0xa5a5a5a5, %eax
        or $0x01010101, %eax
        mov $PAGE / 4, %ecx
        cld
        rep stosl
        movb $1, (%edx)
        jmp fill
filled:
        xor %esi, %esi                  # esi = barrier generation
        call barrier
        test %ebx, %ebx
        jnz pass
        push %esi
        mov $msg_filled, %esi
        call puts
        pop %esi

pass:
        mov chunk_start(,%ebx,4), %edi
        mov chunk_end(,%ebx,4), %ecx
        cmp %ecx, %edi
        jae 2f
1:      incb (%edi)
        add $PAGE, %edi
        cmp %ecx, %edi
        jb 1b
2:      call barrier
        test %ebx, %ebx
        jnz pass
        mov $'.', %al
        call putc
        jmp pass

# Wait until every vCPU has arrived here as often as this one (esi
# counts this vCPU's arrivals).
barrier:
        inc %esi
        mov %esi, %eax
        imul %ebp, %eax                 # target = generation * count
        lock incl barrier_count
1:      cmp barrier_count, %eax
        jbe 2f
        pause
        jmp 1b
2:      ret

msg_start:  .asciz "memtest: "
msg_pages:  .asciz " pages from 1 MiB, "
msg_cpus:   .asciz " vCPUs\n"
msg_filled: .asciz "memtest: filled\n"
        .align 4
ram_end:        .long 0
arrived:        .long 0
barrier_count:  .long 0
chunk_start:    .fill 8, 4, 0
chunk_end:      .fill 8, 4, 0
