/* The allocation wrappers: never NULL, zero sizes included, and an
 * impossible size ends the process with a message instead of returning
 * NULL to a caller that would not check. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/alloc.h"

static void test_zero_sizes(void **state)
{
    (void)state;
    void *a = xmalloc(0), *b = xcalloc(0, 8), *c = xcalloc(8, 0);
    void *d = xrealloc(NULL, 0), *e = xreallocarray(NULL, 0, 4);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    assert_non_null(d);
    assert_non_null(e);
    free(a);
    free(b);
    free(c);
    free(d);
    free(e);
}

static void test_strings(void **state)
{
    (void)state;
    char *s = xstrdup("snapshot");
    char *t = xstrndup("snapshot", 4);
    char *u = xstrndup("ab", 10);
    char *v = xasprintf("%s-%d", "tag", 7);
    assert_string_equal(s, "snapshot");
    assert_string_equal(t, "snap");
    assert_string_equal(u, "ab");
    assert_string_equal(v, "tag-7");
    free(s);
    free(t);
    free(u);
    free(v);
}

static void test_realloc_keeps_contents(void **state)
{
    (void)state;
    uint32_t *p = xcalloc(4, sizeof(*p));
    for (int i = 0; i < 4; i++) {
        assert_int_equal(p[i], 0);
        p[i] = (uint32_t)i + 1;
    }
    p = xreallocarray(p, 1000, sizeof(*p));
    for (int i = 0; i < 4; i++) {
        assert_int_equal(p[i], i + 1);
    }
    free(p);
}

/* Run fn in a child; it must die by SIGABRT having said "out of memory". */
static void expect_abort(void (*fn)(void))
{
    int pipefd[2];
    assert_int_equal(pipe(pipefd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(pipefd[1], 2);
        fn();
        _exit(0);
    }
    close(pipefd[1]);
    char msg[256] = "";
    ssize_t n = read(pipefd[0], msg, sizeof(msg) - 1);
    msg[n > 0 ? n : 0] = '\0';
    close(pipefd[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
    assert_non_null(strstr(msg, "out of memory"));
}

static void overflow_calloc(void)
{
    free(xcalloc(SIZE_MAX / 2, 4));
}

static void overflow_reallocarray(void)
{
    free(xreallocarray(NULL, SIZE_MAX / 2, 4));
}

static void test_impossible_sizes_abort(void **state)
{
    (void)state;
    expect_abort(overflow_calloc);
    expect_abort(overflow_reallocarray);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zero_sizes),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_realloc_keeps_contents),
        cmocka_unit_test(test_impossible_sizes_abort),
    };
    return cmocka_run_group_tests_name("alloc", tests, NULL, NULL);
}
