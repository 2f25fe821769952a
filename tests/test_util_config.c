/* test_util_config.c - the strict `key = value` config format: what parses,
 * and that every malformed line is refused with its line number. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "nokv/util/config.h"

static int parse(const char *text, nk_config *c, nk_errbuf *eb)
{
    memset(eb, 0, sizeof(*eb));
    return nk_config_parse(text, strlen(text), "t.conf", c, eb);
}

static void test_accepts(void **state)
{
    (void)state;
    nk_config c;
    nk_errbuf eb;
    const char *text = "# comment\n"
                       "\n"
                       "workdir = /var/lib/nokv\n"
                       "   addr=127.0.0.1:6380   \r\n"
                       "\t# indented comment\n"
                       "log-file = \"/var/log/a b#c.log\"\n"
                       "quoted = \"say \\\"hi\\\" \\\\\"\n"
                       "last = x"; /* no final newline */
    assert_int_equal(parse(text, &c, &eb), NK_OK);
    assert_int_equal(c.n, 5);
    assert_string_equal(nk_config_get(&c, "workdir")->value, "/var/lib/nokv");
    assert_int_equal(nk_config_get(&c, "workdir")->line, 3);
    assert_string_equal(nk_config_get(&c, "addr")->value, "127.0.0.1:6380");
    assert_string_equal(nk_config_get(&c, "log-file")->value, "/var/log/a b#c.log");
    assert_string_equal(nk_config_get(&c, "quoted")->value, "say \"hi\" \\");
    assert_string_equal(nk_config_get(&c, "last")->value, "x");
    assert_int_equal(nk_config_get(&c, "last")->line, 8);
    assert_null(nk_config_get(&c, "missing"));
    assert_string_equal(c.entries[0].key, "workdir"); /* file order */
    nk_config_free(&c);
    assert_int_equal(parse("", &c, &eb), NK_OK);
    assert_int_equal(c.n, 0);
    nk_config_free(&c);
}

static void test_refuses(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *want; /* substring of the error */
    } cases[] = {
        {"a = 1\njunk\n", "t.conf:2: expected `key = value`"},
        {"a = 1\n= 2\n", "t.conf:2: expected"},
        {"Workdir = x\n", "t.conf:1: expected"},
        {"a =\n", "t.conf:1: empty value"},
        {"a = \"\"\n", "t.conf:1: empty value"},
        {"a = 1\nb = 2\na = 3\n", "t.conf:3: 'a' is set twice (first on line 1)"},
        {"a = x # note\n", "t.conf:1: blank inside"},
        {"a = x#note\n", "t.conf:1: '#' in an unquoted value"},
        {"a = \"open\n", "t.conf:1: unterminated"},
        {"a = \"x\" y\n", "t.conf:1: text after the closing quote"},
        {"a = \"\\n\"\n", "t.conf:1: only"},
        {"a = b\"c\n", "t.conf:1: stray quote"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        nk_config c;
        nk_errbuf eb;
        assert_int_equal(parse(cases[i].text, &c, &eb), NK_EINVAL);
        if (strstr(eb.msg, cases[i].want) == NULL) {
            fail_msg("case %zu: got '%s', want '%s'", i, eb.msg, cases[i].want);
        }
        assert_int_equal(c.n, 0);
        assert_null(c.entries);
    }
    /* NUL bytes and over-long lines */
    nk_config c;
    nk_errbuf eb;
    memset(&eb, 0, sizeof(eb));
    assert_int_equal(nk_config_parse("a = 1\nb\0 = 2\n", 13, "t.conf", &c, &eb), NK_EINVAL);
    assert_non_null(strstr(eb.msg, "t.conf:2: NUL byte"));
    static char big[NK_CONFIG_LINE_MAX + 32];
    memset(big, 'x', sizeof(big) - 1);
    memcpy(big, "k = ", 4);
    assert_int_equal(parse(big, &c, &eb), NK_EINVAL);
    assert_non_null(strstr(eb.msg, "t.conf:1: line too long"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepts),
        cmocka_unit_test(test_refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
