# DM_SONAME(VAR, LIBS, PREFIX)
# ----------------------------
# The soname of the library linked by LIBS whose name starts with PREFIX:
# the NEEDED entry that PREFIX.so... takes in a program linked with LIBS.
# Unless the user set VAR; defines VAR in config.h either way.
AC_DEFUN([DM_SONAME], [
  AS_IF([test -z "$$1"], [
    AC_MSG_CHECKING([the soname of $3])
    AS_IF([test "x$READELF" = xno],
      [AC_MSG_ERROR([readelf (binutils) is needed to find the soname of $3; or set $1])])
    dm_save_LIBS=$LIBS
    LIBS="-Wl,--no-as-needed $2 $LIBS"
    AC_LINK_IFELSE([AC_LANG_PROGRAM([], [])],
      [$1=`$READELF -d conftest$ac_exeext 2>/dev/null | sed -n 's/.*(NEEDED).*\@<:@\($3\.so@<:@^@:>@@:>@*\)@:>@.*/\1/p' | sed 1q`])
    LIBS=$dm_save_LIBS
    AS_IF([test -z "$$1"],
      [AC_MSG_RESULT([not found])
       AC_MSG_ERROR([cannot find the soname of $3: set $1])])
    AC_MSG_RESULT([$$1])
  ])
  AC_DEFINE_UNQUOTED([$1], ["$$1"], [soname of $3, loaded on first use])
])
