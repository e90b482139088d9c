/*
 * uml-xstate-shim.c -- LD_PRELOAD for linux.uml (built and used by uml-run.sh).
 *
 * UML 6.1 saves and restores its processes' FPU state with
 * PTRACE_GETREGSET/SETREGSET NT_X86_XSTATE and a fixed 832-byte buffer
 * (x87/SSE, XSAVE header, AVX). Host kernels since 5.14 only accept a
 * SETREGSET of the host's whole XSAVE size, which is larger on CPUs with
 * AVX-512 or AMX (2696 and 11008 bytes): there the call fails with EFAULT
 * ("ptrace set fp regs failed, errno = 14") and the guest's init dies at boot.
 *
 * This wrapper reads the whole state into a buffer of its own, hands UML its
 * first bytes on GETREGSET, and on SETREGSET overlays UML's bytes on the
 * current whole state before writing it back. The parts UML does not know
 * (AVX-512, AMX) stay as the process left them.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdarg.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/types.h>
#include <sys/uio.h>

#define XSTATE_NOTE 0x202 /* NT_X86_XSTATE */

static unsigned char whole[65536] __attribute__((aligned(64)));

long ptrace(enum __ptrace_request req, ...)
{
    static long (*real)(enum __ptrace_request, pid_t, void *, void *);
    va_list ap;
    va_start(ap, req);
    pid_t pid = va_arg(ap, pid_t);
    void *addr = va_arg(ap, void *);
    void *data = va_arg(ap, void *);
    va_end(ap);
    if (!real)
        real = (long (*)(enum __ptrace_request, pid_t, void *, void *))dlsym(RTLD_NEXT, "ptrace");
    if ((req == PTRACE_GETREGSET || req == PTRACE_SETREGSET) && (long)addr == XSTATE_NOTE) {
        struct iovec *iov = data;
        struct iovec all = { whole, sizeof whole };
        long r = real(PTRACE_GETREGSET, pid, addr, &all);
        if (r < 0)
            return r;
        size_t n = iov->iov_len < all.iov_len ? iov->iov_len : all.iov_len;
        if (req == PTRACE_GETREGSET) {
            memcpy(iov->iov_base, whole, n);
            iov->iov_len = n;
            return r;
        }
        memcpy(whole, iov->iov_base, n);
        return real(PTRACE_SETREGSET, pid, addr, &all);
    }
    return real(req, pid, addr, data);
}
