/*
 * ts.c - timestamps taken from records: parsing RFC 3339 / ISO 8601 and epoch
 * values, comparison in UTC with nanosecond precision, formatting.
 *
 * Calendar arithmetic is done here by hand (days from civil, after Howard
 * Hinnant's public-domain algorithms) so that nothing depends on the local
 * time zone, TZ or timegm(). This module never reads the local clock.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "record/ts.h"

#define NS_PER_SEC	1000000000LL

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
	int64_t	era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* Inverse of days_from_civil. */
static void
civil_from_days(int64_t z, int64_t *yp, int *mp, int *dp)
{
	int64_t	era, doe, yoe, y, doy, mp0;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	y = yoe + era * 400;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp0 = (5 * doy + 2) / 153;
	*dp = (int)(doy - (153 * mp0 + 2) / 5 + 1);
	*mp = (int)(mp0 < 10 ? mp0 + 3 : mp0 - 9);
	*yp = y + (*mp <= 2);
}

static int
days_in_month(int64_t y, int m)
{
	static const int dim[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	bool	leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return m == 2 && leap ? 29 : dim[m - 1];
}

/* Read exactly n digits at *sp into *v, advancing *sp. */
static int
digits(const char **sp, int n, int *v)
{
	const char	*s = *sp;
	int		 i;

	*v = 0;
	for (i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		*v = *v * 10 + (s[i] - '0');
	}
	*sp = s + n;
	return 0;
}

/* Read a fraction's digits (at least one); keep 9 as nanoseconds, ignore the rest. */
static int
fraction(const char **sp, int32_t *nsec)
{
	const char	*s = *sp;
	int		 n = 0;
	int32_t		 v = 0;

	if (!isdigit((unsigned char)*s))
		return -1;
	for (; isdigit((unsigned char)*s); s++, n++) {
		if (n < 9)
			v = v * 10 + (*s - '0');
	}
	for (; n < 9; n++)
		v *= 10;
	*nsec = v;
	*sp = s;
	return 0;
}

/* RFC 3339 / ISO 8601 date-time or date-only (midnight UTC). No offset reads as UTC. */
static int
parse_rfc3339(const char *s, struct ts *out)
{
	int	y, mo, d, h = 0, mi = 0, se = 0, oh = 0, om = 0, sign = 0;
	int32_t	nsec = 0;
	int64_t	days, sec;

	if (digits(&s, 4, &y) != 0 || *s++ != '-' || digits(&s, 2, &mo) != 0 ||
	    *s++ != '-' || digits(&s, 2, &d) != 0)
		return -1;
	if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))
		return -1;
	if (*s != '\0') {
		if (*s != 'T' && *s != 't' && *s != ' ')
			return -1;
		s++;
		if (digits(&s, 2, &h) != 0 || *s++ != ':' ||
		    digits(&s, 2, &mi) != 0 || *s++ != ':' ||
		    digits(&s, 2, &se) != 0)
			return -1;
		/* 60 is a leap second: it counts as the next minute's first. */
		if (h > 23 || mi > 59 || se > 60)
			return -1;
		if (*s == '.' || *s == ',') {
			s++;
			if (fraction(&s, &nsec) != 0)
				return -1;
		}
		if (*s == 'Z' || *s == 'z')
			s++;
		else if (*s == '+' || *s == '-') {
			sign = *s++ == '-' ? -1 : 1;
			if (digits(&s, 2, &oh) != 0)
				return -1;
			if (*s == ':')
				s++;
			if (digits(&s, 2, &om) != 0)
				return -1;
			if (oh > 23 || om > 59)
				return -1;
		}
		if (*s != '\0')
			return -1;
	}
	days = days_from_civil(y, mo, d);
	sec = days * 86400 + h * 3600 + mi * 60 + se;
	sec -= (int64_t)sign * (oh * 3600 + om * 60);
	out->sec = sec;
	out->nsec = nsec;
	return 0;
}

/*
 * A decimal number of units (unit = 1 for seconds, 1000 for milliseconds) with an
 * optional sign and fraction, into seconds and nanoseconds (floored).
 */
static int
parse_epoch(const char *s, int64_t unit, struct ts *out)
{
	bool	 neg = false;
	int64_t	 ip = 0, sec, ns;
	int32_t	 frac = 0;
	int	 n = 0;

	if (*s == '-' || *s == '+')
		neg = *s++ == '-';
	for (; isdigit((unsigned char)*s); s++, n++) {
		if (ip > (INT64_MAX - 9) / 10)
			return -1;
		ip = ip * 10 + (*s - '0');
	}
	if (n == 0)
		return -1;
	if (*s == '.') {
		s++;
		if (fraction(&s, &frac) != 0)
			return -1;
	}
	if (*s != '\0')
		return -1;
	/* ns within the second: whole units below a second plus the scaled fraction. */
	sec = ip / unit;
	ns = (ip % unit) * (NS_PER_SEC / unit) + frac / unit;
	if (neg && (sec != 0 || ns != 0)) {
		sec = -sec;
		if (ns != 0) {
			sec--;
			ns = NS_PER_SEC - ns;
		}
	}
	out->sec = sec;
	out->nsec = (int32_t)ns;
	return 0;
}

