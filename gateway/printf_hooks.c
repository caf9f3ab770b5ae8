/* printf_hooks.c — keeps glibc's printf family on its fast path in the gardefou binary.
 * OpenBLAS (classifiers) needs libgfortran, which needs libquadmath, whose load-time
 * constructor registers printf handlers for __float128 (%Q). Once any handler is registered,
 * glibc formats every printf-family call through its slow positional path: about 60% more
 * instructions per call, and libevent formats each HTTP reply line with evbuffer_add_printf
 * (13 calls per reply). The executable's definitions below come first in symbol lookup, so
 * libquadmath's constructor is refused at its first registration and stops. Nothing in
 * gardefou prints __float128; quadmath_snprintf, which libgfortran uses, does not depend on
 * the hooks. Exported from the binary in gateway/meson.build (--export-dynamic-symbol). */
#include <printf.h>
#include <errno.h>


int register_printf_type(printf_va_arg_function *fct)
{
    (void)fct;
    errno = ENOSYS;
    return -1;
}

int register_printf_modifier(const wchar_t *str)
{
    (void)str;
    errno = ENOSYS;
    return -1;
}

int register_printf_specifier(int spec, printf_function converter,
                              printf_arginfo_size_function arginfo)
{
    (void)spec;
    (void)converter;
    (void)arginfo;
    errno = ENOSYS;
    return -1;
}
