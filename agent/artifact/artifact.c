/* artifact: see artifact.h. */
#include "artifact.h"

#include <elf.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

/* This machine's ELF identity: what the kernel's loader accepts here. */
#if defined(__x86_64__)
#define NATIVE_MACHINE EM_X86_64
#define NATIVE_NAME "x86-64"
#elif defined(__aarch64__)
#define NATIVE_MACHINE EM_AARCH64
#define NATIVE_NAME "aarch64"
#elif defined(__i386__)
#define NATIVE_MACHINE EM_386
#define NATIVE_NAME "i386"
#elif defined(__arm__)
#define NATIVE_MACHINE EM_ARM
#define NATIVE_NAME "arm"
#elif defined(__riscv)
#define NATIVE_MACHINE EM_RISCV
#define NATIVE_NAME "riscv"
#elif defined(__powerpc64__)
#define NATIVE_MACHINE EM_PPC64
#define NATIVE_NAME "ppc64"
#elif defined(__s390x__)
#define NATIVE_MACHINE EM_S390
#define NATIVE_NAME "s390x"
#else
#error "artifact.c: add this architecture's ELF machine"
#endif
#define NATIVE_CLASS (sizeof(void *) == 8 ? ELFCLASS64 : ELFCLASS32)
#define NATIVE_DATA (__BYTE_ORDER == __LITTLE_ENDIAN ? ELFDATA2LSB : ELFDATA2MSB)

static const char *machine_name(unsigned m)
{
    switch (m) {
    case EM_X86_64:
        return "x86-64";
    case EM_AARCH64:
        return "aarch64";
    case EM_386:
        return "i386";
    case EM_ARM:
        return "arm";
    case EM_RISCV:
        return "riscv";
    case EM_PPC64:
        return "ppc64";
    case EM_S390:
        return "s390x";
    default:
        return "another machine";
    }
}

/* e_type and e_machine sit at the same offsets in both classes; read them in the file's order. */
static unsigned half(const unsigned char *p, int data)
{
    return data == ELFDATA2LSB ? (unsigned)(p[0] | p[1] << 8) : (unsigned)(p[0] << 8 | p[1]);
}

int artifact_check_fd(int fd, const char *path, bool scripts_allowed, baton_err_t *err)
{
    unsigned char h[sizeof(Elf64_Ehdr)];
    ssize_t n;
    do
        n = pread(fd, h, sizeof(h), 0);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return baton_err_set(err, -errno, "read %s: %s", path, strerror(errno));
    if (n >= 2 && h[0] == '#' && h[1] == '!') {
        if (scripts_allowed)
            return 0;
        return baton_err_set(err, -ENOEXEC,
                             "%s is a #! script, not a program: scripts run only where the "
                             "service's config says artifact_scripts: true",
                             path);
    }
    if (n < (ssize_t)sizeof(Elf32_Ehdr) || memcmp(h, ELFMAG, SELFMAG))
        return baton_err_set(err, -ENOEXEC,
                             "%s is not a program (neither an ELF executable nor a #! script); "
                             "it is never run, and never through a shell",
                             path);
    int data = h[EI_DATA];
    unsigned type = half(h + offsetof(Elf64_Ehdr, e_type), data);
    unsigned machine = half(h + offsetof(Elf64_Ehdr, e_machine), data);
    if (h[EI_CLASS] != NATIVE_CLASS || data != NATIVE_DATA || machine != NATIVE_MACHINE)
        return baton_err_set(
            err, -ENOEXEC, "%s is an ELF program for %s (%d-bit), not for this %s node", path,
            machine_name(machine), h[EI_CLASS] == ELFCLASS64 ? 64 : 32, NATIVE_NAME);
    if (type != ET_EXEC && type != ET_DYN)
        return baton_err_set(err, -ENOEXEC, "%s is an ELF %s, not an executable", path,
                             type == ET_REL    ? "object file"
                             : type == ET_CORE ? "core dump"
                                               : "file");
    return 0;
}

int artifact_check(const char *path, bool scripts_allowed, baton_err_t *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return baton_err_set(err, -errno, "open %s: %s", path, strerror(errno));
    int r = artifact_check_fd(fd, path, scripts_allowed, err);
    close(fd);
    return r;
}
