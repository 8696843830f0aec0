/*
 * Functions that are too easy to misuse. Included last by every .c file of the
 * project; using one of these is a compile error. Use ward_buf, snprintf,
 * strtoll with full error checks, or strtok_r instead.
 */
#ifndef RAGWARD_CORE_BANNED_H
#define RAGWARD_CORE_BANNED_H

#define WARD_BANNED(func) sorry_##func##_is_a_banned_function

#undef strcpy
#define strcpy(x, y) WARD_BANNED(strcpy)
#undef strcat
#define strcat(x, y) WARD_BANNED(strcat)
#undef strncpy
#define strncpy(x, y, n) WARD_BANNED(strncpy)
#undef strncat
#define strncat(x, y, n) WARD_BANNED(strncat)
#undef sprintf
#define sprintf(...) WARD_BANNED(sprintf)
#undef vsprintf
#define vsprintf(...) WARD_BANNED(vsprintf)
#undef gets
#define gets(x) WARD_BANNED(gets)
#undef strtok
#define strtok(x, y) WARD_BANNED(strtok)
#undef atoi
#define atoi(x) WARD_BANNED(atoi)
#undef atol
#define atol(x) WARD_BANNED(atol)
#undef atoll
#define atoll(x) WARD_BANNED(atoll)
#undef atof
#define atof(x) WARD_BANNED(atof)
#undef tmpnam
#define tmpnam(x) WARD_BANNED(tmpnam)
#undef mktemp
#define mktemp(x) WARD_BANNED(mktemp)
#undef asctime
#define asctime(x) WARD_BANNED(asctime)
#undef ctime
#define ctime(x) WARD_BANNED(ctime)
#undef gmtime
#define gmtime(x) WARD_BANNED(gmtime)
#undef localtime
#define localtime(x) WARD_BANNED(localtime)

#endif
