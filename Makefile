# Kahi. `make` builds; `make test` runs every test; `make soak` runs the soak scenarios at
# length; `make bench` measures; `make bench-peers` compares; `make fuzz` fuzzes.
PREFIX  ?= /usr/local
DESTDIR ?=
BINDIR  := $(DESTDIR)$(PREFIX)/bin
MANDIR  := $(DESTDIR)$(PREFIX)/share/man
CARGO   ?= cargo

.PHONY: all build release static run test soak lint bench bench-peers fuzz install clean

all: build

build:
	$(CARGO) build --release

release: build

# A fully static, stripped binary for scratch images, at target/kahi-static: musl when its
# target and musl-gcc are installed (rustup target add $(MUSL); apt-get install musl-tools),
# else glibc linked statically.
MUSL := x86_64-unknown-linux-musl
static:
	@if rustup target list --installed 2>/dev/null | grep -qx $(MUSL) && command -v musl-gcc >/dev/null; then \
		$(CARGO) build --release --target $(MUSL) && \
		cp target/$(MUSL)/release/kahi target/kahi-static; \
	else \
		echo "make static: the $(MUSL) target or musl-gcc is missing; linking glibc statically instead"; \
		RUSTFLAGS="-C target-feature=+crt-static" $(CARGO) build --release --target x86_64-unknown-linux-gnu && \
		cp target/x86_64-unknown-linux-gnu/release/kahi target/kahi-static; \
	fi
	@ls -l target/kahi-static

# Builds Kahi and runs it in the foreground on the example configuration.
run: build
	./target/release/kahi daemon -c kahi.example.toml

# Every test: formatting, lints, unit and integration tests.
test: lint static
	KAHI_STATIC=$(CURDIR)/target/kahi-static $(CARGO) test --all-targets

# The soak scenarios of tests/soak at length, on a release build as deployed: a crash loop of
# 10 minutes, the other loads 100 s each, 10,000 programs started and stopped; about 20
# minutes in all. `make test` runs them short (15 s each, 2,000 programs).
soak:
	KAHI_SOAK_SECS=600 KAHI_SOAK_PROGRAMS=10000 $(CARGO) test --release --test soak

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings
	@if command -v mandoc >/dev/null 2>&1; then \
		out=$$(mandoc -Tlint -W warning man/*.[0-9] 2>&1); \
		if [ -n "$$out" ]; then echo "$$out"; exit 1; fi; \
	else echo "mandoc not installed: man pages not linted"; fi

bench: build static
	./bench/run.sh

# Each fuzz target of fuzz/ for FUZZ_SECS seconds, one after the other (needs the nightly
# toolchain and `cargo install cargo-fuzz`). What a target finds is left in fuzz/artifacts/.
FUZZ_SECS    ?= 600
FUZZ_TARGETS := config control http xmlrpc supervisord listener
fuzz:
	@for t in $(FUZZ_TARGETS); do \
		dict=; if [ -f fuzz/$$t.dict ]; then dict=-dict=$(CURDIR)/fuzz/$$t.dict; fi; \
		echo "make fuzz: $$t for $(FUZZ_SECS) s"; \
		$(CARGO) +nightly fuzz run $$t -- -max_total_time=$(FUZZ_SECS) $$dict || exit 1; \
	done

# Only the comparison with supervisord, s6, runit, tini and dumb-init (those installed) through
# the shared benchmark harness in BENCH_PEERS; writes docs/benchmarks.md. About 30 minutes.
BENCH_PEERS ?= ../shared/bench
bench-peers:
	@if [ ! -x "$(BENCH_PEERS)/run.sh" ]; then \
		echo "make bench-peers: no benchmark harness at $(BENCH_PEERS) (its run.sh is missing);" \
			"set BENCH_PEERS to its directory" >&2; \
		exit 1; \
	fi
	$(MAKE) --no-print-directory build static
	BENCH_PEERS=$(BENCH_PEERS) ./bench/run.sh --peers-only --markdown docs/benchmarks.md

# The binary, the man pages and the shell completions. The binary is the static one (`make
# static`): with no loader to run, its `kahi ctl` answers sooner than the glibc build's, and
# users only NSS knows it finds through getent (docs/performance.md, kahi.toml(5)). KAHI_BIN
# installs another (target/release/kahi, the glibc build); `make -o static install` skips
# the build.
KAHI_BIN ?= target/kahi-static
BASHCOMPDIR := $(DESTDIR)$(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR  := $(DESTDIR)$(PREFIX)/share/zsh/site-functions
FISHCOMPDIR := $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d
install: static
	install -d $(BINDIR) $(MANDIR)/man1 $(MANDIR)/man5 $(BASHCOMPDIR) $(ZSHCOMPDIR) $(FISHCOMPDIR)
	install -m 0755 $(KAHI_BIN) $(BINDIR)/kahi
	install -m 0644 man/kahi.1 man/kahi-ctl.1 $(MANDIR)/man1/
	install -m 0644 man/kahi.toml.5 $(MANDIR)/man5/
	install -m 0644 contrib/completions/kahi.bash $(BASHCOMPDIR)/kahi
	install -m 0644 contrib/completions/_kahi $(ZSHCOMPDIR)/_kahi
	install -m 0644 contrib/completions/kahi.fish $(FISHCOMPDIR)/kahi.fish

clean:
	$(CARGO) clean
