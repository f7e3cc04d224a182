# pgcmk - one non-recursive GNU Makefile.
#   make            build build/pgcmkd and build/libpgcmk.a
#   make run        install missing deps, build, start pgcmkd on ./var
#   make test       unit tests + integration tests against real daemons
#   make asan       the same tests on an ASan+UBSan build (build/asan/)
#   make bench      benchmarks (bench/README.md has the figures)
#   make format-check / format / clean

B        ?= build
PKGS     := libmicrohttpd jansson sqlite3 libssl libcrypto libcurl uuid yaml-0.1
PYTHON   ?= /usr/bin/python3
CC       ?= gcc

CFLAGS   ?= -O2 -g
CFLAGS   += -std=c11 -D_GNU_SOURCE -Iinclude -Isrc $(shell pkg-config --cflags $(PKGS) 2>/dev/null) \
            -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 \
            -Wvla -Wwrite-strings -Wpointer-arith -fno-common -fstack-protector-strong -pthread \
            -DOPENSSL_API_COMPAT=30000 -DOPENSSL_NO_DEPRECATED -MMD -MP
# Route tables spell their fields by position; a field added last (pgcmk_route.perm) stays unset.
CFLAGS   += -Wno-missing-field-initializers
LDLIBS   += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -pthread
# Only the libraries a program calls become its dependencies: pgcmkd loads libcurl when the agent
# first needs it (src/agent/agent.c), the unit test of the agent links it.
LDFLAGS  += -Wl,--as-needed
ifdef SANITIZE
CFLAGS   += -O1 -fsanitize=$(SANITIZE) -fno-sanitize-recover=all -fno-omit-frame-pointer
LDFLAGS  += -fsanitize=$(SANITIZE)
else
CFLAGS   += -D_FORTIFY_SOURCE=2
endif

