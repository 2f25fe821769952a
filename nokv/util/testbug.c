/* testbug.c - the planted-bug switches of testbug.h; 0 unless nokv-sim sets them. */
#include "nokv/util/testbug.h"

unsigned nk_testbugs = 0;
