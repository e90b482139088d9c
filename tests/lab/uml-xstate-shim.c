/* uml-xstate-shim.c -- LD_PRELOAD for linux.uml (Debian's 6.1 UML) on hosts
 * whose XSAVE area is larger than UML 6.1 knows about (AMX: 11008 bytes).
 *
 * UML 6.1 restores a process's FPU state with PTRACE_SETREGSET
 * NT_X86_XSTATE and a fixed-size buffer; the host kernel only accepts the
 * full size (arch/x86/kernel/fpu/regset.c, xstateregs_set: anything else is
 * EFAULT), so on such hosts UML's init dies at once ("ptrace set fp regs
 * failed, errno = 14", kernel panic: attempted to kill init). This shim
 * completes a short buffer: it reads the full current state, lays UML's
 * bytes over its start, clears the features UML's buffer does not cover
 * from the header's XSTATE_BV (their registers go to their initial state;
 * UML's processes never use them) and sets the full buffer. Everything
 * else goes to libc's ptrace unchanged. uml-run.sh builds and uses it.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/types.h>
#include <sys/uio.h>

#define XSAVE_HDR 512      /* the XSAVE header's offset: XSTATE_BV first */
#define FULL_MAX 65536

typedef long (*ptrace_fn)(enum __ptrace_request, pid_t, void *, void *);

long ptrace(enum __ptrace_request request, ...)
{
    static ptrace_fn real;
    static unsigned char full[FULL_MAX] __attribute__((aligned(64)));
    va_list ap;
    pid_t pid;
    void *addr, *data;

    va_start(ap, request);
    pid = va_arg(ap, pid_t);
    addr = va_arg(ap, void *);
    data = va_arg(ap, void *);
    va_end(ap);
    if (!real)
        real = (ptrace_fn)dlsym(RTLD_NEXT, "ptrace");

    if (request == PTRACE_SETREGSET && (uintptr_t)addr == NT_X86_XSTATE && data) {
        struct iovec *in = data, get = { full, sizeof(full) }, set;
        if (real(PTRACE_GETREGSET, pid, addr, &get) == 0 && get.iov_len > in->iov_len &&
            in->iov_len >= XSAVE_HDR + 8) {
            static uint64_t keep;
            static size_t keep_for;
            uint64_t bv;
            unsigned bit;
            memcpy(full, in->iov_base, in->iov_len);
            /* Keep only the components that lie inside UML's buffer:
             * x87 and SSE (legacy area) and those whose standard-format
             * offset + size (CPUID 0xd, sub-leaf bit) fits. CPUID is
             * slow in a VM: once per buffer size. */
            if (keep_for != in->iov_len) {
                keep = 3;
                for (bit = 2; bit < 64; bit++) {
                    unsigned a, b, c, d;
                    __asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(0xd), "c"(bit));
                    if (a != 0 && (uint64_t)b + a <= in->iov_len)
                        keep |= 1ull << bit;
                }
                keep_for = in->iov_len;
            }
            memcpy(&bv, full + XSAVE_HDR, sizeof(bv));
            bv &= keep;
            memcpy(full + XSAVE_HDR, &bv, sizeof(bv));
            set.iov_base = full;
            set.iov_len = get.iov_len;
            return real(PTRACE_SETREGSET, pid, addr, &set);
        }
    }
    return real(request, pid, addr, data);
}