int
ts_parse(const char *s, enum ts_format fmt, struct ts *out)
{
	if (s == NULL)
		return -1;
	switch (fmt) {
	case TS_RFC3339:
		return parse_rfc3339(s, out);
	case TS_EPOCH:
		return parse_epoch(s, 1, out);
	case TS_EPOCH_MS:
		return parse_epoch(s, 1000, out);
	}
	return -1;
}

/* Shortest fixed-point text of a JSON real that reads back as the same double. */
static char *
real_text(double v)
{
	char	tmp[64];
	int	p;

	if (!isfinite(v) || fabs(v) >= 1e17)
		return NULL;
	for (p = 0; p <= 9; p++) {
		snprintf(tmp, sizeof tmp, "%.*f", p, v);
		if (strtod(tmp, NULL) == v)
			break;
	}
	return xstrdup(tmp);
}

int
ts_from_json(json_t *v, enum ts_format fmt, struct ts *out, char **text)
{
	char	*t;

	*text = NULL;
	if (json_is_string(v))
		t = xstrdup(json_string_value(v));
	else if (json_is_integer(v) && fmt != TS_RFC3339)
		t = xasprintf("%" JSON_INTEGER_FORMAT, json_integer_value(v));
	else if (json_is_real(v) && fmt != TS_RFC3339) {
		if ((t = real_text(json_real_value(v))) == NULL)
			return -1;
	} else
		return -1;
	if (ts_parse(t, fmt, out) != 0) {
		free(t);
		return -1;
	}
	*text = t;
	return 0;
}

int
ts_cmp(struct ts a, struct ts b)
{
	if (a.sec != b.sec)
		return a.sec < b.sec ? -1 : 1;
	if (a.nsec != b.nsec)
		return a.nsec < b.nsec ? -1 : 1;
	return 0;
}

int64_t
ts_ns(struct ts t)
{
	if (t.sec >= INT64_MAX / NS_PER_SEC)
		return INT64_MAX;
	if (t.sec < INT64_MIN / NS_PER_SEC)
		return INT64_MIN;
	return t.sec * NS_PER_SEC + t.nsec;
}

struct ts
ts_from_ns(int64_t ns)
{
	struct ts	t;

	t.sec = ns / NS_PER_SEC;
	t.nsec = (int32_t)(ns % NS_PER_SEC);
	if (t.nsec < 0) {
		t.sec--;
		t.nsec += NS_PER_SEC;
	}
	return t;
}

struct ts
ts_sub_ms(struct ts t, int64_t ms)
{
	int64_t	ns;

	t.sec -= ms / 1000;
	ns = (int64_t)t.nsec - (ms % 1000) * 1000000;
	if (ns < 0) {
		t.sec--;
		ns += NS_PER_SEC;
	} else if (ns >= NS_PER_SEC) {
		t.sec++;
		ns -= NS_PER_SEC;
	}
	t.nsec = (int32_t)ns;
	return t;
}

int64_t
ts_text_unit_ns(const char *s, enum ts_format fmt)
{
	const char	*frac = NULL;
	int64_t		 unit = fmt == TS_EPOCH_MS ? NS_PER_SEC / 1000 : NS_PER_SEC;

	if (fmt == TS_RFC3339) {
		if (strlen(s) <= 10)
			return 86400 * NS_PER_SEC;	/* a date alone */
		frac = strpbrk(s + 10, ".,");
	} else
		frac = strchr(s, '.');
	if (frac == NULL)
		return unit;
	for (frac++; isdigit((unsigned char)*frac) && unit > 1; frac++)
		unit /= 10;
	return unit;
}

/*
 * RFC 3339 in UTC with 0, 3, 6 or 9 fraction digits, whichever is exact. Epoch
 * formats are integers, floored, so a lower bound rendered from them never skips.
 */
char *
ts_format(struct ts t, enum ts_format fmt)
{
	int64_t	 days, rem, y;
	int	 mo, d;
	char	 frac[16];

	switch (fmt) {
	case TS_EPOCH:
		return xasprintf("%lld", (long long)t.sec);
	case TS_EPOCH_MS:
		return xasprintf("%lld", (long long)(t.sec * 1000 + t.nsec / 1000000));
	case TS_RFC3339:
		break;
	}
	days = t.sec / 86400;
	rem = t.sec % 86400;
	if (rem < 0) {
		rem += 86400;
		days--;
	}
	civil_from_days(days, &y, &mo, &d);
	if (t.nsec == 0)
		frac[0] = '\0';
	else if (t.nsec % 1000000 == 0)
		snprintf(frac, sizeof frac, ".%03d", (int)(t.nsec / 1000000));
	else if (t.nsec % 1000 == 0)
		snprintf(frac, sizeof frac, ".%06d", (int)(t.nsec / 1000));
	else
		snprintf(frac, sizeof frac, ".%09d", (int)t.nsec);
	return xasprintf("%04lld-%02d-%02dT%02d:%02d:%02d%sZ", (long long)y, mo, d,
	    (int)(rem / 3600), (int)(rem / 60 % 60), (int)(rem % 60), frac);
}

int
ts_format_parse(const char *name, enum ts_format *out)
{
	if (strcmp(name, "rfc3339") == 0 || strcmp(name, "iso8601") == 0)
		*out = TS_RFC3339;
	else if (strcmp(name, "epoch") == 0)
		*out = TS_EPOCH;
	else if (strcmp(name, "epoch_ms") == 0)
		*out = TS_EPOCH_MS;
	else
		return -1;
	return 0;
}
