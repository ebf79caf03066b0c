# man/local.mk - the manual pages.
dist_man_MANS = man/dmarcd.8 man/dmarcd.conf.5
