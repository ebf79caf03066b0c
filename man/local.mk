# man/local.mk - the manual pages, and the test that keeps them true.
#
# tests/man/man.sh checks them with mandoc -Tlint, against 'dmarcd help
# CMD' (every command and option), and against the keys common/config.c
# accepts, as it does contrib/dmarcd.conf.example, which dmarcd must
# accept as it is and with every key set (a throwaway PostgreSQL).
dist_man_MANS = man/dmarcd.8 man/dmarcd.conf.5

TESTS += tests/man/man.sh
EXTRA_DIST += tests/man/man.sh
