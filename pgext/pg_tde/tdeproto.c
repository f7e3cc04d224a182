/* tdeproto.c - the agent protocol's body parser and formatter, the very file pgcmkd uses
 * (src/pg/tdeproto.c: libc only, unit-tested and fuzzed there), compiled into the extension. */
#include "../../src/pg/tdeproto.c"
