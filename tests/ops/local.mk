# tests/ops/local.mk - operating dmarcd: the systemd units (verify and
# security), the cron file, `make install`/`uninstall` with DESTDIR, and
# the Debian package.
TESTS += tests/ops/deb.sh tests/ops/units.sh tests/ops/cron.sh tests/ops/install.sh
EXTRA_DIST += tests/ops/deb.sh tests/ops/units.sh tests/ops/cron.sh tests/ops/install.sh