LIB_SRC  := $(sort $(shell find src -name '*.c' ! -path src/main.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(B)/obj/%.o)
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)
BENCH_SRC:= $(sort $(wildcard bench/*.c))
BENCH_BIN:= $(BENCH_SRC:bench/%.c=$(B)/bench/%)

.PHONY: all run test asan asan-progs unit integration browser bench format format-check clean deps deps-test docs fuzz progs \
        pgext

all: $(B)/pgcmkd $(B)/libpgcmk.a

deps:
	@scripts/deps.sh build
deps-test:
	@scripts/deps.sh test

$(B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(B)/libpgcmk.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(B)/pgcmkd: $(B)/obj/src/main.o $(B)/libpgcmk.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(B)/tests/%: $(B)/obj/tests/unit/%.o $(B)/libpgcmk.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(B)/bench/%: $(B)/obj/bench/%.o $(B)/libpgcmk.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

run: deps
	@$(MAKE) --no-print-directory all
	./$(B)/pgcmkd --data-dir ./var

# Unit programs end with "N passed, N failed"; integration tests start their own daemons.
# UNIT_JOBS programs run at once, each into its .log, printed in order when all are done.
UNIT_JOBS ?= 2
unit: $(UNIT_BIN)
	@scripts/check-engine-statements.sh
	@scripts/check-step-loops.sh
	@rm -f $(B)/tests/unit-failed; \
	  printf '%s\n' $(UNIT_BIN) | xargs -P $(UNIT_JOBS) -I{} sh -c './{} >{}.log 2>&1 || echo {} >>$(B)/tests/unit-failed'; \
	  for t in $(UNIT_BIN); do echo "== $$t"; cat $$t.log; done; \
	  if [ -s $(B)/tests/unit-failed ]; then echo "unit: FAILED: $$(cat $(B)/tests/unit-failed)"; exit 1; fi

# The integration suite on PYTEST_JOBS workers (pytest-xdist, from deps.sh test; without it, one
# process). --dist loadfile keeps a module on one worker: its module-scoped daemon is started once.
# tests/integration/conftest.py hands the files out longest first (its FILE_SECONDS table).
# The 25 slowest tests are listed at the end: the CI budget (30 min for make test + make asan).
# PGCMK_TEST_SANITIZE tells the tests they run on the ASan build (conftest.py's walkthrough_runs).
PYTEST_JOBS  ?= 2
PYTEST_XDIST := $(shell $(PYTHON) -c 'import xdist' 2>/dev/null && echo -n $(PYTEST_JOBS) --dist loadfile)
PYTEST_FLAGS ?= $(if $(PYTEST_XDIST),-n $(PYTEST_XDIST)) --durations=25
integration: $(B)/pgcmkd
	PGCMK_TEST_SANITIZE=$(SANITIZE) PGCMKD=$(abspath $(B)/pgcmkd) $(PYTHON) -m pytest -q -p no:cacheprovider $(PYTEST_FLAGS) tests/integration

# The programs make test and make asan build, on BUILD_JOBS compilers (the tests run after).
BUILD_JOBS ?= $(shell nproc 2>/dev/null || echo 2)
progs: all $(UNIT_BIN)

# make test builds the fuzz targets with the programs (when clang is installed) and runs them, one
# at a time and niced, in the background of the integration tests (which leave about half of the
# CPU idle): each still runs FUZZ_TIME_TEST seconds; their summaries (a failed one's whole log)
# are printed after the integration tests, and a failed target fails make test.
FUZZ_TEST_BINS = $(if $(shell command -v clang),$(FUZZ_BINS))
test: deps-test
	@$(MAKE) --no-print-directory -j$(BUILD_JOBS) progs $(FUZZ_TEST_BINS)
	@$(MAKE) --no-print-directory unit
	@fuzz=; if [ -n "$(FUZZ_TEST_BINS)" ]; then \
	  nice -n 19 scripts/fuzz.sh $(B) $(FUZZ_TIME_TEST) 1 $(FUZZ_RUNS) >$(B)/fuzz/make-test.log 2>&1 & \
	  fuzz=$$!; fi; \
	  rc=0; $(MAKE) --no-print-directory integration || rc=$$?; \
	  if [ -n "$$fuzz" ]; then wait $$fuzz || rc=1; cat $(B)/fuzz/make-test.log; fi; \
	  exit $$rc
	@$(MAKE) --no-print-directory browser

# pgcmk's server-side libraries for PostgreSQL 15 (PGXS): pgext/ refuses logins while a database
# cannot reach its key; pgext/pg_tde/ is pgcmk's emulation of Percona pg_tde (its extension
# too). Built and installed into PostgreSQL's library directory (as root) when the
# server headers are there (postgresql-server-dev-15, libkrb5-dev); otherwise real mode refuses
# through pg_hba and this says why. Never with ASan (an ASan library cannot load into postgres):
# `make asan` uses the installed library as it is. The sub-make gets none of this Makefile's
# variables (CC, CFLAGS, SANITIZE): PGXS takes PostgreSQL's.
PG_CONFIG ?= $(firstword $(wildcard /usr/lib/postgresql/15/bin/pg_config) pg_config)
# make test installs it (after deps-test) before its integration tests run
test: pgext
pgext:
	@inc=$$($(PG_CONFIG) --includedir-server 2>/dev/null); \
	if [ -z "$$inc" ] || [ ! -f "$$inc/postgres.h" ] || [ ! -f /usr/include/gssapi/gssapi.h ]; then \
	  echo "pgcmk: pgext skipped: no PostgreSQL 15 server headers (apt-get install postgresql-server-dev-15 libkrb5-dev); real mode refuses logins through pg_hba, and self-managed instances start without pg_tde"; \
	elif [ "$$(id -u)" -ne 0 ]; then \
	  for d in pgext pgext/pg_tde; do \
	    env -u MAKEFLAGS -u MFLAGS $(MAKE) --no-print-directory -C $$d PG_CONFIG=$(PG_CONFIG) || exit 1; \
	  done; \
	  echo "pgcmk: pgext built but not installed: run 'make pgext' as root to install pgcmk.so and pg_tde.so (pgcmk's pg_tde emulation) into $$($(PG_CONFIG) --pkglibdir)"; \
	else \
	  for d in pgext pgext/pg_tde; do \
	    env -u MAKEFLAGS -u MFLAGS $(MAKE) --no-print-directory -C $$d PG_CONFIG=$(PG_CONFIG) && \
	    env -u MAKEFLAGS -u MFLAGS $(MAKE) --no-print-directory -C $$d PG_CONFIG=$(PG_CONFIG) install || exit 1; \
	  done; \
	fi

# The portal in Debian's headless Chromium (playwright-core from npm); screenshots in $(B)/browser-screens.
browser: $(B)/pgcmkd
	cd tests/browser && { npm ci --no-audit --no-fund --silent || npm install --no-audit --no-fund --silent; }
	PGCMKD=$(abspath $(B)/pgcmkd) SCREENS=$(abspath $(B)/browser-screens) node tests/browser/portal.test.mjs
	PGCMKD=$(abspath $(B)/pgcmkd) SCREENS=$(abspath $(B)/browser-screens) node tests/browser/kmip.test.mjs
	PGCMKD=$(abspath $(B)/pgcmkd) SCREENS=$(abspath $(B)/browser-screens) node tests/browser/vault.test.mjs
	PGCMKD=$(abspath $(B)/pgcmkd) SCREENS=$(abspath $(B)/browser-screens) node tests/browser/kes.test.mjs
	PGCMKD=$(abspath $(B)/pgcmkd) SCREENS=$(abspath $(B)/browser-screens) node tests/browser/pgreal.test.mjs

# libFuzzer over the template language (tests/fuzz/README.md): `make fuzz [FUZZ_TIME=600]`.
FUZZ_TIME ?= 600
# make test's short pass per target (the corpora under $(B)/fuzz/ persist between runs).
FUZZ_TIME_TEST ?= 8
FUZZ_SRC  := tests/fuzz/fuzz_template.c $(filter-out src/deploy/deployments.c,$(wildcard src/deploy/*.c))
$(B)/fuzz/fuzz_template: $(FUZZ_SRC) $(wildcard src/deploy/*.h include/pgcmk/*.h) $(B)/libpgcmk.a
	@mkdir -p $(dir $@)
	clang -std=c11 -D_GNU_SOURCE -Iinclude -Isrc -g -O1 -fsanitize=fuzzer,address,undefined \
	  $(shell pkg-config --cflags jansson) -o $@ $(FUZZ_SRC) $(B)/libpgcmk.a $(LDLIBS)
# libFuzzer over the Activity Log's $filter parser, a pure function (src/monitor/filter.c).
FUZZ_FILTER_SRC := tests/fuzz/fuzz_filter.c src/monitor/filter.c src/core/util.c
$(B)/fuzz/fuzz_filter: $(FUZZ_FILTER_SRC) $(wildcard include/pgcmk/*.h) $(B)/libpgcmk.a
	@mkdir -p $(dir $@)
	clang -std=c11 -D_GNU_SOURCE -Iinclude -Isrc -g -O1 -fsanitize=fuzzer,address,undefined \
	  $(shell pkg-config --cflags jansson) -o $@ $(FUZZ_FILTER_SRC) $(B)/libpgcmk.a $(LDLIBS)
# libFuzzer over the KMIP TTLV codec, a pure module (src/kmip/ttlv.c).
FUZZ_TTLV_SRC := tests/fuzz/fuzz_ttlv.c src/kmip/ttlv.c src/core/util.c
$(B)/fuzz/fuzz_ttlv: $(FUZZ_TTLV_SRC) $(wildcard include/pgcmk/*.h) $(B)/libpgcmk.a
	@mkdir -p $(dir $@)
	clang -std=c11 -D_GNU_SOURCE -Iinclude -Isrc -g -O1 -fsanitize=fuzzer,address,undefined \
	  $(shell pkg-config --cflags jansson) -o $@ $(FUZZ_TTLV_SRC) $(B)/libpgcmk.a $(LDLIBS)
# libFuzzer over the agent's KMIP response reader (src/agent/kmip.c on the TTLV codec).
FUZZ_KMIPC_SRC := tests/fuzz/fuzz_kmipc.c src/agent/kmip.c src/kmip/ttlv.c src/core/util.c
$(B)/fuzz/fuzz_kmipc: $(FUZZ_KMIPC_SRC) $(wildcard include/pgcmk/*.h) $(B)/libpgcmk.a
	@mkdir -p $(dir $@)
	clang -std=c11 -D_GNU_SOURCE -Iinclude -Isrc -g -O1 -fsanitize=fuzzer,address,undefined \
	  $(shell pkg-config --cflags jansson) -o $@ $(FUZZ_KMIPC_SRC) $(B)/libpgcmk.a $(LDLIBS)
# libFuzzer over the KMIP server (src/kmip/: message layer, operations, objects) on a store in memory.
$(B)/fuzz/fuzz_kmip_msg: tests/fuzz/fuzz_kmip_msg.c $(wildcard src/kmip/*.h include/pgcmk/*.h) $(addprefix src/kmip/,message.c ops.c objects.c routes.c ttlv.c) $(B)/libpgcmk.a
	@mkdir -p $(dir $@)
	clang -std=c11 -D_GNU_SOURCE -Iinclude -Isrc -g -O1 -fsanitize=fuzzer,address,undefined \
	  $(shell pkg-config --cflags jansson) -o $@ tests/fuzz/fuzz_kmip_msg.c \
	  $(addprefix src/kmip/,message.c ops.c objects.c routes.c ttlv.c) $(B)/libpgcmk.a $(LDLIBS)
# libFuzzer over the Vault API's KV and transit engines (src/vaultapi/kv.c, transit.c) on a store in memory.
$(B)/fuzz/fuzz_vkv: tests/fuzz/fuzz_vkv.c $(wildcard include/pgcmk/*.h) $(addprefix src/vaultapi/,kv.c transit.c) $(B)/libpgcmk.a
	@mkdir -p $(dir $@)
	clang -std=c11 -D_GNU_SOURCE -Iinclude -Isrc -g -O1 -fsanitize=fuzzer,address,undefined \
	  $(shell pkg-config --cflags jansson) -o $@ tests/fuzz/fuzz_vkv.c \
	  $(addprefix src/vaultapi/,kv.c transit.c) $(B)/libpgcmk.a $(LDLIBS)
# libFuzzer over the agent's Vault response readers (src/agent/vault.c; jansson parses the JSON).
FUZZ_VAULTC_SRC := tests/fuzz/fuzz_vaultc.c src/agent/vault.c
$(B)/fuzz/fuzz_vaultc: $(FUZZ_VAULTC_SRC) $(wildcard include/pgcmk/*.h) $(B)/libpgcmk.a
	@mkdir -p $(dir $@)
	clang -std=c11 -D_GNU_SOURCE -Iinclude -Isrc -g -O1 -fsanitize=fuzzer,address,undefined \
	  $(shell pkg-config --cflags jansson) -o $@ $(FUZZ_VAULTC_SRC) $(B)/libpgcmk.a $(LDLIBS)
# libFuzzer over the Vault policy parser (src/vaultapi/hcl.c, pure) and decoder (acl.c).
FUZZ_HCL_SRC := tests/fuzz/fuzz_hcl.c src/vaultapi/hcl.c src/vaultapi/acl.c
$(B)/fuzz/fuzz_hcl: $(FUZZ_HCL_SRC) $(wildcard include/pgcmk/*.h) $(B)/libpgcmk.a
	@mkdir -p $(dir $@)
	clang -std=c11 -D_GNU_SOURCE -Iinclude -Isrc -g -O1 -fsanitize=fuzzer,address,undefined \
	  $(shell pkg-config --cflags jansson) -o $@ $(FUZZ_HCL_SRC) $(B)/libpgcmk.a $(LDLIBS)
# libFuzzer over the Vault API's request pipeline (src/vaultapi/ core) on a store in memory.
$(B)/fuzz/fuzz_vreq: tests/fuzz/fuzz_vreq.c $(wildcard include/pgcmk/*.h src/vaultapi/*.h) $(B)/libpgcmk.a
	@mkdir -p $(dir $@)
	clang -std=c11 -D_GNU_SOURCE -Iinclude -Isrc -g -O1 -fsanitize=fuzzer,address,undefined \
	  $(shell pkg-config --cflags jansson) -o $@ tests/fuzz/fuzz_vreq.c \
	  $(wildcard src/vaultapi/*.c) $(B)/libpgcmk.a $(LDLIBS)
# libFuzzer over the agent's KES answer readers and API-key parser (src/agent/kes.c).
FUZZ_KESC_SRC := tests/fuzz/fuzz_kesc.c src/agent/kes.c
$(B)/fuzz/fuzz_kesc: $(FUZZ_KESC_SRC) $(wildcard include/pgcmk/*.h) $(B)/libpgcmk.a
	@mkdir -p $(dir $@)
	clang -std=c11 -D_GNU_SOURCE -Iinclude -Isrc -g -O1 -fsanitize=fuzzer,address,undefined \
	  $(shell pkg-config --cflags jansson) -o $@ $(FUZZ_KESC_SRC) $(B)/libpgcmk.a $(LDLIBS)
$(B)/fuzz/fuzz_kesct: tests/fuzz/fuzz_kesct.c src/kes/crypto.c $(wildcard include/pgcmk/*.h src/kes/*.h) $(B)/libpgcmk.a
	@mkdir -p $(dir $@)
	clang -std=c11 -D_GNU_SOURCE -Iinclude -Isrc -g -O1 -fsanitize=fuzzer,address,undefined \
	  $(shell pkg-config --cflags jansson) -o $@ tests/fuzz/fuzz_kesct.c src/kes/crypto.c \
	  $(B)/libpgcmk.a $(LDLIBS)
# libFuzzer over the KES config parser (src/kes/conf.c, libyaml) and API keys (src/kes/auth.c).
FUZZ_KESCONF_SRC := tests/fuzz/fuzz_kesconf.c src/kes/conf.c src/kes/auth.c
$(B)/fuzz/fuzz_kesconf: $(FUZZ_KESCONF_SRC) $(wildcard include/pgcmk/*.h) $(B)/libpgcmk.a
	@mkdir -p $(dir $@)
	clang -std=c11 -D_GNU_SOURCE -Iinclude -Isrc -g -O1 -fsanitize=fuzzer,address,undefined \
	  $(shell pkg-config --cflags jansson yaml-0.1) -o $@ $(FUZZ_KESCONF_SRC) $(B)/libpgcmk.a $(LDLIBS)
# libFuzzer over the KES plane's HTTP/1.1 request parser, a pure module (src/net/http1.c).
FUZZ_HTTP1_SRC := tests/fuzz/fuzz_http1.c src/net/http1.c
$(B)/fuzz/fuzz_http1: $(FUZZ_HTTP1_SRC) $(wildcard include/pgcmk/*.h)
	@mkdir -p $(dir $@)
	clang -std=c11 -D_GNU_SOURCE -Iinclude -Isrc -g -O1 -fsanitize=fuzzer,address,undefined \
	  $(shell pkg-config --cflags jansson) -o $@ $(FUZZ_HTTP1_SRC)
# libFuzzer over the archive socket's lines and the encrypted archive file (src/pg/arfmt.c, pure).
$(B)/fuzz/fuzz_pgarch_req: tests/fuzz/fuzz_pgarch_req.c src/pg/arfmt.c src/pg/arfmt.h
	@mkdir -p $(dir $@)
	clang -std=c11 -D_GNU_SOURCE -Iinclude -Isrc -g -O1 -fsanitize=fuzzer,address,undefined \
	  -o $@ tests/fuzz/fuzz_pgarch_req.c src/pg/arfmt.c -lcrypto
$(B)/fuzz/fuzz_pgarch_file: tests/fuzz/fuzz_pgarch_file.c src/pg/arfmt.c src/pg/arfmt.h
	@mkdir -p $(dir $@)
	clang -std=c11 -D_GNU_SOURCE -Iinclude -Isrc -g -O1 -fsanitize=fuzzer,address,undefined \
	  -o $@ tests/fuzz/fuzz_pgarch_file.c src/pg/arfmt.c -lcrypto
# libFuzzer over the pg_tde agent's bodies and pg_tde's keyring file (src/pg/tdeproto.c,
# src/tde/keyring.c: pure).
FUZZ_TDEPROTO_SRC := tests/fuzz/fuzz_tdeproto.c src/pg/tdeproto.c src/tde/keyring.c
$(B)/fuzz/fuzz_tdeproto: $(FUZZ_TDEPROTO_SRC) src/pg/tdeproto.h include/pgcmk/keyring.h include/pgcmk/tdeproto.h
	@mkdir -p $(dir $@)
	clang -std=c11 -D_GNU_SOURCE -Iinclude -Isrc -g -O1 -fsanitize=fuzzer,address,undefined \
	  -o $@ $(FUZZ_TDEPROTO_SRC)
# libFuzzer over the PostgreSQL wire client's message reader (src/pg/wire.c).
FUZZ_PGWIRE_SRC := tests/fuzz/fuzz_pgwire.c src/pg/wire.c
$(B)/fuzz/fuzz_pgwire: $(FUZZ_PGWIRE_SRC) $(wildcard include/pgcmk/*.h) $(B)/libpgcmk.a
	@mkdir -p $(dir $@)
	clang -std=c11 -D_GNU_SOURCE -Iinclude -Isrc -g -O1 -fsanitize=fuzzer,address,undefined \
	  $(shell pkg-config --cflags jansson) -o $@ $(FUZZ_PGWIRE_SRC) $(B)/libpgcmk.a $(LDLIBS)
# libFuzzer over the pg_hba.conf rewriting of the refusal without the pgcmk library (src/pg/access.c).
$(B)/fuzz/fuzz_pghba: tests/fuzz/fuzz_pghba.c src/pg/access.c $(wildcard include/pgcmk/*.h src/pg/*.h) $(B)/libpgcmk.a
	@mkdir -p $(dir $@)
	clang -std=c11 -D_GNU_SOURCE -Iinclude -Isrc -g -O1 -fsanitize=fuzzer,address,undefined \
	  $(shell pkg-config --cflags jansson) -o $@ tests/fuzz/fuzz_pghba.c src/pg/access.c \
	  $(B)/libpgcmk.a $(LDLIBS)
# make fuzz runs every target of FUZZ_RUNS for FUZZ_TIME seconds, FUZZ_JOBS at once (libFuzzer uses
# one core each): NAME:MAX_LEN:CORPUS:SEEDS[:DICT], new inputs go to $(B)/fuzz/CORPUS, the
# checked-in SEEDS stay; scripts/fuzz.sh prints each run's summary (a failed run's whole log).
FUZZ_JOBS ?= $(BUILD_JOBS)
FUZZ_RUNS += fuzz_template:65536:corpus:tests/data/templates
FUZZ_RUNS += fuzz_filter:8192:corpus-filter:tests/fuzz/corpus/filter:tests/fuzz/filter.dict
FUZZ_RUNS += fuzz_ttlv:4096:corpus-ttlv:tests/fuzz/corpus/ttlv
FUZZ_RUNS += fuzz_kmip_msg:4096:corpus-kmip-msg:tests/fuzz/corpus/ttlv
FUZZ_RUNS += fuzz_kmipc:4096:corpus-kmipc:tests/fuzz/corpus/ttlv
FUZZ_RUNS += fuzz_vkv:4096:corpus-vkv:tests/fuzz/corpus/vkv
FUZZ_RUNS += fuzz_vaultc:4096:corpus-vaultc:tests/fuzz/corpus/vaultc
FUZZ_RUNS += fuzz_hcl:8192:corpus-hcl:tests/fuzz/corpus/hcl
FUZZ_RUNS += fuzz_vreq:4096:corpus-vreq:tests/fuzz/corpus/vreq
FUZZ_RUNS += fuzz_kesct:4096:corpus-kesct:tests/fuzz/corpus/kesct
FUZZ_RUNS += fuzz_kesconf:8192:corpus-kesconf:tests/fuzz/corpus/kesconf
FUZZ_RUNS += fuzz_http1:20000:corpus-http1:tests/fuzz/corpus/http1
FUZZ_RUNS += fuzz_kesc:4096:corpus-kesc:tests/fuzz/corpus/kesc
FUZZ_RUNS += fuzz_pgarch_req:512:corpus-pgarch-req:tests/fuzz/corpus/pgarch_req
FUZZ_RUNS += fuzz_pgarch_file:8192:corpus-pgarch-file:tests/fuzz/corpus/pgarch_file
FUZZ_RUNS += fuzz_pgwire:4096:corpus-pgwire:tests/fuzz/corpus/pgwire
FUZZ_RUNS += fuzz_pghba:8192:corpus-pghba:tests/fuzz/corpus/pghba
FUZZ_RUNS += fuzz_tdeproto:4096:corpus-tdeproto:tests/fuzz/corpus/tdeproto
FUZZ_BINS = $(foreach r,$(FUZZ_RUNS),$(B)/fuzz/$(firstword $(subst :, ,$(r))))
fuzz: $(FUZZ_BINS)
	@scripts/fuzz.sh $(B) $(FUZZ_TIME) $(FUZZ_JOBS) $(FUZZ_RUNS)

# asan-progs only builds (.ci/run starts it niced in the background while make test runs: the
# integration tests leave about half of the CPU idle); make asan then finds the programs built.
ASAN_VARS := B=build/asan SANITIZE=address,undefined CC=$(CC)
asan-progs:
	@$(MAKE) --no-print-directory -j$(BUILD_JOBS) $(ASAN_VARS) progs
asan: deps-test
	@$(MAKE) --no-print-directory asan-progs
	@$(MAKE) --no-print-directory $(ASAN_VARS) unit integration

bench: deps
	@scripts/deps.sh bench
	@$(MAKE) --no-print-directory all $(BENCH_BIN)
	bench/run.sh $(B)
	$(PYTHON) bench/pg_bench.py $(B)/pgcmkd --clusters 1000
	$(PYTHON) bench/deploy_bench.py $(B)/pgcmkd --runs 7

docs: $(B)/pgcmkd
	./$(B)/pgcmkd --error-table > docs/errors.md
	$(PYTHON) scripts/coverage.py --daemon ./$(B)/pgcmkd > docs/coverage.md

FORMAT_FILES = $(shell find src include tests/unit bench -name '*.[ch]' 2>/dev/null)
format:
	clang-format -i $(FORMAT_FILES)
format-check:
	@clang-format --dry-run --Werror $(FORMAT_FILES)

clean:
	rm -rf build pgext/*.o pgext/*.so pgext/pg_tde/*.o pgext/pg_tde/*.so

-include $(LIB_OBJ:.o=.d) $(B)/obj/src/main.d $(UNIT_SRC:tests/unit/%.c=$(B)/obj/tests/unit/%.d)
